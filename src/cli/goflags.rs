//! Go `flag`-package compatibility: the argv rewrite that lets clap read adnanh/webhook's
//! command lines, and the value parsers that read values the way Go does.
//!
//! clap cannot parse single-dash long flags (`-hooks`), so [`normalize`] walks the arguments
//! with the exact rules of Go's `flag.FlagSet.Parse` and hands clap an unambiguous argv in
//! which every flag is `--name` or `--name=value`. Everything about *values* (types, ranges,
//! error messages naming the flag) is left to clap and the parsers below.
//!
//! The rules mirrored from Go (`flag.go`, `parseOne`):
//! - `-name` and `--name` are the same flag; a value is given as `-name value` or
//!   `-name=value`. A flag that takes a value consumes the next argument whatever it looks
//!   like (`-header -x=y` sets the header `-x=y`), and fails with `flag needs an argument`
//!   when there is none.
//! - Boolean flags never consume the next argument: only `-verbose` or `-verbose=false`.
//! - `-h`, `-help` (and `--help`) print the usage and exit 0 (`-h` a summary, `-help` in full).
//! - An undefined flag is `flag provided but not defined: -name` (exit 2); `---x`, `-=x` are
//!   `bad flag syntax`.
//! - Parsing stops at `--` or at the first argument that is not a flag (a lone `-` is not a
//!   flag).
//! - There are no single-letter short flags (Go has none): a flag is looked up by its clap
//!   long name (or alias), and `-h` is mapped to clap's help explicitly.
//!
//! One deliberate difference: Go keeps the arguments after the stop as positional arguments,
//! which adnanh/webhook silently ignores, together with every flag that follows. So
//! `webhook -verbose false -port 8000` runs with `verbose=true` on port 9000. hookwire has no
//! positional arguments, so such an argument is an error that says what to write instead
//! ([`GoFlagError::Unexpected`]); the only exception is a subcommand name, from which
//! parsing continues with that subcommand's flags.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Why a command line cannot be read, with messages worded as Go's `flag` package words them
/// (so scripts and users who know adnanh's errors recognise them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoFlagError {
    /// `-name` is not a flag of this command.
    #[error("flag provided but not defined: -{name}")]
    Undefined { name: String },
    /// A flag that takes a value was the last argument.
    #[error("flag needs an argument: -{name}")]
    NeedsArgument { name: String },
    /// `---x`, `-=x` and the like.
    #[error("bad flag syntax: {arg}")]
    BadSyntax { arg: String },
    /// A positional argument; hookwire takes none outside subcommands.
    #[error("{}", unexpected_message(arg, after_bool.as_deref()))]
    Unexpected {
        /// The argument, lossily converted to UTF-8 for display.
        arg: String,
        /// The boolean flag right before it (as written, e.g. `-verbose`), if any: the
        /// classic `-verbose false` mistake gets a precise hint.
        after_bool: Option<String>,
    },
}

fn unexpected_message(arg: &str, after_bool: Option<&str>) -> String {
    match after_bool {
        Some(flag) => format!(
            "unexpected argument '{arg}' after {flag}: boolean flags take their value after '=', \
             as in {flag}={arg} (adnanh/webhook would have ignored '{arg}' and every flag after it)"
        ),
        None => format!(
            "unexpected argument '{arg}': hookwire takes only flags (adnanh/webhook would have \
             ignored '{arg}' and every flag after it)"
        ),
    }
}

