//! SMTP replies (RFC 5321 §4.2), read with bounds on line length, line count
//! and bytes, never with line regexes.
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF          ; RFC 5321 §4.2
//! Reply-code = %x32-35 %x30-35 %x30-39
//! textstring = 1*(%d09 / %d32-126)                        ; HT, SP, printable US-ASCII
//! ```
//!
//! The reader keeps every byte it has not yet handed out in its own buffer, so
//! that the session can see what a server sent *after* a reply (pipelined
//! replies, or plaintext left over at the STARTTLS upgrade, RFC 3207 §4.2).
//! All state lives in the reader, not in the future: a read cut by a timeout
//! loses nothing, and the lines of a half-read reply stay available for the
//! transcript.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest reply line accepted, CRLF included. RFC 5321 §4.5.3.1.5 sets 512
/// octets for reply lines; real servers exceed it in EHLO keywords and banners,
/// so we accept the 1000 octets of a text line (§4.5.3.1.6) and call anything
/// longer a protocol error.
pub const MAX_LINE: usize = 1000;

/// Most lines in one reply. RFC 5321 sets no limit; an EHLO reply has a few
/// dozen at most, and a server sending endless continuation lines must not
/// make us read forever.
pub const MAX_LINES: usize = 100;

/// Most bytes read from one server in one session: 19 tests of three
/// commands, each with a full EHLO-sized reply, fit many times over; a server
/// that sends more is not answering our commands.
pub const MAX_SESSION_BYTES: usize = 1024 * 1024;

/// How much is read from the socket at once.
const CHUNK: usize = 4096;

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (§4.2.1), the same on every line.
    pub code: u16,
    /// The lines as received, code included, without the line ending.
    pub lines: Vec<Vec<u8>>,
    /// True when some line ended in a bare LF instead of CRLF (§2.3.8 requires CRLF).
    pub bare_lf: bool,
}

