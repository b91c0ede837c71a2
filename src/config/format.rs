//! Reading a hooks file's text into a position-carrying tree, with adnanh's reader quirks.
//!
//! adnanh reads every file (`.json` included) with ghodss/yaml over go-yaml v2, so here too:
//! anything that is not `.toml` goes through the YAML parser, which accepts JSON with trailing
//! commas, tabs and a BOM; anchors, aliases and `<<:` merge keys work (with go-yaml v2's order:
//! a merge overrides the keys before it); a repeated key keeps its last value (warned); only
//! the first YAML document is read; plain scalars are resolved as YAML 1.1 ([`super::yaml11`]).
//!
//! The tree is built from the parser's events rather than through serde so that each scalar
//! keeps its style (plain or quoted) and every node its line and column. serde-saphyr's budget
//! check runs first over the same event stream (depth, events, anchors), and the tree itself
//! caps the *expanded* size and depth, since aliases share nodes: a billion-laughs file fails
//! here in microseconds instead of being walked.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use serde_saphyr::budget::{Budget, EnforcingPolicy, check_yaml_budget};
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, ScanError, Span, Tag};

use super::yaml11::{self, Resolved};

/// Most nodes a file may expand to once aliases are counted at every use, at least: the
/// limit grows with the file (see [`expansion_limit`]).
const MAX_EXPANDED_NODES: usize = 250_000;
/// Deepest nesting a file may reach once aliases are expanded; a real hooks file needs ~20.
const MAX_DEPTH: usize = 100;

/// A 1-based place in the file (0 when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A scalar: its text (unescaped) and what go-yaml v2 would have made of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    /// [`Resolved::Str`] for quoted and block scalars and TOML strings.
    pub value: Resolved,
    /// Written in quotes (or as a block scalar, or a TOML string).
    pub quoted: bool,
}

/// One node of the file.
#[derive(Debug)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
    /// Nodes under this one (itself included), aliases counted at every use.
    weight: usize,
    depth: usize,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq(Vec<Rc<Node>>),
    Map(Vec<Entry>),
}

/// A mapping entry. Keys are compared by their go-yaml string form.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Rc<Node>,
    /// Came in through a `<<` merge key (an explicit key may then override it silently).
    merged: bool,
}

/// A problem at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    fn new(pos: Pos, message: impl Into<String>) -> Self {
        Self {
            pos,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The file's tree (`None` for a file with no content) and what the reader noticed.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub root: Option<Rc<Node>>,
    pub warnings: Vec<Problem>,
}

/// Which reader a file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Toml,
}

impl Format {
    /// TOML by extension; everything else is YAML, as adnanh reads `.json` with its YAML parser.
    pub(crate) fn of(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Yaml,
        }
    }
}

/// Reads `text` into a tree.
pub(crate) fn parse(format: Format, text: &str) -> Result<Parsed, Problem> {
    match format {
        Format::Yaml => parse_yaml(text),
        Format::Toml => parse_toml(text),
    }
}

/// How many nodes a file of `len` bytes may expand to through its aliases: one per byte of
/// the file, and never less than [`MAX_EXPANDED_NODES`]. A file without aliases has fewer
/// nodes than bytes, so only aliases can reach it, and they can grow a file by a constant
/// factor at most instead of exponentially (billion laughs).
fn expansion_limit(len: usize) -> usize {
    MAX_EXPANDED_NODES.max(len)
}

