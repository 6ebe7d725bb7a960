//! The smtp engine end to end: scripted SMTP servers of the testbed on
//! 127.77.0.x, DNS zones whose MX points at them, the engine as the runner
//! runs it, and one real MTA (Debian's postfix) configured as a closed relay.
//! Every code of plugins/smtp.toml has a test here; timeouts are short (the
//! test manifest sets them) so that hostile servers cost seconds, not minutes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mxaudit_core::check::{CheckCx, CheckReport};
use mxaudit_core::manifest::Plugin;
use mxaudit_core::runner::{self, RunOptions};
use mxaudit_core::text::TextRenderer;
use mxaudit_core::{AddressPolicy, CheckStatus, Lang, Observation};
use mxaudit_dns::Dns;
use mxaudit_testbed::certs::{self, TestCa, TestCert, Validity};
use mxaudit_testbed::smtp::{Greeting, SessionLog, SmtpScript, SmtpServer};
use mxaudit_testbed::{DnsServer, ZoneText};

use crate::support::{dns_client, fixture, target};

/// Short limits for loopback servers; a test adds or overrides keys.
const FAST: &str = r#"
connect_timeout = "1s"
greeting_timeout = "2s"
slow_greeting = "400ms"
command_timeout = "1s"
tls_timeout = "1s"
session_budget = "20s"
session_delay = "0s"
"#;

/// Loopback and multicast (for the unreachable case) count as probe-able.
fn policy() -> Arc<AddressPolicy> {
    Arc::new(AddressPolicy::new(vec![
        "127.0.0.0/8".parse().expect("net"),
        "224.0.0.0/4".parse().expect("net"),
    ]))
}

/// The built-in smtp manifest, enabled, with `port` and test params.
fn smtp_plugin(port: u16, extra: &str) -> Plugin {
    smtp_plugin_named("smtp", port, extra)
}

/// The built-in smtp manifest under another plugin id.
fn smtp_plugin_named(id: &str, port: u16, extra: &str) -> Plugin {
    let (_, source) = mxaudit_checks::BUILTIN_MANIFESTS
        .iter()
        .find(|(path, _)| path.ends_with("/smtp.toml"))
        .expect("built-in smtp manifest");
    let mut doc: toml::Table = toml::from_str(source).expect("manifest parses");
    let mut params: toml::Table = toml::from_str(FAST).expect("params");
    params.insert("port".into(), toml::Value::Integer(i64::from(port)));
    let extra: toml::Table = toml::from_str(extra).expect("extra params");
    params.extend(extra);
    doc.insert("params".into(), toml::Value::Table(params));
    doc.insert("enabled".into(), toml::Value::Boolean(true));
    doc.insert("id".into(), toml::Value::String(id.into()));
    let text = toml::to_string(&doc).expect("serializes");
    mxaudit_core::manifest::load(
        &format!("test:plugins/{id}.toml"),
        Some(id),
        &text,
        mxaudit_checks::ENGINES,
    )
    .unwrap_or_else(|e| panic!("test manifest: {e}"))
}

fn zone(domain: &str, mx_address: IpAddr) -> ZoneText {
    ZoneText {
        origin: format!("{domain}."),
        text: format!(
            "$ORIGIN {domain}.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n@ IN MX 10 mx\nmx IN A {mx_address}\n"
        ),
    }
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, 0, last)
}

/// A domain whose MX `mx.<domain>` is a scripted server on `address`.
struct Scenario {
    domain: String,
    _dns_server: DnsServer,
    dns: Dns,
    server: Option<SmtpServer>,
    plugin: Plugin,
    scope: std::sync::Arc<mxaudit_core::RunScope>,
}

impl Scenario {
    async fn start(domain: &str, address: Ipv4Addr, script: SmtpScript, params: &str) -> Scenario {
        let server = SmtpServer::start(SocketAddr::from((address, 0)), script)
            .await
            .expect("scripted SMTP server starts");
        Scenario::with(
            domain,
            IpAddr::V4(address),
            server.port(),
            Some(server),
            params,
        )
        .await
    }

    async fn with(
        domain: &str,
        mx_address: IpAddr,
        port: u16,
        server: Option<SmtpServer>,
        params: &str,
    ) -> Scenario {
        let dns_server = DnsServer::start(&[zone(domain, mx_address)])
            .await
            .expect("testbed DNS starts");
        let dns = dns_client(dns_server.addr());
        Scenario {
            domain: domain.to_owned(),
            _dns_server: dns_server,
            dns,
            server,
            plugin: smtp_plugin(port, params),
            scope: std::sync::Arc::new(mxaudit_core::RunScope::default()),
        }
    }

    /// Runs the check like the runner does, and renders every observation in
    /// English and Japanese (a template error fails the test).
    async fn check(&self) -> CheckReport {
        self.check_with(&self.plugin).await
    }

    /// Runs `plugin` (an smtp plugin) like the runner does, in the scenario's run.
    async fn check_with(&self, plugin: &Plugin) -> CheckReport {
        // One scope (and so one session pacer) for every check of the
        // scenario, as for the checks of one run.
        let cx = CheckCx {
            run: self.scope.clone(),
            ..CheckCx::new(
                self.dns.clone(),
                policy(),
                std::time::Instant::now() + Duration::from_secs(30),
            )
        };
        let report = plugin.check.run(&target(&self.domain, None), &cx).await;
        for lang in [Lang::En, Lang::Ja] {
            let r = TextRenderer::new(lang);
            for o in &report.observations {
                let f = r.finding(&plugin.meta, &self.domain, o, None);
                for text in [&f.title, &f.detail, &f.remediation] {
                    assert!(!text.contains("[text error"), "{}: {text}", o.code);
                    assert!(!text.trim().is_empty(), "{}: empty text", o.code);
                }
            }
        }
        report
    }

    fn sessions(&self) -> Vec<SessionLog> {
        self.server
            .as_ref()
            .map(SmtpServer::sessions)
            .unwrap_or_default()
    }

    fn subject(&self) -> String {
        let server = self.server.as_ref().expect("server");
        format!("mx.{} {}", self.domain, server.addr())
    }
}

fn codes(report: &CheckReport) -> Vec<&str> {
    let mut c: Vec<&str> = report
        .observations
        .iter()
        .map(|o| o.code.as_str())
        .collect();
    c.sort_unstable();
    c.dedup();
    c
}

