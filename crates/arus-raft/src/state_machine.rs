//! openraft's state machine, delegating to the application's [`MetadataStateMachine`], and the
//! snapshot store.
//!
//! ## Snapshot file
//! One file, `snapshot`, a [`crate::checked`] file (magic `ASNP`) holding openraft's snapshot
//! metadata (last included log id, membership, snapshot id) and the application's bytes. It is
//! replaced atomically (tmp + fsync + rename + directory fsync) by every new snapshot, built
//! locally or received from the leader; at start-up it is handed to the application before any
//! log entry is applied.

use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::checked;
use crate::disk::Disk;
use crate::error::StoreError;
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_MAGIC: [u8; 4] = *b"ASNP";

/// A committed log entry carrying application records.
#[derive(Debug, Clone, Copy)]
pub struct CommittedBatch<'a> {
    /// The entry's log index: the metadata offset. Indexes of entries that carry no records
    /// (leader blanks, membership changes) are skipped, so offsets have gaps.
    pub index: u64,
    /// The term of the leader that wrote it (Kafka's leader epoch).
    pub term: u64,
    /// The encoded records, to apply atomically.
    pub records: &'a [Bytes],
}

/// The application replicated by the quorum (the metadata image builder). Calls are made in
/// log order, each committed batch exactly once per process lifetime after the last snapshot.
/// The quorum owns the value; the application publishes what it builds (e.g. the current
/// image behind an `Arc` swapped on each apply) through state it shares with its readers.
pub trait MetadataStateMachine: Send + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Applies a committed batch. An error is fatal to this node's quorum member.
    fn apply(&mut self, batch: CommittedBatch<'_>) -> Result<(), Self::Error>;

    /// The state as of the last applied batch, as bytes [`Self::install_snapshot`] accepts.
    fn snapshot(&self) -> Result<Vec<u8>, Self::Error>;

    /// Replaces the whole state with a snapshot that includes everything up to `last_index`.
    fn install_snapshot(
        &mut self,
        last_index: u64,
        last_term: u64,
        data: &[u8],
    ) -> Result<(), Self::Error>;
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

struct Inner<S> {
    app: S,
    disk: Arc<dyn Disk>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    current: Option<(SnapshotMeta, Vec<u8>)>,
    applied: watch::Sender<Option<u64>>,
    built: u64,
}

/// openraft's `RaftStateMachine` around the application. Clones share the state.
pub struct StateMachineStore<S> {
    inner: Arc<Mutex<Inner<S>>>,
}

impl<S> Clone for StateMachineStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: MetadataStateMachine> StateMachineStore<S> {
    /// Opens the snapshot store in `disk` and hands the last snapshot, if any, to `app`.
    pub fn open(disk: Arc<dyn Disk>, mut app: S) -> Result<Self, StoreError> {
        let mut last_applied = None;
        let mut membership = StoredMembership::default();
        let mut current = None;
        if let Some(raw) = disk.read(SNAPSHOT_FILE)? {
            let file: SnapshotFile = checked::decode(SNAPSHOT_FILE, SNAPSHOT_MAGIC, &raw)?;
            if let Some(last) = file.meta.last_log_id {
                app.install_snapshot(last.index, last.leader_id.term, &file.data)
                    .map_err(|e| StoreError::StateMachine(Box::new(e)))?;
            }
            last_applied = file.meta.last_log_id;
            membership = file.meta.last_membership.clone();
            current = Some((file.meta, file.data));
        }
        let (applied, _) = watch::channel(last_applied.map(|l| l.index));
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                app,
                disk,
                last_applied,
                membership,
                current,
                applied,
                built: 0,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A watch of the last applied log index (`None` before the first entry).
    pub fn applied(&self) -> watch::Receiver<Option<u64>> {
        self.lock().applied.subscribe()
    }

    /// Runs `f` on the application (tests, diagnostics).
    pub fn with_app<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.lock().app)
    }
}

