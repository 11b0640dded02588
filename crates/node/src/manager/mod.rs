//! The node manager task and the handle that reaches it.

use crate::{
    chain::{genesis_block, now_ms},
    mempool::{AdmitError, Mempool, MempoolLimits},
    metrics::{NodeMetrics, ReasonLabel},
};
use consensus::{Command, Engine, Event, engine_for, verify_proof};
use ledger::{MarketEvent, Receipt, State, StateDiff, StateError};
use primitives::{
    Address, Block, BlockHash, ChainConfig, ConsensusProof, Genesis, Header, Height, Nonce,
    SecretKey, SignedTransaction, TimestampMs, TxHash, TxRejection, VerifiedTransaction,
};
use std::{
    collections::VecDeque,
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
}

enum NodeMessage {
    Admit { txs: Vec<VerifiedTransaction>, reply: oneshot::Sender<Vec<Result<TxHash, AdmitError>>> },
    NextNonce { address: Address, reply: oneshot::Sender<Nonce> },
    IsPending { hash: TxHash, reply: oneshot::Sender<bool> },
    Status { reply: oneshot::Sender<NodeStatus> },
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
}

/// A cheap, cloneable way to talk to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
    inbox: mpsc::Sender<NodeMessage>,
}

/// A running node: its handle and the task that must be watched.
pub struct Node {
    handle: NodeHandle,
    task: JoinHandle<Result<(), NodeError>>,
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

