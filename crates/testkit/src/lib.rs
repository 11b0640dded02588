//! Dev-only helpers for Joule's tests.
//!
//! [`Devnet`] starts a real `joule devnet` (real processes, real sockets, real database files)
//! in a directory of its own and stops it when dropped; [`Process`] does the same for one
//! `joule node` started from a restart command. Tests wait on observable events (an API answers,
//! a height is reached), never on fixed sleeps.
//!
//! [`sim`] is a deterministic simulation of a network of nodes running the node's real
//! decision code (`node::core`) and consensus engine: seeded, in virtual time, with message
//! loss, partitions, crashes, validator set changes and byzantine validators.
//!
//! [`adversary`] is a hostile peer (any identity, any claimed address, any frame, reading
//! slowly or never) and [`netns`] a lab of hosts in network namespaces, for the attacks that
//! need several machines.
//!
//! [`npm`] installs the npm tools some tests run (the OpenRPC validator and test runner).
//!
//! This crate is never a dependency of a shipped crate (the `tidy` test checks it).

pub mod adversary;
pub mod netns;
pub mod npm;
pub mod sim;

use rpc::{JouleApiClient, client::HttpClientBuilder, dto::HeadDto};
use serde_json::Value;
use std::{
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Polls `condition` every 50 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The head of the node at `url`, if it answers.
pub async fn head(url: &str) -> Option<HeadDto> {
    let client = HttpClientBuilder::default().build(url).ok()?;
    client.chain_head().await.ok()
}

/// Waits until the node at `url` answers and its head is at least `height`.
pub async fn wait_for_height(url: &str, height: u64, timeout: Duration) -> HeadDto {
    wait_for(&format!("{url} to reach height {height}"), timeout, || async {
        head(url).await.filter(|head| head.height >= height)
    })
    .await
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) has no memory effects; a stale pid at worst gets ESRCH.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Whether a process with this pid exists (and is not a zombie of ours already reaped).
pub fn is_alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|pid| {
        // SAFETY: signal 0 only checks for existence.
        unsafe { libc::kill(pid, 0) == 0 }
    })
}

