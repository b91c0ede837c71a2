//! `-template`: the subset of Go's `text/template` that adnanh's hooks files use, run over the
//! raw file text before it is parsed.
//!
//! adnanh executes the file as a template with no data, so only functions matter: `getenv`
//! (2.8.0), `cat` and `credential` (upstream master), and Go's built-ins `js` (its example pipes
//! secrets through it), `html`, `urlquery`, `print`, `printf`. Supported syntax: text, actions
//! with `{{-`/`-}}` trimming, `{{/* comments */}}`, string literals (Go escapes, or raw in
//! backquotes), integers, `true`/`false`, pipelines with `|`, parenthesised pipelines. Anything
//! else (`.`, variables, `if`, `range`, other functions) is an error naming it and its line,
//! and the file does not load, as a template error does in adnanh.

use std::fmt::Write as _;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// 1-based line of the action at fault.
    pub line: usize,
    pub message: String,
}

/// Where the template functions read from; tests substitute their own.
pub trait Host {
    /// An environment variable (`None` when unset).
    fn getenv(&self, name: &str) -> Option<String>;
    /// A file's text (`None` when it cannot be read).
    fn read_file(&self, path: &str) -> Option<String>;
}

/// The real environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Host for System {
    fn getenv(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read(path)
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Renders `text` with the real environment.
pub fn render(text: &str) -> Result<String, TemplateError> {
    render_with(text, &System)
}

/// Renders `text`, reading the environment and files through `host`.
pub fn render_with(text: &str, host: &dyn Host) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut line = 1;
    let mut trim_next_text = false;
    while let Some(open) = rest.find("{{") {
        let mut before = &rest[..open];
        if trim_next_text {
            before = before.trim_start_matches(is_space);
        }
        let after_open = &rest[open + 2..];
        let trim_left = after_open.starts_with('-') && after_open[1..].starts_with(is_space);
        if trim_left {
            before = before.trim_end_matches(is_space);
        }
        out.push_str(before);
        line += rest[..open].matches('\n').count();
        let body_start = if trim_left { 1 } else { 0 };
        let (body, trim_right, consumed) = split_action(&after_open[body_start..], line)?;
        let action_line = line;
        line += after_open[..body_start + consumed].matches('\n').count();
        rest = &after_open[body_start + consumed..];
        trim_next_text = trim_right;
        let body = body.trim_matches(is_space);
        if body.starts_with("/*") {
            continue; // a comment
        }
        let value = Parser::new(body, action_line)
            .pipeline_to_end()
            .and_then(|pipeline| eval_pipeline(&pipeline, host, action_line))?;
        out.push_str(&value.print());
    }
    if trim_next_text {
        rest = rest.trim_start_matches(is_space);
    }
    out.push_str(rest);
    Ok(out)
}

/// Go's template whitespace for trim markers.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Finds the end of an action starting after `{{` (and any left trim marker): returns its body,
/// whether it ends with ` -}}`, and the bytes consumed including the closing delimiter. Quoted
/// strings and comments may contain `}}`.
fn split_action(s: &str, line: usize) -> Result<(&str, bool, usize), TemplateError> {
    let unclosed = || TemplateError {
        line,
        message: "unclosed action: `{{` without a matching `}}`".into(),
    };
    let trimmed = s.trim_start_matches(is_space);
    let mut i = match trimmed.strip_prefix("/*") {
        Some(comment) => s.len() - comment.len() + comment.find("*/").ok_or_else(unclosed)? + 2,
        None => 0,
    };
    let bytes = s.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'`' | b'\'') => {
                i = skip_quoted(bytes, i, quote).ok_or_else(unclosed)?
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                let body = &s[..i];
                let trim_right = body.ends_with('-') && body[..body.len() - 1].ends_with(is_space);
                let body = if trim_right {
                    &body[..body.len() - 1]
                } else {
                    body
                };
                return Ok((body, trim_right, i + 2));
            }
            _ => i += 1,
        }
    }
    Err(unclosed())
}

/// The index just past a quoted literal opening at `start`.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => return Some(i + 1),
            b'\n' if quote != b'`' => return None,
            _ => i += 1,
        }
    }
    None
}

/// A value in a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Value {
    /// `fmt.Print` of the value.
    fn print(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Bool(_) => "bool",
        }
    }
}

#[derive(Debug, Clone)]
enum Operand {
    Literal(Value),
    Function(String),
    Pipeline(Vec<Command>),
}

