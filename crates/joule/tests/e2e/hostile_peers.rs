//! Hostile peers against four validators, each on a host of its own (network namespaces): a
//! throwaway identity that claims a validator's address to get it banned, throwaway
//! identities from many addresses that fill the peer tables while a validator restarts, and
//! peers that ask for blocks and never read. After each, the honest validators keep or regain
//! each other within 10 s, and the chain goes on.

use crate::joule;
use node::wire::Wire;
use primitives::Height;
use rpc::{JouleApiClient, client::HttpClientBuilder};
use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::{Duration, Instant},
};
use testkit::{Devnet, Process, adversary::Adversary, head, netns::Lab, wait_for, wait_for_height};

/// The peer-to-peer and API ports every host uses (each host has its own addresses).
const P2P_PORT: u16 = 8646;
const RPC_PORT: u16 = 8645;

/// A chain of validators, each running in its own namespace of a lab.
struct LabChain {
    /// The node processes (dropped before the lab).
    nodes: Vec<Option<Process>>,
    /// Each node's command, inside its namespace.
    commands: Vec<Vec<String>>,
    urls: Vec<String>,
    p2p: Vec<SocketAddr>,
    dir: PathBuf,
    lab: Lab,
    _temp: tempfile::TempDir,
}

/// Sets `flag`'s value in a command line (appending both when it is missing).
fn set_option(command: &mut Vec<String>, flag: &str, value: &str) {
    match command.iter().position(|part| part == flag) {
        Some(index) => command[index + 1] = value.to_owned(),
        None => command.extend([flag.to_owned(), value.to_owned()]),
    }
}

