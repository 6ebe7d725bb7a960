//! `mxaudit preflight DOMAIN --to PROFILE [--smart-host HOST]`: the go/no-go
//! checklist for moving MX (seed 000, seed 003). Each line is OK, WARN or
//! BLOCKER; exit status 1 while any BLOCKER remains.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::anyhow;
use serde::Serialize;

use mxaudit_core::config::Config;
use mxaudit_core::runner::{self, RunOptions};
use mxaudit_core::text::{escape_markdown, escape_terminal};
use mxaudit_core::{CheckResult, Finding, Lang, Severity, Target};
use mxaudit_dns::DomainName;

use crate::args::{AuditArgs, PreflightArgs};
use crate::{Failure, setup, usage};

/// OK, WARN or BLOCKER, from a finding's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LineStatus {
    /// Fine.
    Ok,
    /// Needs attention; does not stop the move.
    Warn,
    /// Stops the move.
    Blocker,
}

impl LineStatus {
    fn label(self) -> &'static str {
        match self {
            LineStatus::Ok => "OK",
            LineStatus::Warn => "WARN",
            LineStatus::Blocker => "BLOCKER",
        }
    }
}

fn status_of(severity: Severity) -> LineStatus {
    match severity {
        Severity::Info => LineStatus::Ok,
        Severity::Low | Severity::Medium => LineStatus::Warn,
        Severity::High | Severity::Critical => LineStatus::Blocker,
    }
}

#[derive(Serialize)]
struct Line {
    status: LineStatus,
    #[serde(flatten)]
    finding: Finding,
}

#[derive(Serialize)]
struct Checklist {
    domain: String,
    provider: String,
    smart_host: Option<String>,
    verdict: &'static str,
    blockers: usize,
    warnings: usize,
    lines: Vec<Line>,
    checks: Vec<CheckResult>,
}

