//! The coordinator's rules, driven with injected time.

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::messages::{ConsumerProtocolSubscription, JoinGroupResponse, SyncGroupResponse};
use arus_protocol::{Bytes, BytesMut, ErrorCode, Message};

use crate::records::CoordinatorRecord;
use crate::{
    CommitParams, CommitPartition, Completion, Coordinator, Effects, GroupConfig, GroupState,
    JoinParams, Reply, SyncParams, Ticket,
};

const G: &str = "g";

fn cfg() -> GroupConfig {
    GroupConfig::default()
}

/// Consumer protocol subscription metadata (version 0) for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut out = BytesMut::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
    .encode(&mut out, 0)
    .unwrap();
    out.freeze()
}

fn join(member: &str, instance: Option<&str>, protocols: &[(&str, Bytes)]) -> JoinParams {
    JoinParams {
        group_id: G.into(),
        member_id: member.into(),
        group_instance_id: instance.map(String::from),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|(n, m)| (n.to_string(), m.clone()))
            .collect(),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: true,
        supports_skip_assignment: true,
    }
}

fn range() -> Vec<(&'static str, Bytes)> {
    vec![("range", subscription(&["t"]))]
}

fn sync(member: &str, generation: i32, assignments: &[(&str, &[u8])]) -> SyncParams {
    SyncParams {
        group_id: G.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::copy_from_slice(a)))
            .collect(),
    }
}

/// Completed joins/syncs found in effects, by ticket.
#[derive(Default)]
struct Done {
    joins: Vec<(Ticket, JoinGroupResponse)>,
    syncs: Vec<(Ticket, SyncGroupResponse)>,
    records: Vec<CoordinatorRecord>,
}

impl Done {
    fn absorb(&mut self, e: Effects) {
        for c in e.completions {
            match c {
                Completion::Join(t, r) => self.joins.push((t, r)),
                Completion::Sync(t, r) => self.syncs.push((t, r)),
            }
        }
        self.records.extend(e.records);
    }
    fn join(&mut self, t: Ticket) -> JoinGroupResponse {
        let i = self
            .joins
            .iter()
            .position(|(x, _)| *x == t)
            .unwrap_or_else(|| panic!("join {t} not completed"));
        self.joins.remove(i).1
    }
    fn sync(&mut self, t: Ticket) -> SyncGroupResponse {
        let i = self
            .syncs
            .iter()
            .position(|(x, _)| *x == t)
            .unwrap_or_else(|| panic!("sync {t} not completed"));
        self.syncs.remove(i).1
    }
}

fn now_join(r: Reply<JoinGroupResponse>) -> JoinGroupResponse {
    match r {
        Reply::Now(r) => r,
        Reply::Pending(t) => panic!("join {t} pending"),
    }
}

fn pending<T: std::fmt::Debug>(r: Reply<T>) -> Ticket {
    match r {
        Reply::Pending(t) => t,
        Reply::Now(r) => panic!("expected pending, got {r:?}"),
    }
}

fn now_sync(r: Reply<SyncGroupResponse>) -> SyncGroupResponse {
    match r {
        Reply::Now(r) => r,
        Reply::Pending(t) => panic!("sync {t} pending"),
    }
}

/// MEMBER_ID_REQUIRED then the real join: returns (member id, pending ticket).
fn join_two_step(c: &mut Coordinator, protocols: &[(&str, Bytes)], now: i64) -> (String, Ticket) {
    let first = now_join(c.join_group(join("", None, protocols), now));
    assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
    assert!(first.member_id.starts_with("c-"));
    let t = pending(c.join_group(join(&first.member_id, None, protocols), now));
    (first.member_id, t)
}

