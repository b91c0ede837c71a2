//! The execute stage: runs a [`Plan`] as a real process in its own process group, with the
//! hook's temporary files and the run's identity (`HOOKWIRE_*` variables), and captures stdout
//! and stderr interleaved through one pipe (as Go's `CombinedOutput` does), keeping at most a
//! fixed number of bytes (the tail).
//!
//! A command that exits on its own leaves its background processes running, as webhook does;
//! with `kill-leftovers` they are ended with it. A timeout or a stop request ends everything the
//! run started: its group, and the processes that left the group, found by the run's cgroup
//! ([`cgroup`]) and by the run id in their environment ([`RunProcesses`]): SIGTERM, then SIGKILL
//! after the grace period. hookwire is the subreaper of its commands' orphans
//! ([`become_subreaper`]) and reaps them in [`reap_orphans`], without ever reaping a child
//! Tokio waits for.
//!
//! A hook's `stdin` is written to the command's standard input by a task of its own, so a large
//! body never waits on the output pipe; a command that does not read it is not held up by it.
//! `run-as` starts the command as another user through [`run_as`].

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt as _;
use tokio::sync::oneshot;

use crate::engine::output::LiveOutput;
use crate::pipeline::plan::Plan;

mod cgroup;
mod run_as;

pub use run_as::{SUBCOMMAND as EXEC_AS_SUBCOMMAND, exec_as};
mod stage;

pub use stage::{AnswerPending, MAX_WAITING_STARTS, StartTicket, answers_pending, waiting_starts};

/// Variables of hookwire's own supervisor that a hook command must not inherit: those set in
/// hookwire's environment (which it never changes), looked up once.
static PRIVATE_ENV: LazyLock<Vec<&str>> = LazyLock::new(|| {
    ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]
        .into_iter()
        .filter(|name| std::env::var_os(name).is_some())
        .collect()
});

/// How long output may still arrive once the group is gone: a process that left the group can
/// hold the pipe open forever, and must not hold the run with it.
const DRAIN: Duration = Duration::from_millis(200);

/// How often a dying group is checked.
const POLL: Duration = Duration::from_millis(20);

/// The sender's delivery id, when it gave one.
const DELIVERY_ID_VARIABLE: &str = "HOOKWIRE_DELIVERY_ID";

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// The process exited with this code.
    Exited(i32),
    /// The process was killed by this signal.
    Signaled(i32),
    /// The process could not be started (not found, not executable, ...).
    NotStarted(String),
}

/// Why hookwire ended a run before the command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The timeout expired.
    TimedOut,
    /// The caller's stop future resolved (cancelled by a newer run, or shutting down).
    Stopped,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub termination: Termination,
    /// Set when hookwire killed the group before the command ended by itself.
    pub cut: Option<Cut>,
    /// Combined stdout and stderr, in write order; the tail when it exceeded the limit.
    pub output: Vec<u8>,
    /// Bytes dropped from the front of the output to stay within the limit.
    pub truncated: u64,
    pub duration: Duration,
}

impl Outcome {
    /// Exit status 0, and not cut short.
    pub fn succeeded(&self) -> bool {
        self.cut.is_none() && self.termination == Termination::Exited(0)
    }
}

/// Limits applied to a run.
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions {
    /// Most output bytes kept per run.
    pub output_limit: usize,
    /// `None` (or zero): no time limit.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// End what the command left running when it exits (`kill-leftovers`).
    pub kill_leftovers: bool,
}

/// Where a run's command is started.
#[derive(Debug)]
pub enum Start {
    /// On the calling thread: for a run whose client waits for it, whose answer follows the
    /// command anyway; a hand-off to a spawner would cost two thread wake-ups, a tenth of the
    /// server's CPU per run.
    Here,
    /// On a spawner thread ([`stage`]), so that a burst's answers do not wait behind its spawns;
    /// the ticket is given back once the command is spawned.
    Staged(StartTicket),
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            output_limit: 1 << 20,
            timeout: None,
            kill_grace: Duration::from_secs(10),
            kill_leftovers: false,
        }
    }
}

/// Which run, and which attempt of it, a process belongs to: told to the command in
/// `HOOKWIRE_*` variables. The run id also marks every process the run starts, so that the
/// ones that leave its process group can still be found and ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub run_id: String,
    pub hook_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// The variable that names the run in its command's environment, and marks its processes.
pub const RUN_ID_VARIABLE: &str = "HOOKWIRE_RUN_ID";

