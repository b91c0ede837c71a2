//! JSON bodies, decoded as adnanh decodes them (`json.Decoder` with `UseNumber`): numbers kept as
//! the text sent, a top-level array wrapped as `{"root": [...]}`, only the first JSON value read.
//!
//! Only the top-level keys a hook reads are built ([`Selection`]); the rest are checked for
//! syntax without recursion. serde_json's nesting limit ([`MAX_DEPTH`]) stays on for the values
//! built, so hostile input fails fast instead of recursing deep; Go accepts up to 10 000 levels,
//! so a read value between the two is a 400 here
//! only. `--max-json-depth` lowers it further for request bodies ([`parse_limited`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::body::BodyError;
use super::value::{Map, Value};

/// The parts of a payload a hook can read, as a tree of keys. A part outside the selection is
/// still checked for syntax but never built into a value, which is most of the cost of a large
/// body a rule only glances at (a 1 MiB push whose `commits` nobody reads, a `repository`
/// object of which only `full_name` is passed on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// The whole value (a lookup's target, a hook reading `entire-payload`, or no way to tell).
    #[default]
    All,
    /// Only these keys (or, in an array, these indexes), each with what is needed below it.
    Keys(BTreeMap<String, Selection>),
}

impl Selection {
    /// The selection that serves lookups of `names` (payload parameter names, dotted). A lookup
    /// of `a.b` reads the key `a.b` whole if present, else `b` inside `a` (adnanh splits at the
    /// first dot), so both paths are kept.
    pub fn for_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut selection = Self::Keys(BTreeMap::new());
        for name in names {
            selection.add(name);
        }
        selection
    }

    fn add(&mut self, name: &str) {
        // A `*` segment selects every element below this point: keep the whole subtree.
        if name == "*" || name.starts_with("*.") {
            *self = Self::All;
            return;
        }
        let Self::Keys(keys) = self else { return };
        keys.insert(name.to_string(), Self::All);
        if let Some((first, rest)) = name.split_once('.') {
            keys.entry(first.to_string())
                .or_insert_with(|| Self::Keys(BTreeMap::new()))
                .add(rest);
        }
    }

    /// What is needed of the value at `key`, if anything.
    pub fn child(&self, key: &str) -> Option<&Selection> {
        match self {
            Self::All => Some(&Self::All),
            Self::Keys(keys) => keys.get(key),
        }
    }

    /// Whether the key `key` is needed at all.
    pub fn wants(&self, key: &str) -> bool {
        self.child(key).is_some()
    }

    /// What is needed of array element `index`: adnanh reads a segment as a decimal index
    /// (`007` is 7), so every key naming that index counts.
    fn element(&self, index: usize) -> Option<Selection> {
        match self {
            Self::All => Some(Self::All),
            Self::Keys(keys) => {
                let mut matching = keys
                    .iter()
                    .filter(|(key, _)| {
                        key.bytes().all(|b| b.is_ascii_digit()) && key.parse::<usize>() == Ok(index)
                    })
                    .map(|(_, child)| child);
                let first = matching.next()?;
                // Two spellings of one index (`7`, `007`) may want different parts: keep it all.
                Some(if matching.next().is_some() {
                    Self::All
                } else {
                    first.clone()
                })
            }
        }
    }
}

/// The deepest nesting serde_json itself parses (its recursion limit of 128 refuses the 128th
/// level, measured); `--max-json-depth` cannot raise it.
pub const MAX_DEPTH: usize = 127;

/// [`parse_selected`], refusing a first value nested deeper than `max_depth` before parsing it
/// ([`BodyError::TooDeep`]). At the default depth no scan is needed: serde_json's own limit
/// applies to every value built, and skipped values are checked without recursion.
pub fn parse_limited(
    body: &[u8],
    max_depth: usize,
    selection: &Selection,
) -> Result<Option<Map>, BodyError> {
    if max_depth < MAX_DEPTH && exceeds_depth(body, max_depth) {
        return Err(BodyError::TooDeep(max_depth));
    }
    parse_selected(body, selection)
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
    parse_selected(body, &Selection::All)
}

