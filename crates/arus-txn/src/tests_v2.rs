//! Transactions v2 (KIP-890 part 2): each test names the Kafka 4.4 rule it checks
//! (`TransactionCoordinator.endTransaction`, `TransactionMetadata.prepareAbortOrCommit` /
//! `prepareComplete`).

use arus_protocol::ErrorCode as E;

use crate::records::TxnLogValue;
use crate::{ProducerIdSource, TopicPartition, TxnConfig, TxnCoordinator, TxnRecord, TxnState};

struct Ids(i64);

impl ProducerIdSource for Ids {
    fn next_producer_id(&mut self) -> Result<i64, E> {
        self.0 += 1;
        Ok(self.0 - 1)
    }
}

const T: i32 = 60_000;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("a", p)
}

/// "tx" at pid 1000 epoch 0, Empty, server transaction version 2.
fn setup() -> (TxnCoordinator, Ids) {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    c.set_server_transaction_version(2);
    let mut ids = Ids(1000);
    assert_eq!(
        c.init_producer_id(Some("tx"), T, None, &mut ids, 0),
        Ok((1000, 0))
    );
    c.take_effects();
    (c, ids)
}

/// A coordinator loaded with "tx" Ongoing at `epoch` with partition a-0 (as a TV2 client
/// left it).
fn ongoing_at(epoch: i16) -> (TxnCoordinator, Ids) {
    let mut c = TxnCoordinator::new(TxnConfig::default());
    c.set_server_transaction_version(2);
    c.replay(TxnRecord {
        transactional_id: "tx".into(),
        value: Some(TxnLogValue {
            producer_id: 1000,
            producer_epoch: epoch,
            timeout_ms: T,
            state: TxnState::Ongoing,
            partitions: vec![tp(0)],
            last_update_ms: 5,
            start_ms: 5,
            prev_producer_id: -1,
            next_producer_id: -1,
            client_transaction_version: 2,
        }),
    });
    c.finish_loading(6);
    c.take_effects();
    (c, Ids(2000))
}

fn value(r: &TxnRecord) -> &TxnLogValue {
    r.value.as_ref().unwrap()
}

/// Produce v12 adds a-0 (implicit AddPartitionsToTxn, client version 2).
fn produce_add(c: &mut TxnCoordinator, pid: i64, epoch: i16, now: i64) -> Result<(), E> {
    c.add_partitions_for("tx", pid, epoch, &[tp(0)], 2, now)
}

#[test]
fn implicit_add_records_client_version_2_and_starts_the_transaction() {
    let (mut c, _) = setup();
    produce_add(&mut c, 1000, 0, 10).unwrap();
    let fx = c.take_effects();
    let v = value(&fx.records[0]);
    assert_eq!(v.state, TxnState::Ongoing);
    assert_eq!(v.client_transaction_version, 2);
    assert_eq!(v.start_ms, 10);
}

#[test]
fn commit_bumps_the_epoch_writes_markers_with_it_and_answers_the_new_pair() {
    let (mut c, mut ids) = setup();
    produce_add(&mut c, 1000, 0, 10).unwrap();
    c.take_effects();
    assert_eq!(
        c.end_txn_v2("tx", 1000, 0, true, &mut ids, 20),
        Ok((1000, 1))
    );
    let fx = c.take_effects();
    let prepare = value(&fx.records[0]);
    assert_eq!(prepare.state, TxnState::PrepareCommit);
    assert_eq!(prepare.producer_epoch, 1);
    assert_eq!(prepare.client_transaction_version, 2);
    assert_eq!(prepare.next_producer_id, -1);
    assert_eq!(fx.markers.len(), 1);
    assert_eq!(
        fx.markers[0].producer_epoch, 1,
        "markers carry the bumped epoch"
    );
    assert!(fx.markers[0].commit);
    c.markers_written(&fx.markers[0], 30);
    let fx = c.take_effects();
    let done = value(&fx.records[0]);
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert_eq!((done.producer_id, done.producer_epoch), (1000, 1));
    assert!(done.partitions.is_empty());
}

#[test]
fn abort_bumps_the_epoch_too() {
    let (mut c, mut ids) = setup();
    produce_add(&mut c, 1000, 0, 10).unwrap();
    c.take_effects();
    assert_eq!(
        c.end_txn_v2("tx", 1000, 0, false, &mut ids, 20),
        Ok((1000, 1))
    );
    let fx = c.take_effects();
    assert_eq!(value(&fx.records[0]).state, TxnState::PrepareAbort);
    assert_eq!(fx.markers[0].producer_epoch, 1);
    assert!(!fx.markers[0].commit);
}

