//! Scripted SMTP servers on loopback for the probe tests: a greeting (or
//! silence, garbage, an endless line or an endless reply), EHLO keywords,
//! STARTTLS with a given certificate, MAIL and RCPT replies chosen by pattern,
//! delays, and a drop after a chosen command. Every line a client sends is
//! recorded per session.
//!
//! The server never takes message content: DATA is always answered 554 and
//! counted, so a test can assert that a probe never tried to send mail.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::TestbedError;

/// Longest command line read (RFC 5321 §4.5.3.1.4: 512 octets; we allow 1000).
const MAX_COMMAND: u64 = 1000;

/// What the server says first.
#[derive(Debug, Clone)]
pub enum Greeting {
    /// This reply; lines separated by `\r\n` form a multi-line reply. A `421`
    /// greeting closes the connection after it, as real servers do.
    Reply(String),
    /// Accept the connection and never say anything (a tarpit without end).
    Never,
    /// These bytes instead of a greeting, then the usual command loop.
    Raw(Vec<u8>),
    /// `220 ` followed by `x` without end (up to 64 MiB, or until the client leaves).
    EndlessLine,
    /// `220-` continuation lines without end (up to a million lines).
    EndlessReply,
}

/// A reply chosen by a pattern on the address of MAIL FROM or RCPT TO.
#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    reply: String,
}

/// How a scripted server behaves.
#[derive(Debug, Clone)]
pub struct SmtpScript {
    name: String,
    greeting: Greeting,
    greeting_delay: Duration,
    extensions: Vec<String>,
    ehlo_reply: Option<String>,
    tls: Option<Arc<ServerConfig>>,
    starttls_reply: Option<String>,
    after_ready: Vec<u8>,
    stall_tls: bool,
    auth_plain: Option<String>,
    auth_tls: Option<String>,
    mail_rules: Vec<Rule>,
    rcpt_rules: Vec<Rule>,
    rcpt_default: String,
    reply_delay: Duration,
    line_pause: Duration,
    drop_after: Option<String>,
    raw_replies: Vec<(String, Vec<u8>)>,
}

impl SmtpScript {
    /// A polite, closed server named `name`: greets `220 <name> ESMTP`,
    /// offers PIPELINING and 8BITMIME, accepts every MAIL FROM and refuses
    /// every RCPT TO with `550 5.7.1 Relaying denied` unless a rule matches.
    pub fn new(name: &str) -> SmtpScript {
        SmtpScript {
            name: name.to_owned(),
            greeting: Greeting::Reply(format!("220 {name} ESMTP testbed")),
            greeting_delay: Duration::ZERO,
            extensions: vec!["PIPELINING".to_owned(), "8BITMIME".to_owned()],
            ehlo_reply: None,
            tls: None,
            starttls_reply: None,
            after_ready: Vec::new(),
            stall_tls: false,
            auth_plain: None,
            auth_tls: None,
            mail_rules: Vec::new(),
            rcpt_rules: Vec::new(),
            rcpt_default: "550 5.7.1 Relaying denied".to_owned(),
            reply_delay: Duration::ZERO,
            line_pause: Duration::ZERO,
            drop_after: None,
            raw_replies: Vec::new(),
        }
    }

    /// The first thing said.
    pub fn greeting(mut self, greeting: Greeting) -> SmtpScript {
        self.greeting = greeting;
        self
    }

    /// Waits this long before the greeting (a tarpit, a greet pause).
    pub fn greeting_delay(mut self, delay: Duration) -> SmtpScript {
        self.greeting_delay = delay;
        self
    }

    /// EHLO keywords besides STARTTLS and AUTH (replaces the defaults).
    pub fn extensions(mut self, keywords: &[&str]) -> SmtpScript {
        self.extensions = keywords.iter().map(|k| (*k).to_owned()).collect();
        self
    }

    /// Answers EHLO with this instead (e.g. `502 5.5.2 EHLO not supported`).
    pub fn ehlo_reply(mut self, reply: &str) -> SmtpScript {
        self.ehlo_reply = Some(reply.to_owned());
        self
    }

    /// Offers STARTTLS with this configuration.
    pub fn starttls(mut self, config: Arc<ServerConfig>) -> SmtpScript {
        self.tls = Some(config);
        self
    }

    /// Offers STARTTLS but answers the command with this (e.g. `454 4.7.0 TLS not available`).
    pub fn starttls_reply(mut self, reply: &str) -> SmtpScript {
        self.starttls_reply = Some(reply.to_owned());
        self
    }

