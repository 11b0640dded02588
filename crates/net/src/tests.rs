//! Loopback tests with real sockets. Raw peers use the crate's own handshake so that they can
//! misbehave after authenticating.

use super::*;
use crate::wire::{FramedStream, LocalIdentity, RecvCipher, SendCipher, WireMessage};
use futures::{SinkExt, StreamExt};
use primitives::SecretKey;
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

/// An authenticated peer driven by hand.
struct RawPeer {
    framed: FramedStream,
    send: SendCipher,
    _recv: RecvCipher,
}

impl RawPeer {
    async fn connect(addr: SocketAddr, seed: u8) -> RawPeer {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut framed = wire::handshake_framed(stream);
        let session =
            wire::handshake(&mut framed, true, &identity(seed, CHAIN)).await.expect("handshake");
        framed.codec_mut().set_max_frame_length(1 << 24);
        RawPeer { framed, send: session.send, _recv: session.recv }
    }

    async fn send_plaintext(&mut self, plaintext: &[u8]) -> Result<(), NetError> {
        let sealed = self.send.seal(plaintext)?;
        self.framed.send(sealed).await?;
        Ok(())
    }

    /// Whether the other side closes the connection within `within` (frames are read and
    /// ignored meanwhile).
    async fn closed_within(&mut self, within: Duration) -> bool {
        timeout(within, async { while let Some(Ok(_)) = self.framed.next().await {} }).await.is_ok()
    }
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
    let mut peer = RawPeer::connect(a.handle.local_addr(), 2).await;
    a.connected(id(2)).await;
    peer.framed.get_mut().write_all(&10_000_000u32.to_be_bytes()).await.expect("write");
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
    let mut raw = RawPeer::connect(a.handle.local_addr(), 2).await;
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
    let mut raw = RawPeer::connect(a.handle.local_addr(), 2).await;
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
    let mut raw = RawPeer::connect(a.handle.local_addr(), 2).await;
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
async fn a_slow_peer_loses_gossip_but_never_blocks_the_manager() {
    let mut a_config = config(1);
    a_config.outbound_queue = 8;
    a_config.max_frame_bytes = 70_000;
    let a = node(a_config).await;
    let mut b_config = config(3);
    b_config.bootstrap = vec![a.handle.local_addr()];
    let mut b = node(b_config).await;
    // Authenticates and then never reads: its socket buffers fill up.
    let _slow = RawPeer::connect(a.handle.local_addr(), 2).await;
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
