//! What an operator sees and controls around the server: [`logging`] and one line per request
//! and run ([`request_log`]), [`metrics`], [`systemd`] notifications and socket activation,
//! hot [`reload`], and dropping root ([`privilege`]).

pub mod logging;
pub mod metrics;
pub mod privilege;
pub mod reload;
pub mod request_log;
pub mod systemd;