        let engine = engine_for(&chain_config, config.validator_key.clone(), &head, Vec::new());
        let proposer = config.validator_key.as_ref().map(|key| Address(key.public_key()));
        let (head_sender, head_receiver) = watch::channel(Arc::new(head_block));
        let (blocks, _) = broadcast::channel(256);
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let (inbox_sender, inbox) = mpsc::channel(1024);
        let parallelism = std::thread::available_parallelism().map_or(2, usize::from);
        let shared = Arc::new(Shared {
            store: store.clone(),
            config: chain_config.clone(),
            genesis_hash,
            blocks: blocks.clone(),
            head: head_receiver,
            shutdown,
            verify_permits: Semaphore::new(parallelism),
            metrics: metrics.clone(),
        });
        let manager = Manager {
            state,
            mempool: Mempool::new(config.mempool),
            engine,
            store,
            max_block_txs: usize::try_from(chain_config.params.max_block_txs).unwrap_or(usize::MAX),
            proposer,
            is_validator: config.validator_key.is_some_and(|key| {
                chain_config.validators.iter().any(|validator| validator.key == key.public_key())
            }),
            head,
            head_sender,
            blocks,
            built: None,
            wake: None,
            ready: false,
            metrics,
        };
        let task = tokio::spawn(manager.run(inbox, shutdown_receiver));
        Ok(Node { handle: NodeHandle { shared, inbox: inbox_sender }, task })
    }

    /// A handle to the running node.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Waits until the node stops: after [`NodeHandle::shutdown`], or on a fatal error.
    pub async fn stopped(self) -> Result<(), NodeError> {
        match self.task.await {
            Ok(result) => result,
            Err(error) => Err(NodeError::Panicked(error.to_string())),
        }
    }
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

    /// The chain's configuration.
    pub fn chain_config(&self) -> &ChainConfig {
        &self.shared.config
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
        self.admit(checked).await
    }

    /// Submits transactions. Each gets its hash, or the reason it was refused.
    pub async fn submit(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Result<Vec<Result<TxHash, SubmitError>>, NodeStopped> {
        let chain_id = self.shared.config.chain_id.clone();
        let checked = self
            .verify_on_pool(move || verify_decoded(txs.into_iter().map(Ok).collect(), &chain_id))
            .await?;
        self.admit(checked).await
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
        let admitted = if verified.is_empty() {
            Vec::new()
        } else {
            self.request(|reply| NodeMessage::Admit { txs: verified, reply }).await?
        };
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

/// A block that has been built and executed, waiting for the engine's proof.
struct Built {
    block: Block,
    receipts: Vec<Receipt>,
    events: Vec<MarketEvent>,
    diff: StateDiff,
    started: Instant,
}

/// A block being written to the store.
struct Persisting {
    block: Arc<Block>,
    failed: usize,
    task: JoinHandle<Result<(), StoreError>>,
    started: Instant,
}

/// The node manager: the single owner of the state, the mempool and the engine.
struct Manager {
    state: State,
    mempool: Mempool,
    engine: Box<dyn Engine + Send>,
    store: Arc<Store>,
    max_block_txs: usize,
    proposer: Option<Address>,
    is_validator: bool,
    head: Header,
    head_sender: watch::Sender<Arc<Block>>,
    blocks: broadcast::Sender<Arc<Block>>,
    built: Option<Built>,
    wake: Option<TimestampMs>,
    /// Whether the engine has been told that transactions are ready.
    ready: bool,
    metrics: NodeMetrics,
}

impl Manager {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<NodeMessage>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        let mut persisting: Option<Persisting> = self.drive(Event::Tick)?;
        loop {
            let sleep = tokio::time::sleep(self.time_until_wake());
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                result = async { (&mut persisting.as_mut().expect("guarded").task).await },
                    if persisting.is_some() =>
                {
                    let done = persisting.take().expect("guarded");
                    let header = self.on_persisted(done, result)?;
                    persisting = self.after_commit(header)?;
                }
                // The engine's wake-up comes before messages: a flood of submissions must not
                // hold back block production.
                () = sleep, if self.wake.is_some() => {
                    self.wake = None;
                    if let Some(started) = self.drive(Event::Tick)? {
                        persisting = Some(started);
                    }
                }
                message = inbox.recv() => match message {
                    Some(message) => {
                        if let Some(started) = self.on_message(message)? {
                            persisting = Some(started);
                        }
                    }
                    None => break,
                },
            }
        }
        if let Some(mut last) = persisting {
            info!(height = last.block.header.height.0, "finishing the block being written");
            let result = (&mut last.task).await;
            self.on_persisted(last, result)?;
        }
        info!(height = self.head.height.0, "node stopped");
        Ok(())
    }

    fn time_until_wake(&self) -> Duration {
        match self.wake {
            Some(at) => Duration::from_millis(at.0.saturating_sub(now_ms().0)),
            None => Duration::from_secs(3600),
        }
    }

    fn on_message(&mut self, message: NodeMessage) -> Result<Option<Persisting>, NodeError> {
        match message {
            NodeMessage::Admit { txs, reply } => {
                let mut results = Vec::with_capacity(txs.len());
                let mut any_ready = false;
                let now = now_ms();
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
                    is_validator: self.is_validator,
                });
            }
        }
        Ok(None)
    }

    /// Feeds an event to the engine and carries out the commands, including those that follow
    /// from them. Returns the block write it started, if any.
    fn drive(&mut self, event: Event) -> Result<Option<Persisting>, NodeError> {
        let mut commands: VecDeque<Command> = self.engine.handle(now_ms(), event).into();
        let mut started = None;
        while let Some(command) = commands.pop_front() {
            match command {
                Command::WakeAt { at } => self.wake = Some(at),
                Command::BuildBlock { height, timestamp } => {
                    let header = self.build(height, timestamp);
                    commands.extend(self.engine.handle(now_ms(), Event::BlockBuilt { header }));
                }
                Command::Commit { hash, proof } => started = self.persist(hash, proof),
                Command::Broadcast(_) => {}
            }
        }
        Ok(started)
    }

    /// Takes transactions from the mempool and executes them as block `height`.
    fn build(&mut self, height: Height, timestamp: TimestampMs) -> Header {
        let started = Instant::now();
        let events = self.state.begin_block(timestamp);
        let candidates = self.mempool.take_block(&self.state, self.max_block_txs);
        let mut txs = Vec::with_capacity(candidates.len());
        let mut receipts = Vec::with_capacity(candidates.len());
        for tx in candidates {
            match self.state.execute(&tx) {
                Ok(receipt) => {
                    receipts.push(receipt);
                    txs.push(tx.into_signed());
                }
                Err(error) => {
                    warn!(tx = %tx.hash(), %error, "dropping a transaction that cannot be included")
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
        self.built = Some(Built {
            block: Block { header: header.clone(), txs },
            receipts,
            events,
            diff,
            started,
        });
        header
    }

    /// Seals the built block with its proof and starts writing it.
    fn persist(&mut self, hash: BlockHash, proof: ConsensusProof) -> Option<Persisting> {
        let built = self.built.take()?;
        if built.block.hash() != hash {
            error!(%hash, built = %built.block.hash(), "the engine committed a block that was not built");
            return None;
        }
        let Built { mut block, receipts, events, diff, started } = built;
        block.header.proof = proof;
        let failed =
            receipts.iter().filter(|receipt| matches!(receipt, Receipt::Failed(_))).count();
        let block = Arc::new(block);
        let store = self.store.clone();
        let to_write = block.clone();
        let task = tokio::task::spawn_blocking(move || {
            store.commit_block(&to_write, &receipts, &events, &diff)
        });
        debug!(height = block.header.height.0, txs = block.txs.len(), "writing block");
        Some(Persisting { block, failed, task, started })
    }

    /// A block is durable: announce it.
    fn on_persisted(
        &mut self,
        done: Persisting,
        result: Result<Result<(), StoreError>, tokio::task::JoinError>,
    ) -> Result<Header, NodeError> {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                error!(%error, height = done.block.header.height.0, "cannot write block; stopping");
                return Err(error.into());
            }
            Err(error) => return Err(NodeError::Panicked(error.to_string())),
        }
        let block = done.block;
        let header = block.header.clone();
        self.metrics.block_commit_seconds.observe(done.started.elapsed().as_secs_f64());
        self.metrics.blocks_committed.inc();
        self.metrics.txs_committed.inc_by(block.txs.len() as u64);
        self.metrics.txs_failed.inc_by(done.failed as u64);
        self.metrics.block_txs.observe(block.txs.len() as f64);
        self.metrics.head_height.set(i64::try_from(header.height.0).unwrap_or(i64::MAX));
        let pruned = self.mempool.prune(&self.state);
        self.metrics.mempool_size.set(self.mempool.len() as i64);
        info!(
            height = header.height.0,
            txs = block.txs.len(),
            failed = done.failed,
            pruned,
            mempool = self.mempool.len(),
            "block committed"
        );
        self.head = header.clone();
        self.head_sender.send_replace(block.clone());
        let _ = self.blocks.send(block);
        Ok(header)
    }

    /// Lets the engine go on after a commit.
    fn after_commit(&mut self, header: Header) -> Result<Option<Persisting>, NodeError> {
        let mut started = self.drive(Event::Committed { header })?;
        let ready = self.mempool.has_ready(&self.state);
        if ready != self.ready || ready {
            self.ready = ready;
            if let Some(more) = self.drive(Event::PendingChanged { ready: usize::from(ready) })? {
                started = Some(more);
            }
        }
        Ok(started)
    }
}
