//! The active controller's driver: the thin loop around `arus_controller::Controller` on
//! the node that leads the metadata quorum (docs/cluster.md, step 3).
//!
//! One request at a time, as Kafka's `QuorumController` event queue: the controller decides
//! (records and a response), the records are written to the metadata log as one batch,
//! and only once that batch is committed is the decision replayed into the controller's own
//! state and the response sent. A request that changes nothing is answered at once with the
//! current committed offset. Session expiry is checked when `Controller::next_tick_ms` says
//! so. Losing leadership (a write refused because another node leads) ends the loop; the
//! requests that were waiting get NOT_CONTROLLER, which the forwarder retries at the new
//! controller.
//!
//! The controller is rebuilt from the committed image each time this node becomes leader,
//! after the image has caught up with everything the previous leaders committed (openraft
//! commits a blank entry of the new term first, so "caught up" is "applied the entry at the
//! committed index as of becoming leader"). Heartbeat sessions are in memory only, as in
//! Kafka: a new controller gives every registered broker a fresh session.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arus_controller::{ConfigValidator, Controller, ControllerConfig, TopicIdSource};
use arus_metadata::MetadataRecord;
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::controller_apis;
use crate::local_replicas::{self, LocalReplicas, Refused};
use crate::publisher::MetadataHandle;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Who leads the metadata quorum, as this node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub leader: Option<i32>,
    pub term: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogWriteError {
    #[error("node {leader:?} leads the metadata quorum")]
    NotLeader { leader: Option<i32> },
    #[error("the metadata log refused the write: {0}")]
    Failed(String),
}

/// The metadata log as the controller uses it: the quorum, or a fake in tests.
pub trait MetadataLog: Send + Sync + 'static {
    /// Appends `batch` (encoded records, applied atomically) and resolves with its log
    /// index once committed.
    fn write(&self, batch: Vec<Bytes>) -> BoxFuture<Result<u64, LogWriteError>>;
    /// The index the next write will get (Kafka's broker epoch is the offset of the
    /// registration record).
    fn next_index(&self) -> u64;
    /// The index of the last entry in this node's log (committed or not).
    fn last_log_index(&self) -> Option<u64>;
    /// The index of the last entry applied to the image (records or not: blank and
    /// membership entries count too).
    fn applied_index(&self) -> Option<u64>;
    /// Resolves once `applied_index()` reaches `index`.
    fn wait_applied(&self, index: u64) -> BoxFuture<()>;
    /// Leadership changes.
    fn leadership(&self) -> watch::Receiver<Leadership>;
}

/// What a controller request is answered with.
#[derive(Debug)]
pub struct ControllerReply {
    pub response: Response,
    /// The committed offset that includes the request's records (or the last committed
    /// one when it wrote none).
    pub metadata_offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerRequestError {
    /// This node does not lead the quorum; `leader` if it knows who does.
    #[error("not the active controller (leader {leader:?})")]
    NotController { leader: Option<i32> },
    #[error("the controller cannot serve {0}")]
    Unsupported(String),
}

struct Job {
    request: Request,
    version: i16,
    reply: oneshot::Sender<Result<ControllerReply, ControllerRequestError>>,
}

/// Submits requests to this node's controller loop (which answers NOT_CONTROLLER while
/// this node does not lead).
#[derive(Clone)]
pub struct ControllerHandle {
    jobs: mpsc::Sender<Job>,
}

impl ControllerHandle {
    pub async fn submit(
        &self,
        request: Request,
        version: i16,
    ) -> Result<ControllerReply, ControllerRequestError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            request,
            version,
            reply,
        };
        if self.jobs.send(job).await.is_err() {
            return Err(ControllerRequestError::NotController { leader: None });
        }
        rx.await
            .unwrap_or(Err(ControllerRequestError::NotController { leader: None }))
    }
}

/// What the driver needs besides the log and the image.
pub struct DriverSettings {
    pub node_id: i32,
    pub config: ControllerConfig,
    pub validator: Arc<dyn ConfigValidator + Send + Sync>,
    /// The first batch of a new metadata log (the features `arus storage format` chose, or
    /// the content of a single-node release's directory), written by whichever node first
    /// becomes controller of a log that has no `metadata.version` yet.
    pub bootstrap: Vec<MetadataRecord>,
    /// This node's broker, asked to open the partitions the controller places here before
    /// they are committed (`local_replicas`); `None` on a controller-only node.
    pub local_replicas: Option<Arc<dyn LocalReplicas>>,
    /// The controller's periodic elections.
    pub elections: PeriodicElections,
}

