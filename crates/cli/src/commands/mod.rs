//! One file per subcommand.

pub mod audit;
pub mod config;
pub mod demo;
pub mod explain;
pub mod plugins;
pub mod preflight;
