//! `mxaudit spf`, `mxaudit smtp` and `mxaudit dnsbl`: one engine, asked directly.

use mxaudit_agent::plan::{Overrides, Plan};
use mxaudit_agent::{Result, tools, view};
use mxaudit_checks::spf::SpfRequest;
use mxaudit_core::peer::LineStatus;

use crate::args::{DnsblArgs, SmtpArgs, SpfArgs};

/// Runs `mxaudit spf`.
pub async fn spf(args: SpfArgs) -> Result<u8> {
    let domain =
        mxaudit_dns::DomainName::parse(&args.domain).map_err(mxaudit_agent::AgentError::usage)?;
    let plan = Plan::load(None, super::dns_overrides(&args.dns))?;
    let request = SpfRequest {
        ip: args.ip,
        sender: args.sender.clone(),
        helo: args.helo.clone(),
        ..SpfRequest::new(domain.bare())
    };
    let evaluation = tools::spf(&plan, &request).await?;
    let text = match args.format.as_str() {
        "json" => super::json(&evaluation)?,
        "text" => view::spf::text(&evaluation),
        other => return Err(super::unknown_format(other, "text, json")),
    };
    super::print(&text);
    Ok(0)
}

/// Runs `mxaudit smtp`.
pub async fn smtp(args: SmtpArgs) -> Result<u8> {
    let overrides = Overrides {
        allow_targets: args.allow_targets.clone(),
        ca_files: args.ca_files.clone(),
        ..super::dns_overrides(&args.dns)
    };
    let plan = Plan::load(None, overrides)?;
    let out = tools::smtp(&plan, &args.host, args.domain.as_deref()).await?;
    let text = match args.format.as_str() {
        "json" => super::json(&out)?,
        "text" => view::smtp::text(&out),
        other => return Err(super::unknown_format(other, "text, json")),
    };
    super::print(&text);
    // Findings exit 1 (any of them is a problem a sender sees); nothing probed exits 3.
    Ok(if out.sessions.is_empty() && !out.errors.is_empty() {
        3
    } else {
        u8::from(!out.observations.is_empty())
    })
}

/// Runs `mxaudit dnsbl`.
pub async fn dnsbl(args: DnsblArgs) -> Result<u8> {
    let lang = super::lang(Some(&args.lang))?.unwrap_or_default();
    let overrides = Overrides {
        allow_targets: args.allow_targets.clone(),
        plugin_dirs: args.plugin_dirs.clone(),
        ..super::dns_overrides(&args.dns)
    };
    let plan = Plan::load(args.config.as_deref(), overrides)?;
    let lines = tools::dnsbl(&plan, &args.inputs, args.plugins.as_deref()).await?;
    let text = match args.format.as_str() {
        "json" => super::json(&lines)?,
        "text" => view::dnsbl::text(&lines, lang),
        other => return Err(super::unknown_format(other, "text, json")),
    };
    super::print(&text);
    let listed = lines.iter().any(|l| l.status == LineStatus::Listed);
    let undecided = !lines.is_empty()
        && lines.iter().all(|l| {
            matches!(
                l.status,
                LineStatus::Failed | LineStatus::Unusable | LineStatus::Refused
            )
        });
    Ok(if listed {
        1
    } else if undecided {
        3
    } else {
        0
    })
}