#[test]
fn retries_are_recognised_by_the_epoch_before_the_bump() {
    let (mut c, mut ids) = setup();
    produce_add(&mut c, 1000, 0, 10).unwrap();
    c.take_effects();
    c.end_txn_v2("tx", 1000, 0, true, &mut ids, 20).unwrap();
    let fx = c.take_effects();
    // Still writing markers: the same request again is CONCURRENT_TRANSACTIONS, the other
    // direction INVALID_TXN_STATE, the new epoch (no retry) PRODUCER_FENCED.
    assert_eq!(
        c.end_txn_v2("tx", 1000, 0, true, &mut ids, 21),
        Err(E::ConcurrentTransactions)
    );
    assert_eq!(
        c.end_txn_v2("tx", 1000, 0, false, &mut ids, 21),
        Err(E::InvalidTxnState)
    );
    assert_eq!(
        c.end_txn_v2("tx", 1000, 1, true, &mut ids, 21),
        Err(E::ProducerFenced)
    );
    c.markers_written(&fx.markers[0], 30);
    c.take_effects();
    // Completed: the retry answers NONE with the current pair and writes nothing.
    assert_eq!(
        c.end_txn_v2("tx", 1000, 0, true, &mut ids, 40),
        Ok((1000, 1))
    );
    assert!(c.take_effects().is_empty());
    // A retried commit answered as an abort is not a retry of it.
    assert_eq!(
        c.end_txn_v2("tx", 1000, 0, false, &mut ids, 40),
        Err(E::InvalidTxnState)
    );
    // Two epochs back is a zombie.
    let (mut c2, mut ids2) = ongoing_at(5);
    assert_eq!(
        c2.end_txn_v2("tx", 1000, 3, true, &mut ids2, 1),
        Err(E::ProducerFenced)
    );
    assert_eq!(
        c2.end_txn_v2("tx", 999, 5, true, &mut ids2, 1),
        Err(E::InvalidProducerIdMapping)
    );
}

#[test]
fn a_late_produce_of_the_committed_epoch_is_fenced_and_cannot_start_a_transaction() {
    // KIP-890's hanging transaction: a batch of the old epoch arriving after the commit
    // used to open a transaction nobody would end.
    let (mut c, mut ids) = setup();
    produce_add(&mut c, 1000, 0, 10).unwrap();
    c.take_effects();
    c.end_txn_v2("tx", 1000, 0, true, &mut ids, 20).unwrap();
    let fx = c.take_effects();
    c.markers_written(&fx.markers[0], 30);
    c.take_effects();
    assert_eq!(produce_add(&mut c, 1000, 0, 40), Err(E::ProducerFenced));
    assert!(c.take_effects().is_empty());
    assert_eq!(c.state("tx"), Some(TxnState::CompleteCommit));
    // The verification path fences it as well.
    assert_eq!(
        c.verify_partitions(1000, 0, &[tp(0)]),
        vec![E::InvalidProducerEpoch]
    );
    // The producer's own next transaction, at the new epoch, starts.
    produce_add(&mut c, 1000, 1, 50).unwrap();
    let fx = c.take_effects();
    let v = value(&fx.records[0]);
    assert_eq!(
        (v.state, v.producer_epoch, v.start_ms),
        (TxnState::Ongoing, 1, 50)
    );
}

#[test]
fn an_end_of_the_old_epoch_cannot_end_the_next_transaction() {
    // Zombie EndTxn: after commit (epoch 0 → 1) the producer runs a new transaction at 1;
    // a delayed abort from epoch 0 must not end it.
    let (mut c, mut ids) = setup();
    produce_add(&mut c, 1000, 0, 10).unwrap();
    c.take_effects();
    c.end_txn_v2("tx", 1000, 0, true, &mut ids, 20).unwrap();
    let fx = c.take_effects();
    c.markers_written(&fx.markers[0], 30);
    produce_add(&mut c, 1000, 1, 40).unwrap();
    c.take_effects();
    assert_eq!(
        c.end_txn_v2("tx", 1000, 0, false, &mut ids, 50),
        Err(E::ProducerFenced)
    );
    assert_eq!(c.state("tx"), Some(TxnState::Ongoing));
}

