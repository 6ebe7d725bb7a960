//! mxaudit's check engines, one module per engine, and the built-in plugin
//! manifests that instantiate them.

#![deny(missing_docs)]

pub mod address;
pub mod dmarc;
pub mod mx;
pub mod ptr;
pub mod resolve;

use mxaudit_core::EngineEntry;

/// The engine registry: one line per engine, in documentation order (style rule 3).
pub static ENGINES: &[EngineEntry] = &[
    EngineEntry::of::<mx::Mx>(),
    EngineEntry::of::<address::Address>(),
    EngineEntry::of::<ptr::Ptr>(),
    EngineEntry::of::<dmarc::Dmarc>(),
];

/// The built-in plugin manifests, compiled in: `(name for errors, text)`.
pub static BUILTIN_MANIFESTS: &[(&str, &str)] = &[
    (
        "builtin:plugins/mx.toml",
        include_str!("../../../plugins/mx.toml"),
    ),
    (
        "builtin:plugins/address.toml",
        include_str!("../../../plugins/address.toml"),
    ),
    (
        "builtin:plugins/ptr.toml",
        include_str!("../../../plugins/ptr.toml"),
    ),
    (
        "builtin:plugins/dmarc.toml",
        include_str!("../../../plugins/dmarc.toml"),
    ),
];
