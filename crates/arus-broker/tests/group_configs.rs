//! Group configs (GROUP resources, KIP-848) through the broker's handlers: validated against
//! the broker's bounds with Kafka 4.4's messages, described with the broker's values as
//! defaults, kept across a restart, listed by ListConfigResources, and honoured by the
//! KIP-848 coordinator for that group only.

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

mod common;

use std::sync::Arc;

use arus_broker::Broker;
use arus_protocol::messages::describe_configs_request::DescribeConfigsResource;
use arus_protocol::messages::describe_configs_response::DescribeConfigsResult;
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response};

const GROUP: i8 = 32;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

use common::call;

async fn alter(
    broker: &Arc<Broker>,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, Option<String>) {
    common::incremental_alter(broker, GROUP, name, ops, false).await
}

async fn describe(broker: &Arc<Broker>, name: &str) -> DescribeConfigsResult {
    let req = Request::DescribeConfigs(DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: GROUP,
            resource_name: name.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        include_synonyms: true,
        ..Default::default()
    });
    match call(broker, ApiKey::DescribeConfigs, 4, req).await {
        Response::DescribeConfigs(mut r) => r.results.remove(0),
        other => panic!("{other:?}"),
    }
}

/// (value, source, [(synonym, value, source)]) of key `name`.
fn entry(r: &DescribeConfigsResult, name: &str) -> (String, i8, Vec<(String, String, i8)>) {
    let c = r.configs.iter().find(|c| c.name == name).unwrap();
    (
        c.value.clone().unwrap(),
        c.config_source,
        c.synonyms
            .iter()
            .map(|s| (s.name.clone(), s.value.clone().unwrap(), s.source))
            .collect(),
    )
}

fn s(x: &str) -> String {
    x.to_string()
}

#[tokio::test]
async fn refused_changes_carry_kafkas_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[]);
    let invalid = ErrorCode::InvalidConfig.code();
    assert_eq!(
        alter(
            &broker,
            "",
            &[("consumer.session.timeout.ms", SET, Some("50000"))]
        )
        .await,
        (
            ErrorCode::InvalidRequest.code(),
            Some(s("Default group resources are not allowed."))
        )
    );
    assert_eq!(
        alter(
            &broker,
            "g1",
            &[("consumer.session.timeout.ms", SET, Some("5000"))]
        )
        .await,
        (
            invalid,
            Some(s(
                "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive."
            ))
        )
    );
    assert_eq!(
        alter(
            &broker,
            "g1",
            &[("consumer.heartbeat.interval.ms", SET, Some("1000"))]
        )
        .await,
        (
            invalid,
            Some(s(
                "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive."
            ))
        )
    );
    assert_eq!(
        alter(&broker, "g1", &[("foo", SET, Some("1"))]).await,
        (invalid, Some(s("Unknown group config name: foo")))
    );
    assert_eq!(
        alter(&broker, "g1", &[("consumer.session.timeout.ms", SET, None)]).await,
        (
            ErrorCode::InvalidRequest.code(),
            Some(s(
                "Null value not supported for : consumer.session.timeout.ms"
            ))
        )
    );
    assert_eq!(
        alter(
            &broker,
            "g1",
            &[("consumer.session.timeout.ms", APPEND, Some("1"))]
        )
        .await,
        (
            invalid,
            Some(s(
                "Can't APPEND to key consumer.session.timeout.ms because its type is not LIST."
            ))
        )
    );
    let d = describe(&broker, "").await;
    assert_eq!(
        (d.error_code, d.error_message.as_deref()),
        (
            ErrorCode::InvalidRequest.code(),
            Some("Group name must not be empty")
        )
    );
    // Nothing was stored.
    let list = Request::ListConfigResources(ListConfigResourcesRequest {
        resource_types: vec![GROUP],
        ..Default::default()
    });
    match call(&broker, ApiKey::ListConfigResources, 1, list).await {
        Response::ListConfigResources(r) => assert!(r.config_resources.is_empty()),
        other => panic!("{other:?}"),
    }
    broker.shutdown();
}

