//! systemd integration (in progress).
