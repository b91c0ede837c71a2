//! The text log escaper over arbitrary strings.
//!
//! Properties, for any text:
//! - `field_value` gives one token on one line: no control character or line separator, and
//!   either the text itself (a non-empty word with no space, `=`, quote, backslash or brace) or
//!   a quoted string whose escapes undo to exactly the text, so a value never looks like a
//!   second field or a new line.
//! - `message_text` gives one line: no control character or line separator, and text that had
//!   none comes back unchanged.
#![no_main]

use hookwire::ops::logging::{field_value, message_text};
use libfuzzer_sys::fuzz_target;

fn breaks_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Undoes Rust's string escapes in `quoted` (quotes included); `None` unless it is exactly one
/// quoted string.
fn unquote(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                '0' => '\0',
                c @ ('\\' | '"' | '\'') => c,
                'u' => {
                    let rest = chars.as_str().strip_prefix('{')?;
                    let end = rest.find('}')?;
                    let c = char::from_u32(u32::from_str_radix(&rest[..end], 16).ok()?)?;
                    chars = rest[end + 1..].chars();
                    c
                }
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    Some(out)
}

fuzz_target!(|text: String| {
    let value = field_value(&text);
    assert!(!value.chars().any(breaks_line), "{value:?}");
    if value == text {
        assert!(!text.is_empty());
        assert!(
            !text
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '=' | '"' | '\\' | '{' | '}')),
            "{text:?}"
        );
    } else {
        assert_eq!(unquote(&value).as_deref(), Some(text.as_str()), "{value}");
    }

    let message = message_text(&text);
    assert!(!message.chars().any(breaks_line), "{message:?}");
    if !text.chars().any(breaks_line) {
        assert_eq!(message, text);
    }
});
