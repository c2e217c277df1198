//! Topics and partitions of the image (Kafka's `TopicsImage`, `TopicImage`,
//! `PartitionRegistration`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_protocol::Uuid;
use arus_protocol::metadata::{PartitionChangeRecord, PartitionRecord};

/// `PartitionChangeRecord.leader` meaning "the leader did not change".
pub const NO_LEADER_CHANGE: i32 = -2;
/// A partition leader of -1: the partition has no leader (offline).
pub const NO_LEADER: i32 = -1;
/// Kafka's `DirectoryId.MIGRATING` (the zero UUID): the replica's directory is not known,
/// as for every replica written before directory assignment (KIP-858).
pub const MIGRATING_DIRECTORY: Uuid = Uuid::ZERO;
/// Kafka's `DirectoryId.UNASSIGNED` (`Uuid(0, 1)`): the replica is not yet in a directory.
pub const UNASSIGNED_DIRECTORY: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/// Kafka's `DirectoryId.LOST` (`Uuid(0, 2)`): the replica's directory failed.
pub const LOST_DIRECTORY: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

/// Kafka's `LeaderRecoveryState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LeaderRecoveryState {
    /// The leader was elected from the ISR, or has recovered from an unclean election.
    #[default]
    Recovered,
    /// The leader was elected uncleanly and is still recovering.
    Recovering,
}

impl LeaderRecoveryState {
    /// The record value (`0` / `1`); `None` for any other value.
    pub fn from_value(v: i8) -> Option<LeaderRecoveryState> {
        match v {
            0 => Some(LeaderRecoveryState::Recovered),
            1 => Some(LeaderRecoveryState::Recovering),
            _ => None,
        }
    }

    /// The value written in records.
    pub fn value(self) -> i8 {
        match self {
            LeaderRecoveryState::Recovered => 0,
            LeaderRecoveryState::Recovering => 1,
        }
    }
}

/// A partition record or change that Kafka's `PartitionRegistration` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("unknown leader recovery state {0}")]
    UnknownLeaderRecoveryState(i8),
    /// Kafka's `InvalidReplicaDirectoriesException`.
    #[error("{directories} directories for {replicas} replicas")]
    DirectoriesMismatch { replicas: usize, directories: usize },
}

fn recovery_state(v: i8) -> Result<LeaderRecoveryState, PartitionError> {
    LeaderRecoveryState::from_value(v).ok_or(PartitionError::UnknownLeaderRecoveryState(v))
}

/// Kafka's `checkDirectories`: directories, when given and not empty, match the replicas.
fn check_directories(replicas: usize, directories: &[Uuid]) -> Result<(), PartitionError> {
    if !directories.is_empty() && directories.len() != replicas {
        return Err(PartitionError::DirectoriesMismatch {
            replicas,
            directories: directories.len(),
        });
    }
    Ok(())
}

/// One partition's replica assignment and leadership (Kafka's `PartitionRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRegistration {
    pub replicas: Vec<i32>,
    /// The log directory of each replica, index-aligned with `replicas`; all
    /// [`MIGRATING_DIRECTORY`] when unknown.
    pub directories: Vec<Uuid>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    /// The leader's broker id, or [`NO_LEADER`].
    pub leader: i32,
    pub leader_recovery_state: LeaderRecoveryState,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// Eligible leader replicas (KIP-966).
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

impl PartitionRegistration {
    /// Builds the registration a `PartitionRecord` describes. Directories default to
    /// "migrating" when the record has none (Kafka's `defaultToMigrating`).
    pub fn from_record(r: &PartitionRecord) -> Result<PartitionRegistration, PartitionError> {
        check_directories(r.replicas.len(), &r.directories)?;
        Ok(PartitionRegistration {
            directories: default_to_migrating(r.directories.clone(), r.replicas.len()),
            replicas: r.replicas.clone(),
            isr: r.isr.clone(),
            removing_replicas: r.removing_replicas.clone(),
            adding_replicas: r.adding_replicas.clone(),
            leader: r.leader,
            leader_recovery_state: recovery_state(r.leader_recovery_state)?,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
            elr: r.eligible_leader_replicas.clone().unwrap_or_default(),
            last_known_elr: r.last_known_elr.clone().unwrap_or_default(),
        })
    }

