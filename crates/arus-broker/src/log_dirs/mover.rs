//! Moving a partition to another log directory while it stays online (AlterReplicaLogDirs;
//! Kafka's future replica and `ReplicaAlterLogDirsThread`).
//!
//! One thread per move:
//!
//! 1. **Copy** the partition's files into `<dest>/<tp>.<id>-future`, without the log lock
//!    (appends go on), throttled by `replica.alter.log.dirs.io.max.bytes.per.second`.
//!    Passes repeat until little is left: a segment file (`.log`) only grows at its end, so
//!    a later pass copies its tail; any other file whose inode, size or mtime changed (and
//!    every non-segment file and every file of the active segment in the last pass) is
//!    copied whole; files gone from the source are removed. The copy is file for file, so
//!    it does not depend on the segment format.
//! 2. **Commit**, under the log lock (appends wait, for the size of the last delta): the
//!    last pass, fsync of every copied file and of the future directory, then the commit
//!    point: rename `<src>/<tp>` to `<src>/<tp>.<id>-delete` (fsync `<src>`), rename the
//!    future to `<dest>/<tp>` (fsync `<dest>`), reopen the log there (its recovery runs on
//!    the copy, as after a crash at this instant) and check that it ends at the same offset.
//!    A failure before the reopen renames everything back and keeps the old log.
//! 3. **Clean up**: remove `<src>/<tp>.<id>-delete`.
//!
//! A crash at any point leaves the partition whole in one directory: before the first
//! rename the future is an unfinished copy and is removed at the next start; after it the
//! future is complete and the start finishes the rename (see [`super::discovery`]).
//! A cancelled move (another destination, topic deleted, shutdown) removes its future.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arus_log::{Log, LogError};
use parking_lot::Mutex;

use super::{LogDir, is_dir_failure, names};
use crate::partition::Partition;

/// Kafka's quota on the bytes per second moves copy (a broker config; Arus reads it from
/// the static properties).
pub const THROTTLE_KEY: &str = "replica.alter.log.dirs.io.max.bytes.per.second";

/// A copy pass that leaves less than this for the locked final pass stops the copying.
const FINAL_PASS_BYTES: u64 = 1 << 20;
const CHUNK: usize = 64 << 10;

type TopicPartition = (String, i32);

/// One move in progress.
#[derive(Debug)]
pub struct MoveState {
    pub dest: Arc<LogDir>,
    pub id: String,
    cancel: AtomicBool,
    /// Bytes in the future replica so far.
    pub copied_bytes: AtomicU64,
    /// The future replica holds every offset below this (the base offset of the first
    /// segment not yet copied whole): DescribeLogDirs' lag is the current log end minus it.
    pub copied_offset: AtomicI64,
}

impl MoveState {
    pub fn future_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.dest
            .path
            .join(names::future(topic, partition, &self.id))
    }
}

/// The moves in progress.
#[derive(Debug, Default)]
pub struct Moves {
    moves: Mutex<HashMap<TopicPartition, Arc<MoveState>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the moved log ends at {moved}, the original at {original}")]
    Mismatch { moved: i64, original: i64 },
    #[error("cancelled")]
    Cancelled,
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> MoveError + '_ {
    move |source| MoveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn fsync(path: &Path) -> Result<(), MoveError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_at(path))
}

