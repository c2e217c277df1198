//! Coordinator state-table tests: each test names the Kafka rule it checks.

use arus_protocol::ErrorCode as E;

use crate::records::{decode_record, encode_record};
use crate::{
    MarkerJob, ProducerIdSource, TopicPartition, TxnConfig, TxnCoordinator, TxnEffects, TxnRecord,
    TxnState,
};

/// Hands out 1000, 1001, … (or an error when `fail` is set).
struct Ids {
    next: i64,
    fail: bool,
}

impl ProducerIdSource for Ids {
    fn next_producer_id(&mut self) -> Result<i64, E> {
        if self.fail {
            return Err(E::CoordinatorLoadInProgress);
        }
        self.next += 1;
        Ok(self.next - 1)
    }
}

fn ids() -> Ids {
    Ids {
        next: 1000,
        fail: false,
    }
}

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

const T: i32 = 60_000;

/// A coordinator with transactional id "tx" initialised at epoch 0 (pid 1000).
fn setup() -> (TxnCoordinator, Ids) {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    let mut ids = ids();
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 0),
        Ok((1000, 0))
    );
    c.take_effects();
    (c, ids)
}

fn only_record(fx: &TxnEffects) -> &TxnRecord {
    assert_eq!(fx.records.len(), 1, "{fx:?}");
    &fx.records[0]
}

fn state_of(fx: &TxnEffects, i: usize) -> TxnState {
    fx.records[i]
        .value
        .as_ref()
        .map(|v| v.state)
        .unwrap_or(TxnState::Dead)
}

/// Runs "tx" (pid, epoch) through add partitions → commit/abort → markers written.
fn run_txn(c: &mut TxnCoordinator, pid: i64, epoch: i16, commit: bool, now: i64) {
    c.add_partitions("tx", pid, epoch, &[tp("a", 0)], now)
        .unwrap();
    c.end_txn("tx", pid, epoch, commit, now).unwrap();
    let fx = c.take_effects();
    c.markers_written(&fx.markers[0], now);
    c.take_effects();
}

// ---------------------------------------------------------------- InitProducerId

#[test]
fn init_without_transactional_id_is_a_fresh_id_and_stores_nothing() {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    let mut ids = ids();
    assert_eq!(
        c.init_producer_id(None, -5, None, &mut ids, 0),
        Ok((1000, 0))
    );
    assert_eq!(
        c.init_producer_id(None, 0, None, &mut ids, 0),
        Ok((1001, 0))
    );
    assert!(c.take_effects().is_empty());
    assert!(c.is_empty());
    ids.fail = true;
    assert_eq!(
        c.init_producer_id(None, 0, None, &mut ids, 0),
        Err(E::CoordinatorLoadInProgress)
    );
}

#[test]
fn init_rejects_bad_timeout_and_empty_id() {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    let mut ids = ids();
    for t in [0, -1, 900_001] {
        assert_eq!(
            c.init_producer_id(Some("tx"), t, None, &mut ids, 0),
            Err(E::InvalidTransactionTimeout)
        );
    }
    assert_eq!(
        c.init_producer_id(Some(""), T, None, &mut ids, 0),
        Err(E::InvalidRequest)
    );
    assert!(c.take_effects().is_empty());
    assert!(
        c.init_producer_id(Some("tx"), 900_000, None, &mut ids, 0)
            .is_ok()
    );
}

#[test]
fn init_new_id_writes_empty_record_at_epoch_0() {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    let mut ids = ids();
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 7),
        Ok((1000, 0))
    );
    let fx = c.take_effects();
    let r = only_record(&fx);
    assert_eq!(r.transactional_id, "tx");
    let v = r.value.as_ref().unwrap();
    assert_eq!(
        (v.producer_id, v.producer_epoch, v.timeout_ms, v.state),
        (1000, 0, T, TxnState::Empty)
    );
    assert_eq!(
        (v.start_ms, v.last_update_ms, v.prev_producer_id),
        (-1, 7, 1000)
    );
    assert!(v.partitions.is_empty());
    assert!(fx.markers.is_empty());
    assert_eq!(c.transactional_id_of(1000), Some("tx"));
}

#[test]
fn init_new_id_with_expected_pair_gets_the_new_id() {
    // A producer recovering from UNKNOWN_PRODUCER_ID names its old pair; the id is unknown
    // here (expired), so the new producer id is returned (isValidProducerId rule 1).
    let mut c = TxnCoordinator::new(TxnConfig::default());
    let mut ids = ids();
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((77, 3)), &mut ids, 0),
        Ok((1000, 0))
    );
}

