//! How the coordinators (groups, transactions) write their records to their internal topics:
//! one uncompressed batch per partition per operation, appended while the coordinator's lock
//! is held, so that the log order is the order of the state changes. The caller then waits
//! for the returned partitions' fsync before it answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_records::{BatchBuilder, Compression};

use crate::partition::Partition;
use crate::topics::Topic;

/// Sequence number of batches a coordinator writes on a producer's behalf (Kafka's
/// `RecordBatch.NO_SEQUENCE`): the log checks their epoch, not their sequence.
const NO_SEQUENCE: i32 = -1;

/// The records of one operation for one internal topic, grouped into a batch per partition.
pub(crate) struct CoordinatorBatches {
    now: i64,
    /// Producer id and epoch for a transactional batch (TxnOffsetCommit records).
    producer: Option<(i64, i16)>,
    by_partition: BTreeMap<i32, BatchBuilder>,
}

/// What an append left to wait for: each partition written and the offset its fsync must
/// reach; and the first error, if any.
#[derive(Default)]
pub(crate) struct Appended {
    pub flush: Vec<(Arc<Partition>, i64)>,
    pub error: Option<String>,
}

impl CoordinatorBatches {
    pub fn new(now: i64) -> CoordinatorBatches {
        CoordinatorBatches {
            now,
            producer: None,
            by_partition: BTreeMap::new(),
        }
    }

    /// Batches written in `producer_id`'s transaction: they count only once its COMMIT
    /// marker reaches the same partition.
    pub fn transactional(now: i64, producer_id: i64, producer_epoch: i16) -> CoordinatorBatches {
        CoordinatorBatches {
            producer: Some((producer_id, producer_epoch)),
            ..CoordinatorBatches::new(now)
        }
    }

    pub fn push(&mut self, partition: i32, key: &[u8], value: Option<&[u8]>) {
        let (now, producer) = (self.now, self.producer);
        self.by_partition
            .entry(partition)
            .or_insert_with(|| {
                let b = BatchBuilder::new(Compression::None, now);
                match producer {
                    Some((id, epoch)) => b.producer(id, epoch, NO_SEQUENCE, true),
                    None => b,
                }
            })
            .push(now, Some(key), value, &[]);
    }

    /// Appends every batch to its partition of `topic`, adding to `out`.
    pub fn append_to(self, topic: &Topic, out: &mut Appended) {
        for (index, builder) in self.by_partition {
            let count = builder.len() as u64;
            let Some(partition) = topic.partition(index) else {
                out.error = Some(format!("{}-{index} does not exist", topic.name));
                continue;
            };
            let appended = builder.build().map_err(|e| e.to_string()).and_then(|b| {
                let mut bytes = b.to_vec();
                partition
                    .append(&mut bytes, count, self.now)
                    .map_err(|e| e.to_string())
            });
            match appended {
                Ok(info) => out.flush.push((partition, info.last_offset + 1)),
                Err(e) => out.error = Some(e),
            }
        }
    }
}
