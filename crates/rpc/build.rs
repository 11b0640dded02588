//! Embeds the dashboard (`dashboard/` at the repository root) in the binary: writes a table of
//! every file to serve, each with `include_bytes!`, so the node serves the web app with no files
//! beside it and the build needs no network and no Node toolchain. Also names the commit the
//! build is made from (`JOULE_COMMIT`, for `joule --version` and the build-info metric).

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

/// `git describe --always --dirty --abbrev=12` of the checkout, `JOULE_COMMIT` if set, else
/// `unknown` (a build from a source archive).
fn commit(root: &Path) -> String {
    println!("cargo:rerun-if-env-changed=JOULE_COMMIT");
    if let Ok(commit) = std::env::var("JOULE_COMMIT") {
        return commit;
    }
    // Rebuild when HEAD moves: HEAD itself, the branch it names, and the index (dirtiness). In
    // a worktree `.git` is a file naming the real directory, whose `commondir` holds the refs.
    let mut git = root.join(".git");
    if let Ok(text) = std::fs::read_to_string(&git)
        && let Some(dir) = text.trim().strip_prefix("gitdir: ")
    {
        git = root.join(dir);
    }
    let common = std::fs::read_to_string(git.join("commondir"))
        .map_or_else(|_| git.clone(), |dir| git.join(dir.trim()));
    let mut watched = vec![git.join("HEAD"), git.join("index"), common.join("packed-refs")];
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(branch) = head.trim().strip_prefix("ref: ")
    {
        watched.push(common.join(branch));
    }
    for file in watched.iter().filter(|file| file.exists()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let repository = manifest.join("../..");
    println!("cargo:rustc-env=JOULE_COMMIT={}", commit(&repository));
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