#[test]
fn init_new_id_when_producer_ids_are_unavailable() {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    let mut ids = ids();
    ids.fail = true;
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 0),
        Err(E::CoordinatorLoadInProgress)
    );
    assert!(c.is_empty());
    assert!(c.take_effects().is_empty());
}

#[test]
fn init_existing_bumps_epoch_from_empty_and_complete_states() {
    let (mut c, mut ids) = setup();
    // Empty → bump.
    assert_eq!(
        c.init_producer_id(Some("tx"), 30_000, None, &mut ids, 5),
        Ok((1000, 1))
    );
    let fx = c.take_effects();
    let v = only_record(&fx).value.clone().unwrap();
    assert_eq!(
        (v.producer_epoch, v.timeout_ms, v.state),
        (1, 30_000, TxnState::Empty)
    );
    // CompleteCommit → bump.
    run_txn(&mut c, 1000, 1, true, 6);
    assert_eq!(c.state("tx"), Some(TxnState::CompleteCommit));
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 7),
        Ok((1000, 2))
    );
    // CompleteAbort → bump.
    run_txn(&mut c, 1000, 2, false, 8);
    assert_eq!(c.state("tx"), Some(TxnState::CompleteAbort));
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 9),
        Ok((1000, 3))
    );
    let d = c.describe("tx").unwrap();
    assert_eq!((d.state, d.start_ms), ("Empty", -1));
}

#[test]
fn init_during_prepare_states_is_concurrent_transactions() {
    for commit in [true, false] {
        let (mut c, mut ids) = setup();
        c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 1).unwrap();
        c.end_txn("tx", 1000, 0, commit, 2).unwrap();
        c.take_effects();
        assert_eq!(
            c.init_producer_id(Some("tx"), T, None, &mut ids, 3),
            Err(E::ConcurrentTransactions)
        );
        assert!(c.take_effects().is_empty());
    }
}

#[test]
fn init_during_ongoing_fences_and_aborts() {
    let (mut c, mut ids) = setup();
    c.add_partitions("tx", 1000, 0, &[tp("a", 0), tp("b", 1)], 1)
        .unwrap();
    c.take_effects();
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 2),
        Err(E::ConcurrentTransactions)
    );
    let fx = c.take_effects();
    let v = only_record(&fx).value.clone().unwrap();
    assert_eq!((v.state, v.producer_epoch), (TxnState::PrepareAbort, 1));
    assert_eq!(v.start_ms, 1);
    assert_eq!(
        fx.markers,
        vec![MarkerJob {
            transactional_id: "tx".into(),
            producer_id: 1000,
            producer_epoch: 1,
            coordinator_epoch: 0,
            commit: false,
            partitions: vec![tp("a", 0), tp("b", 1)],
        }]
    );
    // The old producer is fenced everywhere.
    assert_eq!(
        c.add_partitions("tx", 1000, 0, &[tp("c", 0)], 3),
        Err(E::ProducerFenced)
    );
    assert_eq!(c.end_txn("tx", 1000, 0, true, 3), Err(E::ProducerFenced));
    assert_eq!(
        c.verify_partitions(1000, 0, &[tp("a", 0)]),
        vec![E::InvalidProducerEpoch]
    );
    // Retried while the abort is in progress.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 3),
        Err(E::ConcurrentTransactions)
    );
    c.markers_written(&fx.markers[0], 4);
    let fx2 = c.take_effects();
    assert_eq!(state_of(&fx2, 0), TxnState::CompleteAbort);
    // Retried after: a second bump.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 5),
        Ok((1000, 2))
    );
}

#[test]
fn kip360_bump_with_expected_epoch_and_retry() {
    let (mut c, mut ids) = setup();
    // The producer holds (1000, 0) and asks for a bump.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((1000, 0)), &mut ids, 1),
        Ok((1000, 1))
    );
    c.take_effects();
    // Its answer was lost; the retry names (1000, 0) again: the same pair, not a new bump.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((1000, 0)), &mut ids, 2),
        Ok((1000, 1))
    );
    // Kafka writes a record for the retry too (same epoch).
    let fx = c.take_effects();
    assert_eq!(only_record(&fx).value.as_ref().unwrap().producer_epoch, 1);
    // With the current epoch: a real bump.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((1000, 1)), &mut ids, 3),
        Ok((1000, 2))
    );
}

#[test]
fn kip360_stale_pair_is_fenced() {
    let (mut c, mut ids) = setup();
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 1),
        Ok((1000, 1))
    );
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 2),
        Ok((1000, 2))
    );
    c.take_effects();
    // A zombie holding epoch 0: neither current (2) nor the last one (cleared by a bump
    // without an expected epoch).
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((1000, 0)), &mut ids, 3),
        Err(E::ProducerFenced)
    );
    // Another producer id entirely.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((555, 2)), &mut ids, 3),
        Err(E::ProducerFenced)
    );
    assert!(c.take_effects().is_empty());
}

