//! Random command sequences never produce a state where a fenced broker leads a partition
//! or a leader is outside its ISR.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Cmd {
    Register(i32),
    Heartbeat(i32),
    Shutdown(i32),
    Advance(i64),
    Create(u8, i32, i16),
    Delete(u8),
    AddPartitions(u8, i32),
    Elect,
    Unregister(i32),
    /// The leader of partition 0 of topic `t` proposes an ISR of its live replicas, or
    /// shrinks to itself.
    AlterIsr(u8, bool),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (0..5i32).prop_map(Cmd::Register),
        (0..5i32).prop_map(Cmd::Heartbeat),
        (0..5i32).prop_map(Cmd::Heartbeat),
        (0..5i32).prop_map(Cmd::Shutdown),
        (0..12_000i64).prop_map(Cmd::Advance),
        (0..4u8, 1..6i32, 1..4i16).prop_map(|(t, p, r)| Cmd::Create(t, p, r)),
        (0..4u8).prop_map(Cmd::Delete),
        (0..4u8, 1..4i32).prop_map(|(t, n)| Cmd::AddPartitions(t, n)),
        Just(Cmd::Elect),
        (0..5i32).prop_map(Cmd::Unregister),
        (0..4u8, any::<bool>()).prop_map(|(t, grow)| Cmd::AlterIsr(t, grow)),
    ]
}

fn run(elr: bool, cmds: Vec<Cmd>) -> Harness {
    let mut h = Harness::new(elr);
    for c in cmds {
        match c {
            Cmd::Register(id) => {
                let _ = h.register(id, if id % 2 == 0 { Some("a") } else { Some("b") });
            }
            Cmd::Heartbeat(id) | Cmd::Shutdown(id) => {
                if h.epochs.contains_key(&id) {
                    let req = h.heartbeat_req(id, false, matches!(c, Cmd::Shutdown(_)));
                    if let Ok(out) = h.c.broker_heartbeat(&req, h.next_offset, h.now) {
                        h.apply(&out.records);
                    }
                }
            }
            Cmd::Advance(ms) => {
                h.now += ms;
                loop {
                    let recs = h.c.tick(h.now);
                    if recs.is_empty() {
                        break;
                    }
                    h.apply(&recs);
                }
            }
            Cmd::Create(t, p, r) => {
                let _ = h.create(&format!("t{t}"), p, r);
            }
            Cmd::Delete(t) => {
                let req = arus_protocol::messages::DeleteTopicsRequest {
                    topic_names: vec![format!("t{t}")],
                    ..Default::default()
                };
                let out = h.c.delete_topics(&req);
                h.apply(&out.records);
            }
            Cmd::AddPartitions(t, n) => {
                let name = format!("t{t}");
                if let Some(info) = h.c.state().topic_by_name(&name) {
                    let req = arus_protocol::messages::CreatePartitionsRequest {
                        topics: vec![arus_protocol::messages::create_partitions_request::CreatePartitionsTopic {
                            name,
                            count: info.partitions.len() as i32 + n,
                            assignments: None,
                        }],
                        ..Default::default()
                    };
                    let out = h.c.create_partitions(&req).unwrap();
                    h.apply(&out.records);
                }
            }
            Cmd::Elect => {
                let req = arus_protocol::messages::ElectLeadersRequest {
                    election_type: 0,
                    topic_partitions: None,
                    ..Default::default()
                };
                let out = h.c.elect_leaders(&req).unwrap();
                h.apply(&out.records);
            }
            Cmd::AlterIsr(t, grow) => {
                let name = format!("t{t}");
                let Some(topic) = h.c.state().topic_by_name(&name) else {
                    continue;
                };
                let p = topic.partitions[&0].clone();
                if p.leader < 0 {
                    continue;
                }
                let isr: Vec<i32> = if grow {
                    p.replicas
                        .iter()
                        .copied()
                        .filter(|&r| h.c.state().is_active(r) || r == p.leader)
                        .collect()
                } else {
                    vec![p.leader]
                };
                let req = super::alter_partition::alter_req(&h, &name, 0, &isr);
                if let Ok(out) = h.c.alter_partition(&req, 3) {
                    h.apply(&out.records);
                }
            }
            Cmd::Unregister(id) => {
                if let Ok(out) = h.c.unregister_broker(id) {
                    h.apply(&out.records);
                    h.epochs.remove(&id);
                }
            }
        }
        h.check_invariants();
    }
    h
}

#[test]
fn the_command_mix_reaches_fenced_leaders_moving() {
    // A fixed sequence showing the generator's commands do exercise fencing with leaders.
    let mut cmds = vec![Cmd::Register(0), Cmd::Register(1), Cmd::Register(2)];
    cmds.extend([Cmd::Heartbeat(0), Cmd::Heartbeat(1), Cmd::Heartbeat(2)]);
    cmds.push(Cmd::Create(0, 5, 2));
    cmds.push(Cmd::Advance(5_000));
    // Broker 1 is alone on rack "b", so it holds a replica of every partition and leads
    // some; it stops heartbeating.
    cmds.extend([Cmd::Heartbeat(0), Cmd::Heartbeat(2)]);
    cmds.push(Cmd::Advance(5_000));
    let h = run(true, cmds);
    assert!(h.c.state().brokers[&1].fenced);
    let t = h.c.state().topic_by_name("t0").unwrap();
    assert_eq!(t.partitions.len(), 5);
    assert!(
        t.partitions
            .values()
            .all(|p| p.leader == 0 || p.leader == 2)
    );
    assert!(
        t.partitions.values().any(|p| p.leader_epoch > 0),
        "{:?}",
        t.partitions
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_fenced_leader_and_no_leader_outside_the_isr_with_elr(cmds in proptest::collection::vec(cmd(), 1..60)) {
        run(true, cmds);
    }

    #[test]
    fn no_fenced_leader_and_no_leader_outside_the_isr_without_elr(cmds in proptest::collection::vec(cmd(), 1..60)) {
        run(false, cmds);
    }
}
