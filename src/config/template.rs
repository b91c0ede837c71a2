//! `-template`: Go's `text/template` as adnanh's `-template` runs it over the raw file text
//! before it is parsed, with no data: `.` and `$` are nil, so mostly functions matter.
//!
//! Supported, with Go's (1.19, webhook 2.8's build) behaviour: text; actions with `{{-`/`-}}`
//! trimming (control actions too); `{{/* comments */}}`; string literals (Go escapes, or raw in
//! backquotes), integers, character constants, `true`, `false`, `nil`; pipelines with `|` and
//! parentheses; `{{if}}`, `{{else if}}`, `{{else}}`, `{{end}}`; `{{with}}` (`.` is its value
//! inside) with `{{else}}`; variables (`{{$x := …}}`, `{{$x = …}}`, `$x`, `$`), each living
//! until the `{{end}}` of the structure that declares it; `.` (nil outside `with`, printed
//! `<no value>`) and fields such as `.Foo`, nil on nil; `{{range}}`, which over nil runs its
//! `{{else}}` (nothing else here can be ranged over), with `{{break}}` and `{{continue}}` in its
//! body. False, 0, "" and nil are false. Functions: `getenv` (2.8.0), `cat` and `credential`
//! (upstream master), and Go's built-ins `and` and `or` (returning the deciding argument, and
//! short-circuiting), `not`, `eq` (true when the first equals any other), `ne`, `lt`, `le`,
//! `gt`, `ge` (incompatible types are an error), `len`, `js` (its example pipes secrets through
//! it), `html`, `urlquery`, `print`, `printf`, `println`.
//!
//! Not supported: `define`, `template`, `block`, floats and the built-ins `index`, `slice` and
//! `call`: each is an error naming it and its line, and the file does not load, as a template
//! error does in adnanh. As in Go, the whole file is parsed before it runs, so an unknown
//! function or an undeclared variable is an error even in a branch not taken, while a wrong
//! argument count or type is one only when its action runs.

use std::fmt::Write as _;
use std::rc::Rc;

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
    // Go parses the whole template before running any of it.
    let tree = Tree::parse(lex(text)?)?;
    let mut exec = Exec {
        host,
        vars: vec![("$".to_owned(), Value::Nil)],
        out: String::with_capacity(text.len()),
    };
    exec.walk(&tree, &Value::Nil)?;
    Ok(exec.out)
}

/// Deepest `(...)` nesting accepted in one action: far beyond real use, and a bound on the
/// parser's recursion.
const MAX_PARENS: usize = 32;

/// Deepest nesting of `{{if}}`, `{{with}}` and `{{range}}` (an `{{else if}}` chain counts once):
/// far beyond real use, and a bound on the parser's and the evaluator's recursion.
const MAX_NESTING: usize = 64;

/// Largest value or output, in bytes: a few actions doubling a string would otherwise exhaust
/// memory.
const MAX_TEXT: usize = 16 << 20;

/// A piece of the file: text (already trimmed by the markers next to it) or an action's body.
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Text(&'a str),
    Action { body: &'a str, line: usize },
}

/// Splits `text` into text and actions, applying trim markers and dropping comments.
fn lex(text: &str) -> Result<Vec<Item<'_>>, TemplateError> {
    let mut items = Vec::new();
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
        if !before.is_empty() {
            items.push(Item::Text(before));
        }
        line += rest[..open].matches('\n').count();
        let body_start = if trim_left { 1 } else { 0 };
        let (body, trim_right, consumed) = split_action(&after_open[body_start..], line)?;
        let action_line = line;
        line += after_open[..body_start + consumed].matches('\n').count();
        rest = &after_open[body_start + consumed..];
        trim_next_text = trim_right;
        let body = body.trim_matches(is_space);
        if !body.starts_with("/*") {
            items.push(Item::Action {
                body,
                line: action_line,
            });
        }
    }
    if trim_next_text {
        rest = rest.trim_start_matches(is_space);
    }
    if !rest.is_empty() {
        items.push(Item::Text(rest));
    }
    Ok(items)
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

/// Go's identifier characters.
fn is_word_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Where Go's lexer lets an identifier, field or variable end.
fn ends_word(rest: &str) -> bool {
    rest.chars()
        .next()
        .is_none_or(|c| is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '('))
}

/// Whether `s` starts with `.Name` (Go lexes `.5` as a number).
fn starts_field(s: &str) -> bool {
    s.strip_prefix('.')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| is_word_char(c) && !c.is_ascii_digit())
}

/// The leading word of `s` and what follows it, if the word is a control keyword.
fn keyword(s: &str) -> Option<(&str, &str)> {
    let len = s.find(|c: char| !is_word_char(c)).unwrap_or(s.len());
    let (word, rest) = s.split_at(len);
    let is_keyword = matches!(
        word,
        "if" | "else"
            | "end"
            | "with"
            | "range"
            | "define"
            | "template"
            | "block"
            | "break"
            | "continue"
    );
    (is_keyword && ends_word(rest)).then_some((word, rest.trim_start_matches(is_space)))
}

/// A value in a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    /// The data, `nil`, and whatever is taken from them.
    Nil,
    Bool(bool),
    Int(i64),
    /// Shared: variables and `.` hand the same string around.
    Str(Rc<str>),
}

impl Value {
    fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// `fmt.Print` of the value.
    fn print(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.to_string(),
        }
    }

    /// What an action prints: Go shows a missing value as `<no value>`.
    fn output(&self) -> String {
        match self {
            Value::Nil => "<no value>".to_owned(),
            other => other.print(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "string",
        }
    }

    /// Go's truth: false, 0, "" and nil are false.
    fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Str(s) => !s.is_empty(),
        }
    }

    /// Roughly the bytes the value takes when printed (for the size bound).
    fn size(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            _ => 20,
        }
    }
}

/// The template functions hookwire has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
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
}

const FUNCS: &[(&str, Func)] = &[
    ("getenv", Func::Getenv),
    ("cat", Func::Cat),
    ("credential", Func::Credential),
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

impl Func {
    fn name(self) -> &'static str {
        FUNCS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(name, _)| name)
    }

    /// The arguments Go's signature takes: (fixed, variadic).
    fn arity(self) -> (usize, bool) {
        match self {
            Func::Getenv | Func::Cat | Func::Credential | Func::Not | Func::Len => (1, false),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (2, false),
            Func::Printf | Func::Eq | Func::And | Func::Or => (1, true),
            Func::Js | Func::Html | Func::Urlquery | Func::Print | Func::Println => (0, true),
        }
    }
}

#[derive(Debug, Clone)]
enum Operand {
    Literal(Value),
    Nil,
    Dot,
    /// `$` or `$name`.
    Variable(String),
    /// `.A.B` (on `.`), `$x.A`, `(pipeline).A`: the base, then the field names.
    Field(Box<Operand>, Vec<String>),
    Function(Func),
    Pipeline(Box<Pipeline>),
}

type Command = Vec<Operand>;