#[test]
fn kip360_fencing_applies_before_state_checks() {
    let (mut c, mut ids) = setup();
    c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 1).unwrap();
    c.take_effects();
    // Ongoing, but the expected producer id is foreign: fenced, nothing aborted.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((9, 0)), &mut ids, 2),
        Err(E::ProducerFenced)
    );
    assert!(c.take_effects().is_empty());
    assert_eq!(c.state("tx"), Some(TxnState::Ongoing));
}

/// Brings "tx" to (pid 1000, epoch `epoch`) in Empty through replay.
fn at_epoch(epoch: i16) -> (TxnCoordinator, Ids) {
    let (mut c, ids) = setup();
    let mut v = c_value(&c);
    v.producer_epoch = epoch;
    c.replay(TxnRecord {
        transactional_id: "tx".into(),
        value: Some(v),
    });
    (c, ids)
}

fn c_value(c: &TxnCoordinator) -> crate::TxnLogValue {
    let d = c.describe("tx").unwrap();
    crate::TxnLogValue {
        producer_id: d.producer_id,
        producer_epoch: d.producer_epoch,
        timeout_ms: d.timeout_ms,
        state: TxnState::Empty,
        partitions: vec![],
        last_update_ms: 0,
        start_ms: -1,
        prev_producer_id: d.producer_id,
        next_producer_id: -1,
        client_transaction_version: 0,
    }
}

#[test]
fn epoch_exhaustion_rotates_the_producer_id() {
    // 32765 is not exhausted: bump to 32766.
    let (mut c, mut ids) = at_epoch(32765);
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((1000, 32765)), &mut ids, 1),
        Ok((1000, 32766))
    );
    // 32766 is exhausted: new producer id 1001 at epoch 0.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((1000, 32766)), &mut ids, 2),
        Ok((1001, 0))
    );
    let fx = c.take_effects();
    let v = fx.records.last().unwrap().value.clone().unwrap();
    assert_eq!(
        (v.producer_id, v.producer_epoch, v.prev_producer_id),
        (1001, 0, 1000)
    );
    assert_eq!(c.transactional_id_of(1001), Some("tx"));
    assert_eq!(c.transactional_id_of(1000), None);
    // The answer was lost: the retry names the old producer id with its exhausted epoch
    // (isValidProducerId rule 3) and gets the same new pair.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((1000, 32766)), &mut ids, 3),
        Ok((1001, 0))
    );
    // The old id with a non-exhausted epoch is a zombie.
    let (mut c2, mut ids2) = at_epoch(32766);
    assert_eq!(
        c2.init_producer_id(Some("tx"), T, None, &mut ids2, 1),
        Ok((1001, 0))
    );
    assert_eq!(
        c2.init_producer_id(Some("tx"), T, Some((1000, 5)), &mut ids2, 2),
        Err(E::ProducerFenced)
    );
}

#[test]
fn epoch_exhaustion_without_ids_changes_nothing() {
    let (mut c, mut ids) = at_epoch(32766);
    ids.fail = true;
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 1),
        Err(E::CoordinatorLoadInProgress)
    );
    assert!(c.take_effects().is_empty());
    assert_eq!(c.describe("tx").unwrap().producer_epoch, 32766);
}

#[test]
fn fencing_at_exhausted_epoch_then_rotation() {
    // Ongoing at 32766: the fence bumps to 32767 (the reserved epoch), the retry rotates.
    let (mut c, mut ids) = at_epoch(32766);
    c.add_partitions("tx", 1000, 32766, &[tp("a", 0)], 1)
        .unwrap();
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 2),
        Err(E::ConcurrentTransactions)
    );
    let fx = c.take_effects();
    assert_eq!(fx.markers[0].producer_epoch, i16::MAX);
    c.markers_written(&fx.markers[0], 3);
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 4),
        Ok((1001, 0))
    );
}

// ---------------------------------------------------------------- AddPartitionsToTxn

#[test]
fn add_partitions_errors() {
    let (mut c, _) = setup();
    let p = [tp("a", 0)];
    assert_eq!(
        c.add_partitions("nope", 1000, 0, &p, 1),
        Err(E::InvalidProducerIdMapping)
    );
    assert_eq!(
        c.add_partitions("tx", 999, 0, &p, 1),
        Err(E::InvalidProducerIdMapping)
    );
    assert_eq!(
        c.add_partitions("tx", 1000, 1, &p, 1),
        Err(E::ProducerFenced)
    );
    assert_eq!(c.add_partitions("", 1000, 0, &p, 1), Err(E::InvalidRequest));
    assert!(c.take_effects().is_empty());
}