impl LabChain {
    /// A devnet of `validators` made on loopback, then run again with each node on its own
    /// host; `None` (the test is skipped, loudly) where namespaces cannot be made.
    async fn start(validators: usize) -> Option<LabChain> {
        let lab = Lab::new(validators)?;
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("devnet");
        let count = validators.to_string();
        let devnet = Devnet::start(
            &joule(),
            &dir,
            &["--validators", &count, "--block-ms", "200", "--empty-block-ms", "400"],
        )
        .await;
        wait_for_height(&devnet.rpc_url(0), 1, Duration::from_secs(60)).await;
        let loopback: Vec<Vec<String>> =
            (0..validators).map(|index| devnet.restart_command(index)).collect();
        assert!(devnet.stop().success());
        let p2p: Vec<SocketAddr> =
            (0..validators).map(|host| SocketAddr::new(lab.host_ip(host), P2P_PORT)).collect();
        let urls: Vec<String> = (0..validators)
            .map(|host| format!("http://{}:{RPC_PORT}", lab.host_ip(host)))
            .collect();
        let mut commands = Vec::new();
        for (host, command) in loopback.into_iter().enumerate() {
            let mut command = command;
            set_option(&mut command, "--rpc-addr", &format!("{}:{RPC_PORT}", lab.host_ip(host)));
            set_option(&mut command, "--p2p-addr", &p2p[host].to_string());
            let others: Vec<String> = p2p
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != host)
                .map(|(_, addr)| addr.to_string())
                .collect();
            set_option(&mut command, "--bootstrap", &others.join(","));
            commands.push(lab.command(host, &command));
        }
        let mut chain = LabChain { nodes: Vec::new(), commands, urls, p2p, dir, lab, _temp: temp };
        for host in 0..validators {
            let process = chain.spawn(host);
            chain.nodes.push(Some(process));
        }
        for host in 0..validators {
            let url = chain.urls[host].clone();
            wait_for_height(&url, 2, Duration::from_secs(60)).await;
            chain.wait_peers(host, validators - 1, Duration::from_secs(30)).await;
        }
        Some(chain)
    }

    fn spawn(&self, host: usize) -> Process {
        Process::spawn(&self.commands[host], &self.dir.join(format!("lab-node{host}.log")))
    }

    fn pid(&self, host: usize) -> u32 {
        self.nodes[host].as_ref().expect("running").pid()
    }

    /// The ids of `host`'s connected peers.
    async fn peers(&self, host: usize) -> Vec<String> {
        let client = HttpClientBuilder::default().build(&self.urls[host]).unwrap();
        match client.node_peers().await {
            Ok(peers) => peers.into_iter().map(|peer| peer.id).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The validators' network ids.
    async fn ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for url in &self.urls {
            let client = HttpClientBuilder::default().build(url).unwrap();
            ids.push(client.node_status().await.unwrap().p2p.expect("p2p").id);
        }
        ids
    }

    /// Waits until `host` has at least `count` peers.
    async fn wait_peers(&self, host: usize, count: usize, timeout: Duration) {
        wait_for(&format!("node {host} to have {count} peers"), timeout, || async {
            (self.peers(host).await.len() >= count).then_some(())
        })
        .await;
    }

    /// Waits until every validator is connected to every other one; how long that took.
    async fn wait_fully_connected(&self, timeout: Duration) -> Duration {
        let started = Instant::now();
        let ids = self.ids().await;
        wait_for("every validator connected to every other", timeout, || async {
            for host in 0..self.urls.len() {
                let peers = self.peers(host).await;
                let missing =
                    ids.iter().enumerate().any(|(other, id)| other != host && !peers.contains(id));
                if missing {
                    return None;
                }
            }
            Some(())
        })
        .await;
        started.elapsed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throwaway_identities_claiming_validators_addresses_cannot_get_them_banned() {
    let Some(chain) = LabChain::start(4).await else { return };
    let adversary = Adversary::against(&chain.urls[0], chain.p2p[0]).await;
    // At every validator, a throwaway identity claims each other validator's address and sends
    // garbage until it is banned.
    for victim in 0..4 {
        for claimed in (0..4).filter(|claimed| *claimed != victim) {
            let mut liar = adversary
                .at(chain.p2p[victim])
                .connect(Adversary::throwaway(), chain.p2p[claimed])
                .await
                .expect("the liar is admitted at first");
            for _ in 0..6 {
                let _ = liar.garbage().await;
            }
            assert!(liar.raw().closed_within(Duration::from_secs(5)).await, "the liar is banned");
        }
    }
    // One short disconnect of validator 3.
    let before = head(&chain.urls[0]).await.expect("answers").height;
    let ids = chain.ids().await;
    chain.lab.cut(3);
    for host in 0..3 {
        wait_for("the others to lose validator 3", Duration::from_secs(2), || async {
            (!chain.peers(host).await.contains(&ids[3])).then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    chain.lab.restore(3);
    let regained = chain.wait_fully_connected(Duration::from_secs(10)).await;
    eprintln!("validator 3 had its three peers back {regained:?} after its link came back");
    for url in &chain.urls {
        wait_for_height(url, before + 4, Duration::from_secs(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throwaway_identities_filling_the_tables_do_not_keep_a_validator_out() {
    let Some(mut chain) = LabChain::start(4).await else { return };
    let adversary = Adversary::against(&chain.urls[0], chain.p2p[0]).await;
    // The attacker has 36 addresses in three subnets.
    let sources: Vec<IpAddr> = (1..=3u8)
        .flat_map(|third| (1..=12u8).map(move |fourth| (third, fourth)))
        .map(|(third, fourth)| chain.lab.other_ip(third, fourth))
        .collect();
    for source in &sources {
        chain.lab.add_address(*source);
    }
    let ids = chain.ids().await;
    // Validator 3 goes down, and throwaway identities take every slot the others will give.
    let down = chain.pid(3);
    chain.nodes[3].take().expect("running").kill9();
    assert!(!testkit::is_alive(down));
    let mut crowd = Vec::new();
    for victim in 0..3 {
        for source in &sources {
            let peers = adversary.at(chain.p2p[victim]).from(*source).crowd(4).await;
            crowd.extend(peers.into_iter().map(|peer| peer.stay()));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for victim in 0..3 {
        let peers = chain.peers(victim).await.len();
        eprintln!("validator {victim} has {peers} peers, two of them validators");
        assert!(peers >= 40, "the table of validator {victim} is full ({peers} peers)");
    }
    // Validator 3 comes back into full tables: its reserved slots are waiting.
    let before = head(&chain.urls[0]).await.expect("answers").height;
    let restarted = Instant::now();
    let process = chain.spawn(3);
    chain.nodes[3] = Some(process);
    wait_for("validator 3 back with its three peers", Duration::from_secs(10), || async {
        let peers = chain.peers(3).await;
        (ids.iter().take(3).all(|id| peers.contains(id))).then_some(())
    })
    .await;
    eprintln!("validator 3 had its three peers {:?} after it was started", restarted.elapsed());
    wait_for_height(&chain.urls[3], before + 4, Duration::from_secs(30)).await;
    for task in crowd {
        task.abort();
    }
}

/// The resident memory of process `pid`, in MB.
fn resident_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_ask_for_blocks_and_never_read_do_not_exhaust_memory() {
    let Some(chain) = LabChain::start(4).await else { return };
    // Blocks worth asking for: twenty thousand transfers.
    let bench = tokio::task::spawn_blocking({
        let dir = chain.dir.clone();
        let url = chain.urls[0].clone();
        move || {
            std::process::Command::new(joule())
                .args(["bench", "ingest", "--devnet", dir.to_str().unwrap(), "--rpc", &url])
                .args(["--txs", "20000", "--senders", "200", "--json"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(bench.status.success(), "{}", String::from_utf8_lossy(&bench.stderr));
    let victim = 0;
    let pid = chain.pid(victim);
    let before_attack = resident_mb(pid);
    let height_before = head(&chain.urls[victim]).await.expect("answers").height;

    // Four peers (as many as one address may have) ask for the first 512 blocks 200 times a
    // second and never read; one that is dropped comes back as a new identity.
    let adversary = Adversary::against(&chain.urls[victim], chain.p2p[victim]).await;
    let attack = Duration::from_secs(25);
    let until = Instant::now() + attack;
    let nowhere = SocketAddr::new(chain.lab.gateway(), 0);
    let request = Wire::GetBlocks { from: Height(0), count: 512 };
    let mut attackers = Vec::new();
    for _ in 0..4 {
        let adversary = adversary.clone();
        let request = request.clone();
        attackers.push(tokio::spawn(async move {
            let mut identities = 0u32;
            while Instant::now() < until {
                let Ok(peer) = adversary.connect(Adversary::throwaway(), nowhere).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                identities += 1;
                let task = peer.repeat_without_reading(&request, Duration::from_millis(5));
                let left = until.saturating_duration_since(Instant::now());
                let finished = tokio::time::timeout(left, task).await;
                if finished.is_err() {
                    break;
                }
            }
            identities
        }));
    }
    let mut peak = before_attack;
    while Instant::now() < until {
        let now = resident_mb(pid);
        peak = peak.max(now);
        assert!(now < 300, "the node holds {now} MB under attack (it had {before_attack} MB)");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut identities = 0;
    for attacker in attackers {
        identities += attacker.await.unwrap();
    }
    let height_after = head(&chain.urls[victim]).await.expect("answers").height;
    let committed = height_after - height_before;
    eprintln!(
        "resident memory {before_attack} MB before, at most {peak} MB during {attack:?} of attack \
         by {identities} identities; {committed} blocks committed meanwhile"
    );
    assert!(committed >= 15, "the chain kept committing: {committed} blocks in {attack:?}");
    chain.wait_fully_connected(Duration::from_secs(10)).await;
}
