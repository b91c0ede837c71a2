//! Reloading: atomic saves, truncating saves, broken files, signals, symlink swaps. The old hook
//! set keeps serving until a new one loads cleanly.

use std::time::Duration;

use crate::harness::{Server, wait_until};

const ONE: &str = "- id: one\n  execute-command: /bin/true\n  response-message: first\n";
const TWO: &str = "- id: two\n  execute-command: /bin/true\n  response-message: second\n";

fn answers(server: &Server, id: &str, body: &str) -> bool {
    let r = server.get(&format!("/hooks/{id}"));
    r.status == 200 && r.text() == body
}

#[test]
fn atomic_rename_is_picked_up_again_and_again() {
    let s = Server::builder(ONE).arg("-hotreload").start();
    assert!(answers(&s, "one", "first"));
    // Several saves in a row: adnanh loses its watch after the first rename.
    for round in 0..3 {
        s.replace_hooks(TWO);
        assert!(
            wait_until(Duration::from_secs(5), || answers(&s, "two", "second")),
            "round {round}"
        );
        assert_eq!(s.get("/hooks/one").status, 404);
        s.replace_hooks(ONE);
        assert!(
            wait_until(Duration::from_secs(5), || answers(&s, "one", "first")),
            "round {round}"
        );
    }
}

#[test]
fn a_broken_file_keeps_the_running_hooks() {
    let s = Server::builder(ONE).arg("-hotreload").start();
    s.replace_hooks("- id: [unclosed\n");
    assert!(
        s.wait_for_log(
            "keeping the 1 hook(s) loaded before",
            Duration::from_secs(5)
        ),
        "{}",
        s.logs()
    );
    assert!(answers(&s, "one", "first"));
    s.replace_hooks(TWO);
    assert!(wait_until(Duration::from_secs(5), || answers(
        &s, "two", "second"
    )));
}

#[test]
fn a_truncating_save_never_empties_the_hook_set() {
    let s = Server::builder(ONE).arg("-hotreload").start();
    // Truncate, pause long enough for the watcher to look, then write.
    std::fs::write(&s.hooks_path, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        answers(&s, "one", "first"),
        "the hook set went empty during a truncating save"
    );
    std::fs::write(&s.hooks_path, TWO).unwrap();
    assert!(wait_until(Duration::from_secs(5), || answers(
        &s, "two", "second"
    )));
}

#[test]
fn sighup_and_sigusr1_reload_without_hotreload() {
    let s = Server::start(ONE);
    s.replace_hooks(TWO);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        answers(&s, "one", "first"),
        "no reload without a signal or -hotreload"
    );
    s.signal("HUP");
    assert!(wait_until(Duration::from_secs(5), || answers(
        &s, "two", "second"
    )));
    s.replace_hooks(ONE);
    s.signal("USR1");
    assert!(wait_until(Duration::from_secs(5), || answers(
        &s, "one", "first"
    )));
}

#[test]
fn a_symlink_swap_is_seen() {
    // The Kubernetes ConfigMap layout: hooks.yaml -> data/hooks.yaml, data -> v1; then data
    // is atomically repointed to v2. No event names hooks.yaml itself.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("v1")).unwrap();
    std::fs::create_dir(root.join("v2")).unwrap();
    std::fs::write(root.join("v1/hooks.yaml"), ONE).unwrap();
    std::fs::write(root.join("v2/hooks.yaml"), TWO).unwrap();
    std::os::unix::fs::symlink("v1", root.join("data")).unwrap();
    std::os::unix::fs::symlink("data/hooks.yaml", root.join("hooks.yaml")).unwrap();
    let link = root.join("hooks.yaml").display().to_string();
    let s = Server::builder("[]")
        .args(&["-hooks", &link, "-hotreload"])
        .start();
    assert!(answers(&s, "one", "first"));
    std::os::unix::fs::symlink("v2", root.join("data_tmp")).unwrap();
    std::fs::rename(root.join("data_tmp"), root.join("data")).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || answers(&s, "two", "second")),
        "{}",
        s.logs()
    );
}

