//! The payload value tree and adnanh's rules for reading it: dotted-name lookup, replacement
//! (for `parse-parameters-as-json`) and the string form of a value.
//!
//! Values are `serde_json::Value` built with `arbitrary_precision`, so numbers keep the digits
//! they were sent with, and objects are `BTreeMap`s, so keys are sorted as Go's encoder sorts them.
//!
//! One known difference remains in number text: serde_json normalises an exponent while parsing
//! (`1E3` becomes `1e+3`), where Go keeps `1E3`. Mantissa digits (`1.50`, big integers) are exact.

pub use serde_json::Value;

/// A JSON object: key-sorted, as Go marshals maps.
pub type Map = serde_json::Map<String, Value>;

/// Why a dotted name could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// adnanh's "parameter node not found": a missing key, an index out of range, a scalar
    /// descended into. Rules treat it as "not satisfied".
    #[error("parameter node not found: {0}")]
    NotFound(String),
    /// Descending into a JSON `null` (adnanh's "no parameters"): a hard error in rules.
    #[error("no parameters")]
    NoParameters,
}

/// Resolves a dotted name from `root` exactly as adnanh's `GetParameter` does.
///
/// On an object, a key equal to the whole remaining name wins (`"a.b"` finds a literal `a.b`
/// key before walking `a` then `b`); otherwise the name is split at its first dot and the walk
/// descends into that key. On an array the segment must be a decimal index (Go's
/// `strconv.ParseUint`: digits only, leading zeros allowed) within bounds. A scalar cannot be
/// descended into; `null` can't either, and that one is adnanh's hard "no parameters" error.
pub fn lookup<'a>(root: &'a Value, name: &str) -> Result<&'a Value, LookupError> {
    let mut node = root;
    let mut rest = name;
    loop {
        let (child, tail) = match node {
            Value::Object(map) => {
                if let Some(found) = map.get(rest) {
                    return Ok(found);
                }
                let (head, tail) = split_first_dot(rest);
                (map.get(head), tail)
            }
            // An empty array, a bad index or one past the end: not found.
            Value::Array(items) => {
                let (head, tail) = split_first_dot(rest);
                (parse_index(head).and_then(|i| items.get(i)), tail)
            }
            // adnanh's GetParameter starts with `if params == nil { "no parameters" }`.
            Value::Null => return Err(LookupError::NoParameters),
            Value::String(_) | Value::Number(_) | Value::Bool(_) => (None, None),
        };
        match (child, tail) {
            (None, _) => return Err(LookupError::NotFound(rest.to_owned())),
            (Some(child), None) => return Ok(child),
            (Some(child), Some(tail)) => {
                node = child;
                rest = tail;
            }
        }
    }
}

/// [`lookup`] starting from an object (headers, query, payload).
pub fn lookup_in_map<'a>(map: &'a Map, name: &str) -> Result<&'a Value, LookupError> {
    if let Some(found) = map.get(name) {
        return Ok(found);
    }
    match split_first_dot(name) {
        (head, Some(tail)) => match map.get(head) {
            Some(child) => lookup(child, tail),
            None => Err(LookupError::NotFound(name.to_owned())),
        },
        (_, None) => Err(LookupError::NotFound(name.to_owned())),
    }
}

/// Whether a payload name holds a `*` segment: hookwire's wildcard, which selects every element
/// of an array (or every value of an object) at that point.
pub fn has_wildcard(name: &str) -> bool {
    name.split('.').any(|segment| segment == "*")
}

/// The values a wildcard name selects, in document order (an object's values in key order).
///
/// The runs of segments between `*`s are resolved as [`lookup`] resolves a name (a literal
/// dotted key still wins); a `*` over a scalar or `null`, or a run that finds nothing, selects
/// nothing there. Each `*` flattens one level, so `commits.*.modified.*` is every modified file
/// of every commit.
pub fn select<'a>(root: &'a Map, name: &str) -> Vec<&'a Value> {
    let mut selected = Vec::new();
    match split_first_dot(name) {
        ("*", rest) => root
            .values()
            .for_each(|child| select_in(child, rest, &mut selected)),
        _ => {
            let (run, rest) = split_at_wildcard(name);
            if let Ok(found) = lookup_in_map(root, run) {
                select_in(found, rest, &mut selected);
            }
        }
    }
    selected
}

