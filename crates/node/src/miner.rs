//! The miner: a worker thread that searches for a nonce meeting a header's target, owned by the
//! node manager, which gives it jobs (the core's `Effect::Mine`) and stops it (`StopMining`,
//! a new best block, shutdown).
//!
//! The thread hashes in batches; between batches it looks whether its job was replaced or
//! stopped, so a new head interrupts it within one batch (well under a millisecond at the
//! default batch size). With a hash-rate limit it sleeps between batches to stay under it, so
//! that several miners can share one machine with the rest of their nodes (a devnet). A found
//! header goes back to the manager over a channel, tagged with its job's number: the answer
//! to a job that was replaced meanwhile is dropped there.

use primitives::{ConsensusProof, Header, pow::ProofHasher};
use std::{
    collections::VecDeque,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};
use tokio::sync::mpsc;

/// Nonces tried between two looks at the job.
const BATCH: u64 = 1_024;
/// The hash rate is measured over this long.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// A header found by the miner, with the number of the job it completes.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) job: u64,
    pub(crate) header: Header,
}

/// What the manager and the worker share.
struct Shared {
    /// The current job: its number and header (its proof a `Pow` whose target is set).
    job: Mutex<Option<(u64, Header)>>,
    changed: Condvar,
    /// The number of the current job (read by the worker between batches).
    generation: AtomicU64,
    stop: AtomicBool,
    /// Hashes per second over the last few seconds.
    rate: AtomicU64,
    /// Hashes since the start.
    hashes: AtomicU64,
}

/// The manager's side of the miner.
pub(crate) struct Miner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the miner reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinerStats {
    /// Hashes per second over the last few seconds (0 while idle).
    pub hash_rate: u64,
    /// Hashes tried since the node started.
    pub hashes: u64,
    /// Whether it is searching now.
    pub searching: bool,
}

impl Miner {
    /// Starts the worker thread; `limit` caps its hashes per second. Found headers come out of
    /// `found`.
    pub(crate) fn start(
        limit: Option<u64>,
        found: mpsc::UnboundedSender<Found>,
    ) -> std::io::Result<Miner> {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            changed: Condvar::new(),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            rate: AtomicU64::new(0),
            hashes: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("miner".into())
            .spawn(move || work(&worker, limit, &found))?;
        Ok(Miner { shared, thread: Some(thread) })
    }

    /// Replaces the job; returns its number.
    pub(crate) fn mine(&self, header: Header) -> u64 {
        let job = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *lock(&self.shared.job) = Some((job, header));
        self.shared.changed.notify_all();
        job
    }

    /// Stops searching.
    pub(crate) fn stop_search(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        *lock(&self.shared.job) = None;
        self.shared.changed.notify_all();
    }

    /// The number of the current job.
    pub(crate) fn current(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn stats(&self) -> MinerStats {
        MinerStats {
            hash_rate: self.shared.rate.load(Ordering::Relaxed),
            hashes: self.shared.hashes.load(Ordering::Relaxed),
            searching: lock(&self.shared.job).is_some(),
        }
    }

    /// Stops the thread and waits for it.
    pub(crate) fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.stop_search();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The worker: waits for a job, searches, reports.
fn work(shared: &Shared, limit: Option<u64>, found: &mpsc::UnboundedSender<Found>) {
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut total = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let (job, mut header) = {
            let mut current = lock(&shared.job);
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(job) = current.clone() {
                    break job;
                }
                shared.rate.store(0, Ordering::Relaxed);
                samples.clear();
                current = match shared.changed.wait(current) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
        };
        let ConsensusProof::Pow { target, nonce: first } = header.proof else {
            *lock(&shared.job) = None;
            continue;
        };
        let hasher = ProofHasher::new(&header.hash(), target);
        let started = Instant::now();
        let mut tried = 0u64;
        let mut nonce = first;
        let answer = loop {
            if shared.generation.load(Ordering::SeqCst) != job || shared.stop.load(Ordering::SeqCst)
            {
                break None;
            }
            let end = nonce.wrapping_add(BATCH);
            let mut hit = None;
            while nonce != end {
                if target.is_met_by(&hasher.hash(nonce)) {
                    hit = Some(nonce);
                    break;
                }
                nonce = nonce.wrapping_add(1);
            }
            tried += BATCH;
            total += BATCH;
            shared.hashes.store(total, Ordering::Relaxed);
            let now = Instant::now();
            samples.push_back((now, total));
            while samples.front().is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW) {
                samples.pop_front();
            }
            if let Some((at, hashes)) = samples.front()
                && now > *at
            {
                let rate = (total - hashes) as f64 / now.duration_since(*at).as_secs_f64();
                shared.rate.store(rate as u64, Ordering::Relaxed);
            }
            if let Some(nonce) = hit {
                break Some(nonce);
            }
            if let Some(limit) = limit.filter(|limit| *limit > 0) {
                // Sleep until this job's hashes are within the limit.
                let due = Duration::from_secs_f64(tried as f64 / limit as f64);
                let elapsed = started.elapsed();
                if due > elapsed {
                    std::thread::sleep((due - elapsed).min(Duration::from_millis(100)));
                }
            }
        };
        if let Some(nonce) = answer {
            header.proof = ConsensusProof::Pow { target, nonce };
            let mut current = lock(&shared.job);
            if current.as_ref().is_some_and(|(number, _)| *number == job) {
                *current = None;
            }
            drop(current);
            let _ = found.send(Found { job, header });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::{Address, BlockHash, Hash, Height, PublicKey, Target, TimestampMs};

    fn template(difficulty: u128) -> Header {
        Header {
            height: Height(1),
            parent: BlockHash(Hash([1; 32])),
            timestamp: TimestampMs(5),
            proposer: Address(PublicKey([2; 32])),
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            proof: ConsensusProof::Pow { target: Target::from_difficulty(difficulty), nonce: 0 },
        }
    }

    #[test]
    fn the_miner_finds_a_proof_and_a_replaced_job_is_not_answered() {
        let (sender, mut found) = mpsc::unbounded_channel();
        let mut miner = Miner::start(None, sender).unwrap();
        // A job it cannot finish in the time given, replaced by an easy one.
        let hard = miner.mine(template(1 << 60));
        std::thread::sleep(Duration::from_millis(20));
        assert!(miner.stats().searching);
        let easy = miner.mine(template(1_000));
        assert!(easy > hard);
        let answer = found.blocking_recv().unwrap();
        assert_eq!(answer.job, easy);
        assert!(consensus::pow::meets_target(&answer.header));
        assert_eq!(answer.header.hash(), template(1_000).hash());
        assert!(!miner.stats().searching, "a found job is done");
        assert!(miner.stats().hashes > 0);
        miner.stop_search();
        miner.shutdown();
        assert!(found.try_recv().is_err(), "nothing for the hard job");
    }

    #[test]
    fn a_limit_holds_the_hash_rate_down() {
        let (sender, _found) = mpsc::unbounded_channel();
        let mut miner = Miner::start(Some(20_000), sender).unwrap();
        miner.mine(template(1 << 60));
        std::thread::sleep(Duration::from_millis(1_500));
        let stats = miner.stats();
        miner.shutdown();
        // 20,000 a second, a batch of 1,024 at a time: never much above the limit.
        assert!(stats.hashes <= 40_000, "{} hashes in 1.5 s", stats.hashes);
        assert!(stats.hash_rate > 5_000 && stats.hash_rate <= 30_000, "{}", stats.hash_rate);
    }
}