/// Why a flag's value is refused, as clap prints it after "invalid value ... for ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("expected true or false (Go also accepts 1, t, T, TRUE, True, 0, f, F, FALSE, False)")]
    NotBool,
    #[error("invalid integer '{0}'")]
    NotInteger(String),
    /// The text is an integer beyond 64 bits.
    #[error("'{0}' is out of range")]
    Overflow(String),
    /// An integer outside what the flag takes.
    #[error("{value} is out of range ({range})")]
    OutOfRange { value: i64, range: String },
    #[error("expected name=value, e.g. -header X-Served-By=hookwire")]
    HeaderNotPair,
    #[error("'{0}' is not a valid HTTP header name")]
    HeaderName(String),
    #[error("the value of header '{0}' contains characters HTTP cannot carry")]
    HeaderValue(String),
    /// `explain --header` without a colon.
    #[error("expected NAME:VALUE, e.g. X-GitHub-Event:push")]
    ExplainHeaderNotPair,
    #[error("{0:?} is not a valid HTTP header name")]
    ExplainHeaderName(String),
    #[error("a header value cannot carry control characters")]
    ExplainHeaderValue,
    /// `explain --query` without `=`.
    #[error("expected NAME=VALUE, e.g. token=abc")]
    QueryNotPair,
    /// A duration flag; the reason comes from the hooks file's duration parser.
    #[error(transparent)]
    Duration(#[from] crate::config::scheduling::DurationError),
}

/// How a flag takes its value, read from clap's definition of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Go bool flag (`num_args = 0..=1`): `-name` or `-name=value`, never a separate value.
    Bool,
    /// A clap switch taking no value at all (help, counters): `-name` only.
    Switch,
    /// Takes exactly one value: `-name value` or `-name=value`.
    Value,
}

fn kind_of(arg: &clap::Arg) -> Kind {
    // Checked first: clap derive gives `bool` fields `SetTrue` even when they accept a value.
    if arg
        .get_num_args()
        .is_some_and(|range| range.min_values() == 0)
    {
        Kind::Bool
    } else if !arg.get_action().takes_values() {
        Kind::Switch
    } else {
        Kind::Value
    }
}

fn find_flag<'a>(command: &'a clap::Command, name: &str) -> Option<&'a clap::Arg> {
    command.get_arguments().find(|a| {
        a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
    })
}

/// Rewrites a Go-style command line (`args[0]` is the program name) into one clap parses
/// unambiguously: `--name` for switches and bare booleans, `--name=value` for everything
/// with a value, `--help` for `-h`/`-help`. See the module docs for the rules.
pub fn normalize<C: clap::CommandFactory>(
    args: Vec<OsString>,
) -> Result<Vec<OsString>, GoFlagError> {
    let command = C::command();
    let mut args = args.into_iter();
    let mut out = Vec::new();
    out.extend(args.next());
    normalize_into(&command, args, &mut out)?;
    Ok(out)
}

fn normalize_into(
    command: &clap::Command,
    mut args: std::vec::IntoIter<OsString>,
    out: &mut Vec<OsString>,
) -> Result<(), GoFlagError> {
    // The last argument, when it was a bare boolean flag, for the `-verbose false` hint.
    let mut last_bool: Option<String> = None;
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes.len() < 2 || bytes[0] != b'-' {
            // The first non-flag argument: Go stops parsing here.
            return positional(command, arg, args, last_bool, out);
        }
        let body = if bytes[1] == b'-' {
            if bytes.len() == 2 {
                // `--` ends the flags; what follows can only be positional.
                if takes_positionals(command) {
                    out.push(arg);
                    out.extend(args);
                    return Ok(());
                }
                return match args.next() {
                    Some(next) => positional(command, next, args, None, out),
                    None => Ok(()),
                };
            }
            &bytes[2..]
        } else {
            &bytes[1..]
        };
        if body[0] == b'-' || body[0] == b'=' {
            return Err(GoFlagError::BadSyntax {
                arg: arg.to_string_lossy().into_owned(),
            });
        }
        let (name_bytes, value) = match body.iter().position(|&b| b == b'=') {
            Some(i) => (&body[..i], Some(OsStr::from_bytes(&body[i + 1..]))),
            None => (body, None),
        };
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let Some(flag) = find_flag(command, &name) else {
            // Go answers `-h` and `-help` with the usage unless a flag of that name exists.
            // `-h` gets clap's one-line-per-flag summary, `-help` the full text.
            if name == "h" || name == "help" {
                out.push(OsString::from(if name == "h" { "-h" } else { "--help" }));
                return Ok(());
            }
            return Err(GoFlagError::Undefined { name });
        };
        let long = flag.get_long().unwrap_or(&name);
        let mut rewritten = OsString::from(format!("--{long}"));
        last_bool = None;
        match (kind_of(flag), value) {
            (Kind::Bool, None) => last_bool = Some(format!("-{name}")),
            (Kind::Switch, None) => {}
            // A value on a switch is passed on for clap to reject with its own message.
            (Kind::Bool | Kind::Switch | Kind::Value, Some(value)) => {
                rewritten.push("=");
                rewritten.push(value);
            }
            (Kind::Value, None) => {
                let value = args.next().ok_or(GoFlagError::NeedsArgument { name })?;
                rewritten.push("=");
                rewritten.push(value);
            }
        }
        out.push(rewritten);
    }
    Ok(())
}

