//! Segment files of the Raft log.
//!
//! ## On-disk format
//! A segment is named `log-{first index, 20 decimal digits}.seg` and is a sequence of frames:
//!
//! ```text
//! length: u32 BE    bytes of `payload`
//! crc32c: u32 BE    CRC-32C of `payload`
//! payload           bincode of openraft's `Entry<TypeConfig>` (log id, then the payload:
//!                   blank, membership, or the application's batch of records)
//! ```
//!
//! Indexes are consecutive inside and across segments. A frame is acknowledged to openraft
//! only after its segment was fsynced, so at recovery an incomplete or checksum-failing frame
//! can only be the torn tail of the *last* segment: it and everything after it are dropped (it
//! was never acknowledged). The same damage in an earlier segment is corruption and stops the
//! node rather than silently losing acknowledged entries.

use crate::error::StoreError;
use crate::types::Entry;

pub(crate) const FRAME_HEADER: usize = 8;

pub(crate) fn file_name(base: u64) -> String {
    format!("log-{base:020}.seg")
}

/// The first index of a segment named by [`file_name`], or `None` for other files.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("log-")?.strip_suffix(".seg")?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn encode_frame(entry: &Entry) -> Result<Vec<u8>, StoreError> {
    let payload = bincode::serialize(entry).map_err(StoreError::Encode)?;
    let len = u32::try_from(payload.len()).map_err(|_| StoreError::Corrupt {
        file: "log".into(),
        reason: format!("entry of {} bytes does not fit a frame", payload.len()),
    })?;
    let mut frame = Vec::with_capacity(FRAME_HEADER + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// The frames of one segment file as read at recovery.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Each entry with the byte offset of its frame.
    pub entries: Vec<(u64, Entry)>,
    /// Length of the valid prefix; shorter than the file when the tail is torn.
    pub valid_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub damage: Option<String>,
}

pub(crate) fn scan(file: &str, data: &[u8]) -> Result<Scan, StoreError> {
    let mut entries = Vec::new();
    let mut pos = 0usize;
    let mut damage = None;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() < FRAME_HEADER {
            damage = Some(format!("incomplete frame header at byte {pos}"));
            break;
        }
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        let Some(payload) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
            damage = Some(format!("incomplete frame at byte {pos}"));
            break;
        };
        if crc32c::crc32c(payload) != crc {
            damage = Some(format!("checksum mismatch at byte {pos}"));
            break;
        }
        let entry: Entry = bincode::deserialize(payload).map_err(|source| StoreError::Decode {
            file: file.to_string(),
            source,
        })?;
        entries.push((pos as u64, entry));
        pos += FRAME_HEADER + len;
    }
    Ok(Scan {
        entries,
        valid_len: pos as u64,
        damage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Batch, LogId};
    use bytes::Bytes;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(Batch(vec![Bytes::from(vec![index as u8; 5])])),
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("vote"), None);
        assert_eq!(parse_file_name("log-12.seg"), None);
    }

    #[test]
    fn scan_stops_at_a_torn_tail() {
        let mut data = Vec::new();
        for i in 1..=3 {
            data.extend(encode_frame(&entry(i)).unwrap());
        }
        let full = data.len() as u64;
        data.extend(&encode_frame(&entry(4)).unwrap()[..10]);
        let scan = scan("s", &data).unwrap();
        assert_eq!(scan.entries.len(), 3);
        assert_eq!(scan.valid_len, full);
        assert!(scan.damage.is_some());
    }

    #[test]
    fn scan_detects_a_flipped_bit() {
        let mut data = encode_frame(&entry(1)).unwrap();
        let second = data.len();
        data.extend(encode_frame(&entry(2)).unwrap());
        let last = data.len() - 1;
        data[last] ^= 0x40;
        let scan = scan("s", &data).unwrap();
        assert_eq!(scan.entries.len(), 1);
        assert_eq!(scan.valid_len, second as u64);
        assert!(scan.damage.unwrap().contains("checksum"));
    }
}
