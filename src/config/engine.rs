//! hookwire's execution extensions of a hook (`concurrency`, `concurrency-key`, `max-queue`,
//! `timeout`, `retry`), read from the hook object.

use super::Diagnostic;
use super::schema::{Object, Reader};

/// How a hook's runs are scheduled, timed out and retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineOptions {}

/// Reads the execution extensions of one hook object.
pub(crate) fn compile(
    _reader: &mut Reader<'_>,
    _object: &Object<'_>,
) -> Result<EngineOptions, Box<Diagnostic>> {
    Ok(EngineOptions::default())
}