impl<S: MetadataStateMachine> Inner<S> {
    fn persist(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StoreError> {
        let file = SnapshotFile {
            meta: meta.clone(),
            data: data.to_vec(),
        };
        let raw = checked::encode(SNAPSHOT_MAGIC, &file)?;
        self.disk.write_atomic(SNAPSHOT_FILE, &raw)?;
        Ok(())
    }
}

fn snapshot_error(meta: Option<&SnapshotMeta>, e: &StoreError) -> StorageError {
    match meta {
        Some(meta) => StorageIOError::write_snapshot(Some(meta.signature()), e).into(),
        None => StorageIOError::write_snapshot(None, e).into(),
    }
}

impl<S: MetadataStateMachine> RaftSnapshotBuilder<TypeConfig> for StateMachineStore<S> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut inner = self.lock();
        let data = inner
            .app
            .snapshot()
            .map_err(|e| snapshot_error(None, &StoreError::StateMachine(Box::new(e))))?;
        inner.built += 1;
        let snapshot_id = match inner.last_applied {
            Some(last) => format!("{}-{}-{}", last.leader_id.term, last.index, inner.built),
            None => format!("empty-{}", inner.built),
        };
        let meta = SnapshotMeta {
            last_log_id: inner.last_applied,
            last_membership: inner.membership.clone(),
            snapshot_id,
        };
        inner
            .persist(&meta, &data)
            .map_err(|e| snapshot_error(Some(&meta), &e))?;
        inner.current = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<S: MetadataStateMachine> RaftStateMachine<TypeConfig> for StateMachineStore<S> {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.lock();
        let mut responses = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            match &entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => {
                    let committed = CommittedBatch {
                        index: log_id.index,
                        term: log_id.leader_id.term,
                        records: &batch.0,
                    };
                    if let Err(e) = inner.app.apply(committed) {
                        let e = StoreError::StateMachine(Box::new(e));
                        return Err(StorageIOError::apply(log_id, &e).into());
                    }
                }
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(log_id), m.clone());
                }
            }
            inner.last_applied = Some(log_id);
            responses.push(());
        }
        let last = inner.last_applied.map(|l| l.index);
        inner.applied.send_replace(last);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut inner = self.lock();
        // Durable first: a crash after this restarts from the new snapshot.
        inner
            .persist(meta, &data)
            .map_err(|e| snapshot_error(Some(meta), &e))?;
        if let Some(last) = meta.last_log_id {
            inner
                .app
                .install_snapshot(last.index, last.leader_id.term, &data)
                .map_err(|e| snapshot_error(Some(meta), &StoreError::StateMachine(Box::new(e))))?;
        }
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.current = Some((meta.clone(), data));
        let last = inner.last_applied.map(|l| l.index);
        inner.applied.send_replace(last);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let inner = self.lock();
        Ok(inner.current.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use openraft::CommittedLeaderId;

    use super::*;
    use crate::disk::MemDisk;
    use crate::types::Batch;

    /// Sums the lengths of the records it applied; snapshots are that sum.
    #[derive(Default, Clone)]
    struct Sum(Arc<Mutex<(u64, Option<u64>)>>);

    #[derive(Debug, thiserror::Error)]
    #[error("bad snapshot")]
    struct BadSnapshot;

    impl MetadataStateMachine for Sum {
        type Error = BadSnapshot;
        fn apply(&mut self, batch: CommittedBatch<'_>) -> Result<(), BadSnapshot> {
            let mut state = self.0.lock().unwrap();
            state.0 += batch.records.iter().map(|r| r.len() as u64).sum::<u64>();
            state.1 = Some(batch.index);
            Ok(())
        }
        fn snapshot(&self) -> Result<Vec<u8>, BadSnapshot> {
            Ok(self.0.lock().unwrap().0.to_be_bytes().to_vec())
        }
        fn install_snapshot(&mut self, index: u64, _: u64, data: &[u8]) -> Result<(), BadSnapshot> {
            let sum = u64::from_be_bytes(data.try_into().map_err(|_| BadSnapshot)?);
            *self.0.lock().unwrap() = (sum, Some(index));
            Ok(())
        }
    }

    fn entry(index: u64, record: &'static [u8]) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(Batch(vec![Bytes::from_static(record)])),
        }
    }

    #[tokio::test]
    async fn a_built_snapshot_survives_a_crash_and_is_handed_to_the_next_application() {
        let disk = MemDisk::new();
        let app = Sum::default();
        let mut store = StateMachineStore::open(Arc::new(disk.handle()), app.clone()).unwrap();
        let applied = store.applied();
        store
            .apply(vec![entry(1, b"abc"), entry(2, b"de")])
            .await
            .unwrap();
        assert_eq!(*applied.borrow(), Some(2));
        let snapshot = store.build_snapshot().await.unwrap();
        assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(2));
        store.apply(vec![entry(3, b"lost")]).await.unwrap();
        disk.crash();

        let fresh = Sum::default();
        let mut store = StateMachineStore::open(Arc::new(disk.handle()), fresh.clone()).unwrap();
        assert_eq!(*fresh.0.lock().unwrap(), (5, Some(2)));
        let (last, _) = store.applied_state().await.unwrap();
        assert_eq!(last.map(|l| l.index), Some(2));
        assert!(store.get_current_snapshot().await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_installed_snapshot_replaces_the_state_durably() {
        let disk = MemDisk::new();
        let app = Sum::default();
        let mut store = StateMachineStore::open(Arc::new(disk.handle()), app.clone()).unwrap();
        store.apply(vec![entry(1, b"x")]).await.unwrap();
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(3, 0), 40)),
            last_membership: StoredMembership::default(),
            snapshot_id: "leader".into(),
        };
        let data = Box::new(Cursor::new(100u64.to_be_bytes().to_vec()));
        store.install_snapshot(&meta, data).await.unwrap();
        assert_eq!(*app.0.lock().unwrap(), (100, Some(40)));
        assert_eq!(*store.applied().borrow(), Some(40));
        disk.crash();
        let fresh = Sum::default();
        StateMachineStore::open(Arc::new(disk.handle()), fresh.clone()).unwrap();
        assert_eq!(*fresh.0.lock().unwrap(), (100, Some(40)));
    }
}
