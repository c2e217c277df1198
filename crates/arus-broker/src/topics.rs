//! The topic registry: names and ids to partitions, with creation, deletion, partition
//! growth and config changes persisted through [`crate::store`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arus_protocol::{ErrorCode, Uuid};
use parking_lot::{Mutex, RwLock};
use tracing::info;

pub mod driven;

use crate::broker_config::BrokerConfig;
use crate::config_defs::ConfigValueError;
use crate::log_dirs::discovery::{self, DiscoveryError};
use crate::log_dirs::{LogDir, LogDirs, names, placement};
use crate::partition::Partition;
use crate::partition::role::LocalRole;
use crate::store::{self, MetadataFile, StoreError, TopicRecord};
use crate::topic_settings::{TopicSettings, validate_overrides};

/// Kafka's internal topics (`Topic.INTERNAL_TOPICS`): written only by the broker's own
/// coordinators. Clients may read them but never produce to them or delete them; a user topic
/// whose name merely starts with `__` is an ordinary topic, as in Kafka.
pub const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub internal: bool,
    partitions: RwLock<Hosted>,
    settings: RwLock<Arc<TopicSettings>>,
}

/// A topic's partitions as the metadata counts them, and the ones with a replica on this
/// node. A single node hosts all of them; in a cluster most live elsewhere.
#[derive(Default)]
struct Hosted {
    /// How many partitions the topic has (`0..count` exist).
    count: i32,
    /// The partitions with a local replica, by index (each below `count`).
    local: BTreeMap<i32, Arc<Partition>>,
}

impl Hosted {
    /// Every partition of the topic is local (`parts[i]` is partition `i`).
    fn all_local(parts: Vec<Arc<Partition>>) -> Hosted {
        Hosted {
            count: parts.len() as i32,
            local: parts.into_iter().map(|p| (p.index, p)).collect(),
        }
    }

    /// Adds local partitions past the current count (partition growth on a single node).
    fn extend(&mut self, added: Vec<Arc<Partition>>) {
        for p in added {
            self.count = self.count.max(p.index + 1);
            self.local.insert(p.index, p);
        }
    }

    /// Undoes [`Hosted::extend`]: the count goes back to `count`; returns the partitions
    /// at or past it.
    fn truncate(&mut self, count: i32) -> Vec<Arc<Partition>> {
        let removed = self.local.split_off(&count).into_values().collect();
        self.count = count;
        removed
    }

    /// Takes every local partition out (the topic is going away).
    fn take_local(&mut self) -> Vec<Arc<Partition>> {
        std::mem::take(&mut self.local).into_values().collect()
    }
}

impl Topic {
    /// The partitions with a replica on this node, by index. Not the topic's partitions:
    /// use [`Topic::partition_count`] for those.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().local.values().cloned().collect()
    }

    /// This node's replica of partition `index`; `None` if the partition does not exist or
    /// is hosted elsewhere ([`Topic::has_partition`] tells the two apart).
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.partitions.read().local.get(&index).cloned()
    }

    /// How many partitions the topic has, wherever they are hosted.
    pub fn partition_count(&self) -> i32 {
        self.partitions.read().count
    }

    /// Whether partition `index` exists (hosted here or not).
    pub fn has_partition(&self, index: i32) -> bool {
        (0..self.partition_count()).contains(&index)
    }

    pub fn settings(&self) -> Arc<TopicSettings> {
        self.settings.read().clone()
    }
}

