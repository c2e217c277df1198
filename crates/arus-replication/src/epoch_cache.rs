//! The leader epoch cache: for every leader epoch that wrote to the log, the offset of its
//! first batch. Kafka's `LeaderEpochFileCache` semantics: epochs and start offsets both
//! increase strictly; an entry that would break that removes the entries it supersedes.
//!
//! The cache is in memory only; its durable form is the `leader-epoch-checkpoint` file
//! (see [`crate::checkpoint`]). Kafka writes the file synchronously after `assign` and
//! asynchronously after truncation; the caller decides when to write [`LeaderEpochCache::entries`].

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

/// No epoch (Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH` / `UNDEFINED_EPOCH`).
pub const UNDEFINED_EPOCH: i32 = -1;
/// No end offset (Kafka's `EpochEndOffset.UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One line of the cache: `epoch` started writing at `start_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

impl EpochEntry {
    pub fn new(epoch: i32, start_offset: i64) -> Self {
        Self {
            epoch,
            start_offset,
        }
    }
}

/// A negative epoch or start offset given to [`LeaderEpochCache::assign`] (Kafka throws
/// `IllegalArgumentException("Received invalid partition leader epoch entry ...")`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid partition leader epoch entry (epoch {epoch}, start offset {start_offset})")]
pub struct InvalidEpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    epochs: BTreeMap<i32, i64>,
}

