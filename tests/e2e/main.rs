//! The one end-to-end test binary (style rule 8): every module runs the real
//! library or the real `mxaudit` binary against servers on loopback.

/// Shared helpers: testbed DNS, clients, the runner, the binary.
mod support;
/// The DNS layer: typed outcomes, de-duplication, TCP fallback, hostile answers.
mod dns;