/// Runs `plan` until it ends, times out, or `stop` resolves; in the last two cases everything
/// the run started is terminated and the outcome says why ([`Outcome::cut`]). The command's
/// output goes to `output` as it comes (its followers see it live) and, its tail, into the
/// outcome.
pub async fn run_until(
    plan: &Plan,
    identity: &RunIdentity,
    options: ExecOptions,
    output: &LiveOutput,
    stop: impl Future<Output = ()>,
    start: Start,
) -> Outcome {
    let name = format!("hookwire-run-{}-{}", identity.run_id, identity.attempt);
    let cgroup = cgroup::RunCgroup::create(&name);
    run_in(plan, identity, options, output, stop, cgroup, start).await
}

/// [`run_until`] with the run's cgroup, if it has one.
async fn run_in(
    plan: &Plan,
    identity: &RunIdentity,
    options: ExecOptions,
    output: &LiveOutput,
    stop: impl Future<Output = ()>,
    cgroup: Option<cgroup::RunCgroup>,
    start: Start,
) -> Outcome {
    let started = Instant::now();
    let finish = |termination, cut, output, truncated| Outcome {
        termination,
        cut,
        output,
        truncated,
        duration: started.elapsed(),
    };
    let program = match resolve_program(&plan.command, plan.working_directory.as_deref()) {
        Ok(program) => program,
        Err(error) => {
            if plan.command.contains(' ') {
                tracing::warn!(
                    "`execute-command` is never split on spaces: use `pass-arguments-to-command` for the arguments of {:?}",
                    plan.command.split_whitespace().next().unwrap_or_default()
                );
            }
            return finish(
                Termination::NotStarted(error.to_string()),
                None,
                Vec::new(),
                0,
            );
        }
    };

    // Kept alive until the process has exited; dropping them deletes the files.
    let (_files, file_env) = write_files(plan);

    let invocation = Invocation {
        plan,
        program: &program,
        file_env,
        start,
    };
    let spawned = spawn_and_wait(invocation, identity, options, output, stop, cgroup);
    match spawned.await {
        Ok(ended) => finish(ended.termination, ended.cut, ended.output, ended.truncated),
        Err(error) => finish(
            Termination::NotStarted(format!("cannot start {}: {error}", program.display())),
            None,
            Vec::new(),
            0,
        ),
    }
}

/// What is started: the plan, its program found on the `PATH`, and the variables naming the
/// plan's files.
struct Invocation<'a> {
    plan: &'a Plan,
    program: &'a Path,
    file_env: Vec<(String, String)>,
    start: Start,
}

struct Ended {
    termination: Termination,
    cut: Option<Cut>,
    output: Vec<u8>,
    truncated: u64,
}

