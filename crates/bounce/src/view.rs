//! The explanation of a reading, rendered as text, Markdown or JSON. Every word
//! a user reads comes from [`LABELS`] (English and Japanese) or from the rule
//! files; values from the message are escaped for the output (terminal or
//! Markdown), since bounce text is untrusted.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use mxaudit_core::Lang;
use mxaudit_core::sink::Batch;

use crate::{
    Audit, AutoReply, Bounce, BounceKind, Explained, FeedbackReport, Origin, Party, Reading,
    RecipientStatus, Rules, domain_of, sender_domain,
};

/// One label in both languages.
pub struct Label {
    /// Key.
    pub key: &'static str,
    /// English.
    pub en: &'static str,
    /// Japanese.
    pub ja: &'static str,
}

macro_rules! labels {
    ($($key:literal => $en:literal, $ja:literal;)*) => {
        /// Every label of the explanation, in English and Japanese.
        pub const LABELS: &[Label] = &[$(Label { key: $key, en: $en, ja: $ja }),*];
    };
}

labels! {
    "bounce" => "Bounce:", "バウンス:";
    "kind.dsn" => "RFC 3464 delivery status notification", "RFC 3464 配信状態通知 (DSN)";
    "kind.text" => "non-delivery report (text)", "配信不能レポート (テキスト)";
    "written_by" => "written by", "作成:";
    "generating_server" => "Generating server:", "生成サーバー:";
    "summary" => "Summary:", "概要:";
    "original" => "Original", "元のメッセージ";
    "remote_server" => "Remote server:", "リモート サーバー:";
    "reply" => "Reply:", "応答:";
    "reason" => "Reason:", "理由:";
    "meaning" => "Meaning:", "意味:";
    "who_acts" => "Who acts:", "対応者:";
    "confirm_with" => "Confirm with:", "確認方法:";
    "sources" => "Found in:", "取得元:";
    "status_field" => "Status field:", "Status フィールド:";
    "status_field_note" => "the diagnostic's code is more specific", "診断コードの方が詳細です";
    "note" => "Note:", "注意:";
    "unknown_recipient" => "(recipient not named)", "(受信者の記載なし)";
    "action.failed" => "failed", "失敗";
    "action.delayed" => "delayed", "遅延";
    "action.delivered" => "delivered", "配信済み";
    "action.relayed" => "relayed", "中継済み";
    "action.expanded" => "expanded", "展開済み";
    "kind.permanent" => "permanent: resending will not help", "永続的なエラー: 再送しても解決しません";
    "kind.transient" => "transient: the sender's server retries", "一時的なエラー: 送信側サーバーが再試行します";
    "kind.success" => "success", "成功";
    "kind.unknown" => "permanent or transient: not stated", "永続的か一時的かの記載なし";
    "party.sender" => "the sender (check the address, then resend)", "送信者 (アドレスを確認して再送してください)";
    "party.sender_admin" => "the sending domain's administrator", "送信元ドメインの管理者";
    "party.recipient_admin" => "the recipient's administrator", "受信側の管理者";
    "party.wait" => "nobody yet: a transient problem, the sending server retries", "現時点では不要 (一時的なエラーで、送信側サーバーが再試行します)";
    "unknown_status" => "Unknown status code; read the diagnostic text.", "不明なステータス コードです。診断テキストを確認してください。";
    "origin.header" => "header {name}", "ヘッダー {name}";
    "origin.field" => "{name} (group {group})", "{name} (グループ {group})";
    "origin.line" => "line {line} of part {part}", "パート {part} の {line} 行目";
    "origin.rule" => "rule {rule}", "ルール {rule}";
    "origin.derived" => "derived from {value}", "{value} から推定";
    "value.recipient" => "recipient", "受信者";
    "value.status" => "status", "ステータス";
    "value.reply_code" => "reply", "応答コード";
    "value.reason" => "reason", "理由";
    "value.diagnostic" => "diagnostic", "診断";
    "value.action" => "action", "アクション";
    "value.remote_mta" => "remote server", "リモート サーバー";
    "value.text" => "the report text", "レポート本文";
    "warning.mime_truncated" => "the message was cut: its MIME structure ends before the closing boundary, so parts may be missing", "メッセージが途中で切れています。MIME 構造が終了境界の前で終わっているため、一部が欠けている可能性があります";
    "warning.no_recipient" => "the bounce names no recipient address", "バウンスに受信者のアドレスが記載されていません";
    "audit_heading" => "== Checks of the causes (--audit)", "== 原因の確認 (--audit)";
    "feedback" => "Feedback report (ARF, RFC 5965): not a bounce — a receiver reported a message it received.", "フィードバック レポート (ARF、RFC 5965): バウンスではありません。受信側が受け取ったメッセージを報告しています。";
    "feedback_type" => "Feedback type:", "フィードバックの種類:";
    "feedback.abuse" => "abuse: a recipient or filter reported the message as spam or abuse", "abuse: 受信者またはフィルターがスパムまたは迷惑行為として報告しました";
    "feedback.fraud" => "fraud: reported as phishing or fraud", "fraud: フィッシングまたは詐欺として報告されました";
    "feedback.virus" => "virus: reported as carrying malware", "virus: マルウェアを含むとして報告されました";
    "feedback.not-spam" => "not-spam: reported as wrongly classified as spam", "not-spam: 誤ってスパムと判定されたとして報告されました";
    "feedback.auth-failure" => "auth-failure: the message failed SPF, DKIM or DMARC at the receiver (RFC 6591)", "auth-failure: 受信側で SPF、DKIM または DMARC の認証に失敗しました (RFC 6591)";
    "feedback.other" => "other: see the report's text", "other: レポートの本文を確認してください";
    "source_ip" => "Source IP:", "送信元 IP:";
    "reported_domain" => "Reported domain:", "報告されたドメイン:";
    "reported_uri" => "Reported URI:", "報告された URI:";
    "original_sender" => "Original sender:", "元の送信者:";
    "original_recipient" => "Original recipient:", "元の受信者:";
    "arrival_date" => "Arrived:", "受信日時:";
    "reporting_server" => "Reporting server:", "報告元サーバー:";
    "user_agent" => "Reported by:", "報告ソフトウェア:";
    "incidents" => "Incidents:", "件数:";
    "auth_results" => "Authentication-Results:", "Authentication-Results:";
    "feedback_meaning" => "Receivers send these reports to senders enrolled in their feedback loop. A rise means recipients do not want the mail: remove the reporting recipients from lists, check that the source IP is yours and not an abused relay, and keep SPF, DKIM and DMARC aligned.", "受信側はフィードバック ループに登録した送信者にこのレポートを送ります。増えている場合は受信者がメールを望んでいません。報告した受信者をリストから外し、送信元 IP が自組織のもので不正利用された中継サーバーでないことを確認し、SPF・DKIM・DMARC を一致させてください。";
    "auto_reply" => "Automatic reply (RFC 3834): not a bounce — the message was delivered and the recipient's system answered by itself (out of office, vacation, challenge-response).", "自動応答 (RFC 3834): バウンスではありません。メッセージは配信され、受信者のシステムが自動で返信しました (不在通知、休暇、チャレンジ応答など)。";
    "auto_reply_acts" => "nobody: no delivery problem", "対応不要: 配信の問題ではありません";
    "from" => "From:", "差出人:";
    "subject" => "Subject:", "件名:";
    "shown_by" => "Recognised by:", "判定根拠:";
}