impl Reply {
    /// The first digit: 2 positive, 3 intermediate, 4 transient, 5 permanent (§4.2.1).
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// A 2yz reply.
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }

    /// The text of each line after the code and separator, escaped.
    pub fn texts(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| escape_bytes(l.get(4..).unwrap_or_default()))
            .collect()
    }

    /// The first line, code included, escaped; `(+N lines)` when there are more.
    pub fn summary(&self) -> String {
        let first = self
            .lines
            .first()
            .map(|l| escape_bytes(l))
            .unwrap_or_default();
        match self.lines.len() {
            0 | 1 => first,
            n => format!("{first} (+{} lines)", n - 1),
        }
    }

    /// Every line, code included, escaped, joined with ` / `.
    pub fn full(&self) -> String {
        self.lines
            .iter()
            .map(|l| escape_bytes(l))
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// Why no reply could be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The server closed the connection (end of stream), possibly in the middle of a reply.
    #[error("the server closed the connection")]
    Closed,
    /// A line longer than [`MAX_LINE`] octets (RFC 5321 §4.5.3.1.5).
    #[error("reply line longer than {MAX_LINE} octets (RFC 5321 §4.5.3.1.5)")]
    LineTooLong,
    /// More than [`MAX_LINES`] lines in one reply.
    #[error("more than {MAX_LINES} lines in one reply")]
    TooManyLines,
    /// A line that does not start with a reply code (RFC 5321 §4.2).
    #[error("not an SMTP reply line (RFC 5321 §4.2): `{0}`")]
    Malformed(String),
    /// The lines of a multi-line reply carry different codes (RFC 5321 §4.2.1).
    #[error("reply code changed from {first} to {then} within one reply (RFC 5321 §4.2.1)")]
    CodeChanged {
        /// The code of the first line.
        first: u16,
        /// The code that differs.
        then: u16,
    },
    /// More than [`MAX_SESSION_BYTES`] from the server in one session.
    #[error("more than {} KiB from the server in one session", MAX_SESSION_BYTES / 1024)]
    TooMuchData,
    /// A socket error (e.g. connection reset).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads replies from a stream it does not own (so that the stream can be
/// upgraded to TLS between replies).
#[derive(Debug, Default)]
pub struct ReplyReader {
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Complete lines of the reply being read.
    pending: Vec<Vec<u8>>,
    pending_code: Option<u16>,
    pending_bare_lf: bool,
    /// Bytes received so far in this session.
    received: usize,
}

impl ReplyReader {
    /// A reader with an empty buffer.
    pub fn new() -> ReplyReader {
        ReplyReader::default()
    }

    /// Bytes received but not part of any reply handed out yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets buffered bytes and any half-read reply (at the STARTTLS upgrade,
    /// plaintext must never be read as if it came through TLS: RFC 3207 §4.2).
    pub fn discard(&mut self) -> Vec<u8> {
        self.pending.clear();
        self.pending_code = None;
        self.pending_bare_lf = false;
        std::mem::take(&mut self.buf)
    }

    /// The lines of a reply that was cut off (by a timeout, the end of the
    /// stream or a protocol error), followed by any unterminated bytes; for the
    /// transcript. Clears them.
    pub fn take_partial(&mut self) -> Vec<Vec<u8>> {
        let mut lines = std::mem::take(&mut self.pending);
        self.pending_code = None;
        self.pending_bare_lf = false;
        if !self.buf.is_empty() {
            let tail = std::mem::take(&mut self.buf);
            lines.push(tail.into_iter().take(MAX_LINE).collect());
        }
        lines
    }

    /// Takes whatever the server sends within `wait` into the buffer (at most
    /// [`MAX_LINE`] octets), without parsing it: for the moment after `220 Ready
    /// to start TLS`, when a correct server sends nothing (RFC 3207 §4.2).
    pub async fn collect_unsolicited<S>(&mut self, stream: &mut S, wait: std::time::Duration)
    where
        S: AsyncRead + Unpin + ?Sized,
    {
        let until = tokio::time::Instant::now() + wait;
        while self.buf.len() < MAX_LINE {
            let mut chunk = [0u8; CHUNK];
            let room = (MAX_LINE - self.buf.len()).min(CHUNK);
            match tokio::time::timeout_at(until, stream.read(&mut chunk[..room])).await {
                Ok(Ok(n)) if n > 0 => {
                    self.received += n;
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
                _ => return,
            }
        }
    }

    /// Reads one complete reply. Cancel-safe: when the future is dropped (a
    /// timeout), what was read so far stays in the reader.
    pub async fn read_reply<S>(&mut self, stream: &mut S) -> Result<Reply, ReplyError>
    where
        S: AsyncRead + Unpin + ?Sized,
    {
        loop {
            while let Some(line) = self.next_line()? {
                if let Some(reply) = self.accept_line(line)? {
                    return Ok(reply);
                }
            }
            let mut chunk = [0u8; CHUNK];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(ReplyError::Closed);
            }
            self.received += n;
            if self.received > MAX_SESSION_BYTES {
                return Err(ReplyError::TooMuchData);
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    /// Takes one LF-terminated line out of the buffer, without its line ending.
    fn next_line(&mut self) -> Result<Option<Vec<u8>>, ReplyError> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(lf) if lf < MAX_LINE => {
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                } else {
                    self.pending_bare_lf = true;
                }
                Ok(Some(line))
            }
            Some(_) => Err(ReplyError::LineTooLong),
            None if self.buf.len() >= MAX_LINE => Err(ReplyError::LineTooLong),
            None => Ok(None),
        }
    }

    /// Adds a line to the reply being read; returns the reply when the line was its last.
    fn accept_line(&mut self, line: Vec<u8>) -> Result<Option<Reply>, ReplyError> {
        let Some((code, last)) = parse_code(&line) else {
            let shown = escape_bytes(&line);
            self.pending.push(line);
            return Err(ReplyError::Malformed(shown));
        };
        if let Some(first) = self.pending_code
            && first != code
        {
            self.pending.push(line);
            return Err(ReplyError::CodeChanged { first, then: code });
        }
        self.pending_code = Some(code);
        self.pending.push(line);
        if last {
            let reply = Reply {
                code,
                lines: std::mem::take(&mut self.pending),
                bare_lf: self.pending_bare_lf,
            };
            self.pending_code = None;
            self.pending_bare_lf = false;
            return Ok(Some(reply));
        }
        if self.pending.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
        Ok(None)
    }
}

/// The code of a reply line and whether it is the last line of its reply:
/// `Reply-code ( "-" / SP / end of line )` (RFC 5321 §4.2).
fn parse_code(line: &[u8]) -> Option<(u16, bool)> {
    let [a, b, c, rest @ ..] = line else {
        return None;
    };
    if !(b'2'..=b'5').contains(a) || !(b'0'..=b'5').contains(b) || !c.is_ascii_digit() {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    match rest.first() {
        None | Some(b' ') => Some((code, true)),
        Some(b'-') => Some((code, false)),
        Some(_) => None,
    }
}

/// Untrusted protocol text made safe to show: valid UTF-8 is kept (servers
/// answer in many languages), control characters, bidirectional overrides and
/// backslashes are escaped, invalid bytes become `\xNN`. Nothing is removed.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            push_escaped(&mut out, ch);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// [`escape_bytes`] for text already in a `str`.
pub fn escape_text(text: &str) -> String {
    escape_bytes(text.as_bytes())
}

fn push_escaped(out: &mut String, ch: char) {
    match ch {
        '\\' => out.push_str("\\\\"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
        // C1 controls, and the bidirectional overrides and isolates that make a
        // terminal show text in another order than it was sent.
        c if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> (Vec<Result<Reply, String>>, ReplyReader) {
        let mut reader = ReplyReader::new();
        let mut stream = input;
        let mut out = Vec::new();
        loop {
            match reader.read_reply(&mut stream).await {
                Ok(r) => out.push(Ok(r)),
                Err(ReplyError::Closed) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        (out, reader)
    }

    #[tokio::test]
    async fn rfc5321_4_2_multiline_reply() {
        let (replies, _) =
            read_all(b"250-mx.example.com Hello\r\n250-SIZE 1000\r\n250 STARTTLS\r\n").await;
        let [Ok(r)] = replies.as_slice() else {
            panic!("{replies:?}")
        };
        assert_eq!(r.code, 250);
        assert_eq!(r.texts(), ["mx.example.com Hello", "SIZE 1000", "STARTTLS"]);
        assert_eq!(r.summary(), "250-mx.example.com Hello (+2 lines)");
        assert!(!r.bare_lf);
    }

    #[tokio::test]
    async fn rfc5321_4_2_code_alone_and_bare_lf() {
        let (replies, _) = read_all(b"250\n354 go\r\n").await;
        assert_eq!(replies.len(), 2);
        let Ok(r) = &replies[0] else { panic!() };
        assert_eq!((r.code, r.bare_lf), (250, true));
        let Ok(r) = &replies[1] else { panic!() };
        assert_eq!((r.code, r.bare_lf), (354, false));
    }

    #[tokio::test]
    async fn rfc5321_4_2_1_code_must_not_change() {
        let (replies, _) = read_all(b"250-a\r\n251 b\r\n").await;
        assert_eq!(
            replies[0].as_ref().err().map(String::as_str),
            Some("reply code changed from 250 to 251 within one reply (RFC 5321 §4.2.1)")
        );
    }

    #[tokio::test]
    async fn rfc5321_4_2_malformed_lines() {
        for bad in [
            &b"hello\r\n"[..],
            b"2500 x\r\n",
            b"650 x\r\n",
            b"26x\r\n",
            b"\r\n",
        ] {
            let (replies, _) = read_all(bad).await;
            assert!(
                replies[0]
                    .as_ref()
                    .is_err_and(|e| e.starts_with("not an SMTP reply line")),
                "{bad:?}: {replies:?}"
            );
        }
    }

    #[tokio::test]
    async fn rfc5321_4_5_3_1_5_line_length_bounded() {
        let mut endless = b"220 ".to_vec();
        endless.extend(std::iter::repeat_n(b'a', 5000));
        let (replies, _) = read_all(&endless).await;
        assert!(
            replies[0]
                .as_ref()
                .is_err_and(|e| e.contains("longer than 1000"))
        );
        // Exactly at the limit (998 + CRLF) is fine.
        let mut edge = b"220 ".to_vec();
        edge.extend(std::iter::repeat_n(b'a', 994));
        edge.extend_from_slice(b"\r\n");
        assert_eq!(edge.len(), 1000);
        let (replies, _) = read_all(&edge).await;
        assert!(replies[0].is_ok());
    }

    #[tokio::test]
    async fn reply_lines_bounded() {
        let many: Vec<u8> = b"250-x\r\n".repeat(10_000);
        let (replies, _) = read_all(&many).await;
        assert!(
            replies[0]
                .as_ref()
                .is_err_and(|e| e.contains("more than 100"))
        );
    }

    #[tokio::test]
    async fn session_bytes_bounded() {
        // Many short, valid replies: each is fine, the sum is not.
        let flood: Vec<u8> = b"250 ok\r\n".repeat(MAX_SESSION_BYTES / 8 + 1000);
        let mut reader = ReplyReader::new();
        let mut stream: &[u8] = &flood;
        let mut replies = 0usize;
        let err = loop {
            match reader.read_reply(&mut stream).await {
                Ok(_) => replies += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, ReplyError::TooMuchData), "{err}");
        assert!(replies > 100_000);
    }

    #[tokio::test]
    async fn pipelined_bytes_stay_buffered() {
        let mut reader = ReplyReader::new();
        let mut stream: &[u8] = b"220 ready\r\n250 injected\r\n";
        let r = reader.read_reply(&mut stream).await.expect("reply");
        assert_eq!(r.code, 220);
        assert_eq!(reader.buffered(), b"250 injected\r\n");
        assert_eq!(reader.discard(), b"250 injected\r\n");
        assert!(reader.buffered().is_empty());
    }

    #[tokio::test]
    async fn partial_reply_kept_for_transcript() {
        let mut reader = ReplyReader::new();
        let mut stream: &[u8] = b"250-first\r\n250-sec";
        assert!(matches!(
            reader.read_reply(&mut stream).await,
            Err(ReplyError::Closed)
        ));
        assert_eq!(
            reader.take_partial(),
            vec![b"250-first".to_vec(), b"250-sec".to_vec()]
        );
    }

    #[test]
    fn escaping_keeps_text_and_shows_bytes() {
        assert_eq!(
            escape_bytes(b"550 \xff\xfe \x1b[31m \\ \r\n\t"),
            "550 \\xff\\xfe \\x1b[31m \\\\ \\r\\n\\t"
        );
        assert_eq!(
            escape_text("554 拒否 \u{202e}evil"),
            "554 拒否 \\u{202e}evil"
        );
        assert_eq!(escape_text("\u{85}"), "\\u{85}");
    }
}
