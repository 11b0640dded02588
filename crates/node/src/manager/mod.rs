//! The node manager task and the handle that reaches it.
//!
//! `bft.rs` holds what the manager does with consensus messages from peers (checking proposed
//! blocks, sending its own messages after logging them), `sync.rs` how it catches up.

mod bft;
mod sync;

use crate::{
    chain::{Clock, genesis_block},
    mempool::{AdmitError, Mempool, MempoolLimits},
    metrics::{NodeMetrics, ReasonLabel},
    validators::{PublishedSchedule, ValidatorSchedule},
};
use crate::{
    p2p::{Outgoing, P2pConfig, PeerId},
    wire::Wire,
};
use consensus::{Command, Engine, Event, Message, engine_for, verify_proof};
use ledger::{MarketEvent, Receipt, State, StateDiff, StateError};
use primitives::{
    Address, Block, BlockHash, ChainConfig, ConsensusProof, Genesis, Header, Height, Nonce,
    SecretKey, SignedTransaction, TimestampMs, TxHash, TxRejection, VerifiedTransaction,
};
use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};
use store::{Store, StoreError};
use tokio::{
    sync::{Semaphore, broadcast, mpsc, oneshot, watch},
    task::JoinHandle,
};
use tracing::{debug, error, info, warn};

/// The file, inside the data directory, that holds the chain.
pub const DATABASE_FILE: &str = "chain.redb";

/// What a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the chain database lives (created if missing).
    pub data_dir: PathBuf,
    /// The chain to run.
    pub genesis: Genesis,
    /// This node's validator key, if it is a validator.
    pub validator_key: Option<SecretKey>,
    /// Mempool bounds.
    pub mempool: MempoolLimits,
    /// How to reach peers; `None` runs the node alone (a single-validator chain).
    pub p2p: Option<P2pConfig>,
    /// How many signature batches are checked at once; `None`: one per core. Nodes that share
    /// a machine (a devnet) do better with fewer, so that checking a proposed block is not
    /// starved by other nodes' checks.
    pub verify_threads: Option<usize>,
    /// The node's clock: how chain time relates to the wall clock (the wall clock itself in
    /// production; faster on a devnet).
    pub clock: Clock,
}

/// Why a node cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory cannot be used.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// The store failed; the node stops rather than run on state it cannot persist.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The genesis or the stored state is unusable.
    #[error(transparent)]
    State(#[from] StateError),
    /// The stored chain does not check out.
    #[error("the stored chain is inconsistent: {0}")]
    Inconsistent(String),
    /// A task of the node panicked.
    #[error("node task failed: {0}")]
    Panicked(String),
    /// The peer-to-peer network cannot start.
    #[error("network: {0}")]
    Network(String),
}

/// The node has stopped and can no longer take requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node is shutting down")]
pub struct NodeStopped;

/// Why one submitted transaction was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Refused without looking at the state: malformed, oversized, foreign or badly signed.
    #[error(transparent)]
    Rejected(#[from] TxRejection),
    /// Refused by the mempool.
    #[error(transparent)]
    Refused(#[from] AdmitError),
}

impl SubmitError {
    /// A stable, machine-readable name for the reason.
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Rejected(TxRejection::TooLarge { .. }) => "too_large",
            SubmitError::Rejected(TxRejection::Malformed(_)) => "malformed",
            SubmitError::Rejected(TxRejection::WrongChain { .. }) => "wrong_chain",
            SubmitError::Rejected(TxRejection::BadSignature) => "bad_signature",
            SubmitError::Refused(refusal) => refusal.code(),
        }
    }
}

/// A snapshot of what the node is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The last committed block.
    pub head: Header,
    /// Transactions waiting.
    pub mempool_size: usize,
    /// Whether this node proposes blocks.
    pub is_validator: bool,
    /// Whether it is downloading blocks it missed.
    pub syncing: bool,
    /// The highest head its peers report.
    pub best_peer_height: Option<Height>,
}

pub(crate) enum NodeMessage {
    Admit {
        txs: Vec<VerifiedTransaction>,
        reply: oneshot::Sender<Vec<Result<TxHash, AdmitError>>>,
    },
    NextNonce {
        address: Address,
        reply: oneshot::Sender<Nonce>,
    },
    IsPending {
        hash: TxHash,
        reply: oneshot::Sender<bool>,
    },
    Status {
        reply: oneshot::Sender<NodeStatus>,
    },
    /// A proposal (with its block) or a vote from a peer, signature already checked.
    Consensus {
        from: PeerId,
        message: Message,
        block: Option<Box<Block>>,
    },
    /// A peer connected.
    PeerConnected {
        peer: PeerId,
    },
    /// A peer told us its head.
    PeerStatus {
        peer: PeerId,
        height: Height,
        latency_ms: u64,
    },
    /// A peer went away.
    PeerGone {
        peer: PeerId,
    },
    /// Committed blocks a peer sent in answer to our request.
    Blocks {
        from: PeerId,
        blocks: Vec<Block>,
    },
}

