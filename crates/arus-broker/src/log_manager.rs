//! The log lifecycle's background work (Kafka's LogManager retention task and LogCleaner):
//!
//! - **Retention**, every `log.retention.check.interval.ms`: each partition whose
//!   `cleanup.policy` includes `delete` drops its oldest segments past `retention.ms` /
//!   `retention.bytes` and advances its log start offset. Dropped segments are renamed at
//!   once and unlinked `file.delete.delay.ms` later.
//! - **Compaction**, on `log.cleaner.threads` threads (when `log.cleaner.enable`): each
//!   partition whose policy includes `compact` is cleaned by `arus-cleaner` when its dirty
//!   ratio or `max.compaction.lag.ms` asks for it; a round that found nothing to do sleeps
//!   `log.cleaner.backoff.ms`. Reading the immutable segments, building the offset map
//!   and producing the cleaned bytes run without the partition's lock. The swap does not:
//!   `Log::replace_segments` writes and fsyncs the cleaned segment file under it, so
//!   appends to the partition being cleaned wait for that write (other partitions never
//!   do). Writing the `.cleaned` file before taking the lock would remove that stall.
//!
//! Both read the effective (dynamic) broker configs on every pass.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arus_cleaner::{
    AbortedTxn, CleanedSegmentInfo, Cleaner, CleanerConfig, CleanerError, CleanerSource,
    LastRecord, SegmentMeta, SystemClock, Throttler, first_batch_timestamp,
};
use arus_log::{CleanedSegment, LogError, RetentionPolicy};
use bytes::Bytes;
use parking_lot::Mutex;
use tracing::{debug, info, warn};

use crate::broker::{Broker, now_ms};
use crate::partition::Partition;
use crate::topic_settings::TopicSettings;

/// Smallest offset map a cleaning round allocates (the budget is
/// `log.cleaner.dedupe.buffer.size`; a round sizes its map from the dirty bytes it sees so
/// an idle broker does not hold 128 MiB).
const MIN_MAP_BYTES: usize = 1 << 20;

pub struct LogManager {
    stopped: Arc<AtomicBool>,
    cleaner_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl LogManager {
    /// Starts the retention task (on the current tokio runtime) and the cleaner threads.
    pub fn start(broker: &Arc<Broker>) -> LogManager {
        let stopped = Arc::new(AtomicBool::new(false));
        if tokio::runtime::Handle::try_current().is_ok() {
            let weak = Arc::downgrade(broker);
            let stop = stopped.clone();
            tokio::spawn(retention_loop(weak, stop));
        }
        let mut threads = Vec::new();
        let config = &broker.config;
        if config.effective_bool("log.cleaner.enable", true) {
            let n = config.effective_i64("log.cleaner.threads", 1).clamp(0, 16) as usize;
            for i in 0..n {
                let weak = Arc::downgrade(broker);
                let stop = stopped.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("arus-cleaner-{i}"))
                    .spawn(move || cleaner_loop(weak, stop, i, n));
                match spawned {
                    Ok(h) => threads.push(h),
                    Err(e) => warn!(error = %e, "cannot start a log cleaner thread"),
                }
            }
        }
        LogManager {
            stopped,
            cleaner_threads: Mutex::new(threads),
        }
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        for t in self.cleaner_threads.lock().drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

async fn retention_loop(broker: Weak<Broker>, stopped: Arc<AtomicBool>) {
    loop {
        let interval = match broker.upgrade() {
            Some(b) => b
                .config
                .effective_i64("log.retention.check.interval.ms", 300_000),
            None => return,
        };
        tokio::time::sleep(Duration::from_millis(interval.max(1) as u64)).await;
        if stopped.load(Ordering::Acquire) {
            return;
        }
        let Some(broker) = broker.upgrade() else {
            return;
        };
        let work = tokio::task::spawn_blocking(move || retention_pass(&broker));
        if let Ok(pending) = work.await {
            for (delay_ms, paths) in pending {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms.max(0) as u64)).await;
                    for p in paths {
                        if let Err(e) = std::fs::remove_file(&p)
                            && e.kind() != std::io::ErrorKind::NotFound
                        {
                            warn!(path = %p.display(), error = %e, "cannot delete a retired segment file");
                        }
                    }
                });
            }
        }
    }
}

/// One retention pass over every partition; returns the files to unlink later, with their
/// delay.
pub fn retention_pass(broker: &Broker) -> Vec<(i64, Vec<PathBuf>)> {
    let now = now_ms();
    let mut pending = Vec::new();
    for topic in broker.topics.all() {
        let settings = topic.settings();
        if !settings.delete_enabled {
            continue;
        }
        let policy = RetentionPolicy {
            retention_ms: settings.retention_ms,
            retention_bytes: settings.retention_bytes,
        };
        if policy.retention_ms < 0 && policy.retention_bytes < 0 {
            continue;
        }
        // A partition of an offline directory is left alone (Kafka closes it).
        for p in topic.partitions().into_iter().filter(|p| p.is_online()) {
            match p.apply_retention(&policy, now) {
                Ok(out) if out.segments_deleted > 0 => {
                    info!(topic = %p.topic, partition = p.index, segments = out.segments_deleted, bytes = out.bytes_deleted, log_start_offset = out.log_start_offset, "retention deleted segments");
                    pending.push((settings.file_delete_delay_ms, out.pending_deletes));
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                }
            }
        }
    }
    pending
}

