//! JBOD (issue 13, item 4): every entry of `log.dirs` holds partitions; DescribeLogDirs,
//! AlterReplicaLogDirs (moves under load and across a crash) and a failing directory that
//! goes offline while the others keep serving.
//!
//! The failure tests put one directory on a small ext4 image mounted through a loop device
//! and shut that file system down with `EXT4_IOC_SHUTDOWN` (every later I/O on it fails
//! with EIO, deterministically). Mounting needs root (CI runs as root); without it those
//! tests print why they are skipped and pass.

#![allow(clippy::needless_update)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arus_client::Client;
use arus_protocol::ApiKey;
use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use arus_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use arus_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult;
use arus_protocol::messages::{
    AlterReplicaLogDirsRequest, DescribeLogDirsRequest, Request, Response,
};
use arus_records::{BatchBuilder, Compression};
use common::BrokerProcess;

/// Starts the binary with every directory of `dirs` in `log.dirs`.
fn start(dirs: &[PathBuf], overrides: &[&str]) -> BrokerProcess {
    let ready = dirs[0].with_extension("ready");
    let _ = fs::remove_file(&ready);
    let joined = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new(common::binary());
    cmd.arg("serve")
        .arg("--log-dirs")
        .arg(&joined)
        .arg("--listeners")
        .arg("PLAINTEXT://127.0.0.1:0")
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for o in overrides {
        cmd.arg("--override").arg(o);
    }
    let child = cmd.spawn().expect("spawning arus");
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(text) = fs::read_to_string(&ready)
            && text.ends_with('\n')
        {
            break text.trim().to_string();
        }
        assert!(Instant::now() < deadline, "broker did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    };
    BrokerProcess {
        child,
        addr,
        data_dir: dirs[0].clone(),
    }
}

fn dirs_in(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| root.join(format!("d{i}"))).collect()
}

fn batch(first: u64, n: u64, pad: usize) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 0);
    for i in first..first + n {
        let mut v = format!("v{i}-").into_bytes();
        v.resize(pad, b'x');
        b.push(0, None, Some(&v), &[]);
    }
    b.build().unwrap()
}

/// Every record of a partition: checks each value names its offset; returns the count.
async fn read_all(client: &mut Client, topic: &str, partition: i32) -> i64 {
    let mut offset = 0;
    loop {
        let fetched = client
            .fetch(topic, partition, offset, 0, 4 << 20)
            .await
            .unwrap();
        if fetched.records.is_empty() {
            assert_eq!(offset, fetched.high_watermark);
            return offset;
        }
        for r in &fetched.records {
            assert_eq!(r.offset, offset, "records are contiguous");
            let prefix = format!("v{}-", r.offset);
            assert!(r.value.as_ref().unwrap().starts_with(prefix.as_bytes()));
            offset += 1;
        }
    }
}

/// Which directories hold `<topic>-<p>` (as current replicas).
fn holders(dirs: &[PathBuf], topic: &str, p: i32) -> Vec<usize> {
    (0..dirs.len())
        .filter(|&i| dirs[i].join(format!("{topic}-{p}")).is_dir())
        .collect()
}