async fn spawn_and_wait(
    invocation: Invocation<'_>,
    identity: &RunIdentity,
    options: ExecOptions,
    output: &LiveOutput,
    stop: impl Future<Output = ()>,
    cgroup: Option<cgroup::RunCgroup>,
) -> std::io::Result<Ended> {
    let Invocation {
        plan,
        program,
        file_env,
        start,
    } = invocation;
    // One pipe for both streams keeps them interleaved in write order. Only our end is
    // non-blocking and registered with the runtime; the command's end stays as programs expect.
    let (reader, stdout) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    nix::fcntl::fcntl(&reader, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(std::io::Error::from)?;
    let reader = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(reader)?;
    let stderr = stdout.try_clone()?;

    let mut command = match &plan.run_as {
        Some(user) => {
            let (helper, args) = run_as::wrap(user, program.as_os_str(), &plan.command, &plan.args);
            let mut command = tokio::process::Command::new(helper);
            command.arg0("hookwire").args(args);
            for (name, value) in run_as::user_env(user) {
                match value {
                    Some(value) => command.env(name, value),
                    None => command.env_remove(name),
                };
            }
            command
        }
        None => {
            let mut command = tokio::process::Command::new(program);
            command.arg0(&plan.command).args(&plan.args);
            command
        }
    };
    command
        .envs(plan.env.iter().cloned())
        .envs(file_env)
        .stdin(if plan.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        // Its own group, so a whole tree can be signalled at once, and a Ctrl-C meant for
        // hookwire's terminal does not reach it.
        .process_group(0)
        // A backstop if the run is abandoned (runtime shut down): the leader at least dies.
        .kill_on_drop(true);
    // Only names that are set: any change to the environment makes every spawn copy it whole.
    for name in PRIVATE_ENV.iter() {
        command.env_remove(name);
    }
    // Last, so that no hook variable can replace them.
    command
        .env(RUN_ID_VARIABLE, &identity.run_id)
        .env("HOOKWIRE_HOOK_ID", &identity.hook_id)
        .env("HOOKWIRE_ATTEMPT", identity.attempt.to_string());
    match &plan.delivery_id {
        Some(delivery) => command.env(DELIVERY_ID_VARIABLE, delivery),
        None => command.env_remove(DELIVERY_ID_VARIABLE),
    };
    if let Some(directory) = &plan.working_directory {
        command.current_dir(directory);
    }
    let spawn = move || {
        // Spawned and registered while the orphan sweep is held off, so it never sees this
        // child unregistered; spawns do not wait for each other.
        let _spawning = SWEEP.read().unwrap_or_else(PoisonError::into_inner);
        let child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| std::io::Error::other("the started process has no id"))?;
        leaders().insert(pid);
        // Close our copies of the pipe's write end, or reading would never see end-of-file.
        drop(command);
        Ok((child, Leader(pid)))
    };
    let (mut child, leader) = match start {
        Start::Here => spawn()?,
        Start::Staged(ticket) => {
            let spawned = stage::on_spawner(spawn).await;
            // Spawned (or failed to): the next run may journal its start.
            drop(ticket);
            spawned?
        }
    };
    if let Some(cgroup) = &cgroup {
        cgroup.adopt(Pid::from_raw(leader.0));
    }
    let processes = RunProcesses::new(
        Pid::from_raw(leader.0),
        &identity.run_id,
        plan.run_as.as_ref().map(|user| user.uid),
        cgroup,
    );
    // Aborted once the run is over: a background process may hold the pipe without reading.
    let feeding = child
        .stdin
        .take()
        .zip(plan.stdin.clone())
        .map(|(stdin, bytes)| tokio::spawn(feed_stdin(stdin, bytes)));

    // The output is read alongside, in this same task: a task of its own would cost every run
    // a spawn and a cross-thread wake-up.
    let (stop_reading, reading_stopped) = oneshot::channel();
    let reading = read_tail(reader, output, reading_stopped);
    let lifetime = async {
        let time_limit = async {
            match options.timeout.filter(|t| !t.is_zero()) {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let ended: Result<std::io::Result<ExitStatus>, Cut> = tokio::select! {
            status = child.wait() => Ok(status),
            () = time_limit => Err(Cut::TimedOut),
            () = stop => Err(Cut::Stopped),
        };
        let (status, cut, terminated_at) = match ended {
            Ok(status) => (status, None, None),
            Err(cut) => {
                let terminated_at = Instant::now();
                processes.signal(Signal::SIGTERM);
                let grace = tokio::time::timeout(options.kill_grace, child.wait());
                let status = match grace.await {
                    Ok(status) => status,
                    Err(_) => {
                        processes.signal(Signal::SIGKILL);
                        child.wait().await
                    }
                };
                (status, Some(cut), Some(terminated_at))
            }
        };
        // Tokio has reaped the leader: from now on the group's leftovers are ours to reap.
        drop(leader);
        // A command that exits on its own keeps its background processes, as with webhook.
        if cut.is_some() || options.kill_leftovers {
            processes.end(options.kill_grace, terminated_at).await;
        }
        if let Some(feeding) = &feeding {
            feeding.abort();
        }
        (status, cut)
    };
    tokio::pin!(reading, lifetime);
    let mut read = None;
    let (status, cut) = loop {
        tokio::select! {
            ended = &mut lifetime => break ended,
            output = &mut reading, if read.is_none() => read = Some(output),
        }
    };
    // Output may still arrive for a moment once the group is gone (`DRAIN`).
    let (output, truncated) = match read {
        Some(output) => output,
        None => match tokio::time::timeout(DRAIN, &mut reading).await {
            Ok(output) => output,
            Err(_) => {
                let _ = stop_reading.send(());
                reading.await
            }
        },
    };
    let status = status?;
    let termination = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(signal)) => Termination::Signaled(signal),
        (None, None) => Termination::Exited(-1),
    };
    Ok(Ended {
        termination,
        cut,
        output,
        truncated,
    })
}

/// Writes `bytes` to the command's standard input and closes it. A command that exits or closes
/// its input without reading it all is no error (EPIPE): it only did not want the rest.
async fn feed_stdin(mut stdin: tokio::process::ChildStdin, bytes: bytes::Bytes) {
    use tokio::io::AsyncWriteExt as _;
    if let Err(error) = stdin.write_all(&bytes).await
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        tracing::warn!("cannot write the command's standard input: {error}");
    }
}

