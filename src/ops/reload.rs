//! Hot reload: the shared [`HookStore`] snapshot, reloading from the hooks files (on SIGHUP,
//! SIGUSR1, or file changes with `-hotreload`), the `-secure` certificate (at the same
//! moments), and the directory watcher.
//!
//! adnanh watches each file, which loses the watch on atomic saves (rename over) and briefly
//! serves no hooks on truncating saves. We watch the parent directories, debounce, re-read by
//! path, and apply a new hook set only when a file's content changed and loads cleanly. A
//! `-hooks` directory or glob pattern is listed again at every reload, so files added, removed
//! and renamed are seen too.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

use notify::Watcher as _;

use crate::config::sources::HooksSource;
use crate::config::{self, HookSet, LoadError, LoadOptions, LoadedFile};
use crate::ops::metrics::Metrics;
use crate::ops::systemd;
use crate::server::tls::Certificate;

/// The hook set being served. A request takes the current snapshot once and keeps it, so a
/// reload never changes the hooks under a request in flight.
#[derive(Debug, Default)]
pub struct HookStore {
    current: RwLock<Arc<HookSet>>,
    /// Hook sets applied so far (`/-/health`'s `generation`): 1 after the first load, +1 per
    /// successful reload, so an operator can tell whether a reload took. Watched by whatever
    /// follows the hooks (the NATS store's pullers).
    generation: watch::Sender<u64>,
    /// When the hooks files were last read, and what failed then.
    last_reload: Mutex<Option<ReloadStatus>>,
}

/// The outcome of the last reload that read a file, for the console.
#[derive(Debug, Clone)]
pub struct ReloadStatus {
    pub at: std::time::SystemTime,
    /// Why files failed to load (their hooks stayed as before); empty when all loaded.
    pub errors: Vec<String>,
}

impl HookStore {
    pub fn new(hooks: HookSet) -> Self {
        Self {
            current: RwLock::new(Arc::new(hooks)),
            generation: watch::Sender::new(1),
            last_reload: Mutex::default(),
        }
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<HookSet> {
        // A poisoned lock only means a writer panicked after a complete swap; the value is whole.
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many hook sets have been applied (0 before the first).
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Sees each new hook set applied from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The last reload that read a file, if any.
    pub fn last_reload(&self) -> Option<ReloadStatus> {
        self.last_reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Swaps in `hooks`; returns the new generation.
    fn replace(&self, hooks: HookSet) -> u64 {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(hooks);
        self.generation.send_modify(|generation| *generation += 1);
        self.generation()
    }
}

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Start-up: a file that fails is skipped.
    Start,
    /// SIGHUP or SIGUSR1: every file is re-read.
    Signal,
    /// A change seen in a watched directory: only changed files are re-read.
    Watch,
}

/// The hooks files, what was last loaded from each, and the store they feed.
#[derive(Debug)]
pub struct Reloader {
    /// The `-hooks` values: files, directories and glob patterns.
    paths: Vec<PathBuf>,
    options: LoadOptions,
    store: Arc<HookStore>,
    /// Per file: the bytes last read and the hooks last loaded from them (served, or waiting
    /// for a duplicate id in another file to go).
    loaded: Mutex<HashMap<PathBuf, (Vec<u8>, LoadedFile)>>,
    /// Per file: the bytes last read, loaded or not, so a broken file is reported once.
    seen: Mutex<HashMap<PathBuf, Vec<u8>>>,
    /// Per `-hooks` value: the files it stood for at the last reload, kept when it cannot be
    /// listed for a moment.
    listed: Mutex<Vec<Vec<PathBuf>>>,
    /// Where reloads are counted, when serving.
    metrics: Option<Arc<Metrics>>,
}

/// Locks `mutex`; a poisoned lock only means a reload panicked, and the maps are whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Reloader {
    pub fn new(paths: Vec<PathBuf>, options: LoadOptions, store: Arc<HookStore>) -> Self {
        let listed = Mutex::new(vec![Vec::new(); paths.len()]);
        Self {
            paths,
            options,
            store,
            loaded: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            listed,
            metrics: None,
        }
    }

    /// Counts reloads, failures, hooks loaded and the generation in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn store(&self) -> &Arc<HookStore> {
        &self.store
    }

