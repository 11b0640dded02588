//! Embeds the dashboard (`dashboard/` at the repository root) in the binary: writes a table of
//! every file to serve, each with `include_bytes!`, so the node serves the web app with no files
//! beside it and the build needs no network and no Node toolchain.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Documentation and licence texts stay in the repository; everything else is served.
fn served(path: &Path) -> bool {
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
    !(name.ends_with(".md") || name == "LICENSE" || name.starts_with('.'))
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../../dashboard").canonicalize().expect("the dashboard directory");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut table = String::from("&[\n");
    for path in all.iter().filter(|path| served(path)) {
        let relative = path.strip_prefix(&root).expect("under the root");
        let url = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
        let _ = writeln!(table, "    ({url:?}, include_bytes!({:?})),", path.display().to_string());
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("assets.rs");
    std::fs::write(out, table).expect("write the asset table");
}