/// The pids of running leaders, which Tokio reaps itself: [`reap_orphans`] leaves them alone.
static LEADERS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Held shared while a child is spawned and registered, exclusively by an orphan sweep.
static SWEEP: RwLock<()> = RwLock::new(());

fn leaders() -> MutexGuard<'static, BTreeSet<i32>> {
    LEADERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A registered leader; unregistered when dropped, i.e. once Tokio has waited for it.
struct Leader(i32);

impl Drop for Leader {
    fn drop(&mut self) {
        leaders().remove(&self.0);
    }
}

fn signal_group(group: Pid, signal: Signal) {
    if let Err(error) = killpg(group, signal)
        && error != Errno::ESRCH
    {
        tracing::warn!("cannot send {signal} to process group {group}: {error}");
    }
}

/// Reaps what is left of the group (orphans reparented to hookwire) and tells whether any
/// member remains. Only this group's members are waited for: Tokio's children lead other groups.
fn group_gone(group: Pid) -> bool {
    loop {
        match waitpid(Pid::from_raw(-group.as_raw()), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {}
        }
    }
    killpg(group, None) == Err(Errno::ESRCH)
}

/// Everything a run started: its process group, and the processes that left the group
/// (`setsid`, double forks), found by its cgroup where it has one ([`cgroup`]) and by the
/// marker every one of them inherits in its environment, `HOOKWIRE_RUN_ID=<run id>`, as CI
/// servers find a build's strays. Without a cgroup, a process that clears its environment
/// before leaving the group is not found.
struct RunProcesses {
    group: Pid,
    /// `HOOKWIRE_RUN_ID=<run id>`, as it appears in `/proc/<pid>/environ`.
    marker: Vec<u8>,
    /// The users whose processes may carry the marker: hookwire's, and the `run-as` user's.
    uids: Vec<u32>,
    cgroup: Option<cgroup::RunCgroup>,
}

impl RunProcesses {
    fn new(
        group: Pid,
        run_id: &str,
        run_as: Option<u32>,
        cgroup: Option<cgroup::RunCgroup>,
    ) -> Self {
        Self {
            group,
            marker: format!("{RUN_ID_VARIABLE}={run_id}").into_bytes(),
            uids: std::iter::once(nix::unistd::geteuid().as_raw())
                .chain(run_as)
                .collect(),
            cgroup,
        }
    }

    /// Sends `signal` to the group, and once to each process of the cgroup or with the marker
    /// that is not in the group (a shell's `trap` would run twice).
    fn signal(&self, signal: Signal) {
        signal_group(self.group, signal);
        if signal == Signal::SIGKILL
            && let Some(cgroup) = &self.cgroup
        {
            cgroup.kill();
        }
        let mut strays: BTreeSet<Pid> = marked_processes(&self.marker, &self.uids)
            .into_iter()
            .collect();
        strays.extend(self.cgroup.iter().flat_map(cgroup::RunCgroup::processes));
        for pid in strays {
            if nix::unistd::getpgid(Some(pid)) == Ok(self.group) {
                continue;
            }
            if let Err(error) = nix::sys::signal::kill(pid, signal)
                && error != Errno::ESRCH
            {
                tracing::warn!("cannot send {signal} to process {pid}: {error}");
            }
        }
    }

    /// Whether no process of the run is left (reaping the group's zombies on the way).
    fn gone(&self) -> bool {
        group_gone(self.group)
            && self
                .cgroup
                .as_ref()
                .is_none_or(|cgroup| cgroup.processes().is_empty())
            && marked_processes(&self.marker, &self.uids).is_empty()
    }

    /// Ends every process of the run: SIGTERM (unless it was sent at `terminated_at`), then
    /// SIGKILL once the grace period since the SIGTERM is over.
    async fn end(&self, grace: Duration, terminated_at: Option<Instant>) {
        if self.gone() {
            return;
        }
        let terminated_at = match terminated_at {
            Some(at) => at,
            None => {
                tracing::info!(
                    "the command left processes behind (group {}); terminating them",
                    self.group
                );
                self.signal(Signal::SIGTERM);
                Instant::now()
            }
        };
        let kill_at = terminated_at + grace;
        while Instant::now() < kill_at {
            tokio::time::sleep(POLL.min(kill_at.saturating_duration_since(Instant::now()))).await;
            if self.gone() {
                return reap_zombie_children();
            }
        }
        for _ in 0..100 {
            // Again each round: a process may have forked since the last one.
            self.signal(Signal::SIGKILL);
            tokio::time::sleep(POLL).await;
            if self.gone() {
                return reap_zombie_children();
            }
        }
        tracing::warn!(
            "processes of group {} are still there two seconds after SIGKILL",
            self.group
        );
    }
}

