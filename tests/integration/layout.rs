//! The executable's code layout (build.rs): the functions listed in layout/hookwire.order are
//! placed at the start of the code, and the relocations applied at start are packed.

use std::collections::HashMap;
use std::process::Command;

fn binutils(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .arg(env!("CARGO_BIN_EXE_hookwire"))
        .output()
        .unwrap_or_else(|error| panic!("{tool} (binutils) could not run: {error}"));
    assert!(output.status.success(), "{tool} failed: {output:?}");
    String::from_utf8(output.stdout).expect("binutils print ASCII")
}

/// Addresses of the executable's functions.
fn functions() -> HashMap<String, u64> {
    binutils("nm", &["--defined-only"])
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            let kind = fields.next()?;
            let name = fields.next()?;
            "tTW".contains(kind).then(|| (name.to_owned(), address))
        })
        .collect()
}

#[test]
fn functions_run_at_start_up_and_per_request_are_placed_first() {
    let functions = functions();
    let (start, end) = (
        functions.values().min().copied().unwrap(),
        functions.values().max().copied().unwrap(),
    );
    let order = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/layout/hookwire.order"
    ))
    .expect("layout/hookwire.order is in the repository");
    // Test builds name Rust functions differently from release builds; glibc's and SQLite's
    // functions keep their names, so they show whether the linker followed the list.
    let placed: Vec<u64> = order
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|name| functions.get(name).copied())
        .collect();
    assert!(
        placed.len() > 200,
        "only {} listed functions in the binary",
        placed.len()
    );
    assert_eq!(
        start, functions["_start"],
        "_start is the first function, as listed"
    );
    let first_tenth = start + (end - start) / 10;
    let early = placed
        .iter()
        .filter(|&&address| address < first_tenth)
        .count();
    assert!(
        early * 100 >= placed.len() * 95,
        "{early} of {} listed functions lie in the first tenth of the code",
        placed.len()
    );
}

#[test]
fn relative_relocations_are_packed_when_glibc_reads_them() {
    // build.rs packs them only for glibc 2.36 and later, whose start-up code reads the format.
    let version = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .unwrap()
        .stdout;
    let version = String::from_utf8_lossy(&version);
    let minor: u32 = version
        .trim()
        .trim_start_matches("glibc 2.")
        .parse()
        .unwrap_or(0);
    if minor < 36 {
        return;
    }
    let sections = binutils("readelf", &["--section-headers", "--wide"]);
    assert!(
        sections.contains(".relr.dyn"),
        "no packed relocations:\n{sections}"
    );
}
