//! Partitions opened ahead of the metadata commit that assigns them to this node.
//!
//! Kafka's controller commits a TopicRecord without asking any broker, and a broker that
//! then cannot create the partition's log (a full disk, no descriptors) takes the log
//! directory offline — a lone directory halts the broker. On a node that is its own
//! active controller (the one-node cluster `arus serve` runs), Arus asks first: the
//! controller has the partitions it placed here opened before it writes the records, and
//! a topic whose partitions cannot be opened is refused with KAFKA_STORAGE_ERROR and
//! leaves nothing behind, as the single-node release did.
//!
//! Invariants:
//! - A prepared partition is open (its descriptors held, so a later open cannot fail for
//!   want of them) and its directory exists, but no topic lists it: clients cannot reach it.
//! - Each entry ends in exactly one of: adopted by [`TopicRegistry::apply`] when the image
//!   with its records arrives; discarded (closed, directory deleted) when the commit failed;
//!   or discarded by [`TopicRegistry::settle_prepared`] when an image at or past its commit
//!   offset did not adopt it (the topic was deleted before this node applied it).
//! - A crash leaves at most partition directories the metadata does not name; start-up
//!   sets them aside as strays.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arus_protocol::Uuid;
use tracing::{debug, warn};

use super::super::{TopicError, TopicRegistry};
use crate::log_dirs::names;
use crate::partition::Partition;
use crate::partition::role::LocalRole;
use crate::topic_settings::TopicSettings;

/// The partitions of one topic the controller is about to assign to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareSpec {
    pub name: String,
    pub id: Uuid,
    /// The partition indexes with the role the records give this node.
    pub partitions: BTreeMap<i32, LocalRole>,
    /// The config overrides of a topic being created; `None` for new partitions of an
    /// existing topic (which keep its settings).
    pub configs: Option<BTreeMap<String, String>>,
}

struct Entry {
    partition: Arc<Partition>,
    /// The metadata offset of the batch that assigns it, once committed.
    committed_at: Option<i64>,
}

/// The prepared partitions by (topic id, index).
#[derive(Default)]
pub(crate) struct Prepared {
    entries: HashMap<(Uuid, i32), Entry>,
}

impl TopicRegistry {
    /// Opens the partitions of `spec` that are not hosted yet. All or nothing: on the
    /// first failure the ones opened by this call are closed and their directories
    /// deleted, and the error is returned.
    pub fn prepare(&self, spec: &PrepareSpec) -> Result<(), TopicError> {
        let _guard = self.lock_driven()?;
        if self.get(&spec.name).is_some_and(|t| t.id != spec.id) {
            // The name's previous incarnation is still hosted (deleted, and created again
            // before this node applied the deletion): its directories have the same names.
            // Nothing is prepared; the applier removes the old one, then creates these.
            debug!(topic = %spec.name, "previous incarnation still hosted; not preparing");
            return Ok(());
        }
        let settings = match (&spec.configs, self.get_by_id(&spec.id)) {
            (_, Some(topic)) => topic.settings(),
            (Some(configs), None) => {
                Arc::new(TopicSettings::resolve(&self.config, configs.clone()))
            }
            (None, None) => return Err(TopicError::Unknown),
        };
        let hosted = self.get_by_id(&spec.id);
        let mut counts = self.partitions_per_dir();
        let mut prepared = self.prepared.lock();
        for e in prepared.entries.values() {
            counts[e.partition.location().index] += 1;
        }
        let mut opened: Vec<Arc<Partition>> = Vec::new();
        for (&index, &role) in &spec.partitions {
            let key = (spec.id, index);
            if prepared.entries.contains_key(&key)
                || hosted
                    .as_ref()
                    .is_some_and(|t| t.partition(index).is_some())
            {
                continue;
            }
            match self.create_partition(&spec.name, index, &settings, role, &mut counts) {
                Ok(p) => opened.push(p),
                Err(e) => {
                    drop(prepared);
                    for p in opened {
                        delete(&spec.name, p);
                    }
                    return Err(e);
                }
            }
        }
        debug!(topic = %spec.name, partitions = opened.len(), "partitions prepared ahead of their metadata");
        for p in opened {
            prepared.entries.insert(
                (spec.id, p.index),
                Entry {
                    partition: p,
                    committed_at: None,
                },
            );
        }
        Ok(())
    }

    /// The batch assigning the prepared partitions of `topic` committed at `offset`.
    pub fn commit_prepared(&self, topic: Uuid, offset: i64) {
        for ((id, _), e) in self.prepared.lock().entries.iter_mut() {
            if *id == topic && e.committed_at.is_none() {
                e.committed_at = Some(offset);
            }
        }
    }

    /// The batch assigning the prepared partitions of `topic` was not committed by this
    /// controller: they are closed and deleted. (Should another controller commit it
    /// after all, the image creates them afresh.)
    pub fn discard_prepared(&self, topic: Uuid) {
        let _guard = self.lock_change();
        let gone: Vec<(String, Arc<Partition>)> = {
            let mut prepared = self.prepared.lock();
            let keys: Vec<(Uuid, i32)> = prepared
                .entries
                .keys()
                .filter(|(id, _)| *id == topic)
                .copied()
                .collect();
            keys.into_iter()
                .filter_map(|k| prepared.entries.remove(&k))
                .map(|e| (e.partition.topic.clone(), e.partition))
                .collect()
        };
        for (name, p) in gone {
            delete(&name, p);
        }
    }

    /// Discards the prepared partitions whose batch committed at or before `offset`, the
    /// offset of the image just applied: had the image named them, it adopted them.
    pub fn settle_prepared(&self, offset: i64) {
        let _guard = self.lock_change();
        let gone: Vec<Arc<Partition>> = {
            let mut prepared = self.prepared.lock();
            let keys: Vec<(Uuid, i32)> = prepared
                .entries
                .iter()
                .filter(|(_, e)| e.committed_at.is_some_and(|at| at <= offset))
                .map(|(k, _)| *k)
                .collect();
            keys.into_iter()
                .filter_map(|k| prepared.entries.remove(&k))
                .map(|e| e.partition)
                .collect()
        };
        for p in gone {
            warn!(topic = %p.topic, partition = p.index, "a prepared partition was not adopted by the metadata; deleting it");
            delete(&p.topic.clone(), p);
        }
    }

    /// The prepared partition `(topic, index)`, taken out of the set to be hosted.
    pub(super) fn adopt_prepared(&self, topic: Uuid, index: i32) -> Option<Arc<Partition>> {
        self.prepared
            .lock()
            .entries
            .remove(&(topic, index))
            .map(|e| e.partition)
    }

    /// How many partitions are prepared (for tests and the operator's view).
    pub fn prepared_count(&self) -> usize {
        self.prepared.lock().entries.len()
    }
}

fn delete(topic: &str, p: Arc<Partition>) {
    let index = p.index;
    let dir = p.location().path.join(names::current(topic, index));
    p.stop();
    if let Err(e) = p.delete() {
        // Not named by the metadata: set aside at the next start.
        warn!(topic, partition = index, dir = %dir.display(), error = %e, "could not remove a prepared partition");
    }
}
