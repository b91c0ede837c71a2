//! TLS (in progress).
