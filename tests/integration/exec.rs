//! Running commands: argv, environment, files, working directory, background runs, process
//! groups, and hostile values passed without a shell.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::Server;

const HOOKS: &str = r#"
- id: record
  execute-command: {fixtures}/record.sh
  response-message: recorded
  pass-arguments-to-command:
    - {source: payload, name: a}
    - {source: payload, name: missing}
    - {source: payload, name: nested.value}
    - {source: string, name: constant}
  pass-environment-to-command:
    - {source: payload, name: a}
    - {source: payload, name: head_commit.id}
    - {source: payload, name: x-deploy-env}
    - {source: payload, name: a, envname: CUSTOM_NAME}
    - {source: payload, name: missing, envname: CUSTOM_MISSING}
- id: files
  execute-command: {fixtures}/cat-files.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: HOOK_DATA}
    - {source: string, name: CUSTOM_EXECTEST_FILE}
    - {source: string, name: HOOK_MISSING}
  pass-file-to-command:
    - {source: payload, name: data}
    - {source: payload, name: encoded, envname: CUSTOM_EXECTEST_FILE, base64decode: true}
    - {source: payload, name: missing}
- id: in-dir
  execute-command: record.sh
  command-working-directory: {fixtures}
  include-command-output-in-response: true
- id: pwd
  execute-command: /bin/pwd
  command-working-directory: /tmp
  include-command-output-in-response: true
- id: path-lookup
  execute-command: echo
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: found in PATH}
- id: split
  execute-command: /bin/echo hello
  include-command-output-in-response: true
- id: group
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'cut -d" " -f5 /proc/$$/stat; cut -d" " -f5 /proc/$PPID/stat'}
- id: signals
  execute-command: /bin/cat
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: /proc/self/status}
- id: escape
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: '(sleep 0.01; exec setsid sleep 1.5 >/dev/null 2>&1) & echo $!'}
- id: hostile
  execute-command: {fixtures}/echo-args.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: v}
"#;

#[test]
fn arguments_and_environment_follow_adnanh() {
    let s = Server::start(HOOKS);
    let body = r#"{"a":"alpha","nested":{"value":42.50},"head_commit":{"id":"c0ffee"},"x-deploy-env":"prod"}"#;
    let r = s.post("/hooks/record", "application/json", body);
    assert_eq!((r.status, r.text().as_str()), (200, "recorded"));
    let records = s.wait_for_records(1);
    let record = &records[0];
    // Missing arguments keep their position as empty strings; numbers keep their digits.
    assert_eq!(record.args, ["alpha", "", "42.50", "constant"]);
    assert_eq!(record.env.get("HOOK_a").map(String::as_str), Some("alpha"));
    assert_eq!(
        record.env.get("HOOK_head_commit.id").map(String::as_str),
        Some("c0ffee")
    );
    assert_eq!(
        record.env.get("HOOK_x-deploy-env").map(String::as_str),
        Some("prod")
    );
    assert_eq!(
        record.env.get("CUSTOM_NAME").map(String::as_str),
        Some("alpha")
    );
    assert!(
        !record.env.contains_key("CUSTOM_MISSING"),
        "missing values add no variable"
    );
}

#[test]
fn files_are_written_named_and_removed() {
    let s = Server::start(HOOKS);
    let body = r#"{"data":"file contents","encoded":"aGVsbG8gZmlsZQ=="}"#;
    let r = s.post("/hooks/files", "application/json", body);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "HOOK_DATA=absolute\nfile contents\nCUSTOM_EXECTEST_FILE=absolute\nhello file\nHOOK_MISSING=\n"
    );
    // Files live in the temp directory by default and are gone after the run.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("CUSTOM_EXECTEST_FILE")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn working_directory_and_lookup() {
    let s = Server::start(HOOKS);
    let r = s.get("/hooks/pwd");
    assert_eq!(r.text(), "/tmp\n");
    // A relative command is looked up inside the working directory.
    let r = s.get("/hooks/in-dir");
    assert_eq!(r.status, 200, "{}", r.text());
    let records = s.wait_for_records(1);
    assert!(records[0].cwd.ends_with("tests/fixtures"));
    assert_eq!(s.get("/hooks/path-lookup").text(), "found in PATH\n");
    // The command is never split on spaces.
    assert_eq!(s.get("/hooks/split").status, 500);
    assert!(s.wait_for_log("pass-arguments-to-command", Duration::from_secs(5)));
}

