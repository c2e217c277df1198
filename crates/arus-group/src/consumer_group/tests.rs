//! Scenario tests of the KIP-848 state machine with simulated clients and injected time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use arus_protocol::messages::ConsumerGroupHeartbeatRequest;
use arus_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use arus_protocol::{ErrorCode, Uuid};
use rand::{Rng, SeedableRng};

use super::*;
use crate::records::{decode_record, encode_record};

type Meta = BTreeMap<String, (Uuid, i32)>;

fn tid(n: u8) -> Uuid {
    Uuid([n; 16])
}

fn meta(topics: &[(&str, u8, i32)]) -> Meta {
    topics
        .iter()
        .map(|(n, id, p)| (n.to_string(), (tid(*id), *p)))
        .collect()
}

const CTX: HeartbeatContext<'static> = HeartbeatContext {
    client_id: "client",
    client_host: "/127.0.0.1",
    api_version: 1,
};

/// A consumer as the Java client behaves: joins with epoch 0, heartbeats its epoch and the
/// partitions it owns, adopts each assignment it receives (revoking what is gone).
#[derive(Clone, Debug)]
struct Client {
    group: String,
    id: String,
    instance: Option<String>,
    topics: Vec<String>,
    regex: Option<String>,
    assignor: Option<String>,
    epoch: i32,
    owned: Assignment,
    joined: bool,
}

impl Client {
    fn new(group: &str, id: &str, topics: &[&str]) -> Client {
        Client {
            group: group.into(),
            id: id.into(),
            instance: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            regex: None,
            assignor: None,
            epoch: 0,
            owned: Assignment::new(),
            joined: false,
        }
    }

    fn request(&self) -> ConsumerGroupHeartbeatRequest {
        let owned = Some(
            self.owned
                .iter()
                .map(|(t, ps)| TopicPartitions {
                    topic_id: *t,
                    partitions: ps.iter().copied().collect(),
                })
                .collect(),
        );
        if !self.joined {
            ConsumerGroupHeartbeatRequest {
                group_id: self.group.clone(),
                member_id: self.id.clone(),
                member_epoch: 0,
                instance_id: self.instance.clone(),
                rack_id: None,
                rebalance_timeout_ms: 300_000,
                subscribed_topic_names: Some(self.topics.clone()),
                subscribed_topic_regex: self.regex.clone(),
                server_assignor: self.assignor.clone(),
                topic_partitions: Some(vec![]),
            }
        } else {
            ConsumerGroupHeartbeatRequest {
                group_id: self.group.clone(),
                member_id: self.id.clone(),
                member_epoch: self.epoch,
                topic_partitions: owned,
                ..Default::default()
            }
        }
    }

    fn heartbeat(
        &mut self,
        cg: &mut ConsumerGroups,
        now: i64,
        md: &dyn TopicMetadataSource,
    ) -> Result<Vec<CoordinatorRecord>, GroupError> {
        let req = self.request();
        self.send(cg, now, md, &req)
    }

    /// Sends `req` as this client and adopts the response.
    fn send(
        &mut self,
        cg: &mut ConsumerGroups,
        now: i64,
        md: &dyn TopicMetadataSource,
        req: &ConsumerGroupHeartbeatRequest,
    ) -> Result<Vec<CoordinatorRecord>, GroupError> {
        let (resp, records) = cg.heartbeat(now, &CTX, req, md)?;
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.heartbeat_interval_ms, 5000);
        assert_eq!(resp.member_id.as_deref(), Some(self.id.as_str()));
        self.joined = true;
        self.epoch = resp.member_epoch;
        if let Some(a) = resp.assignment {
            self.owned = a
                .topic_partitions
                .iter()
                .filter(|t| !t.partitions.is_empty())
                .map(|t| (t.topic_id, t.partitions.iter().copied().collect()))
                .collect();
        }
        Ok(records)
    }

    fn leave(
        &mut self,
        cg: &mut ConsumerGroups,
        now: i64,
        md: &dyn TopicMetadataSource,
        epoch: i32,
    ) -> Vec<CoordinatorRecord> {
        self.try_leave(cg, now, md, epoch).unwrap()
    }

    fn try_leave(
        &mut self,
        cg: &mut ConsumerGroups,
        now: i64,
        md: &dyn TopicMetadataSource,
        epoch: i32,
    ) -> Result<Vec<CoordinatorRecord>, GroupError> {
        let req = ConsumerGroupHeartbeatRequest {
            group_id: self.group.clone(),
            member_id: self.id.clone(),
            member_epoch: epoch,
            instance_id: self.instance.clone(),
            ..Default::default()
        };
        let res = cg.heartbeat(now, &CTX, &req, md);
        self.owned.clear();
        self.joined = false;
        self.epoch = 0;
        let (resp, records) = res?;
        assert_eq!((resp.error_code, resp.member_epoch), (0, epoch));
        Ok(records)
    }

    fn count(&self) -> usize {
        member::assignment_size(&self.owned)
    }
}

/// No partition is owned by two clients at once.
fn assert_exclusive(clients: &[Client]) {
    let mut seen = BTreeSet::new();
    for c in clients {
        for (t, ps) in &c.owned {
            for p in ps {
                assert!(
                    seen.insert((*t, *p)),
                    "partition {t}-{p} owned twice: {clients:#?}"
                );
            }
        }
    }
}

/// Heartbeats every client in turn until the group is Stable; returns the rounds used.
fn converge(
    cg: &mut ConsumerGroups,
    clients: &mut [Client],
    now: &mut i64,
    md: &dyn TopicMetadataSource,
) -> usize {
    for round in 1..=50 {
        for c in clients.iter_mut() {
            c.heartbeat(cg, *now, md).unwrap();
        }
        *now += 100;
        assert_exclusive(clients);
        let g = cg.group(&clients[0].group).unwrap();
        if g.state() == ConsumerGroupState::Stable
            && clients.iter().all(|c| c.epoch == g.assignment_epoch)
            && clients
                .iter()
                .all(|c| c.owned == g.members[&c.id].assigned_partitions)
        {
            return round;
        }
    }
    panic!("did not converge: {:#?}", cg.group(&clients[0].group));
}

fn new_cg() -> ConsumerGroups {
    ConsumerGroups::new(ConsumerGroupConfig::default())
}

