//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and for the broker
//! resource: the broker's own node id addresses its dynamic per-broker configs, the empty
//! name the cluster-wide dynamic defaults (KIP-226, see [`crate::dynamic_config`]).

use std::collections::BTreeMap;

use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use arus_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};
use arus_protocol::messages::incremental_alter_configs_response as incremental;
use arus_protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use crate::broker::Broker;
use crate::config_defs::{ConfigType, topic_config};
use crate::dynamic_config::{self, DynamicConfigError, DynamicScope, broker_config_key};
use crate::topic_settings::{ConfigSource, validate_overrides};
use crate::topics::TopicError;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;

struct Entry {
    name: String,
    value: Option<String>,
    source: ConfigSource,
    /// `None` where Kafka cannot tell the type (unknown keys): reported as UNKNOWN (0).
    kind: Option<ConfigType>,
    doc: Option<&'static str>,
    read_only: bool,
    sensitive: bool,
    synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

impl From<super::resource_configs::Described> for Entry {
    fn from(d: super::resource_configs::Described) -> Entry {
        Entry {
            name: d.name,
            value: Some(d.value),
            source: d.source,
            kind: Some(d.kind),
            doc: Some(d.doc),
            read_only: false,
            sensitive: false,
            synonyms: d
                .synonyms
                .into_iter()
                .map(|(name, value, source)| (name, Some(value), source))
                .collect(),
        }
    }
}

fn topic_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, (ErrorCode, String)> {
    let topic = broker.topics.get(name).ok_or((
        ErrorCode::UnknownTopicOrPartition,
        format!("Topic {name} does not exist."),
    ))?;
    Ok(topic
        .settings()
        .describe(&broker.config)
        .into_iter()
        .map(|d| Entry {
            name: d.name.to_string(),
            value: Some(d.value),
            source: d.source,
            kind: Some(d.def.kind),
            doc: Some(d.def.doc),
            read_only: false,
            sensitive: false,
            synonyms: d
                .synonyms
                .into_iter()
                .map(|(n, v, s)| (n, Some(v), s))
                .collect(),
        })
        .collect())
}

/// Which dynamic layer a BROKER resource name addresses.
fn broker_scope(broker: &Broker, name: &str) -> Result<DynamicScope, (ErrorCode, String)> {
    if name.is_empty() {
        return Ok(DynamicScope::ClusterDefault);
    }
    if name.parse::<i32>().ok() != Some(broker.node_id()) {
        return Err((
            ErrorCode::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} but received {name}",
                broker.node_id()
            ),
        ));
    }
    Ok(DynamicScope::Broker)
}

/// One broker key as Kafka reports it; `per_broker` false for the cluster-default resource.
fn broker_entry(broker: &Broker, name: &str, per_broker: bool) -> Entry {
    let d = broker.config.describe_key(name, per_broker);
    let key = broker_config_key(name);
    Entry {
        name: name.to_string(),
        value: d.value,
        source: if per_broker {
            d.source
        } else {
            ConfigSource::DynamicDefaultBrokerConfig
        },
        kind: key.map(|k| k.kind),
        doc: key.map(|k| k.doc),
        read_only: !key.is_some_and(|k| k.dynamic),
        sensitive: d.sensitive,
        synonyms: d.synonyms,
    }
}

fn broker_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, (ErrorCode, String)> {
    let config = &broker.config;
    match broker_scope(broker, name)? {
        // Kafka's `ConfigHelper`: the default resource lists only the dynamic defaults set,
        // with synonyms that leave out per-broker values.
        DynamicScope::ClusterDefault => Ok(config
            .dynamic()
            .layer(DynamicScope::ClusterDefault)
            .into_keys()
            .map(|key| broker_entry(broker, &key, false))
            .collect()),
        DynamicScope::Broker => Ok(config
            .described_keys()
            .iter()
            .map(|key| broker_entry(broker, key, true))
            .collect()),
    }
}

