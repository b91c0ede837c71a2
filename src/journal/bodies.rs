//! Request bodies of runs whose client waits for the outcome, kept beside the database in
//! append-only segment files (`bodies/<n>.seg` in the state directory) instead of in their row.
//!
//! Such a run is recorded for the history only. In the database its body would be written twice
//! (to the WAL, then by the checkpoint) as a chain of overflow pages; a segment takes it in one
//! append.
//! Each segment holds the runs of one hook, so one hook's retained history never keeps another
//! hook's segments alive, and a segment is deleted whole once the last run it holds is pruned.
//! Appends are not synced, like the rows that point at them: a power cut may lose such a body,
//! and readers then say so instead of failing.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// The directory of the segments, inside the state directory.
pub const DIR_NAME: &str = "bodies";

/// Bodies up to this size stay in their row: their share of a page costs less than a write.
pub const INLINE_MAX: usize = 2048;

/// A segment that reaches this size gets a successor.
const SEGMENT_SIZE: u64 = 8 << 20;

/// Where a body is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRef {
    pub segment: u64,
    pub offset: u64,
    pub length: u64,
}

/// The segments as the journal writer sees them: each hook's current one, and the ones it
/// filled since, until they are found unused.
#[derive(Debug)]
pub struct Segments {
    dir: PathBuf,
    next: u64,
    current: HashMap<String, Current>,
    /// Filled segments, by hook, to delete once none of the hook's runs points into them.
    retired: HashMap<String, BTreeSet<u64>>,
}

#[derive(Debug)]
struct Current {
    segment: u64,
    length: u64,
    /// Open while a commit appends; closed after it, so idle hooks hold no descriptor.
    file: Option<File>,
}

impl Segments {
    /// Opens the directory in `state_dir` (created with mode 0700) and deletes the segments no
    /// run points into: left by a crash between an append and its commit, or by a deletion
    /// that did not happen. New appends go to new segments.
    pub fn open(state_dir: &Path, referenced: &BTreeSet<u64>) -> io::Result<Self> {
        let dir = state_dir.join(DIR_NAME);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let mut last = referenced.last().copied().unwrap_or(0);
        for entry in std::fs::read_dir(&dir)? {
            let Some(segment) = segment_number(&entry?.file_name().to_string_lossy()) else {
                continue;
            };
            last = last.max(segment);
            if !referenced.contains(&segment) {
                remove(&dir, segment);
            }
        }
        Ok(Self {
            dir,
            next: last + 1,
            current: HashMap::new(),
            retired: HashMap::new(),
        })
    }

    /// Appends `body` to the current segment of `hook`. After a failure the segment is retired:
    /// the next body starts a new one, so no offset can point at bytes it did not write.
    pub fn append(&mut self, hook: &str, body: &[u8]) -> io::Result<BodyRef> {
        let length = body.len() as u64;
        let full = self
            .current
            .get(hook)
            .is_some_and(|current| current.length > 0 && current.length + length > SEGMENT_SIZE);
        if full {
            self.retire(hook);
        }
        let current = self.current.entry(hook.to_owned()).or_insert_with(|| {
            let segment = self.next;
            self.next += 1;
            Current {
                segment,
                length: 0,
                file: None,
            }
        });
        let appended = write_at_end(&self.dir, current, body);
        match appended {
            Ok(offset) => {
                current.length += length;
                Ok(BodyRef {
                    segment: current.segment,
                    offset,
                    length,
                })
            }
            Err(error) => {
                self.retire(hook);
                Err(error)
            }
        }
    }

    /// Ends the current segment of `hook`; it is deleted once no run points into it.
    fn retire(&mut self, hook: &str) {
        if let Some(current) = self.current.remove(hook) {
            self.retired
                .entry(hook.to_owned())
                .or_default()
                .insert(current.segment);
        }
    }

    /// Closes the files appended to; the segments stay current.
    pub fn close_files(&mut self) {
        for current in self.current.values_mut() {
            current.file = None;
        }
    }

    /// The segments of `hook` that may have lost their last run: those `pruned` rows pointed
    /// into and those it filled before, minus its current one.
    pub fn candidates(&self, hook: &str, pruned: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
        let current = self.current.get(hook).map(|c| c.segment);
        let mut candidates: BTreeSet<u64> = pruned.into_iter().collect();
        candidates.extend(self.retired.get(hook).into_iter().flatten());
        candidates.retain(|segment| Some(*segment) != current);
        candidates
    }

    /// Deletes segments found unused (once the commit that pruned their runs is durable).
    pub fn delete(&mut self, unused: &[(String, u64)]) {
        for (hook, segment) in unused {
            remove(&self.dir, *segment);
            if let Some(retired) = self.retired.get_mut(hook) {
                retired.remove(segment);
            }
        }
    }
}