/// [`parse`], building only the top-level keys in `selection`.
pub fn parse_selected(body: &[u8], selection: &Selection) -> Result<Option<Map>, BodyError> {
    if body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(None);
    }
    // Valid UTF-8 (the usual case) is checked much faster than it is repaired.
    let text = match std::str::from_utf8(body) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    };
    match first_value(&text, selection).map_err(BodyError::Json)? {
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

/// Why a JSON text does not decode, in the words of Go's `encoding/json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Nothing but whitespace.
    #[error("unexpected end of JSON input")]
    Empty,
    /// serde_json's description of the syntax error.
    #[error("{0}")]
    Syntax(String),
    /// A value that Go cannot decode into a map: an array, string, number or bool.
    #[error("json: cannot unmarshal {0} into Go value of type map[string]interface {{}}")]
    NotAMap(&'static str),
}

/// Decodes the first JSON value of `text` as Go decodes into a `map[string]interface{}`: an
/// object is `Some`, `null` is `None` (a nil map), anything else is an error message.
///
/// Used by `parse-parameters-as-json` and by multipart JSON file parts.
pub fn decode_object(text: &str) -> Result<Option<Map>, JsonError> {
    match first_value(text, &Selection::All)? {
        Value::Object(map) => Ok(Some(map)),
        Value::Null => Ok(None),
        other => Err(cannot_decode_into_map(&other)),
    }
}

/// The first JSON value of `text`; whatever follows it is not read (Go's `Decoder`).
fn first_value(text: &str, selection: &Selection) -> Result<Value, JsonError> {
    let text = replace_invalid_surrogates(text);
    let first = text.bytes().find(|b| !b.is_ascii_whitespace());
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    // Only the first value is read: trailing bytes are ignored, as Go's Decoder does.
    let value = match (first, selection) {
        (Some(b'{'), Selection::Keys(_)) => Selected(selection).deserialize(&mut deserializer),
        // A top-level array is read as `root` (adnanh wraps it).
        (Some(b'['), Selection::Keys(_)) => match selection.child("root") {
            Some(root) => Selected(root).deserialize(&mut deserializer),
            None => <IgnoredAny as serde::Deserialize>::deserialize(&mut deserializer)
                .map(|_| Value::Array(Vec::new())),
        },
        _ => serde::Deserialize::deserialize(&mut deserializer),
    };
    value.map_err(|error| {
        if error.is_eof() && text.trim().is_empty() {
            JsonError::Empty
        } else {
            JsonError::Syntax(error.to_string())
        }
    })
}

/// A value built only along the paths a [`Selection`] names; everything else is skipped.
struct Selected<'a>(&'a Selection);

