//! The registry driven by the cluster's metadata log: the caller (the cluster adapter, from
//! each new metadata image) says which topics exist, how many partitions they have, their
//! configs, and which partitions have a replica on this node with which role; the registry
//! makes the local replicas match. No metadata file is read or written: the metadata log is
//! the record of topics, and partition directories are the only local state.
//!
//! - [`TopicRegistry::open_driven`]: an empty registry over the log directories.
//! - [`TopicRegistry::sync`]: the whole metadata at once (start-up, or after a snapshot
//!   was installed): also removes topics it does not name and sets aside partition
//!   directories it does not name (Kafka's stray logs).
//! - [`TopicRegistry::apply`]: changed topics (each spec is the topic's whole state).
//! - [`TopicRegistry::remove`]: deleted topics (their local data is deleted).
//!
//! One partition's failure never stops the others: it is reported in [`Applied::failures`]
//! and the partition is not hosted (a failing log directory goes offline, as elsewhere).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arus_protocol::Uuid;
use parking_lot::{Mutex, RwLock};
use tracing::{info, warn};

use super::{
    Hosted, Mode, OpenJob, Topic, TopicError, TopicRegistry, is_internal_topic, now_ms,
    set_aside_unnamed,
};
use crate::broker_config::BrokerConfig;
use crate::log_dirs::{LogDirs, discovery, names};
use crate::partition::role::{LocalRole, Transition};
use crate::partition::{Partition, RoleChangeError};
use crate::store;
use crate::topic_settings::TopicSettings;

/// A topic as the metadata describes it to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub id: Uuid,
    /// Partitions `0..partition_count` exist in the cluster.
    pub partition_count: i32,
    /// The partitions with a replica on this node, and this node's role in each.
    pub local: BTreeMap<i32, LocalRole>,
    /// The topic's config overrides (ConfigRecords of the TOPIC resource).
    pub configs: BTreeMap<String, String>,
}

/// A change of role of a local partition, for the caller to act on (the coordinators
/// load or unload the groups and transactions of an internal partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    pub topic: String,
    pub partition: i32,
    pub change: Transition,
}

/// A partition the registry could not bring to the state asked.
#[derive(Debug)]
pub struct PartitionFailure {
    pub topic: String,
    pub partition: i32,
    pub error: TopicError,
}

/// What [`TopicRegistry::apply`], [`TopicRegistry::remove`] or [`TopicRegistry::sync`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Role changes of local partitions, including partitions newly hosted here
    /// (`BecameLeader`/`BecameFollower`) and removed (`Stopped`), in topic, partition order.
    pub changes: Vec<RoleChange>,
    pub failures: Vec<PartitionFailure>,
}

impl Applied {
    fn changed(&mut self, topic: &str, partition: i32, change: Transition) {
        if change != Transition::Unchanged {
            self.changes.push(RoleChange {
                topic: topic.to_string(),
                partition,
                change,
            });
        }
    }

    fn failed(&mut self, topic: &str, partition: i32, error: TopicError) {
        warn!(topic, partition, error = %error, "cannot host a partition the metadata assigns to this node");
        self.failures.push(PartitionFailure {
            topic: topic.to_string(),
            partition,
            error,
        });
    }
}

fn became(role: LocalRole) -> Transition {
    match role {
        LocalRole::Leader { epoch } => Transition::BecameLeader { epoch },
        LocalRole::Follower { leader, epoch } => Transition::BecameFollower { leader, epoch },
    }
}

