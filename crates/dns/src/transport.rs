//! UDP sockets reused across queries, for name servers on loopback.
//!
//! hickory binds a fresh UDP socket on a random port for every query and
//! closes it afterwards: source-port randomisation, which adds ~16 bits to the
//! 16-bit message id against off-path spoofing (RFC 5452 §9.2). That costs a
//! socket(), bind(), epoll registration and close() per question, about half
//! of the CPU an audit of many domains spends (docs/performance.md).
//!
//! On loopback nobody off-path can inject packets, so there the sockets are
//! kept in a pool: each query still has a socket to itself (hickory reads
//! replies from it and skips any whose source, id or question does not match,
//! so a late reply to an earlier query on the same socket is ignored), and when
//! the query ends the socket goes back to the pool instead of being closed.
//! For any other name server the sockets are fresh per query, as in hickory.
//!
//! Written here because hickory offers no socket reuse for UDP (0.26: the
//! `RuntimeProvider::bind_udp` hook is the supported point of customisation).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hickory_resolver::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_resolver::net::runtime::{
    DnsUdpSocket, RuntimeProvider, TokioHandle, TokioRuntimeProvider, TokioTime,
};
use tokio::net::{TcpStream, UdpSocket};

use crate::cache::lock;

/// Sockets kept at most per address family; more in flight are closed when done.
const MAX_POOLED: usize = 1024;

/// Tokio's runtime provider, with pooled UDP sockets when `reuse` is set.
#[derive(Clone, Default)]
pub(crate) struct PooledUdpProvider {
    tokio: TokioRuntimeProvider,
    reuse: bool,
    pool: Arc<SocketPool>,
}

#[derive(Default)]
struct SocketPool {
    v4: Mutex<Vec<UdpSocket>>,
    v6: Mutex<Vec<UdpSocket>>,
}

impl SocketPool {
    fn slot(&self, v4: bool) -> &Mutex<Vec<UdpSocket>> {
        if v4 { &self.v4 } else { &self.v6 }
    }

    fn take(&self, v4: bool) -> Option<UdpSocket> {
        lock(self.slot(v4)).pop()
    }

    fn give(&self, socket: UdpSocket, v4: bool) {
        let mut sockets = lock(self.slot(v4));
        if sockets.len() < MAX_POOLED {
            sockets.push(socket);
        }
    }
}

impl PooledUdpProvider {
    /// Reuses sockets only when `reuse` (every name server on loopback).
    pub(crate) fn new(reuse: bool) -> PooledUdpProvider {
        PooledUdpProvider {
            tokio: TokioRuntimeProvider::default(),
            reuse,
            pool: Arc::default(),
        }
    }
}

/// A UDP socket used by one query at a time; back to the pool when dropped.
pub(crate) struct PooledUdp {
    socket: Option<UdpSocket>,
    v4: bool,
    pool: Option<Arc<SocketPool>>,
}

impl PooledUdp {
    fn socket(&self) -> io::Result<&UdpSocket> {
        self.socket
            .as_ref()
            .ok_or_else(|| io::Error::other("UDP socket already returned to the pool"))
    }
}

impl Drop for PooledUdp {
    fn drop(&mut self) {
        if let (Some(socket), Some(pool)) = (self.socket.take(), &self.pool) {
            pool.give(socket, self.v4);
        }
    }
}

impl DnsUdpSocket for PooledUdp {
    type Time = TokioTime;

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        match self.socket() {
            Ok(s) => DnsUdpSocket::poll_recv_from(s, cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        match self.socket() {
            Ok(s) => DnsUdpSocket::poll_send_to(s, cx, buf, target),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl RuntimeProvider for PooledUdpProvider {
    type Handle = TokioHandle;
    type Timer = TokioTime;
    type Udp = PooledUdp;
    type Tcp = AsyncIoTokioAsStd<TcpStream>;

    fn create_handle(&self) -> Self::Handle {
        self.tokio.create_handle()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Tcp, io::Error>>>> {
        self.tokio.connect_tcp(server_addr, bind_addr, timeout)
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        _server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Udp, io::Error>>>> {
        let v4 = local_addr.is_ipv4();
        let pool = self.reuse.then(|| self.pool.clone());
        Box::pin(async move {
            if let Some(socket) = pool.as_ref().and_then(|p| p.take(v4)) {
                return Ok(PooledUdp {
                    socket: Some(socket),
                    v4,
                    pool,
                });
            }
            // A pooled socket keeps the port hickory chose for its first query.
            let socket = UdpSocket::bind(local_addr).await?;
            Ok(PooledUdp {
                socket: Some(socket),
                v4,
                pool,
            })
        })
    }
}
