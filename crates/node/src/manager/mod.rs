//! The node manager task (the tokio shell that runs the node's [`Core`]) and the handle that
//! reaches it.

use crate::{
    app::{Executed, LedgerApp},
    chain::{Clock, genesis_block},
    core::{Core, CoreConfig, Effect},
    mempool::{AdmitError, Mempool, MempoolLimits},
    metrics::{BlockFacts, NodeMetrics, ReasonLabel},
    validators::{PublishedSchedule, ValidatorSchedule},
};
use crate::{
    miner::{Found, Miner},
    p2p::{Outgoing, P2pConfig, PeerId},
    wire::{WalEntry, Wire},
};
use consensus::{EngineMessage, Restored, engine_for, verify_proof};
use ledger::{Receipt, State, StateError};
use primitives::{
    Address, Block, BlockHash, ChainConfig, ConsensusProof, Genesis, Height, Nonce, SecretKey,
    SignedTransaction, TxHash, TxRejection, VerifiedTransaction,
};
use std::{
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
    /// Whether and how fast it mines (proof-of-work chains, with a key).
    pub mining: MiningConfig,
}

/// How a node mines on a proof-of-work chain (other engines ignore it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MiningConfig {
    /// Whether to mine from the start (it needs a key); `NodeHandle::set_mining` changes it.
    pub start: bool,
    /// Most hashes per second: for nodes that share a machine (a devnet). `None`: as fast as
    /// one core hashes.
    pub hash_rate_limit: Option<u64>,
}

/// What the miner of a proof-of-work node is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiningStatus {
    /// Whether this node can mine at all: a proof-of-work chain and a key.
    pub available: bool,
    /// Whether its operator wants it to mine.
    pub on: bool,
    /// Whether the miner is searching now (not while catching up, or between blocks).
    pub searching: bool,
    /// The address its blocks pay.
    pub miner: Option<Address>,
    /// Hashes per second over the last few seconds.
    pub hash_rate: u64,
    /// Hashes tried since the node started.
    pub hashes: u64,
    /// Blocks it found since the node started.
    pub blocks_found: u64,
    /// The expected hashes of the next block on the head (its difficulty).
    pub difficulty: u128,
    /// The next block's target.
    pub target: Option<primitives::Target>,
}

/// A switch to another branch, as announced to subscribers once it is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reorg {
    /// The blocks taken off, newest first.
    pub reverted: Vec<(Height, BlockHash)>,
    /// The blocks of the new branch, first to last.
    pub applied: Vec<(Height, BlockHash)>,
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
    /// The peer-to-peer network cannot start, or stopped.
    #[error("network: {0}")]
    Network(String),
    /// The indexer cannot add committed blocks to the index by hash.
    #[error("the index by transaction hash cannot be written: {0}")]
    Indexer(String),
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
    pub head: primitives::Header,
    /// Transactions waiting.
    pub mempool_size: usize,
    /// Whether this node proposes blocks.
    pub is_validator: bool,
    /// Whether it is downloading blocks it missed.
    pub syncing: bool,
    /// The highest head its peers report.
    pub best_peer_height: Option<Height>,
    /// The engine's role, term and leader (nothing for engines without them).
    pub engine: consensus::EngineStatus,
}

