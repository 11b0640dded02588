//! Wrong clocks, faked per process with libfaketime (the `faketime` package), changed while the
//! nodes run: a validator an hour fast, then two an hour slow, then every clock put right. A
//! proposal ahead of a node's clock waits instead of counting against its proposer, so nobody
//! is banned, the chain halts only while more than a third of the power is skewed, and it
//! resumes within seconds of the clocks being right, with no node restarted.

use crate::{FOUR, joule};
use rpc::{JouleApiClient, client::HttpClientBuilder};
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use testkit::{Devnet, Process, head, wait_for, wait_for_height};

/// Where the faketime library is, if it is installed.
fn libfaketime() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib64/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists())
}

/// `command` with its wall clock offset by what `clock_file` says ("+0", "+1h", "-1h"), read
/// again every second; timers (the monotonic clock) are left alone.
fn with_fake_clock(library: &Path, clock_file: &Path, command: &[String]) -> Vec<String> {
    let mut wrapped = vec![
        "env".to_owned(),
        format!("LD_PRELOAD={}", library.display()),
        format!("FAKETIME_TIMESTAMP_FILE={}", clock_file.display()),
        "FAKETIME_DONT_FAKE_MONOTONIC=1".to_owned(),
        "FAKETIME_CACHE_DURATION=1".to_owned(),
    ];
    wrapped.extend_from_slice(command);
    wrapped
}

fn set_clock(clock_file: &Path, offset: &str) {
    std::fs::write(clock_file, format!("{offset}\n")).unwrap();
}

/// How many peers each node has.
async fn peer_counts(urls: &[String]) -> Vec<usize> {
    let mut counts = Vec::new();
    for url in urls {
        let client = HttpClientBuilder::default().build(url).unwrap();
        counts.push(client.node_peers().await.map_or(0, |peers| peers.len()));
    }
    counts
}

/// The lowest head among the nodes.
async fn lowest_head(urls: &[String]) -> u64 {
    let mut lowest = u64::MAX;
    for url in urls {
        lowest = lowest.min(head(url).await.map_or(0, |head| head.height));
    }
    lowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_clocks_delay_proposals_instead_of_banning_and_the_chain_resumes_once_they_are_right()
{
    let Some(library) = libfaketime() else {
        eprintln!(
            "\n**** SKIPPED: this test fakes clocks with libfaketime; install the `faketime` package ****\n"
        );
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FOUR).await;
    let urls: Vec<String> = (0..4).map(|index| devnet.rpc_url(index)).collect();
    for url in &urls {
        wait_for_height(url, 2, Duration::from_secs(60)).await;
    }
    // Validators 2 and 3 run again with clocks the test can change.
    let clocks: Vec<PathBuf> = (0..4).map(|index| dir.join(format!("clock-{index}"))).collect();
    let mut skewable = Vec::new();
    for index in [2, 3] {
        devnet.stop_node(index).await;
        set_clock(&clocks[index], "+0");
        let command = with_fake_clock(&library, &clocks[index], &devnet.restart_command(index));
        skewable.push(Process::spawn(&command, &dir.join(format!("skewed-{index}.log"))));
    }
    let at = lowest_head(&urls).await;
    for url in &urls {
        wait_for_height(url, at + 3, Duration::from_secs(30)).await;
    }
    wait_for("four connected validators", Duration::from_secs(10), || async {
        (peer_counts(&urls).await == [3, 3, 3, 3]).then_some(())
    })
    .await;

    // One validator an hour fast (a quarter of the power): its proposals wait everywhere, the
    // others go on, and nobody is banned for it.
    set_clock(&clocks[3], "+1h");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fast_from = head(&urls[0]).await.unwrap().height;
    for url in &urls[..3] {
        wait_for_height(url, fast_from + 8, Duration::from_secs(30)).await;
    }
    assert_eq!(peer_counts(&urls).await, [3, 3, 3, 3], "nobody was banned over a clock");

    // Two validators an hour slow (half the power): no proposal gets enough votes.
    set_clock(&clocks[2], "-1h");
    set_clock(&clocks[3], "-1h");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let halted_at = lowest_head(&urls[..2]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = head(&urls[0]).await.unwrap().height.max(head(&urls[1]).await.unwrap().height);
    assert!(after <= halted_at + 1, "went from {halted_at} to {after} with half the power skewed");
    assert_eq!(peer_counts(&urls).await, [3, 3, 3, 3], "still nobody banned");

    // Every clock right again: the chain resumes within seconds, no node restarted.
    set_clock(&clocks[2], "+0");
    set_clock(&clocks[3], "+0");
    let corrected = Instant::now();
    let target = lowest_head(&urls).await.max(after) + 3;
    for url in &urls {
        wait_for_height(url, target, Duration::from_secs(20)).await;
    }
    eprintln!(
        "three more blocks on every node {:?} after the clocks were put right",
        corrected.elapsed()
    );
    assert!(corrected.elapsed() < Duration::from_secs(15));
    for process in skewable {
        assert!(process.stop().success());
    }
    assert!(devnet.stop().success());
}