/// Forms a stable group of `n` dynamic members at t=0; returns member ids (leader first)
/// and the time at which it became stable.
fn stable_group(c: &mut Coordinator, n: usize) -> (Vec<String>, i64) {
    let mut d = Done::default();
    let mut members = Vec::new();
    for _ in 0..n {
        members.push(join_two_step(c, &range(), 0));
    }
    // Every joiner after the first extends the initial delay once (they all join at t=0).
    let mut t = 0;
    while d.joins.len() < n {
        t = c.next_deadline();
        c.tick(t);
        d.absorb(c.take_effects());
    }
    assert_eq!(t, if n == 1 { 3000 } else { 6000 });
    let mut leader = String::new();
    for (id, ticket) in &members {
        let r = d.join(*ticket);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.member_id, *id);
        leader = r.leader.clone();
        if r.leader == *id {
            assert_eq!(r.members.len(), n);
        } else {
            assert!(r.members.is_empty());
        }
    }
    let mut ids: Vec<String> = members.iter().map(|(id, _)| id.clone()).collect();
    ids.sort_by_key(|id| *id != leader);
    let followers: Vec<Ticket> = ids[1..]
        .iter()
        .map(|id| pending(c.sync_group(sync(id, 1, &[]), t)))
        .collect();
    let assignments: Vec<(&str, &[u8])> =
        ids.iter().map(|id| (id.as_str(), id.as_bytes())).collect();
    let leader_sync = now_sync(c.sync_group(sync(&ids[0], 1, &assignments), t));
    assert_eq!(leader_sync.error_code, 0);
    assert_eq!(
        leader_sync.assignment,
        Bytes::copy_from_slice(ids[0].as_bytes())
    );
    d.absorb(c.take_effects());
    for (id, ticket) in ids[1..].iter().zip(followers) {
        let r = d.sync(ticket);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.assignment, Bytes::copy_from_slice(id.as_bytes()));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
    }
    assert!(d.records.iter().any(|r| matches!(r, CoordinatorRecord::GroupMetadata { value: Some(v), .. } if v.generation == 1 && v.members.len() == n)));
    assert_eq!(c.group_state(G), Some(GroupState::Stable));
    (ids, t)
}

#[test]
fn one_member_joins_after_the_initial_delay_and_syncs() {
    let mut c = Coordinator::new(cfg(), 0);
    stable_group(&mut c, 1);
}

#[test]
fn many_members_form_one_generation_and_only_the_leader_assigns() {
    for n in [2, 3, 7] {
        let mut c = Coordinator::new(cfg(), 0);
        let (ids, _) = stable_group(&mut c, n);
        assert_eq!(ids.len(), n);
    }
}

#[test]
fn the_initial_delay_extends_while_members_keep_arriving() {
    let mut c = Coordinator::new(cfg(), 0);
    let (_, a) = join_two_step(&mut c, &range(), 0);
    assert_eq!(c.next_deadline(), 3000);
    let (_, b) = join_two_step(&mut c, &range(), 2000);
    c.tick(3000);
    // b arrived during the delay: another delay starts at 3000.
    assert!(c.take_effects().completions.is_empty());
    assert_eq!(c.next_deadline(), 6000);
    c.tick(6000);
    let mut d = Done::default();
    d.absorb(c.take_effects());
    assert_eq!(d.join(a).generation_id, 1);
    assert_eq!(d.join(b).generation_id, 1);
}

#[test]
fn the_initial_delay_never_exceeds_the_rebalance_timeout() {
    let mut c = Coordinator::new(
        GroupConfig {
            initial_rebalance_delay_ms: 4000,
            ..cfg()
        },
        0,
    );
    let mut p = join("", None, &range());
    p.require_known_member_id = false;
    p.rebalance_timeout_ms = 6000;
    let t = pending(c.join_group(p.clone(), 0));
    // Joiners keep arriving; the delays add up to the rebalance timeout at most.
    let mut now = 0;
    let mut done = None;
    while now <= 20_000 && done.is_none() {
        now += 1000;
        let _ = c.join_group(p.clone(), now);
        let mut d = Done::default();
        d.absorb(c.take_effects());
        if let Some(i) = d.joins.iter().position(|(x, _)| *x == t) {
            done = Some((now, d.joins.remove(i).1));
        }
    }
    let (at, r) = done.expect("completed");
    assert_eq!(r.error_code, 0);
    assert!(at <= 4000 + 6000, "completed at {at}");
}

#[test]
fn v3_joins_without_member_id_required() {
    let mut c = Coordinator::new(cfg(), 0);
    let mut p = join("", None, &range());
    p.require_known_member_id = false;
    let t = pending(c.join_group(p, 0));
    c.tick(3000);
    let mut d = Done::default();
    d.absorb(c.take_effects());
    let r = d.join(t);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.leader, r.member_id);
}