#[test]
fn add_partitions_starts_and_extends_the_transaction() {
    let (mut c, _) = setup();
    c.add_partitions("tx", 1000, 0, &[tp("a", 1)], 10).unwrap();
    let fx = c.take_effects();
    let v = only_record(&fx).value.clone().unwrap();
    assert_eq!(
        (v.state, v.start_ms, v.last_update_ms),
        (TxnState::Ongoing, 10, 10)
    );
    assert_eq!(v.partitions, vec![tp("a", 1)]);
    // Already there (a retry): Ok, no record.
    c.add_partitions("tx", 1000, 0, &[tp("a", 1)], 11).unwrap();
    assert!(c.take_effects().is_empty());
    // New partitions: record with the union; the start time stays.
    c.add_partitions("tx", 1000, 0, &[tp("a", 1), tp("b", 0)], 12)
        .unwrap();
    let fx = c.take_effects();
    let v = only_record(&fx).value.clone().unwrap();
    assert_eq!((v.start_ms, v.last_update_ms), (10, 12));
    assert_eq!(v.partitions, vec![tp("a", 1), tp("b", 0)]);
}

#[test]
fn add_partitions_during_prepare_is_concurrent_and_after_complete_restarts() {
    let (mut c, _) = setup();
    c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 1).unwrap();
    c.end_txn("tx", 1000, 0, true, 2).unwrap();
    let fx = c.take_effects();
    assert_eq!(
        c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 3),
        Err(E::ConcurrentTransactions)
    );
    c.markers_written(&fx.markers[0], 4);
    c.take_effects();
    // From CompleteCommit: a new transaction with a new start time.
    c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 5).unwrap();
    let d = c.describe("tx").unwrap();
    assert_eq!((d.state, d.start_ms), ("Ongoing", 5));
}

#[test]
fn add_partitions_in_dead_or_fence_states() {
    for (state, err) in [
        (TxnState::PrepareEpochFence, E::ConcurrentTransactions),
        (TxnState::PrepareAbort, E::ConcurrentTransactions),
    ] {
        let (mut c, _) = setup();
        let mut v = c_value(&c);
        v.state = state;
        v.partitions = vec![tp("a", 0)];
        c.replay(TxnRecord {
            transactional_id: "tx".into(),
            value: Some(v),
        });
        assert_eq!(c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 1), Err(err));
        assert_eq!(
            c.end_txn("tx", 1000, 0, true, 1),
            Err(if state == TxnState::PrepareAbort {
                E::InvalidTxnState
            } else {
                E::ConcurrentTransactions
            })
        );
    }
}

// ---------------------------------------------------------------- EndTxn

#[test]
fn end_txn_commit_and_abort_with_markers() {
    for commit in [true, false] {
        let (mut c, _) = setup();
        c.add_partitions("tx", 1000, 0, &[tp("b", 2), tp("a", 0)], 1)
            .unwrap();
        c.take_effects();
        c.end_txn("tx", 1000, 0, commit, 2).unwrap();
        let fx = c.take_effects();
        let prepare = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        let v = only_record(&fx).value.clone().unwrap();
        assert_eq!((v.state, v.producer_epoch, v.start_ms), (prepare, 0, 1));
        assert_eq!(v.partitions, vec![tp("a", 0), tp("b", 2)]);
        let job = MarkerJob {
            transactional_id: "tx".into(),
            producer_id: 1000,
            producer_epoch: 0,
            coordinator_epoch: 0,
            commit,
            partitions: vec![tp("a", 0), tp("b", 2)],
        };
        assert_eq!(fx.markers, vec![job.clone()]);
        // Retry while the markers are being written.
        assert_eq!(
            c.end_txn("tx", 1000, 0, commit, 3),
            Err(E::ConcurrentTransactions)
        );
        // Wrong direction.
        assert_eq!(
            c.end_txn("tx", 1000, 0, !commit, 3),
            Err(E::InvalidTxnState)
        );
        c.markers_written(&job, 4);
        let fx = c.take_effects();
        let v = only_record(&fx).value.clone().unwrap();
        let complete = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        assert_eq!((v.state, v.last_update_ms, v.start_ms), (complete, 4, 1));
        assert!(v.partitions.is_empty());
        // The same job again is stale: ignored.
        c.markers_written(&job, 5);
        assert!(c.take_effects().is_empty());
        // Retry after completion: Ok, nothing written. Wrong direction: INVALID_TXN_STATE.
        assert_eq!(c.end_txn("tx", 1000, 0, commit, 6), Ok(()));
        assert_eq!(
            c.end_txn("tx", 1000, 0, !commit, 6),
            Err(E::InvalidTxnState)
        );
        assert!(c.take_effects().is_empty());
    }
}

