//! The few file operations the quorum's storage needs, behind a trait so the simulated cluster
//! can model a crash: [`FsDisk`] is the real directory, [`MemDisk`] keeps every file in memory
//! and, on [`MemDisk::crash`], forgets whatever was written but not synced.
//!
//! Durability contract (what callers rely on): `append` is not durable until `sync` of that
//! file returns (a file created by `append` exists durably only after its `sync`); `truncate`,
//! `remove` and `write_atomic` are durable when they return; `write_atomic` replaces the whole
//! file or leaves the old one (tmp + fsync + rename + directory fsync).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A flat directory of named files.
pub trait Disk: Send + Sync + 'static {
    /// The names of the files in the directory, sorted.
    fn list(&self) -> io::Result<Vec<String>>;
    /// A whole file, or `None` when it does not exist.
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// Appends to a file, creating it if needed. Not durable until [`Disk::sync`].
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Makes the file's appended bytes (and its creation) durable.
    fn sync(&self, name: &str) -> io::Result<()>;
    /// Shortens a file, durably.
    fn truncate(&self, name: &str, len: u64) -> io::Result<()>;
    /// Deletes a file, durably; deleting a missing file is not an error.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Replaces a file's contents atomically and durably.
    fn write_atomic(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Replaces a file's contents without syncing: after a crash it may hold the old contents,
    /// the new ones or (on a real disk) garbage. Only for hints that are checked when read.
    fn write_volatile(&self, name: &str, data: &[u8]) -> io::Result<()>;
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A real directory. Open append handles are cached per file.
#[derive(Debug)]
pub struct FsDisk {
    dir: PathBuf,
    handles: Mutex<BTreeMap<String, File>>,
    /// Files created by `append` whose directory entry is not yet synced.
    created: Mutex<std::collections::BTreeSet<String>>,
}

impl FsDisk {
    /// Opens (creating if needed) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            handles: Mutex::new(BTreeMap::new()),
            created: Mutex::new(Default::default()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl Disk for FsDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.dir.join(name)) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut handles = lock(&self.handles);
        if !handles.contains_key(name) {
            let path = self.dir.join(name);
            if !path.exists() {
                lock(&self.created).insert(name.to_string());
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(name))?;
            handles.insert(name.to_string(), file);
        }
        let file = handles.get_mut(name).expect("inserted above");
        file.write_all(data)
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        let handles = lock(&self.handles);
        match handles.get(name) {
            Some(file) => file.sync_data()?,
            None => File::open(self.dir.join(name))?.sync_data()?,
        }
        drop(handles);
        // A new file exists durably only once its directory entry is synced too.
        if lock(&self.created).remove(name) {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        lock(&self.handles).remove(name);
        let file = OpenOptions::new().write(true).open(self.dir.join(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        lock(&self.handles).remove(name);
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> io::Result<()> {
        lock(&self.handles).remove(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        {
            let mut file = File::create(&tmp)?;
            file.write_all(data)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(name))?;
        self.sync_dir()
    }

    fn write_volatile(&self, name: &str, data: &[u8]) -> io::Result<()> {
        lock(&self.handles).remove(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        fs::write(&tmp, data)?;
        fs::rename(&tmp, self.dir.join(name))
    }
}

#[derive(Debug, Default, Clone)]
struct MemFile {
    /// What a crash leaves (`None`: the file does not exist after a crash).
    durable: Option<Vec<u8>>,
    current: Vec<u8>,
}

/// An in-memory directory that models fsync: [`MemDisk::crash`] drops unsynced writes.
/// Clones share the same files (the "disk" outlives the node that uses it). A crash also
/// detaches every handle taken before it: the dead process's late writes never land.
#[derive(Debug, Default, Clone)]
pub struct MemDisk {
    shared: Arc<Mutex<MemState>>,
    generation: u64,
}

#[derive(Debug, Default)]
struct MemState {
    files: BTreeMap<String, MemFile>,
    generation: u64,
}

impl MemDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle for the process started after the last crash.
    pub fn handle(&self) -> MemDisk {
        let generation = lock(&self.shared).generation;
        MemDisk {
            shared: self.shared.clone(),
            generation,
        }
    }

    /// A power cut: every file goes back to its last durable state, and every handle taken
    /// before now stops working.
    pub fn crash(&self) {
        let mut state = lock(&self.shared);
        state.generation += 1;
        state.files.retain(|_, file| file.durable.is_some());
        for file in state.files.values_mut() {
            file.current = file.durable.clone().unwrap_or_default();
        }
    }

    fn files(&self) -> io::Result<MutexGuard<'_, MemState>> {
        let state = lock(&self.shared);
        if state.generation != self.generation {
            return Err(io::Error::other("disk handle detached by a crash"));
        }
        Ok(state)
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, name.to_string())
}

impl Disk for MemDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files()?.files.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files()?.files.get(name).map(|f| f.current.clone()))
    }

    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut state = self.files()?;
        state
            .files
            .entry(name.to_string())
            .or_default()
            .current
            .extend_from_slice(data);
        Ok(())
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        let mut state = self.files()?;
        let file = state.files.get_mut(name).ok_or_else(|| not_found(name))?;
        file.durable = Some(file.current.clone());
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let mut state = self.files()?;
        let file = state.files.get_mut(name).ok_or_else(|| not_found(name))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        file.current.truncate(len);
        let mut durable = file.durable.take().unwrap_or_default();
        durable.truncate(len);
        file.durable = Some(durable);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.files()?.files.remove(name);
        Ok(())
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.files()?.files.insert(
            name.to_string(),
            MemFile {
                durable: Some(data.to_vec()),
                current: data.to_vec(),
            },
        );
        Ok(())
    }

    fn write_volatile(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut state = self.files()?;
        let file = state.files.entry(name.to_string()).or_default();
        file.current = data.to_vec();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_disk_crash_drops_unsynced_appends_and_files() {
        let disk = MemDisk::new();
        disk.append("a", b"one").unwrap();
        disk.sync("a").unwrap();
        disk.append("a", b"two").unwrap();
        disk.append("b", b"never synced").unwrap();
        disk.write_atomic("c", b"atomic").unwrap();
        disk.write_volatile("c", b"volatile").unwrap();
        disk.write_volatile("d", b"volatile").unwrap();
        let before = disk.handle();
        disk.crash();
        assert!(
            before.append("a", b"late").is_err(),
            "a dead process cannot write"
        );
        let disk = disk.handle();
        assert_eq!(disk.read("a").unwrap().unwrap(), b"one");
        assert_eq!(disk.read("b").unwrap(), None);
        assert_eq!(disk.read("c").unwrap().unwrap(), b"atomic");
        assert_eq!(disk.read("d").unwrap(), None);
    }

    #[test]
    fn fs_disk_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FsDisk::open(dir.path()).unwrap();
        disk.append("seg", b"abc").unwrap();
        disk.append("seg", b"def").unwrap();
        disk.sync("seg").unwrap();
        disk.truncate("seg", 4).unwrap();
        disk.append("seg", b"X").unwrap();
        assert_eq!(disk.read("seg").unwrap().unwrap(), b"abcdX");
        disk.write_atomic("vote", b"1").unwrap();
        disk.write_atomic("vote", b"2").unwrap();
        assert_eq!(disk.read("vote").unwrap().unwrap(), b"2");
        assert_eq!(disk.list().unwrap(), vec!["seg", "vote"]);
        disk.remove("seg").unwrap();
        disk.remove("seg").unwrap();
        assert_eq!(disk.read("seg").unwrap(), None);
    }
}
