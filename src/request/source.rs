//! Parameter sources: how an argument object (`{source, name}`) reads a value from a
//! [`Request`](super::Request), with adnanh's string forms.

use std::net::{SocketAddr, SocketAddrV6};

use super::value::{LookupError, Map, lookup_in_map, map_to_go_json, to_go_string};
use super::{Request, canonical_header_key};

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
        let map = match &self.source {
            Source::Header => return self.lookup(&req.headers, &canonical_header_key(&self.name)),
            Source::Query => &req.query,
            Source::Payload => match &req.payload {
                Some(payload) => payload,
                // adnanh looks up in a nil map: an ordinary "not found".
                None => return Err(self.not_found()),
            },
            Source::String => return Ok(self.name.clone()),
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

/// The `request` source: `method` or `remote-addr`, the name compared case-insensitively
/// (Go's `strings.ToLower`, which is Unicode-aware, as `to_lowercase` is).
fn request_value(name: &str, req: &Request) -> Result<String, ParamError> {
    match name.to_lowercase().as_str() {
        "method" => Ok(req.method.clone()),
        "remote-addr" => Ok(go_remote_addr(req.remote_addr)),
        _ => Err(ParamError::Hard(format!(
            "unsupported request key: {name:?}"
        ))),
    }
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