#[test]
fn a_changed_subscription_rebalances_and_everyone_rejoins() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 2);
    let follower = &ids[1];
    let changed = vec![("range", subscription(&["t", "u"]))];
    let tf = pending(c.join_group(join(follower, None, &changed), t + 10));
    assert_eq!(c.group_state(G), Some(GroupState::PreparingRebalance));
    // The leader learns of the rebalance from its heartbeat; commits are still accepted.
    assert_eq!(
        c.heartbeat(G, 1, &ids[0], None, t + 20),
        ErrorCode::RebalanceInProgress
    );
    // Everyone rejoined: the join phase completes at once.
    let rl = now_join(c.join_group(join(&ids[0], None, &range()), t + 30));
    let mut d = Done::default();
    d.absorb(c.take_effects());
    let rf = d.join(tf);
    assert_eq!(rl.generation_id, 2);
    assert_eq!(rf.generation_id, 2);
    assert_eq!(rl.members.len(), 2);
    assert_eq!(c.group_state(G), Some(GroupState::CompletingRebalance));
    // A commit now is refused until the new assignment is known.
    let commit = CommitParams {
        group_id: G.into(),
        generation_id: 2,
        member_id: ids[0].clone(),
        group_instance_id: None,
        retention_time_ms: -1,
        partitions: vec![CommitPartition {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: None,
        }],
    };
    assert_eq!(
        c.commit_offsets(commit, t + 40),
        Err(ErrorCode::RebalanceInProgress)
    );
}

#[test]
fn a_follower_rejoining_with_the_same_metadata_gets_the_current_generation() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 2);
    let r = now_join(c.join_group(join(&ids[1], None, &range()), t + 5));
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, ids[0]);
    assert_eq!(c.group_state(G), Some(GroupState::Stable));
}

#[test]
fn the_leader_leaving_elects_a_new_leader() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 3);
    assert_eq!(
        c.leave_group(G, &[(ids[0].clone(), None)], t + 1),
        Ok(vec![ErrorCode::None])
    );
    assert_eq!(c.group_state(G), Some(GroupState::PreparingRebalance));
    let t1 = pending(c.join_group(join(&ids[1], None, &range()), t + 2));
    let r2 = now_join(c.join_group(join(&ids[2], None, &range()), t + 3));
    let mut d = Done::default();
    d.absorb(c.take_effects());
    let r1 = d.join(t1);
    assert_eq!(r1.generation_id, 2);
    assert!(r1.leader == ids[1] || r1.leader == ids[2]);
    assert_eq!(r1.leader, r2.leader);
    // Unknown members leaving are reported per member.
    assert_eq!(
        c.leave_group(G, &[("nobody".into(), None)], t + 4),
        Ok(vec![ErrorCode::UnknownMemberId])
    );
}

#[test]
fn all_members_leaving_empties_the_group() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 1);
    c.leave_group(G, &[(ids[0].clone(), None)], t + 1).unwrap();
    // No member left to wait for: the (normal) join phase completes with an empty generation.
    c.tick(t + 1);
    assert_eq!(c.group_state(G), Some(GroupState::Empty));
    let e = c.take_effects();
    assert!(e.records.iter().any(|r| matches!(r, CoordinatorRecord::GroupMetadata { value: Some(v), .. } if v.generation == 2 && v.members.is_empty())));
}

#[test]
fn session_expiry_removes_a_silent_member() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 2);
    // The leader heartbeats, the follower does not.
    for k in 1..=3 {
        assert_eq!(
            c.heartbeat(G, 1, &ids[0], None, t + k * 3000),
            ErrorCode::None
        );
    }
    assert!(c.next_deadline() <= t + 10_000);
    c.tick(t + 10_000);
    assert_eq!(c.group_state(G), Some(GroupState::PreparingRebalance));
    assert_eq!(
        c.heartbeat(G, 1, &ids[1], None, t + 10_001),
        ErrorCode::UnknownMemberId
    );
    let r = now_join(c.join_group(join(&ids[0], None, &range()), t + 10_002));
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn members_that_do_not_rejoin_are_removed_at_the_rebalance_timeout() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 2);
    let changed = vec![("range", subscription(&["u"]))];
    let tl = pending(c.join_group(join(&ids[0], None, &changed), t + 1));
    // The follower keeps heartbeating (it is told to rejoin) but never does.
    for k in 1..10 {
        assert_eq!(
            c.heartbeat(G, 1, &ids[1], None, t + k * 3000),
            ErrorCode::RebalanceInProgress
        );
    }
    c.tick(t + 1 + 30_000);
    let mut d = Done::default();
    d.absorb(c.take_effects());
    let r = d.join(tl);
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.members.len(), 1);
    assert_eq!(
        c.heartbeat(G, 2, &ids[1], None, t + 30_002),
        ErrorCode::UnknownMemberId
    );
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut c = Coordinator::new(cfg(), 0);
    let (a, ta) = join_two_step(&mut c, &range(), 0);
    let (b, tb) = join_two_step(&mut c, &range(), 0);
    c.tick(3000);
    c.tick(6000); // the second joiner extended the initial delay
    let mut d = Done::default();
    d.absorb(c.take_effects());
    let leader = d.join(ta).leader;
    d.join(tb);
    let follower = if leader == a { b } else { a };
    now_sync(c.sync_group(sync(&leader, 1, &[]), 6001));
    // The follower keeps heartbeating but never syncs.
    for k in 1..10 {
        assert_eq!(
            c.heartbeat(G, 1, &leader, None, 6000 + k * 3000),
            ErrorCode::None
        );
        assert_eq!(
            c.heartbeat(G, 1, &follower, None, 6000 + k * 3000),
            ErrorCode::None
        );
    }
    c.tick(6000 + 30_000);
    assert_eq!(c.group_state(G), Some(GroupState::PreparingRebalance));
    assert_eq!(
        c.heartbeat(G, 1, &follower, None, 36_001),
        ErrorCode::UnknownMemberId
    );
}

