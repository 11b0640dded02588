//! The README walkthrough, as a user would type it.

use crate::{FAST, joule};
use serde_json::Value;
use std::time::Duration;
use testkit::{Devnet, wait_for_height};

fn balance(devnet: &Devnet, account: &str) -> u128 {
    let value = devnet.joule_json(&["balance", account, "--json"]);
    value["balance"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_wallet_and_restart() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FAST).await;
    let url = devnet.rpc_url(0);

    // The head advances on its own (empty blocks) …
    let first = wait_for_height(&url, 1, Duration::from_secs(30)).await;
    wait_for_height(&url, first.height + 2, Duration::from_secs(30)).await;

    // … and wallet commands move tokens between demo accounts.
    let (alice, bob) = (balance(&devnet, "alice"), balance(&devnet, "bob"));
    let sent = devnet.joule_json(&[
        "send", "--from", "alice", "--to", "bob", "--amount", "250", "--wait", "--json",
    ]);
    assert_eq!(sent["status"], "committed");
    assert_eq!(sent["receipt"]["success"], true);
    assert_eq!(balance(&devnet, "alice"), alice - 250);
    assert_eq!(balance(&devnet, "bob"), bob + 250);
    let hash = sent["hash"].as_str().unwrap().to_owned();
    let shown = devnet.joule_json(&["tx", &hash, "--json"]);
    assert_eq!(shown["height"], sent["height"]);
    let block = devnet.joule_json(&["block", &sent["height"].to_string(), "--json"]);
    assert!(block["txs"].as_array().unwrap().iter().any(|tx| tx == &Value::String(hash.clone())));
    let history = devnet.joule_json(&["history", "bob", "--json"]);
    assert_eq!(history["entries"][0]["hash"], hash.as_str());

    // The operator issues tokens; anyone else is refused with a reason and nothing changes.
    let carol = balance(&devnet, "carol");
    devnet.joule_json(&[
        "mint",
        "--from",
        "operator",
        "--to",
        "carol",
        "--amount",
        "1000",
        "--fiat-ref",
        "BANK-1",
        "--wait",
        "--json",
    ]);
    assert_eq!(balance(&devnet, "carol"), carol + 1000);
    let refused = devnet.joule(&[
        "mint",
        "--from",
        "alice",
        "--to",
        "alice",
        "--amount",
        "5",
        "--fiat-ref",
        "X",
        "--wait",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only the issuer"), "{refused:?}");
    let overdraft = devnet.joule(&[
        "send",
        "--from",
        "dave",
        "--to",
        "bob",
        "--amount",
        "999999999999999",
        "--wait",
    ]);
    assert!(
        String::from_utf8_lossy(&overdraft.stderr).contains("insufficient balance"),
        "{overdraft:?}"
    );
    let supply = devnet.joule_json(&["status", "--json"]);
    assert_eq!(supply["chain_id"], "joule-devnet");
    assert_eq!(balance(&devnet, "alice"), alice - 250);

    // A new account: create, export its phrase, import it elsewhere, same address.
    let other_keystore = temp.path().join("other-keystore");
    let created = devnet.joule_json(&["account", "new", "--name", "erin", "--light-kdf", "--json"]);
    let exported = devnet.joule_json(&["account", "export", "erin", "--json"]);
    assert_eq!(exported["mnemonic"], created["mnemonic"]);
    let phrase_file = temp.path().join("phrase.txt");
    std::fs::write(&phrase_file, exported["mnemonic"].as_str().unwrap()).unwrap();
    let imported = devnet.joule_json(&[
        "account",
        "import",
        "--name",
        "erin2",
        "--light-kdf",
        "--mnemonic-file",
        phrase_file.to_str().unwrap(),
        "--keystore",
        other_keystore.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(imported["address"], created["address"]);
    let listed = devnet.joule_json(&["account", "list", "--json"]);
    assert!(listed.as_array().unwrap().iter().any(|account| account["name"] == "erin"));

    // Kill the node and restart it with the command devnet.json gives: the chain is still there.
    let before = testkit::head(&url).await.unwrap();
    let restart = devnet.restart_command(0);
    testkit::signal(devnet.node_pid(0), 9);
    testkit::wait_for("the node to die", Duration::from_secs(10), || async {
        (!testkit::is_alive(devnet.node_pid(0))).then_some(())
    })
    .await;
    let node = testkit::Process::spawn(&restart, &dir.join("restarted.log"));
    let after = wait_for_height(&url, before.height + 1, Duration::from_secs(60)).await;
    assert!(after.height > before.height);
    assert_eq!(balance(&devnet, "bob"), bob + 250);
    assert!(node.stop().success());
    assert!(devnet.stop().success());

    // Everything stored re-executes to the same roots.
    let verified = std::process::Command::new(joule())
        .args(["verify", "--dir", dir.join("node0").to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
}
