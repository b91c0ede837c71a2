//! adnanh's responses, wording included (users' scripts and monitors match on them), and the
//! Go `net/http` details they depend on: which status codes exist and content sniffing.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody};

/// The body of every response: whole (most answers) or streamed as it is produced (live
/// output).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// The response type of every route.
pub type HttpResponse = Response<Body>;

/// A body that sends each chunk of `chunks` as it comes (chunked transfer encoding).
pub fn streamed(chunks: impl futures_util::Stream<Item = Bytes> + Send + 'static) -> Body {
    use futures_util::StreamExt as _;
    BodyExt::boxed_unsync(StreamBody::new(
        chunks.map(|chunk| Ok(hyper::body::Frame::data(chunk))),
    ))
}

pub const HOOK_NOT_FOUND: &str = "Hook not found.";
pub const RULES_NOT_SATISFIED: &str = "Hook rules were not satisfied.";
pub const RULES_ERROR: &str = "Error occurred while evaluating hook rules.";
pub const MULTIPART_ERROR: &str = "Error occurred while parsing multipart form.";
pub const COMMAND_ERROR: &str =
    "Error occurred while executing the hook's command. Please check your logs for more details.";
const PAGE_NOT_FOUND: &str = "404 page not found\n";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Builds a response from status, headers (set in order; later ones replace earlier ones of the
/// same name, as Go's `Header().Set`) and body. Without a `Content-Type`, the body is sniffed
/// as Go's `http.DetectContentType` would.
pub fn build<'a>(
    status: StatusCode,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let body: Bytes = body.into();
    let mut response = Response::new(Full::new(body.clone()).boxed_unsync());
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                map.insert(name, value);
            }
            _ => tracing::warn!("skipping invalid response header {name:?}"),
        }
    }
    if !body.is_empty() && !map.contains_key(header::CONTENT_TYPE) {
        map.insert(header::CONTENT_TYPE, HeaderValue::from_static(sniff(&body)));
    }
    response
}

/// A plain-text response with no configured headers.
pub fn plain(status: StatusCode, body: &'static str) -> HttpResponse {
    build(status, [], body)
}

/// Go's `http.NotFound`, for paths outside the hooks prefix.
pub fn page_not_found() -> HttpResponse {
    build(
        StatusCode::NOT_FOUND,
        [
            ("content-type", TEXT_PLAIN),
            ("x-content-type-options", "nosniff"),
        ],
        PAGE_NOT_FOUND,
    )
}

/// gorilla/mux's redirect to the cleaned path.
pub fn redirect(location: &str) -> HttpResponse {
    build(
        StatusCode::MOVED_PERMANENTLY,
        [("location", location)],
        Bytes::new(),
    )
}

/// The status for a configured code: Go only writes codes it has a reason phrase for and
/// otherwise keeps 200 (logged); 0 means "not configured".
pub fn configured_status(code: u16, hook_id: &str) -> StatusCode {
    if code == 0 {
        return StatusCode::OK;
    }
    match StatusCode::from_u16(code) {
        Ok(status) if go_knows_status(code) => status,
        _ => {
            tracing::warn!(
                "{hook_id} got matched, but the configured return code {code} is unknown - defaulting to 200"
            );
            StatusCode::OK
        }
    }
}

/// The codes Go's `http.StatusText` names.
fn go_knows_status(code: u16) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429
        | 431 | 451 | 500..=508 | 510 | 511)
}

/// A subset of Go's `http.DetectContentType` covering text, markup and binary bodies.
fn sniff(body: &[u8]) -> &'static str {
    let head = &body[..body.len().min(512)];
    let trimmed = {
        let start = head
            .iter()
            .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
            .unwrap_or(head.len());
        &head[start..]
    };
    const HTML_TAGS: &[&[u8]] = &[
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    for tag in HTML_TAGS {
        if trimmed.len() > tag.len()
            && trimmed[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(trimmed[tag.len()], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if trimmed.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    if head.starts_with(b"%PDF-") {
        return "application/pdf";
    }
    if head.starts_with(b"\xef\xbb\xbf") {
        return TEXT_PLAIN;
    }
    let binary = head
        .iter()
        .any(|&b| matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f));
    if binary {
        "application/octet-stream"
    } else {
        TEXT_PLAIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_matches_go_for_common_bodies() {
        assert_eq!(sniff(b"Hook not found."), TEXT_PLAIN);
        assert_eq!(sniff(b"{\"a\":1}"), TEXT_PLAIN);
        assert_eq!(sniff(b"  <html><body>"), "text/html; charset=utf-8");
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?><a/>"),
            "text/xml; charset=utf-8"
        );
        assert_eq!(sniff(b"\x00\x01binary"), "application/octet-stream");
    }

    #[test]
    fn unknown_status_codes_fall_back_to_200() {
        assert_eq!(configured_status(0, "h"), StatusCode::OK);
        assert_eq!(configured_status(418, "h"), StatusCode::IM_A_TEAPOT);
        assert_eq!(configured_status(299, "h"), StatusCode::OK);
        assert_eq!(configured_status(999, "h"), StatusCode::OK);
        assert_eq!(configured_status(202, "h"), StatusCode::ACCEPTED);
    }

    #[test]
    fn later_headers_replace_earlier_ones() {
        let response = build(
            StatusCode::OK,
            [
                ("X-A", "1"),
                ("x-a", "2"),
                ("Content-Type", "application/json"),
            ],
            "{}",
        );
        assert_eq!(response.headers()["x-a"], "2");
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}
