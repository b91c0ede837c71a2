//! `multipart/form-data` bodies, mapped as adnanh maps them: form values become payload fields,
//! and some file parts are decoded as JSON objects.

use std::collections::HashSet;
use std::convert::Infallible;

use bytes::Bytes;
use http::header::CONTENT_TYPE;

use super::body::BodyError;
use super::json;
use super::value::{Map, Value};

/// The default `--max-multipart-parts`: far more than any webhook sends, few enough that a
/// body of empty parts cannot keep the parser busy.
pub const DEFAULT_MAX_PARTS: usize = 100;

/// Parses a multipart body with the given boundary, refusing more than `max_parts` parts
/// ([`BodyError::TooManyParts`]).
///
/// - A part without a file name is a value: the first value of each name becomes a string
///   field (adnanh `webhook.go`, "TODO: support duplicate, named values").
/// - Only the first file part of each name is considered. It is decoded as a JSON object when
///   its part `Content-Type` is exactly `application/json` or its name is in
///   `json_file_fields`; other files are ignored.
/// - A JSON file part that does not decode to an object is stored as `null`: adnanh logs the
///   error and stores a nil map, which renders as `null` (measured). Go would then print the
///   field as `null` and treat `field.x` as not found, where we print `<nil>` and report a hard
///   "no parameters" error; an accepted difference.
/// - Decoded files are applied after all values, so they replace a value of the same name, as
///   adnanh's two loops do.
///
/// A malformed body (bad boundary, missing terminator, bad part headers) is
/// [`BodyError::Multipart`].
pub async fn parse(
    body: Bytes,
    boundary: &str,
    json_file_fields: &[String],
    max_parts: usize,
) -> Result<Map, BodyError> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut map = Map::new();
    let mut seen_files = HashSet::new();
    let mut files = Vec::new();

    let mut parts = 0usize;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        parts += 1;
        if parts > max_parts {
            return Err(BodyError::TooManyParts(max_parts));
        }
        // Go's `FormName()` is empty for a part without a form-data name: skipped.
        let Some(name) = field.name().filter(|n| !n.is_empty()).map(str::to_owned) else {
            continue;
        };
        // Go treats `filename=""` as no file name: such a part is a value (measured).
        let is_file = field.file_name().is_some_and(|f| !f.is_empty());
        if !is_file {
            let value = field.bytes().await.map_err(multipart_error)?;
            if !map.contains_key(&name) {
                let text = String::from_utf8_lossy(&value).into_owned();
                map.insert(name, Value::String(text));
            }
            continue;
        }
        if !seen_files.insert(name.clone()) {
            continue;
        }
        let as_json = json_file_fields.contains(&name)
            || field
                .headers()
                .get_all(CONTENT_TYPE)
                .iter()
                .any(|ct| ct.as_bytes() == b"application/json");
        if as_json {
            let content = field.bytes().await.map_err(multipart_error)?;
            let decoded = json::decode_object(&String::from_utf8_lossy(&content))
                .ok()
                .flatten()
                .map_or(Value::Null, Value::Object);
            files.push((name, decoded));
        }
    }
    map.extend(files);
    Ok(map)
}

fn multipart_error(e: multer::Error) -> BodyError {
    BodyError::Multipart(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::value::map_to_go_json;

    async fn run(body: &str, json_fields: &[&str]) -> Result<String, BodyError> {
        let fields: Vec<String> = json_fields.iter().map(|s| (*s).to_owned()).collect();
        parse(
            Bytes::from(body.replace('\n', "\r\n")),
            "XX",
            &fields,
            DEFAULT_MAX_PARTS,
        )
        .await
        .map(|m| map_to_go_json(&m))
    }

    fn part(headers: &str, content: &str) -> String {
        format!("--XX\n{headers}\n\n{content}\n")
    }

    #[tokio::test]
    async fn values_and_json_files_as_measured() {
        // The shape measured on webhook 2.8.0 with curl -F: v=1, v=2, j (application/json),
        // bad (application/json, not JSON), forced (text/plain, listed), other (text/plain),
        // arr (application/json array), cs (application/json; charset=utf-8).
        let body = [
            part(r#"Content-Disposition: form-data; name="v""#, "1"),
            part(r#"Content-Disposition: form-data; name="v""#, "2"),
            part(
                "Content-Disposition: form-data; name=\"j\"; filename=\"g.json\"\nContent-Type: application/json",
                r#"{"x":1}"#,
            ),
            part(
                "Content-Disposition: form-data; name=\"bad\"; filename=\"b.json\"\nContent-Type: application/json",
                "not json",
            ),
            part(
                "Content-Disposition: form-data; name=\"forced\"; filename=\"g.json\"\nContent-Type: text/plain",
                r#"{"x":1} tail"#,
            ),
            part(
                "Content-Disposition: form-data; name=\"other\"; filename=\"g.json\"\nContent-Type: text/plain",
                r#"{"x":1}"#,
            ),
            part(
                "Content-Disposition: form-data; name=\"arr\"; filename=\"a.json\"\nContent-Type: application/json",
                "[1,2]",
            ),
            part(
                "Content-Disposition: form-data; name=\"cs\"; filename=\"g.json\"\nContent-Type: application/json; charset=utf-8",
                r#"{"x":1}"#,
            ),
            "--XX--\n".to_owned(),
        ]
        .concat();
        assert_eq!(
            run(&body, &["forced"]).await.unwrap(),
            r#"{"arr":null,"bad":null,"forced":{"x":1},"j":{"x":1},"v":"1"}"#
        );
    }

    #[tokio::test]
    async fn edge_parts() {
        let body = [
            "preamble\n".to_owned(),
            // filename="" is a value (measured).
            part(r#"Content-Disposition: form-data; name="a"; filename="""#, "v2"),
            // A value part with a JSON content type stays a string (measured).
            part(
                "Content-Disposition: form-data; name=\"j\"\nContent-Type: application/json",
                r#"{"n":1}"#,
            ),
            // No name: skipped.
            part(
                "Content-Disposition: form-data; filename=\"f\"\nContent-Type: application/json",
                r#"{"n":1}"#,
            ),
            // No Content-Disposition at all: skipped too.
            part("Content-Type: text/plain", "orphan"),
            // A decoded file replaces a value of the same name, wherever it comes.
            part(
                "Content-Disposition: form-data; name=\"a\"; filename=\"f\"\nContent-Type: application/json",
                r#"{"n":2}"#,
            ),
            // Only the first file part of a name counts.
            part(
                "Content-Disposition: form-data; name=\"a\"; filename=\"f\"\nContent-Type: application/json",
                r#"{"n":3}"#,
            ),
            "--XX--\nepilogue".to_owned(),
        ]
        .concat();
        assert_eq!(
            run(&body, &[]).await.unwrap(),
            r#"{"a":{"n":2},"j":"{\"n\":1}"}"#
        );
    }

    #[tokio::test]
    async fn non_json_files_only_give_an_empty_map() {
        let body = part(
            "Content-Disposition: form-data; name=\"other\"; filename=\"x\"\nContent-Type: text/plain",
            "data",
        ) + "--XX--\n";
        assert_eq!(run(&body, &[]).await.unwrap(), "{}");
        assert_eq!(run("--XX--\n", &[]).await.unwrap(), "{}");
    }

    #[tokio::test]
    async fn malformed_bodies() {
        let unterminated = part(r#"Content-Disposition: form-data; name="a""#, "v") + "--XX";
        for body in ["garbage", unterminated.as_str()] {
            assert!(
                matches!(run(body, &[]).await, Err(BodyError::Multipart(_))),
                "{body:?}"
            );
        }
    }
}
