//! Parameter sources: how an argument object (`{source, name}`) reads a value from a
//! [`Request`], with adnanh's string forms.

use std::net::{SocketAddr, SocketAddrV6};

use super::value::{
    LookupError, Map, has_wildcard, lookup_in_map, map_to_go_json, select, selection_to_go_json,
    to_go_string,
};
use super::{Request, Value, canonical_header_key};
use crate::config::template::FuncError;

/// Where an argument's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `payload`: the parsed body, by dotted name.
    Payload,
    /// `header`: a request header, name canonicalised.
    Header,
    /// `url` or `query`: a query-string parameter.
    Query,
    /// `request`: `method` or `remote-addr`.
    Request,
    /// `raw-request-body`: the body bytes as text.
    RawRequestBody,
    /// `entire-payload`: the payload rendered as Go's JSON.
    EntirePayload,
    /// `entire-headers`: all headers rendered as Go's JSON.
    EntireHeaders,
    /// `entire-query`: all query parameters rendered as Go's JSON.
    EntireQuery,
    /// `string`: the name itself, a constant.
    String,
    /// `template`: the name is a template whose `payload`, `header`, `query` and `request`
    /// functions read the request (hookwire's extension).
    Template,
    /// Anything else: a hard error in rules, an empty value elsewhere.
    Other(String),
}

/// adnanh's argument object, used by the three `pass-*` lists, `parse-parameters-as-json` and a
/// match rule's `parameter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    pub source: Source,
    pub name: String,
    /// `envname`: the variable name for the environment and file lists; empty when not given.
    pub envname: String,
    /// `base64decode`: decode the value before writing it to a file (file list only).
    pub base64decode: bool,
}

impl Argument {
    /// An argument with no `envname` and no decoding.
    pub fn new(source: Source, name: impl Into<String>) -> Self {
        Self {
            source,
            name: name.into(),
            envname: String::new(),
            base64decode: false,
        }
    }
}

/// Why an argument has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The named node does not exist; rules count this as "not satisfied".
    #[error("couldn't retrieve argument for {{Source:{from} Name:{name}}}")]
    NotFound { from: String, name: String },
    /// Anything else (unknown source, unsupported `request` name, `null` descended into): a
    /// hard error in rules (500), an empty value in the pass-* lists.
    #[error("{0}")]
    Hard(String),
}

impl Source {
    /// Reads a `source` key as adnanh does: exact, case-sensitive names; `url` and `query` are
    /// one source; anything else is kept as written for error messages.
    pub fn parse(s: &str) -> Source {
        match s {
            "payload" => Source::Payload,
            "header" => Source::Header,
            "url" | "query" => Source::Query,
            "request" => Source::Request,
            "raw-request-body" => Source::RawRequestBody,
            "entire-payload" => Source::EntirePayload,
            "entire-headers" => Source::EntireHeaders,
            "entire-query" => Source::EntireQuery,
            "string" => Source::String,
            "template" => Source::Template,
            other => Source::Other(other.to_owned()),
        }
    }

    /// The source's name as written in a hooks file (`query` for both query aliases).
    pub fn as_str(&self) -> &str {
        match self {
            Source::Payload => "payload",
            Source::Header => "header",
            Source::Query => "query",
            Source::Request => "request",
            Source::RawRequestBody => "raw-request-body",
            Source::EntirePayload => "entire-payload",
            Source::EntireHeaders => "entire-headers",
            Source::EntireQuery => "entire-query",
            Source::String => "string",
            Source::Template => "template",
            Source::Other(s) => s,
        }
    }
}

impl Argument {
    /// The argument's value as adnanh's `Argument.Get` computes it, in its string form.
    ///
    /// A missing node is [`ParamError::NotFound`]; descending into `null`, an unsupported
    /// `request` name and an unknown source are [`ParamError::Hard`].
    pub fn get(&self, req: &Request) -> Result<String, ParamError> {
        if let Some(selected) = self.selected(req) {
            return Ok(selection_to_go_json(&selected));
        }
        let map = match &self.source {
            Source::Header => return self.lookup(&req.headers, &canonical_header_key(&self.name)),
            Source::Query => &req.query,
            Source::Payload => match &req.payload {
                Some(payload) => payload,
                // adnanh looks up in a nil map: an ordinary "not found".
                None => return Err(self.not_found()),
            },
            Source::String => return Ok(self.name.clone()),
            Source::Template => {
                return crate::config::template::render_value(&self.name, &RequestValues(req))
                    .map_err(|e| ParamError::Hard(format!("template: {}", e.message)));
            }
            Source::RawRequestBody => return Ok(String::from_utf8_lossy(&req.body).into_owned()),
            Source::Request => return request_value(&self.name, req),
            Source::EntirePayload => {
                return Ok(req
                    .payload
                    .as_ref()
                    .map_or_else(|| "null".to_owned(), map_to_go_json));
            }
            Source::EntireHeaders => return Ok(map_to_go_json(&req.headers)),
            Source::EntireQuery => return Ok(map_to_go_json(&req.query)),
            Source::Other(_) => {
                return Err(ParamError::Hard("no source for value retrieval".to_owned()));
            }
        };
        self.lookup(map, &self.name)
    }