/// Why a topic operation failed; each maps to exactly one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("Topic '{0}' already exists.")]
    AlreadyExists(String),
    #[error("This server does not host this topic-partition.")]
    Unknown,
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error(transparent)]
    InvalidConfig(#[from] ConfigValueError),
    #[error("Topic deletion is disabled.")]
    DeletionDisabled,
    #[error("storage error: {0}")]
    Log(#[from] arus_log::LogError),
    #[error("metadata error: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("No log directories available: {0}")]
    NoLogDirs(String),
    #[error("The broker is shutting down.")]
    ShuttingDown,
    /// The registry follows the cluster's metadata log: topics change through the
    /// controller, never here.
    #[error("Topic changes on this node go through the controller.")]
    MetadataDriven,
}

impl TopicError {
    pub fn code(&self) -> ErrorCode {
        match self {
            TopicError::AlreadyExists(_) => ErrorCode::TopicAlreadyExists,
            TopicError::Unknown => ErrorCode::UnknownTopicOrPartition,
            TopicError::InvalidName(_) => ErrorCode::InvalidTopicException,
            TopicError::InvalidPartitions(_) => ErrorCode::InvalidPartitions,
            TopicError::InvalidReplicationFactor(_) => ErrorCode::InvalidReplicationFactor,
            TopicError::InvalidReplicaAssignment(_) => ErrorCode::InvalidReplicaAssignment,
            TopicError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            TopicError::DeletionDisabled => ErrorCode::TopicDeletionDisabled,
            TopicError::Log(_)
            | TopicError::Store(_)
            | TopicError::Discovery(_)
            | TopicError::NoLogDirs(_) => ErrorCode::KafkaStorageError,
            // Retriable: the client asks again, of this broker after its restart (or, driven,
            // of the controller through the forwarding the cluster adapter provides).
            TopicError::ShuttingDown | TopicError::MetadataDriven => ErrorCode::NotController,
        }
    }
}

/// Kafka's topic name rules: 1–249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::InvalidName(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(TopicError::InvalidName(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > 249 {
        return Err(TopicError::InvalidName(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(TopicError::InvalidName(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// One partition to open (recover) from its directory in `at`.
struct OpenJob<'a> {
    topic: &'a str,
    index: i32,
    settings: Arc<TopicSettings>,
    at: Arc<LogDir>,
    role: LocalRole,
}

impl OpenJob<'_> {
    fn open(&self) -> Result<Partition, TopicError> {
        Ok(Partition::open_as(
            self.topic,
            self.index,
            self.at.clone(),
            self.settings.clone(),
            self.role,
            now_ms(),
        )?)
    }
}

/// A validated request to create a topic.
#[derive(Clone, Debug)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Where the registry's topics come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `arus-metadata.json`, written by the registry's own changes (the single node).
    File,
    /// The cluster's metadata log, applied through [`driven`]; no file is read or written.
    Driven,
}

pub struct TopicRegistry {
    mode: Mode,
    config: Arc<BrokerConfig>,
    dirs: Arc<LogDirs>,
    cluster_id: String,
    by_name: RwLock<HashMap<String, Arc<Topic>>>,
    by_id: RwLock<HashMap<Uuid, Arc<Topic>>>,
    /// Serialises metadata changes so the file always matches the registry.
    change: Mutex<()>,
    /// Set (under `change`) by [`TopicRegistry::close_all`]: no topic change, and above all no
    /// metadata file write, may follow — the registry is empty by then, and a write would
    /// replace the file's topics with whatever a late request created.
    closed: std::sync::atomic::AtomicBool,
    /// Wall-clock ms of the last topic creation (at least the registry's opening): the
    /// version KIP-848 regex subscriptions compare their resolution against. Wall clock so it
    /// keeps increasing across restarts, as Kafka's metadata offsets do.
    created_version: std::sync::atomic::AtomicI64,
    /// Partitions opened ahead of the metadata that assigns them (driven mode only).
    prepared: Mutex<driven::prepared::Prepared>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn random_uuid() -> Uuid {
    loop {
        let id = Uuid(*uuid::Uuid::new_v4().as_bytes());
        if id != Uuid::ZERO {
            return id;
        }
    }
}

fn hex(id: &Uuid) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &str) -> Option<Uuid> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(Uuid(out))
}

/// Suffix of a partition directory the metadata does not name, set aside at start-up
/// (Kafka's `LocalLog.StrayDirSuffix`): `<topic>-<partition>.<32 hex digits>-stray`.
pub const STRAY_DIR_SUFFIX: &str = "-stray";

/// Renames aside every partition directory (`<topic>-<n>`, a valid topic name and a
/// partition number) that the metadata does not name: left by a crash between making a
/// topic's or partitions' directories and writing the metadata file, or by a delete that
/// could not remove them. Never loaded, so never served; a later topic of the same name
/// starts empty. Like Kafka 4.x with stray logs, they are renamed (`-stray`), with a log
/// line, not deleted: an operator may inspect them and deletes them by hand. Other entries
/// of the log directory are left alone. Best effort: a failed rename is logged, and the
/// directory is then removed before a partition of that name is created.
fn set_aside_strays(log_dir: &Path, file: &MetadataFile) {
    let known: HashMap<&str, i32> = file
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.partitions))
        .collect();
    set_aside_unnamed(log_dir, |topic, index| {
        known.get(topic).is_some_and(|&n| index < n)
    });
}