struct Shared {
    store: Arc<Store>,
    config: ChainConfig,
    genesis_hash: BlockHash,
    blocks: broadcast::Sender<Arc<Block>>,
    head: watch::Receiver<Arc<Block>>,
    shutdown: watch::Sender<bool>,
    verify_permits: Semaphore,
    metrics: NodeMetrics,
    /// The way to the peer-to-peer task, if the node has peers.
    outbox: Option<mpsc::Sender<Outgoing>>,
    net: Option<net::NetHandle>,
    /// Who decides the next heights; the manager replaces it after every commit.
    validators: Arc<PublishedSchedule>,
    clock: Clock,
}

/// A cheap, cloneable way to talk to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
    pub(crate) inbox: mpsc::Sender<NodeMessage>,
    /// Messages from peers about consensus and sync: the manager reads them before client
    /// submissions, so a flood of transactions never delays a vote.
    pub(crate) peer_inbox: mpsc::Sender<NodeMessage>,
}

/// A running node: its handle and the tasks that must be watched.
pub struct Node {
    handle: NodeHandle,
    task: JoinHandle<Result<(), NodeError>>,
    p2p: Option<JoinHandle<()>>,
    indexer: std::thread::JoinHandle<()>,
}

impl Node {
    /// Opens (or creates) the chain in `config.data_dir` and starts the node manager.
    ///
    /// On a new directory the genesis block and state are written first. On an existing one the
    /// stored genesis must be the same, and the state rebuilt from the store must have the head's
    /// state root.
    pub async fn start(config: NodeConfig, metrics: NodeMetrics) -> Result<Node, NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| NodeError::DataDir {
            path: config.data_dir.display().to_string(),
            reason: error.to_string(),
        })?;
        let path = config.data_dir.join(DATABASE_FILE);
        let genesis = config.genesis.clone();
        let (store, state, head_block, genesis_hash) =
            tokio::task::spawn_blocking(move || open_chain(&path, &genesis))
                .await
                .map_err(|error| NodeError::Panicked(error.to_string()))??;
        let store = Arc::new(store);
        let head = head_block.header.clone();
        let chain_config = state.config().clone();
        info!(
            height = head.height.0,
            hash = %head.hash(),
            accounts = state.accounts().count(),
            "chain opened"
        );
        metrics.head_height.set(i64::try_from(head.height.0).unwrap_or(i64::MAX));

        let schedule = Arc::new(ValidatorSchedule::of(&state, head.height));
        let validators = Arc::new(PublishedSchedule::new(schedule.clone()));
        let (restored, restored_blocks) = restored_messages(&store, &head)?;
        // The engine starts with the validators of the height after the head.
        let engine_config =
            ChainConfig { validators: schedule.current.clone(), ..chain_config.clone() };
        let engine = engine_for(
            &engine_config,
            config.validator_key.clone(),
            &head,
            restored,
            &config.clock.scale(),
        );
        let proposer = config.validator_key.as_ref().map(|key| Address(key.public_key()));
        let (head_sender, head_receiver) = watch::channel(Arc::new(head_block));
        let (blocks, _) = broadcast::channel(256);
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let (inbox_sender, inbox) = mpsc::channel(1024);
        let (peer_inbox_sender, peer_inbox) = mpsc::channel(1024);
        let parallelism = config
            .verify_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1);
        let network = match &config.p2p {
            Some(p2p) => {
                let (outbox, outgoing) = mpsc::channel(4096);
                let (net, events) = crate::p2p::start_network(p2p, &chain_config, genesis_hash)
                    .await
                    .map_err(|error| NodeError::Network(error.to_string()))?;
                Some((outbox, outgoing, net, events))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            store: store.clone(),
            config: chain_config.clone(),
            genesis_hash,
            blocks: blocks.clone(),
            head: head_receiver,
            shutdown,
            verify_permits: Semaphore::new(parallelism),
            metrics: metrics.clone(),
            outbox: network.as_ref().map(|(outbox, ..)| outbox.clone()),
            net: network.as_ref().map(|(_, _, net, _)| net.clone()),
            validators: validators.clone(),
            clock: config.clock,
        });
        let (index_sender, to_index) = std::sync::mpsc::channel();
        let indexer_store = store.clone();
        let manager = Manager {
            state,
            mempool: Mempool::new(config.mempool),
            engine,
            store,
            max_block_txs: usize::try_from(chain_config.params.max_block_txs).unwrap_or(usize::MAX),
            proposer,
            validators,
            // Started with the set of the next height; told of any later one when it runs.
            told_engine: Arc::new(ValidatorSchedule { upcoming: None, ..(*schedule).clone() }),
            head,
            head_sender,
            blocks,
            executed: None,
            wake: None,
            ready: false,
            metrics,
            outbox: shared.outbox.clone(),
            candidates: restored_blocks
                .into_iter()
                .map(|block| (block.hash(), Arc::new(block)))
                .collect(),
            invalid: HashSet::new(),
            ahead: Vec::new(),
            decided: None,
            peers: BTreeMap::new(),
            sync: sync::SyncState::default(),
            writing: false,
            received: Vec::new(),
            indexer: index_sender,
            clock: config.clock,
        };
        let task = tokio::spawn(manager.run(inbox, peer_inbox, shutdown_receiver.clone()));
        let indexer = std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || index_committed(&indexer_store, &to_index))
            .map_err(|error| NodeError::Panicked(format!("cannot start the indexer: {error}")))?;
        let handle = NodeHandle { shared, inbox: inbox_sender, peer_inbox: peer_inbox_sender };
        let p2p = network.map(|(_, outgoing, net, events)| {
            tokio::spawn(crate::p2p::run(net, events, outgoing, handle.clone(), shutdown_receiver))
        });
        Ok(Node { handle, task, p2p, indexer })
    }

    /// A handle to the running node.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Waits until the node stops: after [`NodeHandle::shutdown`], or on a fatal error.
    pub async fn stopped(self) -> Result<(), NodeError> {
        let result = match self.task.await {
            Ok(result) => result,
            Err(error) => Err(NodeError::Panicked(error.to_string())),
        };
        // The manager is gone: the network goes with it.
        self.handle.shutdown();
        if let Some(net) = &self.handle.shared.net {
            net.shutdown();
        }
        if let Some(p2p) = self.p2p {
            let _ = p2p.await;
        }
        // The manager is gone and with it the indexer's queue: wait for the last entries.
        let indexer = self.indexer;
        let _ = tokio::task::spawn_blocking(move || indexer.join()).await;
        result
    }
}

