//! Dropping root privileges (`-setuid`/`-setgid`) and the pid file (`-pidfile`).
//!
//! [`drop_privileges`] must run after the listener is bound (so a port below 1024 can be
//! opened as root) and before the Tokio runtime starts. nix's `setgroups`/`setgid`/`setuid`
//! call libc, which applies the change to every thread of the process, but doing it while the
//! process still has one thread leaves nothing to reason about.
//!
//! [`PidFile`] follows adnanh's `internal/pidfile`: refuse to start when the file names a
//! running process, otherwise write the decimal pid with no newline, mode 0600, creating the
//! parent directories 0755.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::{Gid, Pid, Uid, getegid, geteuid, getgid, getuid, setgid, setgroups, setuid};

/// What `-setuid`/`-setgid` need.
const ROOT_HINT: &str = "-setuid and -setgid need hookwire to be started as root \
                         (or with the CAP_SETUID and CAP_SETGID capabilities)";

/// Why privileges could not be dropped or the pid file kept; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("cannot give {} to user {uid} and group {gid}: {source}", path.display())]
    HandOver {
        path: PathBuf,
        uid: u32,
        gid: u32,
        source: Errno,
    },
    #[error("cannot clear supplementary groups: {}; {ROOT_HINT}", describe(*.0))]
    Groups(Errno),
    #[error("cannot switch to group id {gid}: {}; {ROOT_HINT}", describe(*source))]
    Group { gid: Gid, source: Errno },
    #[error("cannot switch to user id {uid}: {}; {ROOT_HINT}", describe(*source))]
    User { uid: Uid, source: Errno },
    #[error(
        "switching to user id {uid} and group id {gid} left the process as uid {}/{} gid {}/{}",
        left.0,
        left.1,
        left.2,
        left.3
    )]
    HalfSwitched {
        uid: Uid,
        gid: Gid,
        /// The real and effective user, then group, ids the process was left with.
        left: (Uid, Uid, Gid, Gid),
    },
    #[error(
        "pid file {} names process {other}, which is running: is hookwire already \
         running? Stop it, or delete {} if that process is not hookwire",
        path.display(),
        path.display()
    )]
    PidFileTaken { path: PathBuf, other: u32 },
    #[error("cannot create the directory of pid file {}: {source}", path.display())]
    PidFileDirectory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write pid file {}: {source}", path.display())]
    PidFileWrite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read pid file {}: {source}", path.display())]
    PidFileRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove pid file {}: {source}", path.display())]
    PidFileRemove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Gives a file made before dropping privileges (the admin socket, the state directory) to the
/// user and group hookwire is about to become.
pub fn hand_over(path: &Path, uid: u32, gid: u32) -> Result<(), PrivilegeError> {
    nix::unistd::chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(|source| {
        PrivilegeError::HandOver {
            path: path.to_path_buf(),
            uid,
            gid,
            source,
        }
    })
}

/// Switches the whole process to `uid`/`gid` and clears the supplementary groups, as adnanh
/// 2.8.2 does on Linux. Order matters: groups and gid first, while still root. Running as
/// that user already (not root) is accepted as is, since there is nothing left to drop.
///
/// The message on error says what went wrong and what to do; the app exits 1 on it.
pub fn drop_privileges(uid: u32, gid: u32) -> Result<(), PrivilegeError> {
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    if !geteuid().is_root() && geteuid() == uid && getegid() == gid {
        return Ok(());
    }
    setgroups(&[]).map_err(PrivilegeError::Groups)?;
    setgid(gid).map_err(|source| PrivilegeError::Group { gid, source })?;
    setuid(uid).map_err(|source| PrivilegeError::User { uid, source })?;
    // Belt and braces: a half-applied switch must not go unnoticed.
    if getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid {
        return Err(PrivilegeError::HalfSwitched {
            uid,
            gid,
            left: (getuid(), geteuid(), getgid(), getegid()),
        });
    }
    Ok(())
}

fn describe(errno: Errno) -> String {
    format!("{} ({})", errno.desc(), errno)
}

/// A pid file written at start-up and removed at shutdown (by [`PidFile::remove`], or on
/// drop as a fallback). Signal-driven exits that bypass destructors must call `remove`.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
    removed: bool,
}

