//! systemd integration.
//!
//! Socket activation (`LISTEN_FDS`, as adnanh/webhook 2.8.2 reads it) is handled where
//! listeners are opened, in [`crate::server::listener`], with the `listenfd` crate. This module
//! will also carry the service notifications (`READY=1`, `RELOADING=1`, `STOPPING=1`,
//! `WATCHDOG=1` via `sd-notify`) once the app reports its state; for now it only answers
//! whether systemd passed sockets.

/// Whether systemd passed listening sockets to this process: `LISTEN_FDS` is a positive
/// number and `LISTEN_PID`, when set, is our pid (an inherited `LISTEN_FDS` meant for a parent
/// does not count). Reads the environment only; [`crate::server::listener::open`] consumes it.
pub fn listen_fds_present() -> bool {
    passed(
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn passed(listen_fds: Option<&str>, listen_pid: Option<&str>, our_pid: u32) -> bool {
    let count = listen_fds
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    // listenfd, which opens the sockets, also accepts a missing or empty LISTEN_PID.
    let for_us = match listen_pid.map(str::trim) {
        None | Some("") => true,
        Some(pid) => pid.parse::<u32>().ok() == Some(our_pid),
    };
    count > 0 && for_us
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_rules() {
        assert!(passed(Some("1"), Some("42"), 42));
        assert!(passed(Some("1"), None, 42));
        assert!(passed(Some("2"), Some(""), 42));
        assert!(!passed(Some("1"), Some("41"), 42));
        assert!(!passed(Some("0"), None, 42));
        assert!(!passed(Some("x"), None, 42));
        assert!(!passed(None, Some("42"), 42));
    }
}
