//! Ceiling servers for `bench/run`: what a bare hyper 1.x server reaches on this machine, with
//! none of a hook server's work, so the benchmark can say how close hookwire gets to the limit.
//!
//! `ceiling [ADDR]` reads each request's body and answers 404 (the ceiling for `miss`, `reject`
//! and `large`). `ceiling spawn [ADDR]` reads the body, runs `/bin/true`, waits for it to exit
//! and answers 200 with its output (the ceiling for `github`). ADDR defaults to 127.0.0.1:9100.
//!
//! Run with `cargo run --release --example ceiling -- [spawn] [ADDR]`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const DEFAULT_ADDR: &str = "127.0.0.1:9100";

/// What the server does with each request.
#[derive(Clone, Copy)]
enum Mode {
    /// Read the body, answer 404.
    NotFound,
    /// Read the body, run `/bin/true`, answer 200 with its output.
    Spawn,
}

#[tokio::main]
async fn main() -> ExitCode {
    let (mode, addr) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("ceiling: {message}\nusage: ceiling [spawn] [ADDR]");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("ceiling: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: say so and keep serving.
                eprintln!("ceiling: accept: {error}");
                continue;
            }
        };
        // Go's net/http (adnanh/webhook) sets TCP_NODELAY on every connection; do the same so
        // the ceiling is not slowed by Nagle's algorithm where the servers are not. Failing to
        // set it only costs speed.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(mode, request));
            // A client that goes away mid-request ends its connection; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Parses `[spawn] [ADDR]`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(Mode, SocketAddr), String> {
    let mut first = args.next();
    let mode = if first.as_deref() == Some("spawn") {
        first = args.next();
        Mode::Spawn
    } else {
        Mode::NotFound
    };
    let addr = first.as_deref().unwrap_or(DEFAULT_ADDR);
    if let Some(extra) = args.next() {
        return Err(format!("unexpected argument `{extra}`"));
    }
    let addr = addr
        .parse()
        .map_err(|error| format!("invalid address `{addr}`: {error}"))?;
    Ok((mode, addr))
}

/// Answers one request. The body is always read in full first, as a hook server must before
/// it can evaluate a rule (and so that the connection stays usable for the next request).
async fn handle(
    mode: Mode,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.into_body().collect().await.is_err() {
        return Ok(respond(StatusCode::BAD_REQUEST, Bytes::new()));
    }
    let response = match mode {
        Mode::NotFound => respond(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"Hook not found."),
        ),
        Mode::Spawn => match tokio::process::Command::new("/bin/true").output().await {
            Ok(output) => respond(StatusCode::OK, Bytes::from(output.stdout)),
            Err(error) => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from(format!("cannot run /bin/true: {error}")),
            ),
        },
    };
    Ok(response)
}

/// A response with `status` and `body`.
fn respond(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
