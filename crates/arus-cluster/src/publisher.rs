//! The metadata publisher: the quorum's state machine on every node.
//!
//! The quorum hands it each committed batch once, in log order; it decodes the batch's
//! records (Kafka's `ApiMessageAndVersion` frames), replays them onto the current image with
//! a [`MetadataDelta`], installs the next image in the [`MetadataHandle`] (readers load it
//! without a lock) and sends a [`Published`] — the image and what changed for this node —
//! to whoever applies changes to local storage. The receiver runs on its own task so that
//! disk work (creating and deleting partitions) never stalls the quorum.
//!
//! Snapshot format: the image's records ([`MetadataImage::to_records`]), each as a 4-byte
//! big-endian length followed by its frame. A batch that does not decode or replay is a
//! fatal error for this node's quorum member: every node applies the same log, so skipping
//! it would make this node's image differ from the others'.

use std::sync::Arc;

use arc_swap::ArcSwap;
use arus_metadata::{
    DeltaError, LocalChanges, MetadataDelta, MetadataImage, MetadataProvenance, MetadataRecord,
    RecordError,
};
use arus_raft::{CommittedBatch, MetadataStateMachine};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::sync::{mpsc, watch};

/// The current image, shared by every reader of this node.
#[derive(Clone)]
pub struct MetadataHandle {
    current: Arc<ArcSwap<MetadataImage>>,
    offset: watch::Receiver<i64>,
}

impl MetadataHandle {
    /// The image to answer one request from.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.current.load_full()
    }

    /// Waits until the image includes the metadata log up to `offset`.
    pub async fn caught_up_to(&self, offset: i64) {
        let mut rx = self.offset.clone();
        // An error means the publisher is gone (shutdown): nothing more will be applied.
        let _ = rx.wait_for(|applied| *applied >= offset).await;
    }

    /// Waits until the current image satisfies `ready`; false if the publisher is gone
    /// (shutdown) first.
    pub async fn wait_for_image(&self, ready: impl Fn(&MetadataImage) -> bool) -> bool {
        // Cloned before the first look, so a change published in between is not missed.
        let mut rx = self.offset.clone();
        loop {
            if ready(&self.image()) {
                return true;
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }

    /// The offset of the last record in the current image (-1 before any).
    pub fn applied_offset(&self) -> i64 {
        *self.offset.borrow()
    }

    /// Follows [`MetadataHandle::applied_offset`] (Kafka's loader offset, which broker
    /// heartbeats report).
    pub fn offsets(&self) -> watch::Receiver<i64> {
        self.offset.clone()
    }
}

/// One step of the metadata log as this node applied it.
#[derive(Debug, Clone)]
pub struct Published {
    pub image: Arc<MetadataImage>,
    /// What this node must now lead, follow or delete.
    pub changes: LocalChanges,
    /// True when the step installed a snapshot rather than applying a batch.
    pub from_snapshot: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("metadata batch at offset {offset}: record {index} does not decode: {source}")]
    Decode {
        offset: u64,
        index: usize,
        #[source]
        source: RecordError,
    },
    #[error("metadata batch at offset {offset}: record {index} cannot be applied: {source}")]
    Replay {
        offset: u64,
        index: usize,
        #[source]
        source: DeltaError,
    },
    #[error("metadata snapshot is malformed: {0}")]
    Snapshot(String),
    #[error("metadata snapshot record {index} does not decode: {source}")]
    SnapshotRecord {
        index: usize,
        #[source]
        source: RecordError,
    },
    #[error("metadata snapshot record {index} cannot be applied: {source}")]
    SnapshotReplay {
        index: usize,
        #[source]
        source: DeltaError,
    },
}

/// See the module documentation.
pub struct MetadataPublisher {
    node_id: i32,
    current: Arc<ArcSwap<MetadataImage>>,
    offset: watch::Sender<i64>,
    changes: mpsc::UnboundedSender<Published>,
}

