//! Five Raft validator processes on loopback: `kill -9` of the leader under load, a lost
//! majority, restarts, and a partitioned leader. Nothing acknowledged is lost, and every node
//! ends with the same block at every height.
//!
//! `JOULE_RAFT_KILLS` sets how many times the leader is killed under load (default 2); each
//! kill prints one JSON line (on stderr) with the time from the kill to the first block of a new leader
//! (`scripts/bench-raft` runs ten for `docs/benchmarks.md`).

use crate::{
    joule,
    network::{assert_same_chain, kill9, partition, peer_ids, send_committed, wait_dead},
};
use rpc::{JouleApiClient, client::HttpClientBuilder, dto::BlockId};
use serde_json::Value;
use std::time::{Duration, Instant};
use testkit::{Devnet, Process, head, wait_for, wait_for_height};

/// Five Raft validators with short block intervals.
const FIVE_RAFT: &[&str] =
    &["--engine", "raft", "--validators", "5", "--block-ms", "200", "--empty-block-ms", "400"];

/// The node that leads the highest term among `candidates` (indexes into `urls`), with its
/// term and address, once one does.
async fn leader(urls: &[String], candidates: &[usize]) -> (usize, u64, String) {
    wait_for("a Raft leader", Duration::from_secs(30), || async {
        let mut best: Option<(u64, usize, String)> = None;
        for &index in candidates {
            let client = HttpClientBuilder::default().build(&urls[index]).ok()?;
            let Ok(status) = client.node_status().await else { continue };
            let Some(consensus) = status.consensus else { continue };
            if consensus.role == "leader"
                && best.as_ref().is_none_or(|(term, ..)| consensus.term > *term)
            {
                best = Some((consensus.term, index, consensus.leader.unwrap_or_default()));
            }
        }
        best.map(|(term, index, address)| (index, term, address))
    })
    .await
}

/// The highest head among `nodes`.
async fn highest(urls: &[String], nodes: &[usize]) -> u64 {
    let mut height = 0;
    for &index in nodes {
        if let Some(head) = head(&urls[index]).await {
            height = height.max(head.height);
        }
    }
    height
}