#[test]
fn static_member_restart_keeps_its_assignment_without_rebalance() {
    let mut c = Coordinator::new(cfg(), 0);
    let mut d = Done::default();
    let t1 = pending(c.join_group(join("", Some("i1"), &range()), 0));
    let t2 = pending(c.join_group(join("", Some("i2"), &range()), 0));
    c.tick(3000);
    c.tick(6000); // the second joiner extended the initial delay
    d.absorb(c.take_effects());
    let r1 = d.join(t1);
    let r2 = d.join(t2);
    assert!(r1.member_id.starts_with("i1-"));
    let (leader, follower) = if r1.leader == r1.member_id {
        (r1.member_id.clone(), r2.member_id.clone())
    } else {
        (r2.member_id.clone(), r1.member_id.clone())
    };
    let fs = pending(c.sync_group(sync(&follower, 1, &[]), 3000));
    now_sync(c.sync_group(
        sync(&leader, 1, &[(&leader, b"L"), (&follower, b"F")]),
        3000,
    ));
    d.absorb(c.take_effects());
    assert_eq!(&d.sync(fs).assignment[..], b"F");
    let follower_instance = if follower.starts_with("i1-") {
        "i1"
    } else {
        "i2"
    };

    // The follower restarts: unknown member id, same instance id, same protocols.
    let r = now_join(c.join_group(join("", Some(follower_instance), &range()), 5000));
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1, "no new generation");
    assert_ne!(r.member_id, follower);
    assert!(!r.skip_assignment);
    assert_eq!(c.group_state(G), Some(GroupState::Stable));
    let mut s = sync(&r.member_id, 1, &[]);
    s.group_instance_id = Some(follower_instance.into());
    assert_eq!(&now_sync(c.sync_group(s, 5001)).assignment[..], b"F");
    // The old incarnation is fenced.
    assert_eq!(
        c.heartbeat(G, 1, &follower, Some(follower_instance), 5002),
        ErrorCode::FencedInstanceId
    );
    let mut stale = join(&follower, Some(follower_instance), &range());
    stale.require_known_member_id = true;
    assert_eq!(
        now_join(c.join_group(stale, 5003)).error_code,
        ErrorCode::FencedInstanceId.code()
    );
    let e = c.take_effects();
    assert!(e.records.iter().any(|r| matches!(r, CoordinatorRecord::GroupMetadata { value: Some(v), .. } if v.members.iter().any(|m| m.member_id == r_id(&v.members, follower_instance)))));

    // The leader restarts: v9 tells it to skip the assignment; older versions hide the
    // leadership behind the old leader id.
    let leader_instance = if follower_instance == "i1" {
        "i2"
    } else {
        "i1"
    };
    let r = now_join(c.join_group(join("", Some(leader_instance), &range()), 6000));
    assert!(r.skip_assignment);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 2);
    let mut old = join("", Some(leader_instance), &range());
    old.supports_skip_assignment = false;
    let r2 = now_join(c.join_group(old, 6001));
    assert!(!r2.skip_assignment);
    assert_eq!(
        r2.leader, r.member_id,
        "the previous leader id, not its own"
    );
    assert_ne!(r2.leader, r2.member_id);
    assert_eq!(c.group_state(G), Some(GroupState::Stable));
}

fn r_id(
    members: &[arus_protocol::coordinator::group_metadata_value::MemberMetadata],
    inst: &str,
) -> String {
    members
        .iter()
        .find(|m| m.group_instance_id.as_deref() == Some(inst))
        .map(|m| m.member_id.clone())
        .unwrap_or_default()
}

