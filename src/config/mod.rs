//! The hooks file: reading (YAML, JSON, TOML; optional Go template), compiling into domain types
//! (regexes, CIDRs, rules), and the immutable [`HookSet`] snapshot the server shares.
//!
//! `schema` mirrors the file's keys exactly; `compile` turns it into [`Hook`]s; `format` reads the
//! bytes with adnanh's quirks (YAML 1.1 plain scalars, JSON read as YAML, last duplicate key wins).

pub mod compile;
pub mod format;
pub mod notify;
pub mod process;
pub mod scheduling;
pub mod schema;
mod secret;
pub mod security;
pub mod sources;
pub mod template;
pub mod yaml11;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::pipeline::request::json::Selection;
use crate::pipeline::request::{Argument, Source};
use crate::pipeline::rules::Rule;

/// One hook, compiled and ready to serve.
#[derive(Debug, Clone)]
pub struct Hook {
    pub id: String,
    pub execute_command: String,
    /// `command-working-directory`; empty means hookwire's own working directory.
    pub command_working_directory: String,
    pub response_message: String,
    pub response_headers: Vec<ResponseHeader>,
    /// `success-http-response-code` as written (0 = not set).
    pub success_http_response_code: u16,
    /// `trigger-rule-mismatch-http-response-code` as written (0 = not set).
    pub trigger_rule_mismatch_http_response_code: u16,
    /// `incoming-payload-content-type`; empty means the request's Content-Type.
    pub incoming_payload_content_type: String,
    /// `http-methods`, trimmed and upper-cased; empty means the server default.
    pub http_methods: Vec<String>,
    pub include_command_output_in_response: bool,
    pub include_command_output_in_response_on_error: bool,
    pub pass_arguments_to_command: Vec<Argument>,
    pub pass_environment_to_command: Vec<Argument>,
    pub pass_file_to_command: Vec<Argument>,
    pub parse_parameters_as_json: Vec<Argument>,
    /// `None`: the hook always fires.
    pub trigger_rule: Option<Rule>,
    pub trigger_signature_soft_failures: bool,
    /// hookwire's scheduling extensions (`concurrency`, `timeout`, `retry`, ...).
    pub scheduling: scheduling::Scheduling,
    /// hookwire's security extensions (`signature`, `dedupe`, `rate-limit`, ...).
    pub security: security::SecurityOptions,
    /// hookwire's process extensions (`stdin`, `exit-code-status`, `run-as`).
    pub process: process::ProcessOptions,
    /// `notify`: what to tell, and whom, when a run ends.
    pub notify: Vec<notify::Notification>,
    /// The file this hook was loaded from.
    pub source: Arc<Path>,
    /// The top-level payload keys the hook reads (computed at load, see [`Hook::arguments`]).
    pub payload_selection: Selection,
}

impl Hook {
    /// Every argument object of the hook: rule parameters, the pass-* lists,
    /// parse-parameters-as-json and the extensions' arguments.
    pub fn arguments(&self) -> Vec<&Argument> {
        let mut arguments: Vec<&Argument> = self
            .pass_arguments_to_command
            .iter()
            .chain(&self.pass_environment_to_command)
            .chain(&self.pass_file_to_command)
            .chain(&self.parse_parameters_as_json)
            .chain(&self.security.delivery_id)
            .chain(&self.scheduling.concurrency_key)
            .collect();
        if let Some(rule) = &self.trigger_rule {
            rule.visit_parameters(&mut |argument| arguments.push(argument));
        }
        arguments
    }

    /// The payload keys worth parsing: all of them when the hook reads `entire-payload`, has
    /// a `template` value (whose names are only known when it runs), or gives the payload on
    /// standard input.
    pub fn payload_selection(&self) -> Selection {
        let arguments = self.arguments();
        let whole_on_stdin = self.process.stdin == Some(process::StdinSource::Payload);
        if whole_on_stdin
            || arguments
                .iter()
                .any(|a| matches!(a.source, Source::EntirePayload | Source::Template))
        {
            return Selection::All;
        }
        Selection::for_names(
            arguments
                .iter()
                .filter(|a| a.source == Source::Payload)
                .map(|a| a.name.as_str()),
        )
    }
}

/// A `response-headers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    pub name: String,
    pub value: String,
}

/// Options that change how a hooks file is read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-template`: render the file as a Go text/template first.
    pub template: bool,
}

