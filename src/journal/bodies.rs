//! Request bodies of runs whose client waits for the outcome, kept beside the database in
//! segment files (`bodies/<n>.seg` in the state directory) instead of in their row.
//!
//! Such a run is recorded for the history only. In the database its body would be written twice
//! (to the WAL, then by the checkpoint) as a chain of overflow pages; in a segment it is written
//! once, with the other bodies of its commit in one vectored write.
//! Each segment holds the runs of one hook, so one hook's retained history never keeps another
//! hook's segments alive, and a segment is released whole once the last run it holds is pruned.
//! A released segment is kept as a spare (`bodies/spare-<n>`) for the next new segment: writing
//! over pages the file already has costs the kernel a copy, where a new file's pages must each be
//! allocated, and freed again at its deletion.
//! Writes are not synced, like the rows that point at them: a power cut may lose such a body,
//! and readers then say so instead of failing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, IoSlice, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// The directory of the segments, inside the state directory.
pub const DIR_NAME: &str = "bodies";

/// Bodies up to this size stay in their row: their share of a page costs less than a write.
pub const INLINE_MAX: usize = 2048;

/// A segment that reaches this size gets a successor.
const SEGMENT_SIZE: u64 = 8 << 20;

/// Released segments kept for reuse; more are deleted.
const MAX_SPARES: usize = 2;

/// Most buffers one `writev` takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Where a body is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRef {
    pub segment: u64,
    pub offset: u64,
    pub length: u64,
}

/// A body to write where [`Segments::reserve`] placed it.
#[derive(Debug)]
pub struct Append<'b> {
    /// The run whose row points here.
    pub run: &'b str,
    pub hook: &'b str,
    pub at: BodyRef,
    pub body: &'b [u8],
}

/// The segments as the journal writer sees them: each hook's current one, the ones it filled
/// since (until they are found unused), and spare files to reuse.
#[derive(Debug)]
pub struct Segments {
    dir: PathBuf,
    next: u64,
    /// Each hook's current segment and the bytes placed in it so far.
    current: HashMap<String, (u64, u64)>,
    /// Filled segments, by hook, to release once none of the hook's runs points into them.
    retired: HashMap<String, BTreeSet<u64>>,
    spares: Vec<PathBuf>,
}

