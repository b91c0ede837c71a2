//! The console's pages, rendered on the server with maud (which escapes every value). No
//! inline script or style: the Content-Security-Policy allows only the two files under
//! `/assets/`.

use maud::{DOCTYPE, Markup, html};

use crate::ops::reload::ReloadStatus;
use crate::store::{RunRecord, Status};

/// The pages in the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Runs,
    Hooks,
    Health,
}

/// What every page's frame needs.
#[derive(Debug, Clone)]
pub struct Frame {
    pub active: Option<Page>,
    /// The CSRF token of the logout form, when the console has sessions.
    pub logout: Option<String>,
}

fn layout(title: &str, frame: &Frame, body: Markup) -> Markup {
    let link = |page: Page, href: &str, label: &str| {
        let current = frame.active == Some(page);
        html! {
            a href=(href) aria-current=[current.then_some("page")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · hookwire" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Console" {
                        span.brand { "hookwire" }
                        (link(Page::Runs, "/", "Runs"))
                        (link(Page::Hooks, "/hooks", "Hooks"))
                        (link(Page::Health, "/health", "Health"))
                        @if let Some(csrf) = &frame.logout {
                            form.logout method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A run's status as a badge: the word, with a colour that only repeats it.
fn status(status: Status) -> Markup {
    html! { span class={ "status status-" (status.as_str()) } { (status.as_str()) } }
}

fn exit(run: &RunRecord) -> String {
    match (run.exit_code, run.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "–".to_owned(),
    }
}

fn duration(run: &RunRecord) -> String {
    run.duration_ms.map_or_else(
        || "–".to_owned(),
        |ms| format!("{:.1} s", ms as f64 / 1000.0),
    )
}

/// The Runs page's filter, as the query string gave it.
#[derive(Debug, Clone, Default)]
pub struct RunsQuery {
    pub hook: Option<String>,
    pub status: Option<Status>,
}

impl RunsQuery {
    /// The query string of the next page.
    fn next(&self, before: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(hook) = &self.hook {
            query.append_pair("hook", hook);
        }
        if let Some(status) = self.status {
            query.append_pair("status", status.as_str());
        }
        query.append_pair("before", before);
        format!("/?{}", query.finish())
    }
}

pub fn runs(
    frame: &Frame,
    runs: &[RunRecord],
    hooks: &[String],
    query: &RunsQuery,
    next: Option<&str>,
) -> Markup {
    layout(
        "Runs",
        frame,
        html! {
            h1 { "Runs" }
            form.filter method="get" action="/" {
                label {
                    "Hook "
                    select name="hook" {
                        option value="" { "any" }
                        @for hook in hooks {
                            option value=(hook) selected[query.hook.as_deref() == Some(hook.as_str())] { (hook) }
                        }
                    }
                }
                label {
                    "Status "
                    select name="status" {
                        option value="" { "any" }
                        @for each in Status::ALL {
                            option value=(each.as_str()) selected[query.status == Some(each)] { (each.as_str()) }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if runs.is_empty() {
                p.empty { "No runs yet. Runs appear here as hooks are triggered." }
            } @else {
                table.runs {
                    thead {
                        tr {
                            th scope="col" { "Run" }
                            th scope="col" { "Hook" }
                            th scope="col" { "Status" }
                            th scope="col" { "Exit" }
                            th scope="col" { "Accepted" }
                            th scope="col" { "Duration" }
                        }
                    }
                    tbody {
                        @for run in runs {
                            tr {
                                td data-label="Run" { a href={ "/runs/" (run.id) } { code { (short_id(&run.id)) } } }
                                td data-label="Hook" { (run.hook) }
                                td data-label="Status" { (status(run.status)) }
                                td data-label="Exit" { (exit(run)) }
                                td data-label="Accepted" { time { (run.accepted_at) } }
                                td data-label="Duration" { (duration(run)) }
                            }
                        }
                    }
                }
            }
            @if let Some(before) = next {
                p.pager { a href=(query.next(before)) rel="next" { "Older runs →" } }
            }
        },
    )
}

/// The end of a run id, enough to tell runs apart at a glance (the link has the whole id).
fn short_id(id: &str) -> &str {
    id.get(id.len().saturating_sub(12)..).unwrap_or(id)
}

pub fn run(frame: &Frame, run: &RunRecord, csrf: &str) -> Markup {
    let live = matches!(run.status, Status::Queued | Status::Running);
    layout(
        &format!("Run {}", short_id(&run.id)),
        frame,
        html! {
            h1 { "Run " code { (run.id) } }
            dl.facts {
                dt { "Hook" } dd { a href={ "/?hook=" (urlencode(&run.hook)) } { (run.hook) } }
                dt { "Status" } dd #run-status { (status(run.status)) }
                dt { "Exit" } dd { (exit(run)) }
                dt { "Attempts" } dd { (run.attempts) }
                dt { "Accepted" } dd { (run.accepted_at) }
                @if let Some(started) = &run.started_at { dt { "Started" } dd { (started) } }
                @if let Some(finished) = &run.finished_at { dt { "Finished" } dd { (finished) } }
                dt { "Duration" } dd { (duration(run)) }
                @if let Some(next) = &run.next_attempt_at { dt { "Next attempt" } dd { (next) } }
                @if let Some(reason) = &run.reason { dt { "Reason" } dd { (reason) } }
                @if let Some(key) = &run.concurrency_key { dt { "Key" } dd { (key) } }
                @if let Some(node) = &run.node { dt { "Node" } dd { (node) } }
                @if let Some(of) = &run.rerun_of { dt { "Rerun of" } dd { a href={ "/runs/" (of) } { code { (of) } } } }
            }
            form.rerun method="post" action={ "/runs/" (run.id) "/rerun" } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Rerun" }
            }
            h2 { "Output" }
            @if run.output_truncated > 0 {
                p.note { (run.output_truncated) " earlier bytes were dropped (-max-output)." }
            }
            pre #output data-follow=[live.then(|| format!("/-/runs/{}/output", run.id))] {
                (run.output.as_deref().unwrap_or_default())
            }
            @if let Some(request) = &run.request {
                h2 { "Request" }
                p.note { "Credentials are masked." }
                dl.facts {
                    dt { "Method" } dd { (request.method) }
                    dt { "Client" } dd { (request.remote_addr) }
                    @if !request.query.is_empty() { dt { "Query" } dd { code { (request.query) } } }
                }
                table.headers {
                    caption { "Headers" }
                    tbody {
                        @for (name, value) in &request.headers {
                            tr { th scope="row" { (name) } td { code { (value) } } }
                        }
                    }
                }
                @if let Some(lost) = &request.body_lost {
                    p.note { "Body: " (lost) }
                } @else if !request.body.is_empty() {
                    h3 { "Body" }
                    pre.body { (request.body) }
                }
            }
        },
    )
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// One row of the Hooks page.
#[derive(Debug, Clone)]
pub struct HookRow {
    pub id: String,
    pub route: String,
    pub rule: String,
    pub concurrency: String,
    pub last: Option<RunRecord>,
    /// Succeeded of ended runs in the history.
    pub succeeded: u64,
    pub ended: u64,
}

pub fn hooks(frame: &Frame, rows: &[HookRow], reload: Option<&ReloadStatus>) -> Markup {
    layout(
        "Hooks",
        frame,
        html! {
            h1 { "Hooks" }
            (reload_status(reload))
            @if rows.is_empty() {
                p.empty { "No hooks are loaded." }
            } @else {
                table.hooks {
                    thead {
                        tr {
                            th scope="col" { "Hook" }
                            th scope="col" { "Route" }
                            th scope="col" { "Rule" }
                            th scope="col" { "Concurrency" }
                            th scope="col" { "Last run" }
                            th scope="col" { "Success" }
                        }
                    }
                    tbody {
                        @for row in rows {
                            tr {
                                td data-label="Hook" { a href={ "/?hook=" (urlencode(&row.id)) } { (row.id) } }
                                td data-label="Route" { code { (row.route) } }
                                td data-label="Rule" { (row.rule) }
                                td data-label="Concurrency" { (row.concurrency) }
                                td data-label="Last run" {
                                    @if let Some(last) = &row.last {
                                        a href={ "/runs/" (last.id) } { (status(last.status)) " " time { (last.accepted_at) } }
                                    } @else { "never" }
                                }
                                td data-label="Success" {
                                    @if row.ended == 0 { "–" } @else {
                                        (row.succeeded * 100 / row.ended) "% of " (row.ended)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn reload_status(reload: Option<&ReloadStatus>) -> Markup {
    let Some(reload) = reload else {
        return html! {};
    };
    let at = humantime::format_rfc3339_seconds(reload.at).to_string();
    html! {
        @if reload.errors.is_empty() {
            p.reload { "Hooks files last read " time { (at) } "; all loaded." }
        } @else {
            div.reload.failed role="alert" {
                p { strong { "The last reload failed" } " (" time { (at) } "); the hooks before it are still served:" }
                ul { @for error in &reload.errors { li { code { (error) } } } }
            }
        }
    }
}

/// What the Health page shows: `/-/health` and a little more.
#[derive(Debug, Clone)]
pub struct Health {
    pub hooks: usize,
    pub generation: u64,
    pub runs_in_flight: i64,
    pub version: &'static str,
    pub journal: bool,
}

pub fn health(frame: &Frame, health: &Health, reload: Option<&ReloadStatus>) -> Markup {
    layout(
        "Health",
        frame,
        html! {
            h1 { "Health" }
            p { span.status.status-succeeded { "ok" } " hookwire " (health.version) " is serving." }
            dl.facts {
                dt { "Hooks loaded" } dd { (health.hooks) }
                dt { "Hook sets applied" } dd { (health.generation) }
                dt { "Runs in flight" } dd { (health.runs_in_flight) }
                dt { "Run journal" } dd { @if health.journal { "on" } @else { "off: accepted runs are lost if hookwire stops" } }
            }
            (reload_status(reload))
            p.note { "The same as JSON: " a href="/-/health" { code { "/-/health" } } "; metrics: " a href="/-/metrics" { code { "/-/metrics" } } "." }
        },
    )
}

pub fn login(failed: bool, csrf: &str) -> Markup {
    layout(
        "Log in",
        &Frame {
            active: None,
            logout: None,
        },
        html! {
            h1 { "Log in" }
            p { "This console needs the admin token (the content of the server's " code { "-admin-token-file" } ")." }
            @if failed {
                p.error role="alert" { "That is not the admin token." }
            }
            form.login method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// A page for an answer other than the normal one (not found, refused).
pub fn message(frame: &Frame, title: &str, text: &str) -> Markup {
    layout(title, frame, html! { h1 { (title) } p { (text) } })
}
