//! The living community: `joule devnet --households N` on an accelerated clock, checked against
//! its chain, stopped and resumed; and `joule replay` of recorded meter data, whose energy must
//! land on chain to the mWh.

use crate::{FAST, joule};
use serde_json::Value;
use std::{collections::BTreeMap, path::Path, time::Duration};
use testkit::{Devnet, wait_for};

/// The slots `community.jsonl` reports so far.
fn reported(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("community.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

async fn wait_reported(dir: &Path, at_least: usize) -> Vec<Value> {
    wait_for("slots reported by the community", Duration::from_secs(180), || async {
        let lines = reported(dir);
        (lines.len() >= at_least).then_some(lines)
    })
    .await
}

fn check(devnet: &Devnet) -> Value {
    let dir = devnet.dir().display().to_string();
    let report = devnet.joule(&["community", "check", "--devnet", &dir, "--json"]);
    let stdout = String::from_utf8_lossy(&report.stdout);
    let value: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("no JSON from community check ({error}): {stdout}"));
    assert!(
        report.status.success(),
        "community check failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&report.stderr)
    );
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_community_trades_on_chain_and_resumes_where_it_stopped() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let mut args = FAST.to_vec();
    // A June morning, 600 times as fast as the wall clock: a 15-minute slot in 1.5 s.
    args.extend(["--households", "8", "--speed", "600", "--start", "2026-06-21T07:00Z"]);
    let devnet = Devnet::start(&joule(), &dir, &args).await;
    assert_eq!(devnet.file["community"]["households"], 8);
    assert_eq!(devnet.file["clock"]["speed"], 600);
    let lines = wait_reported(&dir, 12).await;

    // The chain agrees with every reading, clearing, settlement and printed line.
    let report = check(&devnet);
    assert_eq!(report["problems"], serde_json::json!([]));
    assert!(report["slots"].as_u64().unwrap() >= 12);
    // 8 households × 15 readings per slot, less the few the model keeps back.
    let expected = report["readings_expected"].as_u64().unwrap();
    let slots = report["slots"].as_u64().unwrap();
    assert!(expected > slots * 8 * 13, "{expected} readings for {slots} slots");

    // A June morning in a community with PV: neighbours trade, and the grid takes surplus.
    assert!(
        lines.iter().any(|line| line["price"].is_u64() && line["local_mwh"].as_u64() > Some(0)),
        "{lines:?}"
    );
    assert!(lines.iter().any(|line| line["grid_export_mwh"].as_u64() > Some(0)), "{lines:?}");
    assert!(lines.iter().all(|line| line["consumed_mwh"].as_u64() > Some(0)), "{lines:?}");
    let last_before = lines.last().unwrap()["slot"].as_u64().unwrap();

    assert!(devnet.stop().success());
    let verified = std::process::Command::new(joule())
        .args(["verify", "--dir", &dir.join("node0").display().to_string(), "--json"])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));

    // Started again, the same community goes on from the chain's last block.
    let devnet = Devnet::start(&joule(), &dir, &["--households", "8"]).await;
    assert_eq!(devnet.file["clock"]["speed"], 600, "the resumed devnet keeps its speed");
    let count = lines.len();
    let lines = wait_reported(&dir, count + 6).await;
    let resumed: Vec<u64> =
        lines[count..].iter().map(|line| line["slot"].as_u64().unwrap()).collect();
    assert!(resumed[0] > last_before, "{resumed:?} after {last_before}");
    assert!(resumed.windows(2).all(|pair| pair[1] == pair[0] + 1), "{resumed:?}");
    let report = check(&devnet);
    assert_eq!(report["problems"], serde_json::json!([]));
    assert!(devnet.stop().success());
}

