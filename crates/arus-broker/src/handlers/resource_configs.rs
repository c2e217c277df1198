//! DescribeConfigs and IncrementalAlterConfigs for CLIENT_METRICS resources (KIP-714
//! subscriptions) and GROUP resources (KIP-848 group configs), called from
//! [`super::configs`]; the keys and their validation are in
//! [`crate::resource_configs::client_metrics`] and [`crate::resource_configs::group`], the
//! durable store in [`crate::resource_configs`]. A successful change re-arms the telemetry
//! subscriptions, or hands the group's session timeout and heartbeat interval to the KIP-848
//! coordinator.

use arus_protocol::ErrorCode;
use arus_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use tracing::info;

use crate::Broker;
use crate::config_defs::ConfigType;
use crate::resource_configs::client_metrics::{self, Subscription};
use crate::resource_configs::{ConfigMap, group};
use crate::resource_configs::{ResourceConfigsError, ResourceKind};
use crate::topic_settings::ConfigSource;

pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const RESOURCE_GROUP: i8 = 32;

/// One described key, as DescribeConfigs reports it.
pub struct Described {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    pub kind: ConfigType,
    pub doc: &'static str,
    pub synonyms: Vec<(String, String, ConfigSource)>,
}

type Refusal = (ErrorCode, String);

enum AlterError {
    Refused(Refusal),
    Store(ResourceConfigsError),
}

impl From<ResourceConfigsError> for AlterError {
    fn from(e: ResourceConfigsError) -> Self {
        AlterError::Store(e)
    }
}

/// Every key of subscription `name`: its own value (source CLIENT_METRICS_CONFIG, itself as
/// the only synonym) or Kafka's default (no synonyms). A subscription that does not exist
/// is described with the defaults, as Kafka does.
pub fn describe_client_metrics(broker: &Broker, name: &str) -> Result<Vec<Described>, Refusal> {
    if name.is_empty() {
        return Err((
            ErrorCode::InvalidRequest,
            "Client metrics subscription name must not be empty".into(),
        ));
    }
    let set = broker
        .resource_configs
        .get(ResourceKind::ClientMetrics, name);
    Ok(client_metrics::KEYS
        .iter()
        .map(|k| match set.get(k.name) {
            Some(v) => Described {
                name: k.name.into(),
                value: v.clone(),
                source: ConfigSource::ClientMetricsConfig,
                kind: k.kind,
                doc: k.doc,
                synonyms: vec![(k.name.into(), v.clone(), ConfigSource::ClientMetricsConfig)],
            },
            None => Described {
                name: k.name.into(),
                value: k.default.into(),
                source: ConfigSource::DefaultConfig,
                kind: k.kind,
                doc: k.doc,
                synonyms: vec![],
            },
        })
        .collect())
}

/// Applies an IncrementalAlterConfigs to subscription `name`, durably unless
/// `validate_only`.
pub fn alter_client_metrics(
    broker: &Broker,
    name: &str,
    configs: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), Refusal> {
    change_client_metrics(broker, name, validate_only, |map| {
        for c in configs {
            client_metrics::apply_op(map, &c.name, c.config_operation, c.value.as_deref())?;
        }
        Ok(())
    })
}

/// Legacy AlterConfigs: the subscription's keys become exactly `configs`.
pub fn replace_client_metrics(
    broker: &Broker,
    name: &str,
    configs: &[(String, Option<String>)],
    validate_only: bool,
) -> Result<(), Refusal> {
    change_client_metrics(broker, name, validate_only, |map| replace(map, configs))
}

/// All of the keys replaced by `configs` (a null value is refused, as Kafka does).
fn replace(map: &mut ConfigMap, configs: &[(String, Option<String>)]) -> Result<(), Refusal> {
    map.clear();
    for (key, value) in configs {
        let Some(value) = value else {
            return Err((
                ErrorCode::InvalidRequest,
                format!("Null value not supported for : {key}"),
            ));
        };
        map.insert(key.clone(), value.clone());
    }
    Ok(())
}

fn change_client_metrics(
    broker: &Broker,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut ConfigMap) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    let result =
        broker
            .resource_configs
            .update(ResourceKind::ClientMetrics, name, validate_only, |map| {
                change(map).map_err(AlterError::Refused)?;
                *map = client_metrics::validate(name, map).map_err(AlterError::Refused)?;
                Ok(())
            });
    match result {
        Ok(_) => {
            if !validate_only {
                info!(subscription = %name, "client metrics subscription altered");
                refresh_subscriptions(broker);
            }
            Ok(())
        }
        Err(AlterError::Refused((code, message))) => {
            info!(subscription = %name, code = code.name(), %message, "client metrics change refused");
            Err((code, message))
        }
        Err(AlterError::Store(e)) => {
            tracing::error!(subscription = %name, error = %e, "cannot persist client metrics subscription");
            Err((ErrorCode::KafkaStorageError, e.to_string()))
        }
    }
}

