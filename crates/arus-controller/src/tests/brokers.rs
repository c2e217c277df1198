//! Registration, heartbeats, fencing by session expiry, controlled shutdown, unregistration,
//! producer-id blocks.

use arus_protocol::ErrorCode;
use arus_protocol::messages::broker_registration_request::Feature;

use super::*;

#[test]
fn registration_epoch_is_the_offset_of_the_batch_and_the_broker_starts_fenced() {
    let mut h = Harness::new(true);
    let offset = h.next_offset;
    let epoch = h.register(1, None).unwrap();
    assert_eq!(epoch, offset);
    let b = &h.c.state().brokers[&1];
    assert!(b.fenced);
    assert_eq!(b.log_dirs, vec![dir_of(1)]);
    assert_eq!(h.c.state().register_offsets[&1], offset);
}

#[test]
fn wrong_cluster_id_is_inconsistent_cluster_id() {
    let mut h = Harness::new(true);
    let mut req = h.registration(1, None, 0);
    req.cluster_id = "other".into();
    let e = h.c.register_broker(&req, h.next_offset, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::InconsistentClusterId);
    assert_eq!(
        e.message.as_deref(),
        Some(format!("Expected cluster ID {CLUSTER_ID}, but got cluster ID other").as_str())
    );
}

#[test]
fn same_incarnation_re_registers_idempotently() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None]);
    let epoch = h.epochs[&1];
    let req = h.registration(1, None, 0);
    let out = h.c.register_broker(&req, h.next_offset, h.now).unwrap();
    assert_eq!(out.response, epoch, "the epoch is kept");
    assert_eq!(
        out.records.len(),
        1,
        "no shutdown handling for the same incarnation"
    );
    match &out.records[0] {
        MetadataRecord::RegisterBroker(r) => {
            assert!(!r.fenced, "the registration keeps its unfenced state");
            assert_eq!(r.broker_epoch, epoch);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_new_incarnation_with_a_live_session_is_a_duplicate_registration() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None]);
    let req = h.registration(1, None, 9);
    let e = h.c.register_broker(&req, h.next_offset, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::DuplicateBrokerRegistration);
    assert!(
        e.message
            .unwrap()
            .starts_with("Another broker is registered with that broker id.")
    );
    // Once the session expires the new incarnation registers with a new epoch.
    h.advance(10_000, &[0]);
    assert!(
        h.c.state().brokers[&1].fenced,
        "fenced after the session timeout"
    );
    let old = h.epochs[&1];
    let new = h.register(1, None).unwrap();
    assert!(new > old);
}

#[test]
fn unsupported_finalized_feature_is_refused() {
    let mut h = Harness::new(true);
    let mut req = h.registration(1, None, 0);
    for f in &mut req.features {
        if f.name == "metadata.version" {
            f.max_supported_version = 20;
        }
    }
    let e = h.c.register_broker(&req, h.next_offset, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Unable to register because the broker does not support finalized version 33 of metadata.version. The broker wants a version between 7 and 20, inclusive."
        )
    );
    // A finalized feature the broker does not mention counts as range 0-0.
    let mut req = h.registration(1, None, 0);
    req.features.retain(|f| f.name != "group.version");
    let e = h.c.register_broker(&req, h.next_offset, h.now).unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Unable to register because the broker does not support finalized version 1 of group.version. The broker wants a version between 0 and 0, inclusive."
        )
    );
    let mut req = h.registration(1, None, 0);
    req.features = vec![Feature {
        name: "group.version".into(),
        min_supported_version: 0,
        max_supported_version: 1,
    }];
    let e = h.c.register_broker(&req, h.next_offset, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRegistration);
    let mut req = h.registration(1, None, 0);
    req.log_dirs.clear();
    let e = h.c.register_broker(&req, h.next_offset, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRegistration);
    assert_eq!(
        e.message.as_deref(),
        Some("No directories specified in request")
    );
}