#[test]
fn a_static_member_with_new_protocols_triggers_a_rebalance() {
    let mut c = Coordinator::new(cfg(), 0);
    let t = pending(c.join_group(join("", Some("i1"), &range()), 0));
    c.tick(3000);
    let mut d = Done::default();
    d.absorb(c.take_effects());
    let id = d.join(t).member_id;
    now_sync(c.sync_group(sync(&id, 1, &[(&id, b"A")]), 3000));
    // Still compatible, but its vote now picks another protocol.
    let other = vec![
        ("roundrobin", subscription(&["t"])),
        ("range", subscription(&["t"])),
    ];
    // The only member rejoined, so the new generation forms at once.
    let r = now_join(c.join_group(join("", Some("i1"), &other), 4000));
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(c.group_state(G), Some(GroupState::CompletingRebalance));
}

#[test]
fn a_static_member_is_not_removed_when_it_misses_a_rebalance() {
    let mut c = Coordinator::new(cfg(), 0);
    let mut d = Done::default();
    let t1 = pending(c.join_group(join("", Some("i1"), &range()), 0));
    let (dynamic, t2) = join_two_step(&mut c, &range(), 0);
    c.tick(3000);
    c.tick(6000); // the second joiner extended the initial delay
    d.absorb(c.take_effects());
    let s1 = d.join(t1).member_id;
    d.join(t2);
    // The dynamic member rejoins; the static one stays away past the rebalance timeout but
    // keeps heartbeating within its session.
    let _ = c.join_group(
        join(&dynamic, None, &[("range", subscription(&["x"]))]),
        3100,
    );
    for k in 1..=10 {
        c.heartbeat(G, 1, &s1, Some("i1"), 3100 + k * 3000);
    }
    c.tick(3100 + 30_000);
    d.absorb(c.take_effects());
    assert!(c.describe(G).members.iter().any(|m| m.member_id == s1));
}

#[test]
fn group_max_size_refuses_extra_members() {
    let mut c = Coordinator::new(
        GroupConfig {
            max_size: 2,
            ..cfg()
        },
        0,
    );
    stable_group(&mut c, 2);
    let r = now_join(c.join_group(join("", None, &range()), 4000));
    // The extra member is refused once it comes back with its id.
    let r = if r.error_code == ErrorCode::MemberIdRequired.code() {
        now_join(c.join_group(join(&r.member_id, None, &range()), 4001))
    } else {
        r
    };
    assert_eq!(r.error_code, ErrorCode::GroupMaxSizeReached.code());
}

