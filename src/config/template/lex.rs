//! The lexer: text and action bodies, and the character classes the parser shares.

use super::TemplateError;

/// A piece of the file: text (already trimmed by the markers next to it) or an action's body.
#[derive(Debug, Clone, Copy)]
pub(super) enum Item<'a> {
    Text(&'a str),
    Action { body: &'a str, line: usize },
}

/// Splits `text` into text and actions, applying trim markers and dropping comments.
pub(super) fn lex(text: &str) -> Result<Vec<Item<'_>>, TemplateError> {
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
pub(super) fn is_space(c: char) -> bool {
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
pub(super) fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
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
pub(super) fn is_word_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Where Go's lexer lets an identifier, field or variable end.
pub(super) fn ends_word(rest: &str) -> bool {
    rest.chars()
        .next()
        .is_none_or(|c| is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '('))
}

/// Whether `s` starts with `.Name` (Go lexes `.5` as a number).
pub(super) fn starts_field(s: &str) -> bool {
    s.strip_prefix('.')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| is_word_char(c) && !c.is_ascii_digit())
}

/// The leading word of `s` and what follows it, if the word is a control keyword.
pub(super) fn keyword(s: &str) -> Option<(&str, &str)> {
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