/// Cuts one day (`2008-06-03`) of the shared recording into `path`.
fn one_day(path: &Path) -> Vec<(String, String, u64, u64)> {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/community-week-1min.csv");
    let text = std::fs::read_to_string(&source)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", source.display()));
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let day: Vec<&str> = lines.filter(|line| line.contains(",2008-06-03T")).collect();
    std::fs::write(path, format!("{header}\n{}\n", day.join("\n"))).unwrap();
    let mwh = |text: &str| {
        let (whole, fraction) = text.split_once('.').unwrap();
        whole.parse::<u64>().unwrap() * 1000 + format!("{fraction:0<3}").parse::<u64>().unwrap()
    };
    day.iter()
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[0].to_owned(), fields[1].to_owned(), mwh(fields[2]), mwh(fields[3]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_day_puts_exactly_the_recorded_energy_on_chain() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let csv = temp.path().join("day.csv");
    let rows = one_day(&csv);
    assert_eq!(rows.len(), 8 * 1440);

    // 1,200 times as fast: the day takes 72 s; settlement eight slots after a slot's end.
    let devnet = Devnet::start(
        &joule(),
        &dir,
        &["--speed", "1200", "--settlement-delay-slots", "8", "--block-ms", "500"],
    )
    .await;

    // A malformed file is refused with its line, before anything is submitted.
    let meters_before = devnet.joule_json(&["meter", "list", "--json"]);
    let bad = temp.path().join("bad.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("house01,2008-06-03T23:58Z,1.000,0.000\n");
    std::fs::write(&bad, &text).unwrap();
    let dir_arg = dir.display().to_string();
    let refused = devnet.joule(&["replay", &bad.display().to_string(), "--devnet", &dir_arg]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 11522") && stderr.contains("not after its previous row"),
        "{stderr}"
    );
    let meters = devnet.joule_json(&["meter", "list", "--json"]);
    assert_eq!(meters, meters_before, "nothing was registered");

    let output =
        devnet.joule(&["replay", &csv.display().to_string(), "--devnet", &dir_arg, "--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(summary["readings_committed"], 8 * 1440, "{summary}");
    assert_eq!(summary["meters"].as_object().unwrap().len(), 8);
    let first_interval = summary["first_interval"].as_u64().unwrap();

    // What the chain must have settled, from the CSV alone: per meter and slot, the sums of its
    // minutes, netted.
    let status = devnet.joule_json(&["market", "status", "--json"]);
    let slot_minutes = status["slot_minutes"].as_u64().unwrap();
    let minute_of = |time: &str| {
        let time: jiff::Timestamp = time.parse().unwrap();
        u64::try_from(time.as_second() / 60).unwrap()
    };
    let first_minute = rows.iter().map(|row| minute_of(&row.1)).min().unwrap();
    let mut expected: BTreeMap<(String, u64), (u64, u64)> = BTreeMap::new();
    for (meter, time, consumed, produced) in &rows {
        let interval = first_interval + (minute_of(time) - first_minute);
        let slot = interval / slot_minutes;
        let entry = expected.entry((meter.clone(), slot)).or_default();
        entry.0 += consumed;
        entry.1 += produced;
    }
    let first_slot = expected.keys().map(|(_, slot)| *slot).min().unwrap();
    let last_slot = expected.keys().map(|(_, slot)| *slot).max().unwrap();
    wait_for("the last replayed slot to be settled", Duration::from_secs(120), || async {
        let status = devnet.joule_json(&["market", "status", "--json"]);
        (status["next_settle"].as_u64().unwrap() > last_slot).then_some(())
    })
    .await;
    let members = summary["members"].as_object().unwrap();
    for (meter, address) in members {
        let statement = devnet.joule_json(&[
            "statement",
            address.as_str().unwrap(),
            "--from",
            &first_slot.to_string(),
            "--to",
            &last_slot.to_string(),
            "--json",
        ]);
        let lines = statement["lines"].as_array().unwrap();
        let by_slot: BTreeMap<u64, &Value> =
            lines.iter().map(|line| (line["slot"].as_u64().unwrap(), line)).collect();
        for slot in first_slot..=last_slot {
            let (consumed, produced) = expected[&(meter.clone(), slot)];
            let line = by_slot
                .get(&slot)
                .unwrap_or_else(|| panic!("{meter}: no settlement for slot {slot}"));
            assert_eq!(line["consumed_mwh"], consumed, "{meter} slot {slot}");
            assert_eq!(line["produced_mwh"], produced, "{meter} slot {slot}");
            assert_eq!(
                line["imported_mwh"],
                consumed.saturating_sub(produced),
                "{meter} slot {slot}"
            );
            assert_eq!(
                line["exported_mwh"],
                produced.saturating_sub(consumed),
                "{meter} slot {slot}"
            );
        }
    }
    assert!(devnet.stop().success());
}