    /// The `-hooks` values as given.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The hooks files of every `-hooks` value, in load order, each once. A value that cannot
    /// be listed keeps the files it had (at start: none, and it is reported); a glob pattern
    /// that does not parse fails the start.
    #[allow(clippy::result_large_err)] // `LoadError::Invalid` carries a whole `Diagnostic`.
    fn list_files(
        &self,
        trigger: Trigger,
        attempt: &mut Attempt,
    ) -> Result<Vec<PathBuf>, LoadError> {
        let mut listed = lock(&self.listed);
        let mut files = Vec::new();
        for (value, previous) in self.paths.iter().zip(listed.iter_mut()) {
            match HooksSource::of(value).and_then(|source| Ok((source.files()?, source))) {
                Ok((found, source)) => {
                    if found.is_empty()
                        && trigger != Trigger::Watch
                        && let Some(warning) = source.nothing_found()
                    {
                        tracing::warn!("{warning}");
                    }
                    *previous = found;
                }
                Err(error @ LoadError::Pattern { .. }) if trigger == Trigger::Start => {
                    return Err(error);
                }
                Err(error) => {
                    tracing::error!("couldn't list hooks files: {error}");
                    attempt.fail(error.to_string());
                }
            }
            for file in previous.iter() {
                if !files.contains(file) {
                    files.push(file.clone());
                }
            }
        }
        Ok(files)
    }