pub fn describe(
    broker: &Broker,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            let entries = match r.resource_type {
                RESOURCE_TOPIC => topic_entries(broker, &r.resource_name),
                RESOURCE_BROKER => broker_entries(broker, &r.resource_name),
                super::resource_configs::RESOURCE_CLIENT_METRICS => {
                    super::resource_configs::describe_client_metrics(broker, &r.resource_name)
                        .map(|d| d.into_iter().map(Entry::from).collect())
                }
                super::resource_configs::RESOURCE_GROUP => {
                    super::resource_configs::describe_group(broker, &r.resource_name)
                        .map(|d| d.into_iter().map(Entry::from).collect())
                }
                RESOURCE_BROKER_LOGGER => {
                    crate::broker_logger::describe(broker.node_id(), &r.resource_name).map(|l| {
                        l.into_iter()
                            .map(|l| Entry {
                                name: l.name,
                                value: Some(l.level),
                                source: ConfigSource::DynamicBrokerLoggerConfig,
                                kind: None,
                                doc: None,
                                read_only: false,
                                sensitive: false,
                                synonyms: Vec::new(),
                            })
                            .collect()
                    })
                }
                other => Err((
                    ErrorCode::InvalidRequest,
                    format!("Resource type {other} is not supported by DescribeConfigs yet"),
                )),
            };
            match entries {
                Ok(entries) => DescribeConfigsResult {
                    error_code: ErrorCode::None.code(),
                    error_message: None,
                    resource_type: r.resource_type,
                    resource_name: r.resource_name,
                    configs: entries
                        .into_iter()
                        .filter(|e| {
                            r.configuration_keys
                                .as_ref()
                                .is_none_or(|keys| keys.is_empty() || keys.contains(&e.name))
                        })
                        .map(|e| DescribeConfigsResourceResult {
                            config_source: e.source as i8,
                            read_only: e.read_only,
                            is_sensitive: e.sensitive,
                            synonyms: if request.include_synonyms && version >= 1 {
                                e.synonyms
                                    .into_iter()
                                    .map(|(name, value, source)| DescribeConfigsSynonym {
                                        name,
                                        value,
                                        source: source as i8,
                                        ..Default::default()
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            },
                            config_type: e.kind.map_or(0, |k| k as i8),
                            documentation: e
                                .doc
                                .filter(|_| request.include_documentation && version >= 3)
                                .map(str::to_string),
                            name: e.name,
                            value: e.value,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
                Err((code, message)) => DescribeConfigsResult {
                    error_code: code.code(),
                    error_message: Some(message),
                    resource_type: r.resource_type,
                    resource_name: r.resource_name,
                    configs: Vec::new(),
                    ..Default::default()
                },
            }
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

/// Applies `change` to a topic's overrides, validating the result; `validate_only` checks
/// without applying.
fn alter_topic(
    broker: &Broker,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), (ErrorCode, String)>,
) -> Result<(), (ErrorCode, String)> {
    let topic = broker.topics.get(name).ok_or((
        ErrorCode::UnknownTopicOrPartition,
        format!("Topic {name} does not exist."),
    ))?;
    let mut overrides = topic.settings().overrides.clone();
    change(&mut overrides)?;
    validate_overrides(&overrides).map_err(|e| (ErrorCode::InvalidConfig, e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    broker
        .topics
        .set_configs(&topic, overrides)
        .map_err(|e: TopicError| (e.code(), e.to_string()))
}

/// Applies `change` to one dynamic layer of the broker resource `name`, validating the
/// result as Kafka's `ConfigAdminManager.validateBrokerConfigChange` does; `validate_only`
/// checks without applying. Topics are re-resolved when a topic-config synonym changed.
fn alter_broker(
    broker: &Broker,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>, DynamicScope) -> Result<(), (ErrorCode, String)>,
) -> Result<(), (ErrorCode, String)> {
    let scope = broker_scope(broker, name)?;
    let layers = broker.config.dynamic();
    let before = layers.layer(scope);
    let changed = layers.update::<(ErrorCode, String)>(scope, validate_only, |props| {
        change(props, scope)?;
        dynamic_config::validate_dynamic(props, scope).inspect_err(|(code, message)| {
            tracing::warn!(resource = name, ?code, %message, "refused broker config change");
        })?;
        for key in props.keys() {
            if !validate_only
                && !before.contains_key(key)
                && broker_config_key(key).is_none_or(|k| !k.implemented)
            {
                tracing::warn!(
                    key = %key,
                    "dynamic broker config stored and reported, but Arus does not implement it"
                );
            }
        }
        Ok(())
    })?;
    if changed {
        let after = layers.layer(scope);
        dynamic_config::after_layer_change(broker, &before, &after)
            .map_err(|e| (e.code(), e.to_string()))?;
    }
    Ok(())
}

impl From<DynamicConfigError> for (ErrorCode, String) {
    fn from(e: DynamicConfigError) -> Self {
        (ErrorCode::UnknownServerError, e.to_string())
    }
}

pub fn alter(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|r| {
            let result = match r.resource_type {
                RESOURCE_TOPIC => {
                    alter_topic(broker, &r.resource_name, request.validate_only, |o| {
                        // Legacy AlterConfigs replaces the whole set of overrides.
                        o.clear();
                        for c in &r.configs {
                            let value = c.value.clone().ok_or_else(|| {
                                (
                                    ErrorCode::InvalidRequest,
                                    format!("Null value not supported for : {}", c.name),
                                )
                            })?;
                            o.insert(c.name.clone(), value);
                        }
                        Ok(())
                    })
                }
                RESOURCE_BROKER => {
                    alter_broker(broker, &r.resource_name, request.validate_only, |o, _| {
                        // Legacy AlterConfigs replaces the whole dynamic set of the resource
                        // (Kafka's `alterBrokerConfigs`).
                        o.clear();
                        for c in &r.configs {
                            if let Some(value) = &c.value {
                                o.insert(c.name.clone(), value.clone());
                            }
                        }
                        Ok(())
                    })
                }
                super::resource_configs::RESOURCE_CLIENT_METRICS
                | super::resource_configs::RESOURCE_GROUP => {
                    let configs: Vec<(String, Option<String>)> = r
                        .configs
                        .iter()
                        .map(|c| (c.name.clone(), c.value.clone()))
                        .collect();
                    if r.resource_type == super::resource_configs::RESOURCE_GROUP {
                        super::resource_configs::replace_group(
                            broker,
                            &r.resource_name,
                            &configs,
                            request.validate_only,
                        )
                    } else {
                        super::resource_configs::replace_client_metrics(
                            broker,
                            &r.resource_name,
                            &configs,
                            request.validate_only,
                        )
                    }
                }
                other => Err((
                    ErrorCode::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            let (code, message) = match result {
                Ok(()) => (ErrorCode::None, None),
                Err((c, m)) => (c, Some(m)),
            };
            AlterConfigsResourceResponse {
                error_code: code.code(),
                error_message: message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    AlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub fn incremental_alter(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> incremental::IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|r| {
            // Kafka 4.4 checks this first, for every resource type.
            let null_value = r
                .configs
                .iter()
                .find(|c| c.config_operation != OP_DELETE && c.value.is_none());
            let result = match r.resource_type {
                _ if let Some(c) = null_value => Err((
                    ErrorCode::InvalidRequest,
                    format!("Null value not supported for : {}", c.name),
                )),
                RESOURCE_TOPIC => alter_topic(broker, &r.resource_name, request.validate_only, |o| {
                    for c in &r.configs {
                        let def = topic_config(&c.name).ok_or_else(|| {
                            (ErrorCode::InvalidConfig, format!("Unknown topic config name: {}", c.name))
                        })?;
                        let value = c.value.clone().unwrap_or_default();
                        match c.config_operation {
                            OP_SET => {
                                o.insert(c.name.clone(), value);
                            }
                            OP_DELETE => {
                                o.remove(&c.name);
                            }
                            OP_APPEND | OP_SUBTRACT => {
                                if def.kind != ConfigType::List {
                                    return Err((
                                        ErrorCode::InvalidConfig,
                                        format!("Config value append/subtract is not allowed for config key {} which is not of type LIST", c.name),
                                    ));
                                }
                                let current = o.get(&c.name).cloned().unwrap_or_else(|| {
                                    broker.config.topic_default(&c.name).map(|(v, _)| v).unwrap_or_default()
                                });
                                o.insert(c.name.clone(), apply_list_op(&current, &value, c.config_operation));
                            }
                            other => {
                                return Err((ErrorCode::InvalidRequest, format!("Unknown config operation {other}")));
                            }
                        }
                    }
                    Ok(())
                }),
                RESOURCE_BROKER => alter_broker(broker, &r.resource_name, request.validate_only, |o, scope| {
                    for c in &r.configs {
                        let value = c.value.clone().unwrap_or_default();
                        match c.config_operation {
                            OP_SET => {
                                o.insert(c.name.clone(), value);
                            }
                            OP_DELETE => {
                                o.remove(&c.name);
                            }
                            OP_APPEND | OP_SUBTRACT => {
                                // Kafka 4.4's `ConfigurationControlManager` messages.
                                let Some(key) = broker_config_key(&c.name) else {
                                    return Err((ErrorCode::InvalidConfig, format!("Unknown config name: {}", c.name)));
                                };
                                if key.kind != ConfigType::List {
                                    let verb = if c.config_operation == OP_APPEND { "append" } else { "subtract" };
                                    return Err((
                                        ErrorCode::InvalidConfig,
                                        format!("Config value {verb} is not allowed for config key: {}", c.name),
                                    ));
                                }
                                // The layer's value, else what the layers below it give.
                                let current = o.get(&c.name).cloned().unwrap_or_else(|| {
                                    broker
                                        .config
                                        .broker_value_chain(c.name.as_str(), key.default, false)
                                        .into_iter()
                                        .find(|(_, _, s)| scope == DynamicScope::Broker || *s != ConfigSource::DynamicDefaultBrokerConfig)
                                        .map(|(_, v, _)| v)
                                        .unwrap_or_default()
                                });
                                o.insert(c.name.clone(), apply_list_op(&current, &value, c.config_operation));
                            }
                            other => {
                                return Err((ErrorCode::InvalidRequest, format!("Unknown config operation {other}")));
                            }
                        }
                    }
                    Ok(())
                }),
                super::resource_configs::RESOURCE_CLIENT_METRICS => super::resource_configs::alter_client_metrics(
                    broker,
                    &r.resource_name,
                    &r.configs,
                    request.validate_only,
                ),
                super::resource_configs::RESOURCE_GROUP => super::resource_configs::alter_group(
                    broker,
                    &r.resource_name,
                    &r.configs,
                    request.validate_only,
                ),
                RESOURCE_BROKER_LOGGER => crate::broker_logger::alter(
                    broker.node_id(),
                    &r.resource_name,
                    &r.configs,
                    request.validate_only,
                ),
                other => Err((ErrorCode::InvalidRequest, format!("Unsupported resource type {other}"))),
            };
            let (code, message) = match result {
                Ok(()) => (ErrorCode::None, None),
                Err((c, m)) => (c, Some(m)),
            };
            incremental::AlterConfigsResourceResponse {
                error_code: code.code(),
                error_message: message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    incremental::IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

/// APPEND adds the items not yet present; SUBTRACT removes them (Kafka's
/// `IncrementalAlterConfigs` list semantics).
fn apply_list_op(current: &str, value: &str, op: i8) -> String {
    let mut items: Vec<String> = current
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if op == OP_APPEND {
            if !items.iter().any(|i| i == v) {
                items.push(v.to_string());
            }
        } else {
            items.retain(|i| i != v);
        }
    }
    items.join(",")
}
