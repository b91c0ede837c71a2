//! The HTTP server: listeners (TCP, Unix, systemd-passed), TLS, hyper connections with limits,
//! routing and adnanh's responses.

pub mod listener;
pub mod tls;

/// A bound listening socket, opened before the runtime starts (so privileges can be dropped
/// afterwards) and handed to the server.
#[derive(Debug)]
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}