impl LeaderEpochCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache loaded from checkpoint entries, applied one by one with `assign` as Kafka's
    /// constructor does (so a non-monotonic file is repaired, not trusted).
    pub fn from_entries(entries: &[EpochEntry]) -> Result<Self, InvalidEpochEntry> {
        let mut cache = Self::new();
        for entry in entries {
            cache.assign(entry.epoch, entry.start_offset)?;
        }
        Ok(cache)
    }

    /// Records that `epoch` starts at `start_offset`. Returns whether the cache changed
    /// (Kafka writes the checkpoint only then). Ignored when `epoch` is the latest epoch
    /// and `start_offset` is not earlier than its recorded start; otherwise every entry
    /// with an epoch `>= epoch` or a start offset `>= start_offset` is removed first.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<bool, InvalidEpochEntry> {
        if epoch < 0 || start_offset < 0 {
            return Err(InvalidEpochEntry {
                epoch,
                start_offset,
            });
        }
        if !self.is_update_needed(epoch, start_offset) {
            return Ok(false);
        }
        let mut removed = Vec::new();
        while let Some((&last_epoch, &last_start)) = self.epochs.last_key_value() {
            if last_epoch >= epoch || last_start >= start_offset {
                self.epochs.pop_last();
                removed.push(EpochEntry::new(last_epoch, last_start));
            } else {
                break;
            }
        }
        // A removal at the same start offset means no data was written in that epoch:
        // expected, so only other removals are worth a warning (as Kafka).
        if removed.len() > 1
            || removed
                .first()
                .is_some_and(|e| e.start_offset != start_offset)
        {
            tracing::warn!(
                epoch,
                start_offset,
                ?removed,
                "new leader epoch entry caused truncation of conflicting entries"
            );
        }
        self.epochs.insert(epoch, start_offset);
        Ok(true)
    }

    fn is_update_needed(&self, epoch: i32, start_offset: i64) -> bool {
        match self.latest_entry() {
            Some(latest) => epoch != latest.epoch || start_offset < latest.start_offset,
            None => true,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    pub fn entries(&self) -> Vec<EpochEntry> {
        self.epochs
            .iter()
            .map(|(&e, &o)| EpochEntry::new(e, o))
            .collect()
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.epochs
            .last_key_value()
            .map(|(&e, &o)| EpochEntry::new(e, o))
    }

    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.epochs
            .first_key_value()
            .map(|(&e, &o)| EpochEntry::new(e, o))
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest_entry().map(|e| e.epoch)
    }

    /// The epoch before the latest one.
    pub fn previous_epoch(&self) -> Option<i32> {
        self.latest_epoch()
            .and_then(|latest| self.previous_epoch_of(latest))
    }

    /// The largest cached epoch strictly below `epoch`.
    pub fn previous_epoch_of(&self, epoch: i32) -> Option<i32> {
        self.previous_entry(epoch).map(|e| e.epoch)
    }

    pub fn previous_entry(&self, epoch: i32) -> Option<EpochEntry> {
        self.epochs
            .range(..epoch)
            .next_back()
            .map(|(&e, &o)| EpochEntry::new(e, o))
    }

    /// The smallest cached epoch strictly above `epoch`.
    pub fn next_epoch(&self, epoch: i32) -> Option<i32> {
        self.higher_entry(epoch).map(|e| e.epoch)
    }

    pub fn epoch_entry(&self, epoch: i32) -> Option<EpochEntry> {
        self.epochs.get(&epoch).map(|&o| EpochEntry::new(epoch, o))
    }

    fn higher_entry(&self, epoch: i32) -> Option<EpochEntry> {
        self.epochs
            .range((Excluded(epoch), Unbounded))
            .next()
            .map(|(&e, &o)| EpochEntry::new(e, o))
    }

    fn floor_entry(&self, epoch: i32) -> Option<EpochEntry> {
        self.epochs
            .range(..=epoch)
            .next_back()
            .map(|(&e, &o)| EpochEntry::new(e, o))
    }

    /// `(epoch, end offset)` for OffsetForLeaderEpoch: the largest cached epoch `<=
    /// requested_epoch` and the start offset of the next cached epoch, or the log end
    /// offset when the latest epoch is requested. A requested epoch below every cached
    /// epoch answers `(requested_epoch, start of the first epoch above it)`; an undefined
    /// or unknown-and-newer epoch answers `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`.
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        if requested_epoch == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested_epoch) {
            // The leader's current epoch is still being written to: its end is the LEO.
            return (requested_epoch, log_end_offset);
        }
        let Some(higher) = self.higher_entry(requested_epoch) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.floor_entry(requested_epoch) {
            // The data of earlier epochs is gone; the follower restarts from the first
            // epoch the leader still knows.
            None => (requested_epoch, higher.start_offset),
            Some(floor) => (floor.epoch, higher.start_offset),
        }
    }

    /// Removes every entry starting at or after `end_offset` (log truncated to
    /// `end_offset`). A negative offset changes nothing. Returns the removed entries.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Vec<EpochEntry> {
        let mut removed = Vec::new();
        let latest_past = self
            .latest_entry()
            .is_some_and(|latest| latest.start_offset >= end_offset);
        if end_offset >= 0 && latest_past {
            while let Some((&e, &o)) = self.epochs.last_key_value() {
                if o >= end_offset {
                    self.epochs.pop_last();
                    removed.push(EpochEntry::new(e, o));
                } else {
                    break;
                }
            }
        }
        removed
    }

    /// Log start moved to `start_offset`: the entries starting at or before it are removed
    /// and the last of them comes back starting at `start_offset` (so `truncate_from_start(6)`
    /// keeps an entry at 6). Returns the removed entries.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Vec<EpochEntry> {
        let mut removed = Vec::new();
        while let Some((&e, &o)) = self.epochs.first_key_value() {
            if o <= start_offset {
                self.epochs.pop_first();
                removed.push(EpochEntry::new(e, o));
            } else {
                break;
            }
        }
        if let Some(last_removed) = removed.last() {
            self.epochs.insert(last_removed.epoch, start_offset);
        }
        removed
    }

    /// The epoch of the batch at `offset`: the latest epoch starting at or before it.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let mut previous = None;
        for (&epoch, &start) in &self.epochs {
            if start == offset {
                return Some(epoch);
            }
            if start > offset {
                return previous;
            }
            previous = Some(epoch);
        }
        previous
    }

    pub fn clear(&mut self) {
        self.epochs.clear();
    }
}

#[cfg(test)]
mod tests {
    //! Ported from Kafka's `LeaderEpochFileCacheTest` (test names kept in snake case).
    use super::*;

    fn cache() -> LeaderEpochCache {
        LeaderEpochCache::new()
    }

    fn assign(c: &mut LeaderEpochCache, epoch: i32, offset: i64) {
        c.assign(epoch, offset).unwrap();
    }

    fn entries(list: &[(i32, i64)]) -> Vec<EpochEntry> {
        list.iter().map(|&(e, o)| EpochEntry::new(e, o)).collect()
    }

