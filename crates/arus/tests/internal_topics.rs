//! Internal topics follow Kafka 4's rules: clients cannot produce to them (see the broker
//! tests), but an operator may alter their configs, add partitions or delete them. Deleting
//! `__consumer_offsets` or `__transaction_state` makes its coordinator forget what it held —
//! as Kafka's does when it unloads the deleted partitions — and the topic comes back on next
//! use, across restarts too.

mod common;

use arus_client::{Client, OffsetToCommit};
use common::{BrokerProcess, create_topic};

async fn committed(c: &mut Client, group: &str) -> i64 {
    c.offset_fetch(group, Some(&[("t".to_string(), vec![0])]))
        .await
        .unwrap()[0]
        .offset
}

async fn commit(c: &mut Client, group: &str, offset: i64) {
    c.offset_commit(
        group,
        &[OffsetToCommit {
            topic: "t".into(),
            partition: 0,
            offset,
        }],
    )
    .await
    .unwrap();
}

/// On the one-node cluster (the default), the deletion reaches the group coordinator
/// through the metadata log (the applier resigns the deleted partitions).
#[test]
fn deleting_the_offsets_topic_forgets_its_groups_and_it_comes_back() {
    offsets_topic_deleted_and_back(&["offsets.topic.num.partitions=3"]);
}

/// The same on the single-node release's file-backed store.
#[test]
fn on_the_file_backed_single_node_deleting_the_offsets_topic_forgets_its_groups() {
    offsets_topic_deleted_and_back(&[
        "offsets.topic.num.partitions=3",
        "arus.single.node.quorum=false",
    ]);
}

fn offsets_topic_deleted_and_back(overrides: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start_in(&data, overrides);
    create_topic(&broker.addr, "t", &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = Client::connect(&broker.addr).await.unwrap();
        commit(&mut c, "g", 5).await;
        assert_eq!(committed(&mut c, "g").await, 5);
        c.delete_topic("__consumer_offsets").await.unwrap();
        assert_eq!(
            committed(&mut c, "g").await,
            -1,
            "the group's offsets are gone"
        );
        commit(&mut c, "g", 7).await;
        assert_eq!(committed(&mut c, "g").await, 7);
        assert_eq!(c.partition_count("__consumer_offsets").await.unwrap(), 3);
    });
    broker.stop();
    let broker = BrokerProcess::start_in(&data, overrides);
    rt.block_on(async {
        let mut c = Client::connect(&broker.addr).await.unwrap();
        assert_eq!(
            committed(&mut c, "g").await,
            7,
            "the new topic's state is loaded"
        );
    });
}