#[test]
fn duplicate_ids_across_files_reject_the_reload() {
    // Start with two files, then make the second one define `one` too.
    let s = Server::builder(ONE)
        .args(&["-hooks", "{dir}/second.yaml"])
        .start();
    // second.yaml does not exist yet: skipped at start, as adnanh does.
    let second = s.dir.path().join("second.yaml");
    assert_eq!(s.get("/hooks/two").status, 404);
    std::fs::write(&second, TWO).unwrap();
    s.signal("HUP");
    assert!(wait_until(Duration::from_secs(5), || answers(
        &s, "two", "second"
    )));
    std::fs::write(&second, format!("{TWO}{ONE}")).unwrap();
    s.signal("HUP");
    assert!(
        s.wait_for_log("reload rejected", Duration::from_secs(5)),
        "{}",
        s.logs()
    );
    assert!(answers(&s, "one", "first"));
    assert!(answers(&s, "two", "second"));
}

#[test]
fn duplicate_ids_across_files_fail_the_start() {
    let s = Server::builder(ONE)
        .before_start(|dir| std::fs::write(dir.join("second.yaml"), ONE).unwrap())
        .args(&["-hooks", "{dir}/second.yaml"])
        .start_failing();
    assert!(s.logs().contains("defined in both"), "{}", s.logs());
}

/// `/-/health`'s hook count.
fn hook_count(server: &Server) -> u64 {
    let health = server.admin_get("/-/health");
    let value: serde_json::Value = serde_json::from_slice(&health.body).unwrap_or_default();
    value["hooks"].as_u64().unwrap_or(u64::MAX)
}

/// Waits until the server serves `count` hooks and each of `answering` with its message.
fn serves(server: &Server, count: u64, answering: &[(&str, &str)]) -> bool {
    wait_until(Duration::from_secs(5), || {
        hook_count(server) == count && answering.iter().all(|(id, body)| answers(server, id, body))
    })
}

/// A server whose only hooks come from `{dir}/hooks.d`, holding `files` (name, content).
fn with_hooks_directory(files: &[(&str, &str)], extra: &[&str]) -> crate::harness::Builder {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    Server::builder("[]")
        .before_start(move |dir| {
            std::fs::create_dir(dir.join("hooks.d")).unwrap();
            for (name, text) in files {
                std::fs::write(dir.join("hooks.d").join(name), text).unwrap();
            }
        })
        .args(&["-hooks", "{dir}/hooks.d"])
        .args(extra)
}

