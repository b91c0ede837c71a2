//! The plan stage: a hook plus a request turned into the exact process invocation (argv, the
//! hook's environment variables, the files to write, standard input, the user), built once and without side effects, so
//! `hookwire explain` can show it and `exec` can run it.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;

use crate::config::Hook;
use crate::config::process::{RunAs, StdinSource};
use crate::pipeline::request::{Argument, Request};

/// adnanh's prefix for variables named after the argument (`HOOK_head_commit.id`).
const ENV_NAMESPACE: &str = "HOOK_";

/// Everything the process will get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `execute-command` exactly as written: the program to look up, and `argv[0]`.
    pub command: String,
    /// `command-working-directory`; `None` runs in hookwire's own directory.
    pub working_directory: Option<PathBuf>,
    /// `argv[1..]`: one entry per `pass-arguments-to-command` item, empty when not found.
    pub args: Vec<String>,
    /// Variables added after hookwire's own environment (`pass-environment-to-command`).
    pub env: Vec<(String, String)>,
    /// Temporary files to write before the start (`pass-file-to-command`).
    pub files: Vec<PlannedFile>,
    /// The sender's id of this delivery (the hook's `delivery-id`, else its signature preset's),
    /// passed as `HOOKWIRE_DELIVERY_ID`; set by the pipeline, which knows the preset.
    pub delivery_id: Option<String>,
    /// What the command reads on its standard input (`stdin`); `None` gives it `/dev/null`.
    pub stdin: Option<Bytes>,
    /// The user the command runs as (`run-as`); `None` is hookwire's own.
    pub run_as: Option<Arc<RunAs>>,
    /// Arguments that could not be resolved, for the log.
    pub problems: Vec<String>,
}

/// A `pass-file-to-command` entry: the file's contents and the variable that names its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub envname: String,
    pub contents: Vec<u8>,
}

/// The variable a `pass-environment-to-command` entry sets: `envname`, or the name kept
/// exactly as written, dots and case included, after `HOOK_` (adnanh).
pub fn env_name(argument: &Argument) -> String {
    if argument.envname.is_empty() {
        format!("{ENV_NAMESPACE}{}", argument.name)
    } else {
        argument.envname.clone()
    }
}

/// The variable a `pass-file-to-command` entry sets, also the prefix of the file's name:
/// `envname`, or unlike the environment list the upper-cased name after `HOOK_` (adnanh).
pub fn file_env_name(argument: &Argument) -> String {
    if argument.envname.is_empty() {
        format!("{ENV_NAMESPACE}{}", argument.name.to_uppercase())
    } else {
        argument.envname.clone()
    }
}

/// Builds the invocation for `hook` from `request`, as adnanh's `handleHook` does.
pub fn build(hook: &Hook, request: &Request) -> Plan {
    let mut problems = Vec::new();
    let mut resolve = |argument: &Argument| match argument.get(request) {
        Ok(value) => Some(value),
        Err(error) => {
            problems.push(error.to_string());
            None
        }
    };

    // A missing argument keeps its position as an empty string.
    let args = hook
        .pass_arguments_to_command
        .iter()
        .map(|argument| resolve(argument).unwrap_or_default())
        .collect();

    // A missing variable is left out.
    let env = hook
        .pass_environment_to_command
        .iter()
        .filter_map(|argument| {
            let value = resolve(argument)?;
            Some((env_name(argument), value))
        })
        .collect();

    let files = hook
        .pass_file_to_command
        .iter()
        .filter_map(|argument| {
            let value = resolve(argument)?;
            let envname = file_env_name(argument);
            let contents = if argument.base64decode {
                decode_base64_prefix(&value)
            } else {
                value.into_bytes()
            };
            Some(PlannedFile { envname, contents })
        })
        .collect();

    Plan {
        command: hook.execute_command.clone(),
        working_directory: (!hook.command_working_directory.is_empty())
            .then(|| PathBuf::from(&hook.command_working_directory)),
        args,
        env,
        files,
        delivery_id: None,
        stdin: hook.process.stdin.map(|source| stdin(source, request)),
        run_as: hook.process.run_as.clone(),
        problems,
    }
}

/// The bytes of `stdin`: the body as received, or the payload as `entire-payload` renders it.
fn stdin(source: StdinSource, request: &Request) -> Bytes {
    match source {
        StdinSource::Body => request.body.clone(),
        StdinSource::Payload => Bytes::from(
            request
                .payload
                .as_ref()
                .map_or_else(|| "null".to_owned(), super::request::value::map_to_go_json),
        ),
    }
}

/// Standard base64 as Go's `DecodeString`: on invalid input, the bytes decoded before the error
/// (whole 4-character groups) are kept; line breaks are ignored.
fn decode_base64_prefix(text: &str) -> Vec<u8> {
    let cleaned: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let engine = &base64::engine::general_purpose::STANDARD;
    match engine.decode(&cleaned) {
        Ok(bytes) => bytes,
        Err(error) => {
            let valid = match error {
                base64::DecodeError::InvalidByte(offset, _)
                | base64::DecodeError::InvalidLastSymbol { offset, .. } => offset,
                _ => cleaned.len(),
            };
            let whole_groups = valid / 4 * 4;
            engine.decode(&cleaned[..whole_groups]).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_keeps_what_decoded_before_an_error() {
        assert_eq!(decode_base64_prefix("aGVsbG8="), b"hello");
        assert_eq!(decode_base64_prefix("aGVs\nbG8="), b"hello");
        assert_eq!(decode_base64_prefix("aGVs!!!!"), b"hel");
        assert_eq!(decode_base64_prefix("!"), b"");
    }
}
