//! The node's side of the peer-to-peer network: one task that turns what peers send into
//! messages for the manager (after cheap checks, so junk is neither relayed nor queued), serves
//! block requests straight from the store, and sends what the manager asks it to.
//!
//! Everything a peer can make this node do is budgeted per peer, so that no peer can make it
//! hold more than a bounded amount on its behalf: transaction batches waiting for their
//! signature checks (count and bytes, per peer and in total), block requests (one at a time per
//! peer, answered only once the previous answer has been written to its socket; at most a few
//! answers in flight for peers that are not validators), and block answers (taken only from
//! peers that were asked). The chain's validators are the network's reserved peers: they get a
//! connection slot whatever throwaway identities fill the table with.

use crate::{
    manager::{NodeHandle, NodeMessage},
    wire::{MAX_BLOCKS_PER_MESSAGE, Wire},
};
use bytes::Bytes;
use consensus::{EngineMessage, Verdict};
use net::{NetConfig, NetEvent, NetHandle};
use primitives::{Block, BlockHash, ChainConfig, ChainId, Height, SecretKey};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch},
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
/// Most bytes of such batches (as received) in total.
const MAX_TX_BATCH_BYTES: usize = 64 << 20;
/// Most batches from one peer waiting to be checked.
const MAX_TX_BATCHES_PER_PEER: usize = 64;
/// Most bytes of batches from one peer waiting to be checked.
const MAX_TX_BATCH_BYTES_PER_PEER: usize = 16 << 20;
/// Bytes of blocks sent in one answer, at most (well under the frame cap).
const MAX_BLOCKS_BYTES: usize = 8 << 20;
/// Answers to block requests of peers that are not validators read or waiting to be written at
/// once (each up to [`MAX_BLOCKS_BYTES`]); requests beyond are dropped (the asker asks again or
/// asks another peer).
const MAX_ANSWERS_IN_FLIGHT: usize = 4;
/// Block requests sent to one peer that may still be answered.
const MAX_REQUESTS_OUTSTANDING: u32 = 4;

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

/// Work for a peer that runs beside the network task; it says what it held when it ends.
enum Finished {
    /// A transaction batch of this many bytes was checked.
    Batch { peer: PeerId, bytes: usize },
    /// An answer to a block request was written (or given up).
    Answer { peer: PeerId },
}

/// What this node is doing for each peer, against the budgets.
struct Budgets {
    /// Transaction batches being checked: per peer (count, bytes), and in total.
    batches: HashMap<PeerId, (usize, usize)>,
    batch_count: usize,
    batch_bytes: usize,
    /// Peers whose block request is being answered.
    answering: HashSet<PeerId>,
    /// Permits for answers to peers that are not validators.
    answers: Arc<Semaphore>,
    /// Block requests we sent that may still be answered, per peer.
    requested: HashMap<PeerId, u32>,
}

impl Budgets {
    fn new() -> Budgets {
        Budgets {
            batches: HashMap::new(),
            batch_count: 0,
            batch_bytes: 0,
            answering: HashSet::new(),
            answers: Arc::new(Semaphore::new(MAX_ANSWERS_IN_FLIGHT)),
            requested: HashMap::new(),
        }
    }

    /// Takes room for a batch of `bytes` from `peer`; false when there is none.
    fn take_batch(&mut self, peer: PeerId, bytes: usize) -> bool {
        let (count, held) = self.batches.get(&peer).copied().unwrap_or((0, 0));
        if self.batch_count >= MAX_TX_BATCHES
            || self.batch_bytes.saturating_add(bytes) > MAX_TX_BATCH_BYTES
            || count >= MAX_TX_BATCHES_PER_PEER
            || held.saturating_add(bytes) > MAX_TX_BATCH_BYTES_PER_PEER
        {
            return false;
        }
        self.batches.insert(peer, (count + 1, held + bytes));
        self.batch_count += 1;
        self.batch_bytes += bytes;
        true
    }

    fn finished(&mut self, finished: Finished) {
        match finished {
            Finished::Batch { peer, bytes } => {
                self.batch_count = self.batch_count.saturating_sub(1);
                self.batch_bytes = self.batch_bytes.saturating_sub(bytes);
                if let Some((count, held)) = self.batches.get_mut(&peer) {
                    *count = count.saturating_sub(1);
                    *held = held.saturating_sub(bytes);
                    if *count == 0 {
                        self.batches.remove(&peer);
                    }
                }
            }
            Finished::Answer { peer } => {
                self.answering.remove(&peer);
            }
        }
    }

