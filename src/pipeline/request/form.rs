//! `application/x-www-form-urlencoded` bodies and URL queries, decoded as Go's
//! `url.ParseQuery` decodes them.
//!
//! One splitter serves both: a body is strict (the first bad pair fails the whole form, which
//! adnanh then discards; we answer 400), the URL query is lenient (bad pairs are skipped, see
//! [`query_map`](super::query_map)).

use super::body::BodyError;
use super::value::{Map, Value};

/// Why a form body or a query pair does not decode, as Go's `url.ParseQuery` says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("invalid semicolon separator in query")]
    Semicolon,
    /// A `%` without two hex digits; the bad escape as written.
    #[error("invalid URL escape {0:?}")]
    BadEscape(String),
}

/// Parses a form body: the first value of each key, `+` as a space, values as strings.
///
/// A `;` in a pair or an invalid `%` escape fails the whole body, as `url.ParseQuery` reports
/// it. Invalid UTF-8 after decoding is replaced, not rejected.
pub fn parse(body: &[u8]) -> Result<Map, BodyError> {
    let mut map = Map::new();
    for pair in pairs(body) {
        let (key, value) = pair.map_err(BodyError::Form)?;
        map.entry(key).or_insert(Value::String(value));
    }
    Ok(map)
}

/// Go's `parseQuery` loop: `&`-separated pairs, empty ones skipped, each split at its first
/// `=` and unescaped. A bad pair yields its error and the iteration goes on.
pub(crate) fn pairs(
    input: &[u8],
) -> impl Iterator<Item = Result<(String, String), FormError>> + '_ {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            // Go 1.17+ refuses `;` as a separator rather than splitting on it.
            if pair.contains(&b';') {
                return Err(FormError::Semicolon);
            }
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            Ok((unescape(key)?, unescape(value)?))
        })
}

/// Go's `url.QueryUnescape`: `+` is a space, `%` must be followed by two hex digits.
fn unescape(input: &[u8]) -> Result<String, FormError> {
    if !input.iter().any(|&b| b == b'%' || b == b'+') {
        return Ok(String::from_utf8_lossy(input).into_owned());
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_value);
                let lo = input.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    let bad = &input[i..input.len().min(i + 3)];
                    return Err(FormError::BadEscape(
                        String::from_utf8_lossy(bad).into_owned(),
                    ));
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::query_map;
    use crate::pipeline::request::value::map_to_go_json;

    #[test]
    fn form_bodies() {
        let ok = [
            ("", "{}"),
            ("a=1&a=2&b=x+y", r#"{"a":"1","b":"x y"}"#),
            ("a=%41%2b%2B&%62=2", r#"{"a":"A++","b":"2"}"#),
            ("&&=x&k", r#"{"":"x","k":""}"#),
            ("k=v=w", r#"{"k":"v=w"}"#),
            ("u=%C3%A9&bad=%FF", "{\"bad\":\"\u{fffd}\",\"u\":\"é\"}"),
            ("h=%3Cb%3E", r#"{"h":"\u003cb\u003e"}"#),
        ];
        for (body, want) in ok {
            let map = parse(body.as_bytes()).unwrap();
            assert_eq!(map_to_go_json(&map), want, "{body:?}");
        }
    }

    #[test]
    fn form_bodies_are_strict() {
        for body in ["a=1&b=%zz", "a=1;b=2", "a=%", "a=%4", "%zz=1", "a=1&b=2;"] {
            match parse(body.as_bytes()) {
                Err(BodyError::Form(_)) => {}
                other => panic!("{body:?}: {other:?}"),
            }
        }
        let Err(BodyError::Form(msg)) = parse(b"b=%zz") else {
            unreachable!()
        };
        assert_eq!(msg.to_string(), r#"invalid URL escape "%zz""#);
    }

    #[test]
    fn queries_are_lenient() {
        // Measured on webhook 2.8.0: `?a=1&a=2&b=%zz&c=x;y&d=+%20&&e&=f&g=%41`.
        let map = query_map("a=1&a=2&b=%zz&c=x;y&d=+%20&&e&=f&g=%41");
        assert_eq!(
            map_to_go_json(&map),
            r#"{"":"f","a":"1","d":"  ","e":"","g":"A"}"#
        );
        assert_eq!(map_to_go_json(&query_map("")), "{}");
    }
}
