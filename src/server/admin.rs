//! hookwire's own routes under `/-/`: `/-/health`, `/-/metrics`, `/-/runs`. They answer only
//! clients on loopback unless an admin token is configured, in which case every client must
//! present it as a Bearer token.

use std::net::SocketAddr;
use std::path::Path;

use http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use subtle::ConstantTimeEq as _;

use super::State;
use super::respond::{self, HttpResponse};

/// Answers a request for `/-/<path>`.
pub async fn handle(
    state: &State,
    http: hyper::Request<Incoming>,
    peer: SocketAddr,
    path: &str,
) -> HttpResponse {
    if let Some(refusal) = refuse(state, &http, peer) {
        return refusal;
    }
    match path {
        "health" => health(state),
        _ if path == "runs" || path.starts_with("runs/") => {
            super::runs_api::handle(state, http.method(), path, http.uri().query()).await
        }
        "metrics" => metrics(state),
        _ => respond::plain(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// The token of `--admin-token-file`. Never printed.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// Reads the token: the file's content without surrounding whitespace.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            format!("cannot read -admin-token-file {}: {error}", path.display())
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!(
                "-admin-token-file {} is empty: put a long random token in it (e.g. `openssl rand -hex 32`)",
                path.display()
            ));
        }
        Ok(Self(token.to_owned()))
    }

    /// The `Authorization` header value that carries this token (for `hookwire runs rerun`).
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `Authorization: Bearer <token>` carries this token (compared in constant time).
    fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.map(HeaderValue::as_bytes) else {
            return false;
        };
        let Some((scheme, presented)) = value.split_at_checked(7) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer ") && bool::from(presented.ct_eq(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// `None` when the client may use the admin routes; otherwise the answer. With a token
/// configured, every client must present it; without one, only local clients are served
/// (Unix-socket clients, reported as `0.0.0.0:0`, are local).
fn refuse(
    state: &State,
    http: &hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Option<HttpResponse> {
    match &state.settings.admin_token {
        Some(token) if token.accepts(http.headers().get(header::AUTHORIZATION)) => None,
        Some(_) => Some(respond::build(
            StatusCode::UNAUTHORIZED,
            [("WWW-Authenticate", "Bearer")],
            "Unauthorized.\n",
        )),
        None => {
            let ip = peer.ip().to_canonical();
            (!(ip.is_loopback() || ip.is_unspecified()))
                .then(|| respond::plain(StatusCode::FORBIDDEN, "Forbidden.\n"))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_checked_exactly() {
        let token = AdminToken("s3cret-token".into());
        let check = |value: &str| token.accepts(Some(&HeaderValue::from_str(value).unwrap()));
        assert!(check("Bearer s3cret-token"));
        assert!(check("bearer s3cret-token"));
        assert!(!check("Bearer s3cret-toke"));
        assert!(!check("Bearer s3cret-token2"));
        assert!(!check("Basic s3cret-token"));
        assert!(!check("Bearer"));
        assert!(!token.accepts(None));
        assert_eq!(format!("{token:?}"), "AdminToken(***)");
    }

    #[test]
    fn token_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        assert_eq!(AdminToken::read(&path).unwrap().0, "abc");
        std::fs::write(&path, "\n").unwrap();
        assert!(AdminToken::read(&path).unwrap_err().contains("is empty"));
        assert!(AdminToken::read(&dir.path().join("none")).is_err());
    }
}