pub(crate) enum NodeMessage {
    /// Of transactions a peer passed on, those the mempool does not know
    /// ([`Mempool::knows`](crate::mempool::Mempool::knows)).
    Unknown {
        txs: Vec<SignedTransaction>,
        reply: oneshot::Sender<Vec<SignedTransaction>>,
    },
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
    /// A consensus message from a peer (the engine's rules found it worth relaying), with the
    /// block that came with it.
    Consensus {
        from: PeerId,
        message: EngineMessage,
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
        hash: BlockHash,
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
    /// Turn mining on or off.
    SetMining {
        on: bool,
        reply: oneshot::Sender<Result<MiningStatus, String>>,
    },
    /// What the miner is doing.
    Mining {
        reply: oneshot::Sender<MiningStatus>,
    },
}

struct Shared {
    store: Arc<Store>,
    config: ChainConfig,
    genesis_hash: BlockHash,
    blocks: broadcast::Sender<Arc<Block>>,
    reorgs: broadcast::Sender<Arc<Reorg>>,
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
    /// Says why the indexer stopped, if it failed.
    indexer_failed: oneshot::Receiver<String>,
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
        let shown = path.display().to_string();
        // redb panics on some damaged pages: reading the chain that way means it is damaged.
        let (store, state, head_block, genesis_hash, recent) =
            tokio::task::spawn_blocking(move || open_chain(&path, &genesis)).await.map_err(
                |error| StoreError::Damaged {
                    path: shown,
                    reason: format!("reading it failed ({error})"),
                },
            )??;
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
        let own = restored_messages(&store, &head)?;
        let restored = Restored {
            messages: own.iter().map(|(message, _)| message.clone()).collect(),
            state: store.read()?.engine_state()?,
            chain: recent.clone(),
        };
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
        let (reorgs, _) = broadcast::channel(64);
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
            reorgs: reorgs.clone(),
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
        let forks = consensus::rules(chain_config.engine).reorg_depth(&chain_config) > 0;
        let app = LedgerApp::new(
            state,
            Mempool::new(config.mempool),
            proposer,
            metrics.clone(),
            forks.then(|| store.clone()),
        );
        let core_config = CoreConfig { chain: chain_config.clone(), time: config.clock.scale() };
        let (found_sender, found) = mpsc::unbounded_channel();
        let miner = match (chain_config.engine, &config.validator_key) {
            (primitives::EngineKind::Pow(_), Some(_)) => {
                Some(Miner::start(config.mining.hash_rate_limit, found_sender).map_err(
                    |error| NodeError::Panicked(format!("cannot start the miner: {error}")),
                )?)
            }
            _ => None,
        };
        let manager = Manager {
            core: Core::new(core_config, app, engine, head, own).with_chain(recent),
            miner,
            found,
            mine_at_start: config.mining.start,
            reorgs,
            store,
            validators,
            head_sender,
            blocks,
            metrics,
            outbox: shared.outbox.clone(),
            indexer: index_sender,
            clock: config.clock,
            persisting: None,
            engine_status: consensus::EngineStatus::default(),
        };
        let task = tokio::spawn(manager.run(inbox, peer_inbox, shutdown_receiver.clone()));
        let (indexer_failure, indexer_failed) = oneshot::channel();
        let indexer = std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || {
                if let Err(error) = index_committed(&indexer_store, &to_index) {
                    // What it could not index is indexed when the store is next opened.
                    let _ = indexer_failure.send(error.to_string());
                }
            })
            .map_err(|error| NodeError::Panicked(format!("cannot start the indexer: {error}")))?;
        let handle = NodeHandle { shared, inbox: inbox_sender, peer_inbox: peer_inbox_sender };
        let p2p = network.map(|(_, outgoing, net, events)| {
            tokio::spawn(crate::p2p::run(net, events, outgoing, handle.clone(), shutdown_receiver))
        });
        Ok(Node { handle, task, p2p, indexer, indexer_failed })
    }

    /// A handle to the running node.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Waits until the node stops: after [`NodeHandle::shutdown`], or on a fatal error. Every
    /// task of the node is watched here: the manager returning an error, or the network, the
    /// peer-to-peer task or the indexer ending while the node is meant to run, stops the whole
    /// node with the reason (a validator never keeps running cut off from its peers, or with
    /// an index that no longer grows).
    pub async fn stopped(self) -> Result<(), NodeError> {
        let Node { handle, mut task, mut p2p, indexer, mut indexer_failed } = self;
        let net = handle.shared.net.clone();
        let stopping = |handle: &NodeHandle| *handle.shared.shutdown.borrow();
        let mut finished = None;
        let failure: Option<NodeError> = tokio::select! {
            result = &mut task => {
                finished = Some(joined(result));
                None
            }
            () = async { net.as_ref().expect("guarded").stopped().await }, if net.is_some() => {
                (!stopping(&handle)).then(|| {
                    NodeError::Network("the network task stopped while the node was running".into())
                })
            }
            result = async { p2p.as_mut().expect("guarded").await }, if p2p.is_some() => {
                p2p = None;
                (!stopping(&handle)).then(|| {
                    NodeError::Network(match result {
                        Ok(()) => "the peer-to-peer task stopped while the node was running".into(),
                        Err(error) => format!("the peer-to-peer task failed: {error}"),
                    })
                })
            }
            reason = &mut indexer_failed => match reason {
                Ok(reason) => Some(NodeError::Indexer(reason)),
                // The indexer ended because the manager went away: the manager's result says why.
                Err(_) => None,
            },
        };
        if let Some(error) = &failure {
            error!(%error, "stopping the node");
        }
        // Whatever ended first, everything stops; the manager finishes a write under way.
        handle.shutdown();
        let outcome = match finished {
            Some(outcome) => outcome,
            None => joined(task.await),
        };
        let result = match failure {
            Some(error) => Err(error),
            None => outcome,
        };
        if let Some(net) = &net {
            net.shutdown();
        }
        if let Some(p2p) = p2p {
            let _ = p2p.await;
        }
        // The manager is gone and with it the indexer's queue: wait for the last entries.
        let _ = tokio::task::spawn_blocking(move || indexer.join()).await;
        result
    }
}

