//! The dedupe table: key digest → latest offset, Kafka's `SkimpyOffsetMap`.
//!
//! Keys are never stored, only a 16-byte digest, so the memory per key is fixed (24 bytes:
//! digest + offset) and the table is sized once from `log.cleaner.dedupe.buffer.size`.
//! Kafka digests with MD5; we use XXH3-128. The digest never leaves memory, so the choice
//! only matters for accidental collisions, which are as unlikely with 128 bits of XXH3 as
//! with MD5, and a deliberately colliding key buys a producer nothing it cannot already do
//! by writing the victim key itself. XXH3 is much faster and is already a dependency.

use twox_hash::XxHash3_128;

use crate::config::DEDUPE_BUFFER_LOAD_FACTOR;

/// Bytes per slot: 16 digest bytes and an 8-byte offset, as in Kafka.
const BYTES_PER_ENTRY: usize = 24;
const HASH_SIZE: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Slot {
    hash: [u64; 2],
    /// -1 marks an empty slot (record offsets are never negative).
    offset: i64,
}

const EMPTY: Slot = Slot {
    hash: [0, 0],
    offset: -1,
};

/// Fixed-capacity open-addressing map from key digests to the latest offset seen.
pub struct OffsetMap {
    slots: Vec<Slot>,
    entries: usize,
    latest_offset: i64,
}

impl std::fmt::Debug for OffsetMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetMap")
            .field("slots", &self.slots.len())
            .field("entries", &self.entries)
            .field("latest_offset", &self.latest_offset)
            .finish()
    }
}

fn digest(key: &[u8]) -> ([u64; 2], [u8; HASH_SIZE]) {
    let h = XxHash3_128::oneshot(key).to_be_bytes();
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&h[..8]);
    lo.copy_from_slice(&h[8..]);
    ([u64::from_be_bytes(hi), u64::from_be_bytes(lo)], h)
}

impl OffsetMap {
    /// A map using about `memory` bytes (`memory / 24` slots, at least one).
    pub fn new(memory: usize) -> OffsetMap {
        let n = (memory / BYTES_PER_ENTRY).max(1);
        OffsetMap {
            slots: vec![EMPTY; n],
            entries: 0,
            latest_offset: -1,
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// How many distinct keys the cleaner puts before it stops: slots × load factor
    /// (Kafka's `maxDesiredMapSize`).
    pub fn max_entries(&self) -> usize {
        (self.slots.len() as f64 * DEDUPE_BUFFER_LOAD_FACTOR) as usize
    }

    /// Distinct keys stored.
    pub fn size(&self) -> usize {
        self.entries
    }

    /// Whether [`max_entries`](Self::max_entries) keys are stored.
    pub fn is_full(&self) -> bool {
        self.entries >= self.max_entries()
    }

    /// Fraction of slots in use (Kafka's `bufferUtilization`).
    pub fn utilization(&self) -> f64 {
        self.entries as f64 / self.slots.len() as f64
    }

    /// Offset of the last record put, or as moved by [`update_latest_offset`]
    /// (-1 when empty): the map is complete up to this offset.
    ///
    /// [`update_latest_offset`]: Self::update_latest_offset
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Moves the completeness mark, for batches without keys and gaps between segments.
    pub fn update_latest_offset(&mut self, offset: i64) {
        self.latest_offset = offset;
    }

    /// Forgets every key (the memory is kept for the next round).
    pub fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.entries = 0;
        self.latest_offset = -1;
    }

    /// The `attempt`-th probe: successive 32-bit windows of the digest first, then linear
    /// from the last window (Kafka's `positionOf`), so a probe sequence never repeats a slot
    /// before it has visited them all.
    fn position(&self, bytes: &[u8; HASH_SIZE], attempt: usize) -> usize {
        let at = attempt.min(HASH_SIZE - 4);
        let window = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let extra = attempt.saturating_sub(HASH_SIZE - 4) as u64;
        ((u64::from(window) + extra) % self.slots.len() as u64) as usize
    }

    /// Records `offset` as the latest for `key`. Returns false (and stores nothing) only if
    /// every slot is taken by other keys; the cleaner never gets there because it stops at
    /// [`max_entries`](Self::max_entries).
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let (hash, bytes) = digest(key);
        for attempt in 0..self.slots.len() + HASH_SIZE - 4 {
            let pos = self.position(&bytes, attempt);
            let slot = &mut self.slots[pos];
            if slot.offset < 0 {
                *slot = Slot { hash, offset };
                self.entries += 1;
                self.latest_offset = offset;
                return true;
            }
            if slot.hash == hash {
                slot.offset = offset;
                self.latest_offset = offset;
                return true;
            }
        }
        false
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let (hash, bytes) = digest(key);
        for attempt in 0..self.slots.len() + HASH_SIZE - 4 {
            let slot = &self.slots[self.position(&bytes, attempt)];
            if slot.offset < 0 {
                return None;
            }
            if slot.hash == hash {
                return Some(slot.offset);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_overwrite_and_latest() {
        let mut m = OffsetMap::new(24 * 100);
        assert_eq!(m.slots(), 100);
        assert_eq!(m.max_entries(), 90);
        for i in 0..90i64 {
            assert!(m.put(format!("k{i}").as_bytes(), i));
        }
        assert!(m.is_full());
        assert_eq!(m.latest_offset(), 89);
        assert!(m.put(b"k3", 500));
        assert_eq!(m.size(), 90);
        assert_eq!(m.get(b"k3"), Some(500));
        assert_eq!(m.get(b"k4"), Some(4));
        assert_eq!(m.get(b"nope"), None);
        m.update_latest_offset(1000);
        assert_eq!(m.latest_offset(), 1000);
        m.clear();
        assert_eq!(m.get(b"k3"), None);
        assert_eq!((m.size(), m.latest_offset()), (0, -1));
    }

    #[test]
    fn a_full_table_refuses_new_keys_but_finds_old_ones() {
        let mut m = OffsetMap::new(24 * 7);
        for i in 0..7i64 {
            assert!(m.put(&[i as u8], i));
        }
        assert!(!m.put(b"eighth", 7));
        for i in 0..7i64 {
            assert_eq!(m.get(&[i as u8]), Some(i));
        }
        assert_eq!(m.get(b"eighth"), None);
        // Zero memory still gives one slot rather than a division by zero.
        let mut tiny = OffsetMap::new(0);
        assert!(tiny.put(b"a", 1));
        assert_eq!(tiny.get(b"a"), Some(1));
    }
}
