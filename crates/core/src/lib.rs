//! mxaudit's core: the finding model, plugin manifests, configuration, the
//! check traits, the runner and the one text layer. No network code here.

#![deny(missing_docs)]

pub mod address;
pub mod atomic;
pub mod check;
pub mod config;
pub mod docs;
pub mod history;
pub mod manifest;
pub mod model;
pub mod pacer;
pub mod peer;
pub mod profile;
pub mod registry;
pub mod render;
pub mod runner;
pub mod sink;
pub mod text;
pub mod tomldoc;

pub use address::AddressPolicy;
pub use check::{
    CheckCx, CheckReport, CodeSpec, Engine, EngineEntry, Peer, PluginMeta, RunScope, SmartHost,
    Target,
};
pub use model::{CheckResult, CheckStatus, Finding, Lang, Observation, Severity};
pub use profile::Profile;
