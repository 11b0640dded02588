//! Deterministic simulation of networks of nodes (the node's real core and the Tendermint or
//! the Raft engine) over thousands of seeds (see `testkit::sim`): agreement, validity,
//! liveness after the faults, and determinism, and for Raft one leader per term, log matching
//! and leader completeness; and every kind of fault and every rare path of the core (a
//! proposal held during a write, a decided block whose body is missing, a sync batch cut at a
//! validator change, …) exercised by some seed.
//!
//! - `JOULE_SIM_SEEDS` (default 10,000) BFT seeds and `JOULE_RAFT_SIM_SEEDS` (default 2,000)
//!   Raft seeds from `JOULE_SIM_SEED_START` (default 0), split over the available cores;
//! - `JOULE_SIM_SEED=<n>` (`JOULE_RAFT_SIM_SEED=<n>`) replays one BFT (Raft) seed with a
//!   verbose trace on stderr.

use primitives::EngineKind;
use std::{
    sync::{Arc, Mutex},
    time::Instant,
};
use testkit::sim::{self, Coverage, Failure, KINDS};

/// One seed in this many is run twice and must give the same trace digest.
const DETERMINISM_SAMPLE: u64 = 50;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        value
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number"))
    })
}

/// Runs `seed` of `engine`'s scenarios.
fn run(engine: EngineKind, seed: u64, verbose: bool) -> Result<sim::Outcome, Failure> {
    match engine {
        EngineKind::Raft => sim::run_raft(seed, verbose),
        EngineKind::Pow(_) => sim::run_pow(seed, verbose),
        _ => sim::run(seed, verbose),
    }
}

/// Runs `seed`, and for a sample of seeds runs it again to compare the digests.
fn check_seed(
    engine: EngineKind,
    seed: u64,
    verbose: bool,
    always_twice: bool,
) -> Result<sim::Outcome, Failure> {
    let outcome = run(engine, seed, verbose)?;
    if always_twice || seed.is_multiple_of(DETERMINISM_SAMPLE) {
        let again = run(engine, seed, false)?;
        if again.digest != outcome.digest {
            return Err(Failure {
                seed,
                replay_with: sim::replay_variable(&engine),
                at_ms: outcome.end_ms,
                message: format!(
                    "determinism: the same seed gave trace digests {:?} and {:?}",
                    outcome.digest, again.digest
                ),
            });
        }
    }
    Ok(outcome)
}

#[test]
fn simulated_networks_agree_stay_valid_and_recover() {
    run_seeds(EngineKind::Bft, "JOULE_SIM_SEED", "JOULE_SIM_SEEDS", 10_000);
}

/// Raft networks under the same fault model, without byzantine validators: also one leader
/// per term, log matching and leader completeness.
#[test]
fn simulated_raft_networks_agree_elect_one_leader_per_term_and_recover() {
    run_seeds(EngineKind::Raft, "JOULE_RAFT_SIM_SEED", "JOULE_RAFT_SIM_SEEDS", 2_000);
}

/// Proof-of-work networks under the same network faults and crashes, with a miner of a large
/// share of the hash power, a selfish miner that publishes a private branch late, and the hash
/// power jumping tenfold up and down: forks happen and resolve, no reorg deeper than the
/// maximum, every node's state a replay of its chain, no transaction of an orphaned block lost,
/// the block interval back at the target after the jumps.
#[test]
fn simulated_proof_of_work_networks_fork_converge_and_keep_their_transactions() {
    run_seeds(
        EngineKind::Pow(sim::pow::params()),
        "JOULE_POW_SIM_SEED",
        "JOULE_POW_SIM_SEEDS",
        2_000,
    );
}