/// A label in a language (the key itself when missing, which a test forbids).
pub fn label(key: &str, lang: Lang) -> &'static str {
    match LABELS.iter().find(|l| l.key == key) {
        Some(l) => match lang {
            Lang::En => l.en,
            Lang::Ja => l.ja,
        },
        None => "?",
    }
}

/// One recipient with its explanation.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientExplained {
    /// What the bounce says.
    #[serde(flatten)]
    pub status: RecipientStatus,
    /// What it means.
    pub explanation: Explained,
}

/// A reading explained, ready to print.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// What was read.
    pub reading: Reading,
    /// Per recipient (bounces only).
    pub explained: Vec<RecipientExplained>,
    /// The original sender's domain.
    pub sender_domain: Option<String>,
    /// The language.
    pub lang: Lang,
}

impl Explanation {
    /// Explains a reading.
    pub fn new(reading: Reading, rules: &Rules, lang: Lang) -> Explanation {
        let (explained, sender) = match &reading {
            Reading::Bounce(b) => (
                b.recipients
                    .iter()
                    .map(|r| RecipientExplained {
                        status: r.clone(),
                        explanation: rules.explain(r, lang),
                    })
                    .collect(),
                sender_domain(b),
            ),
            Reading::Feedback(f) => (
                Vec::new(),
                f.original_mail_from
                    .as_deref()
                    .and_then(domain_of)
                    .or_else(|| f.original.from.as_deref().and_then(domain_of))
                    .or_else(|| f.reported_domain.first().cloned()),
            ),
            Reading::AutoReply(_) => (Vec::new(), None),
        };
        Explanation {
            reading,
            explained,
            sender_domain: sender,
            lang,
        }
    }

