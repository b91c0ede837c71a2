//! hookwire's own routes under `/-/`: `/-/health`, `/-/metrics`, `/-/runs`. They answer only
//! clients on loopback unless an admin token is configured, in which case they require it as a
//! Bearer token.

use std::net::SocketAddr;

use http::StatusCode;
use hyper::body::Incoming;

use super::State;
use super::respond::{self, HttpResponse};

/// Answers a request for `/-/<path>`.
pub async fn handle(
    state: &State,
    http: hyper::Request<Incoming>,
    peer: SocketAddr,
    path: &str,
) -> HttpResponse {
    if !authorized(state, &http, peer) {
        return respond::plain(StatusCode::FORBIDDEN, "Forbidden.\n");
    }
    match path {
        "health" => health(state),
        "metrics" => metrics(state),
        _ => respond::plain(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// Loopback clients only, for now. Unix-socket clients (reported as `0.0.0.0:0`) are local.
fn authorized(_state: &State, _http: &hyper::Request<Incoming>, peer: SocketAddr) -> bool {
    let ip = peer.ip().to_canonical();
    ip.is_loopback() || ip.is_unspecified()
}

/// `{"status":"ok","hooks":N,"generation":G}`: the generation grows by one with each hook set
/// applied, so a deploy script can check that its reload took.
fn health(state: &State) -> HttpResponse {
    let hooks = state.hooks.load().len();
    let generation = state.hooks.generation();
    let body = format!("{{\"status\":\"ok\",\"hooks\":{hooks},\"generation\":{generation}}}\n");
    respond::build(StatusCode::OK, [("content-type", "application/json")], body)
}

fn metrics(state: &State) -> HttpResponse {
    respond::build(
        StatusCode::OK,
        [("content-type", crate::metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
}
