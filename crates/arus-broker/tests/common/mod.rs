//! What several broker test files need: a broker on a temp directory, topics, one request
//! through [`Broker::handle`], a produce request, and an IncrementalAlterConfigs of one
//! resource.
#![allow(dead_code)]
#![allow(clippy::needless_update)] // samples stay valid as specs add fields

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_broker::topics::NewTopic;
use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::IncrementalAlterConfigsRequest;
use arus_protocol::messages::ProduceRequest;
use arus_protocol::messages::incremental_alter_configs_request as inc;
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::produce_response::PartitionProduceResponse;
use arus_protocol::{ApiKey, Bytes, Request, RequestHeader, Response};

/// A broker on `dir` with the given properties besides `log.dirs`.
pub fn open_broker(dir: &std::path::Path, props: &[(&str, &str)]) -> Arc<Broker> {
    let mut map: BTreeMap<String, String> = props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert("log.dirs".to_string(), dir.display().to_string());
    Broker::open(BrokerConfig::from_properties(map).unwrap()).unwrap()
}

/// Creates a one-partition topic with `configs`.
pub fn create_topic(broker: &Broker, name: &str, configs: &[(&str, &str)]) {
    broker
        .topics
        .create(NewTopic {
            name: name.into(),
            partitions: 1,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .unwrap();
}

/// Creates a topic of `partitions` partitions with the broker's defaults.
pub fn create_topic_with_partitions(broker: &Broker, name: &str, partitions: i32) {
    broker
        .topics
        .create(NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
}

/// Produces `records` (v2 batches) to partition 0 of `topic` with `acks`, as Produce v9, and
/// returns the partition's answer.
pub async fn produce(
    broker: &Arc<Broker>,
    topic: &str,
    records: Bytes,
    acks: i16,
) -> PartitionProduceResponse {
    let req = ProduceRequest {
        acks,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let header = RequestHeader {
        request_api_key: 0,
        request_api_version: 9,
        correlation_id: 1,
        client_id: Some("test".into()),
        ..Default::default()
    };
    match broker.handle(&header, Request::Produce(req)).await {
        Outcome::Respond(Response::Produce(r)) => r.responses[0].partition_responses[0].clone(),
        other => panic!("{other:?}"),
    }
}

/// `req` through [`Broker::handle`] at `version`, sent as client `client_id`; the answer.
pub async fn call_as(
    broker: &Arc<Broker>,
    client_id: &str,
    key: ApiKey,
    version: i16,
    req: Request,
) -> Response {
    let header = RequestHeader {
        request_api_key: key as i16,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some(client_id.into()),
        ..Default::default()
    };
    match broker.handle(&header, req).await {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

/// [`call_as`] from client `test`.
pub async fn call(broker: &Arc<Broker>, key: ApiKey, version: i16, req: Request) -> Response {
    call_as(broker, "test", key, version, req).await
}

/// IncrementalAlterConfigs (v1) of one resource with `(name, operation, value)` ops; the
/// resource's (error code, message).
pub async fn incremental_alter(
    broker: &Arc<Broker>,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let req = Request::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
        resources: vec![inc::AlterConfigsResource {
            resource_type,
            resource_name: name.into(),
            configs: ops
                .iter()
                .map(|(k, op, v)| inc::AlterableConfig {
                    name: k.to_string(),
                    config_operation: *op,
                    value: v.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        validate_only,
        ..Default::default()
    });
    match call(broker, ApiKey::IncrementalAlterConfigs, 1, req).await {
        Response::IncrementalAlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0].error_message.clone(),
        ),
        other => panic!("{other:?}"),
    }
}