#[test]
fn three_members_split_six_partitions() {
    let md = meta(&[("t", 1, 6)]);
    let mut cg = new_cg();
    let mut now = 1_000;
    let mut clients = vec![
        Client::new("g", "a", &["t"]),
        Client::new("g", "b", &["t"]),
        Client::new("g", "c", &["t"]),
    ];
    // First member: creates the group at epoch 1 and gets everything.
    let recs = clients[0].heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(clients[0].epoch, 1);
    assert_eq!(clients[0].count(), 6);
    assert_eq!(cg.state_name("g"), "Stable");
    // Kafka's record order for a join: subscription, subscription metadata, group epoch,
    // target assignment member + epoch, current assignment.
    let kinds: Vec<&str> = recs
        .iter()
        .map(|r| match r {
            CoordinatorRecord::ConsumerGroupMemberMetadata { .. } => "member",
            CoordinatorRecord::ConsumerGroupPartitionMetadata { .. } => "partitions",
            CoordinatorRecord::ConsumerGroupMetadata { .. } => "epoch",
            CoordinatorRecord::ConsumerGroupTargetAssignmentMember { .. } => "target",
            CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata { .. } => "target-epoch",
            CoordinatorRecord::ConsumerGroupCurrentMemberAssignment { .. } => "current",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "member",
            "partitions",
            "epoch",
            "target",
            "target-epoch",
            "current"
        ]
    );

    // b joins: group epoch 2, new target; b waits for a to release.
    clients[1].heartbeat(&mut cg, now, &md).unwrap();
    let g = cg.group("g").unwrap();
    assert_eq!((g.group_epoch, g.assignment_epoch), (2, 2));
    assert_eq!(clients[1].epoch, 2);
    assert_eq!(clients[1].count(), 0, "a still owns everything");
    assert_eq!(g.members["b"].state, MemberState::UnreleasedPartitions);
    assert_eq!(cg.state_name("g"), "Reconciling");
    // c joins: epoch 3.
    clients[2].heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(cg.group("g").unwrap().group_epoch, 3);
    // a's heartbeat: must revoke 4 partitions, stays at epoch 1.
    clients[0].heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(clients[0].epoch, 1);
    assert_eq!(clients[0].count(), 2);
    assert_eq!(
        cg.group("g").unwrap().members["a"].state,
        MemberState::UnrevokedPartitions
    );
    // Nobody else gets a's partitions before a acknowledges the revocation.
    clients[1].heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(clients[1].count(), 0);
    assert_exclusive(&clients);
    let rounds = converge(&mut cg, &mut clients, &mut now, &md);
    assert!(rounds <= 3, "{rounds}");
    for c in &clients {
        assert_eq!(c.count(), 2);
        assert_eq!(c.epoch, 3);
    }
    let g = cg.group("g").unwrap();
    assert_eq!(g.members["a"].previous_member_epoch, 1);
    assert_eq!(cg.state_name("g"), "Stable");
    assert_eq!(cg.member_count("g"), 3);
}

#[test]
fn member_leaving_moves_partitions_after_revocation() {
    let md = meta(&[("t", 1, 4)]);
    let mut cg = new_cg();
    let mut now = 0;
    let mut clients = vec![Client::new("g", "a", &["t"]), Client::new("g", "b", &["t"])];
    converge(&mut cg, &mut clients, &mut now, &md);
    assert_eq!((clients[0].count(), clients[1].count()), (2, 2));
    let b_parts = clients[1].owned.clone();

    // b leaves: tombstones + epoch bump; target recomputed on a's next heartbeat.
    let recs = clients[1].leave(&mut cg, now, &md, LEAVE_GROUP_MEMBER_EPOCH);
    assert!(matches!(
        recs.last(),
        Some(CoordinatorRecord::ConsumerGroupMetadata { value: Some(v), .. }) if v.epoch == 3
    ));
    assert_eq!(cg.state_name("g"), "Assigning");
    let mut rest = vec![clients[0].clone()];
    converge(&mut cg, &mut rest, &mut now, &md);
    assert_eq!(rest[0].count(), 4);
    assert!(
        b_parts
            .iter()
            .all(|(t, ps)| rest[0].owned[t].is_superset(ps))
    );

    // A third member joins: a must revoke 2 before c gets them.
    let mut c = Client::new("g", "c", &["t"]);
    c.heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(c.count(), 0);
    let mut all = vec![rest.remove(0), c];
    all[0].heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(all[0].count(), 2);
    // a's revocation is acknowledged by its next heartbeat; then c gets the partitions.
    all[1].heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(all[1].count(), 0, "a has not acknowledged yet");
    all[0].heartbeat(&mut cg, now, &md).unwrap();
    all[1].heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(all[1].count(), 2);
    assert_exclusive(&all);
}

#[test]
fn static_member_restart_keeps_partitions_without_rebalance() {
    let md = meta(&[("t", 1, 4)]);
    let mut cg = new_cg();
    let mut now = 0;
    let mut a = Client::new("g", "a1", &["t"]);
    a.instance = Some("ia".into());
    let mut b = Client::new("g", "b", &["t"]);
    let mut clients = vec![a, b];
    converge(&mut cg, &mut clients, &mut now, &md);
    let epoch = cg.group("g").unwrap().group_epoch;
    let a_parts = clients[0].owned.clone();
    b = clients.pop().unwrap();
    a = clients.pop().unwrap();

    // Another process with the same instance id while a1 is alive: UNRELEASED_INSTANCE_ID.
    let mut dup = Client::new("g", "a2", &["t"]);
    dup.instance = Some("ia".into());
    let e = dup.heartbeat(&mut cg, now, &md).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnreleasedInstanceId);

    // a1 leaves temporarily (epoch -2): stays in the group with its assignment.
    let recs = a.leave(&mut cg, now, &md, LEAVE_GROUP_STATIC_MEMBER_EPOCH);
    assert_eq!(recs.len(), 1);
    let g = cg.group("g").unwrap();
    assert_eq!(g.members["a1"].member_epoch, -2);
    assert_eq!(g.group_epoch, epoch);
    assert_eq!(g.static_member_id("ia"), Some("a1"));
    // b is unaffected meanwhile.
    b.heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(b.count(), 2);

    // Restarted process (new member id) with the same instance id: same partitions, no
    // group epoch bump.
    now += 10_000;
    let mut a2 = Client::new("g", "a2", &["t"]);
    a2.instance = Some("ia".into());
    a2.heartbeat(&mut cg, now, &md).unwrap();
    assert_eq!(a2.owned, a_parts);
    let g = cg.group("g").unwrap();
    assert_eq!(g.group_epoch, epoch);
    assert_eq!(a2.epoch, epoch);
    assert!(!g.members.contains_key("a1"));
    assert_eq!(g.static_member_id("ia"), Some("a2"));
    assert_eq!(cg.state_name("g"), "Stable");
    // The old member id is fenced by the new one.
    a.joined = true;
    a.epoch = epoch;
    let req = ConsumerGroupHeartbeatRequest {
        instance_id: Some("ia".into()),
        ..a.request()
    };
    let e = cg.heartbeat(now, &CTX, &req, &md).unwrap_err();
    assert_eq!(e.code, ErrorCode::FencedInstanceId);

    // A static member that left and never returns is removed at session expiry.
    a2.leave(&mut cg, now, &md, LEAVE_GROUP_STATIC_MEMBER_EPOCH);
    b.heartbeat(&mut cg, now + 40_000, &md).unwrap();
    let recs = cg.tick(now + 45_000);
    assert!(!recs.is_empty());
    assert!(!cg.group("g").unwrap().members.contains_key("a2"));
    assert_eq!(cg.member_count("g"), 1);
}

