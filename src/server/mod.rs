//! The HTTP server: listeners (TCP, Unix, systemd-passed), TLS, hyper connections with limits
//! (header read time, header count, connection caps in [`connections`]), and graceful
//! shutdown. Requests go to [`handler`].

pub mod admin;
pub mod answer;
pub mod connections;
pub mod handler;
pub mod listener;
pub mod output_stream;
pub mod respond;
pub mod route;
pub mod runs_api;
pub mod security;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use connections::{Connection, Connections};

use crate::engine::Dispatcher;
use crate::ops::reload::HookStore;

/// A bound listening socket, opened before the runtime starts (so privileges can be dropped
/// afterwards) and handed to the server.
#[derive(Debug)]
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
    /// Several sockets served alike (systemd may pass more than one).
    Many(Vec<Listener>),
}

/// Server settings derived from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub urlprefix: String,
    /// `-http-methods`: allowed methods for hooks without their own list; empty allows any.
    pub default_methods: Vec<String>,
    /// `-header` headers, set on every response of a matched hook.
    pub response_headers: Vec<(String, String)>,
    pub max_body_size: u64,
    /// Time allowed for the request headers, and again for the body.
    pub read_timeout: Duration,
    pub max_headers: usize,
    pub max_connections: usize,
    /// `-max-connections-per-ip`: most connections from one client address; 0 for no cap.
    pub max_connections_per_ip: usize,
    /// `-first-byte-timeout`: time a new connection has to send something; zero for none.
    pub first_byte_timeout: Duration,
    pub x_request_id: bool,
    pub x_request_id_limit: usize,
    /// How long shutdown waits for running commands.
    pub shutdown_timeout: Duration,
    /// Where hookwire keeps its state (run journal, seen deliveries).
    pub state_dir: std::path::PathBuf,
    /// `-admin-token-file`: every admin request then needs `Authorization: Bearer <token>`.
    pub admin_token: Option<admin::AdminToken>,
    /// Accepted runs are journaled (not `-journal=false`).
    pub journal: bool,
    /// `-trusted-proxies`: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::pipeline::client_ip::TrustedProxies,
    /// `-max-json-depth`, `-max-multipart-parts`.
    pub body_limits: crate::pipeline::request::body::BodyLimits,
}

/// What every connection shares.
#[derive(Debug)]
pub struct State {
    pub settings: Settings,
    pub hooks: Arc<HookStore>,
    /// Concurrency policies, the journal, runs in flight.
    pub dispatcher: Arc<Dispatcher>,
    /// Counters and gauges for `/-/metrics`.
    pub metrics: Arc<crate::ops::metrics::Metrics>,
    /// Delivery ids seen recently (hooks with `dedupe`).
    pub dedupe: crate::store::dedupe::Deduper,
    /// Request budgets of hooks with `rate-limit`.
    pub rate_limits: crate::pipeline::rate_limit::RateLimiter,
    /// Refused admin token attempts, for a rate-limited log line.
    pub admin_failures: admin::FailedAttempts,
    /// The console's login sessions and CSRF key.
    pub sessions: crate::console::Sessions,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The hooks, as adnanh/webhook serves them.
    Hooks,
    /// hookwire's admin routes, reached over this transport.
    Admin(admin::Transport),
}

