//! What the command gets and what its end means: `stdin` (the body or the payload on standard
//! input), `exit-code-status` (the answer's status by the exit code) and `run-as` (the command
//! as another user, hookwire as root).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Server, check_in, finished, run_id, wait_until};

/// `stdin: body` into a file, and `stdin: payload` echoed as the answer.
const STDIN_HOOKS: &str = r#"
- id: body-to-file
  execute-command: /bin/sh
  stdin: body
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'cat > "$1"; wc -c < "$1"'}
    - {source: string, name: sh}
    - {source: string, name: '{dir}/stdin.bin'}
- id: payload
  execute-command: /bin/cat
  stdin: payload
  include-command-output-in-response: true
- id: ignores-stdin
  execute-command: /bin/sh
  stdin: body
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'exec 3<&0; sleep 30 <&3 3<&- >/dev/null 2>&1 & echo ignored'}
  kill-leftovers: true
- id: no-stdin
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'cat; echo end'}
"#;

/// A body of `len` bytes that is not one repeated byte (every position is checked).
fn big_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_large_body_reaches_standard_input_byte_for_byte_and_again_on_a_rerun() {
    let s = Server::builder(STDIN_HOOKS)
        .args(&["-state-dir", "{dir}/state"])
        .start();
    let body = big_body(5 << 20);
    let written = s.dir.path().join("stdin.bin");
    let response = s.post(
        "/hooks/body-to-file",
        "application/octet-stream",
        body.clone(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text().trim(), (5 << 20).to_string());
    assert!(
        std::fs::read(&written).unwrap() == body,
        "stdin differs from the body"
    );

    // A rerun plans the stored request again: the same bytes reach the new run's stdin.
    std::fs::remove_file(&written).unwrap();
    let id = run_id(&response);
    let rerun = s.admin("POST", &format!("/-/runs/{id}/rerun")).send();
    assert_eq!(rerun.status, 202, "{}", rerun.text());
    let again: Value = serde_json::from_slice(&rerun.body).unwrap();
    let new_id = again["id"].as_str().expect("the new run's id");
    assert_eq!(finished(&s, new_id)["status"], "succeeded");
    assert!(
        std::fs::read(&written).unwrap() == body,
        "the rerun's stdin differs"
    );
}

#[test]
fn stdin_payload_is_the_parsed_payload_as_json_for_json_and_form_bodies() {
    let s = Server::start(STDIN_HOOKS);
    let json = s.post(
        "/hooks/payload",
        "application/json",
        r#"{"b": 1.50, "a": {"x": [true, null]}}"#,
    );
    assert_eq!(json.status, 200);
    let parsed: Value = serde_json::from_str(&json.text()).expect("JSON on stdin");
    assert_eq!(parsed["a"], serde_json::json!({"x": [true, null]}));
    // The digits as sent, keys sorted: as `entire-payload` renders it.
    assert_eq!(json.text(), r#"{"a":{"x":[true,null]},"b":1.50}"#);

    let form = s.post(
        "/hooks/payload",
        "application/x-www-form-urlencoded",
        "ref=refs%2Fheads%2Fmain&n=2",
    );
    assert_eq!(form.status, 200);
    assert_eq!(form.text(), r#"{"n":"2","ref":"refs/heads/main"}"#);
}

#[test]
fn a_command_that_does_not_read_its_stdin_ends_normally() {
    let s = Server::start(STDIN_HOOKS);
    // Far more than a pipe holds, and a background process keeps the pipe open unread.
    let started = Instant::now();
    let response = s.post("/hooks/ignores-stdin", "text/plain", big_body(8 << 20));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "ignored\n");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The server is still answering.
    let again = s.post("/hooks/payload", "application/json", "{}");
    assert_eq!(again.text(), "{}");
}

#[test]
fn without_stdin_the_command_reads_nothing() {
    let s = Server::start(STDIN_HOOKS);
    let response = s.post("/hooks/no-stdin", "text/plain", "not for the command");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "end\n");
}

const EXIT_HOOKS: &str = r#"
- id: mapped
  execute-command: /bin/sh
  include-command-output-in-response: true
  exit-code-status: {0: 200, 3: 409, default: 500}
  pass-arguments-to-command: &exit
    - {source: string, name: -c}
    - {source: string, name: 'echo out; exit "$1"'}
    - {source: string, name: sh}
    - {source: url, name: code}
- id: mapped-with-output
  execute-command: /bin/sh
  include-command-output-in-response: true
  include-command-output-in-response-on-error: true
  exit-code-status: {3: 409, 4: 202}
  pass-arguments-to-command: *exit
- id: unmapped
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command: *exit
"#;

const COMMAND_ERROR: &str =
    "Error occurred while executing the hook's command. Please check your logs for more details.";

#[test]
fn exit_code_status_chooses_the_answers_status_by_the_exit_code() {
    let s = Server::start(EXIT_HOOKS);
    let answer = |hook: &str, code: u8| s.get(&format!("/hooks/{hook}?code={code}"));

    let ok = answer("mapped", 0);
    assert_eq!((ok.status, ok.text().as_str()), (200, "out\n"));
    // The body stays as without the mapping: a failed command's is the error message.
    let conflict = answer("mapped", 3);
    assert_eq!(
        (conflict.status, conflict.text().as_str()),
        (409, COMMAND_ERROR)
    );
    let other = answer("mapped", 7);
    assert_eq!((other.status, other.text().as_str()), (500, COMMAND_ERROR));

    let shown = answer("mapped-with-output", 3);
    assert_eq!((shown.status, shown.text().as_str()), (409, "out\n"));
    let accepted = answer("mapped-with-output", 4);
    assert_eq!(accepted.status, 202);
    // No default: every other end is answered as today.
    let unlisted = answer("mapped-with-output", 7);
    assert_eq!((unlisted.status, unlisted.text().as_str()), (500, "out\n"));
    assert_eq!(answer("mapped-with-output", 0).status, 200);

    assert_eq!(answer("unmapped", 3).status, 500);
    assert_eq!(answer("unmapped", 0).status, 200);
}

#[test]
fn check_and_explain_show_the_fields_and_check_warns_where_they_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = r#"
- id: deploy
  execute-command: /bin/cat
  stdin: payload
  include-command-output-in-response: true
  stream-output: true
  exit-code-status: {0: 200, 3: 409, default: 500}
- id: background
  execute-command: /bin/true
  exit-code-status: {1: 409}
"#;
    std::fs::write(dir.path().join("hooks.yaml"), hooks).unwrap();
    let (code, text) = check_in(dir.path(), &["hooks.yaml"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("stdin:      the parsed payload, as JSON"),
        "{text}"
    );
    assert!(
        text.contains("status:     by exit code {0: 200, 3: 409, default: 500}"),
        "{text}"
    );
    assert!(text.contains("no effect with `stream-output`"), "{text}");
    assert!(text.contains("hooks.yaml:10:21"), "{text}");
    assert!(
        text.contains("the answer does not wait for the command"),
        "{text}"
    );

    // `explain` shows what the command would read.
    std::fs::write(dir.path().join("body.json"), r#"{"ref": "main"}"#).unwrap();
    let explained = Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args([
            "explain",
            "deploy",
            "--hooks",
            "hooks.yaml",
            "--body",
            "body.json",
        ])
        .args(["--content-type", "application/json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let explained = String::from_utf8_lossy(&explained.stdout);
    assert!(
        explained.contains(r#"stdin:    14 bytes: "{\"ref\":\"main\"}""#),
        "{explained}"
    );

    std::fs::write(
        dir.path().join("bad.yaml"),
        "- id: x\n  exit-code-status: {0: 200, 300: 500}\n",
    )
    .unwrap();
    let (code, text) = check_in(dir.path(), &["bad.yaml"]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("bad.yaml:2:30"), "{text}");
    assert!(text.contains("`300` is not an exit code"), "{text}");
}

/// `user`'s entry in the system's databases, as `id` and `getent` tell it.
fn system(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// What the command reports about itself, one item a line.
const WHO: &str = r#"id -u; id -g; id -G; echo "$HOME"; echo "${USER-unset}"; echo "${LOGNAME-unset}"; cat "$NOTE""#;

fn run_as_hooks(run_as: &str) -> String {
    format!(
        r#"
- id: who
  execute-command: /bin/sh
  command-working-directory: /tmp
  run-as: "{run_as}"
  include-command-output-in-response: true
  include-command-output-in-response-on-error: true
  pass-file-to-command:
    - {{source: string, name: a note, envname: NOTE}}
  pass-arguments-to-command:
    - {{source: string, name: -c}}
    - {{source: string, name: '{WHO}'}}
"#
    )
}

#[test]
#[ignore = "needs root to switch users"]
fn run_as_a_user_gives_its_ids_groups_and_home() {
    let s = Server::start(&run_as_hooks("daemon"));
    let response = s.get("/hooks/who");
    assert_eq!(response.status, 200, "{}", response.text());
    let home = system(&["getent", "passwd", "daemon"])
        .split(':')
        .nth(5)
        .unwrap()
        .to_owned();
    let expected = [
        system(&["id", "-u", "daemon"]),
        system(&["id", "-g", "daemon"]),
        system(&["id", "-G", "daemon"]),
        home,
        "daemon".to_owned(),
        "daemon".to_owned(),
        // The `pass-file-to-command` file is the user's to read.
        "a note".to_owned(),
    ];
    assert_eq!(response.text().lines().collect::<Vec<_>>(), expected);
}

/// A user of its own with supplementary groups; removed on drop.
struct TestUser(String);

impl TestUser {
    fn create(groups: &str) -> Self {
        let name = format!("hw{}", std::process::id());
        let status = Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--groups", groups, &name])
            .status()
            .expect("useradd");
        assert!(status.success(), "useradd {name}");
        Self(name)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root to switch users (and useradd)"]
fn run_as_a_user_keeps_its_supplementary_groups() {
    let user = TestUser::create("daemon,bin");
    let s = Server::start(&run_as_hooks(&user.0));
    let response = s.get("/hooks/who");
    assert_eq!(response.status, 200, "{}", response.text());
    let lines: Vec<String> = response.text().lines().map(str::to_owned).collect();
    let groups: Vec<&str> = lines[2].split(' ').collect();
    assert!(
        groups.contains(&"1") && groups.contains(&"2"),
        "daemon (1) and bin (2) among {groups:?}"
    );
    assert_eq!(lines[2], system(&["id", "-G", &user.0]));
    assert_eq!(lines[4], user.0);
}

#[test]
#[ignore = "needs root to switch users"]
fn run_as_uid_gid_sets_exactly_those_ids() {
    let s = Server::start(&run_as_hooks("65534:65533"));
    let response = s.get("/hooks/who");
    assert_eq!(response.status, 200, "{}", response.text());
    let lines: Vec<&str> = response.text().leak().lines().collect();
    assert_eq!(lines[..3], ["65534", "65533", "65533"]);
    // 65534 is `nobody` on Debian: its name and home.
    let nobody = system(&["getent", "passwd", "65534"]);
    let fields: Vec<&str> = nobody.split(':').collect();
    assert_eq!(lines[3..6], [fields[5], fields[0], fields[0]]);
}

#[test]
#[ignore = "needs root to switch users"]
fn an_unknown_run_as_user_is_a_load_error_with_its_place() {
    let hooks = "- id: who\n  execute-command: /bin/true\n  run-as: no-such-user-hw\n";
    let s = Server::start(hooks);
    assert!(
        s.wait_for_log("unknown user `no-such-user-hw`", Duration::from_secs(10)),
        "{}",
        s.logs()
    );
    assert!(s.logs().contains("hooks.yaml:3:11"), "{}", s.logs());
    // Not loaded: nothing runs as hookwire's own user instead.
    assert_eq!(s.get("/hooks/who").status, 404);
}

#[test]
#[ignore = "needs root to switch users"]
fn a_timeout_ends_a_run_as_command_and_what_left_its_group() {
    let hooks = r#"
- id: slow
  execute-command: /bin/sh
  command-working-directory: /tmp
  run-as: nobody
  timeout: 1s
  include-command-output-in-response: true
  include-command-output-in-response-on-error: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'setsid sleep 1000 >/dev/null 2>&1 & echo $!; sleep 60'}
"#;
    let s = Server::builder(hooks)
        .args(&["-kill-grace", "300ms"])
        .start();
    let started = Instant::now();
    let response = s.get("/hooks/slow");
    assert_eq!(response.status, 500, "{}", response.text());
    assert!(started.elapsed() < Duration::from_secs(10));
    let escaped = response.text().trim().to_owned();
    assert!(!escaped.is_empty());
    let proc_dir = format!("/proc/{escaped}");
    assert!(
        wait_until(Duration::from_secs(10), || !Path::new(&proc_dir).exists()),
        "the run-as process {escaped} that left the group survived the timeout"
    );
}