/// The indexer thread: adds committed blocks to the index by hash, off the path from decision
/// to announcement, until the manager goes away. Whatever a crash leaves unindexed is indexed
/// when the store is next opened.
fn index_committed(store: &Store, blocks: &std::sync::mpsc::Receiver<Vec<Arc<Block>>>) {
    while let Ok(mut batch) = blocks.recv() {
        // Whatever else is waiting goes into the same transaction.
        while let Ok(more) = blocks.try_recv() {
            batch.extend(more);
        }
        let refs: Vec<&Block> = batch.iter().map(|block| block.as_ref()).collect();
        if let Err(error) = store.index_blocks(&refs) {
            error!(%error, "cannot index committed transactions; they are indexed on the next start");
            return;
        }
    }
}

/// The messages this validator signed for the height after `head`, and the blocks it proposed,
/// from its write-ahead log.
fn restored_messages(
    store: &Store,
    head: &Header,
) -> Result<(Vec<Message>, Vec<Block>), NodeError> {
    let Some(next) = head.height.next() else { return Ok((Vec::new(), Vec::new())) };
    let mut messages = Vec::new();
    let mut blocks = Vec::new();
    for bytes in store.read()?.wal(next)? {
        let entry: crate::wire::WalEntry = primitives::decode(&bytes).map_err(|error| {
            NodeError::Inconsistent(format!("unreadable write-ahead log entry: {error}"))
        })?;
        messages.push(entry.message);
        blocks.extend(entry.block);
    }
    if !messages.is_empty() {
        info!(
            height = next.0,
            messages = messages.len(),
            blocks = blocks.len(),
            "restored own consensus messages"
        );
    }
    Ok((messages, blocks))
}

/// Opens the database, writes the genesis if it is new, and rebuilds and checks the state.
fn open_chain(
    path: &std::path::Path,
    genesis: &Genesis,
) -> Result<(Store, State, Block, BlockHash), NodeError> {
    let genesis_state = State::from_genesis(genesis)?;
    let block0 = genesis_block(genesis, &genesis_state);
    let store = Store::open(path)?;
    store.initialize(genesis, &block0, &genesis_state.entries())?;
    let reader = store.read()?;
    let head_height =
        reader.head_height()?.ok_or_else(|| NodeError::Inconsistent("no head block".into()))?;
    let head_block = reader
        .block(head_height)?
        .ok_or_else(|| NodeError::Inconsistent(format!("head block {head_height} is missing")))?;
    let head = &head_block.header;
    let state = if head.height == Height(0) { genesis_state } else { reader.state()? };
    if state.root() != head.state_root {
        return Err(NodeError::Inconsistent(format!(
            "the stored state has root {}, but block {} says {}",
            state.root(),
            head.height,
            head.state_root
        )));
    }
    verify_proof(state.config(), head)
        .map_err(|error| NodeError::Inconsistent(format!("head block {}: {error}", head.height)))?;
    drop(reader);
    Ok((store, state, head_block, block0.hash()))
}

impl NodeHandle {
    /// The chain database, for reading.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The chain's configuration as of its genesis. The validators change:
    /// [`NodeHandle::validators`] has those of the next heights.
    pub fn chain_config(&self) -> &ChainConfig {
        &self.shared.config
    }