impl Moves {
    /// Destinations of the moves in progress (future replicas count for placement).
    pub fn destinations(&self) -> Vec<usize> {
        self.moves.lock().values().map(|m| m.dest.index).collect()
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<MoveState>> {
        self.moves
            .lock()
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// Stops the partition's move, if any; its thread removes the future replica.
    pub fn cancel(&self, topic: &str, partition: i32) {
        if let Some(m) = self.moves.lock().remove(&(topic.to_string(), partition)) {
            m.cancel.store(true, Ordering::Release);
        }
    }

    /// Starts moving `partition` to `dest` (the caller checked that it is elsewhere and
    /// that no move to `dest` runs). `rate`: bytes per second, `None` for unthrottled.
    pub fn start(
        self: &Arc<Self>,
        partition: Arc<Partition>,
        dest: Arc<LogDir>,
        rate: Option<u64>,
    ) {
        let state = Arc::new(MoveState {
            dest,
            id: names::new_id(),
            cancel: AtomicBool::new(false),
            copied_bytes: AtomicU64::new(0),
            copied_offset: AtomicI64::new(partition.log_start_offset()),
        });
        let tp = (partition.topic.clone(), partition.index);
        if let Some(old) = self.moves.lock().insert(tp.clone(), state.clone()) {
            old.cancel.store(true, Ordering::Release);
        }
        let moves = self.clone();
        let key = tp.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("arus-move-{}-{}", tp.0, tp.1))
            .spawn(move || {
                run(&partition, &state, rate);
                let mut all = moves.moves.lock();
                if all.get(&tp).is_some_and(|m| Arc::ptr_eq(m, &state)) {
                    all.remove(&tp);
                }
            });
        match spawned {
            Ok(handle) => {
                let mut threads = self.threads.lock();
                threads.retain(|t| !t.is_finished());
                threads.push(handle);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a log directory move");
                self.moves.lock().remove(&key);
            }
        }
    }

    /// Cancels every move and waits for their threads (shutdown).
    pub fn stop_all(&self) {
        for m in self.moves.lock().drain().map(|(_, m)| m) {
            m.cancel.store(true, Ordering::Release);
        }
        for t in std::mem::take(&mut *self.threads.lock()) {
            let _ = t.join();
        }
    }
}

fn run(partition: &Arc<Partition>, state: &Arc<MoveState>, rate: Option<u64>) {
    let source = partition.location();
    let (topic, index) = (partition.topic.as_str(), partition.index);
    let future = state.future_dir(topic, index);
    tracing::info!(topic, partition = index, from = %source.path.display(), to = %state.dest.path.display(), "moving partition to another log directory");
    match move_partition(partition, state, &future, rate) {
        Ok(old) => {
            if let Err(e) =
                fs::remove_dir_all(&old).and_then(|_| File::open(&source.path)?.sync_all())
            {
                tracing::warn!(dir = %old.display(), error = %e, "cannot remove the old copy of a moved partition; the next start removes it");
            }
            tracing::info!(topic, partition = index, dir = %state.dest.path.display(), "moved partition to another log directory");
        }
        Err(e) => {
            if let Err(rm) = fs::remove_dir_all(&future)
                && rm.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %future.display(), error = %rm, "cannot remove an abandoned move copy; the next start removes it");
            }
            match &e {
                MoveError::Cancelled => {
                    tracing::info!(topic, partition = index, "log directory move cancelled")
                }
                MoveError::Io { path, source: io } if is_dir_failure(io) => {
                    let failed = if path.starts_with(&state.dest.path) {
                        &state.dest
                    } else {
                        &source
                    };
                    failed.fail(&e);
                }
                _ => {
                    tracing::error!(topic, partition = index, error = %e, "log directory move failed; the partition stays where it was")
                }
            }
        }
    }
}

/// What a pass copied of each file: inode, length, mtime.
type Copied = HashMap<String, (u64, u64, SystemTime)>;

struct Throttle {
    rate: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    fn account(&mut self, n: usize) {
        self.bytes += n as u64;
        if let Some(rate) = self.rate.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
    }
}