    /// Whether the argument is a payload name with a `*` segment, which selects many values.
    pub fn is_wildcard(&self) -> bool {
        self.source == Source::Payload && has_wildcard(&self.name)
    }

    /// For a wildcard payload name, the values it selects (none without a payload); `None` for
    /// any other argument.
    pub fn selected<'r>(&self, req: &'r Request) -> Option<Vec<&'r Value>> {
        if !self.is_wildcard() {
            return None;
        }
        Some(
            req.payload
                .as_ref()
                .map_or_else(Vec::new, |payload| select(payload, &self.name)),
        )
    }

    fn lookup(&self, map: &Map, key: &str) -> Result<String, ParamError> {
        match lookup_in_map(map, key) {
            Ok(value) => Ok(to_go_string(value)),
            Err(LookupError::NotFound(_)) => Err(self.not_found()),
            Err(e @ LookupError::NoParameters) => Err(ParamError::Hard(e.to_string())),
        }
    }

    fn not_found(&self) -> ParamError {
        ParamError::NotFound {
            from: self.source.as_str().to_owned(),
            name: self.name.clone(),
        }
    }
}

/// The request as a `{source: template}` value's functions see it: each reads what the source
/// of the same name reads, a missing value as empty.
struct RequestValues<'r>(&'r Request);

impl crate::config::template::Host for RequestValues<'_> {
    fn getenv(&self, _: &str) -> Option<String> {
        None
    }

    fn read_file(&self, _: &str) -> Option<String> {
        None
    }

    fn request(&self, source: &str, name: &str) -> Result<String, FuncError> {
        value_for_template(Argument::new(Source::parse(source), name).get(self.0))
    }
}

fn value_for_template(value: Result<String, ParamError>) -> Result<String, FuncError> {
    match value {
        Ok(value) => Ok(value),
        Err(ParamError::NotFound { .. }) => Ok(String::new()),
        Err(error @ ParamError::Hard(_)) => Err(error.into()),
    }
}

/// Checks a `{source: template}` value at load: it parses, names only known functions, and
/// runs against an empty request (so a bad `request` key or argument count shows at once).
pub fn check_template(text: &str) -> Result<(), crate::config::template::TemplateError> {
    struct EmptyRequest;
    impl crate::config::template::Host for EmptyRequest {
        fn getenv(&self, _: &str) -> Option<String> {
            None
        }
        fn read_file(&self, _: &str) -> Option<String> {
            None
        }
        fn request(&self, source: &str, name: &str) -> Result<String, FuncError> {
            match source {
                "request" => Ok(request_key_known(name).map(|()| String::new())?),
                _ => Ok(String::new()),
            }
        }
    }
    crate::config::template::render_value(text, &EmptyRequest).map(drop)
}

fn request_key_known(name: &str) -> Result<(), ParamError> {
    match name.to_lowercase().as_str() {
        "method" | "remote-addr" => Ok(()),
        _ => Err(ParamError::Hard(format!(
            "unsupported request key: {name:?}"
        ))),
    }
}

/// The `request` source: `method` or `remote-addr`, the name compared case-insensitively
/// (Go's `strings.ToLower`, which is Unicode-aware, as `to_lowercase` is).
fn request_value(name: &str, req: &Request) -> Result<String, ParamError> {
    request_key_known(name)?;
    Ok(match name.to_lowercase().as_str() {
        "method" => req.method.clone(),
        _ => go_remote_addr(req.remote_addr),
    })
}