#[test]
fn join_validation_errors() {
    let mut c = Coordinator::new(cfg(), 0);
    let mut p = join("", None, &range());
    p.session_timeout_ms = 5999;
    assert_eq!(
        now_join(c.join_group(p.clone(), 0)).error_code,
        ErrorCode::InvalidSessionTimeout.code()
    );
    p.session_timeout_ms = 1_800_001;
    assert_eq!(
        now_join(c.join_group(p, 0)).error_code,
        ErrorCode::InvalidSessionTimeout.code()
    );
    let mut p = join("", None, &range());
    p.group_id = String::new();
    assert_eq!(
        now_join(c.join_group(p, 0)).error_code,
        ErrorCode::InvalidGroupId.code()
    );
    assert_eq!(
        now_join(c.join_group(join("ghost", None, &range()), 0)).error_code,
        ErrorCode::UnknownMemberId.code()
    );
    let mut p = join("", None, &[]);
    p.protocols.clear();
    assert_eq!(
        now_join(c.join_group(p, 0)).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    let (ids, t) = stable_group(&mut Coordinator::new(cfg(), 0), 1);
    let _ = (ids, t);
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 1);
    let mut other_type = join("", None, &range());
    other_type.protocol_type = "connect".into();
    assert_eq!(
        now_join(c.join_group(other_type, t)).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    let unsupported = vec![("sticky", subscription(&["t"]))];
    let r = now_join(c.join_group(join("", None, &unsupported), t));
    assert_eq!(r.error_code, ErrorCode::InconsistentGroupProtocol.code());
    assert_eq!(
        c.heartbeat(G, 7, &ids[0], None, t),
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        c.heartbeat("nope", 1, &ids[0], None, t),
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        now_sync(c.sync_group(sync(&ids[0], 9, &[]), t)).error_code,
        ErrorCode::IllegalGeneration.code()
    );
    assert_eq!(
        now_sync(c.sync_group(sync("x", 1, &[]), t)).error_code,
        ErrorCode::UnknownMemberId.code()
    );
    let mut s = sync(&ids[0], 1, &[]);
    s.protocol_name = Some("roundrobin".into());
    assert_eq!(
        now_sync(c.sync_group(s, t)).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
}

#[test]
fn the_protocol_is_chosen_by_vote() {
    let mut c = Coordinator::new(cfg(), 0);
    let s = subscription(&["t"]);
    let mut p1 = join("", None, &[("range", s.clone()), ("roundrobin", s.clone())]);
    p1.require_known_member_id = false;
    let mut p2 = join("", None, &[("roundrobin", s.clone()), ("range", s.clone())]);
    p2.require_known_member_id = false;
    let mut p3 = join(
        "",
        None,
        &[("roundrobin", s.clone()), ("sticky", s.clone())],
    );
    p3.require_known_member_id = false;
    let t1 = pending(c.join_group(p1, 0));
    pending(c.join_group(p2, 0));
    pending(c.join_group(p3, 0));
    c.tick(3000);
    c.tick(6000); // the second joiner extended the initial delay
    let mut d = Done::default();
    d.absorb(c.take_effects());
    assert_eq!(d.join(t1).protocol_name.as_deref(), Some("roundrobin"));
}

fn commit(generation: i32, member: &str, partitions: &[(&str, i32, i64)]) -> CommitParams {
    CommitParams {
        group_id: G.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        partitions: partitions
            .iter()
            .map(|(t, p, o)| CommitPartition {
                topic: t.to_string(),
                partition: *p,
                offset: *o,
                leader_epoch: 3,
                metadata: Some("meta".into()),
            })
            .collect(),
    }
}

#[test]
fn simple_commits_create_an_empty_group_and_fetch_reads_them() {
    let mut c = Coordinator::new(cfg(), 0);
    assert_eq!(
        c.commit_offsets(commit(-1, "", &[("t", 0, 10), ("t", 1, 20)]), 100),
        Ok(vec![ErrorCode::None, ErrorCode::None])
    );
    assert_eq!(c.group_state(G), Some(GroupState::Empty));
    assert_eq!(c.take_effects().records.len(), 2);
    let all = c.fetch_offsets(G, None);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.len(), 2);
    let some = c.fetch_offsets(G, Some(&[("t".into(), vec![1, 5])]));
    let e = some[0].1[0].1.clone().unwrap();
    assert_eq!(
        (e.offset, e.leader_epoch, e.metadata.as_str()),
        (20, 3, "meta")
    );
    assert!(some[0].1[1].1.is_none());
    assert!(c.fetch_offsets("other", None).is_empty());
    // A generation for a group that does not exist is refused.
    let mut p = commit(3, "m", &[("t", 0, 1)]);
    p.group_id = "other".into();
    assert_eq!(c.commit_offsets(p, 100), Err(ErrorCode::IllegalGeneration));
}

#[test]
fn commits_are_checked_against_the_generation_and_member() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 1);
    assert_eq!(
        c.commit_offsets(commit(1, &ids[0], &[("t", 0, 1)]), t),
        Ok(vec![ErrorCode::None])
    );
    assert_eq!(
        c.commit_offsets(commit(0, &ids[0], &[("t", 0, 1)]), t),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        c.commit_offsets(commit(1, "stranger", &[("t", 0, 1)]), t),
        Err(ErrorCode::UnknownMemberId)
    );
    // -1 (simple commit) is only for groups without members.
    assert_eq!(
        c.commit_offsets(commit(-1, "", &[("t", 0, 1)]), t),
        Err(ErrorCode::UnknownMemberId)
    );
    let mut big = commit(1, &ids[0], &[("t", 0, 1), ("t", 1, 1)]);
    big.partitions[0].metadata = Some("x".repeat(4097));
    assert_eq!(
        c.commit_offsets(big, t),
        Ok(vec![ErrorCode::OffsetMetadataTooLarge, ErrorCode::None])
    );
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention_and_the_group_goes() {
    let cfg = GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1000,
        ..cfg()
    };
    let mut c = Coordinator::new(cfg, 0);
    let (ids, t) = stable_group(&mut c, 1);
    c.commit_offsets(commit(1, &ids[0], &[("t", 0, 1)]), t)
        .unwrap();
    c.leave_group(G, &[(ids[0].clone(), None)], t + 1).unwrap();
    c.tick(t + 1);
    assert_eq!(c.group_state(G), Some(GroupState::Empty));
    c.take_effects();
    // A member-less group keeps its offsets for the retention period after it emptied…
    c.tick(t + 1 + 59_000);
    assert_eq!(c.fetch_offsets(G, None).len(), 1);
    // …then loses them, and the group itself goes.
    c.tick(t + 1 + 61_000);
    assert!(c.fetch_offsets(G, None).is_empty());
    assert_eq!(c.group_state(G), None);
    let e = c.take_effects();
    assert!(e.records.contains(&CoordinatorRecord::OffsetCommit {
        group: G.into(),
        topic: "t".into(),
        partition: 0,
        value: None
    }));
    assert!(e.records.contains(&CoordinatorRecord::GroupMetadata {
        group: G.into(),
        value: None
    }));
}