impl TopicRegistry {
    /// An empty registry over `dirs`, driven by the metadata log (see the module doc): no
    /// metadata file is read or written. Call [`TopicRegistry::sync`] with the committed
    /// metadata before serving.
    pub fn open_driven(
        config: Arc<BrokerConfig>,
        dirs: Arc<LogDirs>,
        cluster_id: String,
    ) -> Result<TopicRegistry, TopicError> {
        for d in dirs.all() {
            store::create_dir_all_durable(&d.path).map_err(|source| store::StoreError::Io {
                path: d.path.clone(),
                source,
            })?;
        }
        // As Kafka's LogManager at start-up, whatever the metadata says: one partition in
        // two directories stops the start (only planned here, nothing is changed).
        let paths: Vec<PathBuf> = dirs.all().iter().map(|d| d.path.clone()).collect();
        let listed: Vec<(usize, &std::path::Path)> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.as_path()))
            .collect();
        if let Ok(found) = discovery::scan(&listed) {
            discovery::plan(&found, &HashSet::new(), &paths)?;
        }
        Ok(TopicRegistry {
            mode: Mode::Driven,
            config,
            dirs,
            cluster_id,
            by_name: RwLock::new(HashMap::new()),
            by_id: RwLock::new(HashMap::new()),
            change: Mutex::new(()),
            closed: AtomicBool::new(false),
            created_version: std::sync::atomic::AtomicI64::new(now_ms()),
            prepared: Mutex::default(),
        })
    }

    /// Whether the metadata log drives the registry.
    pub fn is_driven(&self) -> bool {
        self.mode == Mode::Driven
    }

    /// Makes the local state match the whole metadata: topics `specs` does not name are
    /// removed (their local data deleted), partition directories no spec names are set
    /// aside as strays (renamed `-stray`, never deleted), moves a crash interrupted are
    /// settled, then `specs` are applied.
    pub fn sync(&self, specs: &[TopicSpec]) -> Result<Applied, TopicError> {
        let _guard = self.lock_driven()?;
        let mut applied = Applied::default();
        let by_name: HashMap<&str, &TopicSpec> =
            specs.iter().map(|s| (s.name.as_str(), s)).collect();
        let gone: Vec<Arc<Topic>> = self
            .all()
            .into_iter()
            .filter(|t| by_name.get(t.name.as_str()).is_none_or(|s| s.id != t.id))
            .collect();
        for t in gone {
            self.remove_topic(&t, &mut applied);
        }
        let named = |topic: &str, index: i32| {
            by_name
                .get(topic)
                .is_some_and(|s| s.local.contains_key(&index))
        };
        for d in self.dirs.all().iter().filter(|d| d.is_online()) {
            set_aside_unnamed(&d.path, named);
        }
        let known: HashSet<(String, i32)> = specs
            .iter()
            .flat_map(|s| s.local.keys().map(|&p| (s.name.clone(), p)))
            .collect();
        let paths: Vec<PathBuf> = self.dirs.all().iter().map(|d| d.path.clone()).collect();
        let found = self.scan_online();
        let plan = discovery::plan(&found, &known, &paths)?;
        discovery::execute(&plan, &paths)?;
        self.apply_locked(specs, &mut applied);
        Ok(applied)
    }

    /// Applies changed topics: each spec is the topic's whole state. New topics are added;
    /// partitions newly assigned here are opened (an existing directory recovered, in
    /// parallel on `num.recovery.threads.per.data.dir`, otherwise created); partitions no
    /// longer assigned here are stopped and their data deleted; roles and configs follow the
    /// spec. A topic whose id changed (deleted and created again) starts over.
    pub fn apply(&self, specs: &[TopicSpec]) -> Result<Applied, TopicError> {
        let _guard = self.lock_driven()?;
        let mut applied = Applied::default();
        self.apply_locked(specs, &mut applied);
        Ok(applied)
    }

    /// Deletes topics (by id) the metadata removed, with their local data. Unknown ids
    /// are ignored (nothing was hosted).
    pub fn remove(&self, ids: &[Uuid]) -> Result<Applied, TopicError> {
        let _guard = self.lock_driven()?;
        let mut applied = Applied::default();
        for id in ids {
            if let Some(t) = self.get_by_id(id) {
                self.remove_topic(&t, &mut applied);
            }
        }
        Ok(applied)
    }

    fn lock_driven(&self) -> Result<parking_lot::MutexGuard<'_, ()>, TopicError> {
        if self.mode != Mode::Driven {
            // The file-backed registry decides its own topics.
            return Err(TopicError::MetadataDriven);
        }
        self.lock_change()
    }

    /// The partition directories of the online log directories. A directory that cannot be
    /// listed goes offline (its partitions then fail to open, each reported).
    fn scan_online(&self) -> discovery::Found {
        loop {
            let online: Vec<(usize, &std::path::Path)> = self
                .dirs
                .all()
                .iter()
                .filter(|d| d.is_online())
                .map(|d| (d.index, d.path.as_path()))
                .collect();
            match discovery::scan(&online) {
                Ok(found) => return found,
                Err((i, e)) => self.dirs.all()[i].fail(&e),
            }
        }
    }

    fn apply_locked(&self, specs: &[TopicSpec], applied: &mut Applied) {
        // Topics created again under a new id lose the old incarnation first.
        for spec in specs {
            if let Some(old) = self.get(&spec.name).filter(|t| t.id != spec.id) {
                self.remove_topic(&old, applied);
            }
        }
        let mut to_open: Vec<(Arc<Topic>, i32, LocalRole)> = Vec::new();
        // New topics become visible (Metadata, produce, fetch) only once their local
        // partitions are open with their roles: a client told of a topic must find its
        // leader ready, or an acks=0 producer loses what it sends.
        let mut created: Vec<Arc<Topic>> = Vec::new();
        for spec in specs {
            let (topic, new) = self.upsert_topic(spec);
            if new {
                created.push(topic.clone());
            }
            self.update_settings(&topic, &spec.configs);
            let current = topic.partitions();
            for p in current {
                match spec.local.get(&p.index) {
                    None => self.drop_partition(&topic, p, applied),
                    Some(&role) => match p.change_role(role) {
                        Ok(change) => applied.changed(&topic.name, p.index, change),
                        Err(RoleChangeError::Refused(e)) => {
                            warn!(topic = %topic.name, partition = p.index, error = %e, "role change ignored")
                        }
                        Err(RoleChangeError::Log(e)) => {
                            applied.failed(&topic.name, p.index, e.into())
                        }
                    },
                }
            }
            for (&index, &role) in &spec.local {
                if !(0..spec.partition_count).contains(&index) {
                    applied.failed(
                        &topic.name,
                        index,
                        TopicError::InvalidPartitions(format!(
                            "partition {index} is not below the partition count {}",
                            spec.partition_count
                        )),
                    );
                } else if topic.partition(index).is_none() {
                    to_open.push((topic.clone(), index, role));
                }
            }
        }
        self.open_local(to_open, applied);
        for topic in created {
            info!(topic = %topic.name, partitions = topic.partition_count(), "topic added from the metadata");
            self.insert(topic);
            self.created_version
                .fetch_max(now_ms(), std::sync::atomic::Ordering::SeqCst);
            self.created_version
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The registry's topic for `spec`, with the spec's partition count: the existing one,
    /// or a new one (`true`) that the caller inserts once its partitions are open.
    fn upsert_topic(&self, spec: &TopicSpec) -> (Arc<Topic>, bool) {
        if let Some(t) = self.get_by_id(&spec.id) {
            let mut hosted = t.partitions.write();
            if spec.partition_count < hosted.count {
                // Kafka never shrinks a topic; the metadata is the truth regardless.
                warn!(topic = %spec.name, from = hosted.count, to = spec.partition_count, "the metadata shrank a topic's partition count");
            }
            hosted.count = spec.partition_count;
            return (t.clone(), false);
        }
        let settings = Arc::new(TopicSettings::resolve(&self.config, spec.configs.clone()));
        let topic = Arc::new(Topic {
            name: spec.name.clone(),
            id: spec.id,
            internal: is_internal_topic(&spec.name),
            partitions: RwLock::new(Hosted {
                count: spec.partition_count,
                local: BTreeMap::new(),
            }),
            settings: RwLock::new(settings),
        });
        (topic, true)
    }

    /// New overrides: the topic's settings are resolved again and handed to its partitions.
    fn update_settings(&self, topic: &Topic, overrides: &BTreeMap<String, String>) {
        if topic.settings().overrides == *overrides {
            return;
        }
        let settings = Arc::new(TopicSettings::resolve(&self.config, overrides.clone()));
        *topic.settings.write() = settings.clone();
        for p in topic.partitions() {
            p.set_settings(settings.clone());
        }
        info!(topic = %topic.name, "topic configs updated from the metadata");
    }

    /// Opens the partitions newly assigned here: those with a directory on disk are
    /// recovered in parallel, the others created where placement says.
    fn open_local(&self, wanted: Vec<(Arc<Topic>, i32, LocalRole)>, applied: &mut Applied) {
        // Opened ahead by the controller of this node (see `prepared`): hosted as they are.
        let wanted: Vec<(Arc<Topic>, i32, LocalRole)> = wanted
            .into_iter()
            .filter(|(topic, index, role)| {
                let Some(p) = self.adopt_prepared(topic.id, *index) else {
                    return true;
                };
                p.set_settings(topic.settings());
                match p.change_role(*role) {
                    Ok(_) => self.host(topic, p, *role, applied),
                    Err(RoleChangeError::Refused(e)) => {
                        warn!(topic = %topic.name, partition = index, error = %e, "role change ignored");
                        self.host(topic, p, *role, applied)
                    }
                    Err(RoleChangeError::Log(e)) => applied.failed(&topic.name, *index, e.into()),
                }
                false
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let found = self.scan_online();
        let mut existing = Vec::new();
        let mut fresh = Vec::new();
        for (topic, index, role) in wanted {
            let at = found
                .current
                .get(&(topic.name.clone(), index))
                .and_then(|dirs| dirs.first().copied());
            match at {
                Some(d) => existing.push((topic, index, role, d)),
                None => fresh.push((topic, index, role)),
            }
        }
        let jobs: Vec<OpenJob<'_>> = existing
            .iter()
            .map(|(topic, index, role, d)| OpenJob {
                topic: &topic.name,
                index: *index,
                settings: topic.settings(),
                at: self.dirs.all()[*d].clone(),
                role: *role,
            })
            .collect();
        let opened = self.open_partitions(&jobs);
        for ((topic, index, role, _), result) in existing.iter().zip(opened) {
            match result {
                Ok(p) => self.host(topic, Arc::new(p), *role, applied),
                Err(e) => applied.failed(&topic.name, *index, e),
            }
        }
        let mut counts = self.partitions_per_dir();
        for (topic, index, role) in fresh {
            match self.create_partition(&topic.name, index, &topic.settings(), role, &mut counts) {
                Ok(p) => self.host(&topic, p, role, applied),
                Err(e) => applied.failed(&topic.name, index, e),
            }
        }
    }

    fn host(&self, topic: &Topic, p: Arc<Partition>, role: LocalRole, applied: &mut Applied) {
        p.record_topic_id(&topic.id.0);
        applied.changed(&topic.name, p.index, became(role));
        topic.partitions.write().local.insert(p.index, p);
    }

    /// Stops a local replica the metadata no longer assigns here and deletes its data
    /// (Kafka's StopReplica with deletion).
    fn drop_partition(&self, topic: &Topic, p: Arc<Partition>, applied: &mut Applied) {
        topic.partitions.write().local.remove(&p.index);
        applied.changed(&topic.name, p.index, p.stop());
        self.dirs.moves.cancel(&topic.name, p.index);
        let (index, dir) = (
            p.index,
            p.location().path.join(names::current(&topic.name, p.index)),
        );
        if let Err(e) = p.delete() {
            // Not named by the metadata: set aside at the next start.
            warn!(topic = %topic.name, partition = index, dir = %dir.display(), error = %e, "could not remove the data of a partition no longer hosted here");
        }
    }

    /// Takes a topic out of the registry and deletes its local data, as `delete` does.
    fn remove_topic(&self, topic: &Arc<Topic>, applied: &mut Applied) {
        self.by_name.write().remove(&topic.name);
        self.by_id.write().remove(&topic.id);
        for p in topic.partitions() {
            self.drop_partition(topic, p, applied);
        }
        topic.partitions.write().count = 0;
        info!(topic = %topic.name, "topic removed by the metadata");
    }
}

pub mod prepared;
#[cfg(test)]
mod tests;
