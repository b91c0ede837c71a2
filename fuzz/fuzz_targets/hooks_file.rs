//! The hooks-file loader: YAML (also JSON) and TOML, with and without `-template`.
#![no_main]

use std::path::Path;

use hookwire::config::LoadOptions;
use hookwire::config::compile::compile_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let name = match selector % 3 {
        0 => "hooks.yaml",
        1 => "hooks.json",
        _ => "hooks.toml",
    };
    let options = LoadOptions {
        template: selector & 0x80 != 0,
    };
    // A directory that does not exist: `{file: ...}` secrets fail instead of reading files.
    let path = Path::new("/nonexistent-hookwire-fuzz").join(name);
    if let Ok(loaded) = compile_file(&path, file, &options) {
        // Debug output walks every compiled value (and must never show a secret's bytes).
        let _ = format!("{:?}", loaded.hooks);
    }
});
