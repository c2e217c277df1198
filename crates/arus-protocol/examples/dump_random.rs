//! Dumps random encoded requests/responses (one `Name version hex` per line) for
//! `scripts/diff_kafka_python.py`.
use arus_protocol::testing::Rng;
use arus_protocol::{ApiKey, BytesMut, Request, Response};
fn main() {
    for &key in ApiKey::all() {
        let (lo, hi) = key.valid_versions();
        for v in lo..=hi {
            for i in 0..4u64 {
                let mut rng = Rng::new(i * 1000 + v as u64 + ((key as u64) << 20));
                let r = Request::random(key, &mut rng, v);
                let mut o = BytesMut::new();
                r.encode(&mut o, v).unwrap();
                let hex: String = o.iter().map(|b| format!("{b:02x}")).collect();
                println!("{}Request {v} {hex}", key.name());
                let r = Response::random(key, &mut rng, v);
                let mut o = BytesMut::new();
                r.encode(&mut o, v).unwrap();
                let hex: String = o.iter().map(|b| format!("{b:02x}")).collect();
                println!("{}Response {v} {hex}", key.name());
            }
        }
    }
}
