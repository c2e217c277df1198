//! Differential test: 500 random clusters (ids up to 39 in Java `HashMap` order, up to eight
//! racks, some fenced brokers) placed by Kafka 4.4.0's own `StripedReplicaPlacer` seeded with
//! `new Random(seed)` (printed by `kafka-diff/PlacementDump.java`) must be placed identically
//! here, errors included.

use crate::java_random::JavaRandom;
use crate::placement::{UsableBroker, place};

const CASES: &str = include_str!("fixtures/placement_kafka44.txt");

#[test]
fn placements_match_kafka_4_4() {
    let mut checked = 0;
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let (input, expected) = line.split_once(" => ").unwrap();
        let f: Vec<&str> = input.split(" | ").collect();
        let seed: i64 = f[0].parse().unwrap();
        let brokers: Vec<UsableBroker> = f[1]
            .split(',')
            .map(|b| {
                let p: Vec<&str> = b.split(':').collect();
                UsableBroker {
                    id: p[0].parse().unwrap(),
                    rack: (p[1] != "-").then(|| p[1].to_owned()),
                    fenced: p[2] == "true",
                }
            })
            .collect();
        let parts: i32 = f[2].parse().unwrap();
        let rf: i32 = f[3].parse().unwrap();
        let got = match place(&mut JavaRandom::new(seed), &brokers, parts, rf) {
            Ok(a) => a
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect::<Vec<_>>()
                .join(";"),
            Err(e) => format!("ERR {e}"),
        };
        assert_eq!(got, expected, "case: {input}");
        checked += 1;
    }
    assert_eq!(checked, 500);
}