#[test]
fn simple_group_offsets_expire_by_commit_time_and_explicit_retention_wins() {
    let cfg = GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1000,
        ..cfg()
    };
    let mut c = Coordinator::new(cfg, 0);
    c.commit_offsets(commit(-1, "", &[("t", 0, 1)]), 0).unwrap();
    let mut p = commit(-1, "", &[("t", 1, 1)]);
    p.retention_time_ms = 5000;
    c.commit_offsets(p, 0).unwrap();
    c.commit_offsets(commit(-1, "", &[("t", 2, 1)]), 50_000)
        .unwrap();
    c.tick(6000);
    assert_eq!(
        c.fetch_offsets(G, None)[0].1.len(),
        2,
        "explicit retention expired"
    );
    c.tick(61_000);
    let left = c.fetch_offsets(G, None);
    assert_eq!(left[0].1.len(), 1);
    assert_eq!(left[0].1[0].0, 2);
}

#[test]
fn offsets_kept_for_a_consumer_group_do_not_expire() {
    let cfg = GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1000,
        ..cfg()
    };
    let mut c = Coordinator::new(cfg, 0);
    c.commit_offsets(commit(-1, "", &[("kept", 0, 1), ("free", 0, 1)]), 0)
        .unwrap();
    // The driver marks the topics a live KIP-848 group subscribes to.
    c.set_offsets_kept(BTreeMap::from([(
        G.to_string(),
        BTreeSet::from(["kept".to_string()]),
    )]));
    c.tick(61_000);
    let left = c.fetch_offsets(G, None);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, "kept");
    assert!(c.has_offsets(G));
}

#[test]
fn an_empty_group_gives_up_its_metadata_but_keeps_its_offsets() {
    let mut c = Coordinator::new(cfg(), 0);
    c.commit_offsets(commit(-1, "", &[("t", 0, 5)]), 0).unwrap();
    c.take_effects();
    assert!(c.is_empty_group(G));
    assert!(c.remove_empty_group_metadata(G, 10));
    assert_eq!(
        c.take_effects().records,
        vec![CoordinatorRecord::GroupMetadata {
            group: G.into(),
            value: None
        }]
    );
    assert_eq!(
        c.fetch_offsets(G, None)[0].1[0].1.as_ref().unwrap().offset,
        5
    );
    // A group with members is not touched.
    let mut c = Coordinator::new(cfg(), 0);
    stable_group(&mut c, 1);
    assert!(!c.is_empty_group(G));
    assert!(!c.remove_empty_group_metadata(G, 10));
}

#[test]
fn describe_list_and_delete() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 2);
    let d = c.describe(G);
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.protocol_data, "range");
    assert_eq!(d.members.len(), 2);
    assert!(!d.members[0].member_assignment.is_empty());
    assert_eq!(c.describe("nope").group_state, "Dead");
    let l = c.list();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].state, GroupState::Stable);
    assert_eq!(
        c.delete_groups(&[G.into(), "nope".into()], t),
        vec![ErrorCode::NonEmptyGroup, ErrorCode::GroupIdNotFound]
    );
    c.commit_offsets(commit(1, &ids[0], &[("t", 0, 1)]), t)
        .unwrap();
    for id in &ids {
        c.leave_group(G, &[(id.clone(), None)], t + 1).unwrap();
    }
    c.tick(t + 1);
    c.take_effects();
    assert_eq!(c.delete_groups(&[G.into()], t + 2), vec![ErrorCode::None]);
    let e = c.take_effects();
    assert_eq!(e.records.len(), 2, "offset and group tombstones");
    assert!(c.list().is_empty());
}

#[test]
fn offset_delete_respects_subscriptions() {
    let mut c = Coordinator::new(cfg(), 0);
    let (ids, t) = stable_group(&mut c, 1);
    c.commit_offsets(commit(1, &ids[0], &[("t", 0, 1), ("u", 0, 1)]), t)
        .unwrap();
    let r = c
        .delete_offsets(G, &[("t".into(), vec![0]), ("u".into(), vec![0])], t)
        .unwrap();
    assert_eq!(r[0].1, vec![(0, ErrorCode::GroupSubscribedToTopic)]);
    assert_eq!(r[1].1, vec![(0, ErrorCode::None)]);
    assert_eq!(c.fetch_offsets(G, None).len(), 1);
    assert_eq!(
        c.delete_offsets("nope", &[], t),
        Err(ErrorCode::GroupIdNotFound)
    );
}

