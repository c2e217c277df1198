//! A small async Kafka client for the `arus` CLI and the integration tests; not a
//! general-purpose client.
//!
//! One [`Client`] is one TCP connection to one broker. Requests are sent one at a time and
//! each response is matched to its request by correlation id. On connect the client
//! exchanges `ApiVersions` and from then on sends every request at the highest version both
//! sides support (see [`Client::api_version`]); [`Client::send_with_version`] pins a version
//! and [`Client::send_raw_frame`] writes arbitrary bytes for hostile-input tests.
//!
//! The typed helpers ([`Client::metadata`], [`Client::create_topic`], [`Client::produce`],
//! [`Client::fetch`], [`Client::list_offset`], the group helpers [`Client::list_groups`],
//! [`Client::describe_group`], [`Client::offset_fetch`], [`Client::offset_commit`] …) turn Kafka error codes into
//! [`ClientError::Kafka`]. There is no retrying, no metadata refresh, no leader routing: the
//! broker is assumed to lead every partition it knows (true for a single Arus node).

mod error;
mod groups;
pub mod partitioner;
mod records;
mod topic_ids;

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use arus_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, DescribeConfigsRequest, FetchRequest, IncrementalAlterConfigsRequest,
    ListOffsetsRequest, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    create_partitions_request::CreatePartitionsTopic,
    create_topics_request::{CreatableTopic, CreatableTopicConfig},
    create_topics_response::CreatableTopicResult,
    delete_topics_request::DeleteTopicState,
    describe_configs_request::DescribeConfigsResource,
    describe_configs_response::DescribeConfigsResourceResult,
    fetch_request::{FetchPartition, FetchTopic},
    incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    metadata_request::MetadataRequestTopic,
    metadata_response::MetadataResponseTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
};
use arus_protocol::{
    ApiKey, Bytes, BytesMut, ErrorCode, Message, Request, RequestHeader, Response, Uuid,
    decode_response, encode_request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub use error::ClientError;
pub use groups::{CommittedOffset, Coordinator, OffsetToCommit, decode_consumer_assignment};
pub use partitioner::{murmur2, partition_for_key};
pub use records::{FetchedRecord, decode_fetched_records};

/// Re-exported so users of the client need not depend on the protocol crate directly.
pub use arus_protocol;

/// The `client_id` sent in every request header.
pub const CLIENT_ID: &str = "arus-cli";

/// The largest response frame the client accepts (the size prefix is checked before any
/// allocation).
pub const MAX_RESPONSE_SIZE: usize = 256 * 1024 * 1024;

/// How long [`Client::connect`] waits for the TCP handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time a response may take beyond the wait the request itself asks for (a fetch's
/// `max_wait_ms`, a produce's `timeout_ms`, an admin request's `timeout_ms`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// ListOffsets special timestamp: the latest offset (log end / high watermark).
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets special timestamp: the earliest offset (log start).
pub const EARLIEST_TIMESTAMP: i64 = -2;

/// `IncrementalAlterConfigs` operation codes.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// Resource type TOPIC in the config APIs.
const RESOURCE_TOPIC: i8 = 2;

/// Admin request timeout sent to the broker (`timeout_ms` of CreateTopics & co.).
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// The oldest version of an API this client is willing to speak. Produce before v3 and
/// Fetch before v4 carry the pre-v2 message formats, which Arus does not write or read;
/// Metadata v0 reads an empty topic list as "all topics"; ListOffsets v0 returns offset
/// arrays. None of those are worth supporting here.
fn client_min_version(api: ApiKey) -> i16 {
    let floor = match api {
        ApiKey::Produce => 3,
        ApiKey::Fetch => 4,
        ApiKey::Metadata | ApiKey::ListOffsets => 1,
        _ => 0,
    };
    floor.max(api.valid_versions().0)
}

/// The result of fetching one partition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FetchedPartition {
    pub partition: i32,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Records at or after the requested offset, in offset order.
    pub records: Vec<FetchedRecord>,
    /// Where the next fetch should start: one past the last complete batch returned (which
    /// also moves past control batches and records before the requested offset), or the
    /// requested offset when nothing came back.
    pub next_offset: i64,
}

