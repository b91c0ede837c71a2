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

mod exec;
mod funcs;
mod lex;
mod parse;

use exec::Exec;
use funcs::Value;
use lex::lex;
use parse::Tree;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// 1-based line of the action at fault.
    pub line: usize,
    pub message: String,
}

/// Why a function call failed when its action ran; the [`TemplateError`] adds the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FuncError {
    #[error("invalid value; expected string")]
    NilForString,
    #[error("wrong type for value; expected string; got {0}")]
    NotString(&'static str),
    #[error("error calling len: len of nil")]
    LenOfNil,
    #[error("error calling len: len of type {0}")]
    LenOfType(&'static str),
    /// A comparison (`eq`, `lt`, ...) of values it cannot compare.
    #[error("error calling {function}: {reason}")]
    Comparison {
        function: &'static str,
        reason: &'static str,
    },
    #[error("printf: format ends with `%`")]
    PrintfEndsWithPercent,
    #[error("printf: `%{0}` is not supported (use %s, %v, %d, %q, %t, %x)")]
    PrintfVerb(char),
    /// `and` and `or` are evaluated lazily, never applied to evaluated arguments.
    #[error("internal error: {0} is lazy")]
    Lazy(&'static str),
    /// A request function outside a `{source: template}` value.
    #[error("{0} is only available in a `template` source")]
    NoRequest(String),
    /// The request could not give the value (an unsupported `request` key, ...).
    #[error(transparent)]
    Request(#[from] crate::pipeline::request::ParamError),
}

/// Where the template functions read from; tests substitute their own.
pub trait Host {
    /// An environment variable (`None` when unset).
    fn getenv(&self, name: &str) -> Option<String>;
    /// A file's text (`None` when it cannot be read).
    fn read_file(&self, path: &str) -> Option<String>;
    /// A value of the request being served, for a `{source: template}` value's `payload`,
    /// `header`, `query` and `request` functions (`source` is the function's name); empty when
    /// absent, an error for a name the source cannot have.
    fn request(&self, source: &str, name: &str) -> Result<String, FuncError> {
        let _ = name;
        Err(FuncError::NoRequest(source.to_owned()))
    }
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
    run(text, host, funcs::FILE)
}

/// Renders a `{source: template}` value: its request functions read through `host`.
pub fn render_value(text: &str, host: &dyn Host) -> Result<String, TemplateError> {
    run(text, host, funcs::VALUE)
}

fn run(text: &str, host: &dyn Host, funcs: funcs::Functions) -> Result<String, TemplateError> {
    // Go parses the whole template before running any of it.
    let tree = Tree::parse(lex(text)?, funcs)?;
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

#[cfg(test)]
mod tests;
