//! mxaudit's sinks: where a run's findings go — report files (JSON, JSON Lines,
//! Markdown, HTML), chat webhooks (Slack, Microsoft Teams, generic JSON with an
//! HMAC signature) and email — and the one delivery loop that makes sure none
//! of them loses a finding (style rule 10).
//!
//! # How the runner uses this crate
//!
//! At load time (`mxaudit config check`, `run`, the daemon's start and SIGHUP):
//!
//! ```text
//! let config = Config::parse(path, &text)?;                 // core: common sink keys
//! let sinks  = mxaudit_sinks::build_sinks(&config, base_dir)?; // here: each type's own keys
//! let spool  = Spool::new(mxaudit_sinks::spool_dir(&config, base_dir));
//! let policy = RetryPolicy::from_section(&config.delivery);
//! ```
//!
//! [`build_sinks`] is pure — no socket, no DNS, no file written — so an offline
//! `config check` validates everything: unknown keys, bad formats, templates, and
//! secrets (a `*_env` variable that is not set is an error naming the key). It
//! returns one sink per `config.sinks` entry, in the same order.
//!
//! After each run, for each sink (in any order; sinks are independent):
//!
//! ```text
//! let batch  = Batch { key: format!("{run_id}/{sink_id}"), events: filter.apply(&events), .. };
//! let report = mxaudit_sinks::deliver(sink.as_ref(), &batch, &spool, &policy).await;
//! ```
//!
//! [`deliver`] first replays this sink's spooled batches, oldest first, then the
//! new one; retries with backoff and full jitter (honouring `Retry-After`); spools
//! what still fails; moves permanent failures to the dead-letter folder. Its
//! [`DeliveryReport`] counts delivered, spooled, pending, dead-lettered and lost
//! batches (lost only if the spool itself cannot be written), for logs, the exit
//! status and `/metrics`.
//!
//! # Adding a sink
//!
//! One file (`src/<type>.rs`) with a `#[serde(deny_unknown_fields)]` config and a
//! `build` function, one line in [`SINKS`], a commented block in `audit.toml`, a
//! section in `docs/sinks.md`, a test against a real server on loopback. The
//! second-stage parse, secrets, retries and the spool are shared.

#![deny(missing_docs)]

mod build;
pub mod delivery;
pub mod email;
pub mod file;
pub mod secret;
pub mod spool;
pub mod webhook;

pub use build::{BuildContext, BuildFn, SinkEntry, build_sinks, build_sinks_with, spool_dir};
pub use delivery::{BatchOutcome, DeliveryReport, Outcome, RetryPolicy, deliver};
pub use secret::{Secret, SecretSource};
pub use spool::{PendingBatch, Pushed, Spool, SpoolError};

/// The sink types, one line each, in documentation order (style rule 3).
#[rustfmt::skip]
pub static SINKS: &[SinkEntry] = &[
    SinkEntry { kind: "file", summary: "Reports on disk: JSON, JSON Lines, Markdown or a self-contained HTML page", keys: file::KEYS, build: file::build },
    SinkEntry { kind: "webhook", summary: "Chat and HTTP receivers: Slack Block Kit, Teams Adaptive Card, generic signed JSON", keys: webhook::KEYS, build: webhook::build },
    SinkEntry { kind: "email", summary: "Mail through an SMTP relay (STARTTLS, implicit TLS, AUTH), text and HTML parts", keys: email::KEYS, build: email::build },
];