/// serde-saphyr's budget for a YAML text of `len` bytes: its defaults (a million events,
/// 250 000 nodes, 50 000 anchors and aliases, 10 000 merge keys, 64 levels) grown with the
/// file, so a long file of ordinary hooks loads. Nothing here bounds alias *expansion*: the
/// tree does ([`expansion_limit`]), so the alias-to-anchor ratio check is off (one
/// `&defaults` merged into every hook is ordinary).
fn yaml_budget(len: usize) -> Budget {
    let mut budget = Budget::default();
    budget.max_events = budget.max_events.max(len.saturating_mul(2));
    budget.max_nodes = budget.max_nodes.max(len);
    budget.max_aliases = budget.max_aliases.max(len / 2);
    budget.max_anchors = budget.max_anchors.max(len / 2);
    budget.max_merge_keys = budget.max_merge_keys.max(len / 4);
    budget.max_recorded_anchor_events =
        budget.max_recorded_anchor_events.max(len.saturating_mul(2));
    budget.enforce_alias_anchor_ratio = false;
    budget
}

impl Node {
    /// A node, refused when its subtree expands to more than `max_weight` nodes.
    fn new(pos: Pos, kind: Kind, max_weight: usize) -> Result<Rc<Self>, Problem> {
        let children: Box<dyn Iterator<Item = &Rc<Node>>> = match &kind {
            Kind::Scalar(_) => Box::new(std::iter::empty()),
            Kind::Seq(items) => Box::new(items.iter()),
            Kind::Map(entries) => Box::new(entries.iter().map(|e| &e.value)),
        };
        let (weight, depth) = children.fold((1usize, 1usize), |(w, d), child| {
            (w.saturating_add(child.weight), d.max(child.depth + 1))
        });
        if weight > max_weight {
            return Err(Problem::new(
                pos,
                format!(
                    "the file expands to more than {max_weight} values through its aliases \
                     (one per byte of the file)"
                ),
            )
            .hint(
                "aliases that expand this far make an alias bomb (billion laughs); write the \
                 values out or use fewer levels of aliases",
            ));
        }
        if depth > MAX_DEPTH {
            return Err(Problem::new(
                pos,
                format!("values are nested more than {MAX_DEPTH} levels deep"),
            )
            .hint("flatten the nesting; hooks files need a few levels only"));
        }
        Ok(Rc::new(Node {
            pos,
            kind,
            weight,
            depth,
        }))
    }

    fn scalar(pos: Pos, scalar: Scalar) -> Result<Rc<Self>, Problem> {
        Self::new(pos, Kind::Scalar(scalar), 1)
    }

    /// The scalar, if this is one.
    pub(crate) fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// A null scalar (`~`, `null`, nothing): Go's JSON decoder leaves the field untouched.
    pub(crate) fn is_null(&self) -> bool {
        self.as_scalar().is_some_and(|s| s.value == Resolved::Null)
    }
}

impl Scalar {
    /// A string as ghodss/yaml hands it to a Go string field (`yes` → `true`, `0x1F` → `31`).
    pub(crate) fn go_string(&self) -> String {
        yaml11::resolved_to_string(self.value).unwrap_or_else(|| self.text.clone())
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn scan_problem(error: &ScanError) -> Problem {
    let marker = error.marker();
    Problem::new(
        Pos {
            line: marker.line(),
            column: marker.col() + 1,
        },
        format!("YAML syntax error: {}", error.info()),
    )
    .hint("JSON files are read as YAML too; check brackets, quotes and indentation around here")
}

// ---------------------------------------------------------------------------------------------
// YAML

/// How many double-quoted scalars with libyaml-only escapes one file may have repaired.
const MAX_ESCAPE_REPAIRS: usize = 10_000;

fn parse_yaml(text: &str) -> Result<Parsed, Problem> {
    let mut text = Cow::Borrowed(text);
    for _ in 0..MAX_ESCAPE_REPAIRS {
        match read_yaml(&text) {
            Err(Failure::Scan(error)) => match repair_apostrophe_escape(&text, &error) {
                Some(repaired) => text = Cow::Owned(repaired),
                None => return Err(scan_problem(&error)),
            },
            Err(Failure::Problem(problem)) => return Err(problem),
            Ok(parsed) => return Ok(parsed),
        }
    }
    Err(Problem::new(
        Pos::default(),
        "too many `\\'` escapes in double-quoted strings",
    ))
}

enum Failure {
    Scan(ScanError),
    Problem(Problem),
}

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Self {
        Failure::Problem(problem)
    }
}

fn read_yaml(text: &str) -> Result<Parsed, Failure> {
    let report = check_yaml_budget(text, yaml_budget(text.len()), EnforcingPolicy::AllContent)
        .map_err(Failure::Scan)?;
    if let Some(breach) = report.breached {
        return Err(Problem::new(
            Pos::default(),
            format!("the file exceeds the YAML reader's safety limits ({breach:?})"),
        )
        .hint(
            "the limits grow with the file's size, so this is runaway nesting (64 levels), \
             aliases or documents; see docs/security.md, \"Limits\"",
        )
        .into());
    }
    let mut options = Options::default();
    // libyaml (hence go-yaml v2) adds no line feed to a block scalar ending the file.
    options.block_scalar_eof_without_line_feed = true;
    let mut builder = TreeBuilder {
        max_weight: expansion_limit(text.len()),
        ..TreeBuilder::default()
    };
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.map_err(Failure::Scan)?;
        if builder.event(event, &span)? == Flow::Stop {
            break;
        }
    }
    Ok(Parsed {
        root: builder.root,
        warnings: builder.warnings,
    })
}

