//! `joule bench ingest`: how many signed transfers per second a running chain commits, and how
//! long each takes from submission to commit.
//!
//! The benchmark funds its own sender accounts from a devnet demo account, signs all transfers
//! up front (so signing does not slow submission), submits them in `tx_submitBatch` calls from
//! several concurrent connections, and follows the chain's new heads to see each transaction
//! committed. It also measures this machine's raw Ed25519 verification rate in the same run, as
//! the yardstick for the transaction rate.

use crate::{
    client::{RpcContext, connect},
    devnet::DevnetFile,
    output::OutputArgs,
    wallet,
};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use keystore::Keystore;
use primitives::{
    Address, Amount, ChainId, Energy, Nonce, Payload, PublicKey, SecretKey, SignedTransaction,
    Transaction, encode,
};
use rand::RngExt;
use rpc::{
    JouleApiClient,
    client::{HttpClient, WsClientBuilder},
    dto::BlockId,
};
use serde::Serialize;
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::Semaphore;

/// `joule bench …`
#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Submit signed transfers concurrently and measure commit rate and latency.
    Ingest(IngestArgs),
    /// Register many meters and have each report every interval; measure how fast each round
    /// of readings is committed.
    Meters(MetersArgs),
}

/// `joule bench meters`
#[derive(Args, Clone)]
pub(crate) struct MetersArgs {
    /// Devnet directory (its devnet.json names the nodes and the operator).
    #[arg(long)]
    devnet: PathBuf,
    /// Meters to register.
    #[arg(long, default_value_t = 10_000)]
    meters: usize,
    /// Rounds of readings (one per reading interval, every minute by default).
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    /// JSON-RPC URLs to spread the load over (comma-separated); default: every devnet node.
    #[arg(long, value_delimiter = ',')]
    rpc: Vec<String>,
    /// Readings per tx_submitBatch call.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent submitting connections.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    #[command(flatten)]
    output: OutputArgs,
}

/// What the meter benchmark measured.
#[derive(Serialize, Debug)]
pub(crate) struct MetersReport {
    meters: usize,
    rounds: u64,
    reading_minutes: u32,
    submitted: usize,
    committed: usize,
    rejected: usize,
    rejections: BTreeMap<String, usize>,
    /// Submission to commit, per reading.
    p50_ms: u64,
    p99_ms: u64,
    max_ms: u64,
    /// Per round, from the end of the interval to the last of its readings committed.
    round_ms: Vec<u64>,
}

/// `joule bench ingest`
#[derive(Args, Clone)]
pub(crate) struct IngestArgs {
    /// Devnet directory (its devnet.json names the nodes and the demo accounts).
    #[arg(long)]
    devnet: PathBuf,
    /// Transfers to submit.
    #[arg(long)]
    txs: usize,
    /// JSON-RPC URLs to spread the load over (comma-separated); default: every devnet node.
    #[arg(long, value_delimiter = ',')]
    rpc: Vec<String>,
    /// Sender accounts to create and fund.
    #[arg(long, default_value_t = 2_000)]
    senders: usize,
    /// Send to this many fresh accounts, in turn, instead of to the other senders (each
    /// recipient's account is created by its first transfer): a chain with many accounts.
    #[arg(long, default_value_t = 0)]
    recipients: u64,
    /// Demo account that funds the senders.
    #[arg(long, default_value = "alice")]
    from: String,
    /// Transactions per tx_submitBatch call.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent submitting connections.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Target submission rate in transactions per second; 0 submits as fast as the node takes.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Most transactions submitted but not yet committed at any time.
    #[arg(long, default_value_t = 30_000)]
    window: usize,
    /// Give up when nothing is committed for this many seconds.
    #[arg(long, default_value_t = 60)]
    stall_timeout: u64,
    #[command(flatten)]
    output: OutputArgs,
}

/// What the benchmark measured.
#[derive(Serialize, Debug)]
pub(crate) struct IngestReport {
    submitted: usize,
    committed: usize,
    rejected: usize,
    rejections: BTreeMap<String, usize>,
    duplicates: usize,
    tx_per_s: f64,
    p50_ms: u64,
    p99_ms: u64,
    max_ms: u64,
    duration_s: f64,
    verify_per_s: f64,
    verify_batch_per_s: f64,
    senders: usize,
    workers: usize,
    batch: usize,
    rate: u64,
}