    /// Re-reads the hooks files and swaps in the new hook set if anything changed and the
    /// result is consistent. A file that fails to load keeps its previous hooks; a duplicate id
    /// across files rejects the whole reload (and fails the start). Returns the number of
    /// hooks served afterwards.
    ///
    /// A reload asked for by a signal is announced to systemd (`RELOADING=1`, then `READY=1`);
    /// a watched change is not, as systemd did not ask for it.
    #[allow(clippy::result_large_err)] // `LoadError::Invalid` carries a whole `Diagnostic`.
    pub fn reload(&self, trigger: Trigger) -> Result<usize, LoadError> {
        if trigger == Trigger::Signal {
            systemd::reloading();
        }
        let mut attempt = Attempt::default();
        let result = self.reload_files(trigger, &mut attempt);
        if attempt.read || attempt.failed || trigger != Trigger::Watch {
            let mut errors = attempt.errors;
            errors.extend(result.as_ref().err().map(ToString::to_string));
            *self
                .store
                .last_reload
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ReloadStatus {
                at: std::time::SystemTime::now(),
                errors,
            });
        }
        if let Some(metrics) = &self.metrics {
            if trigger == Trigger::Signal || (trigger == Trigger::Watch && attempt.read) {
                metrics.reloaded(attempt.failed || result.is_err());
            }
            metrics.hooks_applied(self.store.load().len(), self.store.generation());
        }
        if trigger == Trigger::Signal {
            let runs = self.metrics.as_ref().map_or(0, |m| m.runs_in_flight());
            systemd::ready(&systemd::status_line(self.store.load().len(), runs));
        }
        result
    }

    #[allow(clippy::result_large_err)] // `LoadError::Invalid` carries a whole `Diagnostic`.
    fn reload_files(&self, trigger: Trigger, attempt: &mut Attempt) -> Result<usize, LoadError> {
        let mut loaded = lock(&self.loaded);
        let mut seen = lock(&self.seen);
        let files = self.list_files(trigger, attempt)?;
        let mut next = loaded.clone();
        let mut changed = trigger != Trigger::Watch;
        // Files removed from a directory, renamed, or no longer matching a pattern.
        seen.retain(|path, _| files.contains(path));
        next.retain(|path, _| {
            let listed = files.contains(path);
            if !listed {
                tracing::warn!("{} is gone; its hooks are no longer served", path.display());
                attempt.read = true;
                attempt.applied = true;
                changed = true;
            }
            listed
        });
        for path in &files {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let previous = loaded.get(path);
                    if trigger == Trigger::Watch && seen.get(path) == Some(&bytes) {
                        continue;
                    }
                    seen.insert(path.clone(), bytes.clone());
                    if trigger == Trigger::Watch
                        && bytes.is_empty()
                        && previous.is_some_and(|(_, file)| !file.hooks.is_empty())
                    {
                        // A truncating save shows an empty file before the new content; serving
                        // no hooks in between is adnanh's bug. An emptied file applies on SIGHUP.
                        tracing::warn!(
                            "{} is empty; keeping its hooks until it has content (send SIGHUP to apply an empty file)",
                            path.display()
                        );
                        continue;
                    }
                    tracing::info!("attempting to load hooks from {}", path.display());
                    attempt.read = true;
                    match config::compile::compile_file(path, &bytes, &self.options) {
                        Ok(file) => {
                            for warning in &file.warnings {
                                tracing::warn!("{warning}");
                            }
                            tracing::info!(
                                "loaded {} hook(s) from {}",
                                file.hooks.len(),
                                path.display()
                            );
                            next.insert(path.clone(), (bytes, file));
                            changed = true;
                            attempt.applied = true;
                        }
                        Err(error) => {
                            attempt.fail(format!("{}: {error}", path.display()));
                            let kept = previous.map_or(0, |(_, file)| file.hooks.len());
                            tracing::error!(
                                "couldn't load hooks from {}: {error}; keeping the {kept} hook(s) loaded before",
                                path.display()
                            );
                        }
                    }
                }
                Err(error)
                    if error.kind() == std::io::ErrorKind::NotFound
                        && trigger != Trigger::Start =>
                {
                    seen.remove(path);
                    if next.remove(path).is_some() {
                        attempt.read = true;
                        attempt.applied = true;
                        tracing::warn!(
                            "{} is gone; its hooks are no longer served",
                            path.display()
                        );
                        changed = true;
                    }
                }
                Err(error) => {
                    attempt.fail(format!("{}: {error}", path.display()));
                    tracing::error!("couldn't load hooks from file! {}: {error}", path.display());
                }
            }
        }
        // A signal reload in which every file failed applies nothing: the generation stays.
        if !changed || (trigger != Trigger::Start && !attempt.applied) {
            return Ok(self.store.load().len());
        }
        let merged = files
            .iter()
            .filter_map(|path| next.get(path).map(|(_, file)| file.clone()))
            .collect();
        let merged = HookSet::from_files(merged);
        // Kept even when the merge fails: fixing either file of a duplicate id then applies both.
        *loaded = next;
        match merged {
            Ok(hooks) => {
                let count = hooks.len();
                self.store.replace(hooks);
                if trigger != Trigger::Start {
                    tracing::info!("hooks reloaded: {count} hook(s) served");
                }
                Ok(count)
            }
            Err(error) if trigger == Trigger::Start => Err(error),
            Err(error) => {
                attempt.fail(error.to_string());
                tracing::error!("reload rejected, the previous hooks stay in place: {error}");
                Ok(self.store.load().len())
            }
        }
    }
}

/// What one reload did, for the metrics.
#[derive(Debug, Default)]
struct Attempt {
    /// A file was compiled anew or dropped.
    read: bool,
    /// A file failed to read or load, or the merged hooks were rejected.
    failed: bool,
    /// A file loaded or was dropped, so there is a new hook set to apply.
    applied: bool,
    /// What failed, for the console.
    errors: Vec<String>,
}

impl Attempt {
    fn fail(&mut self, error: String) {
        self.failed = true;
        self.errors.push(error);
    }
}

impl Reloader {
    /// The directories to watch: each `-hooks` directory and each pattern's fixed leading
    /// directory (for files added), each value's and each listed file's parent, and the same
    /// for their resolved targets when they are symlinks (Kubernetes ConfigMaps,
    /// release-directory swaps).
    fn watched_directories(&self) -> Vec<PathBuf> {
        let listed = lock(&self.listed).concat();
        let sources = self.paths.iter().filter_map(|value| {
            HooksSource::of(value)
                .ok()
                .and_then(|source| source.directory())
        });
        let mut directories = Vec::new();
        let mut add = |directory: PathBuf| {
            if !directories.contains(&directory) {
                directories.push(directory);
            }
        };
        for directory in sources {
            if let Ok(resolved) = std::fs::canonicalize(&directory) {
                add(resolved);
            }
            add(std::path::absolute(&directory).unwrap_or(directory));
        }
        let files = self
            .paths
            .iter()
            .filter(|value| !matches!(HooksSource::of(value), Ok(HooksSource::Pattern(_))));
        for directory in parent_directories(files.chain(&listed)) {
            add(directory);
        }
        directories
    }
}

