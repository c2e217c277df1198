//! Round trips, codecs, header edits and produce validation of arus-records.

use arus_records::*;

const NOW: i64 = 1_700_000_000_000;

fn sample(c: Compression) -> Bytes {
    let mut b = BatchBuilder::new(c, NOW).producer(42, 3, 7, false);
    b.push(NOW, Some(b"k0"), Some(b"v0"), &[]);
    b.push(
        NOW + 5,
        None,
        Some(b"value-1"),
        &[("h", Some(b"x")), ("n", None)],
    );
    b.push(NOW - 2, Some(b""), None, &[]);
    let big = vec![b'z'; 100_000]; // spans several xerial / lz4 blocks
    b.push(NOW + 1, Some(b"big"), Some(&big), &[]);
    b.build().unwrap()
}

/// Recomputes the CRC after a test edits bytes it covers.
fn fix_crc(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn cfg() -> ValidationConfig {
    ValidationConfig {
        max_message_bytes: 1 << 20,
        require_keys: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        now_ms: NOW,
        timestamp_type: TimestampType::CreateTime,
    }
}

fn err_name(records: Bytes, cfg: &ValidationConfig) -> &'static str {
    validate_produce(records, cfg)
        .unwrap_err()
        .kafka_error_name()
}

#[test]
fn crc32c_known_answer() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn round_trip_every_compression() {
    for c in Compression::ALL {
        let bytes = sample(c);
        let batch = RecordBatch::new(bytes.clone()).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(batch.compression().unwrap(), c, "{c}");
        assert_eq!(batch.magic(), 2);
        assert_eq!(batch.size(), bytes.len());
        assert_eq!(batch.batch_length() as usize, bytes.len() - 12);
        assert_eq!(batch.base_offset(), 0);
        assert_eq!(batch.partition_leader_epoch(), -1);
        assert_eq!(batch.record_count(), 4);
        assert_eq!(batch.last_offset_delta(), 3);
        assert_eq!(batch.last_offset(), 3);
        assert_eq!(batch.next_offset(), 4);
        assert_eq!(batch.base_timestamp(), NOW);
        assert_eq!(batch.max_timestamp(), NOW + 5);
        assert_eq!(batch.producer_id(), 42);
        assert_eq!(batch.producer_epoch(), 3);
        assert_eq!(batch.base_sequence(), 7);
        assert_eq!(batch.last_sequence(), 10);
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        assert!(!batch.is_transactional() && !batch.is_control());

        let recs = batch.records().unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(recs[0].value.as_deref(), Some(&b"v0"[..]));
        assert_eq!(recs[1].key, None);
        assert_eq!(
            recs[1].headers,
            vec![
                ("h".to_string(), Some(Bytes::from_static(b"x"))),
                ("n".to_string(), None)
            ]
        );
        assert_eq!(recs[2].key.as_deref(), Some(&b""[..]));
        assert_eq!(recs[2].value, None);
        assert_eq!(recs[3].value.as_ref().unwrap().len(), 100_000);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset(&batch), i as i64);
        }
        assert_eq!(recs[1].timestamp(&batch), NOW + 5);
        assert_eq!(recs[2].timestamp(&batch), NOW - 2);
        if c != Compression::None {
            assert!(bytes.len() < 50_000, "{c} did not compress");
        }
    }
}

#[test]
fn corrupted_byte_fails_crc() {
    for at in [21, 30, 61, 70] {
        let mut buf = sample(Compression::None).to_vec();
        buf[at] ^= 0x40;
        let batch = RecordBatch::new(Bytes::from(buf)).unwrap();
        assert!(matches!(
            batch.verify_crc(),
            Err(RecordError::CrcMismatch { .. })
        ));
    }
}

#[test]
fn codecs_round_trip_and_bound_output() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for c in Compression::ALL {
        let z = compress(c, &data).unwrap();
        assert_eq!(decompress(c, &z, data.len()).unwrap(), data, "{c}");
        assert!(matches!(
            decompress(c, &z, data.len() - 1),
            Err(RecordError::DecompressionLimit { .. })
        ));
        let empty = compress(c, b"").unwrap();
        assert_eq!(decompress(c, &empty, 0).unwrap(), b"");
    }
    // A bomb: 64 MiB of zeros is a few KiB of zstd.
    let zeros = vec![0u8; 64 << 20];
    let bomb = compress(Compression::Zstd, &zeros).unwrap();
    assert!(bomb.len() < 100_000);
    assert!(matches!(
        decompress(Compression::Zstd, &bomb, 1 << 20),
        Err(RecordError::DecompressionLimit { limit }) if limit == 1 << 20
    ));
}