fn select_in<'a>(node: &'a Value, path: Option<&str>, selected: &mut Vec<&'a Value>) {
    let Some(path) = path else {
        selected.push(node);
        return;
    };
    match (split_first_dot(path), node) {
        (("*", rest), Value::Array(items)) => {
            items
                .iter()
                .for_each(|child| select_in(child, rest, selected));
        }
        (("*", rest), Value::Object(map)) => {
            map.values()
                .for_each(|child| select_in(child, rest, selected));
        }
        (("*", _), _) => {}
        _ => {
            let (run, rest) = split_at_wildcard(path);
            if let Ok(found) = lookup(node, run) {
                select_in(found, rest, selected);
            }
        }
    }
}

/// Splits `a.b.*.c` into `a.b` and `*.c`: the run before the first `*` segment and the rest.
fn split_at_wildcard(path: &str) -> (&str, Option<&str>) {
    let mut start = 0;
    while let Some(found) = path[start..].find(".*") {
        let dot = start + found;
        let after = dot + 2;
        if after == path.len() || path.as_bytes()[after] == b'.' {
            return (&path[..dot], Some(&path[dot + 1..]));
        }
        start = dot + 1;
    }
    (path, None)
}

/// The selected values as one Go JSON array ([`to_go_json`] of each).
pub fn selection_to_go_json(values: &[&Value]) -> String {
    let mut out = String::from("[");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_json(&mut out, value);
    }
    out.push(']');
    out
}

/// Replaces the existing node addressed by a dotted name, resolved as [`lookup`] resolves it,
/// and returns whether a node was replaced. Nothing is created.
///
/// Used by `parse-parameters-as-json`. adnanh's `ReplaceParameter` panics on a dotted name (it
/// type-asserts a nested map as a pointer) and cannot replace an array element; here both work.
pub fn replace(map: &mut Map, name: &str, value: Value) -> bool {
    if let Some(slot) = map.get_mut(name) {
        *slot = value;
        return true;
    }
    match split_first_dot(name) {
        (head, Some(tail)) => match map.get_mut(head) {
            Some(child) => replace_in(child, tail, value),
            None => false,
        },
        (_, None) => false,
    }
}

fn replace_in(node: &mut Value, name: &str, value: Value) -> bool {
    match node {
        Value::Object(map) => replace(map, name, value),
        Value::Array(items) => {
            let (head, tail) = split_first_dot(name);
            let Some(item) = parse_index(head).and_then(|i| items.get_mut(i)) else {
                return false;
            };
            match tail {
                None => {
                    *item = value;
                    true
                }
                Some(tail) => replace_in(item, tail, value),
            }
        }
        _ => false,
    }
}

/// adnanh's string form of a value (`fmt.Sprintf("%v")`, or `json.Marshal` for containers):
/// strings as they are, numbers as the digits sent, `true`/`false`, `null` as Go's `<nil>`,
/// objects and arrays as Go's compact JSON ([`to_go_json`]).
pub fn to_go_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_str().to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "<nil>".to_owned(),
        Value::Object(_) | Value::Array(_) => to_go_json(v),
    }
}

/// The value as Go's `json.Marshal` writes it: compact, keys sorted, numbers as sent, and
/// Go's HTML-safe string escaping (`<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`).
pub fn to_go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(&mut out, v);
    out
}

/// [`to_go_json`] of an object (the `entire-*` sources).
pub fn map_to_go_json(map: &Map) -> String {
    let mut out = String::new();
    write_go_map(&mut out, map);
    out
}

fn write_go_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(n.as_str()),
        Value::String(s) => write_go_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_go_map(out, map),
    }
}

fn write_go_map(out: &mut String, map: &Map) {
    out.push('{');
    // serde_json's Map is a BTreeMap here (no `preserve_order`): keys come sorted bytewise, as
    // Go sorts map keys when marshalling.
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_string(out, key);
        out.push(':');
        write_go_json(out, value);
    }
    out.push('}');
}

