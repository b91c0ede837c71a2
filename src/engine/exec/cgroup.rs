//! A cgroup (v2) per run, where hookwire may make one: as children of its own cgroup when that
//! cgroup was delegated to it (systemd's `Delegate=yes` marks it with a `trusted.delegate` or
//! `user.delegate` attribute; a user's delegated cgroups are owned by the user). Every process
//! the run starts stays in its cgroup whatever it does to its session, group or environment,
//! so the cgroup finds the run's processes that the environment marker misses. Elsewhere (no
//! cgroup v2, a read-only `/sys/fs/cgroup`, a cgroup systemd manages) runs have none.
//!
//! A command is moved into its cgroup right after it starts, so what it forks in that first
//! moment may stay outside: the environment marker still finds those.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use nix::unistd::Pid;

/// The delegated cgroup directory run cgroups are made in, found once.
static PARENT: LazyLock<Option<PathBuf>> = LazyLock::new(|| {
    let parent = own_cgroup().filter(|directory| delegated(directory));
    match &parent {
        Some(directory) => tracing::debug!(
            "each run gets a cgroup of its own in {}",
            directory.display()
        ),
        None => tracing::debug!(
            "no delegated cgroup: a run's processes are found by the marker in their environment"
        ),
    }
    parent
});

/// One run's cgroup; removed when dropped.
#[derive(Debug)]
pub(super) struct RunCgroup {
    path: PathBuf,
    /// Where the processes left behind go when the cgroup is removed: hookwire's own cgroup.
    parent: PathBuf,
}

impl RunCgroup {
    /// A new cgroup named `name` for a run, where hookwire may make one.
    pub(super) fn create(name: &str) -> Option<Self> {
        Self::create_in(PARENT.as_deref()?, name)
    }

    pub(super) fn create_in(parent: &Path, name: &str) -> Option<Self> {
        let path = parent.join(name);
        match std::fs::create_dir(&path) {
            Ok(()) => Some(Self {
                path,
                parent: parent.to_owned(),
            }),
            Err(error) => {
                tracing::warn!("cannot create the cgroup {}: {error}", path.display());
                None
            }
        }
    }

    /// Moves `pid` into the cgroup (what it has forked by then stays outside).
    pub(super) fn adopt(&self, pid: Pid) {
        if let Err(error) = std::fs::write(self.path.join("cgroup.procs"), pid.to_string()) {
            tracing::warn!(
                "cannot move process {pid} into {}: {error}",
                self.path.display()
            );
        }
    }

    /// The processes in the cgroup (zombies are not).
    pub(super) fn processes(&self) -> Vec<Pid> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .map(|list| {
                list.lines()
                    .filter_map(|pid| pid.trim().parse().ok())
                    .map(Pid::from_raw)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// SIGKILL to every process in the cgroup, through `cgroup.kill` (Linux 5.14 and later),
    /// which also reaches what forks meanwhile. Without it, the caller's signals do.
    pub(super) fn kill(&self) {
        let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
    }
}

impl Drop for RunCgroup {
    /// Removes the cgroup. Processes still in it (a command's background processes, which
    /// outlive it) move to hookwire's own cgroup first.
    fn drop(&mut self) {
        for _ in 0..10 {
            let left = self.processes();
            if left.is_empty() && std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            for pid in left {
                let _ = std::fs::write(self.parent.join("cgroup.procs"), pid.to_string());
            }
        }
        tracing::warn!(
            "cannot remove the cgroup {}: processes keep entering it",
            self.path.display()
        );
    }
}

/// hookwire's own cgroup v2 directory, if the unified hierarchy is mounted.
pub(super) fn own_cgroup() -> Option<PathBuf> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership
        .lines()
        .find_map(|line| line.strip_prefix("0::"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        // ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER-OPTIONS
        let (fields, filesystem) = line.split_once(" - ")?;
        if !filesystem.starts_with("cgroup2 ") {
            return None;
        }
        let fields: Vec<&str> = fields.split(' ').collect();
        let (root, mount_point) = (fields.get(3)?, fields.get(4)?);
        let inside = Path::new(path).strip_prefix(root).ok()?;
        Some(Path::new(mount_point).join(inside))
    })
}

/// Whether `directory` was delegated to hookwire, and hookwire may make cgroups in it.
fn delegated(directory: &Path) -> bool {
    let marked = ["trusted.delegate", "user.delegate"].iter().any(|name| {
        let mut value = [0u8; 1];
        rustix::fs::getxattr(directory, *name, &mut value)
            .is_ok_and(|len| len == 1 && value[0] == b'1')
    });
    let euid = nix::unistd::geteuid();
    let owned = !euid.is_root()
        && std::fs::metadata(directory).is_ok_and(|metadata| metadata.uid() == euid.as_raw());
    (marked || owned)
        && nix::unistd::access(
            &directory.join("cgroup.procs"),
            nix::unistd::AccessFlags::W_OK,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_is_under_a_cgroup2_mount() {
        // Where there is a unified hierarchy, hookwire's cgroup directory exists in it.
        if let Some(directory) = own_cgroup() {
            assert!(directory.join("cgroup.procs").exists(), "{directory:?}");
        }
    }

    #[test]
    #[ignore = "creates cgroups: needs root and a writable cgroup v2 hierarchy"]
    fn a_cgroup_holds_and_ends_a_process_then_goes() {
        let parent = own_cgroup().expect("a cgroup v2 hierarchy");
        let group = RunCgroup::create_in(&parent, "hookwire-test").expect("a writable cgroup");
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        group.adopt(pid);
        assert_eq!(group.processes(), [pid]);
        group.kill();
        let _ = child.wait();
        assert!(group.processes().is_empty());
        drop(group);
        assert!(!parent.join("hookwire-test").exists());
    }
}
