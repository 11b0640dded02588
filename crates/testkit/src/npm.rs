//! Tools from the npm registry that tests run (the OpenRPC project's validator and test
//! runner): installed with `npm` into a cache directory the first time a test needs them, under
//! a lock so that tests running at once install once. The build never needs Node.js; the tests
//! that use these need `node` and `npm` (`scripts/test` installs Debian's `nodejs` and `npm`).

use std::{
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::Command,
};

/// Makes sure `packages` (each `name@version`) are installed under `dir`; returns the
/// `node_modules` directory to put in `NODE_PATH`. Panics, saying what is missing, when `npm`
/// cannot install them.
pub fn install(dir: &Path, packages: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("the npm cache directory");
    let lock = std::fs::File::create(dir.join(".lock")).expect("the npm cache lock");
    // SAFETY: flock on a descriptor we own, released when `lock` is closed.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) },
        0,
        "lock {}",
        dir.display()
    );
    let wanted = packages.join("\n");
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let output = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--no-save", "--prefix"])
            .arg(dir)
            .args(packages)
            .output()
            .expect("npm (Debian packages nodejs and npm; scripts/test installs them)");
        assert!(
            output.status.success(),
            "npm install {packages:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&marker, &wanted).expect("the npm cache marker");
    }
    drop(lock);
    dir.join("node_modules")
}