async fn describe(
    client: &mut Client,
    topics: Option<Vec<(&str, Vec<i32>)>>,
    version: i16,
) -> Vec<DescribeLogDirsResult> {
    let request = DescribeLogDirsRequest {
        topics: topics.map(|t| {
            t.into_iter()
                .map(|(name, partitions)| DescribableLogDirTopic {
                    topic: name.into(),
                    partitions,
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    };
    match client
        .send_with_version(Request::DescribeLogDirs(request), version)
        .await
        .unwrap()
    {
        Response::DescribeLogDirs(r) => {
            assert_eq!(r.error_code, 0);
            r.results
        }
        other => panic!("{other:?}"),
    }
}

async fn alter(client: &mut Client, dir: &str, topic: &str, partitions: Vec<i32>) -> Vec<i16> {
    let request = AlterReplicaLogDirsRequest {
        dirs: vec![AlterReplicaLogDir {
            path: dir.into(),
            topics: vec![AlterReplicaLogDirTopic {
                name: topic.into(),
                partitions,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match client
        .send(Request::AlterReplicaLogDirs(request))
        .await
        .unwrap()
    {
        Response::AlterReplicaLogDirs(r) => r.results[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn abs(p: &Path) -> String {
    p.display().to_string()
}

/// Waits (bounded) until `done` holds of a DescribeLogDirs answer.
async fn wait_describe(
    client: &mut Client,
    what: &str,
    mut done: impl FnMut(&[DescribeLogDirsResult]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = describe(client, None, 4).await;
        if done(&r) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has(results: &[DescribeLogDirsResult], dir: &Path, topic: &str, p: i32, future: bool) -> bool {
    results.iter().any(|r| {
        r.log_dir == abs(dir)
            && r.topics.iter().any(|t| {
                t.name == topic
                    && t.partitions
                        .iter()
                        .any(|x| x.partition_index == p && x.is_future_key == future)
            })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_every_directory_and_are_found_after_restart() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs_in(root.path(), 3);
    let broker = start(&dirs, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("spread", 6, 1, &[]).await.unwrap();
    client.create_topic("more", 3, 1, &[]).await.unwrap();
    // Kafka's nextLogDirs: fewest partitions first, so 9 partitions land 3 per directory.
    let mut per_dir = [0; 3];
    for (topic, n) in [("spread", 6), ("more", 3)] {
        for p in 0..n {
            let h = holders(&dirs, topic, p);
            assert_eq!(h.len(), 1, "{topic}-{p} in {h:?}");
            per_dir[h[0]] += 1;
            client
                .produce(topic, p, batch(0, 10 + p as u64, 50), -1, 10_000)
                .await
                .unwrap();
        }
    }
    assert_eq!(per_dir, [3, 3, 3]);
    // Broker-wide files live in the metadata directory (the first) only: the metadata file
    // of the file-backed broker, or the metadata log of the one-node cluster.
    let metadata_store =
        |d: &Path| d.join("arus-metadata.json").exists() || d.join("__cluster_metadata-0").is_dir();
    assert!(metadata_store(&dirs[0]));
    assert!(!metadata_store(&dirs[1]) && !metadata_store(&dirs[2]));
    for d in &dirs {
        assert!(d.join(".lock").exists(), "every directory is locked");
    }
    broker.stop();

    let broker = start(&dirs, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    for (topic, n) in [("spread", 6), ("more", 3)] {
        for p in 0..n {
            assert_eq!(read_all(&mut client, topic, p).await, 10 + p as i64);
        }
    }
    broker.stop();
}

#[test]
fn a_partition_in_two_directories_stops_the_start() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs_in(root.path(), 2);
    let broker = start(&dirs, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = Client::connect(&broker.addr).await.unwrap();
        client.create_topic("twice", 1, 1, &[]).await.unwrap();
    });
    broker.stop();
    let at = holders(&dirs, "twice", 0)[0];
    fs::create_dir(dirs[1 - at].join("twice-0")).unwrap();
    let out = Command::new(common::binary())
        .arg("serve")
        .arg("--log-dirs")
        .arg(format!("{},{}", abs(&dirs[0]), abs(&dirs[1])))
        .arg("--listeners")
        .arg("PLAINTEXT://127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Duplicate log directories for twice-0 are found in both"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_log_dirs_reports_every_directory_and_partition() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs_in(root.path(), 2);
    let broker = start(&dirs, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(
        client.broker_versions(ApiKey::DescribeLogDirs),
        Some((1, 5))
    );
    assert_eq!(
        client.broker_versions(ApiKey::AlterReplicaLogDirs),
        Some((1, 2))
    );
    client.create_topic("desc", 2, 1, &[]).await.unwrap();
    client
        .produce("desc", 0, batch(0, 100, 100), -1, 10_000)
        .await
        .unwrap();
    client
        .produce("desc", 1, batch(0, 7, 100), -1, 10_000)
        .await
        .unwrap();
    for version in 1..=5 {
        let all = describe(&mut client, None, version).await;
        assert_eq!(
            all.iter().map(|r| r.log_dir.clone()).collect::<Vec<_>>(),
            vec![abs(&dirs[0]), abs(&dirs[1])]
        );
        for r in &all {
            assert_eq!(r.error_code, 0);
            if version >= 4 {
                assert!(r.total_bytes > 0 && r.usable_bytes > 0);
                assert!(r.usable_bytes <= r.total_bytes);
            } else {
                assert_eq!(
                    (r.total_bytes, r.usable_bytes),
                    (-1, -1),
                    "not in v{version}"
                );
            }
        }
        for p in 0..2 {
            let at = holders(&dirs, "desc", p)[0];
            let part = all[at]
                .topics
                .iter()
                .find(|t| t.name == "desc")
                .unwrap()
                .partitions
                .iter()
                .find(|x| x.partition_index == p)
                .unwrap()
                .clone();
            // The size is the segments' bytes on disk.
            let on_disk: u64 = fs::read_dir(dirs[at].join(format!("desc-{p}")))
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .map(|e| e.metadata().unwrap().len())
                .sum();
            assert_eq!(part.partition_size, on_disk as i64);
            assert!(part.partition_size > 0);
            // One replica: the high watermark is the log end, so no lag.
            assert_eq!(part.offset_lag, 0);
            assert!(!part.is_future_key);
        }
    }
    // Named partitions only; unknown topics and partitions are simply absent.
    let some = describe(
        &mut client,
        Some(vec![("desc", vec![1, 9]), ("nope", vec![0])]),
        5,
    )
    .await;
    assert_eq!(some.len(), 2);
    let listed: Vec<(String, i32)> = some
        .iter()
        .flat_map(|r| &r.topics)
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.clone(), p.partition_index))
        })
        .collect();
    assert_eq!(listed, vec![("desc".to_string(), 1)]);
    // An empty list asks for nothing: every directory, no topics.
    let none = describe(&mut client, Some(vec![]), 5).await;
    assert!(
        none.iter()
            .all(|r| r.error_code == 0 && r.topics.is_empty())
    );
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_replica_log_dirs_errors_as_kafka() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs_in(root.path(), 2);
    let broker = start(&dirs, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("errs", 1, 1, &[]).await.unwrap();
    let at = holders(&dirs, "errs", 0)[0];
    assert_eq!(
        alter(&mut client, "/no/such/dir", "errs", vec![0]).await,
        vec![ErrorCode::LogDirNotFound.code()]
    );
    // Kafka matches the absolute path as spelled: a relative one is not found.
    assert_eq!(
        alter(&mut client, "d0", "errs", vec![0]).await,
        vec![ErrorCode::LogDirNotFound.code()]
    );
    assert_eq!(
        alter(&mut client, &abs(&dirs[0]), "unknown", vec![0]).await,
        vec![ErrorCode::UnknownTopicOrPartition.code()]
    );
    assert_eq!(
        alter(&mut client, &abs(&dirs[0]), "errs", vec![5]).await,
        vec![ErrorCode::UnknownTopicOrPartition.code()]
    );
    // Already there: nothing to do.
    assert_eq!(
        alter(&mut client, &abs(&dirs[at]), "errs", vec![0]).await,
        vec![0]
    );
    assert_eq!(holders(&dirs, "errs", 0), vec![at]);
    broker.stop();
}

/// A producer keeps writing (acks=all) while the partition moves; every acknowledged record
/// is readable afterwards, from the new directory, also after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_under_load_without_losing_an_acknowledged_record() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs_in(root.path(), 2);
    // Kafka's smallest segment: the move copies several.
    let broker = start(&dirs, &["log.segment.bytes=1048576"]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("moving", 1, 1, &[]).await.unwrap();
    let from = holders(&dirs, "moving", 0)[0];
    let to = 1 - from;
    for k in 0..50 {
        client
            .produce("moving", 0, batch(k * 20, 20, 3000), -1, 10_000)
            .await
            .unwrap();
    }
    let addr = broker.addr.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let producer = tokio::spawn(async move {
        let mut client = Client::connect(&addr).await.unwrap();
        let mut next = 1000u64;
        loop {
            if stop_rx.try_recv().is_ok() {
                return next;
            }
            let base = client
                .produce("moving", 0, batch(next, 10, 200), -1, 10_000)
                .await
                .expect("every produce during the move succeeds");
            assert_eq!(base, next as i64);
            next += 10;
        }
    });
    assert_eq!(
        alter(&mut client, &abs(&dirs[to]), "moving", vec![0]).await,
        vec![0]
    );
    wait_describe(&mut client, "the move to finish", |r| {
        has(r, &dirs[to], "moving", 0, false) && !has(r, &dirs[to], "moving", 0, true)
    })
    .await;
    stop_tx.send(()).unwrap();
    let acked = producer.await.unwrap();
    assert!(acked > 1000, "the producer wrote during the move");
    assert_eq!(holders(&dirs, "moving", 0), vec![to]);
    let leftovers: Vec<_> = fs::read_dir(&dirs[from])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("moving-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let end = read_all_upto(&mut client, "moving", acked as i64).await;
    assert!(end >= acked as i64);
    broker.stop();

    let broker = start(&dirs, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let end = read_all_upto(&mut client, "moving", acked as i64).await;
    assert!(end >= acked as i64);
    assert_eq!(holders(&dirs, "moving", 0), vec![to]);
    broker.stop();
}

/// Checks records `[0, upto)` carry their offsets (later ones may be the 1-record probe).
async fn read_all_upto(client: &mut Client, topic: &str, upto: i64) -> i64 {
    let mut offset = 0;
    while offset < upto {
        let fetched = client.fetch(topic, 0, offset, 0, 4 << 20).await.unwrap();
        assert!(!fetched.records.is_empty(), "offset {offset} is missing");
        for r in fetched.records.iter().filter(|r| r.offset < upto) {
            assert_eq!(r.offset, offset);
            let prefix = format!("v{}-", r.offset);
            assert!(r.value.as_ref().unwrap().starts_with(prefix.as_bytes()));
            offset += 1;
        }
        if fetched.next_offset >= fetched.high_watermark {
            return fetched.high_watermark;
        }
    }
    offset
}

/// kill -9 while a (throttled) move is copying: the partition restarts whole in its old
/// directory, the unfinished copy is gone, and a new move then completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_move_leaves_the_partition_whole_in_one_place() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs_in(root.path(), 2);
    // 100 KB/s: copying ~1 MB takes ~10 s, so the crash hits mid-copy.
    let throttled = ["replica.alter.log.dirs.io.max.bytes.per.second=100000"];
    let broker = start(&dirs, &throttled);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("crash", 1, 1, &[]).await.unwrap();
    let from = holders(&dirs, "crash", 0)[0];
    let to = 1 - from;
    for k in 0..50 {
        client
            .produce("crash", 0, batch(k * 20, 20, 1000), -1, 10_000)
            .await
            .unwrap();
    }
    assert_eq!(
        alter(&mut client, &abs(&dirs[to]), "crash", vec![0]).await,
        vec![0]
    );
    // Copying has begun once the future replica holds some bytes.
    wait_describe(&mut client, "the copy to start", |r| {
        r.iter().filter(|d| d.log_dir == abs(&dirs[to])).any(|d| {
            d.topics.iter().any(|t| {
                t.partitions
                    .iter()
                    .any(|p| p.is_future_key && p.partition_size > 0)
            })
        })
    })
    .await;
    let futures: Vec<_> = fs::read_dir(&dirs[to])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("crash-0.") && n.ends_with("-future"))
        .collect();
    assert_eq!(futures.len(), 1, "the copy is under way");
    broker.kill9();

    let broker = start(&dirs, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(holders(&dirs, "crash", 0), vec![from]);
    assert!(
        !dirs[to].join(&futures[0]).exists(),
        "abandoned copy removed"
    );
    assert_eq!(read_all(&mut client, "crash", 0).await, 1000);
    // The move can be asked again and completes.
    assert_eq!(
        alter(&mut client, &abs(&dirs[to]), "crash", vec![0]).await,
        vec![0]
    );
    wait_describe(&mut client, "the move to finish", |r| {
        has(r, &dirs[to], "crash", 0, false)
    })
    .await;
    assert_eq!(read_all(&mut client, "crash", 0).await, 1000);
    broker.stop();
}

/// An ext4 image on a loop device, unmounted (lazily) on drop.
struct Ext4 {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ext4 {
    fn mount() -> Option<Ext4> {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("image");
        let mount_point = dir.path().join("mnt");
        fs::create_dir(&mount_point).unwrap();
        fs::File::create(&image).unwrap().set_len(32 << 20).unwrap();
        let ok = |c: &mut Command| c.output().map(|o| (o.status.success(), o));
        match ok(Command::new("mkfs.ext4").arg("-q").arg(&image)) {
            Ok((true, _)) => {}
            other => {
                eprintln!("SKIPPED: cannot make an ext4 image: {other:?}");
                return None;
            }
        }
        match ok(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount_point))
        {
            Ok((true, _)) => Some(Ext4 {
                mount_point,
                _dir: dir,
            }),
            other => {
                eprintln!("SKIPPED: cannot mount a loop device (needs root): {other:?}");
                None
            }
        }
    }

    /// `EXT4_IOC_SHUTDOWN` (NOLOGFLUSH): every later I/O on the file system fails with EIO.
    fn fail(&self) {
        let dir = fs::File::open(&self.mount_point).unwrap();
        let flags: u32 = 2;
        const EXT4_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587D;
        // SAFETY: the ioctl reads one u32 through the pointer.
        let rc = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&dir),
                EXT4_IOC_SHUTDOWN,
                &flags as *const u32,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_directory_goes_offline_while_the_others_keep_serving() {
    let Some(disk) = Ext4::mount() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    // The metadata directory (first) is healthy; the second fails.
    let dirs = vec![root.path().join("good"), disk.mount_point.join("data")];
    let broker = start(&dirs, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("mixed", 2, 1, &[]).await.unwrap();
    let good = (0..2)
        .find(|&p| holders(&dirs, "mixed", p) == vec![0])
        .unwrap();
    let bad = 1 - good;
    assert_eq!(holders(&dirs, "mixed", bad), vec![1]);
    for p in 0..2 {
        client
            .produce("mixed", p, batch(0, 10, 100), -1, 10_000)
            .await
            .unwrap();
    }
    disk.fail();
    let storage = Some(ErrorCode::KafkaStorageError);
    let err = client
        .produce("mixed", bad, batch(10, 10, 100), -1, 10_000)
        .await
        .unwrap_err();
    assert_eq!(err.code(), storage, "{err}");
    // Offline from now on, whatever the request.
    let err = client.fetch("mixed", bad, 0, 0, 1 << 20).await.unwrap_err();
    assert_eq!(err.code(), storage, "{err}");
    let err = client.list_offset("mixed", bad, -1).await.unwrap_err();
    assert_eq!(err.code(), storage, "{err}");
    // The healthy directory keeps serving.
    assert_eq!(
        client
            .produce("mixed", good, batch(10, 10, 100), -1, 10_000)
            .await
            .unwrap(),
        10
    );
    assert_eq!(read_all(&mut client, "mixed", good).await, 20);
    let r = describe(&mut client, None, 4).await;
    assert_eq!(r[0].error_code, 0);
    assert_eq!(r[1].log_dir, abs(&dirs[1]));
    assert_eq!(r[1].error_code, ErrorCode::KafkaStorageError.code());
    assert!(r[1].topics.is_empty());
    // No move into or out of an offline directory.
    assert_eq!(
        alter(&mut client, &abs(&dirs[1]), "mixed", vec![good]).await,
        vec![ErrorCode::KafkaStorageError.code()]
    );
    // A new topic goes to the directory still online.
    client.create_topic("after", 2, 1, &[]).await.unwrap();
    assert_eq!(holders(&dirs, "after", 0), vec![0]);
    assert_eq!(holders(&dirs, "after", 1), vec![0]);
    let mut broker = broker;
    assert!(broker.is_running());
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_halts_when_every_directory_is_offline() {
    let Some(disk) = Ext4::mount() else {
        return;
    };
    let dirs = vec![disk.mount_point.join("only")];
    let mut broker = start(&dirs, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("doomed", 1, 1, &[]).await.unwrap();
    disk.fail();
    let err = client
        .produce("doomed", 0, batch(0, 1, 10), -1, 10_000)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::KafkaStorageError), "{err}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = broker.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the broker did not halt");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let _ = broker.is_running();
}