#[test]
fn session_expiry_and_next_deadline() {
    let md = meta(&[("t", 1, 2)]);
    let mut cg = new_cg();
    let mut a = Client::new("g", "a", &["t"]);
    let mut b = Client::new("g", "b", &["t"]);
    a.heartbeat(&mut cg, 0, &md).unwrap();
    b.heartbeat(&mut cg, 1_000, &md).unwrap();
    assert_eq!(cg.next_deadline(), Some(45_000));
    assert!(cg.tick(44_999).is_empty());
    // b heartbeats; a stays silent.
    b.heartbeat(&mut cg, 30_000, &md).unwrap();
    let recs = cg.tick(45_000);
    assert_eq!(recs.len(), 4, "3 tombstones + epoch bump: {recs:?}");
    assert!(!cg.group("g").unwrap().members.contains_key("a"));
    assert_eq!(cg.next_deadline(), Some(75_000));
    // a's next heartbeat: unknown member; it rejoins with epoch 0 and the same id.
    let e = a.heartbeat(&mut cg, 46_000, &md).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownMemberId);
    let e = a.heartbeat(&mut cg, 46_000, &md).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownMemberId);
    a.joined = false;
    a.owned.clear();
    a.heartbeat(&mut cg, 46_000, &md).unwrap();
    // Everybody gone: the group is Empty but still exists.
    let recs = cg.tick(1_000_000);
    assert_eq!(
        recs.iter()
            .filter(|r| matches!(r, CoordinatorRecord::ConsumerGroupMetadata { .. }))
            .count(),
        2
    );
    assert_eq!(cg.state_name("g"), "Empty");
    assert_eq!(cg.next_deadline(), None);
    assert!(cg.contains("g"));
    let tomb = cg.delete_group("g").unwrap();
    assert_eq!(tomb.len(), 3);
    assert!(!cg.contains("g"));
    assert_eq!(cg.state_name("g"), "Dead");
}

#[test]
fn rebalance_timeout_fences_a_member_that_does_not_revoke() {
    let md = meta(&[("t", 1, 4)]);
    let mut cg = new_cg();
    let mut a = Client::new("g", "a", &["t"]);
    a.heartbeat(&mut cg, 0, &md).unwrap();
    let mut req = a.request();
    req.rebalance_timeout_ms = 10_000;
    // Rejoin-like update of the rebalance timeout through a full heartbeat.
    req.member_epoch = a.epoch;
    cg.heartbeat(0, &CTX, &req, &md).unwrap();
    let mut b = Client::new("g", "b", &["t"]);
    b.heartbeat(&mut cg, 1_000, &md).unwrap();
    // a learns it must revoke (UNREVOKED_PARTITIONS) at t=2000 but never acknowledges.
    a.heartbeat(&mut cg, 2_000, &md).unwrap();
    assert_eq!(
        cg.group("g").unwrap().members["a"].state,
        MemberState::UnrevokedPartitions
    );
    assert_eq!(cg.next_deadline(), Some(12_000));
    let stuck = a.request();
    let mut stuck_full = stuck.clone();
    stuck_full.topic_partitions = Some(vec![TopicPartitions {
        topic_id: tid(1),
        partitions: vec![0, 1, 2, 3],
    }]);
    cg.heartbeat(5_000, &CTX, &stuck_full, &md).unwrap();
    assert!(cg.tick(11_999).is_empty());
    let recs = cg.tick(12_000);
    assert!(!recs.is_empty());
    assert!(!cg.group("g").unwrap().members.contains_key("a"));
    // b gets everything once it heartbeats.
    let mut clients = vec![b];
    let mut now = 13_000;
    converge(&mut cg, &mut clients, &mut now, &md);
    assert_eq!(clients[0].count(), 4);
}

