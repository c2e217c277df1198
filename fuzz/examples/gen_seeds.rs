//! Writes valid seed inputs for every fuzz target into `<dir>/<target>/` (default
//! `corpus/`): encoded requests and responses of every API and version, record batches of
//! every codec, coordinator records of every key and value version. The committed corpora
//! are these seeds after `cargo fuzz cmin` and fuzzing; rerun this to re-seed from scratch:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds -- fuzz/seeds
//! ```

use std::path::{Path, PathBuf};

use arus_fuzz::{
    CR_TXN, MODE_RAW_REQUEST, MODE_RESPONSE, RB_LOG_APPEND_TIME, RB_RECOMPRESS_NEXT,
    RB_REQUIRE_KEYS, RB_TIGHT_TIME, api_pairs, batch_flags_for, coordinator_input,
    request_selector,
};
use arus_protocol::coordinator as co;
use arus_protocol::messages::RequestHeader;
use arus_protocol::testing::Rng;
use arus_protocol::{BytesMut, Message, Request, Response, encode_request, encode_response};
use arus_records::{BatchBuilder, Compression, ControlType, compress, control_record_batch};
use arus_txn::records::{TxnRecord, encode_key, encode_record, encode_value};
use arus_txn::{TopicPartition, TxnLogValue, TxnState};

struct Out {
    dir: PathBuf,
    n: usize,
}

impl Out {
    fn new(root: &Path, target: &str) -> Out {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        Out { dir, n: 0 }
    }
    fn put(&mut self, data: &[u8]) {
        std::fs::write(self.dir.join(format!("seed-{:05}", self.n)), data).expect("write seed");
        self.n += 1;
    }
}

fn requests(root: &Path) -> usize {
    let mut out = Out::new(root, "request_decoder");
    let mut rng = Rng::new(0x5eed);
    for (i, (key, version)) in api_pairs().into_iter().enumerate() {
        let req = Request::random(key, &mut rng, version);
        let header = RequestHeader {
            request_api_key: key.key(),
            request_api_version: version,
            correlation_id: i as i32,
            client_id: Some("fuzz".into()),
        };
        let mut frame = BytesMut::new();
        encode_request(&header, &req, &mut frame).expect("encode request");
        // Size prefix, api key and version are the target's to write.
        let mut seed = request_selector(0, i).to_vec();
        seed.extend_from_slice(&frame[8..]);
        out.put(&seed);
        if i % 16 == 0 {
            let mut raw = request_selector(MODE_RAW_REQUEST, 0).to_vec();
            raw.extend_from_slice(&frame[4..]);
            out.put(&raw);
        }

        let resp = Response::random(key, &mut rng, version);
        let mut frame = BytesMut::new();
        encode_response(i as i32, key, version, &resp, &mut frame).expect("encode response");
        let mut seed = request_selector(MODE_RESPONSE, i).to_vec();
        seed.extend_from_slice(&frame[4..]);
        out.put(&seed);
    }
    out.n
}

fn batch(codec: Compression, keyed: bool, producer: bool, n: u8) -> Vec<u8> {
    let mut b = BatchBuilder::new(codec, 1_700_000_000_000);
    if producer {
        b = b.producer(4242, 3, 17, true);
    }
    for i in 0..n {
        let key = [b'k', i];
        b.push(
            1_700_000_000_000 + i64::from(i) * 10,
            (keyed || i % 2 == 0).then_some(&key[..]),
            Some(&[i; 24][..]),
            &[("h", Some(&[i][..])), ("n", None)],
        );
    }
    b.build().expect("build batch").to_vec()
}

fn record_batches(root: &Path) -> usize {
    let mut out = Out::new(root, "record_batch");
    for (ci, &codec) in Compression::ALL.iter().enumerate() {
        for (extra, keyed, producer, n) in [
            (0, true, false, 3),
            (RB_REQUIRE_KEYS, false, false, 4),
            (RB_RECOMPRESS_NEXT | RB_TIGHT_TIME, true, true, 2),
            (RB_LOG_APPEND_TIME | RB_REQUIRE_KEYS, true, false, 1),
        ] {
            let mut seed = vec![batch_flags_for(codec, extra)];
            seed.extend(batch(codec, keyed, producer, n));
            out.put(&seed);
        }
        // A bare compressed stream for `decompress` (flags % 5 picks the codec; codec bits 7
        // leave the attributes alone).
        let flags = (0x70..0x78u8)
            .find(|f| usize::from(*f) % 5 == ci)
            .expect("a flags byte for every codec");
        let mut seed = vec![flags];
        seed.extend(compress(codec, b"hello hello hello fuzz").expect("compress"));
        out.put(&seed);
    }
    // Two batches in one record set (refused by produce validation, framed by `batches`).
    let mut seed = vec![0x70];
    seed.extend(batch(Compression::None, true, false, 1));
    seed.extend(batch(Compression::Lz4, true, false, 1));
    out.put(&seed);
    // A transaction marker (control batch).
    let mut seed = vec![batch_flags_for(Compression::None, 0)];
    seed.extend_from_slice(&control_record_batch(
        ControlType::Commit,
        7,
        1,
        3,
        1_700_000_000_000,
    ));
    out.put(&seed);
    out.n
}

