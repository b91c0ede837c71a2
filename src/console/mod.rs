//! The console: server-rendered pages on the admin listener (`/`, `/hooks`, `/runs/{id}`,
//! `/health`, `/login`), for seeing and steering runs from a browser. The admin listener has
//! already decided who may come in ([`crate::server::admin`]); this module answers with pages,
//! checks the CSRF token of every form, and keeps the login sessions.

mod pages;
pub mod session;

use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use maud::Markup;

pub use session::Sessions;

use crate::engine::{Refusal, RerunError};
use crate::server::State;
use crate::server::respond::{self, HttpResponse};
use crate::store::{Filter, Status};
use pages::{Frame, Page};

/// Runs per page of the Runs page.
const PAGE_SIZE: usize = 50;

/// Largest form accepted (the login token, a CSRF token).
const MAX_FORM: usize = 8 * 1024;

/// The only sources a console page may load from: itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// Who is asking, as the admin listener admitted them.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The request carries the token or a live session, or none is required.
    pub admitted: bool,
    /// The console session the request belongs to, when sessions are in use.
    pub session: Option<String>,
    /// Who asks, for the log: a client address, or the admin socket.
    pub from: String,
}

/// Whether sessions are in use: only when the admin listener requires a token.
fn sessions_in_use(state: &State) -> bool {
    state.settings.admin_token.is_some()
}

/// Answers a console request (any path outside `/-/`).
pub async fn handle(state: &State, http: hyper::Request<Incoming>, caller: Caller) -> HttpResponse {
    let path = http.uri().path().to_owned();
    let query = http.uri().query().unwrap_or_default().to_owned();
    let method = http.method().clone();
    let reading = method == Method::GET || method == Method::HEAD;
    match (path.as_str(), reading) {
        ("/assets/console.css", true) => asset(STYLESHEET, "text/css; charset=utf-8"),
        ("/assets/console.js", true) => asset(SCRIPT, "text/javascript; charset=utf-8"),
        ("/login", true) => login_page(state, &caller, false),
        ("/login", false) if method == Method::POST => login(state, http, &caller).await,
        _ if !caller.admitted => redirect("/login"),
        ("/logout", false) if method == Method::POST => logout(state, http, &caller).await,
        ("/", true) => runs(state, &caller, &query).await,
        ("/hooks", true) => hooks(state, &caller).await,
        ("/health", true) => health(state, &caller),
        _ => match path
            .strip_prefix("/runs/")
            .map(|rest| rest.split('/').collect::<Vec<_>>())
        {
            Some(parts) if reading && parts.len() == 1 => run(state, &caller, parts[0]).await,
            Some(parts) if method == Method::POST && parts.len() == 2 && parts[1] == "rerun" => {
                rerun(state, http, &caller, parts[0]).await
            }
            _ => page(
                StatusCode::NOT_FOUND,
                pages::message(
                    &frame(state, &caller, None),
                    "Not found",
                    "There is no such page.",
                ),
            ),
        },
    }
}

fn frame(state: &State, caller: &Caller, active: Option<Page>) -> Frame {
    Frame {
        active,
        logout: caller
            .session
            .as_deref()
            .filter(|_| sessions_in_use(state))
            .map(|session| state.sessions.csrf(Some(session))),
    }
}

async fn runs(state: &State, caller: &Caller, query: &str) -> HttpResponse {
    let mut filter = Filter {
        limit: PAGE_SIZE + 1,
        ..Filter::default()
    };
    let mut shown = pages::RunsQuery::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match (&*name, value.is_empty()) {
            ("hook", false) => shown.hook = Some(value.into_owned()),
            ("status", false) => shown.status = Status::parse(&value),
            ("before", false) => filter.before = Some(value.into_owned()),
            _ => {}
        }
    }
    filter.hook.clone_from(&shown.hook);
    filter.statuses.extend(shown.status);
    let journal = state.dispatcher.journal().clone();
    let mut runs = match tokio::task::spawn_blocking(move || journal.runs(&filter)).await {
        Ok(Ok(runs)) => runs,
        Ok(Err(error)) => return failure(state, caller, &error.to_string()),
        Err(error) => return failure(state, caller, &error.to_string()),
    };
    let next = (runs.len() > PAGE_SIZE).then(|| {
        runs.truncate(PAGE_SIZE);
        runs.last().map(|run| run.id.clone()).unwrap_or_default()
    });
    let hooks: Vec<String> = state
        .hooks
        .load()
        .sorted()
        .iter()
        .map(|hook| hook.id.clone())
        .collect();
    let frame = frame(state, caller, Some(Page::Runs));
    page(
        StatusCode::OK,
        pages::runs(&frame, &runs, &hooks, &shown, next.as_deref()),
    )
}

