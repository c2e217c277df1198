//! `arus serve`: layers configuration (built-in defaults < properties file < `ARUS_*`
//! environment < `--override` < dedicated flags), starts the broker and serves until
//! SIGINT/SIGTERM, then closes every log cleanly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use arus_broker::{Broker, BrokerConfig, parse_properties};
use clap::Args;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A server.properties-style file (Kafka property names).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Set any property: `--override num.partitions=3` (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Shorthand for `--override listeners=...`, e.g. PLAINTEXT://0.0.0.0:9092.
    #[arg(long)]
    listeners: Option<String>,
    /// Shorthand for `--override log.dirs=...`.
    #[arg(long = "log-dirs")]
    log_dirs: Option<PathBuf>,
    /// Once accepting connections, write `host:port` of the first listener to this file.
    #[arg(long = "ready-file")]
    ready_file: Option<PathBuf>,
}

/// The configuration `arus serve --config PATH` would run with (the file, then `ARUS_*`
/// variables): what `arus storage` formats and inspects.
pub fn load_config_file(path: &std::path::Path) -> anyhow::Result<BrokerConfig> {
    load_config(&ServeArgs {
        config: Some(path.to_path_buf()),
        overrides: Vec::new(),
        listeners: None,
        log_dirs: None,
        ready_file: None,
    })
}

/// `ARUS_NUM_PARTITIONS=3` → `num.partitions=3`.
fn env_overrides() -> BTreeMap<String, String> {
    std::env::vars()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("ARUS_")?;
            // Variables of the CLI itself, not broker properties.
            if key == "LOG" || key == "BOOTSTRAP_SERVER" {
                return None;
            }
            Some((key.to_ascii_lowercase().replace('_', "."), v))
        })
        .collect()
}

pub fn load_config(args: &ServeArgs) -> anyhow::Result<BrokerConfig> {
    let mut props = BTreeMap::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        props.extend(parse_properties(&text).with_context(|| format!("in {}", path.display()))?);
    }
    props.extend(env_overrides());
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--override expects KEY=VALUE, got {o:?}"))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    if let Some(l) = &args.listeners {
        props.insert("listeners".into(), l.clone());
    }
    if let Some(d) = &args.log_dirs {
        props.insert("log.dirs".into(), d.display().to_string());
    }
    let config = BrokerConfig::from_properties(props)?;
    for (key, hint) in config.unknown_keys() {
        match hint {
            Some(hint) => tracing::warn!(key = %key, "ignoring broker property: {hint}"),
            None => tracing::warn!(key = %key, "ignoring unknown broker property"),
        }
    }
    Ok(config)
}

