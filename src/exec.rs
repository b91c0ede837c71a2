//! Exec (in progress).
