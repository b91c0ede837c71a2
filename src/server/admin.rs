//! The admin surface: hookwire's own routes (`/-/health`, `/-/metrics`, `/-/runs`) and the
//! console ([`crate::console`]), served only on the admin listener (`-admin-listen`), never on the hooks listener, so no reverse proxy in
//! front of the hooks can expose them.
//!
//! Who may use it:
//! - with `-admin-token-file`, every request must carry the token (`Authorization: Bearer`);
//! - without one, on a Unix socket, whoever the socket file's permissions let in; on TCP, only
//!   loopback peers whose request carries no forwarding header (a local reverse proxy forwards
//!   internet clients from a loopback address) and names a loopback host (a web page whose
//!   name was rebound to 127.0.0.1 names its own host).
//!
//! A state-changing request (anything but GET and HEAD) is refused when a browser says it
//! comes from a page of another origin (`Origin`, `Sec-Fetch-Site`): any website can make a
//! browser POST to a local port. API clients (`hookwire runs rerun`, curl) send no `Origin`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::body::Incoming;
use subtle::ConstantTimeEq as _;

use super::State;
use super::respond::{self, HttpResponse};
use crate::console::{self, Caller};

/// How the admin listener is reached, which decides who is trusted without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A Unix socket: its file permissions decide.
    Unix,
    /// TCP: loopback peers only, unless a token is required.
    Tcp,
}

/// Answers a request on the admin listener: the API under `/-/`, the console elsewhere.
pub async fn handle(
    state: &State,
    http: hyper::Request<Incoming>,
    peer: SocketAddr,
    transport: Transport,
) -> HttpResponse {
    let caller = match admit(state, http.method(), http.headers(), peer, transport) {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    // The raw path, not percent-decoded: `/-/%68ealth` is not `/-/health`.
    let Some(path) = admin_path(http.uri().path()) else {
        return console::handle(state, http, caller).await;
    };
    if !caller.admitted {
        state.admin_failures.record(&caller.from);
        return respond::build(
            StatusCode::UNAUTHORIZED,
            [("WWW-Authenticate", "Bearer")],
            "Unauthorized: this admin listener needs its token (Authorization: Bearer).\n",
        );
    }
    match path {
        "health" => health(state),
        "metrics" => metrics(state),
        _ if path == "runs" || path.starts_with("runs/") => {
            super::runs_api::handle(
                state,
                http.method(),
                path,
                http.uri().query(),
                http.headers(),
            )
            .await
        }
        _ => respond::plain(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// The part of an admin path after `/-/`; `None` for anything else.
pub fn admin_path(raw_path: &str) -> Option<&str> {
    raw_path.strip_prefix("/-/")
}

/// Why `-admin-token-file` gives no token.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error("cannot read -admin-token-file {}: {error}", path.display())]
    Unreadable {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(
        "-admin-token-file {} is empty: put a long random token in it (e.g. `openssl rand -hex 32`)",
        .0.display()
    )]
    Empty(std::path::PathBuf),
}

/// The token of `-admin-token-file`. Never printed.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// Reads the token: the file's content without surrounding whitespace.
    pub fn read(path: &Path) -> Result<Self, AdminTokenError> {
        let text = std::fs::read_to_string(path).map_err(|error| AdminTokenError::Unreadable {
            path: path.to_path_buf(),
            error,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(AdminTokenError::Empty(path.to_path_buf()));
        }
        Ok(Self(token.to_owned()))
    }

    /// The `Authorization` header value that carries this token (for `hookwire runs rerun`).
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `Authorization: Bearer <token>` carries this token.
    fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.map(HeaderValue::as_bytes) else {
            return false;
        };
        let Some((scheme, presented)) = value.split_at_checked(7) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer ") && self.matches(presented)
    }

    /// Whether `presented` is this token, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(presented.ct_eq(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// Logs failed token attempts, at most one line per interval, with the count of the others:
/// a guessing client must not flood the log.
#[derive(Debug, Default)]
pub struct FailedAttempts(Mutex<Option<(Instant, u64)>>);

impl FailedAttempts {
    const INTERVAL: Duration = Duration::from_secs(10);

    /// Counts a refused token from `from` (a client address, or the admin socket).
    pub fn record(&self, from: &str) {
        let mut state = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        let now = Instant::now();
        match &mut *state {
            Some((since, suppressed)) if now.duration_since(*since) < Self::INTERVAL => {
                *suppressed += 1;
            }
            last => {
                let suppressed = last.map_or(0, |(_, count)| count);
                tracing::warn!(
                    "admin request from {from} refused: missing or wrong admin token \
                     ({suppressed} more refused in the previous {}s)",
                    Self::INTERVAL.as_secs()
                );
                *last = Some((now, 0));
            }
        }
    }
}

/// Headers a reverse proxy adds: a request with one was forwarded for another client.
const FORWARDING_HEADERS: [&str; 3] = ["x-forwarded-for", "forwarded", "x-real-ip"];

/// Who the caller is, or the answer that turns them away. Without a token everyone who gets
/// this far is admitted; with one, a caller is admitted with the token or a live console
/// session, and otherwise may only reach the login page.
fn admit(
    state: &State,
    method: &Method,
    headers: &HeaderMap,
    peer: SocketAddr,
    transport: Transport,
) -> Result<Caller, HttpResponse> {
    let from = match transport {
        Transport::Tcp => peer.to_string(),
        Transport::Unix => "the admin socket".to_owned(),
    };
    let caller = match &state.settings.admin_token {
        Some(token) => {
            let session = console::session_cookie(headers)
                .filter(|session| state.sessions.is_live(session))
                .map(str::to_owned);
            Caller {
                admitted: session.is_some() || token.accepts(headers.get(header::AUTHORIZATION)),
                session,
                from,
            }
        }
        None if transport == Transport::Unix => Caller {
            admitted: true,
            session: None,
            from,
        },
        None => {
            if let Some(reason) = untrusted_without_token(headers, peer) {
                tracing::warn!("admin request from {peer} refused: {reason}");
                return Err(respond::build(
                    StatusCode::FORBIDDEN,
                    [],
                    format!("Forbidden: {reason}; set -admin-token-file to serve such clients.\n"),
                ));
            }
            Caller {
                admitted: true,
                session: None,
                from,
            }
        }
    };
    if *method != Method::GET && *method != Method::HEAD && is_cross_site(headers) {
        tracing::warn!(
            "admin {method} request from {peer} refused: sent by a page of another site"
        );
        return Err(respond::plain(
            StatusCode::FORBIDDEN,
            "Forbidden: a page of another site cannot change hookwire's state.\n",
        ));
    }
    Ok(caller)
}

/// Why a TCP request without a token is not served, if it is not.
fn untrusted_without_token(headers: &HeaderMap, peer: SocketAddr) -> Option<&'static str> {
    if !peer.ip().to_canonical().is_loopback() {
        return Some("not a loopback client");
    }
    if FORWARDING_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name))
    {
        return Some("forwarded by a proxy for another client");
    }
    // Every one, should a client send several.
    let mut hosts = headers.get_all(header::HOST).iter();
    if !hosts.all(|host| host.to_str().is_ok_and(is_loopback_host)) {
        return Some("the Host header names another host");
    }
    None
}

