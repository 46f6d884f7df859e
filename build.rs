//! Embeds the built-in model catalog: generates `models.rs` in OUT_DIR with one `include_str!`
//! per config listed in `data/models/index.toml`, so the binary carries its catalog as data.

use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models");
    println!("cargo:rerun-if-changed={}", dir.display());
    let index = dir.join("index.toml");
    let text = fs::read_to_string(&index).unwrap_or_default();
    let mut code = String::from("/// (config file name, contents) for every config in data/models.\n");
    code.push_str("pub static CONFIGS: &[(&str, &str)] = &[\n");
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("config") else { continue };
        let Some(name) = rest.trim_start().strip_prefix('=').map(|v| v.trim().trim_matches('"')) else {
            continue;
        };
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        code.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    code.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("models.rs");
    fs::write(out, code).expect("OUT_DIR is writable");
}
