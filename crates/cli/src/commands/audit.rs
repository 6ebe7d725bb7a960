//! `mxaudit audit`: audit domains now and print or write the report.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};

use mxaudit_core::config::Config;
use mxaudit_core::model::{REPORT_VERSION, Report};
use mxaudit_core::render::{self, Format};
use mxaudit_core::runner::{self, RunOptions};
use mxaudit_core::{Lang, Severity};

use crate::args::AuditArgs;
use crate::{Failure, failed, setup, usage};

/// Runs `mxaudit audit`.
pub async fn run(args: AuditArgs) -> Result<u8, Failure> {
    let config = match &args.config {
        Some(path) => setup::load_config(path)?,
        None => Config::default(),
    };
    execute(&args, &config).await
}

/// Audits with a configuration already loaded (also used by `demo`).
pub async fn execute(args: &AuditArgs, config: &Config) -> Result<u8, Failure> {
    let format: Format = args
        .format
        .parse()
        .map_err(|e: String| usage(anyhow!("--format: {e}")))?;
    let lang: Lang = match &args.lang {
        Some(l) => l
            .parse()
            .map_err(|e: String| usage(anyhow!("--lang: {e}")))?,
        None => config.language.unwrap_or_default(),
    };
    let fail_on: Severity = match &args.fail_on {
        Some(s) => s
            .parse()
            .map_err(|e: String| usage(anyhow!("--fail-on: {e}")))?,
        None => config.fail_on.unwrap_or(Severity::High),
    };
    let set = setup::plugin_set(config, args.config.as_deref(), &args.plugin_dirs)?;
    let plugins = setup::select_plugins(&set, args, config)?;
    let targets = setup::targets(args, config)?;
    let dns = setup::dns(&args.dns, config)?;
    let policy = setup::address_policy(args, config);
    let opts = RunOptions {
        concurrency: args.concurrency.or(config.checks.concurrency).unwrap_or(32),
        task_timeout: config.checks.timeout.unwrap_or(Duration::from_secs(60)),
        lang,
        severity: config.plugins.severity.clone(),
        progress: crate::commands::run::progress_bar(),
    };

    let started = chrono::Utc::now();
    let out = runner::run(&plugins, &targets, &dns, policy, &opts).await;
    let finished = chrono::Utc::now();
    let report = Report {
        version: REPORT_VERSION,
        generator: format!("mxaudit {}", env!("CARGO_PKG_VERSION")),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        finished_at: finished.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        domains: targets.iter().map(|t| t.domain.to_string()).collect(),
        findings: out.findings,
        checks: out.checks,
    };
    let text = render::render(&report, format);
    match &args.output {
        Some(path) => write_atomic(path, text.as_bytes()).map_err(failed)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an audit failure.
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }
    Ok(if report.findings.iter().any(|f| f.severity >= fail_on) {
        1
    } else {
        0
    })
}

/// Writes a file so that readers see the old or the new content, never a part.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}
