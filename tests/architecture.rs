//! Architecture rules from DESIGN.md that the compiler does not enforce.

use std::fs;
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The planner is pure: no file system, environment, processes or GPU code.
#[test]
fn planner_is_pure() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan"), &mut files);
    assert!(!files.is_empty());
    let forbidden = [
        "std::fs",
        "std::process",
        "std::env",
        "crate::gpu",
        "crate::bench",
        "crate::catalog",
        "crate::commands",
        "cudarc",
        "nvml_wrapper",
    ];
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for f in forbidden {
            assert!(!text.contains(f), "{} uses {f}", file.display());
        }
    }
}
