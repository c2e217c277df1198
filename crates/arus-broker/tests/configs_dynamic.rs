//! Dynamic broker configs (KIP-226) through the broker's handlers: per-broker and
//! cluster-default values altered with AlterConfigs and IncrementalAlterConfigs, reported by
//! DescribeConfigs with sources and synonyms, inherited by topics without overrides,
//! refused for static keys and invalid values as Kafka refuses them, and kept across a
//! restart.

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_broker::{Broker, BrokerConfig};
use arus_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use arus_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use arus_protocol::messages::describe_configs_request::DescribeConfigsResource;
use arus_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response};

const BROKER: i8 = 4;
const TOPIC: i8 = 2;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT: i8 = 3;
const STATIC: i8 = 4;
const DEFAULT: i8 = 5;

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut props = BTreeMap::new();
    props.insert("log.dirs".to_string(), dir.display().to_string());
    props.insert("log.retention.hours".to_string(), "2".to_string());
    props.insert("message.max.bytes".to_string(), "500000".to_string());
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

use common::call;

async fn create_topic(broker: &Arc<Broker>, name: &str, configs: &[(&str, &str)]) {
    let req = Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: k.to_string(),
                    value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 1000,
        ..Default::default()
    });
    let Response::CreateTopics(r) = call(broker, ApiKey::CreateTopics, 7, req).await else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

async fn describe(broker: &Arc<Broker>, kind: i8, name: &str) -> DescribeConfigsResult {
    let req = Request::DescribeConfigs(DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: kind,
            resource_name: name.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        include_synonyms: true,
        include_documentation: true,
        ..Default::default()
    });
    let Response::DescribeConfigs(mut r) = call(broker, ApiKey::DescribeConfigs, 4, req).await
    else {
        panic!()
    };
    r.results.remove(0)
}

fn entry<'a>(result: &'a DescribeConfigsResult, key: &str) -> &'a DescribeConfigsResourceResult {
    result
        .configs
        .iter()
        .find(|c| c.name == key)
        .unwrap_or_else(|| panic!("{key} not described"))
}

fn synonyms(e: &DescribeConfigsResourceResult) -> Vec<(String, String, i8)> {
    e.synonyms
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.value.clone().unwrap_or_default(),
                s.source,
            )
        })
        .collect()
}

fn syn(name: &str, value: &str, source: i8) -> (String, String, i8) {
    (name.to_string(), value.to_string(), source)
}

/// IncrementalAlterConfigs on one broker resource; returns (error code, message).
async fn incremental(
    broker: &Arc<Broker>,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    common::incremental_alter(broker, BROKER, name, ops, validate_only).await
}

