//! Turning the `records` bytes of a fetch response into records.

use arus_protocol::Bytes;
use arus_records::{RecordError, batches};

/// One record read by a fetch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FetchedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Decodes the record set of a fetch response: every record at or after `from_offset`, in
/// order. Returns the records and the offset after the last complete batch (`None` if there
/// was none).
///
/// As Kafka consumers do, this stops quietly at a trailing partial batch (the broker may
/// cut the last batch at `max_bytes`), checks each batch's CRC, and skips control batches
/// (transaction markers) and records before `from_offset` (the broker returns whole
/// batches, so the first may start earlier).
pub fn decode_fetched_records(
    records: Bytes,
    from_offset: i64,
) -> Result<(Vec<FetchedRecord>, Option<i64>), RecordError> {
    let mut out = Vec::new();
    let mut next = None;
    for batch in batches(records) {
        let batch = match batch {
            Ok(b) => b,
            // A partial batch can only be the last thing in the set.
            Err(RecordError::Truncated) => break,
            Err(e) => return Err(e),
        };
        batch.verify_crc()?;
        next = Some(batch.next_offset());
        if batch.is_control() || batch.last_offset() < from_offset {
            continue;
        }
        for r in batch.records()? {
            let offset = r.offset(&batch);
            if offset < from_offset {
                continue;
            }
            let timestamp = r.timestamp(&batch);
            out.push(FetchedRecord {
                offset,
                timestamp,
                key: r.key,
                value: r.value,
                headers: r.headers,
            });
        }
    }
    Ok((out, next))
}
