//! Differential test: 1500 random cases decided by Kafka 4.4.0's own `PartitionChangeBuilder`
//! (printed by `kafka-diff/PartitionChangeDump.java` against the kafka-metadata 4.4.0 jar,
//! fixed seed) must be decided identically here: same leader, ISR, ELR, last known ELR and
//! leader recovery state in the record, or no record at all.

use arus_protocol::Uuid;

use crate::partition_change::{ChangeContext, Election, PartitionChangeBuilder};
use crate::state::{DIR_MIGRATING, PartitionInfo};

const CASES: &str = include_str!("fixtures/partition_change_kafka44.txt");

fn list(s: &str) -> Option<Vec<i32>> {
    let s = s.trim();
    if s == "-" {
        return None;
    }
    let inner = s.trim_start_matches('[').trim_end_matches(']');
    Some(if inner.is_empty() {
        Vec::new()
    } else {
        inner.split(',').map(|x| x.parse().unwrap()).collect()
    })
}

fn show(v: &Option<Vec<i32>>) -> String {
    match v {
        None => "-".into(),
        Some(v) => format!(
            "[{}]",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

#[test]
fn partition_changes_match_kafka_4_4() {
    let mut checked = 0;
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let (input, expected) = line.split_once(" => ").unwrap();
        let f: Vec<&str> = input.split(" | ").collect();
        let replicas = list(f[0]).unwrap();
        let partition = PartitionInfo {
            directories: vec![DIR_MIGRATING; replicas.len()],
            replicas,
            isr: list(f[1]).unwrap(),
            removing_replicas: vec![],
            adding_replicas: vec![],
            elr: list(f[2]).unwrap(),
            last_known_elr: list(f[3]).unwrap(),
            leader: f[4].parse().unwrap(),
            leader_recovery_state: f[5].parse().unwrap(),
            leader_epoch: 3,
            partition_epoch: 5,
        };
        let acceptable = list(f[6]).unwrap();
        let ok = |r: i32| acceptable.contains(&r);
        let dir = |_| DIR_MIGRATING;
        let ctx = ChangeContext {
            is_acceptable_leader: &ok,
            min_isr: f[10].parse().unwrap(),
            elr_enabled: f[9] == "true",
            bump_epoch_on_isr_shrink: false,
            directory_assignment: true,
            default_dir: &dir,
        };
        let election = match f[8] {
            "PREFERRED" => Election::Preferred,
            "ONLINE" => Election::Online,
            _ => Election::Unclean,
        };
        let mut b =
            PartitionChangeBuilder::new(&partition, Uuid([0; 16]), 0, ctx).election(election);
        if let Some(isr) = list(f[7]) {
            b = b.target_isr(isr);
        }
        if f[11] != "-" {
            b = b.unclean_shutdown_replicas(vec![f[11].parse().unwrap()]);
        }
        if f[12] != "-" {
            b = b.target_leader_recovery_state(f[12].parse().unwrap());
        }
        let got = match b.build() {
            None => "NOOP".to_owned(),
            Some(r) => format!(
                "{} {} {} {} {}",
                r.leader,
                show(&r.isr),
                show(&r.eligible_leader_replicas),
                show(&r.last_known_elr),
                r.leader_recovery_state
            ),
        };
        assert_eq!(got, expected, "case: {input}");
        checked += 1;
    }
    assert_eq!(checked, 1500);
}