async fn alter_legacy(
    broker: &Arc<Broker>,
    name: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let req = Request::AlterConfigs(AlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: BROKER,
            resource_name: name.into(),
            configs: configs
                .iter()
                .map(|(k, v)| AlterableConfig {
                    name: k.to_string(),
                    value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        validate_only,
        ..Default::default()
    });
    let Response::AlterConfigs(mut r) = call(broker, ApiKey::AlterConfigs, 2, req).await else {
        panic!()
    };
    let r = r.responses.remove(0);
    (r.error_code, r.error_message)
}

#[tokio::test]
async fn dynamic_default_reaches_topics_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create_topic(&broker, "plain", &[]).await;
    create_topic(&broker, "own", &[("retention.ms", "1000")]).await;

    // Before: the static log.retention.hours=2 gives retention.ms.
    let t = describe(&broker, TOPIC, "plain").await;
    let r = entry(&t, "retention.ms");
    assert_eq!(r.value.as_deref(), Some("7200000"));
    assert_eq!(r.config_source, STATIC);

    // The cluster-wide default (resource name "").
    let (code, msg) = incremental(
        &broker,
        "",
        &[
            ("log.retention.ms", SET, Some("3600000")),
            ("message.max.bytes", SET, Some("2000000")),
        ],
        false,
    )
    .await;
    assert_eq!(code, 0, "{msg:?}");

    let t = describe(&broker, TOPIC, "plain").await;
    let r = entry(&t, "retention.ms");
    assert_eq!(r.value.as_deref(), Some("3600000"));
    assert_eq!(r.config_source, DYNAMIC_DEFAULT);
    assert_eq!(
        synonyms(r),
        vec![
            syn("log.retention.ms", "3600000", DYNAMIC_DEFAULT),
            syn("log.retention.hours", "2", STATIC),
            syn("log.retention.hours", "168", DEFAULT),
        ]
    );
    // A topic override still wins, and heads the synonyms.
    let own = describe(&broker, TOPIC, "own").await;
    let r = entry(&own, "retention.ms");
    assert_eq!(r.value.as_deref(), Some("1000"));
    assert_eq!(synonyms(r)[0], syn("retention.ms", "1000", 1));
    // The topic's resolved settings (what produce checks) follow the new default.
    let topic = broker.topics.get("plain").unwrap();
    assert_eq!(topic.settings().max_message_bytes, 2_000_000);
    assert_eq!(
        topic.partitions()[0].settings().max_message_bytes,
        2_000_000
    );

    // A per-broker value beats the cluster default.
    let (code, msg) = incremental(
        &broker,
        "1",
        &[("message.max.bytes", SET, Some("3000000"))],
        false,
    )
    .await;
    assert_eq!(code, 0, "{msg:?}");
    let b = describe(&broker, BROKER, "1").await;
    assert_eq!(b.error_code, 0);
    let m = entry(&b, "message.max.bytes");
    assert_eq!(m.value.as_deref(), Some("3000000"));
    assert_eq!(m.config_source, DYNAMIC_BROKER);
    assert!(!m.read_only);
    assert!(m.documentation.as_deref().is_some_and(|d| !d.is_empty()));
    assert_eq!(
        synonyms(m),
        vec![
            syn("message.max.bytes", "3000000", DYNAMIC_BROKER),
            syn("message.max.bytes", "2000000", DYNAMIC_DEFAULT),
            syn("message.max.bytes", "500000", STATIC),
            syn("message.max.bytes", "1048588", DEFAULT),
        ]
    );
    assert!(entry(&b, "log.dirs").read_only);
    let partitions = entry(&b, "num.partitions");
    assert!(partitions.read_only);
    assert_eq!(partitions.config_type, 3, "INT");
    assert_eq!(partitions.config_source, DEFAULT);
    assert_eq!(entry(&b, "log.cleanup.policy").config_type, 7, "LIST");
    let t = describe(&broker, TOPIC, "plain").await;
    let m = entry(&t, "max.message.bytes");
    assert_eq!(m.value.as_deref(), Some("3000000"));
    assert_eq!(m.config_source, DYNAMIC_BROKER);
    assert_eq!(topic.settings().max_message_bytes, 3_000_000);

    // The default resource lists only the dynamic defaults, without per-broker synonyms.
    let d = describe(&broker, BROKER, "").await;
    let names: Vec<_> = d.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["log.retention.ms", "message.max.bytes"]);
    let m = entry(&d, "message.max.bytes");
    assert_eq!(m.config_source, DYNAMIC_DEFAULT);
    assert_eq!(m.value.as_deref(), Some("2000000"));
    // Only the dynamic default itself, as Kafka 4.4 reports it.
    assert_eq!(
        synonyms(m),
        vec![syn("message.max.bytes", "2000000", DYNAMIC_DEFAULT)]
    );

    // Restart on the same directory keeps both layers, read back from the file.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("dynamic-configs.json")).unwrap())
            .unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["brokers"]["1"]["message.max.bytes"], "3000000");
    assert_eq!(file["cluster_default"]["log.retention.ms"], "3600000");
    broker.shutdown();
    drop(broker);
    let broker = open(dir.path());
    let b = describe(&broker, BROKER, "1").await;
    let m = entry(&b, "message.max.bytes");
    assert_eq!(m.value.as_deref(), Some("3000000"));
    assert_eq!(m.config_source, DYNAMIC_BROKER);
    let t = describe(&broker, TOPIC, "plain").await;
    assert_eq!(
        entry(&t, "retention.ms").config_source,
        DYNAMIC_DEFAULT,
        "cluster default after restart"
    );
    assert_eq!(
        broker
            .topics
            .get("plain")
            .unwrap()
            .settings()
            .max_message_bytes,
        3_000_000
    );

    // DELETE removes a dynamic value; the layer below shows through again.
    let (code, _) = incremental(&broker, "1", &[("message.max.bytes", DELETE, None)], false).await;
    assert_eq!(code, 0);
    let b = describe(&broker, BROKER, "1").await;
    assert_eq!(
        entry(&b, "message.max.bytes").config_source,
        DYNAMIC_DEFAULT
    );
    assert_eq!(
        broker
            .topics
            .get("plain")
            .unwrap()
            .settings()
            .max_message_bytes,
        2_000_000
    );
    broker.shutdown();
}