    /// Sends these bytes right after `220 Ready to start TLS`, in plaintext.
    pub fn after_starttls_ready(mut self, bytes: &[u8]) -> SmtpScript {
        self.after_ready = bytes.to_vec();
        self
    }

    /// Says `220 Ready to start TLS` and then never does the handshake.
    pub fn stall_tls(mut self) -> SmtpScript {
        self.stall_tls = true;
        self
    }

    /// Offers `AUTH <mechanisms>` before STARTTLS.
    pub fn auth_before_tls(mut self, mechanisms: &str) -> SmtpScript {
        self.auth_plain = Some(mechanisms.to_owned());
        self
    }

    /// Offers `AUTH <mechanisms>` only inside TLS.
    pub fn auth_after_tls(mut self, mechanisms: &str) -> SmtpScript {
        self.auth_tls = Some(mechanisms.to_owned());
        self
    }

    /// MAIL FROM whose address (without brackets; empty for `<>`) matches
    /// `pattern` (`*` = any run of characters, case-insensitive) gets `reply`.
    /// The first matching rule wins; without one, `250 2.1.0 Ok`.
    pub fn mail(mut self, pattern: &str, reply: &str) -> SmtpScript {
        self.mail_rules.push(Rule {
            pattern: pattern.to_owned(),
            reply: reply.to_owned(),
        });
        self
    }

    /// RCPT TO whose address matches `pattern` gets `reply`; first match wins.
    pub fn rcpt(mut self, pattern: &str, reply: &str) -> SmtpScript {
        self.rcpt_rules.push(Rule {
            pattern: pattern.to_owned(),
            reply: reply.to_owned(),
        });
        self
    }

    /// The reply to RCPT TO when no rule matches.
    pub fn rcpt_default(mut self, reply: &str) -> SmtpScript {
        self.rcpt_default = reply.to_owned();
        self
    }

    /// Waits this long before every reply after the greeting.
    pub fn reply_delay(mut self, delay: Duration) -> SmtpScript {
        self.reply_delay = delay;
        self
    }

    /// Sends the lines of multi-line replies in separate segments, this far apart.
    pub fn line_pause(mut self, pause: Duration) -> SmtpScript {
        self.line_pause = pause;
        self
    }

    /// Closes the connection, without a reply, when this command arrives (e.g. `EHLO`).
    pub fn drop_after(mut self, verb: &str) -> SmtpScript {
        self.drop_after = Some(verb.to_ascii_uppercase());
        self
    }

    /// Answers this command with these raw bytes instead of a reply.
    pub fn raw_reply(mut self, verb: &str, bytes: &[u8]) -> SmtpScript {
        self.raw_replies
            .push((verb.to_ascii_uppercase(), bytes.to_vec()));
        self
    }
}

/// What happened on one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionLog {
    /// Every line the client sent, in order (lossy UTF-8, without CRLF).
    pub lines: Vec<String>,
    /// True when a STARTTLS handshake completed.
    pub tls: bool,
    /// Lines received inside TLS.
    pub lines_in_tls: usize,
    /// Plaintext bytes the client sent after STARTTLS, discarded by the server.
    pub discarded_at_starttls: usize,
    /// DATA commands received (all refused).
    pub data_attempts: usize,
    /// True when QUIT was received.
    pub quit: bool,
}

impl SessionLog {
    /// The command verbs, uppercased, in order.
    pub fn verbs(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| {
                l.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase()
            })
            .collect()
    }
}

type Logs = Arc<Mutex<Vec<SessionLog>>>;

fn with_log(logs: &Logs, index: usize, f: impl FnOnce(&mut SessionLog)) {
    let mut logs = logs.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(log) = logs.get_mut(index) {
        f(log);
    }
}