/// libyaml accepts `\'` in a double-quoted scalar (YAML 1.2 does not), and adnanh's own
/// `-template` example produces it: `"{{ getenv "S" | js }}"` escapes an apostrophe as `\'`.
/// When the parser stops at an unknown escape, the scalar it points at (its opening quote)
/// gets its `\'` turned into `'` and the file is read again.
fn repair_apostrophe_escape(text: &str, error: &ScanError) -> Option<String> {
    if !error.info().contains("unknown escape") {
        return None;
    }
    let start = error.marker().byte_offset()?;
    let body = text.get(start..)?.strip_prefix('"')?;
    let mut chars = body.char_indices();
    let mut repaired = String::with_capacity(text.len());
    repaired.push_str(&text[..=start]);
    let mut changed = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                repaired.push_str(&body[i..]);
                return changed.then_some(repaired);
            }
            '\\' => match chars.next() {
                Some((_, '\'')) => {
                    repaired.push('\'');
                    changed = true;
                }
                Some((_, escaped)) => {
                    repaired.push('\\');
                    repaired.push(escaped);
                }
                None => return None,
            },
            c => repaired.push(c),
        }
    }
    None
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// A collection being built.
#[derive(Debug)]
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Rc<Node>>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<Key>,
    },
}

#[derive(Debug)]
struct Key {
    text: String,
    pos: Pos,
    merge: bool,
}

#[derive(Debug, Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Rc<Node>>,
    documents: usize,
    warnings: Vec<Problem>,
    /// [`expansion_limit`] of the text being read.
    max_weight: usize,
}