#[test]
fn fencing_and_validation_errors() {
    let md = meta(&[("t", 1, 2)]);
    let mut cg = ConsumerGroups::new(ConsumerGroupConfig {
        max_size: 2,
        ..Default::default()
    });
    let mut a = Client::new("g", "a", &["t"]);
    a.heartbeat(&mut cg, 0, &md).unwrap();
    let code = |cg: &mut ConsumerGroups, r: ConsumerGroupHeartbeatRequest| {
        cg.heartbeat(0, &CTX, &r, &md).unwrap_err().code
    };
    let join = Client::new("g", "x", &["t"]).request();
    // Missing fields on join.
    for bad in [
        ConsumerGroupHeartbeatRequest {
            rebalance_timeout_ms: -1,
            ..join.clone()
        },
        ConsumerGroupHeartbeatRequest {
            topic_partitions: None,
            ..join.clone()
        },
        ConsumerGroupHeartbeatRequest {
            subscribed_topic_names: None,
            ..join.clone()
        },
        ConsumerGroupHeartbeatRequest {
            member_id: String::new(),
            ..join.clone()
        },
        ConsumerGroupHeartbeatRequest {
            group_id: " ".into(),
            ..join.clone()
        },
        ConsumerGroupHeartbeatRequest {
            member_epoch: -3,
            ..join.clone()
        },
        ConsumerGroupHeartbeatRequest {
            member_epoch: -2,
            ..join.clone()
        },
        ConsumerGroupHeartbeatRequest {
            instance_id: Some(String::new()),
            ..join.clone()
        },
    ] {
        assert_eq!(code(&mut cg, bad), ErrorCode::InvalidRequest);
    }
    let e = cg
        .heartbeat(
            0,
            &CTX,
            &ConsumerGroupHeartbeatRequest {
                server_assignor: Some("sticky".into()),
                ..join.clone()
            },
            &md,
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::UnsupportedAssignor);
    assert_eq!(
        e.message,
        "ServerAssignor sticky is not supported. Supported assignors: uniform, range."
    );
    let resp = e.to_heartbeat_response();
    assert_eq!(resp.error_code, ErrorCode::UnsupportedAssignor.code());
    assert_eq!(
        code(
            &mut cg,
            ConsumerGroupHeartbeatRequest {
                subscribed_topic_regex: Some("t(".into()),
                ..join.clone()
            }
        ),
        ErrorCode::InvalidRegularExpression
    );
    // Epoch ahead / behind.
    let mut r = a.request();
    r.member_epoch = a.epoch + 1;
    assert_eq!(code(&mut cg, r.clone()), ErrorCode::FencedMemberEpoch);
    // Behind: move a to epoch 2 (partitions added), then send epoch 1 without owned
    // partitions (not a provable subset of its assignment).
    let md3 = meta(&[("t", 1, 3)]);
    a.heartbeat(&mut cg, 0, &md3).unwrap();
    assert_eq!(a.epoch, 2);
    r.member_epoch = 1;
    r.topic_partitions = None;
    assert_eq!(
        cg.heartbeat(0, &CTX, &r, &md3).unwrap_err().code,
        ErrorCode::FencedMemberEpoch
    );
    r.member_epoch = 0;
    r.topic_partitions = Some(vec![]);
    r.rebalance_timeout_ms = 1000;
    r.subscribed_topic_names = Some(vec!["t".into()]);
    // Rejoining with epoch 0 while the coordinator still knows the member at epoch 2:
    // Kafka fences it too (0 is neither the current nor the previous epoch).
    assert_eq!(code(&mut cg, r), ErrorCode::FencedMemberEpoch);
    // Unknown member / group.
    let mut r = a.request();
    r.member_id = "nobody".into();
    assert_eq!(code(&mut cg, r.clone()), ErrorCode::UnknownMemberId);
    r.group_id = "nope".into();
    assert_eq!(code(&mut cg, r), ErrorCode::GroupIdNotFound);
    // Leave of an unknown member.
    let leave = ConsumerGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: "nobody".into(),
        member_epoch: -1,
        ..Default::default()
    };
    assert_eq!(code(&mut cg, leave), ErrorCode::UnknownMemberId);
    // Group full (max 2).
    Client::new("g", "b", &["t"])
        .heartbeat(&mut cg, 0, &md)
        .unwrap();
    assert_eq!(code(&mut cg, join), ErrorCode::GroupMaxSizeReached);
    // Nothing above changed the group.
    assert_eq!(cg.member_count("g"), 2);
}

#[test]
fn lost_response_previous_epoch_is_accepted() {
    let md = meta(&[("t", 1, 4)]);
    let mut cg = new_cg();
    let mut a = Client::new("g", "a", &["t"]);
    a.heartbeat(&mut cg, 0, &md).unwrap();
    let before = a.clone();
    // Partitions added: epoch bump, a moves to epoch 2 but "loses" the response.
    let md2 = meta(&[("t", 1, 6)]);
    a.heartbeat(&mut cg, 100, &md2).unwrap();
    assert_eq!(a.epoch, 2);
    assert_eq!(a.count(), 6);
    let g = cg.group("g").unwrap();
    assert_eq!(g.members["a"].previous_member_epoch, 1);
    // Retry with the previous epoch and a subset of the assignment: accepted, full
    // assignment returned.
    // (The Java client resends a full heartbeat after a lost response.)
    let mut retry = before.clone();
    let mut full = retry.request();
    full.rebalance_timeout_ms = 300_000;
    full.subscribed_topic_names = Some(vec!["t".into()]);
    retry.send(&mut cg, 200, &md2, &full).unwrap();
    assert_eq!((retry.epoch, retry.count()), (2, 6));
    // Previous epoch but owning something not assigned: fenced.
    let mut bad = before.request();
    bad.topic_partitions = Some(vec![TopicPartitions {
        topic_id: tid(9),
        partitions: vec![0],
    }]);
    assert_eq!(
        cg.heartbeat(300, &CTX, &bad, &md2).unwrap_err().code,
        ErrorCode::FencedMemberEpoch
    );
}

#[test]
fn subscription_and_metadata_changes_bump_the_epoch() {
    let md = meta(&[("t", 1, 4), ("u", 2, 2)]);
    let mut cg = new_cg();
    let mut now = 0;
    let mut clients = vec![Client::new("g", "a", &["t"]), Client::new("g", "b", &["t"])];
    converge(&mut cg, &mut clients, &mut now, &md);
    let e0 = cg.group("g").unwrap().group_epoch;
    // Same heartbeat again: no records at all.
    let recs = clients[0].heartbeat(&mut cg, now, &md).unwrap();
    assert!(recs.is_empty(), "{recs:?}");
    // b also subscribes to u.
    let mut req = clients[1].request();
    req.subscribed_topic_names = Some(vec!["u".into(), "t".into()]);
    clients[1].send(&mut cg, now, &md, &req).unwrap();
    assert_eq!(cg.group("g").unwrap().group_epoch, e0 + 1);
    clients[1].topics = vec!["t".into(), "u".into()];
    converge(&mut cg, &mut clients, &mut now, &md);
    let g = cg.group("g").unwrap();
    assert_eq!(g.subscription_metadata.len(), 2);
    assert!(!g.members["a"].assigned_partitions.contains_key(&tid(2)));
    assert_eq!(clients[1].owned.get(&tid(2)).map(BTreeSet::len), Some(2));
    // Reordering the subscription is not a change.
    let mut req = clients[1].request();
    req.subscribed_topic_names = Some(vec!["u".into(), "t".into()]);
    let (_, recs) = cg.heartbeat(now, &CTX, &req, &md).unwrap();
    assert!(recs.is_empty());
    // Partitions added to t: the next heartbeat bumps the epoch and spreads them.
    let md2 = meta(&[("t", 1, 8), ("u", 2, 2)]);
    let e1 = cg.group("g").unwrap().group_epoch;
    converge(&mut cg, &mut clients, &mut now, &md2);
    assert_eq!(cg.group("g").unwrap().group_epoch, e1 + 1);
    let total: usize = clients.iter().map(Client::count).sum();
    assert_eq!(total, 10);
    // A subscribed topic that does not exist yet is ignored until it appears.
    let mut c = Client::new("g", "c", &["later"]);
    c.heartbeat(&mut cg, now, &md2).unwrap();
    assert_eq!(c.count(), 0);
    let md3 = meta(&[("t", 1, 8), ("u", 2, 2), ("later", 3, 3)]);
    let mut all = vec![clients.remove(0), clients.remove(0), c];
    converge(&mut cg, &mut all, &mut now, &md3);
    assert_eq!(all[2].count(), 3);
}

