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

/// Go's `textproto.CanonicalMIMEHeaderKey`: the first letter and each letter after a `-`
/// upper-cased, the rest lower-cased (`x-hub-signature` → `X-Hub-Signature`). A name holding a
/// byte that is not an HTTP token character is returned unchanged, as Go does.
pub fn canonical_header_key(name: &str) -> String {
    if !name.bytes().all(is_token_byte) {
        return name.to_owned();
    }
    let mut upper = true;
    name.bytes()
        .map(|b| {
            let c = if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            };
            upper = c == b'-';
            char::from(c)
        })
        .collect()
}

/// RFC 7230 `tchar`, Go's `validHeaderFieldByte`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The request headers as adnanh sees them: canonical name → first value, as a string.
/// `Host` is left out because Go's server moves it out of the header map.
pub fn headers_map<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Map {
    let mut map = Map::new();
    for (name, value) in headers {
        let key = canonical_header_key(name);
        if key == "Host" || map.contains_key(&key) {
            continue;
        }
        map.insert(
            key,
            Value::String(String::from_utf8_lossy(value).into_owned()),
        );
    }
    map
}

/// The URL query as adnanh sees it (Go's `URL.Query()`, errors ignored): pairs split on `&`, a
/// pair holding a `;` or a bad `%` escape skipped while the others are kept, `+` as a space, the
/// first value of a repeated key.
pub fn query_map(query: &str) -> Map {
    let mut map = Map::new();
    for (key, value) in form::pairs(query.as_bytes()).flatten() {
        map.entry(key).or_insert(Value::String(value));
    }
    map
}

impl Request {
    /// adnanh's `ParseJSONParameters` (`parse-parameters-as-json`): each argument's value, a
    /// string holding a JSON object, replaces the node it came from (a header, a query parameter
    /// or a payload field), so that later lookups can walk into it. Returns the problems to log;
    /// a value that is not a JSON object is left as it was.
    ///
    /// Dotted names work here; adnanh 2.8 panics on them.
    pub fn apply_json_parameters(&mut self, args: &[Argument]) -> Vec<String> {
        let mut problems = Vec::new();
        for arg in args {
            let text = match arg.get(self) {
                Ok(text) => text,
                Err(e) => {
                    problems.push(format!("parse-parameters-as-json: {e}"));
                    continue;
                }
            };
            // Go decodes into a map: `null` gives a nil map (rendered `null`), not an error.
            let decoded = match json::decode_object(&text) {
                Ok(Some(map)) => Value::Object(map),
                Ok(None) => Value::Null,
                Err(e) => {
                    problems.push(format!(
                        "parse-parameters-as-json: {} {:?}: {e}",
                        arg.source.as_str(),
                        arg.name
                    ));
                    continue;
                }
            };
            match arg.source {
                Source::Header => {
                    value::replace(&mut self.headers, &canonical_header_key(&arg.name), decoded);
                }
                Source::Query => {
                    value::replace(&mut self.query, &arg.name, decoded);
                }
                Source::Payload => {
                    if let Some(payload) = &mut self.payload {
                        value::replace(payload, &arg.name, decoded);
                    }
                }
                _ => problems.push(format!(
                    "parse-parameters-as-json: invalid source for argument {} {:?}",
                    arg.source.as_str(),
                    arg.name
                )),
            }
        }
        problems
    }
}