#[test]
fn end_txn_errors() {
    let (mut c, _) = setup();
    assert_eq!(
        c.end_txn("nope", 1000, 0, true, 1),
        Err(E::InvalidProducerIdMapping)
    );
    assert_eq!(
        c.end_txn("tx", 1, 0, true, 1),
        Err(E::InvalidProducerIdMapping)
    );
    assert_eq!(c.end_txn("tx", 1000, 3, true, 1), Err(E::ProducerFenced));
    // Empty: no transaction to end, either way.
    assert_eq!(c.end_txn("tx", 1000, 0, true, 1), Err(E::InvalidTxnState));
    assert_eq!(c.end_txn("tx", 1000, 0, false, 1), Err(E::InvalidTxnState));
    assert_eq!(c.end_txn("", 1000, 0, false, 1), Err(E::InvalidRequest));
    assert!(c.take_effects().is_empty());
}

#[test]
fn end_txn_without_partitions_completes_at_once() {
    let (mut c, _) = setup();
    c.add_partitions("tx", 1000, 0, &[], 1).unwrap();
    c.end_txn("tx", 1000, 0, true, 2).unwrap();
    let fx = c.take_effects();
    assert!(fx.markers.is_empty());
    assert_eq!(state_of(&fx, 1), TxnState::PrepareCommit);
    assert_eq!(state_of(&fx, 2), TxnState::CompleteCommit);
}

#[test]
fn stale_marker_jobs_are_ignored() {
    let (mut c, _) = setup();
    c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 1).unwrap();
    c.end_txn("tx", 1000, 0, true, 2).unwrap();
    let job = c.take_effects().markers.remove(0);
    for bad in [
        MarkerJob {
            producer_epoch: 1,
            ..job.clone()
        },
        MarkerJob {
            producer_id: 7,
            ..job.clone()
        },
        MarkerJob {
            commit: false,
            ..job.clone()
        },
        MarkerJob {
            coordinator_epoch: 9,
            ..job.clone()
        },
        MarkerJob {
            transactional_id: "other".into(),
            ..job.clone()
        },
    ] {
        c.markers_written(&bad, 3);
        assert!(c.take_effects().is_empty());
        assert_eq!(c.state("tx"), Some(TxnState::PrepareCommit));
    }
    c.markers_written(&job, 3);
    assert_eq!(c.state("tx"), Some(TxnState::CompleteCommit));
}

// ---------------------------------------------------------------- verification

#[test]
fn verify_partitions_rules() {
    let (mut c, _) = setup();
    let a = tp("a", 0);
    let b = tp("b", 0);
    // Empty: nothing added.
    assert_eq!(
        c.verify_partitions(1000, 0, std::slice::from_ref(&a)),
        vec![E::InvalidTxnState]
    );
    c.add_partitions("tx", 1000, 0, std::slice::from_ref(&a), 1)
        .unwrap();
    assert_eq!(
        c.verify_partitions(1000, 0, &[a.clone(), b.clone()]),
        vec![E::None, E::InvalidTxnState]
    );
    assert_eq!(
        c.verify_partitions(1000, 1, std::slice::from_ref(&a)),
        vec![E::InvalidProducerEpoch]
    );
    assert_eq!(
        c.verify_partitions(4242, 0, &[a.clone(), b.clone()]),
        vec![E::InvalidProducerIdMapping; 2]
    );
    assert_eq!(
        c.verify_partitions_for("other", 1000, 0, std::slice::from_ref(&a)),
        vec![E::InvalidProducerIdMapping]
    );
    assert_eq!(
        c.verify_partitions_for("tx", 1000, 0, std::slice::from_ref(&a)),
        vec![E::None]
    );
    c.end_txn("tx", 1000, 0, false, 2).unwrap();
    let job = c.take_effects().markers.remove(0);
    assert_eq!(
        c.verify_partitions(1000, 0, std::slice::from_ref(&a)),
        vec![E::ConcurrentTransactions]
    );
    assert_eq!(
        crate::produce_error_for_verification(E::ConcurrentTransactions),
        E::NotEnoughReplicas
    );
    assert_eq!(
        crate::produce_error_for_verification(E::InvalidTxnState),
        E::InvalidTxnState
    );
    c.markers_written(&job, 3);
    // Complete: the partitions are no longer in a transaction.
    assert_eq!(c.verify_partitions(1000, 0, &[a]), vec![E::InvalidTxnState]);
    assert_eq!(
        c.partition_of_producer(1000, 50),
        Some(crate::transaction_partition_for("tx", 50))
    );
    assert_eq!(c.partition_of_producer(1, 50), None);
}

