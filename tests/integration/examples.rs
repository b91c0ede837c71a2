//! The example hooks served by the README's first command answer the README's requests, and
//! the README and `docs/` stay whole: every link resolves, every flag is documented.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::harness::{Server, hmac_hex};

/// `hooks.example.yaml` with its relative commands pointed at the repository's `examples/`.
fn example_server() -> Server {
    let root = env!("CARGO_MANIFEST_DIR");
    let hooks = std::fs::read_to_string(format!("{root}/hooks.example.yaml")).unwrap();
    let hooks = hooks.replace(
        "execute-command: examples/",
        &format!("execute-command: {root}/examples/"),
    );
    Server::start(&hooks)
}

#[test]
fn example_hooks_load_without_warnings() {
    let server = example_server();
    let logs = server.logs();
    assert!(logs.contains("loaded 4 hook(s)"), "{logs}");
    assert!(!logs.contains("WARN"), "the example hooks warn:\n{logs}");
}

#[test]
fn the_readme_walk_through_works() {
    let server = example_server();
    let r = server.get("/hooks/status?who=me");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("requested by: me"), "{}", r.text());

    let form = "token=change-me-form-token&name=Ada&email=ada%40example.com&message=hello";
    let r = server.post(
        "/hooks/contact-form",
        "application/x-www-form-urlencoded",
        form,
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Thanks, your message was received.")
    );
    let r = server.post(
        "/hooks/contact-form",
        "application/x-www-form-urlencoded",
        "token=wrong",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hook rules were not satisfied.")
    );

    let gitlab = r#"{"ref":"refs/heads/main","project":{"path_with_namespace":"team/app"}}"#;
    let r = server
        .request("POST", "/hooks/gitlab-push")
        .header("X-Gitlab-Token", "change-me-gitlab-token")
        .header("Content-Type", "application/json")
        .body(gitlab)
        .send();
    assert_eq!((r.status, r.text().as_str()), (200, "Pipeline queued."));

    let github = r#"{"ref":"refs/heads/main","head_commit":{"id":"abc123"},"pusher":{"name":"ada"},"repository":{"full_name":"team/app"}}"#;
    let signature = format!(
        "sha256={}",
        hmac_hex("sha256", b"change-me-github-secret", github.as_bytes())
    );
    let r = server
        .request("POST", "/hooks/github-deploy")
        .header("X-Hub-Signature-256", &signature)
        .header("Content-Type", "application/json")
        .body(github)
        .send();
    assert_eq!((r.status, r.text().as_str()), (200, "Deploy started."));
    let r = server
        .request("POST", "/hooks/github-deploy")
        .header("X-Hub-Signature-256", "sha256=0000")
        .header("Content-Type", "application/json")
        .body(github)
        .send();
    assert_eq!(
        r.status, 500,
        "a bad signature is a rule error, as in webhook"
    );
}

/// README.md and every docs/*.md.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    files
}

/// The lines of a Markdown file outside its fenced code blocks, with their numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push((index + 1, line));
        }
    }
    lines
}

/// The anchors GitHub gives a file's headings: the text lower-cased, punctuation other than `-`
/// and `_` dropped, spaces made `-`; a repeated anchor gets `-1`, `-2`, ...
fn anchors(text: &str) -> Vec<String> {
    let link = regex::Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    for (_, line) in prose(text) {
        let Some(heading) = line
            .strip_prefix('#')
            .and_then(|rest| rest.trim_start_matches('#').strip_prefix(' '))
        else {
            continue;
        };
        let slug: String = link
            .replace_all(heading.trim(), "$1")
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_default();
        anchors.push(match *count {
            0 => slug.clone(),
            n => format!("{slug}-{n}"),
        });
        *count += 1;
    }
    anchors
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let code = regex::Regex::new(r"`[^`]*`").unwrap();
    let target = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in prose(&text) {
            let line = code.replace_all(line, "");
            for link in target.captures_iter(&line).map(|c| c[1].to_owned()) {
                if link.contains("://") || link.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
                let destination = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                let problem = if !destination.exists() {
                    "no such file"
                } else if !anchor.is_empty()
                    && !std::fs::read_to_string(&destination)
                        .is_ok_and(|text| anchors(&text).iter().any(|a| a == anchor))
                {
                    "no such heading"
                } else {
                    continue;
                };
                broken.push(format!("{}:{number}: {link}: {problem}", file.display()));
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} links found: is the parsing broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_follow_githubs_rules() {
    assert_eq!(
        anchors("# T\n## Templates (`-template`)\n```\n# not a heading\n```\n## A b\n## A b\n"),
        ["t", "templates--template", "a-b", "a-b-1"]
    );
}

#[test]
fn the_flags_reference_lists_every_flag() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let flag = regex::Regex::new(r"(?m)^\s+(?:-\w, )?--([a-z][a-z0-9-]*)").unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let reference = std::fs::read_to_string(format!("{root}/docs/flags.md")).unwrap();
    let flags: Vec<String> = flag.captures_iter(&help).map(|c| c[1].to_owned()).collect();
    assert!(
        flags.len() > 30,
        "only {} flags in --help:\n{help}",
        flags.len()
    );
    let missing: Vec<&String> = flags
        .iter()
        .filter(|name| !reference.contains(&format!("`-{name}")))
        .collect();
    assert!(missing.is_empty(), "docs/flags.md lacks {missing:?}");
}
