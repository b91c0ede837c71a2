//! The path router over arbitrary paths, queries and URL prefixes.
//!
//! Properties: it never panics, and a `Redirect` goes to a clean location: routing the
//! location again (its path and query split at the first `?`) is not a redirect, so a client
//! following it never loops.
#![no_main]

use hookwire::server::route::{Route, route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, Option<String>, String)| {
    let (path, query, urlprefix) = input;
    if let Route::Redirect(location) = route(&path, query.as_deref(), &urlprefix) {
        let (again_path, again_query) = match location.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (location.as_str(), None),
        };
        let again = route(again_path, again_query, &urlprefix);
        assert!(
            !matches!(again, Route::Redirect(_)),
            "{path:?} -> {location:?} -> {again:?}"
        );
    }
});
