//! `mxaudit relay-config FILE… [--kind postfix|exchange] [--format text|json|markdown]
//! [--lang en|ja] [--service NAME]… [--tables DIR]`: the review of a mail
//! server's exported relay settings. Exit 1 when a finding is high or
//! critical, 2 on usage errors (unreadable files, nothing to review).

use anyhow::anyhow;

use mxaudit_checks::relay_config::{self, Kind, ReviewOptions, render};
use mxaudit_core::{Lang, Severity};

use crate::args::RelayConfigArgs;
use crate::{Failure, failed, usage};

/// Runs `mxaudit relay-config`.
pub fn run(args: RelayConfigArgs) -> Result<u8, Failure> {
    let lang: Lang = args
        .lang
        .parse()
        .map_err(|e: String| usage(anyhow!("--lang: {e}")))?;
    let format: render::Format = args
        .format
        .parse()
        .map_err(|e: String| usage(anyhow!("--format: {e}")))?;
    let mut inputs = Vec::new();
    for path in &args.files {
        let input = relay_config::read_input(path, &path.display().to_string())
            .map_err(|e| usage(anyhow!(e)))?;
        inputs.push(input);
    }
    let kind = match &args.kind {
        Some(k) => k
            .parse::<Kind>()
            .map_err(|e| usage(anyhow!("--kind: {e}")))?,
        None => Kind::guess_all(&inputs).map_err(|e| usage(anyhow!(e)))?,
    };
    let mut opts = ReviewOptions {
        services: args.services.clone(),
        ..ReviewOptions::default()
    };
    if let Some(root) = &args.tables {
        // Tables that are not there stay unread (relay_config.unparsed).
        for path in relay_config::table_files(&inputs) {
            let file = root.join(path.trim_start_matches('/'));
            if let Ok(t) = relay_config::read_input(&file, &path) {
                opts.tables.insert(path, t.text);
            }
        }
    }
    let review = relay_config::review(&inputs, kind, &opts);
    if review.services.is_empty() && review.observations.is_empty() {
        return Err(usage(anyhow!(
            "no {} relay settings in {}",
            kind.as_str(),
            review.inputs.join(", ")
        )));
    }
    let plugin = render::builtin_plugin().map_err(|e| failed(anyhow!(e)))?;
    let findings = render::findings(&review, &plugin, lang, "");
    print!("{}", render::render(&review, &findings, format, lang));
    if format == render::Format::Json {
        println!();
    }
    Ok(u8::from(
        findings.iter().any(|f| f.severity >= Severity::High),
    ))
}
