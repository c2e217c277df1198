//! Crash safety: acks=all writes survive SIGKILL with their offsets, and a torn tail is
//! truncated on recovery.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arus_client::Client;
use arus_records::{BatchBuilder, Compression};
use common::BrokerProcess;

fn batch(first: u64, n: u64) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    for i in first..first + n {
        let v = format!("value-{i}");
        b.push(
            1_700_000_000_000,
            Some(format!("k{}", i % 7).as_bytes()),
            Some(v.as_bytes()),
            &[],
        );
    }
    b.build().unwrap()
}

/// Reads every record of `topic`-0 from offset 0.
async fn read_all(addr: &str, topic: &str) -> Vec<(i64, String)> {
    let mut client = Client::connect(addr).await.unwrap();
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let fetched = client.fetch(topic, 0, offset, 100, 1 << 20).await.unwrap();
        if fetched.records.is_empty() {
            if offset >= fetched.high_watermark {
                return out;
            }
            panic!(
                "no progress at offset {offset}, hw {}",
                fetched.high_watermark
            );
        }
        for r in &fetched.records {
            out.push((
                r.offset,
                String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
            ));
        }
        offset = fetched.next_offset;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_torn_tails_are_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let addr = broker.addr.clone();
    let mut admin = Client::connect(&addr).await.unwrap();
    admin.create_topic("crash", 1, 1, &[]).await.unwrap();

    // Producer: acks=all batches of 10 records; remember what was acknowledged.
    let acked: Arc<Mutex<Vec<(i64, u64)>>> = Arc::default();
    let producer = {
        let acked = acked.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut client = Client::connect(&addr).await.unwrap();
            let mut next = 0u64;
            loop {
                match client
                    .produce("crash", 0, batch(next, 10), -1, 10_000)
                    .await
                {
                    Ok(base) => {
                        acked.lock().unwrap().push((base, next));
                        next += 10;
                    }
                    Err(_) => return next,
                }
            }
        })
    };
    let started = Instant::now();
    while acked.lock().unwrap().len() < 200 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    broker.kill9();
    let _ = producer.await;
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "producer made too little progress: {}",
        acked.len()
    );

    // Restart: every acknowledged record is there, at its offset, in order.
    let broker = BrokerProcess::start_in(&data, &[]);
    let records = read_all(&broker.addr, "crash").await;
    for (i, (offset, _)) in records.iter().enumerate() {
        assert_eq!(*offset, i as i64, "offsets are contiguous from 0");
    }
    for (base, first) in &acked {
        for j in 0..10u64 {
            let offset = (*base + j as i64) as usize;
            assert_eq!(
                records.get(offset).map(|r| r.1.as_str()),
                Some(format!("value-{}", first + j).as_str()),
                "acknowledged record at offset {offset}"
            );
        }
    }
    let before_tear = records.len() as i64;
    broker.kill9();

    // Tear the tail: a partial batch header and garbage after the last good batch.
    let segment = std::fs::read_dir(data.join("crash-0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(&batch(999_999, 3)[..40]);
    std::fs::write(&segment, &bytes).unwrap();

    let broker = BrokerProcess::start_in(&data, &[]);
    let records = read_all(&broker.addr, "crash").await;
    assert_eq!(
        records.len() as i64,
        before_tear,
        "torn tail dropped, nothing else"
    );
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len() as usize,
        good_len
    );
    // Appends continue right after the last good record.
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let base = client
        .produce("crash", 0, batch(5_000_000, 2), -1, 10_000)
        .await
        .unwrap();
    assert_eq!(base, before_tear);
    let records = read_all(&broker.addr, "crash").await;
    assert_eq!(
        records.last().unwrap(),
        &(before_tear + 1, "value-5000001".to_string())
    );
    broker.stop();
}