// ---------------------------------------------------------------- timers

#[test]
fn timed_out_transaction_is_aborted_with_a_bumped_epoch() {
    let (mut c, mut ids) = setup();
    c.tick(0); // first periodic run; next abort check at 10000
    c.take_effects();
    c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 100).unwrap();
    c.take_effects();
    assert_eq!(c.next_deadline(), 10_000);
    // start + timeout = 60100, not < 60100: still open at the check at 60100.
    for now in [10_000, 20_000, 30_000, 40_000, 50_000, 60_000] {
        c.tick(now);
        assert!(c.take_effects().is_empty(), "at {now}");
    }
    c.abort_timed_out(60_100); // exactly start + timeout: not yet
    assert!(c.take_effects().is_empty());
    c.tick(70_000);
    let fx = c.take_effects();
    let v = only_record(&fx).value.clone().unwrap();
    assert_eq!((v.state, v.producer_epoch), (TxnState::PrepareAbort, 1));
    assert_eq!(fx.markers.len(), 1);
    assert!(!fx.markers[0].commit);
    assert_eq!(fx.markers[0].producer_epoch, 1);
    // The zombie that left it open is fenced.
    assert_eq!(
        c.end_txn("tx", 1000, 0, true, 70_001),
        Err(E::ProducerFenced)
    );
    assert_eq!(
        c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 70_001),
        Err(E::ProducerFenced)
    );
    assert_eq!(
        c.verify_partitions(1000, 0, &[tp("a", 0)]),
        vec![E::InvalidProducerEpoch]
    );
    c.markers_written(&fx.markers[0], 70_002);
    assert_eq!(c.state("tx"), Some(TxnState::CompleteAbort));
    // The zombie's KIP-360 init with its old epoch is fenced too.
    assert_eq!(
        c.init_producer_id(Some("tx"), T, Some((1000, 0)), &mut ids, 70_003),
        Err(E::ProducerFenced)
    );
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 70_003),
        Ok((1000, 2))
    );
}

#[test]
fn timeout_check_is_periodic() {
    let (mut c, _) = setup();
    c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 0).unwrap();
    c.tick(100); // runs: not timed out; next run at 10100
    c.tick(60_001 + 5000); // 65001 ≥ 10100: runs, timed out
    assert_eq!(c.state("tx"), Some(TxnState::PrepareAbort));
    let (mut c, _) = setup();
    c.add_partitions("tx", 1000, 0, &[tp("a", 0)], 0).unwrap();
    c.tick(59_000); // next at 69000
    c.tick(61_000); // not due
    assert_eq!(c.state("tx"), Some(TxnState::Ongoing));
    c.abort_timed_out(61_000); // direct call
    assert_eq!(c.state("tx"), Some(TxnState::PrepareAbort));
}

#[test]
fn transactional_ids_expire_when_idle() {
    let cfg = TxnConfig {
        id_expiration_ms: 1000,
        ..TxnConfig::default()
    };
    let mut c = TxnCoordinator::new(cfg);
    let mut ids = ids();
    c.init_producer_id(Some("idle"), T, None, &mut ids, 0)
        .unwrap(); // Empty, updated at 0
    c.init_producer_id(Some("busy"), T, None, &mut ids, 0)
        .unwrap();
    c.add_partitions("busy", 1001, 0, &[tp("a", 0)], 0).unwrap(); // Ongoing
    c.init_producer_id(Some("fresh"), T, None, &mut ids, 500)
        .unwrap();
    c.take_effects();
    c.expire_transactional_ids(999);
    assert!(c.take_effects().is_empty());
    c.expire_transactional_ids(1000); // last update 0 <= 1000 - 1000
    let fx = c.take_effects();
    assert_eq!(
        fx.records,
        vec![TxnRecord {
            transactional_id: "idle".into(),
            value: None
        }]
    );
    assert_eq!(c.state("idle"), None);
    assert_eq!(c.describe("idle"), None);
    assert_eq!(c.transactional_id_of(1000), None);
    assert_eq!(c.state("busy"), Some(TxnState::Ongoing));
    // Through tick (periodic): "fresh" expires at 1500.
    c.tick(1500);
    let fx = c.take_effects();
    assert!(
        fx.records
            .iter()
            .any(|r| r.transactional_id == "fresh" && r.value.is_none())
    );
    // An expired id starts over with a new producer id.
    assert_eq!(
        c.init_producer_id(Some("idle"), T, None, &mut ids, 2000),
        Ok((1003, 0))
    );
}