pub(crate) fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Meters(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let report = runtime.block_on(meters(args.clone()))?;
            if args.output.json {
                say!("{}", serde_json::to_string(&report)?);
            } else {
                say!(
                    "{} meters, {} rounds: committed {} of {} readings ({} rejected)\nsubmit-to-commit p50 {} ms, p99 {} ms, max {} ms\ninterval end to last reading committed, per round: {:?} ms",
                    report.meters,
                    report.rounds,
                    report.committed,
                    report.submitted,
                    report.rejected,
                    report.p50_ms,
                    report.p99_ms,
                    report.max_ms,
                    report.round_ms
                );
            }
            if report.committed < report.submitted {
                bail!("{} readings were not committed", report.submitted - report.committed);
            }
            Ok(())
        }
        BenchCommand::Ingest(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let report = runtime.block_on(ingest(args.clone()))?;
            if args.output.json {
                // One JSON object on the last line, for scripts.
                say!("{}", serde_json::to_string(&report)?);
            } else {
                say!("{}", {
                    format!(
                        "committed {} of {} ({} rejected, {} duplicates) in {:.1} s\n{:.0} tx/s, submit-to-commit p50 {} ms, p99 {} ms, max {} ms\nraw Ed25519 verification on one core: {:.0}/s single, {:.0}/s batched",
                        report.committed,
                        report.submitted,
                        report.rejected,
                        report.duplicates,
                        report.duration_s,
                        report.tx_per_s,
                        report.p50_ms,
                        report.p99_ms,
                        report.max_ms,
                        report.verify_per_s,
                        report.verify_batch_per_s
                    )
                });
            }
            if report.committed + report.rejected < report.submitted {
                bail!(
                    "{} transactions were neither committed nor rejected",
                    report.submitted - report.committed - report.rejected
                );
            }
            Ok(())
        }
    }
}

/// Single and batched Ed25519 verifications per second on one core.
fn verification_rate() -> (f64, f64) {
    let key = SecretKey::from_seed([42; 32]);
    let messages: Vec<[u8; 32]> = (0..256u32)
        .map(|i| {
            let mut message = [0u8; 32];
            message[..4].copy_from_slice(&i.to_le_bytes());
            message
        })
        .collect();
    let signatures: Vec<_> = messages.iter().map(|message| key.sign(message)).collect();
    let public = key.public_key();
    let started = Instant::now();
    let mut single = 0usize;
    while started.elapsed() < Duration::from_millis(1500) {
        for (message, signature) in messages.iter().zip(&signatures) {
            if public.verify(message, signature).is_ok() {
                single += 1;
            }
        }
    }
    let single_rate = single as f64 / started.elapsed().as_secs_f64();
    // Batches of distinct keys, as in a block of transfers from many senders.
    let keys: Vec<SecretKey> = (0..256u32)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            SecretKey::from_seed(seed)
        })
        .collect();
    let items: Vec<(PublicKey, &[u8], primitives::Signature)> = keys
        .iter()
        .zip(&messages)
        .map(|(key, message)| (key.public_key(), message.as_slice(), key.sign(message)))
        .collect();
    let started = Instant::now();
    let mut batched = 0usize;
    while started.elapsed() < Duration::from_millis(1500) {
        let results = primitives::crypto::verify_batch(&items, rand::rng());
        batched += results.iter().filter(|result| result.is_ok()).count();
    }
    (single_rate, batched as f64 / started.elapsed().as_secs_f64())
}

/// One pre-signed transaction.
struct Prepared {
    hash: [u8; 32],
    hex: String,
}

/// Shared bookkeeping between submitters and the commit tracker.
struct Tracker {
    submitted_at: Mutex<HashMap<[u8; 32], Option<Instant>>>,
    latencies: Mutex<Histogram<u64>>,
    committed: AtomicUsize,
    duplicates: AtomicUsize,
    rejected: AtomicUsize,
    rejections: Mutex<BTreeMap<String, usize>>,
    last_commit: Mutex<Option<Instant>>,
    window: Semaphore,
}