impl TreeBuilder {
    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<Flow, Problem> {
        let pos = pos_of(span);
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    // go-yaml v2's Unmarshal reads the first document only.
                    self.warnings.push(
                        Problem::new(
                            pos,
                            "only the first YAML document is read; the rest of the file is ignored",
                        )
                        .hint("remove the `---` separator or merge the lists"),
                    );
                    return Ok(Flow::Stop);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let scalar = scalar(&text, style, tag.as_deref());
                let node = Node::scalar(pos, scalar)?;
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| {
                    Problem::new(
                        pos,
                        "this alias refers to an anchor that is not complete yet",
                    )
                    .hint("an alias may only refer to a value defined before it")
                })?;
                self.push(node)?;
            }
            Event::SequenceStart(_, anchor, _) => self.stack.push(Frame::Seq {
                pos,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(_, anchor, _) => self.stack.push(Frame::Map {
                pos,
                anchor,
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => {
                        (Node::new(pos, Kind::Seq(items), self.max_weight)?, anchor)
                    }
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => (Node::new(pos, Kind::Map(entries), self.max_weight)?, anchor),
                    None => return Ok(Flow::Continue),
                };
                self.finish(node, anchor)?;
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, node: Rc<Node>, anchor: usize) -> Result<(), Problem> {
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        self.push(node)
    }

    /// Hands a completed node to the collection being built (or makes it the root).
    fn push(&mut self, node: Rc<Node>) -> Result<(), Problem> {
        let Some(frame) = self.stack.last_mut() else {
            self.root.get_or_insert(node);
            return Ok(());
        };
        match frame {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map { entries, key, .. } => match key.take() {
                None => *key = Some(map_key(&node)?),
                Some(key) if key.merge => merge_into(entries, &node)?,
                Some(key) => {
                    if let Some(warning) = insert(entries, key, node) {
                        self.warnings.push(warning);
                    }
                }
            },
        }
        Ok(())
    }
}

/// go-yaml v2 resolution of one scalar, honouring explicit tags: `!!str` (and other
/// non-core tags) keep the text, other core tags resolve it like a plain scalar.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Scalar {
    let plain = style == ScalarStyle::Plain;
    let resolve = match tag {
        Some(tag) => tag.is_yaml_core_schema() && !matches!(tag.suffix(), "str" | "binary"),
        None => plain,
    };
    Scalar {
        text: text.to_owned(),
        value: if resolve {
            yaml11::resolve(text)
        } else {
            Resolved::Str
        },
        quoted: !plain,
    }
}

fn map_key(node: &Node) -> Result<Key, Problem> {
    let scalar = node.as_scalar().ok_or_else(|| {
        Problem::new(
            node.pos,
            "a mapping key must be a plain word, not a list or a mapping",
        )
    })?;
    Ok(Key {
        text: scalar.go_string(),
        pos: node.pos,
        // go-yaml: a merge key is an unquoted `<<`.
        merge: !scalar.quoted && scalar.text == "<<",
    })
}

/// Inserts a key; a repeated explicit key replaces the earlier value (go-yaml v2 keeps the
/// last one) and yields a warning.
fn insert(entries: &mut Vec<Entry>, key: Key, value: Rc<Node>) -> Option<Problem> {
    let entry = Entry {
        key: key.text,
        key_pos: key.pos,
        value,
        merged: false,
    };
    let Some(existing) = entries.iter_mut().find(|e| e.key == entry.key) else {
        entries.push(entry);
        return None;
    };
    let warning = (!existing.merged).then(|| {
        Problem::new(
            entry.key_pos,
            format!(
                "key `{}` is repeated (first at line {}); the last value is used",
                entry.key, existing.key_pos.line
            ),
        )
        .hint("remove one of them")
    });
    *existing = entry;
    warning
}

