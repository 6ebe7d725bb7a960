//! `mxaudit explain FILE|-`: what a bounce says, what it means, who must act,
//! and (with `--audit`) the checks that confirm the cause.

use std::fmt::Write as _;
use std::io::Read;

use serde::Serialize;

use mxaudit_agent::explain;
use mxaudit_agent::plan::{Overrides, Plan};
use mxaudit_agent::{AgentError, Result};
use mxaudit_bounce::{Bounce, CodeTable, Explained, Party, RecipientStatus};
use mxaudit_core::Lang;
use mxaudit_core::sink::Batch;
use mxaudit_core::text::{escape_markdown, escape_terminal};

use crate::args::ExplainArgs;

#[derive(Serialize)]
struct RecipientExplained<'a> {
    #[serde(flatten)]
    status: &'a RecipientStatus,
    explanation: Explained,
}

#[derive(Serialize)]
struct ExplainOutput<'a> {
    #[serde(flatten)]
    bounce: &'a Bounce,
    sender_domain: Option<String>,
    explained: Vec<RecipientExplained<'a>>,
    audit: Option<mxaudit_core::render::json::AuditReport<'a>>,
}

fn who(p: Party, lang: Lang) -> &'static str {
    match (p, lang) {
        (Party::Sender, Lang::En) => "the sender (check the address, then resend)",
        (Party::SenderAdmin, Lang::En) => "the sending domain's administrator",
        (Party::RecipientAdmin, Lang::En) => "the recipient's administrator",
        (Party::Wait, Lang::En) => "nobody yet: a transient problem, the sending server retries",
        (Party::Sender, Lang::Ja) => "送信者 (アドレスを確認して再送してください)",
        (Party::SenderAdmin, Lang::Ja) => "送信元ドメインの管理者",
        (Party::RecipientAdmin, Lang::Ja) => "受信側の管理者",
        (Party::Wait, Lang::Ja) => {
            "現時点では不要 (一時的なエラーで、送信側サーバーが再試行します)"
        }
    }
}

/// Runs `mxaudit explain`.
pub async fn run(args: ExplainArgs) -> Result<u8> {
    let lang = super::lang(Some(&args.lang))?.unwrap_or_default();
    let mut input = Vec::new();
    let limit = mxaudit_bounce::MAX_INPUT as u64 + 1;
    if args.file.as_os_str() == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut input)
            .map_err(|e| AgentError::Usage(format!("cannot read standard input: {e}")))?;
    } else {
        std::fs::File::open(&args.file)
            .and_then(|f| f.take(limit).read_to_end(&mut input))
            .map_err(|e| AgentError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    }
    let bounce = mxaudit_bounce::read(&input).map_err(AgentError::usage)?;
    let mut table = CodeTable::builtin().map_err(AgentError::failed)?;
    if let Some(path) = &args.codes {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AgentError::Usage(format!("cannot read {}: {e}", path.display())))?;
        table.extend_front(
            CodeTable::parse(&path.display().to_string(), &text).map_err(AgentError::usage)?,
        );
    }
    let sender_domain = mxaudit_bounce::sender_domain(&bounce);
    let explained: Vec<RecipientExplained> = bounce
        .recipients
        .iter()
        .map(|r| RecipientExplained {
            status: r,
            explanation: table.explain(r, lang),
        })
        .collect();
    let audit = if args.audit {
        Some(audit_causes(&args, &explained, sender_domain.as_deref(), lang).await?)
    } else {
        None
    };
    let out = ExplainOutput {
        bounce: &bounce,
        sender_domain,
        explained,
        audit: audit.as_ref().map(mxaudit_core::render::json::audit_report),
    };
    let text = match args.format.as_str() {
        "json" => super::json(&out)?,
        "text" => render(&out, audit.as_ref(), lang, escape_terminal),
        "markdown" | "md" => render(&out, audit.as_ref(), lang, escape_markdown),
        other => return Err(super::unknown_format(other, "text, json, markdown")),
    };
    super::print(&text);
    Ok(0)
}