/// Runs `mxaudit preflight`.
pub async fn run(args: PreflightArgs) -> Result<u8, Failure> {
    let config = match &args.config {
        Some(path) => setup::load_config(path)?,
        None => Config::default(),
    };
    let lang: Lang = match &args.lang {
        Some(l) => l
            .parse()
            .map_err(|e: String| usage(anyhow!("--lang: {e}")))?,
        None => config.language.unwrap_or_default(),
    };
    let domain = DomainName::parse(&args.domain).map_err(usage)?;
    // `host` or `host:port`: the connector may deliver to another port than 25.
    let (smart_host, smart_port) = match args.smart_host.as_deref() {
        Some(h) => {
            let (name, port) = crate::commands::smtp::split_host(h)
                .map_err(|e| usage(anyhow!("--smart-host: {e}")))?;
            (Some(DomainName::parse(&name).map_err(usage)?), port)
        }
        None => (None, 25),
    };
    let profiles = config.all_profiles();
    let profile = profiles
        .iter()
        .find(|p| p.id == args.to)
        .cloned()
        .ok_or_else(|| {
            let ids: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
            usage(anyhow!(
                "--to: unknown profile `{}` (known: {})",
                args.to.escape_debug(),
                ids.join(", ")
            ))
        })?;
    let set = setup::plugin_set(&config, args.config.as_deref(), &[])?;
    let plugins = set
        .select(Some(&["preflight".to_owned()]), &[])
        .map_err(|e| usage(anyhow!(e)))?;
    let audit_args = AuditArgs {
        allow_targets: args.allow_targets.clone(),
        ..AuditArgs::default()
    };
    let dns = setup::dns(&args.dns, &config)?;
    let policy = setup::address_policy(&audit_args, &config);
    let target = Target {
        domain: domain.clone(),
        profile: Some(Arc::new(profile.clone())),
        outbound_ips: Vec::new(),
        smart_host: smart_host.clone(),
        relay_config: Vec::new(),
    };
    let opts = RunOptions {
        lang,
        severity: config.plugins.severity.clone(),
        ..RunOptions::default()
    };
    let out = runner::run(&plugins, &[target], &dns, policy.clone(), &opts).await;
    let mut findings = out.findings;
    let mut checks = out.checks;
    // The path back, as the provider's connector will see it: port 25 (4.4.315,
    // 4.4.316), greeting and STARTTLS (4.4.317), certificate (4.7.320), not an
    // open relay. Only when the smart host resolved to an address we may probe.
    let resolved = findings.iter().any(|f| f.code == "preflight.smarthost_ok");
    if let (Some(host), true, false) = (&smart_host, resolved, args.dns_only) {
        let (probe_findings, probe_check) =
            probe_smart_host(&set, host, smart_port, &domain, &dns, &policy, lang).await;
        findings.extend(probe_findings);
        checks.push(probe_check);
    }
    // The path back, continued: a smart host on a blocklist has its mail
    // refused, and the lists also hold the spam it relays (seed 001) or the
    // bounces it sends to forged senders (seed 002). Asked of the enabled
    // blocklist plugins; DNS only, so also with --dns-only.
    if let (Some(host), true) = (&smart_host, resolved) {
        let lists: Vec<mxaudit_core::manifest::Plugin> = set
            .select(config.plugins.only.as_deref(), &config.plugins.disable)
            .map_err(|e| usage(anyhow!(e)))?
            .into_iter()
            .filter(|p| p.meta.engine == "dnsbl")
            .collect();
        if let Some(preflight) = plugins.first() {
            let (list_findings, list_check) =
                blocklists_of_smart_host(&lists, preflight, host, &domain, &dns, &policy, &opts)
                    .await;
            findings.extend(list_findings);
            checks.extend(list_check);
        }
    }
    let out = mxaudit_core::runner::RunOutput { findings, checks };
    // The checklist in the order the engine reports it (today, target, path back).
    let mut lines: Vec<Line> = out
        .findings
        .into_iter()
        .map(|f| Line {
            status: status_of(f.severity),
            finding: f,
        })
        .collect();
    // The checklist order of the engine: today, the target, the path back
    // (the smart host's SMTP lines come last).
    let order: Vec<&str> = mxaudit_checks::ENGINES
        .iter()
        .find(|e| e.name == "preflight")
        .map(|e| e.codes.iter().map(|c| c.code).collect())
        .unwrap_or_default();
    lines.sort_by_key(|l| {
        order
            .iter()
            .position(|c| *c == l.finding.code)
            .unwrap_or(usize::MAX)
    });
    let blockers = lines
        .iter()
        .filter(|l| l.status == LineStatus::Blocker)
        .count();
    let warnings = lines
        .iter()
        .filter(|l| l.status == LineStatus::Warn)
        .count();
    let undecided = out
        .checks
        .iter()
        .any(|c| c.status == mxaudit_core::CheckStatus::Error);
    let checklist = Checklist {
        domain: domain.to_string(),
        provider: profile.description.clone(),
        smart_host: smart_host.map(|h| h.to_string()),
        verdict: if blockers > 0 {
            "NO-GO"
        } else if undecided {
            "UNDECIDED"
        } else {
            "GO"
        },
        blockers,
        warnings,
        lines,
        checks: out.checks,
    };
    let text = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&checklist).map_err(crate::failed)? + "\n",
        "text" => render(&checklist, escape_terminal, false),
        "markdown" | "md" => render(&checklist, escape_markdown, true),
        other => {
            return Err(usage(anyhow!(
                "--format: unknown format `{other}` (text, json, markdown)"
            )));
        }
    };
    print!("{text}");
    Ok(if checklist.blockers > 0 || undecided {
        1
    } else {
        0
    })
}

/// The smart host's addresses looked up on each enabled blocklist: a listing
/// (or a list that cannot answer) is reported with that list's text and
/// severity; when no list lists it, one OK line `preflight.smarthost_not_listed`.
async fn blocklists_of_smart_host(
    lists: &[mxaudit_core::manifest::Plugin],
    preflight: &mxaudit_core::manifest::Plugin,
    host: &DomainName,
    domain: &DomainName,
    dns: &mxaudit_dns::Dns,
    policy: &Arc<mxaudit_core::AddressPolicy>,
    opts: &RunOptions,
) -> (Vec<Finding>, Option<CheckResult>) {
    let started = std::time::Instant::now();
    let cx = mxaudit_core::CheckCx {
        dns: dns.clone(),
        addresses: policy.clone(),
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(120),
        rate_limits: true,
    };
    let addresses = mxaudit_checks::resolve::resolve_host(host, &cx)
        .await
        .addresses;
    let who = format!("smart host {host}");
    let renderer = mxaudit_core::text::TextRenderer::new(opts.lang);
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    let mut asked_lists = Vec::new();
    for plugin in lists {
        let Some(list) = plugin
            .check
            .engine()
            .downcast_ref::<mxaudit_checks::dnsbl::Dnsbl>()
        else {
            continue;
        };
        let (report, asked) = list.check_ips(&addresses, &who, &cx).await;
        if asked {
            asked_lists.push(list.list_name().to_owned());
        }
        errors.extend(report.errors);
        for obs in &report.observations {
            findings.push(renderer.finding(
                &plugin.meta,
                &domain.to_string(),
                obs,
                opts.severity.get(&obs.code).copied(),
            ));
        }
    }
    if asked_lists.is_empty() {
        // No enabled list applies (none enabled, or IPv6 only on IPv4 lists).
        return (Vec::new(), None);
    }
    if findings.is_empty() && errors.is_empty() {
        let shown: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        let obs =
            mxaudit_core::Observation::new("preflight.smarthost_not_listed", host.to_string())
                .evidence(format!("{}: {}", shown.join(" "), asked_lists.join(", ")))
                .var("host", host.to_string())
                .var("addresses", shown.join(", "))
                .var("lists", asked_lists.join(", "))
                .var("count", asked_lists.len());
        findings.push(renderer.finding(
            &preflight.meta,
            &domain.to_string(),
            &obs,
            opts.severity.get(&obs.code).copied(),
        ));
    }
    let failed = findings
        .iter()
        .any(|f| f.code != "preflight.smarthost_not_listed");
    let check = check_result(domain, "dnsbl", &errors, failed, started);
    (findings, Some(check))
}

