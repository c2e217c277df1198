//! The follower side of replication (issue 15; Kafka's `ReplicaFetcherManager` and
//! `ReplicaFetcherThread`): every partition this broker holds a replica of and another
//! broker leads is copied from that leader with Kafka's Fetch protocol, so the follower's
//! log is the leader's log — same offsets, batches, leader epochs and producer state.
//!
//! - [`assignment`]: which partitions this node follows after an image, and which fetcher
//!   fetches each (`num.replica.fetchers` per source broker, Kafka's hash).
//! - [`task`]: one fetcher: its connection ([`link`]) to the source broker's
//!   inter-broker listener and the loop around `arus_replication::Fetcher`'s decisions.
//! - [`ReplicaFetchers`] (here): the manager. The applier tells it, after each image, the
//!   whole set of followed partitions; it starts, re-assigns and stops tasks to match.
//!
//! The partition's own steps (append as follower, truncate, take the leader's high
//! watermark) are `arus_broker::partition::follower`; each is checked against the role
//! and leader epoch under the log lock, so a fetch that was out while the metadata moved
//! the partition writes nothing.

pub mod assignment;
pub mod link;
pub mod settings;
pub mod task;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arus_broker::Broker;
use arus_metadata::MetadataImage;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use assignment::{FetcherId, Followed, by_fetcher, fetcher_index, followed_partitions};
pub use settings::FetcherSettings;
use task::{Assigned, FetcherTask};

use crate::lifecycle::Standing;

struct Running {
    assigned: watch::Sender<Assigned>,
    handle: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    tasks: BTreeMap<FetcherId, Running>,
    stopped: bool,
}

/// See the module documentation.
pub struct ReplicaFetchers {
    broker: Arc<Broker>,
    node: i32,
    standing: watch::Receiver<Standing>,
    runtime: Handle,
    state: Mutex<State>,
}

impl ReplicaFetchers {
    /// A manager for `broker` (node `node`); `standing` carries the broker epoch fetches
    /// are sent with. Must be called within the Tokio runtime the tasks run on.
    pub fn new(
        broker: Arc<Broker>,
        node: i32,
        standing: watch::Receiver<Standing>,
    ) -> Arc<ReplicaFetchers> {
        Arc::new(ReplicaFetchers {
            broker,
            node,
            standing,
            runtime: Handle::current(),
            state: Mutex::new(State::default()),
        })
    }

    /// After `image` was applied to the local replicas (so each followed partition is
    /// open with its follower role): follow exactly the partitions it names.
    pub fn after_image(&self, image: &MetadataImage) {
        self.follow(followed_partitions(image, self.node));
    }

    /// Follows exactly `followed` (Kafka's `addFetcherForPartitions` and
    /// `removeFetcherForPartitions` after `applyDelta`): each fetcher gets its whole new
    /// set; a fetcher left without partitions stops.
    pub fn follow(&self, followed: BTreeMap<arus_replication::PartitionKey, Followed>) {
        let settings = FetcherSettings::from_config(&self.broker.config);
        let mut groups = by_fetcher(&followed, settings.num_fetchers);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.stopped {
            return;
        }
        // Dropping the sender stops the task once its current step is done.
        state.tasks.retain(|id, _| groups.contains_key(id));
        for (id, partitions) in std::mem::take(&mut groups) {
            let partitions: Assigned = Arc::new(partitions);
            match state.tasks.get(&id) {
                Some(running) => {
                    running.assigned.send_if_modified(|current| {
                        if **current == *partitions {
                            false
                        } else {
                            *current = partitions.clone();
                            true
                        }
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(partitions);
                    // Seen as a change, so the task adds its partitions first.
                    let mut rx = rx;
                    rx.mark_changed();
                    let task = FetcherTask::new(
                        id,
                        self.broker.clone(),
                        settings.clone(),
                        self.standing.clone(),
                        rx,
                    );
                    let handle = self.runtime.spawn(task.run());
                    state.tasks.insert(
                        id,
                        Running {
                            assigned: tx,
                            handle,
                        },
                    );
                }
            }
        }
    }

    /// The fetchers running now (for tests and logs).
    pub fn fetchers(&self) -> Vec<FetcherId> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.tasks.keys().copied().collect()
    }

    /// Stops every fetcher and waits for them (before the broker closes its logs): each
    /// sees its assignment gone at its next step (a Fetch waits at most
    /// `replica.fetch.wait.max.ms`); one still busy after [`SHUTDOWN_GRACE`] (a connect to
    /// an unreachable leader) is cut off where it waits.
    pub async fn shutdown(&self) {
        let tasks = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.stopped = true;
            std::mem::take(&mut state.tasks)
        };
        let handles: Vec<JoinHandle<()>> = tasks.into_values().map(|r| r.handle).collect();
        for mut handle in handles {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut handle)
                .await
                .is_err()
            {
                handle.abort();
                let _ = handle.await;
            }
        }
    }
}

/// How long [`ReplicaFetchers::shutdown`] lets a fetcher finish its step.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The applier's one call after an image (`applier::apply`): a node with a broker follows
/// what the image says; a controller-only node has no fetchers.
pub fn after_image(fetchers: Option<&ReplicaFetchers>, image: &MetadataImage) {
    if let Some(f) = fetchers {
        f.after_image(image);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arus_broker::BrokerConfig;
    use arus_protocol::Uuid;
    use arus_replication::PartitionKey;

    use super::*;

    fn followed(entries: &[(i32, i32)]) -> BTreeMap<PartitionKey, Followed> {
        entries
            .iter()
            .map(|&(partition, leader)| {
                (
                    PartitionKey {
                        topic_id: Uuid([3; 16]),
                        partition,
                    },
                    Followed {
                        topic: "t".into(),
                        leader,
                        leader_epoch: 0,
                    },
                )
            })
            .collect()
    }

    /// One fetcher per source broker (num.replica.fetchers 1); a source left without
    /// partitions loses its fetcher; nothing starts after shutdown.
    #[tokio::test]
    async fn fetchers_follow_the_assignment_and_stop_with_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let props = BTreeMap::from([("log.dirs".to_string(), dir.path().display().to_string())]);
        let broker =
            Broker::open_driven(BrokerConfig::from_properties(props).unwrap(), "c".into()).unwrap();
        let (_standing_tx, standing) = watch::channel(Standing {
            broker_epoch: 5,
            fenced: false,
        });
        let fetchers = ReplicaFetchers::new(broker.clone(), 1, standing);
        let id = |source| FetcherId { source, index: 0 };

        fetchers.follow(followed(&[(0, 2), (1, 3), (2, 2)]));
        assert_eq!(fetchers.fetchers(), vec![id(2), id(3)]);
        fetchers.follow(followed(&[(1, 3)]));
        assert_eq!(fetchers.fetchers(), vec![id(3)]);
        fetchers.shutdown().await;
        assert_eq!(fetchers.fetchers(), Vec::<FetcherId>::new());
        fetchers.follow(followed(&[(0, 2)]));
        assert_eq!(fetchers.fetchers(), Vec::<FetcherId>::new());
        broker.shutdown();
    }
}
