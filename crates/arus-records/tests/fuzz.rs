//! Hostile bytes never panic: random input, and valid batches mutated and truncated.

use arus_records::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};

fn cfg(require_keys: bool) -> ValidationConfig {
    ValidationConfig {
        max_message_bytes: 1 << 20,
        require_keys,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        now_ms: 0,
        timestamp_type: TimestampType::CreateTime,
    }
}

/// Runs every entry point over `bytes`; only the absence of panics is asserted.
fn exercise(bytes: &[u8]) {
    let b = Bytes::copy_from_slice(bytes);
    // BatchIter is fused after its first error, so flatten() cannot spin on errors.
    for batch in batches(b.clone()).flatten() {
        let _ = batch.verify_crc();
        let _ = batch.records_with_limit(1 << 20);
        let _ = (
            batch.last_offset(),
            batch.next_offset(),
            batch.last_sequence(),
        );
    }
    if let Ok(batch) = RecordBatch::new(b.clone()) {
        let _ = batch.records_with_limit(1 << 20);
    }
    let _ = validate_produce(b.clone(), &cfg(false));
    let _ = validate_produce(b.clone(), &cfg(true));
    for c in Compression::ALL {
        let _ = decompress(c, bytes, 1 << 16);
    }
}

/// Makes the CRC right so mutations reach the record parser instead of stopping at the CRC.
fn fix_crc(buf: &mut [u8]) {
    if buf.len() >= BATCH_HEADER_LEN {
        let crc = crc32c::crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

fn seed_batches() -> Vec<Vec<u8>> {
    Compression::ALL
        .iter()
        .map(|&c| {
            let mut b = BatchBuilder::new(c, 1000);
            for i in 0..20u8 {
                let key = [i; 3];
                b.push(
                    1000 + i64::from(i),
                    (i % 3 != 0).then_some(&key[..]),
                    Some(&[i; 40][..]),
                    &[("hk", Some(&[i][..]))],
                );
            }
            b.build().unwrap().to_vec()
        })
        .collect()
}

#[test]
fn mutated_valid_batches_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let seeds = seed_batches();
    // ARUS_FUZZ_ITERS raises the count for a longer one-off run (e.g. in release mode).
    let iters = std::env::var("ARUS_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000u32);
    for _ in 0..iters {
        let mut buf = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..buf.len());
            buf[at] = rng.r#gen();
        }
        if rng.gen_bool(0.3) {
            let cut = rng.gen_range(0..=buf.len());
            buf.truncate(cut);
            if buf.len() >= 12 {
                let len = (buf.len() - 12) as i32;
                buf[8..12].copy_from_slice(&len.to_be_bytes());
            }
        }
        if buf.len() > 16 && rng.gen_bool(0.8) {
            buf[16] = 2;
            fix_crc(&mut buf);
        }
        exercise(&buf);
    }
}

#[test]
fn every_truncation_never_panics() {
    for seed in seed_batches() {
        for cut in 0..seed.len().min(400) {
            exercise(&seed[..cut]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(&bytes);
    }

    #[test]
    fn random_records_section_never_panics(
        section in proptest::collection::vec(any::<u8>(), 0..200),
        count in -2i32..40,
        attrs in 0i16..8,
    ) {
        // A well-framed header with a valid CRC around random record bytes.
        let mut buf = vec![0u8; BATCH_HEADER_LEN];
        buf.extend_from_slice(&section);
        let len = (buf.len() - 12) as i32;
        buf[8..12].copy_from_slice(&len.to_be_bytes());
        buf[16] = 2;
        buf[21..23].copy_from_slice(&attrs.to_be_bytes());
        buf[23..27].copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
        buf[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        buf[57..61].copy_from_slice(&count.to_be_bytes());
        fix_crc(&mut buf);
        exercise(&buf);
    }

    #[test]
    fn builder_round_trip(
        recs in proptest::collection::vec(
            (any::<i64>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50))),
            1..20),
        codec in 0usize..5,
    ) {
        let c = Compression::ALL[codec];
        let base = recs[0].0;
        let mut b = BatchBuilder::new(c, base);
        for (ts, k, v) in &recs {
            b.push(*ts, k.as_deref(), v.as_deref(), &[("h", v.as_deref())]);
        }
        let batch = RecordBatch::new(b.build().unwrap()).unwrap();
        batch.verify_crc().unwrap();
        let got = batch.records().unwrap();
        prop_assert_eq!(got.len(), recs.len());
        for (r, (ts, k, v)) in got.iter().zip(&recs) {
            prop_assert_eq!(r.timestamp(&batch), *ts);
            prop_assert_eq!(r.key.as_deref(), k.as_deref());
            prop_assert_eq!(r.value.as_deref(), v.as_deref());
        }
    }
}