#[test]
fn snappy_xerial_and_raw_both_decode() {
    let data = b"hello hello hello hello snappy snappy".repeat(2000);
    let xerial = compress(Compression::Snappy, &data).unwrap();
    assert_eq!(
        &xerial[..16],
        &[
            0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1
        ]
    );
    assert_eq!(
        decompress(Compression::Snappy, &xerial, usize::MAX).unwrap(),
        data
    );
    let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
    assert_eq!(
        decompress(Compression::Snappy, &raw, usize::MAX).unwrap(),
        data
    );
    assert!(matches!(
        decompress(Compression::Snappy, &raw, 10),
        Err(RecordError::DecompressionLimit { .. })
    ));

    // A batch whose records section is raw snappy (as some non-Java clients write).
    let plain = sample(Compression::None);
    let section = snap::raw::Encoder::new()
        .compress_vec(&plain[61..])
        .unwrap();
    let mut buf = plain[..61].to_vec();
    buf.extend_from_slice(&section);
    let len = (buf.len() - 12) as i32;
    buf[8..12].copy_from_slice(&len.to_be_bytes());
    buf[22] = (buf[22] & !7) | 2;
    fix_crc(&mut buf);
    let batch = RecordBatch::new(Bytes::from(buf)).unwrap();
    batch.verify_crc().unwrap();
    assert_eq!(
        batch.records().unwrap(),
        RecordBatch::new(plain).unwrap().records().unwrap()
    );
}

#[test]
fn header_edits() {
    let mut buf = sample(Compression::Lz4).to_vec();
    set_base_offset(&mut buf, 1000);
    set_partition_leader_epoch(&mut buf, 9);
    let b = RecordBatch::new(Bytes::from(buf.clone())).unwrap();
    b.verify_crc().unwrap();
    assert_eq!(
        (b.base_offset(), b.last_offset(), b.next_offset()),
        (1000, 1003, 1004)
    );
    assert_eq!(b.partition_leader_epoch(), 9);
    assert_eq!(b.records().unwrap()[2].offset(&b), 1002);

    set_log_append_time(&mut buf, NOW + 999);
    let b = RecordBatch::new(Bytes::from(buf)).unwrap();
    b.verify_crc().unwrap();
    assert_eq!(b.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(b.max_timestamp(), NOW + 999);
    assert_eq!(b.base_timestamp(), NOW);
    assert_eq!(b.compression().unwrap(), Compression::Lz4);
    assert_eq!(b.producer_id(), 42);
    for r in b.records().unwrap() {
        assert_eq!(r.timestamp(&b), NOW + 999);
    }
}

#[test]
fn new_checks_framing() {
    let good = sample(Compression::None);
    assert!(matches!(
        RecordBatch::new(good.slice(..60)),
        Err(RecordError::Truncated)
    ));
    assert!(matches!(
        RecordBatch::new(good.slice(..good.len() - 1)),
        Err(RecordError::InvalidBatchLength { .. })
    ));
    let mut v1 = good.to_vec();
    v1[16] = 1;
    assert!(matches!(
        RecordBatch::new(Bytes::from(v1)),
        Err(RecordError::UnsupportedMagic(1))
    ));
    assert!(matches!(
        RecordBatch::new(Bytes::new()),
        Err(RecordError::Truncated)
    ));
}

#[test]
fn batches_splits_and_is_strict() {
    let a = sample(Compression::None);
    let b = sample(Compression::Gzip);
    let mut set = a.to_vec();
    set.extend_from_slice(&b);
    let got: Vec<_> = batches(Bytes::from(set.clone()))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_bytes(), &a);
    assert_eq!(got[1].clone().into_bytes(), b);
    assert_eq!(batches(Bytes::new()).count(), 0);

    for cut in [1, 11, 12, 40, b.len() - 1] {
        let partial = Bytes::from(set[..a.len() + cut].to_vec());
        let items: Vec<_> = batches(partial).collect();
        assert_eq!(items.len(), 2, "cut {cut}");
        assert!(items[0].is_ok());
        assert!(matches!(items[1], Err(RecordError::Truncated)), "cut {cut}");
    }
}

