//! ListConfigResources (KIP-1142; v0 was KIP-714's ListClientMetricsResources): the
//! resources that have configs, as `KafkaApis.handleListConfigResources` lists them.
//!
//! v0 knows only CLIENT_METRICS; v1 takes a type filter (empty = every supported type:
//! TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP) and refuses an unsupported type with
//! UNSUPPORTED_VERSION and no resources. Resources come in Kafka's order: groups with
//! configs, client-metrics subscriptions, the broker (for its loggers, then its configs),
//! then every topic.

use arus_protocol::ErrorCode;
use arus_protocol::messages::ListConfigResourcesRequest;
use arus_protocol::messages::list_config_resources_response::{
    ConfigResource, ListConfigResourcesResponse,
};
use tracing::info;

use crate::Broker;
use crate::resource_configs::ResourceKind;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

fn supported(version: i16) -> &'static [i8] {
    if version == 0 {
        &[CLIENT_METRICS]
    } else {
        &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
    }
}

pub fn handle(
    broker: &Broker,
    request: &ListConfigResourcesRequest,
    version: i16,
) -> ListConfigResourcesResponse {
    let supported = supported(version);
    let types: Vec<i8> = if request.resource_types.is_empty() {
        supported.to_vec()
    } else {
        request.resource_types.clone()
    };
    if let Some(bad) = types.iter().find(|t| !supported.contains(t)) {
        info!(
            resource_type = bad,
            "ListConfigResources refused: unsupported resource type"
        );
        return ListConfigResourcesResponse {
            error_code: ErrorCode::UnsupportedVersion.code(),
            config_resources: vec![],
            ..Default::default()
        };
    }
    let mut resources = Vec::new();
    let mut add = |resource_type: i8, names: Vec<String>| {
        if types.contains(&resource_type) {
            resources.extend(names.into_iter().map(|resource_name| ConfigResource {
                resource_name,
                resource_type,
                ..Default::default()
            }));
        }
    };
    let node = broker.node_id().to_string();
    add(
        GROUP,
        broker
            .resource_configs
            .all(ResourceKind::Group)
            .into_keys()
            .collect(),
    );
    add(
        CLIENT_METRICS,
        broker
            .resource_configs
            .all(ResourceKind::ClientMetrics)
            .into_keys()
            .collect(),
    );
    add(BROKER_LOGGER, vec![node.clone()]);
    add(BROKER, vec![node]);
    add(
        TOPIC,
        broker.topics.all().iter().map(|t| t.name.clone()).collect(),
    );
    ListConfigResourcesResponse {
        error_code: ErrorCode::None.code(),
        config_resources: resources,
        ..Default::default()
    }
}
