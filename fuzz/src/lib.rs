//! Shared pieces of the fuzz targets: arbitrary requests and running the async parsers to
//! completion (they need no reactor: the body is already in memory).

use std::net::{IpAddr, SocketAddr};

use arbitrary::Arbitrary;
use bytes::Bytes;
use hookwire::pipeline::request::body::{BodyLimits, parse_payload};
use hookwire::pipeline::request::json::Selection;
use hookwire::pipeline::request::{Argument, Request, Source, headers_map, query_map, value};
use hookwire::store::Received;

/// A request as a fuzzer builds it: any method, headers, query, body and client address.
#[derive(Debug, Arbitrary)]
pub struct FuzzRequest {
    pub method: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub query: String,
    pub body: Vec<u8>,
    pub client: IpAddr,
    pub port: u16,
}

impl FuzzRequest {
    /// The request as the server hands it to the pipeline. Headers hyper would refuse (bad
    /// names or values) are dropped, as they never reach a hook.
    pub fn received(&self) -> Received {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
        Received {
            id: "fuzz".into(),
            method: self.method.clone(),
            remote_addr: SocketAddr::new(self.client, self.port),
            headers,
            query: self.query.clone(),
            body: Bytes::from(self.body.clone()),
        }
    }
}

/// A body for one parser plus the names to look up in what it produced.
#[derive(Debug, Arbitrary)]
pub struct BodyInput {
    pub body: Vec<u8>,
    /// Payload names (dotted paths) to look up.
    pub lookups: Vec<String>,
    /// Names listed in `parse-parameters-as-json`.
    pub json_fields: Vec<String>,
    pub max_json_depth: u8,
    pub max_parts: u8,
}

/// Parses `input.body` as `content_type`, then looks up every name every way a hook can.
/// Panics only on a bug.
pub fn parse_and_look_up(content_type: &str, input: &BodyInput) {
    let body = Bytes::from(input.body.clone());
    let limits = BodyLimits {
        max_json_depth: usize::from(input.max_json_depth).clamp(1, 127),
        max_multipart_parts: usize::from(input.max_parts),
    };
    let parse = |selection: &Selection| {
        futures_executor::block_on(parse_payload(
            content_type,
            &body,
            &input.json_fields,
            &limits,
            selection,
        ))
    };
    let selection = Selection::for_names(input.lookups.iter().map(String::as_str));
    let (full, selected) = (parse(&Selection::All), parse(&selection));
    // Building only the selected paths never changes what a lookup finds, and never accepts
    // less than a full parse (it may accept more: unread parts are not depth-limited).
    if let (Ok(Some(full)), Ok(Some(selected))) = (&full, &selected) {
        for name in &input.lookups {
            assert_eq!(
                value::lookup_in_map(full, name).map(value::to_go_string),
                value::lookup_in_map(selected, name).map(value::to_go_string),
                "lookup of {name:?} differs between a full and a selected parse"
            );
        }
    }
    assert!(
        full.is_err() || selected.is_ok(),
        "the selected parse refused what a full parse accepted"
    );
    let Ok(payload) = full else {
        return;
    };
    let mut request = Request {
        id: "fuzz".into(),
        method: "POST".into(),
        remote_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
        headers: headers_map([]),
        query: query_map(""),
        content_type: content_type.into(),
        body,
        payload,
    };
    let arguments: Vec<Argument> = input
        .lookups
        .iter()
        .map(|name| argument(Source::Payload, name))
        .collect();
    let _ = request.apply_json_parameters(&arguments);
    for argument in &arguments {
        let _ = argument.get(&request);
    }
    let _ = argument(Source::EntirePayload, "").get(&request);
}

fn argument(source: Source, name: &str) -> Argument {
    Argument {
        source,
        name: name.to_owned(),
        envname: String::new(),
        base64decode: false,
    }
}