/// Replays the seed `replay` names, or runs the number of seeds `seeds` names (`default`).
fn run_seeds(engine: EngineKind, replay: &str, seeds: &str, default: u64) {
    if let Some(seed) = env_u64(replay) {
        match check_seed(engine, seed, true, true) {
            Ok(outcome) => eprintln!(
                "seed {seed}: ok, min honest height {}, ended at {} ms, recovered {} ms after the faults, digest {:?}\n{}",
                outcome.min_height,
                outcome.end_ms,
                outcome.recovery_ms,
                outcome.digest,
                outcome.coverage.render(engine)
            ),
            Err(failure) => panic!("{failure}"),
        }
        return;
    }
    let count = env_u64(seeds).unwrap_or(default);
    let start = env_u64("JOULE_SIM_SEED_START").unwrap_or(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let started = Instant::now();
    let coverage = Arc::new(Mutex::new(Coverage::default()));
    let failures = Arc::new(Mutex::new(Vec::<Failure>::new()));
    let slowest_recovery = Arc::new(Mutex::new((0u64, 0u64)));
    // Proof of work: the largest deviation of the block interval after a jump, with its seed,
    // and how many were measured.
    let deviations = Arc::new(Mutex::new((0f64, 0u64, 0u64)));
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let coverage = Arc::clone(&coverage);
            let failures = Arc::clone(&failures);
            let slowest_recovery = Arc::clone(&slowest_recovery);
            let deviations = Arc::clone(&deviations);
            std::thread::spawn(move || {
                let mut local = Coverage::default();
                let mut slowest = (0, 0);
                let mut seed = start + worker;
                while seed < start + count {
                    match check_seed(engine, seed, false, false) {
                        Ok(outcome) => {
                            local.add_run(&outcome.coverage);
                            slowest = slowest.max((outcome.recovery_ms, seed));
                            let mut largest = deviations.lock().expect("not poisoned");
                            for deviation in &outcome.difficulty_deviations {
                                largest.2 += 1;
                                if deviation.abs() > largest.0.abs() {
                                    (largest.0, largest.1) = (*deviation, seed);
                                }
                            }
                        }
                        Err(failure) => {
                            eprintln!("{failure}");
                            failures.lock().expect("not poisoned").push(failure);
                        }
                    }
                    seed += threads;
                }
                let mut total = coverage.lock().expect("not poisoned");
                for (sum, count) in total.counts.iter_mut().zip(local.counts) {
                    *sum += count;
                }
                let mut shared = slowest_recovery.lock().expect("not poisoned");
                *shared = (*shared).max(slowest);
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a simulation worker panicked");
    }
    let elapsed = started.elapsed();
    let (deviation, deviation_seed, measured) = *deviations.lock().expect("not poisoned");
    if measured > 0 {
        eprintln!(
            "{engine:?}: {measured} block-interval windows after hash-power jumps; the largest deviation from the target {:+.1} % (seed {deviation_seed})",
            deviation * 100.0
        );
    }
    let coverage = coverage.lock().expect("not poisoned").clone();
    let (recovery_ms, recovery_seed) = *slowest_recovery.lock().expect("not poisoned");
    eprintln!(
        "{engine:?}: {count} seeds from {start} in {:.1} s ({:.0} seeds/s on {threads} threads); slowest recovery after the faults {recovery_ms} ms (seed {recovery_seed}); seeds exercising each fault:\n{}",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        coverage.render(engine)
    );
    let mut failures = failures.lock().expect("not poisoned").clone();
    failures.sort_by_key(|failure| failure.seed);
    if let Some(first) = failures.first() {
        let seeds: Vec<u64> = failures.iter().map(|failure| failure.seed).collect();
        panic!("{} of {count} seeds failed ({seeds:?}); the first:\n{first}", failures.len());
    }
    // Enough seeds must, together, exercise every kind of fault.
    if count >= 1000 {
        let missing = coverage.missing(engine);
        assert!(missing.is_empty(), "no {engine:?} seed exercised {missing:?} (of {KINDS:?})");
    }
}

/// The first seed (of the first 1,000) whose run takes the core's path `kind` (one of
/// [`KINDS`]); its run must pass and replay to the same trace digest.
fn first_seed_taking(kind: &str) -> u64 {
    let index = KINDS.iter().position(|known| *known == kind).expect("a kind of sim::KINDS");
    for seed in 0..1000 {
        let outcome = check_seed(EngineKind::Bft, seed, false, false)
            .unwrap_or_else(|failure| panic!("{failure}"));
        if outcome.coverage.counts[index] > 0 {
            check_seed(EngineKind::Bft, seed, false, true)
                .unwrap_or_else(|failure| panic!("{failure}"));
            eprintln!(
                "seed {seed} takes the path \"{kind}\" {} times",
                outcome.coverage.counts[index]
            );
            return seed;
        }
    }
    panic!("none of the first 1,000 seeds takes the path \"{kind}\"");
}

#[test]
fn a_proposal_that_comes_during_a_write_is_held_and_decided_after_it() {
    first_seed_taking("held during a write");
}

#[test]
fn a_decided_block_whose_body_is_missing_is_fetched_from_peers() {
    first_seed_taking("decided without the block");
}

#[test]
fn a_sync_batch_is_cut_at_a_validator_change() {
    first_seed_taking("sync cut at a validator change");
}
