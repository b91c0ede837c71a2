//! The payload value tree and adnanh's rules for reading it: dotted-name lookup, replacement
//! (for `parse-parameters-as-json`) and the string form of a value.
//!
//! Values are `serde_json::Value` built with `arbitrary_precision`, so numbers keep the digits
//! they were sent with, and objects are `BTreeMap`s, so keys are sorted as Go's encoder sorts them.

pub use serde_json::Value;

/// A JSON object: key-sorted, as Go marshals maps.
pub type Map = serde_json::Map<String, Value>;

/// Why a dotted name could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// adnanh's "parameter node not found": a missing key, an index out of range, a scalar
    /// descended into. Rules treat it as "not satisfied".
    #[error("parameter node not found: {0}")]
    NotFound(String),
    /// Descending into a JSON `null` (adnanh's "no parameters"): a hard error in rules.
    #[error("no parameters")]
    NoParameters,
}
