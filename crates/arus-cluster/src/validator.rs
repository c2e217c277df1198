//! What a config may hold, for the controller: the broker's own config definitions (topic
//! configs, dynamic broker configs, GROUP and CLIENT_METRICS keys) behind
//! `arus_controller::ConfigValidator`, so the controller refuses exactly what the
//! single-node broker refused, with the same codes and messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_broker::BrokerConfig;
use arus_broker::config_defs::{ConfigType, topic_config};
use arus_broker::dynamic_config::{DynamicScope, broker_config_key, validate_dynamic};
use arus_broker::resource_configs::{client_metrics, group};
use arus_broker::topic_settings::validate_overrides;
use arus_controller::{ConfigResource, ConfigValidator, ControllerError};
use arus_metadata::image::resource_type;
use arus_protocol::ErrorCode;

/// See the module documentation.
pub struct BrokerConfigValidator {
    pub config: Arc<BrokerConfig>,
}

impl ConfigValidator for BrokerConfigValidator {
    fn validate(
        &self,
        resource: &ConfigResource,
        new_configs: &BTreeMap<String, String>,
        _existing: &BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        match resource.resource_type {
            resource_type::TOPIC => validate_overrides(new_configs)
                .map_err(|e| ControllerError::new(ErrorCode::InvalidConfig, e.to_string())),
            resource_type::BROKER => {
                let scope = if resource.name.is_empty() {
                    DynamicScope::ClusterDefault
                } else {
                    DynamicScope::Broker
                };
                validate_dynamic(new_configs, scope)
                    .map_err(|(code, message)| ControllerError::new(code, message))
            }
            resource_type::GROUP => group::validate(&self.config, new_configs)
                .map_err(|(code, message)| ControllerError::new(code, message)),
            resource_type::CLIENT_METRICS => client_metrics::validate(&resource.name, new_configs)
                .map(|_| ())
                .map_err(|(code, message)| ControllerError::new(code, message)),
            other => Err(ControllerError::new(
                ErrorCode::InvalidRequest,
                format!("Unknown resource type {other}"),
            )),
        }
    }

    fn is_list(&self, resource: &ConfigResource, key: &str) -> bool {
        let kind = match resource.resource_type {
            resource_type::TOPIC => topic_config(key).map(|d| d.kind),
            resource_type::BROKER => broker_config_key(key).map(|k| k.kind),
            _ => None,
        };
        kind == Some(ConfigType::List)
    }

    fn default_value(&self, resource: &ConfigResource, key: &str) -> Option<String> {
        match resource.resource_type {
            resource_type::TOPIC => self
                .config
                .topic_default(key)
                .map(|(v, _)| v)
                .or_else(|| topic_config(key).map(|d| d.default.to_string())),
            resource_type::BROKER => {
                broker_config_key(key).and_then(|k| k.default.map(str::to_string))
            }
            _ => None,
        }
    }
}
