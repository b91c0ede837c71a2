//! go-yaml v2's YAML 1.1 reading of *plain* (unquoted) scalars, and ghodss/yaml's way of
//! printing the result back into a string field.
//!
//! adnanh/webhook reads every hooks file with ghodss/yaml: go-yaml v2 resolves each plain scalar
//! to a bool, int, float, null or string, ghodss turns numbers and bools found where the Go
//! struct wants a string back into text (`strconv.FormatFloat(f, 'g', -1, 32)` for floats, so
//! with *float32* precision), and `encoding/json` then fills the struct. A modern YAML parser
//! keeps `yes`, `0x1F` and `1.10` as written, so this module redoes go-yaml's resolution.
//!
//! The rules (go-yaml v2 `resolve.go`, as vendored in Debian's webhook 2.8.0, all measured on
//! `/usr/bin/webhook`): a first-character hint decides what to try; `y/yes/on/true` and
//! friends are bools, `~/null/""` null, `.inf/.nan` floats; otherwise, for a digit or sign,
//! underscores are dropped and Go's `ParseInt(s, 0, 64)` (so `0x`, `0o`, `0b` and a leading `0`
//! for octal), then `ParseUint`, then a float matching the *old* regex
//! `^[-+]?[0-9]*\.?[0-9]+([eE][-+][0-9]+)?$` (the exponent needs a sign: `1e3` stays a string,
//! `1e+3` is 1000). Timestamps and sexagesimal numbers stay strings.

/// A plain scalar after go-yaml v2 resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    /// Fits Go's `int` (64-bit).
    Int(i64),
    /// Above `i64::MAX` but fits `uint64`.
    Uint(u64),
    Float(f64),
    /// Not a special value: the text itself.
    Str,
}

/// Resolves a plain scalar as go-yaml v2 does.
pub(crate) fn resolve(text: &str) -> Resolved {
    match text.as_bytes().first() {
        None => Resolved::Null,
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => {
            keyword(text).unwrap_or(Resolved::Str)
        }
        Some(b'.') => keyword(text)
            .or_else(|| go_parse_float(text).map(Resolved::Float))
            .unwrap_or(Resolved::Str),
        Some(b'0'..=b'9' | b'+' | b'-') => keyword(text)
            .or_else(|| number(text))
            .unwrap_or(Resolved::Str),
        Some(_) => Resolved::Str,
    }
}

/// The string adnanh sees for a plain scalar in a string field (`yes` → `true`, `0x1F` → `31`,
/// `1.10` → `1.1`, `~` → ``). Text that is not special comes back unchanged.
pub fn resolve_plain(text: &str) -> String {
    resolved_to_string(resolve(text)).unwrap_or_else(|| text.to_owned())
}

/// ghodss/yaml's string form of a resolved scalar; `None` for [`Resolved::Str`] (use the text).
pub(crate) fn resolved_to_string(value: Resolved) -> Option<String> {
    match value {
        Resolved::Null => Some(String::new()),
        Resolved::Bool(b) => Some(b.to_string()),
        Resolved::Int(i) => Some(i.to_string()),
        Resolved::Uint(u) => Some(u.to_string()),
        Resolved::Float(f) => Some(format_float32_g(f)),
        Resolved::Str => None,
    }
}

/// go-yaml v2's `resolveMap`: words that resolve without parsing.
fn keyword(text: &str) -> Option<Resolved> {
    Some(match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Resolved::Bool(false)
        }
        "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        _ => return None,
    })
}

