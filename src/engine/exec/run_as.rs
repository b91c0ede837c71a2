//! `run-as`: a command started as another user, with that user's supplementary groups.
//!
//! Switching users in the child between fork and exec needs `pre_exec` (unsafe, and hookwire
//! forbids unsafe code), and std's safe `CommandExt::uid`/`gid` cannot set supplementary
//! groups (`CommandExt::groups` is unstable): with `uid` set it clears them. So hookwire
//! starts itself again as a small hidden subcommand, `hookwire __exec-as UID GID GROUPS
//! PROGRAM ARGV0 ARGS...`, which switches its whole (single-threaded) process with nix's
//! `setgroups`/`setgid`/`setuid` and then replaces itself with the command through std's
//! `CommandExt::exec`. That exec also resets what a Rust process changes at start (SIGPIPE
//! ignored, the signal mask), so the command starts as any other would. The process keeps its
//! pid, process group, environment (with the run's marker) and pipes across both execs.
//! `/proc/self/exe` is started rather than a path, so an upgrade of the binary on disk cannot
//! put another program in between.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt as _;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::unistd::{Gid, Uid, getegid, geteuid, setgid, setgroups, setuid};

use crate::config::process::RunAs;

/// The hidden subcommand, checked for by `main` before the command line is parsed.
pub const SUBCOMMAND: &str = "__exec-as";

/// The program that switches users: this very binary.
const SELF: &str = "/proc/self/exe";

/// The exit status when the switch or the exec fails (as a shell's "cannot execute").
const CANNOT_EXECUTE: u8 = 126;

/// The program and arguments that run `program` (named `arg0`, with `args`) as `user`.
pub(super) fn wrap(
    user: &RunAs,
    program: &OsStr,
    arg0: &str,
    args: &[String],
) -> (&'static str, Vec<OsString>) {
    let groups: Vec<String> = user.groups.iter().map(u32::to_string).collect();
    let mut wrapped: Vec<OsString> = [
        SUBCOMMAND.to_owned(),
        user.uid.to_string(),
        user.gid.to_string(),
        groups.join(","),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    wrapped.push(program.to_owned());
    wrapped.push(arg0.into());
    wrapped.extend(args.iter().map(OsString::from));
    (SELF, wrapped)
}

/// The variables that tell the command whose it is, set before the hook's own.
pub(super) fn user_env(user: &RunAs) -> Vec<(&'static str, Option<OsString>)> {
    let name = user.name.as_ref().map(OsString::from);
    vec![
        ("HOME", Some(user.home.clone().into_os_string())),
        ("USER", name.clone()),
        ("LOGNAME", name),
    ]
}

/// The `__exec-as` subcommand: `UID GID GROUPS PROGRAM ARGV0 ARGS...` (GROUPS comma-separated,
/// possibly empty). Returns only on failure, with the reason on standard error, which is the
/// run's output.
pub fn exec_as(args: &[OsString]) -> ExitCode {
    let error = match switch_and_exec(args) {
        Ok(never) => match never {},
        Err(error) => error,
    };
    eprintln!("hookwire: run-as: {error}");
    ExitCode::from(CANNOT_EXECUTE)
}

/// Why `__exec-as` could not become the user and start the command.
#[derive(Debug, thiserror::Error)]
enum ExecAsError {
    #[error("usage: hookwire {SUBCOMMAND} UID GID GROUPS PROGRAM ARGV0 [ARGS...]")]
    Usage,
    #[error("{0:?} is not a numeric id")]
    NotNumeric(OsString),
    #[error("cannot set the groups {groups:?}: {source}")]
    Groups { groups: Vec<Gid>, source: Errno },
    #[error("cannot switch to group id {gid}: {source}")]
    Group { gid: Gid, source: Errno },
    #[error("cannot switch to user id {uid}: {source}")]
    User { uid: Uid, source: Errno },
    #[error("switching to {uid}:{gid} did not take")]
    DidNotTake { uid: Uid, gid: Gid },
    #[error("cannot start {}: {source}", program.to_string_lossy())]
    Exec {
        program: OsString,
        source: std::io::Error,
    },
}

fn switch_and_exec(args: &[OsString]) -> Result<std::convert::Infallible, ExecAsError> {
    let [uid, gid, groups, program, arg0, rest @ ..] = args else {
        return Err(ExecAsError::Usage);
    };
    let number = |text: &OsStr| {
        text.to_str()
            .and_then(|text| text.parse::<u32>().ok())
            .ok_or_else(|| ExecAsError::NotNumeric(text.to_owned()))
    };
    let (uid, gid) = (Uid::from_raw(number(uid)?), Gid::from_raw(number(gid)?));
    let groups = groups
        .to_str()
        .unwrap_or_default()
        .split(',')
        .filter(|group| !group.is_empty())
        .map(|group| number(OsStr::new(group)).map(Gid::from_raw))
        .collect::<Result<Vec<_>, _>>()?;
    // Groups and gid first, while still root.
    if let Err(source) = setgroups(&groups) {
        return Err(ExecAsError::Groups { groups, source });
    }
    setgid(gid).map_err(|source| ExecAsError::Group { gid, source })?;
    setuid(uid).map_err(|source| ExecAsError::User { uid, source })?;
    if geteuid() != uid || getegid() != gid {
        return Err(ExecAsError::DidNotTake { uid, gid });
    }
    let source = std::process::Command::new(program)
        .arg0(arg0)
        .args(rest)
        .exec();
    Err(ExecAsError::Exec {
        program: program.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_wrapped_command_line_names_ids_groups_program_and_argv() {
        let user = RunAs {
            uid: 1001,
            gid: 1002,
            groups: vec![1002, 27],
            name: Some("deploy".to_owned()),
            home: PathBuf::from("/home/deploy"),
            written: "deploy".to_owned(),
        };
        let (program, args) = wrap(
            &user,
            OsStr::new("/srv/deploy.sh"),
            "deploy.sh",
            &["x".into()],
        );
        assert_eq!(program, "/proc/self/exe");
        assert_eq!(
            args,
            [
                SUBCOMMAND,
                "1001",
                "1002",
                "1002,27",
                "/srv/deploy.sh",
                "deploy.sh",
                "x"
            ]
            .map(OsString::from)
        );
        let env = user_env(&user);
        assert_eq!(env[0], ("HOME", Some(OsString::from("/home/deploy"))));
        assert_eq!(env[1], ("USER", Some(OsString::from("deploy"))));
    }

    #[test]
    fn a_bad_helper_command_line_is_refused_before_any_switch() {
        let error = switch_and_exec(&[OsString::from("1")]).expect_err("too short");
        assert!(
            error
                .to_string()
                .starts_with("usage: hookwire __exec-as UID GID"),
            "{error}"
        );
        let args = ["x", "0", "", "/bin/true", "true"].map(OsString::from);
        let error = switch_and_exec(&args).expect_err("not a number");
        assert_eq!(error.to_string(), "\"x\" is not a numeric id");
    }
}