#[test]
fn control_batches() {
    for (kind, name) in [(ControlType::Commit, 1i16), (ControlType::Abort, 0)] {
        let bytes = control_record_batch(kind, 77, 4, 12, NOW);
        let b = RecordBatch::new(bytes.clone()).unwrap();
        b.verify_crc().unwrap();
        assert!(b.is_control() && b.is_transactional());
        assert_eq!(
            (b.producer_id(), b.producer_epoch(), b.base_sequence()),
            (77, 4, -1)
        );
        let recs = b.records().unwrap();
        assert_eq!(recs.len(), 1);
        let key = recs[0].key.as_ref().unwrap();
        assert_eq!(&key[..], &[0, 0, 0, name as u8]);
        assert_eq!(ControlType::from_key(key), Some(kind));
        assert_eq!(&recs[0].value.as_ref().unwrap()[..], &[0, 0, 0, 0, 0, 12]);
        // Clients may not write them.
        assert_eq!(err_name(bytes, &cfg()), "INVALID_RECORD");
    }
    assert_eq!(ControlType::from_key(&[0, 0]), None);
}

#[test]
fn builder_details() {
    let mut b = BatchBuilder::new(Compression::None, NOW);
    assert!(b.is_empty());
    assert_eq!(b.estimated_size(), BATCH_HEADER_LEN);
    b.push(NOW, Some(b"k"), Some(b"v"), &[]);
    assert_eq!(b.len(), 1);
    let est = b.estimated_size();
    let bytes = b.build().unwrap();
    assert_eq!(est, bytes.len());
    let b = RecordBatch::new(bytes).unwrap();
    assert_eq!(
        (b.producer_id(), b.producer_epoch(), b.base_sequence()),
        (-1, -1, -1)
    );
    assert!(matches!(
        BatchBuilder::new(Compression::None, 0).build(),
        Err(RecordError::EmptyBatch)
    ));
    assert_eq!(Compression::from_name("zstd"), Some(Compression::Zstd));
    assert_eq!(Compression::from_name("producer"), None);
    for c in Compression::ALL {
        assert_eq!(Compression::from_name(c.name()), Some(c));
        assert_eq!(Compression::from_attributes(c as i16 | 0x18).unwrap(), c);
    }
    assert!(matches!(
        Compression::from_attributes(6),
        Err(RecordError::UnsupportedCompression(6))
    ));
}

// ---- produce validation -------------------------------------------------------------

#[test]
fn valid_produce_summary() {
    for c in Compression::ALL {
        let bytes = sample(c);
        let v = validate_produce(bytes.clone(), &cfg()).unwrap();
        assert_eq!(v.batches.len(), 1);
        assert_eq!(v.record_count, 4);
        assert_eq!(v.max_timestamp, NOW + 5);
        assert_eq!(v.first_timestamp, NOW);
        assert_eq!(v.total_bytes, bytes.len());
        assert_eq!(v.compression, vec![c]);
    }
    let mut lat = cfg();
    lat.timestamp_type = TimestampType::LogAppendTime;
    let v = validate_produce(sample(Compression::None), &lat).unwrap();
    assert_eq!((v.max_timestamp, v.first_timestamp), (NOW, NOW));
}

#[test]
fn framing_errors() {
    assert_eq!(err_name(Bytes::new(), &cfg()), "INVALID_RECORD");
    let good = sample(Compression::None);
    assert_eq!(
        err_name(good.slice(..good.len() - 3), &cfg()),
        "CORRUPT_MESSAGE"
    );
    assert_eq!(err_name(good.slice(..7), &cfg()), "CORRUPT_MESSAGE");
    let mut trailing = good.to_vec();
    trailing.extend_from_slice(&[0, 0, 0]);
    assert_eq!(err_name(Bytes::from(trailing), &cfg()), "CORRUPT_MESSAGE");
    let mut two = good.to_vec();
    two.extend_from_slice(&good);
    let e = validate_produce(Bytes::from(two), &cfg()).unwrap_err();
    assert_eq!(e, ValidationError::MultipleBatches(2));
    assert_eq!(e.kafka_error_name(), "INVALID_RECORD");
    assert_eq!(e.batch_index(), None);
}