/// `localhost`, or a loopback IP, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether a browser says the request comes from a page of another origin: `Sec-Fetch-Site:
/// cross-site` or `same-site`, or an `Origin` that is not this listener's own (`http://` and
/// the `Host` the request was sent to).
fn is_cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if fetch_site.eq_ignore_ascii_case(b"cross-site")
        || fetch_site.eq_ignore_ascii_case(b"same-site")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let own = [b"http://".as_slice(), host].concat();
    !origin.as_bytes().eq_ignore_ascii_case(&own) || host.is_empty()
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
        [("content-type", crate::ops::metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
    }

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
        assert!(
            AdminToken::read(&path)
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
        assert!(AdminToken::read(&dir.path().join("none")).is_err());
    }

    #[test]
    fn only_direct_loopback_clients_naming_a_loopback_host_are_trusted() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let local6: SocketAddr = "[::1]:5000".parse().unwrap();
        let host = |h: &str| headers(&[("host", h)]);
        assert_eq!(
            untrusted_without_token(&host("127.0.0.1:9001"), local),
            None
        );
        assert_eq!(
            untrusted_without_token(&host("localhost:9001"), local),
            None
        );
        assert_eq!(untrusted_without_token(&host("[::1]:9001"), local6), None);
        assert_eq!(untrusted_without_token(&HeaderMap::new(), local), None);
        assert!(
            untrusted_without_token(&host("127.0.0.1"), "10.0.0.1:1".parse().unwrap()).is_some()
        );
        assert!(untrusted_without_token(&host("rebound.example:9001"), local).is_some());
        for forwarded in ["X-Forwarded-For", "Forwarded", "X-Real-IP"] {
            let with = headers(&[("host", "127.0.0.1:9001"), (forwarded, "203.0.113.9")]);
            assert!(
                untrusted_without_token(&with, local).is_some(),
                "{forwarded}"
            );
        }
    }

    #[test]
    fn pages_of_other_sites_are_cross_site() {
        let host = ("host", "127.0.0.1:9001");
        assert!(!is_cross_site(&headers(&[host])));
        assert!(!is_cross_site(&headers(&[
            host,
            ("origin", "http://127.0.0.1:9001")
        ])));
        assert!(!is_cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(is_cross_site(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(is_cross_site(&headers(&[host, ("origin", "null")])));
        assert!(is_cross_site(&headers(&[
            host,
            ("origin", "http://127.0.0.1:9002")
        ])));
        assert!(is_cross_site(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(is_cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(is_cross_site(&headers(&[("origin", "http://")])));
    }
}
