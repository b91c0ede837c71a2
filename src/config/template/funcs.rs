//! Values, the template functions, and Go's formatting and escaping they rely on.

use std::fmt::Write as _;
use std::rc::Rc;

use super::{FuncError, Host};

/// A value in a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    /// The data, `nil`, and whatever is taken from them.
    Nil,
    Bool(bool),
    Int(i64),
    /// Shared: variables and `.` hand the same string around.
    Str(Rc<str>),
}

impl Value {
    pub(super) fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// `fmt.Print` of the value.
    pub(super) fn print(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.to_string(),
        }
    }

    /// What an action prints: Go shows a missing value as `<no value>`.
    pub(super) fn output(&self) -> String {
        match self {
            Value::Nil => "<no value>".to_owned(),
            other => other.print(),
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "string",
        }
    }

    /// Go's truth: false, 0, "" and nil are false.
    pub(super) fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Str(s) => !s.is_empty(),
        }
    }

    /// Roughly the bytes the value takes when printed (for the size bound).
    pub(super) fn size(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            _ => 20,
        }
    }
}

/// The template functions hookwire has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Getenv,
    Cat,
    Credential,
    Js,
    Html,
    Urlquery,
    Print,
    Printf,
    Println,
    And,
    Or,
    Not,
    Len,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// The request functions of `{source: template}` values.
    Payload,
    Header,
    Query,
    Request,
}

/// The functions every template may call: Go's pure built-ins.
const BUILTINS: &[(&str, Func)] = &[
    ("js", Func::Js),
    ("html", Func::Html),
    ("urlquery", Func::Urlquery),
    ("print", Func::Print),
    ("printf", Func::Printf),
    ("println", Func::Println),
    ("and", Func::And),
    ("or", Func::Or),
    ("not", Func::Not),
    ("len", Func::Len),
    ("eq", Func::Eq),
    ("ne", Func::Ne),
    ("lt", Func::Lt),
    ("le", Func::Le),
    ("gt", Func::Gt),
    ("ge", Func::Ge),
];

/// The functions one kind of template may call besides the built-ins, and how its errors name
/// that kind.
#[derive(Debug, Clone, Copy)]
pub(super) struct Functions {
    own: &'static [(&'static str, Func)],
    pub(super) what: &'static str,
}

/// A hooks file rendered with `-template`: it may read the machine.
pub(super) const FILE: Functions = Functions {
    own: &[
        ("getenv", Func::Getenv),
        ("cat", Func::Cat),
        ("credential", Func::Credential),
    ],
    what: "hookwire's -template",
};

/// A `{source: template}` value: the request's values, but nothing that reads the machine
/// (`getenv`, `cat`, `credential`) at request time.
pub(super) const VALUE: Functions = Functions {
    own: &[
        ("payload", Func::Payload),
        ("header", Func::Header),
        ("query", Func::Query),
        ("request", Func::Request),
    ],
    what: "a `template` source",
};

impl Functions {
    /// Its functions by name: its own first, then the built-ins.
    pub(super) fn all(&self) -> impl Iterator<Item = &'static (&'static str, Func)> {
        self.own.iter().chain(BUILTINS)
    }

    pub(super) fn find(&self, name: &str) -> Option<Func> {
        self.all()
            .find(|(known, _)| *known == name)
            .map(|(_, func)| *func)
    }
}

impl Func {
    pub(super) fn name(self) -> &'static str {
        FILE.all()
            .chain(VALUE.own)
            .find(|(_, f)| *f == self)
            .map_or("?", |(name, _)| name)
    }

    /// The arguments Go's signature takes: (fixed, variadic).
    pub(super) fn arity(self) -> (usize, bool) {
        match self {
            Func::Getenv | Func::Cat | Func::Credential | Func::Not | Func::Len => (1, false),
            Func::Payload | Func::Header | Func::Query | Func::Request => (1, false),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (2, false),
            Func::Printf | Func::Eq | Func::And | Func::Or => (1, true),
            Func::Js | Func::Html | Func::Urlquery | Func::Print | Func::Println => (0, true),
        }
    }
}

