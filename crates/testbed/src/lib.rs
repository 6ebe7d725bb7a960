//! Test worlds on loopback for mxaudit's tests, benchmarks and the offline demo.
//!
//! `dns`: an authoritative DNS server (hickory-server) on 127.0.0.1 serving zone
//! files, with SERVFAIL, REFUSED, timeouts and truncation on demand; every
//! world also has the public blocklists (`blocklists`). `policy`: an HTTPS
//! server for MTA-STS policy hosts, well-behaved or hostile.

#![deny(missing_docs)]

pub mod blocklists;
pub mod certs;
pub mod demo;
pub mod dns;
pub mod policy;
pub mod scripted;
pub mod signed;
pub mod smtp;
mod zones;

pub use dns::{DnsServer, Fault, ZoneText};
pub use scripted::{ScriptedDns, ScriptedRecord, ScriptedZone};

/// Errors starting a test world.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestbedError {
    /// A socket or file operation failed.
    #[error("testbed I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A zone could not be parsed or loaded.
    #[error("zone {origin}: {message}")]
    Zone {
        /// The zone origin.
        origin: String,
        /// What went wrong.
        message: String,
    },
    /// `faults.txt` is malformed.
    #[error("{0}")]
    Faults(String),
}