/// Kafka's `QuorumController` periodic election tasks: preferred leaders
/// (`auto.leader.rebalance.enable`, every `leader.imbalance.check.interval.seconds`) and
/// unclean elections for leaderless partitions of topics that allow them (every
/// `unclean.leader.election.interval.ms`; also right after a config change, which may
/// have just allowed them).
#[derive(Clone, Copy, Debug)]
pub struct PeriodicElections {
    /// `None`: `auto.leader.rebalance.enable=false`.
    pub preferred_every: Option<Duration>,
    pub unclean_every: Duration,
}

impl Default for PeriodicElections {
    /// Kafka's defaults: both every five minutes.
    fn default() -> Self {
        PeriodicElections {
            preferred_every: Some(Duration::from_secs(300)),
            unclean_every: Duration::from_millis(300_000),
        }
    }
}

/// How many batches one run of a periodic election commits at most (each holds at most
/// the controller's per-run cap of elections) before yielding to requests.
const MAX_ELECTION_BATCHES_PER_RUN: usize = 16;

/// Runs one periodic election task until it has nothing more to do (or the run's cap).
/// `Err` when this node lost the leadership while committing.
async fn run_elections(
    log: &dyn MetadataLog,
    controller: &mut Controller,
    task: &str,
    elect: impl Fn(&Controller) -> arus_controller::Outcome<bool>,
) -> Result<(), Option<i32>> {
    for _ in 0..MAX_ELECTION_BATCHES_PER_RUN {
        let outcome = elect(controller);
        if outcome.records.is_empty() {
            return Ok(());
        }
        info!(
            task,
            changes = outcome.records.len(),
            "periodic leader elections"
        );
        commit(log, controller, outcome.records).await?;
        if !outcome.response {
            return Ok(());
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct RandomTopicIds;

impl TopicIdSource for RandomTopicIds {
    fn next_topic_id(&mut self) -> Uuid {
        loop {
            let id = Uuid(*uuid_v4().as_bytes());
            // Kafka's reserved ids: zero and METADATA_TOPIC_ID (1 in the low bits).
            let low = u128::from_be_bytes(id.0);
            if low > 100 {
                return id;
            }
        }
    }
}

fn uuid_v4() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}

/// Starts the driver; it runs until `shutdown` fires.
pub fn start(
    log: Arc<dyn MetadataLog>,
    metadata: MetadataHandle,
    settings: DriverSettings,
    mut shutdown: watch::Receiver<bool>,
) -> ControllerHandle {
    let (tx, mut rx) = mpsc::channel::<Job>(1024);
    tokio::spawn(async move {
        let mut leadership = log.leadership();
        loop {
            let current = *leadership.borrow_and_update();
            if current.leader == Some(settings.node_id) {
                lead(
                    &*log,
                    &metadata,
                    &settings,
                    current.term,
                    &mut rx,
                    &mut leadership,
                    &mut shutdown,
                )
                .await;
            } else {
                tokio::select! {
                    job = rx.recv() => match job {
                        Some(job) => {
                            let _ = job.reply.send(Err(ControllerRequestError::NotController {
                                leader: current.leader,
                            }));
                        }
                        None => return,
                    },
                    changed = leadership.changed() => if changed.is_err() { return },
                    _ = shutdown.changed() => return,
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
    });
    ControllerHandle { jobs: tx }
}

/// Runs the controller for one term of leadership.
async fn lead(
    log: &dyn MetadataLog,
    metadata: &MetadataHandle,
    settings: &DriverSettings,
    term: u64,
    jobs: &mut mpsc::Receiver<Job>,
    leadership: &mut watch::Receiver<Leadership>,
    shutdown: &mut watch::Receiver<bool>,
) {
    // Everything earlier leaders committed must be in the image the controller starts
    // from: a new leader's log holds every committed entry, and its own first (blank) entry
    // commits only after all of them, so applying up to the log's end as of now suffices.
    if let Some(end) = log.last_log_index() {
        log.wait_applied(end).await;
    }
    let image = metadata.image();
    let seed = now_ms();
    let mut controller = match Controller::from_image(
        settings.config.clone(),
        seed,
        &image,
        now_ms(),
    ) {
        Ok(c) => c,
        Err(e) => {
            // The image came from the same records the controller replays: a failure is a
            // defect, and this node must not act as controller on a state it cannot read.
            warn!(error = %e, "cannot build the controller from the metadata image; not acting as controller");
            let _ = leadership.changed().await;
            return;
        }
    };
    info!(
        node = settings.node_id,
        term,
        offset = image.provenance().offset,
        "active controller"
    );
    if image.metadata_version().is_none() && !settings.bootstrap.is_empty() {
        match commit(log, &mut controller, settings.bootstrap.clone()).await {
            Ok(offset) => info!(
                offset,
                records = settings.bootstrap.len(),
                "metadata log bootstrapped"
            ),
            Err(_) => return,
        }
    }
    let mut ids = RandomTopicIds;
    let started = tokio::time::Instant::now();
    let mut next_preferred = settings
        .elections
        .preferred_every
        .map(|every| started + every);
    let mut next_unclean = started + settings.elections.unclean_every;
    loop {
        let next_tick = controller.next_tick_ms();
        // Absolute deadlines, so that a steady stream of requests (heartbeats) cannot keep
        // postponing the periodic work: the select below is re-entered after every job.
        let mut wake = tokio::time::Instant::now()
            + Duration::from_millis((next_tick - now_ms()).clamp(0, 1000) as u64);
        wake = wake.min(next_unclean);
        if let Some(at) = next_preferred {
            wake = wake.min(at);
        }
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { return };
                // A config change may allow unclean elections: run them at once after it
                // (Kafka triggers them on `unclean.leader.election.enable` changes).
                if matches!(
                    job.request,
                    Request::IncrementalAlterConfigs(_) | Request::AlterConfigs(_)
                ) {
                    next_unclean = tokio::time::Instant::now();
                }
                let outcome = controller_apis::decide(
                    &mut controller,
                    job.request,
                    job.version,
                    log.next_index() as i64,
                    now_ms(),
                    &mut ids,
                    &*settings.validator,
                );
                match outcome {
                    Err(e) => {
                        let _ = job.reply.send(Err(e));
                    }
                    Ok((records, response)) => {
                        let (records, response, prepared) =
                            prepare_local(settings, metadata, records, response).await;
                        match commit(log, &mut controller, records).await {
                            Ok(offset) => {
                                settle_local(settings, prepared, Some(offset)).await;
                                let _ = job.reply.send(Ok(ControllerReply {
                                    response,
                                    metadata_offset: offset,
                                }));
                            }
                            Err(leader) => {
                                settle_local(settings, prepared, None).await;
                                let _ = job.reply.send(Err(ControllerRequestError::NotController { leader }));
                                return;
                            }
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                // Fence every broker whose session expired, one at a time as Kafka does.
                loop {
                    let records = controller.tick(now_ms());
                    if records.is_empty() {
                        break;
                    }
                    if commit(log, &mut controller, records).await.is_err() {
                        return;
                    }
                }
                let now = tokio::time::Instant::now();
                if let (Some(at), Some(every)) = (next_preferred, settings.elections.preferred_every)
                    && now >= at
                {
                    next_preferred = Some(now + every);
                    if run_elections(log, &mut controller, "preferred", Controller::balance_partition_leaders).await.is_err() {
                        return;
                    }
                }
                if now >= next_unclean {
                    next_unclean = now + settings.elections.unclean_every;
                    if run_elections(log, &mut controller, "unclean", Controller::elect_unclean_leaders).await.is_err() {
                        return;
                    }
                }
            }
            changed = leadership.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *leadership.borrow();
                if now.leader != Some(settings.node_id) || now.term != term {
                    info!(node = settings.node_id, term, "no longer the active controller");
                    return;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Has this node's broker open the partitions `records` place on it (see
/// `local_replicas`): topics it cannot host are taken out of the batch and answered
/// KAFKA_STORAGE_ERROR. Returns the batch, the response and the topics prepared.
async fn prepare_local(
    settings: &DriverSettings,
    metadata: &MetadataHandle,
    records: Vec<MetadataRecord>,
    response: Response,
) -> (Vec<MetadataRecord>, Response, Vec<Uuid>) {
    let Some(local) = settings.local_replicas.clone() else {
        return (records, response, Vec::new());
    };
    let specs = local_replicas::plan(settings.node_id, &records, &metadata.image());
    if specs.is_empty() {
        return (records, response, Vec::new());
    }
    let node = settings.node_id;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut prepared = Vec::new();
        let mut refused = Vec::new();
        for spec in &specs {
            match local.prepare(spec) {
                Ok(()) => prepared.push(spec.id),
                Err(e) => {
                    warn!(topic = %spec.name, partitions = spec.partitions.len(), error = %e, "refusing new partitions this node cannot host");
                    refused.push(Refused {
                        id: spec.id,
                        name: spec.name.clone(),
                        message: format!(
                            "Broker {node} cannot create the partitions of topic '{}' placed on it: {e}",
                            spec.name
                        ),
                    });
                }
            }
        }
        (prepared, refused)
    })
    .await;
    let (prepared, refused) = match outcome {
        Ok(o) => o,
        Err(e) => {
            // The preparation panicked: nothing is known to be open, so nothing to settle;
            // the records go ahead as Kafka's would (the applier reports what fails).
            warn!(error = %e, "preparing local partitions failed");
            return (records, response, Vec::new());
        }
    };
    let (records, response) = local_replicas::refuse(records, response, &refused);
    (records, response, prepared)
}

/// Tells the broker how the batch with the `prepared` topics ended: committed at
/// `offset`, or not committed by this controller.
async fn settle_local(settings: &DriverSettings, prepared: Vec<Uuid>, offset: Option<i64>) {
    let Some(local) = settings.local_replicas.clone() else {
        return;
    };
    if prepared.is_empty() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || {
        for id in prepared {
            match offset {
                Some(at) => local.committed(id, at),
                None => local.discard(id),
            }
        }
    })
    .await;
}

/// Writes `records` as one batch and replays them into the controller once committed.
/// `Err(leader)` when this node no longer leads.
async fn commit(
    log: &dyn MetadataLog,
    controller: &mut Controller,
    records: Vec<MetadataRecord>,
) -> Result<i64, Option<i32>> {
    if records.is_empty() {
        return Ok(log.applied_index().map_or(-1, |i| i as i64));
    }
    let mut batch = Vec::with_capacity(records.len());
    for r in &records {
        match r.encode() {
            Ok(b) => batch.push(b),
            Err(e) => {
                // Records the controller built always encode; refusing the request keeps the
                // log clean if one does not.
                warn!(error = %e, record = r.name(), "controller built a record that does not encode");
                return Ok(log.applied_index().map_or(-1, |i| i as i64));
            }
        }
    }
    match log.write(batch).await {
        Ok(index) => {
            if let Err(e) = controller.replay_entry(&records, index as i64) {
                warn!(error = %e, "controller cannot replay its own committed batch");
            }
            debug!(index, records = records.len(), "metadata batch committed");
            Ok(index as i64)
        }
        Err(LogWriteError::NotLeader { leader }) => Err(leader),
        Err(LogWriteError::Failed(e)) => {
            warn!(error = %e, "metadata write failed; resigning as controller");
            Err(None)
        }
    }
}

/// The code a request hears when no controller is available.
pub fn not_controller() -> ErrorCode {
    ErrorCode::NotController
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher::MetadataPublisher;
    use arus_controller::AcceptAllConfigs;
    use arus_protocol::messages::create_topics_request::CreatableTopic;
    use arus_protocol::messages::{
        BrokerHeartbeatRequest, BrokerRegistrationRequest, CreateTopicsRequest,
    };
    use arus_raft::{CommittedBatch, MetadataStateMachine};
    use std::sync::Mutex;

    /// A one-node metadata log in memory: a write commits at once and is applied to the
    /// publisher before it resolves.
    struct MemoryLog {
        state: Mutex<(u64, MetadataPublisher)>,
        leadership: watch::Sender<Leadership>,
    }

    impl MetadataLog for MemoryLog {
        fn write(&self, batch: Vec<Bytes>) -> BoxFuture<Result<u64, LogWriteError>> {
            let mut state = self.state.lock().unwrap();
            state.0 += 1;
            let index = state.0;
            let result = state
                .1
                .apply(CommittedBatch {
                    index,
                    term: 1,
                    records: &batch,
                })
                .map(|()| index)
                .map_err(|e| LogWriteError::Failed(e.to_string()));
            Box::pin(async move { result })
        }
        fn next_index(&self) -> u64 {
            self.state.lock().unwrap().0 + 1
        }
        fn last_log_index(&self) -> Option<u64> {
            Some(self.state.lock().unwrap().0)
        }
        fn applied_index(&self) -> Option<u64> {
            Some(self.state.lock().unwrap().0)
        }
        fn wait_applied(&self, _index: u64) -> BoxFuture<()> {
            // Writes apply before they resolve.
            Box::pin(async {})
        }
        fn leadership(&self) -> watch::Receiver<Leadership> {
            self.leadership.subscribe()
        }
    }

    async fn setup() -> (
        ControllerHandle,
        MetadataHandle,
        Arc<MemoryLog>,
        watch::Sender<bool>,
    ) {
        let (publisher, handle, _rx) = MetadataPublisher::new(1, "cluster-x");
        let (leadership, _) = watch::channel(Leadership {
            leader: Some(1),
            term: 1,
        });
        let log = Arc::new(MemoryLog {
            state: Mutex::new((0, publisher)),
            leadership,
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut config = ControllerConfig::new("cluster-x", 1);
        config.session_timeout_ms = 9_000;
        let controller = start(
            log.clone(),
            handle.clone(),
            DriverSettings {
                node_id: 1,
                config,
                validator: Arc::new(AcceptAllConfigs),
                local_replicas: None,
                elections: Default::default(),
                // metadata.version, as `arus storage format` writes it.
                bootstrap: Controller::bootstrap_records(
                    &[("metadata.version".to_string(), 33)].into_iter().collect(),
                    1,
                ),
            },
            stop_rx,
        );
        (controller, handle, log, stop)
    }

    fn registration(id: i32) -> Request {
        Request::BrokerRegistration(BrokerRegistrationRequest {
            broker_id: id,
            cluster_id: "cluster-x".into(),
            incarnation_id: Uuid([id as u8; 16]),
            features: vec![
                arus_protocol::messages::broker_registration_request::Feature {
                    name: "metadata.version".into(),
                    min_supported_version: 7,
                    max_supported_version: 33,
                    ..Default::default()
                },
            ],
            log_dirs: vec![Uuid([0xd0 + id as u8; 16])],
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn registration_heartbeat_and_create_topics_commit_and_reach_the_image() {
        let (controller, metadata, _log, _stop) = setup().await;
        let reply = controller.submit(registration(1), 4).await.unwrap();
        let Response::BrokerRegistration(r) = reply.response else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        let epoch = r.broker_epoch;
        assert_eq!(
            epoch, reply.metadata_offset,
            "broker epoch is the record's offset"
        );
        let beat = Request::BrokerHeartbeat(BrokerHeartbeatRequest {
            broker_id: 1,
            broker_epoch: epoch,
            current_metadata_offset: reply.metadata_offset,
            ..Default::default()
        });
        let reply = controller.submit(beat, 1).await.unwrap();
        let Response::BrokerHeartbeat(h) = reply.response else {
            panic!()
        };
        assert_eq!(h.error_code, 0);
        assert!(!h.is_fenced, "caught up: unfenced");
        let create = Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "orders".into(),
                num_partitions: 3,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        });
        let reply = controller.submit(create, 7).await.unwrap();
        let Response::CreateTopics(c) = reply.response else {
            panic!()
        };
        assert_eq!(c.topics[0].error_code, 0, "{:?}", c.topics[0].error_message);
        metadata.caught_up_to(reply.metadata_offset).await;
        let image = metadata.image();
        let topic = image.topic("orders").unwrap();
        assert_eq!(topic.id, c.topics[0].topic_id);
        assert!(topic.partitions.values().all(|p| p.leader == 1));
        // The same name again: Kafka's error, nothing written.
        let again = Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "orders".into(),
                num_partitions: 1,
                replication_factor: 1,
                ..Default::default()
            }],
            ..Default::default()
        });
        let before = metadata.applied_offset();
        let reply = controller.submit(again, 7).await.unwrap();
        let Response::CreateTopics(c) = reply.response else {
            panic!()
        };
        assert_eq!(c.topics[0].error_code, ErrorCode::TopicAlreadyExists.code());
        assert_eq!(metadata.applied_offset(), before);
    }

    #[tokio::test]
    async fn a_node_that_does_not_lead_answers_not_controller() {
        let (controller, _metadata, log, _stop) = setup().await;
        log.leadership.send_replace(Leadership {
            leader: Some(2),
            term: 2,
        });
        tokio::task::yield_now().await;
        let err = controller.submit(registration(1), 4).await.unwrap_err();
        assert!(matches!(
            err,
            ControllerRequestError::NotController { leader: Some(2) }
        ));
    }
}