#[tokio::test]
async fn legacy_alter_replaces_the_dynamic_set() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let (code, msg) = alter_legacy(
        &broker,
        "1",
        &[
            ("log.cleanup.policy", "compact"),
            ("log.segment.bytes", "2097152"),
        ],
        false,
    )
    .await;
    assert_eq!(code, 0, "{msg:?}");
    let (code, _) = alter_legacy(&broker, "1", &[("log.segment.bytes", "4194304")], false).await;
    assert_eq!(code, 0);
    let b = describe(&broker, BROKER, "1").await;
    let policy = entry(&b, "log.cleanup.policy");
    assert_eq!(policy.value.as_deref(), Some("delete"));
    assert_eq!(policy.config_source, DEFAULT);
    let seg = entry(&b, "log.segment.bytes");
    assert_eq!(seg.value.as_deref(), Some("4194304"));
    assert_eq!(seg.config_source, DYNAMIC_BROKER);

    // APPEND on a LIST key starts from the value below the layer.
    let (code, msg) = incremental(
        &broker,
        "1",
        &[("log.cleanup.policy", APPEND, Some("compact"))],
        false,
    )
    .await;
    assert_eq!(code, 0, "{msg:?}");
    let b = describe(&broker, BROKER, "1").await;
    assert_eq!(
        entry(&b, "log.cleanup.policy").value.as_deref(),
        Some("delete,compact")
    );
    // APPEND on a non-list key, SUBTRACT on an unknown one and a null value are refused with
    // Kafka 4.4's messages.
    let (code, msg) = incremental(
        &broker,
        "1",
        &[("log.segment.bytes", APPEND, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, ErrorCode::InvalidConfig.code());
    assert_eq!(
        msg.as_deref(),
        Some("Config value append is not allowed for config key: log.segment.bytes")
    );
    let (code, msg) = incremental(&broker, "1", &[("no.such.key", 3, Some("x"))], false).await;
    assert_eq!(code, ErrorCode::InvalidConfig.code());
    assert_eq!(msg.as_deref(), Some("Unknown config name: no.such.key"));
    let (code, msg) = incremental(&broker, "", &[("log.retention.ms", SET, None)], false).await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some("Null value not supported for : log.retention.ms")
    );
    broker.shutdown();
}

#[tokio::test]
async fn refusals_match_kafka_and_validate_only_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());

    // A static key: Kafka 4.4's message from `DynamicBrokerConfig.validateConfigs`, the keys
    // printed as a Java set.
    let (code, msg) = incremental(
        &broker,
        "1",
        &[
            ("log.dirs", SET, Some("/elsewhere")),
            ("log.retention.ms", SET, Some("5")),
        ],
        false,
    )
    .await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some("Cannot update these configs dynamically: [log.dirs]")
    );
    let (code, msg) = alter_legacy(&broker, "", &[("num.partitions", "3")], false).await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert!(
        msg.as_deref()
            .is_some_and(|m| m == "Cannot update these configs dynamically: [num.partitions]"),
        "{msg:?}"
    );

    // An invalid value names the key and the reason.
    let (code, msg) = incremental(
        &broker,
        "1",
        &[("log.message.timestamp.type", SET, Some("Now"))],
        false,
    )
    .await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some(
            "Invalid value Now for configuration log.message.timestamp.type: \
             String must be one of: CreateTime, LogAppendTime"
        )
    );
    let (code, msg) = incremental(
        &broker,
        "",
        &[("min.insync.replicas", SET, Some("0"))],
        false,
    )
    .await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert!(
        msg.as_deref()
            .is_some_and(|m| m.contains("min.insync.replicas: Value must be at least 1")),
        "{msg:?}"
    );

    // A per-broker key at the cluster-default level.
    let (code, msg) = incremental(
        &broker,
        "",
        &[("sasl.kerberos.min.time.before.relogin", SET, Some("70000"))],
        false,
    )
    .await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some(
            "Cannot update these configs at default cluster level, broker id must be specified: \
             [sasl.kerberos.min.time.before.relogin]"
        )
    );

    // Another broker's id.
    let (code, _) = incremental(&broker, "7", &[("log.retention.ms", SET, Some("5"))], false).await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());

    // validate_only: accepted, nothing changes, nothing is written.
    let (code, _) = incremental(&broker, "1", &[("log.retention.ms", SET, Some("5"))], true).await;
    assert_eq!(code, 0);
    let (code, _) = alter_legacy(&broker, "", &[("log.retention.ms", "5")], true).await;
    assert_eq!(code, 0);
    let b = describe(&broker, BROKER, "1").await;
    // Kafka reports the key's own value: only `log.retention.hours` is set, so
    // `log.retention.ms` is null (its synonyms before its own name are dropped).
    let ms = entry(&b, "log.retention.ms");
    assert_eq!((ms.value.as_deref(), ms.config_source), (None, DEFAULT));
    assert!(ms.synonyms.is_empty());
    assert!(describe(&broker, BROKER, "").await.configs.is_empty());
    assert!(!dir.path().join("dynamic-configs.json").exists());

    // Refused changes left nothing behind either.
    let b = describe(&broker, BROKER, "1").await;
    assert_eq!(
        entry(&b, "log.message.timestamp.type").config_source,
        DEFAULT
    );
    broker.shutdown();
}

