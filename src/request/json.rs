//! JSON bodies, decoded as adnanh decodes them (`json.Decoder` with `UseNumber`): numbers kept as
//! the text sent, a top-level array wrapped as `{"root": [...]}`, only the first JSON value read.
//!
//! serde_json's nesting limit ([`MAX_DEPTH`]) stays on, so hostile input fails fast instead of
//! recursing deep; Go accepts up to 10 000 levels, so a payload between the two is a 400 here
//! only. `--max-json-depth` lowers it further for request bodies ([`parse_limited`]).

use std::borrow::Cow;

use super::body::BodyError;
use super::value::{Map, Value};

/// The deepest nesting serde_json itself parses (its recursion limit of 128 refuses the 128th
/// level, measured); `--max-json-depth` cannot raise it.
pub const MAX_DEPTH: usize = 127;

/// [`parse`], refusing a first value nested deeper than `max_depth` before parsing it
/// ([`BodyError::TooDeep`]).
pub fn parse_limited(body: &[u8], max_depth: usize) -> Result<Option<Map>, BodyError> {
    if exceeds_depth(body, max_depth) {
        return Err(BodyError::TooDeep(max_depth));
    }
    parse(body)
}

/// Whether the first JSON value in `bytes` opens more than `max` arrays or objects at once.
/// A linear scan that only tracks strings and brackets; the parser judges the rest.
fn exceeds_depth(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                // The first value is complete; Go's decoder reads no further, nor do we.
                if depth == 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    false
}

/// Parses a JSON body into the payload.
///
/// - an object is the payload; a top-level array becomes `{"root": [...]}` (adnanh);
/// - `null` and an empty (or all-whitespace) body give no payload;
/// - a top-level string, number or boolean is an error: Go cannot decode it into a map;
/// - bytes after the first value are ignored, as Go's `Decoder.Decode` ignores them;
/// - invalid UTF-8 inside strings is replaced by U+FFFD, as Go does.
pub fn parse(body: &[u8]) -> Result<Option<Map>, BodyError> {
    if body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(body);
    match first_value(&text).map_err(BodyError::Json)? {
        Value::Object(map) => Ok(Some(map)),
        Value::Array(items) => {
            let mut map = Map::new();
            map.insert("root".to_owned(), Value::Array(items));
            Ok(Some(map))
        }
        Value::Null => Ok(None),
        other => Err(BodyError::Json(cannot_decode_into_map(&other))),
    }
}

/// Decodes the first JSON value of `text` as Go decodes into a `map[string]interface{}`: an
/// object is `Some`, `null` is `None` (a nil map), anything else is an error message.
///
/// Used by `parse-parameters-as-json` and by multipart JSON file parts.
pub fn decode_object(text: &str) -> Result<Option<Map>, String> {
    match first_value(text)? {
        Value::Object(map) => Ok(Some(map)),
        Value::Null => Ok(None),
        other => Err(cannot_decode_into_map(&other)),
    }
}

/// The first JSON value of `text`; whatever follows it is not read (Go's `Decoder`).
fn first_value(text: &str) -> Result<Value, String> {
    let text = replace_invalid_surrogates(text);
    match serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("unexpected end of JSON input".to_owned()),
    }
}

