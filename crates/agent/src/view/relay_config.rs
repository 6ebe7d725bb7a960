//! `mxaudit relay-config` as it prints: the findings (rendered by the one text
//! layer from the `relay-config` manifest), the verdict per service and what
//! the review assumed, in text, Markdown or JSON, English or Japanese. Every
//! value from the files is escaped for the format.

use std::fmt::Write;

use serde::Serialize;

use mxaudit_checks::relay_config::{Note, Review, ServiceReview};
use mxaudit_core::render::{markdown as md, text as tx};
use mxaudit_core::text::{escape_markdown, escape_terminal};
use mxaudit_core::{Finding, Lang, Severity};

/// Output formats of the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For terminals.
    Text,
    /// One JSON object.
    Json,
    /// For tickets and chat.
    Markdown,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "markdown" | "md" => Ok(Format::Markdown),
            other => Err(format!("unknown format `{other}` (text, json, markdown)")),
        }
    }
}

#[derive(Serialize)]
struct JsonReview<'a> {
    kind: &'a str,
    inputs: &'a [String],
    relay: Option<&'a str>,
    services: &'a [ServiceReview],
    notes: Vec<JsonNote<'a>>,
    findings: &'a [Finding],
}

#[derive(Serialize)]
struct JsonNote<'a> {
    #[serde(flatten)]
    note: &'a Note,
    text: String,
}

/// Renders the review.
pub fn render(review: &Review, findings: &[Finding], format: Format, lang: Lang) -> String {
    match format {
        Format::Json => {
            let j = JsonReview {
                kind: review.kind.as_str(),
                inputs: &review.inputs,
                relay: review.relay().map(|r| r.as_str()),
                services: &review.services,
                notes: review
                    .notes
                    .iter()
                    .map(|n| JsonNote {
                        note: n,
                        text: note_text(n, lang),
                    })
                    .collect(),
                findings,
            };
            serde_json::to_string_pretty(&j).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        }
        Format::Text => text(review, findings, lang),
        Format::Markdown => markdown(review, findings, lang),
    }
}

fn verdict(relay: &str, lang: Lang) -> &'static str {
    match (relay, lang) {
        ("open", Lang::En) => "OPEN RELAY",
        ("open", Lang::Ja) => "オープン リレー",
        ("closed", Lang::En) => "closed to relaying",
        ("closed", Lang::Ja) => "中継は拒否されます",
        (_, Lang::En) => "undecided",
        (_, Lang::Ja) => "判定できません",
    }
}

fn heading(review: &Review, lang: Lang) -> String {
    let system = match review.kind {
        mxaudit_checks::relay_config::Kind::Postfix => "Postfix",
        mxaudit_checks::relay_config::Kind::Exchange => "Exchange",
    };
    match lang {
        Lang::En => format!("Relay configuration review ({system})"),
        Lang::Ja => format!("中継設定のレビュー ({system})"),
    }
}

fn counts(findings: &[Finding], lang: Lang) -> String {
    let parts: Vec<String> = Severity::ALL
        .iter()
        .map(|s| (s, findings.iter().filter(|f| f.severity == *s).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    match (parts.is_empty(), lang) {
        (true, Lang::En) => "no findings".to_owned(),
        (true, Lang::Ja) => "指摘事項なし".to_owned(),
        (false, _) => parts.join(", "),
    }
}

fn text(review: &Review, findings: &[Finding], lang: Lang) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} — {}",
        heading(review, lang),
        counts(findings, lang)
    );
    let _ = writeln!(
        out,
        "{}: {}",
        if lang == Lang::Ja {
            "ファイル"
        } else {
            "Files"
        },
        escape_terminal(&review.inputs.join(", "))
    );
    for s in &review.services {
        let _ = writeln!(
            out,
            "  {}: {}",
            escape_terminal(&s.name),
            verdict(s.relay.as_str(), lang)
        );
    }
    if review.services.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            if lang == Lang::Ja {
                "レビューしたサービスはありません"
            } else {
                "no service reviewed"
            }
        );
    }
    for n in &review.notes {
        let _ = writeln!(out, "  - {}", escape_terminal(&note_text(n, lang)));
    }
    for f in findings {
        let _ = writeln!(
            out,
            "\n[{}] {}  {}",
            f.severity.as_str().to_uppercase(),
            f.code,
            escape_terminal(&f.subject)
        );
        tx::finding_body(&mut out, f);
    }
    out
}