    /// The domain a cause points at: the sender's or the recipient's.
    pub fn audit_domain(&self, e: &RecipientExplained) -> Option<String> {
        match e.explanation.audit {
            Some(Audit::Sender) => self.sender_domain.clone(),
            Some(Audit::Recipient) => e.status.recipient.as_deref().and_then(domain_of),
            None => None,
        }
    }

    /// JSON (the bounce's facts at the top level, as before; `kind` says what it is).
    pub fn json(&self, audit: Option<&Batch>) -> Value {
        let mut v = match &self.reading {
            Reading::Bounce(b) => serde_json::to_value(b).unwrap_or(Value::Null),
            Reading::Feedback(f) => {
                let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("kind".into(), json!("feedback_report"));
                    m.insert(
                        "meaning".into(),
                        json!(label("feedback_meaning", self.lang)),
                    );
                }
                v
            }
            Reading::AutoReply(a) => {
                let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("kind".into(), json!("auto_reply"));
                    m.insert("meaning".into(), json!(label("auto_reply", self.lang)));
                }
                v
            }
        };
        if let Value::Object(m) = &mut v {
            m.insert("sender_domain".into(), json!(self.sender_domain));
            m.insert(
                "explained".into(),
                serde_json::to_value(&self.explained).unwrap_or(Value::Null),
            );
            m.insert(
                "audit".into(),
                audit
                    .and_then(|r| {
                        serde_json::to_value(mxaudit_core::render::json::audit_report(r)).ok()
                    })
                    .unwrap_or(Value::Null),
            );
        }
        v
    }

    /// Terminal text (`esc` = escape_terminal) or Markdown (`esc` = escape_markdown).
    pub fn render(&self, markdown: bool, esc: fn(&str) -> String, audit: Option<&Batch>) -> String {
        let mut out = Out {
            s: String::new(),
            markdown,
            esc,
            lang: self.lang,
        };
        match &self.reading {
            Reading::Bounce(b) => self.bounce(&mut out, b),
            Reading::Feedback(f) => self.feedback(&mut out, f),
            Reading::AutoReply(a) => self.auto_reply(&mut out, a),
        }
        if let Some(report) = audit {
            let _ = writeln!(out.s, "\n{}\n", label("audit_heading", self.lang));
            out.s.push_str(&mxaudit_core::render::text::render(report));
        }
        out.s
    }

    fn bounce(&self, out: &mut Out, b: &Bounce) {
        let lang = self.lang;
        let kind = match b.kind {
            BounceKind::Dsn => label("kind.dsn", lang),
            BounceKind::Text => label("kind.text", lang),
        };
        let by = b
            .mta
            .as_ref()
            .map(|m| format!(" ({} {})", label("written_by", lang), (out.esc)(&m.name)))
            .unwrap_or_default();
        out.heading(&format!("{} {kind}{by}", label("bounce", lang)));
        if let Some(m) = &b.reporting_mta {
            out.field("generating_server", m);
        }
        if let Some(s) = &b.summary {
            out.field("summary", s);
        }
        let o = &b.original;
        for (name, v) in [
            ("From", &o.from),
            ("To", &o.to),
            ("Subject", &o.subject),
            ("Return-Path", &o.return_path),
        ] {
            if let Some(v) = v {
                out.raw_field(&format!("{} {name}:", label("original", lang)), v);
            }
        }
        for spf in &o.received_spf {
            out.raw_field("Received-SPF:", spf);
        }
        for e in &self.explained {
            let r = &e.status;
            let x = &e.explanation;
            let who = match &r.recipient {
                Some(a) => (out.esc)(a),
                None => label("unknown_recipient", lang).to_owned(),
            };
            let action = r
                .action
                .as_deref()
                .map(|a| match a {
                    "failed" | "delayed" | "delivered" | "relayed" | "expanded" => {
                        label(&format!("action.{a}"), lang).to_owned()
                    }
                    other => (out.esc)(other),
                })
                .unwrap_or_else(|| "?".to_owned());
            let status = x
                .status
                .as_deref()
                .map(|c| format!(", {}", (out.esc)(c)))
                .unwrap_or_default();
            out.recipient_heading(&format!(
                "{who} — {action}{status} ({})",
                label(&format!("kind.{}", x.kind), lang)
            ));
            if let Some(s) = &r.dsn_status {
                out.item(
                    "status_field",
                    &format!("{} ({})", (out.esc)(s), label("status_field_note", lang)),
                );
            }
            if let Some(m) = &r.remote_mta {
                out.item("remote_server", &(out.esc)(m));
            }
            if let Some(d) = &r.diagnostic {
                out.item("reply", &(out.esc)(d));
            }
            if let Some(n) = &x.reason_name {
                out.item("reason", &(out.esc)(n));
            }
            out.item("meaning", &(out.esc)(&x.meaning));
            out.item("who_acts", label(party_key(x.acts), lang));
            if !x.checks.is_empty() {
                let domain = self.audit_domain(e);
                let cmd = format!(
                    "mxaudit audit {} --plugins {}",
                    domain.as_deref().unwrap_or("DOMAIN"),
                    x.checks.join(",")
                );
                let cmd = if out.markdown {
                    format!("`{}`", cmd.replace('`', ""))
                } else {
                    (out.esc)(&cmd)
                };
                out.item("confirm_with", &cmd);
            }
            if !r.origins.is_empty() {
                let list: Vec<String> = r
                    .origins
                    .iter()
                    .map(|(k, o)| {
                        format!(
                            "{} ← {}",
                            label(&format!("value.{k}"), lang),
                            (out.esc)(&describe_origin(o, lang))
                        )
                    })
                    .collect();
                out.item("sources", &list.join("; "));
            }
        }
        for w in &b.warnings {
            let text = label(&format!("warning.{}", w.code), lang);
            let detail = w
                .detail
                .as_deref()
                .map(|d| format!(" ({})", (out.esc)(d)))
                .unwrap_or_default();
            out.note(&format!("{text}{detail}"));
        }
    }

    fn feedback(&self, out: &mut Out, f: &FeedbackReport) {
        let lang = self.lang;
        out.heading(label("feedback", lang));
        if let Some(t) = &f.feedback_type {
            let key = format!("feedback.{t}");
            let text = if LABELS.iter().any(|l| l.key == key) {
                label(&key, lang).to_owned()
            } else {
                (out.esc)(t)
            };
            out.raw_label("feedback_type", &text);
        }
        let fields: [(&str, Option<&String>); 6] = [
            ("source_ip", f.source_ip.as_ref()),
            (
                "original_sender",
                f.original_mail_from.as_ref().or(f.original.from.as_ref()),
            ),
            ("arrival_date", f.arrival_date.as_ref()),
            ("reporting_server", f.reporting_mta.as_ref()),
            ("user_agent", f.user_agent.as_ref()),
            ("incidents", f.incidents.as_ref()),
        ];
        for (key, v) in fields {
            if let Some(v) = v {
                out.field(key, v);
            }
        }
        for d in &f.reported_domain {
            out.field("reported_domain", d);
        }
        for u in &f.reported_uri {
            out.field("reported_uri", u);
        }
        for r in f.original_rcpt_to.iter().take(10) {
            out.field("original_recipient", r);
        }
        if let Some(a) = &f.authentication_results {
            out.field("auth_results", a);
        }
        if let Some(s) = &f.original.subject {
            out.raw_field(&format!("{} Subject:", label("original", lang)), s);
        }
        out.raw_label("meaning", label("feedback_meaning", lang));
        out.raw_label("who_acts", label("party.sender_admin", lang));
    }

    fn auto_reply(&self, out: &mut Out, a: &AutoReply) {
        let lang = self.lang;
        out.heading(label("auto_reply", lang));
        if let Some(v) = &a.from {
            out.field("from", v);
        }
        if let Some(v) = &a.subject {
            out.field("subject", v);
        }
        if let Some(v) = &a.summary {
            out.field("summary", v);
        }
        out.raw_label("shown_by", &(out.esc)(&describe_origin(&a.signal, lang)));
        out.raw_label("who_acts", label("auto_reply_acts", lang));
    }
}