/// Every Kafka 4.4 broker key is known: described with Kafka's type, default and
/// documentation, dynamic ones stored and reported, static ones refused as Kafka refuses them,
/// and keys Kafka does not know kept (hidden, as Kafka treats them as possibly sensitive).
#[tokio::test]
async fn every_kafka_broker_key_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let b = describe(&broker, BROKER, "1").await;
    assert!(b.configs.len() >= 350, "{} keys", b.configs.len());
    let relogin = entry(&b, "sasl.kerberos.min.time.before.relogin");
    assert_eq!(relogin.value.as_deref(), Some("60000"));
    assert_eq!(relogin.config_source, DEFAULT);
    assert_eq!(relogin.config_type, 5, "LONG");
    assert!(!relogin.read_only);
    assert!(
        relogin
            .documentation
            .as_deref()
            .is_some_and(|d| d.contains("Login thread sleep time"))
    );
    let password = entry(&b, "ssl.keystore.password");
    assert!(password.is_sensitive);
    assert_eq!(password.value, None);
    let hours = entry(&b, "log.retention.hours");
    assert_eq!(
        synonyms(hours),
        vec![
            syn("log.retention.hours", "2", STATIC),
            syn("log.retention.hours", "168", DEFAULT),
        ]
    );
    // Kafka's default where Arus does not implement the key, Arus's where it runs another.
    assert_eq!(
        entry(&b, "auto.leader.rebalance.enable").value.as_deref(),
        Some("true")
    );
    assert_eq!(
        entry(&b, "queued.max.request.bytes").value.as_deref(),
        Some("268435456")
    );

    // A dynamic key Arus does not implement: stored, reported, persisted.
    let (code, msg) = incremental(
        &broker,
        "1",
        &[
            ("sasl.kerberos.min.time.before.relogin", SET, Some("70000")),
            ("log.retention.ms", SET, Some("3600000")),
            ("no.such.key", SET, Some("1")),
        ],
        false,
    )
    .await;
    assert_eq!(code, 0, "{msg:?}");
    let b = describe(&broker, BROKER, "1").await;
    let relogin = entry(&b, "sasl.kerberos.min.time.before.relogin");
    assert_eq!(relogin.value.as_deref(), Some("70000"));
    assert_eq!(relogin.config_source, DYNAMIC_BROKER);
    assert_eq!(
        synonyms(relogin),
        vec![
            syn(
                "sasl.kerberos.min.time.before.relogin",
                "70000",
                DYNAMIC_BROKER
            ),
            syn("sasl.kerberos.min.time.before.relogin", "60000", DEFAULT),
        ]
    );
    // Kafka's order: layer by layer, each in `brokerConfigSynonyms` order.
    assert_eq!(
        synonyms(entry(&b, "log.retention.ms")),
        vec![
            syn("log.retention.ms", "3600000", DYNAMIC_BROKER),
            syn("log.retention.hours", "2", STATIC),
            syn("log.retention.hours", "168", DEFAULT),
        ]
    );
    let unknown = entry(&b, "no.such.key");
    assert!(unknown.is_sensitive);
    assert_eq!(unknown.value, None);
    assert_eq!(unknown.config_type, 0);
    assert_eq!(unknown.config_source, DYNAMIC_BROKER);
    assert_eq!(unknown.synonyms.len(), 1);
    assert_eq!(unknown.synonyms[0].value, None);

    // A read-only Kafka key Arus does not implement is refused like any read-only key.
    let (code, msg) = incremental(
        &broker,
        "1",
        &[("auto.leader.rebalance.enable", SET, Some("false"))],
        false,
    )
    .await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some("Cannot update these configs dynamically: [auto.leader.rebalance.enable]")
    );
    // Type checks come from Kafka's definitions too.
    let (code, msg) = incremental(
        &broker,
        "1",
        &[("sasl.kerberos.min.time.before.relogin", SET, Some("soon"))],
        false,
    )
    .await;
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some(
            "Invalid value soon for configuration sasl.kerberos.min.time.before.relogin: \
             Not a number of type LONG"
        )
    );

    broker.shutdown();
    drop(broker);
    let broker = open(dir.path());
    let b = describe(&broker, BROKER, "1").await;
    assert_eq!(
        entry(&b, "sasl.kerberos.min.time.before.relogin")
            .value
            .as_deref(),
        Some("70000")
    );
    assert_eq!(entry(&b, "no.such.key").config_source, DYNAMIC_BROKER);
    broker.shutdown();
}