/// A child process that is killed when dropped.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` (program and arguments) with its output appended to `log`.
    pub fn spawn(command: &[String], log: &Path) -> Process {
        let log_file =
            std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let (program, arguments) = command.split_first().expect("a command");
        let child = Command::new(program)
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {program}: {error}"));
        Process { child, log: log.to_owned() }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the process to stop (SIGTERM) and waits for its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        self.wait(Duration::from_secs(30))
    }

    /// Kills the process with SIGKILL, as a power cut would.
    pub fn kill9(mut self) {
        signal(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }

    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "process {} did not stop within {timeout:?}; its log ends with:\n{}",
                    self.child.id(),
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `joule devnet` in its own directory.
pub struct Devnet {
    process: Option<Process>,
    dir: PathBuf,
    joule: PathBuf,
    /// The parsed `devnet.json`.
    pub file: Value,
}

impl Devnet {
    /// Starts `joule devnet --dir DIR --rpc-port 0 --p2p-port 0 ARGS…` (one validator and no
    /// simulated households unless ARGS say otherwise) and waits until `devnet.json` is
    /// written (which happens once every node answers).
    pub async fn start(joule: &Path, dir: &Path, args: &[&str]) -> Devnet {
        let mut command = vec![
            joule.display().to_string(),
            "devnet".to_owned(),
            "--dir".to_owned(),
            dir.display().to_string(),
            "--rpc-port".to_owned(),
            "0".to_owned(),
            "--p2p-port".to_owned(),
            "0".to_owned(),
        ];
        // Tests that are not about consensus run one validator: quicker, and the same chain
        // rules.
        if !args.contains(&"--validators") {
            command.extend(["--validators".to_owned(), "1".to_owned()]);
        }
        // Tests that are not about the simulated community run the bare chain.
        if !args.contains(&"--households") {
            command.extend(["--households".to_owned(), "0".to_owned()]);
        }
        command.extend(args.iter().map(|arg| (*arg).to_owned()));
        std::fs::create_dir_all(dir).expect("devnet dir");
        let log = dir.with_extension("log");
        let mut process = Process::spawn(&command, &log);
        let file_path = dir.join("devnet.json");
        let started = Instant::now();
        let file: Value = loop {
            let written = std::fs::read_to_string(&file_path)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .filter(|value| value["nodes"][0]["pid"].as_u64().unwrap_or(0) != 0);
            if let Some(value) = written {
                break value;
            }
            // Say what the devnet and its nodes printed, rather than only that it took too long.
            let exited = process.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > Duration::from_secs(120) {
                panic!(
                    "the devnet did not come up ({}, after {:.0?}); {}",
                    exited.map_or("still running".to_owned(), |status| format!("exited: {status}")),
                    started.elapsed(),
                    devnet_logs(dir, &log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Devnet { process: Some(process), dir: dir.to_owned(), joule: joule.to_owned(), file }
    }

    /// The devnet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The JSON-RPC URL of node `index`.
    pub fn rpc_url(&self, index: usize) -> String {
        self.file["nodes"][index]["rpc_url"].as_str().expect("rpc_url").to_owned()
    }

    /// The pid of node `index` as started by the devnet.
    pub fn node_pid(&self, index: usize) -> u32 {
        u32::try_from(self.file["nodes"][index]["pid"].as_u64().expect("pid")).expect("pid")
    }

    /// The command that restarts node `index`.
    pub fn restart_command(&self, index: usize) -> Vec<String> {
        self.file["nodes"][index]["command"]
            .as_array()
            .expect("command")
            .iter()
            .map(|part| part.as_str().expect("string").to_owned())
            .collect()
    }

    /// The data directory of node `index`.
    pub fn node_dir(&self, index: usize) -> PathBuf {
        PathBuf::from(self.file["nodes"][index]["dir"].as_str().expect("dir"))
    }

    /// Stops node `index` as started by the devnet (SIGTERM) and waits until it has exited.
    pub async fn stop_node(&self, index: usize) {
        let pid = self.node_pid(index);
        signal(pid, libc::SIGTERM);
        wait_for(&format!("node {index} to stop"), Duration::from_secs(30), || async {
            (!is_alive(pid)).then_some(())
        })
        .await;
    }

    /// Runs `joule ARGS…` against this devnet (JOULE_RPC, JOULE_KEYSTORE and
    /// JOULE_PASSWORD_FILE set) and returns its output.
    pub fn joule(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.joule)
            .args(args)
            .env("JOULE_RPC", self.rpc_url(0))
            .env("JOULE_KEYSTORE", self.dir.join("keystore"))
            .env("JOULE_PASSWORD_FILE", self.dir.join("password.txt"))
            .output()
            .expect("run joule")
    }

    /// Like [`Devnet::joule`], but asserts success and parses stdout as JSON.
    pub fn joule_json(&self, args: &[&str]) -> Value {
        let output = self.joule(args);
        assert!(
            output.status.success(),
            "joule {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|error| panic!("joule {args:?} printed no JSON ({error}): {stdout}"))
    }

    /// Stops the devnet with Ctrl-C (SIGINT) and returns its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut process = self.process.take().expect("running");
        signal(process.pid(), libc::SIGINT);
        process.wait(Duration::from_secs(60))
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            // Stop the nodes too, even when a test failed half-way.
            signal(process.pid(), libc::SIGINT);
            let _ = process.wait_quietly();
        }
    }
}

/// The last lines of a devnet's log and of each of its nodes' logs, for a failure message.
fn devnet_logs(dir: &Path, log: &Path) -> String {
    let tail = |path: &Path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    let mut out = format!("{}:\n{}", log.display(), tail(log));
    for index in 0.. {
        let node_log = dir.join(format!("node{index}")).join("node.log");
        if !node_log.exists() {
            break;
        }
        out.push_str(&format!("\n{}:\n{}", node_log.display(), tail(&node_log)));
    }
    out
}

impl Process {
    fn wait_quietly(mut self) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}
