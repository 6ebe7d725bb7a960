//! One SMTP connection: the stream (plain, then TLS after STARTTLS), the
//! bounded reply reader, the deadlines, and the transcript of everything said.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::reply::{Reply, ReplyError, ReplyReader, escape_bytes, escape_text};

/// Transcript size bound: a hostile server cannot make us keep more than this.
const MAX_TRANSCRIPT_BYTES: usize = 256 * 1024;

/// Who said a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// mxaudit (the SMTP client).
    Client,
    /// The server.
    Server,
    /// What mxaudit observed about the connection (connect, TLS, timeouts).
    Note,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptLine {
    /// Milliseconds since the connection attempt started.
    pub at_ms: u64,
    /// Who.
    pub speaker: Speaker,
    /// The line, control characters and invalid UTF-8 escaped; nothing redacted.
    pub text: String,
}

/// Everything said on one connection to one address.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    /// `ip:port`.
    pub peer: String,
    /// The lines, in order.
    pub lines: Vec<TranscriptLine>,
    /// True when lines were dropped after [`MAX_TRANSCRIPT_BYTES`].
    pub truncated: bool,
    #[serde(skip)]
    started: Instant,
    #[serde(skip)]
    bytes: usize,
}

impl Transcript {
    /// An empty transcript starting now.
    pub fn new(peer: SocketAddr) -> Transcript {
        Transcript {
            peer: peer.to_string(),
            lines: Vec::new(),
            truncated: false,
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Adds a line (already escaped).
    pub fn push(&mut self, speaker: Speaker, text: String) {
        if self.bytes + text.len() > MAX_TRANSCRIPT_BYTES {
            self.truncated = true;
            return;
        }
        self.bytes += text.len();
        let at_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.lines.push(TranscriptLine {
            at_ms,
            speaker,
            text,
        });
    }

    /// Adds a note.
    pub fn note(&mut self, text: impl Into<String>) {
        self.push(Speaker::Note, text.into());
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            let tag = match line.speaker {
                Speaker::Client => "C:",
                Speaker::Server => "S:",
                Speaker::Note => "--",
            };
            writeln!(
                f,
                "[{:>4}.{:03}] {tag} {}",
                line.at_ms / 1000,
                line.at_ms % 1000,
                line.text
            )?;
        }
        if self.truncated {
            writeln!(
                f,
                "-- transcript truncated at {} KiB",
                MAX_TRANSCRIPT_BYTES / 1024
            )?;
        }
        Ok(())
    }
}

/// The step of the dialogue, named in findings and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// TCP connect.
    Connect,
    /// Waiting for the 220 greeting (RFC 5321 §3.1, §4.3.1).
    Greeting,
    /// EHLO (§4.1.1.1).
    Ehlo,
    /// HELO, the fallback when EHLO is refused (§4.1.1.1, §3.2).
    Helo,
    /// STARTTLS command (RFC 3207 §4).
    StartTls,
    /// The TLS handshake after `220 Ready to start TLS`.
    TlsHandshake,
    /// EHLO again inside TLS (RFC 3207 §4.2).
    EhloTls,
    /// MAIL FROM (§4.1.1.2).
    Mail,
    /// RCPT TO (§4.1.1.3).
    Rcpt,
    /// RSET (§4.1.1.5).
    Rset,
    /// QUIT (§4.1.1.10).
    Quit,
}

impl Stage {
    /// The name used in findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "EHLO",
            Stage::Helo => "HELO",
            Stage::StartTls => "STARTTLS",
            Stage::TlsHandshake => "TLS handshake",
            Stage::EhloTls => "EHLO after STARTTLS",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Rset => "RSET",
            Stage::Quit => "QUIT",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which limit ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The limit of this step (greeting, command, TLS handshake timeout): the
    /// server is too slow.
    Step,
    /// The probe's own budget for the whole session: the server is too slow.
    Session,
    /// The time left to the check as a whole ran out first: undecided.
    Task,
}

/// Why a session step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Nothing (or not all of a reply) arrived in time.
    #[error("{stage}: nothing complete within {}", humantime::format_duration(super::probe::round_ms(*.waited)))]
    Timeout {
        /// Where.
        stage: Stage,
        /// How long we waited.
        waited: Duration,
        /// Which limit fired.
        limit: Limit,
    },
    /// The server closed the connection.
    #[error("{stage}: the server closed the connection")]
    Closed {
        /// Where.
        stage: Stage,
    },
    /// The server broke the protocol; we hung up.
    #[error("{stage}: {error}")]
    Protocol {
        /// Where.
        stage: Stage,
        /// What was wrong.
        error: ReplyError,
    },
    /// The server answered 421 and is closing the channel (RFC 5321 §3.8).
    #[error("{stage}: the server is closing the connection: {reply}")]
    ServiceClosing {
        /// Where.
        stage: Stage,
        /// The 421 reply, escaped.
        reply: String,
    },
    /// A socket error (reset, broken pipe).
    #[error("{stage}: {error}")]
    Io {
        /// Where.
        stage: Stage,
        /// The error.
        error: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("{stage}: {reason}")]
    Tls {
        /// Where.
        stage: Stage,
        /// The TLS library's reason.
        reason: String,
    },
}

