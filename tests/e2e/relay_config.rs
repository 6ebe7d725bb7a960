//! The relay configuration review against real Postfix instances (Debian's
//! postfix, each with its own configuration directory, on 127.0.0.1 and a
//! free port, delivering nothing): for each setup, `mxaudit relay-config` on
//! that instance's own `postconf -c DIR -n` and `postconf -c DIR -P` output
//! gives the expected codes, and the SMTP probe of the running instance (the
//! smtp engine's `probe_host`) confirms or refutes the review's verdict,
//! through `relay_config::probe::compare`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mxaudit_checks::relay_config::probe::{Agreement, ProbeRelay, compare, mismatch};
use mxaudit_checks::relay_config::{self, Input, Kind, Relay, ReviewOptions};
use mxaudit_checks::smtp::{ProbeTranscript, SmtpOptions, probe_host};
use mxaudit_core::AddressPolicy;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{dns_client, mxaudit};

fn binary(name: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin"])
    {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{name} is not installed: these tests need Debian's postfix (apt-get install postfix; .ci/run installs it). They are not skipped."
    );
}

/// The settings every instance shares: loopback only, the prober
/// (127.0.0.1) outside `mynetworks`, `relay.test` the local domain. Every
/// transport discards: an `error:` transport would make smtpd refuse the
/// foreign recipient itself ("resolves to the error mailer", smtpd_check.c)
/// and hide an open relay from the probe; nothing leaves the machine either
/// way, and the probe never sends DATA. A case appends lines (main.cf: the
/// last definition wins).
const BASE: &str = "\
compatibility_level = 3.6
queue_directory = {DIR}/queue
data_directory = {DIR}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {DIR}/maillog
maillog_file_prefixes = {DIR}
myhostname = mx.relay.test
mydomain = relay.test
myorigin = $myhostname
mydestination = relay.test, $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 192.0.2.1/32
local_recipient_maps = inline:{ postmaster=ok }
alias_maps =
alias_database =
default_transport = discard:mxaudit test instance delivers nothing
relay_transport = discard:mxaudit test instance delivers nothing
local_transport = discard:mxaudit test instance delivers nothing
smtpd_banner = $myhostname ESMTP Postfix (mxaudit relay-config test)
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtpd_error_sleep_time = 0s
biff = no
";

const MASTER: &str = "\
127.0.0.1:{PORT} inet  n       -       n       -       -       smtpd{OPTIONS}
pickup           unix  n       -       n       60      1       pickup
cleanup          unix  n       -       n       -       0       cleanup
qmgr             unix  n       -       n       300     1       qmgr
rewrite          unix  -       -       n       -       -       trivial-rewrite
bounce           unix  -       -       n       -       0       bounce
defer            unix  -       -       n       -       0       bounce
trace            unix  -       -       n       -       0       bounce
verify           unix  -       -       n       -       1       verify
proxymap         unix  -       -       n       -       -       proxymap
error            unix  -       -       n       -       -       error
retry            unix  -       -       n       -       -       error
discard          unix  -       -       n       -       -       discard
anvil            unix  -       -       n       -       1       anvil
scache           unix  -       -       n       -       1       scache
postlog          unix-dgram n  -       n       -       1       postlogd
";

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mxaudit-relay-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running postfix; stopped on drop.
struct Instance {
    dir: TempDir,
    port: u16,
}