#[test]
fn magic_errors() {
    let mut buf = sample(Compression::None).to_vec();
    buf[16] = 1;
    let e = validate_produce(Bytes::from(buf.clone()), &cfg()).unwrap_err();
    assert_eq!(e, ValidationError::UnsupportedMagic(1));
    assert_eq!(e.kafka_error_name(), "INVALID_RECORD");
    buf[16] = 3;
    assert_eq!(err_name(Bytes::from(buf), &cfg()), "CORRUPT_MESSAGE");
}

#[test]
fn crc_size_offset_codec_errors() {
    let mut buf = sample(Compression::None).to_vec();
    buf[70] ^= 1;
    assert_eq!(err_name(Bytes::from(buf), &cfg()), "CORRUPT_MESSAGE");

    let good = sample(Compression::None);
    let mut small = cfg();
    small.max_message_bytes = good.len() - 1;
    let e = validate_produce(good.clone(), &small).unwrap_err();
    assert_eq!(e.kafka_error_name(), "MESSAGE_TOO_LARGE");
    assert_eq!(e.kafka_error_code(), 10);
    small.max_message_bytes = good.len();
    validate_produce(good.clone(), &small).unwrap();

    let mut buf = good.to_vec();
    set_base_offset(&mut buf, 5);
    let e = validate_produce(Bytes::from(buf), &cfg()).unwrap_err();
    assert_eq!(e, ValidationError::NonZeroBaseOffset(5));
    assert_eq!(e.kafka_error_name(), "INVALID_RECORD");

    let mut buf = good.to_vec();
    buf[22] |= 5;
    fix_crc(&mut buf);
    assert_eq!(
        err_name(Bytes::from(buf), &cfg()),
        "UNSUPPORTED_COMPRESSION_TYPE"
    );
}

#[test]
fn count_and_offset_errors() {
    let good = sample(Compression::None);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut buf = good.to_vec();
        f(&mut buf);
        fix_crc(&mut buf);
        let e = validate_produce(Bytes::from(buf), &cfg()).unwrap_err();
        assert_eq!(e.kafka_error_name(), "INVALID_RECORD", "{e}");
        e
    };
    // recordCount disagrees with lastOffsetDelta
    edit(&|b| b[57..61].copy_from_slice(&3i32.to_be_bytes()));
    // both say 3 but four records are present
    edit(&|b| {
        b[57..61].copy_from_slice(&3i32.to_be_bytes());
        b[23..27].copy_from_slice(&2i32.to_be_bytes());
    });
    // both say 5 but four records are present
    edit(&|b| {
        b[57..61].copy_from_slice(&5i32.to_be_bytes());
        b[23..27].copy_from_slice(&4i32.to_be_bytes());
    });
    // zero records
    edit(&|b| {
        b[57..61].copy_from_slice(&0i32.to_be_bytes());
        b[23..27].copy_from_slice(&(-1i32).to_be_bytes());
    });
    // producer id without a sequence
    edit(&|b| b[53..57].copy_from_slice(&(-1i32).to_be_bytes()));
    // first record's offset delta (byte after length, attributes, 1-byte timestamp delta)
    // changed from 0 to 1 (zigzag 2)
    edit(&|b| {
        assert_eq!(b[64], 0);
        b[64] = 2;
    });
    // control bit
    edit(&|b| b[22] |= 0x20);
}

#[test]
fn compacted_topic_needs_keys() {
    let mut compacted = cfg();
    compacted.require_keys = true;
    for c in Compression::ALL {
        let e = validate_produce(sample(c), &compacted).unwrap_err();
        assert_eq!(e.kafka_error_name(), "INVALID_RECORD", "{c}");
        assert_eq!(e.batch_index(), Some(1));
        assert_eq!(
            e.record_errors()[0].message,
            "Compacted topic cannot accept message without key"
        );
    }
    let mut b = BatchBuilder::new(Compression::Zstd, NOW);
    b.push(NOW, Some(b"k"), None, &[]);
    validate_produce(b.build().unwrap(), &compacted).unwrap();
}

