//! The hooks file's schema: which keys each object has, and typed reading of the file's tree
//! with the conversions adnanh's `encoding/json` step applies.
//!
//! adnanh decodes the YAML-turned-JSON into Go structs, and that decoder decides what is
//! accepted: keys match field names case-insensitively (`ID` is `id`; when both are present the
//! one sorting last wins, as ghodss hands Go a map marshalled with sorted keys); unknown keys
//! are ignored (here: warned, with a "did you mean"); `null` leaves a field at its zero value;
//! a number or bool where a string is wanted becomes its text (ghodss); a string where a number
//! or bool is wanted, or a fractional number in an int field, fails the whole file.

use std::collections::HashMap;
use std::path::Path;

use super::Diagnostic;
use super::format::{Entry, Kind, Node, Pos};
use super::yaml11::Resolved;

/// The keys of one kind of object in the hooks file.
#[derive(Debug)]
pub struct ObjectKind {
    /// How messages name it.
    pub name: &'static str,
    /// adnanh 2.8's keys, in its struct's order.
    pub keys: &'static [&'static str],
    /// hookwire extension keys: known, so not warned about, but read elsewhere.
    pub extensions: &'static [&'static str],
}

/// A hook object (adnanh's `Hook` struct, 2.8.x).
pub const HOOK: ObjectKind = ObjectKind {
    name: "hook",
    keys: &[
        "id",
        "execute-command",
        "command-working-directory",
        "response-message",
        "response-headers",
        "include-command-output-in-response",
        "include-command-output-in-response-on-error",
        "pass-environment-to-command",
        "pass-arguments-to-command",
        "pass-file-to-command",
        "parse-parameters-as-json",
        "trigger-rule",
        "trigger-rule-mismatch-http-response-code",
        "trigger-signature-soft-failures",
        "incoming-payload-content-type",
        "success-http-response-code",
        "http-methods",
    ],
    extensions: &[
        "signature",
        "concurrency",
        "concurrency-key",
        "max-queue",
        "timeout",
        "dedupe",
        "delivery-id",
        "retry",
        "rate-limit",
        "kill-leftovers",
        "stream-output",
        "stdin",
        "exit-code-status",
        "run-as",
        "notify",
    ],
};

/// An argument object (`pass-*` lists, `parse-parameters-as-json`, a match's `parameter`).
pub const ARGUMENT: ObjectKind = ObjectKind {
    name: "argument",
    keys: &["source", "name", "envname", "base64decode"],
    extensions: &[],
};

/// A rule object; when several keys are set, the first in this order wins (adnanh).
pub const RULE: ObjectKind = ObjectKind {
    name: "rule",
    keys: &["and", "or", "not", "match"],
    extensions: &[],
};

/// A match object.
pub const MATCH: ObjectKind = ObjectKind {
    name: "match",
    keys: &["type", "regex", "secret", "value", "parameter", "ip-range"],
    extensions: &["all"],
};

/// A `response-headers` entry.
pub const HEADER: ObjectKind = ObjectKind {
    name: "response header",
    keys: &["name", "value"],
    extensions: &[],
};

/// A mapping read against an [`ObjectKind`]: each known key mapped to its entry.
#[derive(Debug)]
pub(crate) struct Object<'n> {
    pub pos: Pos,
    /// Where this object sits, e.g. `trigger-rule.and[1].match` (empty for a hook).
    pub path: String,
    fields: HashMap<&'static str, &'n Entry>,
}

impl<'n> Object<'n> {
    /// An object with no keys, for a `null` where an object was expected (Go's zero value).
    pub(crate) fn empty(pos: Pos, path: &str) -> Self {
        Self {
            pos,
            path: path.to_owned(),
            fields: HashMap::new(),
        }
    }

    /// The value node of a key, `None` when the key is absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.fields.get(key).map(|entry| entry.value.as_ref())
    }

    /// The value of a key unless it is absent or null.
    pub(crate) fn present(&self, key: &str) -> Option<&'n Node> {
        self.get(key).filter(|node| !node.is_null())
    }

    /// The path of a key inside this object.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Where a key's value is, or the object itself when the key is absent.
    pub(crate) fn pos_of(&self, key: &str) -> Pos {
        self.get(key).map_or(self.pos, |node| node.pos)
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Typed reading of one file's tree; collects warnings and builds diagnostics.
#[derive(Debug)]
pub(crate) struct Reader<'f> {
    file: &'f Path,
    /// The id of the hook being read, named in every diagnostic.
    pub hook: Option<String>,
    pub warnings: Vec<Diagnostic>,
}

impl<'f> Reader<'f> {
    pub(crate) fn new(file: &'f Path) -> Self {
        Self {
            file,
            hook: None,
            warnings: Vec::new(),
        }
    }