    /// We asked `peer` for blocks.
    fn asked(&mut self, peer: PeerId) {
        let outstanding = self.requested.entry(peer).or_default();
        *outstanding = (*outstanding + 1).min(MAX_REQUESTS_OUTSTANDING);
    }

    /// `peer` sent blocks: whether we asked it for any.
    fn answered(&mut self, peer: PeerId) -> bool {
        match self.requested.get_mut(&peer) {
            Some(outstanding) if *outstanding > 0 => {
                *outstanding -= 1;
                true
            }
            _ => false,
        }
    }

    fn gone(&mut self, peer: &PeerId) {
        self.requested.remove(peer);
    }
}

/// The validators' identities, who get reserved connection slots.
fn validator_ids(node: &NodeHandle) -> Vec<PeerId> {
    let schedule = node.validators();
    let mut ids: Vec<PeerId> = schedule
        .current
        .iter()
        .chain(schedule.upcoming.iter().flat_map(|change| change.validators.iter()))
        .map(|validator| validator.key)
        .collect();
    ids.sort();
    ids.dedup();
    ids
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
    let mut work: JoinSet<Finished> = JoinSet::new();
    let mut budgets = Budgets::new();
    let mut reserved = validator_ids(&node);
    net.set_reserved(reserved.clone());
    let mut refresh = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            biased;
            () = stopping(&mut shutdown) => break,
            Some(finished) = work.join_next(), if !work.is_empty() => {
                if let Ok(finished) = finished {
                    budgets.finished(finished);
                }
            }
            message = outgoing.recv() => match message {
                Some(message) => send(&net, &connected, &mut budgets, message),
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
                    budgets.gone(&peer);
                    let _ = node.peer_inbox.send(NodeMessage::PeerGone { peer }).await;
                }
                Some(NetEvent::Gossip { from, payload } | NetEvent::Direct { from, payload }) => {
                    let latency_ms = latencies.get(&from).copied().unwrap_or(u64::MAX / 2);
                    let peer = Peer { id: from, latency_ms, validator: reserved.contains(&from) };
                    on_payload(&net, &node, &chain_id, &mut work, &mut budgets, peer, payload).await;
                }
                None => break,
            },
            _ = refresh.tick() => {
                for peer in net.peers().await {
                    if let Some(latency) = peer.latency {
                        latencies.insert(peer.id, latency.as_millis() as u64);
                    }
                }
                let validators = validator_ids(&node);
                if validators != reserved {
                    reserved = validators;
                    net.set_reserved(reserved.clone());
                }
            }
        }
    }
    work.shutdown().await;
    net.shutdown();
}

/// Who sent a payload.
#[derive(Clone, Copy)]
struct Peer {
    id: PeerId,
    latency_ms: u64,
    /// A validator of the next heights.
    validator: bool,
}