    /// Who validates the heights after the head, as of the last commit.
    pub fn validators(&self) -> Arc<ValidatorSchedule> {
        self.shared.validators.get()
    }

    /// The hash of block 0, which names the chain.
    pub fn genesis_hash(&self) -> BlockHash {
        self.shared.genesis_hash
    }

    /// The last committed block.
    pub fn head(&self) -> Arc<Block> {
        self.shared.head.borrow().clone()
    }

    /// Every block committed from now on, as it is committed. A receiver that falls more than
    /// 256 blocks behind loses the oldest ones (and is told so by the channel).
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<Block>> {
        self.shared.blocks.subscribe()
    }

    /// A receiver that always holds the latest committed block.
    pub fn watch_head(&self) -> watch::Receiver<Arc<Block>> {
        self.shared.head.clone()
    }

    /// The node's clock (chain time).
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &NodeMetrics {
        &self.shared.metrics
    }

    /// Asks the node to stop. It finishes writing a block in progress first.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Submits encoded transactions. Each gets its hash, or the reason it was refused.
    pub async fn submit_encoded(
        &self,
        encoded: Vec<Vec<u8>>,
    ) -> Result<Vec<Result<TxHash, SubmitError>>, NodeStopped> {
        let chain_id = self.shared.config.chain_id.clone();
        let checked = self
            .verify_on_pool(move || {
                let decoded: Vec<Result<SignedTransaction, TxRejection>> =
                    encoded.iter().map(|bytes| SignedTransaction::decode(bytes)).collect();
                verify_decoded(decoded, &chain_id)
            })
            .await?;
        self.admit(checked, None).await
    }

    /// Submits transactions. Each gets its hash, or the reason it was refused.
    pub async fn submit(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Result<Vec<Result<TxHash, SubmitError>>, NodeStopped> {
        self.submit_from(txs, None).await
    }

    /// Submits transactions that came from `from` (a peer) or from a client (`None`). Those
    /// admitted are passed on to the other peers.
    pub(crate) async fn submit_from(
        &self,
        txs: Vec<SignedTransaction>,
        from: Option<PeerId>,
    ) -> Result<Vec<Result<TxHash, SubmitError>>, NodeStopped> {
        let chain_id = self.shared.config.chain_id.clone();
        let checked = self
            .verify_on_pool(move || verify_decoded(txs.into_iter().map(Ok).collect(), &chain_id))
            .await?;
        self.admit(checked, from).await
    }

    /// The peers this node is connected to (empty without a network).
    pub async fn peers(&self) -> Vec<net::PeerInfo> {
        match &self.shared.net {
            Some(net) => net.peers().await,
            None => Vec::new(),
        }
    }

    /// This node's identity and peer-to-peer address, if it has a network.
    pub fn p2p_identity(&self) -> Option<(PeerId, std::net::SocketAddr)> {
        self.shared.net.as_ref().map(|net| (net.peer_id(), net.local_addr()))
    }

    /// Dials `addr` now and keeps it among the peers to redial.
    pub async fn add_peer(&self, addr: std::net::SocketAddr) -> Result<(), String> {
        match &self.shared.net {
            Some(net) => net.add_peer(addr).await.map_err(|error| error.to_string()),
            None => Err("this node runs without a peer-to-peer network".into()),
        }
    }

    /// Disconnects `peer` and stops redialling it. Returns whether it was known.
    pub async fn remove_peer(&self, peer: PeerId) -> bool {
        match &self.shared.net {
            Some(net) => net.remove_peer(peer).await,
            None => false,
        }
    }

    /// Fault injection for tests: drop all traffic to and from these peers until changed.
    pub fn set_blocked_peers(&self, peers: Vec<PeerId>) -> bool {
        match &self.shared.net {
            Some(net) => {
                net.set_blocked(peers);
                true
            }
            None => false,
        }
    }

    /// Signature checks are the expensive part of a submission: they run on the blocking pool,
    /// at most one batch per core at a time, never on the manager's task.
    async fn verify_on_pool<F>(
        &self,
        work: F,
    ) -> Result<Vec<Result<VerifiedTransaction, TxRejection>>, NodeStopped>
    where
        F: FnOnce() -> Vec<Result<VerifiedTransaction, TxRejection>> + Send + 'static,
    {
        let _permit = self.shared.verify_permits.acquire().await.map_err(|_| NodeStopped)?;
        tokio::task::spawn_blocking(work).await.map_err(|_| NodeStopped)
    }

    async fn admit(
        &self,
        checked: Vec<Result<VerifiedTransaction, TxRejection>>,
        from: Option<PeerId>,
    ) -> Result<Vec<Result<TxHash, SubmitError>>, NodeStopped> {
        let mut results: Vec<Option<Result<TxHash, SubmitError>>> =
            Vec::with_capacity(checked.len());
        let mut verified = Vec::with_capacity(checked.len());
        for outcome in checked {
            match outcome {
                Ok(tx) => {
                    results.push(None);
                    verified.push(tx);
                }
                Err(rejection) => {
                    let error = SubmitError::Rejected(rejection);
                    self.count_refusal(&error);
                    results.push(Some(Err(error)));
                }
            }
        }
        let copies: Vec<SignedTransaction> = match self.shared.outbox {
            Some(_) => verified.iter().map(|tx| tx.signed().clone()).collect(),
            None => Vec::new(),
        };
        let admitted = if verified.is_empty() {
            Vec::new()
        } else {
            self.request(|reply| NodeMessage::Admit { txs: verified, reply }).await?
        };
        if let Some(outbox) = &self.shared.outbox {
            let relay: Vec<SignedTransaction> = copies
                .into_iter()
                .zip(&admitted)
                .filter_map(|(tx, result)| result.is_ok().then_some(tx))
                .collect();
            if !relay.is_empty() {
                // The network task may be busy; transactions then wait for the next batch
                // rather than hold up the client.
                let _ = outbox.try_send(Outgoing::Gossip { wire: Wire::Txs(relay), from });
            }
        }
        let mut admitted = admitted.into_iter();
        Ok(results
            .into_iter()
            .map(|slot| match slot {
                Some(result) => result,
                None => match admitted.next() {
                    Some(Ok(hash)) => Ok(hash),
                    Some(Err(refusal)) => {
                        let error = SubmitError::Refused(refusal);
                        self.count_refusal(&error);
                        Err(error)
                    }
                    None => Err(SubmitError::Rejected(TxRejection::BadSignature)),
                },
            })
            .collect())
    }

    fn count_refusal(&self, error: &SubmitError) {
        self.shared
            .metrics
            .txs_refused
            .get_or_create(&ReasonLabel { reason: error.code().to_owned() })
            .inc();
    }

    /// The nonce the sender's next transaction should carry, counting those in the mempool.
    pub async fn next_nonce(&self, address: Address) -> Result<Nonce, NodeStopped> {
        self.request(|reply| NodeMessage::NextNonce { address, reply }).await
    }

    /// Whether a transaction is waiting in the mempool.
    pub async fn is_pending(&self, hash: TxHash) -> Result<bool, NodeStopped> {
        self.request(|reply| NodeMessage::IsPending { hash, reply }).await
    }

    /// What the node is doing.
    pub async fn status(&self) -> Result<NodeStatus, NodeStopped> {
        self.request(|reply| NodeMessage::Status { reply }).await
    }

    async fn request<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<T>) -> NodeMessage,
    ) -> Result<T, NodeStopped> {
        let (reply, answer) = oneshot::channel();
        self.inbox.send(message(reply)).await.map_err(|_| NodeStopped)?;
        answer.await.map_err(|_| NodeStopped)
    }
}