    /// The hooks file being read.
    pub(crate) fn file(&self) -> &'f Path {
        self.file
    }

    /// A diagnostic at `pos` about `field` (a path; empty for none) of the current hook.
    pub(crate) fn diagnostic(
        &self,
        pos: Pos,
        field: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            hook: self.hook.clone(),
            field: (!field.is_empty()).then(|| field.to_owned()),
            message: message.into(),
            hint,
        }
    }

    pub(crate) fn warn(
        &mut self,
        pos: Pos,
        field: &str,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        let warning = self.diagnostic(pos, field, message, hint.into());
        self.warnings.push(warning);
    }

    /// Reads a mapping as an object of `kind`; `None` for null (Go leaves the zero value).
    pub(crate) fn object<'n>(
        &mut self,
        node: &'n Node,
        kind: &ObjectKind,
        path: &str,
    ) -> Result<Option<Object<'n>>, Box<Diagnostic>> {
        let entries = match &node.kind {
            Kind::Map(entries) => entries,
            _ if node.is_null() => return Ok(None),
            _ => {
                return Err(self.type_error(
                    node,
                    path,
                    &format!("a {} object (a mapping)", kind.name),
                ));
            }
        };
        let mut fields: HashMap<&'static str, &'n Entry> = HashMap::new();
        let mut unknown = Vec::new();
        for entry in entries {
            match field_for(kind, &entry.key) {
                Some(Field::Exact(key)) => keep_winner(&mut fields, key, entry),
                Some(Field::Folded(key)) => {
                    self.warn(
                        entry.key_pos,
                        &join(path, key),
                        format!("key `{}` is read as `{key}` (keys match case-insensitively, as in adnanh)", entry.key),
                        format!("write `{key}`"),
                    );
                    keep_winner(&mut fields, key, entry);
                }
                Some(Field::Extension(key)) => keep_winner(&mut fields, key, entry),
                None => unknown.push(entry),
            }
        }
        for entry in unknown {
            self.warn_unknown(kind, entry, path, &fields);
        }
        Ok(Some(Object {
            pos: node.pos,
            path: path.to_owned(),
            fields,
        }))
    }

    /// The loud warning for a key adnanh would silently ignore.
    fn warn_unknown(
        &mut self,
        kind: &ObjectKind,
        entry: &Entry,
        path: &str,
        fields: &HashMap<&'static str, &Entry>,
    ) {
        let suggestion = did_you_mean(&entry.key, kind.keys.iter().chain(kind.extensions));
        let field = join(path, &entry.key);
        let message = match suggestion {
            // The classic trap: a misspelt rule key leaves the hook open to everyone.
            Some("trigger-rule") if !fields.contains_key("trigger-rule") => format!(
                "unknown key `{}` is ignored, so this hook has NO trigger rule and runs for EVERY request",
                entry.key
            ),
            _ => format!("unknown key `{}` in a {} is ignored", entry.key, kind.name),
        };
        let hint = match suggestion {
            Some(known) => format!("did you mean `{known}`?"),
            None => format!("a {} has the keys {}", kind.name, backticked(kind.keys)),
        };
        self.warn(entry.key_pos, &field, message, hint);
    }

    /// A string field; absent or null is empty. Numbers and bools become their Go text.
    pub(crate) fn string(&self, object: &Object<'_>, key: &str) -> Result<String, Box<Diagnostic>> {
        object.get(key).map_or(Ok(String::new()), |node| {
            self.string_value(node, &object.path_of(key))
        })
    }

    /// A scalar as a Go string field receives it.
    pub(crate) fn string_value(&self, node: &Node, path: &str) -> Result<String, Box<Diagnostic>> {
        node.as_scalar()
            .map(super::format::Scalar::go_string)
            .ok_or_else(|| self.type_error(node, path, "a string"))
    }

    /// A Go `bool` field: YAML 1.1 bools (`yes`, `on`, ...); absent or null is false.
    pub(crate) fn bool(&self, object: &Object<'_>, key: &str) -> Result<bool, Box<Diagnostic>> {
        let Some(node) = object.get(key) else {
            return Ok(false);
        };
        match node.as_scalar().map(|s| s.value) {
            Some(Resolved::Bool(b)) => Ok(b),
            Some(Resolved::Null) => Ok(false),
            _ => Err(self.type_error(node, &object.path_of(key), "true or false")),
        }
    }

    /// A Go `int` field, with the value's position; absent or null is `None`. A float is
    /// accepted when it is whole (`201.0`, as Go's JSON round trip allows, measured).
    pub(crate) fn int(
        &self,
        object: &Object<'_>,
        key: &str,
    ) -> Result<Option<(i64, Pos)>, Box<Diagnostic>> {
        let Some(node) = object.get(key) else {
            return Ok(None);
        };
        let value = match node.as_scalar().map(|s| s.value) {
            Some(Resolved::Null) => return Ok(None),
            Some(Resolved::Int(i)) => Some(i),
            Some(Resolved::Float(f)) => whole_float(f),
            _ => None,
        };
        value
            .map(|v| Some((v, node.pos)))
            .ok_or_else(|| self.type_error(node, &object.path_of(key), "an integer"))
    }

    /// A list field; absent or null is empty.
    pub(crate) fn list<'n>(
        &self,
        object: &Object<'n>,
        key: &str,
    ) -> Result<&'n [std::rc::Rc<Node>], Box<Diagnostic>> {
        match object.get(key) {
            None => Ok(&[]),
            Some(node) => match &node.kind {
                Kind::Seq(items) => Ok(items),
                _ if node.is_null() => Ok(&[]),
                _ => Err(self.type_error(node, &object.path_of(key), "a list")),
            },
        }
    }

    /// `expected X, found Y`, with advice for the quoted-number case.
    pub(crate) fn type_error(&self, node: &Node, path: &str, expected: &str) -> Box<Diagnostic> {
        let (found, hint) = match &node.kind {
            Kind::Seq(_) => ("a list".to_owned(), None),
            Kind::Map(_) => ("a mapping".to_owned(), None),
            Kind::Scalar(s) if s.quoted => (
                format!("the string {:?}", s.text),
                Some("remove the quotes: adnanh refuses a quoted value here and does not load the file".to_owned()),
            ),
            Kind::Scalar(s) => (format!("`{}`", s.text), None),
        };
        let hint = hint.or_else(|| {
            Some(format!(
                "write {expected} here; adnanh does not load a file with this error"
            ))
        });
        Box::new(self.diagnostic(
            node.pos,
            path,
            format!("expected {expected}, found {found}"),
            hint,
        ))
    }
}