/// Commands joined by `|`, optionally declaring (`:=`) or assigning (`=`) variables.
#[derive(Debug, Clone)]
struct Pipeline {
    vars: Vec<String>,
    assign: bool,
    commands: Vec<Command>,
}

/// An `{{if}}`, `{{else if}}` or `{{with}}` condition and what it runs.
#[derive(Debug)]
struct Branch<'a> {
    line: usize,
    pipeline: Pipeline,
    body: Vec<Node<'a>>,
}

#[derive(Debug)]
enum Node<'a> {
    Text(&'a str),
    Action {
        line: usize,
        pipeline: Pipeline,
    },
    /// `{{if}}` and its `{{else if}}`s: one scope, as Go's nested ifs share one `{{end}}`.
    If {
        branches: Vec<Branch<'a>>,
        otherwise: Vec<Node<'a>>,
    },
    With {
        branch: Branch<'a>,
        otherwise: Vec<Node<'a>>,
    },
    /// Only nil can be ranged over here and it has no elements, so the body is never kept.
    Range {
        line: usize,
        pipeline: Pipeline,
        otherwise: Vec<Node<'a>>,
    },
}

/// What ended a list of nodes.
enum Stop<'a> {
    Eof,
    End {
        line: usize,
    },
    /// `{{else}}`, or `{{else if …}}` with the condition after `if`.
    Else {
        line: usize,
        cond: Option<&'a str>,
    },
}

/// Builds the node tree from the items, checking variables as Go's parser does.
struct Tree<'a> {
    items: Vec<Item<'a>>,
    next: usize,
    /// Variables in scope, `$` first: Go's parse-time list, so declarations inside a
    /// structure are dropped at its `{{end}}`.
    vars: Vec<String>,
    depth: usize,
    ranges: usize,
}

fn error_at(line: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        message: message.into(),
    }
}

