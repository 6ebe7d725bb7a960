//! `mxaudit relay-config FILE… [--kind postfix|exchange] [--format text|json|markdown]
//! [--lang en|ja] [--service NAME]… [--tables DIR]`: the review of a mail
//! server's exported relay settings. Exit 1 when a finding is high or
//! critical, 2 on usage errors (unreadable files, nothing to review).

use mxaudit_agent::tools::{self, RelayConfigRequest};
use mxaudit_agent::view::relay_config::{Format, render};
use mxaudit_agent::{AgentError, Result};
use mxaudit_core::Severity;

use crate::args::RelayConfigArgs;

/// Runs `mxaudit relay-config`.
pub fn run(args: RelayConfigArgs) -> Result<u8> {
    let lang = super::lang(Some(&args.lang))?.unwrap_or_default();
    let format: Format = args
        .format
        .parse()
        .map_err(|e: String| AgentError::Usage(format!("--format: {e}")))?;
    let req = RelayConfigRequest {
        files: args.files.clone(),
        kind: args.kind.clone(),
        services: args.services.clone(),
        tables: args.tables.clone(),
    };
    let (review, findings) = tools::relay_config(&req, lang)?;
    let mut text = render(&review, &findings, format, lang);
    if format == Format::Json {
        text.push('\n');
    }
    super::print(&text);
    Ok(u8::from(
        findings.iter().any(|f| f.severity >= Severity::High),
    ))
}