#[test]
fn each_run_has_its_own_process_group() {
    let s = Server::start(HOOKS);
    let r = s.get("/hooks/group");
    let text = r.text();
    let groups: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(groups.len(), 2, "{}", r.text());
    assert_ne!(
        groups[0], groups[1],
        "the command's group differs from hookwire's"
    );
}

#[test]
fn commands_start_with_no_signal_blocked_or_ignored() {
    let s = Server::start(HOOKS);
    // The command itself reads its status: what it shows is what it was started with.
    let r = s.get("/hooks/signals");
    assert_eq!(r.status, 200, "{}", r.text());
    let status = r.text();
    let mask = |field: &str| {
        let hex = status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} in {status}"));
        u64::from_str_radix(hex.trim(), 16).expect("a signal mask")
    };
    assert_eq!(mask("SigBlk:"), 0, "signals blocked in the command");
    // glibc's posix_spawn sets its two internal signals (32 and 33, bits 31 and 32) to ignored
    // in every child it starts; glibc programs install their handlers when they use them.
    let glibc_internal = (1 << 31) | (1 << 32);
    assert_eq!(
        mask("SigIgn:") & !glibc_internal,
        0,
        "signals ignored in the command"
    );
}

/// The children of `pid`, with their state letters.
fn children_states(pid: u32) -> Vec<(u32, char)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("hookwire's tasks");
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter_map(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some((child, state))
        })
        .collect()
}

#[test]
fn a_process_that_leaves_its_group_is_reaped_when_it_exits() {
    let s = Server::start(HOOKS);
    let r = s.get("/hooks/escape");
    assert_eq!(r.status, 200, "{}", r.text());
    let escaped: u32 = r.text().trim().parse().expect("the escaped pid");
    // The shell exits at once and its child leaves the group 10 ms later. Now that the shell is
    // gone, hookwire, the subreaper, is its parent.
    assert!(
        crate::harness::wait_until(Duration::from_secs(2), || children_states(s.pid())
            .iter()
            .any(|&(child, _)| child == escaped)),
        "pid {escaped} was not reparented to hookwire: {:?}",
        children_states(s.pid())
    );
    assert!(
        crate::harness::wait_until(Duration::from_secs(5), || !children_states(s.pid())
            .iter()
            .any(|&(child, _)| child == escaped)),
        "pid {escaped} is left behind: {:?}",
        children_states(s.pid())
    );
}

#[test]
fn hostile_values_reach_the_command_as_plain_arguments() {
    let s = Server::start(HOOKS);
    let canary = s.dir.path().join("pwned");
    for value in [
        format!("$(touch {})", canary.display()),
        format!("; touch {}", canary.display()),
        format!("`touch {}`", canary.display()),
        "line1\nline2".to_string(),
        "--help".to_string(),
        "' \" \\ * ?".to_string(),
    ] {
        let body = serde_json_string(&value);
        let r = s.post(
            "/hooks/hostile",
            "application/json",
            format!("{{\"v\":{body}}}"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("{value}\n"));
    }
    assert!(!canary.exists(), "a payload value was run by a shell");
}

/// `value` as a JSON string literal.
fn serde_json_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

#[test]
fn background_runs_finish_after_the_response() {
    let hooks = r#"
- id: slow
  execute-command: /bin/sh
  response-message: queued
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'sleep 0.3; touch "$RECORD_DIR/done"'}
"#;
    let s = Server::start(hooks);
    let started = std::time::Instant::now();
    let r = s.get("/hooks/slow");
    assert_eq!(r.text(), "queued");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the response waited for the command"
    );
    let done = s.dir.path().join("records/done");
    assert!(crate::harness::wait_until(Duration::from_secs(5), || done.exists()));
}

/// Hooks whose command starts `sleep` in the background (its pid in `$RECORD_DIR/<id>.pid`)
/// and exits: `leave` as webhook does, `clean` with `kill-leftovers`.
const LEFTOVERS: &str = r#"
- id: leave
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'sleep 1000 >/dev/null 2>&1 & echo $! >"$RECORD_DIR/leave.pid"'}
- id: clean
  execute-command: /bin/sh
  include-command-output-in-response: true
  kill-leftovers: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'sleep 1000 >/dev/null 2>&1 & echo $! >"$RECORD_DIR/clean.pid"'}
