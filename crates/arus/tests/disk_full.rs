//! Storage changes are all-or-nothing on a full disk (issue 12, item 3).
//!
//! The broker's data directory lives on a small tmpfs mounted for the test; a filler file
//! takes the remaining space, so every write that needs a new page fails with ENOSPC.
//! Removing the filler gives the space back. Mounting needs root (CI runs as root); without
//! it each test prints why it is skipped and passes.

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use arus_client::{Client, ClientError};
use arus_protocol::ErrorCode;
use arus_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use arus_protocol::messages::{Request, Response};
use arus_records::{BatchBuilder, Compression};
use common::BrokerProcess;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    mount_point: PathBuf,
    // Declared after `mount_point` so it is removed after the unmount.
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib`; `None` (with a printed reason) where that is not
    /// permitted, so that the calling test can skip.
    fn mount(size_kib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mount_point = dir.path().join("mnt");
        fs::create_dir(&mount_point).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(&mount_point)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                mount_point,
                _dir: dir,
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Takes every free byte of the file system with a file outside the data directory.
    fn fill(&self) -> Filler {
        let path = self.mount_point.join("filler");
        let mut f = File::create(&path).unwrap();
        let chunk = vec![0xA5u8; 64 << 10];
        for size in [64 << 10, 4096, 512, 1] {
            while f.write_all(&chunk[..size]).is_ok() {}
        }
        Filler { path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a broker that is still being killed may hold files open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

/// The file that holds the free space; [`Filler::free`] gives it back.
struct Filler {
    path: PathBuf,
}

impl Filler {
    fn free(self) {
        fs::remove_file(&self.path).unwrap();
    }
}

/// One batch of `n` records, values `v<i>` padded to `pad` bytes, timestamped now (so
/// that time retention keeps them).
fn batch(first: u64, n: u64, pad: usize) -> bytes::Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut b = BatchBuilder::new(Compression::None, now);
    for i in first..first + n {
        let mut v = format!("v{i}-").into_bytes();
        v.resize(pad, b'x');
        b.push(now, None, Some(&v), &[]);
    }
    b.build().unwrap()
}

/// Every record of `topic`-0 from `from` to the high watermark: (offset, value prefix).
async fn read_from(client: &mut Client, topic: &str, from: i64) -> Result<Vec<i64>, ClientError> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let fetched = client.fetch(topic, 0, offset, 0, 4 << 20).await?;
        if fetched.records.is_empty() {
            assert_eq!(offset, fetched.high_watermark, "no progress at {offset}");
            return Ok(out);
        }
        for r in &fetched.records {
            let v = r.value.as_ref().unwrap();
            let prefix = format!("v{}-", r.offset);
            assert!(
                v.starts_with(prefix.as_bytes()),
                "record {} differs",
                r.offset
            );
            out.push(r.offset);
        }
        offset = fetched.next_offset;
    }
}

async fn delete_records(client: &mut Client, topic: &str, offset: i64) -> (i16, i64) {
    let request = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: topic.into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: 0,
                offset,
            }],
        }],
        timeout_ms: 10_000,
    };
    match client.send(Request::DeleteRecords(request)).await.unwrap() {
        Response::DeleteRecords(r) => {
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.low_watermark)
        }
        other => panic!("unexpected response {other:?}"),
    }
}

/// The base offsets of the segments in a partition directory, sorted.
fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut v: Vec<i64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    v.sort_unstable();
    v
}

async fn earliest(client: &mut Client, topic: &str) -> i64 {
    client.list_offset(topic, 0, -2).await.unwrap().0
}

/// Produces `batches` batches of 100 records of 1000 bytes (acks=all) to `topic`-0.
async fn produce_batches(client: &mut Client, topic: &str, first: u64, batches: u64) {
    for k in 0..batches {
        let base = first + k * 100;
        let got = client
            .produce(topic, 0, batch(base, 100, 1000), -1, 10_000)
            .await
            .unwrap();
        assert_eq!(got, base as i64);
    }
}

/// Regression test for a property that holds today: a produce refused on a full disk
/// changes nothing, and the partition takes writes again, at the next offset, as soon as
/// space returns — without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_is_refused_on_a_full_disk_and_resumes_when_space_returns() {
    let Some(fs_) = Tmpfs::mount(16 << 10) else {
        return;
    };
    let data = fs_.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("full", 1, 1, &[]).await.unwrap();
    produce_batches(&mut client, "full", 0, 10).await;

    let filler = fs_.fill();
    for _ in 0..3 {
        let err = client
            .produce("full", 0, batch(1000, 100, 1000), -1, 10_000)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::KafkaStorageError), "{err}");
    }
    assert_eq!(read_from(&mut client, "full", 0).await.unwrap().len(), 1000);

    filler.free();
    produce_batches(&mut client, "full", 1000, 5).await;
    let all = read_from(&mut client, "full", 0).await.unwrap();
    assert_eq!(all, (0..1500).collect::<Vec<i64>>());
    broker.kill9();

    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let all = read_from(&mut client, "full", 0).await.unwrap();
    assert_eq!(all, (0..1500).collect::<Vec<i64>>());
}

/// Defect 1: a DeleteRecords that cannot write the log-start checkpoint must change
/// nothing — not in memory (the records stay readable), not on disk (the retention pass,
/// run every 100 ms here, must not delete the segments below a start that never became
/// durable), and not across kill -9. Once space returns it works and survives kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_on_a_full_disk_is_all_or_nothing_across_kill9() {
    let Some(fs_) = Tmpfs::mount(16 << 10) else {
        return;
    };
    let data = fs_.path().join("data");
    let overrides = ["log.retention.check.interval.ms=100"];
    let broker = BrokerProcess::start_in(&data, &overrides);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client
        .create_topic("dr", 1, 1, &[("segment.bytes".into(), "1048576".into())])
        .await
        .unwrap();
    // About 3.1 MB: three full segments and part of a fourth.
    produce_batches(&mut client, "dr", 0, 30).await;

    let filler = fs_.fill();
    // 2550 lies in the third segment: the first two would be deleted.
    let (code, _) = delete_records(&mut client, "dr", 2550).await;
    assert_eq!(code, ErrorCode::KafkaStorageError.code());
    assert_eq!(earliest(&mut client, "dr").await, 0);
    let all = read_from(&mut client, "dr", 0).await.unwrap();
    assert_eq!(all, (0..3000).collect::<Vec<i64>>(), "records hidden");
    // Several retention passes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let all = read_from(&mut client, "dr", 0).await.unwrap();
    assert_eq!(all, (0..3000).collect::<Vec<i64>>(), "after retention");
    broker.kill9();

    filler.free();
    let broker = BrokerProcess::start_in(&data, &overrides);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(earliest(&mut client, "dr").await, 0);
    let all = read_from(&mut client, "dr", 0).await.unwrap();
    assert_eq!(all, (0..3000).collect::<Vec<i64>>(), "after kill -9");

    // With space, the same request takes effect and is durable.
    let before = segment_bases(&data.join("dr-0"));
    assert!(before.len() >= 3, "{before:?}");
    let (code, low) = delete_records(&mut client, "dr", 2550).await;
    assert_eq!((code, low), (0, 2550));
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.kill9();
    let broker = BrokerProcess::start_in(&data, &overrides);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(earliest(&mut client, "dr").await, 2550);
    let all = read_from(&mut client, "dr", 2550).await.unwrap();
    assert_eq!(all, (2550..3000).collect::<Vec<i64>>());
    let after = segment_bases(&data.join("dr-0"));
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    assert!(
        after[0] <= 2550 && after[0] > before[0],
        "{before:?} -> {after:?}"
    );
}

mod coordinators {
    use super::*;
    use arus_client::OffsetToCommit;
    use arus_protocol::ApiKey;
    use arus_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use arus_protocol::messages::{
        AddPartitionsToTxnRequest, EndTxnRequest, FindCoordinatorRequest, InitProducerIdRequest,
        ProduceRequest,
    };

    async fn commit(client: &mut Client, offset: i64) -> Result<(), ClientError> {
        client
            .offset_commit(
                "g",
                &[OffsetToCommit {
                    topic: "t".into(),
                    partition: 0,
                    offset,
                }],
            )
            .await
    }

    async fn committed(client: &mut Client) -> i64 {
        let all = client.offset_fetch("g", None).await.unwrap();
        all.iter()
            .find(|o| o.topic == "t" && o.partition == 0)
            .map_or(-1, |o| o.offset)
    }

    /// InitProducerId for fresh transactional ids until one fails on the full disk.
    async fn exhaust_transaction_log(client: &mut Client, prefix: &str) {
        for i in 0..10_000 {
            let (code, _, _) = init_pid(client, &format!("{prefix}{i}")).await;
            if code != 0 {
                assert_eq!(code, ErrorCode::NotCoordinator.code());
                return;
            }
        }
        panic!("InitProducerId never failed");
    }

    /// FindCoordinator for `transactional_id`, retried while the coordinator is not
    /// available, as a producer does before InitProducerId. On Kafka (and on the one-node
    /// cluster) it is what creates `__transaction_state`: until then InitProducerId answers
    /// NOT_COORDINATOR. Called while the disk has room.
    async fn find_transaction_coordinator(client: &mut Client, transactional_id: &str) {
        for _ in 0..500 {
            let r = client
                .send(Request::FindCoordinator(FindCoordinatorRequest {
                    key: String::new(),
                    key_type: 1,
                    coordinator_keys: vec![transactional_id.into()],
                }))
                .await
                .unwrap();
            let Response::FindCoordinator(r) = r else {
                panic!("{r:?}")
            };
            let code = r.coordinators[0].error_code;
            if code == 0 {
                return;
            }
            assert_eq!(code, ErrorCode::CoordinatorNotAvailable.code(), "{r:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the transaction coordinator never became available");
    }

    /// InitProducerId, retried while the coordinator's partition is still loading
    /// (COORDINATOR_LOAD_IN_PROGRESS is retriable: a producer retries it too).
    async fn init_pid(client: &mut Client, transactional_id: &str) -> (i16, i64, i16) {
        for _ in 0..500 {
            let answer = init_pid_once(client, transactional_id).await;
            if answer.0 != ErrorCode::CoordinatorLoadInProgress.code() {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the transaction coordinator never finished loading");
    }

    async fn init_pid_once(client: &mut Client, transactional_id: &str) -> (i16, i64, i16) {
        let r = client
            .send(Request::InitProducerId(InitProducerIdRequest {
                transactional_id: Some(transactional_id.into()),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            }))
            .await
            .unwrap();
        let Response::InitProducerId(r) = r else {
            panic!("{r:?}")
        };
        (r.error_code, r.producer_id, r.producer_epoch)
    }

    async fn add_partition(client: &mut Client, pid: i64, epoch: i16) -> i16 {
        let r = client
            .send(Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: "tx".into(),
                v3_and_below_producer_id: pid,
                v3_and_below_producer_epoch: epoch,
                v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                    name: "t".into(),
                    partitions: vec![0],
                }],
                ..Default::default()
            }))
            .await
            .unwrap();
        let Response::AddPartitionsToTxn(r) = r else {
            panic!("{r:?}")
        };
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    }

    async fn produce_txn(client: &mut Client, pid: i64, epoch: i16, seq: i32) -> i16 {
        let mut b = BatchBuilder::new(Compression::None, 1).producer(pid, epoch, seq, true);
        b.push(1, None, Some(b"in a transaction"), &[]);
        let records = b.build().unwrap();
        let r = client
            .send(Request::Produce(ProduceRequest {
                transactional_id: Some("tx".into()),
                acks: -1,
                timeout_ms: 10_000,
                topic_data: vec![TopicProduceData {
                    name: "t".into(),
                    partition_data: vec![PartitionProduceData {
                        index: 0,
                        records: Some(records),
                    }],
                    ..Default::default()
                }],
            }))
            .await
            .unwrap();
        let Response::Produce(r) = r else {
            panic!("{r:?}")
        };
        r.responses[0].partition_responses[0].error_code
    }

    async fn end_txn(client: &mut Client, pid: i64, epoch: i16) -> i16 {
        let r = client
            .send(Request::EndTxn(EndTxnRequest {
                transactional_id: "tx".into(),
                producer_id: pid,
                producer_epoch: epoch,
                committed: true,
            }))
            .await
            .unwrap();
        let Response::EndTxn(r) = r else {
            panic!("{r:?}")
        };
        r.error_code
    }

    /// Kafka maps a failed coordinator write (KAFKA_STORAGE_ERROR) to NOT_COORDINATOR
    /// (`GroupCoordinatorService`/`CoordinatorRuntime` for groups,
    /// `TransactionStateManager.appendTransactionToLog` for transactions), and the failed
    /// operation leaves the coordinator's state as it was. Once space returns the same
    /// operations succeed, without a restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn coordinators_answer_not_coordinator_on_a_full_disk_and_recover() {
        let Some(fs_) = Tmpfs::mount(16 << 10) else {
            return;
        };
        let data = fs_.path().join("data");
        let overrides = [
            "offsets.topic.num.partitions=1",
            "transaction.state.log.num.partitions=1",
        ];
        let broker = BrokerProcess::start_in(&data, &overrides);
        let mut client = Client::connect(&broker.addr).await.unwrap();
        // Transactions v1: the client adds partitions itself (v3 and below).
        client.cap_version(ApiKey::AddPartitionsToTxn, 3);
        client.cap_version(ApiKey::EndTxn, 4);
        client.create_topic("t", 1, 1, &[]).await.unwrap();
        find_transaction_coordinator(&mut client, "tx").await;
        commit(&mut client, 5).await.unwrap();
        let (code, pid, epoch) = init_pid(&mut client, "tx").await;
        assert_eq!(code, 0);
        assert_eq!(add_partition(&mut client, pid, epoch).await, 0);
        assert_eq!(produce_txn(&mut client, pid, epoch, 0).await, 0);

        // A small append may still fit in the last page of its segment file: a full disk
        // shows when that page is used up.
        let filler = fs_.fill();
        let not_coordinator = Some(ErrorCode::NotCoordinator);
        let mut last_ok = 5;
        let err = loop {
            match commit(&mut client, last_ok + 1).await {
                Ok(()) => last_ok += 1,
                Err(e) => break e,
            }
            assert!(last_ok < 10_000, "commits never failed");
        };
        assert_eq!(err.code(), not_coordinator, "{err}");
        assert_eq!(
            committed(&mut client).await,
            last_ok,
            "a failed commit is visible"
        );
        exhaust_transaction_log(&mut client, "a").await;
        for _ in 0..2 {
            let err = commit(&mut client, last_ok + 1).await.unwrap_err();
            assert_eq!(err.code(), not_coordinator, "{err}");
            assert_eq!(
                committed(&mut client).await,
                last_ok,
                "a failed commit is visible"
            );
            assert_eq!(
                end_txn(&mut client, pid, epoch).await,
                ErrorCode::NotCoordinator.code()
            );
        }

        filler.free();
        commit(&mut client, last_ok + 1).await.unwrap();
        assert_eq!(committed(&mut client).await, last_ok + 1);
        // The client retries the EndTxn that failed: the transaction is still open.
        assert_eq!(end_txn(&mut client, pid, epoch).await, 0);

        let filler = fs_.fill();
        exhaust_transaction_log(&mut client, "b").await;
        let (code, _, _) = init_pid(&mut client, "tx").await;
        assert_eq!(code, ErrorCode::NotCoordinator.code());
        filler.free();
        // Kafka bumps the epoch only with a durable record: the failed attempt left none.
        let mut next = init_pid(&mut client, "tx").await;
        for _ in 0..100 {
            if next.0 != ErrorCode::ConcurrentTransactions.code() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            next = init_pid(&mut client, "tx").await;
        }
        assert_eq!(next, (0, pid, epoch + 1));
        assert_eq!(add_partition(&mut client, pid, epoch + 1).await, 0);
        assert_eq!(produce_txn(&mut client, pid, epoch + 1, 0).await, 0);
        assert_eq!(end_txn(&mut client, pid, epoch + 1).await, 0);
        let last_ok = last_ok + 1;
        broker.kill9();

        let broker = BrokerProcess::start_in(&data, &overrides);
        let mut client = Client::connect(&broker.addr).await.unwrap();
        let mut loaded = committed(&mut client).await;
        for _ in 0..100 {
            if loaded != -1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            loaded = committed(&mut client).await;
        }
        assert_eq!(loaded, last_ok);
    }

    /// The last stable offset of t-0 (ListOffsets latest, read_committed).
    async fn last_stable(client: &mut Client) -> i64 {
        use arus_protocol::messages::ListOffsetsRequest;
        use arus_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        let r = client
            .send(Request::ListOffsets(ListOffsetsRequest {
                replica_id: -1,
                isolation_level: 1,
                topics: vec![ListOffsetsTopic {
                    name: "t".into(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: 0,
                        timestamp: -1,
                        ..Default::default()
                    }],
                }],
                timeout_ms: 10_000,
            }))
            .await
            .unwrap();
        let Response::ListOffsets(r) = r else {
            panic!("{r:?}")
        };
        r.topics[0].partitions[0].offset
    }

    fn log_size(dir: &Path) -> u64 {
        fs::metadata(dir.join("00000000000000000000.log"))
            .unwrap()
            .len()
    }

    /// EndTxn is answered once its Prepare record is durable; the COMMIT marker then
    /// cannot be written to the full data partition. The coordinator keeps retrying (Kafka's
    /// marker channel retries KAFKA_STORAGE_ERROR), so the transaction completes once space
    /// returns, without a restart. `ARUS_TEST_MARKER_FULL_SECS` (default 3) sets how long
    /// the disk stays full; before the fix the coordinator gave up after 30 attempts, 1 s
    /// apart, until a restart (so 35 showed it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_completes_once_space_returns_for_its_markers() {
        let Some(fs_) = Tmpfs::mount(16 << 10) else {
            return;
        };
        let full_secs: u64 = std::env::var("ARUS_TEST_MARKER_FULL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        let data = fs_.path().join("data");
        let overrides = [
            "offsets.topic.num.partitions=1",
            "transaction.state.log.num.partitions=1",
        ];
        let broker = BrokerProcess::start_in(&data, &overrides);
        let mut client = Client::connect(&broker.addr).await.unwrap();
        client.cap_version(ApiKey::AddPartitionsToTxn, 3);
        client.cap_version(ApiKey::EndTxn, 4);
        client.create_topic("t", 1, 1, &[]).await.unwrap();
        find_transaction_coordinator(&mut client, "tx").await;
        let (code, pid, epoch) = init_pid(&mut client, "tx").await;
        assert_eq!(code, 0);
        assert_eq!(add_partition(&mut client, pid, epoch).await, 0);
        assert_eq!(produce_txn(&mut client, pid, epoch, 0).await, 0);
        assert_eq!(last_stable(&mut client).await, 0);
        // Room for the Prepare record in the last page of __transaction_state's segment
        // (each InitProducerId of a new id appends one record there).
        let txn_log = data.join("__transaction_state-0");
        let mut i = 0;
        while !(1..=1024).contains(&(log_size(&txn_log) % 4096)) {
            assert_eq!(init_pid(&mut client, &format!("pad{i}")).await.0, 0);
            i += 1;
        }

        let filler = fs_.fill();
        // Use up the last page of t-0 with plain records.
        let mut n = 0;
        loop {
            match client.produce("t", 0, batch(0, 1, 10), -1, 10_000).await {
                Ok(_) => n += 1,
                Err(e) => {
                    assert_eq!(e.code(), Some(ErrorCode::KafkaStorageError), "{e}");
                    break;
                }
            }
            assert!(n < 10_000, "t-0 never filled up");
        }
        assert_eq!(end_txn(&mut client, pid, epoch).await, 0);
        tokio::time::sleep(Duration::from_secs(full_secs)).await;
        assert_eq!(
            last_stable(&mut client).await,
            0,
            "the marker cannot be written"
        );

        filler.free();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while last_stable(&mut client).await == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the transaction did not complete once space returned"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The marker is the last offset: everything is stable.
        let (end, _) = client.list_offset("t", 0, -1).await.unwrap();
        assert_eq!(last_stable(&mut client).await, end);
        // The producer can go on.
        let mut next = init_pid(&mut client, "tx").await;
        for _ in 0..100 {
            if next.0 != ErrorCode::ConcurrentTransactions.code() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            next = init_pid(&mut client, "tx").await;
        }
        assert_eq!(next, (0, pid, epoch + 1));
    }
}

/// Topic creation on a full disk: refused with KAFKA_STORAGE_ERROR, and nothing changed —
/// no partition directory, no temp file, the topics as before, also after a restart (what
/// a restart reads is what was durable: the metadata file, or the metadata log of the
/// one-node cluster). A config change on the full disk is either refused and absent after
/// the restart, or answered with success and present after it: the one-node cluster's
/// metadata log may still have room in its last page for a small record, the single-node
/// file never does. With space back the same requests succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_creation_and_config_changes_on_a_full_disk_change_nothing() {
    let Some(fs_) = Tmpfs::mount(16 << 10) else {
        return;
    };
    let data = fs_.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("a", 1, 1, &[]).await.unwrap();
    let before = retention(&mut client, "a").await;
    let listing = || {
        let mut v: Vec<String> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let entries_before = listing();

    let filler = fs_.fill();
    let err = client.create_topic("b", 8, 1, &[]).await.unwrap_err();
    eprintln!("CreateTopics on a full disk: {err}");
    assert_eq!(err.code(), Some(ErrorCode::KafkaStorageError), "{err}");
    let err = client.create_partitions("a", 4).await.unwrap_err();
    eprintln!("CreatePartitions on a full disk: {err}");
    assert_eq!(err.code(), Some(ErrorCode::KafkaStorageError), "{err}");
    assert_eq!(listing(), entries_before);
    assert_eq!(client.partition_count("a").await.unwrap(), 1);
    assert!(client.partition_count("b").await.is_err());
    let altered = client
        .incremental_alter_topic_configs("a", &[("retention.ms".into(), "1234".into())], &[])
        .await;
    eprintln!("IncrementalAlterConfigs on a full disk: {altered:?}");
    let expected = if altered.is_ok() {
        "1234".to_string()
    } else {
        before
    };

    filler.free();
    drop(client);
    broker.kill9();
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(
        retention(&mut client, "a").await,
        expected,
        "the config change's answer and what a restart finds disagree"
    );
    assert_eq!(client.partition_count("a").await.unwrap(), 1);
    assert!(
        client.partition_count("b").await.is_err(),
        "the failed creation is not durable"
    );
    assert!(!listing().iter().any(|e| e.starts_with("b-")));
    client.create_topic("b", 8, 1, &[]).await.unwrap();
    client
        .incremental_alter_topic_configs("a", &[("retention.ms".into(), "4321".into())], &[])
        .await
        .unwrap();
    client.create_partitions("a", 4).await.unwrap();
    assert_eq!(retention(&mut client, "a").await, "4321");
    assert_eq!(client.partition_count("a").await.unwrap(), 4);
    assert_eq!(client.partition_count("b").await.unwrap(), 8);
}

async fn retention(client: &mut Client, topic: &str) -> String {
    client
        .describe_topic_configs(topic)
        .await
        .unwrap()
        .iter()
        .find(|c| c.name == "retention.ms")
        .and_then(|c| c.value.clone())
        .unwrap()
}

/// Metadata changes until the full disk refuses a write: every change answered with
/// success is there after a restart. The one-node cluster, whose metadata log can then no
/// longer be written, halts as Kafka's node does rather than serve on without a
/// controller; the single-node file store answers each refused change with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_write_the_full_disk_refuses_loses_no_acknowledged_change() {
    let Some(fs_) = Tmpfs::mount(16 << 10) else {
        return;
    };
    let data = fs_.path().join("data");
    let mut broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("a", 1, 1, &[]).await.unwrap();
    let filler = fs_.fill();
    let mut acknowledged: Option<u32> = None;
    let mut refused = false;
    for i in 0..500u32 {
        let value = 1_000_000 + i;
        let altered = tokio::time::timeout(
            Duration::from_secs(10),
            client.incremental_alter_topic_configs(
                "a",
                &[("retention.ms".into(), value.to_string())],
                &[],
            ),
        )
        .await;
        match altered {
            Ok(Ok(())) => acknowledged = Some(value),
            other => {
                eprintln!("change {i} on a full disk: {other:?}");
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "500 config changes fit on a full disk");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while broker.is_running() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let halted = !broker.is_running();
    eprintln!("halted after the refused write: {halted}");
    if quorum_path() {
        assert!(
            halted,
            "the one-node cluster serves on with a failed metadata log"
        );
    }
    filler.free();
    drop(client);
    broker.kill9();
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    if let Some(last) = acknowledged {
        // The refused change may have reached the disk before its answer was lost
        // (written, then the sync failed): newer is possible, older never.
        let now: u32 = retention(&mut client, "a").await.parse().unwrap();
        assert!(
            now >= last,
            "acknowledged {last}, found {now} after the restart"
        );
    }
    client
        .incremental_alter_topic_configs("a", &[("retention.ms".into(), "7".into())], &[])
        .await
        .unwrap();
    assert_eq!(retention(&mut client, "a").await, "7");
}

/// Whether `arus serve` without configuration runs the one-node cluster (the default) or
/// the single-node file store (`arus.single.node.quorum=false`).
fn quorum_path() -> bool {
    std::env::var("ARUS_ARUS_SINGLE_NODE_QUORUM").map_or(true, |v| v != "false")
}

/// Retention frees space on a full disk, and the partition takes writes again by itself:
/// nobody frees anything by hand and the broker is not restarted. (Retention needs no
/// write to take effect; see arus-log's lifecycle docs.) The log start it reached
/// survives kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_frees_a_full_disk_and_produce_resumes_by_itself() {
    let Some(fs_) = Tmpfs::mount(16 << 10) else {
        return;
    };
    let data = fs_.path().join("data");
    let overrides = ["log.retention.check.interval.ms=100"];
    let broker = BrokerProcess::start_in(&data, &overrides);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let configs = [
        ("segment.bytes".into(), "1048576".into()),
        ("retention.ms".into(), "3000".into()),
        ("file.delete.delay.ms".into(), "0".into()),
    ];
    client.create_topic("ret", 1, 1, &configs).await.unwrap();
    produce_batches(&mut client, "ret", 0, 30).await;
    let _filler = fs_.fill();
    let err = client
        .produce("ret", 0, batch(3000, 100, 1000), -1, 10_000)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::KafkaStorageError), "{err}");

    // The records expire after 3 s; then the next produce must succeed.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let base = loop {
        match client
            .produce("ret", 0, batch(3000, 100, 1000), -1, 10_000)
            .await
        {
            Ok(base) => break base,
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::KafkaStorageError), "{e}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "produce did not resume"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(base, 3000, "a refused produce left a trace");
    let start = earliest(&mut client, "ret").await;
    assert!(start > 0 && start <= 3000, "log start {start}");
    let all = read_from(&mut client, "ret", start).await.unwrap();
    assert_eq!(all, (start..3100).collect::<Vec<i64>>());
    broker.kill9();

    let broker = BrokerProcess::start_in(&data, &overrides);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let after = earliest(&mut client, "ret").await;
    assert!(
        after >= start,
        "log start went back from {start} to {after}"
    );
    let all = read_from(&mut client, "ret", after).await.unwrap();
    assert_eq!(all, (after..3100).collect::<Vec<i64>>());
}