/// Go's `RemoteAddr`: `ip:port`, IPv6 bracketed. An IPv4 client seen on a dual-stack socket
/// (`::ffff:a.b.c.d`) prints as plain IPv4 in Go, so it does here.
fn go_remote_addr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) if v6.scope_id() == 0 => {
            SocketAddr::new(v6.ip().to_canonical(), v6.port()).to_string()
        }
        SocketAddr::V6(v6) => SocketAddrV6::new(*v6.ip(), v6.port(), 0, v6.scope_id()).to_string(),
        SocketAddr::V4(_) => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::test_request;

    fn arg(source: &str, name: &str) -> Argument {
        Argument::new(Source::parse(source), name)
    }

    #[test]
    fn source_names() {
        for name in [
            "payload",
            "header",
            "query",
            "request",
            "raw-request-body",
            "entire-payload",
            "entire-headers",
            "entire-query",
            "string",
        ] {
            assert_eq!(Source::parse(name).as_str(), name);
        }
        assert_eq!(Source::parse("url"), Source::Query);
        assert_eq!(Source::parse("Header"), Source::Other("Header".into()));
        assert_eq!(Source::parse("context").as_str(), "context");
    }

    #[test]
    fn get_by_source() {
        let req = test_request(
            &[
                ("x-hub-signature", "sha1=abc"),
                ("content-type", "application/json"),
            ],
            "token=s%20t&a=1&a=2",
            r#"{"head_commit": {"id": "f00", "n": 1e3, "big": 12345678901234567890}, "html": "<&>", "nil": null}"#,
        );
        let not_found = |source: &str, name: &str| ParamError::NotFound {
            from: source.to_owned(),
            name: name.to_owned(),
        };
        let cases: Vec<(Argument, Result<&str, ParamError>)> = vec![
            (arg("header", "X-Hub-Signature"), Ok("sha1=abc")),
            (arg("header", "x-hub-signature"), Ok("sha1=abc")),
            (
                arg("header", "x-missing"),
                Err(not_found("header", "x-missing")),
            ),
            (
                arg("header", "x-hub-signature.x"),
                Err(not_found("header", "x-hub-signature.x")),
            ),
            (arg("query", "token"), Ok("s t")),
            (arg("url", "a"), Ok("1")),
            (arg("query", "b"), Err(not_found("query", "b"))),
            (arg("payload", "head_commit.id"), Ok("f00")),
            (
                arg("payload", "head_commit.big"),
                Ok("12345678901234567890"),
            ),
            (
                arg("payload", "head_commit"),
                Ok(r#"{"big":12345678901234567890,"id":"f00","n":1e+3}"#),
            ),
            (arg("payload", "nil"), Ok("<nil>")),
            (
                arg("payload", "nil.x"),
                Err(ParamError::Hard("no parameters".into())),
            ),
            (
                arg("payload", "head_commit.id.x"),
                Err(not_found("payload", "head_commit.id.x")),
            ),
            (
                arg("string", "a constant.with.dots"),
                Ok("a constant.with.dots"),
            ),
            (arg("request", "method"), Ok("POST")),
            (arg("request", "METHOD"), Ok("POST")),
            (arg("request", "Remote-Addr"), Ok("127.0.0.1:51234")),
            (
                arg("request", "path"),
                Err(ParamError::Hard("unsupported request key: \"path\"".into())),
            ),
            (
                arg("entire-payload", ""),
                Ok(
                    r#"{"head_commit":{"big":12345678901234567890,"id":"f00","n":1e+3},"html":"\u003c\u0026\u003e","nil":null}"#,
                ),
            ),
            (
                arg("entire-headers", ""),
                Ok(r#"{"Content-Type":"application/json","X-Hub-Signature":"sha1=abc"}"#),
            ),
            (arg("entire-query", ""), Ok(r#"{"a":"1","token":"s t"}"#)),
            (
                arg("context", "x"),
                Err(ParamError::Hard("no source for value retrieval".into())),
            ),
        ];
        for (a, want) in cases {
            assert_eq!(a.get(&req), want.clone().map(str::to_owned), "{a:?}");
        }
        assert_eq!(
            arg("raw-request-body", "").get(&req).unwrap(),
            String::from_utf8_lossy(&req.body)
        );
    }

    #[test]
    fn get_without_payload() {
        let req = test_request(&[], "", "");
        assert_eq!(arg("entire-payload", "").get(&req).as_deref(), Ok("null"));
        assert_eq!(arg("entire-headers", "").get(&req).as_deref(), Ok("{}"));
        assert_eq!(arg("entire-query", "").get(&req).as_deref(), Ok("{}"));
        assert_eq!(
            arg("payload", "a").get(&req),
            Err(ParamError::NotFound {
                from: "payload".into(),
                name: "a".into()
            })
        );
    }

    #[test]
    fn remote_addr_in_go_form() {
        let cases = [
            ("127.0.0.1:51234", "127.0.0.1:51234"),
            ("[::1]:8080", "[::1]:8080"),
            ("[::ffff:10.1.2.3]:99", "10.1.2.3:99"),
            ("[2001:db8::1]:1", "[2001:db8::1]:1"),
        ];
        for (addr, want) in cases {
            let mut req = test_request(&[], "", "");
            req.remote_addr = addr.parse().unwrap();
            assert_eq!(arg("request", "remote-addr").get(&req).as_deref(), Ok(want));
        }
    }
}