/// Checks (and completes) the `meta.properties` of every directory before the broker opens
/// them: Kafka's `KafkaRaftServer.initializeLogDirs`, plus the upgrade in place of a
/// directory the previous release made (its cluster id is in `arus-metadata.json`).
///
/// The directories are locked meanwhile (and unlocked before the broker locks them for
/// good), so that two processes started at once on a fresh directory cannot write two
/// cluster ids: the second one finds the directory in use, or the first one's file.
pub fn check_directories(config: &BrokerConfig) -> anyhow::Result<arus_node::storage::Identity> {
    let mut locks = Vec::new();
    for dir in config.log_dirs.iter().chain([&config.log_dir]) {
        if !locks.iter().any(|(d, _)| d == dir) {
            locks.push((dir.clone(), arus_broker::dir_lock::DirLock::acquire(dir)?));
        }
    }
    let previous = arus_broker::store::load(&config.log_dir)
        .with_context(|| format!("cannot read {}", config.log_dir.display()))?
        .map(|file| file.cluster_id);
    let identity = arus_node::storage::prepare_for_start(&config.node, previous.as_deref())?;
    Ok(identity)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut config = load_config(&args)?;
    config.identity = Some(check_directories(&config)?);
    let descriptors = arus_server::descriptors::raise_limit();
    if let Err(e) = &descriptors {
        tracing::warn!(error = %e, "cannot raise the file descriptor limit");
    }
    let log_dir = config.log_dir.clone();
    let log_dirs = config.log_dirs.clone();
    let descriptors_before_open = arus_server::descriptors::in_use();
    // A node configured with `process.roles` is a member of a KRaft cluster: its metadata
    // comes from the quorum (docs/cluster.md). Without it, `arus serve` runs the implicit
    // one-node cluster — broker and controller, itself the only voter, with no CONTROLLER
    // listener (its controller is reached in process) — unless
    // `arus.single.node.quorum=false` keeps the single-node release's file-backed store.
    let clustered =
        !config.node.is_implicit() || config.effective_bool("arus.single.node.quorum", true);
    // A controller-only node has no broker listener: its ready file names the CONTROLLER one.
    let mut controller_addr = None;
    let (broker, listeners, node) = if clustered {
        let (broker, bound) = match arus_cluster::node::Node::open(config).await {
            Ok(opened) => opened,
            // A port in use says so itself; anything else is about the directory.
            Err(e @ arus_cluster::node::NodeError::Listen(_)) => return Err(e.into()),
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context(format!("cannot open log directory {}", log_dir.display())));
            }
        };
        controller_addr = bound.controller.first().map(|(_, a)| *a);
        let node = arus_cluster::node::Node::start(broker.clone(), bound.controller)
            .await
            .context("cannot join the cluster")?;
        if broker.config.node.is_broker() {
            // As Kafka's BrokerServer: clients are served once the controller has unfenced
            // this broker, i.e. its metadata has caught up (connections wait in the backlog).
            let mut standing = node.standing();
            loop {
                if !standing.borrow_and_update().fenced {
                    break;
                }
                tokio::select! {
                    changed = standing.changed() => changed.context("the broker lifecycle stopped")?,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
                        eprintln!("arus: waiting for the controller quorum to admit this broker");
                    }
                }
            }
            node.broker_caught_up().await;
        }
        (broker, bound.broker, Some(node))
    } else {
        let broker = tokio::task::spawn_blocking(move || Broker::open(config))
            .await?
            .with_context(|| format!("cannot open log directory {}", log_dir.display()))?;
        let listeners = arus_server::bind(&broker).await?;
        (broker, listeners, None)
    };
    let first = match broker.advertised_listeners().first() {
        Some(l) => format!("{}:{}", l.host, l.port),
        None => controller_addr.map(|a| a.to_string()).unwrap_or_default(),
    };
    if let Some(path) = &args.ready_file {
        std::fs::write(path, format!("{first}\n"))
            .with_context(|| format!("cannot write ready file {}", path.display()))?;
    }
    let identity = broker.config.identity.clone();
    if let Some(identity) = &identity {
        eprintln!(
            "arus: node {} ({}) of cluster {}",
            identity.node_id,
            broker.config.node.roles_string(),
            identity.cluster_id
        );
    }
    eprintln!(
        "arus: serving on {} (data in {}, ready in {} ms)",
        listeners
            .iter()
            .map(|(_, a)| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        log_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_millis()
    );
    if let Ok(limit) = descriptors {
        let partitions = broker
            .topics
            .all()
            .iter()
            .map(|t| t.partitions().len())
            .sum();
        eprintln!(
            "arus: {}",
            arus_server::descriptors::summary(limit, descriptors_before_open, partitions)
        );
    }
    // Kafka halts when every log directory (or the metadata one) has failed: at once, with
    // no clean shutdown (which would write clean-shutdown markers on failed disks) and no
    // wait for busy connections — their requests can no longer be answered truthfully.
    let dirs = broker.log_dirs.clone();
    tokio::select! {
        _ = arus_server::serve(broker.clone(), listeners, shutdown_signal()) => {}
        reason = dirs.fatal() => {
            eprintln!("arus: halting: {reason}");
            // The request that found the failure is answered first (KAFKA_STORAGE_ERROR):
            // its response is being written as the signal arrives. Kafka's halt, too, comes
            // from its own thread after the handler answered.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            std::process::exit(1);
        }
    }
    eprintln!("arus: shutting down");
    match node {
        Some(node) => {
            drop(broker);
            node.stop().await.context("stopping the node")?;
        }
        None => tokio::task::spawn_blocking(move || broker.shutdown()).await?,
    }
    Ok(())
}