impl MetadataPublisher {
    /// A publisher starting from the empty image of `cluster_id`. The receiver gets one
    /// [`Published`] per applied batch or installed snapshot, in log order.
    pub fn new(
        node_id: i32,
        cluster_id: &str,
    ) -> (
        MetadataPublisher,
        MetadataHandle,
        mpsc::UnboundedReceiver<Published>,
    ) {
        let current = Arc::new(ArcSwap::from_pointee(MetadataImage::empty(cluster_id)));
        let (offset, offset_rx) = watch::channel(-1);
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let handle = MetadataHandle {
            current: current.clone(),
            offset: offset_rx,
        };
        (
            MetadataPublisher {
                node_id,
                current,
                offset,
                changes,
            },
            handle,
            changes_rx,
        )
    }

    fn publish(&self, delta: &MetadataDelta, provenance: MetadataProvenance, from_snapshot: bool) {
        let image = Arc::new(delta.apply(provenance));
        let changes = delta.local_changes(self.node_id);
        self.current.store(image.clone());
        self.offset.send_replace(provenance.offset);
        // A closed receiver means the node is shutting down; the image is still current.
        let _ = self.changes.send(Published {
            image,
            changes,
            from_snapshot,
        });
    }
}

/// Encodes records as a snapshot (see the module doc).
pub fn encode_snapshot(records: &[MetadataRecord]) -> Result<Vec<u8>, RecordError> {
    let mut out = BytesMut::new();
    for r in records {
        let frame = r.encode()?;
        out.put_u32(frame.len() as u32);
        out.put_slice(&frame);
    }
    Ok(out.to_vec())
}

/// Splits a snapshot into its record frames.
fn snapshot_frames(data: &[u8]) -> Result<Vec<Bytes>, PublishError> {
    let mut buf = Bytes::copy_from_slice(data);
    let mut frames = Vec::new();
    while buf.has_remaining() {
        if buf.remaining() < 4 {
            return Err(PublishError::Snapshot(format!(
                "{} trailing bytes after record {}",
                buf.remaining(),
                frames.len()
            )));
        }
        let len = buf.get_u32() as usize;
        if len > buf.remaining() {
            return Err(PublishError::Snapshot(format!(
                "record {} claims {len} bytes, {} left",
                frames.len(),
                buf.remaining()
            )));
        }
        frames.push(buf.split_to(len));
    }
    Ok(frames)
}

impl MetadataStateMachine for MetadataPublisher {
    type Error = PublishError;

