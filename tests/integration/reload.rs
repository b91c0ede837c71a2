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
    let mut s = Server::builder(ONE)
        .args(&["-hooks", "{dir}/hooks.yaml"])
        .no_wait()
        .start();
    assert_eq!(
        s.wait_exit(Duration::from_secs(10)),
        Some(1),
        "{}",
        s.logs()
    );
    assert!(s.logs().contains("defined in both"), "{}", s.logs());
}