type Command = Vec<Operand>;

/// Deepest `(...)` nesting accepted in one action: far beyond real use, and a bound on the
/// parser's recursion.
const MAX_PARENS: usize = 32;

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
    parens: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str, line: usize) -> Self {
        Self {
            s,
            pos: 0,
            line,
            parens: 0,
        }
    }

    fn error(&self, message: impl Into<String>) -> TemplateError {
        TemplateError {
            line: self.line,
            message: message.into(),
        }
    }

    fn skip_spaces(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn pipeline_to_end(mut self) -> Result<Vec<Command>, TemplateError> {
        let pipeline = self.pipeline()?;
        match self.peek() {
            None => Ok(pipeline),
            Some(c) => Err(self.error(format!("unexpected `{c}` in action"))),
        }
    }

    /// Commands separated by `|`, up to the end or a `)`.
    fn pipeline(&mut self) -> Result<Vec<Command>, TemplateError> {
        let mut commands = vec![self.command()?];
        loop {
            self.skip_spaces();
            if self.peek() != Some('|') {
                return Ok(commands);
            }
            self.pos += 1;
            commands.push(self.command()?);
        }
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let mut operands = Vec::new();
        loop {
            self.skip_spaces();
            match self.peek() {
                None | Some('|' | ')') => break,
                Some(_) => operands.push(self.operand()?),
            }
        }
        if operands.is_empty() {
            return Err(self.error("missing value for command"));
        }
        Ok(operands)
    }

    fn operand(&mut self) -> Result<Operand, TemplateError> {
        let rest = &self.s[self.pos..];
        let c = self.peek().unwrap_or(' ');
        match c {
            '"' | '`' => {
                let end = skip_quoted(rest.as_bytes(), 0, c as u8)
                    .ok_or_else(|| self.error("unterminated string"))?;
                let literal = &rest[..end];
                self.pos += end;
                let text = if c == '`' {
                    literal[1..end - 1].to_owned()
                } else {
                    unquote(literal)
                        .ok_or_else(|| self.error(format!("invalid string literal {literal}")))?
                };
                Ok(Operand::Literal(Value::Str(text)))
            }
            '(' => {
                self.pos += 1;
                self.parens += 1;
                if self.parens > MAX_PARENS {
                    return Err(self.error(format!("more than {MAX_PARENS} nested parentheses")));
                }
                let inner = self.pipeline()?;
                self.parens -= 1;
                self.skip_spaces();
                if self.peek() != Some(')') {
                    return Err(self.error("unclosed `(`"));
                }
                self.pos += 1;
                Ok(Operand::Pipeline(inner))
            }
            _ => {
                let word_len = rest
                    .find(|c: char| is_space(c) || matches!(c, '|' | '(' | ')'))
                    .unwrap_or(rest.len());
                let word = &rest[..word_len];
                self.pos += word_len;
                self.word(word)
            }
        }
    }

    fn word(&self, word: &str) -> Result<Operand, TemplateError> {
        let starts_number = word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
        match word {
            "true" => Ok(Operand::Literal(Value::Bool(true))),
            "false" => Ok(Operand::Literal(Value::Bool(false))),
            _ if starts_number => word
                .parse()
                .map(|i| Operand::Literal(Value::Int(i)))
                .map_err(|_| self.error(format!("unsupported number `{word}` (integers only)"))),
            "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
            | "break" | "continue" | "nil" => Err(self.error(format!(
                "`{word}` is not supported by hookwire's -template (only function pipelines are)"
            ))),
            _ if word.starts_with(['.', '$']) => Err(self.error(format!(
                "`{word}` is not supported: hooks templates have no data or variables"
            ))),
            _ if word.chars().all(|c| c.is_alphanumeric() || c == '_') && !word.is_empty() => {
                Ok(Operand::Function(word.to_owned()))
            }
            _ => Err(self.error(format!("unexpected `{word}` in action"))),
        }
    }
}

/// A Go double-quoted string literal's value.
fn unquote(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = match chars.next()? {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            '"' => '"',
            'x' => hex_char(&mut chars, 2)?,
            'u' => hex_char(&mut chars, 4)?,
            'U' => hex_char(&mut chars, 8)?,
            d @ '0'..='7' => {
                let digits: String = std::iter::once(d).chain(chars.by_ref().take(2)).collect();
                char::from(u8::from_str_radix(&digits, 8).ok()?)
            }
            _ => return None,
        };
        out.push(escaped);
    }
    Some(out)
}

