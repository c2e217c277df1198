//! The leader half of Kafka's `ReplicaManager.applyDelta`: after each metadata image is
//! applied to the local replicas, every partition this node leads is given its leadership
//! (replicas, ISR, leader and partition epochs) and the brokers' registrations, which start
//! or update its replication state (`arus_broker::partition::leader`). The follower half is
//! the replica fetcher's.
//!
//! Runs on every image, not only on changed topics: a broker fenced or re-registered changes
//! which followers may join the ISR without touching any topic.

use arus_broker::Broker;
use arus_broker::partition::leader::BrokerStatuses;
use arus_metadata::MetadataImage;
use arus_replication::{BrokerStatus, LeaderConfig, Leadership};

/// Kafka's default `replica.lag.time.max.ms`.
const DEFAULT_REPLICA_LAG_TIME_MAX_MS: i64 = 30_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The brokers of `image` as the ISR decisions see them.
pub fn broker_statuses(image: &MetadataImage) -> BrokerStatuses {
    image
        .cluster()
        .brokers()
        .map(|b| {
            (
                b.id,
                BrokerStatus {
                    broker_epoch: b.epoch,
                    fenced: b.fenced,
                    in_controlled_shutdown: b.in_controlled_shutdown,
                },
            )
        })
        .collect()
}

/// Gives each partition `node` leads in `image` its leadership.
pub fn apply(broker: &Broker, node: i32, image: &MetadataImage) {
    let brokers = broker_statuses(image);
    let local_broker_epoch = brokers.get(&node).map_or(-1, |b| b.broker_epoch);
    let lag_max = broker
        .config
        .effective_i64("replica.lag.time.max.ms", DEFAULT_REPLICA_LAG_TIME_MAX_MS);
    let now = now_ms();
    for topic in image.topics().iter() {
        let led: Vec<_> = topic
            .partitions
            .iter()
            .filter(|(_, p)| p.leader == node)
            .collect();
        if led.is_empty() {
            continue;
        }
        let Some(local) = broker.topics.get_by_id(&topic.id) else {
            continue;
        };
        for (&index, p) in led {
            let Some(partition) = local.partition(index) else {
                continue;
            };
            // The role is applied first (the registry, just before): a replica that could
            // not take it (a failed directory) is not given a leadership either.
            if !partition.is_leader() || partition.leader_epoch() != p.leader_epoch {
                tracing::warn!(topic = %topic.name, partition = index, role = ?partition.role(), image_epoch = p.leader_epoch, "led in the image but not locally at that epoch: no leadership given");
                continue;
            }
            let config = LeaderConfig {
                local_broker_id: node,
                local_broker_epoch,
                replica_lag_time_max_ms: lag_max,
                min_insync_replicas: partition.settings().min_insync_replicas,
            };
            let leadership = Leadership {
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
            };
            partition.set_leadership(config, &leadership, brokers.clone(), now);
        }
    }
}

/// Kafka's `isr-expiration` task: every `replica.lag.time.max.ms / 2`, each partition this
/// node leads drops the followers that have not caught up within `replica.lag.time.max.ms`
/// from its ISR (through the controller). Ends when `stop` turns true.
pub async fn shrink_isr_periodically(
    broker: std::sync::Arc<Broker>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let lag_max = broker
            .config
            .effective_i64("replica.lag.time.max.ms", DEFAULT_REPLICA_LAG_TIME_MAX_MS);
        let period = std::time::Duration::from_millis((lag_max / 2).max(10) as u64);
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let now = now_ms();
        for topic in broker.topics.all() {
            for partition in topic.partitions() {
                if !partition.is_leader() {
                    continue;
                }
                if let Some(proposal) = partition.maybe_shrink_isr(now) {
                    arus_broker::isr_updates::submit(&broker, partition, topic.id, proposal);
                }
            }
        }
    }
}
