//! The launcher of the real-process cluster tests (`cluster_*.rs`): KRaft clusters of
//! `arus serve` processes on 127.0.0.1, each node configured with Kafka's keys in its own
//! server.properties, formatted with `arus storage format` and started with a ready file,
//! as an operator would run them. A test describes its nodes (combined, controller-only or
//! broker-only), the quorum setting, the format flags and extra properties with
//! [`ClusterBuilder`], then starts, SIGKILLs and restarts nodes one by one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `process.roles` of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `broker,controller`: a PLAINTEXT and a CONTROLLER listener.
    Combined,
    /// `controller`: a CONTROLLER listener only.
    Controller,
    /// `broker`: a PLAINTEXT listener only.
    Broker,
}

impl Role {
    fn is_controller(self) -> bool {
        self != Role::Broker
    }

    fn is_broker(self) -> bool {
        self != Role::Controller
    }
}

/// How every node finds the quorum.
#[derive(Clone, Debug)]
pub enum Quorum {
    /// `controller.quorum.voters` naming every controller (kraft.version 0).
    Voters,
    /// `controller.quorum.bootstrap.servers`: the CONTROLLER listeners of these node ids.
    Bootstrap(Vec<i32>),
}

/// The flags `arus storage format` gets for a node, after `-t CLUSTER_ID -c CONFIG`.
#[derive(Clone, Debug)]
pub enum Format {
    /// None.
    Plain,
    /// `--standalone`.
    Standalone,
    /// `--no-initial-controllers`.
    NoInitialControllers,
    /// `--initial-controllers` naming every controller (in id order) with these directory
    /// ids, one per controller.
    InitialControllers(Vec<String>),
}

/// One `arus serve` process of a cluster, formatted; started by [`Node::start`].
pub struct Node {
    pub id: i32,
    pub role: Role,
    /// The PLAINTEXT port of a broker or combined node.
    pub client_port: Option<u16>,
    /// The CONTROLLER port of a controller or combined node.
    pub controller_port: Option<u16>,
    data: PathBuf,
    config: PathBuf,
    ready: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// The client (PLAINTEXT) listener; the CONTROLLER listener of a controller-only node.
    pub fn addr(&self) -> String {
        format!(
            "127.0.0.1:{}",
            self.client_port.or(self.controller_port).unwrap()
        )
    }

    /// The CONTROLLER listener.
    pub fn controller_addr(&self) -> String {
        format!(
            "127.0.0.1:{}",
            self.controller_port
                .unwrap_or_else(|| panic!("node {} has no controller listener", self.id))
        )
    }

