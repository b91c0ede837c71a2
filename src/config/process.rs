//! hookwire's extensions of what the command gets and what its exit means (`stdin`,
//! `exit-code-status`, `run-as`), read from the hook object.
//!
//! ```yaml
//! stdin: body                                       # body (raw bytes) | payload (parsed, as JSON)
//! exit-code-status: {0: 200, 3: 409, default: 500}  # the answer's status by the exit code
//! run-as: deploy                                    # a user name, or UID:GID; hookwire as root
//! ```
//!
//! A value that would change what runs or as whom (an unknown user, a status that is not one)
//! is a load error; a key that has no effect with the hook's answer is a warning.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use nix::unistd::{Gid, Uid, User};

use super::Diagnostic;
use super::format::{Kind, Node, Pos};
use super::schema::{self, Object, Reader};
use super::yaml11::Resolved;

/// What the command reads on its standard input (`stdin`); without it, `/dev/null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinSource {
    /// The request body exactly as received.
    Body,
    /// The parsed payload as JSON (as `entire-payload` renders it).
    Payload,
}

impl StdinSource {
    /// The names accepted in the hooks file, in the order of the enum.
    pub const NAMES: [&'static str; 2] = ["body", "payload"];

    /// The value's name as written in the hooks file.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// `exit-code-status`: the status of a waiting answer, chosen by the command's exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitCodeStatus {
    /// Exit code to status.
    pub codes: BTreeMap<u8, u16>,
    /// For every other end: another exit code, a signal, a timeout, a start failure.
    pub default: Option<u16>,
}

impl ExitCodeStatus {
    /// The status for a run that ended with `exit_code` (`None`: killed, or never started);
    /// `None` leaves the answer's status as without `exit-code-status`.
    pub fn status(&self, exit_code: Option<i32>) -> Option<u16> {
        exit_code
            .and_then(|code| u8::try_from(code).ok())
            .and_then(|code| self.codes.get(&code).copied())
            .or(self.default)
    }

    /// As the hooks file writes it: `{0: 200, 3: 409, default: 500}`.
    pub fn describe(&self) -> String {
        let entries = self
            .codes
            .iter()
            .map(|(code, status)| format!("{code}: {status}"))
            .chain(self.default.map(|status| format!("default: {status}")));
        format!("{{{}}}", entries.collect::<Vec<_>>().join(", "))
    }
}

/// `run-as`: the user the command runs as, resolved at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// Every group of the process (the primary one included): a user's groups from the group
    /// database, or only `gid` for the `UID:GID` form.
    pub groups: Vec<u32>,
    /// The user's name, for `USER` and `LOGNAME`; `None` for a uid without a passwd entry.
    pub name: Option<String>,
    /// The user's home directory, for `HOME` (`/` for a uid without a passwd entry).
    pub home: PathBuf,
    /// As written in the hooks file, for messages.
    pub written: String,
}

/// The extensions read here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessOptions {
    /// `stdin`: `None` gives the command `/dev/null`, as webhook does.
    pub stdin: Option<StdinSource>,
    pub exit_code_status: Option<ExitCodeStatus>,
    /// Shared with every plan of the hook.
    pub run_as: Option<Arc<RunAs>>,
}

/// Reads the process extensions of one hook object. `run-as` needs hookwire to run as root.
pub(crate) fn compile(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
) -> Result<ProcessOptions, Box<Diagnostic>> {
    compile_as(reader, object, Uid::effective().is_root())
}

/// [`compile`], told whether hookwire runs as root.
fn compile_as(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
    root: bool,
) -> Result<ProcessOptions, Box<Diagnostic>> {
    let mut options = ProcessOptions::default();
    if let Some(node) = object.present("stdin") {
        options.stdin = Some(stdin(reader, node, &object.path_of("stdin"))?);
    }
    if let Some(node) = object.present("exit-code-status") {
        let path = object.path_of("exit-code-status");
        options.exit_code_status = Some(exit_code_status(reader, node, &path)?);
        warn_unless_waiting(reader, object, node.pos, &path);
    }
    if let Some(node) = object.present("run-as") {
        let path = object.path_of("run-as");
        // As written: YAML 1.1 would read an unquoted `1000:1000` as a base-60 number.
        let written = node
            .as_scalar()
            .map(|scalar| scalar.text.clone())
            .ok_or_else(|| reader.type_error(node, &path, "a user name or UID:GID"))?;
        let user = run_as(&written, root).map_err(|(message, hint)| {
            Box::new(reader.diagnostic(node.pos, &path, message, Some(hint)))
        })?;
        options.run_as = Some(Arc::new(user));
    }
    Ok(options)
}

