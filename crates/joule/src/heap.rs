//! The node process's heap. glibc's allocator suits short programs; a node runs for months
//! through bursts of work (a large block, a catch-up, an ingest) and should give back what a
//! burst used once it is over.
//!
//! - At most [`ARENAS`] arenas. glibc gives a thread that meets contention an arena of its own,
//!   up to eight per core, and memory freed into an arena stays with it: a node's verification,
//!   runtime and store threads spread a burst's garbage over many arenas.
//! - Every [`TRIM_EVERY`], free pages go back to the system (`malloc_trim`).
//!
//! One validator after two million transfers among 200,000 accounts (`docs/benchmarks.md`,
//! "Memory"): 677 MB resident with glibc's defaults, 347 MB with two arenas; what remains live
//! is about 160 MB.

use std::time::Duration;

/// The most arenas the node's threads share.
pub(crate) const ARENAS: i32 = 2;

/// How often free memory is handed back.
pub(crate) const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Limits the arenas. Call before any thread starts.
pub(crate) fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a parameter of the allocator; called before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Hands free memory back to the system every [`TRIM_EVERY`], for as long as the runtime runs.
pub(crate) async fn trim_periodically() {
    let mut ticks = tokio::time::interval(TRIM_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let started = std::time::Instant::now();
        // Off the runtime's workers: a trim walks the heap's free lists.
        if tokio::task::spawn_blocking(trim).await.is_err() {
            return;
        }
        tracing::debug!(took_ms = started.elapsed().as_millis() as u64, "heap trimmed");
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` is thread-safe and only returns free pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
