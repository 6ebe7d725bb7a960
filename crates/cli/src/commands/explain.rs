//! `mxaudit explain FILE|-`: what a bounce says, what it means, who must act,
//! and (with `--audit`) the checks that confirm the cause.

use std::fmt::Write as _;
use std::io::Read;

use anyhow::{Context, anyhow};
use serde::Serialize;

use mxaudit_bounce::{Bounce, CodeTable, Explained, Party, RecipientStatus};
use mxaudit_core::config::Config;
use mxaudit_core::model::Report;
use mxaudit_core::text::{escape_markdown, escape_terminal};
use mxaudit_core::{Lang, Target};
use mxaudit_dns::DomainName;

use crate::args::{AuditArgs, ExplainArgs};
use crate::{Failure, failed, setup, usage};

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
    audit: Option<Report>,
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
pub async fn run(args: ExplainArgs) -> Result<u8, Failure> {
    let lang: Lang = args
        .lang
        .parse()
        .map_err(|e: String| usage(anyhow!("--lang: {e}")))?;
    let mut input = Vec::new();
    let limit = mxaudit_bounce::MAX_INPUT as u64 + 1;
    if args.file.as_os_str() == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut input)
            .context("cannot read standard input")
            .map_err(usage)?;
    } else {
        std::fs::File::open(&args.file)
            .and_then(|f| f.take(limit).read_to_end(&mut input))
            .with_context(|| format!("cannot read {}", args.file.display()))
            .map_err(usage)?;
    }
    let bounce = mxaudit_bounce::read(&input).map_err(usage)?;
    let mut table = CodeTable::builtin().map_err(failed)?;
    if let Some(path) = &args.codes {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(usage)?;
        table.extend_front(CodeTable::parse(&path.display().to_string(), &text).map_err(usage)?);
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
        audit,
    };
    let text = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&out).map_err(failed)? + "\n",
        "text" => render(&out, lang, escape_terminal),
        "markdown" | "md" => render(&out, lang, escape_markdown),
        other => {
            return Err(usage(anyhow!(
                "--format: unknown format `{other}` (text, json, markdown)"
            )));
        }
    };
    print!("{text}");
    Ok(0)
}

/// The domains each cause points at, with the plugins that confirm it.
async fn audit_causes(
    args: &ExplainArgs,
    explained: &[RecipientExplained<'_>],
    sender: Option<&str>,
    lang: Lang,
) -> Result<Report, Failure> {
    let config = Config::default();
    let set = setup::plugin_set(&config, None, &[])?;
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
        let plugins: Vec<String> = e
            .explanation
            .checks
            .iter()
            .filter(|id| set.plugins.iter().any(|p| &p.meta.id == *id))
            .cloned()
            .collect();
        if plugins.is_empty() {
            continue;
        }
        match wanted.iter_mut().find(|(d, _)| *d == domain) {
            Some((_, ps)) => ps.extend(
                plugins
                    .into_iter()
                    .filter(|p| !ps.contains(p))
                    .collect::<Vec<_>>(),
            ),
            None => wanted.push((domain, plugins)),
        }
    }
    let audit_args = AuditArgs {
        dns: args.dns.clone(),
        allow_targets: args.allow_targets.clone(),
        ..AuditArgs::default()
    };
    let dns = setup::dns(&args.dns, &config)?;
    let policy = setup::address_policy(&audit_args, &config);
    let started = chrono::Utc::now();
    let mut report = Report {
        version: mxaudit_core::model::REPORT_VERSION,
        generator: format!("mxaudit {}", env!("CARGO_PKG_VERSION")),
        started_at: started.to_rfc3339(),
        finished_at: String::new(),
        domains: Vec::new(),
        findings: Vec::new(),
        checks: Vec::new(),
    };
    for (domain, ids) in wanted {
        let Ok(name) = DomainName::parse(&domain) else {
            continue;
        };
        let plugins = set.select(Some(&ids), &[]).map_err(|e| usage(anyhow!(e)))?;
        let target = Target {
            domain: name,
            profile: None,
            outbound_ips: Vec::new(),
            smart_host: None,
            relay_config: Vec::new(),
        };
        let opts = mxaudit_core::runner::RunOptions {
            lang,
            ..Default::default()
        };
        let out = mxaudit_core::runner::run(&plugins, &[target], &dns, policy.clone(), &opts).await;
        report.domains.push(domain);
        report.findings.extend(out.findings);
        report.checks.extend(out.checks);
    }
    report.finished_at = chrono::Utc::now().to_rfc3339();
    Ok(report)
}

fn render(out: &ExplainOutput<'_>, lang: Lang, esc: fn(&str) -> String) -> String {
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
    if let Some(report) = &out.audit {
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
