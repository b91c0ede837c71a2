//! The console in a real browser: headless Chromium over WebDriver (see [`crate::chromium`])
//! loads the pages, clicks, types, follows a running run's output, and checks what the page
//! may load, how it looks narrow and dark, and where the keyboard goes.

use fantoccini::Locator;
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::json;

use crate::chromium::{self, Browser};
use crate::console::wait_ended;
use crate::harness::Server;
use crate::harness::run_id;

const HOOKS: &str = r#"
- id: hello
  execute-command: /bin/echo
  pass-arguments-to-command:
    - {source: string, name: hello-from-the-console}
- id: broken
  execute-command: /bin/sh
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'echo "deploy failed: no such branch" >&2; exit 3'}
- id: stepwise
  execute-command: /bin/sh
  pass-arguments-to-command:
    - {source: string, name: -c}
    # Waits for the test's go-ahead, or for the test's directory to go if the test failed.
    - {source: string, name: 'echo first line; while [ -d {dir} ] && [ ! -e {dir}/go ]; do sleep 0.05; done; echo second line'}
"#;

/// Triggers `hook` and waits until its run has ended.
fn finished_run(s: &Server, hook: &str) -> String {
    let id = run_id(&s.get(&format!("/hooks/{hook}")));
    wait_ended(s, &id, None);
    id
}

/// JavaScript that is truthy once the element `css` contains `text`.
fn contains(css: &str, text: &str) -> String {
    format!(
        "(document.querySelector({}) || {{}}).textContent?.includes({})",
        json!(css),
        json!(text)
    )
}

