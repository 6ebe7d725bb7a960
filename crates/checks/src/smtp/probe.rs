//! The dialogue with one MX address, as a sending server and an attacker see
//! it: connect, greeting, EHLO (HELO fallback), STARTTLS and EHLO again, then
//! MAIL FROM / RCPT TO probes with RSET between them, and RSET, QUIT at the
//! end. DATA is never sent: no probe can deliver a message.
//!
//! The result is facts ([`AddressProbe`]); `observe.rs` turns them into codes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::SmtpOptions;
use super::cert::{self, CertVerdict};
use super::relay::{self, Attempt, FormInputs, RelayOutcome, address_literal};
use super::reply::{Reply, ReplyReader, escape_bytes};
use super::session::{Deadlines, Limit, Session, SessionError, Stage, Stream, Transcript};
use super::starttls::{self, Negotiated, TlsClient};

/// How long to listen, after `220 Ready to start TLS`, for plaintext the
/// server should not send.
const INJECTION_GRACE: Duration = Duration::from_millis(200);

/// One address to probe.
#[derive(Debug, Clone)]
pub struct AddressTarget {
    /// The address.
    pub ip: IpAddr,
    /// The MX host names that point at it, most preferred first.
    pub names: Vec<String>,
    /// The audited domain, for the postmaster, null-sender and unknown-recipient
    /// tests (none in a bare host probe without `--domain`).
    pub local_domain: Option<String>,
}

/// How a session ended.
#[derive(Debug)]
pub enum Ending {
    /// The dialogue ran to RSET/QUIT.
    Completed,
    /// TCP connection refused (RST).
    Refused(std::io::Error),
    /// No route, unreachable network, or another connect failure.
    Unreachable(std::io::Error),
    /// A step failed (timeout, close, protocol error).
    Failed(SessionError),
    /// The greeting was not 220.
    GreetingRefused(Reply),
    /// EHLO and HELO were refused.
    HelloRefused {
        /// EHLO, HELO or EHLO after STARTTLS.
        stage: Stage,
        /// The refusal.
        reply: Reply,
    },
    /// The TLS upgrade failed and left nothing to talk over (see [`TlsOutcome`]).
    TlsBroken,
}

/// The EHLO (or HELO) answer.
#[derive(Debug, Clone)]
pub struct Hello {
    /// `EHLO` or `HELO`.
    pub verb: &'static str,
    /// The reply.
    pub reply: Reply,
    /// EHLO keywords with their parameters, as sent (RFC 5321 §4.1.1.1), one per line after the first.
    pub keywords: Vec<String>,
}

impl Hello {
    fn new(verb: &'static str, reply: Reply) -> Hello {
        let keywords = if verb == "EHLO" {
            reply.texts().into_iter().skip(1).collect()
        } else {
            Vec::new()
        };
        Hello {
            verb,
            reply,
            keywords,
        }
    }

    /// The keyword line, when the server offered it (case-insensitive, RFC 5321 §2.4).
    pub fn keyword(&self, name: &str) -> Option<&str> {
        self.keywords.iter().map(String::as_str).find(|line| {
            let word = line.split([' ', '=']).next().unwrap_or_default();
            word.eq_ignore_ascii_case(name)
        })
    }

    /// The SASL mechanisms of an `AUTH` keyword (RFC 4954 §3), also the old `AUTH=` form.
    pub fn auth(&self) -> Option<String> {
        self.keywords
            .iter()
            .filter(|line| {
                let up = line.to_ascii_uppercase();
                up == "AUTH" || up.starts_with("AUTH ") || up.starts_with("AUTH=")
            })
            .map(|line| line.get(5..).unwrap_or_default().trim().to_owned())
            .reduce(|a, b| if a.is_empty() { b } else { a })
    }
}

/// What STARTTLS gave.
#[derive(Debug, Clone, Default)]
pub enum TlsOutcome {
    /// The dialogue did not get that far, or TLS was not examined.
    #[default]
    NotReached,
    /// EHLO did not offer STARTTLS.
    NotOffered,
    /// STARTTLS was answered with something else than 220.
    Refused(Reply),
    /// The handshake failed or timed out.
    Failed {
        /// The reason.
        reason: String,
        /// Set when it timed out: the limit that fired and how long it waited.
        timeout: Option<(Limit, Duration)>,
    },
    /// TLS is up.
    Established(Box<Established>),
}