fn cleaner_config(broker: &Broker, settings: &TopicSettings) -> CleanerConfig {
    let c = &broker.config;
    let defaults = CleanerConfig::default();
    CleanerConfig {
        dedupe_buffer_bytes: c
            .effective_i64("log.cleaner.dedupe.buffer.size", 128 << 20)
            .max(MIN_MAP_BYTES as i64) as usize,
        io_max_bytes_per_sec: c
            .effective("log.cleaner.io.max.bytes.per.second")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .unwrap_or(defaults.io_max_bytes_per_sec),
        io_buffer_bytes: c
            .effective_i64("log.cleaner.io.buffer.size", 512 << 10)
            .max(64 << 10) as usize,
        delete_retention_ms: settings.delete_retention_ms,
        min_compaction_lag_ms: settings.min_compaction_lag_ms,
        max_compaction_lag_ms: settings.max_compaction_lag_ms,
        min_cleanable_dirty_ratio: settings.min_cleanable_dirty_ratio,
        segment_bytes: settings.segment_bytes,
    }
}

/// Nice value of the cleaner threads: compaction is background work, and on a small
/// machine a CPU-bound cleaning round would otherwise take a core from the request path.
const CLEANER_NICE: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority (Linux: `setpriority` on a thread id
/// applies to that thread only). Best effort: failure only means the default priority.
fn lower_this_thread_priority() {
    // SAFETY: gettid has no preconditions; setpriority with PRIO_PROCESS and our own
    // thread id only changes this thread's nice value.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, CLEANER_NICE)
    };
    if rc != 0 {
        debug!("cannot lower the cleaner thread's priority");
    }
}

fn cleaner_loop(broker: Weak<Broker>, stopped: Arc<AtomicBool>, thread: usize, threads: usize) {
    lower_this_thread_priority();
    loop {
        if stopped.load(Ordering::Acquire) {
            return;
        }
        let Some(b) = broker.upgrade() else {
            return;
        };
        let cleaned = clean_pass(&b, thread, threads, &stopped);
        let backoff = b.config.effective_i64("log.cleaner.backoff.ms", 15_000);
        drop(b);
        if !cleaned {
            // Woken early by `stop`.
            std::thread::park_timeout(Duration::from_millis(backoff.max(1) as u64));
        }
    }
}

/// Cleans every compacted partition this thread owns once; whether any round ran.
pub fn clean_pass(broker: &Broker, thread: usize, threads: usize, stopped: &AtomicBool) -> bool {
    let mut cleaned = false;
    let mut k = 0usize;
    for topic in broker.topics.all() {
        let settings = topic.settings();
        if !settings.compacted {
            continue;
        }
        // A partition of an offline directory is left alone (Kafka closes it).
        for p in topic.partitions().into_iter().filter(|p| p.is_online()) {
            k += 1;
            if threads > 1 && k % threads != thread {
                continue;
            }
            if stopped.load(Ordering::Acquire) {
                return cleaned;
            }
            match clean_partition(broker, &p, &settings) {
                Ok(true) => cleaned = true,
                Ok(false) => {}
                Err(CleanerError::Aborted) => {
                    debug!(topic = %p.topic, partition = p.index, "cleaning round aborted; retrying later")
                }
                Err(e) => {
                    warn!(topic = %p.topic, partition = p.index, error = %e, "log cleaning failed")
                }
            }
        }
    }
    cleaned
}

/// One cleaning round on one partition; whether it ran.
pub fn clean_partition(
    broker: &Broker,
    p: &Arc<Partition>,
    settings: &TopicSettings,
) -> Result<bool, CleanerError> {
    let cfg = cleaner_config(broker, settings);
    let mut source = PartitionSource {
        partition: p.clone(),
        files: Mutex::new(HashMap::new()),
    };
    // Size the offset map from what could be dirty (24 bytes a slot, at most one key per
    // ~14-byte record), within the configured budget. The log's own segment list suffices
    // here; `clean_log` lists them with their first timestamps (a read per segment) itself.
    let dirty_bytes: u64 = p.with_log(|log| {
        let first_dirty = log.cleaner_checkpoint().unwrap_or(i64::MIN);
        log.segment_infos()
            .iter()
            .filter(|s| s.next_offset > first_dirty)
            .map(|s| s.size)
            .sum()
    });
    let wanted = (dirty_bytes as usize).saturating_mul(2);
    let map_bytes = wanted.clamp(MIN_MAP_BYTES, cfg.dedupe_buffer_bytes);
    let throttler = Throttler::new(cfg.io_max_bytes_per_sec, Arc::new(SystemClock));
    let mut cleaner = Cleaner::new(map_bytes, throttler);
    let started = std::time::Instant::now();
    match cleaner.clean_log(&mut source, &cfg, now_ms())? {
        Some(r) => {
            info!(
                topic = %p.topic,
                partition = p.index,
                first_dirty = r.plan.first_dirty,
                end_offset = r.end_offset,
                segments_written = r.segments_written,
                keys = r.map_keys,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cleaned log"
            );
            Ok(true)
        }
        None => Ok(false),
    }
}