fn markdown(review: &Review, findings: &[Finding], lang: Lang) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", escape_markdown(&heading(review, lang)));
    let _ = writeln!(
        out,
        "{}: {}\n",
        if lang == Lang::Ja {
            "ファイル"
        } else {
            "Files"
        },
        escape_markdown(&review.inputs.join(", "))
    );
    let (svc, rel) = if lang == Lang::Ja {
        ("サービス", "中継")
    } else {
        ("service", "relay")
    };
    let _ = writeln!(out, "| {svc} | {rel} |\n|---|---|");
    for s in &review.services {
        let _ = writeln!(
            out,
            "| {} | {} |",
            escape_markdown(&s.name),
            verdict(s.relay.as_str(), lang)
        );
    }
    out.push('\n');
    for n in &review.notes {
        let _ = writeln!(out, "- {}", escape_markdown(&note_text(n, lang)));
    }
    if !review.notes.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}\n", counts(findings, lang));
    for f in findings {
        let _ = writeln!(
            out,
            "## {} `{}` {}\n",
            f.severity.as_str().to_uppercase(),
            f.code,
            escape_markdown(&f.subject)
        );
        md::finding_body(&mut out, f);
    }
    out
}

/// The sentence of a note (not a finding: what the review assumed or left out).
pub fn note_text(n: &Note, lang: Lang) -> String {
    let s = &n.subject;
    let v = &n.value;
    match (n.code, lang) {
        ("assumed_stock_service", Lang::En) => format!(
            "master.cf is not among the files: assumed the stock service `{s} … smtpd` (port 25) with main.cf's settings; export `postconf -M` and `postconf -P` to review the real one"
        ),
        ("assumed_stock_service", Lang::Ja) => format!(
            "master.cf が含まれていないため、標準のサービス `{s} … smtpd` (ポート 25) が main.cf の設定で動いていると仮定しました。実際の設定を確認するには `postconf -M` と `postconf -P` の出力も渡してください"
        ),
        ("skipped_loopback", Lang::En) => format!(
            "{s} listens on loopback only and was not reviewed (name it with --service to review it)"
        ),
        ("skipped_loopback", Lang::Ja) => format!(
            "{s} はループバックでのみ待ち受けるため、レビューしていません (--service で指定するとレビューします)"
        ),
        ("mynetworks_from_style", Lang::En) => format!(
            "mynetworks is not set: Postfix computes it from mynetworks_style = {v} (host: this machine only; subnet: the machine's subnets; class: their whole class A/B/C networks), from addresses the files do not show; add the output of `postconf mynetworks` to review it"
        ),
        ("mynetworks_from_style", Lang::Ja) => format!(
            "mynetworks が設定されていないため、Postfix は mynetworks_style = {v} から値を決めます (host: このマシンのみ、subnet: マシンのサブネット、class: クラス A/B/C のネットワーク全体)。マシンのアドレスはファイルに含まれないので、`postconf mynetworks` の出力も渡してください"
        ),
        ("smtpd_refuses_mail", Lang::En) => format!(
            "{s}: neither smtpd_relay_restrictions nor smtpd_recipient_restrictions lists reject_unauth_destination (or defer_unauth_destination, reject, defer, defer_if_permit): smtpd stops with a fatal error and receives no mail"
        ),
        ("smtpd_refuses_mail", Lang::Ja) => format!(
            "{s}: smtpd_relay_restrictions にも smtpd_recipient_restrictions にも reject_unauth_destination (または defer_unauth_destination、reject、defer、defer_if_permit) がないため、smtpd は致命的エラーで停止し、メールを受信しません"
        ),
        ("connector_disabled", Lang::En) => format!("{s} is disabled and was not reviewed"),
        ("connector_disabled", Lang::Ja) => {
            format!("{s} は無効になっているため、レビューしていません")
        }
        ("assumed_named_service", Lang::En) => format!(
            "master.cf is not among the files: assumed that {s} runs smtpd with main.cf's settings and the -o overrides postconf -P shows"
        ),
        ("assumed_named_service", Lang::Ja) => format!(
            "master.cf が含まれていないため、{s} は main.cf の設定と postconf -P が示す -o の上書きで smtpd を実行していると仮定しました"
        ),
        ("service_not_found", Lang::En) => {
            format!("--service {s}: no such smtpd service in the files")
        }
        ("service_not_found", Lang::Ja) => {
            format!("--service {s}: その smtpd サービスはファイルにありません")
        }
        (code, _) => format!("{code}: {s} {v}"),
    }
}
