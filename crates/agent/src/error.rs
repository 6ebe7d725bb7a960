//! What can stop a command, and the exit status each maps to (design.md: 2 usage
//! or configuration error, 3 the audit itself failed).

use mxaudit_core::tomldoc::Located;

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A bad argument, option or input file (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A configuration or plugin file is invalid; the message names file, line and key (exit 2).
    #[error("{0}")]
    Config(#[from] Located),
    /// The audit itself failed: no resolver, an unwritable output, the store (exit 3).
    #[error("{0}")]
    Failed(String),
}

impl AgentError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AgentError::Usage(_) | AgentError::Config(_) => 2,
            AgentError::Failed(_) => 3,
        }
    }

    /// A usage error from anything printable.
    pub fn usage(e: impl std::fmt::Display) -> AgentError {
        AgentError::Usage(e.to_string())
    }

    /// An audit failure from anything printable.
    pub fn failed(e: impl std::fmt::Display) -> AgentError {
        AgentError::Failed(e.to_string())
    }
}

/// The result of an agent operation.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;
