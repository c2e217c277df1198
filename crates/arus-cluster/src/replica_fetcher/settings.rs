//! The fetchers' settings, from the broker config (Kafka's names and defaults).

use arus_broker::BrokerConfig;
use arus_replication::FetcherConfig;

/// What every fetcher of this broker runs with, besides its broker epoch (which changes
/// when the broker registers again, so it is read for each request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetcherSettings {
    pub node_id: i32,
    /// `inter.broker.listener.name`: the leaders' endpoints fetched from.
    pub listener: String,
    /// `num.replica.fetchers` (1): fetchers per source broker.
    pub num_fetchers: i32,
    /// `arus.acks.all.fsync` (true): fsync what was appended before fetching past it, so
    /// the offset the leader counts is a durable copy (docs/cluster.md, "Replication").
    pub fsync: bool,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub response_max_bytes: i32,
    pub partition_max_bytes: i32,
    pub backoff_ms: i64,
}

fn int(config: &BrokerConfig, key: &str, default: i32) -> i32 {
    i32::try_from(config.effective_i64(key, i64::from(default))).unwrap_or(default)
}

impl FetcherSettings {
    pub fn from_config(config: &BrokerConfig) -> FetcherSettings {
        FetcherSettings {
            node_id: config.node.node_id,
            listener: config.node.inter_broker_listener_name.clone(),
            num_fetchers: int(config, "num.replica.fetchers", 1).max(1),
            fsync: config.acks_all_fsync,
            max_wait_ms: int(config, "replica.fetch.wait.max.ms", 500),
            min_bytes: int(config, "replica.fetch.min.bytes", 1),
            response_max_bytes: int(config, "replica.fetch.response.max.bytes", 10 << 20),
            partition_max_bytes: int(config, "replica.fetch.max.bytes", 1 << 20),
            backoff_ms: config
                .effective_i64("replica.fetch.backoff.ms", 1000)
                .max(0),
        }
    }

    /// The pure fetcher's config for a request sent with `broker_epoch`.
    pub fn fetcher_config(&self, broker_epoch: i64) -> FetcherConfig {
        FetcherConfig {
            replica_id: self.node_id,
            broker_epoch,
            max_wait_ms: self.max_wait_ms,
            min_bytes: self.min_bytes,
            response_max_bytes: self.response_max_bytes,
            partition_max_bytes: self.partition_max_bytes,
            backoff_ms: self.backoff_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn kafkas_defaults_and_overrides() {
        let defaults = FetcherSettings::from_config(&BrokerConfig::default());
        assert_eq!(
            (
                defaults.num_fetchers,
                defaults.fsync,
                defaults.max_wait_ms,
                defaults.min_bytes,
                defaults.response_max_bytes,
                defaults.partition_max_bytes,
                defaults.backoff_ms,
            ),
            (1, true, 500, 1, 10_485_760, 1_048_576, 1000)
        );
        let props = BTreeMap::from([
            ("num.replica.fetchers".to_string(), "3".to_string()),
            ("replica.fetch.max.bytes".to_string(), "4096".to_string()),
            ("arus.acks.all.fsync".to_string(), "false".to_string()),
        ]);
        let set = FetcherSettings::from_config(&BrokerConfig::from_properties(props).unwrap());
        assert_eq!(
            (set.num_fetchers, set.partition_max_bytes, set.fsync),
            (3, 4096, false)
        );
        assert_eq!(set.fetcher_config(7).broker_epoch, 7);
    }
}
