//! Lays out the hookwire executable so that an idle server keeps little of it in memory.
//!
//! The kernel maps an executable's code in 64 KiB windows around each page first touched, so
//! code run at start-up but scattered over the binary stays resident although little of it
//! runs. Two link options help, where the linker and libc take them:
//! - `--symbol-ordering-file=layout/hookwire.order` places the functions that start-up and the
//!   request path run next to each other (`layout/generate` writes that list). Idle RSS falls
//!   by about 3 MiB.
//! - `-z pack-relative-relocs` shrinks the relocations that a static position-independent
//!   executable applies to itself at start from about 430 KB to 5 KB. glibc's start-up code
//!   reads the packed form from 2.36 on, so it is only used when linking glibc 2.36 or later.
//!
//! Each option is first tried on an empty program with the same compiler, target and flags:
//! a linker that rejects it (GNU ld has no symbol ordering) builds hookwire without it.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("layout")
        .join("hookwire.order");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={}", order.display());
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let probe = Probe::new();
    let ordering = [
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_owned(),
    ];
    let unordered = if !order.exists() {
        Some("layout/hookwire.order is missing (layout/generate writes it)")
    } else if !probe.links(&ordering) {
        Some("the linker does not take --symbol-ordering-file (LLD and mold do)")
    } else {
        ordering.iter().for_each(link_arg);
        None
    };
    if let Some(why) = unordered {
        println!(
            "cargo::warning={why}: hookwire is built without its code layout, and an idle \
             server holds about 3 MiB more memory"
        );
    }
    let packed = ["-Wl,-z,pack-relative-relocs".to_owned()];
    if static_glibc_reads_packed_relocations() && probe.links(&packed) {
        packed.iter().for_each(link_arg);
    }
}

fn link_arg(arg: &String) {
    println!("cargo::rustc-link-arg-bins={arg}");
}

/// True when the build links glibc statically and that glibc is 2.36 or later.
fn static_glibc_reads_packed_relocations() -> bool {
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu")
        || !features.split(',').any(|feature| feature == "crt-static")
    {
        return false;
    }
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    // "glibc 2.36"
    let version = String::from_utf8_lossy(&output.stdout);
    let mut numbers = version
        .trim()
        .trim_start_matches("glibc ")
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    (major, minor) >= (2, 36)
}

/// Links an empty program the way cargo links hookwire's binaries, to try a link option.
struct Probe {
    rustc: String,
    source: PathBuf,
    output: PathBuf,
}

impl Probe {
    fn new() -> Self {
        let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
        let source = out_dir.join("link_probe.rs");
        fs::write(
            &source,
            "fn main() { println!(\"{:?}\", std::env::args().count()); }\n",
        )
        .expect("OUT_DIR is writable");
        Probe {
            rustc: env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()),
            source,
            output: out_dir.join("link_probe"),
        }
    }

    fn links(&self, link_args: &[String]) -> bool {
        let mut rustc = Command::new(&self.rustc);
        rustc
            .args(["--edition=2021", "--crate-type=bin"])
            .arg(&self.source)
            .arg("-o")
            .arg(&self.output);
        if let Ok(target) = env::var("TARGET") {
            rustc.args(["--target", &target]);
        }
        if let Ok(linker) = env::var("RUSTC_LINKER") {
            rustc.arg(format!("-Clinker={linker}"));
        }
        let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
        rustc.args(flags.split('\u{1f}').filter(|flag| !flag.is_empty()));
        for arg in link_args {
            rustc.arg(format!("-Clink-arg={arg}"));
        }
        rustc.output().is_ok_and(|output| output.status.success())
    }
}