async fn run(state: &State, caller: &Caller, id: &str) -> HttpResponse {
    let journal = state.dispatcher.journal().clone();
    let owned = id.to_owned();
    let frame = frame(state, caller, Some(Page::Runs));
    match tokio::task::spawn_blocking(move || journal.run(&owned)).await {
        Ok(Ok(Some(run))) => {
            let csrf = state.sessions.csrf(caller.session.as_deref());
            page(StatusCode::OK, pages::run(&frame, &run, &csrf))
        }
        Ok(Ok(None)) => page(
            StatusCode::NOT_FOUND,
            pages::message(&frame, "Not found", "There is no such run in the history."),
        ),
        Ok(Err(error)) => failure(state, caller, &error.to_string()),
        Err(error) => failure(state, caller, &error.to_string()),
    }
}

async fn hooks(state: &State, caller: &Caller) -> HttpResponse {
    let journal = state.dispatcher.journal().clone();
    let stats = match tokio::task::spawn_blocking(move || journal.hook_stats()).await {
        Ok(Ok(stats)) => stats,
        Ok(Err(error)) => return failure(state, caller, &error.to_string()),
        Err(error) => return failure(state, caller, &error.to_string()),
    };
    let prefix = state.settings.urlprefix.trim_matches('/');
    let rows: Vec<pages::HookRow> = state
        .hooks
        .load()
        .sorted()
        .iter()
        .map(|hook| {
            let stats = stats.iter().find(|stats| stats.hook == hook.id);
            pages::HookRow {
                id: hook.id.clone(),
                route: if prefix.is_empty() {
                    format!("/{}", hook.id)
                } else {
                    format!("/{prefix}/{}", hook.id)
                },
                rule: hook
                    .trigger_rule
                    .as_ref()
                    .map_or_else(|| "always".to_owned(), crate::commands::describe::rule),
                concurrency: hook.scheduling.concurrency.name().to_owned(),
                last: stats.and_then(|stats| stats.last.clone()),
                succeeded: stats.map_or(0, |stats| stats.succeeded),
                ended: stats.map_or(0, |stats| stats.ended),
            }
        })
        .collect();
    let frame = frame(state, caller, Some(Page::Hooks));
    page(
        StatusCode::OK,
        pages::hooks(&frame, &rows, state.hooks.last_reload().as_ref()),
    )
}

fn health(state: &State, caller: &Caller) -> HttpResponse {
    let health = pages::Health {
        hooks: state.hooks.load().len(),
        generation: state.hooks.generation(),
        runs_in_flight: state.metrics.runs_in_flight(),
        version: env!("CARGO_PKG_VERSION"),
        journal: state.settings.journal,
    };
    let frame = frame(state, caller, Some(Page::Health));
    page(
        StatusCode::OK,
        pages::health(&frame, &health, state.hooks.last_reload().as_ref()),
    )
}

