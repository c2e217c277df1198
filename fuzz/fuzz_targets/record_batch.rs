//! Record batches as a producer sends them: framing (`batches`, `RecordBatch::new`), CRC,
//! record parsing after decompression with every codec, produce validation
//! (`validate_produce`), the in-place header edits the broker makes at append, and
//! `recompress` (a topic whose `compression.type` differs from the producer's).
//! Properties: no panic; a batch whose records parse recompresses to the same records.
#![no_main]

use arus_fuzz::{
    RB_LOG_APPEND_TIME, RB_RECOMPRESS_NEXT, RB_REQUIRE_KEYS, RB_TIGHT_TIME, apply_batch_flags,
};
use arus_records::{
    Bytes, Compression, RecordBatch, TimestampType, ValidationConfig, batches, decompress,
    recompress, set_base_offset, set_log_append_time, set_partition_leader_epoch, validate_produce,
};
use libfuzzer_sys::fuzz_target;

/// Decompression bound of the target's own calls (validation uses the crate's default).
const LIMIT: usize = 1 << 20;
const NOW_MS: i64 = 1_700_000_000_000;

fn exercise_batch(batch: &RecordBatch, flags: u8) {
    let _ = (
        batch.last_offset(),
        batch.next_offset(),
        batch.last_sequence(),
        batch.timestamp_type(),
        batch.is_transactional(),
        batch.is_control(),
    );
    let crc_ok = batch.verify_crc().is_ok();
    let records = batch.records_with_limit(LIMIT);
    let _ = batch.producer_records_with_limit(LIMIT);
    let mut n = 0usize;
    let _ = batch.producer_record_summaries(LIMIT, |i, s| {
        assert_eq!(i, n);
        n += 1;
        let _ = s.timestamp(batch);
    });

    let mut edited = batch.as_bytes().to_vec();
    set_base_offset(&mut edited, 1234);
    set_partition_leader_epoch(&mut edited, 7);
    set_log_append_time(&mut edited, NOW_MS);
    let edited = RecordBatch::new(Bytes::from(edited)).expect("header edits broke the framing");
    assert_eq!(edited.base_offset(), 1234);
    assert!(edited.verify_crc().is_ok(), "CRC after header edits");

    let Ok(source) = batch.compression() else {
        return;
    };
    let target = if flags & RB_RECOMPRESS_NEXT != 0 {
        Compression::ALL[(usize::from(source.id()) + 1) % Compression::ALL.len()]
    } else {
        Compression::None
    };
    let Ok(recompressed) = recompress(batch, target, LIMIT) else {
        return;
    };
    let re = RecordBatch::new(recompressed).expect("recompress output does not frame");
    assert_eq!(re.compression().ok(), Some(target));
    assert_eq!(re.record_count(), batch.record_count());
    if crc_ok {
        re.verify_crc().expect("recompress output has a bad CRC");
    }
    if let Ok(records) = records {
        let again = re
            .records_with_limit(LIMIT)
            .expect("recompressed records do not parse");
        assert_eq!(again, records, "recompress changed the records");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    apply_batch_flags(flags, &mut buf);
    let bytes = Bytes::from(buf);

    // BatchIter is fused after its first error, so flatten() cannot spin.
    for batch in batches(bytes.clone()).flatten() {
        exercise_batch(&batch, flags);
    }
    if let Ok(batch) = RecordBatch::new(bytes.clone()) {
        let _ = batch.records_with_limit(LIMIT);
    }

    let (before, after) = if flags & RB_TIGHT_TIME != 0 {
        (3_600_000, 3_600_000)
    } else {
        (i64::MAX, i64::MAX)
    };
    let cfg = ValidationConfig {
        max_message_bytes: 1 << 20,
        require_keys: flags & RB_REQUIRE_KEYS != 0,
        timestamp_before_max_ms: before,
        timestamp_after_max_ms: after,
        now_ms: NOW_MS,
        timestamp_type: if flags & RB_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
    };
    if let Ok(v) = validate_produce(bytes.clone(), &cfg) {
        assert_eq!(v.batches.len(), 1);
        assert_eq!(v.total_bytes, bytes.len());
        assert!(v.record_count > 0);
    }

    // The codecs on their own, over the bytes after the flags.
    let codec = Compression::ALL[usize::from(flags) % Compression::ALL.len()];
    let _ = decompress(codec, rest, LIMIT);
});