#[test]
fn heartbeats_check_the_epoch_and_unfence_once_caught_up() {
    let mut h = Harness::new(true);
    let e =
        h.c.broker_heartbeat(
            &BrokerHeartbeatRequest {
                broker_id: 5,
                broker_epoch: 1,
                ..Default::default()
            },
            h.next_offset,
            h.now,
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::StaleBrokerEpoch);
    assert_eq!(
        e.message.as_deref(),
        Some("Receive a heartbeat from broker 5 before registration")
    );
    let epoch = h.register(1, None).unwrap();
    let mut req = h.heartbeat_req(1, false, false);
    req.broker_epoch = epoch + 100;
    let e =
        h.c.broker_heartbeat(&req, h.next_offset, h.now)
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::StaleBrokerEpoch);
    assert_eq!(
        e.message,
        Some(format!(
            "Expected broker epoch {epoch}, but got broker epoch {}",
            epoch + 100
        ))
    );
    // Not caught up with its registration record: stays fenced.
    let mut req = h.heartbeat_req(1, false, false);
    req.current_metadata_offset = epoch - 1;
    let out = h.c.broker_heartbeat(&req, h.next_offset, h.now).unwrap();
    assert!(out.records.is_empty());
    assert!(out.response.is_fenced && !out.response.is_caught_up);
    // want_fence keeps it fenced even when caught up.
    let req = h.heartbeat_req(1, true, false);
    let out = h.c.broker_heartbeat(&req, h.next_offset, h.now).unwrap();
    assert!(out.records.is_empty() && out.response.is_fenced && out.response.is_caught_up);
    let reply = h.heartbeat(1, false);
    assert!(!reply.is_fenced && reply.is_caught_up);
    assert!(!h.c.state().brokers[&1].fenced);
}

#[test]
fn session_expiry_fences_after_the_timeout_only() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    // 9 s pass with broker 2 silent: its session is still valid at exactly the timeout.
    h.advance(8_000, &[0, 1]);
    assert!(!h.c.state().brokers[&2].fenced);
    let last = h.c.next_tick_ms();
    h.now = last - 1;
    assert!(h.c.tick(h.now).is_empty());
    h.now = last;
    let recs = h.c.tick(h.now);
    assert!(
        matches!(recs.last(), Some(MetadataRecord::BrokerRegistrationChange(r)) if r.broker_id == 2 && r.fenced == 1)
    );
    h.apply(&recs);
    assert!(h.c.state().brokers[&2].fenced);
    assert!(!h.c.state().brokers[&0].fenced && !h.c.state().brokers[&1].fenced);
}

#[test]
fn controlled_shutdown_moves_leadership_before_the_broker_may_stop() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 6, 3).unwrap();
    let led_by_0 = (0..6).filter(|&p| h.partition("t", p).leader == 0).count();
    assert!(led_by_0 > 0);
    let reply = h.heartbeat(0, true);
    assert!(reply.in_controlled_shutdown && !reply.should_shut_down);
    assert!(h.c.state().brokers[&0].in_controlled_shutdown);
    for p in 0..6 {
        let part = h.partition("t", p);
        assert_ne!(
            part.leader, 0,
            "partition {p} still led by the stopping broker"
        );
        assert!(!part.isr.contains(&0));
    }
    h.check_invariants();
    // The others have not yet fetched past the shutdown batch: not yet.
    let req = h.heartbeat_req(0, false, true);
    let out = h.c.broker_heartbeat(&req, h.next_offset, h.now).unwrap();
    // Broker 1 and 2 report the current offset: now it may stop.
    h.heartbeat(1, false);
    h.heartbeat(2, false);
    let reply = h.heartbeat(0, true);
    assert!(
        reply.should_shut_down,
        "{reply:?} (before: {:?})",
        out.response
    );
    assert!(h.c.state().brokers[&0].fenced);
}

#[test]
fn a_broker_leading_nothing_shuts_down_at_once() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None]);
    let reply = h.heartbeat(1, true);
    assert!(reply.should_shut_down && reply.is_fenced);
}

#[test]
fn unregister_moves_leadership_and_removes_the_broker() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None, None]);
    h.create("t", 3, 2).unwrap();
    let e = h.c.unregister_broker(9).unwrap_err();
    assert_eq!(e.code, ErrorCode::BrokerIdNotRegistered);
    assert_eq!(
        e.message.as_deref(),
        Some("Broker ID 9 is not currently registered")
    );
    let out = h.c.unregister_broker(1).unwrap();
    h.apply(&out.records);
    assert!(!h.c.state().brokers.contains_key(&1));
    for p in 0..3 {
        assert_ne!(h.partition("t", p).leader, 1);
    }
    h.check_invariants();
}

#[test]
fn producer_id_blocks_never_overlap() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None]);
    let mut blocks = Vec::new();
    for i in 0..10 {
        let b = i % 2;
        let out = h.c.allocate_producer_ids(b, h.epochs[&b]).unwrap();
        h.apply(&out.records);
        blocks.push(out.response);
    }
    for w in blocks.windows(2) {
        assert_eq!(w[0].first_producer_id + 1000, w[1].first_producer_id);
        assert_eq!(w[0].size, 1000);
    }
    assert_eq!(blocks[0].first_producer_id, 0);
    let e = h.c.allocate_producer_ids(0, 12345).unwrap_err();
    assert_eq!(e.code, ErrorCode::StaleBrokerEpoch);
    // A controller rebuilt from the log continues after the last block.
    let state = h.c.state().clone();
    assert_eq!(state.next_producer_id, 10_000);
}

