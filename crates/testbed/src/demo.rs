//! The offline demo world of `mxaudit demo`: a handful of `.example` domains that
//! show typical problems, plus healthy controls. The same world is the
//! foundation's end-to-end test fixture, so the demo cannot drift from what is
//! tested.

use std::path::PathBuf;

use crate::TestbedError;
use crate::dns::{Fault, ZoneText, builtin_zones, parse_faults};

/// The demo's configuration (`audit.toml` format).
pub const CONFIG: &str = include_str!("../worlds/demo/audit.toml");

const ZONES: &[(&str, &str)] = &[
    ("example", include_str!("../worlds/demo/example.zone")),
    (
        "mail.protection.outlook.com",
        include_str!("../worlds/demo/outlook.zone"),
    ),
    ("arpa", include_str!("../worlds/demo/reverse.zone")),
    (
        "spf.protection.outlook.com",
        include_str!("../worlds/demo/spf-outlook.zone"),
    ),
];

const FAULTS: &str = include_str!("../worlds/demo/faults.txt");

/// The demo zones.
pub fn zones() -> Vec<ZoneText> {
    builtin_zones(ZONES)
}

/// The demo's failing names.
pub fn faults() -> Result<Vec<(String, Fault)>, TestbedError> {
    parse_faults("worlds/demo/faults.txt", FAULTS)
}

/// The folder of the demo world in the source tree (for tests).
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("worlds/demo")
}