    /// `directory.id` of the node's meta.properties, as `arus storage format` wrote it.
    pub fn directory_id(&self) -> String {
        let text = std::fs::read_to_string(self.data.join("meta.properties")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("directory.id="))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The node's `log.dirs` (its only data directory).
    #[allow(dead_code)]
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Whether the process was started and not killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Spawns `arus serve --config … --ready-file …` (does not wait for it).
    pub fn start(&mut self) {
        let _ = std::fs::remove_file(&self.ready);
        let child = Command::new(super::binary())
            .args(["serve", "--config"])
            .arg(&self.config)
            .arg("--ready-file")
            .arg(&self.ready)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning arus");
        self.child = Some(child);
    }

    /// Waits (at most 60 s) until the node has written its ready file.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&self.ready).is_ok_and(|t| t.ends_with('\n')) {
            assert!(Instant::now() < deadline, "node {} not ready", self.id);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no clean shutdown, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A formatted cluster: its id and its nodes, in id order (ids from 1).
pub struct Cluster {
    pub cluster_id: String,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// A cluster whose files live in `dir`.
    pub fn builder(dir: &Path) -> ClusterBuilder {
        ClusterBuilder {
            dir: dir.to_path_buf(),
            cluster_id: None,
            nodes: Vec::new(),
            quorum: Quorum::Voters,
            properties: Vec::new(),
            rack_per_node: false,
        }
    }

    /// Starts every node, then waits until each is ready.
    pub fn start_all(&mut self) {
        for n in &mut self.nodes {
            n.start();
        }
        for n in &self.nodes {
            n.wait_ready();
        }
    }
}

/// What [`Cluster::builder`] collects.
pub struct ClusterBuilder {
    dir: PathBuf,
    cluster_id: Option<String>,
    nodes: Vec<(Role, Format)>,
    quorum: Quorum,
    properties: Vec<(String, String)>,
    rack_per_node: bool,
}

impl ClusterBuilder {
    /// Adds `count` nodes of `role`, formatted with `format`; ids follow the nodes added
    /// before.
    pub fn nodes(mut self, count: usize, role: Role, format: Format) -> Self {
        for _ in 0..count {
            self.nodes.push((role, format.clone()));
        }
        self
    }

    /// The quorum setting of every node ([`Quorum::Voters`] unless set).
    pub fn quorum(mut self, quorum: Quorum) -> Self {
        self.quorum = quorum;
        self
    }

    /// `broker.rack=rack-<node id>` in each node's server.properties.
    pub fn rack_per_node(mut self) -> Self {
        self.rack_per_node = true;
        self
    }

    /// Another line `key=value` in every node's server.properties.
    pub fn property(mut self, key: &str, value: impl ToString) -> Self {
        self.properties.push((key.to_string(), value.to_string()));
        self
    }

    /// The cluster id to format with (a new `arus storage random-uuid` unless set).
    pub fn cluster_id(mut self, id: &str) -> Self {
        self.cluster_id = Some(id.to_string());
        self
    }

    /// Picks the ports, writes each node's server.properties and formats it; starts nothing.
    pub fn build(self) -> Cluster {
        let ports: Vec<(Option<u16>, Option<u16>)> = self
            .nodes
            .iter()
            .map(|(role, _)| {
                (
                    role.is_broker().then(free_port),
                    role.is_controller().then(free_port),
                )
            })
            .collect();
        let controller_port = |id: i32| ports[id as usize - 1].1.unwrap();
        let voters: Vec<String> = ports
            .iter()
            .enumerate()
            .filter_map(|(i, (_, c))| c.map(|c| format!("{}@127.0.0.1:{c}", i + 1)))
            .collect();
        let quorum_line = match &self.quorum {
            Quorum::Voters => format!("controller.quorum.voters={}", voters.join(",")),
            Quorum::Bootstrap(ids) => format!(
                "controller.quorum.bootstrap.servers={}",
                ids.iter()
                    .map(|&id| format!("127.0.0.1:{}", controller_port(id)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let extra: String = self
            .properties
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let cluster_id = self
            .cluster_id
            .unwrap_or_else(|| arus(&["storage", "random-uuid"]));
        let mut nodes = Vec::new();
        for (i, ((role, format), (client, controller))) in
            self.nodes.into_iter().zip(ports).enumerate()
        {
            let id = i as i32 + 1;
            let rack = if self.rack_per_node {
                format!("broker.rack=rack-{id}\n")
            } else {
                String::new()
            };
            let data = self.dir.join(format!("node-{id}"));
            let config = self.dir.join(format!("node-{id}.properties"));
            let roles = match (client, controller) {
                (Some(b), Some(c)) => format!(
                    "process.roles=broker,controller\n\
                     listeners=PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{c}\n\
                     advertised.listeners=PLAINTEXT://127.0.0.1:{b}\n\
                     inter.broker.listener.name=PLAINTEXT\n"
                ),
                (None, Some(c)) => format!(
                    "process.roles=controller\n\
                     listeners=CONTROLLER://127.0.0.1:{c}\n"
                ),
                (Some(b), None) => format!(
                    "process.roles=broker\n\
                     listeners=PLAINTEXT://127.0.0.1:{b}\n\
                     advertised.listeners=PLAINTEXT://127.0.0.1:{b}\n\
                     inter.broker.listener.name=PLAINTEXT\n"
                ),
                (None, None) => unreachable!(),
            };
            std::fs::write(
                &config,
                format!(
                    "node.id={id}\n{roles}\
                     controller.listener.names=CONTROLLER\n\
                     listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                     {quorum_line}\n\
                     {rack}{extra}\
                     log.dirs={}\n",
                    data.display()
                ),
            )
            .unwrap();
            let mut args = vec![
                "storage".to_string(),
                "format".into(),
                "-t".into(),
                cluster_id.clone(),
                "-c".into(),
                config.to_str().unwrap().into(),
            ];
            match format {
                Format::Plain => {}
                Format::Standalone => args.push("--standalone".into()),
                Format::NoInitialControllers => args.push("--no-initial-controllers".into()),
                Format::InitialControllers(directory_ids) => {
                    assert_eq!(
                        directory_ids.len(),
                        voters.len(),
                        "one directory id a voter"
                    );
                    let initial: Vec<String> = voters
                        .iter()
                        .zip(&directory_ids)
                        .map(|(v, d)| format!("{v}:{d}"))
                        .collect();
                    args.extend(["--initial-controllers".into(), initial.join(",")]);
                }
            }
            arus(&args.iter().map(String::as_str).collect::<Vec<_>>());
            nodes.push(Node {
                id,
                role,
                client_port: client,
                controller_port: controller,
                data,
                config,
                ready: self.dir.join(format!("node-{id}.ready")),
                child: None,
            });
        }
        Cluster { cluster_id, nodes }
    }

    /// [`ClusterBuilder::build`], then [`Cluster::start_all`].
    pub fn start(self) -> Cluster {
        let mut cluster = self.build();
        cluster.start_all();
        cluster
    }
}

/// A free TCP port on 127.0.0.1 (free when asked).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `arus ARGS` to completion, asserts it succeeded, returns its trimmed stdout.
pub fn arus(args: &[&str]) -> String {
    let out = Command::new(super::binary()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "arus {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Polls `f` until it returns `Some`, every 50 ms for at most `limit` (the cluster tests
/// wait for elections, fencing and metadata to propagate this way).
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record of `topic`-`partition` from offset 0 up to `end` (exclusive), read from the
/// broker at `addr` (its leader, or a follower a v11+ consumer may read); `None` while it
/// cannot serve all of them yet (for [`eventually`]).
pub async fn read_to(
    addr: &str,
    topic: &str,
    partition: i32,
    end: i64,
) -> Option<Vec<arus_client::FetchedRecord>> {
    let mut c = arus_client::Client::connect(addr).await.ok()?;
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < end {
        let f = c.fetch(topic, partition, offset, 500, 1 << 20).await.ok()?;
        if f.records.is_empty() {
            return None;
        }
        offset = f.next_offset;
        out.extend(f.records);
    }
    Some(out)
}
