//! Reload (in progress).