fn struct_bytes<M: Message>(m: &M, version: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.extend_from_slice(&version.to_be_bytes());
    m.encode(&mut b, version)
        .expect("encode coordinator struct");
    b.to_vec()
}

fn group_seeds<K: Message, V: Message>(
    out: &mut Out,
    rng: &mut Rng,
    key: fn(&mut Rng, i16) -> K,
    value: fn(&mut Rng, i16) -> V,
) {
    for kv in K::VERSIONS.0..=K::VERSIONS.1 {
        let k = struct_bytes(&key(rng, kv), kv);
        out.put(&coordinator_input(0, &k, None));
        for vv in V::VERSIONS.0..=V::VERSIONS.1 {
            let v = struct_bytes(&value(rng, vv), vv);
            out.put(&coordinator_input(0, &k, Some(&v)));
        }
    }
}

fn coordinator_records(root: &Path) -> usize {
    let mut out = Out::new(root, "coordinator_records");
    let mut rng = Rng::new(0xc0);
    let o = &mut out;
    let r = &mut rng;
    group_seeds(
        o,
        r,
        co::OffsetCommitKey::random,
        co::OffsetCommitValue::random,
    );
    group_seeds(
        o,
        r,
        co::GroupMetadataKey::random,
        co::GroupMetadataValue::random,
    );
    group_seeds(
        o,
        r,
        co::ConsumerGroupMetadataKey::random,
        co::ConsumerGroupMetadataValue::random,
    );
    group_seeds(
        o,
        r,
        co::ConsumerGroupPartitionMetadataKey::random,
        co::ConsumerGroupPartitionMetadataValue::random,
    );
    group_seeds(
        o,
        r,
        co::ConsumerGroupMemberMetadataKey::random,
        co::ConsumerGroupMemberMetadataValue::random,
    );
    group_seeds(
        o,
        r,
        co::ConsumerGroupTargetAssignmentMetadataKey::random,
        co::ConsumerGroupTargetAssignmentMetadataValue::random,
    );
    group_seeds(
        o,
        r,
        co::ConsumerGroupTargetAssignmentMemberKey::random,
        co::ConsumerGroupTargetAssignmentMemberValue::random,
    );
    group_seeds(
        o,
        r,
        co::ConsumerGroupCurrentMemberAssignmentKey::random,
        co::ConsumerGroupCurrentMemberAssignmentValue::random,
    );
    // An unknown record type (share group, key version 9).
    out.put(&coordinator_input(0, &[0, 9, 0, 1, b'g'], Some(&[0, 0])));

    for (i, &state) in TxnState::ALL.iter().enumerate() {
        let v = TxnLogValue {
            producer_id: 1000 + i as i64,
            producer_epoch: 2,
            timeout_ms: 60_000,
            state,
            partitions: vec![TopicPartition::new("a", 0), TopicPartition::new("b", 3)],
            last_update_ms: 1_700_000_000_000,
            start_ms: 1_699_999_999_000,
            prev_producer_id: if i % 2 == 0 { -1 } else { 999 },
            next_producer_id: if i % 3 == 0 { -1 } else { 1001 },
            client_transaction_version: (i % 3) as i16,
        };
        let key = encode_key(&format!("txn-{i}"));
        for version in [0, 1] {
            out.put(&coordinator_input(
                CR_TXN,
                &key,
                Some(&encode_value(&v, version)),
            ));
        }
    }
    let (k, _) = encode_record(&TxnRecord {
        transactional_id: "gone".into(),
        value: None,
    });
    out.put(&coordinator_input(CR_TXN, &k, None));
    out.n
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let r = requests(&root);
    let b = record_batches(&root);
    let c = coordinator_records(&root);
    println!(
        "seeds written to {}: request_decoder {r}, record_batch {b}, coordinator_records {c}",
        root.display()
    );
}