#[test]
fn replaying_the_records_restores_groups_and_offsets() {
    let mut c = Coordinator::new(cfg(), 0);
    let mut records = Vec::new();
    let (ids, t) = stable_group(&mut c, 2);
    // stable_group consumed the effects; rebuild from a fresh run that keeps them.
    let _ = ids;
    let mut c = Coordinator::new(cfg(), 0);
    let mut d = Done::default();
    let (a, ta) = join_two_step(&mut c, &range(), 0);
    let (b, tb) = join_two_step(&mut c, &range(), 0);
    c.tick(3000);
    c.tick(6000); // the second joiner extended the initial delay
    d.absorb(c.take_effects());
    let leader = d.join(ta).leader;
    d.join(tb);
    let _ = c.sync_group(sync(&leader, 1, &[(&a, b"A"), (&b, b"B")]), t);
    c.commit_offsets(commit(1, &a, &[("t", 0, 42)]), t).unwrap();
    let mut p = commit(-1, "", &[("t", 0, 7)]);
    p.group_id = "simple".into();
    c.commit_offsets(p, t).unwrap();
    d.absorb(c.take_effects());
    records.append(&mut d.records);

    let mut fresh = Coordinator::new(cfg(), 0);
    for r in records {
        fresh.replay(r, 10_000);
    }
    fresh.finish_loading(10_000);
    assert_eq!(fresh.group_state(G), Some(GroupState::Stable));
    let desc = fresh.describe(G);
    assert_eq!(desc.members.len(), 2);
    assert_eq!(desc.protocol_data, "range");
    assert_eq!(
        fresh.fetch_offsets(G, None)[0].1[0]
            .1
            .as_ref()
            .unwrap()
            .offset,
        42
    );
    assert_eq!(
        fresh.fetch_offsets("simple", None)[0].1[0]
            .1
            .as_ref()
            .unwrap()
            .offset,
        7
    );
    // Loaded members carry on in generation 1 and must heartbeat within their session.
    assert_eq!(fresh.heartbeat(G, 1, &a, None, 12_000), ErrorCode::None);
    fresh.tick(10_000 + 10_001);
    assert_eq!(fresh.group_state(G), Some(GroupState::PreparingRebalance));
}

#[test]
fn next_deadline_is_exact() {
    let mut c = Coordinator::new(cfg(), 0);
    assert_eq!(c.next_deadline(), 600_000, "only the retention check");
    let (_, _) = join_two_step(&mut c, &range(), 100);
    assert_eq!(c.next_deadline(), 3100, "initial rebalance delay");
}

#[test]
fn a_stable_consumer_group_loses_only_offsets_of_topics_it_no_longer_reads() {
    let cfg = GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1000,
        ..cfg()
    };
    let mut c = Coordinator::new(cfg, 0);
    let (ids, t) = stable_group(&mut c, 1);
    c.commit_offsets(commit(1, &ids[0], &[("t", 0, 1), ("old", 0, 1)]), t)
        .unwrap();
    for k in 1..=30 {
        c.heartbeat(G, 1, &ids[0], None, t + k * 3000);
    }
    let left = c.fetch_offsets(G, None);
    assert_eq!(left.len(), 1, "only the subscribed topic keeps its offset");
    assert_eq!(left[0].0, "t");
}

/// Transactional offset commits (TxnOffsetCommit) and their markers.
mod pending_members;
mod txn;

/// Kafka's `onUnloaded`: the groups of a partition no longer led here go, their pending
/// joins are answered NOT_COORDINATOR; the other groups and their deadlines stay.
#[test]
fn unloading_forgets_only_the_selected_groups_and_answers_their_waiters() {
    let mut c = Coordinator::new(cfg(), 0);
    let (_, ticket) = join_two_step(&mut c, &range(), 0);
    let mut other = commit(-1, "", &[("t", 0, 5)]);
    other.group_id = "other".into();
    c.commit_offsets(other, 0).unwrap();
    c.take_effects();
    assert_eq!(c.unload_where(|g| g == G), 1);
    let fx = c.take_effects();
    assert!(fx.records.is_empty());
    assert!(matches!(
        fx.completions.as_slice(),
        [Completion::Join(t, r)] if *t == ticket && r.error_code == ErrorCode::NotCoordinator.code()
    ));
    assert_eq!(c.group_state(G), None);
    assert!(c.has_offsets("other"));
    // Loading the selected groups again arms only their deadlines.
    c.finish_loading_where(0, |g| g == G);
    assert!(c.take_effects().completions.is_empty());
}