/// A JSON string as Go's encoder (with its default `SetEscapeHTML(true)`) writes it: `<`, `>`,
/// `&` as `\u003c`, `\u003e`, `\u0026`; U+2028 and U+2029 escaped; `\n`, `\r`, `\t` short; other
/// control characters as `\u00XX`. The Go that built Debian's webhook 2.8.0 predates Go 1.22, so
/// `\b` and `\f` are `\u0008` and `\u000c` too (measured).
fn write_go_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{2028}' => Some("\\u2028"),
            '\u{2029}' => Some("\\u2029"),
            c if c < ' ' || c == '<' || c == '>' || c == '&' => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        start = i + c.len_utf8();
        match escape {
            Some(e) => out.push_str(e),
            None => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn split_first_dot(name: &str) -> (&str, Option<&str>) {
    match name.split_once('.') {
        Some((head, tail)) => (head, Some(tail)),
        None => (name, None),
    }
}

/// Go's `strconv.ParseUint(s, 10, 64)`: one or more ASCII digits, no sign, no underscores,
/// within u64. Anything else is not an index.
fn parse_index(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().and_then(|i| usize::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn lookup_follows_adnanh_get_parameter() {
        let root = from(
            r#"{
                "a": {"b": {"c": "deep"}, "n": null, "s": "str", "list": [10, {"x": "y"}], "empty": []},
                "a.b": "literal",
                "x.y": {"z": "lit-then-walk"},
                "k": {"a.b": {"c": "nested-literal"}},
                "t": true
            }"#,
        );
        let found = |name: &str| lookup(&root, name).map(to_go_string);
        let cases: &[(&str, Result<&str, LookupError>)] = &[
            ("a.b.c", Ok("deep")),
            // A literal dotted key wins over walking.
            ("a.b", Ok("literal")),
            // Only the whole remaining name is tried literally, never a dotted prefix: `x.y.z`
            // splits into `x` + `y.z`, and there is no `x`.
            ("x.y.z", Err(LookupError::NotFound("x.y.z".into()))),
            // The literal check applies at every level, to the whole remaining name only.
            ("k.a.b", Ok(r#"{"c":"nested-literal"}"#)),
            ("k.a.b.c", Err(LookupError::NotFound("a.b.c".into()))),
            ("a.list.0", Ok("10")),
            ("a.list.1.x", Ok("y")),
            // Go's ParseUint accepts leading zeros...
            ("a.list.01.x", Ok("y")),
            ("a.list.00", Ok("10")),
            // ...but no sign, no negative, nothing past the end.
            ("a.list.+1", Err(LookupError::NotFound("+1".into()))),
            ("a.list.-1", Err(LookupError::NotFound("-1".into()))),
            ("a.list.2", Err(LookupError::NotFound("2".into()))),
            (
                "a.list.18446744073709551616",
                Err(LookupError::NotFound("18446744073709551616".into())),
            ),
            ("a.list.x", Err(LookupError::NotFound("x".into()))),
            ("a.list.", Err(LookupError::NotFound("".into()))),
            ("a.list", Ok("[10,{\"x\":\"y\"}]")),
            ("a.empty.0", Err(LookupError::NotFound("0".into()))),
            ("a.empty", Ok("[]")),
            // Scalars cannot be descended into.
            ("a.s.x", Err(LookupError::NotFound("x".into()))),
            ("t.x", Err(LookupError::NotFound("x".into()))),
            ("a.list.0.x", Err(LookupError::NotFound("x".into()))),
            // null itself is found (and prints as Go's <nil>)...
            ("a.n", Ok("<nil>")),
            // ...but descending into it is adnanh's hard "no parameters".
            ("a.n.x", Err(LookupError::NoParameters)),
            ("missing", Err(LookupError::NotFound("missing".into()))),
            ("a.missing", Err(LookupError::NotFound("missing".into()))),
            ("", Err(LookupError::NotFound("".into()))),
        ];
        for (name, want) in cases {
            assert_eq!(
                found(name),
                want.clone().map(str::to_owned),
                "lookup {name:?}"
            );
        }
    }

    #[test]
    fn wildcards_select_every_element_in_document_order() {
        let Value::Object(map) = from(
            r#"{
                "commits": [
                    {"id": "a", "modified": ["src/x.rs", "README.md"]},
                    {"id": "b", "modified": []},
                    {"id": "c", "modified": ["docs/y.md"], "n": null}
                ],
                "files": {"b": {"size": 2}, "a": {"size": 1}},
                "a.b": [1, 2],
                "s": "scalar"
            }"#,
        ) else {
            unreachable!()
        };
        let selected = |name: &str| selection_to_go_json(&select(&map, name));
        let cases = [
            (
                "commits.*.modified.*",
                r#"["src/x.rs","README.md","docs/y.md"]"#,
            ),
            (
                "commits.*.modified",
                r#"[["src/x.rs","README.md"],[],["docs/y.md"]]"#,
            ),
            ("commits.*.id", r#"["a","b","c"]"#),
            ("commits.1.modified.*", "[]"),
            // Object values in key order.
            ("files.*.size", "[1,2]"),
            // A literal dotted key still wins within a run.
            ("a.b.*", "[1,2]"),
            // Nothing to select: missing, scalar, null, an element without the key.
            ("missing.*", "[]"),
            ("s.*", "[]"),
            ("commits.*.n.*", "[]"),
            ("commits.*.n", "[null]"),
            ("*.size", "[]"),
        ];
        for (name, want) in cases {
            assert_eq!(selected(name), want, "{name}");
        }
        assert_eq!(select(&map, "*").len(), 4);
        assert!(has_wildcard("commits.*.id") && has_wildcard("*"));
        assert!(!has_wildcard("commits.*x.id") && !has_wildcard("a.b"));
        assert_eq!(split_at_wildcard("a.*x.*.b"), ("a.*x", Some("*.b")));
    }

    #[test]
    fn lookup_in_map_matches_lookup() {
        let Value::Object(map) = from(r#"{"a": {"b": [1, 2]}, "a.b": "lit", "n": null}"#) else {
            unreachable!()
        };
        let root = Value::Object(map.clone());
        for name in [
            "a", "a.b", "a.b.1", "a.b.2", "a.c", "n", "n.x", "zz", "a.b.x",
        ] {
            assert_eq!(lookup_in_map(&map, name), lookup(&root, name), "{name}");
        }
    }

    #[test]
    fn lookup_of_a_scalar_root() {
        assert_eq!(
            lookup(&json!("s"), "x"),
            Err(LookupError::NotFound("x".into()))
        );
        assert_eq!(lookup(&Value::Null, "x"), Err(LookupError::NoParameters));
    }

    #[test]
    fn replace_addresses_existing_nodes_only() {
        let Value::Object(mut map) =
            from(r#"{"top": "s", "a": {"b": "x", "list": ["p", {"q": "r"}]}, "a.lit": "l"}"#)
        else {
            unreachable!()
        };
        assert!(replace(&mut map, "top", json!({"k": 1})));
        // Dotted names work (adnanh panics here).
        assert!(replace(&mut map, "a.b", json!({"k": 2})));
        assert!(replace(&mut map, "a.list.0", json!({"k": 3})));
        assert!(replace(&mut map, "a.list.1.q", json!({"k": 4})));
        assert!(replace(&mut map, "a.lit", json!({"k": 5})));
        // Nothing is created.
        assert!(!replace(&mut map, "new", json!(1)));
        assert!(!replace(&mut map, "a.new", json!(1)));
        assert!(!replace(&mut map, "a.list.2", json!(1)));
        assert!(!replace(&mut map, "a.list.x", json!(1)));
        assert!(!replace(&mut map, "top.k.z", json!(1)));
        assert_eq!(
            map_to_go_json(&map),
            r#"{"a":{"b":{"k":2},"list":[{"k":3},{"q":{"k":4}}]},"a.lit":{"k":5},"top":{"k":1}}"#
        );
    }

    #[test]
    fn string_forms() {
        let cases = [
            (r#""plain""#, "plain"),
            ("1.50", "1.50"),
            ("-0", "-0"),
            ("12345678901234567890123", "12345678901234567890123"),
            ("0.000000000000000000001", "0.000000000000000000001"),
            // The one number difference from Go (which prints 1E3): serde_json normalises the
            // exponent while parsing.
            ("1E3", "1e+3"),
            ("true", "true"),
            ("false", "false"),
            ("null", "<nil>"),
            (r#"{"b": 1, "a": [1.0, "x"]}"#, r#"{"a":[1.0,"x"],"b":1}"#),
            (
                r#"{"h": "<a href='x'>&</a>"}"#,
                r#"{"h":"\u003ca href='x'\u003e\u0026\u003c/a\u003e"}"#,
            ),
            ("[]", "[]"),
            ("{}", "{}"),
        ];
        for (text, want) in cases {
            assert_eq!(to_go_string(&from(text)), want, "{text}");
        }
    }

    #[test]
    fn go_json_escaping() {
        let v = json!({
            "s": "q\"b\\n\nr\rt\tb\u{8}f\u{c}c\u{1}\u{1f}d\u{7f}<>&\u{2028}\u{2029}é😀",
            "<k>": null,
        });
        assert_eq!(
            to_go_json(&v),
            "{\"\\u003ck\\u003e\":null,\"s\":\"q\\\"b\\\\n\\nr\\rt\\tb\\u0008f\\u000cc\\u0001\\u001fd\u{7f}\\u003c\\u003e\\u0026\\u2028\\u2029é😀\"}"
        );
    }

    #[test]
    fn go_json_of_empty_map() {
        assert_eq!(map_to_go_json(&Map::new()), "{}");
    }
}
