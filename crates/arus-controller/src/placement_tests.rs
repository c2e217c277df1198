//! Expected placements were printed by Kafka 4.4.0's own `StripedReplicaPlacer` with
//! `new Random(seed)` over the same brokers (a small Java program against the
//! kafka-metadata 4.4.0 jar), so these tests pin Kafka's exact behaviour.

use super::*;

fn b(id: i32, rack: Option<&str>, fenced: bool) -> UsableBroker {
    UsableBroker {
        id,
        rack: rack.map(str::to_owned),
        fenced,
    }
}

fn run(seed: i64, brokers: &[UsableBroker], parts: i32, rf: i32) -> Result<Vec<Vec<i32>>, String> {
    place(&mut JavaRandom::new(seed), brokers, parts, rf).map_err(|e| e.to_string())
}

#[test]
fn three_brokers_without_racks_stripe_like_kafka() {
    let brokers = [b(1, None, false), b(2, None, false), b(3, None, false)];
    assert_eq!(
        run(1, &brokers, 6, 3).unwrap(),
        vec![
            vec![1, 2, 3],
            vec![2, 3, 1],
            vec![3, 1, 2],
            vec![3, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 1]
        ]
    );
    assert_eq!(
        run(5, &brokers, 4, 1).unwrap(),
        vec![vec![3], vec![1], vec![2], vec![3]]
    );
}

#[test]
fn six_brokers_on_three_racks_put_each_replica_on_another_rack() {
    let brokers = [
        b(0, Some("a"), false),
        b(1, Some("b"), false),
        b(2, Some("c"), false),
        b(3, Some("a"), false),
        b(4, Some("b"), false),
        b(5, Some("c"), false),
    ];
    let got = run(3, &brokers, 6, 3).unwrap();
    assert_eq!(
        got,
        vec![
            vec![4, 2, 3],
            vec![5, 0, 1],
            vec![3, 4, 2],
            vec![1, 5, 0],
            vec![2, 3, 4],
            vec![0, 1, 5]
        ]
    );
    for replicas in &got {
        let mut racks: Vec<i32> = replicas.iter().map(|id| id % 3).collect();
        racks.sort();
        racks.dedup();
        assert_eq!(racks.len(), 3, "{replicas:?} spans every rack");
    }
    // Leaders are spread over all six brokers.
    let mut leaders: Vec<i32> = got.iter().map(|r| r[0]).collect();
    leaders.sort();
    assert_eq!(leaders, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        run(11, &brokers, 12, 2).unwrap(),
        vec![
            vec![3, 4],
            vec![1, 5],
            vec![2, 0],
            vec![3, 4],
            vec![1, 5],
            vec![2, 0],
            vec![4, 2],
            vec![5, 0],
            vec![3, 1],
            vec![4, 2],
            vec![5, 0],
            vec![3, 1]
        ]
    );
}

#[test]
fn rackless_brokers_mix_with_racks() {
    let brokers = [
        b(1, None, false),
        b(2, Some("r1"), false),
        b(3, Some("r1"), false),
        b(4, Some("r2"), false),
    ];
    assert_eq!(
        run(4, &brokers, 5, 2).unwrap(),
        vec![vec![3, 4], vec![4, 1], vec![1, 2], vec![3, 4], vec![1, 2]]
    );
}

#[test]
fn fenced_brokers_never_lead_but_may_follow() {
    let brokers = [b(1, None, false), b(2, None, true), b(3, None, false)];
    assert_eq!(
        run(2, &brokers, 4, 3).unwrap(),
        vec![vec![1, 3, 2], vec![3, 1, 2], vec![3, 1, 2], vec![1, 3, 2]]
    );
    let brokers = [b(1, None, true), b(2, None, false)];
    assert_eq!(
        run(9, &brokers, 3, 2).unwrap(),
        vec![vec![2, 1], vec![2, 1], vec![2, 1]]
    );
}

#[test]
fn errors_carry_kafkas_messages() {
    let two = [b(1, None, false), b(2, None, false)];
    assert_eq!(
        run(1, &two, 1, 3).unwrap_err(),
        "The target replication factor of 3 cannot be reached because only 2 broker(s) are registered or some brokers have all their log directories cordoned."
    );
    assert_eq!(
        run(1, &[b(1, None, true), b(2, None, true)], 1, 1).unwrap_err(),
        "All brokers are currently fenced, or have all their log directories cordoned."
    );
    assert_eq!(
        run(1, &[b(1, None, false)], 1, 0).unwrap_err(),
        "Invalid replication factor 0: the replication factor must be positive."
    );
    assert_eq!(
        run(1, &[], 1, 1).unwrap_err(),
        "All brokers are currently fenced, or have all their log directories cordoned."
    );
    let err = place(&mut JavaRandom::new(1), &two, 1, 3)
        .unwrap_err()
        .into_controller_error(3);
    assert_eq!(err.code, ErrorCode::InvalidReplicationFactor);
    assert!(
        err.message
            .unwrap()
            .starts_with("Unable to replicate the partition 3 time(s): The target")
    );
}

#[test]
fn manual_assignments_are_validated_as_kafka() {
    let registered = |id: i32| (1..=3).contains(&id);
    assert!(validate_manual_assignment(&[1, 2], None, registered).is_ok());
    let e = validate_manual_assignment(&[], None, registered).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidReplicaAssignment);
    assert_eq!(
        e.message.as_deref(),
        Some("The manual partition assignment includes an empty replica list.")
    );
    let e = validate_manual_assignment(&[9, 1, 7], None, registered).unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "The manual partition assignment includes broker 7, but no such broker is registered."
        )
    );
    let e = validate_manual_assignment(&[2, 1, 2], None, registered).unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some("The manual partition assignment includes the broker 2 more than once.")
    );
    let e = validate_manual_assignment(&[1, 2], Some(3), registered).unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "The manual partition assignment includes a partition with 2 replica(s), but this is not consistent with previous partitions, which have 3 replica(s)."
        )
    );
}