/// JavaScript that is truthy once there is an element `css`.
fn exists(css: &str) -> String {
    format!("document.querySelector({})", json!(css))
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn every_page_shows_its_content_and_loads_nothing_from_elsewhere() {
    let s = Server::start(HOOKS);
    let id = finished_run(&s, "hello");
    chromium::run(async {
        let b = Browser::open(&s).await;
        let run_page = format!("/runs/{id}");
        let pages = [
            ("/", "Runs", "Runs", "table.runs", "hello"),
            ("/hooks", "Hooks", "Hooks", "table.hooks", "100% of 1"),
            (
                &run_page,
                "Runs",
                "Run",
                "#output",
                "hello-from-the-console",
            ),
            ("/health", "Health", "Health", "dl.facts", "Hooks loaded"),
        ];
        for (path, nav, heading, css, text) in pages {
            b.goto(path).await;
            assert!(b.text("h1").await.starts_with(heading), "{path}");
            assert_eq!(b.text("nav a[aria-current=page]").await, nav, "{path}");
            b.wait_for(&format!("{path} shows {text}"), &contains(css, text))
                .await;
            // The stylesheet applied (the light palette's background).
            let background = b
                .eval("getComputedStyle(document.body).backgroundColor")
                .await;
            assert_eq!(background, json!("rgb(255, 255, 255)"), "{path}");
            let loaded = b
                .eval("performance.getEntriesByType('resource').map(entry => entry.name)")
                .await;
            let loaded: Vec<String> = serde_json::from_value(loaded).expect("resource names");
            for asset in ["/assets/console.css", "/assets/console.js"] {
                assert!(loaded.contains(&b.url(asset)), "{asset} in {loaded:?}");
            }
            let elsewhere: Vec<&String> = loaded
                .iter()
                .filter(|name| !name.starts_with(&format!("{}/", b.origin)))
                .collect();
            assert!(elsewhere.is_empty(), "{path} loaded {elsewhere:?}");
        }

        // The Content-Security-Policy stops a request to elsewhere that a page might inject.
        b.script(
            "window.blocked = [];
             document.addEventListener('securitypolicyviolation',
                 event => window.blocked.push(event.blockedURI));
             const image = document.createElement('img');
             image.src = 'http://192.0.2.1/pixel.png';
             document.body.appendChild(image);
             fetch('http://192.0.2.1/data').catch(() => window.blocked.push('fetch refused'));",
            Vec::new(),
        )
        .await;
        b.wait_for(
            "the policy blocks the image and the fetch",
            "window.blocked.includes('http://192.0.2.1/pixel.png') \
             && window.blocked.includes('fetch refused')",
        )
        .await;
    });
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn a_triggered_run_shows_on_the_runs_page_after_a_reload() {
    let s = Server::start(HOOKS);
    chromium::run(async {
        let b = Browser::open(&s).await;
        b.goto("/").await;
        assert!(b.text("p.empty").await.starts_with("No runs yet"));
        let id = finished_run(&s, "hello");
        b.client().refresh().await.expect("reload");
        let link = format!("table.runs a[href='/runs/{id}']");
        b.wait_for("the new run is listed", &exists(&link)).await;
        let row = b.text("table.runs tbody tr").await;
        assert!(row.contains("hello") && row.contains("succeeded"), "{row}");
        b.client()
            .find(Locator::Css(&link))
            .await
            .expect("the run's link")
            .click()
            .await
            .expect("click the run");
        b.wait_for(
            "the run's page opens",
            &contains("#output", "hello-from-the-console"),
        )
        .await;
    });
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn the_rerun_button_opens_the_new_run_which_links_back() {
    let s = Server::start(HOOKS);
    let id = finished_run(&s, "hello");
    chromium::run(async {
        let b = Browser::open(&s).await;
        b.goto(&format!("/runs/{id}")).await;
        b.client()
            .find(Locator::Css("form.rerun button"))
            .await
            .expect("the Rerun button")
            .click()
            .await
            .expect("click Rerun");
        b.wait_for(
            "the new run's page",
            &format!(
                "location.pathname.startsWith('/runs/') && location.pathname !== '/runs/{id}'"
            ),
        )
        .await;
        let back = format!("dd a[href='/runs/{id}']");
        b.wait_for("a link back to the original", &exists(&back))
            .await;
        b.client()
            .find(Locator::Css(&back))
            .await
            .expect("the link back")
            .click()
            .await
            .expect("click the link back");
        b.wait_for(
            "the original run's page",
            &format!("location.pathname === '/runs/{id}'"),
        )
        .await;
    });
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn logging_in_with_the_token_sets_a_strict_cookie_that_scripts_cannot_read() {
    let s = Server::builder(HOOKS)
        .before_start(|dir| std::fs::write(dir.join("token"), "console-t0ken\n").unwrap())
        .args(&["-admin-token-file", "{dir}/token"])
        .start();
    chromium::run(async {
        let b = Browser::open(&s).await;
        b.goto("/").await;
        assert_eq!(b.here().await, "/login");
        assert_eq!(b.text("h1").await, "Log in");
        let focused = b.eval("document.activeElement.id").await;
        assert_eq!(focused, json!("token"), "the token field has the focus");

        log_in(&b, "guess").await;
        b.wait_for("the refusal", &exists("p.error")).await;
        assert_eq!(b.text("p.error").await, "That is not the admin token.");
        let cookies = b.client().get_all_cookies().await.expect("cookies");
        assert!(cookies.is_empty(), "{cookies:?}");

        log_in(&b, "console-t0ken").await;
        b.wait_for(
            "the Runs page",
            "location.pathname === '/' && document.querySelector('h1')?.textContent === 'Runs'",
        )
        .await;
        let cookie = b
            .client()
            .get_named_cookie("hookwire_session")
            .await
            .expect("the session cookie");
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(
            cookie.same_site().map(|same_site| same_site.to_string()),
            Some("Strict".to_owned())
        );
        assert_eq!(cookie.path(), Some("/"));
        assert!(!cookie.value().is_empty() && !cookie.value().contains("t0ken"));
        let visible = b.eval("document.cookie").await;
        assert!(
            !visible.to_string().contains("hookwire_session"),
            "{visible}"
        );

        b.client()
            .find(Locator::Css("form.logout button"))
            .await
            .expect("the Log out button")
            .click()
            .await
            .expect("click Log out");
        b.wait_for("the login page", "location.pathname === '/login'")
            .await;
        let cookies = b.client().get_all_cookies().await.expect("cookies");
        assert!(cookies.is_empty(), "{cookies:?}");
        b.goto("/health").await;
        assert_eq!(
            b.here().await,
            "/login",
            "the console is closed after logging out"
        );
    });
}

/// Types `token` into the login form and sends it.
async fn log_in(b: &Browser, token: &str) {
    let field = b
        .client()
        .find(Locator::Css("#token"))
        .await
        .expect("the token field");
    field.clear().await.expect("clear the token field");
    field.send_keys(token).await.expect("type the token");
    b.client()
        .find(Locator::Css("form.login button"))
        .await
        .expect("the Log in button")
        .click()
        .await
        .expect("click Log in");
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn the_tab_key_reaches_the_navigation_and_the_rerun_button_with_a_visible_focus() {
    let s = Server::start(HOOKS);
    let id = finished_run(&s, "hello");
    chromium::run(async {
        let b = Browser::open(&s).await;
        b.goto(&format!("/runs/{id}")).await;
        let mut reached = Vec::new();
        for _ in 0..12 {
            let tab = KeyActions::new("keyboard".to_owned())
                .then(KeyAction::Down {
                    value: Key::Tab.into(),
                })
                .then(KeyAction::Up {
                    value: Key::Tab.into(),
                });
            b.client().perform_actions(tab).await.expect("press Tab");
            let focused = b
                .eval(
                    "(() => { const element = document.activeElement;
                        const box = element.getBoundingClientRect();
                        return { name: element.tagName + ' ' + element.textContent.trim(),
                                 outline: getComputedStyle(element).outlineStyle,
                                 onScreen: box.left >= 0 && box.top >= 0 }; })()",
                )
                .await;
            let name = focused["name"].as_str().unwrap_or_default().to_owned();
            assert_eq!(
                focused["outline"],
                json!("solid"),
                "{name} shows no focus ring"
            );
            assert_eq!(
                focused["onScreen"],
                json!(true),
                "{name} is focused off screen"
            );
            let done = name == "BUTTON Rerun";
            reached.push(name);
            if done {
                break;
            }
        }
        let expected = [
            "A Skip to content",
            "A Runs",
            "A Hooks",
            "A Health",
            "A hello",
            "BUTTON Rerun",
        ];
        assert_eq!(reached, expected);
    });
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn at_390_px_wide_no_page_scrolls_sideways() {
    let s = Server::start(HOOKS);
    let id = finished_run(&s, "hello");
    finished_run(&s, "broken");
    chromium::run(async {
        let b = Browser::open(&s).await;
        b.client()
            .set_window_size(390, 844)
            .await
            .expect("set the window size");
        for path in ["/", "/hooks", &format!("/runs/{id}"), "/health"] {
            b.goto(path).await;
            let width = b.eval("innerWidth").await;
            assert!(width.as_u64().is_some_and(|width| width <= 390), "{width}");
            let (scroll, inner) = widths(&b).await;
            assert!(scroll <= inner, "{path} is {scroll} px wide in {inner} px");
        }
        b.goto("/").await;
        let badge = b
            .eval("document.querySelector('table.runs .status').getBoundingClientRect().width")
            .await;
        assert!(
            badge.as_f64().is_some_and(|width| width < 120.0),
            "a {badge} px badge"
        );
    });
}

async fn widths(b: &Browser) -> (u64, u64) {
    let widths = b
        .eval("[document.documentElement.scrollWidth, innerWidth]")
        .await;
    (
        widths[0].as_u64().expect("scrollWidth"),
        widths[1].as_u64().expect("innerWidth"),
    )
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn the_dark_colour_scheme_uses_the_dark_palette() {
    let s = Server::start(HOOKS);
    finished_run(&s, "hello");
    chromium::run(async {
        let b = Browser::open(&s).await;
        let dark = json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] });
        b.devtools("Emulation.setEmulatedMedia", dark)
            .await
            .expect("emulate prefers-color-scheme: dark");
        b.goto("/").await;
        assert_eq!(
            b.eval("matchMedia('(prefers-color-scheme: dark)').matches")
                .await,
            json!(true)
        );
        let colours = b
            .eval(
                "[getComputedStyle(document.body).backgroundColor,
                  getComputedStyle(document.body).color,
                  getComputedStyle(document.querySelector('.status-succeeded')).color]",
            )
            .await;
        assert_eq!(
            colours,
            json!(["rgb(13, 17, 23)", "rgb(230, 237, 243)", "rgb(63, 185, 80)"])
        );
    });
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn a_running_runs_output_and_status_follow_without_a_reload() {
    let s = Server::start(HOOKS);
    let id = run_id(&s.get("/hooks/stepwise"));
    chromium::run(async {
        let b = Browser::open(&s).await;
        b.goto(&format!("/runs/{id}")).await;
        let follow = b
            .eval("document.getElementById('output').dataset.follow")
            .await;
        assert_eq!(follow, json!(format!("/-/runs/{id}/output")));
        b.wait_for("the first line", &contains("#output", "first line"))
            .await;
        b.script("window.marker = 1;", Vec::new()).await;
        std::fs::write(s.dir.path().join("go"), "").expect("let the run go on");
        b.wait_for("the second line", &contains("#output", "second line"))
            .await;
        b.wait_for(
            "the succeeded badge",
            &exists("#run-status .status-succeeded"),
        )
        .await;
        assert_eq!(b.text("#output").await, "first line\nsecond line");
        assert_eq!(
            b.eval("window.marker").await,
            json!(1),
            "the page was reloaded"
        );
    });
}

#[test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"]
fn a_screenshot_of_the_runs_page() {
    let s = Server::start(HOOKS);
    for hook in ["hello", "broken", "hello", "hello", "broken", "hello"] {
        finished_run(&s, hook);
    }
    chromium::run(async {
        let b = Browser::open(&s).await;
        b.viewport(1280, 800).await;
        b.goto("/").await;
        let rows = b
            .eval("document.querySelectorAll('table.runs tbody tr').length")
            .await;
        assert_eq!(rows, json!(6));
        let png = b.screenshot().await;
        assert_eq!(png_size(&png), (1280, 800));
        if std::env::var_os("HOOKWIRE_SCREENSHOT").is_some_and(|value| value == "1") {
            let path =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console-runs.png");
            std::fs::write(&path, &png).expect("write docs/console-runs.png");
        }
    });
}

/// A PNG's width and height, from its header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let number = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    (number(16), number(20))
}
