//! The energy market through the CLI and the API of a running devnet: orders, the book, a
//! refusal, gate closure, meter readings, settlement, statements, key figures, certificates.
//! One-minute slots; a whole cycle takes about three minutes of wall-clock time.

use crate::{FAST, MINUTE_SLOTS, joule, now_ms};
use serde_json::Value;
use std::time::Duration;
use testkit::{Devnet, wait_for};

async fn until_ms(time: u64) {
    let now = now_ms();
    if time > now {
        tokio::time::sleep(Duration::from_millis(time - now)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_trades_settles_and_shows_up_in_statements() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let mut args = FAST.to_vec();
    args.extend(MINUTE_SLOTS);
    let devnet = Devnet::start(&joule(), &dir, &args).await;

    let status = devnet.joule_json(&["market", "status", "--json"]);
    assert_eq!(status["slot_minutes"], 1);
    let meters = devnet.joule_json(&["meter", "list", "--json"]);
    assert_eq!(meters.as_array().unwrap().len(), 4, "the devnet registered a meter per member");

    // Orders for the first slot with at least 20 s left before its gate closes.
    let mut slot = status["next_open_slot"].as_u64().unwrap();
    if slot * 60_000 < now_ms() + 20_000 {
        slot += 1;
    }
    let slot_arg = slot.to_string();
    let offer = devnet.joule_json(&[
        "market", "offer", "--from", "alice", "--kwh", "2", "--price", "10", "--slot", &slot_arg,
        "--wait", "--json",
    ]);
    assert_eq!(offer["receipt"]["order_id"], 0);
    devnet.joule_json(&[
        "market", "bid", "--from", "bob", "--kwh", "1.5", "--price", "20", "--slot", &slot_arg,
        "--wait", "--json",
    ]);
    let cancelled = devnet.joule_json(&[
        "market", "bid", "--from", "carol", "--kwh", "1", "--price", "30", "--slot", &slot_arg,
        "--wait", "--json",
    ]);
    let carol_order = cancelled["receipt"]["order_id"].as_u64().unwrap().to_string();
    devnet.joule_json(&[
        "market",
        "cancel",
        "--from",
        "carol",
        "--order",
        &carol_order,
        "--wait",
        "--json",
    ]);
    let book = devnet.joule_json(&["market", "book", "--slot", &slot_arg, "--json"]);
    assert_eq!(book["asks"].as_array().unwrap().len(), 1);
    assert_eq!(book["bids"].as_array().unwrap().len(), 1, "carol's bid was cancelled: {book}");
    // The bid reserved 1.5 kWh × (20 + 4) = 36 tokens.
    let bob = devnet.joule_json(&["balance", "bob", "--json"]);
    assert_eq!(bob["reserved"], "36");
    // A refusal: alice may not bid in a slot where she sells.
    let refused = devnet.joule(&[
        "market", "bid", "--from", "alice", "--kwh", "1", "--price", "5", "--slot", &slot_arg,
        "--wait",
    ]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("opposite_order"), "{refused:?}");

    // Gate closure: bob's 1.5 kWh match alice's ask at floor((20 + 10) / 2) = 15.
    let clearing: Value = wait_for("the gate to close", Duration::from_secs(120), || async {
        let output = devnet.joule(&["market", "clearing", "--slot", &slot_arg, "--json"]);
        output.status.success().then(|| serde_json::from_slice(&output.stdout).unwrap())
    })
    .await;
    assert_eq!(clearing["price"], 15);
    assert_eq!(clearing["volume_mwh"], 1_500_000);
    // As text, the parties appear by their keystore names.
    let text = devnet.joule(&["market", "clearing", "--slot", &slot_arg, "--as", "bob"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("1.5 kWh @ 15  bob ← alice"), "{text}");
    // Without a session the clearing shows its price and volume, not who traded.
    assert_eq!(clearing["trades"].as_array().unwrap().len(), 0, "{clearing}");
    assert_eq!(clearing["trade_count"], 1);
    // Another member may not read bob's trades; the operator may.
    let refused = devnet.joule(&["market", "trades", "bob", "--as", "carol"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("[forbidden]"), "{refused:?}");
    let trades = devnet.joule_json(&["market", "trades", "bob", "--as", "operator", "--json"]);
    assert_eq!(trades[0]["energy_mwh"], 1_500_000);

    // Once the slot is over, the meters report: alice produced 2 kWh, bob consumed 1 kWh,
    // carol 0.5 kWh.
    until_ms((slot + 1) * 60_000 + 500).await;
    for (meter, flag, kwh) in [
        ("alice-meter", "--produced", "2"),
        ("bob-meter", "--consumed", "1"),
        ("carol-meter", "--consumed", "0.5"),
    ] {
        let reading = devnet.joule_json(&[
            "meter",
            "report",
            "--meter",
            meter,
            "--interval",
            &slot_arg,
            flag,
            kwh,
            "--wait",
            "--json",
        ]);
        assert_eq!(reading["receipt"]["success"], true, "{reading}");
    }
    let duplicate = devnet.joule(&[
        "meter",
        "report",
        "--meter",
        "carol-meter",
        "--interval",
        &slot_arg,
        "--consumed",
        "9",
        "--wait",
    ]);
    assert!(
        String::from_utf8_lossy(&duplicate.stderr).contains("duplicate_reading"),
        "{duplicate:?}"
    );
    let readings = devnet.joule_json(&["meter", "readings", "bob", "--json"]);
    assert_eq!(readings[0]["consumed_mwh"], 1_000_000);

    // Settlement one slot after the slot ends. Bob took 1 of his 1.5 kWh (he consumed 1): 15
    // tokens to alice plus a fee of 4; alice feeds her other kWh in at 8; carol buys 0.5 kWh
    // from the grid for 15.
    let from = slot.to_string();
    let statement: Value = wait_for("the slot to settle", Duration::from_secs(180), || async {
        let value =
            devnet.joule_json(&["statement", "alice", "--from", &from, "--to", &from, "--json"]);
        (!value["lines"].as_array().unwrap().is_empty()).then_some(value)
    })
    .await;
    let alice = &statement["totals"];
    assert_eq!(
        (alice["market_sold_mwh"].as_u64(), alice["market_received"].as_str()),
        (Some(1_000_000), Some("15"))
    );
    assert_eq!(
        (alice["grid_sold_mwh"].as_u64(), alice["grid_received"].as_str()),
        (Some(1_000_000), Some("8"))
    );
    let url = devnet.rpc_url(0);
    let before = testkit::head(&url).await.unwrap().height;
    let bob = devnet.joule_json(&["statement", "bob", "--from", &from, "--to", &from, "--json"]);
    let after = testkit::head(&url).await.unwrap().height;
    // Its line says which block settled the slot and how deep that block is; the statement is
    // as deep as its newest line.
    let settled = bob["lines"][0]["settled_height"].as_u64().expect("the settling block");
    let confirmations = bob["lines"][0]["confirmations"].as_u64().expect("confirmations");
    assert!((1..=before).contains(&settled), "settled at {settled}, head {before}");
    assert!(
        (before + 1 - settled..=after + 1 - settled).contains(&confirmations),
        "{confirmations} confirmations of block {settled} with the head at {before}..={after}"
    );
    assert_eq!(bob["confirmations"].as_u64(), Some(confirmations));
    testkit::wait_for_height(&url, after + 2, Duration::from_secs(30)).await;
    let later = devnet.joule_json(&["statement", "bob", "--from", &from, "--to", &from, "--json"]);
    assert_eq!(later["lines"][0]["settled_height"].as_u64(), Some(settled));
    assert!(later["confirmations"].as_u64().unwrap() >= confirmations + 2, "{later}");
    let text = devnet.joule(&["statement", "bob", "--from", &from, "--to", &from]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("\nconfirmations    "), "{text:?}");
    assert_eq!(bob["totals"]["market_paid"], "15");
    assert_eq!(bob["totals"]["market_fees"], "4");
    assert_eq!(bob["totals"]["net"], "-19");
    let csv = devnet.joule(&["statement", "carol", "--from", &from, "--to", &from, "--csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout).to_string();
    assert!(csv.starts_with("line,slot,slot_start,slot_end,produced_kwh,"), "{csv}");
    // Each slot with its start and end (chain time, UTC), energy in kWh, money in tokens; the
    // total on a line of its own kind, with the slot column empty.
    let row = csv.lines().find(|line| line.starts_with(&format!("slot,{slot},"))).unwrap();
    let fields: Vec<&str> = row.split(',').collect();
    assert!(fields[2].ends_with('Z') && fields[3].ends_with('Z') && fields[2] < fields[3], "{row}");
    assert_eq!(&fields[4..8], ["0", "0.5", "0", "0.5"], "{row}");
    assert!(csv.lines().any(|line| line.starts_with("total,,")), "{csv}");
    let balance = devnet.joule_json(&["balance", "bob", "--json"]);
    assert_eq!(
        (balance["balance"].as_str(), balance["reserved"].as_str()),
        (Some("999999981"), Some("0"))
    );

    // Key figures of the community: 1.5 kWh consumed, 0.5 from the grid; 2 kWh produced, 1 to
    // the grid. Grid only: 1.5 × 30 − 2 × 8 = 29; actual: 34 paid − 23 received = 11.
    let kpi = devnet.joule_json(&[
        "kpi",
        "community",
        "--from",
        &from,
        "--to",
        &from,
        "--as",
        "operator",
        "--json",
    ]);
    assert_eq!(kpi["savings"], "18", "{kpi}");
    assert!((kpi["self_sufficiency"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-6);
    assert!((kpi["self_consumption"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    let certificates = devnet.joule_json(&["cert", "list", "alice", "--json"]);
    assert_eq!(certificates["held"], 2);
    devnet.joule_json(&["cert", "retire", "--from", "alice", "--count", "1", "--wait", "--json"]);
    let certificates = devnet.joule_json(&["cert", "list", "alice", "--json"]);
    assert_eq!(
        (certificates["held"].as_u64(), certificates["retired"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(devnet.stop().success());

    // Everything re-executes from genesis to the same roots.
    let verified = std::process::Command::new(joule())
        .args(["verify", "--dir", dir.join("node0").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}
