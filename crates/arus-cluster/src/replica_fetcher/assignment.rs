//! Which partitions this node follows, and which fetcher fetches each (Kafka's
//! `ReplicaManager.applyDelta` → `makeFollowers` and `AbstractFetcherManager.getFetcherId`).
//! Pure: the image and a count in, a map out.

use std::collections::BTreeMap;

use arus_metadata::MetadataImage;
use arus_replication::PartitionKey;

/// A partition this node follows: its name (Fetch before v13 names topics) and the leader
/// and leader epoch the metadata gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Followed {
    pub topic: String,
    pub leader: i32,
    pub leader_epoch: i32,
}

/// One fetcher: the broker it fetches from and its index among that broker's
/// `num.replica.fetchers` fetchers (Kafka's `BrokerIdAndFetcherId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FetcherId {
    pub source: i32,
    pub index: i32,
}

/// The partitions of `image` that `node` follows: it holds a replica, and another node
/// leads. A partition without a leader (-1) is not fetched: there is no one to fetch from
/// (Kafka's `makeFollowers` adds a fetcher only for a leader it can reach).
pub fn followed_partitions(image: &MetadataImage, node: i32) -> BTreeMap<PartitionKey, Followed> {
    let mut out = BTreeMap::new();
    for topic in image.topics().iter() {
        for (&partition, p) in &topic.partitions {
            if p.replicas.contains(&node) && p.leader != node && p.leader >= 0 {
                out.insert(
                    PartitionKey {
                        topic_id: topic.id,
                        partition,
                    },
                    Followed {
                        topic: topic.name.clone(),
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                    },
                );
            }
        }
    }
    out
}

/// Java's `String.hashCode` (over UTF-16 code units, wrapping), as Kafka hashes topics.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `getFetcherId`: `Utils.abs(31 * topic.hashCode() + partition) % numFetchers`
/// (`Utils.abs(Integer.MIN_VALUE)` is 0), so a partition keeps its fetcher as long as the
/// count does.
pub fn fetcher_index(topic: &str, partition: i32, num_fetchers: i32) -> i32 {
    let h = java_string_hash(topic)
        .wrapping_mul(31)
        .wrapping_add(partition);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % num_fetchers.max(1)
}

/// The followed partitions grouped by the fetcher that fetches them.
pub fn by_fetcher(
    followed: &BTreeMap<PartitionKey, Followed>,
    num_fetchers: i32,
) -> BTreeMap<FetcherId, BTreeMap<PartitionKey, Followed>> {
    let mut out: BTreeMap<FetcherId, BTreeMap<PartitionKey, Followed>> = BTreeMap::new();
    for (key, f) in followed {
        let id = FetcherId {
            source: f.leader,
            index: fetcher_index(&f.topic, key.partition, num_fetchers),
        };
        out.entry(id).or_default().insert(*key, f.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use arus_metadata::{MetadataDelta, MetadataProvenance, MetadataRecord};
    use arus_protocol::Uuid;
    use arus_protocol::metadata::{PartitionRecord, TopicRecord};

    use super::*;

    #[test]
    fn java_hash_matches_the_jvm() {
        // `String.hashCode` as jshell (OpenJDK) prints it.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("topic"), 110_546_223);
        assert_eq!(java_string_hash("__consumer_offsets"), -970_371_369);
        // Non-ASCII hashes UTF-16 code units ("é" is one, U+00E9).
        assert_eq!(java_string_hash("é"), 0xE9);
    }

    #[test]
    fn fetcher_index_is_kafkas() {
        assert_eq!(fetcher_index("anything", 7, 1), 0);
        // jshell: Math.abs(31 * topic.hashCode() + partition) % numFetchers.
        assert_eq!(fetcher_index("topic", 3, 4), 0);
        assert_eq!(fetcher_index("topic", 4, 3), 0);
        assert_eq!(fetcher_index("topic", 1, 7), 5);
        assert_eq!(fetcher_index("__consumer_offsets", 17, 5), 0);
        for p in 0..50 {
            assert!((0..3).contains(&fetcher_index("__consumer_offsets", p, 3)));
        }
    }

    fn image() -> MetadataImage {
        let id = Uuid([7; 16]);
        let mut records: Vec<MetadataRecord> = vec![
            TopicRecord {
                name: "t".into(),
                topic_id: id,
            }
            .into(),
        ];
        // (replicas, leader): followed by node 1 only where it is a replica, not the leader,
        // and a leader exists.
        let partitions = [
            (vec![1, 2, 3], 2),
            (vec![1, 2, 3], 1),
            (vec![2, 3], 2),
            (vec![1, 2], -1),
            (vec![3, 1], 3),
        ];
        for (i, (replicas, leader)) in partitions.into_iter().enumerate() {
            records.push(
                PartitionRecord {
                    partition_id: i as i32,
                    topic_id: id,
                    isr: replicas.clone(),
                    replicas,
                    leader,
                    leader_epoch: 4,
                    ..Default::default()
                }
                .into(),
            );
        }
        let mut delta = MetadataDelta::new(&MetadataImage::empty("c"));
        delta.replay_all(&records).unwrap();
        delta.apply(MetadataProvenance::new(1, 1))
    }

    #[test]
    fn followed_partitions_are_replicas_led_by_another_node() {
        let followed = followed_partitions(&image(), 1);
        let keys: Vec<i32> = followed.keys().map(|k| k.partition).collect();
        assert_eq!(keys, vec![0, 4]);
        assert_eq!(
            followed.values().next().unwrap(),
            &Followed {
                topic: "t".into(),
                leader: 2,
                leader_epoch: 4,
            }
        );
        let groups = by_fetcher(&followed, 1);
        let sources: Vec<i32> = groups.keys().map(|id| id.source).collect();
        assert_eq!(sources, vec![2, 3]);
    }
}
