//! The request path, from raw bytes to a plan: [`client_ip`] finds the client behind trusted
//! proxies and [`rate_limit`] spends its budget; then [`prepare`] checks the [`signature`] on
//! the raw body, parses the [`request`], evaluates the [`rules`] and builds the [`plan`].
//! Nothing here writes a response, touches the store or starts a process.

pub mod client_ip;
pub mod plan;
pub mod prepare;
pub mod rate_limit;
pub mod request;
pub mod rules;
pub mod signature;

pub use prepare::{Prepared, Verdict, prepare, prepare_with};