/// Resolves once the node is asked to stop.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn send(net: &NetHandle, connected: &BTreeSet<PeerId>, budgets: &mut Budgets, message: Outgoing) {
    match message {
        Outgoing::Gossip { wire, from } => net.gossip(Bytes::from(wire.encode()), from),
        Outgoing::Send { peer, wire } => {
            if matches!(wire, Wire::GetBlocks { .. }) {
                budgets.asked(peer);
            }
            net.send(peer, Bytes::from(wire.encode()))
        }
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
    work: &mut JoinSet<Finished>,
    budgets: &mut Budgets,
    peer: Peer,
    payload: Bytes,
) {
    let from = peer.id;
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
            let bytes = payload.len();
            if !budgets.take_batch(from, bytes) {
                warn!(
                    txs = txs.len(),
                    peer = %primitives::Address(from),
                    "busy checking transactions; dropping a batch from a peer"
                );
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
                Finished::Batch { peer: from, bytes }
            });
            return;
        }
        Wire::Consensus { message, block } => {
            match checks_out(node, chain_id, net, from, &message) {
                Some(Verdict::Relay) => net.gossip(payload, Some(from)),
                // The node passes it on itself once it has checked it against its chain.
                Some(_) => {}
                None => return,
            }
            NodeMessage::Consensus { from, message, block }
        }
        Wire::Status { height, hash } => {
            NodeMessage::PeerStatus { peer: from, height, hash, latency_ms: peer.latency_ms }
        }
        Wire::GetBlocks { from: first, count } => {
            // One answer per peer at a time, until it is written: a peer that asks and never
            // reads gets one answer, not one per request.
            if budgets.answering.contains(&from) {
                debug!(peer = %primitives::Address(from), "a block request while one is answered; dropped");
                return;
            }
            let permit: Option<OwnedSemaphorePermit> = if peer.validator {
                None
            } else {
                match budgets.answers.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        debug!(peer = %primitives::Address(from), "busy answering block requests; dropped");
                        return;
                    }
                }
            };
            budgets.answering.insert(from);
            let node = node.clone();
            let net = net.clone();
            work.spawn(async move {
                let answer = tokio::task::spawn_blocking(move || {
                    let blocks = read_blocks(&node, first, count);
                    (!blocks.is_empty()).then(|| Bytes::from(Wire::Blocks(blocks).encode()))
                })
                .await;
                match answer {
                    Ok(Some(answer)) => {
                        if !net.send_and_wait(from, answer).await {
                            debug!(peer = %primitives::Address(from), "a block answer was not written");
                        }
                    }
                    Ok(None) => {}
                    Err(error) => warn!(%error, "reading blocks for a peer failed"),
                }
                drop(permit);
                Finished::Answer { peer: from }
            });
            return;
        }
        Wire::Blocks(blocks) => {
            if blocks.len() > MAX_BLOCKS_PER_MESSAGE as usize {
                net.report(from, Misbehaviour::InvalidMessage);
                return;
            }
            if !budgets.answered(from) {
                debug!(peer = %primitives::Address(from), "blocks nobody asked this peer for; dropped");
                net.report(from, Misbehaviour::Spam);
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
) -> Option<Verdict> {
    let rules = consensus::rules(node.chain_config().engine);
    match rules.check_message(chain_id, node.validators().as_ref(), message) {
        verdict @ (Verdict::Relay | Verdict::Deliver) => Some(verdict),
        Verdict::Drop => None,
        Verdict::Invalid => {
            net.report(from, Misbehaviour::InvalidMessage);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(seed: u8) -> PeerId {
        SecretKey::from_seed([seed; 32]).public_key()
    }

    #[test]
    fn transaction_batches_are_bounded_per_peer_and_in_total() {
        let mut budgets = Budgets::new();
        let (greedy, other) = (peer(1), peer(2));
        for _ in 0..MAX_TX_BATCHES_PER_PEER {
            assert!(budgets.take_batch(greedy, 1_000));
        }
        assert!(!budgets.take_batch(greedy, 1_000), "one peer's count is used up");
        assert!(budgets.take_batch(other, 1_000), "others are not held up");
        assert!(!budgets.take_batch(other, MAX_TX_BATCH_BYTES_PER_PEER), "nor its bytes");
        budgets.finished(Finished::Batch { peer: greedy, bytes: 1_000 });
        assert!(budgets.take_batch(greedy, 1_000), "a checked batch gives its room back");
        // In total: many peers, each within its own budget, still meet the global one.
        let mut admitted = budgets.batch_count;
        for seed in 3..=200 {
            for _ in 0..4 {
                if budgets.take_batch(peer(seed), 10_000) {
                    admitted += 1;
                }
            }
        }
        assert_eq!(admitted, MAX_TX_BATCHES);
        assert!(budgets.batch_bytes <= MAX_TX_BATCH_BYTES);
    }

    #[test]
    fn blocks_are_taken_only_from_peers_that_were_asked() {
        let mut budgets = Budgets::new();
        let asked = peer(1);
        assert!(!budgets.answered(asked), "nobody asked it");
        budgets.asked(asked);
        budgets.asked(asked);
        assert!(budgets.answered(asked));
        assert!(budgets.answered(asked));
        assert!(!budgets.answered(asked), "two requests, two answers");
        for _ in 0..10 {
            budgets.asked(asked);
        }
        let answers = (0..10).filter(|_| budgets.answered(asked)).count();
        assert_eq!(answers, MAX_REQUESTS_OUTSTANDING as usize);
        budgets.asked(asked);
        budgets.gone(&asked);
        assert!(!budgets.answered(asked), "a peer that went away owes nothing");
    }
}