#[test]
fn range_assignor_on_request() {
    let md = meta(&[("t", 1, 4), ("u", 2, 4)]);
    let mut cg = new_cg();
    let mut now = 0;
    let mut clients: Vec<Client> = ["a", "b"]
        .iter()
        .map(|id| {
            let mut c = Client::new("g", id, &["t", "u"]);
            c.assignor = Some("range".into());
            c
        })
        .collect();
    converge(&mut cg, &mut clients, &mut now, &md);
    for c in &clients {
        assert_eq!(c.owned[&tid(1)], c.owned[&tid(2)], "co-partitioned");
    }
    let d = cg.describe(&["g".into()], &md);
    assert_eq!(d.groups[0].assignor_name, "range");
}

#[test]
fn v0_join_without_member_id_gets_one() {
    let md = meta(&[("t", 1, 1)]);
    let mut cg = new_cg();
    let mut req = Client::new("g", "", &["t"]).request();
    let ctx = HeartbeatContext {
        api_version: 0,
        ..CTX
    };
    let (resp, _) = cg.heartbeat(0, &ctx, &req, &md).unwrap();
    let id = resp.member_id.unwrap();
    assert_eq!(id.len(), 22);
    assert!(cg.group("g").unwrap().members.contains_key(&id));
    // v1 requires it.
    req.group_id = "g2".into();
    assert_eq!(
        cg.heartbeat(0, &CTX, &req, &md).unwrap_err().code,
        ErrorCode::InvalidRequest
    );
}

#[test]
fn describe_and_offset_commit_validation() {
    let md = meta(&[("t", 1, 2)]);
    let mut cg = new_cg();
    let mut now = 0;
    let mut clients = vec![Client::new("g", "a", &["t"])];
    clients[0].instance = Some("i".into());
    converge(&mut cg, &mut clients, &mut now, &md);
    let d = cg.describe(&["g".into(), "missing".into()], &md);
    let g = &d.groups[0];
    assert_eq!(
        (
            g.error_code,
            g.group_state.as_str(),
            g.group_epoch,
            g.assignment_epoch
        ),
        (0, "Stable", 1, 1)
    );
    assert_eq!(g.assignor_name, "uniform");
    let m = &g.members[0];
    assert_eq!(
        (m.member_id.as_str(), m.instance_id.as_deref()),
        ("a", Some("i"))
    );
    assert_eq!(
        (m.client_id.as_str(), m.client_host.as_str()),
        ("client", "/127.0.0.1")
    );
    assert_eq!(m.subscribed_topic_names, vec!["t".to_string()]);
    // KIP-1099: a member that heartbeats ConsumerGroupHeartbeat is of type consumer (1).
    assert_eq!(m.member_type, 1);
    assert_eq!(m.assignment.topic_partitions[0].topic_name, "t");
    assert_eq!(m.assignment.topic_partitions[0].partitions, vec![0, 1]);
    assert_eq!(
        m.target_assignment.topic_partitions[0].partitions,
        vec![0, 1]
    );
    assert_eq!(d.groups[1].error_code, ErrorCode::GroupIdNotFound.code());

    let e = clients[0].epoch;
    assert_eq!(
        cg.validate_offset_commit("g", "a", None, e, false, 9),
        Ok(())
    );
    assert_eq!(
        cg.validate_offset_commit("g", "a", None, e - 1, false, 9),
        Err(ErrorCode::StaleMemberEpoch)
    );
    assert_eq!(
        cg.validate_offset_commit("g", "a", None, e + 1, false, 9),
        Err(ErrorCode::StaleMemberEpoch)
    );
    assert_eq!(
        cg.validate_offset_commit("g", "a", None, e, false, 8),
        Err(ErrorCode::UnsupportedVersion)
    );
    assert_eq!(
        cg.validate_offset_commit("g", "zz", None, e, false, 9),
        Err(ErrorCode::UnknownMemberId)
    );
    // Admin commit (-1) only while empty.
    assert_eq!(
        cg.validate_offset_commit("g", "", None, -1, false, 9),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        cg.validate_offset_commit("g", "", None, -1, true, 3),
        Ok(())
    );
    assert_eq!(
        cg.validate_offset_commit("x", "", None, -1, false, 9),
        Err(ErrorCode::GroupIdNotFound)
    );
    // TxnOffsetCommit: a stale epoch is ILLEGAL_GENERATION; no member fields is accepted.
    assert_eq!(cg.validate_txn_offset_commit("g", "a", None, e), Ok(()));
    assert_eq!(
        cg.validate_txn_offset_commit("g", "a", None, e - 1),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        cg.validate_txn_offset_commit("g", "zz", None, e),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(cg.validate_txn_offset_commit("g", "", None, -1), Ok(()));
    assert_eq!(
        cg.validate_txn_offset_commit("x", "", None, -1),
        Err(ErrorCode::GroupIdNotFound)
    );
    assert_eq!(cg.validate_offset_fetch("g", Some("a"), e), Ok(()));
    assert_eq!(cg.validate_offset_fetch("g", None, -1), Ok(()));
    assert_eq!(
        cg.validate_offset_fetch("g", Some("a"), e - 1),
        Err(ErrorCode::StaleMemberEpoch)
    );
    clients[0].leave(&mut cg, now, &md, -1);
    assert_eq!(
        cg.validate_offset_commit("g", "", None, -1, false, 2),
        Ok(())
    );
    assert_eq!(cg.state_name("g"), "Empty");
}

/// Every emitted record encodes, decodes to itself, and replaying them into a fresh
/// instance rebuilds the same groups.
#[test]
fn replay_of_random_histories_rebuilds_the_state() {
    for seed in 0..20u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut cg = new_cg();
        let mut log: Vec<CoordinatorRecord> = Vec::new();
        let mut mds = [
            meta(&[("t", 1, 6), ("u", 2, 3)]),
            meta(&[("t", 1, 9), ("u", 2, 3)]),
        ];
        let mut clients: Vec<Client> = (0..6)
            .map(|i| {
                let mut c = Client::new(
                    if i % 3 == 2 { "h" } else { "g" },
                    &format!("m{i}"),
                    if i % 2 == 0 { &["t"] } else { &["t", "u"] },
                );
                if i == 1 {
                    c.instance = Some("static-1".into());
                }
                if i == 3 {
                    c.assignor = Some("range".into());
                }
                c
            })
            .collect();
        let mut now = 0i64;
        let mut restarts = 0;
        for _ in 0..300 {
            now += rng.gen_range(0..3_000);
            let md = &mds[usize::from(now > 200_000)];
            let i = rng.gen_range(0..clients.len());
            let c = &mut clients[i];
            match rng.gen_range(0..20) {
                0 if c.joined => {
                    let epoch = if c.instance.is_some() { -2 } else { -1 };
                    if let Ok(r) = c.try_leave(&mut cg, now, md, epoch) {
                        log.extend(r);
                    }
                }
                1 if c.instance.is_some() && !c.joined => {
                    restarts += 1;
                    c.id = format!("m{i}-r{restarts}");
                    match c.heartbeat(&mut cg, now, md) {
                        Ok(r) => log.extend(r),
                        Err(_) => c.joined = false,
                    }
                }
                2 => log.extend(cg.tick(now)),
                3 if c.joined => {
                    // Subscription change.
                    let mut r = c.request();
                    let topics = if c.topics.len() == 1 {
                        vec!["t".to_string(), "u".to_string()]
                    } else {
                        vec!["t".to_string()]
                    };
                    r.subscribed_topic_names = Some(topics.clone());
                    if let Ok((resp, recs)) = cg.heartbeat(now, &CTX, &r, md) {
                        c.topics = topics;
                        c.epoch = resp.member_epoch;
                        if let Some(a) = resp.assignment {
                            c.owned = a
                                .topic_partitions
                                .iter()
                                .map(|t| (t.topic_id, t.partitions.iter().copied().collect()))
                                .collect();
                        }
                        log.extend(recs);
                    }
                }
                _ => match c.heartbeat(&mut cg, now, md) {
                    Ok(r) => log.extend(r),
                    Err(e) => {
                        assert!(
                            matches!(
                                e.code,
                                ErrorCode::UnknownMemberId
                                    | ErrorCode::FencedMemberEpoch
                                    | ErrorCode::GroupIdNotFound
                                    | ErrorCode::UnreleasedInstanceId
                                    | ErrorCode::FencedInstanceId
                            ),
                            "{e:?}"
                        );
                        c.joined = false;
                        c.owned.clear();
                    }
                },
            }
            // Clients the coordinator fenced may still believe they own partitions (zombies,
            // as with Kafka); exclusivity holds among live members, and on the server.
            for gid in ["g", "h"] {
                let Some(g) = cg.group(gid) else { continue };
                let live: Vec<Client> = clients
                    .iter()
                    .filter(|c| c.group == gid && c.joined)
                    .filter(|c| g.members.get(&c.id).is_some_and(|m| m.member_epoch >= 0))
                    .cloned()
                    .collect();
                assert_exclusive(&live);
                let mut seen = BTreeSet::new();
                for m in g.members.values() {
                    for a in [&m.assigned_partitions, &m.partitions_pending_revocation] {
                        for (t, ps) in a {
                            for p in ps {
                                assert!(seen.insert((*t, *p)), "server: {t}-{p} twice in {g:#?}");
                            }
                        }
                    }
                }
            }
        }
        mds[0].clear();
        let mut fresh = new_cg();
        for r in &log {
            let (k, v) = encode_record(r).unwrap();
            let decoded = decode_record(&k, v.as_deref()).unwrap();
            assert_eq!(&decoded, r);
            assert!(fresh.replay(&decoded));
        }
        for gid in ["g", "h"] {
            assert_eq!(fresh.group(gid), cg.group(gid), "seed {seed} group {gid}");
        }
        assert_eq!(fresh.groups.len(), cg.groups.len());
    }
}