#[test]
fn a_directory_loads_its_hooks_files_in_name_order() {
    let s = with_hooks_directory(
        &[
            ("b.yaml", TWO),
            ("a.json", r#"[{"id": "one", "execute-command": "/bin/true", "response-message": "first"}]"#),
            ("c.toml", "[[hooks]]\nid = \"three\"\nexecute-command = \"/bin/true\"\nresponse-message = \"third\"\n"),
            ("notes.txt", "- id: not-a-hook\n  execute-command: /bin/true\n"),
            (".draft.yaml", "- id: hidden\n  execute-command: /bin/true\n"),
        ],
        &[],
    )
    .start();
    assert!(
        serves(
            &s,
            3,
            &[("one", "first"), ("two", "second"), ("three", "third")]
        ),
        "{}",
        s.logs()
    );
    assert_eq!(s.get("/hooks/not-a-hook").status, 404);
    assert_eq!(s.get("/hooks/hidden").status, 404);
    let logs = s.logs();
    let loaded = |name: &str| {
        logs.find(&format!("hooks.d/{name}"))
            .unwrap_or_else(|| panic!("{name} not loaded: {logs}"))
    };
    assert!(loaded("a.json") < loaded("b.yaml"), "{logs}");
    assert!(loaded("b.yaml") < loaded("c.toml"), "{logs}");
}

#[test]
fn a_glob_pattern_loads_the_files_it_matches() {
    let s = with_hooks_directory(
        &[
            ("a.yaml", ONE),
            ("b.yaml", TWO),
            (
                "c.json",
                "[{\"id\": \"three\", \"execute-command\": \"/bin/true\"}]",
            ),
        ],
        &[],
    )
    .args(&["-hooks", "{dir}/hooks.d/*.yaml"])
    .start();
    // The directory and the pattern name a.yaml and b.yaml both: each file loads once.
    assert!(
        serves(&s, 3, &[("one", "first"), ("two", "second")]),
        "{}",
        s.logs()
    );

    let only_yaml = Server::builder("[]")
        .before_start(|dir| {
            std::fs::create_dir(dir.join("conf")).unwrap();
            std::fs::write(dir.join("conf/a.yaml"), ONE).unwrap();
            std::fs::write(dir.join("conf/c.json"), TWO).unwrap();
        })
        .args(&["-hooks", "{dir}/conf/*.yaml"])
        .start();
    assert!(
        serves(&only_yaml, 1, &[("one", "first")]),
        "{}",
        only_yaml.logs()
    );
    assert_eq!(only_yaml.get("/hooks/two").status, 404);
}

#[test]
fn hot_reload_sees_files_added_removed_and_renamed_in_a_directory() {
    let s = with_hooks_directory(&[("a.yaml", ONE)], &["-hotreload"]).start();
    let dir = s.dir.path().join("hooks.d");
    assert!(serves(&s, 1, &[("one", "first")]), "{}", s.logs());

    std::fs::write(dir.join("b.yaml"), TWO).unwrap();
    assert!(
        serves(&s, 2, &[("one", "first"), ("two", "second")]),
        "added: {}",
        s.logs()
    );

    // Renamed to a name that is no hooks file: its hooks go.
    std::fs::rename(dir.join("b.yaml"), dir.join("b.yaml.off")).unwrap();
    assert!(
        serves(&s, 1, &[("one", "first")]),
        "renamed away: {}",
        s.logs()
    );
    assert_eq!(s.get("/hooks/two").status, 404);

    // And back under another hooks name.
    std::fs::rename(dir.join("b.yaml.off"), dir.join("c.yml")).unwrap();
    assert!(
        serves(&s, 2, &[("two", "second")]),
        "renamed back: {}",
        s.logs()
    );

    std::fs::remove_file(dir.join("a.yaml")).unwrap();
    assert!(serves(&s, 1, &[("two", "second")]), "removed: {}", s.logs());
    assert_eq!(s.get("/hooks/one").status, 404);

    // The same content again under the same name loads again.
    std::fs::write(dir.join("a.yaml"), ONE).unwrap();
    assert!(
        serves(&s, 2, &[("one", "first"), ("two", "second")]),
        "restored: {}",
        s.logs()
    );

    // An editor's atomic save: a hidden temporary file, never loaded (or `one` would be a
    // duplicate id), then renamed over the file. c.yml changes at the same time, so once its
    // change is served the directory has been read with the temporary file in it.
    std::fs::write(dir.join(".a.yaml.tmp"), ONE.replace("first", "saved")).unwrap();
    std::fs::write(dir.join("c.yml"), TWO.replace("second", "edited")).unwrap();
    assert!(
        serves(&s, 2, &[("one", "first"), ("two", "edited")]),
        "{}",
        s.logs()
    );
    assert!(!s.logs().contains("reload rejected"), "{}", s.logs());
    std::fs::rename(dir.join(".a.yaml.tmp"), dir.join("a.yaml")).unwrap();
    assert!(serves(&s, 2, &[("one", "saved")]), "saved: {}", s.logs());
}

#[test]
fn a_glob_pattern_sees_matching_files_added() {
    let s = Server::builder("[]")
        .before_start(|dir| {
            std::fs::create_dir(dir.join("conf")).unwrap();
            std::fs::write(dir.join("conf/a.yaml"), ONE).unwrap();
        })
        .args(&["-hooks", "{dir}/conf/*.yaml", "-hotreload"])
        .start();
    let dir = s.dir.path().join("conf");
    assert!(serves(&s, 1, &[("one", "first")]), "{}", s.logs());
    std::fs::write(dir.join("b.json"), TWO).unwrap();
    std::fs::write(dir.join("c.yaml"), TWO.replace("two", "three")).unwrap();
    assert!(serves(&s, 2, &[("three", "second")]), "{}", s.logs());
    assert_eq!(s.get("/hooks/two").status, 404, "b.json does not match");
}

#[test]
fn a_broken_file_in_a_directory_keeps_its_hooks_while_another_file_reloads() {
    let s = with_hooks_directory(&[("a.yaml", ONE), ("b.yaml", TWO)], &["-hotreload"]).start();
    let dir = s.dir.path().join("hooks.d");
    assert!(
        serves(&s, 2, &[("one", "first"), ("two", "second")]),
        "{}",
        s.logs()
    );

    std::fs::write(
        dir.join("a.yaml"),
        "- id: one\n  execute-command: [unclosed\n",
    )
    .unwrap();
    assert!(
        s.wait_for_log(
            "keeping the 1 hook(s) loaded before",
            Duration::from_secs(5)
        ),
        "{}",
        s.logs()
    );
    let place = format!("{}:2:", dir.join("a.yaml").display());
    assert!(
        s.logs().contains(&place),
        "the error names the file and line: {}",
        s.logs()
    );
    std::fs::write(dir.join("b.yaml"), TWO.replace("second", "changed")).unwrap();
    assert!(
        serves(&s, 2, &[("one", "first"), ("two", "changed")]),
        "{}",
        s.logs()
    );
}

#[test]
fn duplicate_ids_across_a_directorys_files_fail_the_start_naming_both() {
    let s = with_hooks_directory(&[("b.yaml", ONE), ("a.yaml", ONE)], &[]).start_failing();
    let dir = s.dir.path().join("hooks.d");
    let expected = format!(
        "hook `one` is defined in both {} and {}",
        dir.join("a.yaml").display(),
        dir.join("b.yaml").display()
    );
    assert!(s.logs().contains(&expected), "{}", s.logs());
}

#[test]
fn a_file_added_with_a_duplicate_id_is_rejected_naming_both() {
    let s = with_hooks_directory(&[("a.yaml", ONE)], &["-hotreload"]).start();
    let dir = s.dir.path().join("hooks.d");
    assert!(serves(&s, 1, &[("one", "first")]), "{}", s.logs());

    std::fs::write(
        dir.join("b.yaml"),
        format!("{TWO}{}", ONE.replace("first", "impostor")),
    )
    .unwrap();
    let expected = format!(
        "hook `one` is defined in both {} and {}",
        dir.join("a.yaml").display(),
        dir.join("b.yaml").display()
    );
    assert!(
        s.wait_for_log(&expected, Duration::from_secs(5)),
        "{}",
        s.logs()
    );
    assert!(s.logs().contains("reload rejected"), "{}", s.logs());
    assert!(serves(&s, 1, &[("one", "first")]), "{}", s.logs());
    assert_eq!(
        s.get("/hooks/two").status,
        404,
        "the whole reload is rejected"
    );

    // Dropping the duplicate from the other file applies b.yaml as it now stands.
    std::fs::write(dir.join("a.yaml"), "[]").unwrap();
    assert!(
        serves(&s, 2, &[("one", "impostor"), ("two", "second")]),
        "{}",
        s.logs()
    );
}

#[test]
fn a_broken_glob_pattern_fails_the_start_saying_where() {
    let s = Server::builder(ONE)
        .args(&["-hooks", "{dir}/hooks.d/[ab.yaml"])
        .start_failing();
    let position = s.dir.path().join("hooks.d/").display().to_string().len() + 1;
    let expected = format!("[ab.yaml: invalid glob pattern at character {position}");
    assert!(s.logs().contains(&expected), "{}", s.logs());
}