impl Instance {
    fn start(name: &str, main_extra: &str, smtpd_options: &[&str]) -> Instance {
        let dir = TempDir::new(name);
        let port = {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
            l.local_addr().expect("addr").port()
        };
        let d = dir.0.display().to_string();
        let main = format!("{BASE}{main_extra}").replace("{DIR}", &d);
        let options: String = smtpd_options
            .iter()
            .map(|o| format!("\n  -o {o}"))
            .collect();
        let master = MASTER
            .replace("{PORT}", &port.to_string())
            .replace("{OPTIONS}", &options);
        std::fs::write(dir.0.join("main.cf"), main).expect("main.cf");
        std::fs::write(dir.0.join("master.cf"), master).expect("master.cf");
        std::fs::create_dir_all(dir.0.join("queue")).expect("queue");
        let out = Command::new(binary("postfix"))
            .arg("-c")
            .arg(&dir.0)
            .arg("start")
            .output()
            .expect("postfix runs");
        let instance = Instance { dir, port };
        assert!(
            out.status.success(),
            "postfix start ({name}): {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            instance.log()
        );
        instance
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("maillog")).unwrap_or_default()
    }

    async fn listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "postfix does not listen on {}:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `postconf -c DIR <flag>` written to `postconf<flag>.txt`, as an
    /// administrator exports it.
    fn export(&self, flag: &str) -> PathBuf {
        let out = Command::new(binary("postconf"))
            .arg("-c")
            .arg(&self.dir.0)
            .arg(flag)
            .output()
            .expect("postconf runs");
        assert!(
            out.status.success(),
            "postconf {flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = self.dir.0.join(format!("postconf{flag}.txt"));
        std::fs::write(&path, &out.stdout).expect("export");
        path
    }

    fn service(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn probe(&self) -> ProbeTranscript {
        self.listening().await;
        let opts = SmtpOptions {
            greeting_timeout: Duration::from_secs(5),
            slow_greeting: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            session_delay: Duration::ZERO,
            ..Default::default()
        };
        let policy = AddressPolicy::new(vec!["127.0.0.0/8".parse().expect("net")]);
        // The host is an address: nothing is resolved.
        let dns = dns_client(SocketAddr::from(([127, 0, 0, 1], 9)));
        let cx = mxaudit_core::CheckCx::new(
            dns,
            std::sync::Arc::new(policy),
            std::time::Instant::now() + Duration::from_secs(120),
        );
        probe_host("127.0.0.1", self.port, Some("relay.test"), &opts, &cx).await
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = Command::new(binary("postfix"))
            .arg("-c")
            .arg(&self.dir.0)
            .arg("stop")
            .output();
    }
}

/// `mxaudit relay-config FILES --service 127.0.0.1:PORT --format json`: the
/// verdict and the `code subject` lines, sorted.
fn cli_review(files: &[PathBuf], service: &str) -> (String, Vec<String>, serde_json::Value) {
    let out = mxaudit()
        .arg("relay-config")
        .args(files)
        .args(["--service", service, "--format", "json"])
        .output()
        .expect("mxaudit runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    let relay = json["relay"].as_str().unwrap_or("none").to_owned();
    let mut lines: Vec<String> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["code"].as_str().unwrap_or(""),
                f["subject"].as_str().unwrap_or("")
            )
        })
        .collect();
    lines.sort();
    // Exit status 1 exactly when a finding is high or critical.
    let high = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| matches!(f["severity"].as_str(), Some("high" | "critical")));
    assert_eq!(out.status.code(), Some(i32::from(high)), "{stdout}");
    (relay, lines, json)
}

/// The library review of the same files.
fn library_review(files: &[PathBuf], service: &str) -> relay_config::Review {
    let inputs: Vec<Input> = files
        .iter()
        .map(|p| relay_config::read_input(p, &p.display().to_string()).expect("readable"))
        .collect();
    assert_eq!(Kind::guess_all(&inputs), Ok(Kind::Postfix));
    relay_config::review(
        &inputs,
        Kind::Postfix,
        &ReviewOptions {
            services: vec![service.to_owned()],
            ..ReviewOptions::default()
        },
    )
}

struct Expect<'a> {
    relay: Relay,
    /// `code subject` with `{SVC}` for the service id.
    codes: &'a [&'a str],
    probe: ProbeRelay,
    agreement: Agreement,
    /// smtp codes the probe must report (besides the relay verdict).
    probe_codes: &'a [&'a str],
}