"#;

/// The pid a command wrote to `$RECORD_DIR/<name>.pid`, once it is there.
pub fn recorded_pid(s: &Server, name: &str) -> i32 {
    let file = s.dir.path().join(format!("records/{name}.pid"));
    let mut pid = None;
    assert!(
        crate::harness::wait_until(Duration::from_secs(10), || {
            pid = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| text.trim().parse().ok());
            pid.is_some()
        }),
        "no pid in {}",
        file.display()
    );
    pid.unwrap_or_default()
}

/// Whether `pid` is running (a zombie is not).
pub fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// Waits until `pid` has ended and been reaped.
pub fn assert_gone(pid: i32, what: &str) {
    assert!(
        crate::harness::wait_until(Duration::from_secs(5), || !std::path::Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "{what} (pid {pid}) is still there"
    );
}

/// Ends a process a test left running on purpose.
pub fn end(pid: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

#[test]
fn background_processes_outlive_the_run_as_with_webhook() {
    let s = Server::start(LEFTOVERS);
    // The answer comes once the run has ended, cleanup included.
    assert_eq!(s.get("/hooks/leave").status, 200);
    let pid = recorded_pid(&s, "leave");
    let alive = running(pid);
    end(pid);
    assert!(alive, "the background process {pid} was ended with the run");
}

#[test]
fn kill_leftovers_ends_background_processes_with_the_run() {
    let s = Server::start(LEFTOVERS);
    assert_eq!(s.get("/hooks/clean").status, 200);
    let pid = recorded_pid(&s, "clean");
    assert_gone(pid, "the background process");
}

#[test]
fn commands_know_their_run_hook_attempt_and_delivery() {
    let hooks = r#"
- id: signed
  execute-command: /bin/sh
  signature: {provider: github, secret: s3cret}
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'env >"$RECORD_DIR/$1.tmp" && mv "$RECORD_DIR/$1.tmp" "$RECORD_DIR/$1.env"'}
    - {source: string, name: sh}
    - {source: url, name: label}
- id: plain
  execute-command: /bin/sh
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'env >"$RECORD_DIR/$1.tmp" && mv "$RECORD_DIR/$1.tmp" "$RECORD_DIR/$1.env"'}
    - {source: string, name: sh}
    - {source: url, name: label}
"#;
    let s = Server::builder(hooks)
        // As if hookwire itself ran under another hookwire: its own values must not leak.
        .env("HOOKWIRE_DELIVERY_ID", "inherited")
        .start();
    let environment = |label: &str| -> BTreeMap<String, String> {
        let file = s.dir.path().join(format!("records/{label}.env"));
        assert!(
            crate::harness::wait_until(Duration::from_secs(10), || file.exists()),
            "{label}: the command did not run\n{}",
            s.logs()
        );
        std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|line| line.starts_with("HOOKWIRE_"))
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    };

    let body = r#"{"ref":"refs/heads/main"}"#;
    let signature = format!(
        "sha256={}",
        crate::harness::hmac_hex("sha256", b"s3cret", body.as_bytes())
    );
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let r = s
        .request("POST", "/hooks/signed?label=signed")
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", &signature)
        .header("X-GitHub-Delivery", delivery)
        .body(body)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let run = r.header("X-Hookwire-Run").expect("a run id").to_owned();
    let env = environment("signed");
    let expected: BTreeMap<String, String> = [
        ("HOOKWIRE_RUN_ID", run.as_str()),
        ("HOOKWIRE_HOOK_ID", "signed"),
        ("HOOKWIRE_ATTEMPT", "1"),
        ("HOOKWIRE_DELIVERY_ID", delivery),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(env, expected);

    // No delivery id from the sender: none in the environment.
    let r = s.get("/hooks/plain?label=plain");
    let run = r.header("X-Hookwire-Run").expect("a run id").to_owned();
    let env = environment("plain");
    assert_eq!(env.get("HOOKWIRE_RUN_ID"), Some(&run));
    assert_eq!(
        env.get("HOOKWIRE_HOOK_ID").map(String::as_str),
        Some("plain")
    );
    assert_eq!(env.get("HOOKWIRE_DELIVERY_ID"), None);
}
