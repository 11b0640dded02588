//! Loopback tests with real sockets. Raw peers use the crate's own handshake so that they can
//! misbehave after authenticating.

use super::*;
use crate::raw::{RawHello, RawMessage, RawPeer};
use crate::wire::{LocalIdentity, WireMessage};
use futures::{SinkExt, StreamExt};
use primitives::SecretKey;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

const CHAIN: &str = "joule-test";
const GENESIS: [u8; 32] = [9; 32];
const WAIT: Duration = Duration::from_secs(5);

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn id(seed: u8) -> PeerId {
    key(seed).public_key()
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn config(seed: u8) -> NetConfig {
    let mut config = NetConfig::new(loopback(), key(seed), CHAIN, GENESIS);
    config.ping_interval = Duration::from_millis(100);
    config.dead_after = Duration::from_secs(2);
    config.handshake_timeout = Duration::from_secs(2);
    config
}

struct Node {
    handle: NetHandle,
    events: mpsc::Receiver<NetEvent>,
}

async fn node(config: NetConfig) -> Node {
    let (handle, events) = start(config).await.expect("network starts");
    Node { handle, events }
}

impl Node {
    /// The next event matching `wanted`, skipping others; panics after `WAIT`.
    async fn expect(&mut self, what: &str, wanted: impl Fn(&NetEvent) -> bool) -> NetEvent {
        let deadline = Instant::now() + WAIT;
        loop {
            let event =
                timeout(deadline.saturating_duration_since(Instant::now()), self.events.recv())
                    .await
                    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                    .unwrap_or_else(|| panic!("event stream ended waiting for {what}"));
            if wanted(&event) {
                return event;
            }
        }
    }

    async fn connected(&mut self, peer: PeerId) {
        self.expect(
            "connected",
            |event| matches!(event, NetEvent::Connected { peer: p, .. } if *p == peer),
        )
        .await;
    }

    async fn disconnected(&mut self, peer: PeerId) {
        self.expect(
            "disconnected",
            |event| matches!(event, NetEvent::Disconnected { peer: p } if *p == peer),
        )
        .await;
    }

    async fn peer_ids(&self) -> Vec<PeerId> {
        let mut ids: Vec<PeerId> =
            self.handle.peers().await.into_iter().map(|info| info.id).collect();
        ids.sort();
        ids
    }

    async fn info(&self, peer: PeerId) -> Option<PeerInfo> {
        self.handle.peers().await.into_iter().find(|info| info.id == peer)
    }

    async fn stop(self) {
        self.handle.shutdown();
        timeout(WAIT, self.handle.stopped()).await.expect("network stops");
    }
}

/// Polls `condition` (a state, not an event) until it holds; panics after `WAIT`.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

fn identity(seed: u8, chain_id: &str) -> LocalIdentity {
    let params: snow::params::NoiseParams = wire::NOISE_PARAMS.parse().expect("params");
    let noise = snow::Builder::new(params).generate_keypair().expect("noise key");
    LocalIdentity {
        secret: key(seed),
        peer_id: id(seed),
        noise_private: noise.private,
        chain_id: chain_id.to_string(),
        genesis_hash: GENESIS,
        protocol_version: PROTOCOL_VERSION,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

/// The hello of key `seed` on our chain, claiming `listen`.
fn raw_hello(seed: u8, listen: SocketAddr) -> RawHello {
    RawHello::new(key(seed), CHAIN, GENESIS, listen)
}

/// An authenticated peer driven by hand, claiming no listen address.
async fn raw_peer(addr: SocketAddr, seed: u8) -> RawPeer {
    RawPeer::connect(addr, None, &raw_hello(seed, loopback())).await.expect("handshake")
}

#[tokio::test]
async fn oversized_length_prefix_is_refused_before_the_body() {
    let mut config = config(1);
    config.max_frame_bytes = 1024;
    let mut a = node(config).await;

    // Before the handshake: a 2 GiB prefix and no body. The connection is closed at once,
    // well before the handshake timeout, so the body was never awaited.
    let started = Instant::now();
    let mut raw = TcpStream::connect(a.handle.local_addr()).await.expect("connect");
    raw.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.expect("write");
    let mut buffer = [0u8; 64];
    let read = timeout(Duration::from_secs(1), async {
        loop {
            match raw.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "connection not closed after an oversized prefix");
    assert!(started.elapsed() < Duration::from_secs(1));

    // After the handshake: an authenticated peer announcing a frame over the cap is dropped.
    let mut peer = raw_peer(a.handle.local_addr(), 2).await;
    a.connected(id(2)).await;
    peer.write_raw(&10_000_000u32.to_be_bytes()).await.expect("write");
    a.disconnected(id(2)).await;
    assert!(peer.closed_within(Duration::from_secs(1)).await);
    a.stop().await;
}

#[tokio::test]
async fn large_payloads_cross_in_several_noise_messages_and_oversize_is_not_sent() {
    let mut a_config = config(1);
    a_config.max_frame_bytes = 300_000;
    let mut a = node(a_config).await;
    let mut b_config = config(2);
    b_config.max_frame_bytes = 300_000;
    b_config.bootstrap = vec![a.handle.local_addr()];
    let mut b = node(b_config).await;
    a.connected(id(2)).await;
    b.connected(id(1)).await;

    let big: Bytes = (0..200_000u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>().into();
    a.handle.send(id(2), Bytes::from(vec![1u8; 300_001]));
    a.handle.send(id(2), big.clone());
    let event = b.expect("direct", |event| matches!(event, NetEvent::Direct { .. })).await;
    assert_eq!(
        event,
        NetEvent::Direct { from: id(1), payload: big },
        "the oversized one was not sent"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn hellos_from_another_chain_genesis_or_version_and_self_dials_are_refused() {
    let mut a = node(config(1)).await;
    let target = vec![a.handle.local_addr()];
    let mut other_chain = config(2);
    other_chain.chain_id = "other".into();
    let mut other_genesis = config(3);
    other_genesis.genesis_hash = [1; 32];
    let mut other_version = config(4);
    other_version.protocol_version = PROTOCOL_VERSION + 1;
    let mut good = config(5);
    let mut bad = Vec::new();
    for mut config in [other_chain, other_genesis, other_version] {
        config.bootstrap = target.clone();
        bad.push(node(config).await);
    }
    good.bootstrap = target.clone();
    let good = node(good).await;
    a.handle.add_peer(a.handle.local_addr()).await.expect("add self");

    a.connected(id(5)).await;
    // Give the refused ones several redials (250 ms, 500 ms, ...).
    sleep(Duration::from_millis(800)).await;
    assert_eq!(a.peer_ids().await, vec![id(5)]);
    while let Ok(event) = a.events.try_recv() {
        assert!(!matches!(event, NetEvent::Connected { .. }), "unexpected {event:?}");
    }
    for node in bad {
        assert!(node.peer_ids().await.is_empty());
        node.stop().await;
    }
    good.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_hello_signed_over_another_handshake_is_refused() {
    let mut a = node(config(1)).await;
    let stream = TcpStream::connect(a.handle.local_addr()).await.expect("connect");
    let mut framed = wire::handshake_framed(stream);
    let local = identity(2, CHAIN);
    let mut noise =
        wire::noise_handshake(&mut framed, true, &local.noise_private).await.expect("noise");
    // A valid signature by key 2, but over a different handshake hash (a replayed hello).
    let hello = local.hello(&[0u8; 32]);
    let sealed = noise.send.seal(&WireMessage::Hello(hello).encode()).expect("seal");
    framed.send(sealed).await.expect("send");
    let closed =
        timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = framed.next().await {} })
            .await;
    assert!(closed.is_ok(), "connection not closed");
    assert!(a.events.try_recv().is_err(), "no event for a refused peer");
    assert!(a.peer_ids().await.is_empty());
    a.stop().await;
}

#[tokio::test]
async fn simultaneous_dials_leave_one_connection_both_sides_agree_on() {
    let a = node(config(1)).await;
    let mut b_config = config(2);
    b_config.bootstrap = vec![a.handle.local_addr()];
    let b = node(b_config).await;
    a.handle.add_peer(b.handle.local_addr()).await.expect("add");
    eventually("both connected", || async {
        a.peer_ids().await == vec![id(2)] && b.peer_ids().await == vec![id(1)]
    })
    .await;
    sleep(Duration::from_millis(500)).await;
    let on_a = a.handle.peers().await;
    let on_b = b.handle.peers().await;
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_b.len(), 1);
    assert_ne!(on_a[0].outbound, on_b[0].outbound, "both ends see the same connection");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn peer_exchange_connects_nodes_that_share_a_bootstrap() {
    let b = node(config(2)).await;
    let mut a_config = config(1);
    a_config.bootstrap = vec![b.handle.local_addr()];
    let a = node(a_config).await;
    let mut c_config = config(3);
    c_config.bootstrap = vec![b.handle.local_addr()];
    let c = node(c_config).await;
    eventually("a and c connected", || async { a.peer_ids().await.contains(&id(3)) }).await;
    eventually("c sees a", || async { c.peer_ids().await.contains(&id(1)) }).await;
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test]
async fn pings_measure_latency_and_a_restarted_peer_is_redialled() {
    let b_config = config(2);
    let b = node(b_config.clone()).await;
    let b_addr = b.handle.local_addr();
    let mut a_config = config(1);
    a_config.bootstrap = vec![b_addr];
    let mut a = node(a_config).await;
    a.connected(id(2)).await;
    eventually("a ping answered", || async {
        a.info(id(2)).await.is_some_and(|info| info.latency.is_some())
    })
    .await;

    b.stop().await;
    a.disconnected(id(2)).await;
    let mut restarted = b_config;
    restarted.listen = b_addr;
    let b = node(restarted).await;
    a.connected(id(2)).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_dead_after() {
    let mut a_config = config(1);
    a_config.dead_after = Duration::from_millis(400);
    let mut a = node(a_config).await;
    // Authenticates, then never sends anything (not even pongs).
    let mut raw = raw_peer(a.handle.local_addr(), 2).await;
    a.connected(id(2)).await;
    let started = Instant::now();
    a.disconnected(id(2)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(raw.closed_within(Duration::from_secs(1)).await);
    a.stop().await;
}

#[tokio::test]
async fn max_peers_caps_the_peer_table() {
    let mut a_config = config(1);
    a_config.max_peers = 1;
    let a = node(a_config).await;
    let mut others = Vec::new();
    for seed in [2, 3] {
        let mut config = config(seed);
        config.bootstrap = vec![a.handle.local_addr()];
        others.push(node(config).await);
    }
    eventually("one peer", || async { a.peer_ids().await.len() == 1 }).await;
    sleep(Duration::from_millis(600)).await;
    assert_eq!(a.peer_ids().await.len(), 1, "the second one was refused");
    let mut connected_others = 0;
    for other in &others {
        connected_others += other.peer_ids().await.len();
    }
    assert_eq!(connected_others, 1);
    for other in others {
        other.stop().await;
    }
    a.stop().await;
}

#[tokio::test]
async fn a_flooding_peer_is_rate_limited_and_banned() {
    let mut a_config = config(1);
    a_config.max_messages_per_sec = 10;
    let mut a = node(a_config).await;
    let mut raw = raw_peer(a.handle.local_addr(), 2).await;
    a.connected(id(2)).await;
    for index in 0..300u32 {
        let message = WireMessage::Direct(index.to_be_bytes().to_vec()).encode();
        if raw.send_plaintext(&message).await.is_err() {
            break;
        }
    }
    let mut delivered = 0;
    loop {
        match a.expect("direct or disconnect", |_| true).await {
            NetEvent::Direct { .. } => delivered += 1,
            NetEvent::Disconnected { peer } if peer == id(2) => break,
            _ => {}
        }
    }
    assert!(delivered <= 15, "{delivered} messages passed a limit of 10 per second");
    assert!(delivered >= 10, "the burst passes");
    // Banned: it cannot come back.
    let stream = TcpStream::connect(a.handle.local_addr()).await.expect("connect");
    let mut framed = wire::handshake_framed(stream);
    let result = wire::handshake(&mut framed, true, &identity(2, CHAIN)).await;
    if result.is_ok() {
        assert!(
            timeout(Duration::from_secs(1), async {
                while let Some(Ok(_)) = framed.next().await {}
            })
            .await
            .is_ok()
        );
    }
    assert!(a.peer_ids().await.is_empty());
    a.stop().await;
}

#[tokio::test]
async fn undecodable_messages_lower_the_score() {
    let a = node(config(1)).await;
    let mut raw = raw_peer(a.handle.local_addr(), 2).await;
    eventually("connected", || async { a.peer_ids().await == vec![id(2)] }).await;
    raw.send_plaintext(&[0xee, 1, 2]).await.expect("send");
    let penalty = Misbehaviour::InvalidMessage.penalty();
    eventually("score lowered", || async {
        a.info(id(2)).await.is_some_and(|info| info.score == -penalty)
    })
    .await;
    a.stop().await;
}

#[tokio::test]
async fn reported_peers_are_banned_until_the_ban_expires() {
    let mut a_config = config(1);
    a_config.ban_duration = Duration::from_millis(800);
    let mut a = node(a_config).await;
    let mut b_config = config(2);
    b_config.bootstrap = vec![a.handle.local_addr()];
    let b = node(b_config).await;
    a.connected(id(2)).await;

    a.handle.report(id(2), Misbehaviour::InvalidBlock);
    eventually("score lowered", || async {
        a.info(id(2)).await.is_some_and(|info| info.score == -Misbehaviour::InvalidBlock.penalty())
    })
    .await;
    a.handle.report(id(2), Misbehaviour::InvalidBlock);
    a.disconnected(id(2)).await;
    let banned_at = Instant::now();
    // b redials at once (250 ms, 750 ms...) and is refused while banned.
    sleep(Duration::from_millis(500)).await;
    assert!(a.peer_ids().await.is_empty(), "refused while banned");
    a.connected(id(2)).await;
    assert!(banned_at.elapsed() >= Duration::from_millis(800), "not before the ban expired");
    assert_eq!(a.info(id(2)).await.map(|info| info.score), Some(0));
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn blocked_peers_are_cut_off_until_unblocked() {
    let mut a = node(config(1)).await;
    let mut b_config = config(2);
    b_config.bootstrap = vec![a.handle.local_addr()];
    let mut b = node(b_config).await;
    a.connected(id(2)).await;
    a.handle.set_blocked(vec![id(2)]);
    a.disconnected(id(2)).await;
    b.disconnected(id(1)).await;
    sleep(Duration::from_millis(400)).await;
    assert!(a.peer_ids().await.is_empty(), "refused while blocked");
    a.handle.set_blocked(Vec::new());
    a.connected(id(2)).await;
    a.handle.send(id(2), Bytes::from_static(b"after"));
    let event = b.expect("direct", |event| matches!(event, NetEvent::Direct { .. })).await;
    assert_eq!(event, NetEvent::Direct { from: id(1), payload: Bytes::from_static(b"after") });
    assert!(a.handle.remove_peer(id(2)).await);
    a.disconnected(id(2)).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn gossip_reaches_a_ring_of_four_exactly_once() {
    let mut nodes = Vec::new();
    for seed in 1..=4 {
        let mut config = config(seed);
        config.target_outbound = 0;
        nodes.push(node(config).await);
    }
    for index in 0..4 {
        let next = nodes[(index + 1) % 4].handle.local_addr();
        nodes[index].handle.add_peer(next).await.expect("add");
    }
    for node in &nodes {
        eventually("ring formed", || async { node.peer_ids().await.len() == 2 }).await;
    }
    // Each node forwards what it has not seen, as the node crate will after validation.
    let counts: Vec<Arc<AtomicUsize>> = (0..4).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut forwarders = tokio::task::JoinSet::new();
    let mut handles = Vec::new();
    for (node, count) in nodes.into_iter().zip(&counts) {
        let Node { handle, mut events } = node;
        handles.push(handle.clone());
        let count = count.clone();
        forwarders.spawn(async move {
            while let Some(event) = events.recv().await {
                if let NetEvent::Gossip { from, payload } = event {
                    count.fetch_add(1, Ordering::SeqCst);
                    handle.gossip(payload, Some(from));
                }
            }
        });
    }
    handles[0].gossip(Bytes::from_static(b"a transaction"), None);
    eventually("delivered everywhere", || async {
        counts[1..].iter().all(|count| count.load(Ordering::SeqCst) >= 1)
    })
    .await;
    sleep(Duration::from_millis(300)).await;
    let delivered: Vec<usize> = counts.iter().map(|count| count.load(Ordering::SeqCst)).collect();
    assert_eq!(delivered, vec![0, 1, 1, 1], "once each, no echo to the origin");
    for handle in &handles {
        handle.shutdown();
    }
    for handle in &handles {
        timeout(WAIT, handle.stopped()).await.expect("stops");
    }
    // The event streams end when the networks stop, and with them the forwarders.
    while forwarders.join_next().await.is_some() {}
}

#[tokio::test]
async fn a_relay_goes_to_a_few_peers_and_an_own_payload_to_all() {
    let mut hub_config = config(1);
    hub_config.target_outbound = 0;
    hub_config.relay_fanout = 2;
    hub_config.max_inbound_per_ip = 8;
    let hub = node(hub_config).await;
    let mut leaves = Vec::new();
    for seed in 2..=6 {
        let mut leaf_config = config(seed);
        leaf_config.target_outbound = 0;
        leaf_config.bootstrap = vec![hub.handle.local_addr()];
        leaves.push(node(leaf_config).await);
    }
    eventually("star formed", || async { hub.peer_ids().await.len() == 5 }).await;
    let Node { handle: hub_handle, events: mut hub_events } = hub;
    let counts: Vec<Arc<AtomicUsize>> = (0..5).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut listeners = tokio::task::JoinSet::new();
    let mut leaf_handles = Vec::new();
    for (leaf, count) in leaves.into_iter().zip(&counts) {
        let Node { handle, mut events } = leaf;
        leaf_handles.push(handle);
        let count = count.clone();
        listeners.spawn(async move {
            while let Some(event) = events.recv().await {
                if let NetEvent::Gossip { .. } = event {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    let delivered = || counts.iter().map(|count| count.load(Ordering::SeqCst)).collect::<Vec<_>>();

    // A leaf's payload, passed on by the hub: the author and two more leaves.
    leaf_handles[0].gossip(Bytes::from_static(b"a leaf's transaction"), None);
    let (from, payload) = loop {
        match timeout(WAIT, hub_events.recv()).await.expect("the hub hears the leaf") {
            Some(NetEvent::Gossip { from, payload }) => break (from, payload),
            Some(_) => {}
            None => panic!("the hub stopped"),
        }
    };
    assert_eq!(from, id(2));
    hub_handle.gossip(payload, Some(from));
    eventually("passed on", || async { delivered().iter().sum::<usize>() == 2 }).await;
    sleep(Duration::from_millis(300)).await;
    let relayed = delivered();
    assert_eq!(relayed[0], 0, "not back to its author");
    assert_eq!(relayed.iter().sum::<usize>(), 2, "to relay_fanout peers only: {relayed:?}");

    // The hub's own payload reaches every leaf.
    hub_handle.gossip(Bytes::from_static(b"the hub's own vote"), None);
    eventually("own payload everywhere", || async {
        delivered().iter().zip(&relayed).all(|(now, before)| now - before == 1)
    })
    .await;

    for handle in leaf_handles.iter().chain([&hub_handle]) {
        handle.shutdown();
    }
    for handle in leaf_handles.iter().chain([&hub_handle]) {
        timeout(WAIT, handle.stopped()).await.expect("stops");
    }
    while listeners.join_next().await.is_some() {}
}

#[tokio::test]
async fn a_slow_peer_loses_gossip_but_never_blocks_the_manager() {
    let mut a_config = config(1);
    a_config.outbound_queue = 8;
    a_config.max_frame_bytes = 70_000;
    let a = node(a_config).await;
    let mut b_config = config(3);
    b_config.bootstrap = vec![a.handle.local_addr()];
    let mut b = node(b_config).await;
    // Authenticates and then never reads: its socket buffers fill up.
    let _slow = raw_peer(a.handle.local_addr(), 2).await;
    eventually("both connected", || async { a.peer_ids().await.len() == 2 }).await;
    b.connected(id(1)).await;

    let started = Instant::now();
    for index in 0..400u32 {
        let mut payload = vec![0u8; 65_000];
        payload[..4].copy_from_slice(&index.to_be_bytes());
        a.handle.gossip(Bytes::from(payload), None);
    }
    assert!(started.elapsed() < Duration::from_secs(1), "gossip never blocks");
    eventually("slow peer dropped messages", || async {
        a.info(id(2)).await.is_some_and(|info| info.dropped > 0)
    })
    .await;
    // The manager still serves others.
    a.handle.send(id(3), Bytes::from_static(b"still here"));
    b.expect("direct after the flood", |event| {
        matches!(event, NetEvent::Direct { payload, .. } if payload.as_ref() == b"still here")
    })
    .await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_claimed_address_is_dialled_but_never_trusted_announced_or_banned() {
    // The honest node H never dials; V knows it from its bootstrap list.
    let honest = node(config(3)).await;
    let honest_addr = honest.handle.local_addr();
    let mut v_config = config(1);
    v_config.bootstrap = vec![honest_addr];
    let mut victim = node(v_config).await;
    victim.connected(id(3)).await;

    // A throwaway identity claims H's address, then sends garbage until it is banned.
    let mut liar = RawPeer::connect(victim.handle.local_addr(), None, &raw_hello(9, honest_addr))
        .await
        .expect("handshake");
    victim.connected(id(9)).await;
    for _ in 0..5 {
        liar.send_plaintext(&[0xee, 1, 2]).await.expect("send");
    }
    victim.disconnected(id(9)).await;
    // Another claims an address where nobody listens; it is not passed on to others.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 1));
    let _dreamer = RawPeer::connect(victim.handle.local_addr(), None, &raw_hello(10, nowhere))
        .await
        .expect("handshake");
    victim.connected(id(10)).await;
    let mut asker = raw_peer(victim.handle.local_addr(), 11).await;
    victim.connected(id(11)).await;
    asker.send_get_peers().await.expect("send");
    let announced = timeout(WAIT, async {
        loop {
            if let RawMessage::Peers(addrs) = asker.recv().await.expect("recv") {
                return addrs;
            }
        }
    })
    .await
    .expect("an answer");
    assert_eq!(announced, vec![honest_addr], "only the address V dialled itself");

    // A short cut between V and H: V dials H's address again at once, it was never banned.
    victim.handle.set_blocked(vec![id(3)]);
    victim.disconnected(id(3)).await;
    victim.handle.set_blocked(Vec::new());
    victim.connected(id(3)).await;
    honest.stop().await;
    victim.stop().await;
}

#[tokio::test]
async fn throwaway_identities_get_a_few_slots_per_address_and_subnet() {
    let mut v_config = config(1);
    v_config.dead_after = Duration::from_secs(30);
    v_config.max_inbound_per_ip = 2;
    v_config.max_inbound_per_subnet = 3;
    let victim = node(v_config).await;
    let addr = victim.handle.local_addr();
    let mut peers = Vec::new();
    for seed in 20..25 {
        peers.push(raw_peer(addr, seed).await);
    }
    for host in 1..=5u8 {
        let source = IpAddr::from([127, 0, 9, host]);
        let hello = raw_hello(30 + host, loopback());
        peers.push(RawPeer::connect(addr, Some(source), &hello).await.expect("handshake"));
    }
    eventually("five admitted", || async { victim.peer_ids().await.len() == 5 }).await;
    sleep(Duration::from_millis(300)).await;
    let admitted = victim.handle.peers().await;
    let from_one_address = admitted.iter().filter(|peer| peer.addr.ip() == loopback().ip());
    assert_eq!(from_one_address.count(), 2, "{admitted:?}");
    assert_eq!(admitted.len(), 5, "two from 127.0.0.1, three from 127.0.9.0/24: {admitted:?}");
    victim.stop().await;
}

#[tokio::test]
async fn reserved_peers_and_bootstrap_dials_get_slots_in_a_full_table() {
    // H's address is known before H runs.
    let honest = node(config(3)).await;
    let honest_addr = honest.handle.local_addr();
    honest.stop().await;
    let mut v_config = config(1);
    v_config.max_peers = 4;
    v_config.max_inbound_per_ip = 10;
    v_config.dead_after = Duration::from_secs(30);
    v_config.reserved = vec![id(5)];
    v_config.bootstrap = vec![honest_addr];
    let victim = node(v_config).await;
    let addr = victim.handle.local_addr();

    // Throwaway identities take every inbound slot (four peers, two kept for our dials).
    let mut throwaway = Vec::new();
    for seed in 40..44 {
        throwaway.push(raw_peer(addr, seed).await);
    }
    eventually("inbound slots full", || async { victim.peer_ids().await.len() == 2 }).await;
    sleep(Duration::from_millis(300)).await;
    assert_eq!(victim.peer_ids().await.len(), 2, "the others were refused");

    // A configured validator is admitted anyway.
    let mut reserved_config = config(5);
    reserved_config.bootstrap = vec![addr];
    let reserved = node(reserved_config).await;
    eventually("the reserved peer admitted", || async { victim.peer_ids().await.contains(&id(5)) })
        .await;
    // And the bootstrap peer, back at its address, is dialled although the table is full.
    let mut restarted = config(3);
    restarted.listen = honest_addr;
    let honest = node(restarted).await;
    eventually("the bootstrap peer dialled", || async { victim.peer_ids().await.contains(&id(3)) })
        .await;
    let infos = victim.handle.peers().await;
    let reserved_ids: Vec<PeerId> =
        infos.iter().filter(|info| info.reserved).map(|info| info.id).collect();
    assert_eq!(reserved_ids.len(), 2, "{infos:?}");
    assert!(reserved_ids.contains(&id(3)) && reserved_ids.contains(&id(5)));
    reserved.stop().await;
    honest.stop().await;
    victim.stop().await;
}

#[tokio::test]
async fn a_reserved_peer_is_banned_briefly_then_dialled_again() {
    let b = node(config(2)).await;
    let mut a_config = config(1);
    a_config.bootstrap = vec![b.handle.local_addr()];
    a_config.ban_duration = Duration::from_secs(600);
    a_config.reserved_ban_duration = Duration::from_millis(700);
    let mut a = node(a_config).await;
    a.connected(id(2)).await;
    a.handle.report(id(2), Misbehaviour::InvalidBlock);
    a.handle.report(id(2), Misbehaviour::InvalidBlock);
    a.disconnected(id(2)).await;
    let banned_at = Instant::now();
    a.connected(id(2)).await;
    let elapsed = banned_at.elapsed();
    assert!(elapsed >= Duration::from_millis(650), "not before the ban ended: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "dialled again at once: {elapsed:?}");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_peer_that_does_not_read_gets_little_queued_and_is_dropped() {
    let mut a_config = config(1);
    a_config.max_frame_bytes = 300_000;
    a_config.max_queued_bytes = 250_000;
    a_config.write_timeout = Duration::from_millis(800);
    let mut a = node(a_config).await;
    let mut b_config = config(3);
    b_config.bootstrap = vec![a.handle.local_addr()];
    let b = node(b_config).await;
    a.connected(id(3)).await;
    // It sends (so it is not silent) but never reads.
    let mut deaf = raw_peer(a.handle.local_addr(), 2).await;
    a.connected(id(2)).await;
    let pinger = tokio::spawn(async move {
        for stamp in 0..100u64 {
            if deaf.send_ping(stamp).await.is_err() {
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        deaf
    });
    // Far more than its socket buffers hold, at a pace its connection task can follow.
    let payload = Bytes::from(vec![7u8; 100_000]);
    let mut first_drop = None;
    for sent in 0..400u32 {
        a.handle.send(id(2), payload.clone());
        sleep(Duration::from_millis(2)).await;
        if first_drop.is_none() && a.info(id(2)).await.is_some_and(|info| info.dropped > 0) {
            first_drop = Some(sent);
        }
        if a.info(id(2)).await.is_none() {
            break;
        }
    }
    let first_drop = first_drop.expect("messages were dropped");
    eprintln!("first message dropped after {first_drop} of 100 kB");
    assert!(first_drop < 300, "the queue is bounded in bytes, not by its 1024 messages");
    a.disconnected(id(2)).await;
    assert_eq!(a.peer_ids().await, vec![id(3)]);
    assert!(!a.handle.send_and_wait(id(2), payload.clone()).await, "gone");
    assert!(a.handle.send_and_wait(id(3), payload).await, "a reading peer gets it");
    pinger.abort();
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn received_payloads_wait_while_the_node_holds_a_peer_s_budget() {
    let mut a_config = config(1);
    a_config.max_frame_bytes = 1_100_000;
    a_config.max_peer_inbound_bytes = 2_500_000;
    let mut a = node(a_config).await;
    let mut flooder = raw_peer(a.handle.local_addr(), 2).await;
    a.connected(id(2)).await;
    let sender = tokio::spawn(async move {
        for index in 0..20u8 {
            let mut payload = vec![index; 1_000_000];
            payload[0] = index;
            if flooder.send_gossip(&payload).await.is_err() {
                break;
            }
        }
        flooder
    });
    // The node holds what it received: the peer's budget runs out after three payloads.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    while let Ok(Some(event)) =
        timeout(deadline.saturating_duration_since(Instant::now()), a.events.recv()).await
    {
        if let NetEvent::Gossip { payload, .. } = event {
            held.push(payload);
        }
    }
    assert_eq!(held.len(), 2, "a third would exceed 2.5 MB");
    // Once it lets go, the rest arrives.
    drop(held);
    let mut received = 2;
    while received < 20 {
        if let NetEvent::Gossip { .. } = a.expect("gossip", |_| true).await {
            received += 1;
        }
    }
    sender.await.expect("sender");
    a.stop().await;
}
