//! The aborted-transaction index: `{base_offset:020}.txnindex` beside each segment, one
//! entry per ABORT marker stored in that segment (Kafka `TransactionIndex`), read by Fetch
//! through [`crate::Log::collect_aborted_txns`].
//!
//! # Format (entry version [`TXN_INDEX_VERSION`]; Kafka's `AbortedTxn` layout)
//! No file header; entries of [`TXN_ENTRY_LEN`] bytes, big-endian, in marker-offset order:
//! ```text
//! version i16 = 0 | producer_id i64 | first_offset i64 | last_offset i64 | last_stable_offset i64
//! ```
//! `last_offset` is the marker's offset (inside the segment); `first_offset` the
//! transaction's first offset (possibly in an earlier segment). The file is created when
//! the segment gets its first entry. Loading stops at the first malformed or out-of-order
//! entry (a torn tail); recovery rewrites the file from what it keeps and what replay adds.

use crate::producer_state::AbortedTxn;

pub const TXN_INDEX_SUFFIX: &str = "txnindex";
pub const TXN_INDEX_VERSION: i16 = 0;
pub const TXN_ENTRY_LEN: usize = 2 + 8 * 4;

pub fn encode_entry(e: &AbortedTxn) -> [u8; TXN_ENTRY_LEN] {
    let mut b = [0u8; TXN_ENTRY_LEN];
    b[..2].copy_from_slice(&TXN_INDEX_VERSION.to_be_bytes());
    b[2..10].copy_from_slice(&e.producer_id.to_be_bytes());
    b[10..18].copy_from_slice(&e.first_offset.to_be_bytes());
    b[18..26].copy_from_slice(&e.last_offset.to_be_bytes());
    b[26..34].copy_from_slice(&e.last_stable_offset.to_be_bytes());
    b
}

/// Decodes the valid prefix of a `.txnindex` of the segment holding offsets
/// `[base, end)`: entries must have version 0, a producer id, `first_offset <= last_offset`,
/// `last_offset` in the segment and increasing, `last_stable_offset > first_offset`.
pub fn decode_entries(b: &[u8], base: i64, end: i64) -> Vec<AbortedTxn> {
    let mut out: Vec<AbortedTxn> = Vec::new();
    for c in b.chunks_exact(TXN_ENTRY_LEN) {
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&c[at..at + 8]);
            i64::from_be_bytes(a)
        };
        let e = AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        };
        let ok = i16::from_be_bytes([c[0], c[1]]) == TXN_INDEX_VERSION
            && e.producer_id >= 0
            && e.first_offset >= 0
            && e.first_offset <= e.last_offset
            && e.last_offset >= base
            && e.last_offset < end
            && e.last_stable_offset > e.first_offset
            && out.last().is_none_or(|p| p.last_offset < e.last_offset);
        if !ok {
            break;
        }
        out.push(e);
    }
    out
}