/// Whether `command` has positional arguments (`check FILE...`). Only subcommands do; in them
/// flags and positionals may mix, as clap allows, so the rewrite goes on past a positional.
fn takes_positionals(command: &clap::Command) -> bool {
    command.get_positionals().next().is_some()
}

/// Handles the argument where Go stops parsing: a subcommand name continues with that
/// subcommand's flags; a positional argument of a subcommand that takes them is kept and the
/// rewrite goes on; anything else is an error (see the module docs).
fn positional(
    command: &clap::Command,
    arg: OsString,
    rest: std::vec::IntoIter<OsString>,
    after_bool: Option<String>,
    out: &mut Vec<OsString>,
) -> Result<(), GoFlagError> {
    if let Some(sub) = arg.to_str().and_then(|name| command.find_subcommand(name)) {
        let sub = sub.clone();
        out.push(arg);
        return normalize_into(&sub, rest, out);
    }
    if takes_positionals(command) {
        out.push(arg);
        return normalize_into(command, rest, out);
    }
    Err(GoFlagError::Unexpected {
        arg: arg.to_string_lossy().into_owned(),
        after_bool,
    })
}

/// Go's `strconv.ParseBool`, the only spellings Go accepts for `-flag=value`.
pub fn parse_bool(value: &str) -> Result<bool, FlagError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(FlagError::NotBool),
    }
}

/// Go's `strconv.ParseInt(value, 0, 64)`, which Go's `flag.Int` uses: an optional sign, then
/// decimal, `0x`/`0X` hex, `0o`/`0O` or leading-`0` octal, `0b`/`0B` binary, with `_` allowed
/// between digits. So `-port 0x2328` is 9000 and `-port 010` is 8, exactly as in adnanh.
pub fn parse_go_int(value: &str) -> Result<i64, FlagError> {
    let invalid = || FlagError::NotInteger(value.to_string());
    let (negative, unsigned) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    // Go's underscoreOK: `_` only between digits, or right after a base prefix.
    let mut previous_was_digit = prefixed;
    for c in digits.chars() {
        match c {
            '_' if previous_was_digit => previous_was_digit = false,
            c if c.is_ascii_alphanumeric() => previous_was_digit = true,
            _ => return Err(invalid()),
        }
    }
    if !previous_was_digit || digits.is_empty() {
        return Err(invalid());
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    let magnitude = u64::from_str_radix(&digits, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => FlagError::Overflow(value.to_string()),
        _ => invalid(),
    })?;
    let signed = if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    signed.ok_or_else(|| FlagError::Overflow(value.to_string()))
}

/// A TCP port: a Go integer from 0 to 65535 (0 lets the kernel pick a free port).
pub fn parse_port(value: &str) -> Result<u16, FlagError> {
    in_range(value, "0 to 65535")
}

