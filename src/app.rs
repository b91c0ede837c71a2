//! App (in progress).
