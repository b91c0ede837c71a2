//! Signature checks over the raw body: adnanh's `payload-hmac-*` and `scalr-signature` semantics,
//! every comparison in constant time. The expected value never leaves this module.

pub mod preset;
/// The hash behind an HMAC check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}