/// A completed handshake and what was learned from it.
#[derive(Debug, Clone)]
pub struct Established {
    /// Version and cipher.
    pub negotiated: Negotiated,
    /// The certificate examination.
    pub verdict: CertVerdict,
    /// Bytes the server sent after `220 Ready to start TLS` and before the
    /// handshake (escaped): discarded, and a sign of STARTTLS command injection
    /// or a broken middlebox (RFC 3207 §4.2, CVE-2011-0411 class).
    pub leftover: Option<String>,
    /// EHLO inside TLS.
    pub hello: Option<Hello>,
}

/// One MAIL FROM / RCPT TO pair and its replies.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Reverse-path.
    pub from: String,
    /// Forward-path.
    pub to: String,
    /// The reply to MAIL FROM.
    pub mail: Reply,
    /// The reply to RCPT TO, when MAIL was accepted.
    pub rcpt: Option<Reply>,
}

impl Exchange {
    /// RCPT accepted with 250 or 251.
    pub fn accepted(&self) -> bool {
        self.mail.is_positive()
            && self
                .rcpt
                .as_ref()
                .is_some_and(|r| matches!(r.code, 250 | 251))
    }

    /// The refusal, when MAIL or RCPT got a 5yz.
    pub fn permanently_refused(&self) -> Option<(Stage, &Reply)> {
        if self.mail.class() == 5 {
            return Some((Stage::Mail, &self.mail));
        }
        self.rcpt
            .as_ref()
            .filter(|r| r.class() == 5)
            .map(|r| (Stage::Rcpt, r))
    }

    /// A 4yz at MAIL or RCPT (greylisting, temporary failure): undecided.
    pub fn deferred(&self) -> bool {
        self.mail.class() == 4 || self.rcpt.as_ref().is_some_and(|r| r.class() == 4)
    }

    /// One evidence line.
    pub fn evidence(&self) -> String {
        let mut line = format!("MAIL FROM:<{}> → {}", self.from, self.mail.summary());
        if let Some(rcpt) = &self.rcpt {
            line.push_str(&format!("; RCPT TO:<{}> → {}", self.to, rcpt.summary()));
        }
        line
    }
}

/// The tests at the audited domain.
#[derive(Debug, Clone, Default)]
pub struct LocalTests {
    /// A foreign sender to postmaster@domain, which must be accepted (RFC 5321 §4.5.1).
    pub postmaster: Option<Exchange>,
    /// The null sender to postmaster@domain (RFC 5321 §4.5.5: bounces use it).
    pub null_sender: Option<Exchange>,
    /// A foreign sender to a random, nonexistent local part.
    pub unknown_recipient: Option<Exchange>,
}

/// Everything learned about one address.
#[derive(Debug)]
pub struct AddressProbe {
    /// The address.
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
    /// MX names pointing at the address.
    pub names: Vec<String>,
    /// One transcript per session.
    pub transcripts: Vec<Transcript>,
    /// How the first session ended.
    pub ending: Ending,
    /// How the plaintext session after a failed TLS upgrade ended.
    pub fallback: Option<Ending>,
    /// The greeting of the first session and how long it took.
    pub greeting: Option<(Reply, Duration)>,
    /// The server's name from its greeting (first word after the code).
    pub server_name: Option<String>,
    /// EHLO in plaintext.
    pub hello: Option<Hello>,
    /// STARTTLS.
    pub tls: TlsOutcome,
    /// Postmaster, null sender, unknown recipient.
    pub local: LocalTests,
    /// The relay forms.
    pub relay: RelayOutcome,
    /// True when all relay forms were tried (or 530 stopped them).
    pub relay_done: bool,
}

impl AddressProbe {
    /// The MX name used for the subject and SNI: the first name, else the address.
    pub fn host(&self) -> String {
        self.names
            .first()
            .cloned()
            .unwrap_or_else(|| self.ip.to_string())
    }
}