/// [`set_aside_strays`] with the metadata as a predicate: `named(topic, partition)` is
/// whether this node keeps a replica of the partition.
fn set_aside_unnamed(log_dir: &Path, named: impl Fn(&str, i32) -> bool) {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((topic, digits)) = name.rsplit_once('-') else {
            continue;
        };
        // The cluster's metadata log lives beside the partitions under Kafka's name for it;
        // it is never a topic's partition (Kafka's LogManager skips it too).
        if name == "__cluster_metadata-0" {
            continue;
        }
        // Only the canonical spelling `open_partition` makes (no sign, no leading zero).
        let Some(index) = digits
            .parse::<i32>()
            .ok()
            .filter(|i| i.to_string() == digits)
        else {
            continue;
        };
        if validate_topic_name(topic).is_err()
            || !entry.file_type().is_ok_and(|t| t.is_dir())
            || named(topic, index)
        {
            continue;
        }
        let to = log_dir.join(format!("{name}.{}{STRAY_DIR_SUFFIX}", hex(&random_uuid())));
        match std::fs::rename(entry.path(), &to) {
            Ok(()) => {
                tracing::warn!(dir = %entry.path().display(), renamed = %to.display(), "found a partition directory the metadata does not name; set aside (delete it once inspected)")
            }
            Err(e) => {
                tracing::warn!(dir = %entry.path().display(), error = %e, "cannot set aside a partition directory the metadata does not name")
            }
        }
    }
}

