//! Which replica a consumer should read from (KIP-392): Kafka's `RackAwareReplicaSelector`,
//! the one selector Arus offers for `replica.selector.class`. The leader answers a consumer's
//! Fetch with `preferred_read_replica` when an in-sync follower in the consumer's rack
//! (`client.rack`, the Fetch's `rack_id`) holds the fetch offset and the leader is not in
//! that rack; the consumer then fetches from that follower, up to its high watermark.

/// The class name operators set (`replica.selector.class`), as in Kafka.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// A replica the consumer could read from (Kafka's `ReplicaView`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadableReplica {
    pub id: i32,
    pub rack: Option<String>,
    pub log_end_offset: i64,
    pub since_caught_up_ms: i64,
}

/// Kafka's `RackAwareReplicaSelector.select`: the leader unless the client names a rack, some
/// candidate is in it and the leader is not; then the most caught-up candidate of that rack
/// (highest log end offset, then the most recently caught up). `None`: read from the leader.
pub fn rack_aware(
    client_rack: &str,
    leader: &ReadableReplica,
    followers: &[ReadableReplica],
) -> Option<i32> {
    if client_rack.is_empty() {
        return None;
    }
    let in_rack = |r: &&ReadableReplica| r.rack.as_deref() == Some(client_rack);
    if in_rack(&leader) {
        return None;
    }
    followers
        .iter()
        .filter(in_rack)
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(b.since_caught_up_ms.cmp(&a.since_caught_up_ms))
        })
        .map(|r| r.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: i32, rack: &str, leo: i64, since: i64) -> ReadableReplica {
        ReadableReplica {
            id,
            rack: (!rack.is_empty()).then(|| rack.to_string()),
            log_end_offset: leo,
            since_caught_up_ms: since,
        }
    }

    #[test]
    fn the_leader_serves_unless_a_follower_shares_the_clients_rack_and_the_leader_does_not() {
        let leader = replica(1, "a", 100, 0);
        let followers = [replica(2, "b", 100, 0), replica(3, "c", 90, 0)];
        assert_eq!(rack_aware("", &leader, &followers), None, "no client rack");
        assert_eq!(
            rack_aware("a", &leader, &followers),
            None,
            "the leader's rack"
        );
        assert_eq!(
            rack_aware("z", &leader, &followers),
            None,
            "nobody in that rack"
        );
        assert_eq!(rack_aware("b", &leader, &followers), Some(2));
        assert_eq!(rack_aware("c", &leader, &followers), Some(3));
    }

    #[test]
    fn the_most_caught_up_follower_of_the_rack_is_chosen() {
        let leader = replica(1, "a", 100, 0);
        let followers = [
            replica(2, "b", 90, 0),
            replica(3, "b", 100, 50),
            replica(4, "b", 100, 10),
        ];
        assert_eq!(rack_aware("b", &leader, &followers), Some(4));
    }
}