fn move_partition(
    partition: &Arc<Partition>,
    state: &Arc<MoveState>,
    future: &Path,
    rate: Option<u64>,
) -> Result<PathBuf, MoveError> {
    let source = partition.location();
    let current = source
        .path
        .join(names::current(&partition.topic, partition.index));
    crate::store::create_dir_all_durable(future).map_err(io_at(future))?;
    let mut copied = Copied::new();
    let mut throttle = Throttle {
        rate,
        started: Instant::now(),
        bytes: 0,
    };
    let mut unsynced = std::collections::HashSet::new();
    loop {
        if state.cancel.load(Ordering::Acquire) {
            return Err(MoveError::Cancelled);
        }
        let (n, written) = copy_pass(&current, future, &mut copied, &mut throttle, state, false)?;
        unsynced.extend(written);
        if n < FINAL_PASS_BYTES {
            break;
        }
    }
    // The bulk of the copy is made durable before the lock, so that appends only wait for
    // the last delta's fsync.
    sync_files(future, unsynced.iter().filter(|n| copied.contains_key(*n)))?;
    let dest = state.dest.clone();
    let delete = source
        .path
        .join(names::delete(&partition.topic, partition.index, &state.id));
    let settings = partition.settings();
    partition.with_log(|log| -> Result<PathBuf, MoveError> {
        let mut unthrottled = Throttle {
            rate: None,
            started: Instant::now(),
            bytes: 0,
        };
        let (_, written) = copy_pass(&current, future, &mut copied, &mut unthrottled, state, true)?;
        sync_files(future, written.iter())?;
        fsync(future)?;
        if state.cancel.load(Ordering::Acquire) {
            return Err(MoveError::Cancelled);
        }
        // Commit point: from here the future is the partition (see the module docs).
        fs::rename(&current, &delete).map_err(io_at(&current))?;
        fsync(&source.path)?;
        let target = dest
            .path
            .join(names::current(&partition.topic, partition.index));
        let undo_first = |e: MoveError| {
            if fs::rename(&delete, &current).is_ok() {
                let _ = fsync(&source.path);
            }
            e
        };
        fs::rename(future, &target)
            .map_err(io_at(&target))
            .map_err(undo_first)?;
        fsync(&dest.path).map_err(undo_first)?;
        let undo_both = |e: MoveError| {
            if fs::rename(&target, future).is_ok() {
                let _ = fsync(&dest.path);
            }
            undo_first(e)
        };
        let moved = Log::open(&target, settings.log_config(), crate::broker::now_ms())
            .map_err(MoveError::from)
            .map_err(undo_both)?;
        if moved.log_end_offset() != log.log_end_offset() {
            let e = MoveError::Mismatch {
                moved: moved.log_end_offset(),
                original: log.log_end_offset(),
            };
            drop(moved);
            return Err(undo_both(e));
        }
        let old = std::mem::replace(log, moved);
        drop(old);
        partition.set_location(dest.clone());
        Ok(delete.clone())
    })
}

fn sync_files<'a>(dir: &Path, names: impl Iterator<Item = &'a String>) -> Result<(), MoveError> {
    for name in names {
        let path = dir.join(name);
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(io_at(&path))?;
    }
    Ok(())
}