async fn check(instance: &Instance, expect: Expect<'_>) {
    let files = vec![instance.export("-n"), instance.export("-P")];
    let service = instance.service();
    let svc_id = format!("{service}/inet");
    let mut want: Vec<String> = expect
        .codes
        .iter()
        .map(|c| c.replace("{SVC}", &svc_id))
        .collect();
    want.sort();
    let (relay, got, json) = cli_review(&files, &service);
    assert_eq!(
        (relay.as_str(), &got),
        (expect.relay.as_str(), &want),
        "{json:#}\n-n:\n{}\n-P:\n{}",
        std::fs::read_to_string(&files[0]).unwrap_or_default(),
        std::fs::read_to_string(&files[1]).unwrap_or_default()
    );
    let review = library_review(&files, &service);
    assert_eq!(review.relay(), Some(expect.relay));

    let probe = instance.probe().await;
    let verdict = ProbeRelay::from_transcript(&probe);
    assert_eq!(
        verdict,
        expect.probe,
        "{}\n{}",
        shown(&probe),
        instance.log()
    );
    for code in expect.probe_codes {
        assert!(
            probe.observations.iter().any(|o| o.code == *code),
            "{code} missing: {}",
            shown(&probe)
        );
    }
    let agreement = compare(expect.relay, verdict);
    assert_eq!(agreement, expect.agreement);
    // Agreement means no mismatch finding; the tests below make a mismatch.
    assert!(mismatch(expect.relay, verdict, "127.0.0.1").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn default_closed() {
    // Postfix's own default: smtpd_relay_restrictions = permit_mynetworks,
    // permit_sasl_authenticated, defer_unauth_destination.
    let pf = Instance::start("default", "", &[]);
    check(
        &pf,
        Expect {
            relay: Relay::Closed,
            codes: &[],
            probe: ProbeRelay::Refused,
            agreement: Agreement::BothClosed,
            probe_codes: &[],
        },
    )
    .await;
    assert!(pf.log().contains("Relay access denied"), "{}", pf.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn mynetworks_everyone() {
    let pf = Instance::start("mynetworks", "mynetworks = 0.0.0.0/0\n", &[]);
    check(
        &pf,
        Expect {
            relay: Relay::Open,
            codes: &[
                "relay_config.open_relay {SVC}",
                "relay_config.mynetworks_too_wide mynetworks",
            ],
            probe: ProbeRelay::Open,
            agreement: Agreement::BothOpen,
            probe_codes: &["smtp.open_relay"],
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn permit_before_reject_unauth_destination() {
    // A permit the client can satisfy (its own choice of sender: the
    // server's own name, which the probe's third relay form uses) decides
    // before reject_unauth_destination.
    let pf = Instance::start(
        "permit",
        "smtpd_relay_restrictions = permit_mynetworks, check_sender_access inline:{ mx.relay.test=OK }, reject_unauth_destination\n",
        &[],
    );
    check(
        &pf,
        Expect {
            relay: Relay::Open,
            codes: &["relay_config.open_relay {SVC}"],
            probe: ProbeRelay::Open,
            agreement: Agreement::BothOpen,
            probe_codes: &["smtp.open_relay"],
        },
    )
    .await;
}

/// A bare `permit` before reject_unauth_destination is not an open relay:
/// smtpd finds no working relay-blocking restriction (everything after
/// `permit` is ignored) and exits at start, so nothing is received. The
/// review says so; the probe cannot get a dialogue.
#[tokio::test(flavor = "multi_thread")]
async fn bare_permit_stops_smtpd() {
    let pf = Instance::start(
        "bare-permit",
        "smtpd_relay_restrictions = permit_mynetworks, permit, reject_unauth_destination\n",
        &[],
    );
    let files = vec![pf.export("-n"), pf.export("-P")];
    let review = library_review(&files, &pf.service());
    assert_eq!(review.relay(), Some(Relay::Closed));
    assert!(review.observations.is_empty(), "{review:#?}");
    assert!(
        review.notes.iter().any(|n| n.code == "smtpd_refuses_mail"),
        "{:?}",
        review.notes
    );
    let probe = pf.probe().await;
    assert_ne!(
        ProbeRelay::from_transcript(&probe),
        ProbeRelay::Open,
        "{}",
        shown(&probe)
    );
    assert!(
        !probe
            .observations
            .iter()
            .any(|o| o.code == "smtp.open_relay"),
        "{}",
        shown(&probe)
    );
    let log = pf.log();
    assert!(
        log.contains("specify at least one working instance of"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn open_master_cf_override_on_the_smtp_service() {
    // main.cf is closed; the port-25 service overrides it.
    let pf = Instance::start(
        "override",
        "",
        &[
            "smtpd_relay_restrictions=permit_mynetworks,check_sender_access,inline:{mx.relay.test=OK},reject_unauth_destination",
        ],
    );
    check(
        &pf,
        Expect {
            relay: Relay::Open,
            codes: &["relay_config.open_relay {SVC}"],
            probe: ProbeRelay::Open,
            agreement: Agreement::BothOpen,
            probe_codes: &["smtp.open_relay"],
        },
    )
    .await;
    // The finding points at the override and fixes it there.
    let files = vec![pf.export("-n"), pf.export("-P")];
    let review = library_review(&files, &pf.service());
    let open = review
        .observations
        .iter()
        .find(|o| o.code == "relay_config.open_relay")
        .expect("open relay");
    assert!(
        open.vars["location"]
            .as_str()
            .is_some_and(|l| l.ends_with("postconf-P.txt:1")),
        "{open:?}"
    );
    let fix = format!(
        "postconf -P '{}/inet/smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination,check_sender_access,inline:{{mx.relay.test=OK}}'",
        pf.service()
    );
    assert_eq!(open.vars["fix"], fix.as_str());
    // The fix, applied to the instance, closes the relay.
    let out = Command::new("sh")
        .arg("-c")
        .arg(fix.replacen(
            "postconf ",
            &format!("postconf -c '{}' ", pf.dir.0.display()),
            1,
        ))
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let review = library_review(&[pf.export("-n"), pf.export("-P")], &pf.service());
    assert_eq!(review.relay(), Some(Relay::Closed), "{review:#?}");
    // With `postconf -M` as well (the service's real entry), the same verdict.
    let with_m = vec![pf.export("-n"), pf.export("-M"), pf.export("-P")];
    let review = library_review(&with_m, &pf.service());
    assert_eq!(review.relay(), Some(Relay::Closed));
    assert!(
        !review
            .notes
            .iter()
            .any(|n| n.code == "assumed_named_service"),
        "{:?}",
        review.notes
    );
}

/// A minimal Dovecot auth server (the auth-client handshake of
/// xsasl_dovecot_server.c), so that smtpd offers AUTH; every login fails.
async fn dovecot_auth() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let handshake = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\t0123456789abcdef0123456789abcdef\nDONE\n";
                if w.write_all(handshake.as_bytes()).await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(rest) = line.strip_prefix("AUTH\t") {
                        let id = rest.split('\t').next().unwrap_or("1");
                        let _ = w.write_all(format!("FAIL\t{id}\n").as_bytes()).await;
                    }
                }
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_relay_without_tls_only() {
    let (auth_port, auth) = dovecot_auth().await;
    let pf = Instance::start(
        "sasl",
        &format!(
            "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = inet:127.0.0.1:{auth_port}\n"
        ),
        &[],
    );
    // The review reports the plaintext login; the probe sees AUTH offered
    // before STARTTLS, and relaying refused to anonymous clients.
    check(
        &pf,
        Expect {
            relay: Relay::Closed,
            codes: &["relay_config.auth_relay_plaintext {SVC}"],
            probe: ProbeRelay::Refused,
            agreement: Agreement::BothClosed,
            probe_codes: &["smtp.auth_plaintext"],
        },
    )
    .await;
    auth.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn no_recipient_validation() {
    let pf = Instance::start("norcpt", "local_recipient_maps =\n", &[]);
    check(
        &pf,
        Expect {
            relay: Relay::Closed,
            codes: &["relay_config.recipient_not_validated {SVC} local_recipient_maps"],
            probe: ProbeRelay::Refused,
            agreement: Agreement::BothClosed,
            probe_codes: &["smtp.recipient_not_validated"],
        },
    )
    .await;
}

/// The export is not what runs: the review of a closed export against an
/// open instance (and the other way round) is a probe mismatch.
#[tokio::test(flavor = "multi_thread")]
async fn export_and_running_server_disagree() {
    let open = Instance::start("mismatch", "mynetworks = 0.0.0.0/0\n", &[]);
    let stale = Instance::start("stale", "", &[]);
    let stale_review = library_review(&[stale.export("-n"), stale.export("-P")], &stale.service());
    let probe = ProbeRelay::from_transcript(&open.probe().await);
    let config = stale_review.relay().expect("verdict");
    assert_eq!(compare(config, probe), Agreement::ProbeOpenConfigClosed);
    let o = mismatch(config, probe, "127.0.0.1").expect("mismatch");
    assert_eq!(o.vars["direction"], "probe_open_config_closed");
    // It renders with the manifest's text.
    let plugin = relay_config::render::builtin_plugin().expect("manifest");
    let f = mxaudit_core::text::TextRenderer::new(mxaudit_core::Lang::En).finding(
        &plugin.meta,
        "relay.test",
        &o,
        None,
    );
    assert!(f.detail.contains("not what runs"), "{f:?}");
}

/// `[[domains]] relay_config` in audit.toml: scheduled runs review the
/// domain's exports, and the findings are new, then resolved once the export
/// shows the fix, like any other finding.
#[tokio::test(flavor = "multi_thread")]
async fn runs_review_the_configured_exports_with_history() {
    let server = crate::support::demo_server().await;
    let dir = TempDir::new("run");
    let exports = dir.0.join("exports");
    std::fs::create_dir_all(&exports).expect("exports");
    let fixture = |case: &str, file: &str| {
        crate::support::fixture(&format!("relay-config/postfix/{case}/{file}"))
    };
    let put = |case: &str| {
        for (src, dst) in [
            ("postconf-n.txt", "mx1-n.txt"),
            ("postconf-P.txt", "mx1-P.txt"),
        ] {
            let from = fixture(case, src);
            let text = std::fs::read_to_string(&from).unwrap_or_default();
            std::fs::write(exports.join(dst), text).expect("export");
        }
    };
    put("master-override-open");
    let cfg = dir.0.join("audit.toml");
    std::fs::write(
        &cfg,
        format!(
            "[resolver]\nnameservers = [\"{}\"]\ntimeout = \"500ms\"\nattempts = 0\n\n[plugins]\nonly = [\"relay-config\"]\n\n[store]\npath = \"history.db\"\n\n[[domains]]\nname = \"healthy.example\"\nrelay_config = [\"exports/mx1-n.txt\", \"exports/mx1-P.txt\"]\n",
            server.addr()
        ),
    )
    .expect("config");
    let run = || {
        mxaudit()
            .args(["run", "--config"])
            .arg(&cfg)
            .args(["--format", "json"])
            .output()
            .expect("mxaudit runs")
    };
    let events = |out: &std::process::Output| -> Vec<(String, String)> {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        let mut e: Vec<(String, String)> = v["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["change"].as_str().unwrap_or("").to_owned(),
                    e["finding"]["code"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        e.sort();
        e
    };
    let first = run();
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        events(&first),
        vec![
            (
                "new".to_owned(),
                "relay_config.mynetworks_too_wide".to_owned()
            ),
            ("new".to_owned(), "relay_config.open_relay".to_owned()),
        ]
    );
    // The administrator applies the fix and exports again.
    put("legacy-recipient-restrictions");
    std::fs::write(exports.join("mx1-P.txt"), "").expect("empty -P");
    let second = run();
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        events(&second),
        vec![
            (
                "resolved".to_owned(),
                "relay_config.mynetworks_too_wide".to_owned()
            ),
            ("resolved".to_owned(), "relay_config.open_relay".to_owned()),
        ]
    );
    // Open again, then the export goes missing: the check's status is an
    // error, and the open findings are not resolved by an unreadable file.
    put("master-override-open");
    assert_eq!(events(&run()).len(), 2);
    std::fs::remove_file(exports.join("mx1-n.txt")).expect("remove");
    let fourth = run();
    let v: serde_json::Value = serde_json::from_slice(&fourth.stdout).expect("json");
    assert_eq!(v["errors"], 1, "{v}");
    assert!(
        !events(&fourth)
            .iter()
            .any(|(change, _)| change == "resolved"),
        "{v}"
    );
}

/// The sample reviews in docs/relay-config.md are the command's real output.
#[test]
fn documented_samples_are_current() {
    let doc = std::fs::read_to_string(crate::support::repo().join("docs/relay-config.md"))
        .expect("docs/relay-config.md");
    let dir = crate::support::fixture("relay-config");
    for args in [
        &[
            "postfix/sender-access-forged/main.cf",
            "--tables",
            "postfix/sender-access-forged/tables",
        ][..],
        &[
            "exchange/anonymous-relay-internet/connectors.txt",
            "exchange/anonymous-relay-internet/permissions-table.txt",
        ][..],
    ] {
        let out = mxaudit()
            .arg("relay-config")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("mxaudit runs");
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8_lossy(&out.stdout);
        let command = format!("$ mxaudit relay-config {}\n{text}", args.join(" "));
        assert!(
            doc.contains(&command),
            "docs/relay-config.md does not show the current output of:\n{command}"
        );
    }
}

/// The probe as `mxaudit smtp` prints it, for failure messages.
fn shown(probe: &ProbeTranscript) -> String {
    mxaudit_agent::view::smtp::text(probe)
}