/// Accepts connections until `shutdown` resolves, then stops accepting and lets requests in
/// flight finish (up to the shutdown timeout).
pub async fn serve(
    listener: Listener,
    surface: Surface,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = AnyListener::from_std(listener)?;
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let connections = Connections::new(
        state.settings.max_connections,
        state.settings.max_connections_per_ip,
    );
    let mut http = hyper::server::conn::http1::Builder::new();
    // Without a timer hyper silently disables the header timeout.
    http.timer(TokioTimer::new())
        .header_read_timeout(state.settings.read_timeout)
        .max_headers(state.settings.max_headers)
        // Go writes canonical header names; some scripts grep for them.
        .title_case_headers(true);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::error!("failed to accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // At a cap this may wait for an idle connection to close; the backlog waits meanwhile.
        let connection = tokio::select! {
            () = &mut shutdown => break,
            connection = connections.admit(peer.ip()) => match connection {
                Some(connection) => Arc::new(connection),
                None => continue,
            },
        };
        let state = state.clone();
        let http = http.clone();
        let tls = tls.clone();
        let handshake_timeout = state.settings.read_timeout;
        tokio::spawn(async move {
            let first_byte_timeout = state.settings.first_byte_timeout;
            if !connection
                .first_byte(stream.first_byte(), first_byte_timeout)
                .await
            {
                tracing::debug!("closed a connection from {peer} before its first byte");
                return;
            }
            match tls {
                None => serve_connection(&http, connection, stream, state, peer, surface).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    let handshake = tokio::select! {
                        handshake = handshake => handshake,
                        () = connection.close_requested() => return,
                    };
                    match handshake {
                        Ok(Ok(stream)) => {
                            serve_connection(&http, connection, stream, state, peer, surface).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!("TLS handshake with {peer} failed: {error}")
                        }
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    connections.close_all();
    tokio::select! {
        () = connections.drained() => {}
        () = tokio::time::sleep(state.settings.shutdown_timeout) => {
            tracing::warn!("requests still in flight after the shutdown timeout were cut off");
        }
    }
    Ok(())
}

/// Serves HTTP on `stream` until the client or hyper closes it. Asked to close (a cap was
/// reached while it was idle, or shutdown), it finishes the request in progress, if any.
async fn serve_connection<S>(
    http: &hyper::server::conn::http1::Builder,
    connection: Arc<Connection>,
    stream: S,
    state: Arc<State>,
    peer: SocketAddr,
    surface: Surface,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn({
        let connection = connection.clone();
        move |request| {
            let state = state.clone();
            let serving = connection.serving();
            async move {
                let response = match surface {
                    Surface::Hooks => handler::handle(state, request, peer).await,
                    Surface::Admin(transport) => {
                        admin::handle(&state, request, peer, transport).await
                    }
                };
                // A streamed answer is still being served until its body ends.
                Ok::<_, Infallible>(connections::serving_until_sent(response, serving))
            }
        }
    });
    let http_connection = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(http_connection);
    let result = tokio::select! {
        result = http_connection.as_mut() => result,
        () = connection.close_requested() => {
            http_connection.as_mut().graceful_shutdown();
            http_connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!("connection closed: {error}");
    }
}

/// A TCP or Unix listener after conversion to Tokio.
enum AnyListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
    /// Accepts from whichever is ready; `next` rotates the first one polled, so a busy
    /// socket cannot starve the others.
    Many {
        listeners: Vec<AnyListener>,
        next: AtomicUsize,
    },
}

/// The stream of an accepted connection.
enum AnyStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for AnyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for AnyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Self::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

impl AnyStream {
    /// Resolves once the client has sent something (or closed the connection), without
    /// consuming it. Readiness alone can be a false positive, so a byte is peeked at.
    async fn first_byte(&self) -> std::io::Result<()> {
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
        use tokio::io::Interest;
        let peek = |fd: BorrowedFd<'_>| {
            let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
            recv(fd.as_raw_fd(), &mut [0], flags).map_err(std::io::Error::from)
        };
        loop {
            let peeked = match self {
                Self::Tcp(stream) => {
                    stream.readable().await?;
                    stream.try_io(Interest::READABLE, || peek(stream.as_fd()))
                }
                Self::Unix(stream) => {
                    stream.readable().await?;
                    stream.try_io(Interest::READABLE, || peek(stream.as_fd()))
                }
            };
            match peeked {
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
                result => return result.map(drop),
            }
        }
    }
}

impl AnyListener {
    fn from_std(listener: Listener) -> std::io::Result<Self> {
        Ok(match listener {
            Listener::Tcp(listener) => {
                listener.set_nonblocking(true)?;
                Self::Tcp(tokio::net::TcpListener::from_std(listener)?)
            }
            Listener::Unix(listener) => {
                listener.set_nonblocking(true)?;
                Self::Unix(tokio::net::UnixListener::from_std(listener)?)
            }
            Listener::Many(listeners) => Self::Many {
                listeners: listeners
                    .into_iter()
                    .map(Self::from_std)
                    .collect::<std::io::Result<_>>()?,
                next: AtomicUsize::new(0),
            },
        })
    }

    async fn accept(&self) -> std::io::Result<(AnyStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<(AnyStream, SocketAddr)>> {
        match self {
            Self::Tcp(listener) => listener.poll_accept(cx).map_ok(|(stream, peer)| {
                let _ = stream.set_nodelay(true);
                (AnyStream::Tcp(stream), peer)
            }),
            // A Unix peer has no IP address; Go reports "@", which ip-whitelist rejects.
            Self::Unix(listener) => listener.poll_accept(cx).map_ok(|(stream, _)| {
                (AnyStream::Unix(stream), SocketAddr::from(([0, 0, 0, 0], 0)))
            }),
            Self::Many { listeners, next } => {
                let first = next.fetch_add(1, Ordering::Relaxed);
                // Every pending listener registers the waker, so any of them wakes the task.
                for offset in 0..listeners.len() {
                    let listener = &listeners[(first + offset) % listeners.len()];
                    if let Poll::Ready(result) = listener.poll_accept(cx) {
                        return Poll::Ready(result);
                    }
                }
                Poll::Pending
            }
        }
    }
}