    /// Applies a change exactly as Kafka's `PartitionRegistration.merge`: absent (null)
    /// fields keep their value; a leader other than [`NO_LEADER_CHANGE`] (including the
    /// same leader again, and [`NO_LEADER`]) bumps the leader epoch by one; every change
    /// bumps the partition epoch by one.
    ///
    /// One check is stricter than Kafka: a change of replicas that keeps real (not
    /// "migrating") directories of another length is refused. Kafka's merge accepts it and
    /// then cannot load its own snapshot of the result (`checkDirectories` throws); its
    /// controller always sends directories with new replicas, so only a faulty writer hits
    /// this.
    pub fn merge(
        &self,
        c: &PartitionChangeRecord,
    ) -> Result<PartitionRegistration, PartitionError> {
        if let (Some(replicas), Some(directories)) = (&c.replicas, &c.directories) {
            check_directories(replicas.len(), directories)?;
        }
        let replicas = c.replicas.clone().unwrap_or_else(|| self.replicas.clone());
        let directories = default_to_migrating(
            c.directories
                .clone()
                .unwrap_or_else(|| self.directories.clone()),
            replicas.len(),
        );
        check_directories(replicas.len(), &directories)?;
        let (leader, leader_epoch) = if c.leader == NO_LEADER_CHANGE {
            (self.leader, self.leader_epoch)
        } else {
            (c.leader, self.leader_epoch.wrapping_add(1))
        };
        let leader_recovery_state = if c.leader_recovery_state == -1 {
            self.leader_recovery_state
        } else {
            recovery_state(c.leader_recovery_state)?
        };
        let keep = |new: &Option<Vec<i32>>, old: &Vec<i32>| new.clone().unwrap_or(old.clone());
        Ok(PartitionRegistration {
            replicas,
            directories,
            isr: keep(&c.isr, &self.isr),
            removing_replicas: keep(&c.removing_replicas, &self.removing_replicas),
            adding_replicas: keep(&c.adding_replicas, &self.adding_replicas),
            leader,
            leader_recovery_state,
            leader_epoch,
            partition_epoch: self.partition_epoch.wrapping_add(1),
            elr: keep(&c.eligible_leader_replicas, &self.elr),
            last_known_elr: keep(&c.last_known_elr, &self.last_known_elr),
        })
    }

    /// The `PartitionRecord` that recreates this registration (Kafka's `toRecord` at a
    /// metadata version with directory assignment and ELR).
    pub fn to_record(&self, topic_id: Uuid, partition_id: i32) -> PartitionRecord {
        let non_empty = |v: &Vec<i32>| (!v.is_empty()).then(|| v.clone());
        PartitionRecord {
            partition_id,
            topic_id,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            removing_replicas: self.removing_replicas.clone(),
            adding_replicas: self.adding_replicas.clone(),
            leader: self.leader,
            leader_recovery_state: self.leader_recovery_state.value(),
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            directories: self.directories.clone(),
            eligible_leader_replicas: non_empty(&self.elr),
            last_known_elr: non_empty(&self.last_known_elr),
        }
    }

    /// True if `broker` is one of the replicas.
    pub fn has_replica(&self, broker: i32) -> bool {
        self.replicas.contains(&broker)
    }

    /// The leader, if there is one.
    pub fn leader(&self) -> Option<i32> {
        (self.leader >= 0).then_some(self.leader)
    }

    /// The directory of `broker`'s replica, `None` if it is not a replica (or the
    /// directories are not aligned with the replicas).
    pub fn directory(&self, broker: i32) -> Option<Uuid> {
        let i = self.replicas.iter().position(|&r| r == broker)?;
        self.directories.get(i).copied()
    }
}

/// Kafka's `defaultToMigrating`: no directories, or only "migrating" ones, become one
/// "migrating" directory per replica.
fn default_to_migrating(directories: Vec<Uuid>, replicas: usize) -> Vec<Uuid> {
    if directories.iter().all(|d| *d == MIGRATING_DIRECTORY) {
        vec![MIGRATING_DIRECTORY; replicas]
    } else {
        directories
    }
}

/// One topic: name, id and partitions. Shared by `Arc` between images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, Arc<PartitionRegistration>>,
}

impl TopicImage {
    /// A topic with no partitions yet (what a `TopicRecord` creates).
    pub fn new(name: String, id: Uuid) -> TopicImage {
        TopicImage {
            name,
            id,
            partitions: BTreeMap::new(),
        }
    }

    /// The partition with this id.
    pub fn partition(&self, partition: i32) -> Option<&PartitionRegistration> {
        self.partitions.get(&partition).map(|p| &**p)
    }
}

/// All topics, by id and by name. Each map sits behind an `Arc`, each topic too, so a
/// clone of the image copies two pointers, and a delta touching one topic copies the
/// maps' pointers but no other topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicsImage {
    pub(crate) by_id: Arc<BTreeMap<Uuid, Arc<TopicImage>>>,
    pub(crate) by_name: Arc<BTreeMap<String, Uuid>>,
}

impl TopicsImage {
    /// The topic with this id.
    pub fn get(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.by_id.get(id)
    }

    /// The topic with this name.
    pub fn get_by_name(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }

