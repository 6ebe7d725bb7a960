//! The agent as a library: everything between the command line and the
//! engines. A command builds a [`plan::Plan`] (the configuration plus explicit
//! command-line overrides, merged once), reads its [`targets`], and runs the one
//! pipeline: runner → history → batches → spool → delivery. `audit` is that
//! pipeline without history, its batch rendered to standard output or a file;
//! `run` and the daemon add history and sinks; `preflight` and
//! `explain --audit` reuse it. The binary parses arguments, calls this crate,
//! and prints.

#![deny(missing_docs)]

pub mod audit;
pub mod catalog;
pub mod daemon;
pub mod error;
pub mod explain;
pub mod output;
pub mod plan;
pub mod preflight;
pub mod run;
pub mod targets;
pub mod tools;
pub mod view;

pub use error::{AgentError, Result};