    fn apply(&mut self, batch: CommittedBatch<'_>) -> Result<(), PublishError> {
        let base = self.current.load_full();
        let mut delta = MetadataDelta::new(&base);
        for (index, frame) in batch.records.iter().enumerate() {
            let record =
                MetadataRecord::decode(frame.clone()).map_err(|source| PublishError::Decode {
                    offset: batch.index,
                    index,
                    source,
                })?;
            delta
                .replay(&record)
                .map_err(|source| PublishError::Replay {
                    offset: batch.index,
                    index,
                    source,
                })?;
        }
        let provenance = MetadataProvenance::new(batch.index as i64, batch.term as i32);
        self.publish(&delta, provenance, false);
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, PublishError> {
        encode_snapshot(&self.current.load().to_records())
            .map_err(|source| PublishError::SnapshotRecord { index: 0, source })
    }

    fn install_snapshot(
        &mut self,
        last_index: u64,
        last_term: u64,
        data: &[u8],
    ) -> Result<(), PublishError> {
        let base = self.current.load_full();
        let mut delta = MetadataDelta::for_snapshot(&base);
        for (index, frame) in snapshot_frames(data)?.into_iter().enumerate() {
            let record = MetadataRecord::decode(frame)
                .map_err(|source| PublishError::SnapshotRecord { index, source })?;
            delta
                .replay(&record)
                .map_err(|source| PublishError::SnapshotReplay { index, source })?;
        }
        let provenance = MetadataProvenance::new(last_index as i64, last_term as i32);
        self.publish(&delta, provenance, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::Uuid;
    use arus_protocol::metadata::{PartitionRecord, RegisterBrokerRecord, TopicRecord};

    fn frames(records: Vec<MetadataRecord>) -> Vec<Bytes> {
        records.iter().map(|r| r.encode().unwrap()).collect()
    }

    fn topic(name: &str, id: u8, partitions: i32, replicas: &[i32]) -> Vec<MetadataRecord> {
        let topic_id = Uuid([id; 16]);
        let mut out: Vec<MetadataRecord> = vec![
            TopicRecord {
                name: name.into(),
                topic_id,
            }
            .into(),
        ];
        for p in 0..partitions {
            out.push(
                PartitionRecord {
                    partition_id: p,
                    topic_id,
                    replicas: replicas.to_vec(),
                    isr: replicas.to_vec(),
                    leader: replicas[p as usize % replicas.len()],
                    leader_epoch: 0,
                    partition_epoch: 0,
                    ..Default::default()
                }
                .into(),
            );
        }
        out
    }

    #[tokio::test]
    async fn batches_become_images_and_local_changes_in_order() {
        let (mut publisher, handle, mut rx) = MetadataPublisher::new(1, "cluster-a");
        let broker: MetadataRecord = RegisterBrokerRecord {
            broker_id: 1,
            broker_epoch: 1,
            ..Default::default()
        }
        .into();
        let batch = frames(vec![broker]);
        publisher
            .apply(CommittedBatch {
                index: 1,
                term: 1,
                records: &batch,
            })
            .unwrap();
        let batch = frames(topic("orders", 7, 2, &[1, 2]));
        publisher
            .apply(CommittedBatch {
                index: 2,
                term: 1,
                records: &batch,
            })
            .unwrap();
        assert_eq!(handle.applied_offset(), 2);
        let image = handle.image();
        assert_eq!(image.topic("orders").unwrap().partitions.len(), 2);
        let first = rx.recv().await.unwrap();
        assert!(first.changes.leaders.is_empty());
        let second = rx.recv().await.unwrap();
        // Node 1 leads partition 0 and follows partition 1 (led by 2).
        assert_eq!(second.changes.leaders.len(), 1);
        assert_eq!(second.changes.leaders[0].partition, 0);
        assert_eq!(second.changes.followers.len(), 1);
        handle.caught_up_to(2).await;
    }

    #[test]
    fn a_record_that_does_not_decode_is_an_error_and_changes_nothing() {
        let (mut publisher, handle, _rx) = MetadataPublisher::new(1, "c");
        let bad = vec![Bytes::from_static(&[1, 0xff, 0xff])];
        let err = publisher
            .apply(CommittedBatch {
                index: 5,
                term: 1,
                records: &bad,
            })
            .unwrap_err();
        assert!(
            matches!(err, PublishError::Decode { offset: 5, .. }),
            "{err}"
        );
        assert_eq!(handle.applied_offset(), -1);
        assert!(handle.image().topics().is_empty());
    }

    #[test]
    fn a_snapshot_rebuilds_the_same_image_on_another_node() {
        let (mut a, a_handle, _a_rx) = MetadataPublisher::new(1, "c");
        let batch = frames(topic("t", 3, 3, &[1]));
        a.apply(CommittedBatch {
            index: 9,
            term: 2,
            records: &batch,
        })
        .unwrap();
        let snapshot = a.snapshot().unwrap();
        let (mut b, b_handle, mut b_rx) = MetadataPublisher::new(1, "c");
        b.install_snapshot(9, 2, &snapshot).unwrap();
        assert_eq!(*a_handle.image(), *b_handle.image());
        let published = b_rx.try_recv().unwrap();
        assert!(published.from_snapshot);
        assert_eq!(published.changes.leaders.len(), 3);
        assert!(matches!(
            b.install_snapshot(10, 2, &snapshot[..snapshot.len() - 1]),
            Err(PublishError::Snapshot(_))
        ));
    }
}