async fn ingest(args: IngestArgs) -> Result<IngestReport> {
    if args.txs == 0 || args.senders < 2 || args.batch == 0 || args.workers == 0 {
        bail!("--txs, --batch and --workers must be positive and --senders at least 2");
    }
    let devnet = DevnetFile::read(&args.devnet)?;
    let urls: Vec<String> = if args.rpc.is_empty() {
        devnet.nodes.iter().map(|node| node.rpc_url.clone()).collect()
    } else {
        args.rpc.clone()
    };
    let first_url = urls.first().context("the devnet has no nodes")?.clone();
    let client = connect(&first_url)?;
    let status = client.node_status().await.rpc(&first_url)?;
    let chain_id = ChainId::new(&status.chain_id).map_err(anyhow::Error::msg)?;

    eprintln!("measuring raw Ed25519 verification on one core…");
    let (verify_per_s, verify_batch_per_s) = tokio::task::spawn_blocking(verification_rate).await?;

    let senders: Vec<SecretKey> =
        (0..args.senders).map(|_| SecretKey::generate(rand::rng())).collect();
    let per_sender = args.txs.div_ceil(args.senders);
    fund(&devnet, &args, &client, &first_url, &chain_id, &senders, per_sender).await?;

    eprintln!("signing {} transfers…", args.txs);
    let prepared = Arc::new(sign_all(&senders, args.txs, args.recipients, &chain_id).await?);

    let batches: Vec<std::ops::Range<usize>> = (0..args.txs)
        .step_by(args.batch)
        .map(|start| start..(start + args.batch).min(args.txs))
        .collect();
    let tracker = Arc::new(Tracker::new(args.txs, args.window.max(args.batch))?);
    let follower = follow_chain(&first_url, tracker.clone()).await?;

    eprintln!(
        "submitting {} transfers from {} senders over {} connection(s)…",
        args.txs,
        args.senders,
        urls.len()
    );
    let started = Instant::now();
    let next_batch = Arc::new(AtomicUsize::new(0));
    let retries: Arc<Mutex<VecDeque<Vec<usize>>>> = Arc::new(Mutex::new(VecDeque::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let batches = Arc::new(batches);
    let mut workers = Vec::new();
    for worker in 0..args.workers {
        let url = urls[worker % urls.len()].clone();
        let client = connect(&url)?;
        let context = Submitter {
            client,
            url,
            prepared: prepared.clone(),
            batches: batches.clone(),
            next_batch: next_batch.clone(),
            retries: retries.clone(),
            tracker: tracker.clone(),
            sent: sent.clone(),
            rate: args.rate,
            started,
            total: args.txs,
        };
        workers.push(tokio::spawn(context.run()));
    }

    // Wait for every transaction to be committed or rejected, reporting progress.
    let stall = Duration::from_secs(args.stall_timeout);
    let mut last_progress = (0usize, Instant::now());
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut next_report = 5.0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let committed = tracker.committed.load(Ordering::Relaxed);
        let rejected = tracker.rejected.load(Ordering::Relaxed);
        if committed + rejected >= args.txs {
            break;
        }
        if committed != last_progress.0 {
            last_progress = (committed, Instant::now());
        } else if last_progress.1.elapsed() > stall {
            eprintln!("nothing committed for {} s; giving up", stall.as_secs());
            break;
        }
        if follower.is_finished() {
            eprintln!("lost the head subscription");
            break;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let line = format!(
            "{elapsed:6.1} s  committed {committed:>9}  rejected {rejected:>7}  ({:.0} tx/s)",
            committed as f64 / elapsed
        );
        if interactive {
            eprint!("\r{line}   ");
        } else if elapsed >= next_report {
            eprintln!("{line}");
            next_report += 5.0;
        }
    }
    if interactive {
        eprintln!();
    }
    for worker in workers {
        worker.abort();
    }
    follower.abort();

    let committed = tracker.committed.load(Ordering::Relaxed);
    let last_commit = tracker.last_commit.lock().expect("not poisoned").unwrap_or(started);
    let duration = last_commit.saturating_duration_since(started).as_secs_f64().max(1e-3);
    let latencies = tracker.latencies.lock().expect("not poisoned");
    let report = IngestReport {
        submitted: args.txs,
        committed,
        rejected: tracker.rejected.load(Ordering::Relaxed),
        rejections: tracker.rejections.lock().expect("not poisoned").clone(),
        duplicates: tracker.duplicates.load(Ordering::Relaxed),
        tx_per_s: committed as f64 / duration,
        p50_ms: latencies.value_at_quantile(0.50),
        p99_ms: latencies.value_at_quantile(0.99),
        max_ms: latencies.max(),
        duration_s: duration,
        verify_per_s,
        verify_batch_per_s,
        senders: args.senders,
        workers: args.workers,
        batch: args.batch,
        rate: args.rate,
    };
    Ok(report)
}

impl Tracker {
    fn new(capacity: usize, window: usize) -> Result<Tracker> {
        Ok(Tracker {
            submitted_at: Mutex::new(HashMap::with_capacity(capacity)),
            latencies: Mutex::new(Histogram::new_with_bounds(1, 3_600_000, 3)?),
            committed: AtomicUsize::new(0),
            duplicates: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            rejections: Mutex::new(BTreeMap::new()),
            last_commit: Mutex::new(None),
            window: Semaphore::new(window),
        })
    }

    fn submitted(&self, hashes: impl IntoIterator<Item = [u8; 32]>, at: Instant) {
        let mut submitted = self.submitted_at.lock().expect("not poisoned");
        for hash in hashes {
            submitted.insert(hash, Some(at));
        }
    }

    fn reject(&self, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        *self.rejections.lock().expect("not poisoned").entry(reason.to_owned()).or_default() += 1;
    }
}

/// Follows the chain from its current head: every transaction of ours seen in a block is
/// counted as committed at the moment the block was announced.
async fn follow_chain(
    url: &str,
    tracker: Arc<Tracker>,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let client = connect(url)?;
    let ws_url = url.replacen("http", "ws", 1);
    let ws = WsClientBuilder::default()
        .max_response_size(64 * 1024 * 1024)
        .build(&ws_url)
        .await
        .with_context(|| format!("cannot open a WebSocket to {ws_url}"))?;
    let mut heads = ws.subscribe_new_heads().await.rpc(&ws_url)?;
    let start_height = client.chain_head().await.rpc(url)?.height;
    let url = url.to_owned();
    Ok(tokio::spawn(async move {
        let _ws = ws;
        let mut next = start_height + 1;
        while let Some(head) = heads.next().await {
            let head = head.context("head subscription failed")?;
            // A block counts as committed when its head is announced, not when we have
            // finished fetching its transaction list.
            let announced = Instant::now();
            while next <= head.height {
                let block = client.chain_block(BlockId::Height(next)).await.rpc(&url)?;
                if let Some(block) = block {
                    record_block(&tracker, &block.txs, announced);
                }
                next += 1;
            }
        }
        Ok(())
    }))
}

fn record_block(tracker: &Tracker, hashes: &[String], now: Instant) {
    let mut submitted = tracker.submitted_at.lock().expect("not poisoned");
    let mut latencies = tracker.latencies.lock().expect("not poisoned");
    let mut ours = 0;
    for text in hashes {
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(text, &mut hash).is_err() {
            continue;
        }
        // `None` marks a transaction already seen in an earlier block.
        if let Some(slot) = submitted.get_mut(&hash) {
            match slot.take() {
                Some(at) => {
                    let millis = now.saturating_duration_since(at).as_millis().max(1);
                    let _ = latencies.record(u64::try_from(millis).unwrap_or(u64::MAX));
                    ours += 1;
                }
                None => {
                    tracker.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    if ours > 0 {
        tracker.committed.fetch_add(ours, Ordering::Relaxed);
        tracker.window.add_permits(ours);
        *tracker.last_commit.lock().expect("not poisoned") = Some(now);
    }
}

struct Submitter {
    client: HttpClient,
    url: String,
    prepared: Arc<Vec<Prepared>>,
    batches: Arc<Vec<std::ops::Range<usize>>>,
    next_batch: Arc<AtomicUsize>,
    retries: Arc<Mutex<VecDeque<Vec<usize>>>>,
    tracker: Arc<Tracker>,
    sent: Arc<AtomicUsize>,
    rate: u64,
    started: Instant,
    total: usize,
}

impl Submitter {
    fn next_work(&self) -> Option<Vec<usize>> {
        if let Some(retry) = self.retries.lock().expect("not poisoned").pop_front() {
            return Some(retry);
        }
        let index = self.next_batch.fetch_add(1, Ordering::Relaxed);
        self.batches.get(index).map(|range| range.clone().collect())
    }

    async fn run(self) -> Result<()> {
        loop {
            let Some(indices) = self.next_work() else {
                let done = self.tracker.committed.load(Ordering::Relaxed)
                    + self.tracker.rejected.load(Ordering::Relaxed);
                if done >= self.total {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let permits = u32::try_from(indices.len()).unwrap_or(u32::MAX);
            self.tracker.window.acquire_many(permits).await?.forget();
            if self.rate > 0 {
                let sent = self.sent.fetch_add(indices.len(), Ordering::Relaxed);
                let due = self.started + Duration::from_secs_f64(sent as f64 / self.rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            self.tracker
                .submitted(indices.iter().map(|&index| self.prepared[index].hash), Instant::now());
            let payload: Vec<String> =
                indices.iter().map(|&index| self.prepared[index].hex.clone()).collect();
            let results = match self.client.tx_submit_batch(payload).await {
                Ok(results) => results,
                Err(error) => {
                    eprintln!(
                        "\nsubmission to {} failed: {}; retrying",
                        self.url,
                        crate::client::explain(&self.url, error)
                    );
                    self.tracker.window.add_permits(indices.len());
                    self.retries.lock().expect("not poisoned").push_back(indices);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let mut retry = Vec::new();
            for (&index, result) in indices.iter().zip(&results) {
                let Some(error) = &result.error else { continue };
                self.tracker.window.add_permits(1);
                match error.reason.as_str() {
                    // Full, or arrived ahead of its predecessors: try again shortly.
                    "mempool_full" | "sender_full" | "nonce_too_far_ahead" => retry.push(index),
                    reason => self.tracker.reject(reason),
                }
            }
            if !retry.is_empty() {
                self.retries.lock().expect("not poisoned").push_back(retry);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Signs transactions on every core.
fn sign_parallel<T: Sync>(
    items: &[T],
    sign: impl Fn(&T) -> SignedTransaction + Sync,
) -> Vec<Prepared> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let sign = &sign;
                scope.spawn(move || {
                    part.iter()
                        .map(|item| {
                            let signed = sign(item);
                            Prepared { hash: signed.hash().0.0, hex: hex::encode(encode(&signed)) }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("signing thread panicked"))
            .collect()
    })
}

/// Submits prepared transactions over `workers` connections; refusals go to the tracker.
async fn submit_all(
    urls: &[String],
    prepared: &[Prepared],
    batch: usize,
    workers: usize,
    tracker: &Arc<Tracker>,
) -> Result<()> {
    let batches: Vec<Vec<(usize, [u8; 32], String)>> = prepared
        .chunks(batch.max(1))
        .enumerate()
        .map(|(index, part)| part.iter().map(|item| (index, item.hash, item.hex.clone())).collect())
        .collect();
    let queue = Arc::new(Mutex::new(batches));
    let mut tasks = Vec::new();
    for worker in 0..workers.max(1) {
        let url = urls[worker % urls.len()].clone();
        let client = connect(&url)?;
        let queue = queue.clone();
        let tracker = tracker.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(part) = queue.lock().expect("not poisoned").pop() else {
                    return anyhow::Ok(());
                };
                tracker.submitted(part.iter().map(|(_, hash, _)| *hash), Instant::now());
                let results = client
                    .tx_submit_batch(part.iter().map(|(_, _, hex)| hex.clone()).collect())
                    .await
                    .rpc(&url)?;
                for result in &results {
                    if let Some(error) = &result.error {
                        tracker.reject(&error.reason);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn meters(args: MetersArgs) -> Result<MetersReport> {
    if args.meters == 0 || args.rounds == 0 {
        bail!("--meters and --rounds must be positive");
    }
    let devnet = DevnetFile::read(&args.devnet)?;
    let urls: Vec<String> = if args.rpc.is_empty() {
        devnet.nodes.iter().map(|node| node.rpc_url.clone()).collect()
    } else {
        args.rpc.clone()
    };
    let url = urls.first().context("the devnet has no nodes")?.clone();
    let client = connect(&url)?;
    let status = client.node_status().await.rpc(&url)?;
    let chain_id = ChainId::new(&status.chain_id).map_err(anyhow::Error::msg)?;
    let market = client.market_status().await.rpc(&url)?;
    let reading_ms = u64::from(market.reading_minutes) * 60_000;

    // Register the meters, signed by the operator, a thousand at a time.
    let operator = devnet
        .accounts
        .iter()
        .find(|account| account.name == "operator")
        .context("the devnet has no operator")?;
    let keystore = Keystore::open(&operator.keystore)?;
    let operator_key = keystore.unlock(
        &keystore.find(&operator.name)?,
        &wallet::read_password(&operator.password_file)?,
    )?;
    let operator_address = Address(operator_key.public_key());
    let meters: Vec<SecretKey> =
        (0..args.meters).map(|_| SecretKey::generate(rand::rng())).collect();
    eprintln!("registering {} meters…", args.meters);
    let mut nonce = client.account_get(operator_address.to_string()).await.rpc(&url)?.next_nonce;
    for part in meters.chunks(1_000) {
        let first = nonce;
        let numbered: Vec<(u64, &SecretKey)> = (0u64..).zip(part).collect();
        let prepared = sign_parallel(&numbered, |(index, meter)| {
            let address = Address(meter.public_key());
            Transaction {
                chain_id: chain_id.clone(),
                sender: operator_address,
                nonce: Nonce(first + index),
                fee: primitives::Amount::ZERO,
                payload: Payload::RegisterMeter { meter: address, owner: address },
            }
            .sign(&operator_key)
        });
        nonce += part.len() as u64;
        let results = client
            .tx_submit_batch(prepared.iter().map(|item| item.hex.clone()).collect())
            .await
            .rpc(&url)?;
        if let Some(error) = results.iter().find_map(|result| result.error.as_ref()) {
            bail!("meter registration refused: {} [{}]", error.message, error.reason);
        }
        let started = Instant::now();
        while client.account_get(operator_address.to_string()).await.rpc(&url)?.nonce < nonce {
            if started.elapsed() > Duration::from_secs(120) {
                bail!("meter registrations were not committed within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let tracker = Arc::new(Tracker::new(args.meters * args.rounds as usize, usize::MAX >> 4)?);
    let follower = follow_chain(&url, tracker.clone()).await?;
    let mut round_ms = Vec::new();
    let mut rng = rand::rng();
    for round in 0..args.rounds {
        // Wait for the next interval to end, then every meter reports it.
        let now = node::now_ms().0;
        let interval = now / reading_ms;
        let ends = (interval + 1) * reading_ms;
        eprintln!(
            "round {}: waiting {} s for interval {interval} to end…",
            round + 1,
            (ends - now).div_ceil(1000)
        );
        tokio::time::sleep(Duration::from_millis(ends - now + 100)).await;
        let values: Vec<(usize, u64, u64)> = (0..args.meters)
            .map(|index| {
                (index, rng.random_range(0..2_000_000u64), rng.random_range(0..2_000_000u64))
            })
            .collect();
        let prepared = sign_parallel(&values, |(index, produced, consumed)| {
            let meter = &meters[*index];
            Transaction {
                chain_id: chain_id.clone(),
                sender: Address(meter.public_key()),
                nonce: Nonce(round),
                fee: primitives::Amount::ZERO,
                payload: Payload::Reading {
                    interval,
                    produced: Energy(*produced),
                    consumed: Energy(*consumed),
                    estimated: false,
                },
            }
            .sign(meter)
        });
        submit_all(&urls, &prepared, args.batch, args.workers, &tracker).await?;
        let target = args.meters * (round as usize + 1);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let done = tracker.committed.load(Ordering::Relaxed)
                + tracker.rejected.load(Ordering::Relaxed);
            if done >= target || Instant::now() > deadline || follower.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = node::now_ms().0.saturating_sub(ends);
        eprintln!(
            "round {}: {} readings committed {} ms after the interval ended",
            round + 1,
            args.meters,
            elapsed
        );
        round_ms.push(elapsed);
    }
    follower.abort();
    let latencies = tracker.latencies.lock().expect("not poisoned");
    Ok(MetersReport {
        meters: args.meters,
        rounds: args.rounds,
        reading_minutes: market.reading_minutes,
        submitted: args.meters * args.rounds as usize,
        committed: tracker.committed.load(Ordering::Relaxed),
        rejected: tracker.rejected.load(Ordering::Relaxed),
        rejections: tracker.rejections.lock().expect("not poisoned").clone(),
        p50_ms: latencies.value_at_quantile(0.50),
        p99_ms: latencies.value_at_quantile(0.99),
        max_ms: latencies.max(),
        round_ms,
    })
}

/// Signs `count` transfers: transaction `k` is sender `k % senders`'s nonce `k / senders`, to a
/// random other sender, so consecutive transactions come from different senders.
/// The `index`th fresh recipient of `--recipients`: an address nobody holds the key of.
fn recipient(index: u64) -> Address {
    Address(primitives::PublicKey(
        primitives::Hash::digest(b"joule/bench/recipient", &[&index.to_le_bytes()]).0,
    ))
}

async fn sign_all(
    senders: &[SecretKey],
    count: usize,
    recipients: u64,
    chain_id: &ChainId,
) -> Result<Vec<Prepared>> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let chunk = count.div_ceil(threads);
    let addresses: Vec<Address> = senders.iter().map(|key| Address(key.public_key())).collect();
    let mut parts = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let addresses = &addresses;
                scope.spawn(move || {
                    let mut rng = rand::rng();
                    let range = (thread * chunk)..((thread + 1) * chunk).min(count);
                    range
                        .map(|k| {
                            let sender = k % senders.len();
                            let to = if recipients > 0 {
                                recipient(k as u64 % recipients)
                            } else {
                                let mut to = rng.random_range(0..senders.len() - 1);
                                if to >= sender {
                                    to += 1;
                                }
                                addresses[to]
                            };
                            let signed = Transaction {
                                chain_id: chain_id.clone(),
                                sender: addresses[sender],
                                nonce: Nonce((k / senders.len()) as u64),
                                fee: primitives::Amount::ZERO,
                                payload: Payload::Transfer { to, amount: Amount(1) },
                            }
                            .sign(&senders[sender]);
                            Prepared { hash: signed.hash().0.0, hex: hex::encode(encode(&signed)) }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            parts.push(handle.join().expect("signing thread panicked"));
        }
    });
    Ok(parts.into_iter().flatten().collect())
}

/// Gives every sender enough tokens for its transfers, from the devnet account `args.from`.
async fn fund(
    devnet: &DevnetFile,
    args: &IngestArgs,
    client: &HttpClient,
    url: &str,
    chain_id: &ChainId,
    senders: &[SecretKey],
    per_sender: usize,
) -> Result<()> {
    let entry = devnet
        .accounts
        .iter()
        .find(|account| account.name == args.from)
        .with_context(|| format!("the devnet has no account {:?}", args.from))?;
    let keystore = Keystore::open(&entry.keystore)?;
    let account = keystore.find(&entry.name)?;
    let password = wallet::read_password(&entry.password_file)?;
    let key = keystore.unlock(&account, &password)?;
    let amount = Amount(per_sender as u128 + 10);
    let needed = amount.0 * senders.len() as u128;
    let funder = client.account_get(account.address.to_string()).await.rpc(url)?;
    if funder.balance.parse::<u128>().unwrap_or(0) < needed {
        bail!(
            "{} holds {} tokens; funding {} senders needs {needed}",
            args.from,
            funder.balance,
            senders.len()
        );
    }
    eprintln!("funding {} senders from {}…", senders.len(), args.from);
    let mut nonce = funder.next_nonce;
    for chunk in senders.chunks(500) {
        let txs: Vec<String> = chunk
            .iter()
            .map(|sender| {
                let signed: SignedTransaction = Transaction {
                    chain_id: chain_id.clone(),
                    sender: account.address,
                    nonce: Nonce(nonce),
                    fee: primitives::Amount::ZERO,
                    payload: Payload::Transfer { to: Address(sender.public_key()), amount },
                }
                .sign(&key);
                nonce += 1;
                hex::encode(encode(&signed))
            })
            .collect();
        let results = client.tx_submit_batch(txs).await.rpc(url)?;
        if let Some(error) = results.iter().find_map(|result| result.error.as_ref()) {
            bail!("funding transfer refused: {} [{}]", error.message, error.reason);
        }
        let started = Instant::now();
        while client.account_get(account.address.to_string()).await.rpc(url)?.nonce < nonce {
            if started.elapsed() > Duration::from_secs(120) {
                bail!("funding transfers were not committed within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