/// Go's `eq`: whether `a` equals any of `others`. Nil equals only nil and may be compared with
/// anything; other values of different types may not.
pub(super) fn eq(a: &Value, others: &[Value]) -> Result<bool, &'static str> {
    if others.is_empty() {
        return Err("missing argument for comparison");
    }
    for b in others {
        let equal = match (a, b) {
            (Value::Nil, Value::Nil) => true,
            (Value::Nil, _) | (_, Value::Nil) => false,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Str(x), Value::Str(y)) => x == y,
            _ => return Err("incompatible types for comparison"),
        };
        if equal {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt`: integers and strings only, both of one type.
pub(super) fn lt(a: &Value, b: &Value) -> Result<bool, &'static str> {
    if matches!(a, Value::Nil) || matches!(b, Value::Nil) {
        return Err("invalid type for comparison");
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        (Value::Bool(_), Value::Bool(_)) => Err("invalid type for comparison"),
        _ => Err("incompatible types for comparison"),
    }
}

pub(super) fn le(a: &Value, b: &Value) -> Result<bool, &'static str> {
    Ok(lt(a, b)? || eq(a, std::slice::from_ref(b))?)
}

/// `cat PATH`: the file minus one trailing newline; empty when unreadable (upstream master).
pub(super) fn cat(host: &dyn Host, path: &str) -> String {
    let mut text = host.read_file(path).unwrap_or_default();
    if text.ends_with('\n') {
        text.pop();
    }
    text
}

/// `credential NAME`: `cat $CREDENTIALS_DIRECTORY/NAME`, else `getenv NAME` (upstream master).
pub(super) fn credential(host: &dyn Host, name: &str) -> String {
    host.getenv("CREDENTIALS_DIRECTORY")
        .filter(|dir| !dir.is_empty())
        .and_then(|dir| host.read_file(&format!("{dir}/{name}")))
        .map(|mut text| {
            if text.ends_with('\n') {
                text.pop();
            }
            text
        })
        .unwrap_or_else(|| host.getenv(name).unwrap_or_default())
}

/// Go's `fmt.Sprint`: operands concatenated, with a space between two non-strings.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let both_non_strings =
            i > 0 && !matches!(arg, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_));
        if both_non_strings {
            out.push(' ');
        }
        out.push_str(&arg.print());
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs `%s`, `%v`, `%d`, `%q`, `%t`, `%x` and `%%`, with Go's `%!` markers
/// for a wrong type, a missing or an extra argument.
pub(super) fn sprintf(format: &str, args: &[Value]) -> Result<String, FuncError> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or(FuncError::PrintfEndsWithPercent)?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        match (verb, arg) {
            ('v', _) | ('s', Value::Str(_)) | ('d', Value::Int(_)) | ('t', Value::Bool(_)) => {
                out.push_str(&arg.print())
            }
            ('q', Value::Str(s)) => out.push_str(&go_quote(s)),
            ('q', Value::Int(i)) => out.push_str(&go_quote_rune(*i)),
            ('x', Value::Str(s)) => out.push_str(&hex::encode(s.as_bytes())),
            ('x', Value::Int(i)) => {
                let _ = write!(
                    out,
                    "{}{:x}",
                    if *i < 0 { "-" } else { "" },
                    i.unsigned_abs()
                );
            }
            ('s' | 'd' | 'q' | 't' | 'x', Value::Nil) => {
                let _ = write!(out, "%!{verb}(<nil>)");
            }
            ('s' | 'd' | 'q' | 't' | 'x', _) => {
                let _ = write!(out, "%!{verb}({}={})", arg.type_name(), arg.print());
            }
            _ => return Err(FuncError::PrintfVerb(verb)),
        }
    }
    let extra: Vec<String> = args
        .map(|a| match a {
            Value::Nil => a.print(),
            _ => format!("{}={}", a.type_name(), a.print()),
        })
        .collect();
    if !extra.is_empty() {
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    Ok(out)
}

/// Go's `%q` of an integer: the character, quoted (U+FFFD when it is none).
fn go_quote_rune(i: i64) -> String {
    let c = u32::try_from(i)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}');
    match c {
        '\'' => "'\\''".to_owned(),
        '"' => "'\"'".to_owned(),
        c => {
            let quoted = go_quote(c.encode_utf8(&mut [0; 4]));
            format!("'{}'", &quoted[1..quoted.len() - 1])
        }
    }
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `template.JSEscapeString`.
pub(super) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            // Control characters include everything below U+0020.
            c if matches!(c, '<' | '>' | '&' | '=') || c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.HTMLEscapeString`.
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}
