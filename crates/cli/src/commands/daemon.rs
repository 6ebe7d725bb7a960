//! daemon placeholder
use crate::Failure;
use crate::args::DaemonArgs;

/// Runs `mxaudit daemon`.
pub async fn run(_args: DaemonArgs) -> Result<u8, Failure> {
    Ok(0)
}