/// go-yaml v2's `merge`: a mapping, or a list of mappings of which earlier ones win. Merged
/// keys override keys already present (v2 applies `<<` in document order).
fn merge_into(entries: &mut Vec<Entry>, value: &Node) -> Result<(), Problem> {
    let want_map = || {
        Problem::new(value.pos, "`<<` needs a mapping or a list of mappings")
            .hint("merge keys take an alias such as `<<: *defaults`")
    };
    let sources: Vec<&Node> = match &value.kind {
        Kind::Map(_) => vec![value],
        Kind::Seq(items) => items.iter().rev().map(|n| n.as_ref()).collect(),
        Kind::Scalar(_) => return Err(want_map()),
    };
    for source in sources {
        let Kind::Map(merged) = &source.kind else {
            return Err(want_map());
        };
        for entry in merged {
            let entry = Entry {
                merged: true,
                ..entry.clone()
            };
            match entries.iter_mut().find(|e| e.key == entry.key) {
                Some(existing) => *existing = entry,
                None => entries.push(entry),
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TOML

/// TOML hooks files (a hookwire extension): `[[hooks]]` tables, or `hooks = [...]`, with the
/// same keys. Values are typed by TOML itself, so nothing is resolved as YAML 1.1.
fn parse_toml(text: &str) -> Result<Parsed, Problem> {
    let lines = LineIndex::new(text);
    let table = toml::de::DeTable::parse(text).map_err(|e| {
        let pos = e.span().map(|s| lines.pos(s.start)).unwrap_or_default();
        Problem::new(pos, format!("TOML syntax error: {}", e.message()))
    })?;
    let mut warnings = Vec::new();
    let mut root = None;
    for (key, value) in table.get_ref().iter() {
        if key.get_ref() == "hooks" {
            root = Some(toml_node(value, &lines, 0, expansion_limit(text.len()))?);
        } else {
            warnings.push(
                Problem::new(
                    lines.pos(key.span().start),
                    format!("unknown top-level key `{}` is ignored", key.get_ref()),
                )
                .hint("hooks go in `[[hooks]]` tables"),
            );
        }
    }
    Ok(Parsed { root, warnings })
}

fn toml_node(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    lines: &LineIndex,
    depth: usize,
    max_weight: usize,
) -> Result<Rc<Node>, Problem> {
    use toml::de::DeValue;
    let pos = lines.pos(value.span().start);
    if depth > MAX_DEPTH {
        return Err(Problem::new(
            pos,
            format!("values are nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    let typed = |text: String, value: Resolved| Scalar {
        text,
        value,
        quoted: false,
    };
    let kind = match value.get_ref() {
        DeValue::String(s) => Kind::Scalar(Scalar {
            text: s.to_string(),
            value: Resolved::Str,
            quoted: true,
        }),
        DeValue::Integer(i) => {
            let parsed = i64::from_str_radix(i.as_str(), i.radix())
                .map(Resolved::Int)
                .or_else(|_| u64::from_str_radix(i.as_str(), i.radix()).map(Resolved::Uint))
                .map_err(|_| Problem::new(pos, "integer out of range"))?;
            Kind::Scalar(typed(i.as_str().to_owned(), parsed))
        }
        DeValue::Float(f) => {
            let parsed: f64 = match f.as_str().trim_start_matches('+') {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "-nan" => f64::NAN,
                other => other
                    .parse()
                    .map_err(|_| Problem::new(pos, "invalid float"))?,
            };
            Kind::Scalar(typed(f.as_str().to_owned(), Resolved::Float(parsed)))
        }
        DeValue::Boolean(b) => Kind::Scalar(typed(b.to_string(), Resolved::Bool(*b))),
        DeValue::Datetime(d) => Kind::Scalar(Scalar {
            text: d.to_string(),
            value: Resolved::Str,
            quoted: true,
        }),
        DeValue::Array(items) => Kind::Seq(
            items
                .iter()
                .map(|item| toml_node(item, lines, depth + 1, max_weight))
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Table(table) => Kind::Map(
            table
                .iter()
                .map(|(key, value)| {
                    Ok(Entry {
                        key: key.get_ref().to_string(),
                        key_pos: lines.pos(key.span().start),
                        value: toml_node(value, lines, depth + 1, max_weight)?,
                        merged: false,
                    })
                })
                .collect::<Result<_, Problem>>()?,
        ),
    };
    Node::new(pos, kind, max_weight)
}

/// Byte offset to line and column (in characters), for readers that give byte spans.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        Pos { line, column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Parsed {
        parse(Format::Yaml, text).expect("parses")
    }

    fn root_map(parsed: &Parsed, index: usize) -> Vec<(String, String)> {
        let Some(Kind::Seq(items)) = parsed.root.as_ref().map(|r| &r.kind) else {
            panic!("root is not a list");
        };
        let Kind::Map(entries) = &items[index].kind else {
            panic!("item is not a map");
        };
        entries
            .iter()
            .map(|e| {
                let value = e
                    .value
                    .as_scalar()
                    .map(Scalar::go_string)
                    .unwrap_or_default();
                (e.key.clone(), value)
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn json_with_trailing_commas_tabs_and_bom_reads_as_yaml() {
        let text = "\u{feff}[\n\t{\n\t\t\"id\": \"a\",\n\t\t\"execute-command\": \"/bin/true\",\n\t},\n]\n";
        let parsed = yaml(text);
        assert_eq!(
            root_map(&parsed, 0),
            pairs(&[("id", "a"), ("execute-command", "/bin/true")])
        );
    }

    #[test]
    fn duplicate_key_keeps_the_last_value_and_warns() {
        // Measured on webhook 2.8.0: the later `response-message` is served.
        let parsed = yaml("- id: a\n  response-message: first\n  response-message: second\n");
        assert_eq!(
            root_map(&parsed, 0),
            pairs(&[("id", "a"), ("response-message", "second")])
        );
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.warnings[0].pos, Pos { line: 3, column: 3 });
        assert!(parsed.warnings[0].message.contains("first at line 2"));
    }

    #[test]
    fn merge_keys_follow_go_yaml_v2_order() {
        // Measured on webhook 2.8.0: merge2 answers `from-base` (the merge after the explicit
        // key overrides it), merge3 answers `first` (earlier list entries win).
        let parsed = yaml(
            "- id: merge1\n  <<: &base {response-message: from-base, x: 1}\n\
             - id: merge2\n  response-message: explicit-before\n  <<: *base\n\
             - id: merge3\n  <<: [{response-message: first}, {response-message: second}]\n\
             - <<: *base\n  response-message: explicit-after\n",
        );
        assert_eq!(
            root_map(&parsed, 0),
            pairs(&[
                ("id", "merge1"),
                ("response-message", "from-base"),
                ("x", "1")
            ])
        );
        assert_eq!(
            root_map(&parsed, 1),
            pairs(&[
                ("id", "merge2"),
                ("response-message", "from-base"),
                ("x", "1")
            ])
        );
        assert_eq!(
            root_map(&parsed, 2),
            pairs(&[("id", "merge3"), ("response-message", "first")])
        );
        assert_eq!(
            root_map(&parsed, 3),
            pairs(&[("response-message", "explicit-after"), ("x", "1")])
        );
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn quoted_and_tagged_scalars_are_not_resolved() {
        let parsed = yaml(
            "- a: yes\n  b: 'yes'\n  c: \"0x1F\"\n  d: !!str 0x1F\n  e: !!int '0x1F'\n  f: |\n    yes\n",
        );
        assert_eq!(
            root_map(&parsed, 0),
            pairs(&[
                ("a", "true"),
                ("b", "yes"),
                ("c", "0x1F"),
                ("d", "0x1F"),
                ("e", "31"),
                ("f", "yes\n")
            ])
        );
    }

    #[test]
    fn libyaml_apostrophe_escape_is_accepted() {
        // Measured on webhook 2.8.0: `response-message: "{{ getenv "S" | js }}"` with an
        // apostrophe in S renders to `\'`, which go-yaml reads as `'`.
        let parsed = yaml("- a: \"it\\'s\"\n  b: \"x\\\\'\"\n  c: [\"\\'\", \"\\'\\'\"]\n");
        assert_eq!(
            root_map(&parsed, 0)[..2],
            pairs(&[("a", "it's"), ("b", "x\\'")])[..]
        );
    }

    #[test]
    fn empty_and_comment_only_files_have_no_root() {
        for text in ["", "   \n\n", "# nothing here\n  # at all\n", "\u{feff}"] {
            assert!(yaml(text).root.is_none(), "{text:?}");
        }
    }

    #[test]
    fn only_the_first_document_is_read() {
        // Measured on webhook 2.8.0: a hook after `---` is not served.
        let parsed = yaml("- id: a\n---\n- id: b\n");
        assert_eq!(root_map(&parsed, 0), pairs(&[("id", "a")]));
        assert_eq!(parsed.warnings[0].pos.line, 2);
    }

    #[test]
    fn syntax_errors_carry_the_parser_position() {
        let err = parse(Format::Yaml, "- id: a\n  execute-command: [unclosed\n").unwrap_err();
        assert!(err.message.starts_with("YAML syntax error"), "{err:?}");
        assert!(err.pos.line >= 2, "{err:?}");
    }

    #[test]
    fn billion_laughs_is_rejected_quickly() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let prev = level - 1;
            let refs = vec![format!("*a{prev}"); 9].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let err = parse(Format::Yaml, &text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(err.message.contains("expands"), "{err:?}");
        // Padding raises the limit with the file, but only linearly.
        let padded = format!("{text}{}", "# padding\n".repeat(400_000));
        let err = parse(Format::Yaml, &padded).unwrap_err();
        assert!(err.message.contains("expands"), "{err:?}");
    }

    /// Past every fixed default (250 000 nodes, 10 000 merge keys, ten aliases per anchor):
    /// 30 000 hooks sharing one `&defaults` read fine, as the limits grow with the file.
    #[test]
    fn long_files_with_shared_defaults_parse() {
        let mut text =
            String::from("- &defaults {execute-command: /bin/true, response-message: ok}\n");
        for n in 0..30_000 {
            text.push_str(&format!(
                "- <<: *defaults\n  id: h{n}\n  pass-arguments-to-command: [{{source: payload, name: a}}, {{source: payload, name: b}}]\n"
            ));
        }
        let parsed = parse(Format::Yaml, &text).expect("parses");
        let root = parsed.root.expect("root");
        assert!(root.weight > MAX_EXPANDED_NODES, "{}", root.weight);
        let Kind::Seq(items) = &root.kind else {
            panic!("a list")
        };
        assert_eq!(items.len(), 30_001);
    }

    #[test]
    fn deep_nesting_is_rejected_quickly() {
        for text in [
            "[".repeat(100_000),
            "- ".repeat(100_000) + "x",
            "{a: ".repeat(100_000),
        ] {
            let started = std::time::Instant::now();
            assert!(parse(Format::Yaml, &text).is_err());
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }
        let toml = format!("hooks = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(Format::Toml, &toml).is_err());
    }

    #[test]
    fn alias_stacking_cannot_exceed_the_depth_limit() {
        let mut text = String::from("a0: &a0 [[[[[[[[[[x]]]]]]]]]]\n");
        for level in 1..40 {
            let prev = level - 1;
            text.push_str(&format!(
                "a{level}: &a{level} [[[[[[[[[[*a{prev}]]]]]]]]]]\n"
            ));
        }
        let err = parse(Format::Yaml, &text).unwrap_err();
        assert!(err.message.contains("nested"), "{err:?}");
    }

    #[test]
    fn toml_positions_and_unknown_top_level_keys() {
        let parsed = parse(
            Format::Toml,
            "title = 'x'\n\n[[hooks]]\nid = 'a'\nsuccess-http-response-code = 201\n",
        )
        .unwrap();
        assert_eq!(
            root_map(&parsed, 0),
            pairs(&[("id", "a"), ("success-http-response-code", "201")])
        );
        assert_eq!(parsed.warnings[0].pos, Pos { line: 1, column: 1 });
        let Some(Kind::Seq(items)) = parsed.root.as_ref().map(|r| &r.kind) else {
            panic!()
        };
        let Kind::Map(entries) = &items[0].kind else {
            panic!()
        };
        assert_eq!(entries[0].key_pos, Pos { line: 4, column: 1 });
    }

    #[test]
    fn line_index_counts_characters() {
        let index = LineIndex::new("ab\nçd\nx");
        assert_eq!(index.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(index.pos(5), Pos { line: 2, column: 2 });
        assert_eq!(index.pos(7), Pos { line: 3, column: 1 });
    }
}
