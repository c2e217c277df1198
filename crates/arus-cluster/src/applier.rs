//! Applies each published metadata image to this node's broker (docs/cluster.md, step 4):
//! the topics and this node's replicas with their roles (the registry opens, recovers,
//! leads, follows or deletes them), the coordinators that follow the leadership of their
//! internal partitions, the cluster view handlers answer from, and the stores the metadata
//! drives (dynamic broker configs, GROUP and CLIENT_METRICS configs, finalized features).
//!
//! Runs on its own task, in log order, so that disk work never stalls the quorum. A topic
//! is re-applied when its image or its config overrides changed since the last image this
//! task applied; the first image (and every installed snapshot) is applied whole with
//! `sync`, which also sets aside directories the metadata does not name.

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

/// This node's replicas of `topic` and its role in each.
fn local_roles(topic: &TopicImage, node: i32) -> BTreeMap<i32, LocalRole> {
    topic
        .partitions
        .iter()
        .filter(|(_, p)| p.replicas.contains(&node))
        .map(|(&index, p)| {
            let role = if p.leader == node {
                LocalRole::Leader {
                    epoch: p.leader_epoch,
                }
            } else {
                LocalRole::Follower {
                    leader: p.leader,
                    epoch: p.leader_epoch,
                }
            };
            (index, role)
        })
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
    /// Every topic (the first image, an installed snapshot), without judging directories
    /// the image does not name: the image may not yet include everything committed before
    /// this node started.
    Every,
    /// Every topic, and directories the image does not name are set aside as strays: only
    /// once the controller has said this node's metadata caught up (it unfenced it).
    Sync,
}

/// Applies images to `broker` as they are published, until the channel closes.
/// `standing` tells when this node's metadata has caught up (the controller unfenced it),
/// which is when stray directories may be judged.
pub async fn run(
    broker: Arc<Broker>,
    node: i32,
    mut published: mpsc::UnboundedReceiver<Published>,
    leadership: watch::Receiver<Leadership>,
    mut standing: watch::Receiver<Standing>,
    done: watch::Sender<i64>,
) {
    let mut last: Option<Arc<MetadataImage>> = None;
    let mut synced = false;
    loop {
        tokio::select! {
            p = published.recv() => {
                let Some(mut p) = p else { return };
                // Images published while the previous one was being applied: each step
                // compares whole images, so only the newest matters. A start that replays
                // many batches (each restart adds registration, unfencing and controlled
                // shutdown batches that touch every partition) applies the end state once.
                let mut from_snapshot = p.from_snapshot;
                while let Ok(next) = published.try_recv() {
                    from_snapshot |= next.from_snapshot;
                    p = next;
                }
                let scope = match (&last, from_snapshot) {
                    (Some(_), false) => Scope::Changed,
                    _ if synced => Scope::Sync,
                    _ => Scope::Every,
                };
                step(&broker, node, &leadership, last.clone(), p.image.clone(), scope).await;
                done.send_replace(p.image.provenance().offset);
                last = Some(p.image);
            }
            changed = standing.changed(), if !synced => {
                if changed.is_err() {
                    // No broker lifecycle (a controller-only node): nothing is hosted here.
                    synced = true;
                    continue;
                }
                if standing.borrow().fenced {
                    continue;
                }
                // Everything applied up to the offset the controller judged is already
                // published (the publisher sends before the quorum counts it applied).
                while let Ok(p) = published.try_recv() {
                    step(&broker, node, &leadership, last.clone(), p.image.clone(), Scope::Every).await;
                    done.send_replace(p.image.provenance().offset);
                    last = Some(p.image);
                }
                if let Some(image) = last.clone() {
                    step(&broker, node, &leadership, None, image, Scope::Sync).await;
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
        (Scope::Sync, _) => Some(broker.topics.sync(&all())),
        _ => Some(broker.topics.apply(&all())),
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
    // Partitions the controller of this node opened for records this image includes were
    // adopted above; any left were deleted again before this node saw them.
    broker.topics.settle_prepared(image.provenance().offset);
}

/// The topic ids of `image` (for tests).
pub fn topic_ids(image: &MetadataImage) -> BTreeSet<Uuid> {
    image.topics().iter().map(|t| t.id).collect()
}
