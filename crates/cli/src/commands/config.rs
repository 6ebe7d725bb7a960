//! `mxaudit config check`.

use crate::args::{AuditArgs, ConfigCommand};
use crate::{Failure, setup};

/// Runs `mxaudit config …`.
pub fn run(cmd: ConfigCommand) -> Result<u8, Failure> {
    match cmd {
        ConfigCommand::Check { file } => {
            let config = setup::load_config(&file)?;
            let set = setup::plugin_set(&config, Some(&file), &[])?;
            // Sinks are built too (secrets resolved, no network): a missing
            // variable or an unknown sink key is an error here, not at 3 a.m.
            let delivery = crate::commands::run::Delivery::from_config(&config, &file)?;
            let plugins = setup::select_plugins(&set, &AuditArgs::default(), &config)?;
            println!(
                "{}: ok ({} domain(s), {} plugin(s) selected, {} sink(s))",
                file.display(),
                config.domains.len(),
                plugins.len(),
                delivery.ids().len()
            );
            Ok(0)
        }
    }
}