enum Field {
    Exact(&'static str),
    /// Matched ignoring ASCII case, as Go's `encoding/json` does.
    Folded(&'static str),
    /// A hookwire extension key, matched exactly.
    Extension(&'static str),
}

fn field_for(kind: &ObjectKind, key: &str) -> Option<Field> {
    if let Some(known) = kind.keys.iter().find(|k| **k == key) {
        return Some(Field::Exact(known));
    }
    if let Some(extension) = kind.extensions.iter().find(|k| **k == key) {
        return Some(Field::Extension(extension));
    }
    kind.keys
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
        .map(|known| Field::Folded(known))
}

/// Two keys for one field (`id` and `ID`): Go sees them in sorted order and keeps the last.
fn keep_winner<'n>(
    fields: &mut HashMap<&'static str, &'n Entry>,
    key: &'static str,
    entry: &'n Entry,
) {
    let current = fields.entry(key).or_insert(entry);
    if entry.key > current.key {
        *current = entry;
    }
}

/// A float Go's JSON round trip would accept into an `int`: whole, finite, printed by
/// `encoding/json` without an exponent (below 1e21), within `int64`.
fn whole_float(f: f64) -> Option<i64> {
    let in_range = f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18;
    #[allow(clippy::cast_possible_truncation)]
    in_range.then_some(f as i64)
}

/// The closest known key, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'k>(
    key: &str,
    known: impl Iterator<Item = &'k &'static str>,
) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let limit = if key.len() <= 6 { 2 } else { 3 };
    known
        .map(|candidate| (strsim::levenshtein(&key, candidate), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// `` `a`, `b`, `c` ``.
pub(crate) fn backticked(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_but_not_strangers() {
        let keys = HOOK.keys.iter();
        assert_eq!(
            did_you_mean("trigger-rules", keys.clone()),
            Some("trigger-rule")
        );
        assert_eq!(
            did_you_mean("trigger_rule", keys.clone()),
            Some("trigger-rule")
        );
        assert_eq!(
            did_you_mean("execute-comand", keys.clone()),
            Some("execute-command")
        );
        assert_eq!(
            did_you_mean("http-method", keys.clone()),
            Some("http-methods")
        );
        assert_eq!(did_you_mean("pass-raw-request-body", keys.clone()), None);
        assert_eq!(did_you_mean("command", keys), None);
    }

    #[test]
    fn whole_floats_only() {
        assert_eq!(whole_float(201.0), Some(201));
        assert_eq!(whole_float(1.5), None);
        assert_eq!(whole_float(1e21), None);
        assert_eq!(whole_float(f64::NAN), None);
    }
}
