//! KIP-848 regex subscriptions through the broker's handlers: a member subscribing with
//! `SubscribedTopicRegex` is assigned the matching topics, an invalid regex is refused with
//! Kafka's INVALID_REGULAR_EXPRESSION message, and the resolution is written to
//! `__consumer_offsets` as Kafka's record type 16 and survives a restart. (Re-resolution after
//! a topic creation is timed by Kafka's 10 s batch interval: the state-machine tests cover it
//! with injected time, `compat/regex_subscription.sh` with real clients.)

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_group::records::{CoordinatorRecord, decode_record};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response, Uuid};

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut props = BTreeMap::new();
    props.insert("log.dirs".to_string(), dir.display().to_string());
    props.insert("offsets.topic.num.partitions".to_string(), "1".to_string());
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

fn create(broker: &Broker, name: &str, partitions: i32) -> Uuid {
    broker
        .topics
        .create(arus_broker::topics::NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap()
        .id
}

async fn join(broker: &Arc<Broker>, member: &str, regex: &str) -> ConsumerGroupHeartbeatResponse {
    let header = RequestHeader {
        request_api_key: ApiKey::ConsumerGroupHeartbeat as i16,
        request_api_version: 1,
        correlation_id: 1,
        client_id: Some("test-client".into()),
        ..Default::default()
    };
    let req = Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
        group_id: "cg".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(vec![]),
        subscribed_topic_regex: Some(regex.into()),
        topic_partitions: Some(vec![]),
        ..Default::default()
    });
    match broker
        .handle_from(&header, req, Some("127.0.0.1".parse().unwrap()))
        .await
    {
        Outcome::Respond(Response::ConsumerGroupHeartbeat(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// The regex records in `__consumer_offsets`, in log order.
fn regex_records(broker: &Broker) -> Vec<(String, Option<Vec<String>>)> {
    let t = broker.topics.get("__consumer_offsets").unwrap();
    let mut out = Vec::new();
    for p in t.partitions() {
        p.for_each_batch(|b| {
            for r in b.records().unwrap() {
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                if let Ok(CoordinatorRecord::ConsumerGroupRegularExpression {
                    regex, value, ..
                }) = decode_record(key, r.value.as_deref())
                {
                    out.push((regex, value.map(|v| v.topics)));
                }
            }
        })
        .unwrap();
    }
    out
}

#[tokio::test]
async fn regex_members_get_matching_topics_and_the_resolution_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let a = create(&broker, "rx-a", 2);
    let b = create(&broker, "rx-b", 1);
    create(&broker, "other", 3);
    broker.groups.wait_loaded().await;

    let bad = join(&broker, "m0", "rx-(").await;
    assert_eq!(bad.error_code, ErrorCode::InvalidRegularExpression.code());
    assert_eq!(
        bad.error_message.as_deref(),
        Some("SubscribedTopicRegex `rx-(` is not a valid regular expression: missing closing ).")
    );

    let r = join(&broker, "m1", "rx-.*").await;
    assert_eq!(r.error_code, 0, "{r:?}");
    let assigned: BTreeMap<Uuid, BTreeSet<i32>> = r
        .assignment
        .unwrap()
        .topic_partitions
        .into_iter()
        .map(|t| (t.topic_id, t.partitions.into_iter().collect()))
        .collect();
    assert_eq!(
        assigned,
        BTreeMap::from([(a, BTreeSet::from([0, 1])), (b, BTreeSet::from([0]))])
    );
    let written = vec![(
        "rx-.*".to_string(),
        Some(vec!["rx-a".to_string(), "rx-b".to_string()]),
    )];
    assert_eq!(regex_records(&broker), written);
    broker.shutdown();
    drop(broker);

    let broker = open(dir.path());
    broker.groups.wait_loaded().await;
    assert_eq!(regex_records(&broker), written);
    // The group came back with the member's regex and its assignment.
    let header = RequestHeader {
        request_api_key: ApiKey::ConsumerGroupDescribe as i16,
        request_api_version: 0,
        correlation_id: 2,
        client_id: Some("test-client".into()),
        ..Default::default()
    };
    let req = Request::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
        group_ids: vec!["cg".into()],
        ..Default::default()
    });
    let Outcome::Respond(Response::ConsumerGroupDescribe(d)) =
        broker.handle_from(&header, req, None).await
    else {
        panic!()
    };
    let m = &d.groups[0].members[0];
    assert_eq!(m.subscribed_topic_regex.as_deref(), Some("rx-.*"));
    let n: usize = m
        .assignment
        .topic_partitions
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    assert_eq!(n, 3);
}
