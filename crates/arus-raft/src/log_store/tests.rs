use std::sync::Arc;

use bytes::Bytes;
use openraft::{CommittedLeaderId, EntryPayload};

use super::*;
use crate::disk::{FsDisk, MemDisk};
use crate::types::Batch;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 0), index),
        payload: EntryPayload::Normal(Batch(vec![Bytes::from(format!("record {index}"))])),
    }
}

fn indexes(store: &LogStore) -> Vec<(u64, u64)> {
    store
        .entries(..)
        .iter()
        .map(|e| (e.log_id.leader_id.term, e.log_id.index))
        .collect()
}

fn reopen(disk: &MemDisk, segment_bytes: u64) -> LogStore {
    LogStore::open(Arc::new(disk.handle()), segment_bytes).unwrap()
}

#[test]
fn entries_survive_a_crash_across_segments() {
    let disk = MemDisk::new();
    let store = reopen(&disk, 64);
    store
        .lock()
        .append((1..=10).map(|i| entry(1, i)).collect())
        .unwrap();
    assert!(disk.list().unwrap().len() > 2, "small segments roll");
    disk.crash();
    let store = reopen(&disk, 64);
    assert_eq!(
        indexes(&store),
        (1..=10).map(|i| (1, i)).collect::<Vec<_>>()
    );
}

#[test]
fn truncation_removes_the_conflicting_suffix_durably() {
    let disk = MemDisk::new();
    let store = reopen(&disk, 64);
    store
        .lock()
        .append((1..=10).map(|i| entry(1, i)).collect())
        .unwrap();
    store.lock().truncate(4).unwrap();
    store
        .lock()
        .append((4..=5).map(|i| entry(2, i)).collect())
        .unwrap();
    disk.crash();
    let store = reopen(&disk, 64);
    let expected = vec![(1, 1), (1, 2), (1, 3), (2, 4), (2, 5)];
    assert_eq!(indexes(&store), expected);
    assert_eq!(store.last_log_id().unwrap().index, 5);
}

#[test]
fn purge_deletes_whole_segments_and_is_remembered() {
    let disk = MemDisk::new();
    let store = reopen(&disk, 64);
    store
        .lock()
        .append((1..=10).map(|i| entry(1, i)).collect())
        .unwrap();
    let before = disk.list().unwrap().len();
    store.lock().purge(entry(1, 7).log_id).unwrap();
    assert!(disk.list().unwrap().len() < before);
    disk.crash();
    let store = reopen(&disk, 64);
    assert_eq!(indexes(&store), vec![(1, 8), (1, 9), (1, 10)]);
    // Purging past the end (a snapshot installed from the leader) empties the log.
    store.lock().purge(entry(3, 20).log_id).unwrap();
    store.lock().append(vec![entry(3, 21)]).unwrap();
    disk.crash();
    let store = reopen(&disk, 64);
    assert_eq!(indexes(&store), vec![(3, 21)]);
    assert!(!store.is_pristine());
}

#[test]
fn a_torn_tail_is_dropped_at_open() {
    let disk = MemDisk::new();
    let store = reopen(&disk, 1 << 20);
    store
        .lock()
        .append((1..=3).map(|i| entry(1, i)).collect())
        .unwrap();
    let name = segment::file_name(1);
    let partial = segment::encode_frame(&entry(1, 4)).unwrap();
    disk.append(&name, &partial[..partial.len() - 3]).unwrap();
    disk.sync(&name).unwrap();
    let store = reopen(&disk, 1 << 20);
    assert_eq!(indexes(&store), vec![(1, 1), (1, 2), (1, 3)]);
    // The damaged bytes are gone from the file too, so the next append follows entry 3.
    store.lock().append(vec![entry(1, 4)]).unwrap();
    let store = reopen(&disk, 1 << 20);
    assert_eq!(store.last_log_id().unwrap().index, 4);
}

#[test]
fn damage_before_the_last_segment_is_an_error() {
    let disk = MemDisk::new();
    let store = reopen(&disk, 32);
    store
        .lock()
        .append((1..=4).map(|i| entry(1, i)).collect())
        .unwrap();
    let first = segment::file_name(1);
    let mut data = disk.read(&first).unwrap().unwrap();
    let last = data.len() - 1;
    data[last] ^= 1;
    disk.write_atomic(&first, &data).unwrap();
    assert!(matches!(
        LogStore::open(Arc::new(disk.clone()), 32),
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn vote_is_durable_on_a_real_directory() {
    let dir = tempfile::tempdir().unwrap();
    let disk: Arc<dyn Disk> = Arc::new(FsDisk::open(dir.path()).unwrap());
    let mut store = LogStore::open(disk.clone(), DEFAULT_SEGMENT_BYTES).unwrap();
    assert!(store.is_pristine());
    let vote = Vote::new(3, 2);
    store.save_vote(&vote).await.unwrap();
    drop(store);
    let mut store = LogStore::open(disk, DEFAULT_SEGMENT_BYTES).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
}

#[tokio::test]
async fn a_read_from_below_the_purge_point_returns_nothing_rather_than_a_gap() {
    let disk = MemDisk::new();
    let mut store = reopen(&disk, 1 << 20);
    store
        .lock()
        .append((0..=8).map(|i| entry(1, i)).collect())
        .unwrap();
    store.lock().purge(entry(1, 5).log_id).unwrap();
    assert!(store.try_get_log_entries(0..8).await.unwrap().is_empty());
    let from_six: Vec<u64> = store
        .try_get_log_entries(6..8)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(from_six, vec![6, 7]);
}