impl SessionError {
    /// The step that failed.
    pub fn stage(&self) -> Stage {
        match self {
            SessionError::Timeout { stage, .. }
            | SessionError::Closed { stage }
            | SessionError::Protocol { stage, .. }
            | SessionError::ServiceClosing { stage, .. }
            | SessionError::Io { stage, .. }
            | SessionError::Tls { stage, .. } => *stage,
        }
    }
}

/// The byte stream: plain TCP, then TLS after STARTTLS.
pub enum Stream {
    /// Before STARTTLS.
    Plain(TcpStream),
    /// After a completed handshake.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// After a failed upgrade: nothing can be said any more.
    Gone,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// The deadlines of a session.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// The probe's own budget for this session.
    pub session: Instant,
    /// The check's deadline (minus a margin); earlier than or equal to `session`
    /// only when the check's time, not the probe's budget, is the tighter one.
    pub task: Instant,
}

impl Deadlines {
    /// The deadline of a step that may take `step`, and which limit it is.
    pub fn for_step(&self, step: Duration) -> (Instant, Limit) {
        let step_end = Instant::now() + step;
        let mut best = (step_end, Limit::Step);
        if self.session < best.0 {
            best = (self.session, Limit::Session);
        }
        if self.task < best.0 {
            best = (self.task, Limit::Task);
        }
        best
    }

    /// True when the check's time ran out.
    pub fn task_over(&self) -> bool {
        Instant::now() >= self.task
    }
}

/// An open SMTP connection.
pub struct Session {
    /// The stream.
    pub stream: Stream,
    /// The reply reader (owns the receive buffer).
    pub reader: ReplyReader,
    /// What was said.
    pub transcript: Transcript,
    /// The limits.
    pub deadlines: Deadlines,
    /// Per-command reply timeout (RFC 5321 §4.5.3.2).
    pub command_timeout: Duration,
}

impl Session {
    /// Reads one reply within `step` (and the session's deadlines), writing it
    /// to the transcript, also when it is cut off.
    pub async fn read_reply(
        &mut self,
        stage: Stage,
        step: Duration,
    ) -> Result<Reply, SessionError> {
        let (deadline, limit) = self.deadlines.for_step(step);
        let started = Instant::now();
        let outcome =
            tokio::time::timeout_at(deadline, self.reader.read_reply(&mut self.stream)).await;
        match outcome {
            Ok(Ok(reply)) => {
                for line in &reply.lines {
                    self.transcript.push(Speaker::Server, escape_bytes(line));
                }
                if reply.bare_lf {
                    self.transcript.note(
                        "the reply ended lines with a bare LF instead of CRLF (RFC 5321 §2.3.8)",
                    );
                }
                Ok(reply)
            }
            Ok(Err(error)) => {
                self.flush_partial();
                Err(match error {
                    ReplyError::Closed => SessionError::Closed { stage },
                    ReplyError::Io(error) => SessionError::Io { stage, error },
                    error => SessionError::Protocol { stage, error },
                })
            }
            Err(_) => {
                self.flush_partial();
                Err(SessionError::Timeout {
                    stage,
                    waited: started.elapsed(),
                    limit,
                })
            }
        }
    }

    fn flush_partial(&mut self) {
        for line in self.reader.take_partial() {
            self.transcript.push(Speaker::Server, escape_bytes(&line));
        }
    }

    /// Sends one command line (CRLF added).
    pub async fn send(&mut self, line: &str, stage: Stage) -> Result<(), SessionError> {
        self.transcript.push(Speaker::Client, escape_text(line));
        let (deadline, limit) = self.deadlines.for_step(self.command_timeout);
        let started = Instant::now();
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let write = async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout_at(deadline, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SessionError::Io { stage, error }),
            Err(_) => Err(SessionError::Timeout {
                stage,
                waited: started.elapsed(),
                limit,
            }),
        }
    }

    /// Sends a command and reads its reply within the command timeout.
    pub async fn command(&mut self, line: &str, stage: Stage) -> Result<Reply, SessionError> {
        self.send(line, stage).await?;
        self.read_reply(stage, self.command_timeout).await
    }
}
