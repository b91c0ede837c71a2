//! Plan (in progress).