#[test]
fn producer_ids_exhaustion_is_unknown_server_error() {
    let mut h = Harness::new(true);
    h.brokers(&[None]);
    h.apply(&[MetadataRecord::ProducerIds(
        arus_protocol::metadata::ProducerIdsRecord {
            broker_id: 0,
            broker_epoch: h.epochs[&0],
            next_producer_id: i64::MAX - 999,
        },
    )]);
    let e = h.c.allocate_producer_ids(0, h.epochs[&0]).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownServerError);
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Exhausted all producerIds as the next block's end producerId has exceeded the int64 type limit"
        )
    );
}

#[test]
fn a_controller_in_the_brokers_own_process_starts_no_session_for_its_dead_incarnation() {
    let mut h = Harness::new(true);
    h.brokers(&[None, None]);
    // The controller of node 1 becomes active again after its process restarted (the
    // implicit one-node cluster: broker 1 can only be this process).
    for own in [false, true] {
        let config = ControllerConfig {
            own_broker_in_process: own,
            ..ControllerConfig::new(CLUSTER_ID, 1)
        };
        let mut c = Controller::from_image(config, 42, &h.image, h.now).unwrap();
        let restarted = h.registration(1, None, 9);
        let result = c.register_broker(&restarted, h.next_offset, h.now);
        if own {
            assert!(result.is_ok(), "{:?}", result.err());
        } else {
            let e = result.unwrap_err();
            assert_eq!(e.code, ErrorCode::DuplicateBrokerRegistration);
        }
        // Another node's broker keeps its session either way.
        let other = h.registration(0, None, 9);
        let e = c.register_broker(&other, h.next_offset, h.now).unwrap_err();
        assert_eq!(e.code, ErrorCode::DuplicateBrokerRegistration);
    }
}

#[test]
fn a_batch_replayed_as_one_log_entry_registers_at_the_entry_offset() {
    // A registration batch that also moves leaderships: in a log whose offsets count
    // entries (arus-raft's), every record is at the entry's offset, which is what the broker
    // reports once it has applied the batch.
    let mut h = Harness::new(true);
    h.brokers(&[None]);
    h.create("t", 3, 1).unwrap();
    // Broker 0 restarts with a new incarnation: its partitions leave it in the same batch.
    let config = ControllerConfig {
        own_broker_in_process: true,
        ..ControllerConfig::new(CLUSTER_ID, 0)
    };
    let mut c = Controller::from_image(config, 42, &h.image, h.now).unwrap();
    let out = c
        .register_broker(&h.registration(0, None, 9), 50, h.now)
        .unwrap();
    assert!(out.records.len() > 1, "{:?}", out.records);
    c.replay_entry(&out.records, 50).unwrap();
    assert_eq!(c.state().register_offsets[&0], 50);
}

#[test]
fn in_a_log_of_batch_offsets_a_controlled_shutdown_ends_once_the_others_reach_its_entry() {
    // arus-raft's log gives a batch one offset. Counting the shutdown batch's records (as
    // Kafka's log must) would wait for an offset the log reaches only with later writes.
    for unit in [OffsetUnit::Batch, OffsetUnit::Record] {
        let mut h = Harness::new(true);
        h.brokers(&[None, None, None]);
        h.create("t", 6, 3).unwrap();
        let config = ControllerConfig {
            offsets: unit,
            ..ControllerConfig::new(CLUSTER_ID, 0)
        };
        let mut c = Controller::from_image(config, 42, &h.image, h.now).unwrap();
        let entry = h.next_offset;
        let heartbeat = |c: &mut Controller, id: i32, shut: bool, at: i64| {
            let mut req = h.heartbeat_req(id, false, shut);
            req.current_metadata_offset = at;
            c.broker_heartbeat(&req, entry + 1, h.now).unwrap()
        };
        let mut req = h.heartbeat_req(0, false, true);
        req.current_metadata_offset = entry - 1;
        let out = c.broker_heartbeat(&req, entry, h.now).unwrap();
        assert!(out.records.len() > 1, "{:?}", out.records);
        c.replay_entry(&out.records, entry).unwrap();
        // Every broker has applied the shutdown batch's entry.
        heartbeat(&mut c, 1, false, entry);
        heartbeat(&mut c, 2, false, entry);
        let reply = heartbeat(&mut c, 0, true, entry).response;
        assert_eq!(
            reply.should_shut_down,
            unit == OffsetUnit::Batch,
            "{unit:?}"
        );
    }
}