/// Writes `body` at the end of `current`'s file and returns where it starts. A new segment's
/// file must not exist yet, and an open one must still hold what was written to it (not deleted
/// or truncated behind hookwire's back).
fn write_at_end(dir: &Path, current: &mut Current, body: &[u8]) -> io::Result<u64> {
    let file = match &mut current.file {
        Some(file) => file,
        None => {
            let mut options = std::fs::OpenOptions::new();
            options
                .append(true)
                .create_new(current.length == 0)
                .mode(0o600);
            let file = options.open(segment_path(dir, current.segment))?;
            let found = file.metadata()?.len();
            if found != current.length {
                return Err(io::Error::other(format!(
                    "segment {} holds {found} bytes, {} were written to it",
                    current.segment, current.length
                )));
            }
            current.file.insert(file)
        }
    };
    file.write_all(body)?;
    Ok(current.length)
}

/// Reads a body back, or says why it cannot.
pub fn read(state_dir: &Path, body: BodyRef) -> Result<Vec<u8>, String> {
    let path = segment_path(&state_dir.join(DIR_NAME), body.segment);
    let lost = |what: &dyn std::fmt::Display| {
        format!(
            "the stored request body is lost ({}: {what})",
            path.display()
        )
    };
    let mut file = File::open(&path).map_err(|error| lost(&error))?;
    file.seek(SeekFrom::Start(body.offset))
        .map_err(|error| lost(&error))?;
    let length = usize::try_from(body.length).map_err(|error| lost(&error))?;
    let mut bytes = Vec::with_capacity(length);
    file.take(body.length)
        .read_to_end(&mut bytes)
        .map_err(|error| lost(&error))?;
    if bytes.len() != length {
        return Err(lost(&format_args!(
            "{} of {length} bytes left",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:010}.seg"))
}

fn segment_number(file_name: &str) -> Option<u64> {
    file_name.strip_suffix(".seg")?.parse().ok()
}

fn remove(dir: &Path, segment: u64) {
    let path = segment_path(dir, segment);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::debug!("deleted {}", path.display()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!("cannot delete {}: {error}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_read_back_and_each_hook_fills_its_own_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let a1 = segments.append("a", b"first body").unwrap();
        let b1 = segments.append("b", b"other hook").unwrap();
        let a2 = segments.append("a", b"second").unwrap();
        segments.close_files();
        let a3 = segments.append("a", b"third").unwrap();
        assert_ne!(a1.segment, b1.segment);
        assert_eq!((a2.segment, a2.offset), (a1.segment, 10));
        assert_eq!((a3.segment, a3.offset), (a1.segment, 16));
        for (body, expected) in [(a1, "first body"), (b1, "other hook"), (a3, "third")] {
            assert_eq!(read(dir.path(), body).unwrap(), expected.as_bytes());
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(DIR_NAME))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_full_segment_is_retired_and_a_candidate_until_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let big = vec![b'x'; (SEGMENT_SIZE / 2) as usize + 1];
        let first = segments.append("a", &big).unwrap();
        let second = segments.append("a", &big).unwrap();
        assert_ne!(first.segment, second.segment, "the second did not fit");
        // The current segment is never a candidate, even when a pruned row pointed into it.
        let candidates = segments.candidates("a", [second.segment]);
        assert_eq!(candidates, BTreeSet::from([first.segment]));
        assert!(segments.candidates("b", []).is_empty());
        segments.delete(&[("a".to_owned(), first.segment)]);
        assert!(read(dir.path(), first).unwrap_err().contains("lost"));
        assert!(segments.candidates("a", []).is_empty());
        assert_eq!(read(dir.path(), second).unwrap().len(), big.len());
    }

    #[test]
    fn opening_deletes_unreferenced_segments_and_numbers_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let kept = segments.append("a", b"kept").unwrap();
        let orphan = segments.append("b", b"orphan").unwrap();
        segments.close_files();
        std::fs::write(dir.path().join(DIR_NAME).join("notes.txt"), "mine").unwrap();

        let mut reopened = Segments::open(dir.path(), &BTreeSet::from([kept.segment])).unwrap();
        assert_eq!(read(dir.path(), kept).unwrap(), b"kept");
        assert!(read(dir.path(), orphan).is_err());
        assert!(dir.path().join(DIR_NAME).join("notes.txt").exists());
        let fresh = reopened.append("a", b"new").unwrap();
        assert!(fresh.segment > orphan.segment);
    }

    #[test]
    fn a_segment_deleted_behind_hookwire_is_not_written_to_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let old = segments.append("a", b"old body").unwrap();
        segments.close_files();
        std::fs::remove_file(segment_path(&dir.path().join(DIR_NAME), old.segment)).unwrap();
        // Recreated, the file would hand `old`'s offset to a newer body.
        assert!(segments.append("a", b"newer").is_err());
        let newer = segments.append("a", b"newer").unwrap();
        assert_ne!(newer.segment, old.segment);
        assert!(read(dir.path(), old).unwrap_err().contains("lost"));
        assert_eq!(read(dir.path(), newer).unwrap(), b"newer");
        assert!(segments.candidates("a", []).contains(&old.segment));
    }

    #[test]
    fn a_truncated_segment_reads_as_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let body = segments.append("a", b"0123456789").unwrap();
        segments.close_files();
        let path = segment_path(&dir.path().join(DIR_NAME), body.segment);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(4)
            .unwrap();
        let error = read(dir.path(), body).unwrap_err();
        assert!(error.contains("4 of 10 bytes left"), "{error}");
    }
}
