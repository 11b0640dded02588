//! What an operator relies on: `/health` and `joule status` say when the chain stalls and when
//! it is well again; `joule send --wait` does not wait out its timeout on a stalled chain; the
//! wallet never panics into a closed pipe, prints errors as JSON under `--json`, takes a bare
//! `HOST:PORT`, makes key files, completes in shells and names its commit; a devnet refuses to
//! run twice on one directory and to resume with settings its chain cannot have.

use crate::{FAST, FOUR, joule};
use serde_json::Value;
use std::{
    os::unix::process::ExitStatusExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use testkit::{Devnet, wait_for, wait_for_height};

/// `GET /health` of a node: the HTTP status and the JSON it answers.
async fn health(url: &str) -> Option<(u16, Value)> {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    Some((status, serde_json::from_str(body.trim()).ok()?))
}

/// Waits until node `url`'s health answers `status`; returns how long it took.
async fn wait_health(url: &str, status: u16, within: Duration) -> Duration {
    let started = Instant::now();
    wait_for(&format!("/health {status} on {url}"), within, || async {
        health(url).await.filter(|(code, _)| *code == status).map(|_| ())
    })
    .await;
    started.elapsed()
}

/// The error a failed `--json` command printed on standard error.
fn json_error(output: &std::process::Output) -> Value {
    assert!(!output.status.success(), "it succeeded: {}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error: Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|problem| panic!("stderr is not JSON ({problem}): {stderr}"));
    assert!(error["error"]["message"].is_string(), "{error}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_status_say_when_two_of_four_validators_are_down() {
    let temp = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(&joule(), &temp.path().join("devnet"), FOUR).await;
    let url = devnet.rpc_url(0);
    wait_for_height(&url, 3, Duration::from_secs(60)).await;
    wait_health(&url, 200, Duration::from_secs(30)).await;
    let status = devnet.joule_json(&["status", "--json"]);
    assert_eq!(status["health"]["status"], "ok", "{status}");
    let text = String::from_utf8_lossy(&devnet.joule(&["status"]).stdout).to_string();
    assert!(text.contains("health     ok: the chain advances"), "{text}");

    // Two of four validators down: no more than two thirds of the power is up.
    testkit::signal(devnet.node_pid(3), 9);
    testkit::signal(devnet.node_pid(2), 9);
    let took = wait_health(&url, 503, Duration::from_secs(20)).await;
    let (_, verdict) = health(&url).await.unwrap();
    assert_eq!(verdict["status"], "stalled", "{verdict}");
    let interval = verdict["block_interval_ms"].as_u64().unwrap();
    eprintln!(
        "unhealthy {:.1} s after the second validator died (block interval {interval} ms, stall after {} ms)",
        took.as_secs_f64(),
        verdict["stall_after_ms"]
    );
    let text = String::from_utf8_lossy(&devnet.joule(&["status"]).stdout).to_string();
    assert!(text.contains("STALLED: the chain is stalled: no block for"), "{text}");

    // A transfer waits in the mempool; --wait says why instead of waiting out 60 s.
    let started = Instant::now();
    let output = devnet
        .joule(&["send", "--from", "alice", "--to", "bob", "--amount", "5", "--wait", "--json"]);
    let error = json_error(&output);
    assert_eq!(error["error"]["reason"], "chain_stalled", "{error}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());

    // Both back: healthy again, and the transfer goes through.
    let mut restarted = Vec::new();
    for index in [2, 3] {
        let command = devnet.restart_command(index);
        restarted.push(testkit::Process::spawn(
            &command,
            &devnet.dir().join(format!("restart{index}.log")),
        ));
    }
    let took = wait_health(&url, 200, Duration::from_secs(60)).await;
    eprintln!("healthy again {:.1} s after the restarts", took.as_secs_f64());
    let status = devnet.joule_json(&["status", "--wait-healthy", "30", "--json"]);
    assert_eq!(status["health"]["healthy"], true, "{status}");
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallet_never_panics_prints_json_errors_and_takes_what_people_type() {
    let temp = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(&joule(), &temp.path().join("devnet"), FAST).await;
    let url = devnet.rpc_url(0);
    wait_for_height(&url, 2, Duration::from_secs(60)).await;
    devnet.joule_json(&[
        "send", "--from", "alice", "--to", "bob", "--amount", "7", "--wait", "--json",
    ]);

    // Into a closed pipe: the reader is gone before anything is written.
    for args in [
        &["history", "alice"][..],
        &["block", "latest"],
        &["status"],
        &["account", "list"],
        &["--help"],
    ] {
        let mut child = Command::new(joule())
            .args(args)
            .env("JOULE_RPC", &url)
            .env("JOULE_KEYSTORE", devnet.dir().join("keystore"))
            .env("JOULE_PASSWORD_FILE", devnet.dir().join("password.txt"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            output.status
        );
    }

    // Errors under --json, from the node, from the wallet and from the command line.
    let error = json_error(&devnet.joule(&["tx", "zz", "--json"]));
    assert_eq!(error["error"]["code"], -32602, "{error}");
    let error = json_error(&devnet.joule(&[
        "send",
        "--from",
        "alice",
        "--to",
        "bob",
        "--amount",
        "999999999999",
        "--wait",
        "--json",
    ]));
    assert_eq!(error["error"]["reason"], "insufficient_balance", "{error}");
    let error = json_error(&devnet.joule(&["balance", "nobody-here", "--json"]));
    assert!(error["error"]["message"].as_str().unwrap().contains("nobody-here"), "{error}");
    let error = json_error(&devnet.joule(&["status", "--rpc", "127.0.0.1:1", "--json"]));
    assert_eq!(error["error"]["reason"], "unreachable", "{error}");
    let output =
        devnet.joule(&["send", "--from", "alice", "--to", "bob", "--amount", "-5", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let error = json_error(&output);
    assert_eq!(error["error"]["reason"], "usage", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("cannot be negative"), "{error}");
    let text = String::from_utf8_lossy(
        &devnet.joule(&["send", "--from", "alice", "--to", "bob", "--amount", "-5"]).stderr,
    )
    .to_string();
    assert!(text.contains("an amount cannot be negative"), "{text}");

    // A bare HOST:PORT is an http URL.
    let bare = url.trim_start_matches("http://");
    let status = devnet.joule_json(&["status", "--rpc", bare, "--json"]);
    assert_eq!(status["chain_id"], "joule-devnet");
    assert!(status["version"].as_str().unwrap().contains('+'), "{status}");

    // Times for people, raw values for scripts.
    let text = String::from_utf8_lossy(&devnet.joule(&["block", "latest"]).stdout).to_string();
    let time = text.lines().find(|line| line.starts_with("time")).unwrap();
    assert!(time.contains("Z (") && time.contains(" ms)"), "{time}");

    // Key files: made, never overwritten, shown.
    let key = temp.path().join("late").join("validator.key");
    let made = devnet.joule_json(&["key", "new", "--out", key.to_str().unwrap(), "--json"]);
    let address = made["address"].as_str().unwrap().to_owned();
    assert!(address.starts_with("joule1"), "{made}");
    let shown =
        String::from_utf8_lossy(&devnet.joule(&["key", "show", key.to_str().unwrap()]).stdout)
            .trim()
            .to_owned();
    assert_eq!(shown, address);
    let error =
        json_error(&devnet.joule(&["key", "new", "--out", key.to_str().unwrap(), "--json"]));
    assert!(error["error"]["message"].as_str().unwrap().contains("never overwritten"), "{error}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);

    // Completions and the version.
    let bash = String::from_utf8_lossy(&devnet.joule(&["completions", "bash"]).stdout).to_string();
    assert!(bash.contains("complete -F") && bash.contains("devnet"), "{bash}");
    let version = String::from_utf8_lossy(&devnet.joule(&["--version"]).stdout).to_string();
    assert!(version.starts_with("joule 0.") && version.contains("(commit "), "{version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_runs_once_per_directory_and_keeps_its_settings() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FAST).await;
    wait_for_height(&devnet.rpc_url(0), 2, Duration::from_secs(60)).await;
    let before = std::fs::read_to_string(dir.join("devnet.json")).unwrap();

    // A second one on the same directory stops at once and touches nothing.
    let second = Command::new(joule())
        .args(["devnet", "--dir", dir.to_str().unwrap(), "--households", "0", "--validators", "1"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is already running"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("devnet.json")).unwrap(), before);
    assert!(testkit::is_alive(devnet.node_pid(0)), "the running node survives");
    wait_for_height(&devnet.rpc_url(0), 4, Duration::from_secs(30)).await;
    // --fresh does not delete a running devnet either.
    let fresh = Command::new(joule())
        .args(["devnet", "--dir", dir.to_str().unwrap(), "--fresh", "--households", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&fresh.stderr).contains("is already running"));
    assert!(dir.join("devnet.json").exists());
    assert!(devnet.stop().success());

    // Resumed with a slot length its genesis does not have: refused, saying so.
    let resumed = Command::new(joule())
        .args([
            "devnet",
            "--dir",
            dir.to_str().unwrap(),
            "--households",
            "0",
            "--validators",
            "1",
            "--slot-minutes",
            "5",
            "--rpc-port",
            "0",
            "--p2p-port",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!resumed.status.success());
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        stderr.contains("--slot-minutes 5 (this chain has 15)") && stderr.contains("--fresh"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("devnet.json")).unwrap(), before);
}
