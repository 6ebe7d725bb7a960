//! The one end-to-end test binary (style rule 8): every module runs the real
//! library or the real `mxaudit` binary against servers on loopback.

/// The agent: run, history, daemon.
mod agent;
/// The real binary: formats, exit codes, bad input, escaping.
mod cli;
/// The example audit.toml cannot drift from the code.
mod config_docs;
/// The DNS layer: typed outcomes, de-duplication, TCP fallback, hostile answers.
mod dns;
/// DNS blocklists: the built-in list manifests against emulated list zones, the
/// RFC 5782 §5 self-test, error codes, IPv6, rate limits, one query per
/// (address, list) in a 1,000-domain run, and `mxaudit dnsbl`'s library call.
mod dnsbl;
/// DNSSEC and DANE: a signed testbed world (good, expired signatures, wrong DS,
/// unsigned) over UDP and TCP, a resolver that strips DNSSEC, and the `dnssec`
/// and `dane` engines against scripted SMTP servers and their TLSA records.
mod dnssec;
/// Reading bounces: DSNs, NDR texts, malformed input, --audit.
mod explain;
/// The mx, address, ptr and dmarc checks against the demo world.
mod foundation;
/// MTA-STS and TLS-RPT: the policy fetched from a testbed HTTPS server (good,
/// malformed, mismatching, redirecting, huge, slow, wrong certificate), the MX
/// hosts matched against it, fetched only behind a valid record and once per run.
mod mta_sts;
/// Checks without Rust: dns_assert, exec, user plugin directories, generated docs.
mod plugins;
/// The MX-migration checklist.
mod preflight;
/// The relay configuration review (issue 19) against real Postfix instances:
/// `relay-config` on each instance's `postconf -n`/`-P` output, confirmed or
/// refuted by the SMTP probe of the running instance.
mod relay_config;
/// Long domain lists: streamed files, shards, --dns-only.
mod scale;
/// Sinks against real receivers: HTTP (retries, Retry-After, spool, dead letters,
/// idempotency, escaping), SMTP (aiosmtpd), files; sink configuration errors.
mod sinks;
/// The smtp engine: scripted SMTP servers on loopback (open relay, catch-all,
/// certificates, tarpits, hostile servers), the single-host probe, and a real
/// postfix configured as a closed relay.
mod smtp;
/// SPF (RFC 7208): the openspf conformance suite through the public API, and
/// every finding of the `spf` plugin against the testbed.
mod spf;
/// The history store on a real PostgreSQL server.
mod store_pg;
/// Shared helpers: testbed DNS, clients, the runner, the binary.
mod support;