fn obs<'a>(report: &'a CheckReport, code: &str) -> &'a Observation {
    report
        .observations
        .iter()
        .find(|o| o.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", report.observations))
}

fn var<'a>(o: &'a Observation, name: &str) -> &'a serde_json::Value {
    o.vars
        .get(name)
        .unwrap_or_else(|| panic!("{}: no var {name}: {:?}", o.code, o.vars))
}

/// The probe never sent DATA and, when the session stayed up, ended with RSET, QUIT.
fn assert_polite(s: &Scenario) {
    let sessions = s.sessions();
    assert!(!sessions.is_empty(), "no session");
    for log in &sessions {
        assert_eq!(log.data_attempts, 0, "DATA sent: {:?}", log.lines);
        assert!(!log.verbs().iter().any(|v| v == "DATA"), "{:?}", log.lines);
    }
}

fn assert_ends_with_rset_quit(log: &SessionLog) {
    let verbs = log.verbs();
    assert_eq!(
        verbs.get(verbs.len().saturating_sub(2)..),
        Some(&["RSET".to_owned(), "QUIT".to_owned()][..]),
        "{:?}",
        log.lines
    );
    assert!(log.quit);
}

/// A closed server that accepts postmaster and refuses unknown local users.
fn closed(name: &str, domain: &str) -> SmtpScript {
    SmtpScript::new(name)
        .rcpt(&format!("postmaster@{domain}"), "250 2.1.5 Ok")
        .rcpt(
            &format!("*@{domain}"),
            "550 5.1.1 <unknown>: Recipient address rejected: User unknown",
        )
        .rcpt_default("554 5.7.1 Relay access denied")
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mxaudit-smtp-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private CA written to `ca.pem` in a temp dir, and the `ca_files` param naming it.
fn private_ca(name: &str) -> (TestCa, TempDir, String) {
    let ca = TestCa::new("mxaudit test CA").expect("CA");
    let dir = TempDir::new(name);
    let path = dir.path().join("ca.pem");
    ca.write_pem(&path).expect("write CA");
    let param = format!("ca_files = [{:?}]", path.display().to_string());
    (ca, dir, param)
}

fn tls_script(domain: &str, cert: &TestCert) -> SmtpScript {
    closed(&format!("mx.{domain}"), domain)
        .starttls(cert.server_config().expect("server TLS config"))
        .auth_after_tls("PLAIN LOGIN")
}

// ---------------------------------------------------------------------------
// Open relay, catch-all, recipient validation, null sender, postmaster

/// The issue's "done when": an audit (the real runner) of a domain whose MX is
/// an open relay reports it with every accepted form.
#[tokio::test(flavor = "multi_thread")]
async fn open_relay_reports_all_sixteen_forms() {
    let domain = "open.test";
    let script = SmtpScript::new("mx.open.test")
        .rcpt("postmaster@open.test", "250 2.1.5 Ok")
        .rcpt("*@open.test", "550 5.1.1 User unknown")
        .rcpt_default("250 2.1.5 Ok");
    let s = Scenario::start(domain, ip(1), script, "").await;
    let out = runner::run(
        std::slice::from_ref(&s.plugin),
        &[target(domain, None)],
        &s.dns,
        policy(),
        &RunOptions::default(),
    )
    .await;
    let relay = out
        .findings
        .iter()
        .find(|f| f.code == "smtp.open_relay")
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert_eq!(relay.subject, s.subject());
    assert_eq!(relay.severity, mxaudit_core::Severity::Critical);
    assert!(
        relay.title.contains("open relay") && !relay.title.contains("unconfirmed"),
        "{}",
        relay.title
    );
    assert!(relay.detail.contains("16 of 16"), "{}", relay.detail);
    assert_eq!(relay.evidence.len(), 16, "{:#?}", relay.evidence);
    assert!(relay.evidence.iter().any(|e| e.starts_with(
        "user%foreign@[IP]: MAIL FROM:<antispam@[127.77.0.1]> → 250 2.1.0 Ok; RCPT TO:<relaytest%example.net@[127.77.0.1]> → 250 2.1.5 Ok"
    )), "{:#?}", relay.evidence);
    assert!(
        relay
            .evidence
            .iter()
            .any(|e| e.contains("RCPT TO:<@mx.open.test:relaytest@example.net>"))
    );
    let mut found: Vec<&str> = out.findings.iter().map(|f| f.code.as_str()).collect();
    found.sort_unstable();
    assert_eq!(found, ["smtp.open_relay", "smtp.starttls_missing"]);
    assert_eq!(out.checks[0].status, CheckStatus::Fail);

    assert_polite(&s);
    let log = &s.sessions()[0];
    assert_ends_with_rset_quit(log);
    // RSET before each of the 3 local and 16 relay tests, and one at the end.
    assert_eq!(log.verbs().iter().filter(|v| *v == "RSET").count(), 20);
    assert_eq!(log.verbs().iter().filter(|v| *v == "RCPT").count(), 19);
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_only_for_the_percent_hack() {
    let domain = "pct.test";
    let script = closed("mx.pct.test", domain).rcpt("*%*", "250 2.1.5 Ok");
    let s = Scenario::start(domain, ip(2), script, "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.open_relay", "smtp.starttls_missing"]);
    let o = obs(&report, "smtp.open_relay");
    assert_eq!(
        var(o, "forms"),
        "user%foreign@[IP], user%foreign@host, \"user%foreign\""
    );
    assert_eq!(var(o, "accepted"), 3);
    assert_eq!(var(o, "tried"), 16);
    assert_eq!(var(o, "confidence"), "high");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_polite(&s);
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_relay_without_tls_reports_only_starttls_missing() {
    let domain = "closed.test";
    let s = Scenario::start(domain, ip(3), closed("mx.closed.test", domain), "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.starttls_missing"]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_polite(&s);
    assert_ends_with_rset_quit(&s.sessions()[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_all_is_reported_with_low_confidence() {
    let domain = "catchall.test";
    let script = SmtpScript::new("mx.catchall.test").rcpt_default("250 2.1.5 Ok");
    let s = Scenario::start(domain, ip(4), script, "").await;
    let report = s.check().await;
    assert_eq!(
        codes(&report),
        [
            "smtp.open_relay",
            "smtp.recipient_not_validated",
            "smtp.starttls_missing"
        ]
    );
    let relay = obs(&report, "smtp.open_relay");
    assert_eq!(var(relay, "confidence"), "low");
    assert_eq!(var(relay, "catch_all"), true);
    assert!(relay
        .evidence
        .iter()
        .any(|e| e.contains("nonexistent local recipient") && e.contains("mxaudit-nosuchuser-")));
    let unknown = obs(&report, "smtp.recipient_not_validated");
    assert!(
        var(unknown, "recipient")
            .as_str()
            .is_some_and(|r| r.starts_with("mxaudit-nosuchuser-") && r.ends_with("@catchall.test"))
    );
    // The text says the verdict is unconfirmed.
    let f = TextRenderer::new(Lang::En).finding(&s.plugin.meta, domain, relay, None);
    assert!(
        f.title.contains("unconfirmed") && f.detail.contains("confidence low"),
        "{f:#?}"
    );
    assert_polite(&s);
}

#[tokio::test(flavor = "multi_thread")]
async fn null_sender_rejected() {
    let domain = "nonull.test";
    let script = closed("mx.nonull.test", domain).mail("", "550 5.7.1 Null sender not accepted");
    let s = Scenario::start(domain, ip(5), script, "").await;
    let report = s.check().await;
    assert_eq!(
        codes(&report),
        ["smtp.null_sender_rejected", "smtp.starttls_missing"]
    );
    let o = obs(&report, "smtp.null_sender_rejected");
    assert_eq!(var(o, "stage"), "MAIL FROM");
    assert_eq!(var(o, "reply"), "550 5.7.1 Null sender not accepted");
    assert_polite(&s);
}

#[tokio::test(flavor = "multi_thread")]
async fn postmaster_rejected() {
    let domain = "nopm.test";
    let script =
        SmtpScript::new("mx.nopm.test").rcpt_default("550 5.7.1 Client was not authenticated");
    let s = Scenario::start(domain, ip(6), script, "").await;
    let report = s.check().await;
    assert_eq!(
        codes(&report),
        ["smtp.postmaster_rejected", "smtp.starttls_missing"]
    );
    let o = obs(&report, "smtp.postmaster_rejected");
    assert_eq!(var(o, "recipient"), "postmaster@nopm.test");
    assert_eq!(var(o, "reply"), "550 5.7.1 Client was not authenticated");
    assert_polite(&s);
}

/// RFC 4954 §6: 530 ends the relay probe (as in nmap); it is not an open relay.
#[tokio::test(flavor = "multi_thread")]
async fn authentication_required_stops_the_relay_probe() {
    let domain = "auth.test";
    let script = SmtpScript::new("mx.auth.test")
        .rcpt("postmaster@auth.test", "250 2.1.5 Ok")
        .rcpt("*@auth.test", "550 5.1.1 User unknown")
        .rcpt_default("530 5.7.0 Authentication required");
    let s = Scenario::start(domain, ip(7), script, "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.starttls_missing"]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // 3 local tests, then the first relay form got 530 and the probe stopped.
    let log = &s.sessions()[0];
    assert_eq!(log.verbs().iter().filter(|v| *v == "RCPT").count(), 4);
    assert_ends_with_rset_quit(log);
}

/// The HELO fallback (RFC 5321 §4.1.1.1) keeps the probe going where nmap stops.
#[tokio::test(flavor = "multi_thread")]
async fn helo_fallback_when_ehlo_is_refused() {
    let domain = "helo.test";
    let script = SmtpScript::new("mx.helo.test")
        .ehlo_reply("502 5.5.2 Error: command not recognized")
        .rcpt_default("250 2.1.5 Ok");
    let s = Scenario::start(domain, ip(8), script, "").await;
    let report = s.check().await;
    assert_eq!(
        codes(&report),
        [
            "smtp.open_relay",
            "smtp.recipient_not_validated",
            "smtp.starttls_missing"
        ]
    );
    let verbs = s.sessions()[0].verbs();
    assert_eq!(
        verbs.get(..2),
        Some(&["EHLO".to_owned(), "HELO".to_owned()][..])
    );
}

/// Multi-line replies sent in separate segments are read whole (RFC 5321 §4.2):
/// a line-at-a-time reader (nmap's) takes the second line of the MAIL reply as
/// the RCPT reply and reports this closed server as an open relay.
#[tokio::test(flavor = "multi_thread")]
async fn split_multiline_replies_are_read_whole() {
    let domain = "split.test";
    let script = closed("mx.split.test", domain)
        .mail("*", "250-2.1.0 Sender ok\r\n250 2.1.0 Ok")
        .line_pause(Duration::from_millis(150));
    let s = Scenario::start(domain, ip(9), script, "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.starttls_missing"]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

// ---------------------------------------------------------------------------
// STARTTLS and certificates

#[tokio::test(flavor = "multi_thread")]
async fn starttls_with_a_valid_private_ca_certificate_is_clean() {
    let domain = "tls-ok.test";
    let (ca, _ca_dir, ca_param) = private_ca("ok");
    let cert = ca
        .issue(&["mx.tls-ok.test"], Validity::Current)
        .expect("cert");
    let s = Scenario::start(domain, ip(10), tls_script(domain, &cert), &ca_param).await;
    let report = s.check().await;
    assert_eq!(
        codes(&report),
        Vec::<&str>::new(),
        "{:#?}",
        report.observations
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let log = &s.sessions()[0];
    assert!(log.tls, "{:?}", log.lines);
    // Everything after STARTTLS went through TLS: EHLO, the 19 tests, RSET, QUIT.
    assert!(log.lines_in_tls >= 1 + 19 * 3 + 2, "{}", log.lines_in_tls);
    assert_ends_with_rset_quit(log);
    assert_polite(&s);
}

#[tokio::test(flavor = "multi_thread")]
async fn private_ca_unknown_without_ca_files() {
    let domain = "tls-noca.test";
    let ca = TestCa::new("unknown CA").expect("CA");
    let cert = ca
        .issue(&["mx.tls-noca.test"], Validity::Current)
        .expect("cert");
    let s = Scenario::start(domain, ip(11), tls_script(domain, &cert), "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.cert_self_signed"]);
    let o = obs(&report, "smtp.cert_self_signed");
    assert_eq!(var(o, "self_signed"), false);
    assert!(
        var(o, "reason")
            .as_str()
            .is_some_and(|r| r.starts_with("unknown issuer")),
        "{o:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_certificate() {
    let domain = "tls-expired.test";
    let (ca, _ca_dir, ca_param) = private_ca("expired");
    let cert = ca
        .issue(&["mx.tls-expired.test"], Validity::Expired)
        .expect("cert");
    let s = Scenario::start(domain, ip(12), tls_script(domain, &cert), &ca_param).await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.cert_expired"]);
    let o = obs(&report, "smtp.cert_expired");
    assert_eq!(var(o, "state"), "expired");
    assert_eq!(var(o, "not_after"), "2021-01-01T00:00:00Z");
    assert_eq!(var(o, "which"), "the server certificate");
    assert!(
        o.evidence.iter().any(|e| e.starts_with("TLSv1.3 TLS13_")),
        "{:?}",
        o.evidence
    );
    assert!(
        o.evidence.iter().any(|e| e.contains(
            "subject: CN=mx.tls-expired.test; SAN: mx.tls-expired.test; issuer: CN=mxaudit test CA"
        )),
        "{:?}",
        o.evidence
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_expiring_soon() {
    let domain = "tls-soon.test";
    let (ca, _ca_dir, ca_param) = private_ca("soon");
    let cert = ca
        .issue(
            &["mx.tls-soon.test"],
            Validity::ExpiresIn(Duration::from_secs(5 * 86_400 + 3600)),
        )
        .expect("cert");
    let s = Scenario::start(domain, ip(13), tls_script(domain, &cert), &ca_param).await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.cert_expiring"]);
    assert_eq!(var(obs(&report, "smtp.cert_expiring"), "days_left"), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn self_signed_certificate() {
    let domain = "tls-self.test";
    let cert = certs::self_signed(&["mx.tls-self.test"], Validity::Current).expect("cert");
    let s = Scenario::start(domain, ip(14), tls_script(domain, &cert), "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.cert_self_signed"]);
    let o = obs(&report, "smtp.cert_self_signed");
    assert_eq!(var(o, "self_signed"), true);
    assert_eq!(var(o, "issuer"), "CN=mx.tls-self.test");
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_for_another_name() {
    let domain = "tls-name.test";
    let (ca, _ca_dir, ca_param) = private_ca("name");
    let cert = ca
        .issue(&["www.example.org"], Validity::Current)
        .expect("cert");
    let s = Scenario::start(domain, ip(15), tls_script(domain, &cert), &ca_param).await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.cert_name_mismatch"]);
    let o = obs(&report, "smtp.cert_name_mismatch");
    assert_eq!(var(o, "names"), "mx.tls-name.test");
    assert_eq!(var(o, "cert_names"), "www.example.org");
}

/// webpki stops at the first problem; each is checked separately, so an
/// expired, self-signed certificate for the wrong name gets all three codes.
#[tokio::test(flavor = "multi_thread")]
async fn every_certificate_problem_is_reported() {
    let domain = "tls-all.test";
    let cert = certs::self_signed(&["wrong.example"], Validity::Expired).expect("cert");
    let s = Scenario::start(domain, ip(16), tls_script(domain, &cert), "").await;
    let report = s.check().await;
    assert_eq!(
        codes(&report),
        [
            "smtp.cert_expired",
            "smtp.cert_name_mismatch",
            "smtp.cert_self_signed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_offered_before_starttls() {
    let domain = "tls-auth.test";
    let (ca, _ca_dir, ca_param) = private_ca("auth");
    let cert = ca
        .issue(&["mx.tls-auth.test"], Validity::Current)
        .expect("cert");
    let script = tls_script(domain, &cert).auth_before_tls("PLAIN LOGIN");
    let s = Scenario::start(domain, ip(17), script, &ca_param).await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.auth_plaintext"]);
    assert_eq!(
        var(obs(&report, "smtp.auth_plaintext"), "mechanisms"),
        "PLAIN LOGIN"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_refused_with_454() {
    let domain = "tls-454.test";
    let (ca, _ca_dir, ca_param) = private_ca("454");
    let cert = ca
        .issue(&["mx.tls-454.test"], Validity::Current)
        .expect("cert");
    let script = tls_script(domain, &cert)
        .starttls_reply("454 4.7.0 TLS not available due to local problem");
    let s = Scenario::start(domain, ip(18), script, &ca_param).await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.starttls_failed"]);
    assert!(
        var(obs(&report, "smtp.starttls_failed"), "reason")
            .as_str()
            .is_some_and(|r| r.contains("454 4.7.0")),
    );
    // The session went on in plaintext, as RFC 3207 §4 allows.
    assert_ends_with_rset_quit(&s.sessions()[0]);
}

/// Plaintext after "220 Ready to start TLS" is discarded and reported
/// (RFC 3207 §4.2; the CVE-2011-0411 class).
#[tokio::test(flavor = "multi_thread")]
async fn starttls_plaintext_injection_remnant() {
    let domain = "tls-inject.test";
    let (ca, _ca_dir, ca_param) = private_ca("inject");
    let cert = ca
        .issue(&["mx.tls-inject.test"], Validity::Current)
        .expect("cert");
    let script = tls_script(domain, &cert).after_starttls_ready(b"250 injected\r\n");
    let s = Scenario::start(domain, ip(19), script, &ca_param).await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.starttls_injection"]);
    assert_eq!(
        var(obs(&report, "smtp.starttls_injection"), "bytes"),
        "250 injected\\r\\n"
    );
}

/// A handshake that never ends times out; the relay tests then run in a
/// second, plaintext session (opportunistic senders fall back the same way).
#[tokio::test(flavor = "multi_thread")]
async fn tls_handshake_that_never_ends() {
    let domain = "tls-stall.test";
    let (ca, _ca_dir, ca_param) = private_ca("stall");
    let cert = ca
        .issue(&["mx.tls-stall.test"], Validity::Current)
        .expect("cert");
    let script = tls_script(domain, &cert).stall_tls();
    let s = Scenario::start(domain, ip(20), script, &ca_param).await;
    let started = Instant::now();
    let report = s.check().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(codes(&report), ["smtp.timeout"]);
    assert_eq!(var(obs(&report, "smtp.timeout"), "stage"), "TLS handshake");
    let sessions = s.sessions();
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    assert!(!sessions[1].verbs().contains(&"STARTTLS".to_owned()));
    assert_ends_with_rset_quit(&sessions[1]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

// ---------------------------------------------------------------------------
// Connection outcomes and hostile servers

#[tokio::test(flavor = "multi_thread")]
async fn greeting_421() {
    let domain = "g421.test";
    let script = SmtpScript::new("mx.g421.test").greeting(Greeting::Reply(
        "421 4.3.2 Service not available, closing channel".into(),
    ));
    let s = Scenario::start(domain, ip(21), script, "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.greeting_error"]);
    let o = obs(&report, "smtp.greeting_error");
    assert_eq!(var(o, "stage"), "greeting");
    assert_eq!(
        var(o, "reply"),
        "421 4.3.2 Service not available, closing channel"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn greeting_554_with_invalid_utf8_is_escaped() {
    let domain = "g554.test";
    let script = SmtpScript::new("mx.g554.test").greeting(Greeting::Raw(
        b"554 5.7.1 \xff\xfe blocked \x1b[31m\r\n".to_vec(),
    ));
    let s = Scenario::start(domain, ip(22), script, "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.greeting_error"]);
    let o = obs(&report, "smtp.greeting_error");
    assert_eq!(var(o, "reply"), "554 5.7.1 \\xff\\xfe blocked \\x1b[31m");
    // RFC 5321 §3.1: after a 554 greeting the client sends QUIT.
    assert_eq!(s.sessions()[0].verbs(), ["QUIT"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_after_ehlo() {
    let domain = "drop.test";
    let script = SmtpScript::new("mx.drop.test").drop_after("EHLO");
    let s = Scenario::start(domain, ip(23), script, "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.dropped"]);
    let o = obs(&report, "smtp.dropped");
    assert_eq!(var(o, "stage"), "EHLO");
    assert!(
        o.evidence.iter().any(|e| e.starts_with("C: EHLO [127.")),
        "{:?}",
        o.evidence
    );
    // The relay question stays open: that is an error, not a pass.
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("open-relay probe incomplete")),
        "{:?}",
        report.errors
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn never_greeting_tarpit_times_out() {
    let domain = "tarpit.test";
    let script = SmtpScript::new("mx.tarpit.test").greeting(Greeting::Never);
    let s = Scenario::start(domain, ip(24), script, "").await;
    let started = Instant::now();
    let report = s.check().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(codes(&report), ["smtp.timeout"]);
    assert_eq!(var(obs(&report, "smtp.timeout"), "stage"), "greeting");
}

/// A tarpit that greets within the limit is waited out and reported as info;
/// the rest of the probe runs normally.
#[tokio::test(flavor = "multi_thread")]
async fn slow_greeting_is_waited_out() {
    let domain = "slow.test";
    let script = closed("mx.slow.test", domain).greeting_delay(Duration::from_millis(900));
    let s = Scenario::start(domain, ip(25), script, "").await;
    let report = s.check().await;
    assert_eq!(
        codes(&report),
        ["smtp.slow_greeting", "smtp.starttls_missing"]
    );
    let o = obs(&report, "smtp.slow_greeting");
    assert_eq!(var(o, "threshold"), "400ms");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_ends_with_rset_quit(&s.sessions()[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_port() {
    let domain = "refused.test";
    let address = ip(26);
    let port = {
        let l = std::net::TcpListener::bind((address, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    let s = Scenario::with(domain, IpAddr::V4(address), port, None, "").await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.connection_refused"]);
    assert_eq!(
        report.observations[0].subject,
        format!("mx.refused.test {address}:{port}")
    );
}

/// TCP to a multicast address fails at once with "network unreachable" (Linux).
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_address() {
    let s = Scenario::with(
        "unreach.test",
        "224.0.0.1".parse().expect("ip"),
        2525,
        None,
        "",
    )
    .await;
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.unreachable"]);
}

/// A domain without MX records receives mail at its own address (RFC 5321
/// §5.1, implicit MX): that is what senders reach, so that is what is probed.
#[tokio::test(flavor = "multi_thread")]
async fn implicit_mx_is_probed() {
    let domain = "implicit.test";
    let address = ip(36);
    let server = SmtpServer::start(
        SocketAddr::from((address, 0)),
        closed("implicit.test", domain),
    )
    .await
    .expect("server");
    let dns_server = DnsServer::start(&[ZoneText {
        origin: format!("{domain}."),
        text: format!(
            "$ORIGIN {domain}.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n@ IN A {address}\n"
        ),
    }])
    .await
    .expect("dns");
    let s = Scenario {
        domain: domain.to_owned(),
        dns: dns_client(dns_server.addr()),
        _dns_server: dns_server,
        plugin: smtp_plugin(server.port(), ""),
        scope: std::sync::Arc::new(mxaudit_core::RunScope::default()),
        server: Some(server),
    };
    let report = s.check().await;
    assert_eq!(codes(&report), ["smtp.starttls_missing"]);
    assert_eq!(
        report.observations[0].subject,
        format!(
            "implicit.test {}",
            s.server.as_ref().expect("server").addr()
        )
    );
    assert_ends_with_rset_quit(&s.sessions()[0]);
}

/// Hostile servers end within the budget with smtp.dropped or smtp.timeout.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_servers_end_within_budget() {
    let cases: Vec<(&str, u8, SmtpScript, &str, &str)> = vec![
        (
            "endless-line.test",
            27,
            SmtpScript::new("x").greeting(Greeting::EndlessLine),
            "smtp.dropped",
            "longer than 1000 octets",
        ),
        (
            "million-lines.test",
            28,
            SmtpScript::new("x").greeting(Greeting::EndlessReply),
            "smtp.dropped",
            "more than 100 lines",
        ),
        (
            "garbage.test",
            29,
            SmtpScript::new("x").greeting(Greeting::Raw(b"\x16\x03\x01 hello?\r\n".to_vec())),
            "smtp.dropped",
            "not an SMTP reply line",
        ),
        (
            "garbage-ehlo.test",
            30,
            SmtpScript::new("mx.garbage-ehlo.test")
                .raw_reply("EHLO", b"HTTP/1.1 400 Bad Request\r\n"),
            "smtp.dropped",
            "not an SMTP reply line",
        ),
        (
            "drip.test",
            31,
            SmtpScript::new("mx.drip.test").reply_delay(Duration::from_secs(10)),
            "smtp.timeout",
            "EHLO",
        ),
    ];
    let started = Instant::now();
    let mut scenarios = Vec::new();
    for (domain, last, script, _, _) in cases.iter().cloned() {
        scenarios.push(Scenario::start(domain, ip(last), script, "").await);
    }
    let reports = futures::future::join_all(scenarios.iter().map(Scenario::check)).await;
    for ((domain, _, _, code, says), report) in cases.iter().zip(&reports) {
        assert_eq!(
            codes(report),
            [*code],
            "{domain}: {:#?}",
            report.observations
        );
        let o = obs(report, code);
        let text = format!("{:?} {:?}", o.vars, o.evidence);
        assert!(text.contains(says), "{domain}: {text}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Safety and budgets

/// Without --allow-target, loopback MX addresses are never connected to; the
/// status says why the check could not decide.
#[tokio::test(flavor = "multi_thread")]
async fn address_policy_refusal_is_reported_not_probed() {
    let domain = "policy.test";
    let s = Scenario::start(domain, ip(32), closed("mx.policy.test", domain), "").await;
    let out = runner::run(
        std::slice::from_ref(&s.plugin),
        &[target(domain, None)],
        &s.dns,
        Arc::new(AddressPolicy::new(Vec::new())),
        &RunOptions::default(),
    )
    .await;
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert_eq!(out.checks[0].status, CheckStatus::Error);
    let detail = out.checks[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("not probed")
            && detail.contains("127.77.0.32")
            && detail.contains("loopback"),
        "{detail}"
    );
    assert!(
        s.sessions().is_empty(),
        "connected anyway: {:?}",
        s.sessions()
    );
}

/// When the check's own time runs out before the probe's limits, the result is
/// "undecided" (status error), never a timeout finding about the server.
#[tokio::test(flavor = "multi_thread")]
async fn task_deadline_is_undecided_not_a_finding() {
    let domain = "deadline.test";
    let script = SmtpScript::new("mx.deadline.test").greeting(Greeting::Never);
    let s = Scenario::start(domain, ip(33), script, "greeting_timeout = \"30s\"").await;
    let out = runner::run(
        std::slice::from_ref(&s.plugin),
        &[target(domain, None)],
        &s.dns,
        policy(),
        &RunOptions {
            task_timeout: Duration::from_millis(1500),
            ..RunOptions::default()
        },
    )
    .await;
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert_eq!(out.checks[0].status, CheckStatus::Error);
    let detail = out.checks[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("undecided") && detail.contains("greeting"),
        "{detail}"
    );
}

/// Two plugins probing the same address never overlap (one session at a time
/// per address), and wait the polite delay between sessions.
#[tokio::test(flavor = "multi_thread")]
async fn one_session_at_a_time_per_address() {
    let domain = "pace.test";
    let script = closed("mx.pace.test", domain).greeting_delay(Duration::from_millis(300));
    let s = Scenario::start(domain, ip(34), script, "session_delay = \"500ms\"").await;
    let port = s.server.as_ref().expect("server").port();
    let second = smtp_plugin_named("smtp-2", port, "session_delay = \"500ms\"");
    let started = Instant::now();
    let (a, b) = tokio::join!(s.check(), s.check_with(&second));
    let took = started.elapsed();
    assert_eq!(codes(&a), codes(&b));
    // Two sessions of ≥ 300 ms each, in turn, with ≥ 500 ms between them.
    assert!(took >= Duration::from_millis(1100), "{took:?}");
    assert_eq!(s.sessions().len(), 2);
}

/// Within one run, a plugin's probe of a domain is shared by every asker (the
/// check itself, the relay-config review through the check context): the
/// server sees one session, not one per asker.
#[tokio::test(flavor = "multi_thread")]
async fn one_probe_per_run_and_domain_whoever_asks() {
    let domain = "shared.test";
    let script = closed("mx.shared.test", domain);
    let s = Scenario::start(domain, ip(61), script, "").await;
    let (a, b) = tokio::join!(s.check(), s.check());
    assert_eq!(codes(&a), codes(&b));
    assert_eq!(s.sessions().len(), 1);
    // A new run (a new DNS client, as each run has) probes again.
    let mut next = Scenario::with(
        domain,
        IpAddr::V4(ip(61)),
        s.server.as_ref().expect("server").port(),
        None,
        "",
    )
    .await;
    next.scope = s.scope.clone();
    next.check().await;
    assert_eq!(s.sessions().len(), 2);
}

// ---------------------------------------------------------------------------
// The CLI's single-host probe

#[tokio::test(flavor = "multi_thread")]
async fn probe_host_returns_an_escaped_transcript() {
    let address = ip(35);
    let (ca, ca_dir, _) = private_ca("probe-host");
    let cert = ca.issue(&["127.77.0.35"], Validity::Current).expect("cert");
    let script = SmtpScript::new("mx.probe.test")
        .greeting(Greeting::Reply(
            "220 mx.probe.test ESMTP \u{202e}tset\x07".into(),
        ))
        .starttls(cert.server_config().expect("tls"))
        .rcpt("postmaster@probe.test", "250 2.1.5 Ok")
        .rcpt_default("550 5.7.1 Relaying denied");
    let server = SmtpServer::start(SocketAddr::from((address, 0)), script)
        .await
        .expect("server");
    let dns_server = DnsServer::start(&[zone("probe.test", IpAddr::V4(address))])
        .await
        .expect("dns");
    let dns = dns_client(dns_server.addr());
    let opts = mxaudit_checks::smtp::SmtpOptions {
        ca_files: vec![ca_dir.path().join("ca.pem")],
        greeting_timeout: Duration::from_secs(2),
        slow_greeting: Duration::from_secs(1),
        command_timeout: Duration::from_secs(1),
        session_delay: Duration::ZERO,
        ..Default::default()
    };
    let cx = CheckCx::new(
        dns.clone(),
        policy(),
        std::time::Instant::now() + Duration::from_secs(60),
    );
    let out = mxaudit_checks::smtp::probe_host(
        &address.to_string(),
        server.port(),
        Some("probe.test"),
        &opts,
        &cx,
    )
    .await;
    let text = mxaudit_agent::view::smtp::text(&out);
    assert!(
        text.contains("S: 220 mx.probe.test ESMTP \\u{202e}tset\\x07"),
        "{text}"
    );
    assert!(text.contains("C: EHLO [127."), "{text}");
    assert!(text.contains("C: STARTTLS"), "{text}");
    assert!(text.contains("-- TLS established: TLSv1.3"), "{text}");
    assert!(text.contains("C: MAIL FROM:<>"), "{text}");
    assert!(
        text.contains("C: RCPT TO:<postmaster@probe.test>"),
        "{text}"
    );
    assert!(text.contains("S: 221 2.0.0 Bye"), "{text}");
    assert!(
        !text.contains('\u{202e}') && !text.contains('\x07'),
        "{text}"
    );
    assert!(out.observations.is_empty(), "{:#?}", out.observations);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let json = serde_json::to_value(&out).expect("json");
    assert_eq!(json["sessions"][0]["lines"][0]["speaker"], "note");

    // By name through DNS; a refused address is listed, not probed.
    let strict = CheckCx::new(
        dns.clone(),
        std::sync::Arc::new(AddressPolicy::new(Vec::new())),
        std::time::Instant::now() + Duration::from_secs(60),
    );
    let refused = mxaudit_checks::smtp::probe_host(
        "mx.probe.test",
        server.port(),
        Some("probe.test"),
        &opts,
        &strict,
    )
    .await;
    assert!(refused.sessions.is_empty());
    assert!(
        refused.errors[0].contains("not probed, loopback"),
        "{:?}",
        refused.errors
    );
    assert_eq!(server.sessions().len(), 1);
}

// ---------------------------------------------------------------------------
// A real MTA: Debian's postfix as a closed relay on loopback

fn postfix_binary() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin"])
    {
        let candidate = Path::new(dir).join("postfix");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "postfix is not installed: this test needs Debian's postfix (apt-get install postfix; .ci/run installs it). It is not skipped."
    );
}

/// A postfix instance with its own configuration directory; stopped on drop.
struct Postfix {
    binary: PathBuf,
    dir: PathBuf,
}

impl Postfix {
    fn start(dir: &Path, host: &str, port: u16, cert: &TestCert) -> Postfix {
        let binary = postfix_binary();
        let fill = |name: &str| {
            let template = std::fs::read_to_string(fixture(&format!("smtp/postfix/{name}")))
                .expect("postfix template");
            let text = template
                .replace("{DIR}", &dir.display().to_string())
                .replace("{HOST}", host)
                .replace("{PORT}", &port.to_string());
            std::fs::write(dir.join(name), text).expect("write postfix config");
        };
        fill("main.cf");
        fill("master.cf");
        std::fs::create_dir_all(dir.join("queue")).expect("queue dir");
        cert.write(dir).expect("write certificate");
        let out = Command::new(&binary)
            .arg("-c")
            .arg(dir)
            .arg("start")
            .output()
            .expect("postfix runs");
        let pf = Postfix {
            binary,
            dir: dir.to_owned(),
        };
        assert!(
            out.status.success(),
            "postfix -c {} start failed ({}): {}{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            pf.log()
        );
        pf
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.dir)
            .arg("stop")
            .output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postfix_closed_relay() {
    let dir = TempDir::new("postfix");
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (ca, _ca_dir, ca_param) = private_ca("postfix-ca");
    let cert = ca
        .issue(&["mx.postfix.test"], Validity::Current)
        .expect("cert");
    let postfix = Postfix::start(dir.path(), "mx.postfix.test", port, &cert);
    // Postfix's master opens the listener when it has started; wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "postfix does not listen on {port}:\n{}",
            postfix.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = Scenario::with(
        "postfix.test",
        "127.0.0.1".parse().expect("ip"),
        port,
        None,
        &format!("{ca_param}\ncommand_timeout = \"5s\"\nsession_budget = \"60s\""),
    )
    .await;
    let report = s.check().await;
    assert_eq!(
        codes(&report),
        Vec::<&str>::new(),
        "{:#?}\n{}",
        report.observations,
        postfix.log()
    );
    assert!(
        report.errors.is_empty(),
        "{:?}\n{}",
        report.errors,
        postfix.log()
    );
    // Postfix saw the whole probe inside TLS, deferred every relay form, rejected
    // the unknown recipient, and never got DATA. Its log is written by postlogd
    // a moment later: wait for the session's disconnect line.
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = postfix.log();
        if log.contains("starttls=1") || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(log.contains("Relay access denied"), "{log}");
    assert!(
        log.contains("User unknown") || log.contains("5.1.1"),
        "{log}"
    );
    assert!(log.contains("disconnect from"), "{log}");
    assert!(!log.contains("data="), "{log}");
    assert!(log.contains("starttls=1"), "{log}");
    drop(postfix);
}

// ---------------------------------------------------------------------------
// nmap comparison (docs/smtp.md): run by hand, needs Debian's nmap
//   cargo test -p mxaudit --test e2e smtp::nmap_comparison -- --ignored --nocapture

/// nmap's one-line verdict for `address:port`.
fn nmap_verdict(address: IpAddr, port: u16) -> String {
    let out = Command::new("nmap")
        .args(["-n", "-Pn", "-sT", "-vv", "-p", &port.to_string()])
        .args(["--script", "+smtp-open-relay"])
        .args(["--script-args", "smtp-open-relay.domain=example.net"])
        .arg(address.to_string())
        .output()
        .expect("nmap is installed (apt-get install nmap)");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("smtp-open-relay"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    if lines.is_empty() {
        return format!(
            "(no script output) {}",
            text.lines().last().unwrap_or_default()
        );
    }
    lines
        .iter()
        .map(|l| l.trim_start_matches(['|', '_', ' ']).trim())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// mxaudit's verdict on relaying for one report.
fn mxaudit_verdict(report: &CheckReport) -> String {
    let mut parts = Vec::new();
    match report
        .observations
        .iter()
        .find(|o| o.code == "smtp.open_relay")
    {
        Some(o) => parts.push(format!(
            "open relay {}/{} (confidence {}): {}",
            var(o, "accepted"),
            var(o, "tried"),
            var(o, "confidence").as_str().unwrap_or_default(),
            var(o, "forms").as_str().unwrap_or_default()
        )),
        None => parts.push("not an open relay".to_owned()),
    }
    let others: Vec<&str> = codes(report)
        .into_iter()
        .filter(|c| *c != "smtp.open_relay" && *c != "smtp.starttls_missing")
        .collect();
    if !others.is_empty() {
        parts.push(format!("also {}", others.join(", ")));
    }
    if !report.errors.is_empty() {
        parts.push(format!("undecided: {}", report.errors.join("; ")));
    }
    parts.join("; ")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nmap; produces the comparison table of docs/smtp.md"]
async fn nmap_comparison() {
    let cases: Vec<(&str, &str, SmtpScript, &str)> = vec![
        (
            "open relay (validates local recipients)",
            "nm-open.test",
            SmtpScript::new("mx.nm-open.test")
                .rcpt("postmaster@nm-open.test", "250 2.1.5 Ok")
                .rcpt("*@nm-open.test", "550 5.1.1 User unknown")
                .rcpt_default("250 2.1.5 Ok"),
            "",
        ),
        (
            "relays only the % hack",
            "nm-pct.test",
            closed("mx.nm-pct.test", "nm-pct.test").rcpt("*%*", "250 2.1.5 Ok"),
            "",
        ),
        (
            "closed relay",
            "nm-closed.test",
            closed("mx.nm-closed.test", "nm-closed.test"),
            "",
        ),
        (
            "catch-all (accepts every RCPT, would refuse at DATA)",
            "nm-catch.test",
            SmtpScript::new("mx.nm-catch.test").rcpt_default("250 2.1.5 Ok"),
            "",
        ),
        (
            "closed, multi-line MAIL reply sent in two segments",
            "nm-split.test",
            closed("mx.nm-split.test", "nm-split.test")
                .mail("*", "250-2.1.0 Sender ok\r\n250 2.1.0 Ok")
                .line_pause(Duration::from_millis(300)),
            "",
        ),
        (
            "open relay that speaks HELO only (EHLO → 502)",
            "nm-helo.test",
            SmtpScript::new("mx.nm-helo.test")
                .ehlo_reply("502 5.5.2 Error: command not recognized")
                .rcpt("postmaster@nm-helo.test", "250 2.1.5 Ok")
                .rcpt("*@nm-helo.test", "550 5.1.1 User unknown")
                .rcpt_default("250 2.1.5 Ok"),
            "",
        ),
        (
            "open relay behind a 25 s greeting tarpit",
            "nm-tarpit.test",
            SmtpScript::new("mx.nm-tarpit.test")
                .greeting_delay(Duration::from_secs(25))
                .rcpt("postmaster@nm-tarpit.test", "250 2.1.5 Ok")
                .rcpt("*@nm-tarpit.test", "550 5.1.1 User unknown")
                .rcpt_default("250 2.1.5 Ok"),
            "greeting_timeout = \"60s\"\nslow_greeting = \"10s\"",
        ),
        (
            "relay needs authentication (530)",
            "nm-auth.test",
            SmtpScript::new("mx.nm-auth.test")
                .rcpt("postmaster@nm-auth.test", "250 2.1.5 Ok")
                .rcpt("*@nm-auth.test", "550 5.1.1 User unknown")
                .rcpt_default("530 5.7.0 Authentication required"),
            "",
        ),
        (
            "closed, refusal text contains \"530\"",
            "nm-530text.test",
            closed("mx.nm-530text.test", "nm-530text.test")
                .rcpt_default("554 5.7.1 Relay denied (policy 530-b)"),
            "",
        ),
    ];
    let mut rows = Vec::new();
    for (i, (label, domain, script, params)) in cases.into_iter().enumerate() {
        let address = Ipv4Addr::new(127, 77, 1, u8::try_from(i + 1).expect("few cases"));
        let params = format!("{params}\ncommand_timeout = \"5s\"\nsession_budget = \"60s\"");
        let s = Scenario::start(domain, address, script, &params).await;
        let port = s.server.as_ref().map(SmtpServer::port).unwrap_or_default();
        let nmap = tokio::task::spawn_blocking(move || nmap_verdict(IpAddr::V4(address), port))
            .await
            .expect("nmap task");
        let ours = mxaudit_verdict(&s.check().await);
        rows.push(format!("| {label} | {nmap} | {ours} |"));
    }

    // The real MTA.
    let dir = TempDir::new("postfix-nmap");
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (ca, _ca_dir, ca_param) = private_ca("postfix-nmap-ca");
    let cert = ca
        .issue(&["mx.postfix.test"], Validity::Current)
        .expect("cert");
    let postfix = Postfix::start(dir.path(), "mx.postfix.test", port, &cert);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let nmap =
        tokio::task::spawn_blocking(move || nmap_verdict("127.0.0.1".parse().expect("ip"), port))
            .await
            .expect("nmap task");
    let s = Scenario::with(
        "postfix.test",
        "127.0.0.1".parse().expect("ip"),
        port,
        None,
        &format!("{ca_param}\ncommand_timeout = \"5s\"\nsession_budget = \"60s\""),
    )
    .await;
    let ours = mxaudit_verdict(&s.check().await);
    rows.push(format!(
        "| Debian postfix 3.7, closed relay (defer_unauth_destination) | {nmap} | {ours} |"
    ));
    drop(postfix);

    println!("| server | nmap --script smtp-open-relay | mxaudit smtp |\n|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

// ---------------------------------------------------------------------------
// `mxaudit smtp HOST:PORT`, the real binary

#[tokio::test(flavor = "multi_thread")]
async fn smtp_command_probes_one_host() {
    let address = ip(61);
    let script = SmtpScript::new("relay.cli.test").rcpt_default("250 2.1.5 Ok");
    let server = SmtpServer::start(SocketAddr::from((address, 0)), script)
        .await
        .expect("server");
    let target = format!("{address}:{}", server.port());
    let run = |extra: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"));
        cmd.args(["smtp", &target, "--format", "json"]).args(extra);
        cmd
    };
    // Loopback is refused unless allowed: nothing is probed, exit 3.
    let refused = run(&[]).output().await.expect("runs");
    assert_eq!(
        refused.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(
        server.sessions().is_empty(),
        "no connection to a refused address"
    );
    let out = run(&["--allow-target", "127.0.0.0/8"])
        .output()
        .await
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let codes: Vec<&str> = v["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter_map(|o| o["code"].as_str())
        .collect();
    assert!(codes.contains(&"smtp.open_relay"), "{codes:?}");
    assert!(!v["sessions"].as_array().expect("sessions").is_empty());
    assert_eq!(server.data_attempts(), 0, "DATA is never sent");
}