/// The live processes of `uids` (hookwire's own user, and a `run-as` user), other than
/// hookwire itself, whose environment holds `marker` as one entry. Zombies have no environment
/// left, so they are not found.
fn marked_processes(marker: &[u8], uids: &[u32]) -> Vec<Pid> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own_pid = std::process::id();
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            (pid != own_pid && uids.contains(&entry.metadata().ok()?.uid())).then_some(pid)
        })
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|&byte| byte == 0)
                    .any(|entry| entry == marker)
            })
        })
        .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
        .collect()
}

/// Makes hookwire the reaper of its descendants' orphans (instead of init), so processes that
/// leave their group with `setsid` can still be reaped. Linux only; elsewhere a warning.
pub fn become_subreaper() {
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!("cannot become a child subreaper ({error}); orphans of commands go to init");
    }
}

/// How often orphans are looked for. They are rare (a process must leave its group, then its
/// parent must exit), and until then a zombie holds nothing but its pid.
const ORPHAN_SWEEP: Duration = Duration::from_secs(1);

/// Reaps hookwire's zombie children that no one waits for (orphans reparented to it), every
/// [`ORPHAN_SWEEP`]. A timer rather than SIGCHLD: every command's exit raises SIGCHLD, and
/// handling it cost each run more than this sweep costs in a second. Tokio waits for its own
/// children through pidfds (Linux 5.3 and later), so SIGCHLD keeps its default disposition and
/// costs nothing.
pub async fn reap_orphans() {
    let start = tokio::time::Instant::now() + ORPHAN_SWEEP;
    let mut sweeps = tokio::time::interval_at(start, ORPHAN_SWEEP);
    sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        sweeps.tick().await;
        // A few reads of /proc, which never wait for a disk: not worth a blocking thread.
        reap_zombie_children();
    }
}