/// The domains each cause points at, with the plugins that confirm it, run
/// as an audit.
async fn audit_causes(
    args: &ExplainArgs,
    explained: &[RecipientExplained<'_>],
    sender: Option<&str>,
    lang: Lang,
) -> Result<Batch> {
    let overrides = Overrides {
        allow_targets: args.allow_targets.clone(),
        lang: Some(lang),
        ..super::dns_overrides(&args.dns)
    };
    let plan = Plan::load(None, overrides)?;
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    for e in explained {
        let domain = match e.explanation.audit.as_deref() {
            Some("sender") => sender.map(str::to_owned),
            Some("recipient") => e
                .status
                .recipient
                .as_deref()
                .and_then(mxaudit_bounce::domain_of),
            _ => None,
        };
        let Some(domain) = domain else { continue };
        let plugins = explain::known_plugins(&plan, &e.explanation.checks);
        if plugins.is_empty() {
            continue;
        }
        match wanted.iter_mut().find(|(d, _)| *d == domain) {
            Some((_, ps)) => {
                for p in plugins {
                    if !ps.contains(&p) {
                        ps.push(p);
                    }
                }
            }
            None => wanted.push((domain, plugins)),
        }
    }
    explain::audit_causes(&plan, &wanted).await
}

fn render(
    out: &ExplainOutput<'_>,
    audit: Option<&Batch>,
    lang: Lang,
    esc: fn(&str) -> String,
) -> String {
    let ja = lang == Lang::Ja;
    let mut s = String::new();
    let b = out.bounce;
    let kind = match b.kind {
        mxaudit_bounce::BounceKind::Dsn => "RFC 3464 delivery status notification",
        mxaudit_bounce::BounceKind::Text => "non-delivery report (text)",
    };
    let _ = writeln!(s, "{} {kind}", if ja { "バウンス:" } else { "Bounce:" });
    if let Some(m) = &b.reporting_mta {
        let _ = writeln!(
            s,
            "{} {}",
            if ja {
                "生成サーバー:"
            } else {
                "Generating server:"
            },
            esc(m)
        );
    }
    if let Some(sum) = &b.summary {
        let _ = writeln!(s, "{} {}", if ja { "概要:" } else { "Summary:" }, esc(sum));
    }
    let o = &b.original;
    for (label, v) in [
        ("From", &o.from),
        ("To", &o.to),
        ("Subject", &o.subject),
        ("Return-Path", &o.return_path),
    ] {
        if let Some(v) = v {
            let _ = writeln!(
                s,
                "{} {label}: {}",
                if ja {
                    "元のメッセージ"
                } else {
                    "Original"
                },
                esc(v)
            );
        }
    }
    for spf in &o.received_spf {
        let _ = writeln!(s, "Received-SPF: {}", esc(spf));
    }
    for e in &out.explained {
        let r = e.status;
        let x = &e.explanation;
        let _ = writeln!(
            s,
            "\n{} — {}{} ({})",
            esc(r.recipient.as_deref().unwrap_or("?")),
            esc(r.action.as_deref().unwrap_or("?")),
            x.status
                .as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default(),
            match (x.kind, ja) {
                ("permanent", false) => "permanent: resending will not help",
                ("transient", false) => "transient: the sender's server retries",
                ("success", false) => "success",
                ("permanent", true) => "永続的なエラー: 再送しても解決しません",
                ("transient", true) => "一時的なエラー: 送信側サーバーが再試行します",
                _ => "",
            }
        );
        if let Some(m) = &r.remote_mta {
            let _ = writeln!(
                s,
                "  {} {}",
                if ja {
                    "リモート サーバー:"
                } else {
                    "Remote server:"
                },
                esc(m)
            );
        }
        if let Some(d) = &r.diagnostic {
            let _ = writeln!(s, "  {} {}", if ja { "応答:" } else { "Reply:" }, esc(d));
        }
        let _ = writeln!(
            s,
            "  {} {}",
            if ja { "意味:" } else { "Meaning:" },
            esc(&x.meaning)
        );
        let _ = writeln!(
            s,
            "  {} {}",
            if ja { "対応者:" } else { "Who acts:" },
            who(x.acts, lang)
        );
        if !x.checks.is_empty() {
            let domain = match x.audit.as_deref() {
                Some("sender") => out.sender_domain.clone(),
                Some("recipient") => r.recipient.as_deref().and_then(mxaudit_bounce::domain_of),
                _ => None,
            };
            let _ = writeln!(
                s,
                "  {} mxaudit audit {} --plugins {}",
                if ja { "確認方法:" } else { "Confirm with:" },
                esc(domain.as_deref().unwrap_or("DOMAIN")),
                x.checks.join(",")
            );
        }
    }
    for w in &b.warnings {
        let _ = writeln!(s, "\n{} {}", if ja { "注意:" } else { "Note:" }, esc(w));
    }
    if let Some(report) = audit {
        let _ = writeln!(
            s,
            "\n{}\n",
            if ja {
                "== 原因の確認 (--audit)"
            } else {
                "== Checks of the causes (--audit)"
            }
        );
        s.push_str(&mxaudit_core::render::text::render(report));
    }
    s
}