fn login_page(state: &State, caller: &Caller, failed: bool) -> HttpResponse {
    if !sessions_in_use(state) || caller.admitted && !failed {
        return redirect("/");
    }
    let status = if failed {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page(status, pages::login(failed, &state.sessions.csrf(None)))
}

async fn login(state: &State, http: hyper::Request<Incoming>, caller: &Caller) -> HttpResponse {
    let Some(token) = &state.settings.admin_token else {
        return redirect("/");
    };
    let form = match read_form(http).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !state.sessions.csrf_matches(None, form.get("csrf")) {
        return expired_form();
    }
    if !token.matches(form.get("token").as_bytes()) {
        state.admin_failures.record(&caller.from);
        return login_page(state, caller, true);
    }
    let session = state.sessions.open();
    let cookie = format!(
        "{}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        session::COOKIE,
        session::LIFETIME.as_secs()
    );
    let mut response = redirect("/");
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(state: &State, http: hyper::Request<Incoming>, caller: &Caller) -> HttpResponse {
    let form = match read_form(http).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !state
        .sessions
        .csrf_matches(caller.session.as_deref(), form.get("csrf"))
    {
        return expired_form();
    }
    if let Some(session) = &caller.session {
        state.sessions.close(session);
    }
    let mut response = redirect("/login");
    let expired = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        session::COOKIE
    );
    if let Ok(value) = expired.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn rerun(
    state: &State,
    http: hyper::Request<Incoming>,
    caller: &Caller,
    id: &str,
) -> HttpResponse {
    let form = match read_form(http).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !state
        .sessions
        .csrf_matches(caller.session.as_deref(), form.get("csrf"))
    {
        return expired_form();
    }
    let frame = frame(state, caller, Some(Page::Runs));
    let (status, text) = match state.dispatcher.rerun(id).await {
        Ok(new_id) => return redirect(&format!("/runs/{new_id}")),
        Err(RerunError::NotFound(_)) => (
            StatusCode::NOT_FOUND,
            "There is no such run in the history.".to_owned(),
        ),
        Err(RerunError::Refused(refusal @ (Refusal::Busy(_) | Refusal::ShuttingDown))) => {
            (StatusCode::SERVICE_UNAVAILABLE, refusal.to_string())
        }
        Err(error @ RerunError::NotRunnable { .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    page(status, pages::message(&frame, "Not rerun", &text))
}

/// A form's fields (the first value of each name).
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

async fn read_form(http: hyper::Request<Incoming>) -> Result<Form, HttpResponse> {
    let is_form = http
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(respond::plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the console's forms as application/x-www-form-urlencoded.\n",
        ));
    }
    let body = Limited::new(http.into_body(), MAX_FORM)
        .collect()
        .await
        .map_err(|_| respond::plain(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.\n"))?
        .to_bytes();
    Ok(Form(
        form_urlencoded::parse(&body)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect(),
    ))
}

fn expired_form() -> HttpResponse {
    let frame = Frame {
        active: None,
        logout: None,
    };
    page(
        StatusCode::FORBIDDEN,
        pages::message(
            &frame,
            "Form expired",
            "The form's security token does not match this session (it may be older than a \
             restart or a logout). Go back, reload the page and try again.",
        ),
    )
}

fn failure(state: &State, caller: &Caller, error: &str) -> HttpResponse {
    tracing::error!("console: cannot read the run history: {error}");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message(
            &frame(state, caller, None),
            "History unavailable",
            "The run history cannot be read now; the log says why.",
        ),
    )
}

/// A page with the console's security headers.
fn page(status: StatusCode, markup: Markup) -> HttpResponse {
    respond::build(
        status,
        with_security_headers(&[("content-type", "text/html; charset=utf-8")]),
        markup.into_string(),
    )
}

fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    respond::build(
        StatusCode::OK,
        with_security_headers(&[("content-type", content_type)]),
        body,
    )
}

fn redirect(location: &str) -> HttpResponse {
    respond::build(
        StatusCode::SEE_OTHER,
        with_security_headers(&[("location", location)]),
        "",
    )
}

fn with_security_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        // Not `no-referrer`: under it a browser sends `Origin: null` with the console's own
        // forms, which the admin listener refuses as cross-site.
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// The session cookie of a request, if it carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| session::cookie(value, session::COOKIE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_nothing_from_elsewhere_and_no_inline_code() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
    }

    #[test]
    fn run_record_statuses_have_a_style() {
        for status in Status::ALL {
            assert!(
                STYLESHEET.contains(&format!(".status-{}", status.as_str())),
                "{status}"
            );
        }
    }
}