#[test]
fn timestamp_bounds() {
    let mut tight = cfg();
    tight.timestamp_before_max_ms = 1;
    tight.timestamp_after_max_ms = 1;
    // record 1 is NOW+5 (too new), record 2 NOW-2 (too old)
    let e = validate_produce(sample(Compression::None), &tight).unwrap_err();
    assert_eq!(e.kafka_error_name(), "INVALID_TIMESTAMP");
    let idx: Vec<usize> = e.record_errors().iter().map(|r| r.index).collect();
    assert_eq!(idx, vec![1, 2]);
    assert_eq!(e.batch_index(), Some(1));
    // compressed: judged by maxTimestamp only
    let e = validate_produce(sample(Compression::Gzip), &tight).unwrap_err();
    assert_eq!(e.kafka_error_name(), "INVALID_TIMESTAMP");
    tight.timestamp_after_max_ms = 10;
    validate_produce(sample(Compression::Gzip), &tight).unwrap();
    // LogAppendTime topics do not check producer timestamps...
    let mut lat = tight.clone();
    lat.timestamp_type = TimestampType::LogAppendTime;
    lat.now_ms = 0;
    validate_produce(sample(Compression::None), &lat).unwrap();
    // ...but a producer may not send a LogAppendTime batch
    let mut buf = sample(Compression::None).to_vec();
    set_log_append_time(&mut buf, NOW);
    assert_eq!(err_name(Bytes::from(buf), &lat), "INVALID_TIMESTAMP");
    // NO_TIMESTAMP records are exempt from bounds
    let mut b = BatchBuilder::new(Compression::None, -1);
    b.push(-1, Some(b"k"), None, &[]);
    validate_produce(b.build().unwrap(), &tight).unwrap();
}

#[test]
fn malformed_records_are_invalid_record() {
    // Record length varint claims more bytes than the batch holds.
    let mut buf = sample(Compression::None).to_vec();
    buf[61] = 0x7e; // zigzag 63, much longer than the first record
    fix_crc(&mut buf);
    let e = validate_produce(Bytes::from(buf.clone()), &cfg()).unwrap_err();
    assert_eq!(e.kafka_error_name(), "INVALID_RECORD");
    assert!(
        RecordBatch::new(Bytes::from(buf))
            .unwrap()
            .records()
            .is_err()
    );
    // Garbage compressed section.
    let mut buf = sample(Compression::Gzip).to_vec();
    for x in &mut buf[61..80] {
        *x = 0xAB;
    }
    fix_crc(&mut buf);
    let mut compacted = cfg();
    compacted.require_keys = true;
    assert_eq!(err_name(Bytes::from(buf), &compacted), "CORRUPT_MESSAGE");
}

#[test]
fn recompress_between_every_codec_pair() {
    for from in Compression::ALL {
        let mut src = sample(from).to_vec();
        set_base_offset(&mut src, 500);
        set_partition_leader_epoch(&mut src, 4);
        let src = RecordBatch::new(Bytes::from(src)).unwrap();
        let expected = src.records().unwrap();
        for to in Compression::ALL {
            let out = RecordBatch::new(recompress(&src, to, 1 << 20).unwrap()).unwrap();
            out.verify_crc().unwrap();
            assert_eq!(out.compression().unwrap(), to);
            assert_eq!(out.records().unwrap(), expected, "{from} -> {to}");
            assert_eq!(out.base_offset(), 500);
            assert_eq!(out.partition_leader_epoch(), 4);
            assert_eq!(
                (out.producer_id(), out.base_sequence(), out.max_timestamp()),
                (src.producer_id(), src.base_sequence(), src.max_timestamp())
            );
            if from == to {
                assert_eq!(out.as_bytes(), src.as_bytes());
            }
        }
    }
}

/// The summaries the validator walks agree with the full records, for every codec.
#[test]
fn record_summaries_match_the_records() {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = batches(sample(c)).next().unwrap().unwrap();
        let records = batch.records().unwrap();
        let mut summaries = Vec::new();
        batch
            .producer_record_summaries(DEFAULT_DECOMPRESSION_LIMIT, |i, s| summaries.push((i, s)))
            .unwrap();
        assert_eq!(summaries.len(), records.len(), "{c:?}");
        for ((i, s), r) in summaries.iter().zip(&records) {
            assert_eq!(*i as i32, r.offset_delta);
            assert_eq!(s.offset_delta, r.offset_delta);
            assert_eq!(s.timestamp(&batch), r.timestamp(&batch));
            assert_eq!(s.has_key, r.key.is_some(), "{c:?} record {i}");
        }
    }
}