fn party_key(p: Party) -> &'static str {
    match p {
        Party::Sender => "party.sender",
        Party::SenderAdmin => "party.sender_admin",
        Party::RecipientAdmin => "party.recipient_admin",
        Party::Wait => "party.wait",
    }
}

/// Where a value came from, in words.
pub fn describe_origin(o: &Origin, lang: Lang) -> String {
    match o {
        Origin::Header { name } => label("origin.header", lang).replace("{name}", name),
        Origin::Field { name, group } => label("origin.field", lang)
            .replace("{name}", name)
            .replace("{group}", &group.to_string()),
        Origin::Line { part, line, rule } => {
            let mut s = label("origin.line", lang)
                .replace("{part}", &part.to_string())
                .replace("{line}", &line.to_string());
            if let Some(r) = rule {
                s.push_str(", ");
                s.push_str(&label("origin.rule", lang).replace("{rule}", r));
            }
            s
        }
        Origin::Derived { value } => {
            let key = format!("value.{value}");
            let v = if LABELS.iter().any(|l| l.key == key) {
                label(&key, lang).to_owned()
            } else {
                value.clone()
            };
            label("origin.derived", lang).replace("{value}", &v)
        }
    }
}

struct Out {
    s: String,
    markdown: bool,
    esc: fn(&str) -> String,
    lang: Lang,
}