/// The status line of a part of the path back that preflight asks itself:
/// error when it could not decide, fail when it found a problem.
fn check_result(
    domain: &DomainName,
    plugin: &str,
    errors: &[String],
    failed: bool,
    started: std::time::Instant,
) -> CheckResult {
    let status = if !errors.is_empty() {
        mxaudit_core::CheckStatus::Error
    } else if failed {
        mxaudit_core::CheckStatus::Fail
    } else {
        mxaudit_core::CheckStatus::Pass
    };
    CheckResult {
        domain: domain.to_string(),
        plugin: plugin.to_owned(),
        status,
        detail: (!errors.is_empty()).then(|| errors.join("; ")),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// The SMTP probe of the smart host, its observations rendered with the smtp
/// plugin's text; their severities give the checklist status.
async fn probe_smart_host(
    set: &mxaudit_core::registry::PluginSet,
    host: &DomainName,
    port: u16,
    domain: &DomainName,
    dns: &mxaudit_dns::Dns,
    policy: &mxaudit_core::AddressPolicy,
    lang: Lang,
) -> (Vec<Finding>, CheckResult) {
    let started = std::time::Instant::now();
    let opts = mxaudit_checks::smtp::SmtpProbeOptions {
        recipient_domain: Some(domain.bare().to_owned()),
        ..Default::default()
    };
    let out = mxaudit_checks::smtp::probe_host(host.bare(), port, &opts, dns, policy).await;
    let renderer = mxaudit_core::text::TextRenderer::new(lang);
    let findings: Vec<Finding> = match set.plugins.iter().find(|p| p.meta.id == "smtp") {
        Some(smtp) => out
            .observations
            .iter()
            .map(|o| renderer.finding(&smtp.meta, &domain.to_string(), o, None))
            .collect(),
        None => Vec::new(),
    };
    let check = check_result(domain, "smtp", &out.errors, !findings.is_empty(), started);
    (findings, check)
}

fn render(c: &Checklist, esc: fn(&str) -> String, markdown: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}Preflight: {} → {}{}",
        if markdown { "# " } else { "" },
        esc(&c.domain),
        esc(&c.provider),
        c.smart_host
            .as_deref()
            .map(|h| format!(" (smart host {})", esc(h)))
            .unwrap_or_default()
    );
    if markdown {
        let _ = writeln!(
            s,
            "\n| status | check | subject | connector code |\n|---|---|---|---|"
        );
        for l in &c.lines {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                l.status.label(),
                esc(&l.finding.title),
                esc(&l.finding.subject),
                esc(&l.finding.ndr.join("; "))
            );
        }
        s.push('\n');
    }
    for l in &c.lines {
        let tag = format!("{:<7}", l.status.label());
        let f = &l.finding;
        let _ = writeln!(
            s,
            "\n{}{tag}  {}",
            if markdown { "- " } else { "" },
            esc(&f.title)
        );
        let _ = writeln!(s, "         {}", esc(&f.detail));
        if l.status != LineStatus::Ok {
            for line in f.remediation.lines().filter(|l| !l.trim().is_empty()) {
                let _ = writeln!(s, "         → {}", esc(line));
            }
            if !f.ndr.is_empty() {
                let _ = writeln!(
                    s,
                    "         Otherwise senders see: {}",
                    esc(&f.ndr.join("; "))
                );
            }
        }
    }
    for check in c
        .checks
        .iter()
        .filter(|c| c.status == mxaudit_core::CheckStatus::Error)
    {
        let _ = writeln!(
            s,
            "\nUNDECIDED  {}: {}",
            esc(&check.plugin),
            esc(check.detail.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(
        s,
        "\nVerdict: {} ({} blocker(s), {} warning(s))",
        c.verdict, c.blockers, c.warnings
    );
    s
}