/// Probes one address: one session, and a second one in plaintext when the
/// TLS upgrade broke the first before the mail tests (opportunistic senders
/// fall back the same way). `tls` is `None` when STARTTLS is not examined.
pub async fn probe_address(
    target: &AddressTarget,
    cfg: &SmtpOptions,
    tls: Option<&TlsClient>,
    task_deadline: Instant,
) -> AddressProbe {
    let deadlines = Deadlines {
        session: Instant::now() + cfg.session_budget,
        task: task_deadline,
    };
    let mut probe = AddressProbe {
        ip: target.ip,
        port: cfg.port,
        names: target.names.clone(),
        transcripts: Vec::new(),
        ending: Ending::Completed,
        fallback: None,
        greeting: None,
        server_name: None,
        hello: None,
        tls: TlsOutcome::NotReached,
        local: LocalTests::default(),
        relay: RelayOutcome::default(),
        relay_done: false,
    };
    probe.ending = run_session(&mut probe, target, cfg, tls, deadlines).await;
    if matches!(probe.ending, Ending::TlsBroken) {
        let resume = Instant::now() + cfg.session_delay;
        if resume < deadlines.session.min(deadlines.task) {
            tokio::time::sleep_until(resume).await;
            probe.fallback = Some(run_session(&mut probe, target, cfg, None, deadlines).await);
        }
    }
    probe
}

async fn run_session(
    probe: &mut AddressProbe,
    target: &AddressTarget,
    cfg: &SmtpOptions,
    tls: Option<&TlsClient>,
    deadlines: Deadlines,
) -> Ending {
    let peer = SocketAddr::new(target.ip, cfg.port);
    let mut transcript = Transcript::new(peer);
    transcript.note(format!("connecting to {peer}"));
    let (deadline, limit) = deadlines.for_step(cfg.connect_timeout);
    let started = Instant::now();
    let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(peer)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => {
            transcript.note(format!("connect failed: {error}"));
            probe.transcripts.push(transcript);
            return if error.kind() == std::io::ErrorKind::ConnectionRefused {
                Ending::Refused(error)
            } else {
                Ending::Unreachable(error)
            };
        }
        Err(_) => {
            let waited = started.elapsed();
            transcript.note(format!(
                "no TCP connection within {}",
                humantime::format_duration(round_ms(waited))
            ));
            probe.transcripts.push(transcript);
            return Ending::Failed(SessionError::Timeout {
                stage: Stage::Connect,
                waited,
                limit,
            });
        }
    };
    // One command, one reply: nothing gains from Nagle's algorithm here.
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().ok();
    if let Some(local) = local {
        transcript.note(format!("connected from {local}"));
    }
    let mut session = Session {
        stream: Stream::Plain(tcp),
        reader: ReplyReader::new(),
        transcript,
        deadlines,
        command_timeout: cfg.command_timeout,
    };
    let helo_arg = cfg.helo_name.clone().unwrap_or_else(|| {
        local
            .map(|a| address_literal(a.ip()))
            .unwrap_or_else(|| "[127.0.0.1]".to_owned())
    });
    let ending = match dialogue(&mut session, probe, target, cfg, tls, &helo_arg).await {
        Ok(()) => {
            // RFC 5321 §4.1.1.5 and §4.1.1.10: leave no transaction open, say goodbye.
            let _ = session.command("RSET", Stage::Rset).await;
            let _ = session.command("QUIT", Stage::Quit).await;
            Ending::Completed
        }
        Err(ending) => {
            goodbye_after(&mut session, &ending).await;
            ending
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        use tokio::io::AsyncWriteExt;
        session.stream.shutdown().await
    })
    .await;
    probe.transcripts.push(session.transcript);
    ending
}

/// After a failure, QUIT when the connection may still be alive (RFC 5321
/// §3.1: after a 554 greeting the client SHOULD send QUIT), never waiting long.
async fn goodbye_after(session: &mut Session, ending: &Ending) {
    if session.deadlines.task_over() {
        return;
    }
    // A 421 says the server closes the channel itself; a timeout or protocol
    // error leaves its state unknown, so QUIT is sent but not waited for.
    let refused = matches!(
        ending,
        Ending::GreetingRefused(reply) | Ending::HelloRefused { reply, .. } if reply.code != 421
    );
    let unsettled = matches!(
        ending,
        Ending::Failed(SessionError::Timeout { stage, .. }) if *stage != Stage::TlsHandshake
    ) || matches!(ending, Ending::Failed(SessionError::Protocol { .. }));
    if refused {
        if session.send("QUIT", Stage::Quit).await.is_ok() {
            let wait = session.command_timeout.min(Duration::from_secs(2));
            let _ = session.read_reply(Stage::Quit, wait).await;
        }
    } else if unsettled {
        let _ = session.send("QUIT", Stage::Quit).await;
    }
}