impl<'a> Tree<'a> {
    fn parse(items: Vec<Item<'a>>) -> Result<Vec<Node<'a>>, TemplateError> {
        let mut tree = Tree {
            items,
            next: 0,
            vars: vec!["$".to_owned()],
            depth: 0,
            ranges: 0,
        };
        let (nodes, stop) = tree.list()?;
        match stop {
            Stop::Eof => Ok(nodes),
            Stop::End { line } => Err(error_at(line, "unexpected `{{end}}`: nothing to end")),
            Stop::Else { line, .. } => Err(error_at(
                line,
                "unexpected `{{else}}` outside `{{if}}`, `{{with}}` or `{{range}}`",
            )),
        }
    }

    /// Nodes up to the end of the file, an `{{end}}` or an `{{else}}`.
    fn list(&mut self) -> Result<(Vec<Node<'a>>, Stop<'a>), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(&item) = self.items.get(self.next) {
            self.next += 1;
            let (body, line) = match item {
                Item::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Item::Action { body, line } => (body, line),
            };
            let Some((word, rest)) = keyword(body) else {
                let pipeline = self.pipeline(body, line, "command")?;
                nodes.push(Node::Action { line, pipeline });
                continue;
            };
            let nothing_after = |what: &str| match rest {
                "" => Ok(()),
                _ => Err(error_at(
                    line,
                    format!("unexpected `{rest}` in `{{{{{what}}}}}`"),
                )),
            };
            match word {
                "if" | "with" | "range" => nodes.push(self.control(word, rest, line)?),
                "end" => {
                    nothing_after("end")?;
                    return Ok((nodes, Stop::End { line }));
                }
                "else" => {
                    let cond = match keyword(rest) {
                        Some(("if", cond)) => Some(cond),
                        _ => {
                            nothing_after("else")?;
                            None
                        }
                    };
                    return Ok((nodes, Stop::Else { line, cond }));
                }
                "break" | "continue" => {
                    nothing_after(word)?;
                    if self.ranges == 0 {
                        return Err(error_at(
                            line,
                            format!("`{{{{{word}}}}}` outside `{{{{range}}}}`"),
                        ));
                    }
                }
                _ => {
                    return Err(error_at(
                        line,
                        format!("`{{{{{word}}}}}` is not supported by hookwire's -template"),
                    ));
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// `{{if}}`, `{{with}}` or `{{range}}` up to its `{{end}}`; the variables it declares go
    /// out of scope there.
    fn control(
        &mut self,
        word: &str,
        cond: &'a str,
        line: usize,
    ) -> Result<Node<'a>, TemplateError> {
        if self.depth >= MAX_NESTING {
            return Err(error_at(
                line,
                format!(
                    "more than {MAX_NESTING} nested `{{{{if}}}}`, `{{{{with}}}}` or `{{{{range}}}}`"
                ),
            ));
        }
        self.depth += 1;
        let scope = self.vars.len();
        let node = match word {
            "if" => self.if_chain(cond, line),
            "with" => self.with(cond, line),
            _ => self.range(cond, line),
        };
        self.vars.truncate(scope);
        self.depth -= 1;
        node
    }

    fn if_chain(&mut self, cond: &'a str, line: usize) -> Result<Node<'a>, TemplateError> {
        let mut branches = Vec::new();
        let (mut cond, mut cond_line) = (cond, line);
        loop {
            let pipeline = self.pipeline(cond, cond_line, "if")?;
            let (body, stop) = self.list()?;
            branches.push(Branch {
                line: cond_line,
                pipeline,
                body,
            });
            match stop {
                Stop::End { .. } => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    });
                }
                Stop::Else {
                    line: else_line,
                    cond: Some(next),
                } => (cond, cond_line) = (next, else_line),
                Stop::Else { cond: None, .. } => {
                    let otherwise = self.else_list("if", line)?;
                    return Ok(Node::If {
                        branches,
                        otherwise,
                    });
                }
                Stop::Eof => return Err(unclosed("if", line)),
            }
        }
    }

    fn with(&mut self, cond: &'a str, line: usize) -> Result<Node<'a>, TemplateError> {
        let pipeline = self.pipeline(cond, line, "with")?;
        let (body, stop) = self.list()?;
        let branch = Branch {
            line,
            pipeline,
            body,
        };
        let otherwise = self.after_body(stop, "with", line)?;
        Ok(Node::With { branch, otherwise })
    }

    fn range(&mut self, cond: &'a str, line: usize) -> Result<Node<'a>, TemplateError> {
        let pipeline = self.pipeline(cond, line, "range")?;
        self.ranges += 1;
        let body = self.list();
        self.ranges -= 1;
        let (_, stop) = body?;
        let otherwise = self.after_body(stop, "range", line)?;
        Ok(Node::Range {
            line,
            pipeline,
            otherwise,
        })
    }

    /// After the body of a `{{with}}` or `{{range}}`: its `{{else}}` list, if any.
    fn after_body(
        &mut self,
        stop: Stop<'a>,
        what: &str,
        line: usize,
    ) -> Result<Vec<Node<'a>>, TemplateError> {
        match stop {
            Stop::End { .. } => Ok(Vec::new()),
            Stop::Else { cond: None, .. } => self.else_list(what, line),
            Stop::Else {
                line: else_line,
                cond: Some(_),
            } => Err(error_at(
                else_line,
                format!(
                    "`{{{{else if}}}}` can only continue an `{{{{if}}}}`, not a `{{{{{what}}}}}`"
                ),
            )),
            Stop::Eof => Err(unclosed(what, line)),
        }
    }

    /// The list after an `{{else}}`, which only an `{{end}}` may close.
    fn else_list(&mut self, what: &str, line: usize) -> Result<Vec<Node<'a>>, TemplateError> {
        let (otherwise, stop) = self.list()?;
        match stop {
            Stop::End { .. } => Ok(otherwise),
            Stop::Else {
                line: else_line, ..
            } => Err(error_at(
                else_line,
                format!(
                    "expected `{{{{end}}}}` after the `{{{{else}}}}` of the `{{{{{what}}}}}` on line {line}, found another `{{{{else}}}}`"
                ),
            )),
            Stop::Eof => Err(unclosed(what, line)),
        }
    }

    /// Parses a whole action body as a pipeline.
    fn pipeline(
        &mut self,
        body: &str,
        line: usize,
        context: &'static str,
    ) -> Result<Pipeline, TemplateError> {
        let mut parser = Parser {
            s: body,
            pos: 0,
            line,
            parens: 0,
            vars: &mut self.vars,
        };
        let pipeline = parser.pipeline(context)?;
        match parser.peek() {
            None => Ok(pipeline),
            Some(c) => Err(parser.error(format!("unexpected `{c}` in {context}"))),
        }
    }
}

fn unclosed(what: &str, line: usize) -> TemplateError {
    error_at(
        line,
        format!("unclosed `{{{{{what}}}}}`: no matching `{{{{end}}}}` before the end of the file"),
    )
}

/// Parses the pipeline in one action body.
struct Parser<'a, 'v> {
    s: &'a str,
    pos: usize,
    line: usize,
    parens: usize,
    vars: &'v mut Vec<String>,
}

impl<'a> Parser<'a, '_> {
    fn error(&self, message: impl Into<String>) -> TemplateError {
        error_at(self.line, message)
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Consumes the word characters at the cursor.
    fn word(&mut self) -> String {
        let rest = self.rest();
        let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_owned()
    }

    /// `$name` at the cursor (consumed), if there is one.
    fn variable(&mut self) -> Result<Option<String>, TemplateError> {
        if self.peek() != Some('$') {
            return Ok(None);
        }
        self.pos += 1;
        let name = format!("${}", self.word());
        if !ends_word(self.rest()) {
            return Err(self.error(format!("bad character after `{name}`")));
        }
        Ok(Some(name))
    }

    /// `:=` (false) or `=` (true) at the cursor, consumed.
    fn declaration(&mut self) -> Option<bool> {
        let rest = self.rest();
        let assign = if rest.starts_with(":=") {
            false
        } else if rest.starts_with('=') {
            true
        } else {
            return None;
        };
        self.pos += if assign { 1 } else { 2 };
        Some(assign)
    }

    /// An optional declaration, then commands separated by `|`, up to the end or a `)`.
    fn pipeline(&mut self, context: &str) -> Result<Pipeline, TemplateError> {
        self.skip_spaces();
        let start = self.pos;
        let mut vars = Vec::new();
        let mut assign = false;
        if let Some(name) = self.variable()? {
            self.skip_spaces();
            if self.peek() == Some(',') {
                if context != "range" {
                    return Err(self.error(format!("too many declarations in {context}")));
                }
                self.pos += 1;
                self.skip_spaces();
                let second = self.variable()?;
                self.skip_spaces();
                match (second, self.declaration()) {
                    (Some(second), Some(is_assign)) => {
                        vars = vec![name, second];
                        assign = is_assign;
                    }
                    _ => return Err(self.error("range can only initialize variables")),
                }
            } else if let Some(is_assign) = self.declaration() {
                vars.push(name);
                assign = is_assign;
            } else {
                // Not a declaration: `$x` is the first operand.
                self.pos = start;
            }
        }
        // As in Go, a name is in scope from its declaration on (and assigning one that is not
        // declared is an error only when it runs).
        self.vars.extend(vars.iter().cloned());
        self.skip_spaces();
        if matches!(self.peek(), None | Some(')')) {
            return Err(self.error(format!("missing value for {context}")));
        }
        let mut commands: Vec<Command> = Vec::new();
        loop {
            let command = self.command()?;
            if !commands.is_empty()
                && matches!(
                    command.first(),
                    Some(Operand::Literal(_) | Operand::Nil | Operand::Dot)
                )
            {
                return Err(self.error(format!(
                    "non executable command in pipeline stage {}",
                    commands.len() + 1
                )));
            }
            commands.push(command);
            if self.peek() != Some('|') {
                return Ok(Pipeline {
                    vars,
                    assign,
                    commands,
                });
            }
            self.pos += 1;
        }
    }

    /// Operands separated by spaces, up to a `|`, a `)` or the end.
    fn command(&mut self) -> Result<Command, TemplateError> {
        let mut operands = Vec::new();
        loop {
            self.skip_spaces();
            if matches!(self.peek(), None | Some('|' | ')')) {
                break;
            }
            operands.push(self.operand()?);
            match self.peek() {
                None | Some('|' | ')') => break,
                Some(c) if is_space(c) => {}
                Some(c) => return Err(self.error(format!("unexpected `{c}` after an operand"))),
            }
        }
        if operands.is_empty() {
            return Err(self.error("missing value for command"));
        }
        Ok(operands)
    }

    /// A term and any `.Field`s chained onto it.
    fn operand(&mut self) -> Result<Operand, TemplateError> {
        let term = self.term()?;
        let mut fields = Vec::new();
        while starts_field(self.rest()) {
            self.pos += 1;
            fields.push(self.word());
        }
        if fields.is_empty() {
            return Ok(term);
        }
        if !ends_word(self.rest()) {
            return Err(self.error("bad character after a field name"));
        }
        match term {
            Operand::Literal(_) | Operand::Nil | Operand::Dot => {
                Err(self.error("unexpected `.` after a constant"))
            }
            Operand::Field(base, mut first) => {
                first.extend(fields);
                Ok(Operand::Field(base, first))
            }
            term => Ok(Operand::Field(Box::new(term), fields)),
        }
    }

    fn term(&mut self) -> Result<Operand, TemplateError> {
        let rest = self.rest();
        let c = self.peek().unwrap_or(' ');
        match c {
            '"' | '`' => {
                let end = skip_quoted(rest.as_bytes(), 0, c as u8)
                    .ok_or_else(|| self.error("unterminated string"))?;
                let literal = &rest[..end];
                let text = if c == '`' {
                    literal[1..end - 1].to_owned()
                } else {
                    unquote(literal)
                        .ok_or_else(|| self.error(format!("invalid string literal {literal}")))?
                };
                self.pos += end;
                Ok(Operand::Literal(Value::str(text)))
            }
            '\'' => {
                let end = skip_quoted(rest.as_bytes(), 0, b'\'')
                    .ok_or_else(|| self.error("unterminated character constant"))?;
                let literal = &rest[..end];
                let c = unquote_char(literal)
                    .ok_or_else(|| self.error(format!("invalid character constant {literal}")))?;
                self.pos += end;
                Ok(Operand::Literal(Value::Int(i64::from(u32::from(c)))))
            }
            '(' => {
                self.pos += 1;
                self.parens += 1;
                if self.parens > MAX_PARENS {
                    return Err(self.error(format!("more than {MAX_PARENS} nested parentheses")));
                }
                let inner = self.pipeline("parenthesized pipeline")?;
                self.parens -= 1;
                self.skip_spaces();
                if self.peek() != Some(')') {
                    return Err(self.error("unclosed `(`"));
                }
                self.pos += 1;
                Ok(Operand::Pipeline(Box::new(inner)))
            }
            '.' if starts_field(rest) => {
                // `.Field`: the chain is gathered by `operand`.
                Ok(Operand::Field(Box::new(Operand::Dot), Vec::new()))
            }
            '.' if ends_word(&rest[1..]) => {
                self.pos += 1;
                Ok(Operand::Dot)
            }
            '$' => {
                let name = self.variable()?.unwrap_or_default();
                if !self.vars.contains(&name) {
                    return Err(self.error(format!("undefined variable `{name}`")));
                }
                Ok(Operand::Variable(name))
            }
            '0'..='9' | '+' | '-' | '.' => {
                let len = rest
                    .find(|c: char| is_space(c) || matches!(c, '|' | '(' | ')'))
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                self.pos += len;
                parse_int(word)
                    .map(|i| Operand::Literal(Value::Int(i)))
                    .ok_or_else(|| {
                        self.error(format!("unsupported number `{word}` (integers only)"))
                    })
            }
            c if is_word_char(c) => {
                let word = self.word();
                if !ends_word(self.rest()) {
                    let c = self.peek().unwrap_or(' ');
                    return Err(self.error(format!("unexpected `{c}` after `{word}`")));
                }
                self.identifier(&word)
            }
            _ => Err(self.error(format!("unexpected `{c}` in action"))),
        }
    }

    fn identifier(&self, word: &str) -> Result<Operand, TemplateError> {
        if let Some((_, func)) = FUNCS.iter().find(|(name, _)| *name == word) {
            return Ok(Operand::Function(*func));
        }
        match word {
            "true" => Ok(Operand::Literal(Value::Bool(true))),
            "false" => Ok(Operand::Literal(Value::Bool(false))),
            "nil" => Ok(Operand::Nil),
            "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
            | "break" | "continue" => Err(self.error(format!(
                "unexpected `{word}` in a command (a control word must start its action)"
            ))),
            _ => {
                let names: Vec<&str> = FUNCS.iter().map(|(name, _)| *name).collect();
                Err(self.error(format!(
                    "function `{word}` is not supported by hookwire's -template (it has {})",
                    names.join(", ")
                )))
            }
        }
    }
}

/// A Go integer literal: decimal, `0x`, `0o` or leading-`0` octal, `0b`, with `_` separators.
fn parse_int(word: &str) -> Option<i64> {
    let (negative, unsigned) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    let digits = unsigned.replace('_', "");
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(octal) = lower.strip_prefix("0o") {
        (8, octal)
    } else if let Some(binary) = lower.strip_prefix("0b") {
        (2, binary)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(body, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
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

/// A Go character constant's value (`'a'`, `'\n'`, `'\''`): Go's templates take it as an int.
fn unquote_char(literal: &str) -> Option<char> {
    let inner = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    let text = match inner {
        "\\'" | "\"" => inner[inner.len() - 1..].to_owned(),
        _ if inner.contains('"') => return None,
        _ => unquote(&format!("\"{inner}\""))?,
    };
    let mut chars = text.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

fn hex_char(chars: &mut std::str::Chars<'_>, len: usize) -> Option<char> {
    let digits: String = chars.by_ref().take(len).collect();
    if digits.len() != len {
        return None;
    }
    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
}

/// Runs the tree: the output so far and the variables in scope (Go's stack, searched from the
/// top; each structure drops what it pushed at its `{{end}}`).
struct Exec<'h> {
    host: &'h dyn Host,
    vars: Vec<(String, Value)>,
    out: String,
}

impl Exec<'_> {
    fn walk(&mut self, nodes: &[Node<'_>], dot: &Value) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                // Text adds at most the file's own size: each node runs at most once.
                Node::Text(text) => self.out.push_str(text),
                Node::Action { line, pipeline } => {
                    let value = self.pipeline(pipeline, dot, *line)?;
                    if pipeline.vars.is_empty() {
                        let text = value.output();
                        if self.out.len() + text.len() > MAX_TEXT {
                            return Err(error_at(*line, too_large()));
                        }
                        self.out.push_str(&text);
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let scope = self.vars.len();
                    let mut taken = false;
                    for branch in branches {
                        if self.pipeline(&branch.pipeline, dot, branch.line)?.truthy() {
                            self.walk(&branch.body, dot)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(scope);
                }
                Node::With { branch, otherwise } => {
                    let scope = self.vars.len();
                    let value = self.pipeline(&branch.pipeline, dot, branch.line)?;
                    if value.truthy() {
                        self.walk(&branch.body, &value)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(scope);
                }
                Node::Range {
                    line,
                    pipeline,
                    otherwise,
                } => {
                    let scope = self.vars.len();
                    let value = self.pipeline(pipeline, dot, *line)?;
                    if value != Value::Nil {
                        return Err(error_at(
                            *line,
                            format!("range can't iterate over {}", value.print()),
                        ));
                    }
                    self.walk(otherwise, dot)?;
                    self.vars.truncate(scope);
                }
            }
        }
        Ok(())
    }

    fn pipeline(
        &mut self,
        pipeline: &Pipeline,
        dot: &Value,
        line: usize,
    ) -> Result<Value, TemplateError> {
        let mut piped = None;
        for command in &pipeline.commands {
            piped = Some(self.command(command, dot, piped.take(), line)?);
        }
        let value = piped.unwrap_or(Value::Nil);
        for name in &pipeline.vars {
            if !pipeline.assign {
                self.vars.push((name.clone(), value.clone()));
                continue;
            }
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some((_, slot)) => *slot = value.clone(),
                None => return Err(error_at(line, format!("undefined variable: {name}"))),
            }
        }
        Ok(value)
    }

    /// A command: a function applied to its arguments (plus the piped value, last), a field
    /// (which takes arguments as a method would), or a value.
    fn command(
        &mut self,
        command: &[Operand],
        dot: &Value,
        piped: Option<Value>,
        line: usize,
    ) -> Result<Value, TemplateError> {
        let Some((first, args)) = command.split_first() else {
            return Err(error_at(line, "missing value for command"));
        };
        match first {
            Operand::Function(func) => self.call(*func, args, piped, dot, line),
            // Go looks fields up on nil as nil, arguments unused; nothing else has fields.
            Operand::Field(..) => self.operand(first, dot, line),
            Operand::Nil => Err(error_at(line, "nil is not a command")),
            _ if !args.is_empty() || piped.is_some() => Err(error_at(
                line,
                "can't give argument to non-function (only functions take arguments)",
            )),
            _ => self.operand(first, dot, line),
        }
    }

    /// An operand's value (a function named alone is called without arguments).
    fn operand(
        &mut self,
        operand: &Operand,
        dot: &Value,
        line: usize,
    ) -> Result<Value, TemplateError> {
        match operand {
            Operand::Literal(value) => Ok(value.clone()),
            Operand::Nil => Ok(Value::Nil),
            Operand::Dot => Ok(dot.clone()),
            Operand::Variable(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
                .ok_or_else(|| error_at(line, format!("undefined variable: {name}"))),
            Operand::Field(base, fields) => {
                let receiver = self.operand(base, dot, line)?;
                match (receiver, fields.first()) {
                    (Value::Nil, _) | (_, None) => Ok(Value::Nil),
                    (receiver, Some(field)) => Err(error_at(
                        line,
                        format!(
                            "can't evaluate field {field} in type {}",
                            receiver.type_name()
                        ),
                    )),
                }
            }
            Operand::Function(func) => self.call(*func, &[], None, dot, line),
            Operand::Pipeline(pipeline) => self.pipeline(pipeline, dot, line),
        }
    }

    fn call(
        &mut self,
        func: Func,
        args: &[Operand],
        piped: Option<Value>,
        dot: &Value,
        line: usize,
    ) -> Result<Value, TemplateError> {
        let error = |message: String| error_at(line, message);
        let count = args.len() + usize::from(piped.is_some());
        let name = func.name();
        match func.arity() {
            (want, false) if count != want => {
                return Err(error(format!(
                    "wrong number of args for {name}: want {want} got {count}"
                )));
            }
            (want, true) if count < want => {
                return Err(error(format!(
                    "wrong number of args for {name}: want at least {want} got {count}"
                )));
            }
            _ => {}
        }
        if matches!(func, Func::And | Func::Or) {
            // Go 1.18+: arguments run only until one decides, which is the result.
            let mut last = Value::Nil;
            for arg in args {
                last = self.operand(arg, dot, line)?;
                if last.truthy() == (func == Func::Or) {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut values = Vec::with_capacity(count);
        for arg in args {
            values.push(self.operand(arg, dot, line)?);
        }
        values.extend(piped);
        if values.iter().map(Value::size).sum::<usize>() > MAX_TEXT {
            return Err(error(too_large()));
        }
        let value = apply(func, &values, self.host).map_err(error)?;
        if value.size() > MAX_TEXT {
            return Err(error(too_large()));
        }
        Ok(value)
    }
}

fn too_large() -> String {
    format!("the rendered template would exceed {} MiB", MAX_TEXT >> 20)
}

/// Applies a function (other than `and` and `or`) to its evaluated arguments, whose number
/// [`Exec::call`] has checked.
fn apply(func: Func, args: &[Value], host: &dyn Host) -> Result<Value, String> {
    let name = func.name();
    let first = args.first().unwrap_or(&Value::Nil);
    let second = args.get(1).unwrap_or(&Value::Nil);
    let rest = args.get(1..).unwrap_or_default();
    Ok(match func {
        Func::Getenv => Value::str(host.getenv(string_arg(first)?).unwrap_or_default()),
        Func::Cat => Value::str(cat(host, string_arg(first)?)),
        Func::Credential => Value::str(credential(host, string_arg(first)?)),
        Func::Js => Value::str(js_escape(&escaper_text(args))),
        Func::Html => Value::str(html_escape(&escaper_text(args))),
        Func::Urlquery => Value::str(query_escape(&escaper_text(args))),
        Func::Print => Value::str(sprint(args)),
        Func::Println => {
            let words: Vec<String> = args.iter().map(Value::print).collect();
            Value::str(words.join(" ") + "\n")
        }
        Func::Printf => Value::str(sprintf(string_arg(first)?, rest)?),
        Func::And | Func::Or => return Err(format!("internal error: {name} is lazy")),
        Func::Not => Value::Bool(!first.truthy()),
        Func::Len => match first {
            Value::Str(s) => Value::Int(i64::try_from(s.len()).unwrap_or(i64::MAX)),
            Value::Nil => return Err("error calling len: len of nil".into()),
            other => {
                return Err(format!(
                    "error calling len: len of type {}",
                    other.type_name()
                ));
            }
        },
        Func::Eq => Value::Bool(eq(first, rest).map_err(|e| calling(name, e))?),
        Func::Ne => Value::Bool(!eq(first, rest).map_err(|e| calling(name, e))?),
        Func::Lt => Value::Bool(lt(first, second).map_err(|e| calling(name, e))?),
        Func::Le => Value::Bool(le(first, second).map_err(|e| calling(name, e))?),
        Func::Gt => Value::Bool(!le(first, second).map_err(|e| calling(name, e))?),
        Func::Ge => Value::Bool(!lt(first, second).map_err(|e| calling(name, e))?),
    })
}

fn calling(name: &str, error: &str) -> String {
    format!("error calling {name}: {error}")
}

/// An argument Go's signature types as `string`.
fn string_arg(value: &Value) -> Result<&str, String> {
    match value {
        Value::Str(s) => Ok(s),
        Value::Nil => Err("invalid value; expected string".into()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// What Go's `js`, `html` and `urlquery` escape: a lone string as is, else the arguments
/// printed, nil as `<no value>`.
fn escaper_text(args: &[Value]) -> String {
    match args {
        [Value::Str(s)] => s.to_string(),
        _ => {
            let printable: Vec<Value> = args
                .iter()
                .map(|arg| match arg {
                    Value::Nil => Value::str("<no value>"),
                    other => other.clone(),
                })
                .collect();
            sprint(&printable)
        }
    }
}

/// Go's `eq`: whether `a` equals any of `others`. Nil equals only nil and may be compared with
/// anything; other values of different types may not.
fn eq(a: &Value, others: &[Value]) -> Result<bool, &'static str> {
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
fn lt(a: &Value, b: &Value) -> Result<bool, &'static str> {
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

fn le(a: &Value, b: &Value) -> Result<bool, &'static str> {
    Ok(lt(a, b)? || eq(a, std::slice::from_ref(b))?)
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
            _ => {
                return Err(format!(
                    "printf: `%{verb}` is not supported (use %s, %v, %d, %q, %t, %x)"
                ));
            }
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
            (
                "{{ print 0x1F 0o17 017 0b101 1_000 -0x10 +5 'a' '\\n' }}",
                "31 15 15 5 1000 -16 5 97 10",
            ),
            ("{{ println 1 \"a\" 2 }}", "1 a 2\n"),
            (
                "{{ html \"<a>\" 1 }}{{ js 1 2 }}{{ urlquery }}",
                "&lt;a&gt;11 2",
            ),
            (
                "{{ printf \"%s|%s|%q|%v %v\" 5 true 65 1 }}{{ printf \"x\" nil 1 }}",
                "%!s(int=5)|%!s(bool=true)|'A'|1 %!v(MISSING)x%!(EXTRA <nil>, int=1)",
            ),
        ];
        for (input, expected) in table {
            assert_eq!(render(input).as_deref(), Ok(expected), "{input:?}");
        }
    }

    /// Renders each input and compares with what webhook 2.8.0 (Go 1.19) renders.
    fn assert_renders(table: &[(&str, &str)]) {
        for (input, expected) in table {
            assert_eq!(render(input).as_deref(), Ok(*expected), "{input:?}");
        }
    }

    /// Each input fails on its line with a message containing the needle.
    fn assert_fails(table: &[(&str, usize, &str)]) {
        for (input, line, needle) in table {
            let err = render(input).expect_err(input);
            assert_eq!(err.line, *line, "{input:?}: {err:?}");
            assert!(err.message.contains(needle), "{input:?}: {err:?}");
        }
    }

    #[test]
    fn if_else_if_and_else_choose_one_branch() {
        assert_renders(&[
            ("{{ if true }}yes{{ end }}|", "yes|"),
            ("{{ if false }}yes{{ end }}|", "|"),
            ("{{ if false }}a{{ else }}b{{ end }}", "b"),
            (
                "{{ if eq (getenv \"ONLY_ENV\") \"x\" }}x{{ else if eq (getenv \"ONLY_ENV\") \"from-env\" }}env{{ else }}none{{ end }}",
                "env",
            ),
            (
                "{{ if 0 }}1{{ else if \"\" }}2{{ else if 3 }}3{{ else }}4{{ end }}",
                "3",
            ),
            ("{{ if 0 }}1{{ else if \"\" }}2{{ end }}|", "|"),
            ("{{if(eq 1 1)}}no space{{end}}", "no space"),
            ("{{ if\n  true }}multi-line{{ end }}", "multi-line"),
            (
                "{{ if 1 }}{{ if 0 }}a{{ else }}{{ with \"w\" }}{{ . }}{{ end }}{{ end }}{{ end }}",
                "w",
            ),
        ]);
    }

    #[test]
    fn with_sets_dot_and_has_an_else() {
        assert_renders(&[
            (
                "{{ with getenv \"ONLY_ENV\" }}[{{ . }}]{{ end }}",
                "[from-env]",
            ),
            (
                "{{ with getenv \"UNSET\" }}[{{ . }}]{{ else }}unset{{ end }}",
                "unset",
            ),
            // Inside the else, `.` is the outer one: nil at the top.
            ("{{ with 0 }}{{ else }}{{ . }}{{ end }}", "<no value>"),
            (
                "{{ with 1 }}{{ with \"s\" }}{{ . }}{{ end }}{{ . }}{{ end }}",
                "s1",
            ),
            // `$` stays the data.
            ("{{ with \"v\" }}{{ $ }}{{ end }}", "<no value>"),
        ]);
    }

    #[test]
    fn truth_is_gos() {
        let table = [
            ("false", false),
            ("0", false),
            ("\"\"", false),
            ("(and nil)", false),
            (".", false),
            ("$", false),
            ("(getenv \"UNSET\")", false),
            ("true", true),
            ("1", true),
            ("-1", true),
            ("\"0\"", true),
            ("\"false\"", true),
            ("(getenv \"ONLY_ENV\")", true),
        ];
        for (value, truth) in table {
            let input = format!("{{{{ if {value} }}}}T{{{{ else }}}}F{{{{ end }}}}");
            let expected = if truth { "T" } else { "F" };
            assert_eq!(render(&input).as_deref(), Ok(expected), "{input:?}");
            let input = format!("{{{{ not {value} }}}}");
            assert_eq!(render(&input), Ok((!truth).to_string()), "{input:?}");
        }
    }

    #[test]
    fn and_or_return_the_deciding_argument_and_stop_there() {
        assert_renders(&[
            ("{{ and 1 \"x\" 3 }}", "3"),
            ("{{ and 1 \"\" 3 }}", ""),
            ("{{ and 1 0 }}", "0"),
            ("{{ or 0 \"\" \"z\" false }}", "z"),
            ("{{ or 0 false }}", "false"),
            ("{{ or \"\" 0 }}", "0"),
            ("{{ and 1 . }}", "<no value>"),
            ("{{ print (or 0 .) }}", "<nil>"),
            ("{{ or (getenv \"UNSET\") \"default\" }}", "default"),
            // The piped value is the last argument.
            (
                "{{ 0 | and 1 }}|{{ 1 | and 0 }}|{{ \"p\" | or 0 }}",
                "0|0|p",
            ),
            // Go 1.18+ short-circuits: the failing comparison never runs.
            ("{{ or 1 (eq 1 \"x\") }} {{ and 0 (len 3) }}", "1 0"),
        ]);
        assert_fails(&[
            ("{{ and 1 (eq 1 \"x\") }}", 1, "incompatible types"),
            ("{{ and }}", 1, "want at least 1 got 0"),
            ("{{ or }}", 1, "want at least 1 got 0"),
            ("{{ not }}", 1, "want 1 got 0"),
            ("{{ not 1 2 }}", 1, "want 1 got 2"),
        ]);
    }

    #[test]
    fn comparisons_follow_go() {
        assert_renders(&[
            (
                "{{ eq \"a\" \"a\" }} {{ eq 1 2 }} {{ eq true true }}",
                "true false true",
            ),
            // eq against several: true when the first equals any.
            (
                "{{ eq \"a\" \"b\" \"c\" \"a\" }} {{ eq 1 2 3 }}",
                "true false",
            ),
            // It stops at the first match, before a later argument of another type.
            ("{{ eq 1 1 \"x\" }}", "true"),
            // Nil equals only nil and may be compared with anything.
            (
                "{{ eq . nil }} {{ eq . \"a\" }} {{ eq \"a\" . }} {{ ne . 1 }}",
                "true false false true",
            ),
            ("{{ ne 1 2 }} {{ ne \"a\" \"a\" }}", "true false"),
            (
                "{{ lt 1 2 }} {{ lt \"b\" \"a\" }} {{ lt -1 0 }}",
                "true false true",
            ),
            (
                "{{ le 2 2 }} {{ le \"b\" \"a\" }} {{ gt 3 2 }} {{ gt 2 2 }}",
                "true false true false",
            ),
            ("{{ ge 1 2 }} {{ ge \"b\" \"b\" }}", "false true"),
            (
                "{{ len \"héllo\" }} {{ len \"\" }} {{ getenv \"ONLY_ENV\" | len }}",
                "6 0 8",
            ),
            ("{{ eq (len \"ab\") 2 }}", "true"),
        ]);
        assert_fails(&[
            (
                "{{ eq 1 \"x\" 1 }}",
                1,
                "error calling eq: incompatible types for comparison",
            ),
            ("{{ eq true 1 }}", 1, "incompatible types"),
            ("{{ ne \"1\" 1 }}", 1, "incompatible types"),
            ("{{ lt 1 \"a\" }}", 1, "incompatible types"),
            ("{{ lt true false }}", 1, "invalid type for comparison"),
            ("{{ ge . 1 }}", 1, "invalid type for comparison"),
            ("{{ gt 1 nil }}", 1, "invalid type for comparison"),
            ("{{ eq 1 }}", 1, "missing argument for comparison"),
            ("{{ eq }}", 1, "want at least 1 got 0"),
            (
                "{{ ne 1 2 3 }}",
                1,
                "wrong number of args for ne: want 2 got 3",
            ),
            ("{{ lt 1 }}", 1, "want 2 got 1"),
            ("{{ len 3 }}", 1, "len of type int"),
            ("{{ len . }}", 1, "len of nil"),
        ]);
    }

    #[test]
    fn variables_are_scoped_like_go() {
        assert_renders(&[
            (
                "{{ $x := 1 }}{{ $x }}{{ $x = \"s\" }}{{ $x }}{{ $x := true }}{{ $x }}",
                "1strue",
            ),
            ("{{$x:=getenv \"ONLY_ENV\"}}{{$x}}", "from-env"),
            // Assigning inside a structure changes the outer variable ...
            (
                "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
                "2",
            ),
            // ... declaring shadows it until the structure's end.
            (
                "{{ $x := \"out\" }}{{ with \"in\" }}{{ $x := . }}{{ $x }}{{ end }}{{ $x }}",
                "inout",
            ),
            // A condition's variables live through the else branches.
            (
                "{{ if $x := getenv \"ONLY_ENV\" }}[{{ $x }}]{{ end }}",
                "[from-env]",
            ),
            (
                "{{ if $a := 0 }}{{ else if $b := 1 }}{{ $a }}{{ $b }}{{ end }}",
                "01",
            ),
            ("{{ if $a := \"\" }}{{ else }}{{ print $a }}{{ end }}", ""),
            ("{{ with $x := \"v\" }}{{ $x }}{{ . }}{{ end }}", "vv"),
            // In parentheses too, and in scope for the rest of the action.
            ("{{ print ($x := 1) $x }}", "1 1"),
            ("{{ $ = 1 }}{{ $ }}", "1"),
            ("{{ $x := . }}{{ $x }}", "<no value>"),
            // Never run, so never an error (Go too).
            ("{{ if false }}{{ $z = 1 }}{{ $z }}{{ end }}ok", "ok"),
        ]);
        assert_fails(&[
            // A variable declared inside a structure is gone after its end: a parse error.
            (
                "{{ if true }}{{ $y := 3 }}{{ end }}\n{{ $y }}",
                2,
                "undefined variable `$y`",
            ),
            ("{{ $x }}", 1, "undefined variable `$x`"),
            (
                "\n{{ if false }}{{ else }}{{ $x.Foo }}{{ end }}",
                2,
                "undefined variable `$x`",
            ),
            ("{{ \"x\" | $x := print }}", 1, "undefined variable"),
            // Declared in a branch not taken, used in the else: an error when it runs.
            (
                "{{ if false }}{{ $y := 1 }}{{ else }}\n{{ $y }}{{ end }}",
                2,
                "undefined variable: $y",
            ),
            ("{{ $z = 1 }}", 1, "undefined variable: $z"),
            ("{{ $x := $x }}", 1, "undefined variable: $x"),
            ("{{ $a, $b := 1 }}", 1, "too many declarations"),
            ("{{ $x := 1 }}{{ $x 2 }}", 1, "non-function"),
            ("{{ $x := }}", 1, "missing value"),
        ]);
    }

    #[test]
    fn dot_and_fields_of_nil_are_nil() {
        assert_renders(&[
            (
                "{{ . }}|{{ $ }}|{{ print . }}",
                "<no value>|<no value>|<nil>",
            ),
            (
                "{{ .Foo }}|{{ .Foo.Bar }}|{{ $.Foo }}|{{ print .Foo }}",
                "<no value>|<no value>|<no value>|<nil>",
            ),
            // A field of nil takes arguments as a method would, unused.
            (
                "{{ .Foo 1 }}|{{ \"x\" | .Foo }}|{{ (.).Foo }}",
                "<no value>|<no value>|<no value>",
            ),
            ("{{ $x := . }}{{ $x.Foo }}", "<no value>"),
            (
                "{{ html . }}|{{ js nil }}|{{ urlquery . }}",
                "&lt;no value&gt;|\\u003Cno value\\u003E|%3Cno+value%3E",
            ),
            (
                "{{ print nil 1 }}|{{ printf \"%v|%s|%d\" . nil . }}",
                "<nil> 1|<nil>|%!s(<nil>)|%!d(<nil>)",
            ),
        ]);
        assert_fails(&[
            (
                "{{ with \"x\" }}{{ .Foo }}{{ end }}",
                1,
                "can't evaluate field Foo in type string",
            ),
            (
                "{{ $x := 1 }}{{ $x.Foo }}",
                1,
                "can't evaluate field Foo in type int",
            ),
            ("{{ (print \"x\").Foo }}", 1, "in type string"),
            ("{{ \"x\".Foo }}", 1, "after a constant"),
            ("{{ nil }}", 1, "nil is not a command"),
            ("{{ getenv . }}", 1, "invalid value; expected string"),
            ("{{ getenv nil }}", 1, "invalid value; expected string"),
        ]);
    }

    #[test]
    fn range_runs_its_else_over_nil_and_nothing_else_can_be_ranged() {
        assert_renders(&[
            ("{{ range . }}x{{ else }}empty{{ end }}", "empty"),
            ("{{ range .Items }}x{{ end }}|", "|"),
            (
                "{{ range $i, $e := . }}{{ $i }}{{ else }}{{ print $i $e }}{{ end }}",
                "<nil> <nil>",
            ),
            (
                "{{ range $e := $ }}{{ if $e }}{{ break }}{{ end }}{{ continue }}{{ end }}ok",
                "ok",
            ),
        ]);
        assert_fails(&[
            (
                "\n{{ range \"abc\" }}{{ end }}",
                2,
                "range can't iterate over abc",
            ),
            ("{{ range 3 }}{{ end }}", 1, "range can't iterate over 3"),
            (
                "{{ range . }}{{ end }}{{ break }}",
                1,
                "`{{break}}` outside `{{range}}`",
            ),
            (
                "{{ if 1 }}{{ continue }}{{ end }}",
                1,
                "`{{continue}}` outside `{{range}}`",
            ),
            (
                "{{ range . }}{{ else }}{{ continue }}{{ end }}",
                1,
                "outside `{{range}}`",
            ),
            (
                "{{ range $a, 1 := . }}{{ end }}",
                1,
                "range can only initialize variables",
            ),
        ]);
    }

    #[test]
    fn trim_markers_work_around_control_actions() {
        assert_renders(&[
            (
                "a  {{- if true -}}  b  {{- else -}}  c  {{- end -}}  d",
                "abd",
            ),
            (
                "a  {{- if false -}}  b  {{- else -}}  c  {{- end -}}  d",
                "acd",
            ),
            ("a  {{ if true -}}  b  {{ end }}  d", "a  b    d"),
            ("{{ if true }}a{{- else if false -}} b {{ end }}", "a"),
            ("x {{- $x := 1 -}} y {{- /* c */ -}} z", "xyz"),
            (
                "list:\n{{- range . }}\n- item\n{{- else }}\n- none\n{{- end }}\n",
                "list:\n- none\n",
            ),
            (
                "a:\n  {{- with getenv \"ONLY_ENV\" }}\n  b: {{ . }}\n  {{- end }}\n",
                "a:\n  b: from-env\n",
            ),
        ]);
    }

    #[test]
    fn structural_errors_name_their_line() {
        assert_fails(&[
            ("a\n\n{{ end }}", 3, "unexpected `{{end}}`"),
            ("a\n{{ else }}", 2, "unexpected `{{else}}`"),
            (
                "{{ with 1 }}{{ end }}\n{{ else if 1 }}",
                2,
                "unexpected `{{else}}`",
            ),
            ("x\n{{ if true }}\nx", 2, "unclosed `{{if}}`"),
            ("{{ with 1 }}\n{{ else }}\n", 1, "unclosed `{{with}}`"),
            (
                "{{ if 1 }}{{ else if 2 }}\n{{ range . }}",
                2,
                "unclosed `{{range}}`",
            ),
            (
                "{{ if 1 }}{{ else }}\n{{ else }}{{ end }}",
                2,
                "found another `{{else}}`",
            ),
            (
                "{{ with 0 }}\n{{ else if 1 }}{{ end }}",
                2,
                "`{{else if}}` can only continue an `{{if}}`",
            ),
            // `else with` is newer Go than webhook 2.8's.
            (
                "{{ with 0 }}\n{{ else with 1 }}{{ end }}",
                2,
                "unexpected `with 1` in `{{else}}`",
            ),
            ("{{ if true }}{{ end 1 }}", 1, "unexpected `1` in `{{end}}`"),
            ("{{ if }}{{ end }}", 1, "missing value for if"),
            ("{{ with }}{{ end }}", 1, "missing value for with"),
            ("{{ print if }}", 1, "unexpected `if` in a command"),
            (
                "{{ print | \"x\" }}",
                1,
                "non executable command in pipeline stage 2",
            ),
            ("{{ print \"a\"\"b\" }}", 1, "after an operand"),
            ("{{ print(1) }}", 1, "after an operand"),
        ]);
        let deep = format!(
            "{}x{}",
            "{{ if 1 }}".repeat(100_000),
            "{{ end }}".repeat(100_000)
        );
        assert!(render(&deep).unwrap_err().message.contains("nested"));
        let ok = format!(
            "{}x{}",
            "{{ with 1 }}".repeat(MAX_NESTING),
            "{{ end }}".repeat(MAX_NESTING)
        );
        assert_eq!(render(&ok).as_deref(), Ok("x"));
        // An else-if chain is one level, however long.
        let chain = format!(
            "{{{{ if 0 }}}}{}{{{{ else }}}}last{{{{ end }}}}",
            "{{ else if 0 }}".repeat(1000)
        );
        assert_eq!(render(&chain).as_deref(), Ok("last"));
    }

    #[test]
    fn errors_in_branches_not_taken_are_gos() {
        // Wrong argument counts and types are found when an action runs ...
        assert_renders(&[(
            "{{ if false }}{{ \"a\" \"b\" }}{{ getenv 1 2 }}{{ lt true 1 }}{{ range 3 }}{{ end }}{{ end }}ok",
            "ok",
        )]);
        // ... unknown functions and undeclared variables when the file is parsed, and a
        // parse error anywhere wins over an error running an earlier action.
        assert_fails(&[
            (
                "{{ if false }}\n{{ env \"A\" }}{{ end }}",
                2,
                "function `env`",
            ),
            (
                "{{ len 3 }}\n{{ if false }}{{ $nope }}{{ end }}",
                2,
                "undefined variable",
            ),
        ]);
    }

    #[test]
    fn unsupported_actions_name_themselves_and_their_line() {
        let table = [
            ("x\n\n{{ env \"A\" }}", 3, "function `env`"),
            ("{{ index \"abc\" 1 }}", 1, "function `index`"),
            (
                "\n{{ define \"x\" }}X{{ end }}",
                2,
                "`{{define}}` is not supported",
            ),
            ("{{ template \"x\" }}", 1, "`{{template}}` is not supported"),
            (
                "{{ block \"x\" . }}{{ end }}",
                1,
                "`{{block}}` is not supported",
            ),
            ("a\n{{ getenv", 2, "unclosed action"),
            ("{{ getenv 1 }}", 1, "expected string; got int"),
            ("{{ getenv \"A\" \"B\" }}", 1, "want 1 got 2"),
            ("{{ }}", 1, "missing value"),
            ("{{ \"a\" \"b\" }}", 1, "non-function"),
            ("{{ printf \"%5s\" \"a\" }}", 1, "not supported"),
            ("{{ 1.5 }}", 1, "integers only"),
            ("{{ 'ab' }}", 1, "invalid character constant"),
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

    #[test]
    fn output_and_values_are_bounded() {
        let doubling = format!(
            "{{{{ $x := \"0123456789abcdef\" }}}}{}",
            "{{ $x = print $x $x }}".repeat(30)
        );
        assert!(render(&doubling).unwrap_err().message.contains("exceed"));
        let repeated = format!(
            "{{{{ $x := \"0123456789abcdef\" }}}}{}{}",
            "{{ $x = print $x $x }}".repeat(19),
            "{{ $x }}".repeat(40)
        );
        assert!(render(&repeated).unwrap_err().message.contains("exceed"));
    }

    #[test]
    fn never_panics_on_truncated_or_corrupted_templates() {
        let sample = "{{- $x := getenv `A` -}}{{ if and $x (eq (len $x) 3) }}{{ $x | js }}{{ else if .Foo.Bar }}{{ with $y := printf \"%q\" 'a' }}{{ . }}{{ end }}{{ else }}{{ range $i, $e := . }}{{ break }}{{ else }}{{ or 0 nil }}{{ end }}{{ end }}{{/* c */}}";
        let bytes = sample.as_bytes();
        for end in 0..=bytes.len() {
            if let Ok(prefix) = std::str::from_utf8(&bytes[..end]) {
                let _ = render(prefix);
            }
        }
        for at in 0..bytes.len() {
            for replacement in [
                "{", "}", "(", ")", "$", ".", "|", "=", ":", ",", "'", "\"", "-", " ",
            ] {
                let mut corrupted = sample.to_owned();
                if corrupted.is_char_boundary(at) && corrupted.is_char_boundary(at + 1) {
                    corrupted.replace_range(at..at + 1, replacement);
                    let _ = render(&corrupted);
                }
            }
        }
    }
}