#[test]
fn next_deadline_without_ids_is_never() {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    assert_eq!(c.next_deadline(), i64::MAX);
    c.init_producer_id(Some("x"), T, None, &mut ids(), 0)
        .unwrap();
    assert!(c.next_deadline() <= 0);
    c.tick(5);
    assert_eq!(c.next_deadline(), 10_005);
}

// ---------------------------------------------------------------- describe / list

#[test]
fn describe_and_list() {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    let mut ids = ids();
    c.init_producer_id(Some("a"), T, None, &mut ids, 0).unwrap(); // 1000 Empty
    c.init_producer_id(Some("b"), T, None, &mut ids, 0).unwrap(); // 1001
    c.init_producer_id(Some("c"), T, None, &mut ids, 0).unwrap(); // 1002
    c.add_partitions("b", 1001, 0, &[tp("t", 1), tp("t", 0)], 100)
        .unwrap();
    c.add_partitions("c", 1002, 0, &[tp("t", 2)], 900).unwrap();
    let d = c.describe("b").unwrap();
    assert_eq!(
        (
            d.state,
            d.timeout_ms,
            d.start_ms,
            d.producer_id,
            d.producer_epoch
        ),
        ("Ongoing", T, 100, 1001, 0)
    );
    assert_eq!(d.partitions, vec![tp("t", 0), tp("t", 1)]);
    assert_eq!(c.describe("a").unwrap().start_ms, -1);
    assert_eq!(c.describe("zzz"), None);

    let names = |l: Vec<crate::ListedTxn>| -> Vec<String> {
        l.into_iter().map(|t| t.transactional_id).collect()
    };
    assert_eq!(names(c.list(&[], &[], -1, 1000)), ["a", "b", "c"]);
    assert_eq!(
        names(c.list(&["Ongoing".into()], &[], -1, 1000)),
        ["b", "c"]
    );
    assert_eq!(names(c.list(&[], &[1000, 1002], -1, 1000)), ["a", "c"]);
    assert!(c.list(&["Bogus".into()], &[], -1, 1000).is_empty());
    // Running longer than 500 ms at 1000: b (900 ms) yes, c (100 ms) no; a (start -1) yes.
    assert_eq!(names(c.list(&[], &[], 500, 1000)), ["a", "b"]);
    // Exactly the duration is not "longer than".
    assert_eq!(names(c.list(&["Ongoing".into()], &[], 900, 1000)), ["c"; 0]);
    let l = c.list(&["Empty".into()], &[], -1, 1000);
    assert_eq!(
        l,
        vec![crate::ListedTxn {
            transactional_id: "a".into(),
            producer_id: 1000,
            state: "Empty"
        }]
    );
}

// ---------------------------------------------------------------- loading

#[test]
fn replay_and_finish_loading_resend_markers() {
    // Build a log with the live coordinator, then load it into a fresh one.
    let (mut c, mut ids) = setup();
    let mut log: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    c.init_producer_id(Some("done"), T, None, &mut ids, 0)
        .unwrap(); // 1001
    c.init_producer_id(Some("gone"), T, None, &mut ids, 0)
        .unwrap(); // 1002
    c.init_producer_id(Some("open"), T, None, &mut ids, 0)
        .unwrap(); // 1003
    c.add_partitions("tx", 1000, 0, &[tp("a", 0), tp("b", 3)], 1)
        .unwrap();
    c.end_txn("tx", 1000, 0, true, 2).unwrap(); // PrepareCommit, markers never written
    c.add_partitions("done", 1001, 0, &[tp("a", 0)], 1).unwrap();
    c.end_txn("done", 1001, 0, false, 2).unwrap();
    c.add_partitions("open", 1003, 0, &[tp("c", 0)], 3).unwrap();
    let fx = c.take_effects();
    let done_job = fx
        .markers
        .iter()
        .find(|m| m.transactional_id == "done")
        .unwrap()
        .clone();
    c.markers_written(&done_job, 3);
    let fx2 = c.take_effects();
    for r in fx.records.iter().chain(&fx2.records) {
        log.push(encode_record(r));
    }
    log.push(encode_record(&TxnRecord {
        transactional_id: "gone".into(),
        value: None,
    }));

    let mut d = TxnCoordinator::new(TxnConfig::default());
    for (k, v) in &log {
        d.replay(decode_record(k, v.as_deref()).unwrap());
    }
    d.finish_loading(10);
    let fx = d.take_effects();
    assert!(fx.records.is_empty());
    assert_eq!(
        fx.markers,
        vec![MarkerJob {
            transactional_id: "tx".into(),
            producer_id: 1000,
            producer_epoch: 0,
            coordinator_epoch: 0,
            commit: true,
            partitions: vec![tp("a", 0), tp("b", 3)],
        }]
    );
    assert_eq!(d.state("tx"), Some(TxnState::PrepareCommit));
    assert_eq!(d.state("done"), Some(TxnState::CompleteAbort));
    assert_eq!(d.state("gone"), None);
    assert_eq!(d.state("open"), Some(TxnState::Ongoing));
    assert_eq!(d.describe("open").unwrap().start_ms, 3);
    assert_eq!(d.transactional_id_of(1003), Some("open"));
    assert_eq!(d.transactional_id_of(1002), None);
    assert_eq!(d.verify_partitions(1003, 0, &[tp("c", 0)]), vec![E::None]);
    // The resent markers complete the commit.
    d.markers_written(&fx.markers[0], 11);
    assert_eq!(d.state("tx"), Some(TxnState::CompleteCommit));
    // The client retrying EndTxn(commit) now gets Ok.
    assert_eq!(d.end_txn("tx", 1000, 0, true, 12), Ok(()));
    // A loaded open transaction still times out.
    d.tick(100_000);
    assert_eq!(d.state("open"), Some(TxnState::PrepareAbort));
}