/// Go decodes a `\uXXXX` escape holding a surrogate that is not half of a valid pair as
/// U+FFFD; serde_json refuses the whole document. Rewrite those escapes to `\ufffd` first.
/// Escapes are only read inside strings; a backslash elsewhere is a syntax error either way.
fn replace_invalid_surrogates(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let escape_at = |i: usize| -> Option<u16> {
        let hex = bytes.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let is_surrogate = |u: u16| (0xD800..=0xDFFF).contains(&u);
    // Fast path: no surrogate escape at all (the usual case).
    if !(0..bytes.len()).any(|i| escape_at(i).is_some_and(is_surrogate)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(i) {
            // A valid pair: keep both halves.
            Some(0xD800..=0xDBFF)
                if escape_at(i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) =>
            {
                i += 12;
            }
            Some(unit) if is_surrogate(unit) => {
                out.push_str(&text[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
            }
            // Any other escape: skip the backslash and the escaped character, so that `\\u`
            // (an escaped backslash, then `u`) is not read as an escape.
            _ => i += 2,
        }
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn cannot_decode_into_map(value: &Value) -> String {
    let kind = match value {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null | Value::Object(_) => "value",
    };
    format!("json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::value::map_to_go_json;

    fn ok(body: &str) -> Option<String> {
        parse(body.as_bytes()).unwrap().map(|m| map_to_go_json(&m))
    }

    #[test]
    fn shapes() {
        let cases = [
            (
                r#"{"a":{"b":1.50},"f":null}"#,
                Some(r#"{"a":{"b":1.50},"f":null}"#),
            ),
            (
                r#"  {"n": 12345678901234567890123, "z": -0}"#,
                Some(r#"{"n":12345678901234567890123,"z":-0}"#),
            ),
            ("[1,2]", Some(r#"{"root":[1,2]}"#)),
            (" \n[{\"a\":1}]", Some(r#"{"root":[{"a":1}]}"#)),
            ("[]", Some(r#"{"root":[]}"#)),
            ("{}", Some("{}")),
            ("null", None),
            ("", None),
            (" \t\r\n", None),
            // Go's Decoder stops after the first value (measured: `{"a":1} trailing`).
            (r#"{"a":1} trailing"#, Some(r#"{"a":1}"#)),
            (r#"{"a":1}{"b":2}"#, Some(r#"{"a":1}"#)),
            ("[1] x", Some(r#"{"root":[1]}"#)),
        ];
        for (body, want) in cases {
            assert_eq!(ok(body), want.map(str::to_owned), "{body:?}");
        }
    }

    #[test]
    fn errors() {
        for body in [
            r#""str""#,
            "42",
            "true",
            "{",
            r#"{"a":}"#,
            "nope",
            "\u{b}{}",
        ] {
            assert!(
                matches!(parse(body.as_bytes()), Err(BodyError::Json(_))),
                "{body:?}"
            );
        }
    }

    /// Measured on webhook 2.8.0: `{"pair":"\ud83d\ude00","lone":"\ud800x","rev":"\udc00"}`
    /// gives `{"lone":"\u{fffd}x","pair":"😀","rev":"\u{fffd}"}`.
    #[test]
    fn invalid_surrogate_escapes_become_replacement_characters() {
        let cases = [
            (r#"{"pair":"\ud83d\ude00"}"#, "{\"pair\":\"😀\"}"),
            (r#"{"lone":"\ud800x"}"#, "{\"lone\":\"\u{fffd}x\"}"),
            (r#"{"rev":"\udc00"}"#, "{\"rev\":\"\u{fffd}\"}"),
            (r#"{"end":"\uD800"}"#, "{\"end\":\"\u{fffd}\"}"),
            (
                r#"{"two":"\ud800\ud800"}"#,
                "{\"two\":\"\u{fffd}\u{fffd}\"}",
            ),
            (
                r#"{"then":"\ud800\ud83d\ude00"}"#,
                "{\"then\":\"\u{fffd}😀\"}",
            ),
            (r#"{"ok":"\u00e9"}"#, "{\"ok\":\"é\"}"),
            // An escaped backslash followed by text that looks like an escape.
            (r#"{"bs":"\\ud800"}"#, "{\"bs\":\"\\\\ud800\"}"),
            (r#"{"\udfff":1}"#, "{\"\u{fffd}\":1}"),
        ];
        for (body, want) in cases {
            assert_eq!(ok(body).as_deref(), Some(want), "{body}");
        }
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let map = parse(b"{\"a\":\"\xff\xfe\"}").unwrap().unwrap();
        assert_eq!(map_to_go_json(&map), "{\"a\":\"\u{fffd}\u{fffd}\"}");
    }

    #[test]
    fn deep_nesting_fails_fast() {
        for open in ["[", "{\"a\":"] {
            let body = open.repeat(100_000);
            assert!(matches!(parse(body.as_bytes()), Err(BodyError::Json(_))));
        }
        // 100 levels are fine.
        let body = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(body.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn decode_object_is_go_decode_into_map() {
        assert_eq!(
            decode_object(r#"{"x":1} tail"#)
                .unwrap()
                .map(|m| map_to_go_json(&m)),
            Some(r#"{"x":1}"#.to_owned())
        );
        assert_eq!(decode_object("null").unwrap(), None);
        for text in ["[1]", "\"s\"", "1", "", "{"] {
            assert!(decode_object(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn one_megabyte_parses_quickly() {
        let item = r#"{"id":12345,"name":"repository-name","private":false,"tags":["a","b"],"score":1.25},"#;
        let mut body = String::from("{\"items\":[");
        while body.len() < 1 << 20 {
            body.push_str(item);
        }
        body.pop();
        body.push_str("]}");
        let start = std::time::Instant::now();
        let map = parse(body.as_bytes()).unwrap().unwrap();
        let elapsed = start.elapsed();
        assert!(map.contains_key("items"));
        // Generous for a debug build on a loaded 2-core machine; release is far faster.
        assert!(elapsed.as_secs() < 2, "1 MB took {elapsed:?}");
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn the_parser_itself_stops_at_max_depth() {
        assert!(parse(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert!(parse(nested(MAX_DEPTH + 1).as_bytes()).is_err());
    }

    #[test]
    fn depth_limit_counts_brackets_outside_strings() {
        assert!(parse_limited(nested(3).as_bytes(), 3).is_ok());
        assert!(matches!(
            parse_limited(nested(4).as_bytes(), 3),
            Err(BodyError::TooDeep(3))
        ));
        let mixed = r#"{"a":[{"b":1}]}"#;
        assert!(parse_limited(mixed.as_bytes(), 3).is_ok());
        assert!(parse_limited(mixed.as_bytes(), 2).is_err());
        // Brackets in strings, escaped quotes included, are text.
        let text = r#"{"a":"[[[[\"[[[[","b":"\\"}"#;
        assert!(parse_limited(text.as_bytes(), 1).is_ok(), "{text}");
        // Only the first value counts, as only it is parsed.
        assert!(parse_limited(format!("{{}}{}", nested(50)).as_bytes(), 2).is_ok());
    }
}
