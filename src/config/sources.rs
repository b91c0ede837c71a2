//! What a `-hooks` value names: one file, a directory of hooks files, or a glob pattern, and
//! the files it stands for right now.
//!
//! The files are listed again at every reload, so files added to, removed from or renamed in a
//! directory are seen. Names starting with a dot are skipped: editors' swap and lock files
//! (`.hooks.yaml.swp`, `.#hooks.yaml`) and the `..data` links of a Kubernetes ConfigMap mount.

use std::path::{Path, PathBuf};

use super::{Diagnostic, LoadError};

/// The extensions a directory's hooks files have (any case).
pub const EXTENSIONS: [&str; 4] = ["json", "yaml", "yml", "toml"];

/// One `-hooks` value, as it stands on the disk now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HooksSource {
    /// A file, or a path that does not exist (yet) and is no pattern.
    File(PathBuf),
    /// Every hooks file directly in this directory, by name.
    Directory(PathBuf),
    /// Every file the pattern matches, by path.
    Pattern(String),
}

impl HooksSource {
    /// What `value` names. A path that exists is taken as it is, so a file whose name holds
    /// `*` or `[` still loads; otherwise a value with glob characters is a pattern.
    #[allow(clippy::result_large_err)] // `LoadError::Invalid` carries a whole `Diagnostic`.
    pub fn of(value: &Path) -> Result<Self, LoadError> {
        if value.is_dir() {
            return Ok(Self::Directory(value.to_path_buf()));
        }
        match value.to_str() {
            Some(text) if !value.exists() && text.contains(['*', '?', '[']) => {
                glob::Pattern::new(text).map_err(|error| LoadError::Pattern {
                    pattern: text.to_owned(),
                    position: error.pos + 1,
                    message: error.msg,
                })?;
                Ok(Self::Pattern(text.to_owned()))
            }
            _ => Ok(Self::File(value.to_path_buf())),
        }
    }

    /// The hooks files it stands for, sorted by name (a directory) or path (a pattern).
    #[allow(clippy::result_large_err)] // `LoadError::Invalid` carries a whole `Diagnostic`.
    pub fn files(&self) -> Result<Vec<PathBuf>, LoadError> {
        match self {
            Self::File(path) => Ok(vec![path.clone()]),
            Self::Directory(directory) => {
                let io = |source| LoadError::Io {
                    path: directory.clone(),
                    source,
                };
                let mut files = Vec::new();
                for entry in std::fs::read_dir(directory).map_err(io)? {
                    let path = entry.map_err(io)?.path();
                    if is_hooks_file_name(&path) && path.is_file() {
                        files.push(path);
                    }
                }
                files.sort();
                Ok(files)
            }
            Self::Pattern(pattern) => {
                let options = glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: true,
                    require_literal_leading_dot: true,
                };
                let matches =
                    glob::glob_with(pattern, options).map_err(|error| LoadError::Pattern {
                        pattern: pattern.clone(),
                        position: error.pos + 1,
                        message: error.msg,
                    })?;
                let mut files = Vec::new();
                for found in matches {
                    // A directory on the way that cannot be read hides its files; the
                    // other matches still load.
                    match found {
                        Ok(path) if path.is_file() => files.push(path),
                        Ok(_) => {}
                        Err(error) => tracing::warn!(
                            "{}: cannot look in {}: {}",
                            pattern,
                            error.path().display(),
                            error.error()
                        ),
                    }
                }
                files.sort();
                Ok(files)
            }
        }
    }

    /// The directory to watch for files appearing: the directory itself, or a pattern's
    /// fixed leading directory. A file's own directory is watched anyway.
    pub fn directory(&self) -> Option<PathBuf> {
        match self {
            Self::File(_) => None,
            Self::Directory(directory) => Some(directory.clone()),
            Self::Pattern(pattern) => {
                let fixed: PathBuf = Path::new(pattern)
                    .components()
                    .take_while(|part| {
                        !part
                            .as_os_str()
                            .to_str()
                            .is_some_and(|s| s.contains(['*', '?', '[']))
                    })
                    .collect();
                Some(if fixed.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    fixed
                })
            }
        }
    }

    /// A warning for a directory or pattern that holds no hooks file (a typo in the pattern,
    /// files without a hooks extension).
    pub fn nothing_found(&self) -> Option<Diagnostic> {
        let (file, message) = match self {
            Self::File(_) => return None,
            Self::Directory(directory) => (
                directory.clone(),
                "this directory holds no hooks file (*.json, *.yaml, *.yml or *.toml)",
            ),
            Self::Pattern(pattern) => (PathBuf::from(pattern), "this pattern matches no file"),
        };
        Some(Diagnostic {
            file,
            line: 0,
            column: 0,
            hook: None,
            field: None,
            message: message.into(),
            hint: Some(
                "check the path; names starting with a dot are skipped, and a directory is not searched below its top level"
                    .into(),
            ),
        })
    }
}