fn stdin(reader: &Reader<'_>, node: &Node, path: &str) -> Result<StdinSource, Box<Diagnostic>> {
    let name = reader.string_value(node, path)?;
    [StdinSource::Body, StdinSource::Payload]
        .into_iter()
        .find(|source| source.name() == name)
        .ok_or_else(|| {
            let hint = schema::did_you_mean(&name, StdinSource::NAMES.iter()).map_or_else(
                || {
                    "write `body` for the raw request body or `payload` for the parsed payload \
                     as JSON; without `stdin` the command reads nothing"
                        .to_owned()
                },
                |known| format!("did you mean `{known}`?"),
            );
            Box::new(reader.diagnostic(
                node.pos,
                path,
                format!("unknown stdin source `{name}`"),
                Some(hint),
            ))
        })
}

/// `{0: 200, 3: 409, default: 500}`: keys are exit codes 0-255 or `default`, values statuses.
fn exit_code_status(
    reader: &Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<ExitCodeStatus, Box<Diagnostic>> {
    let Kind::Map(entries) = &node.kind else {
        return Err(reader.type_error(node, path, "a mapping of exit codes to statuses"));
    };
    let mut mapping = ExitCodeStatus {
        codes: BTreeMap::new(),
        default: None,
    };
    for entry in entries {
        let entry_path = schema::join(path, &entry.key);
        let invalid = |pos: Pos, message: String, hint: &str| {
            Box::new(reader.diagnostic(pos, &entry_path, message, Some(hint.to_owned())))
        };
        let status = match entry.value.as_scalar().map(|scalar| scalar.value) {
            Some(Resolved::Int(status)) if (100..=599).contains(&status) => status as u16,
            _ => {
                let text = entry
                    .value
                    .as_scalar()
                    .map_or("a list or mapping", |s| &s.text);
                return Err(invalid(
                    entry.value.pos,
                    format!("`{text}` is not an HTTP status code"),
                    "use a status between 100 and 599, e.g. `3: 409`",
                ));
            }
        };
        if entry.key == "default" {
            mapping.default = Some(status);
            continue;
        }
        let code = entry.key.parse::<u8>().map_err(|_| {
            invalid(
                entry.key_pos,
                format!("`{}` is not an exit code", entry.key),
                "keys are exit codes from 0 to 255, or `default` for every other end",
            )
        })?;
        mapping.codes.insert(code, status);
    }
    Ok(mapping)
}

/// The status of an answer that does not wait for the command, or that streams the output, has
/// gone before the command ends.
fn warn_unless_waiting(reader: &mut Reader<'_>, object: &Object<'_>, pos: Pos, path: &str) {
    let set = |key: &str| {
        object
            .present(key)
            .and_then(Node::as_scalar)
            .is_some_and(|scalar| scalar.value == Resolved::Bool(true))
    };
    if !set("include-command-output-in-response") {
        reader.warn(
            pos,
            path,
            "has no effect: the answer does not wait for the command",
            Some("set `include-command-output-in-response: true` too".to_owned()),
        );
    } else if set("stream-output") {
        reader.warn(
            pos,
            path,
            "has no effect with `stream-output`: the status is sent before the command ends",
            Some("remove `stream-output`, or `exit-code-status`".to_owned()),
        );
    }
}

/// Resolves `run-as` (a user name, or `UID:GID`); the error is a message and a hint.
fn run_as(written: &str, root: bool) -> Result<RunAs, (String, String)> {
    if !root {
        return Err((
            format!(
                "cannot run the command as `{written}`: hookwire does not run as root, and only \
                 root may switch to another user"
            ),
            "start hookwire as root (it can still drop its own privileges with -setuid and \
             -setgid after loading), or remove `run-as`"
                .to_owned(),
        ));
    }
    if let Some((uid, gid)) = written.split_once(':') {
        let parse = |id: &str| id.trim().parse::<u32>().ok();
        let (Some(uid), Some(gid)) = (parse(uid), parse(gid)) else {
            return Err((
                format!("`{written}` is not a UID:GID pair"),
                "write numbers, e.g. `1000:1000`, or a user name".to_owned(),
            ));
        };
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        return Ok(RunAs {
            uid,
            gid,
            groups: vec![gid],
            home: user
                .as_ref()
                .map_or_else(|| PathBuf::from("/"), |user| user.dir.clone()),
            name: user.map(|user| user.name),
            written: written.to_owned(),
        });
    }
    let unknown = || {
        (
            format!("unknown user `{written}`"),
            "create the user first, or write a numeric `UID:GID`".to_owned(),
        )
    };
    let user = User::from_name(written)
        .map_err(|error| {
            (
                format!("cannot look up user `{written}`: {error}"),
                "check the user database (getent passwd)".to_owned(),
            )
        })?
        .ok_or_else(unknown)?;
    let name = std::ffi::CString::new(user.name.clone()).map_err(|_| unknown())?;
    let groups = nix::unistd::getgrouplist(&name, user.gid).map_err(|error| {
        (
            format!("cannot list the groups of user `{written}`: {error}"),
            "check the group database (getent group)".to_owned(),
        )
    })?;
    Ok(RunAs {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: groups.into_iter().map(Gid::as_raw).collect(),
        name: Some(user.name),
        home: user.dir,
        written: written.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{first_hook, load_error as error};

    fn options(text: &str) -> (ProcessOptions, Vec<String>) {
        let (hook, warnings) = first_hook(text);
        (hook.process, warnings)
    }

    const WAITING: &str = "execute-command: /bin/true, include-command-output-in-response: true";

    #[test]
    fn without_the_keys_nothing_changes() {
        let (options, warnings) = options("- {id: a, execute-command: /bin/true}");
        assert_eq!(options, ProcessOptions::default());
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn stdin_is_body_or_payload() {
        assert_eq!(
            options("- {id: a, stdin: body}").0.stdin,
            Some(StdinSource::Body)
        );
        assert_eq!(
            options("- {id: a, stdin: payload}").0.stdin,
            Some(StdinSource::Payload)
        );
        let message = error("- id: a\n  stdin: bodyy\n");
        assert!(message.contains("hooks.yaml:2:10"), "{message}");
        assert!(
            message.contains("unknown stdin source `bodyy`"),
            "{message}"
        );
        assert!(message.contains("did you mean `body`?"), "{message}");
        assert!(error("- {id: a, stdin: [body]}").contains("`stdin`"));
    }

    #[test]
    fn exit_code_status_maps_codes_and_a_default() {
        let (read, warnings) = options(&format!(
            "- {{id: a, {WAITING}, exit-code-status: {{0: 200, 3: 409, default: 500}}}}"
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        let mapping = read.exit_code_status.expect("set");
        assert_eq!(mapping.status(Some(0)), Some(200));
        assert_eq!(mapping.status(Some(3)), Some(409));
        assert_eq!(mapping.status(Some(7)), Some(500));
        assert_eq!(mapping.status(None), Some(500));
        assert_eq!(mapping.describe(), "{0: 200, 3: 409, default: 500}");
        let (read, _) = options(&format!(
            "- {{id: a, {WAITING}, exit-code-status: {{3: 409}}}}"
        ));
        assert_eq!(read.exit_code_status.expect("set").status(Some(1)), None);
    }

    #[test]
    fn bad_exit_codes_and_statuses_are_errors_at_their_line() {
        let message = error("- id: a\n  exit-code-status:\n    256: 500\n");
        assert!(message.contains("hooks.yaml:3:5"), "{message}");
        assert!(message.contains("`256` is not an exit code"), "{message}");
        let message = error("- id: a\n  exit-code-status:\n    1: 600\n");
        assert!(message.contains("hooks.yaml:3:8"), "{message}");
        assert!(
            message.contains("`600` is not an HTTP status code"),
            "{message}"
        );
        assert!(error("- {id: a, exit-code-status: {other: 500}}").contains("not an exit code"));
        assert!(error("- {id: a, exit-code-status: {1: \"409\"}}").contains("not an HTTP status"));
        assert!(error("- {id: a, exit-code-status: 500}").contains("a mapping of exit codes"));
    }

    #[test]
    fn exit_code_status_warns_when_the_answer_does_not_wait_or_streams() {
        let (_, warnings) = options("- {id: a, exit-code-status: {1: 409}}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("does not wait for the command")),
            "{warnings:?}"
        );
        let (_, warnings) = options(&format!(
            "- {{id: a, {WAITING}, stream-output: true, exit-code-status: {{1: 409}}}}"
        ));
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("no effect with `stream-output`")),
            "{warnings:?}"
        );
    }

    #[test]
    fn run_as_is_read_as_written() {
        let (read, _) = options("- {id: a, run-as: 0:0}");
        let user = read.run_as.expect("set");
        assert_eq!((user.uid, user.gid, user.written.as_str()), (0, 0, "0:0"));
        assert!(error("- {id: a, run-as: [root]}").contains("a user name or UID:GID"));
    }

    #[test]
    fn run_as_needs_root() {
        let (message, hint) = run_as("daemon", false).expect_err("not root");
        assert!(message.contains("does not run as root"), "{message}");
        assert!(hint.contains("start hookwire as root"), "{hint}");
    }

    #[test]
    fn run_as_reads_uid_gid_pairs() {
        let run_as = run_as("4321:8765", true).expect("a pair");
        assert_eq!(
            (run_as.uid, run_as.gid, run_as.groups),
            (4321, 8765, vec![8765])
        );
        let (message, _) = super::run_as("12:x", true).expect_err("not numbers");
        assert!(message.contains("not a UID:GID pair"), "{message}");
    }

    #[test]
    fn run_as_resolves_root_by_name() {
        let root = run_as("root", true).expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
        assert_eq!(root.name.as_deref(), Some("root"));
        let (message, _) = run_as("no-such-user-hookwire", true).expect_err("unknown");
        assert!(
            message.contains("unknown user `no-such-user-hookwire`"),
            "{message}"
        );
    }
}