impl PidFile {
    /// Writes this process's pid to `path`. Refuses (naming the pid) when the file already
    /// holds the pid of another running process; a stale file is overwritten.
    pub fn create(path: &Path) -> Result<PidFile, PrivilegeError> {
        let pid = std::process::id();
        if let Some(other) = running_pid_in(path)
            && other != pid
        {
            return Err(PrivilegeError::PidFileTaken {
                path: path.to_path_buf(),
                other,
            });
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|source| PrivilegeError::PidFileDirectory {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        let write_failed = |source| PrivilegeError::PidFileWrite {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(write_failed)?;
        file.write_all(pid.to_string().as_bytes())
            .map_err(write_failed)?;
        Ok(PidFile {
            path: path.to_path_buf(),
            pid,
            removed: false,
        })
    }

    /// Where the pid file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the pid file, unless it no longer holds our pid (another instance took it
    /// over, and it is theirs now). A missing file is not an error.
    pub fn remove(mut self) -> Result<(), PrivilegeError> {
        self.removed = true;
        self.remove_if_ours()
    }

    fn remove_if_ours(&self) -> Result<(), PrivilegeError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) if text.trim() == self.pid.to_string() => {}
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(PrivilegeError::PidFileRead {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PrivilegeError::PidFileRemove {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if !self.removed {
            // Nothing useful to do with an error while unwinding or exiting.
            let _ = self.remove_if_ours();
        }
    }
}

/// The pid in `path` if the file exists, holds a positive decimal pid (surrounding
/// whitespace allowed, as adnanh trims it) and that process exists. Anything else — a missing
/// or unreadable file, garbage, a dead pid — is a stale file that may be overwritten.
fn running_pid_in(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    // kill(0 or negative) would address process groups, not a process.
    if pid <= 0 {
        return None;
    }
    match kill(Pid::from_raw(pid), None) {
        // EPERM: the process exists but belongs to another user; it is still running.
        Ok(()) | Err(Errno::EPERM) => u32::try_from(pid).ok(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The pid of a process that has exited and been reaped, so no process has it (barring
    /// pid reuse within the test, which needs a full wrap of the pid space).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    }

    #[test]
    fn writes_the_pid_without_newline_mode_0600_and_parent_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/sub/hookwire.pid");
        let pidfile = PidFile::create(&path).expect("created");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            std::process::id().to_string()
        );
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(dir.path().join("run"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode & !0o755, 0, "parents at most 0755: {dir_mode:o}");
        assert_eq!(pidfile.path(), path);
        pidfile.remove().expect("removed");
        assert!(!path.exists());
    }

    #[test]
    fn stale_pid_files_are_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.pid");
        for stale in [
            dead_pid().to_string(),
            "garbage".into(),
            "0".into(),
            "-1".into(),
            String::new(),
        ] {
            std::fs::write(&path, &stale).expect("write");
            let pidfile = PidFile::create(&path).unwrap_or_else(|e| panic!("{stale:?}: {e}"));
            assert_eq!(
                std::fs::read_to_string(&path).expect("read"),
                std::process::id().to_string()
            );
            drop(pidfile);
            assert!(!path.exists(), "dropping removes the file");
        }
    }

    #[test]
    fn a_running_process_is_refused_by_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.pid");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        // With a trailing newline, as other tools write pid files.
        std::fs::write(&path, format!("{}\n", child.id())).expect("write");
        let err = PidFile::create(&path).unwrap_err().to_string();
        child.kill().expect("kill");
        child.wait().expect("wait");
        assert!(
            err.contains(&format!("names process {}", child.id())),
            "{err}"
        );
        assert!(err.contains("already running"), "{err}");
        // Left untouched.
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            format!("{}\n", child.id())
        );
    }

    /// A container restarted with a leftover pid file often gets the same pid again.
    #[test]
    fn our_own_pid_is_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.pid");
        std::fs::write(&path, std::process::id().to_string()).expect("write");
        PidFile::create(&path)
            .expect("created")
            .remove()
            .expect("removed");
    }

    #[test]
    fn remove_leaves_a_file_taken_over_by_another_instance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.pid");
        let pidfile = PidFile::create(&path).expect("created");
        std::fs::write(&path, "1").expect("overwrite");
        pidfile.remove().expect("not an error");
        assert_eq!(std::fs::read_to_string(&path).expect("still there"), "1");
    }

    #[test]
    fn unwritable_location_is_reported() {
        let err = PidFile::create(Path::new("/proc/hookwire/h.pid"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/proc/hookwire/h.pid"), "{err}");
    }

    /// In a child process (privileges cannot be regained, and the test harness's other threads
    /// must not lose them): re-runs this test binary on `drop_privileges_child` with a marker
    /// variable.
    #[test]
    #[ignore = "needs root: switches to the user nobody"]
    fn drop_privileges_in_a_child_process() {
        assert!(geteuid().is_root(), "run this test as root");
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "ops::privilege::tests::drop_privileges_child",
                "--ignored",
                "--nocapture",
            ])
            .env("HOOKWIRE_TEST_DROP_CHILD", "1")
            .output()
            .expect("run child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "the child half of drop_privileges_in_a_child_process, which runs it"]
    fn drop_privileges_child() {
        // Run on its own (`--ignored`), it must not drop the privileges of the whole test binary.
        if std::env::var_os("HOOKWIRE_TEST_DROP_CHILD").is_none() {
            return;
        }
        const NOBODY: u32 = 65534;
        drop_privileges(NOBODY, NOBODY).expect("drop to nobody");
        assert_eq!((getuid().as_raw(), geteuid().as_raw()), (NOBODY, NOBODY));
        assert_eq!((getgid().as_raw(), getegid().as_raw()), (NOBODY, NOBODY));
        assert!(
            nix::unistd::getgroups()
                .expect("groups")
                .iter()
                .all(|g| g.as_raw() == NOBODY)
        );
        // Already that user: accepted as is.
        drop_privileges(NOBODY, NOBODY).expect("no-op");
        // Going back is impossible, and the message says why.
        let err = drop_privileges(0, 0).unwrap_err().to_string();
        assert!(
            err.contains("cannot clear supplementary groups") && err.contains("started as root"),
            "{err}"
        );
    }
}