async fn dialogue(
    s: &mut Session,
    probe: &mut AddressProbe,
    target: &AddressTarget,
    cfg: &SmtpOptions,
    tls: Option<&TlsClient>,
    helo_arg: &str,
) -> Result<(), Ending> {
    // RFC 5321 §3.1, §4.5.3.2.1: the server speaks first; a tarpit may delay
    // its greeting on purpose, and a patient sender waits up to 5 minutes.
    let started = Instant::now();
    let greeting = s
        .read_reply(Stage::Greeting, cfg.greeting_timeout)
        .await
        .map_err(Ending::Failed)?;
    let waited = started.elapsed();
    if waited >= cfg.slow_greeting {
        s.transcript.note(format!(
            "the greeting took {}",
            humantime::format_duration(round_ms(waited))
        ));
    }
    if probe.greeting.is_none() {
        probe.server_name = greeting_name(&greeting);
        probe.greeting = Some((greeting.clone(), waited));
    }
    if greeting.code != 220 {
        return Err(Ending::GreetingRefused(greeting));
    }

    let plain_hello = hello(s, helo_arg, Stage::Ehlo).await?;
    if probe.hello.is_none() {
        probe.hello = Some(plain_hello.clone());
    }

    if let Some(client) = tls {
        if plain_hello.keyword("STARTTLS").is_some() {
            starttls(s, probe, target, cfg, client, helo_arg).await?;
        } else {
            probe.tls = TlsOutcome::NotOffered;
        }
    }

    mail_tests(s, probe, target, cfg)
        .await
        .map_err(Ending::Failed)
}

/// The server's name as nmap takes it: the first word after the greeting's code.
fn greeting_name(greeting: &Reply) -> Option<String> {
    let text = greeting.texts().into_iter().next()?;
    let word = text.split_whitespace().next()?;
    let plausible = word.contains('.')
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    plausible.then(|| word.trim_end_matches('.').to_ascii_lowercase())
}

/// EHLO, and HELO when EHLO is refused with a 5yz (RFC 5321 §4.1.1.1, §3.2).
async fn hello(s: &mut Session, arg: &str, stage: Stage) -> Result<Hello, Ending> {
    let reply = s
        .command(&format!("EHLO {arg}"), stage)
        .await
        .map_err(Ending::Failed)?;
    if reply.code == 250 {
        return Ok(Hello::new("EHLO", reply));
    }
    if reply.class() == 5 && stage == Stage::Ehlo {
        let helo = s
            .command(&format!("HELO {arg}"), Stage::Helo)
            .await
            .map_err(Ending::Failed)?;
        if helo.code == 250 {
            return Ok(Hello::new("HELO", helo));
        }
        return Err(Ending::HelloRefused {
            stage: Stage::Helo,
            reply: helo,
        });
    }
    Err(Ending::HelloRefused { stage, reply })
}

async fn starttls(
    s: &mut Session,
    probe: &mut AddressProbe,
    target: &AddressTarget,
    cfg: &SmtpOptions,
    client: &TlsClient,
    helo_arg: &str,
) -> Result<(), Ending> {
    let reply = s
        .command("STARTTLS", Stage::StartTls)
        .await
        .map_err(Ending::Failed)?;
    if reply.code != 220 {
        // RFC 3207 §4: after 454 the client may go on without TLS.
        probe.tls = TlsOutcome::Refused(reply);
        return Ok(());
    }
    // RFC 3207 §4.2: nothing sent before the handshake may count after it. The
    // client speaks first in TLS, so any byte arriving now is plaintext left
    // over or injected; wait a moment for bytes sent in a separate segment.
    s.reader
        .collect_unsolicited(&mut s.stream, INJECTION_GRACE)
        .await;
    let left = s.reader.discard();
    let leftover = (!left.is_empty()).then(|| escape_bytes(&left));
    if let Some(bytes) = &leftover {
        s.transcript.note(format!(
            "{} bytes arrived after the 220 and before the TLS handshake, discarded: {bytes}",
            left.len()
        ));
    }
    let name = starttls::server_name(&probe.host(), target.ip);
    match starttls::upgrade(s, client, name, cfg.tls_timeout).await {
        Ok(negotiated) => {
            s.transcript.note(format!(
                "TLS established: {} {}",
                negotiated.version, negotiated.cipher
            ));
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            let verdict = cert::examine(
                &negotiated.chain,
                &target.names,
                &client.roots,
                &client.provider,
                now,
                cfg.expiry_warning,
            );
            for (i, c) in verdict.chain.iter().enumerate() {
                s.transcript
                    .note(format!("certificate {i}: {}", c.evidence()));
            }
            probe.tls = TlsOutcome::Established(Box::new(Established {
                negotiated,
                verdict,
                leftover,
                hello: None,
            }));
            // RFC 3207 §4.2: forget what the server said in plaintext; ask again.
            let inner = hello(s, helo_arg, Stage::EhloTls).await?;
            if let TlsOutcome::Established(est) = &mut probe.tls {
                est.hello = Some(inner);
            }
            Ok(())
        }
        Err(error) => {
            s.transcript.note(format!("TLS failed: {error}"));
            let timeout = match &error {
                SessionError::Timeout { limit, waited, .. } => Some((*limit, *waited)),
                _ => None,
            };
            probe.tls = TlsOutcome::Failed {
                reason: error.to_string(),
                timeout,
            };
            if matches!(timeout, Some((Limit::Task, _))) {
                return Err(Ending::Failed(error));
            }
            Err(Ending::TlsBroken)
        }
    }
}