#[test]
fn on_loaded_arms_timers() {
    let md = meta(&[("t", 1, 2)]);
    let mut cg = new_cg();
    let mut log = Vec::new();
    let mut a = Client::new("g", "a", &["t"]);
    log.extend(a.heartbeat(&mut cg, 0, &md).unwrap());
    let mut fresh = new_cg();
    for r in &log {
        fresh.replay(r);
    }
    assert_eq!(fresh.next_deadline(), None);
    fresh.on_loaded(1_000);
    assert_eq!(fresh.next_deadline(), Some(46_000));
    // 3 tombstones, the subscription metadata without the topic, the epoch bump.
    assert_eq!(fresh.tick(46_000).len(), 5);
    // Non consumer-group records are ignored.
    assert!(!fresh.replay(&CoordinatorRecord::Unknown { key_version: 99 }));
}

#[test]
fn hundred_members_thousand_partitions() {
    let md = meta(&[("big", 7, 1000)]);
    let mut cg = new_cg();
    let mut now = 0;
    let mut clients: Vec<Client> = (0..100)
        .map(|i| Client::new("g", &format!("member-{i:03}"), &["big"]))
        .collect();
    let start = Instant::now();
    let rounds = converge(&mut cg, &mut clients, &mut now, &md);
    let join_time = start.elapsed();
    for c in &clients {
        assert_eq!(c.count(), 10);
    }
    // One member leaves, ten join: rebalance again.
    let start2 = Instant::now();
    clients[0].leave(&mut cg, now, &md, -1);
    clients.remove(0);
    for i in 100..110 {
        clients.push(Client::new("g", &format!("member-{i:03}"), &["big"]));
    }
    let rounds2 = converge(&mut cg, &mut clients, &mut now, &md);
    let rebalance_time = start2.elapsed();
    let counts: BTreeSet<usize> = clients.iter().map(Client::count).collect();
    assert!(counts.iter().all(|c| *c == 9 || *c == 10), "{counts:?}");
    println!(
        "KIP-848 100 members x 1000 partitions: initial join converged in {rounds} heartbeat rounds \
         ({} heartbeats) in {join_time:?}; 1 leave + 10 joins converged in {rounds2} rounds in \
         {rebalance_time:?} (pure computation, this build profile)",
        rounds * 100
    );
}