    /// Topics ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.by_id.values()
    }

    /// Topic names, in name order, with their ids.
    pub fn names(&self) -> impl Iterator<Item = (&str, Uuid)> {
        self.by_name.iter().map(|(n, id)| (n.as_str(), *id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Inserts or replaces a topic; a replaced topic's old name no longer maps to it.
    pub(crate) fn put(&mut self, topic: Arc<TopicImage>) {
        let by_id = Arc::make_mut(&mut self.by_id);
        if let Some(old) = by_id.get(&topic.id)
            && old.name != topic.name
        {
            Arc::make_mut(&mut self.by_name).remove(&old.name);
        }
        if self.by_name.get(&topic.name) != Some(&topic.id) {
            Arc::make_mut(&mut self.by_name).insert(topic.name.clone(), topic.id);
        }
        by_id.insert(topic.id, topic);
    }

    /// The partitions of a topic, to edit (copying the topic if it is shared).
    pub(crate) fn partitions_mut(
        &mut self,
        id: &Uuid,
    ) -> Option<&mut BTreeMap<i32, Arc<PartitionRegistration>>> {
        if !self.by_id.contains_key(id) {
            return None;
        }
        let topic = Arc::make_mut(&mut self.by_id).get_mut(id)?;
        Some(&mut Arc::make_mut(topic).partitions)
    }

    /// Removes a topic, returning it.
    pub(crate) fn remove(&mut self, id: &Uuid) -> Option<Arc<TopicImage>> {
        let topic = Arc::make_mut(&mut self.by_id).remove(id)?;
        if self.by_name.get(&topic.name) == Some(id) {
            Arc::make_mut(&mut self.by_name).remove(&topic.name);
        }
        Some(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> PartitionRegistration {
        PartitionRegistration::from_record(&PartitionRecord {
            partition_id: 0,
            topic_id: Uuid([1; 16]),
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 4,
            partition_epoch: 9,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn partition_record_without_directories_defaults_to_migrating() {
        let p = registration();
        assert_eq!(p.directories, vec![MIGRATING_DIRECTORY; 3]);
        assert!(p.elr.is_empty() && p.last_known_elr.is_empty());
        assert_eq!(p.directory(2), Some(MIGRATING_DIRECTORY));
        assert_eq!(p.directory(7), None);
    }

    #[test]
    fn merge_with_no_leader_change_keeps_leader_epoch() {
        let p = registration();
        let next = p
            .merge(&PartitionChangeRecord {
                isr: Some(vec![1, 2]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((next.leader, next.leader_epoch), (1, 4));
        assert_eq!(next.partition_epoch, 10);
        assert_eq!(next.isr, vec![1, 2]);
        assert_eq!(next.replicas, p.replicas);
    }

    #[test]
    fn merge_with_any_leader_bumps_leader_epoch_even_the_same_or_none() {
        let p = registration();
        for leader in [1, 2, NO_LEADER] {
            let next = p
                .merge(&PartitionChangeRecord {
                    leader,
                    ..Default::default()
                })
                .unwrap();
            assert_eq!((next.leader, next.leader_epoch), (leader, 5));
            assert_eq!(next.partition_epoch, 10);
        }
        let offline = p
            .merge(&PartitionChangeRecord {
                leader: NO_LEADER,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(offline.leader(), None);
    }

    #[test]
    fn merge_resizes_migrating_directories_with_replicas() {
        let p = registration();
        let next = p
            .merge(&PartitionChangeRecord {
                replicas: Some(vec![1, 2, 3, 4]),
                leader_recovery_state: 1,
                eligible_leader_replicas: Some(vec![3]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(next.directories.len(), 4);
        assert_eq!(next.leader_recovery_state, LeaderRecoveryState::Recovering);
        assert_eq!(next.elr, vec![3]);
        // Real directories are kept as they are.
        let dir = Uuid([9; 16]);
        let with_dirs = p
            .merge(&PartitionChangeRecord {
                directories: Some(vec![dir, dir, dir]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(with_dirs.directory(3), Some(dir));
        // New replicas without directories cannot keep three real ones.
        assert_eq!(
            with_dirs.merge(&PartitionChangeRecord {
                replicas: Some(vec![1]),
                ..Default::default()
            }),
            Err(PartitionError::DirectoriesMismatch {
                replicas: 1,
                directories: 3
            })
        );
        assert!(
            p.merge(&PartitionChangeRecord {
                leader_recovery_state: 7,
                ..Default::default()
            })
            .is_err()
        );
        assert_eq!(
            PartitionRegistration::from_record(&PartitionRecord {
                replicas: vec![1, 2],
                directories: vec![dir],
                ..Default::default()
            }),
            Err(PartitionError::DirectoriesMismatch {
                replicas: 2,
                directories: 1
            })
        );
    }

    #[test]
    fn to_record_round_trips() {
        let mut p = registration();
        p.elr = vec![2];
        let back = PartitionRegistration::from_record(&p.to_record(Uuid([1; 16]), 0)).unwrap();
        assert_eq!(back, p);
    }
}