fn hex_char(chars: &mut std::str::Chars<'_>, len: usize) -> Option<char> {
    let digits: String = chars.by_ref().take(len).collect();
    if digits.len() != len {
        return None;
    }
    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
}

fn eval_pipeline(
    pipeline: &[Command],
    host: &dyn Host,
    line: usize,
) -> Result<Value, TemplateError> {
    let mut piped: Option<Value> = None;
    for command in pipeline {
        piped = Some(eval_command(command, piped.take(), host, line)?);
    }
    piped.ok_or(TemplateError {
        line,
        message: "missing value for command".into(),
    })
}

/// A command: a function applied to its arguments (plus the piped value, last), or a value.
fn eval_command(
    command: &[Operand],
    piped: Option<Value>,
    host: &dyn Host,
    line: usize,
) -> Result<Value, TemplateError> {
    let error = |message: String| TemplateError { line, message };
    let (first, rest) = command
        .split_first()
        .ok_or_else(|| error("missing value for command".into()))?;
    let Operand::Function(name) = first else {
        if !rest.is_empty() || piped.is_some() {
            return Err(error("can't give an argument to a non-function".into()));
        }
        return eval_operand(first, host, line);
    };
    let mut args = rest
        .iter()
        .map(|operand| eval_operand(operand, host, line))
        .collect::<Result<Vec<_>, _>>()?;
    args.extend(piped);
    call(name, &args, host).map_err(error)
}

fn eval_operand(operand: &Operand, host: &dyn Host, line: usize) -> Result<Value, TemplateError> {
    match operand {
        Operand::Literal(value) => Ok(value.clone()),
        Operand::Pipeline(pipeline) => eval_pipeline(pipeline, host, line),
        Operand::Function(_) => eval_command(std::slice::from_ref(operand), None, host, line),
    }
}

/// Calls a template function.
fn call(name: &str, args: &[Value], host: &dyn Host) -> Result<Value, String> {
    let text = match name {
        "getenv" => host.getenv(one_string(name, args)?).unwrap_or_default(),
        "cat" => cat(host, one_string(name, args)?),
        "credential" => credential(host, one_string(name, args)?),
        "js" => js_escape(&sprint(args)),
        "html" => html_escape(&sprint(args)),
        "urlquery" => query_escape(&sprint(args)),
        "print" => sprint(args),
        "printf" => match args.split_first() {
            Some((Value::Str(format), rest)) => sprintf(format, rest)?,
            _ => return Err("printf needs a format string as its first argument".into()),
        },
        _ => {
            return Err(format!(
                "function `{name}` is not supported by hookwire's -template (it has getenv, cat, credential, js, html, urlquery, print, printf)"
            ));
        }
    };
    Ok(Value::Str(text))
}

/// The single string argument of `getenv`, `cat` and `credential`.
fn one_string<'v>(name: &str, args: &'v [Value]) -> Result<&'v str, String> {
    match args {
        [Value::Str(s)] => Ok(s),
        [other] => Err(format!(
            "wrong type for value in `{name}`: expected string, got {}",
            other.type_name()
        )),
        _ => Err(format!(
            "wrong number of args for `{name}`: want 1 got {}",
            args.len()
        )),
    }
}

/// `cat PATH`: the file minus one trailing newline; empty when unreadable (upstream master).
fn cat(host: &dyn Host, path: &str) -> String {
    let mut text = host.read_file(path).unwrap_or_default();
    if text.ends_with('\n') {
        text.pop();
    }
    text
}