impl TopicRegistry {
    /// Loads the metadata file (in the metadata directory), finds every partition in
    /// whichever log directory holds it (settling moves a crash interrupted) and opens
    /// (recovers) them; a partition the metadata names but no directory holds is created
    /// where [`placement`] says.
    pub fn open(
        config: Arc<BrokerConfig>,
        dirs: Arc<LogDirs>,
    ) -> Result<TopicRegistry, TopicError> {
        let dir = config.log_dir.clone();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        store::create_dir_all_durable(&dir).map_err(io(&dir))?;
        for d in dirs.all() {
            store::create_dir_all_durable(&d.path).map_err(io(&d.path))?;
        }
        let file = match store::load(&dir)? {
            Some(f) => f,
            None => {
                // The cluster id of `meta.properties` (formatted ahead or at this start).
                let cluster_id = match &config.identity {
                    Some(identity) => identity.cluster_id.clone(),
                    None => random_uuid().to_string(),
                };
                let f = MetadataFile {
                    version: store::METADATA_VERSION,
                    cluster_id,
                    topics: Vec::new(),
                };
                store::save(&dir, &f)?;
                f
            }
        };
        for d in dirs.all() {
            set_aside_strays(&d.path, &file);
        }
        let paths: Vec<PathBuf> = dirs.all().iter().map(|d| d.path.clone()).collect();
        let scanned: Vec<(usize, &Path)> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.as_path()))
            .collect();
        let found = discovery::scan(&scanned).map_err(|(i, e)| io(&paths[i])(e))?;
        let known: std::collections::HashSet<(String, i32)> = file
            .topics
            .iter()
            .flat_map(|t| (0..t.partitions).map(|p| (t.name.clone(), p)))
            .collect();
        let plan = discovery::plan(&found, &known, &paths)?;
        discovery::execute(&plan, &paths)?;
        let mut counts = vec![0usize; paths.len()];
        for &d in plan.location.values() {
            counts[d] += 1;
        }
        let online = vec![true; paths.len()];
        let registry = TopicRegistry {
            mode: Mode::File,
            cluster_id: file.cluster_id.clone(),
            by_name: RwLock::new(HashMap::new()),
            by_id: RwLock::new(HashMap::new()),
            change: Mutex::new(()),
            closed: std::sync::atomic::AtomicBool::new(false),
            created_version: std::sync::atomic::AtomicI64::new(now_ms()),
            prepared: Mutex::default(),
            config,
            dirs: dirs.clone(),
        };
        let topics: Vec<(TopicRecord, Arc<TopicSettings>)> = file
            .topics
            .into_iter()
            .map(|rec| {
                let settings = Arc::new(TopicSettings::resolve(
                    &registry.config,
                    rec.configs.clone(),
                ));
                (rec, settings)
            })
            .collect();
        let mut jobs: Vec<OpenJob<'_>> = Vec::new();
        for (rec, settings) in &topics {
            for p in 0..rec.partitions {
                let at = match plan.location.get(&(rec.name.clone(), p)) {
                    Some(&d) => d,
                    None => {
                        let d = placement::next_log_dirs(&online, &counts)[0];
                        counts[d] += 1;
                        d
                    }
                };
                jobs.push(OpenJob {
                    topic: rec.name.as_str(),
                    index: p,
                    settings: settings.clone(),
                    at: dirs.all()[at].clone(),
                    role: LocalRole::Leader { epoch: 0 },
                });
            }
        }
        let mut opened = registry
            .open_partitions(&jobs)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        for (rec, settings) in topics {
            let id = parse_hex(&rec.id).unwrap_or_else(random_uuid);
            let parts: Vec<Arc<Partition>> = opened
                .by_ref()
                .take(rec.partitions.max(0) as usize)
                .map(Arc::new)
                .collect();
            registry.insert(Arc::new(Topic {
                internal: is_internal_topic(&rec.name),
                name: rec.name,
                id,
                partitions: RwLock::new(Hosted::all_local(parts)),
                settings: RwLock::new(settings),
            }));
        }
        Ok(registry)
    }

    /// The log directories.
    pub fn log_dirs(&self) -> &Arc<LogDirs> {
        &self.dirs
    }

    /// Partitions per log directory, counting the future replicas of moves (Kafka's
    /// `allLogs`), for [`placement::next_log_dirs`].
    pub fn partitions_per_dir(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.dirs.all().len()];
        for t in self.all() {
            for p in t.partitions() {
                counts[p.location().index] += 1;
            }
        }
        for d in self.dirs.moves.destinations() {
            counts[d] += 1;
        }
        counts
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Opens (recovers) partitions on `num.recovery.threads.per.data.dir` threads, as Kafka's
    /// LogManager does: after a crash each partition rescans what was not flushed, and the
    /// scans of different partitions are independent. Results keep the order of `jobs`;
    /// one partition's failure does not stop the others.
    fn open_partitions(&self, jobs: &[OpenJob<'_>]) -> Vec<Result<Partition, TopicError>> {
        let threads = self
            .config
            .num_recovery_threads_per_data_dir
            .clamp(1, jobs.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut done: Vec<(usize, Result<Partition, TopicError>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else {
                                return mine;
                            };
                            mine.push((i, job.open()));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }

    /// Makes partition `p` of `topic` in a fresh directory, in the log directory
    /// [`placement::next_log_dirs`] chooses from `counts` (the next candidate if one fails,
    /// as Kafka's `getOrCreateLog`), counting it there.
    fn create_partition(
        &self,
        topic: &str,
        p: i32,
        settings: &Arc<TopicSettings>,
        role: LocalRole,
        counts: &mut [usize],
    ) -> Result<Arc<Partition>, TopicError> {
        let name = names::current(topic, p);
        // A leftover directory (a delete that could not remove it) must not leak old
        // records into the new partition.
        for d in self.dirs.all().iter().filter(|d| d.is_online()) {
            let dir = d.path.join(&name);
            if dir.exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        let online: Vec<bool> = self.dirs.all().iter().map(|d| d.is_online()).collect();
        let candidates = placement::next_log_dirs(&online, counts);
        let mut last_error = TopicError::NoLogDirs("every log directory is offline".into());
        for d in candidates {
            let at = self.dirs.all()[d].clone();
            let job = OpenJob {
                topic,
                index: p,
                settings: settings.clone(),
                at: at.clone(),
                role,
            };
            match job.open() {
                Ok(partition) => {
                    counts[d] += 1;
                    return Ok(Arc::new(partition));
                }
                Err(e) => {
                    // The failing partition's directory may exist (half made) too.
                    let _ = std::fs::remove_dir_all(at.path.join(&name));
                    tracing::warn!(topic, partition = p, dir = %at.path.display(), error = %e, "cannot create a partition in this log directory");
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }

    fn insert(&self, topic: Arc<Topic>) {
        for p in topic.partitions() {
            p.record_topic_id(&topic.id.0);
        }
        self.by_id.write().insert(topic.id, topic.clone());
        self.by_name.write().insert(topic.name.clone(), topic);
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.by_name.read().get(name).cloned()
    }

    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.by_id.read().get(id).cloned()
    }

    /// All topics sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.by_name.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn persist(&self) -> Result<(), StoreError> {
        let topics = self
            .all()
            .iter()
            .map(|t| TopicRecord {
                name: t.name.clone(),
                id: hex(&t.id),
                partitions: t.partition_count(),
                configs: t.settings().overrides.clone(),
            })
            .collect();
        let saved = store::save(
            &self.config.log_dir,
            &MetadataFile {
                version: store::METADATA_VERSION,
                cluster_id: self.cluster_id.clone(),
                topics,
            },
        );
        if let Err(e @ StoreError::Io { source, .. }) = &saved
            && crate::log_dirs::is_dir_failure(source)
        {
            // Kafka halts when its metadata log directory fails.
            self.dirs.metadata_failed(e);
        }
        saved
    }

    /// Checks a creation request the way Kafka's controller does, without creating anything.
    pub fn validate_new(&self, t: &NewTopic) -> Result<(), TopicError> {
        validate_topic_name(&t.name)?;
        if self.get(&t.name).is_some() {
            return Err(TopicError::AlreadyExists(t.name.clone()));
        }
        if t.partitions < 1 {
            return Err(TopicError::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
        if t.partitions > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {} is above the limit of 100000 per topic.",
                t.partitions
            )));
        }
        if t.replication_factor < 1 {
            return Err(TopicError::InvalidReplicationFactor(
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ));
        }
        if t.replication_factor > 1 {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only 1 broker(s) are registered.",
                t.replication_factor, t.replication_factor
            )));
        }
        validate_overrides(&t.configs)?;
        Ok(())
    }

    /// Creates a topic: all or nothing. Its partition directories are made first, then the
    /// metadata file names the topic (the commit point). If any step fails, every
    /// directory made is removed and the metadata and the registry are as before; a crash
    /// before the commit point leaves directories the metadata does not name, which the
    /// next start sets aside ([`set_aside_strays`]).
    pub fn create(&self, t: NewTopic) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.lock_file_change()?;
        self.validate_new(&t)?;
        let settings = Arc::new(TopicSettings::resolve(&self.config, t.configs));
        let parts = self.open_new_partitions(&t.name, 0, t.partitions, &settings)?;
        let topic = Arc::new(Topic {
            internal: is_internal_topic(&t.name),
            name: t.name,
            id: random_uuid(),
            partitions: RwLock::new(Hosted::all_local(parts)),
            settings: RwLock::new(settings),
        });
        self.insert(topic.clone());
        if let Err(e) = self.persist() {
            self.by_name.write().remove(&topic.name);
            self.by_id.write().remove(&topic.id);
            let parts = topic.partitions.write().take_local();
            self.discard_partitions(parts);
            return Err(e.into());
        }
        info!(topic = %topic.name, partitions = topic.partition_count(), "created topic");
        self.created_version
            .fetch_max(now_ms(), std::sync::atomic::Ordering::SeqCst);
        // Two creations in one millisecond still count as a change.
        self.created_version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(topic)
    }

    /// Increases on every topic creation (see `created_version`).
    pub fn created_version(&self) -> i64 {
        self.created_version
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Opens partitions `from..to` of `topic` in fresh directories, each in the log
    /// directory [`placement::next_log_dirs`] chooses (the next candidate if one fails, as
    /// Kafka's `getOrCreateLog`). On an error, removes every directory it made before
    /// returning it.
    fn open_new_partitions(
        &self,
        topic: &str,
        from: i32,
        to: i32,
        settings: &Arc<TopicSettings>,
    ) -> Result<Vec<Arc<Partition>>, TopicError> {
        let mut parts = Vec::with_capacity((to - from).max(0) as usize);
        let mut counts = self.partitions_per_dir();
        for p in from..to {
            let leader = LocalRole::Leader { epoch: 0 };
            match self.create_partition(topic, p, settings, leader, &mut counts) {
                Ok(partition) => parts.push(partition),
                Err(e) => {
                    self.discard_partitions(parts);
                    return Err(e);
                }
            }
        }
        Ok(parts)
    }

    /// Closes and removes the directories of partitions that a failed change made. Their
    /// descriptors are released first: on a descriptor shortage (EMFILE) removing a
    /// directory tree needs some.
    fn discard_partitions(&self, parts: Vec<Arc<Partition>>) {
        let dirs: Vec<PathBuf> = parts
            .iter()
            .map(|p| p.location().path.join(names::current(&p.topic, p.index)))
            .collect();
        drop(parts);
        for dir in dirs {
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                // Not loaded (the metadata does not name it) and set aside at the next start.
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the directory of a partition whose creation failed");
            }
        }
    }

    /// Returns the topic, creating it with `t` if it does not exist. A concurrent creation
    /// of the same name is not an error: whoever won, the topic now exists.
    pub fn get_or_create(&self, t: NewTopic) -> Result<Arc<Topic>, TopicError> {
        if let Some(existing) = self.get(&t.name) {
            return Ok(existing);
        }
        let name = t.name.clone();
        match self.create(t) {
            Err(TopicError::AlreadyExists(_)) => self.get(&name).ok_or(TopicError::Unknown),
            other => other,
        }
    }

    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        if !self.config.delete_topic_enable {
            return Err(TopicError::DeletionDisabled);
        }
        let _guard = self.lock_file_change()?;
        let topic = self
            .by_name
            .write()
            .remove(name)
            .ok_or(TopicError::Unknown)?;
        self.by_id.write().remove(&topic.id);
        if let Err(e) = self.persist() {
            // The metadata file still names the topic: so must the registry.
            self.insert(topic);
            return Err(e.into());
        }
        let parts = topic.partitions.write().take_local();
        for p in parts {
            self.dirs.moves.cancel(name, p.index);
            if let Err(e) = p.delete() {
                tracing::warn!(topic = %name, error = %e, "could not remove partition data");
            }
        }
        info!(topic = %name, "deleted topic");
        Ok(topic)
    }

    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _guard = self.lock_file_change()?;
        let topic = self.get(name).ok_or(TopicError::Unknown)?;
        let current = topic.partition_count();
        if count < current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if count == current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {count} is above the limit of 100000 per topic."
            )));
        }
        if validate_only {
            return Ok(());
        }
        // All or nothing, like `create`: directories first, then the metadata file.
        let settings = topic.settings();
        let added = self.open_new_partitions(name, current, count, &settings)?;
        for p in &added {
            p.record_topic_id(&topic.id.0);
        }
        topic.partitions.write().extend(added);
        if let Err(e) = self.persist() {
            let added = topic.partitions.write().truncate(current);
            self.discard_partitions(added);
            return Err(e.into());
        }
        info!(topic = %name, partitions = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's overrides (already validated by the caller).
    pub fn set_configs(
        &self,
        topic: &Topic,
        overrides: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        validate_overrides(&overrides)?;
        let _guard = self.lock_file_change()?;
        let settings = Arc::new(TopicSettings::resolve(&self.config, overrides));
        let old = std::mem::replace(&mut *topic.settings.write(), settings.clone());
        for p in topic.partitions() {
            p.set_settings(settings.clone());
        }
        if let Err(e) = self.persist() {
            *topic.settings.write() = old.clone();
            for p in topic.partitions() {
                p.set_settings(old.clone());
            }
            return Err(e.into());
        }
        info!(topic = %topic.name, "updated topic configs");
        Ok(())
    }

    /// Re-resolves every topic's settings against the broker's current defaults (after a
    /// dynamic broker config changed a `log.*` synonym). Overrides are unchanged, so nothing
    /// is persisted; the change lock keeps a concurrent topic alter from being lost.
    pub fn reresolve_all(&self) {
        let _guard = self.change.lock();
        for topic in self.by_name.read().values() {
            let overrides = topic.settings().overrides.clone();
            let settings = Arc::new(TopicSettings::resolve(&self.config, overrides));
            *topic.settings.write() = settings.clone();
            for p in topic.partitions() {
                p.set_settings(settings.clone());
            }
        }
    }

    /// Closes every partition cleanly.
    /// Takes the lock that serialises topic changes, unless the registry is closed.
    fn lock_change(&self) -> Result<parking_lot::MutexGuard<'_, ()>, TopicError> {
        let guard = self.change.lock();
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(TopicError::ShuttingDown);
        }
        Ok(guard)
    }

    /// [`TopicRegistry::lock_change`] for the changes the registry makes itself and writes
    /// to its metadata file: refused when the metadata log drives the registry.
    fn lock_file_change(&self) -> Result<parking_lot::MutexGuard<'_, ()>, TopicError> {
        if self.mode == Mode::Driven {
            return Err(TopicError::MetadataDriven);
        }
        self.lock_change()
    }

    pub fn close_all(&self) {
        let guard = self.change.lock();
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        drop(guard);
        let topics: Vec<_> = self.by_name.write().drain().map(|(_, t)| t).collect();
        self.by_id.write().clear();
        for t in topics {
            for p in t.partitions.write().take_local() {
                if let Err(e) = p.close() {
                    tracing::warn!(topic = %t.name, error = %e, "unclean close of partition");
                }
            }
        }
    }

    pub fn log_dir(&self) -> &Path {
        &self.config.log_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    /// Partitions are opened on several threads at start-up; each lands in its own topic and
    /// slot with its own data.
    #[test]
    fn partitions_reopen_in_place_on_several_recovery_threads() {
        let dir = tempfile::tempdir().unwrap();
        let config = |threads: &str| {
            let mut props = BTreeMap::new();
            props.insert("log.dirs".to_string(), dir.path().display().to_string());
            props.insert(
                "num.recovery.threads.per.data.dir".to_string(),
                threads.to_string(),
            );
            Arc::new(BrokerConfig::from_properties(props).unwrap())
        };
        let open = |c: Arc<BrokerConfig>| {
            let dirs = LogDirs::new(&c.log_dirs, &c.log_dir).unwrap();
            TopicRegistry::open(c, dirs)
        };
        let registry = open(config("1")).unwrap();
        for (name, partitions) in [("a", 3), ("b", 1), ("c", 5)] {
            let topic = registry
                .create(NewTopic {
                    name: name.into(),
                    partitions,
                    replication_factor: 1,
                    configs: BTreeMap::new(),
                })
                .unwrap();
            for p in 0..partitions {
                let partition = topic.partition(p).unwrap();
                // Partition p of each topic gets p + 1 batches: its end offset tells them apart.
                for _ in 0..=p {
                    let mut b = arus_records::BatchBuilder::new(arus_records::Compression::None, 0);
                    b.push(0, Some(b"k"), Some(name.as_bytes()), &[]);
                    partition
                        .append(&mut b.build().unwrap().to_vec(), 1, 0)
                        .unwrap();
                }
            }
        }
        registry.close_all();
        drop(registry);
        let reopened = open(config("3")).unwrap();
        for (name, partitions) in [("a", 3), ("b", 1), ("c", 5)] {
            let topic = reopened.get(name).unwrap();
            assert_eq!(topic.partitions().len(), partitions as usize);
            assert_eq!(topic.partition_count(), partitions);
            for p in 0..partitions {
                let partition = topic.partition(p).unwrap();
                assert_eq!(partition.index, p);
                assert_eq!(partition.topic, name);
                assert_eq!(partition.high_watermark(), i64::from(p) + 1, "{name}-{p}");
            }
        }
    }

    #[test]
    fn hex_ids_round_trip() {
        let id = random_uuid();
        assert_eq!(parse_hex(&hex(&id)), Some(id));
        assert_eq!(parse_hex("zz"), None);
    }
}
