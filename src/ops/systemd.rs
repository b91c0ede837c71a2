//! systemd integration: service notifications and the watchdog.
//!
//! hookwire tells systemd (through `$NOTIFY_SOCKET`, with the `sd-notify` crate) when it is
//! ready (`READY=1`, once the hooks are loaded and the listener is open), when it reloads
//! (`RELOADING=1` with `MONOTONIC_USEC`, then `READY=1`), when it stops (`STOPPING=1`), what
//! it is doing (`STATUS=`), and that it is alive (`WATCHDOG=1`, at half of `WatchdogSec=`).
//! Every function here is a no-op when `$NOTIFY_SOCKET` is not set, so the server calls them
//! unconditionally. A failed notification is logged, never fatal: systemd's own timeouts
//! report a service that cannot reach it.
//!
//! Socket activation (`LISTEN_FDS`, as adnanh/webhook 2.8.2 reads it) is handled where
//! listeners are opened, in [`crate::server::listener`], with the `listenfd` crate.
//!
//! The variables stay in hookwire's environment (removing them is not thread-safe once the
//! runtime runs); [`crate::engine::exec`] removes them from every hook command's environment, so a
//! deploy script cannot speak for hookwire by accident.

use std::time::Duration;

use sd_notify::NotifyState;

/// How often `STATUS=` is refreshed when no watchdog is configured.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// `READY=1` with a status line: start-up is complete, or a reload is.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1` with the monotonic time systemd uses to match it with the reload request
/// (required by `Type=notify-reload`, harmless for `Type=notify`). Follow with [`ready`].
pub fn reloading() {
    let mut states = vec![
        NotifyState::Reloading,
        NotifyState::Status("reloading hooks"),
    ];
    match NotifyState::monotonic_usec_now() {
        Ok(now) => states.push(now),
        Err(error) => tracing::debug!("cannot read the monotonic clock: {error}"),
    }
    send(&states);
}

/// `STOPPING=1`: shutdown has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The `STATUS=` line for `systemctl status`.
pub fn status_line(hooks: usize, runs_in_flight: i64) -> String {
    format!("serving {hooks} hook(s); {runs_in_flight} run(s) in flight")
}

/// Whether `$NOTIFY_SOCKET` is set, i.e. something listens to notifications.
pub fn notify_socket_present() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|socket| !socket.is_empty())
}

/// Starts the heartbeat task on the current Tokio runtime: `WATCHDOG=1` at half of
/// `$WATCHDOG_USEC` when systemd's watchdog is on for this process, and `STATUS=` (from
/// `status`) whenever it changes. It runs on the runtime that serves requests, so a runtime
/// that stops (or stalls) stops the pings, and systemd restarts the service. Does nothing
/// when `$NOTIFY_SOCKET` is not set.
pub fn spawn_heartbeat(status: impl Fn() -> String + Send + 'static) {
    if !notify_socket_present() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled().filter(|interval| !interval.is_zero());
    let period = watchdog.map_or(STATUS_INTERVAL, |interval| interval / 2);
    if let Some(interval) = watchdog {
        tracing::info!("systemd watchdog on: pinging every {period:?} (timeout {interval:?})");
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_status = String::new();
        loop {
            ticks.tick().await;
            let current = status();
            let mut states = Vec::with_capacity(2);
            if watchdog.is_some() {
                states.push(NotifyState::Watchdog);
            }
            if current != last_status {
                states.push(NotifyState::Status(&current));
            }
            if !states.is_empty() {
                send(&states);
            }
            last_status = current;
        }
    });
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd ({states:?}): {error}");
    }
}

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

    #[test]
    fn status_line_names_hooks_and_runs() {
        assert_eq!(status_line(3, 1), "serving 3 hook(s); 1 run(s) in flight");
    }
}
