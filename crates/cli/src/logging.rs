//! Log output: `tracing` events on standard error. Filters follow `RUST_LOG`
//! (e.g. `RUST_LOG=debug` shows each DNS question's outcome and each SMTP
//! stage); without it, warnings for the commands and information for the
//! daemon. The daemon's lines carry time, level and target; `--log-format
//! json` writes JSON lines for log shippers. Secrets are never logged: the
//! library never puts one in an event.

use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;

/// Installs the subscriber for the process.
pub fn init(format: LogFormat, daemon: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(if daemon { "info" } else { "warn" }));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match (format, daemon) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Text, true) => builder.with_ansi(false).try_init(),
        // A command's warnings read like its other messages: `mxaudit: WARN …`.
        (LogFormat::Text, false) => builder
            .without_time()
            .with_target(false)
            .with_ansi(false)
            .try_init(),
    };
}
