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
pub mod mx;
pub mod preflight;
pub mod ptr;
pub mod resolve;
pub mod smtp;
pub mod spf;

use mxaudit_core::EngineEntry;

/// The engine registry: one line per engine, in documentation order (style rule 3).
pub static ENGINES: &[EngineEntry] = &[
    EngineEntry::of::<mx::Mx>(),
    EngineEntry::of::<address::Address>(),
    EngineEntry::of::<ptr::Ptr>(),
    EngineEntry::of::<spf::Spf>(),
    EngineEntry::of::<dmarc::Dmarc>(),
    EngineEntry::of::<dnsbl::Dnsbl>(),
    EngineEntry::of::<dns_assert::DnsAssert>(),
    EngineEntry::of::<exec::Exec>(),
    EngineEntry::of::<preflight::Preflight>(),
    EngineEntry::of::<smtp::Smtp>(),
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
    manifest!("dnssec"),
    manifest!("dane"),
];