/// Quiet period after the last change before the files are re-read.
const DEBOUNCE: Duration = Duration::from_millis(40);

/// The directories of `files`, and of their resolved targets when they are symlinks.
fn parent_directories<'p>(files: impl IntoIterator<Item = &'p PathBuf>) -> Vec<PathBuf> {
    let mut directories = Vec::new();
    for path in files {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let resolved = std::fs::canonicalize(&absolute).ok();
        for parent in [
            absolute.parent(),
            resolved.as_deref().and_then(std::path::Path::parent),
        ]
        .into_iter()
        .flatten()
        {
            if !directories.iter().any(|known: &PathBuf| known == parent) {
                directories.push(parent.to_path_buf());
            }
        }
    }
    directories
}

/// Re-reads the `-secure` certificate and key, logging the outcome; a pair that fails to load
/// leaves the served one in place.
pub fn reload_certificate(certificate: &Certificate) {
    match certificate.reload() {
        Ok(true) => tracing::info!(
            "reloaded the TLS certificate {}",
            certificate.cert_path().display()
        ),
        Ok(false) => tracing::debug!("the TLS certificate is unchanged"),
        Err(error) => tracing::error!(
            "cannot reload the TLS certificate: {error}; still serving the previous one"
        ),
    }
}

/// The directory watcher could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the file watcher: {0}")]
pub struct WatchError(#[from] notify::Error);

/// Watches the certificate's and key's directories and reloads the pair after changes.
pub fn watch_certificate(certificate: Arc<Certificate>) -> Result<(), WatchError> {
    let paths = certificate.paths();
    watch_directories(
        move || parent_directories(&paths),
        move || reload_certificate(&certificate),
    )
}

/// Watches the hooks files' directories and reloads after changes. The watches are in place
/// when this returns; the reloading runs on a task until the runtime stops.
pub fn watch(reloader: Arc<Reloader>) -> Result<(), WatchError> {
    let watched = reloader.clone();
    watch_directories(
        move || watched.watched_directories(),
        move || {
            let _ = reloader.reload(Trigger::Watch);
        },
    )
}

/// Watches `directories()` and calls `changed` (on a blocking thread) after each debounced
/// burst of changes, then watches the directories `directories()` gives now (a symlink may
/// point into a new one, a pattern may match in a new one).
fn watch_directories(
    directories: impl Fn() -> Vec<PathBuf> + Send + 'static,
    changed: impl Fn() + Send + Sync + 'static,
) -> Result<(), WatchError> {
    let changed = Arc::new(changed);
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Our own reads show up as Access events; reacting to them would loop forever.
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            let _ = events.send(());
        }
    })?;
    let mut watching = Vec::new();
    add_watches(&mut watcher, &mut watching, directories());
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            // Debounce: wait until the directories have been quiet for a moment.
            loop {
                match tokio::time::timeout(DEBOUNCE, changes.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let task = changed.clone();
            let _ = tokio::task::spawn_blocking(move || task()).await;
            // A symlink may now point into a new directory.
            add_watches(&mut watcher, &mut watching, directories());
        }
    });
    Ok(())
}

fn add_watches(
    watcher: &mut notify::RecommendedWatcher,
    watching: &mut Vec<PathBuf>,
    directories: Vec<PathBuf>,
) {
    for directory in directories {
        if watching.contains(&directory) {
            continue;
        }
        match watcher.watch(&directory, notify::RecursiveMode::NonRecursive) {
            Ok(()) => {
                tracing::info!("watching {} for changes", directory.display());
                watching.push(directory);
            }
            Err(error) => tracing::error!("cannot watch {}: {error}", directory.display()),
        }
    }
}