/// One connection to a broker. See the crate documentation.
pub struct Client {
    addr: String,
    stream: BufReader<TcpStream>,
    next_correlation_id: i32,
    client_id: String,
    /// The broker's advertised (min, max) per API, from ApiVersions.
    broker_versions: HashMap<ApiKey, (i16, i16)>,
    /// Client-side caps set with [`Client::cap_version`].
    caps: HashMap<ApiKey, i16>,
    /// Topic ids learnt from Metadata responses (Fetch v13+ names topics by id).
    topic_ids: HashMap<String, Uuid>,
    request_timeout: Duration,
    broken: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("next_correlation_id", &self.next_correlation_id)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `addr` (`host:port`) and exchanges ApiVersions.
    pub async fn connect(addr: &str) -> Result<Client, ClientError> {
        let mut client = Client::connect_without_handshake(addr).await?;
        client.handshake().await?;
        Ok(client)
    }

    /// Connects without sending ApiVersions, for tests whose first bytes on the connection
    /// matter. Until [`Client::handshake`] runs, [`Client::send`] has no version table and
    /// fails; [`Client::send_with_version`] and [`Client::send_raw_frame`] work.
    pub async fn connect_without_handshake(addr: &str) -> Result<Client, ClientError> {
        let connect_err = |error: io::Error| ClientError::Connect {
            addr: addr.to_owned(),
            reason: error::connect_reason(&error),
            error,
        };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(r) => r.map_err(connect_err)?,
            Err(_) => return Err(connect_err(io::Error::from(io::ErrorKind::TimedOut))),
        };
        // Small request/response exchanges: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        Ok(Client {
            addr: addr.to_owned(),
            stream: BufReader::new(stream),
            next_correlation_id: 1,
            client_id: CLIENT_ID.to_owned(),
            broker_versions: HashMap::new(),
            caps: HashMap::new(),
            topic_ids: HashMap::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            broken: false,
        })
    }

    /// The address this client connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sets the time a response may take beyond the wait the request asks for.
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    /// Sets the `client_id` of later request headers (default [`CLIENT_ID`]).
    pub fn set_client_id(&mut self, client_id: &str) {
        self.client_id = client_id.to_owned();
    }

    /// Never use a version of `api` above `max` (tests exercising old versions).
    pub fn cap_version(&mut self, api: ApiKey, max: i16) {
        self.caps.insert(api, max);
    }

    /// The broker's advertised version range for `api`, if it advertises it.
    pub fn broker_versions(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.broker_versions.get(&api).copied()
    }

    /// Sends ApiVersions and records the broker's ranges. Starts at the newest version this
    /// client knows; if the broker answers `UNSUPPORTED_VERSION` (with a v0 body, KIP-511),
    /// retries at the highest version the broker says it supports.
    pub async fn handshake(&mut self) -> Result<(), ClientError> {
        let mut version = ApiKey::ApiVersions.valid_versions().1;
        for _ in 0..2 {
            let request = Request::ApiVersions(ApiVersionsRequest {
                client_software_name: "arus-client".into(),
                client_software_version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            });
            let frame = self.exchange(&request, version).await?;
            let body = decode_api_versions(frame, version)?;
            if body.error_code == ErrorCode::UnsupportedVersion.code() {
                let broker_max = body
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions.key())
                    .map(|k| k.max_version);
                match broker_max {
                    Some(max) if max < version && max >= 0 => {
                        version = max;
                        continue;
                    }
                    _ => {}
                }
            }
            ClientError::check(body.error_code, None)?;
            self.broker_versions = body
                .api_keys
                .iter()
                .filter_map(|k| {
                    ApiKey::from_i16(k.api_key).map(|api| (api, (k.min_version, k.max_version)))
                })
                .collect();
            return Ok(());
        }
        Err(ClientError::UnsupportedApi {
            api: ApiKey::ApiVersions,
            broker_versions: None,
        })
    }

    /// The version [`Client::send`] uses for `api`: the highest that both the broker
    /// advertises and this client supports.
    pub fn api_version(&self, api: ApiKey) -> Result<i16, ClientError> {
        let Some(&(broker_lo, broker_hi)) = self.broker_versions.get(&api) else {
            return Err(ClientError::UnsupportedApi {
                api,
                broker_versions: None,
            });
        };
        let mut hi = broker_hi.min(api.valid_versions().1);
        if let Some(&cap) = self.caps.get(&api) {
            hi = hi.min(cap);
        }
        let lo = broker_lo.max(client_min_version(api));
        if hi < lo {
            return Err(ClientError::UnsupportedApi {
                api,
                broker_versions: Some((broker_lo, broker_hi)),
            });
        }
        Ok(hi)
    }

    /// Sends `request` at the negotiated version and returns the broker's response.
    ///
    /// A Produce request with `acks = 0` gets no response from a broker; for it this
    /// returns, without reading, a response that mirrors the request with error code NONE
    /// and base offset -1 (as Kafka's Java client reports such sends).
    ///
    /// Produce, OffsetCommit, OffsetFetch and TxnOffsetCommit requests may name their topics
    /// by name at every version: at the versions that name them by id only, this fills in
    /// the ids (learnt with Metadata) and puts the names back into the answer; when a
    /// topic's id cannot be learnt (say, it does not exist) it sends the last version that
    /// names topics instead, as Kafka's Java client does.
    pub async fn send(&mut self, mut request: Request) -> Result<Response, ClientError> {
        let api = request.api_key();
        let mut version = self.api_version(api)?;
        let mut by_id: Option<HashMap<Uuid, String>> = None;
        if let Some(last) = topic_ids::last_by_name_version(api)
            && version > last
        {
            let mut ids = HashMap::new();
            match topic_ids::names(&request) {
                Some(names) => {
                    for name in names {
                        match self.topic_id(&name).await {
                            Ok(id) => {
                                ids.insert(name, id);
                            }
                            Err(_) => {
                                version = last;
                                break;
                            }
                        }
                    }
                }
                None => version = last,
            }
            if version > last {
                topic_ids::set_ids(&mut request, &ids);
                by_id = Some(ids.into_iter().map(|(name, id)| (id, name)).collect());
            }
        }
        let mut response = self.send_with_version(request, version).await?;
        if let Some(names) = by_id {
            for stale in topic_ids::restore_names(&mut response, &names) {
                self.topic_ids.remove(&stale);
            }
        }
        Ok(response)
    }

    /// Sends `request` at `version` (which need not be one the broker advertises).
    pub async fn send_with_version(
        &mut self,
        request: Request,
        version: i16,
    ) -> Result<Response, ClientError> {
        let api = request.api_key();
        if let Request::Produce(p) = &request
            && p.acks == 0
        {
            self.write_request(&request, version).await?;
            return Ok(Response::Produce(unacknowledged_produce_response(p)));
        }
        let frame = self.exchange(&request, version).await?;
        let (_, response) =
            decode_response(api, version, frame).map_err(|source| ClientError::Decode {
                api,
                version,
                source,
            })?;
        Ok(response)
    }

    /// Writes `frame` exactly as given (it must include its own size prefix, or not, as the
    /// test wants) and reads one response frame. Returns the frame without its size prefix,
    /// or `None` if the broker closed the connection instead. Does not time out: wrap it in
    /// `tokio::time::timeout` when the broker might stay silent.
    pub async fn send_raw_frame(&mut self, frame: &[u8]) -> io::Result<Option<Bytes>> {
        let stream = self.stream.get_mut();
        match stream.write_all(frame).await {
            Ok(()) => {}
            Err(e) if is_closed(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
        stream.flush().await?;
        match read_frame(&mut self.stream).await {
            Ok(f) => Ok(f),
            Err(e) if is_closed(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads one response frame (without its size prefix), or `None` if the broker closed
    /// the connection. For tests that pipeline raw frames.
    pub async fn read_raw_frame(&mut self) -> io::Result<Option<Bytes>> {
        match read_frame(&mut self.stream).await {
            Ok(f) => Ok(f),
            Err(e) if is_closed(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Encodes and writes one request; returns its correlation id.
    async fn write_request(&mut self, request: &Request, version: i16) -> Result<i32, ClientError> {
        if self.broken {
            return Err(ClientError::Broken {
                addr: self.addr.clone(),
            });
        }
        let api = request.api_key();
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1).max(1);
        let header = RequestHeader {
            request_api_key: api.key(),
            request_api_version: version,
            correlation_id,
            client_id: Some(self.client_id.clone()),
        };
        let mut out = BytesMut::new();
        encode_request(&header, request, &mut out).map_err(|source| ClientError::Encode {
            api,
            version,
            source,
        })?;
        let stream = self.stream.get_mut();
        let written = async {
            stream.write_all(&out).await?;
            stream.flush().await
        }
        .await;
        if let Err(source) = written {
            self.broken = true;
            return Err(ClientError::Io {
                addr: self.addr.clone(),
                source,
            });
        }
        Ok(correlation_id)
    }

    /// Writes a request, reads its response frame and checks the correlation id. Returns
    /// the frame without its size prefix (header still in it).
    async fn exchange(&mut self, request: &Request, version: i16) -> Result<Bytes, ClientError> {
        let api = request.api_key();
        let correlation_id = self.write_request(request, version).await?;
        let wait = self.request_timeout + Duration::from_millis(request_wait_ms(request));
        let frame = match tokio::time::timeout(wait, read_frame(&mut self.stream)).await {
            Err(_) => {
                self.broken = true;
                return Err(ClientError::Timeout {
                    addr: self.addr.clone(),
                    api,
                    timeout_ms: wait.as_millis() as u64,
                });
            }
            Ok(Err(source)) => {
                self.broken = true;
                if source.kind() == io::ErrorKind::InvalidData {
                    return Err(ClientError::FrameSize(frame_size_hint(&source)));
                }
                return Err(ClientError::Io {
                    addr: self.addr.clone(),
                    source,
                });
            }
            Ok(Ok(None)) => {
                self.broken = true;
                return Err(ClientError::Io {
                    addr: self.addr.clone(),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the broker closed the connection instead of answering {api}"),
                    ),
                });
            }
            Ok(Ok(Some(frame))) => frame,
        };
        let received = frame
            .get(0..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(ClientError::Decode {
                api,
                version,
                source: arus_protocol::DecodeError::Truncated {
                    field: "ResponseHeader.CorrelationId",
                    needed: 4,
                    remaining: frame.len(),
                },
            })?;
        if received != correlation_id {
            self.broken = true;
            return Err(ClientError::CorrelationMismatch {
                expected: correlation_id,
                received,
            });
        }
        Ok(frame)
    }

    // ----------------------------------------------------------------------------------
    // Typed helpers
    // ----------------------------------------------------------------------------------

    /// Metadata for `topics` (`None`: every topic). Does not check per-topic error codes
    /// (see [`Client::topic_metadata`]); remembers topic ids for Fetch.
    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
    ) -> Result<MetadataResponse, ClientError> {
        let request = MetadataRequest {
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic {
                        name: Some((*t).to_owned()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        // Not `send`, which may itself look topic ids up with this.
        let version = self.api_version(ApiKey::Metadata)?;
        let response = match self
            .send_with_version(Request::Metadata(request), version)
            .await?
        {
            Response::Metadata(r) => r,
            other => return Err(wrong_response(ApiKey::Metadata, &other)),
        };
        for t in &response.topics {
            if let Some(name) = &t.name
                && t.error_code == 0
                && t.topic_id != Uuid::ZERO
            {
                self.topic_ids.insert(name.clone(), t.topic_id);
            }
        }
        Ok(response)
    }

    /// Metadata of one topic, with its error code turned into an error
    /// (`UNKNOWN_TOPIC_OR_PARTITION` when it does not exist). Partitions sorted by index.
    pub async fn topic_metadata(
        &mut self,
        topic: &str,
    ) -> Result<MetadataResponseTopic, ClientError> {
        let response = self.metadata(Some(&[topic])).await?;
        let mut t = response
            .topics
            .into_iter()
            .find(|t| t.name.as_deref() == Some(topic))
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!("topic '{topic}' missing from metadata"))
            })?;
        ClientError::check(t.error_code, None)?;
        t.partitions.sort_by_key(|p| p.partition_index);
        Ok(t)
    }

    /// The number of partitions of `topic`.
    pub async fn partition_count(&mut self, topic: &str) -> Result<i32, ClientError> {
        let t = self.topic_metadata(topic).await?;
        Ok(t.partitions.len() as i32)
    }

    /// The id of `topic` (from the cache, else from a Metadata request).
    pub async fn topic_id(&mut self, topic: &str) -> Result<Uuid, ClientError> {
        if let Some(id) = self.topic_ids.get(topic) {
            return Ok(*id);
        }
        let t = self.topic_metadata(topic).await?;
        if t.topic_id == Uuid::ZERO {
            return Err(ClientError::UnexpectedResponse(format!(
                "the broker reports no id for topic '{topic}'"
            )));
        }
        Ok(t.topic_id)
    }

    /// Creates a topic. `partitions` and `replication_factor` may be -1 for the broker's
    /// defaults. Returns the broker's result (topic id, partition count, configs).
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<CreatableTopicResult, ClientError> {
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.to_owned(),
                num_partitions: partitions,
                replication_factor,
                assignments: Vec::new(),
                configs: configs
                    .iter()
                    .map(|(k, v)| CreatableTopicConfig {
                        name: k.clone(),
                        value: Some(v.clone()),
                    })
                    .collect(),
            }],
            timeout_ms: ADMIN_TIMEOUT_MS,
            validate_only: false,
        };
        let response = match self.send(Request::CreateTopics(request)).await? {
            Response::CreateTopics(r) => r,
            other => return Err(wrong_response(ApiKey::CreateTopics, &other)),
        };
        let result = response
            .topics
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!(
                    "topic '{name}' missing from CreateTopics response"
                ))
            })?;
        ClientError::check(result.error_code, result.error_message.as_deref())?;
        if result.topic_id != Uuid::ZERO {
            self.topic_ids.insert(name.to_owned(), result.topic_id);
        }
        Ok(result)
    }

    /// Deletes a topic by name.
    pub async fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        let version = self.api_version(ApiKey::DeleteTopics)?;
        let mut request = DeleteTopicsRequest {
            timeout_ms: ADMIN_TIMEOUT_MS,
            ..Default::default()
        };
        if version >= 6 {
            request.topics = vec![DeleteTopicState {
                name: Some(name.to_owned()),
                topic_id: Uuid::ZERO,
            }];
        } else {
            request.topic_names = vec![name.to_owned()];
        }
        let response = match self
            .send_with_version(Request::DeleteTopics(request), version)
            .await?
        {
            Response::DeleteTopics(r) => r,
            other => return Err(wrong_response(ApiKey::DeleteTopics, &other)),
        };
        self.topic_ids.remove(name);
        let result = response
            .responses
            .into_iter()
            .find(|r| r.name.as_deref() == Some(name))
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!(
                    "topic '{name}' missing from DeleteTopics response"
                ))
            })?;
        ClientError::check(result.error_code, result.error_message.as_deref())
    }

    /// Grows `name` to `count` partitions.
    pub async fn create_partitions(&mut self, name: &str, count: i32) -> Result<(), ClientError> {
        let request = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: name.to_owned(),
                count,
                assignments: None,
            }],
            timeout_ms: ADMIN_TIMEOUT_MS,
            validate_only: false,
        };
        let response = match self.send(Request::CreatePartitions(request)).await? {
            Response::CreatePartitions(r) => r,
            other => return Err(wrong_response(ApiKey::CreatePartitions, &other)),
        };
        let result = response
            .results
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!(
                    "topic '{name}' missing from CreatePartitions response"
                ))
            })?;
        ClientError::check(result.error_code, result.error_message.as_deref())
    }

    /// Every config of topic `name` as the broker describes it (value, source, default flag).
    pub async fn describe_topic_configs(
        &mut self,
        name: &str,
    ) -> Result<Vec<DescribeConfigsResourceResult>, ClientError> {
        let request = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.to_owned(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        let response = match self.send(Request::DescribeConfigs(request)).await? {
            Response::DescribeConfigs(r) => r,
            other => return Err(wrong_response(ApiKey::DescribeConfigs, &other)),
        };
        let result = response
            .results
            .into_iter()
            .find(|r| r.resource_name == name)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!(
                    "topic '{name}' missing from DescribeConfigs response"
                ))
            })?;
        ClientError::check(result.error_code, result.error_message.as_deref())?;
        Ok(result.configs)
    }

    /// Sets and deletes (reverts to default) topic configs in one IncrementalAlterConfigs.
    pub async fn incremental_alter_topic_configs(
        &mut self,
        name: &str,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<(), ClientError> {
        let configs = set
            .iter()
            .map(|(k, v)| AlterableConfig {
                name: k.clone(),
                config_operation: OP_SET,
                value: Some(v.clone()),
            })
            .chain(delete.iter().map(|k| AlterableConfig {
                name: k.clone(),
                config_operation: OP_DELETE,
                value: None,
            }))
            .collect();
        let request = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.to_owned(),
                configs,
            }],
            validate_only: false,
        };
        let response = match self.send(Request::IncrementalAlterConfigs(request)).await? {
            Response::IncrementalAlterConfigs(r) => r,
            other => return Err(wrong_response(ApiKey::IncrementalAlterConfigs, &other)),
        };
        let result = response
            .responses
            .into_iter()
            .find(|r| r.resource_name == name)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!(
                    "topic '{name}' missing from IncrementalAlterConfigs response"
                ))
            })?;
        ClientError::check(result.error_code, result.error_message.as_deref())
    }

    /// Produces one record set (one or more v2 batches, e.g. from
    /// `arus_records::BatchBuilder`) to a partition. Returns the base offset the broker
    /// assigned, or -1 with `acks = 0` (no response).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
        timeout_ms: i32,
    ) -> Result<i64, ClientError> {
        let request = ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms,
            topic_data: vec![TopicProduceData {
                name: topic.to_owned(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                }],
                ..Default::default()
            }],
        };
        let response = match self.send(Request::Produce(request)).await? {
            Response::Produce(r) => r,
            other => return Err(wrong_response(ApiKey::Produce, &other)),
        };
        let p = response
            .responses
            .iter()
            .filter(|t| t.name == topic)
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == partition)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!(
                    "partition {topic}-{partition} missing from Produce response"
                ))
            })?;
        ClientError::check(p.error_code, produce_error_message(p).as_deref())?;
        Ok(p.base_offset)
    }

    /// Fetches one partition from `offset` (read_uncommitted). See [`FetchedPartition`].
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<FetchedPartition, ClientError> {
        let mut results = self
            .fetch_partitions(topic, &[(partition, offset)], max_wait_ms, max_bytes)
            .await?;
        match results.pop() {
            Some((_, r)) => r,
            None => Err(ClientError::UnexpectedResponse(format!(
                "partition {topic}-{partition} missing from Fetch response"
            ))),
        }
    }

    /// Fetches several partitions of one topic in one request (`min_bytes` 1, so the broker
    /// answers as soon as any partition has data or after `max_wait_ms`). Each partition
    /// gets `max_bytes` as its own limit too. Returns one result per requested partition, in
    /// request order; a partition-level error code is that partition's `Err`.
    pub async fn fetch_partitions(
        &mut self,
        topic: &str,
        partitions: &[(i32, i64)],
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<Vec<(i32, Result<FetchedPartition, ClientError>)>, ClientError> {
        let version = self.api_version(ApiKey::Fetch)?;
        let topic_id = if version >= 13 {
            self.topic_id(topic).await?
        } else {
            Uuid::ZERO
        };
        let request = FetchRequest {
            max_wait_ms,
            min_bytes: 1,
            max_bytes,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: if version >= 13 {
                    String::new()
                } else {
                    topic.to_owned()
                },
                topic_id,
                partitions: partitions
                    .iter()
                    .map(|&(partition, offset)| FetchPartition {
                        partition,
                        fetch_offset: offset,
                        partition_max_bytes: max_bytes,
                        ..Default::default()
                    })
                    .collect(),
            }],
            ..Default::default()
        };
        let response = match self
            .send_with_version(Request::Fetch(request), version)
            .await?
        {
            Response::Fetch(r) => r,
            other => return Err(wrong_response(ApiKey::Fetch, &other)),
        };
        ClientError::check(response.error_code, None)?;
        let mut data: Vec<_> = response
            .responses
            .into_iter()
            .filter(|t| {
                if version >= 13 {
                    t.topic_id == topic_id
                } else {
                    t.topic == topic
                }
            })
            .flat_map(|t| t.partitions)
            .collect();
        let mut out = Vec::with_capacity(partitions.len());
        for &(partition, offset) in partitions {
            let Some(pos) = data.iter().position(|p| p.partition_index == partition) else {
                out.push((
                    partition,
                    Err(ClientError::UnexpectedResponse(format!(
                        "partition {topic}-{partition} missing from Fetch response"
                    ))),
                ));
                continue;
            };
            let p = data.swap_remove(pos);
            if let Err(e) = ClientError::check(p.error_code, None) {
                if e.code() == Some(ErrorCode::UnknownTopicId) {
                    self.topic_ids.remove(topic);
                }
                out.push((partition, Err(e)));
                continue;
            }
            let result = decode_fetched_records(p.records.unwrap_or_default(), offset)
                .map(|(records, next)| FetchedPartition {
                    partition,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                    records,
                    next_offset: next.unwrap_or(offset).max(offset),
                })
                .map_err(ClientError::from);
            out.push((partition, result));
        }
        Ok(out)
    }

    /// ListOffsets for one partition: `timestamp` is a time in ms (first offset whose
    /// timestamp is at or after it) or [`LATEST_TIMESTAMP`] / [`EARLIEST_TIMESTAMP`] (or
    /// -3 max timestamp where the broker supports it). Returns `(offset, timestamp)`;
    /// offset -1 when no record is that recent.
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<(i64, i64), ClientError> {
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: topic.to_owned(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp,
                    ..Default::default()
                }],
            }],
            timeout_ms: ADMIN_TIMEOUT_MS,
        };
        let response = match self.send(Request::ListOffsets(request)).await? {
            Response::ListOffsets(r) => r,
            other => return Err(wrong_response(ApiKey::ListOffsets, &other)),
        };
        let p = response
            .topics
            .iter()
            .filter(|t| t.name == topic)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!(
                    "partition {topic}-{partition} missing from ListOffsets response"
                ))
            })?;
        ClientError::check(p.error_code, None)?;
        Ok((p.offset, p.timestamp))
    }
}