/// A name a directory's hooks file may have: a hooks extension, and no leading dot.
fn is_hooks_file_name(path: &Path) -> bool {
    let visible = path
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| !name.starts_with('.'));
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    visible && EXTENSIONS.iter().any(|e| extension.eq_ignore_ascii_case(e))
}

/// The hooks files of `values`, in order, each file once: the files of each value after those
/// of the values before it. A value that cannot be listed is an error, and the others still
/// count; a directory or pattern with no files is a warning.
pub fn expand(values: &[PathBuf]) -> Expansion {
    let mut expansion = Expansion::default();
    for value in values {
        let listed = HooksSource::of(value).and_then(|source| {
            let files = source.files()?;
            if files.is_empty() {
                expansion.warnings.extend(source.nothing_found());
            }
            Ok(files)
        });
        match listed {
            Ok(files) => {
                for file in files {
                    if !expansion.files.contains(&file) {
                        expansion.files.push(file);
                    }
                }
            }
            Err(error) => expansion.errors.push(error),
        }
    }
    expansion
}

/// The files some `-hooks` values stand for.
#[derive(Debug, Default)]
pub struct Expansion {
    pub files: Vec<PathBuf>,
    /// Values that could not be listed (an unreadable directory, a broken pattern).
    pub errors: Vec<LoadError>,
    /// Directories and patterns with no hooks file.
    pub warnings: Vec<Diagnostic>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_lists_its_hooks_files_by_name_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.yaml",
            "a.json",
            "c.TOML",
            "d.yml",
            "notes.txt",
            ".e.yaml",
            "f.yaml.dpkg-old",
        ] {
            std::fs::write(dir.path().join(name), "[]").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let source = HooksSource::of(dir.path()).unwrap();
        assert_eq!(source, HooksSource::Directory(dir.path().to_path_buf()));
        let names: Vec<_> = source
            .files()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.json", "b.yaml", "c.TOML", "d.yml"]);
    }

    #[test]
    fn a_pattern_matches_files_and_an_existing_name_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yaml", "a.yaml", "c.json", "[x].yaml"] {
            std::fs::write(dir.path().join(name), "[]").unwrap();
        }
        let pattern = format!("{}/*.yaml", dir.path().display());
        let source = HooksSource::of(Path::new(&pattern)).unwrap();
        assert_eq!(source.directory().as_deref(), Some(dir.path()));
        let files = source.files().unwrap();
        let names: Vec<_> = files.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["[x].yaml", "a.yaml", "b.yaml"]);
        let literal = dir.path().join("[x].yaml");
        assert_eq!(
            HooksSource::of(&literal).unwrap(),
            HooksSource::File(literal)
        );
    }

    #[test]
    fn a_broken_pattern_says_where() {
        let error = HooksSource::of(Path::new("/nonexistent/[ab.yaml")).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("/nonexistent/[ab.yaml"), "{text}");
        assert!(text.contains("character 14"), "{text}");
    }

    #[test]
    fn values_expand_in_order_each_file_once_and_empty_ones_warn() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::write(hooks.join("a.yaml"), "[]").unwrap();
        std::fs::write(hooks.join("b.yaml"), "[]").unwrap();
        let expansion = expand(&[
            hooks.join("b.yaml"),
            hooks.clone(),
            dir.path().join("empty"),
            dir.path().join("missing.yaml"),
        ]);
        assert_eq!(
            expansion.files,
            [
                hooks.join("b.yaml"),
                hooks.join("a.yaml"),
                dir.path().join("missing.yaml")
            ]
        );
        assert!(expansion.errors.is_empty());
        assert_eq!(expansion.warnings.len(), 1);
        assert_eq!(expansion.warnings[0].file, dir.path().join("empty"));
    }
}
