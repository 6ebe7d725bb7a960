//! One file per subcommand.

pub mod audit;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod dnsbl;
pub mod explain;
pub mod history;
pub mod plugins;
pub mod preflight;
pub mod relay_config;
pub mod run;
pub mod smtp;
pub mod spf;