/// The digit-or-sign branch: int, then uint, then an old-style float.
fn number(text: &str) -> Option<Resolved> {
    let plain = text.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Some(Resolved::Int(i));
    }
    if let Some(u) = go_parse_uint(&plain) {
        return Some(Resolved::Uint(u));
    }
    if is_old_yaml_float(&plain) {
        return go_parse_float(&plain).map(Resolved::Float);
    }
    None
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then [`go_parse_uint`], range-checked.
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let magnitude = go_parse_uint(digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)` with the underscores already removed: `0x`/`0o`/`0b`
/// prefixes (either case), a leading `0` meaning octal, no sign.
fn go_parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let lower_second = s.as_bytes().get(1).map(u8::to_ascii_lowercase);
    let (radix, digits) = match (s.as_bytes()[0], lower_second) {
        (b'0', Some(b'x')) if s.len() >= 3 => (16, &s[2..]),
        (b'0', Some(b'o')) if s.len() >= 3 => (8, &s[2..]),
        (b'0', Some(b'b')) if s.len() >= 3 => (2, &s[2..]),
        (b'0', _) => (8, &s[1..]),
        _ => (10, s),
    };
    if digits.is_empty() {
        // Only "0" gets here with nothing left: Go accepts it as zero.
        return Some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// go-yaml v2 (the version Debian builds webhook 2.8.0 with) only takes a digit-led value as a
/// float when it matches `^[-+]?[0-9]*\.?[0-9]+([eE][-+][0-9]+)?$`.
fn is_old_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => is_digits(int, 0) && is_digits(frac, 1),
        None => is_digits(mantissa, 1),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        e.strip_prefix(['+', '-'])
            .is_some_and(|digits| is_digits(digits, 1))
    });
    mantissa_ok && exponent_ok
}

fn is_digits(s: &str, at_least: usize) -> bool {
    s.len() >= at_least && s.bytes().all(|b| b.is_ascii_digit())
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text: out-of-range values are errors (Rust
/// would give infinity), and underscores between digits are allowed (`.5_0` is 0.5, measured).
fn go_parse_float(s: &str) -> Option<f64> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
    {
        return None;
    }
    if s.contains('_') && !underscores_between_digits(s) {
        return None;
    }
    let value: f64 = s.replace('_', "").parse().ok()?;
    value.is_finite().then_some(value)
}

/// Go's `underscoreOK` for a number without base prefix: every `_` sits between two digits.
fn underscores_between_digits(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'_'
            || (i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
    })
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`, which ghodss/yaml uses to put a float into a
/// string field: float32 precision, shortest digits, exponent form when the decimal exponent is
/// below -4 or at least 6 (`1e+06`, `1e-05`), `+Inf`, `-Inf`, `NaN`.
pub(crate) fn format_float32_g(f: f64) -> String {
    // Go converts to float32 with round-to-nearest, as `as` does.
    #[allow(clippy::cast_possible_truncation)]
    let f = f as f32;
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    // Rust's `{:e}` prints the shortest digits that round-trip, like Go's shortest mode.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{exp_sign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point (may be <= 0)
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if digits.len() <= point {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row measured on Debian's webhook 2.8.0: a hook with `response-message: <plain>`
    /// answers with the right-hand side.
    #[test]
    fn plain_scalars_resolve_like_webhook_2_8_0() {
        let table = [
            ("yes", "true"),
            ("on", "true"),
            ("y", "true"),
            ("Y", "true"),
            ("Off", "false"),
            ("no", "false"),
            ("n", "false"),
            ("NO", "false"),
            ("true", "true"),
            ("1.10", "1.1"),
            (".5", "0.5"),
            ("+12", "12"),
            ("-12", "-12"),
            ("0x1F", "31"),
            ("-0x1F", "-31"),
            ("0755", "493"),
            ("0o17", "15"),
            ("08", "8"),
            ("09.5", "9.5"),
            ("0b101", "5"),
            ("-0b101", "-5"),
            ("1_000", "1000"),
            ("1e3", "1e3"),
            ("1e+3", "1000"),
            ("1.5e+3", "1500"),
            ("1.0e3", "1.0e3"),
            ("1e-3", "0.001"),
            ("1:30", "1:30"),
            ("190:20:30", "190:20:30"),
            ("2001-12-14", "2001-12-14"),
            (
                "2001-12-14t21:59:43.10-05:00",
                "2001-12-14t21:59:43.10-05:00",
            ),
            ("12345678901234567890", "12345678901234567890"),
            ("99999999999999999999", "1e+20"),
            ("1.0", "1"),
            ("1000000.0", "1e+06"),
            ("123456.7", "123456.7"),
            ("1234567.0", "1.234567e+06"),
            ("3.14159265358979", "3.1415927"),
            ("0.00001", "1e-05"),
            ("0.0001", "0.0001"),
            (".inf", "+Inf"),
            ("-.inf", "-Inf"),
            ("+.inf", "+Inf"),
            (".nan", "NaN"),
            (".NaN", "NaN"),
            ("~", ""),
            ("null", ""),
            ("Null", ""),
            ("", ""),
            ("1.", "1."),
            (".e3", ".e3"),
            ("0x", "0x"),
            ("0.1e-7", "1e-08"),
            ("-0", "0"),
            ("+0", "0"),
            ("-0.0", "-0"),
            ("007", "7"),
            ("0xFFFFFFFFFFFFFFFF", "18446744073709551615"),
            ("0x1_F", "31"),
            ("1__0", "10"),
            ("_1", "_1"),
            ("+.5", "0.5"),
            ("-.5", "-0.5"),
            (".5_0", "0.5"),
            (".5e3", "500"),
            ("hello", "hello"),
            ("yes please", "yes please"),
            ("1e+999", "1e+999"),
            ("+", "+"),
            ("-", "-"),
        ];
        for (input, expected) in table {
            assert_eq!(resolve_plain(input), expected, "plain scalar {input:?}");
        }
    }

    #[test]
    fn resolution_keeps_the_type() {
        assert_eq!(resolve("0x12C"), Resolved::Int(300));
        assert_eq!(resolve("201.0"), Resolved::Float(201.0));
        assert_eq!(resolve("yes"), Resolved::Bool(true));
        assert_eq!(resolve("~"), Resolved::Null);
        assert_eq!(resolve("9223372036854775808"), Resolved::Uint(1 << 63));
        assert_eq!(resolve("-9223372036854775808"), Resolved::Int(i64::MIN));
        assert_eq!(resolve("abc"), Resolved::Str);
    }
}