impl<'de> DeserializeSeed<'de> for Selected<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            Selection::All => serde::Deserialize::deserialize(deserializer),
            Selection::Keys(_) => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Selected<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key_seed(Key)? {
            // With arbitrary_precision, serde_json hands a number over as a one-entry map.
            if key == ARBITRARY_PRECISION_NUMBER {
                let digits = access.next_value::<String>()?;
                return digits
                    .parse::<serde_json::Number>()
                    .map(Value::Number)
                    .map_err(serde::de::Error::custom);
            }
            match self.0.child(&key) {
                Some(child) => {
                    let value = access.next_value_seed(Selected(child))?;
                    map.insert(key.into_owned(), value);
                }
                None => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            // Unread elements stay as `null` placeholders, so indexes keep their meaning.
            let item = match self.0.element(items.len()) {
                Some(child) => access.next_element_seed(Selected(&child))?,
                None => access.next_element::<IgnoredAny>()?.map(|_| Value::Null),
            };
            match item {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// An object's key, borrowed from the body when it has no escapes: most keys of a payload are
/// only compared with the selection, so copying each would be wasted.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(value))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value))
    }
}

/// The key serde_json (with `arbitrary_precision`) uses to pass a number's digits.
const ARBITRARY_PRECISION_NUMBER: &str = "$serde_json::private::Number";

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
    // Most bodies have no `\u` escape at all: skip the byte-by-byte look then.
    if !memchr::memmem::find_iter(bytes, b"\\u").any(|i| escape_at(i).is_some_and(is_surrogate)) {
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

fn cannot_decode_into_map(value: &Value) -> JsonError {
    JsonError::NotAMap(match value {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null | Value::Object(_) => "value",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::value::map_to_go_json;

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
        assert!(parse_limited(nested(3).as_bytes(), 3, &Selection::All).is_ok());
        assert!(matches!(
            parse_limited(nested(4).as_bytes(), 3, &Selection::All),
            Err(BodyError::TooDeep(3))
        ));
        let mixed = r#"{"a":[{"b":1}]}"#;
        assert!(parse_limited(mixed.as_bytes(), 3, &Selection::All).is_ok());
        assert!(parse_limited(mixed.as_bytes(), 2, &Selection::All).is_err());
        // Brackets in strings, escaped quotes included, are text.
        let text = r#"{"a":"[[[[\"[[[[","b":"\\"}"#;
        assert!(
            parse_limited(text.as_bytes(), 1, &Selection::All).is_ok(),
            "{text}"
        );
        // Only the first value counts, as only it is parsed.
        assert!(
            parse_limited(format!("{{}}{}", nested(50)).as_bytes(), 2, &Selection::All).is_ok()
        );
    }
}

#[cfg(test)]
mod selection_tests {
    use super::*;

    fn keys(names: &[&str]) -> Selection {
        Selection::for_names(names.iter().copied())
    }

    #[test]
    fn dotted_names_keep_both_paths() {
        let selection = keys(&["head_commit.id", "ref", "a.b.c"]);
        for wanted in ["head_commit", "head_commit.id", "ref", "a", "a.b.c"] {
            assert!(selection.wants(wanted), "{wanted}");
        }
        for unwanted in ["commits", "a.b", "head"] {
            assert!(!selection.wants(unwanted), "{unwanted}");
        }
        let head_commit = selection.child("head_commit").expect("head_commit");
        assert!(head_commit.wants("id") && !head_commit.wants("message"));
        assert!(Selection::All.wants("anything"));
    }

    /// Every lookup a selection serves finds exactly what a full parse finds.
    #[test]
    fn selected_lookups_agree_with_a_full_parse() {
        use crate::pipeline::request::value::{lookup_in_map, to_go_string};
        let body = br#"{"ref":"refs/heads/main","n":1.50,"big":12345678901234567890,
            "repository":{"full_name":"o/r","owner":{"login":"o"},"size":0,"topics":[]},
            "commits":[{"id":"c1","added":["a"]},{"id":"c2","x":null},{"id":"c3"}],
            "head_commit":{"id":"c3","author":{"email":"e@x"}},"a.b":{"c":"literal"},
            "a":{"b":{"c":"nested"}},"nul":null,"arr":[[1,2],[3,4]]}"#;
        let names = [
            "ref",
            "n",
            "big",
            "repository.full_name",
            "repository.owner.login",
            "commits.1.id",
            "commits.01.id",
            "commits.0.added.0",
            "commits.1.x",
            "commits.1.x.y",
            "head_commit.author",
            "a.b.c",
            "nul.x",
            "arr.1.0",
            "missing.key",
            "repository.size.x",
            "commits.9.id",
        ];
        let full = parse(body).unwrap().unwrap();
        let selected = parse_selected(body, &keys(&names)).unwrap().unwrap();
        for name in names {
            let expected = lookup_in_map(&full, name).map(to_go_string);
            assert_eq!(
                lookup_in_map(&selected, name).map(to_go_string),
                expected,
                "{name}"
            );
        }
        // What nobody reads is not built.
        assert!(selected["repository"].get("owner").is_some());
        assert!(selected["repository"].get("topics").is_none());
        assert_eq!(
            selected["commits"][2],
            Value::Null,
            "an unread element is a placeholder"
        );
    }

    #[test]
    fn only_selected_keys_are_built_but_everything_is_checked() {
        let body =
            br#"{"ref":"x","commits":[{"id":1},{"id":2}],"head_commit":{"id":"c"},"n":1.50}"#;
        let map = parse_selected(body, &keys(&["ref", "head_commit.id", "n"]))
            .unwrap()
            .unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["head_commit", "n", "ref"]);
        assert_eq!(map["n"].to_string(), "1.50");
        // A syntax error inside a skipped key still makes the body invalid.
        assert!(parse_selected(br#"{"ref":"x","commits":[1,}"#, &keys(&["ref"])).is_err());
        // Only the first value counts, as with a full parse.
        assert!(parse_selected(br#"{"ref":"x"} trailing"#, &keys(&["ref"])).is_ok());
        // A root array nobody reads is not built.
        let map = parse_selected(b"[1,2,3]", &keys(&["ref"]))
            .unwrap()
            .unwrap();
        assert_eq!(map["root"], Value::Array(Vec::new()));
        let map = parse_selected(b"[1,2,3]", &keys(&["root.1"]))
            .unwrap()
            .unwrap();
        assert_eq!(map["root"][1].to_string(), "2");
        // Scalars are refused as with a full parse.
        assert!(parse_selected(b"\"text\"", &keys(&["ref"])).is_err());
        assert_eq!(parse_selected(b"null", &keys(&["ref"])).unwrap(), None);
    }
}