#[test]
fn epoch_overflow_moves_to_a_new_producer_id_with_prev_and_next_recorded() {
    let (mut c, mut ids) = ongoing_at(i16::MAX - 1);
    assert_eq!(
        c.end_txn_v2("tx", 1000, i16::MAX - 1, true, &mut ids, 10),
        Ok((2000, 0))
    );
    let fx = c.take_effects();
    let prepare = value(&fx.records[0]);
    assert_eq!(
        (
            prepare.producer_id,
            prepare.producer_epoch,
            prepare.next_producer_id
        ),
        (1000, i16::MAX, 2000)
    );
    assert_eq!(prepare.client_transaction_version, 2);
    assert_eq!(
        (fx.markers[0].producer_id, fx.markers[0].producer_epoch),
        (1000, i16::MAX)
    );
    c.markers_written(&fx.markers[0], 20);
    let fx = c.take_effects();
    let done = value(&fx.records[0]);
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert_eq!((done.producer_id, done.producer_epoch), (2000, 0));
    assert_eq!(done.prev_producer_id, 1000);
    assert_eq!(done.next_producer_id, -1);
    assert_eq!(c.transactional_id_of(2000), Some("tx"));
    assert_eq!(c.transactional_id_of(1000), None);
    // The client's retry with the old pair (its answer was lost) gets the new pair.
    assert_eq!(
        c.end_txn_v2("tx", 1000, i16::MAX - 1, true, &mut ids, 30),
        Ok((2000, 0))
    );
    // And the new producer id works.
    c.add_partitions_for("tx", 2000, 0, &[tp(1)], 2, 40)
        .unwrap();
}

#[test]
fn abort_without_an_open_transaction_bumps_the_epoch_and_completes_at_once() {
    let (mut c, mut ids) = setup();
    assert_eq!(
        c.end_txn_v2("tx", 1000, 0, false, &mut ids, 10),
        Ok((1000, 1))
    );
    let fx = c.take_effects();
    assert!(fx.markers.is_empty(), "no partitions, no markers");
    let states: Vec<TxnState> = fx.records.iter().map(|r| value(r).state).collect();
    assert_eq!(states, [TxnState::PrepareAbort, TxnState::CompleteAbort]);
    assert_eq!(value(&fx.records[0]).start_ms, 10);
    // A commit with nothing open is INVALID_TXN_STATE.
    assert_eq!(
        c.end_txn_v2("tx", 1000, 1, true, &mut ids, 20),
        Err(E::InvalidTxnState)
    );
    // An abort after a completed abort, at the current epoch, is a new (empty) abort.
    assert_eq!(
        c.end_txn_v2("tx", 1000, 1, false, &mut ids, 30),
        Ok((1000, 2))
    );
}

#[test]
fn timed_out_transactions_abort_as_v2_with_one_bump_when_the_server_runs_v2() {
    let (mut c, _) = ongoing_at(3);
    c.abort_timed_out(5 + i64::from(T) + 1);
    let fx = c.take_effects();
    let prepare = value(&fx.records[0]);
    assert_eq!(prepare.state, TxnState::PrepareAbort);
    assert_eq!(prepare.producer_epoch, 4);
    assert_eq!(prepare.client_transaction_version, 2);
    assert_eq!(fx.markers[0].producer_epoch, 4);
    // Under transaction.version 1 the fence also ends at epoch + 1, recorded as TV0.
    let (mut c1, _) = ongoing_at(3);
    c1.set_server_transaction_version(1);
    c1.abort_timed_out(5 + i64::from(T) + 1);
    let fx = c1.take_effects();
    let prepare = value(&fx.records[0]);
    assert_eq!(
        (prepare.producer_epoch, prepare.client_transaction_version),
        (4, 0)
    );
}

#[test]
fn timed_out_v2_transaction_with_an_exhausted_epoch_moves_to_a_new_producer_id() {
    let (mut c, mut ids) = ongoing_at(i16::MAX - 1);
    c.tick_with(5 + i64::from(T) + 1, Some(&mut ids));
    let fx = c.take_effects();
    assert_eq!(value(&fx.records[0]).next_producer_id, 2000);
    c.markers_written(&fx.markers[0], 100_000);
    let fx = c.take_effects();
    let done = value(&fx.records[0]);
    assert_eq!((done.producer_id, done.producer_epoch), (2000, 0));
}

#[test]
fn transactions_v1_clients_keep_their_epoch() {
    let (mut c, _) = setup();
    c.add_partitions("tx", 1000, 0, &[tp(0)], 10).unwrap();
    c.end_txn("tx", 1000, 0, true, 20).unwrap();
    let fx = c.take_effects();
    let prepare = value(&fx.records[1]);
    assert_eq!(
        (prepare.producer_epoch, prepare.client_transaction_version),
        (0, 0)
    );
    assert_eq!(fx.markers[0].producer_epoch, 0);
}
