//! The API's self-description checked by the OpenRPC project's own tools (npm packages,
//! installed into a cache directory the first time): the validator on the document, and the
//! test runner calling every method with its example against a devnet.

use crate::joule;
use primitives::{Address, ChainId, Nonce, Payload, Transaction};
use rpc::{JouleApiClient, client::HttpClientBuilder};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};
use testkit::{Devnet, wait_for, wait_for_height};

/// The OpenRPC project's validator and test runner, pinned, and a WebSocket client for the
/// subscriptions (Node.js has none built in before version 22).
const TOOLS: &[&str] =
    &["@open-rpc/schema-utils-js@2.2.1", "@open-rpc/test-coverage@2.2.4", "ws@8.18.3"];

fn tools() -> PathBuf {
    testkit::npm::install(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-openrpc"), TOOLS)
}

/// Runs `check.cjs` with `args`; returns whether it passed and what it printed.
fn check(args: &[&str]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/openrpc/check.cjs");
    let output = Command::new("node")
        .arg(&script)
        .args(args)
        .env("NODE_PATH", tools())
        .output()
        .expect("node (Debian package nodejs; scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_openrpc_document_passes_the_official_validator_and_every_example_its_schemas() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("openrpc.json");
    std::fs::write(&file, serde_json::to_string_pretty(&rpc::openrpc::document()).unwrap())
        .unwrap();
    let (passed, report) = check(&["validate", file.to_str().unwrap()]);
    eprintln!("{report}");
    assert!(passed, "{report}");
    assert!(report.contains("validator: ok"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openrpc_test_runner_calls_every_method_with_its_example() {
    let temp = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(
        &joule(),
        &temp.path().join("devnet"),
        &["--validators", "2", "--block-ms", "200", "--empty-block-ms", "400"],
    )
    .await;
    let url = devnet.rpc_url(0);
    wait_for_height(&url, 2, Duration::from_secs(60)).await;
    let token = std::fs::read_to_string(devnet.node_dir(0).join("admin.token")).unwrap();
    let client = HttpClientBuilder::default().build(&url).unwrap();
    let document: Value = jsonrpsee::core::client::ClientT::request(
        &client,
        "rpc.discover",
        jsonrpsee::rpc_params![],
    )
    .await
    .unwrap();
    let file = temp.path().join("openrpc.json");
    std::fs::write(&file, serde_json::to_string(&document).unwrap()).unwrap();

    // Examples that change state, made valid on this devnet: a transfer signed by alice, a
    // login challenge she signed, and the peer that is connected.
    let keystore = keystore::Keystore::open(&devnet.dir().join("keystore")).unwrap();
    let password = keystore::read_password_file(&devnet.dir().join("password.txt")).unwrap();
    let alice = keystore.find("alice").unwrap();
    let key = keystore.unlock(&alice, &password).unwrap();
    let bob: Address = keystore.find("bob").unwrap().address;
    let status = client.node_status().await.unwrap();
    let nonce = client.account_get(alice.address.to_string()).await.unwrap().next_nonce;
    let transfer = Transaction {
        chain_id: ChainId::new(&status.chain_id).unwrap(),
        sender: alice.address,
        nonce: Nonce(nonce),
        payload: Payload::Transfer { to: bob, amount: primitives::Amount(1) },
        fee: primitives::Amount(0),
    }
    .sign(&key);
    let challenge = client.auth_challenge(alice.address.to_string()).await.unwrap();
    let signature = hex::encode(key.sign(challenge.text.as_bytes()).0);
    let peer = wait_for("a connected peer", Duration::from_secs(30), || async {
        client.node_peers().await.ok()?.first().map(|peer| peer.id.clone())
    })
    .await;
    let live = json!({
        "tx_submit": [hex::encode(primitives::encode(&transfer))],
        "auth_login": [alice.address.to_string(), challenge.challenge, signature, "bearer"],
        "node_removePeer": [peer],
        // A BFT chain does not mine: its node must refuse to start or stop a miner, and say why.
        "refusals": {
            "mining_start": { "code": -32602, "reason": "cannot_mine" },
            "mining_stop": { "code": -32602, "reason": "cannot_mine" },
        },
    });
    let live_file = temp.path().join("live.json");
    std::fs::write(&live_file, live.to_string()).unwrap();

    let (passed, report) = check(&[
        "coverage",
        file.to_str().unwrap(),
        &url,
        token.trim(),
        live_file.to_str().unwrap(),
    ]);
    eprintln!("{report}");
    assert!(passed, "{report}");
    let methods = document["methods"].as_array().unwrap().len();
    assert!(report.contains(&format!("{methods} of {methods} calls valid")), "{report}");
}