/// A user or group id (`-setuid`, `-setgid`).
pub fn parse_id(value: &str) -> Result<u32, FlagError> {
    in_range(value, "0 to 4294967295")
}

/// A non-negative count or size.
pub fn parse_u64(value: &str) -> Result<u64, FlagError> {
    in_range(value, "0 or more")
}

/// A non-negative count or size.
pub fn parse_usize(value: &str) -> Result<usize, FlagError> {
    in_range(value, "0 or more")
}

/// Any Go `int` (64-bit).
pub fn parse_i64(value: &str) -> Result<i64, FlagError> {
    parse_go_int(value)
}

fn in_range<T: TryFrom<i64>>(value: &str, range: &str) -> Result<T, FlagError> {
    let n = parse_go_int(value)?;
    T::try_from(n).map_err(|_| FlagError::OutOfRange {
        value: n,
        range: range.to_string(),
    })
}

/// A Go integer where any value up to 0 means "no limit" and is read as 0, as adnanh's
/// `-x-request-id-limit` does (it only truncates when the limit is positive).
pub fn parse_limit(value: &str) -> Result<usize, FlagError> {
    let n = parse_go_int(value)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// A `-header` value: `name=value`, split at the first `=` (so values may contain `=`).
/// adnanh rejects a value without `=` while parsing flags (exit 2); hookwire also rejects
/// names and values that HTTP cannot carry, which adnanh would send broken.
pub fn parse_header(value: &str) -> Result<String, FlagError> {
    let Some((name, header_value)) = value.split_once('=') else {
        return Err(FlagError::HeaderNotPair);
    };
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| FlagError::HeaderName(name.to_string()))?;
    http::HeaderValue::from_str(header_value)
        .map_err(|_| FlagError::HeaderValue(name.to_string()))?;
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small command standing in for the real one, so these tests pin the normalizer alone.
    #[derive(Debug, clap::Parser)]
    struct Demo {
        #[arg(long)]
        name: Option<String>,
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool)]
        flag: bool,
        #[arg(long, action = clap::ArgAction::Count)]
        count: u8,
        #[command(subcommand)]
        sub: Option<Sub>,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Check {
            #[arg(long)]
            strict: Option<String>,
        },
        Lint {
            files: Vec<String>,
            #[arg(long)]
            strict: Option<String>,
        },
    }

    fn norm(args: &[&str]) -> Result<Vec<String>, GoFlagError> {
        let argv = std::iter::once("prog")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        normalize::<Demo>(argv).map(|v| {
            v.into_iter()
                .map(|a| a.into_string().expect("utf-8"))
                .collect()
        })
    }

    #[test]
    fn rewrites_to_unambiguous_long_flags() {
        assert_eq!(
            norm(&["-name", "x", "--name=y", "-flag", "-flag=false", "--count"]).unwrap(),
            [
                "prog",
                "--name=x",
                "--name=y",
                "--flag",
                "--flag=false",
                "--count"
            ]
        );
    }

    #[test]
    fn value_flags_consume_the_next_argument_whatever_it_is() {
        assert_eq!(norm(&["-name", "-flag"]).unwrap(), ["prog", "--name=-flag"]);
        assert_eq!(norm(&["-name", "--"]).unwrap(), ["prog", "--name=--"]);
        assert_eq!(norm(&["-name", ""]).unwrap(), ["prog", "--name="]);
        assert_eq!(
            norm(&["-name"]),
            Err(GoFlagError::NeedsArgument {
                name: "name".into()
            })
        );
    }

    #[test]
    fn values_keep_everything_after_the_first_equals() {
        assert_eq!(norm(&["-name=a=b=c"]).unwrap(), ["prog", "--name=a=b=c"]);
    }

    #[test]
    fn help_stops_the_rewrite() {
        assert_eq!(
            norm(&["-name", "x", "-help", "-bogus"]).unwrap(),
            ["prog", "--name=x", "--help"]
        );
        assert_eq!(norm(&["-h"]).unwrap(), ["prog", "-h"]);
        assert_eq!(norm(&["--h"]).unwrap(), ["prog", "-h"]);
    }

    #[test]
    fn errors_are_worded_as_in_go() {
        assert_eq!(
            norm(&["-bogus=1"]).unwrap_err().to_string(),
            "flag provided but not defined: -bogus"
        );
        assert_eq!(
            norm(&["-name"]).unwrap_err().to_string(),
            "flag needs an argument: -name"
        );
        assert_eq!(
            norm(&["---name"]).unwrap_err().to_string(),
            "bad flag syntax: ---name"
        );
        assert_eq!(
            norm(&["-=x"]).unwrap_err().to_string(),
            "bad flag syntax: -=x"
        );
    }

    #[test]
    fn positional_after_a_bare_bool_gets_the_equals_hint() {
        let err = norm(&["-flag", "false"]).unwrap_err();
        assert_eq!(
            err,
            GoFlagError::Unexpected {
                arg: "false".into(),
                after_bool: Some("-flag".into())
            }
        );
        assert!(err.to_string().contains("as in -flag=false"));
        // Only right after the bool flag.
        let err = norm(&["-flag", "-name", "x", "false"]).unwrap_err();
        assert_eq!(
            err,
            GoFlagError::Unexpected {
                arg: "false".into(),
                after_bool: None
            }
        );
    }

    #[test]
    fn subcommands_continue_with_their_own_flags() {
        assert_eq!(
            norm(&["-flag", "check", "-strict", "yes"]).unwrap(),
            ["prog", "--flag", "check", "--strict=yes"]
        );
        // The parent's flags are not the subcommand's.
        assert_eq!(
            norm(&["check", "-name", "x"]),
            Err(GoFlagError::Undefined {
                name: "name".into()
            })
        );
    }

    /// A subcommand with positional arguments lets flags and positionals mix, and `--` passes
    /// the rest through untouched.
    #[test]
    fn subcommand_positionals_mix_with_flags() {
        assert_eq!(
            norm(&["lint", "a", "-strict", "yes", "b"]).unwrap(),
            ["prog", "lint", "a", "--strict=yes", "b"]
        );
        assert_eq!(
            norm(&["lint", "--", "-strict", "x"]).unwrap(),
            ["prog", "lint", "--", "-strict", "x"]
        );
    }

    #[test]
    fn go_bool_spellings() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["yes", "on", "tRUE", "", " true"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_int_syntax() {
        for (text, n) in [
            ("0", 0),
            ("9000", 9000),
            ("+5", 5),
            ("-5", -5),
            ("0x1F", 31),
            ("0X1f", 31),
            ("0o17", 15),
            ("017", 15),
            ("0b101", 5),
            ("1_000", 1000),
            ("0x_1F", 31),
            ("0_7", 7),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(parse_go_int(text), Ok(n), "{text}");
        }
        for bad in [
            "", "-", "abc", "1e3", "1.0", "09", "0x", "_1", "1_", "1__0", "0x-1", " 1", "++1",
        ] {
            assert!(parse_go_int(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(
            parse_go_int("9223372036854775808")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
    }

    #[test]
    fn ranged_integers() {
        assert_eq!(parse_port("65535"), Ok(65535));
        assert_eq!(
            parse_port("65536").unwrap_err().to_string(),
            "65536 is out of range (0 to 65535)"
        );
        assert_eq!(parse_id("4294967295"), Ok(u32::MAX));
        assert!(parse_u64("-1").is_err());
        assert_eq!(parse_limit("-3"), Ok(0));
        assert_eq!(parse_limit("7"), Ok(7));
    }

    #[test]
    fn header_values() {
        assert_eq!(parse_header("A=b=c"), Ok("A=b=c".into()));
        assert!(parse_header("A").is_err());
        assert!(parse_header("A B=c").is_err());
    }
}
