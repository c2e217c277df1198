//! Requests waiting for one destination broker, batched into the next request to it (the
//! way Kafka's inter-broker send threads drain their per-node queues): oldest first, at most
//! `max` items, and at most one per key — WriteTxnMarkers answers are keyed by producer id
//! and AddPartitionsToTxn answers by transactional id, so two items with one key cannot share
//! a request; the later one waits for the next.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Debug)]
pub struct BatchQueue<K, T> {
    queues: BTreeMap<i32, VecDeque<(K, T)>>,
}

impl<K, T> Default for BatchQueue<K, T> {
    fn default() -> Self {
        BatchQueue {
            queues: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, T> BatchQueue<K, T> {
    /// Queues `item`, keyed by `key`, for broker `node`.
    pub fn push(&mut self, node: i32, key: K, item: T) {
        self.queues.entry(node).or_default().push_back((key, item));
    }

    /// The next request's items for `node` (see the module documentation). Empty: nothing is
    /// queued, and the queue of `node` is gone.
    pub fn take_batch(&mut self, node: i32, max: usize) -> Vec<T> {
        let Some(queue) = self.queues.get_mut(&node) else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut batch = Vec::new();
        let mut kept = VecDeque::new();
        while let Some((key, item)) = queue.pop_front() {
            if batch.len() < max && seen.insert(key.clone()) {
                batch.push(item);
            } else {
                kept.push_back((key, item));
            }
        }
        if kept.is_empty() {
            self.queues.remove(&node);
        } else {
            *queue = kept;
        }
        batch
    }

    /// How many items wait for `node`.
    pub fn len(&self, node: i32) -> usize {
        self.queues.get(&node).map_or(0, VecDeque::len)
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_one_item_per_key_and_is_bounded() {
        let mut q = BatchQueue::default();
        q.push(1, 10, "a");
        q.push(1, 11, "b");
        q.push(1, 10, "c");
        q.push(2, 10, "x");
        q.push(1, 12, "d");
        assert_eq!(q.len(1), 4);
        assert_eq!(q.take_batch(1, 2), vec!["a", "b"]);
        assert_eq!(q.take_batch(1, 10), vec!["c", "d"]);
        assert!(q.take_batch(1, 10).is_empty());
        assert_eq!(q.take_batch(2, 10), vec!["x"]);
        assert!(q.is_empty());
    }
}