/// A message about a place in a hooks file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when unknown.
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    pub hook: Option<String>,
    pub field: Option<String>,
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if let Some(hook) = &self.hook {
            write!(f, "hook `{hook}`: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "`{field}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Why a hooks file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax, template, type or validation error at a place in the file.
    #[error("{0}")]
    Invalid(Diagnostic),
    #[error("hook `{id}` is defined in both {} and {}; hook ids must be unique", first.display(), second.display())]
    DuplicateId {
        id: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// A `-hooks` glob pattern that does not parse.
    #[error("-hooks {pattern}: invalid glob pattern at character {position}: {message}")]
    Pattern {
        pattern: String,
        position: usize,
        message: &'static str,
    },
}

/// The hooks of one file, with what the loader noticed.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub hooks: Vec<Hook>,
    /// Unknown keys, invalid regexes or CIDRs, duplicate ids in the file, ...
    pub warnings: Vec<Diagnostic>,
}

/// The immutable set of hooks being served. Shared as `Arc<HookSet>`; a reload builds a new one.
#[derive(Debug, Default)]
pub struct HookSet {
    hooks: HashMap<String, Arc<Hook>>,
}

impl HookSet {
    /// Merges loaded files; an id present in two files is an error naming both.
    #[allow(clippy::result_large_err)] // `LoadError::Invalid` carries a whole `Diagnostic`.
    pub fn from_files(files: Vec<LoadedFile>) -> Result<Self, LoadError> {
        let mut hooks: HashMap<String, Arc<Hook>> = HashMap::new();
        for file in files {
            for hook in file.hooks {
                if let Some(first) = hooks.get(&hook.id) {
                    return Err(LoadError::DuplicateId {
                        id: hook.id.clone(),
                        first: first.source.to_path_buf(),
                        second: hook.source.to_path_buf(),
                    });
                }
                hooks.insert(hook.id.clone(), Arc::new(hook));
            }
        }
        Ok(Self { hooks })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Hook>> {
        self.hooks.get(id)
    }

    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Hooks sorted by id, for stable listings.
    pub fn sorted(&self) -> Vec<&Arc<Hook>> {
        let mut hooks: Vec<_> = self.hooks.values().collect();
        hooks.sort_by(|a, b| a.id.cmp(&b.id));
        hooks
    }
}

/// Reads and compiles one hooks file.
#[allow(clippy::result_large_err)] // `LoadError::Invalid` carries a whole `Diagnostic`.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<LoadedFile, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    compile::compile_file(path, &bytes, options)
}

#[cfg(test)]
mod selection_tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_payload_selection_covers_every_argument_site() {
        let yaml = r#"
- id: selective
  execute-command: /bin/true
  pass-arguments-to-command: [{source: payload, name: head_commit.id}]
  pass-environment-to-command: [{source: payload, name: env_key}]
  concurrency: queue
  concurrency-key: {source: payload, name: branch.name}
  trigger-rule:
    not: {match: {type: value, value: x, parameter: {source: payload, name: ref}}}
- id: everything
  execute-command: /bin/true
  pass-arguments-to-command: [{source: entire-payload}]
- id: wildcard
  execute-command: /bin/true
  pass-arguments-to-command: [{source: payload, name: commits.*.modified.*}]
- id: templated
  execute-command: /bin/true
  pass-arguments-to-command: [{source: template, name: '{{ payload "a.b" }}'}]
"#;
        let file = compile::compile_file(
            Path::new("h.yaml"),
            yaml.as_bytes(),
            &LoadOptions::default(),
        )
        .expect("loads");
        let selection = &file.hooks[0].payload_selection;
        for key in ["head_commit", "env_key", "branch", "ref"] {
            assert!(selection.wants(key), "{key}");
        }
        assert!(!selection.wants("commits"));
        assert_eq!(file.hooks[1].payload_selection, Selection::All);
        // A `*` keeps the whole subtree from the first wildcard on.
        let wildcard = &file.hooks[2].payload_selection;
        assert_eq!(wildcard.child("commits"), Some(&Selection::All));
        assert!(!wildcard.wants("ref"));
        assert_eq!(file.hooks[3].payload_selection, Selection::All);
    }
}

/// Loading hooks files from text, for the unit tests of the config modules.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;

    use super::{Hook, LoadError, LoadOptions, LoadedFile, compile};

    /// The text compiled as `hooks.yaml`.
    #[allow(clippy::result_large_err)]
    pub(crate) fn load(text: &str) -> Result<LoadedFile, LoadError> {
        compile::compile_file(
            Path::new("hooks.yaml"),
            text.as_bytes(),
            &LoadOptions::default(),
        )
    }

    /// The first hook of the text, and the load's warnings.
    pub(crate) fn first_hook(text: &str) -> (Hook, Vec<String>) {
        let file = load(text).unwrap_or_else(|e| panic!("loads: {e}"));
        let warnings = file.warnings.iter().map(ToString::to_string).collect();
        (file.hooks[0].clone(), warnings)
    }

    /// The load error of the text.
    pub(crate) fn load_error(text: &str) -> String {
        match load(text) {
            Err(error) => error.to_string(),
            Ok(file) => panic!("expected an error, got {:?}", file.hooks[0]),
        }
    }
}
