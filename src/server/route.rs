//! Routing: adnanh's URL layout (`/` answers `OK`, hooks live at `/<urlprefix>/<id>`), with
//! gorilla/mux's path cleaning (a 301 to the clean path) and percent-decoding.

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/` exactly: the liveness answer.
    Root,
    /// A hook id (everything after the prefix slash; may contain `/`, may be empty).
    Hook(String),
    /// The path is not in clean form: redirect to this location.
    Redirect(String),
    /// Outside the hooks prefix.
    NotFound,
    /// The path has an invalid percent-escape.
    BadPath,
}

/// Routes a raw request path (still percent-encoded) and query.
pub fn route(raw_path: &str, query: Option<&str>, urlprefix: &str) -> Route {
    let Some(path) = percent_decode(raw_path) else {
        return Route::BadPath;
    };
    let clean = clean_path(&path);
    if clean != path {
        // gorilla/mux writes the location with Go's `URL.String()`, which escapes the path
        // again (a space as `%20`, `?` as `%3F`).
        let mut location = escape_path(&clean);
        if let Some(query) = query {
            location.push('?');
            location.push_str(query);
        }
        return Route::Redirect(location);
    }
    if path == "/" {
        return Route::Root;
    }
    let base = if urlprefix.is_empty() {
        "/".to_string()
    } else {
        format!("/{urlprefix}/")
    };
    match path.strip_prefix(&base) {
        Some(id) => Route::Hook(id.to_string()),
        None => Route::NotFound,
    }
}

/// gorilla/mux `cleanPath`: Go's `path.Clean`, keeping a trailing slash.
fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut clean = format!("/{}", parts.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

/// Go's `url.escape(path, encodePath)`: everything but ASCII letters, digits, `-_.~` and
/// `$&+,/:;=@` is written as `%XX` (upper-case hex).
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` on an invalid escape (Go's server answers 400). Invalid UTF-8
/// after decoding is replaced, as the id is compared as text.
fn percent_decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_string());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_adnanh() {
        let cases = [
            ("/", "hooks", Route::Root),
            ("/hooks/deploy", "hooks", Route::Hook("deploy".into())),
            (
                "/hooks/deploy/staging",
                "hooks",
                Route::Hook("deploy/staging".into()),
            ),
            (
                "/hooks/deploy%2Fstaging",
                "hooks",
                Route::Hook("deploy/staging".into()),
            ),
            ("/hooks/ping/", "hooks", Route::Hook("ping/".into())),
            ("/hooks/", "hooks", Route::Hook(String::new())),
            ("/hooks", "hooks", Route::NotFound),
            ("/other/x", "hooks", Route::NotFound),
            ("/x", "", Route::Hook("x".into())),
            ("/api/v2/x", "api/v2", Route::Hook("x".into())),
            ("/hooks//x", "hooks", Route::Redirect("/hooks/x".into())),
            ("/hooks/./x", "hooks", Route::Redirect("/hooks/x".into())),
            ("/hooks/a/../x", "hooks", Route::Redirect("/hooks/x".into())),
            ("/hooks/%zz", "hooks", Route::BadPath),
            // The admin routes have their own listener: here they are paths like any other.
            ("/-/health", "hooks", Route::NotFound),
            ("/%2d/health", "hooks", Route::NotFound),
            ("/-/runs/abc", "", Route::Hook("-/runs/abc".into())),
        ];
        for (path, prefix, expected) in cases {
            assert_eq!(
                route(path, None, prefix),
                expected,
                "{path} with prefix {prefix:?}"
            );
        }
        assert_eq!(
            route("/hooks//x", Some("a=1"), "hooks"),
            Route::Redirect("/hooks/x?a=1".into())
        );
    }

    /// Measured on webhook 2.8.0: `GET /hooks//with%20space/and%3Fquestion?x=%20y` redirects
    /// to `/hooks/with%20space/and%3Fquestion?x=%20y`.
    #[test]
    fn redirects_escape_the_clean_path_like_go() {
        assert_eq!(
            route(
                "/hooks//with%20space/and%3Fquestion",
                Some("x=%20y"),
                "hooks"
            ),
            Route::Redirect("/hooks/with%20space/and%3Fquestion?x=%20y".into())
        );
        assert_eq!(
            route("/hooks/./caf%C3%A9!(x)*'$&+,:;=@~", None, "hooks"),
            Route::Redirect("/hooks/caf%C3%A9%21%28x%29%2A%27$&+,:;=@~".into())
        );
    }
}