fn verify_decoded(
    decoded: Vec<Result<SignedTransaction, TxRejection>>,
    chain_id: &primitives::ChainId,
) -> Vec<Result<VerifiedTransaction, TxRejection>> {
    let mut results: Vec<Option<Result<VerifiedTransaction, TxRejection>>> =
        Vec::with_capacity(decoded.len());
    let mut to_verify = Vec::with_capacity(decoded.len());
    for outcome in decoded {
        match outcome {
            Ok(tx) => {
                results.push(None);
                to_verify.push(tx);
            }
            Err(rejection) => results.push(Some(Err(rejection))),
        }
    }
    let mut verified =
        SignedTransaction::verify_batch(to_verify, chain_id, rand::rng()).into_iter();
    results
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| verified.next().unwrap_or(Err(TxRejection::BadSignature)))
        })
        .collect()
}

/// A block executed on top of the state but not yet committed: built by this validator, or
/// proposed by another and checked.
struct Built {
    block: Block,
    receipts: Vec<Receipt>,
    events: Vec<MarketEvent>,
    diff: StateDiff,
    started: Instant,
}

/// Blocks being written to the store.
struct Persisting {
    blocks: Vec<(Arc<Block>, usize)>,
    task: JoinHandle<Result<(), StoreError>>,
    started: Instant,
}

/// What the manager knows of a peer.
#[derive(Clone, Copy, Debug)]
struct PeerView {
    height: Height,
    latency_ms: u64,
}

/// Most proposals for later heights kept until their height comes.
const MAX_AHEAD: usize = 64;
/// Most proposed blocks kept for the next height.
const MAX_CANDIDATES: usize = 32;

