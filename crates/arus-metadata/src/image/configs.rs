//! Dynamic configuration per resource (Kafka's `ConfigurationsImage`).

use std::collections::BTreeMap;
use std::sync::Arc;

/// Kafka's `ConfigResource.Type` ids, as `ConfigRecord.ResourceType` carries them.
pub mod resource_type {
    pub const UNKNOWN: i8 = 0;
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    pub const CLIENT_METRICS: i8 = 16;
    pub const GROUP: i8 = 32;
}

/// A configured resource: type id and name. The cluster-wide broker default is
/// `(BROKER, "")`; a broker's own configs are `(BROKER, "<id>")`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigResource {
    pub resource_type: i8,
    pub name: String,
}

impl ConfigResource {
    pub fn new(resource_type: i8, name: impl Into<String>) -> ConfigResource {
        ConfigResource {
            resource_type,
            name: name.into(),
        }
    }

    pub fn topic(name: impl Into<String>) -> ConfigResource {
        ConfigResource::new(resource_type::TOPIC, name)
    }

    /// `(BROKER, "")`: the dynamic default of every broker.
    pub fn broker_default() -> ConfigResource {
        ConfigResource::new(resource_type::BROKER, "")
    }

    pub fn broker(id: i32) -> ConfigResource {
        ConfigResource::new(resource_type::BROKER, id.to_string())
    }
}

/// One resource's configs: key -> value.
pub type ConfigMap = BTreeMap<String, String>;

/// The configs of every resource that has at least one; a resource whose last key is
/// deleted disappears, as in Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigsImage {
    pub(crate) resources: Arc<BTreeMap<ConfigResource, Arc<ConfigMap>>>,
}

impl ConfigsImage {
    /// The configs of a resource (`None` if it has none).
    pub fn get(&self, resource: &ConfigResource) -> Option<&Arc<ConfigMap>> {
        self.resources.get(resource)
    }

    /// One config value.
    pub fn value(&self, resource: &ConfigResource, key: &str) -> Option<&str> {
        self.get(resource)?.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ConfigResource, &Arc<ConfigMap>)> {
        self.resources.iter()
    }

    /// Sets (`Some`) or deletes (`None`) one key.
    pub(crate) fn set(&mut self, resource: ConfigResource, key: String, value: Option<String>) {
        let resources = Arc::make_mut(&mut self.resources);
        match value {
            Some(value) => {
                let map = resources.entry(resource).or_default();
                Arc::make_mut(map).insert(key, value);
            }
            None => {
                if let Some(map) = resources.get_mut(&resource) {
                    if map.contains_key(&key) {
                        Arc::make_mut(map).remove(&key);
                    }
                    if map.is_empty() {
                        resources.remove(&resource);
                    }
                }
            }
        }
    }

    /// Deletes every key of a resource.
    pub(crate) fn remove_resource(&mut self, resource: &ConfigResource) {
        if self.resources.contains_key(resource) {
            Arc::make_mut(&mut self.resources).remove(resource);
        }
    }
}
