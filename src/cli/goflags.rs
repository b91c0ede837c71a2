//! Go `flag`-package compatibility: single-dash long flags and Go's boolean values.

use std::ffi::OsString;

/// Go's `strconv.ParseBool`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("parse error: invalid boolean value {value:?}")),
    }
}

/// Rewrites `-name` / `-name=value` into `--name...` for the long flags of `C`.
pub fn normalize<C: clap::CommandFactory>(args: Vec<OsString>) -> Vec<OsString> {
    let command = C::command();
    let longs: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest {
            out.push(arg);
            continue;
        }
        if let Some(s) = arg.to_str()
            && let Some(body) = s.strip_prefix('-')
            && !body.starts_with('-')
        {
            let name = body.split('=').next().unwrap_or(body);
            if name.len() > 1 && longs.iter().any(|l| l == name) {
                out.push(OsString::from(format!("-{s}")));
                continue;
            }
        }
        if arg == "--" {
            rest = true;
        }
        out.push(arg);
    }
    out
}