#[test]
fn steady_heartbeats_carry_no_assignment_and_write_nothing() {
    let md = meta(&[("t", 1, 3)]);
    let mut cg = new_cg();
    let mut now = 0;
    let mut clients = vec![Client::new("g", "a", &["t"])];
    converge(&mut cg, &mut clients, &mut now, &md);
    let (resp, recs) = cg.heartbeat(now, &CTX, &clients[0].request(), &md).unwrap();
    assert!(recs.is_empty());
    assert!(resp.assignment.is_none());
    assert_eq!(resp.member_epoch, 1);
    // A full heartbeat (as sent after an error) gets the assignment again.
    let mut full = clients[0].request();
    full.rebalance_timeout_ms = 300_000;
    full.subscribed_topic_names = Some(vec!["t".into()]);
    let (resp, recs) = cg.heartbeat(now, &CTX, &full, &md).unwrap();
    assert!(recs.is_empty());
    assert_eq!(
        resp.assignment.unwrap().topic_partitions[0].partitions,
        vec![0, 1, 2]
    );
    // The session deadline moves with each successful heartbeat, not with errors.
    assert_eq!(cg.next_deadline(), Some(now + 45_000));
    let mut bad = clients[0].request();
    bad.member_epoch = 99;
    assert!(cg.heartbeat(now + 1_000, &CTX, &bad, &md).is_err());
    assert_eq!(cg.next_deadline(), Some(now + 45_000));
}

#[test]
fn static_member_rejoining_with_the_same_member_id() {
    let md = meta(&[("t", 1, 2)]);
    let mut cg = new_cg();
    let mut now = 0;
    let mut a = Client::new("g", "a", &["t"]);
    a.instance = Some("i".into());
    let mut clients = vec![a];
    converge(&mut cg, &mut clients, &mut now, &md);
    let parts = clients[0].owned.clone();
    let mut log = Vec::new();
    log.extend(clients[0].leave(&mut cg, now, &md, LEAVE_GROUP_STATIC_MEMBER_EPOCH));
    log.extend(clients[0].heartbeat(&mut cg, now, &md).unwrap());
    assert_eq!(clients[0].owned, parts);
    assert_eq!(cg.group("g").unwrap().static_member_id("i"), Some("a"));
    assert_eq!(cg.state_name("g"), "Stable");
    // Leaving for good (-1) with the instance id removes it and bumps the epoch.
    let e = cg.group("g").unwrap().group_epoch;
    log.extend(clients[0].leave(&mut cg, now, &md, LEAVE_GROUP_MEMBER_EPOCH));
    assert_eq!(cg.group("g").unwrap().group_epoch, e + 1);
    assert_eq!(cg.group("g").unwrap().static_member_id("i"), None);
    assert_eq!(cg.state_name("g"), "Empty");
}

#[test]
fn a_groups_own_session_timeout_and_heartbeat_interval_apply_to_it_only() {
    let md = meta(&[("t", 1, 2)]);
    let mut cg = new_cg();
    cg.set_group_overrides(
        "g",
        GroupOverrides {
            session_timeout_ms: Some(50_000),
            heartbeat_interval_ms: Some(7_000),
        },
    );
    let req = Client::new("g", "a", &["t"]).request();
    let (resp, _) = cg.heartbeat(0, &CTX, &req, &md).unwrap();
    assert_eq!(resp.heartbeat_interval_ms, 7_000);
    assert_eq!(cg.next_deadline(), Some(50_000));
    // Another group keeps the broker's values.
    let req = Client::new("other", "b", &["t"]).request();
    let (resp, _) = cg.heartbeat(0, &CTX, &req, &md).unwrap();
    assert_eq!(resp.heartbeat_interval_ms, 5_000);
    // At 45 s only the other group's member has timed out.
    assert!(!cg.tick(45_000).is_empty());
    assert!(!cg.group("other").unwrap().members.contains_key("b"));
    assert!(cg.group("g").unwrap().members.contains_key("a"));
    // Cleared: back to the broker's values on the next heartbeat.
    cg.set_group_overrides("g", GroupOverrides::default());
    let mut a = Client::new("g", "a", &["t"]);
    a.joined = true;
    a.epoch = cg.group("g").unwrap().members["a"].member_epoch;
    let req = a.request();
    let (resp, _) = cg.heartbeat(46_000, &CTX, &req, &md).unwrap();
    assert_eq!(resp.heartbeat_interval_ms, 5_000);
}

/// Topic metadata with a creation version, as the broker's registry provides it.
struct Versioned {
    topics: Meta,
    version: i64,
}

impl TopicMetadataSource for Versioned {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.topics.topic(name)
    }
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.topics.topic_name(id)
    }
    fn topic_names(&self) -> Vec<String> {
        self.topics.topic_names()
    }
    fn topics_version(&self) -> i64 {
        self.version
    }
}

fn regex_client(group: &str, id: &str, regex: &str) -> Client {
    let mut c = Client::new(group, id, &[]);
    c.regex = Some(regex.into());
    c
}

fn regex_records(records: &[CoordinatorRecord]) -> Vec<(String, Option<Vec<String>>)> {
    records
        .iter()
        .filter_map(|r| match r {
            CoordinatorRecord::ConsumerGroupRegularExpression { regex, value, .. } => {
                Some((regex.clone(), value.as_ref().map(|v| v.topics.clone())))
            }
            _ => None,
        })
        .collect()
}

fn owned_topics(c: &Client) -> BTreeSet<Uuid> {
    c.owned.keys().copied().collect()
}

