//! Privilege drop and pid file (in progress).