    const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);

    #[test]
    fn test_previous_epoch() {
        let mut c = cache();
        assert_eq!(c.previous_epoch(), None);
        assign(&mut c, 2, 10);
        assert_eq!(c.previous_epoch(), None);
        assign(&mut c, 4, 15);
        assert_eq!(c.previous_epoch(), Some(2));
        assign(&mut c, 10, 20);
        assert_eq!(c.previous_epoch(), Some(4));
        c.truncate_from_end(18);
        assert_eq!(c.previous_epoch(), Some(2));
    }

    #[test]
    fn should_add_epoch_and_message_offset_to_cache() {
        let mut c = cache();
        assign(&mut c, 2, 10);
        assert_eq!(c.latest_epoch(), Some(2));
        assert_eq!(c.entries()[0], EpochEntry::new(2, 10));
        assert_eq!(c.end_offset_for(2, 11), (2, 11));
    }

    #[test]
    fn should_return_log_end_offset_if_latest_epoch_requested() {
        let mut c = cache();
        assign(&mut c, 2, 11);
        assign(&mut c, 2, 12);
        assert_eq!(c.end_offset_for(2, 14), (2, 14));
    }

    #[test]
    fn should_return_undefined_offset_if_undefined_epoch_requested() {
        let mut c = cache();
        assign(&mut c, 2, 11);
        assign(&mut c, 3, 12);
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, 0), UNDEFINED);
    }

    #[test]
    fn should_not_overwrite_log_end_offset_for_a_leader_epoch_once_it_has_been_assigned() {
        let mut c = cache();
        assign(&mut c, 2, 9);
        assert!(!c.assign(2, 10).unwrap());
        assert_eq!(c.entries(), entries(&[(2, 9)]));
    }

    #[test]
    fn should_enforce_monotonically_increasing_start_offsets() {
        let mut c = cache();
        assign(&mut c, 2, 9);
        assign(&mut c, 3, 9);
        assert_eq!(c.entries(), entries(&[(3, 9)]));
    }

    #[test]
    fn should_return_unsupported_if_no_epoch_recorded() {
        assert_eq!(cache().end_offset_for(0, 0), UNDEFINED);
    }

    #[test]
    fn should_return_unsupported_if_no_epoch_recorded_and_undefined_epoch_requested() {
        assert_eq!(cache().end_offset_for(UNDEFINED_EPOCH, 73), UNDEFINED);
    }

    #[test]
    fn should_return_first_epoch_if_requested_epoch_less_than_first_epoch() {
        let mut c = cache();
        assign(&mut c, 5, 11);
        assign(&mut c, 6, 12);
        assign(&mut c, 7, 13);
        assert_eq!(c.end_offset_for(4, 0), (4, 11));
    }

    #[test]
    fn should_truncate_if_matching_epoch_but_earlier_starting_offset() {
        let mut c = cache();
        assign(&mut c, 5, 11);
        assign(&mut c, 6, 12);
        assign(&mut c, 7, 13);
        assign(&mut c, 7, 12);
        assert_eq!(c.end_offset_for(5, 0), (5, 12));
        assert_eq!(c.end_offset_for(6, 0), (5, 12));
    }

    #[test]
    fn should_get_first_offset_of_subsequent_epoch_when_offset_requested_for_previous_epoch() {
        let mut c = cache();
        for (e, o) in [(1, 11), (1, 12), (2, 13), (2, 14), (3, 15), (3, 16)] {
            assign(&mut c, e, o);
        }
        assert_eq!(c.end_offset_for(2, 17), (2, 15));
    }

    #[test]
    fn should_return_next_available_epoch_if_there_is_no_exact_epoch_for_the_one_requested() {
        let mut c = cache();
        assign(&mut c, 0, 10);
        assign(&mut c, 2, 13);
        assign(&mut c, 4, 17);
        assert_eq!(c.end_offset_for(1, 0), (0, 13));
        assert_eq!(c.end_offset_for(2, 0), (2, 17));
        assert_eq!(c.end_offset_for(3, 0), (2, 17));
    }

    #[test]
    fn should_not_update_epoch_and_start_offset_if_it_did_not_change() {
        let mut c = cache();
        assign(&mut c, 2, 6);
        assign(&mut c, 2, 7);
        assert_eq!(c.entries(), entries(&[(2, 6)]));
    }

    #[test]
    fn should_return_invalid_offset_if_epoch_is_requested_which_is_not_currently_tracked() {
        let mut c = cache();
        assign(&mut c, 2, 100);
        assert_eq!(c.end_offset_for(3, 100), UNDEFINED);
    }

    #[test]
    fn should_support_epochs_that_do_not_start_from_zero() {
        let mut c = cache();
        assign(&mut c, 2, 6);
        assert_eq!(c.end_offset_for(2, 7), (2, 7));
        assert_eq!(c.entries(), entries(&[(2, 6)]));
    }

    #[test]
    fn should_enforce_monotonically_increasing_epochs() {
        let mut c = cache();
        assign(&mut c, 1, 5);
        assign(&mut c, 2, 6);
        assign(&mut c, 1, 7);
        assert_eq!(c.latest_epoch(), Some(1));
        assert_eq!(c.end_offset_for(1, 8), (1, 8));
        assert_eq!(c.end_offset_for(2, 8), UNDEFINED);
        assert_eq!(c.entries()[0], EpochEntry::new(1, 7));
    }

    #[test]
    fn should_enforce_offsets_increase_monotonically() {
        let mut c = cache();
        assign(&mut c, 2, 6);
        assign(&mut c, 3, 5);
        assert_eq!(c.entries(), entries(&[(3, 5)]));
    }

    #[test]
    fn should_increase_and_track_epochs_as_leaders_change_many_times() {
        let mut c = cache();
        assign(&mut c, 0, 0);
        assign(&mut c, 1, 0);
        assert_eq!(c.latest_epoch(), Some(1));
        assert_eq!(c.end_offset_for(1, 0), (1, 0));
        // Epoch 0 was superseded at the same start offset: Kafka's test expects (0, 0)
        // because the requested epoch lies below every cached one.
        assert_eq!(c.end_offset_for(0, 0), (0, 0));
        assert_eq!(c.end_offset_for(1, 5), (1, 5));
        assert_eq!(c.end_offset_for(0, 5), (0, 0));
        assign(&mut c, 2, 5);
        assert_eq!(c.end_offset_for(2, 10), (2, 10));
        assert_eq!(c.end_offset_for(1, 10), (1, 5));
        assert_eq!(c.end_offset_for(0, 10), (0, 0));
    }

    #[test]
    fn should_increase_and_track_epochs_as_follower_receives_many_messages() {
        let mut c = cache();
        for (e, o) in [(0, 0), (0, 1), (0, 2)] {
            assign(&mut c, e, o);
        }
        assert_eq!(c.latest_epoch(), Some(0));
        assert_eq!(c.end_offset_for(0, 3), (0, 3));
        for (e, o) in [(1, 3), (1, 4), (1, 5)] {
            assign(&mut c, e, o);
        }
        assert_eq!(c.end_offset_for(1, 6), (1, 6));
        for (e, o) in [(2, 6), (2, 7), (2, 8)] {
            assign(&mut c, e, o);
        }
        assert_eq!(c.latest_epoch(), Some(2));
        assert_eq!(c.end_offset_for(2, 9), (2, 9));
        assert_eq!(c.end_offset_for(0, 9), (0, 3));
        assert_eq!(c.end_offset_for(1, 9), (1, 6));
    }

    fn three_epochs() -> LeaderEpochCache {
        let mut c = cache();
        assign(&mut c, 2, 6);
        assign(&mut c, 3, 8);
        assign(&mut c, 4, 11);
        c
    }

    #[test]
    fn should_drop_entries_on_epoch_boundary_when_removing_latest_entries() {
        let mut c = three_epochs();
        c.truncate_from_end(8);
        assert_eq!(c.entries(), entries(&[(2, 6)]));
    }

    #[test]
    fn should_preserve_reset_offset_on_clear_earliest_if_one_exists() {
        let mut c = three_epochs();
        c.truncate_from_start(8);
        assert_eq!(c.entries(), entries(&[(3, 8), (4, 11)]));
    }

    #[test]
    fn should_update_saved_offset_when_offset_to_clear_to_is_between_epochs() {
        let mut c = three_epochs();
        c.truncate_from_start(9);
        assert_eq!(c.entries(), entries(&[(3, 9), (4, 11)]));
    }

    #[test]
    fn should_not_clear_anything_if_offset_to_early() {
        let mut c = three_epochs();
        assert!(c.truncate_from_start(1).is_empty());
        assert_eq!(c.entries(), entries(&[(2, 6), (3, 8), (4, 11)]));
    }

    #[test]
    fn should_not_clear_anything_if_offset_to_first_offset() {
        let mut c = three_epochs();
        c.truncate_from_start(6);
        assert_eq!(c.entries(), entries(&[(2, 6), (3, 8), (4, 11)]));
    }

    #[test]
    fn should_retain_latest_epoch_on_clear_all_earliest() {
        let mut c = three_epochs();
        c.truncate_from_start(11);
        assert_eq!(c.entries(), entries(&[(4, 11)]));
    }

    #[test]
    fn should_update_offset_between_epoch_boundaries_on_clear_earliest2() {
        let mut c = cache();
        assign(&mut c, 0, 0);
        assign(&mut c, 1, 7);
        assign(&mut c, 2, 10);
        c.truncate_from_start(5);
        assert_eq!(c.entries(), entries(&[(0, 5), (1, 7), (2, 10)]));
    }

    #[test]
    fn should_retain_latest_epoch_on_clear_all_earliest_and_update_its_offset() {
        let mut c = three_epochs();
        c.truncate_from_start(15);
        assert_eq!(c.entries(), entries(&[(4, 15)]));
    }

    #[test]
    fn should_drop_entries_between_epoch_boundary_when_removing_newest() {
        let mut c = three_epochs();
        c.truncate_from_end(9);
        assert_eq!(c.latest_epoch(), Some(3));
        assert_eq!(c.entries(), entries(&[(2, 6), (3, 8)]));
    }

    #[test]
    fn should_not_reset_epoch_history_head_if_undefined_passed() {
        let mut c = three_epochs();
        c.truncate_from_start(UNDEFINED_EPOCH_OFFSET);
        assert_eq!(c.entries().len(), 3);
    }

    #[test]
    fn should_not_reset_epoch_history_tail_if_undefined_passed() {
        let mut c = three_epochs();
        c.truncate_from_end(UNDEFINED_EPOCH_OFFSET);
        assert_eq!(c.entries().len(), 3);
    }

    #[test]
    fn should_fetch_latest_epoch_and_end_offset_of_empty_cache() {
        let mut c = cache();
        assert_eq!(c.latest_epoch(), None);
        assert_eq!(c.end_offset_for(7, 0), UNDEFINED);
        assert!(c.truncate_from_start(7).is_empty());
        assert!(c.truncate_from_end(7).is_empty());
    }

    #[test]
    fn test_find_previous_epoch_and_entry() {
        let mut c = cache();
        assert_eq!(c.previous_epoch_of(2), None);
        assign(&mut c, 2, 10);
        assert_eq!(c.previous_entry(2), None);
        assign(&mut c, 4, 15);
        assert_eq!(c.previous_entry(4), Some(EpochEntry::new(2, 10)));
        assign(&mut c, 10, 20);
        assert_eq!(c.previous_epoch_of(10), Some(4));
        c.truncate_from_end(18);
        assert_eq!(c.previous_epoch_of(c.latest_epoch().unwrap()), Some(2));
    }

    #[test]
    fn test_find_next_epoch() {
        let mut c = cache();
        assign(&mut c, 0, 0);
        assign(&mut c, 1, 100);
        assign(&mut c, 2, 200);
        assert_eq!(c.next_epoch(-1), Some(0));
        assert_eq!(c.next_epoch(0), Some(1));
        assert_eq!(c.next_epoch(1), Some(2));
        assert_eq!(c.next_epoch(2), None);
        assert_eq!(c.next_epoch(100), None);
    }

    #[test]
    fn test_get_epoch_entry() {
        let mut c = cache();
        assign(&mut c, 2, 100);
        assign(&mut c, 3, 500);
        assign(&mut c, 5, 1000);
        assert_eq!(c.epoch_entry(3), Some(EpochEntry::new(3, 500)));
        assert_eq!(c.epoch_entry(4), None);
    }

    #[test]
    fn should_fetch_epoch_for_given_offset() {
        let mut c = cache();
        assign(&mut c, 0, 10);
        assign(&mut c, 1, 20);
        assign(&mut c, 5, 30);
        assert_eq!(c.epoch_for_offset(25), Some(1));
        assert_eq!(c.epoch_for_offset(20), Some(1));
        assert_eq!(c.epoch_for_offset(30), Some(5));
        assert_eq!(c.epoch_for_offset(50), Some(5));
        assert_eq!(c.epoch_for_offset(5), None);
    }

    #[test]
    fn should_write_checkpoint_on_truncation() {
        let mut c = three_epochs();
        c.truncate_from_end(11);
        c.truncate_from_start(8);
        assert_eq!(c.entries(), entries(&[(3, 8)]));
    }

    #[test]
    fn negative_epoch_or_offset_is_refused() {
        let mut c = cache();
        assert_eq!(
            c.assign(-1, 0),
            Err(InvalidEpochEntry {
                epoch: -1,
                start_offset: 0
            })
        );
        assert!(c.assign(0, -5).is_err());
        assert!(c.is_empty());
    }
}
