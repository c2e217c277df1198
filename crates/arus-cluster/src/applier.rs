//! Applies each published metadata image to this node's broker (docs/cluster.md, step 4):
//! the topics and this node's replicas with their roles (the registry opens, recovers,
//! leads, follows or deletes them), the coordinators that follow the leadership of their
//! internal partitions, the cluster view handlers answer from, and the stores the metadata
//! drives (dynamic broker configs, GROUP and CLIENT_METRICS configs, finalized features).
//!
//! Runs on its own task, in log order, so that disk work never stalls the quorum. A topic
//! is re-applied when its image or its config overrides changed since the last image this
//! task applied; the first image (once the controller says this node caught up) and every
//! installed snapshot are applied whole with `sync`, which also sets aside directories the
//! metadata does not name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arus_broker::Broker;
use arus_broker::cluster::{BrokerNode, ClusterView, Endpoint, PartitionPlacement};
use arus_broker::partition::role::LocalRole;
use arus_broker::resource_configs::ResourceKind;
use arus_broker::topics::driven::TopicSpec;
use arus_metadata::image::resource_type;
use arus_metadata::{ConfigResource, MetadataImage, TopicImage};
use arus_protocol::Uuid;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::controller_driver::Leadership;
use crate::lifecycle::Standing;
use crate::publisher::Published;
use crate::replica_fetcher::ReplicaFetchers;

/// The role of `node` in a partition led by `leader` at `epoch` (one of its replicas).
pub(crate) fn role_of(node: i32, leader: i32, epoch: i32) -> LocalRole {
    if leader == node {
        LocalRole::Leader { epoch }
    } else {
        LocalRole::Follower { leader, epoch }
    }
}

/// This node's replicas of `topic` and its role in each.
fn local_roles(topic: &TopicImage, node: i32) -> BTreeMap<i32, LocalRole> {
    topic
        .partitions
        .iter()
        .filter(|(_, p)| p.replicas.contains(&node))
        .map(|(&index, p)| (index, role_of(node, p.leader, p.leader_epoch)))
        .collect()
}