#[tokio::test]
async fn group_configs_are_described_kept_and_honoured() {
    let dir = tempfile::tempdir().unwrap();
    // A static broker value is the group default, and a wider bound lets 40 s through.
    let props = [
        ("group.consumer.heartbeat.interval.ms", "6000"),
        ("group.consumer.min.session.timeout.ms", "30000"),
    ];
    let broker = common::open_broker(dir.path(), &props);
    let d = describe(&broker, "g1").await;
    assert_eq!(d.error_code, 0);
    assert_eq!(d.configs.len(), 21);
    assert_eq!(
        entry(&d, "consumer.heartbeat.interval.ms"),
        (
            s("6000"),
            4,
            vec![(s("group.consumer.heartbeat.interval.ms"), s("6000"), 4)]
        )
    );
    assert_eq!(
        entry(&d, "consumer.session.timeout.ms"),
        (
            s("45000"),
            5,
            vec![(s("group.consumer.session.timeout.ms"), s("45000"), 5)]
        )
    );
    assert_eq!(
        alter(
            &broker,
            "g1",
            &[
                ("consumer.session.timeout.ms", SET, Some("40000")),
                ("consumer.heartbeat.interval.ms", SET, Some("7000")),
                ("share.session.timeout.ms", SET, Some("50000")),
            ]
        )
        .await,
        (0, None)
    );
    assert_eq!(
        entry(
            &describe(&broker, "g1").await,
            "consumer.session.timeout.ms"
        ),
        (
            s("40000"),
            8,
            vec![
                (s("consumer.session.timeout.ms"), s("40000"), 8),
                (s("group.consumer.session.timeout.ms"), s("45000"), 5)
            ]
        )
    );

    // The coordinator gives members of g1 its own heartbeat interval; other groups the
    // broker's.
    let heartbeat = |group: &str| {
        Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
            group_id: group.into(),
            member_id: "m".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 60_000,
            subscribed_topic_names: Some(vec![s("t")]),
            topic_partitions: Some(vec![]),
            ..Default::default()
        })
    };
    broker.groups.wait_loaded().await;
    let interval = |r: Response| match r {
        Response::ConsumerGroupHeartbeat(r) => {
            assert_eq!(r.error_code, 0, "{r:?}");
            r.heartbeat_interval_ms
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        interval(call(&broker, ApiKey::ConsumerGroupHeartbeat, 1, heartbeat("g1")).await),
        7000
    );
    assert_eq!(
        interval(call(&broker, ApiKey::ConsumerGroupHeartbeat, 1, heartbeat("g2")).await),
        6000
    );

    // Kept across a restart, and honoured after it.
    broker.shutdown();
    drop(broker);
    let broker = common::open_broker(dir.path(), &props);
    broker.groups.wait_loaded().await;
    assert_eq!(
        entry(&describe(&broker, "g1").await, "share.session.timeout.ms").0,
        "50000"
    );
    assert_eq!(
        interval(call(&broker, ApiKey::ConsumerGroupHeartbeat, 1, heartbeat("g1")).await),
        7000
    );
    let list = || {
        Request::ListConfigResources(ListConfigResourcesRequest {
            resource_types: vec![GROUP],
            ..Default::default()
        })
    };
    match call(&broker, ApiKey::ListConfigResources, 1, list()).await {
        Response::ListConfigResources(r) => {
            assert_eq!(r.config_resources.len(), 1);
            assert_eq!(r.config_resources[0].resource_name, "g1");
        }
        other => panic!("{other:?}"),
    }
    // Deleting the keys gives the group the broker's values back.
    assert_eq!(
        alter(
            &broker,
            "g1",
            &[
                ("consumer.session.timeout.ms", DELETE, None),
                ("consumer.heartbeat.interval.ms", DELETE, None),
                ("share.session.timeout.ms", DELETE, None),
            ]
        )
        .await,
        (0, None)
    );
    let rejoin = Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
        group_id: "g1".into(),
        member_id: "m2".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(vec![s("t")]),
        topic_partitions: Some(vec![]),
        ..Default::default()
    });
    assert_eq!(
        interval(call(&broker, ApiKey::ConsumerGroupHeartbeat, 1, rejoin).await),
        6000
    );
    match call(&broker, ApiKey::ListConfigResources, 1, list()).await {
        Response::ListConfigResources(r) => assert!(r.config_resources.is_empty()),
        other => panic!("{other:?}"),
    }
    broker.shutdown();
}

/// Legacy AlterConfigs replaces a GROUP or CLIENT_METRICS resource's whole set, with the
/// same validation (Kafka 4.4 accepts both resource types there too).
#[tokio::test]
async fn legacy_alter_configs_replaces_the_whole_set() {
    use arus_protocol::messages::alter_configs_request as ac;
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[]);
    let legacy = |t: i8, name: &str, pairs: &[(&str, &str)]| {
        Request::AlterConfigs(AlterConfigsRequest {
            resources: vec![ac::AlterConfigsResource {
                resource_type: t,
                resource_name: name.into(),
                configs: pairs
                    .iter()
                    .map(|(k, v)| ac::AlterableConfig {
                        name: k.to_string(),
                        value: Some(v.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            validate_only: false,
            ..Default::default()
        })
    };
    let result = |r: Response| match r {
        Response::AlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0].error_message.clone(),
        ),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        alter(
            &broker,
            "g1",
            &[("share.session.timeout.ms", SET, Some("50000"))]
        )
        .await,
        (0, None)
    );
    let r = call(
        &broker,
        ApiKey::AlterConfigs,
        2,
        legacy(GROUP, "g1", &[("consumer.session.timeout.ms", "50000")]),
    )
    .await;
    assert_eq!(result(r), (0, None));
    let d = describe(&broker, "g1").await;
    assert_eq!(entry(&d, "consumer.session.timeout.ms").1, 8);
    // The key not named in the legacy request is gone.
    assert_eq!(entry(&d, "share.session.timeout.ms").1, 5);
    let r = call(
        &broker,
        ApiKey::AlterConfigs,
        2,
        legacy(GROUP, "g1", &[("consumer.session.timeout.ms", "5")]),
    )
    .await;
    assert_eq!(
        result(r),
        (
            ErrorCode::InvalidConfig.code(),
            Some(s(
                "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive."
            ))
        )
    );
    let r = call(
        &broker,
        ApiKey::AlterConfigs,
        2,
        legacy(16, "sub", &[("interval.ms", "5")]),
    )
    .await;
    assert_eq!(
        result(r),
        (
            ErrorCode::InvalidRequest.code(),
            Some(s(
                "Invalid value 5 for interval.ms, interval must be between 100 and 3600000 (1 hour)"
            ))
        )
    );
    let r = call(
        &broker,
        ApiKey::AlterConfigs,
        2,
        legacy(16, "sub", &[("interval.ms", "1000")]),
    )
    .await;
    assert_eq!(result(r), (0, None));
    broker.shutdown();
}