/// A partition as the cleaner sees it: short locked calls for metadata and the swap;
/// positional reads of immutable (non-active) segments through file handles kept outside
/// the lock.
struct PartitionSource {
    partition: Arc<Partition>,
    files: Mutex<HashMap<i64, (PathBuf, Arc<File>)>>,
}

fn log_err(e: LogError) -> CleanerError {
    match e {
        LogError::SegmentsChanged(_) => CleanerError::Aborted,
        other => CleanerError::Log(Box::new(other)),
    }
}

impl PartitionSource {
    fn file(&self, base: i64) -> Result<Arc<File>, CleanerError> {
        let mut files = self.files.lock();
        if let Some((_, f)) = files.get(&base) {
            return Ok(f.clone());
        }
        let path = self
            .partition
            .with_log(|log| log.segment_infos())
            .into_iter()
            .find(|s| s.base == base)
            .map(|s| s.path)
            .ok_or(CleanerError::Aborted)?;
        let f = Arc::new(File::open(&path).map_err(|_| CleanerError::Aborted)?);
        files.insert(base, (path, f.clone()));
        Ok(f)
    }
}

impl CleanerSource for PartitionSource {
    type Sink = Vec<u8>;

    fn segments(&self) -> Result<Vec<SegmentMeta>, CleanerError> {
        let infos = self.partition.with_log(|log| log.segment_infos());
        let mut out = Vec::with_capacity(infos.len());
        for s in infos {
            let mut head = [0u8; 61];
            let first_batch_ts = File::open(&s.path)
                .ok()
                .and_then(|f| f.read_exact_at(&mut head, 0).ok())
                .and_then(|_| first_batch_timestamp(&head));
            out.push(SegmentMeta {
                base: s.base,
                next_offset: s.next_offset,
                size: s.size,
                largest_timestamp: s.largest_timestamp,
                first_batch_timestamp: first_batch_ts,
            });
        }
        Ok(out)
    }

    fn first_dirty_offset(&self) -> Option<i64> {
        self.partition.with_log(|log| log.cleaner_checkpoint())
    }

    fn last_stable_offset(&self) -> i64 {
        self.partition.last_stable_offset()
    }

    fn read(
        &self,
        segment_base: i64,
        position: u64,
        max_bytes: usize,
    ) -> Result<Bytes, CleanerError> {
        let f = self.file(segment_base)?;
        let len = f.metadata().map_err(|_| CleanerError::Aborted)?.len();
        let n = (len.saturating_sub(position) as usize).min(max_bytes);
        let mut buf = vec![0u8; n];
        f.read_exact_at(&mut buf, position)
            .map_err(|_| CleanerError::Aborted)?;
        Ok(Bytes::from(buf))
    }

    fn aborted_txns(&self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>, CleanerError> {
        Ok(self.partition.aborted_transactions(from, upper))
    }

    fn active_producers(&self) -> Result<HashMap<i64, LastRecord>, CleanerError> {
        Ok(self
            .partition
            .producers()
            .into_iter()
            .map(|v| {
                (
                    v.producer_id,
                    LastRecord {
                        last_data_offset: v.last_data_offset,
                        producer_epoch: v.producer_epoch,
                    },
                )
            })
            .collect())
    }

    fn create_cleaned(&mut self, _base: i64) -> Result<Vec<u8>, CleanerError> {
        Ok(Vec::new())
    }

    fn replace_segments(
        &mut self,
        cleaned: Vec<u8>,
        info: CleanedSegmentInfo,
    ) -> Result<(), CleanerError> {
        let result = self.partition.with_log(|log| {
            log.replace_segments(
                &info.replaced_bases,
                vec![CleanedSegment {
                    base: info.base,
                    bytes: cleaned,
                }],
            )
        });
        // The replaced segments' handles are stale now.
        self.files.lock().clear();
        result.map_err(log_err)
    }

    fn set_first_dirty_offset(&mut self, offset: i64) -> Result<(), CleanerError> {
        self.partition
            .with_log(|log| log.set_cleaner_checkpoint(offset))
            .map_err(log_err)
    }
}
