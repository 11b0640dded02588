//! The node's side of the peer-to-peer network: one task that turns what peers send into
//! messages for the manager (after cheap checks, so junk is neither relayed nor queued), serves
//! block requests straight from the store, and sends what the manager asks it to.

use crate::{
    manager::{NodeHandle, NodeMessage},
    wire::{MAX_BLOCKS_PER_MESSAGE, Wire},
};
use bytes::Bytes;
use consensus::{EngineMessage, Verdict};
use net::{NetConfig, NetEvent, NetHandle};
use primitives::{Block, BlockHash, ChainConfig, ChainId, Height, SecretKey};
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    time::Duration,
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};
use tracing::{debug, warn};

pub(crate) use net::Misbehaviour;
pub use net::PeerId;

/// How a node takes part in the network.
#[derive(Clone, Debug)]
pub struct P2pConfig {
    /// Where to listen for peers.
    pub listen: SocketAddr,
    /// The address to tell peers (defaults to `listen`).
    pub advertise: Option<SocketAddr>,
    /// Peers to dial at start (and redial).
    pub bootstrap: Vec<SocketAddr>,
    /// The node's identity on the network (a validator uses its validator key).
    pub identity: SecretKey,
    /// Most connected peers.
    pub max_peers: usize,
}

/// What the manager (or a handle) asks the network task to send.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// To every peer but `from`, once.
    Gossip { wire: Wire, from: Option<PeerId> },
    /// To one peer.
    Send { peer: PeerId, wire: Wire },
    /// To every connected peer, even if an identical message went before.
    SendAll { wire: Wire },
    /// A peer sent something invalid.
    Report { peer: PeerId, misbehaviour: Misbehaviour },
}

/// Most transaction batches from peers waiting to be checked (signature checks themselves are
/// bounded by the node's verification permits); beyond this, batches are dropped.
const MAX_TX_BATCHES: usize = 256;
/// Bytes of blocks sent in one answer, at most (well under the frame cap).
const MAX_BLOCKS_BYTES: usize = 8 << 20;

/// The largest frame a node accepts: a full block of the largest transactions, with room.
pub fn max_frame_bytes(config: &ChainConfig) -> usize {
    let block = (config.params.max_block_txs as usize)
        .saturating_mul(primitives::tx::MAX_TX_BYTES)
        .saturating_add(64 << 10);
    block.max(MAX_BLOCKS_BYTES + (64 << 10))
}

/// Starts the network layer for this chain.
pub(crate) async fn start_network(
    config: &P2pConfig,
    chain: &ChainConfig,
    genesis_hash: BlockHash,
) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), net::NetError> {
    let mut net_config = NetConfig::new(
        config.listen,
        config.identity.clone(),
        chain.chain_id.to_string(),
        genesis_hash.0.0,
    );
    net_config.bootstrap = config.bootstrap.clone();
    net_config.advertise = config.advertise;
    net_config.max_peers = config.max_peers;
    net_config.max_frame_bytes = max_frame_bytes(chain);
    net::start(net_config).await
}

/// The network task: runs until shutdown.
pub(crate) async fn run(
    net: NetHandle,
    mut events: mpsc::Receiver<NetEvent>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    node: NodeHandle,
    mut shutdown: watch::Receiver<bool>,
) {
    let chain_id = node.chain_config().chain_id.clone();
    let mut connected: BTreeSet<PeerId> = BTreeSet::new();
    let mut latencies: BTreeMap<PeerId, u64> = BTreeMap::new();
    let mut work: JoinSet<()> = JoinSet::new();
    let mut refresh = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            biased;
            () = stopping(&mut shutdown) => break,
            Some(_) = work.join_next(), if !work.is_empty() => {}
            message = outgoing.recv() => match message {
                Some(message) => send(&net, &connected, message),
                None => break,
            },
            event = events.recv() => match event {
                Some(NetEvent::Connected { peer, .. }) => {
                    connected.insert(peer);
                    let _ = node.peer_inbox.send(NodeMessage::PeerConnected { peer }).await;
                }
                Some(NetEvent::Disconnected { peer }) => {
                    connected.remove(&peer);
                    latencies.remove(&peer);
                    let _ = node.peer_inbox.send(NodeMessage::PeerGone { peer }).await;
                }
                Some(NetEvent::Gossip { from, payload } | NetEvent::Direct { from, payload }) => {
                    let latency_ms = latencies.get(&from).copied().unwrap_or(u64::MAX / 2);
                    on_payload(&net, &node, &chain_id, &mut work, from, payload, latency_ms).await;
                }
                None => break,
            },
            _ = refresh.tick() => {
                for peer in net.peers().await {
                    if let Some(latency) = peer.latency {
                        latencies.insert(peer.id, latency.as_millis() as u64);
                    }
                }
            }
        }
    }
    work.shutdown().await;
    net.shutdown();
}