/// Waits until a node of `nodes` has a block above `above` proposed by someone other than
/// `old_leader`; returns how long that took from `since`.
async fn first_block_of_a_new_leader(
    urls: &[String],
    nodes: &[usize],
    above: u64,
    old_leader: &str,
    since: Instant,
) -> Duration {
    let client = HttpClientBuilder::default().build(&urls[nodes[0]]).unwrap();
    let mut next = above + 1;
    loop {
        assert!(since.elapsed() < Duration::from_secs(30), "no new leader's block within 30 s");
        match client.chain_block(BlockId::Height(next)).await {
            Ok(Some(block)) if block.proposer != old_leader => return since.elapsed(),
            Ok(Some(_)) => next += 1,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_raft_validators_survive_leader_kills_and_a_lost_majority() {
    let kills: usize =
        std::env::var("JOULE_RAFT_KILLS").ok().and_then(|value| value.parse().ok()).unwrap_or(2);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FIVE_RAFT).await;
    let urls: Vec<String> = (0..5).map(|index| devnet.rpc_url(index)).collect();
    let all: Vec<usize> = (0..5).collect();
    for url in &urls {
        wait_for_height(url, 2, Duration::from_secs(60)).await;
    }
    let mut pids: Vec<u32> = (0..5).map(|index| devnet.node_pid(index)).collect();
    let mut restarted: Vec<Option<Process>> = (0..5).map(|_| None).collect();

    // A transfer sent to a follower reaches the leader and is committed.
    let (first, _, _) = leader(&urls, &all).await;
    let follower = (first + 1) % 5;
    let mut acknowledged = vec![send_committed(&devnet, follower, "1")];

    for round in 0..kills {
        let (old, term, old_address) = leader(&urls, &all).await;
        let survivors: Vec<usize> = all.iter().copied().filter(|index| *index != old).collect();
        // Load through the survivors' APIs, so that the benchmark outlives the kill.
        let rpc: Vec<String> = survivors.iter().map(|index| urls[*index].clone()).collect();
        let bench_log = dir.join(format!("bench-{round}.log"));
        let bench = std::process::Command::new(joule())
            .args(["bench", "ingest", "--devnet", dir.to_str().unwrap(), "--json"])
            .args(["--rpc", &rpc.join(","), "--txs", "4000", "--senders", "200"])
            .args(["--rate", "800", "--from", ["bob", "carol", "dave"][round % 3]])
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&bench_log).unwrap())
            .spawn()
            .unwrap();
        wait_for("the load to flow", Duration::from_secs(120), || async {
            std::fs::read_to_string(&bench_log)
                .unwrap_or_default()
                .contains("submitting")
                .then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;

        let before = highest(&urls, &survivors).await;
        kill9(pids[old]);
        let killed = Instant::now();
        if let Some(process) = restarted[old].take() {
            process.kill9();
        }
        let resumed =
            first_block_of_a_new_leader(&urls, &survivors, before, &old_address, killed).await;
        eprintln!(
            "{{\"kill\":{round},\"old_leader\":{old},\"term\":{term},\"height\":{before},\"resume_ms\":{}}}",
            resumed.as_millis()
        );
        wait_dead(pids[old]).await;

        // Every transfer the benchmark submitted was committed once, none refused.
        let output = bench.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "round {round}: {stdout}\n{}",
            std::fs::read_to_string(&bench_log).unwrap_or_default()
        );
        let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(report["committed"], 4000, "round {round}: {report}");
        assert_eq!(
            (report["rejected"].as_u64(), report["duplicates"].as_u64()),
            (Some(0), Some(0))
        );

        // The old leader comes back and catches up.
        let process = Process::spawn(
            &devnet.restart_command(old),
            &dir.join(format!("restart-{old}-{round}.log")),
        );
        pids[old] = process.pid();
        restarted[old] = Some(process);
        let target = highest(&urls, &survivors).await + 2;
        wait_for_height(&urls[old], target, Duration::from_secs(60)).await;
    }
    acknowledged.push(send_committed(&devnet, follower, "2"));

    // Three of five down: no majority, nothing commits.
    let (old, _, _) = leader(&urls, &all).await;
    let down: Vec<usize> = [old, (old + 1) % 5, (old + 2) % 5].into();
    let up: Vec<usize> = all.iter().copied().filter(|index| !down.contains(index)).collect();
    for &index in &down {
        kill9(pids[index]);
        if let Some(process) = restarted[index].take() {
            process.kill9();
        }
    }
    for &index in &down {
        wait_dead(pids[index]).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stalled = highest(&urls, &up).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(highest(&urls, &up).await, stalled, "two of five committed a block");

    // The three restart: the chain resumes and all five agree at every height.
    for &index in &down {
        let process =
            Process::spawn(&devnet.restart_command(index), &dir.join(format!("back-{index}.log")));
        pids[index] = process.pid();
        restarted[index] = Some(process);
    }
    for url in &urls {
        wait_for_height(url, stalled + 3, Duration::from_secs(60)).await;
    }
    acknowledged.push(send_committed(&devnet, up[0], "3"));
    let agreed = assert_same_chain(&urls).await;
    assert!(agreed >= stalled + 3);
    for url in &urls {
        let client = HttpClientBuilder::default().build(url).unwrap();
        for hash in &acknowledged {
            assert!(
                client.tx_get(hash.clone()).await.unwrap().is_some(),
                "{hash} missing on {url}"
            );
        }
    }
    for process in restarted.into_iter().flatten() {
        assert!(process.stop().success());
    }
    let node_dir = devnet.node_dir(0);
    assert!(devnet.stop().success());
    let verified = std::process::Command::new(joule())
        .args(["verify", "--dir", node_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_raft_leader_commits_nothing_and_a_rejoining_node_deposes_no_one() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FIVE_RAFT).await;
    let urls: Vec<String> = (0..5).map(|index| devnet.rpc_url(index)).collect();
    let all: Vec<usize> = (0..5).collect();
    let ids = peer_ids(&urls).await;
    for url in &urls {
        wait_for_height(url, 2, Duration::from_secs(60)).await;
    }

    // The leader alone on one side: it commits nothing more, and steps down (check-quorum);
    // the other four elect a leader and go on.
    let (old, term, _) = leader(&urls, &all).await;
    let others: Vec<usize> = all.iter().copied().filter(|index| *index != old).collect();
    partition(&urls, &ids, &[&[old], &others]).await;
    let at_cut = head(&urls[old]).await.unwrap().height;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let isolated = head(&urls[old]).await.unwrap().height;
    assert!(
        isolated <= at_cut + 1,
        "only a block acknowledged before the cut: {at_cut} → {isolated}"
    );
    let (new, new_term, _) = leader(&urls, &others).await;
    assert!(new_term > term, "a new term: {term} → {new_term}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(head(&urls[old]).await.unwrap().height, isolated, "the cut-off leader committed");
    assert!(highest(&urls, &others).await >= isolated + 3, "the majority went on");
    let client = HttpClientBuilder::default().build(&urls[old]).unwrap();
    let status = client.node_status().await.unwrap().consensus.expect("a Raft status");
    assert_ne!(status.role, "leader", "a leader without a majority steps down");

    // Healed: the old leader follows the new one and has its blocks.
    partition(&urls, &ids, &[]).await;
    let target = highest(&urls, &others).await + 2;
    wait_for_height(&urls[old], target, Duration::from_secs(60)).await;
    assert_same_chain(&urls).await;

    // A follower cut off for several election timeouts comes back without deposing the leader
    // (pre-vote: it never entered a new term on its own).
    let (leading, term, _) = leader(&urls, &all).await;
    assert_eq!(leading, new);
    let lonely = (leading + 1) % 5;
    let rest: Vec<usize> = all.iter().copied().filter(|index| *index != lonely).collect();
    partition(&urls, &ids, &[&[lonely], &rest]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    partition(&urls, &ids, &[]).await;
    let target = highest(&urls, &rest).await + 2;
    wait_for_height(&urls[lonely], target, Duration::from_secs(60)).await;
    let (again, term_after, _) = leader(&urls, &all).await;
    assert_eq!((again, term_after), (leading, term), "the returning follower forced no election");
    assert_same_chain(&urls).await;

    // `joule status` (here of node 0) tells the role, the term and the leader. A node that
    // has just caught up (node 0 may be the one that was cut off) knows the leader from its
    // next heartbeat, so it is asked until it names one.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = devnet.joule_json(&["status", "--json"]);
        if status["consensus"]["leader"].is_string() || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["consensus"]["term"], term, "{status}");
    let leader_address = status["consensus"]["leader"].as_str().expect("a leader").to_owned();
    let printed = String::from_utf8_lossy(&devnet.joule(&["status"]).stdout).into_owned();
    assert!(
        printed.contains(&format!(" in term {term}\nleader     {leader_address}")),
        "{printed}"
    );
    assert!(devnet.stop().success());
}