impl Segments {
    /// Opens the directory in `state_dir` (created with mode 0700) and deletes the segments no
    /// run points into: left by a crash between a write and its commit, or by a release that did
    /// not happen. New bodies go to new segments.
    pub fn open(state_dir: &Path, referenced: &BTreeSet<u64>) -> io::Result<Self> {
        let dir = state_dir.join(DIR_NAME);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let mut last = referenced.last().copied().unwrap_or(0);
        let mut spares = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(number) = name.strip_prefix(SPARE_PREFIX) {
                // Numbered after its old segment: new segments are numbered past it, so a
                // release never renames onto a spare that is kept.
                last = last.max(number.parse().unwrap_or(0));
                spares.push(dir.join(&*name));
                continue;
            }
            let Some(segment) = segment_number(&name) else {
                continue;
            };
            last = last.max(segment);
            if !referenced.contains(&segment) {
                remove(&segment_path(&dir, segment));
            }
        }
        for extra in spares.drain(MAX_SPARES.min(spares.len())..) {
            remove(&extra);
        }
        Ok(Self {
            dir,
            next: last + 1,
            current: HashMap::new(),
            retired: HashMap::new(),
            spares,
        })
    }

    /// Places a body of `length` bytes at the end of the current segment of `hook`, starting a
    /// new segment when it would not fit. Nothing is written until [`Segments::write`].
    pub fn reserve(&mut self, hook: &str, length: u64) -> BodyRef {
        let full = self
            .current
            .get(hook)
            .is_some_and(|&(_, placed)| placed > 0 && placed + length > SEGMENT_SIZE);
        if full {
            self.retire(hook);
        }
        let (segment, placed) = self.current.entry(hook.to_owned()).or_insert_with(|| {
            self.next += 1;
            (self.next - 1, 0)
        });
        let offset = *placed;
        *placed += length;
        BodyRef {
            segment: *segment,
            offset,
            length,
        }
    }

    /// Writes the bodies of a commit, one vectored write per segment, and returns those that
    /// could not be written. A segment that fails is retired, so no later offset in it can
    /// point at bytes that were not written.
    pub fn write<'a, 'b>(&mut self, appends: &'a [Append<'b>]) -> Vec<&'a Append<'b>> {
        let mut by_segment: BTreeMap<u64, Vec<&Append<'b>>> = BTreeMap::new();
        for append in appends {
            by_segment
                .entry(append.at.segment)
                .or_default()
                .push(append);
        }
        let mut failed = Vec::new();
        for (segment, group) in by_segment {
            let mut slices: Vec<IoSlice<'_>> = group.iter().map(|a| IoSlice::new(a.body)).collect();
            let written = self
                .open_at(segment, group[0].at.offset)
                .and_then(|mut file| write_all_vectored(&mut file, &mut slices));
            if let Err(error) = written {
                tracing::warn!(
                    "cannot write {} request bodies to segment {segment}, keeping them in the \
                     journal: {error}",
                    group.len()
                );
                let hook = group[0].hook;
                if self.current.get(hook).is_some_and(|&(s, _)| s == segment) {
                    self.retire(hook);
                }
                failed.extend(group);
            }
        }
        failed
    }

    /// Opens `segment` for writing at `offset`. A new segment takes a spare file or a file that
    /// must not exist yet; an existing one must still hold what was written to it (not deleted
    /// or truncated behind hookwire's back).
    fn open_at(&mut self, segment: u64, offset: u64) -> io::Result<File> {
        let path = segment_path(&self.dir, segment);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).mode(0o600);
        let mut file = if offset == 0 {
            let reused = std::iter::from_fn(|| self.spares.pop())
                .any(|spare| std::fs::rename(spare, &path).is_ok());
            options.create_new(!reused).open(&path)?
        } else {
            let file = options.open(&path)?;
            let found = file.metadata()?.len();
            if found < offset {
                return Err(io::Error::other(format!(
                    "segment {segment} holds {found} bytes, {offset} were written to it"
                )));
            }
            file
        };
        file.seek(SeekFrom::Start(offset))?;
        Ok(file)
    }

    /// Ends the current segment of `hook`; it is released once no run points into it.
    fn retire(&mut self, hook: &str) {
        if let Some((segment, _)) = self.current.remove(hook) {
            self.retired
                .entry(hook.to_owned())
                .or_default()
                .insert(segment);
        }
    }

    /// The segments of `hook` that may have lost their last run: those `pruned` rows pointed
    /// into and those it filled before, minus its current one.
    pub fn candidates(&self, hook: &str, pruned: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
        let current = self.current.get(hook).map(|&(segment, _)| segment);
        let mut candidates: BTreeSet<u64> = pruned.into_iter().collect();
        candidates.extend(self.retired.get(hook).into_iter().flatten());
        candidates.retain(|segment| Some(*segment) != current);
        candidates
    }

    /// Releases segments found unused (once the commit that pruned their runs is durable): kept
    /// as spares up to [`MAX_SPARES`], deleted beyond.
    pub fn release(&mut self, unused: &[(String, u64)]) {
        for (hook, segment) in unused {
            let path = segment_path(&self.dir, *segment);
            if self.spares.len() < MAX_SPARES {
                let spare = self.dir.join(format!("{SPARE_PREFIX}{segment}"));
                match std::fs::rename(&path, &spare) {
                    Ok(()) => self.spares.push(spare),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => {
                        tracing::warn!("cannot keep {} as a spare: {error}", path.display());
                        remove(&path);
                    }
                }
            } else {
                remove(&path);
            }
            if let Some(retired) = self.retired.get_mut(hook) {
                retired.remove(segment);
            }
        }
    }
}

const SPARE_PREFIX: &str = "spare-";

