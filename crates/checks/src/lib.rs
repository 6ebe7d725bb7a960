//! mxaudit's check engines, one module per engine, and the built-in plugin
//! manifests that instantiate them.

#![deny(missing_docs)]

pub mod address;
pub mod dane;
pub mod dmarc;
pub mod dns_assert;
pub mod dnsbl;
pub mod dnssec;
pub mod exec;
pub mod mta_sts;
pub mod mx;
pub mod preflight;
pub mod ptr;
pub mod relay_config;
pub mod resolve;
pub mod smtp;
pub mod spf;
pub mod tlsrpt;

use mxaudit_core::EngineEntry;

/// An engine whose plugins may also be defined inline in the configuration,
/// as an array of tables named after the engine (`[[dnsbl]]`).
#[derive(Debug, Clone, Copy)]
pub struct InlineTable {
    /// The configuration key, which is also the engine name.
    pub key: &'static str,
    /// `(path, source)` of the manifest that gives inline plugins their text.
    pub text: (&'static str, &'static str),
}

/// Engines with inline tables, one line each.
pub static INLINE_TABLES: &[InlineTable] = &[InlineTable {
    key: "dnsbl",
    text: dnsbl::INLINE_TEXT,
}];

/// The engine registry: one line per engine, in documentation order (style rule 3).
pub static ENGINES: &[EngineEntry] = &[
    EngineEntry::of::<mx::Mx>(),
    EngineEntry::of::<address::Address>(),
    EngineEntry::of::<ptr::Ptr>(),
    EngineEntry::of::<spf::Spf>(),
    EngineEntry::of::<dmarc::Dmarc>(),
    EngineEntry::of::<dnsbl::Dnsbl>(),
    EngineEntry::of::<dns_assert::DnsAssert>(),
    EngineEntry::of::<mta_sts::MtaSts>(),
    EngineEntry::of::<tlsrpt::TlsRpt>(),
    EngineEntry::of::<exec::Exec>(),
    EngineEntry::of::<preflight::Preflight>(),
    EngineEntry::of::<smtp::Smtp>(),
    EngineEntry::of::<relay_config::RelayConfig>(),
    EngineEntry::of::<dnssec::Dnssec>(),
    EngineEntry::of::<dane::Dane>(),
];

/// `("builtin:plugins/<stem>.toml", <text>)`, compiled in.
macro_rules! manifest {
    ($stem:literal) => {
        (
            concat!("builtin:plugins/", $stem, ".toml"),
            include_str!(concat!("../../../plugins/", $stem, ".toml")),
        )
    };
}

/// The built-in plugin manifests, compiled in: `(name for errors, text)`; one
/// line per manifest, in `plugins list` order.
pub static BUILTIN_MANIFESTS: &[(&str, &str)] = &[
    manifest!("mx"),
    manifest!("address"),
    manifest!("ptr"),
    manifest!("spf"),
    manifest!("dmarc"),
    manifest!("dnsbl-spamhaus-zen"),
    manifest!("dnsbl-spamhaus-dbl"),
    manifest!("dnsbl-spamcop"),
    manifest!("dnsbl-barracuda"),
    manifest!("backscatterer"),
    manifest!("dnsbl-uceprotect-1"),
    manifest!("dnsbl-psbl"),
    manifest!("dnsbl-mailspike"),
    manifest!("mta-sts"),
    manifest!("tlsrpt"),
    manifest!("dkim-microsoft365-selector1"),
    manifest!("dkim-microsoft365-selector2"),
    manifest!("preflight"),
    manifest!("smtp"),
    manifest!("relay-config"),
    manifest!("dnssec"),
    manifest!("dane"),
];
