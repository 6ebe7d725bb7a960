//! The certificate chain an MX address presents after STARTTLS, and nothing
//! else: connect, greeting, EHLO, STARTTLS, the handshake, QUIT. The `dane`
//! engine matches TLSA records against it (RFC 7672 §3).
//!
//! The certificates are taken as sent: the verifier of `starttls.rs` accepts
//! any chain during the handshake (it still checks that the server holds the
//! key), and DANE decides afterwards. Sessions are paced with the `smtp`
//! engine's through the run's pacer (one at a time per address).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mxaudit_core::pacer::SessionPacer;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::reply::ReplyReader;
use super::session::{Deadlines, Session, Stage, Stream, Transcript};
use super::starttls::{self, TlsClient};

/// Limits of one chain probe.
#[derive(Debug, Clone)]
pub struct ChainProbe {
    /// TCP port.
    pub port: u16,
    /// EHLO argument; `None`: the address literal of the local end (RFC 5321 §4.1.4).
    pub helo_name: Option<String>,
    /// TCP connect.
    pub connect_timeout: Duration,
    /// The greeting.
    pub greeting_timeout: Duration,
    /// Each reply after the greeting.
    pub command_timeout: Duration,
    /// The TLS handshake.
    pub tls_timeout: Duration,
    /// Pause between two sessions to the same address.
    pub session_delay: Duration,
}

/// Why no chain was obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChainError(pub String);

/// Connects to `ip`, says EHLO and STARTTLS, and returns the certificates the
/// server sent (end entity first). `host` is the MX name sent in SNI.
pub async fn peer_chain(
    ip: IpAddr,
    host: &str,
    probe: &ChainProbe,
    tls: &TlsClient,
    pacer: &SessionPacer,
    deadline: Instant,
) -> Result<Vec<CertificateDer<'static>>, ChainError> {
    let peer = SocketAddr::new(ip, probe.port);
    pacer
        .paced(peer, probe.session_delay, deadline, || {
            session(peer, host, probe, tls, deadline)
        })
        .await
        .unwrap_or_else(|| {
            Err(ChainError(
                "the check's time ran out waiting for another session to the same address"
                    .to_owned(),
            ))
        })
}

async fn session(
    peer: SocketAddr,
    host: &str,
    probe: &ChainProbe,
    tls: &TlsClient,
    deadline: Instant,
) -> Result<Vec<CertificateDer<'static>>, ChainError> {
    let fail = |e: &dyn std::fmt::Display| ChainError(format!("{peer}: {e}"));
    let connect = Instant::now() + probe.connect_timeout;
    let tcp = match tokio::time::timeout_at(connect.min(deadline), TcpStream::connect(peer)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(fail(&format!("connect: {e}"))),
        Err(_) => return Err(fail(&"connect: no TCP connection in time")),
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().ok();
    let mut s = Session {
        stream: Stream::Plain(tcp),
        reader: ReplyReader::new(),
        transcript: Transcript::new(peer),
        deadlines: Deadlines {
            session: deadline,
            task: deadline,
        },
        command_timeout: probe.command_timeout,
    };
    let greeting = s
        .read_reply(Stage::Greeting, probe.greeting_timeout)
        .await
        .map_err(|e| fail(&e))?;
    if greeting.code != 220 {
        return Err(fail(&format!("greeting: {}", greeting.summary())));
    }
    let helo = probe.helo_name.clone().unwrap_or_else(|| {
        local
            .map(|a| super::relay::address_literal(a.ip()))
            .unwrap_or_else(|| "[127.0.0.1]".to_owned())
    });
    let ehlo = s
        .command(&format!("EHLO {helo}"), Stage::Ehlo)
        .await
        .map_err(|e| fail(&e))?;
    if ehlo.code != 250 {
        quit(&mut s).await;
        return Err(fail(&format!("EHLO: {}", ehlo.summary())));
    }
    let offers_tls = ehlo
        .texts()
        .iter()
        .skip(1)
        .any(|line| line.trim().eq_ignore_ascii_case("STARTTLS"));
    if !offers_tls {
        quit(&mut s).await;
        return Err(fail(&"EHLO does not offer STARTTLS"));
    }
    let ready = s
        .command("STARTTLS", Stage::StartTls)
        .await
        .map_err(|e| fail(&e))?;
    if ready.code != 220 {
        quit(&mut s).await;
        return Err(fail(&format!("STARTTLS: {}", ready.summary())));
    }
    // RFC 3207 §4.2: nothing said before the handshake counts after it.
    s.reader.discard();
    let name = starttls::server_name(host, peer.ip());
    let negotiated = starttls::upgrade(&mut s, tls, name, probe.tls_timeout)
        .await
        .map_err(|e| fail(&e))?;
    // RFC 5321 §4.1.1.10: say goodbye; the answer does not matter.
    quit(&mut s).await;
    if negotiated.chain.is_empty() {
        return Err(fail(&"the server sent no certificate"));
    }
    Ok(negotiated.chain)
}

async fn quit(s: &mut Session) {
    let wait = s.command_timeout.min(Duration::from_secs(2));
    if s.send("QUIT", Stage::Quit).await.is_ok() {
        let _ = s.read_reply(Stage::Quit, wait).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        use tokio::io::AsyncWriteExt;
        s.stream.shutdown().await
    })
    .await;
}