/// `write_all` for a list of buffers, in as few `writev` calls as the kernel allows.
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        let limit = slices.len().min(IOV_MAX);
        match file.write_vectored(&slices[..limit]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
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

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!("deleted {}", path.display()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!("cannot delete {}: {error}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    /// Places and writes one body, as a commit of its own.
    fn append(segments: &mut Segments, hook: &str, body: &[u8]) -> Result<BodyRef, ()> {
        let at = segments.reserve(hook, body.len() as u64);
        let appends = [Append {
            run: "run",
            hook,
            at,
            body,
        }];
        let failed = segments.write(&appends);
        if failed.is_empty() { Ok(at) } else { Err(()) }
    }

    #[test]
    fn bodies_read_back_and_each_hook_fills_its_own_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let a1 = append(&mut segments, "a", b"first body").unwrap();
        let b1 = append(&mut segments, "b", b"other hook").unwrap();
        let a2 = append(&mut segments, "a", b"second").unwrap();
        let a3 = append(&mut segments, "a", b"third").unwrap();
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
    fn a_full_segment_is_retired_and_a_candidate_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let big = vec![b'x'; (SEGMENT_SIZE / 2) as usize + 1];
        let first = append(&mut segments, "a", &big).unwrap();
        let second = append(&mut segments, "a", &big).unwrap();
        assert_ne!(first.segment, second.segment, "the second did not fit");
        // The current segment is never a candidate, even when a pruned row pointed into it.
        let candidates = segments.candidates("a", [second.segment]);
        assert_eq!(candidates, BTreeSet::from([first.segment]));
        assert!(segments.candidates("b", []).is_empty());
        segments.release(&[("a".to_owned(), first.segment)]);
        assert!(read(dir.path(), first).unwrap_err().contains("lost"));
        assert!(segments.candidates("a", []).is_empty());
        assert_eq!(read(dir.path(), second).unwrap().len(), big.len());
    }

    #[test]
    fn opening_deletes_unreferenced_segments_and_numbers_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let kept = append(&mut segments, "a", b"kept").unwrap();
        let orphan = append(&mut segments, "b", b"orphan").unwrap();
        std::fs::write(dir.path().join(DIR_NAME).join("notes.txt"), "mine").unwrap();

        let mut reopened = Segments::open(dir.path(), &BTreeSet::from([kept.segment])).unwrap();
        assert_eq!(read(dir.path(), kept).unwrap(), b"kept");
        assert!(read(dir.path(), orphan).is_err());
        assert!(dir.path().join(DIR_NAME).join("notes.txt").exists());
        let fresh = append(&mut reopened, "a", b"new").unwrap();
        assert!(fresh.segment > orphan.segment);
    }

    #[test]
    fn a_segment_deleted_behind_hookwire_is_not_written_to_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let old = append(&mut segments, "a", b"old body").unwrap();
        std::fs::remove_file(segment_path(&dir.path().join(DIR_NAME), old.segment)).unwrap();
        // Recreated, the file would hand `old`'s offset to a newer body.
        assert!(append(&mut segments, "a", b"newer").is_err());
        let newer = append(&mut segments, "a", b"newer").unwrap();
        assert_ne!(newer.segment, old.segment);
        assert!(read(dir.path(), old).unwrap_err().contains("lost"));
        assert_eq!(read(dir.path(), newer).unwrap(), b"newer");
        assert!(segments.candidates("a", []).contains(&old.segment));
    }

    #[test]
    fn a_truncated_segment_reads_as_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let body = append(&mut segments, "a", b"0123456789").unwrap();
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

    #[test]
    fn a_released_segment_is_reused_by_the_next_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let big = vec![b'o'; (SEGMENT_SIZE / 2) as usize + 1];
        let old = append(&mut segments, "a", &big).unwrap();
        let old_path = segment_path(&dir.path().join(DIR_NAME), old.segment);
        let inode = std::fs::metadata(&old_path).unwrap().ino();
        append(&mut segments, "a", &big).unwrap();
        segments.release(&[("a".to_owned(), old.segment)]);
        assert!(read(dir.path(), old).unwrap_err().contains("lost"));

        let new = append(&mut segments, "b", b"new body").unwrap();
        let new_path = segment_path(&dir.path().join(DIR_NAME), new.segment);
        assert_eq!(std::fs::metadata(&new_path).unwrap().ino(), inode);
        assert_eq!(read(dir.path(), new).unwrap(), b"new body");
        // The spare's old bytes past the end are never handed out.
        let next = append(&mut segments, "b", b"next").unwrap();
        assert_eq!(next.offset, 8);
        assert_eq!(read(dir.path(), next).unwrap(), b"next");
    }

    #[test]
    fn a_commit_writes_each_segment_in_one_pass_whatever_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let bodies: Vec<Vec<u8>> = (0..IOV_MAX * 2 + 7)
            .map(|i| format!("body {i};").into_bytes())
            .collect();
        let appends: Vec<Append<'_>> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let hook = if i % 3 == 0 { "x" } else { "y" };
                Append {
                    run: "run",
                    hook,
                    at: segments.reserve(hook, body.len() as u64),
                    body,
                }
            })
            .collect();
        assert!(segments.write(&appends).is_empty());
        for append in &appends {
            assert_eq!(read(dir.path(), append.at).unwrap(), append.body);
        }
    }

    #[test]
    fn a_failed_write_returns_its_bodies_and_retires_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let first = append(&mut segments, "a", b"first").unwrap();
        std::fs::remove_file(segment_path(&dir.path().join(DIR_NAME), first.segment)).unwrap();
        let appends: Vec<Append<'_>> = ["one", "two"]
            .into_iter()
            .map(|body| Append {
                run: body,
                hook: "a",
                at: segments.reserve("a", body.len() as u64),
                body: body.as_bytes(),
            })
            .collect();
        let failed: Vec<&str> = segments.write(&appends).iter().map(|a| a.run).collect();
        assert_eq!(failed, ["one", "two"]);
        assert!(segments.candidates("a", []).contains(&first.segment));
        assert_ne!(segments.reserve("a", 1).segment, first.segment);
    }

    #[test]
    fn opening_keeps_spares_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let bodies = dir.path().join(DIR_NAME);
        std::fs::create_dir(&bodies).unwrap();
        for n in 0..MAX_SPARES + 2 {
            std::fs::write(bodies.join(format!("{SPARE_PREFIX}{n}")), "old").unwrap();
        }
        let mut segments = Segments::open(dir.path(), &BTreeSet::new()).unwrap();
        let spares = || {
            std::fs::read_dir(&bodies)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with(SPARE_PREFIX)
                })
                .count()
        };
        assert_eq!(spares(), MAX_SPARES);
        let body = append(&mut segments, "a", b"x").unwrap();
        assert!(
            body.segment > (MAX_SPARES + 1) as u64,
            "numbered past the spares"
        );
        assert_eq!(spares(), MAX_SPARES - 1);
        assert_eq!(read(dir.path(), body).unwrap(), b"x");
    }
}