/// Hands the stored subscriptions to the telemetry state (at start and after each change).
pub fn refresh_subscriptions(broker: &Broker) {
    let subscriptions = broker
        .resource_configs
        .all(ResourceKind::ClientMetrics)
        .iter()
        .filter_map(|(name, map)| Subscription::from_stored(name, map))
        .collect();
    broker.telemetry.lock().set_subscriptions(subscriptions);
}

/// Hands group `name`'s stored keys to the consumer-group coordinator, after a local change
/// or one from the cluster metadata. Re-read rather than passed: when two changes race, the
/// coordinator ends with what the store holds last.
pub fn group_configs_changed(broker: &Broker, name: &str) {
    let stored = broker.resource_configs.get(ResourceKind::Group, name);
    broker.groups.set_consumer_overrides(name, &stored);
}

/// Every key Kafka describes for group `name`: its own value (source GROUP_CONFIG) or the
/// broker's value of its synonym; synonyms list the group's value, then the broker's.
/// A group that does not exist is described with the broker's values, as Kafka does.
pub fn describe_group(broker: &Broker, name: &str) -> Result<Vec<Described>, Refusal> {
    if name.is_empty() {
        return Err((
            ErrorCode::InvalidRequest,
            "Group name must not be empty".into(),
        ));
    }
    let set = broker.resource_configs.get(ResourceKind::Group, name);
    Ok(group::KEYS
        .iter()
        .map(|k| {
            let (broker_value, broker_source) =
                group::broker_value(&broker.config, k.synonym, k.default);
            let broker_synonym = (k.synonym.to_string(), broker_value.clone(), broker_source);
            match set.get(k.name) {
                Some(v) => Described {
                    name: k.name.into(),
                    value: v.clone(),
                    source: ConfigSource::GroupConfig,
                    kind: k.kind,
                    doc: k.doc,
                    synonyms: vec![
                        (k.name.into(), v.clone(), ConfigSource::GroupConfig),
                        broker_synonym,
                    ],
                },
                None => Described {
                    name: k.name.into(),
                    value: broker_value,
                    source: broker_source,
                    kind: k.kind,
                    doc: k.doc,
                    synonyms: vec![broker_synonym],
                },
            }
        })
        .collect())
}

/// One IncrementalAlterConfigs operation on a group's keys.
fn apply_group_op(map: &mut ConfigMap, c: &AlterableConfig) -> Result<(), Refusal> {
    use client_metrics::{OP_APPEND, OP_SUBTRACT};
    let is_list = group::key(&c.name).is_some_and(|k| k.kind == ConfigType::List);
    if (c.config_operation == OP_APPEND || c.config_operation == OP_SUBTRACT) && is_list {
        let mut items = crate::resource_configs::parse_list(map.get(&c.name).map_or("", |v| v));
        for v in crate::resource_configs::parse_list(c.value.as_deref().unwrap_or("")) {
            if c.config_operation == OP_APPEND {
                if !items.contains(&v) {
                    items.push(v);
                }
            } else {
                items.retain(|i| *i != v);
            }
        }
        map.insert(c.name.clone(), items.join(","));
        return Ok(());
    }
    client_metrics::apply_op(map, &c.name, c.config_operation, c.value.as_deref())
}

/// Applies an IncrementalAlterConfigs to group `name`, durably unless `validate_only`, and
/// hands the result to the consumer-group coordinator.
pub fn alter_group(
    broker: &Broker,
    name: &str,
    configs: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), Refusal> {
    change_group(broker, name, validate_only, |map| {
        configs.iter().try_for_each(|c| apply_group_op(map, c))
    })
}

/// Legacy AlterConfigs: the group's keys become exactly `configs`.
pub fn replace_group(
    broker: &Broker,
    name: &str,
    configs: &[(String, Option<String>)],
    validate_only: bool,
) -> Result<(), Refusal> {
    change_group(broker, name, validate_only, |map| replace(map, configs))
}

fn change_group(
    broker: &Broker,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut ConfigMap) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    if name.is_empty() {
        return Err((
            ErrorCode::InvalidRequest,
            "Default group resources are not allowed.".into(),
        ));
    }
    let result = broker
        .resource_configs
        .update(ResourceKind::Group, name, validate_only, |map| {
            change(map).map_err(AlterError::Refused)?;
            group::validate(&broker.config, map).map_err(AlterError::Refused)
        });
    match result {
        Ok(_) => {
            if !validate_only {
                info!(group = %name, "group configs altered");
                group_configs_changed(broker, name);
            }
            Ok(())
        }
        Err(AlterError::Refused((code, message))) => {
            info!(group = %name, code = code.name(), %message, "group config change refused");
            Err((code, message))
        }
        Err(AlterError::Store(e)) => {
            tracing::error!(group = %name, error = %e, "cannot persist group configs");
            Err((ErrorCode::KafkaStorageError, e.to_string()))
        }
    }
}