/// One sweep: every zombie child of this process, except registered leaders.
fn reap_zombie_children() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    let zombies: Vec<i32> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<i32>>()
        })
        .filter(|pid| is_zombie(*pid))
        .collect();
    // The reads of /proc above hold no lock, so starts go on meanwhile; a child started and
    // already dead but not yet registered is a leader by the time the lock is ours.
    let _sweeping = SWEEP.write().unwrap_or_else(PoisonError::into_inner);
    let leaders = leaders();
    for pid in zombies {
        if leaders.contains(&pid) {
            continue;
        }
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which may itself contain spaces and parentheses.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Reads until end-of-file or until told to stop, into `output` (which keeps the tail and
/// shows it to followers); returns the kept tail and how many bytes were dropped before it.
async fn read_tail(
    mut reader: tokio::net::unix::pipe::Receiver,
    output: &LiveOutput,
    mut stop: oneshot::Receiver<()>,
) -> (Vec<u8>, u64) {
    // The first read gets a small buffer: many commands say little, and a large one costs
    // every run.
    let mut chunk = Vec::with_capacity(FIRST_READ);
    loop {
        chunk.clear();
        let read = tokio::select! {
            // Stop first: a process that left the group may write forever.
            biased;
            _ = &mut stop => {
                // What is already in the pipe was written before the stop: keep it.
                while let Ok(1..) = reader.try_read_buf(&mut chunk) {
                    output.push(&chunk);
                    chunk.clear();
                }
                break;
            }
            read = reader.read_buf(&mut chunk) => read,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                output.push(&chunk);
                if chunk.capacity() < READ_CHUNK {
                    chunk.reserve(READ_CHUNK);
                }
            }
        }
    }
    output.tail()
}

/// The room for each read from the pipe, and for the first.
const READ_CHUNK: usize = 16 * 1024;
const FIRST_READ: usize = 1024;

/// Writes the plan's files (mode 0600) in the working directory, else the temp directory, and
/// returns them with the variables naming their paths. A file that cannot be written is logged
/// and left out, as adnanh does. With `run-as`, the files belong to that user.
fn write_files(plan: &Plan) -> (Vec<tempfile::NamedTempFile>, Vec<(String, String)>) {
    if plan.files.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let directory = plan
        .working_directory
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let mut files = Vec::new();
    let mut env = Vec::new();
    for planned in &plan.files {
        let written = tempfile::Builder::new()
            .prefix(&planned.envname)
            .tempfile_in(&directory)
            .and_then(|mut file| {
                if let Some(user) = &plan.run_as {
                    nix::unistd::fchown(
                        file.as_file(),
                        Some(nix::unistd::Uid::from_raw(user.uid)),
                        Some(nix::unistd::Gid::from_raw(user.gid)),
                    )?;
                }
                file.write_all(&planned.contents)?;
                file.flush()?;
                Ok(file)
            });
        match written {
            Ok(file) => {
                let path = std::path::absolute(file.path()).unwrap_or_else(|_| file.path().into());
                env.push((planned.envname.clone(), path.to_string_lossy().into_owned()));
                files.push(file);
            }
            Err(error) => tracing::error!(
                "cannot write the file for {} in {}: {error}",
                planned.envname,
                directory.display()
            ),
        }
    }
    (files, env)
}

/// Finds the program as adnanh does with Go's `exec.LookPath`: a relative command is looked up
/// inside `command-working-directory` when one is set (no `$PATH`); otherwise a name with a
/// slash is taken as a path and a bare name is searched in `$PATH`. The result is absolute, so
/// it does not depend on the child's working directory.
pub fn resolve_program(
    command: &str,
    working_directory: Option<&Path>,
) -> Result<PathBuf, ProgramError> {
    let candidate = match working_directory {
        Some(directory) if !Path::new(command).is_absolute() => directory.join(command),
        _ => PathBuf::from(command),
    };
    if candidate.as_os_str().is_empty() {
        return Err(ProgramError::NoCommand);
    }
    if candidate.to_string_lossy().contains('/') {
        return match check_executable(&candidate) {
            Ok(()) => Ok(std::path::absolute(&candidate).unwrap_or(candidate)),
            Err(reason) => Err(ProgramError::NotExecutable {
                path: candidate,
                reason,
            }),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for directory in std::env::split_paths(&path) {
        let directory = if directory.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            directory
        };
        let full = directory.join(&candidate);
        if check_executable(&full).is_ok() {
            return Ok(std::path::absolute(&full).unwrap_or(full));
        }
    }
    Err(ProgramError::NotInPath(command.to_owned()))
}

/// Why a hook's command cannot be run, in Go's `exec.LookPath` words.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("exec: no command")]
    NoCommand,
    #[error("exec: {:?}: {reason}", path.display().to_string())]
    NotExecutable {
        path: PathBuf,
        #[source]
        reason: NotExecutable,
    },
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotInPath(String),
}

/// Why a path is not an executable file.
#[derive(Debug, thiserror::Error)]
pub enum NotExecutable {
    #[error("{0}")]
    Unreadable(#[from] std::io::Error),
    #[error("is a directory")]
    Directory,
    #[error("permission denied")]
    NoPermission,
}

fn check_executable(path: &Path) -> Result<(), NotExecutable> {
    let metadata = std::fs::metadata(path)?;
    if metadata.is_dir() {
        return Err(NotExecutable::Directory);
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(NotExecutable::NoPermission);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(command: &str, args: &[&str]) -> Plan {
        Plan {
            command: command.to_string(),
            working_directory: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![],
            files: vec![],
            delivery_id: None,
            stdin: None,
            run_as: None,
            problems: vec![],
        }
    }

    /// [`super::run_until`] as a new run of its own, started by a spawner, without a cgroup:
    /// the run's processes are found by the marker in their environment alone, wherever the
    /// tests run.
    async fn run(plan: &Plan, options: ExecOptions) -> Outcome {
        run_until(plan, &identity(), options, std::future::pending()).await
    }

    async fn run_until(
        plan: &Plan,
        identity: &RunIdentity,
        options: ExecOptions,
        stop: impl Future<Output = ()>,
    ) -> Outcome {
        let output = LiveOutput::new(options.output_limit);
        let start = Start::Staged(StartTicket::take().await);
        run_in(plan, identity, options, &output, stop, None, start).await
    }

    /// A new run of hook `test`: every run has its own id, which marks its processes.
    fn identity() -> RunIdentity {
        RunIdentity {
            run_id: uuid::Uuid::now_v7().to_string(),
            hook_id: "test".to_owned(),
            attempt: 1,
        }
    }

    #[test]
    fn lookup_follows_go_rules() {
        assert!(resolve_program("sh", None).unwrap().is_absolute());
        assert!(resolve_program("no-such-program-xyz", None).is_err());
        assert!(resolve_program("/bin/sh arg", None).is_err());
        // With a working directory, a relative name is looked up there only.
        assert!(resolve_program("sh", Some(Path::new("/"))).is_err());
        assert!(resolve_program("bin/sh", Some(Path::new("/"))).is_ok());
        assert!(resolve_program("/tmp", None).is_err());
    }

    /// A waiting client's command starts on the calling thread: the same run, the same
    /// outcome as one started by a spawner.
    #[tokio::test]
    async fn a_command_started_inline_ends_as_one_started_by_a_spawner() {
        let script = plan(
            "/bin/sh",
            &["-c", "echo \"$HOOKWIRE_HOOK_ID\"; echo err >&2; exit 3"],
        );
        let options = ExecOptions::default();
        let output = LiveOutput::new(options.output_limit);
        let here = run_in(
            &script,
            &identity(),
            options,
            &output,
            std::future::pending(),
            None,
            Start::Here,
        )
        .await;
        for outcome in [here, run(&script, options).await] {
            assert_eq!(outcome.termination, Termination::Exited(3));
            assert_eq!(outcome.output, b"test\nerr\n");
        }
    }

    #[tokio::test]
    async fn output_is_interleaved_and_capped() {
        let outcome = run(
            &plan(
                "/bin/sh",
                &["-c", "echo out; echo err >&2; echo out2; exit 3"],
            ),
            ExecOptions::default(),
        )
        .await;
        assert_eq!(outcome.termination, Termination::Exited(3));
        assert_eq!(outcome.output, b"out\nerr\nout2\n");

        let outcome = run(
            &plan(
                "/bin/sh",
                &["-c", "head -c 300000 /dev/zero | tr '\\0' a; printf END"],
            ),
            ExecOptions {
                output_limit: 1000,
                ..ExecOptions::default()
            },
        )
        .await;
        assert!(outcome.succeeded());
        assert_eq!(outcome.output.len(), 1000);
        assert!(outcome.output.ends_with(b"aEND"));
        assert_eq!(outcome.truncated, 300003 - 1000);
    }

    #[tokio::test]
    async fn signals_and_start_failures_are_reported() {
        let outcome = run(
            &plan("/bin/sh", &["-c", "kill -9 $$"]),
            ExecOptions::default(),
        )
        .await;
        assert_eq!(outcome.termination, Termination::Signaled(9));
        let outcome = run(&plan("/nonexistent/cmd", &[]), ExecOptions::default()).await;
        assert!(matches!(outcome.termination, Termination::NotStarted(_)));
    }
    /// Whether `pid` still runs. A killed stray may linger as a zombie of this test process,
    /// which has no reaper running as the server has: that one has ended.
    fn alive(pid: &str) -> bool {
        let pid = pid.trim();
        Path::new(&format!("/proc/{pid}")).exists() && !pid.parse().is_ok_and(is_zombie)
    }

    fn quick(timeout_ms: u64) -> ExecOptions {
        ExecOptions {
            timeout: Some(Duration::from_millis(timeout_ms)),
            kill_grace: Duration::from_millis(300),
            ..ExecOptions::default()
        }
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group_even_what_ignores_sigterm() {
        // As the server does: orphans of the group must come to us to be reaped.
        become_subreaper();
        let script =
            "trap '' TERM; (trap '' TERM; echo $$ >/dev/null; sleep 30) & echo $!; sleep 30";
        let started = Instant::now();
        let outcome = run(&plan("/bin/sh", &["-c", script]), quick(200)).await;
        assert_eq!(outcome.cut, Some(Cut::TimedOut));
        assert_eq!(outcome.termination, Termination::Signaled(9));
        assert!(!outcome.succeeded());
        // The timeout, then the grace period, then SIGKILL: not the 30 s of the sleeps.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let grandchild = String::from_utf8_lossy(&outcome.output).into_owned();
        assert!(!grandchild.trim().is_empty());
        assert!(!alive(&grandchild), "grandchild {grandchild} survived");
    }

    /// Waits up to five seconds for `pid` to be gone (ended and reaped).
    async fn gone(pid: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
        !alive(pid)
    }

    #[tokio::test]
    async fn a_timeout_ends_processes_that_left_the_group() {
        // As the server does: orphans of the group must come to us to be reaped.
        become_subreaper();
        let script = "setsid sleep 1000 >/dev/null 2>&1 & echo $!; sleep 30";
        // Time enough for the shell to start its escapee on a loaded machine.
        let outcome = run(&plan("/bin/sh", &["-c", script]), quick(2000)).await;
        assert_eq!(outcome.cut, Some(Cut::TimedOut));
        let escaped = String::from_utf8_lossy(&outcome.output).into_owned();
        assert!(!escaped.trim().is_empty());
        assert!(gone(&escaped).await, "escaped process {escaped} survived");
    }

    #[tokio::test]
    #[ignore = "creates cgroups: needs root and a writable cgroup v2 hierarchy"]
    async fn a_cgroup_finds_what_cleared_its_environment() {
        become_subreaper();
        let identity = identity();
        let parent = cgroup::own_cgroup().expect("a cgroup v2 hierarchy");
        let cgroup =
            cgroup::RunCgroup::create_in(&parent, &format!("hookwire-{}", identity.run_id));
        assert!(cgroup.is_some(), "a writable cgroup");
        // The pause lets hookwire move the shell into the cgroup before it forks.
        let script = "sleep 0.2; env -i setsid sleep 1000 >/dev/null 2>&1 & echo $!; sleep 30";
        let sleeper = plan("/bin/sh", &["-c", script]);
        let output = LiveOutput::new(1000);
        let outcome = run_in(
            &sleeper,
            &identity,
            quick(500),
            &output,
            std::future::pending(),
            cgroup,
            Start::Staged(StartTicket::take().await),
        )
        .await;
        assert_eq!(outcome.cut, Some(Cut::TimedOut));
        let escaped = String::from_utf8_lossy(&outcome.output).into_owned();
        assert!(gone(&escaped).await, "escaped process {escaped} survived");
        assert!(
            !parent
                .join(format!("hookwire-{}", identity.run_id))
                .exists()
        );
    }

    #[tokio::test]
    async fn kill_leftovers_ends_processes_that_left_the_group() {
        become_subreaper();
        let script = "setsid sleep 1000 >/dev/null 2>&1 & echo $!";
        let killing = ExecOptions {
            kill_leftovers: true,
            ..quick(0)
        };
        let outcome = run(&plan("/bin/sh", &["-c", script]), killing).await;
        assert!(outcome.succeeded());
        let escaped = String::from_utf8_lossy(&outcome.output).into_owned();
        assert!(gone(&escaped).await, "escaped process {escaped} survived");
    }

    #[tokio::test]
    async fn background_jobs_outlive_the_run_unless_it_kills_leftovers() {
        // As the server does: orphans of the group must come to us to be reaped.
        become_subreaper();
        let background = plan("/bin/sh", &["-c", "sleep 30 >/dev/null & echo $!"]);
        let outcome = run(&background, ExecOptions::default()).await;
        assert!(outcome.succeeded());
        let job = String::from_utf8_lossy(&outcome.output).into_owned();
        assert!(alive(&job), "background job {job} was ended");
        let _ = nix::sys::signal::kill(Pid::from_raw(job.trim().parse().unwrap()), Signal::SIGKILL);

        let killing = ExecOptions {
            kill_leftovers: true,
            ..ExecOptions::default()
        };
        let outcome = run(&background, killing).await;
        assert!(outcome.succeeded());
        let job = String::from_utf8_lossy(&outcome.output).into_owned();
        assert!(!alive(&job), "background job {job} survived");
        assert!(outcome.duration < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_stop_request_ends_the_group() {
        let (tx, rx) = oneshot::channel::<()>();
        let sleeper = plan("/bin/sh", &["-c", "echo before; sleep 30"]);
        let identity = identity();
        let run = run_until(&sleeper, &identity, quick(0), async {
            let _ = rx.await;
        });
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = tx.send(());
        };
        let (outcome, ()) = tokio::join!(run, stopper);
        assert_eq!(outcome.cut, Some(Cut::Stopped));
        assert_eq!(outcome.termination, Termination::Signaled(15));
        assert_eq!(outcome.output, b"before\n");
    }

    #[tokio::test]
    async fn an_escaped_process_holding_the_pipe_does_not_hold_the_run() {
        // As the server does: orphans of the group must come to us to be reaped.
        become_subreaper();
        // setsid leaves the group; its sleep keeps the pipe's write end open.
        let outcome = run(
            &plan("/bin/sh", &["-c", "setsid sleep 3 & echo done"]),
            ExecOptions::default(),
        )
        .await;
        assert!(outcome.succeeded());
        assert_eq!(outcome.output, b"done\n");
        assert!(
            outcome.duration < Duration::from_secs(2),
            "{:?}",
            outcome.duration
        );
    }
}
