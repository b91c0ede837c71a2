//! Choosing the body parser from the content type, in adnanh's order, and the errors a body can
//! raise. Reading the body (limits, timeouts) is the server's job; this module only sees bytes.

use bytes::Bytes;

use super::value::Map;
use super::{form, json, multipart, xml};

/// A body that does not parse as its content type.
///
/// Deliberate divergence: adnanh logs JSON, form and XML failures and runs the hook with an empty
/// payload; we answer 400 and run nothing. A malformed multipart body is a 500 in both
/// (`Error occurred while parsing multipart form.`).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("error parsing JSON payload: {0}")]
    Json(json::JsonError),
    #[error("error parsing form payload: {0}")]
    Form(form::FormError),
    #[error("error parsing XML payload: {0}")]
    Xml(String),
    #[error("error parsing multipart form: {0}")]
    Multipart(String),
    /// JSON nested deeper than `--max-json-depth`.
    #[error("JSON payload nested deeper than {0} levels")]
    TooDeep(usize),
    /// More multipart parts than `--max-multipart-parts`.
    #[error("multipart form with more than {0} parts")]
    TooManyParts(usize),
}

/// Limits on what a body may make the parsers do, beyond its size (which the server caps
/// while reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Deepest JSON nesting accepted (`--max-json-depth`); serde_json's own cap,
    /// [`json::MAX_DEPTH`], applies above it.
    pub max_json_depth: usize,
    /// Most parts in a multipart body (`--max-multipart-parts`).
    pub max_multipart_parts: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_json_depth: json::MAX_DEPTH,
            max_multipart_parts: multipart::DEFAULT_MAX_PARTS,
        }
    }
}

impl BodyError {
    /// Whether this is a multipart failure (500 in adnanh) rather than a body the client got
    /// wrong (400 here).
    pub fn is_multipart(&self) -> bool {
        matches!(self, BodyError::Multipart(_))
    }
}

/// Parses `body` by `content_type` (the hook's `incoming-payload-content-type`, else the
/// request's), choosing by substring in adnanh's order and case-sensitively as Go's
/// `strings.Contains` does:
///
/// 1. contains `json` → JSON ([`json::parse`]), refused beyond `limits.max_json_depth`;
/// 2. contains `x-www-form-urlencoded` → form ([`super::form::parse`]);
/// 3. contains `xml` → XML ([`xml::parse`]);
/// 4. starts with `multipart/form-data;` → multipart ([`multipart::parse`]); `json_file_fields`
///    are the payload names listed in the hook's `parse-parameters-as-json`; refused beyond
///    `limits.max_multipart_parts` parts;
///
/// `selection` names the top-level JSON keys worth building (see [`json::Selection`]).
/// 5. anything else → no payload.
///
/// An empty body is not an error: no payload for JSON, XML and multipart, an empty one for a
/// form (as in adnanh, where `url.ParseQuery("")` succeeds).
pub async fn parse_payload(
    content_type: &str,
    body: &Bytes,
    json_file_fields: &[String],
    limits: &BodyLimits,
    selection: &json::Selection,
) -> Result<Option<Map>, BodyError> {
    if content_type.contains("json") {
        json::parse_limited(body, limits.max_json_depth, selection)
    } else if content_type.contains("x-www-form-urlencoded") {
        super::form::parse(body).map(Some)
    } else if content_type.contains("xml") {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        xml::parse(body).map(Some)
    } else if content_type.starts_with("multipart/form-data;") {
        // adnanh tests the prefix with its `;` (measured: a bare `multipart/form-data` is an
        // unsupported content type, not a multipart error).
        let boundary = multer::parse_boundary(content_type)
            .map_err(|e| BodyError::Multipart(e.to_string()))?;
        let map = multipart::parse(
            body.clone(),
            &boundary,
            json_file_fields,
            limits.max_multipart_parts,
        )
        .await?;
        // adnanh only creates the payload map when a field is stored: no fields, `null`.
        Ok((!map.is_empty()).then_some(map))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::value::map_to_go_json;

    async fn run(content_type: &str, body: &str) -> Result<Option<String>, BodyError> {
        parse_payload(
            content_type,
            &Bytes::from(body.to_owned()),
            &[],
            &BodyLimits::default(),
            &json::Selection::All,
        )
        .await
        .map(|p| p.map(|m| map_to_go_json(&m)))
    }

    #[tokio::test]
    async fn dispatch_by_substring_in_adnanh_order() {
        let cases = [
            ("application/json", r#"{"a":1}"#, Some(r#"{"a":1}"#)),
            (
                "application/json; charset=utf-8",
                "[1]",
                Some(r#"{"root":[1]}"#),
            ),
            (
                "application/vnd.github+json",
                r#"{"a":1}"#,
                Some(r#"{"a":1}"#),
            ),
            // Case-sensitive, as Go's strings.Contains.
            ("Application/JSON", r#"{"a":1}"#, None),
            (
                "application/x-www-form-urlencoded",
                "a=1",
                Some(r#"{"a":"1"}"#),
            ),
            ("application/xml", "<a>1</a>", Some(r#"{"a":"1"}"#)),
            ("text/xml; charset=utf-8", "<a>1</a>", Some(r#"{"a":"1"}"#)),
            // `json` is tested first, so a JSON-ish XML type is parsed as JSON.
            ("application/xml+json", r#"{"a":1}"#, Some(r#"{"a":1}"#)),
            ("text/plain", r#"{"a":1}"#, None),
            ("", r#"{"a":1}"#, None),
            ("multipart/form-data", "garbage", None),
        ];
        for (ct, body, want) in cases {
            let got = run(ct, body).await.unwrap();
            assert_eq!(got, want.map(str::to_owned), "{ct:?}");
        }
    }

    #[tokio::test]
    async fn empty_bodies() {
        assert_eq!(run("application/json", "").await.unwrap(), None);
        assert_eq!(run("application/json", " \n").await.unwrap(), None);
        assert_eq!(run("application/xml", "").await.unwrap(), None);
        assert_eq!(run("application/xml", "\n ").await.unwrap(), None);
        assert_eq!(
            run("application/x-www-form-urlencoded", "").await.unwrap(),
            Some("{}".to_owned())
        );
        assert_eq!(
            run("multipart/form-data; boundary=XX", "--XX--\r\n")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn errors_by_kind() {
        let cases = [
            ("application/json", "{", false),
            ("application/x-www-form-urlencoded", "a=%zz", false),
            ("application/xml", "<a>", false),
            ("multipart/form-data; boundary=XX", "garbage", true),
            ("multipart/form-data; charset=x", "garbage", true),
        ];
        for (ct, body, multipart) in cases {
            let err = run(ct, body).await.unwrap_err();
            assert_eq!(err.is_multipart(), multipart, "{ct:?}: {err}");
        }
    }
}
