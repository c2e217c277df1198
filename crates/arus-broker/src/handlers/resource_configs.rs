//! DescribeConfigs and IncrementalAlterConfigs for CLIENT_METRICS resources (KIP-714
//! subscriptions), called from [`super::configs`]; the keys and their validation are in
//! [`crate::resource_configs::client_metrics`], the durable store in
//! [`crate::resource_configs`]. A successful change re-arms the telemetry subscriptions.

use arus_protocol::ErrorCode;
use arus_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use tracing::info;

use crate::Broker;
use crate::config_defs::ConfigType;
use crate::resource_configs::client_metrics::{self, Subscription};
use crate::resource_configs::{ResourceConfigsError, ResourceKind};
use crate::topic_settings::ConfigSource;

pub const RESOURCE_CLIENT_METRICS: i8 = 16;

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
    let result =
        broker
            .resource_configs
            .update(ResourceKind::ClientMetrics, name, validate_only, |map| {
                for c in configs {
                    client_metrics::apply_op(map, &c.name, c.config_operation, c.value.as_deref())
                        .map_err(AlterError::Refused)?;
                }
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
