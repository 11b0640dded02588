//! The repository's own rules, checked as tests (see ARCHITECTURE.md).

use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
};

/// Our crates and which of our crates each may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("primitives", &[]),
    ("market", &["primitives"]),
    ("ledger", &["primitives", "market"]),
    ("consensus", &["primitives"]),
    ("store", &["primitives", "ledger", "market"]),
    ("net", &["primitives"]),
    ("node", &["primitives", "ledger", "market", "consensus", "store", "net"]),
    ("rpc", &["primitives", "ledger", "market", "node", "store", "net"]),
    ("keystore", &["primitives"]),
    (
        "joule",
        &[
            "primitives",
            "ledger",
            "market",
            "consensus",
            "store",
            "node",
            "rpc",
            "keystore",
            "households",
        ],
    ),
    ("testkit", &["rpc", "primitives", "consensus"]),
    ("households", &["primitives", "market"]),
];

/// The pure core: no I/O, no async runtime, no clock, no randomness of their own, no JSON.
const PURE: &[&str] = &["primitives", "ledger", "market", "consensus", "households"];

/// Third-party crates a pure crate must not use.
const NOT_PURE: &[&str] = &[
    "tokio",
    "tokio-util",
    "futures",
    "redb",
    "jsonrpsee",
    "hyper",
    "axum",
    "tower",
    "tower-http",
    "serde_json",
    "rand",
    "snow",
    "tracing",
    "prometheus-client",
    "libc",
    "tempfile",
];

/// Crates that may speak JSON: the API, the binary and its wallet files, and test helpers.
const JSON_ALLOWED: &[&str] = &["rpc", "joule", "keystore", "testkit"];

struct Workspace {
    /// crate → (normal dependency names, all dependency names)
    crates: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    root: PathBuf,
}

fn workspace() -> Workspace {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let mut crates = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_owned();
        let mut normal = BTreeSet::new();
        let mut all = BTreeSet::new();
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let dependency_name = dependency["name"].as_str().expect("name").to_owned();
            if dependency["kind"].is_null() {
                normal.insert(dependency_name.clone());
            }
            all.insert(dependency_name);
        }
        crates.insert(name, (normal, all));
    }
    let root = PathBuf::from(metadata["workspace_root"].as_str().expect("root"));
    Workspace { crates, root }
}

#[test]
fn every_crate_is_known_and_depends_only_downwards() {
    let workspace = workspace();
    let ours: BTreeSet<&str> = ALLOWED.iter().map(|(name, _)| *name).collect();
    for (name, (normal, _)) in &workspace.crates {
        let allowed = ALLOWED
            .iter()
            .find(|(crate_name, _)| crate_name == name)
            .unwrap_or_else(|| panic!("crate {name} is not in the tidy test's table: add it with its allowed dependencies"))
            .1;
        for dependency in normal {
            if ours.contains(dependency.as_str()) {
                assert!(
                    allowed.contains(&dependency.as_str()),
                    "{name} must not depend on {dependency} (see ARCHITECTURE.md for the allowed directions)"
                );
            }
        }
        assert!(!normal.contains("testkit"), "testkit is for tests only, yet {name} depends on it");
    }
}

#[test]
fn the_pure_core_does_no_io() {
    let workspace = workspace();
    for name in PURE {
        let (normal, _) = &workspace.crates[*name];
        for forbidden in NOT_PURE {
            assert!(
                !normal.contains(*forbidden),
                "{name} is pure and must not depend on {forbidden}"
            );
        }
    }
}

#[test]
fn only_the_shells_speak_json() {
    let workspace = workspace();
    for (name, (normal, _)) in &workspace.crates {
        if normal.contains("serde_json") || normal.contains("serde") {
            assert!(
                JSON_ALLOWED.contains(&name.as_str()),
                "{name} must not know JSON: API types belong in rpc"
            );
        }
    }
}

#[test]
fn every_crate_says_what_it_is_and_uses_the_workspace_lints() {
    let workspace = workspace();
    for name in workspace.crates.keys() {
        let dir = workspace.root.join("crates").join(name);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("manifest");
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{name}/Cargo.toml must use the workspace lints"
        );
        assert!(manifest.contains("publish.workspace = true"), "{name} must not be publishable");
        let entry = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|file| dir.join(file))
            .find(|path| path.exists());
        let entry = entry.unwrap_or_else(|| panic!("{name} has no lib.rs or main.rs"));
        let source = std::fs::read_to_string(&entry).expect("source");
        assert!(
            source.starts_with("//!"),
            "{} must start with //! docs saying what the crate owns",
            entry.display()
        );
    }
}
