//! The state directory and its database file, set up the same way by the journal and the
//! dedupe table.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The database's file name inside the state directory.
pub const FILE_NAME: &str = "hookwire.db";

/// Sets up the state directory and its database file (`hookwire.db`, shared by the run journal
/// and the dedupe table) for the owner only: the directory, when missing, is created with mode
/// 0700; the file is created with mode 0600 before SQLite opens it, so it is never readable by
/// others, not even briefly (SQLite gives its -wal and -shm files the same mode). An existing
/// file readable by others is made 0600: it holds request bodies. Returns the file's path.
pub fn prepare_database(state_dir: &Path) -> std::io::Result<PathBuf> {
    let path = state_dir.join(FILE_NAME);
    let context = |what: String| {
        move |error: std::io::Error| std::io::Error::new(error.kind(), format!("{what}: {error}"))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(context(format!("cannot create {}", state_dir.display())))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(context(format!("cannot create {}", path.display())))?;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(context(format!("cannot chmod 600 {}", path.display())))?;
        tracing::warn!(
            "{} was readable by others (mode {mode:o}); it holds request bodies: made it 0600",
            path.display()
        );
    }
    Ok(path)
}