/// Resolves once the node is asked to stop.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn send(net: &NetHandle, connected: &BTreeSet<PeerId>, message: Outgoing) {
    match message {
        Outgoing::Gossip { wire, from } => net.gossip(Bytes::from(wire.encode()), from),
        Outgoing::Send { peer, wire } => net.send(peer, Bytes::from(wire.encode())),
        Outgoing::SendAll { wire } => {
            let payload = Bytes::from(wire.encode());
            for peer in connected {
                net.send(*peer, payload.clone());
            }
        }
        Outgoing::Report { peer, misbehaviour } => net.report(peer, misbehaviour),
    }
}

async fn on_payload(
    net: &NetHandle,
    node: &NodeHandle,
    chain_id: &ChainId,
    work: &mut JoinSet<()>,
    from: PeerId,
    payload: Bytes,
    latency_ms: u64,
) {
    let wire = match Wire::decode(&payload) {
        Ok(wire) => wire,
        Err(error) => {
            debug!(%error, "undecodable message from a peer");
            net.report(from, Misbehaviour::InvalidMessage);
            return;
        }
    };
    let to_manager = match wire {
        Wire::Txs(txs) => {
            if work.len() >= MAX_TX_BATCHES {
                warn!(txs = txs.len(), "busy checking transactions; dropping a batch from a peer");
                return;
            }
            let node = node.clone();
            let net = net.clone();
            work.spawn(async move {
                if let Ok(results) = node.submit_from(txs, Some(from)).await
                    && results
                        .iter()
                        .any(|result| matches!(result, Err(crate::SubmitError::Rejected(_))))
                {
                    net.report(from, Misbehaviour::InvalidMessage);
                }
            });
            return;
        }
        Wire::Consensus { message, block } => {
            if !checks_out(node, chain_id, net, from, &message) {
                return;
            }
            net.gossip(payload, Some(from));
            NodeMessage::Consensus { from, message, block }
        }
        Wire::Status { height, .. } => NodeMessage::PeerStatus { peer: from, height, latency_ms },
        Wire::GetBlocks { from: first, count } => {
            let node = node.clone();
            let net = net.clone();
            work.spawn(async move {
                let blocks =
                    tokio::task::spawn_blocking(move || read_blocks(&node, first, count)).await;
                match blocks {
                    Ok(blocks) if !blocks.is_empty() => {
                        net.send(from, Bytes::from(Wire::Blocks(blocks).encode()))
                    }
                    Ok(_) => {}
                    Err(error) => warn!(%error, "reading blocks for a peer failed"),
                }
            });
            return;
        }
        Wire::Blocks(blocks) => {
            if blocks.len() > MAX_BLOCKS_PER_MESSAGE as usize {
                net.report(from, Misbehaviour::InvalidMessage);
                return;
            }
            NodeMessage::Blocks { from, blocks }
        }
    };
    let _ = node.peer_inbox.send(to_manager).await;
}

/// Committed blocks from `first`, at most `count` and about [`MAX_BLOCKS_BYTES`].
fn read_blocks(node: &NodeHandle, first: Height, count: u32) -> Vec<Block> {
    let Ok(reader) = node.store().read() else { return Vec::new() };
    let mut blocks = Vec::new();
    let mut bytes = 0usize;
    let count = count.min(MAX_BLOCKS_PER_MESSAGE);
    for offset in 0..u64::from(count) {
        let height = Height(first.0.saturating_add(offset));
        let Ok(Some(block)) = reader.block(height) else { break };
        bytes = bytes.saturating_add(primitives::encode(&block).len());
        if bytes > MAX_BLOCKS_BYTES && !blocks.is_empty() {
            break;
        }
        blocks.push(block);
    }
    blocks
}

/// Whether a peer's consensus message is worth passing on, by the engine's rules (for
/// Tendermint: the round's proposer signed the proposal, a validator of its height the vote).
/// A peer that sends one signed by anybody else is reported, unless this node cannot be sure
/// of that height's validators.
fn checks_out(
    node: &NodeHandle,
    chain_id: &ChainId,
    net: &NetHandle,
    from: PeerId,
    message: &EngineMessage,
) -> bool {
    let rules = consensus::rules(node.chain_config().engine);
    match rules.check_message(chain_id, node.validators().as_ref(), message) {
        Verdict::Relay => true,
        Verdict::Drop => false,
        Verdict::Invalid => {
            net.report(from, Misbehaviour::InvalidMessage);
            false
        }
    }
}
