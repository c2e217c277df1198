//! Topics, their ids, configs and records survive a clean restart (SIGTERM), and the
//! restarted broker continues offsets where it stopped.

mod common;

use arus_client::Client;
use arus_records::{BatchBuilder, Compression};
use common::BrokerProcess;

fn one_record(value: &str) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::Lz4, 1_700_000_000_000);
    b.push(1_700_000_000_000, Some(b"k"), Some(value.as_bytes()), &[]);
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_configs_and_records_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let created = client
        .create_topic("kept", 2, 1, &[("retention.ms".into(), "3600000".into())])
        .await
        .unwrap();
    for i in 0..3 {
        client
            .produce("kept", 1, one_record(&format!("r{i}")), 1, 5000)
            .await
            .unwrap();
    }
    client
        .incremental_alter_topic_configs(
            "kept",
            &[("max.message.bytes".into(), "4096".into())],
            &[],
        )
        .await
        .unwrap();
    drop(client);
    broker.stop();
    assert!(
        data.join("kept-1").join(".clean-shutdown").exists(),
        "clean-shutdown marker written"
    );

    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(client.topic_id("kept").await.unwrap(), created.topic_id);
    assert_eq!(client.partition_count("kept").await.unwrap(), 2);
    let configs = client.describe_topic_configs("kept").await.unwrap();
    let value = |k: &str| {
        configs
            .iter()
            .find(|c| c.name == k)
            .and_then(|c| c.value.clone())
            .unwrap_or_default()
    };
    assert_eq!(value("retention.ms"), "3600000");
    assert_eq!(value("max.message.bytes"), "4096");
    let fetched = client.fetch("kept", 1, 0, 100, 1 << 20).await.unwrap();
    let values: Vec<_> = fetched
        .records
        .iter()
        .map(|r| (r.offset, r.value.clone().unwrap()))
        .collect();
    assert_eq!(
        values,
        vec![(0, "r0".into()), (1, "r1".into()), (2, "r2".into())]
    );
    let next = client
        .produce("kept", 1, one_record("r3"), -1, 5000)
        .await
        .unwrap();
    assert_eq!(next, 3);
    broker.stop();
}