impl Out {
    fn heading(&mut self, text: &str) {
        if self.markdown {
            let _ = writeln!(self.s, "## {text}\n");
        } else {
            let _ = writeln!(self.s, "{text}");
        }
    }

    /// `Label: value` with the value escaped.
    fn field(&mut self, key: &str, value: &str) {
        let v = (self.esc)(value);
        self.raw_label(key, &v);
    }

    /// `Label: value`, the value already escaped.
    fn raw_label(&mut self, key: &str, value: &str) {
        let l = label(key, self.lang);
        if self.markdown {
            let _ = writeln!(self.s, "- **{l}** {value}");
        } else {
            let _ = writeln!(self.s, "{l} {value}");
        }
    }

    /// A label that is not in the table (`Original From:`), value escaped.
    fn raw_field(&mut self, name: &str, value: &str) {
        let v = (self.esc)(value);
        if self.markdown {
            let _ = writeln!(self.s, "- **{}** {v}", (self.esc)(name));
        } else {
            let _ = writeln!(self.s, "{name} {v}");
        }
    }

    fn recipient_heading(&mut self, text: &str) {
        if self.markdown {
            let _ = writeln!(self.s, "\n### {text}\n");
        } else {
            let _ = writeln!(self.s, "\n{text}");
        }
    }

    /// An item under a recipient, the value already escaped.
    fn item(&mut self, key: &str, value: &str) {
        let l = label(key, self.lang);
        if self.markdown {
            let _ = writeln!(self.s, "- **{l}** {value}");
        } else {
            let _ = writeln!(self.s, "  {l} {value}");
        }
    }

    fn note(&mut self, text: &str) {
        let l = label("note", self.lang);
        if self.markdown {
            let _ = writeln!(self.s, "\n> **{l}** {text}");
        } else {
            let _ = writeln!(self.s, "\n{l} {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_both_languages_and_keys_are_unique() {
        for l in LABELS {
            assert!(!l.en.trim().is_empty(), "{} has no English", l.key);
            assert!(!l.ja.trim().is_empty(), "{} has no Japanese", l.key);
            assert_eq!(
                LABELS.iter().filter(|x| x.key == l.key).count(),
                1,
                "duplicate {}",
                l.key
            );
        }
    }

    #[test]
    fn every_label_the_view_asks_for_exists() {
        // Keys built at run time: kinds, parties, actions, values, warnings.
        let mut keys: Vec<String> = ["permanent", "transient", "success", "unknown"]
            .iter()
            .map(|k| format!("kind.{k}"))
            .collect();
        keys.extend(
            ["failed", "delayed", "delivered", "relayed", "expanded"]
                .iter()
                .map(|a| format!("action.{a}")),
        );
        keys.extend(
            [
                "recipient",
                "status",
                "reply_code",
                "reason",
                "diagnostic",
                "action",
                "remote_mta",
            ]
            .iter()
            .map(|v| format!("value.{v}")),
        );
        keys.extend(
            ["mime_truncated", "no_recipient"]
                .iter()
                .map(|w| format!("warning.{w}")),
        );
        for p in [
            Party::Sender,
            Party::SenderAdmin,
            Party::RecipientAdmin,
            Party::Wait,
        ] {
            keys.push(party_key(p).to_owned());
        }
        for k in keys {
            assert!(LABELS.iter().any(|l| l.key == k), "missing label {k}");
        }
    }
}
