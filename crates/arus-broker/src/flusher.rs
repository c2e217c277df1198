//! The flusher thread: fsyncs partitions off the async runtime.
//!
//! Group commit falls out of the queue: while one round of fsyncs runs, new requests pile
//! up, and the next round covers all of them with one fsync per partition. A periodic tick
//! also flushes partitions whose `flush.messages` / `flush.ms` are due.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::error;

use crate::partition::Partition;

pub enum FlushRequest {
    Partition(Arc<Partition>),
    Stop,
}

pub struct Flusher {
    tx: Sender<FlushRequest>,
    handle: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the thread. `partitions` lists all partitions for the periodic check.
    pub fn start(
        tick: Duration,
        partitions: impl Fn() -> Vec<Arc<Partition>> + Send + 'static,
    ) -> Flusher {
        let (tx, rx) = channel();
        let handle = std::thread::Builder::new()
            .name("arus-flusher".into())
            .spawn(move || run(rx, tick, partitions))
            .expect("spawning the flusher thread");
        Flusher {
            tx,
            handle: Some(handle),
        }
    }

    pub fn request(&self, partition: Arc<Partition>) {
        let _ = self.tx.send(FlushRequest::Partition(partition));
    }

    pub fn stop(&mut self) {
        let _ = self.tx.send(FlushRequest::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn flush_one(p: &Partition) {
    if let Err(e) = p.flush() {
        // The waiters stay blocked and time out with REQUEST_TIMED_OUT: an acknowledged
        // write must never be reported durable when the fsync failed.
        error!(topic = %p.topic, partition = p.index, error = %e, "fsync failed");
    }
}

fn run(rx: Receiver<FlushRequest>, tick: Duration, partitions: impl Fn() -> Vec<Arc<Partition>>) {
    let mut last_check = std::time::Instant::now();
    loop {
        let first = match rx.recv_timeout(tick) {
            Ok(r) => Some(r),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch: HashMap<*const Partition, Arc<Partition>> = HashMap::new();
        let mut stop = false;
        let mut take = |r: FlushRequest, batch: &mut HashMap<_, _>| match r {
            FlushRequest::Partition(p) => {
                batch.insert(Arc::as_ptr(&p), p);
            }
            FlushRequest::Stop => stop = true,
        };
        if let Some(r) = first {
            take(r, &mut batch);
            while let Ok(r) = rx.try_recv() {
                take(r, &mut batch);
            }
        }
        // Under a steady stream of requests the timeout never fires, so the periodic
        // `flush.*` check is driven by elapsed time, not by idleness.
        if last_check.elapsed() >= tick {
            last_check = std::time::Instant::now();
            let now = now_ms();
            for p in partitions() {
                if p.flush_due(now) {
                    batch.insert(Arc::as_ptr(&p), p);
                }
            }
        }
        for p in batch.values() {
            flush_one(p);
        }
        if stop {
            return;
        }
    }
}
