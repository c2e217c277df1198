//! A CreateTopics or CreatePartitions that fails partway leaves nothing behind (issue 12,
//! defect 4), and partition directories the metadata does not name — leftovers of a crash
//! in the middle of a creation or deletion — are set aside at start-up.
//!
//! The failure is provoked by lowering the running broker's descriptor limit
//! (`prlimit --pid`): every partition keeps its segment files open, so opening partitions
//! fails with EMFILE after a few dozen.

mod common;

use std::path::Path;
use std::process::Command;

use arus_client::Client;
use arus_records::{BatchBuilder, Compression};
use common::BrokerProcess;

/// Sets the soft RLIMIT_NOFILE of a running process (the hard limit stays, so it can be
/// raised again without privileges); false if not permitted.
fn set_nofile(pid: u32, soft: u64) -> bool {
    Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={soft}:"))
        .status()
        .is_ok_and(|s| s.success())
}

/// The soft RLIMIT_NOFILE of a running process.
fn nofile(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

/// Names of the entries of `dir` that start with `prefix`, sorted.
fn entries(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

fn one_record() -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1);
    b.push(1, None, Some(b"x"), &[]);
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_create_topics_and_create_partitions_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let pid = broker.pid();
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("warm", 1, 1, &[]).await.unwrap();
    let soft = nofile(pid);
    assert!(
        soft > 2000,
        "the broker's descriptor limit {soft} is too low for this test"
    );
    if !set_nofile(pid, open_fds(pid) + 150) {
        eprintln!("SKIPPED: cannot lower the broker's RLIMIT_NOFILE with prlimit");
        return;
    }
    let err = client.create_topic("big", 300, 1, &[]).await.unwrap_err();
    eprintln!("CreateTopics failed as intended: {err}");
    assert_eq!(entries(&data, "big"), Vec::<String>::new());

    let err = client.create_partitions("warm", 300).await.unwrap_err();
    eprintln!("CreatePartitions failed as intended: {err}");
    assert_eq!(entries(&data, "warm"), vec!["warm-0".to_string()]);
    assert_eq!(client.partition_count("warm").await.unwrap(), 1);
    assert!(client.partition_count("big").await.is_err());

    // Nothing of the failed requests was durable: a restart (which reads the metadata
    // file, or the metadata log of the one-node cluster) finds the topics as before.
    assert!(set_nofile(pid, soft));
    drop(client);
    broker.kill9();
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(client.partition_count("warm").await.unwrap(), 1);
    assert!(client.partition_count("big").await.is_err());
    assert_eq!(entries(&data, "big"), Vec::<String>::new());

    // With descriptors again, the same requests succeed.
    client.create_topic("big", 300, 1, &[]).await.unwrap();
    client.create_partitions("warm", 300).await.unwrap();
    assert_eq!(entries(&data, "big").len(), 300);
    assert_eq!(entries(&data, "warm").len(), 300);
    assert_eq!(
        client
            .produce("big", 299, one_record(), -1, 10_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        client
            .produce("warm", 299, one_record(), -1, 10_000)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_directories_missing_from_the_metadata_are_set_aside_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("kept", 2, 1, &[]).await.unwrap();
    client
        .produce("kept", 0, one_record(), -1, 10_000)
        .await
        .unwrap();
    drop(client);
    broker.kill9();

    // As if a crash came in the middle of a creation: directories written, metadata (the
    // file, or the metadata log of the one-node cluster) not. Written beside the broker's
    // files rather than by editing them, so that both stores are exercised alike.
    for stray in ["kept-2", "ghost-0", "ghost-1"] {
        std::fs::create_dir(data.join(stray)).unwrap();
        std::fs::copy(
            data.join("kept-0/00000000000000000000.log"),
            data.join(stray).join("00000000000000000000.log"),
        )
        .unwrap();
    }
    // Not partition directories: left alone.
    std::fs::create_dir(data.join("notes")).unwrap();
    std::fs::create_dir(data.join("kept-x")).unwrap();

    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let ghost = entries(&data, "ghost");
    assert_eq!(ghost.len(), 2, "{ghost:?}");
    assert!(ghost.iter().all(|n| n.ends_with("-stray")), "{ghost:?}");
    let kept = entries(&data, "kept");
    assert_eq!(kept.len(), 4, "{kept:?}");
    assert!(kept.contains(&"kept-0".to_string()) && kept.contains(&"kept-1".to_string()));
    assert!(kept.contains(&"kept-x".to_string()));
    assert!(
        kept.iter()
            .any(|n| n.starts_with("kept-2.") && n.ends_with("-stray"))
    );
    assert!(data.join("notes").is_dir());

    // The topic can be created again, empty; the stray data is not in it.
    client.create_topic("ghost", 2, 1, &[]).await.unwrap();
    let fetched = client.fetch("ghost", 0, 0, 0, 1 << 20).await.unwrap();
    assert_eq!(fetched.high_watermark, 0);
    client.create_partitions("kept", 3).await.unwrap();
    let fetched = client.fetch("kept", 2, 0, 0, 1 << 20).await.unwrap();
    assert_eq!(fetched.high_watermark, 0);
    // And a restart finds no stray beyond those already set aside.
    drop(client);
    broker.kill9();
    let _broker = BrokerProcess::start_in(&data, &[]);
    assert_eq!(entries(&data, "ghost").len(), 4);
    assert_eq!(entries(&data, "kept").len(), 5);
}
