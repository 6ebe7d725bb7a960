//! `mxaudit spf DOMAIN [--ip IP --sender S --helo H]`: the evaluated record tree
//! and the check_host() result (RFC 7208 §4) with the explanation.

use anyhow::anyhow;

use mxaudit_checks::spf::{SpfRequest, evaluate};
use mxaudit_core::config::Config;

use crate::args::SpfArgs;
use crate::{Failure, failed, setup, usage};

/// Runs `mxaudit spf`.
pub async fn run(args: SpfArgs) -> Result<u8, Failure> {
    let domain = mxaudit_dns::DomainName::parse(&args.domain).map_err(usage)?;
    let dns = setup::dns(&args.dns, &Config::default())?;
    let request = SpfRequest {
        ip: args.ip,
        sender: args.sender.clone(),
        helo: args.helo.clone(),
        ..SpfRequest::new(domain.bare())
    };
    let evaluation = evaluate(&dns, &request).await;
    match args.format.as_str() {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&evaluation).map_err(failed)?
        ),
        "text" => print!("{}", evaluation.to_text()),
        other => {
            return Err(usage(anyhow!(
                "--format: unknown format `{other}` (text, json)"
            )));
        }
    }
    Ok(0)
}