/// The node manager: the single owner of the state, the mempool and the engine.
struct Manager {
    state: State,
    mempool: Mempool,
    engine: Box<dyn Engine + Send>,
    store: Arc<Store>,
    max_block_txs: usize,
    proposer: Option<Address>,
    /// The schedule published for other tasks.
    validators: Arc<PublishedSchedule>,
    /// The schedule the engine was last told of.
    told_engine: Arc<ValidatorSchedule>,
    /// The last durable block.
    head: Header,
    head_sender: watch::Sender<Arc<Block>>,
    blocks: broadcast::Sender<Arc<Block>>,
    /// A block for `head + 1` executed on the state, not yet decided.
    executed: Option<Built>,
    wake: Option<TimestampMs>,
    /// Whether the engine has been told that transactions are ready.
    ready: bool,
    metrics: NodeMetrics,
    /// Where messages for peers go (none without a network).
    outbox: Option<mpsc::Sender<Outgoing>>,
    /// Blocks proposed for `head + 1`, by hash.
    candidates: BTreeMap<BlockHash, Arc<Block>>,
    /// Proposed blocks for `head + 1` found invalid.
    invalid: HashSet<BlockHash>,
    /// Proposals for heights after `head + 1`, kept until then.
    ahead: Vec<(PeerId, primitives::SignedProposal, Block)>,
    /// A block the engine decided whose body has not arrived yet.
    decided: Option<(Height, BlockHash, primitives::ConsensusProof)>,
    peers: BTreeMap<PeerId, PeerView>,
    sync: sync::SyncState,
    /// Whether blocks are being written.
    writing: bool,
    /// Blocks from peers that arrived while others were being written.
    received: Vec<(PeerId, Vec<Block>)>,
    /// Committed blocks go to the indexer thread, which adds them to the index by hash.
    indexer: std::sync::mpsc::Sender<Vec<Arc<Block>>>,
    /// Chain time.
    clock: Clock,
}

