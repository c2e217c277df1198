//! Committed offsets and groups survive a clean restart and a SIGKILL: an acknowledged
//! OffsetCommit is on disk in `__consumer_offsets`, and the loader rebuilds it on start.

mod common;

use std::time::{Duration, Instant};

use arus_client::{Client, ClientError, CommittedOffset, OffsetToCommit};
use arus_protocol::ErrorCode;
use common::BrokerProcess;

/// OffsetFetch, retrying while the coordinator is still loading `__consumer_offsets`.
async fn committed(addr: &str, group: &str) -> Vec<CommittedOffset> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut client = Client::connect(addr).await.unwrap();
        match client.offset_fetch(group, None).await {
            Ok(offsets) => return offsets,
            Err(ClientError::Kafka { code, .. })
                if code == ErrorCode::CoordinatorLoadInProgress && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("OffsetFetch failed: {e}"),
        }
    }
}

fn offsets(base: i64) -> Vec<OffsetToCommit> {
    (0..3)
        .map(|p| OffsetToCommit {
            topic: "orders".into(),
            partition: p,
            offset: base + p as i64,
        })
        .collect()
}

fn as_triples(list: &[CommittedOffset]) -> Vec<(String, i32, i64)> {
    list.iter()
        .map(|c| (c.topic.clone(), c.partition, c.offset))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_clean_restart_and_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client.create_topic("orders", 3, 1, &[]).await.unwrap();
    client.offset_commit("billing", &offsets(10)).await.unwrap();
    drop(client);
    broker.stop();

    let broker = BrokerProcess::start_in(&data, &[]);
    let expected_clean: Vec<_> = as_triples(
        &offsets(10)
            .into_iter()
            .map(|o| CommittedOffset {
                topic: o.topic,
                partition: o.partition,
                offset: o.offset,
                leader_epoch: -1,
                metadata: None,
            })
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        as_triples(&committed(&broker.addr, "billing").await),
        expected_clean
    );

    // A second commit acknowledged right before SIGKILL must survive too.
    let mut client = Client::connect(&broker.addr).await.unwrap();
    client
        .offset_commit("billing", &offsets(500))
        .await
        .unwrap();
    client.offset_commit("audit", &offsets(7)).await.unwrap();
    broker.kill9();

    let broker = BrokerProcess::start_in(&data, &[]);
    let billing = as_triples(&committed(&broker.addr, "billing").await);
    assert_eq!(
        billing,
        vec![
            ("orders".to_string(), 0, 500),
            ("orders".to_string(), 1, 501),
            ("orders".to_string(), 2, 502)
        ]
    );
    assert_eq!(committed(&broker.addr, "audit").await.len(), 3);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    let groups: Vec<String> = client
        .list_groups(&[])
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert!(
        groups.contains(&"billing".to_string()) && groups.contains(&"audit".to_string()),
        "{groups:?}"
    );
    broker.stop();
}
