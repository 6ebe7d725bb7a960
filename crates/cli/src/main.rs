//! The `mxaudit` binary.
//!
//! Exit codes (design.md): 0 no finding at or above `--fail-on`; 1 such
//! findings exist; 2 usage or configuration error; 3 the audit itself failed.

mod args;
mod commands;
mod setup;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

// An audit of many domains allocates many small, short-lived objects on every
// worker thread (DNS messages, answers, findings); glibc's malloc spent ~20 %
// of the CPU there, partly waiting on its arena locks (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Usage or configuration error (exit 2).
    Usage(anyhow::Error),
    /// The audit itself failed (exit 3).
    Audit(anyhow::Error),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Audit(_) => 3,
        }
    }
}

/// Makes any error a usage error.
pub fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(e.into())
}

/// Makes any error an audit failure.
pub fn failed(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Audit(e.into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mxaudit: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Audit(a) => commands::audit::run(*a).await,
            Command::Demo(d) => commands::demo::run(d).await,
            Command::Plugins(p) => commands::plugins::run(p),
            Command::Config(c) => commands::config::run(c),
            Command::Explain(e) => commands::explain::run(e).await,
            Command::Preflight(p) => commands::preflight::run(*p).await,
            Command::Run(r) => commands::run::run(r).await,
            Command::History(h) => commands::history::run(h).await,
            Command::Daemon(d) => commands::daemon::run(d).await,
            Command::Spf(a) => commands::spf::run(a).await,
            Command::Smtp(a) => commands::smtp::run(a).await,
            Command::Dnsbl(a) => commands::dnsbl::run(a).await,
            Command::RelayConfig(a) => commands::relay_config::run(a),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            let (Failure::Usage(e) | Failure::Audit(e)) = &f;
            eprintln!("mxaudit: {e:#}");
            ExitCode::from(f.code())
        }
    }
}
