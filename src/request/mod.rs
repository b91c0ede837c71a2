//! The request stage: one immutable [`Request`] built once per delivery, holding everything the
//! later stages (rules, plan) may read. Nothing after this stage touches hyper types.

pub mod body;
pub mod form;
pub mod json;
pub mod multipart;
pub mod source;
pub mod value;
pub mod xml;

use std::net::SocketAddr;

use bytes::Bytes;

pub use source::{Argument, ParamError, Source};
pub use value::{Map, Value};

/// A webhook delivery as the rules and the plan see it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Log correlation id (6 hex chars, or the client's `X-Request-Id` with `-x-request-id`).
    pub id: String,
    /// The HTTP method exactly as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The TCP peer address; `request` source `remote-addr` renders it as Go does (`ip:port`).
    pub remote_addr: SocketAddr,
    /// Header name in Go's canonical form (`X-Hub-Signature`) to the first value, as a string
    /// [`Value`]; `parse-parameters-as-json` may replace a value by an object. `Host` is absent.
    pub headers: Map,
    /// Query parameter to its first value (URL-decoded), as a string [`Value`].
    pub query: Map,
    /// The content type that chose the parser (the hook's `incoming-payload-content-type` first).
    pub content_type: String,
    /// The raw body bytes exactly as received.
    pub body: Bytes,
    /// The parsed payload: `None` when the content type has no parser (renders as `null`).
    pub payload: Option<Map>,
}

// TEMPORARY stubs (replaced by the request module's implementation).
pub fn headers_map<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Map {
    headers
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                Value::String(String::from_utf8_lossy(v).into_owned()),
            )
        })
        .collect()
}
pub fn query_map(_query: &str) -> Map {
    Map::new()
}
impl Request {
    pub fn apply_json_parameters(&mut self, _args: &[Argument]) -> Vec<String> {
        Vec::new()
    }
}
