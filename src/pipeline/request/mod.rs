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
    let key: Vec<u8> = name
        .bytes()
        .map(|b| {
            let c = if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            };
            upper = c == b'-';
            c
        })
        .collect();
    // Token bytes are ASCII: changing their case keeps the text valid.
    String::from_utf8(key).unwrap_or_else(|_| name.to_owned())
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

/// A request for unit tests elsewhere in the crate: `POST` from `127.0.0.1:51234`, JSON payload.
#[cfg(test)]
pub(crate) fn test_request(headers: &[(&str, &str)], query: &str, body: &str) -> Request {
    let payload = json::parse(body.as_bytes()).ok().flatten();
    Request {
        id: "abc123".to_owned(),
        method: "POST".to_owned(),
        remote_addr: SocketAddr::from(([127, 0, 0, 1], 51234)),
        headers: headers_map(headers.iter().map(|(k, v)| (*k, v.as_bytes()))),
        query: query_map(query),
        content_type: "application/json".to_owned(),
        body: Bytes::from(body.to_owned()),
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::value::map_to_go_json;

    #[test]
    fn canonical_header_keys() {
        let cases = [
            ("x-hub-signature", "X-Hub-Signature"),
            ("X-HUB-SIGNATURE", "X-Hub-Signature"),
            ("content-type", "Content-Type"),
            ("x-foo_bar", "X-Foo_bar"),
            ("x-data.repo.Name", "X-Data.repo.name"),
            ("-x--y-", "-X--Y-"),
            ("1abc-2def", "1abc-2def"),
            ("", ""),
            // Not a token: returned unchanged, as Go does.
            ("x foo", "x foo"),
            ("x:y", "x:y"),
            ("é-x", "é-x"),
        ];
        for (name, want) in cases {
            assert_eq!(canonical_header_key(name), want, "{name:?}");
        }
    }

    #[test]
    fn headers_map_is_canonical_first_value_without_host() {
        // Measured: `-H 'x-foo_bar: 1' -H 'X-FOO: a' -H 'x-foo: b'` gives
        // {"X-Foo":"a","X-Foo_bar":"1",...} and no Host.
        let headers: [(&str, &[u8]); 5] = [
            ("host", b"example.org"),
            ("x-foo_bar", b"1"),
            ("x-foo", b"a"),
            ("X-FOO", b"b"),
            ("x-bin", b"\xff<"),
        ];
        let map = headers_map(headers);
        assert_eq!(
            map_to_go_json(&map),
            "{\"X-Bin\":\"\u{fffd}\\u003c\",\"X-Foo\":\"a\",\"X-Foo_bar\":\"1\"}"
        );
    }

    fn arg(source: &str, name: &str) -> Argument {
        Argument::new(Source::parse(source), name)
    }

    #[test]
    fn json_parameters_replace_nodes() {
        let mut req = test_request(
            &[("x-data", r#"{"repo":{"name":"h"}}"#)],
            "q=%7B%22k%22%3A1%7D&arr=%5B1%5D",
            r#"{"p": "{\"a\":{\"b\":1.50}} tail", "nested": {"inner": "{\"c\":true}"},
                "list": ["{\"i\":0}"], "n": "null", "bad": "{", "s": "\"str\""}"#,
        );
        let problems = req.apply_json_parameters(&[
            arg("header", "X-DATA"),
            arg("query", "q"),
            arg("url", "arr"),
            arg("payload", "p"),
            arg("payload", "nested.inner"),
            arg("payload", "list.0"),
            arg("payload", "n"),
            arg("payload", "bad"),
            arg("payload", "s"),
            arg("payload", "missing"),
            arg("string", "{\"x\":1}"),
            arg("nope", "x"),
        ]);
        let get = |source: &str, name: &str| arg(source, name).get(&req);
        assert_eq!(get("header", "x-data.repo.name").as_deref(), Ok("h"));
        assert_eq!(get("query", "q.k").as_deref(), Ok("1"));
        // Arrays are refused and left as strings.
        assert_eq!(get("query", "arr").as_deref(), Ok("[1]"));
        assert_eq!(get("payload", "p.a.b").as_deref(), Ok("1.50"));
        assert_eq!(get("payload", "nested.inner.c").as_deref(), Ok("true"));
        assert_eq!(get("payload", "list.0.i").as_deref(), Ok("0"));
        // JSON null decodes to Go's nil map.
        assert_eq!(get("payload", "n").as_deref(), Ok("<nil>"));
        assert_eq!(get("payload", "bad").as_deref(), Ok("{"));
        assert_eq!(get("payload", "s").as_deref(), Ok("\"str\""));
        // arr, bad, s, missing, string (a valid object but no place to put it), nope.
        assert_eq!(problems.len(), 6, "{problems:#?}");
    }

    #[test]
    fn json_parameters_without_payload() {
        let mut req = test_request(&[], "", "");
        assert!(req.payload.is_none());
        let problems = req.apply_json_parameters(&[arg("payload", "x")]);
        assert_eq!(problems.len(), 1);
        assert!(req.payload.is_none());
    }
}