/// `credential NAME`: `cat $CREDENTIALS_DIRECTORY/NAME`, else `getenv NAME` (upstream master).
fn credential(host: &dyn Host, name: &str) -> String {
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
fn sprint(args: &[Value]) -> String {
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
fn sprintf(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("printf: format ends with `%`")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        match (verb, arg) {
            ('s' | 'v', _) | ('d', Value::Int(_)) => out.push_str(&arg.print()),
            ('t', Value::Bool(_)) => out.push_str(&arg.print()),
            ('q', Value::Str(s)) => out.push_str(&go_quote(s)),
            ('x', Value::Str(s)) => out.push_str(&hex::encode(s)),
            ('x', Value::Int(i)) => {
                let _ = write!(
                    out,
                    "{}{:x}",
                    if *i < 0 { "-" } else { "" },
                    i.unsigned_abs()
                );
            }
            ('d' | 'q' | 't' | 'x', _) => {
                let _ = write!(out, "%!{verb}({}={})", arg.type_name(), arg.print());
            }
            _ => {
                return Err(format!(
                    "printf: `%{verb}` is not supported (use %s, %v, %d, %q, %t, %x)"
                ));
            }
        }
    }
    let extra: Vec<String> = args
        .map(|a| format!("{}={}", a.type_name(), a.print()))
        .collect();
    if !extra.is_empty() {
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    Ok(out)
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
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' | '>' | '&' | '=' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
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
fn query_escape(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fake {
        env: HashMap<&'static str, &'static str>,
        files: HashMap<&'static str, &'static str>,
    }

    impl Host for Fake {
        fn getenv(&self, name: &str) -> Option<String> {
            self.env.get(name).map(|v| v.to_string())
        }

        fn read_file(&self, path: &str) -> Option<String> {
            self.files.get(path).map(|v| v.to_string())
        }
    }

    fn fake() -> Fake {
        Fake {
            env: HashMap::from([
                ("SECRET", "s3cr\"et<&>='\\"),
                ("CREDENTIALS_DIRECTORY", "/creds"),
                ("ONLY_ENV", "from-env"),
            ]),
            files: HashMap::from([("/etc/token", "tok\n\n"), ("/creds/db", "pw\n")]),
        }
    }

    fn render(text: &str) -> Result<String, TemplateError> {
        render_with(text, &fake())
    }

    #[test]
    fn renders_like_go_text_template() {
        let table = [
            ("plain text", "plain text"),
            (
                "a {{ getenv \"SECRET\" | js }} b",
                "a s3cr\\\"et\\u003C\\u0026\\u003E\\u003D\\'\\\\ b",
            ),
            ("{{ getenv `UNSET` }}|", "|"),
            ("{{ cat \"/etc/token\" }}|{{ cat \"/missing\" }}", "tok\n|"),
            (
                "{{ credential \"db\" }} {{ credential \"ONLY_ENV\" }}",
                "pw from-env",
            ),
            ("{{ \"a<b\" | html }}", "a&lt;b"),
            ("{{ urlquery \"a b&c/d\" }}", "a+b%26c%2Fd"),
            ("{{ print 1 2 \"x\" 3 true }}", "1 2x3 true"),
            (
                "{{ printf \"%s-%d-%q-%v%%\" \"a\" 7 \"q\\n\" true }}",
                "a-7-\"q\\n\"-true%",
            ),
            (
                "{{ printf \"%d\" \"x\" }}{{ printf \"%s\" }}",
                "%!d(string=x)%!s(MISSING)",
            ),
            (
                "{{ printf \"%s:%s\" (getenv \"ONLY_ENV\") (cat \"/creds/db\") }}",
                "from-env:pw",
            ),
            ("a  \n {{- \"x\" -}} \n  b", "axb"),
            ("a {{- /* gone */ -}} b", "ab"),
            ("{{/* multi\nline */}}x", "x"),
            ("{{ \"}}\" }}", "}}"),
            ("{{ \"\\x41\\u00e9\\101\" }}", "AéA"),
            ("{{ -3 }}", "-3"),
        ];
        for (input, expected) in table {
            assert_eq!(render(input).as_deref(), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn unsupported_actions_name_themselves_and_their_line() {
        let table = [
            ("x\n\n{{ env \"A\" }}", 3, "function `env`"),
            ("{{ if true }}x{{ end }}", 1, "`if`"),
            ("\n{{ .Foo }}", 2, "`.Foo`"),
            ("{{ $x := 1 }}", 1, "`$x`"),
            ("a\n{{ getenv", 2, "unclosed action"),
            ("{{ getenv 1 }}", 1, "expected string"),
            ("{{ getenv \"A\" \"B\" }}", 1, "want 1 got 2"),
            ("{{ }}", 1, "missing value"),
            ("{{ \"a\" \"b\" }}", 1, "non-function"),
            ("{{ printf \"%5s\" \"a\" }}", 1, "not supported"),
            ("{{ 1.5 }}", 1, "integers only"),
        ];
        for (input, line, needle) in table {
            let err = render(input).expect_err(input);
            assert_eq!(err.line, line, "{input:?}: {err:?}");
            assert!(err.message.contains(needle), "{input:?}: {err:?}");
        }
        let deep = format!(
            "{{{{ {}\"x\"{} }}}}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(
            render(&deep)
                .unwrap_err()
                .message
                .contains("nested parentheses")
        );
    }
}