#[test]
fn regex_subscription_follows_topic_creation_and_deletion() {
    let mut cg = new_cg();
    let mut md = Versioned {
        topics: meta(&[
            ("rx-a", 1, 2),
            ("other", 2, 1),
            ("__consumer_offsets", 9, 1),
        ]),
        version: 1,
    };
    let mut a = regex_client("g", "a", "rx-.*");
    let mut log = a.heartbeat(&mut cg, 1_000, &md).unwrap();
    assert_eq!(
        regex_records(&log),
        vec![("rx-.*".to_string(), Some(vec!["rx-a".to_string()]))]
    );
    let mut now = 1_000;
    converge(&mut cg, std::slice::from_mut(&mut a), &mut now, &md);
    assert_eq!(owned_topics(&a), BTreeSet::from([tid(1)]));
    assert_eq!(a.count(), 2);
    let g = cg.group("g").unwrap();
    assert_eq!(g.subscribed_topic_names(), BTreeSet::from(["rx-a"]));
    assert_eq!(g.resolved_regexes["rx-.*"].version, 1);
    assert_eq!(g.resolved_regexes["rx-.*"].timestamp, 1_000);

    // A topic is created: re-resolved at the first heartbeat after Kafka's 10 s batch
    // interval, not before.
    md.topics.insert("rx-b".into(), (tid(3), 1));
    md.version = 2;
    log.extend(a.heartbeat(&mut cg, 5_000, &md).unwrap());
    assert_eq!(owned_topics(&a), BTreeSet::from([tid(1)]));
    let recs = a.heartbeat(&mut cg, 11_001, &md).unwrap();
    assert_eq!(
        regex_records(&recs),
        vec![(
            "rx-.*".to_string(),
            Some(vec!["rx-a".to_string(), "rx-b".to_string()])
        )]
    );
    log.extend(recs);
    now = 11_100;
    converge(&mut cg, std::slice::from_mut(&mut a), &mut now, &md);
    assert_eq!(owned_topics(&a), BTreeSet::from([tid(1), tid(3)]));

    // A topic is deleted: it leaves the assignment at once (the subscription metadata only
    // holds existing topics); the stored resolution drops it at the refresh interval.
    md.topics.remove("rx-a");
    converge(&mut cg, std::slice::from_mut(&mut a), &mut now, &md);
    assert_eq!(owned_topics(&a), BTreeSet::from([tid(3)]));
    assert!(
        cg.group("g").unwrap().resolved_regexes["rx-.*"]
            .topics
            .contains("rx-a")
    );
    let later = 11_001 + regex::DEFAULT_REGEX_REFRESH_INTERVAL_MS + 1;
    let recs = a.heartbeat(&mut cg, later, &md).unwrap();
    assert_eq!(
        regex_records(&recs),
        vec![("rx-.*".to_string(), Some(vec!["rx-b".to_string()]))]
    );
    log.extend(recs);

    // The records reload into the same state, and byte-encode as Kafka's record type 16.
    let mut fresh = new_cg();
    for r in &log {
        let (k, v) = encode_record(r).unwrap();
        if matches!(r, CoordinatorRecord::ConsumerGroupRegularExpression { .. }) {
            assert_eq!(&k[..2], &16i16.to_be_bytes());
        }
        fresh.replay(&decode_record(&k, v.as_deref()).unwrap());
    }
    assert_eq!(
        fresh.group("g").unwrap().resolved_regexes,
        cg.group("g").unwrap().resolved_regexes
    );
    // After the reload, a heartbeat within the interval does not resolve again.
    fresh.on_loaded(later);
    let recs = a.heartbeat(&mut fresh, later + 100, &md).unwrap();
    assert!(regex_records(&recs).is_empty(), "{recs:?}");
}

#[test]
fn names_and_regexes_make_the_groups_subscription() {
    let mut cg = new_cg();
    let md = Versioned {
        topics: meta(&[("rx-a", 1, 2), ("other", 2, 2), ("third", 3, 1)]),
        version: 1,
    };
    let mut a = regex_client("g", "a", "rx-.*");
    let mut b = Client::new("g", "b", &["other"]);
    // A member may send both; its topics are the union (Kafka does not refuse it).
    let mut c = regex_client("g", "c", "thi.*");
    c.topics = vec!["other".into()];
    let mut now = 0;
    let mut clients = [a.clone(), b.clone(), c.clone()];
    converge(&mut cg, &mut clients, &mut now, &md);
    // c's regex came within Kafka's 10 s batch interval of a's: it is resolved after it.
    assert!(
        !cg.group("g")
            .unwrap()
            .resolved_regexes
            .contains_key("thi.*")
    );
    now = 10_001;
    converge(&mut cg, &mut clients, &mut now, &md);
    [a, b, c] = clients;
    let g = cg.group("g").unwrap();
    assert_eq!(
        g.subscribed_topic_names(),
        BTreeSet::from(["other", "rx-a", "third"])
    );
    assert_eq!(owned_topics(&a), BTreeSet::from([tid(1)]));
    assert!(owned_topics(&b).is_subset(&BTreeSet::from([tid(2)])));
    assert!(owned_topics(&c).contains(&tid(3)));
    assert_eq!(a.count() + b.count() + c.count(), 5);
}

#[test]
fn invalid_regex_is_refused_and_changes_nothing() {
    let mut cg = new_cg();
    let md = Versioned {
        topics: meta(&[("t", 1, 1)]),
        version: 1,
    };
    let mut c = regex_client("g", "a", "rx-(");
    let e = c.heartbeat(&mut cg, 0, &md).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRegularExpression);
    assert_eq!(
        e.message,
        "SubscribedTopicRegex `rx-(` is not a valid regular expression: missing closing )."
    );
    assert!(cg.group("g").is_none());
}

#[test]
fn unused_regexes_are_tombstoned() {
    let mut cg = new_cg();
    let md = Versioned {
        topics: meta(&[("rx-a", 1, 1), ("ry-a", 2, 1)]),
        version: 1,
    };
    let mut a = regex_client("g", "a", "rx-.*");
    let mut b = regex_client("g", "b", "rx-.*");
    a.heartbeat(&mut cg, 0, &md).unwrap();
    let recs = b.heartbeat(&mut cg, 100, &md).unwrap();
    // Already resolved: the second subscriber does not resolve again.
    assert!(regex_records(&recs).is_empty());
    // a switches: its new regex waits for the batch interval, then everything is resolved
    // again; the old one is still b's.
    let mut req = a.request();
    req.subscribed_topic_regex = Some("ry-.*".into());
    let recs = a.send(&mut cg, 200, &md, &req).unwrap();
    assert!(regex_records(&recs).is_empty());
    let recs = a.heartbeat(&mut cg, 10_001, &md).unwrap();
    assert_eq!(
        regex_records(&recs),
        vec![
            ("rx-.*".to_string(), Some(vec!["rx-a".to_string()])),
            ("ry-.*".to_string(), Some(vec!["ry-a".to_string()]))
        ]
    );
    // b leaves: nobody subscribes to rx-.* any more.
    let recs = b.leave(&mut cg, 10_100, &md, LEAVE_GROUP_MEMBER_EPOCH);
    assert_eq!(regex_records(&recs), vec![("rx-.*".to_string(), None)]);
    // a clears its regex (the Java client sends ""): tombstone too.
    let mut req = a.request();
    req.subscribed_topic_regex = Some(String::new());
    let recs = a.send(&mut cg, 10_200, &md, &req).unwrap();
    assert_eq!(regex_records(&recs), vec![("ry-.*".to_string(), None)]);
    assert!(cg.group("g").unwrap().resolved_regexes.is_empty());
}
