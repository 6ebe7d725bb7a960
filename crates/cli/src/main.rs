//! The `mxaudit` binary: parses arguments, calls the agent library, prints.
//!
//! Exit codes (design.md): 0 no finding at or above `--fail-on`; 1 such
//! findings exist; 2 usage or configuration error; 3 the audit itself failed.

mod args;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

// An audit of many domains allocates many small, short-lived objects on every
// worker thread (DNS messages, answers, findings); glibc's malloc spent ~20 %
// of the CPU there, partly waiting on its arena locks (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, matches!(cli.command, Command::Daemon(_)));
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
            Command::Plugins(p) => commands::catalog::plugins(p),
            Command::Config(c) => commands::catalog::config(c),
            Command::Explain(e) => commands::explain::run(e).await,
            Command::Preflight(p) => commands::preflight::run(*p).await,
            Command::Run(r) => commands::run::run(r).await,
            Command::History(h) => commands::run::history(h).await,
            Command::Daemon(d) => commands::run::daemon(d).await,
            Command::Spf(a) => commands::tools::spf(a).await,
            Command::Smtp(a) => commands::tools::smtp(a).await,
            Command::Dnsbl(a) => commands::tools::dnsbl(a).await,
            Command::RelayConfig(a) => commands::relay_config::run(a),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mxaudit: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
