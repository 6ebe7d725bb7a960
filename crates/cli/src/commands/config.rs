//! `mxaudit config check`.

use crate::args::{AuditArgs, ConfigCommand};
use crate::{Failure, setup};

/// Runs `mxaudit config …`.
pub fn run(cmd: ConfigCommand) -> Result<u8, Failure> {
    match cmd {
        ConfigCommand::Check { file } => {
            let config = setup::load_config(&file)?;
            let set = setup::plugin_set(&config, Some(&file), &[])?;
            let plugins = setup::select_plugins(&set, &AuditArgs::default(), &config)?;
            println!(
                "{}: ok ({} domain(s), {} plugin(s) selected)",
                file.display(),
                config.domains.len(),
                plugins.len()
            );
            Ok(0)
        }
    }
}