/// A running scripted server; stops (with all its connections) when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    addr: SocketAddr,
    logs: Logs,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    /// Binds `addr` (e.g. `127.0.0.42:0`) and serves `script` to every connection.
    pub async fn start(addr: SocketAddr, script: SmtpScript) -> Result<SmtpServer, TestbedError> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let logs: Logs = Arc::default();
        let script = Arc::new(script);
        let task_logs = logs.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in this set: aborting the accept loop drops them.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let _ = tcp.set_nodelay(true);
                        let index = {
                            let mut logs = task_logs.lock().unwrap_or_else(PoisonError::into_inner);
                            logs.push(SessionLog::default());
                            logs.len() - 1
                        };
                        let script = script.clone();
                        let logs = task_logs.clone();
                        connections.spawn(async move {
                            let _ = serve(tcp, &script, &logs, index).await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(SmtpServer { addr, logs, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// One log per connection so far.
    pub fn sessions(&self) -> Vec<SessionLog> {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// DATA commands received over all connections (always refused).
    pub fn data_attempts(&self) -> usize {
        self.sessions().iter().map(|s| s.data_attempts).sum()
    }
}

/// `*` matches any run of characters; everything else literally, ignoring case.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

/// The address of `FROM:<a>` / `TO:<a>` without brackets.
fn path_of(args: &str) -> String {
    let after = args.split_once(':').map(|(_, a)| a).unwrap_or(args).trim();
    match (after.find('<'), after.rfind('>')) {
        (Some(open), Some(close)) if open < close => {
            after.get(open + 1..close).unwrap_or_default().to_owned()
        }
        _ => after
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn choose<'a>(rules: &'a [Rule], address: &str, default: &'a str) -> &'a str {
    rules
        .iter()
        .find(|r| glob(&r.pattern, address))
        .map_or(default, |r| r.reply.as_str())
}

async fn write_reply<W: AsyncWrite + Unpin>(
    w: &mut W,
    text: &str,
    pause: Duration,
) -> std::io::Result<()> {
    let lines: Vec<&str> = text.split("\r\n").collect();
    if pause.is_zero() {
        // One write per reply: small separate writes meet Nagle's algorithm and
        // delayed ACKs, and every reply would take 40 ms on loopback.
        let mut all = lines.join("\r\n").into_bytes();
        all.extend_from_slice(b"\r\n");
        w.write_all(&all).await?;
        return w.flush().await;
    }
    for (i, line) in lines.iter().enumerate() {
        w.write_all(format!("{line}\r\n").as_bytes()).await?;
        w.flush().await?;
        if i + 1 < lines.len() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}

/// Reads and records lines until the client leaves (for servers that never answer).
async fn swallow<R: AsyncRead + Unpin>(r: R, logs: &Logs, index: usize) {
    let mut reader = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_COMMAND)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                with_log(logs, index, |l| l.lines.push(text));
            }
        }
    }
}

enum Exit {
    Quit,
    Closed,
    StartTls,
}

async fn serve(
    mut tcp: TcpStream,
    script: &SmtpScript,
    logs: &Logs,
    index: usize,
) -> std::io::Result<()> {
    tokio::time::sleep(script.greeting_delay).await;
    let greeted = match &script.greeting {
        Greeting::Never => {
            swallow(tcp, logs, index).await;
            return Ok(());
        }
        Greeting::Raw(bytes) => {
            tcp.write_all(bytes).await?;
            false
        }
        Greeting::EndlessLine => {
            tcp.write_all(b"220 ").await?;
            let chunk = [b'x'; 8192];
            for _ in 0..(64 * 1024 * 1024 / chunk.len()) {
                tcp.write_all(&chunk).await?;
            }
            return Ok(());
        }
        Greeting::EndlessReply => {
            let chunk = b"220-endless greeting\r\n".repeat(1000);
            for _ in 0..1000 {
                tcp.write_all(&chunk).await?;
            }
            return Ok(());
        }
        Greeting::Reply(text) => {
            write_reply(&mut tcp, text, script.line_pause).await?;
            if text.starts_with("421") {
                return Ok(());
            }
            text.starts_with("220")
        }
    };
    let mut plain = BufReader::new(tcp);
    match commands(&mut plain, script, logs, index, false, greeted).await? {
        Exit::Quit | Exit::Closed => return Ok(()),
        Exit::StartTls => {}
    }
    // RFC 3207 §4.2 (and the CVE-2011-0411 fix): plaintext sent after STARTTLS is discarded.
    let discarded = plain.buffer().len();
    with_log(logs, index, |l| l.discarded_at_starttls = discarded);
    let tcp = plain.into_inner();
    if script.stall_tls {
        swallow(tcp, logs, index).await;
        return Ok(());
    }
    let Some(config) = script.tls.clone() else {
        return Ok(());
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        _ => return Ok(()),
    };
    with_log(logs, index, |l| l.tls = true);
    let mut secure = BufReader::new(tls);
    commands(&mut secure, script, logs, index, true, true).await?;
    Ok(())
}

async fn commands<S>(
    io: &mut BufReader<S>,
    script: &SmtpScript,
    logs: &Logs,
    index: usize,
    in_tls: bool,
    greeted: bool,
) -> std::io::Result<Exit>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut has_mail = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut *io)
            .take(MAX_COMMAND)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(Exit::Closed);
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        with_log(logs, index, |l| {
            l.lines.push(text.clone());
            if in_tls {
                l.lines_in_tls += 1;
            }
        });
        let (verb, args) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_owned()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        if script.drop_after.as_deref() == Some(verb.as_str()) {
            return Ok(Exit::Closed);
        }
        if let Some((_, raw)) = script.raw_replies.iter().find(|(v, _)| *v == verb) {
            io.get_mut().write_all(raw).await?;
            io.get_mut().flush().await?;
            continue;
        }
        let reply: String = if line.len() as u64 >= MAX_COMMAND && !line.ends_with(b"\n") {
            "500 5.5.2 Line too long".to_owned()
        } else if !greeted && verb != "QUIT" {
            "503 5.5.1 No SMTP service here".to_owned()
        } else {
            match verb.as_str() {
                "EHLO" => match &script.ehlo_reply {
                    Some(r) => r.clone(),
                    None => {
                        let mut lines = vec![format!("{} greets {}", script.name, args)];
                        lines.extend(script.extensions.iter().cloned());
                        if script.tls.is_some() && !in_tls {
                            lines.push("STARTTLS".to_owned());
                        }
                        let auth = if in_tls {
                            &script.auth_tls
                        } else {
                            &script.auth_plain
                        };
                        if let Some(mechs) = auth {
                            lines.push(format!("AUTH {mechs}"));
                        }
                        let last = lines.len() - 1;
                        lines
                            .iter()
                            .enumerate()
                            .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                            .collect::<Vec<_>>()
                            .join("\r\n")
                    }
                },
                "HELO" => format!("250 {}", script.name),
                "STARTTLS" if in_tls => "503 5.5.1 TLS already active".to_owned(),
                "STARTTLS" => match (&script.starttls_reply, &script.tls) {
                    (Some(r), _) => r.clone(),
                    (None, Some(_)) => {
                        tokio::time::sleep(script.reply_delay).await;
                        let w = io.get_mut();
                        w.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
                        w.flush().await?;
                        if !script.after_ready.is_empty() {
                            // A separate segment, as an injecting middlebox would send it.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            w.write_all(&script.after_ready).await?;
                            w.flush().await?;
                        }
                        return Ok(Exit::StartTls);
                    }
                    (None, None) => "502 5.5.1 STARTTLS not supported".to_owned(),
                },
                "MAIL" => {
                    let r = choose(&script.mail_rules, &path_of(&args), "250 2.1.0 Ok").to_owned();
                    has_mail = r.starts_with('2');
                    r
                }
                "RCPT" if !has_mail => "503 5.5.1 Error: need MAIL command".to_owned(),
                "RCPT" => {
                    choose(&script.rcpt_rules, &path_of(&args), &script.rcpt_default).to_owned()
                }
                "DATA" => {
                    with_log(logs, index, |l| l.data_attempts += 1);
                    "554 5.5.1 testbed: DATA is never accepted".to_owned()
                }
                "RSET" => {
                    has_mail = false;
                    "250 2.0.0 Ok".to_owned()
                }
                "NOOP" => "250 2.0.0 Ok".to_owned(),
                "VRFY" => "252 2.0.0 Cannot VRFY user".to_owned(),
                "AUTH" => "535 5.7.8 testbed: authentication refused".to_owned(),
                "QUIT" => {
                    with_log(logs, index, |l| l.quit = true);
                    write_reply(io.get_mut(), "221 2.0.0 Bye", Duration::ZERO).await?;
                    return Ok(Exit::Quit);
                }
                _ => "500 5.5.2 Error: command not recognized".to_owned(),
            }
        };
        tokio::time::sleep(script.reply_delay).await;
        write_reply(io.get_mut(), &reply, script.line_pause).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches() {
        assert!(glob("*", ""));
        assert!(glob("postmaster@x.test", "POSTMASTER@x.test"));
        assert!(glob("*@x.test", "a@x.test"));
        assert!(!glob("*@x.test", "a@mx.x.test"));
        assert!(glob("*%*", "relaytest%example.net@[127.0.0.1]"));
        assert!(!glob("*%*", "relaytest@example.net"));
        assert!(glob("", ""));
        assert!(!glob("", "a"));
    }

    #[test]
    fn paths() {
        assert_eq!(path_of("FROM:<>"), "");
        assert_eq!(path_of("FROM:<a@b> SIZE=10"), "a@b");
        assert_eq!(path_of("TO:<\"x@y\"@[1.2.3.4]>"), "\"x@y\"@[1.2.3.4]");
        assert_eq!(path_of("TO: a@b"), "a@b");
    }
}