fn segment_base(name: &str) -> Option<i64> {
    let (stem, _) = name.split_once('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Brings `dst` up to `src` (see the module docs); returns the bytes copied and the files
/// written (to fsync).
fn copy_pass(
    src: &Path,
    dst: &Path,
    copied: &mut Copied,
    throttle: &mut Throttle,
    state: &MoveState,
    last: bool,
) -> Result<(u64, Vec<String>), MoveError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(src).map_err(io_at(src))? {
        let entry = entry.map_err(io_at(src))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.ends_with(".tmp")
            || name.ends_with(arus_log::lifecycle::DELETED_SUFFIX)
            || name == arus_log::checkpoint::CLEAN_SHUTDOWN_FILE
        {
            continue;
        }
        // A file removed meanwhile (retention) is simply not copied.
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            files.push((name, meta));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let active = files
        .iter()
        .filter(|(n, _)| n.ends_with(".log"))
        .filter_map(|(n, _)| segment_base(n))
        .max();
    let mut total = 0u64;
    let mut written = Vec::new();
    let mut present = std::collections::HashSet::new();
    for (name, meta) in &files {
        if state.cancel.load(Ordering::Acquire) {
            return Err(MoveError::Cancelled);
        }
        present.insert(name.clone());
        let now = (
            meta.ino(),
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let base = segment_base(name);
        let is_log = name.ends_with(".log") && base.is_some();
        let before = copied.get(name).copied();
        let from = match before {
            Some(b) if is_log && b.0 == now.0 && now.1 >= b.1 => {
                if now.1 == b.1 {
                    continue;
                }
                b.1
            }
            Some(b) if !is_log && b == now && !(last && (base.is_none() || base == active)) => {
                continue;
            }
            _ => 0,
        };
        let src_path = src.join(name);
        let dst_path = dst.join(name);
        let n = copy_range(&src_path, &dst_path, from, throttle, state)?;
        total += n;
        written.push(name.clone());
        copied.insert(name.clone(), (now.0, from + n, now.2));
    }
    let gone: Vec<String> = copied
        .keys()
        .filter(|n| !present.contains(*n))
        .cloned()
        .collect();
    for name in gone {
        copied.remove(&name);
        let path = dst.join(&name);
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(io_at(&path)(e));
        }
    }
    state
        .copied_bytes
        .store(copied.values().map(|c| c.1).sum(), Ordering::Release);
    if let Some(active) = active {
        state.copied_offset.fetch_max(active, Ordering::AcqRel);
    }
    Ok((total, written))
}

/// Copies `src[from..]` to `dst[from..]` (truncating `dst` there); returns the bytes.
fn copy_range(
    src: &Path,
    dst: &Path,
    from: u64,
    throttle: &mut Throttle,
    state: &MoveState,
) -> Result<u64, MoveError> {
    let mut input = match File::open(src) {
        Ok(f) => f,
        // Removed meanwhile: the next pass removes it from the copy too.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_at(src)(e)),
    };
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dst)
        .map_err(io_at(dst))?;
    output.set_len(from).map_err(io_at(dst))?;
    output.seek(SeekFrom::Start(from)).map_err(io_at(dst))?;
    input.seek(SeekFrom::Start(from)).map_err(io_at(src))?;
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let r = input.read(&mut buf).map_err(io_at(src))?;
        if r == 0 {
            break;
        }
        output.write_all(&buf[..r]).map_err(io_at(dst))?;
        n += r as u64;
        // Progress for DescribeLogDirs; recounted exactly at the end of the pass.
        state.copied_bytes.fetch_add(r as u64, Ordering::AcqRel);
        throttle.account(r);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dir: &Path) -> MoveState {
        let dirs = super::super::LogDirs::new(&[dir.to_path_buf()], dir).unwrap();
        MoveState {
            dest: dirs.all()[0].clone(),
            id: names::new_id(),
            cancel: AtomicBool::new(false),
            copied_bytes: AtomicU64::new(0),
            copied_offset: AtomicI64::new(0),
        }
    }

    /// A segment that grows is copied by its tail; a replaced file (new inode) whole; a
    /// removed one disappears from the copy.
    #[test]
    fn passes_follow_appends_replacements_and_removals() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let st = state(dst.path());
        let seg = "00000000000000000000.log";
        let other = "log-start-offset";
        fs::write(src.path().join(seg), b"abc").unwrap();
        fs::write(src.path().join(other), b"1").unwrap();
        fs::write(src.path().join("x.tmp"), b"ignored").unwrap();
        let mut copied = Copied::new();
        let mut t = Throttle {
            rate: None,
            started: Instant::now(),
            bytes: 0,
        };
        assert_eq!(
            copy_pass(src.path(), dst.path(), &mut copied, &mut t, &st, false)
                .unwrap()
                .0,
            4
        );
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(src.path().join(seg))
            .unwrap();
        f.write_all(b"de").unwrap();
        fs::write(src.path().join("tmp-other"), b"22").unwrap();
        fs::rename(src.path().join("tmp-other"), src.path().join(other)).unwrap();
        assert_eq!(
            copy_pass(src.path(), dst.path(), &mut copied, &mut t, &st, false)
                .unwrap()
                .0,
            4
        );
        assert_eq!(fs::read(dst.path().join(seg)).unwrap(), b"abcde");
        assert_eq!(fs::read(dst.path().join(other)).unwrap(), b"22");
        assert!(!dst.path().join("x.tmp").exists());
        fs::remove_file(src.path().join(other)).unwrap();
        assert_eq!(
            copy_pass(src.path(), dst.path(), &mut copied, &mut t, &st, true)
                .unwrap()
                .0,
            0
        );
        assert!(!dst.path().join(other).exists());
        assert_eq!(st.copied_bytes.load(Ordering::Acquire), 5);
    }

    /// An in-place rewrite of a non-segment file with the same size is caught by the last
    /// pass, which copies every non-segment file whole.
    #[test]
    fn the_last_pass_recopies_small_state_files() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let st = state(dst.path());
        fs::write(src.path().join("recovery-point"), b"1").unwrap();
        let mut copied = Copied::new();
        let mut t = Throttle {
            rate: None,
            started: Instant::now(),
            bytes: 0,
        };
        copy_pass(src.path(), dst.path(), &mut copied, &mut t, &st, false).unwrap();
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(src.path().join("recovery-point"))
            .unwrap();
        f.write_all(b"2").unwrap();
        // Pretend the mtime did not change (coarse clocks).
        let entry = copied.get_mut("recovery-point").unwrap();
        entry.2 = fs::metadata(src.path().join("recovery-point"))
            .unwrap()
            .modified()
            .unwrap();
        copy_pass(src.path(), dst.path(), &mut copied, &mut t, &st, true).unwrap();
        assert_eq!(fs::read(dst.path().join("recovery-point")).unwrap(), b"2");
    }
}