/// A random local part that no mailbox has.
fn nonexistent_local_part() -> String {
    format!(
        "mxaudit-nosuchuser-{:012x}",
        rand::random::<u64>() & 0xffff_ffff_ffff
    )
}

async fn mail_tests(
    s: &mut Session,
    probe: &mut AddressProbe,
    target: &AddressTarget,
    cfg: &SmtpOptions,
) -> Result<(), SessionError> {
    let sender = format!("{}@{}", cfg.relay_from, cfg.foreign_domain);
    if let Some(domain) = &target.local_domain {
        let postmaster = format!("postmaster@{domain}");
        probe.local.postmaster = Some(exchange(s, &sender, &postmaster).await?);
        probe.local.null_sender = Some(exchange(s, "", &postmaster).await?);
        let unknown = format!("{}@{domain}", nonexistent_local_part());
        probe.local.unknown_recipient = Some(exchange(s, &sender, &unknown).await?);
    }
    let server_name = probe.server_name.clone().unwrap_or_else(|| probe.host());
    let forms = relay::forms(&FormInputs {
        foreign: &cfg.foreign_domain,
        from_local: &cfg.relay_from,
        to_local: &cfg.relay_to,
        server_name: &server_name,
        ip: target.ip,
    });
    for form in forms {
        let x = exchange(s, &form.from, &form.to).await?;
        let attempt = Attempt {
            form,
            mail: x.mail,
            rcpt: x.rcpt,
        };
        // RFC 4954 §6: 530 means "authenticate first"; nmap stops there too.
        let stop = attempt.auth_required();
        probe.relay.attempts.push(attempt);
        if stop {
            probe.relay.auth_required = true;
            break;
        }
    }
    probe.relay_done = true;
    Ok(())
}

/// RSET, MAIL FROM, and RCPT TO when MAIL was accepted.
async fn exchange(s: &mut Session, from: &str, to: &str) -> Result<Exchange, SessionError> {
    // RFC 5321 §4.1.1.5: RSET clears the previous transaction, so every test
    // starts from the same state.
    let rset = s.command("RSET", Stage::Rset).await?;
    closing(&rset, Stage::Rset)?;
    let mail = s
        .command(&format!("MAIL FROM:<{from}>"), Stage::Mail)
        .await?;
    closing(&mail, Stage::Mail)?;
    let rcpt = if mail.is_positive() {
        let rcpt = s.command(&format!("RCPT TO:<{to}>"), Stage::Rcpt).await?;
        closing(&rcpt, Stage::Rcpt)?;
        Some(rcpt)
    } else {
        None
    };
    Ok(Exchange {
        from: from.to_owned(),
        to: to.to_owned(),
        mail,
        rcpt,
    })
}

/// RFC 5321 §3.8: 421 means the server is closing the channel.
fn closing(reply: &Reply, stage: Stage) -> Result<(), SessionError> {
    if reply.code == 421 {
        return Err(SessionError::ServiceClosing {
            stage,
            reply: reply.summary(),
        });
    }
    Ok(())
}

/// A duration rounded to milliseconds, for messages.
pub fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