/// The response a broker would have sent to an `acks = 0` produce if it sent one.
fn unacknowledged_produce_response(p: &ProduceRequest) -> ProduceResponse {
    ProduceResponse {
        responses: p
            .topic_data
            .iter()
            .map(|t| TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: t
                    .partition_data
                    .iter()
                    .map(|d| PartitionProduceResponse {
                        index: d.index,
                        error_code: 0,
                        base_offset: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The partition's error message plus the per-record errors of Produce v8+.
fn produce_error_message(p: &PartitionProduceResponse) -> Option<String> {
    let mut parts: Vec<String> = p
        .error_message
        .iter()
        .filter(|m| !m.is_empty())
        .cloned()
        .collect();
    for e in &p.record_errors {
        match &e.batch_index_error_message {
            Some(m) if !m.is_empty() => parts.push(format!("record {}: {m}", e.batch_index)),
            _ => parts.push(format!("record {} rejected", e.batch_index)),
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Decodes an ApiVersions response body. A broker that does not support the version we
/// asked for answers with a v0 body (KIP-511), so fall back to v0 when the asked-for
/// version does not parse or reports UNSUPPORTED_VERSION.
fn decode_api_versions(frame: Bytes, version: i16) -> Result<ApiVersionsResponse, ClientError> {
    // Response header v0: the correlation id only (already checked).
    let body = frame.slice(4..);
    let mut buf = body.clone();
    match ApiVersionsResponse::decode(&mut buf, version) {
        Ok(r) if r.error_code != ErrorCode::UnsupportedVersion.code() => Ok(r),
        first => {
            let mut buf = body;
            match ApiVersionsResponse::decode(&mut buf, 0) {
                Ok(r) => Ok(r),
                Err(source) => match first {
                    Ok(r) => Ok(r),
                    Err(_) => Err(ClientError::Decode {
                        api: ApiKey::ApiVersions,
                        version,
                        source,
                    }),
                },
            }
        }
    }
}

fn wrong_response(api: ApiKey, got: &Response) -> ClientError {
    ClientError::UnexpectedResponse(format!("expected a {api} response, got {}", got.api_key()))
}

/// How long the broker may legitimately hold `request` before answering.
fn request_wait_ms(request: &Request) -> u64 {
    let ms = match request {
        Request::Fetch(f) => f.max_wait_ms,
        Request::Produce(p) => p.timeout_ms,
        Request::CreateTopics(r) => r.timeout_ms,
        Request::DeleteTopics(r) => r.timeout_ms,
        Request::CreatePartitions(r) => r.timeout_ms,
        Request::ListOffsets(r) => r.timeout_ms,
        _ => 0,
    };
    u64::try_from(ms).unwrap_or(0)
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn frame_size_hint(e: &io::Error) -> i64 {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<BadFrameSize>())
        .map_or(-1, |b| b.0)
}

#[derive(Debug)]
struct BadFrameSize(i64);

impl std::fmt::Display for BadFrameSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid response frame size {}", self.0)
    }
}

impl std::error::Error for BadFrameSize {}

/// Reads one size-prefixed frame. `Ok(None)` on a clean close before the first byte of the
/// size; `UnexpectedEof` on a close mid-frame; `InvalidData` on an impossible size.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Bytes>> {
    let mut size = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut size[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    let len = i32::from_be_bytes(size);
    let Ok(len) = usize::try_from(len) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            BadFrameSize(len.into()),
        ));
    };
    if len > MAX_RESPONSE_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            BadFrameSize(len as i64),
        ));
    }
    let mut buf = BytesMut::zeroed(len);
    r.read_exact(&mut buf).await?;
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests;