#[test]
fn replay_last_record_wins_and_fence_state_becomes_an_abort() {
    let (c, _) = setup();
    let mut d = TxnCoordinator::new(TxnConfig::default());
    let mut v = c_value(&c);
    d.replay(TxnRecord {
        transactional_id: "tx".into(),
        value: Some(v.clone()),
    });
    v.producer_id = 2000;
    v.producer_epoch = 4;
    v.state = TxnState::PrepareEpochFence;
    v.partitions = vec![tp("z", 1)];
    d.replay(TxnRecord {
        transactional_id: "tx".into(),
        value: Some(v.clone()),
    });
    assert_eq!(d.transactional_id_of(1000), None);
    assert_eq!(d.transactional_id_of(2000), Some("tx"));
    d.finish_loading(5);
    let fx = d.take_effects();
    assert_eq!(state_of(&fx, 0), TxnState::PrepareAbort);
    assert_eq!(fx.markers.len(), 1);
    assert_eq!(
        (fx.markers[0].producer_epoch, fx.markers[0].commit),
        (4, false)
    );
    // A Dead value acts as a tombstone.
    v.state = TxnState::Dead;
    d.replay(TxnRecord {
        transactional_id: "tx".into(),
        value: Some(v),
    });
    assert_eq!(d.state("tx"), None);
    assert_eq!(d.transactional_id_of(2000), None);
}

#[test]
fn kip360_retry_is_not_remembered_across_a_reload() {
    // lastProducerEpoch is not persisted (Kafka: "a retry that spans a coordinator change
    // will fail").
    let (mut c, mut ids) = setup();
    c.init_producer_id(Some("tx"), T, Some((1000, 0)), &mut ids, 1)
        .unwrap();
    let fx = c.take_effects();
    let mut d = TxnCoordinator::new(TxnConfig::default());
    d.replay(fx.records[0].clone());
    d.finish_loading(2);
    assert_eq!(
        d.init_producer_id(Some("tx"), T, Some((1000, 0)), &mut ids, 3),
        Err(E::ProducerFenced)
    );
    assert_eq!(
        d.init_producer_id(Some("tx"), T, Some((1000, 1)), &mut ids, 3),
        Ok((1000, 2))
    );
}

// ---------------------------------------------------------------- partition leadership

/// Kafka's `removeTransactionsForTxnTopicPartition`: the ids of a partition no longer led
/// here are forgotten; the others stay; a reload resends the markers of a commit in
/// progress only for the ids it loaded.
#[test]
fn unloading_forgets_only_the_selected_ids() {
    let (mut c, mut ids) = setup();
    assert_eq!(
        c.init_producer_id(Some("other"), T, None, &mut ids, 0),
        Ok((1001, 0))
    );
    c.add_partitions("other", 1001, 0, &[tp("a", 0)], 0)
        .unwrap();
    c.end_txn("other", 1001, 0, true, 0).unwrap();
    c.take_effects();
    assert_eq!(c.unload_where(|id| id == "tx"), 1);
    assert!(c.describe("tx").is_none());
    assert!(c.describe("other").is_some());
    assert!(!c.has_effects());
    c.finish_loading_where(0, |id| id == "tx");
    assert!(!c.has_effects(), "nothing of \"tx\" was in progress");
    c.finish_loading_where(0, |id| id == "other");
    let fx = c.take_effects();
    assert_eq!(fx.markers.len(), 1);
    assert_eq!(fx.markers[0].transactional_id, "other");
}