impl Manager {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<NodeMessage>,
        mut peer_inbox: mpsc::Receiver<NodeMessage>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        let mut persisting: Option<Persisting> = self.publish_validators()?;
        if let Some(more) = self.drive(Event::Tick)? {
            persisting = Some(more);
        }
        let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let sleep = tokio::time::sleep(self.time_until_wake());
            let started = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                result = async { (&mut persisting.as_mut().expect("guarded").task).await },
                    if persisting.is_some() =>
                {
                    let done = persisting.take().expect("guarded");
                    let header = self.on_persisted(done, result)?;
                    self.after_commit(header)?
                }
                // The engine's wake-up comes before messages: a flood of submissions must not
                // hold back block production.
                () = sleep, if self.wake.is_some() => {
                    self.wake = None;
                    self.drive(Event::Tick)?
                }
                _ = housekeeping.tick(), if self.outbox.is_some() => self.maybe_sync()?,
                Some(message) = peer_inbox.recv() => self.on_message(message)?,
                message = inbox.recv() => match message {
                    Some(message) => self.on_message(message)?,
                    None => break,
                },
            };
            if let Some(started) = started {
                debug_assert!(persisting.is_none(), "one write at a time");
                persisting = Some(started);
            }
        }
        if let Some(mut last) = persisting {
            let height = last.blocks.last().map_or(0, |(block, _)| block.header.height.0);
            info!(height, "finishing the block being written");
            let result = (&mut last.task).await;
            self.on_persisted(last, result)?;
        }
        info!(height = self.head.height.0, "node stopped");
        Ok(())
    }

    fn time_until_wake(&self) -> Duration {
        match self.wake {
            Some(at) => self.clock.until(at),
            None => Duration::from_secs(3600),
        }
    }

    fn on_message(&mut self, message: NodeMessage) -> Result<Option<Persisting>, NodeError> {
        match message {
            NodeMessage::Admit { txs, reply } => {
                let mut results = Vec::with_capacity(txs.len());
                let mut any_ready = false;
                let now = self.clock.now();
                for tx in txs {
                    let hash = tx.hash();
                    match self.mempool.admit(tx, &mut self.state, now) {
                        Ok(ready) => {
                            any_ready |= ready;
                            self.metrics.txs_admitted.inc();
                            results.push(Ok(hash));
                        }
                        Err(error) => results.push(Err(error)),
                    }
                }
                self.metrics.mempool_size.set(self.mempool.len() as i64);
                let _ = reply.send(results);
                if any_ready && !self.ready {
                    self.ready = true;
                    return self.drive(Event::PendingChanged { ready: 1 });
                }
            }
            NodeMessage::NextNonce { address, reply } => {
                let _ = reply.send(self.mempool.next_nonce(&self.state, &address));
            }
            NodeMessage::IsPending { hash, reply } => {
                let _ = reply.send(self.mempool.contains(&hash));
            }
            NodeMessage::Status { reply } => {
                let _ = reply.send(NodeStatus {
                    head: self.head.clone(),
                    mempool_size: self.mempool.len(),
                    is_validator: self.proposer.is_some_and(|address| {
                        let schedule = self.validators.get();
                        schedule.is_validator(schedule.next_height, &address.0)
                    }),
                    syncing: self.sync.behind,
                    best_peer_height: self.peers.values().map(|peer| peer.height).max(),
                });
            }
            NodeMessage::Consensus { from, message, block } => {
                return self.on_consensus(from, message, block);
            }
            NodeMessage::PeerConnected { peer } => self.on_peer_connected(peer)?,
            NodeMessage::PeerStatus { peer, height, latency_ms } => {
                self.peers.insert(peer, PeerView { height, latency_ms });
                return self.maybe_sync();
            }
            NodeMessage::PeerGone { peer } => {
                self.peers.remove(&peer);
            }
            NodeMessage::Blocks { from, blocks } => return self.on_blocks(from, blocks),
        }
        Ok(None)
    }

    /// Feeds an event to the engine and carries out the commands, including those that follow
    /// from them. Returns the block write it started, if any.
    fn drive(&mut self, event: Event) -> Result<Option<Persisting>, NodeError> {
        let mut commands: VecDeque<Command> = self.engine.handle(self.clock.now(), event).into();
        let mut started = None;
        while let Some(command) = commands.pop_front() {
            match command {
                Command::WakeAt { at } => self.wake = Some(at),
                Command::BuildBlock { height, timestamp } => {
                    if let Some(header) = self.build(height, timestamp) {
                        commands.extend(
                            self.engine.handle(self.clock.now(), Event::BlockBuilt { header }),
                        );
                    }
                }
                Command::Commit { hash, proof } => {
                    if let Some(write) = self.commit_decided(hash, proof) {
                        started = Some(write);
                    }
                }
                Command::Broadcast(message) => self.broadcast(message)?,
            }
        }
        Ok(started)
    }

    /// Takes transactions from the mempool and executes them as block `height`.
    fn build(&mut self, height: Height, timestamp: TimestampMs) -> Option<Header> {
        if self.writing || self.head.height.next() != Some(height) {
            warn!(height = height.0, head = self.head.height.0, "not building a block out of turn");
            return None;
        }
        self.revert_executed();
        let started = Instant::now();
        let events = self.state.begin_block(timestamp);
        let candidates = self.mempool.select_block(&self.state, self.max_block_txs);
        let mut txs = Vec::with_capacity(candidates.len());
        let mut receipts = Vec::with_capacity(candidates.len());
        for tx in candidates {
            match self.state.execute(&tx) {
                Ok(receipt) => {
                    receipts.push(receipt);
                    txs.push(tx.into_signed());
                }
                Err(error) => {
                    warn!(tx = %tx.hash(), %error, "leaving out a transaction that cannot be included")
                }
            }
        }
        let diff = self.state.finish_block();
        let header = Header {
            height,
            parent: self.head.hash(),
            timestamp,
            proposer: self.proposer.unwrap_or(self.head.proposer),
            tx_root: Block::tx_root(&txs),
            state_root: diff.root,
            proof: ConsensusProof::Genesis,
        };
        self.metrics.block_build_seconds.observe(started.elapsed().as_secs_f64());
        debug!(
            height = height.0,
            txs = txs.len(),
            ms = started.elapsed().as_millis() as u64,
            "built a block"
        );
        self.executed = Some(Built {
            block: Block { header: header.clone(), txs },
            receipts,
            events,
            diff,
            started,
        });
        Some(header)
    }

    /// Undoes the executed but undecided block, if there is one.
    fn revert_executed(&mut self) {
        if self.executed.take().is_some() {
            self.state.revert_block();
        }
    }

    /// The engine decided `hash` for the next height: seal it with `proof` and write it. The
    /// block may still have to be executed, or even to arrive.
    fn commit_decided(&mut self, hash: BlockHash, proof: ConsensusProof) -> Option<Persisting> {
        let height = self.head.height.next()?;
        if self.writing {
            self.decided = Some((height, hash, proof));
            return None;
        }
        let executed = self.executed.as_ref().is_some_and(|built| built.block.hash() == hash);
        if !executed {
            let Some(block) = self.candidates.get(&hash).cloned() else {
                info!(height = height.0, %hash, "decided a block not received yet; asking peers");
                self.decided = Some((height, hash, proof));
                self.request_decided();
                return None;
            };
            if let Err(reason) = self.execute_candidate(&block) {
                // More than two thirds of the voting power accepted it: our state disagrees
                // with theirs. Follow the network through sync rather than fork.
                error!(height = height.0, %hash, %reason, "a decided block does not execute here");
                self.decided = Some((height, hash, proof));
                return None;
            }
        }
        self.decided = None;
        if let ConsensusProof::Bft(certificate) = &proof
            && certificate.round > 0
        {
            info!(
                height = height.0,
                round = certificate.round,
                "decided after more than one round"
            );
        }
        let mut built = self.executed.take()?;
        built.block.header.proof = proof;
        Some(self.persist(vec![built]))
    }

    /// Starts writing executed blocks, proofs included, in one store transaction.
    fn persist(&mut self, built: Vec<Built>) -> Persisting {
        let started = built.first().map_or_else(Instant::now, |first| first.started);
        let mut blocks = Vec::with_capacity(built.len());
        let mut writes = Vec::with_capacity(built.len());
        for Built { block, receipts, events, diff, .. } in built {
            let failed =
                receipts.iter().filter(|receipt| matches!(receipt, Receipt::Failed(_))).count();
            let block = Arc::new(block);
            blocks.push((block.clone(), failed));
            writes.push((block, receipts, events, diff));
        }
        let store = self.store.clone();
        let task = tokio::task::spawn_blocking(move || {
            let batch: Vec<store::BlockWrite<'_>> = writes
                .iter()
                .map(|(block, receipts, events, diff)| store::BlockWrite {
                    block,
                    receipts,
                    events,
                    diff,
                })
                .collect();
            store.commit_blocks(&batch)
        });
        self.writing = true;
        if let Some((last, _)) = blocks.last() {
            debug!(height = last.header.height.0, blocks = blocks.len(), "writing blocks");
        }
        Persisting { blocks, task, started }
    }

    /// Blocks are durable: announce them.
    fn on_persisted(
        &mut self,
        done: Persisting,
        result: Result<Result<(), StoreError>, tokio::task::JoinError>,
    ) -> Result<Header, NodeError> {
        self.writing = false;
        let height = done.blocks.last().map_or(0, |(block, _)| block.header.height.0);
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                error!(%error, height, "cannot write block; stopping");
                return Err(error.into());
            }
            Err(error) => return Err(NodeError::Panicked(error.to_string())),
        }
        let elapsed = done.started.elapsed().as_secs_f64();
        let pruned = self.mempool.prune(&self.state);
        self.metrics.mempool_size.set(self.mempool.len() as i64);
        let _ = self.indexer.send(done.blocks.iter().map(|(block, _)| block.clone()).collect());
        for (block, failed) in done.blocks {
            let header = block.header.clone();
            self.metrics.block_commit_seconds.observe(elapsed);
            self.metrics.blocks_committed.inc();
            self.metrics.txs_committed.inc_by(block.txs.len() as u64);
            self.metrics.txs_failed.inc_by(failed as u64);
            self.metrics.block_txs.observe(block.txs.len() as f64);
            self.metrics.head_height.set(i64::try_from(header.height.0).unwrap_or(i64::MAX));
            info!(
                height = header.height.0,
                txs = block.txs.len(),
                failed,
                pruned,
                mempool = self.mempool.len(),
                "block committed"
            );
            self.head = header;
            self.head_sender.send_replace(block.clone());
            let _ = self.blocks.send(block);
        }
        self.candidates.clear();
        self.invalid.clear();
        if self.decided.as_ref().is_some_and(|(height, ..)| *height <= self.head.height) {
            self.decided = None;
        }
        Ok(self.head.clone())
    }

    /// Lets the engine go on after a commit.
    fn after_commit(&mut self, header: Header) -> Result<Option<Persisting>, NodeError> {
        self.send(Outgoing::SendAll {
            wire: Wire::Status { height: header.height, hash: header.hash() },
        });
        let mut started = self.publish_validators()?;
        if let Some(more) = self.drive(Event::Committed { header })? {
            started = Some(more);
        }
        let ready = self.mempool.has_ready(&self.state);
        if ready != self.ready || ready {
            self.ready = ready;
            if let Some(more) = self.drive(Event::PendingChanged { ready: usize::from(ready) })? {
                started = Some(more);
            }
        }
        if started.is_none() {
            started = self.resume_after_write()?;
        }
        Ok(started)
    }

    /// Publishes who validates the next heights, after a commit, and tells the engine of any
    /// change (before it hears of the commit, so that it starts the next height with the right
    /// set).
    fn publish_validators(&mut self) -> Result<Option<Persisting>, NodeError> {
        let schedule = Arc::new(ValidatorSchedule::of(&self.state, self.head.height));
        self.validators.set(schedule.clone());
        let told = &self.told_engine;
        if (&told.current, &told.upcoming) == (&schedule.current, &schedule.upcoming) {
            return Ok(None);
        }
        info!(
            from = schedule.next_height.0,
            validators = schedule.current.len(),
            upcoming_from = schedule.upcoming.as_ref().map(|change| change.from.0),
            "validator schedule"
        );
        let mut started = self.drive(Event::Validators {
            from: schedule.next_height,
            validators: schedule.current.clone(),
        })?;
        if let Some(change) = &schedule.upcoming
            && let Some(more) = self.drive(Event::Validators {
                from: change.from,
                validators: change.validators.clone(),
            })?
        {
            started = Some(more);
        }
        self.told_engine = schedule;
        Ok(started)
    }

    /// Sends a message to peers, if the node has any.
    fn send(&self, message: Outgoing) {
        if let Some(outbox) = &self.outbox
            && outbox.try_send(message).is_err()
        {
            warn!("the network task is not keeping up; a message to peers was dropped");
        }
    }
}