fn topic_configs(image: &MetadataImage, name: &str) -> BTreeMap<String, String> {
    image
        .configs()
        .get(&ConfigResource::topic(name))
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn spec(image: &MetadataImage, topic: &TopicImage, node: i32) -> TopicSpec {
    TopicSpec {
        name: topic.name.clone(),
        id: topic.id,
        partition_count: topic.partitions.len() as i32,
        local: local_roles(topic, node),
        configs: topic_configs(image, &topic.name),
    }
}

/// The view handlers answer from.
pub fn view_of(image: &MetadataImage, node: i32, controller: Option<i32>) -> ClusterView {
    let mut view = ClusterView::new(image.cluster_id(), node, controller);
    for b in image.cluster().brokers() {
        let endpoints = b
            .listeners
            .iter()
            .map(|(name, e)| {
                (
                    name.clone(),
                    Endpoint {
                        host: e.host.clone(),
                        port: e.port,
                    },
                )
            })
            .collect::<Vec<_>>();
        let mut broker = BrokerNode::new(b.id, endpoints);
        broker.rack = b.rack.clone();
        broker.fenced = b.fenced;
        view = view.with_broker(broker);
    }
    for topic in image.topics().iter() {
        for (&index, p) in &topic.partitions {
            let offline = p
                .replicas
                .iter()
                .zip(p.directories.iter())
                .filter(|(r, d)| {
                    image
                        .broker(**r)
                        .is_some_and(|b| !b.directories.is_empty() && !b.has_online_dir(**d))
                })
                .map(|(r, _)| *r)
                .collect();
            view = view.with_partition(
                topic.id,
                index,
                PartitionPlacement {
                    leader: (p.leader >= 0).then_some(p.leader),
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    elr: p.elr.clone(),
                    last_known_elr: p.last_known_elr.clone(),
                    in_offline_dirs: offline,
                },
            );
        }
    }
    view
}

fn config_map(image: &MetadataImage, kind: i8, name: &str) -> BTreeMap<String, String> {
    image
        .configs()
        .get(&ConfigResource::new(kind, name))
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn resources_of(image: &MetadataImage, kind: i8) -> BTreeMap<String, BTreeMap<String, String>> {
    image
        .configs()
        .iter()
        .filter(|(r, _)| r.resource_type == kind)
        .map(|(r, m)| {
            (
                r.name.clone(),
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )
        })
        .collect()
}

/// How much of an image to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Only the topics that changed since the previous image.
    Changed,
    /// Every topic, and directories the image does not name are set aside as strays: only
    /// once the controller has said this node's metadata caught up (it unfenced it).
    Sync,
}

/// Applies images to `broker` as they are published, until the channel closes.
/// `standing` tells when this node's metadata has caught up (the controller unfenced it).
///
/// Nothing is applied before that, as Kafka's broker installs its metadata publishers only
/// once the controller has acknowledged it caught up: an image of a start-up replay that
/// has not reached the end of the log may name a topic that was deleted and created again
/// since, and applying it would open the newer incarnation's directory under the older
/// topic id and delete it with the older topic when the replay reaches the deletion
/// (faults/powerloss lost a re-created topic this way). The newest image is then applied
/// whole (`sync`, which also sets aside directories the metadata does not name).
pub async fn run(
    broker: Arc<Broker>,
    node: i32,
    mut published: mpsc::UnboundedReceiver<Published>,
    leadership: watch::Receiver<Leadership>,
    mut standing: watch::Receiver<Standing>,
    done: watch::Sender<i64>,
    fetchers: Option<Arc<ReplicaFetchers>>,
) {
    let mut last: Option<Arc<MetadataImage>> = None;
    // The newest image published before the catch-up, not applied yet.
    let mut pending: Option<Arc<MetadataImage>> = None;
    let mut synced = false;
    loop {
        tokio::select! {
            p = published.recv() => {
                let Some(mut p) = p else { return };
                // Images published while the previous one was being applied: each step
                // compares whole images, so only the newest matters.
                let mut from_snapshot = p.from_snapshot;
                while let Ok(next) = published.try_recv() {
                    from_snapshot |= next.from_snapshot;
                    p = next;
                }
                if !synced {
                    pending = Some(p.image);
                    continue;
                }
                let scope = match (&last, from_snapshot) {
                    (Some(_), false) => Scope::Changed,
                    _ => Scope::Sync,
                };
                step(&broker, node, &leadership, last.clone(), p.image.clone(), scope, fetchers.clone()).await;
                done.send_replace(p.image.provenance().offset);
                last = Some(p.image);
            }
            changed = standing.changed(), if !synced => {
                // An error: no broker lifecycle (a controller-only node), nothing to wait for.
                if changed.is_ok() && standing.borrow().fenced {
                    continue;
                }
                // Everything up to the offset the controller judged is already published
                // (the publisher sends before the quorum counts it applied).
                while let Ok(p) = published.try_recv() {
                    pending = Some(p.image);
                }
                if let Some(image) = pending.take() {
                    step(&broker, node, &leadership, None, image.clone(), Scope::Sync, fetchers.clone()).await;
                    done.send_replace(image.provenance().offset);
                    last = Some(image);
                }
                synced = true;
            }
        }
    }
}

async fn step(
    broker: &Arc<Broker>,
    node: i32,
    leadership: &watch::Receiver<Leadership>,
    previous: Option<Arc<MetadataImage>>,
    image: Arc<MetadataImage>,
    scope: Scope,
    fetchers: Option<Arc<ReplicaFetchers>>,
) {
    let broker = broker.clone();
    let controller = leadership.borrow().leader;
    // Partition directories are made and recovered here: off the async workers.
    let applied = tokio::task::spawn_blocking(move || {
        apply(
            &broker,
            node,
            previous.as_deref(),
            &image,
            scope,
            controller,
            fetchers.as_deref(),
        )
    })
    .await;
    if let Err(e) = applied {
        warn!(error = %e, "applying the metadata image failed");
    }
}

fn apply(
    broker: &Arc<Broker>,
    node: i32,
    previous: Option<&MetadataImage>,
    image: &MetadataImage,
    scope: Scope,
    controller: Option<i32>,
    fetchers: Option<&ReplicaFetchers>,
) {
    // Features and configs first: topic settings resolve against the broker defaults.
    let mut levels: BTreeMap<String, i16> = image.features().clone().into_iter().collect();
    // The quorum's own feature is not in the metadata image (as in Kafka): static voters
    // are kraft.version 0, a dynamic quorum 1.
    let dynamic = matches!(
        broker.config.node.quorum,
        arus_node::config::Quorum::Bootstrap(_)
    );
    levels.insert("kraft.version".into(), i16::from(dynamic));
    broker.apply_features_from_metadata(levels, image.provenance().offset);
    broker.apply_dynamic_configs_from_metadata(
        config_map(image, resource_type::BROKER, ""),
        config_map(image, resource_type::BROKER, &node.to_string()),
    );
    broker.apply_resource_configs_from_metadata(
        ResourceKind::Group,
        resources_of(image, resource_type::GROUP),
    );
    broker.apply_resource_configs_from_metadata(
        ResourceKind::ClientMetrics,
        resources_of(image, resource_type::CLIENT_METRICS),
    );

    // The view first, as Kafka publishes its metadata cache before the replica manager
    // acts: a topic the registry lists then always has its leaders in the view.
    broker.cluster.install(view_of(image, node, controller));
    let all = || -> Vec<TopicSpec> {
        image
            .topics()
            .iter()
            .map(|t| spec(image, t, node))
            .collect()
    };
    let result = match (scope, previous) {
        (Scope::Changed, Some(prev)) => {
            let removed: Vec<Uuid> = prev
                .topics()
                .iter()
                .filter(|t| image.topic_by_id(&t.id).is_none())
                .map(|t| t.id)
                .collect();
            if !removed.is_empty() {
                match broker.topics.remove(&removed) {
                    // A deleted `__consumer_offsets` or `__transaction_state` unloads its
                    // coordinator's state, as Kafka's `BrokerMetadataPublisher` resigns the
                    // partitions of deleted internal topics: otherwise the groups of the
                    // old topic would still be served after it is gone.
                    Ok(applied) => {
                        arus_broker::coordinator_shards::follow_leadership(broker, &applied.changes)
                    }
                    Err(e) => warn!(error = %e, "cannot delete the replicas of removed topics"),
                }
            }
            let specs: Vec<TopicSpec> = image
                .topics()
                .iter()
                .filter(|t| match prev.topic_by_id(&t.id) {
                    Some(old) => {
                        !Arc::ptr_eq(old, t)
                            || topic_configs(prev, &t.name) != topic_configs(image, &t.name)
                    }
                    None => true,
                })
                .map(|t| spec(image, t, node))
                .collect();
            if specs.is_empty() {
                None
            } else {
                Some(broker.topics.apply(&specs))
            }
        }
        _ => Some(broker.topics.sync(&all())),
    };
    match result {
        Some(Ok(applied)) => {
            for f in &applied.failures {
                warn!(failure = ?f, "a partition could not take its role");
            }
            if !applied.changes.is_empty() {
                info!(
                    changes = applied.changes.len(),
                    offset = image.provenance().offset,
                    "local replicas changed"
                );
            }
            arus_broker::coordinator_shards::follow_leadership(broker, &applied.changes);
        }
        Some(Err(e)) => warn!(error = %e, "cannot apply the metadata to the local replicas"),
        None => {}
    }
    // After the roles: a partition's leadership needs the role (and its epoch) in place.
    crate::leader_replicas::apply(broker, node, image);
    // Partitions the controller of this node opened for records this image includes were
    // adopted above; any left were deleted again before this node saw them.
    broker.topics.settle_prepared(image.provenance().offset);
    // The followed partitions are open with their roles now: fetch them from their leaders.
    crate::replica_fetcher::after_image(fetchers, image);
}

/// The topic ids of `image` (for tests).
pub fn topic_ids(image: &MetadataImage) -> BTreeSet<Uuid> {
    image.topics().iter().map(|t| t.id).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use arus_broker::BrokerConfig;
    use arus_broker::topics::driven::TopicSpec;
    use arus_metadata::MetadataRecord;
    use arus_protocol::metadata::{PartitionRecord, RemoveTopicRecord, TopicRecord};
    use arus_raft::{CommittedBatch, MetadataStateMachine};
    use bytes::Bytes;

    use super::*;
    use crate::publisher::MetadataPublisher;

    const A: Uuid = Uuid([0xA; 16]);
    const B: Uuid = Uuid([0xB; 16]);

    fn open(dir: &std::path::Path) -> Arc<Broker> {
        let props = BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())]);
        Broker::open_driven(BrokerConfig::from_properties(props).unwrap(), "c".into()).unwrap()
    }

    fn topic(id: Uuid) -> Vec<Bytes> {
        let records: Vec<MetadataRecord> = vec![
            TopicRecord {
                name: "re".into(),
                topic_id: id,
            }
            .into(),
            PartitionRecord {
                partition_id: 0,
                topic_id: id,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                // As the controller writes it (the record's default, -1, is no epoch, and
                // the epoch cache refuses a negative one as Kafka's does).
                leader_epoch: 0,
                ..Default::default()
            }
            .into(),
        ];
        records.iter().map(|r| r.encode().unwrap()).collect()
    }

    fn removal(id: Uuid) -> Vec<Bytes> {
        let r: MetadataRecord = RemoveTopicRecord { topic_id: id }.into();
        vec![r.encode().unwrap()]
    }

    /// A restart replays "re" created (id A), deleted, and created again (id B), whose
    /// partition already holds records on disk. Applying the replay's first image would
    /// open B's directory as A's partition and delete it with A; nothing is applied until
    /// the controller unfences the broker, and then B's records are all there.
    #[tokio::test]
    async fn a_start_up_replay_is_applied_only_once_caught_up() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The previous run: B's partition with two records.
            let broker = open(dir.path());
            let spec = TopicSpec {
                name: "re".into(),
                id: B,
                partition_count: 1,
                local: BTreeMap::from([(0, LocalRole::Leader { epoch: 0 })]),
                configs: BTreeMap::new(),
            };
            broker.topics.apply(&[spec]).unwrap();
            let p = broker.topics.get("re").unwrap().partition(0).unwrap();
            p.append_marker(7, 0, 0, true, 1).unwrap();
            p.append_marker(7, 0, 0, false, 2).unwrap();
            broker.shutdown();
        }
        let broker = open(dir.path());
        let (mut publisher, handle, published) = MetadataPublisher::new(1, "c");
        let (_leadership_tx, leadership) = watch::channel(Leadership {
            leader: Some(1),
            term: 1,
        });
        let (standing_tx, standing) = watch::channel(Standing {
            broker_epoch: 1,
            fenced: true,
        });
        let (done_tx, mut done) = watch::channel(-1i64);
        tokio::spawn(run(
            broker.clone(),
            1,
            published,
            leadership,
            standing,
            done_tx,
            None,
        ));

        let batches = [topic(A), removal(A), topic(B)];
        for (i, records) in batches.iter().enumerate() {
            publisher
                .apply(CommittedBatch {
                    index: i as u64 + 1,
                    term: 1,
                    records,
                })
                .unwrap();
            // Gives the applier time to see each image on its own, as a replay in chunks
            // shows them (so that applying one early would show); the assertion holds
            // whatever the timing.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(
                broker.topics.get("re").is_none(),
                "applied before the catch-up"
            );
        }
        assert_eq!(*done.borrow(), -1);
        assert_eq!(handle.applied_offset(), 3);

        standing_tx.send_replace(Standing {
            broker_epoch: 1,
            fenced: false,
        });
        done.wait_for(|d| *d == 3).await.unwrap();
        let topic = broker.topics.get("re").unwrap();
        assert_eq!(topic.id, B);
        assert_eq!(topic.partition(0).unwrap().log_end_offset(), 2);
        broker.shutdown();
    }
}
