//! The simulated cluster (see the crate header): random schedules of kills, restarts,
//! partitions, lossy links and client writes, each followed by a check of Raft's safety
//! properties as seen from outside openraft.

mod app;
mod cluster;
mod network;
mod schedule;

use std::time::Instant;

use crate::runtime::seed_thread_rng;

/// Schedules run by `cargo test` (split over two tests, so over both cores).
const CI_SCHEDULES: u64 = 1_000;

fn schedules() -> u64 {
    std::env::var("ARUS_RAFT_SIM_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_SCHEDULES)
}

fn replay_seed() -> Option<u64> {
    std::env::var("ARUS_RAFT_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
}

fn run_seed(seed: u64) -> Result<schedule::Summary, String> {
    seed_thread_rng(Some(seed));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let result = runtime.block_on(schedule::run(seed));
    drop(runtime);
    seed_thread_rng(None);
    result
}

fn replay_hint(seed: u64) -> String {
    format!("replay: ARUS_RAFT_SIM_SEED={seed} cargo test -p arus-raft sim -- --nocapture")
}

fn run_share(share: u64, of: u64) {
    if let Some(seed) = replay_seed() {
        if share == 0 {
            // A replayed schedule can show openraft's own log: RUST_LOG=openraft=debug.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
            match run_seed(seed) {
                Ok(summary) => println!("seed {seed}: {summary:?}"),
                Err(failure) => panic!(
                    "simulated cluster failed with seed {seed}: {failure}\n{}",
                    replay_hint(seed)
                ),
            }
        }
        return;
    }
    let started = Instant::now();
    let mut total = schedule::Summary::default();
    let mut failures = Vec::new();
    let count = schedules();
    // Every schedule runs, so a soak reports all failing seeds, not just the first.
    for seed in (share..count).step_by(of as usize) {
        match run_seed(seed) {
            Ok(summary) => total.add(&summary),
            Err(failure) => {
                eprintln!(
                    "simulated cluster failed with seed {seed}: {failure}\n{}",
                    replay_hint(seed)
                );
                failures.push(seed);
            }
        }
    }
    println!(
        "simulated cluster, share {share}/{of} of {count} schedules in {:?}: {total:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "simulated cluster failed with seeds {failures:?} (messages above); {}",
        replay_hint(failures[0])
    );
}

#[test]
fn simulated_cluster_schedules_first_half() {
    run_share(0, 2);
}

#[test]
fn simulated_cluster_schedules_second_half() {
    run_share(1, 2);
}
