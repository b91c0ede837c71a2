//! The parser: action bodies into pipelines, and the items into a tree of nodes.

use super::funcs::{Func, Functions, Value};
use super::lex::{Item, ends_word, is_space, is_word_char, keyword, skip_quoted, starts_field};
use super::{MAX_NESTING, MAX_PARENS, TemplateError};

#[derive(Debug, Clone)]
pub(super) enum Operand {
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
pub(super) struct Pipeline {
    pub(super) vars: Vec<String>,
    pub(super) assign: bool,
    pub(super) commands: Vec<Command>,
}

/// An `{{if}}`, `{{else if}}` or `{{with}}` condition and what it runs.
#[derive(Debug)]
pub(super) struct Branch<'a> {
    pub(super) line: usize,
    pub(super) pipeline: Pipeline,
    pub(super) body: Vec<Node<'a>>,
}

#[derive(Debug)]
pub(super) enum Node<'a> {
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
pub(super) struct Tree<'a> {
    items: Vec<Item<'a>>,
    next: usize,
    /// Variables in scope, `$` first: Go's parse-time list, so declarations inside a
    /// structure are dropped at its `{{end}}`.
    vars: Vec<String>,
    depth: usize,
    ranges: usize,
    funcs: Functions,
}

pub(super) fn error_at(line: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        message: message.into(),
    }
}

impl<'a> Tree<'a> {
    pub(super) fn parse(
        items: Vec<Item<'a>>,
        funcs: Functions,
    ) -> Result<Vec<Node<'a>>, TemplateError> {
        let mut tree = Tree {
            items,
            next: 0,
            vars: vec!["$".to_owned()],
            depth: 0,
            ranges: 0,
            funcs,
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
            funcs: self.funcs,
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
    funcs: Functions,
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
        if let Some(func) = self.funcs.find(word) {
            return Ok(Operand::Function(func));
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
                let names: Vec<&str> = self.funcs.all().map(|(name, _)| *name).collect();
                Err(self.error(format!(
                    "function `{word}` is not supported by {} (it has {})",
                    self.funcs.what,
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