/// The manager task's outcome.
fn joined(result: Result<Result<(), NodeError>, tokio::task::JoinError>) -> Result<(), NodeError> {
    match result {
        Ok(result) => result,
        Err(error) => Err(NodeError::Panicked(error.to_string())),
    }
}

/// The indexer thread: adds committed blocks to the index by hash, off the path from decision
/// to announcement, until the manager goes away. Whatever a crash leaves unindexed is indexed
/// when the store is next opened.
fn index_committed(
    store: &Store,
    blocks: &std::sync::mpsc::Receiver<Vec<Arc<Block>>>,
) -> Result<(), StoreError> {
    while let Ok(mut batch) = blocks.recv() {
        // Whatever else is waiting goes into the same transaction.
        while let Ok(more) = blocks.try_recv() {
            batch.extend(more);
        }
        let refs: Vec<&Block> = batch.iter().map(|block| block.as_ref()).collect();
        store.index_blocks(&refs)?;
    }
    Ok(())
}

/// The messages this node's engine logged for the height after `head`, with their blocks,
/// from its write-ahead log.
fn restored_messages(
    store: &Store,
    head: &primitives::Header,
) -> Result<Vec<(EngineMessage, Option<Block>)>, NodeError> {
    let Some(next) = head.height.next() else { return Ok(Vec::new()) };
    let mut own = Vec::new();
    for bytes in store.read()?.wal(next)? {
        let entry = WalEntry::decode(&bytes).map_err(|error| {
            NodeError::Inconsistent(format!("unreadable write-ahead log entry: {error}"))
        })?;
        own.push((entry.message, entry.block));
    }
    if !own.is_empty() {
        info!(height = next.0, messages = own.len(), "restored own consensus messages");
    }
    Ok(own)
}

/// The newest headers of a stored chain, oldest first, the head last: for an engine with
/// forks, as many as it may undo and the one below.
type Recent = Vec<primitives::Header>;

/// Opens the database (keeping undo data for as many blocks as the engine may undo), writes
/// the genesis if it is new, and rebuilds and checks the state.
fn open_chain(
    path: &std::path::Path,
    genesis: &Genesis,
) -> Result<(Store, State, Block, BlockHash, Recent), NodeError> {
    let genesis_state = State::from_genesis(genesis)?;
    let block0 = genesis_block(genesis, &genesis_state);
    let undo_depth = consensus::rules(genesis.config.engine).reorg_depth(&genesis.config);
    let store =
        Store::open_with(path, store::StoreConfig { undo_depth, ..store::StoreConfig::default() })?;
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
    let mut recent = Vec::new();
    if undo_depth > 0 {
        // As many as the reorg depth allows to undo, and below them enough for the median of
        // the timestamps before a branch that forks off at the lowest of them.
        let window = consensus::rules(genesis.config.engine).time_window();
        let kept =
            undo_depth.saturating_add(u64::try_from(window).unwrap_or(u64::MAX).saturating_sub(1));
        for height in head.height.0.saturating_sub(kept)..=head.height.0 {
            let header = reader.header(Height(height))?.ok_or_else(|| {
                NodeError::Inconsistent(format!("block {height} is missing below the head"))
            })?;
            recent.push(header);
        }
    }
    drop(reader);
    Ok((store, state, head_block, block0.hash(), recent))
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

    /// Every switch to another branch from now on, once it is durable (chains with forks).
    /// The new branch's blocks also come through [`NodeHandle::subscribe_blocks`].
    pub fn subscribe_reorgs(&self) -> broadcast::Receiver<Arc<Reorg>> {
        self.shared.reorgs.subscribe()
    }

    /// How many blocks are on top of the block at `height` of the node's chain, itself
    /// included (1 for the head; 0 above the head). On a chain with forks a block is final
    /// once this exceeds the maximum reorg depth; on other chains every block is final.
    pub fn confirmations(&self, height: Height) -> u64 {
        let head = self.head().header.height;
        if height > head { 0 } else { head.0 - height.0 + 1 }
    }

    /// How many blocks below the head a branch may fork off: 0 if every block is final.
    pub fn reorg_depth(&self) -> u64 {
        consensus::rules(self.shared.config.engine).reorg_depth(&self.shared.config)
    }

    /// Turns mining on or off; refused on a chain that does not mine or without a key.
    pub async fn set_mining(&self, on: bool) -> Result<Result<MiningStatus, String>, NodeStopped> {
        self.request(|reply| NodeMessage::SetMining { on, reply }).await
    }

    /// What the miner is doing.
    pub async fn mining(&self) -> Result<MiningStatus, NodeStopped> {
        self.request(|reply| NodeMessage::Mining { reply }).await
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
    /// admitted are passed on to the other peers. Each of a client's gets its hash or the
    /// reason it was refused; of a peer's, those the node already knows (committed, or
    /// waiting) are dropped before their signature check and get no result.
    pub(crate) async fn submit_from(
        &self,
        txs: Vec<SignedTransaction>,
        from: Option<PeerId>,
    ) -> Result<Vec<Result<TxHash, SubmitError>>, NodeStopped> {
        let chain_id = self.shared.config.chain_id.clone();
        let verify = move |txs: Vec<SignedTransaction>| {
            move || verify_decoded(txs.into_iter().map(Ok).collect(), &chain_id)
        };
        let checked = match from {
            None => self.verify_on_pool(verify(txs)).await?,
            Some(_) => {
                // Sorted out once the batch's turn on the pool has come: the longer it waited,
                // the more of it a block may have taken meanwhile.
                let _permit = self.verify_permit().await?;
                let txs = self.request(|reply| NodeMessage::Unknown { txs, reply }).await?;
                if txs.is_empty() {
                    return Ok(Vec::new());
                }
                tokio::task::spawn_blocking(verify(txs)).await.map_err(|_| NodeStopped)?
            }
        };
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

    /// Fault injection for tests: stops the peer-to-peer network as if its task had died
    /// (the node must then stop too).
    pub fn kill_network(&self) -> bool {
        match &self.shared.net {
            Some(net) => {
                net.shutdown();
                true
            }
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
        let _permit = self.verify_permit().await?;
        tokio::task::spawn_blocking(work).await.map_err(|_| NodeStopped)
    }

    /// A turn on the blocking pool for a batch's signature checks.
    async fn verify_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, NodeStopped> {
        self.shared.verify_permits.acquire().await.map_err(|_| NodeStopped)
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
            // Waits for room when the network task is behind: a transaction dropped here would
            // reach no other node's mempool, and so no other proposer's block.
            if !relay.is_empty()
                && outbox.send(Outgoing::Gossip { wire: Wire::Txs(relay), from }).await.is_err()
            {
                return Err(NodeStopped);
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

/// Blocks being written to the store.
struct Persisting {
    blocks: Vec<(Arc<Block>, BlockFacts)>,
    /// The blocks a switch takes off (empty for an append).
    task: JoinHandle<Result<Vec<store::UnwoundBlock>, StoreError>>,
    started: Instant,
}

/// The node manager: the tokio shell around the node's [`Core`], the single owner of the
/// state, the mempool and the engine. It carries out the core's effects (logging, writing,
/// sending) and feeds it messages, time and the end of writes.
struct Manager {
    core: Core<LedgerApp>,
    store: Arc<Store>,
    /// The schedule published for other tasks.
    validators: Arc<PublishedSchedule>,
    head_sender: watch::Sender<Arc<Block>>,
    blocks: broadcast::Sender<Arc<Block>>,
    metrics: NodeMetrics,
    /// Where messages for peers go (none without a network).
    outbox: Option<mpsc::Sender<Outgoing>>,
    /// Committed blocks go to the indexer thread, which adds them to the index by hash.
    indexer: std::sync::mpsc::Sender<Vec<Arc<Block>>>,
    /// Chain time.
    clock: Clock,
    /// The write under way.
    persisting: Option<Persisting>,
    /// The engine's role, term and leader as last logged.
    engine_status: consensus::EngineStatus,
    /// The miner's thread, on a proof-of-work chain with a key.
    miner: Option<Miner>,
    /// What the miner found.
    found: mpsc::UnboundedReceiver<Found>,
    mine_at_start: bool,
    reorgs: broadcast::Sender<Arc<Reorg>>,
}

impl Manager {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<NodeMessage>,
        mut peer_inbox: mpsc::Receiver<NodeMessage>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        let effects = self.core.start(self.clock.now());
        self.carry_out(effects)?;
        if self.mine_at_start && self.miner.is_some() {
            let effects = self.core.set_mining(self.clock.now(), true);
            self.carry_out(effects)?;
        }
        let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let has_peers = self.outbox.is_some();
        loop {
            let wake = self.core.wake();
            let sleep = tokio::time::sleep(
                wake.map_or(Duration::from_secs(3600), |at| self.clock.until(at)),
            );
            let effects = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                result = async { (&mut self.persisting.as_mut().expect("guarded").task).await },
                    if self.persisting.is_some() =>
                {
                    let done = self.persisting.take().expect("guarded");
                    self.on_persisted(done, result)?;
                    self.core.persisted(self.clock.now())
                }
                // The engine's wake-up comes before messages: a flood of submissions must not
                // hold back block production.
                () = sleep, if wake.is_some() => self.core.tick(self.clock.now()),
                Some(found) = self.found.recv(), if self.miner.is_some() => {
                    let current = self.miner.as_ref().is_some_and(|miner| miner.current() == found.job);
                    if current {
                        info!(height = found.header.height.0, hash = %found.header.hash(), "mined a block");
                        self.core.mined(self.clock.now(), found.header)
                    } else {
                        Vec::new()
                    }
                }
                _ = housekeeping.tick(), if has_peers => self.core.housekeeping(self.clock.now()),
                Some(message) = peer_inbox.recv() => self.on_message(message),
                message = inbox.recv() => match message {
                    Some(message) => self.on_message(message),
                    None => break,
                },
            };
            self.carry_out(effects)?;
            self.note_engine_status();
        }
        if let Some(mut last) = self.persisting.take() {
            let height = last.blocks.last().map_or(0, |(block, _)| block.header.height.0);
            info!(height, "finishing the block being written");
            let result = (&mut last.task).await;
            self.on_persisted(last, result)?;
        }
        if let Some(miner) = self.miner.as_mut() {
            miner.shutdown();
        }
        info!(height = self.core.head().height.0, "node stopped");
        Ok(())
    }

    /// What the miner is doing.
    fn mining_status(&self) -> MiningStatus {
        let stats = self.miner.as_ref().map(Miner::stats).unwrap_or_default();
        let status = self.core.status();
        let target = consensus::pow::params(self.core.app().state.config())
            .map(|params| consensus::pow::next_target(&params, &status.head));
        MiningStatus {
            available: self.miner.is_some(),
            on: status.mining && self.miner.is_some(),
            searching: stats.searching,
            miner: self.core.app().proposer(),
            hash_rate: stats.hash_rate,
            hashes: stats.hashes,
            blocks_found: self.core.counters().blocks_mined,
            difficulty: target.map_or(0, primitives::Target::work),
            target,
        }
    }

    fn on_message(&mut self, message: NodeMessage) -> Vec<Effect<Executed>> {
        let now = self.clock.now();
        match message {
            NodeMessage::Unknown { txs, reply } => {
                let app = self.core.app();
                let offered = txs.len();
                let unknown: Vec<SignedTransaction> =
                    txs.into_iter().filter(|tx| !app.mempool.knows(&app.state, &tx.tx)).collect();
                self.metrics.txs_known.inc_by((offered - unknown.len()) as u64);
                let _ = reply.send(unknown);
            }
            NodeMessage::Admit { txs, reply } => {
                let mut results = Vec::with_capacity(txs.len());
                let mut any_ready = false;
                let app = self.core.app_mut();
                for tx in txs {
                    let hash = tx.hash();
                    match app.mempool.admit(tx, &mut app.state, now) {
                        Ok(ready) => {
                            any_ready |= ready;
                            self.metrics.txs_admitted.inc();
                            results.push(Ok(hash));
                        }
                        Err(error) => results.push(Err(error)),
                    }
                }
                self.metrics.mempool_size.set(app.mempool.len() as i64);
                let _ = reply.send(results);
                return self.core.pending(now, any_ready);
            }
            NodeMessage::NextNonce { address, reply } => {
                let app = self.core.app();
                let _ = reply.send(app.mempool.next_nonce(&app.state, &address));
            }
            NodeMessage::IsPending { hash, reply } => {
                let _ = reply.send(self.core.app().mempool.contains(&hash));
            }
            NodeMessage::Status { reply } => {
                let status = self.core.status();
                let schedule = self.core.schedule();
                let _ = reply.send(NodeStatus {
                    head: status.head,
                    mempool_size: self.core.app().mempool.len(),
                    is_validator: self.core.app().validates(schedule, schedule.next_height),
                    syncing: status.syncing,
                    best_peer_height: status.best_peer_height,
                    engine: status.engine,
                });
            }
            NodeMessage::Consensus { from, message, block } => {
                return self.core.message(now, from, message, block.map(|block| *block));
            }
            NodeMessage::PeerConnected { peer } => return self.core.peer_connected(peer),
            NodeMessage::PeerStatus { peer, height, hash, latency_ms } => {
                return self.core.peer_status(now, peer, height, hash, latency_ms);
            }
            NodeMessage::PeerGone { peer } => return self.core.peer_gone(peer),
            NodeMessage::Blocks { from, blocks } => return self.core.blocks(now, from, blocks),
            NodeMessage::SetMining { on, reply } => {
                if self.miner.is_none() {
                    let reason = if self.core.has_forks() {
                        "this node has no key to mine with"
                    } else {
                        "this chain's engine does not mine"
                    };
                    let _ = reply.send(Err(reason.into()));
                    return Vec::new();
                }
                info!(on, "mining turned {}", if on { "on" } else { "off" });
                let effects = self.core.set_mining(now, on);
                // The effects (a new job, or a stop) are carried out before the answer.
                if let Err(error) = self.carry_out(effects) {
                    error!(%error, "cannot carry out a change of mining");
                }
                let _ = reply.send(Ok(self.mining_status()));
            }
            NodeMessage::Mining { reply } => {
                let _ = reply.send(self.mining_status());
            }
        }
        Vec::new()
    }

    /// Logs a change of the engine's role, term or leader (engines with leaders only).
    fn note_engine_status(&mut self) {
        let status = self.core.engine_status();
        if status == self.engine_status {
            return;
        }
        self.engine_status = status;
        if let Some(role) = status.role {
            info!(
                role = role.as_str(),
                term = status.term.unwrap_or(0),
                leader = %status.leader.map(|key| Address(key).to_string()).unwrap_or_default(),
                "consensus role"
            );
        }
    }

    /// Carries out the core's effects, in order.
    fn carry_out(&mut self, effects: Vec<Effect<Executed>>) -> Result<(), NodeError> {
        for effect in effects {
            match effect {
                Effect::Log { height, message, block } => {
                    let started = Instant::now();
                    let entry = WalEntry::encode(&message, block.as_deref());
                    self.store.append_wal(height, &entry)?;
                    debug!(
                        height = height.0,
                        ms = started.elapsed().as_millis() as u64,
                        "logged an own message"
                    );
                }
                Effect::SaveState(state) => self.store.save_engine_state(&state)?,
                Effect::Send { peer, wire } => self.send(Outgoing::Send { peer, wire }),
                Effect::Gossip { wire, except } => {
                    self.send(Outgoing::Gossip { wire, from: except })
                }
                Effect::SendAll { wire } => self.send(Outgoing::SendAll { wire }),
                Effect::Report { peer, misbehaviour } => {
                    self.send(Outgoing::Report { peer, misbehaviour })
                }
                Effect::Persist { blocks } => self.persist(None, blocks),
                Effect::Switch { to, blocks } => self.persist(Some(to), blocks),
                Effect::Mine { header } => {
                    if let Some(miner) = &self.miner {
                        debug!(height = header.height.0, "mining");
                        miner.mine(header);
                    }
                }
                Effect::StopMining => {
                    if let Some(miner) = &self.miner {
                        miner.stop_search();
                    }
                }
                Effect::Schedule(schedule) => {
                    // Logged when the validators change, not at every height.
                    let before = self.validators.get();
                    if before.current != schedule.current || before.upcoming != schedule.upcoming {
                        info!(
                            from = schedule.next_height.0,
                            validators = schedule.current.len(),
                            upcoming_from = schedule.upcoming.as_ref().map(|change| change.from.0),
                            "validator schedule"
                        );
                    }
                    self.validators.set(schedule);
                }
            }
        }
        Ok(())
    }

    /// Starts writing sealed blocks, proofs included, in one store transaction; above `switch`
    /// if the blocks replace others.
    fn persist(&mut self, switch: Option<Height>, sealed: Vec<(Arc<Block>, Executed)>) {
        let started = sealed.first().map_or_else(Instant::now, |(_, executed)| executed.started);
        let mut blocks = Vec::with_capacity(sealed.len());
        let mut writes = Vec::with_capacity(sealed.len());
        for (block, Executed { receipts, events, diff, .. }) in sealed {
            let facts = BlockFacts {
                failed: receipts
                    .iter()
                    .filter(|receipt| matches!(receipt, Receipt::Failed(_)))
                    .count(),
                cleared: events
                    .iter()
                    .filter(|event| matches!(event, ledger::MarketEvent::Cleared { .. }))
                    .count(),
                settled: events
                    .iter()
                    .filter(|event| matches!(event, ledger::MarketEvent::Settled { .. }))
                    .count(),
            };
            blocks.push((block.clone(), facts));
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
            match switch {
                Some(to) => store.switch_branch(to, &batch),
                None => store.commit_blocks(&batch).map(|()| Vec::new()),
            }
        });
        if let Some((last, _)) = blocks.last() {
            debug!(height = last.header.height.0, blocks = blocks.len(), "writing blocks");
        }
        self.persisting = Some(Persisting { blocks, task, started });
    }

    /// Blocks are durable: announce them.
    fn on_persisted(
        &mut self,
        done: Persisting,
        result: Result<Result<Vec<store::UnwoundBlock>, StoreError>, tokio::task::JoinError>,
    ) -> Result<(), NodeError> {
        let height = done.blocks.last().map_or(0, |(block, _)| block.header.height.0);
        let unwound = match result {
            Ok(Ok(unwound)) => unwound,
            Ok(Err(error)) => {
                error!(%error, height, "cannot write block; stopping");
                return Err(error.into());
            }
            Err(error) => return Err(NodeError::Panicked(error.to_string())),
        };
        if !unwound.is_empty() {
            let reorg = Reorg {
                reverted: unwound
                    .iter()
                    .map(|undone| (undone.block.header.height, undone.block.hash()))
                    .collect(),
                applied: done
                    .blocks
                    .iter()
                    .map(|(block, _)| (block.header.height, block.hash()))
                    .collect(),
            };
            info!(
                reverted = reorg.reverted.len(),
                applied = reorg.applied.len(),
                height,
                "switched to another branch"
            );
            self.metrics.blocks_reverted.inc_by(reorg.reverted.len() as u64);
            let _ = self.reorgs.send(Arc::new(reorg));
        }
        let elapsed = done.started.elapsed().as_secs_f64();
        let _ = self.indexer.send(done.blocks.iter().map(|(block, _)| block.clone()).collect());
        for (block, facts) in done.blocks {
            let header = &block.header;
            self.metrics.block_commit_seconds.observe(elapsed);
            let parent = self.head_sender.borrow().header.clone();
            let parent_ms = (parent.height.0.checked_add(1) == Some(header.height.0))
                .then_some(parent.timestamp.0);
            let schedule = self.validators.get();
            self.metrics.committed(&block, parent_ms, facts, &schedule, &self.clock.scale());
            let failed = facts.failed;
            info!(height = header.height.0, txs = block.txs.len(), failed, "block committed");
            if let ConsensusProof::Bft(certificate) = &header.proof
                && certificate.round > 0
            {
                info!(
                    height = header.height.0,
                    round = certificate.round,
                    "decided after more than one round"
                );
            }
            self.head_sender.send_replace(block.clone());
            let _ = self.blocks.send(block);
        }
        Ok(())
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
