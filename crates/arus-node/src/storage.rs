//! Formatting directories (`arus storage format`, Kafka's `Formatter`), the bootstrap file,
//! and the check of the directories a node makes at start-up (Kafka's
//! `KafkaRaftServer.initializeLogDirs`).
//!
//! **The bootstrap file** `<metadata dir>/arus-bootstrap.properties` is Arus's counterpart
//! of Kafka's bootstrap snapshot (`__cluster_metadata-0/00000000000000000000-0000000000.checkpoint`):
//! what the first controller writes into a new cluster's metadata. A properties file:
//! ```text
//! # Arus bootstrap metadata (arus storage format)
//! version=1
//! feature.group.version=1
//! feature.kraft.version=0
//! feature.metadata.version=33
//! feature.transaction.version=2
//! initial.controllers=1@localhost:9093:<directory id>,…
//! ```
//! `feature.<name>` lines are the initial finalized feature levels (Kafka's
//! FeatureLevelRecords); `initial.controllers` is the voter set of a dynamic quorum
//! (`--standalone` or `--initial-controllers`; absent for a static quorum and with
//! `--no-initial-controllers`). It is written atomically before the `meta.properties`
//! files, so a directory with `meta.properties` always has it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arus_protocol::Uuid;

use crate::config::{NodeConfig, Quorum};
use crate::ids;
use crate::meta_properties::{self, Ensemble, MetaProperties, Verify};
use crate::quorum::{HostPort, InitialController};

pub const BOOTSTRAP_FILE: &str = "arus-bootstrap.properties";

/// The initial metadata of a new cluster.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bootstrap {
    pub features: BTreeMap<String, i16>,
    pub initial_controllers: Vec<InitialController>,
}

impl Bootstrap {
    fn to_text(&self) -> String {
        let mut text = String::from("# Arus bootstrap metadata (arus storage format)\nversion=1\n");
        for (name, level) in &self.features {
            text.push_str(&format!("feature.{name}={level}\n"));
        }
        if !self.initial_controllers.is_empty() {
            let list: Vec<String> = self
                .initial_controllers
                .iter()
                .map(|c| format!("{}@{}:{}", c.id, c.address, c.directory_id))
                .collect();
            text.push_str(&format!("initial.controllers={}\n", list.join(",")));
        }
        text
    }
}

/// Reads the bootstrap file of `metadata_dir`, if there is one.
pub fn read_bootstrap(metadata_dir: &Path) -> Result<Option<Bootstrap>, String> {
    let path = metadata_dir.join(BOOTSTRAP_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let props = meta_properties::parse_properties_text(&text);
    if props.get("version").map(String::as_str) != Some("1") {
        return Err(format!("{}: unknown version", path.display()));
    }
    let mut bootstrap = Bootstrap::default();
    for (k, v) in &props {
        if let Some(name) = k.strip_prefix("feature.") {
            let level = v
                .parse()
                .map_err(|_| format!("{}: bad level {v:?} for {name}", path.display()))?;
            bootstrap.features.insert(name.to_string(), level);
        }
    }
    if let Some(list) = props.get("initial.controllers") {
        bootstrap.initial_controllers = crate::quorum::parse_initial_controllers(list)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(Some(bootstrap))
}

fn write_bootstrap(metadata_dir: &Path, bootstrap: &Bootstrap) -> std::io::Result<()> {
    meta_properties::create_dir_durable(metadata_dir)?;
    let tmp = metadata_dir.join(format!("{BOOTSTRAP_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bootstrap.to_text().as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, metadata_dir.join(BOOTSTRAP_FILE))?;
    File::open(metadata_dir)?.sync_all()
}

/// Kafka's `FormatterException`: `kafka-storage` prints the message and exits with 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// How the controller quorum of a new cluster is set up (`storage format` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuorumSetup {
    /// None of `--standalone`, `--initial-controllers`, `--no-initial-controllers`.
    Unspecified,
    /// `--standalone`: this node alone, at its first controller listener.
    Standalone,
    /// `--initial-controllers`.
    InitialControllers(Vec<InitialController>),
    /// `--no-initial-controllers`: the voters come from elsewhere (a node joining).
    NoInitialControllers,
}

/// What `storage format` was asked to do.
pub struct FormatRequest<'a> {
    pub node: &'a NodeConfig,
    pub cluster_id: &'a str,
    pub ignore_formatted: bool,
    pub quorum: QuorumSetup,
    /// The feature levels, already resolved and checked by the caller (which knows what
    /// this release supports); `kraft.version` is decided here.
    pub features: BTreeMap<String, i16>,
    /// How `metadata.version` is printed (`4.4-IV2`).
    pub release_version: String,
}

/// Formats every empty directory of the node (Kafka's `Formatter.run`), printing progress
/// as `kafka-storage format` does.
pub fn format(req: FormatRequest<'_>, out: &mut dyn Write) -> Result<(), FormatError> {
    let fail = |m: String| FormatError(m);
    let node = req.node;
    // Kafka 4.4 takes any non-empty string as the cluster id (`random-uuid` is only the
    // usual source): checked here by hand against its StorageTool.
    if req.cluster_id.trim().is_empty() {
        return Err(fail("You must specify the cluster id.".into()));
    }
    let dynamic = !matches!(req.quorum, QuorumSetup::Unspecified);
    if matches!(node.quorum, Quorum::Static(_))
        && matches!(
            req.quorum,
            QuorumSetup::Standalone | QuorumSetup::InitialControllers(_)
        )
    {
        return Err(fail("You cannot specify controller.quorum.voters and format the node with --initial-controllers or --standalone. If you want to use dynamic quorum, please remove controller.quorum.voters and specify controller.quorum.bootstrap.servers instead.".into()));
    }
    if node.is_controller() && matches!(node.quorum, Quorum::Bootstrap(_)) && !dynamic {
        return Err(fail("Because controller.quorum.voters is not set on this controller, you must specify one of the following: --standalone, --initial-controllers, or --no-initial-controllers.".into()));
    }
    let initial_controllers = match &req.quorum {
        QuorumSetup::Standalone => {
            let listener = node.controller_listeners().first().copied().ok_or_else(|| {
                fail("--standalone needs a controller listener: set controller.listener.names and a listener of that name".into())
            })?;
            let host = if listener.host == "0.0.0.0" || listener.host == "::" {
                "localhost".to_string()
            } else {
                listener.host.clone()
            };
            vec![InitialController {
                id: node.node_id,
                address: HostPort {
                    host,
                    port: listener.port,
                },
                directory_id: ids::random_directory_id(&[]),
            }]
        }
        QuorumSetup::InitialControllers(list) => list.clone(),
        QuorumSetup::Unspecified | QuorumSetup::NoInitialControllers => Vec::new(),
    };
    let mut features = req.features.clone();
    let kraft_version = match features.get("kraft.version").copied() {
        Some(0) if dynamic => return Err(fail("Cannot set kraft.version to 0 if controller.quorum.voters is empty and one of the flags --standalone, --initial-controllers, or --no-initial-controllers is used. For dynamic controllers support, try removing the --feature flag for kraft.version.".into())),
        Some(level) if level != 0 && !dynamic => return Err(fail(format!("Cannot set kraft.version to {level} unless controller.quorum.voters is empty and one of the flags --standalone, --initial-controllers, or --no-initial-controllers is used. For dynamic controllers support, try using one of --standalone, --initial-controllers, or --no-initial-controllers and removing controller.quorum.voters."))),
        Some(level) => level,
        None => i16::from(dynamic),
    };
    features.insert("kraft.version".into(), kraft_version);

    let ensemble = Ensemble::load(&node.log_dirs, Some(&node.metadata_log.dir));
    ensemble
        .verify(
            Some(req.cluster_id.to_string()),
            Some(node.node_id),
            Verify::default(),
        )
        .map_err(fail)?;
    if !req.ignore_formatted
        && let Some(first) = ensemble.props.keys().next()
    {
        return Err(fail(format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this directory and format the others.",
            first.display()
        )));
    }
    for (dir, _) in &ensemble.errors {
        let _ = writeln!(
            out,
            "I/O error trying to read log directory {}. Ignoring...",
            dir.display()
        );
    }
    if !ensemble.errors.is_empty() && ensemble.empty.is_empty() && ensemble.props.is_empty() {
        return Err(fail("No available log directories to format.".into()));
    }
    if ensemble.empty.is_empty() {
        let _ = writeln!(out, "All of the log directories are already formatted.");
        return Ok(());
    }
    let bootstrap = Bootstrap {
        features,
        initial_controllers,
    };
    let _ = writeln!(
        out,
        "Bootstrap metadata: {}",
        bootstrap
            .features
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut taken = ensemble.directory_ids();
    taken.extend(bootstrap.initial_controllers.iter().map(|c| c.directory_id));
    let metadata_dir = &node.metadata_log.dir;
    for dir in &ensemble.empty {
        let is_metadata = dir == metadata_dir;
        let own_voter = bootstrap
            .initial_controllers
            .iter()
            .find(|c| c.id == node.node_id)
            .filter(|_| is_metadata);
        let (kind, directory_id) = match (is_metadata, own_voter, dynamic) {
            (false, _, _) => ("data directory", ids::random_directory_id(&taken)),
            (true, Some(v), _) => ("dynamic metadata voter directory", v.directory_id),
            (true, None, true) => (
                "dynamic metadata directory",
                ids::random_directory_id(&taken),
            ),
            (true, None, false) => ("metadata directory", ids::random_directory_id(&taken)),
        };
        taken.push(directory_id);
        let _ = writeln!(
            out,
            "Formatting {kind} {} with metadata.version {}.",
            dir.display(),
            req.release_version
        );
        let write = || -> std::io::Result<()> {
            if is_metadata {
                write_bootstrap(dir, &bootstrap)?;
            }
            meta_properties::write(
                dir,
                &MetaProperties::v1(req.cluster_id, node.node_id, directory_id),
            )
        };
        write().map_err(|e| {
            fail(format!(
                "Error while writing meta.properties file {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(())
}

/// What a node knows about itself once its directories are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cluster_id: String,
    pub node_id: i32,
    /// Every directory's id (log directories and the metadata directory).
    pub directory_ids: BTreeMap<PathBuf, Uuid>,
}

impl Identity {
    /// The id of `dir`, or zero (Kafka's "unassigned") if it is not one of the node's.
    pub fn directory_id(&self, dir: &Path) -> Uuid {
        self.directory_ids.get(dir).copied().unwrap_or(Uuid::ZERO)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Checks and completes the node's `meta.properties` at start-up:
///
/// - every formatted directory must agree on the cluster id and on the configured node id
///   (Kafka's messages), and with `previous_cluster_id`, the cluster id the previous Arus
///   release kept in `arus-metadata.json`;
/// - a directory with no `meta.properties`:
///   - made by the previous release (`previous_cluster_id` is known): written now with
///     that cluster id — the upgrade in place;
///   - of the implicit one-node cluster (no `process.roles`): formatted now, with the
///     cluster id of the other directories or a random one, as `arus serve` always did;
///   - of an explicitly configured node: refused, as Kafka 4 refuses to start unformatted
///     (`arus storage format` first);
/// - a directory without a `directory.id` (a version 0 file, or one written by Kafka 3.6
///   or older) is given one and rewritten.
pub fn prepare_for_start(
    node: &NodeConfig,
    previous_cluster_id: Option<&str>,
) -> Result<Identity, StartError> {
    let fail = |m: String| StartError(m);
    let ensemble = Ensemble::load(&node.log_dirs, Some(&node.metadata_log.dir));
    if let Some((dir, why)) = ensemble.errors.first() {
        return Err(fail(format!(
            "Cannot read meta.properties in {}: {why}",
            dir.display()
        )));
    }
    let auto_format = node.is_implicit() || previous_cluster_id.is_some();
    let flags = Verify {
        require_at_least_one_valid: !auto_format,
        require_metadata_log_dir: true,
    };
    ensemble
        .verify(
            previous_cluster_id.map(str::to_string),
            Some(node.node_id),
            flags,
        )
        .map_err(fail)?;
    let cluster_id = match (ensemble.cluster_id(), previous_cluster_id) {
        (Some(c), _) | (None, Some(c)) => c.to_string(),
        (None, None) => ids::random_uuid().to_string(),
    };
    let mut taken = ensemble.directory_ids();
    let mut directory_ids = BTreeMap::new();
    let mut dirs: Vec<(PathBuf, Option<MetaProperties>)> =
        ensemble.empty.iter().map(|d| (d.clone(), None)).collect();
    dirs.extend(
        ensemble
            .props
            .iter()
            .map(|(d, m)| (d.clone(), Some(m.clone()))),
    );
    for (dir, meta) in dirs {
        let rewritten = match meta {
            None if !auto_format => {
                return Err(fail(format!(
                    "No `meta.properties` found in {} (have you run `arus storage format` to format the directory?)",
                    dir.display()
                )));
            }
            None => {
                let id = ids::random_directory_id(&taken);
                tracing::info!(dir = %dir.display(), %cluster_id, node_id = node.node_id, "formatting the directory (meta.properties)");
                Some(MetaProperties::v1(&cluster_id, node.node_id, id))
            }
            Some(m) if m.directory_id.is_none() || m.version == 0 || m.cluster_id.is_none() => {
                let id = m
                    .directory_id
                    .unwrap_or_else(|| ids::random_directory_id(&taken));
                tracing::info!(dir = %dir.display(), "Rewriting meta.properties");
                Some(MetaProperties::v1(&cluster_id, node.node_id, id))
            }
            Some(m) => {
                directory_ids.insert(dir.clone(), m.directory_id.unwrap_or(Uuid::ZERO));
                None
            }
        };
        if let Some(meta) = rewritten {
            let id = meta.directory_id.unwrap_or(Uuid::ZERO);
            meta_properties::write(&dir, &meta).map_err(|e| {
                fail(format!(
                    "Error while writing meta.properties file {}: {e}",
                    dir.display()
                ))
            })?;
            taken.push(id);
            directory_ids.insert(dir, id);
        }
    }
    Ok(Identity {
        cluster_id,
        node_id: node.node_id,
        directory_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str, dirs: &[&Path]) -> NodeConfig {
        let mut map: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        map.insert(
            "log.dirs".into(),
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        NodeConfig::from_properties(&map).unwrap()
    }

    const STATIC: &str = "process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
controller.listener.names=CONTROLLER";

    fn features() -> BTreeMap<String, i16> {
        BTreeMap::from([("metadata.version".to_string(), 33)])
    }

    fn request<'a>(
        node: &'a NodeConfig,
        cluster: &'a str,
        quorum: QuorumSetup,
    ) -> FormatRequest<'a> {
        FormatRequest {
            node,
            cluster_id: cluster,
            ignore_formatted: false,
            quorum,
            features: features(),
            release_version: "4.4-IV2".into(),
        }
    }

    #[test]
    fn format_writes_every_directory_then_refuses_a_second_time() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let n = node(STATIC, &[a.path(), b.path()]);
        let cluster = ids::random_uuid().to_string();
        let mut out = Vec::new();
        format(request(&n, &cluster, QuorumSetup::Unspecified), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(&format!(
                "Formatting metadata directory {}",
                a.path().display()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("Formatting data directory {}", b.path().display())),
            "{text}"
        );
        let ma = meta_properties::read(a.path()).unwrap().unwrap();
        let mb = meta_properties::read(b.path()).unwrap().unwrap();
        assert_eq!(ma.cluster_id.as_deref(), Some(cluster.as_str()));
        assert_ne!(ma.directory_id, mb.directory_id);
        let boot = read_bootstrap(a.path()).unwrap().unwrap();
        assert_eq!(boot.features["kraft.version"], 0);
        assert_eq!(boot.features["metadata.version"], 33);
        assert!(read_bootstrap(b.path()).unwrap().is_none());

        let e = format(
            request(&n, &cluster, QuorumSetup::Unspecified),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            e.0.starts_with("Log directory ")
                && e.0.ends_with(
                    "Use --ignore-formatted to ignore this directory and format the others."
                ),
            "{e}"
        );
        let mut again = request(&n, &cluster, QuorumSetup::Unspecified);
        again.ignore_formatted = true;
        let mut out = Vec::new();
        format(again, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "All of the log directories are already formatted.\n"
        );
        // Another cluster id is refused even with --ignore-formatted.
        let other = ids::random_uuid().to_string();
        let mut again = request(&n, &other, QuorumSetup::Unspecified);
        again.ignore_formatted = true;
        assert!(
            format(again, &mut Vec::new())
                .unwrap_err()
                .0
                .starts_with("Invalid cluster.id in: ")
        );
    }

    #[test]
    fn format_checks_the_cluster_id_and_the_quorum_flags() {
        let a = tempfile::tempdir().unwrap();
        let n = node(STATIC, &[a.path()]);
        assert_eq!(
            format(request(&n, " ", QuorumSetup::Unspecified), &mut Vec::new())
                .unwrap_err()
                .0,
            "You must specify the cluster id."
        );
        let cluster = ids::random_uuid().to_string();
        assert!(
            format(
                request(&n, &cluster, QuorumSetup::Standalone),
                &mut Vec::new()
            )
            .unwrap_err()
            .0
            .starts_with("You cannot specify controller.quorum.voters")
        );
        let dynamic = node(
            &STATIC.replace(
                "controller.quorum.voters=1@localhost:9093",
                "controller.quorum.bootstrap.servers=localhost:9093",
            ),
            &[a.path()],
        );
        assert!(
            format(
                request(&dynamic, &cluster, QuorumSetup::Unspecified),
                &mut Vec::new()
            )
            .unwrap_err()
            .0
            .starts_with("Because controller.quorum.voters is not set on this controller")
        );
        let mut out = Vec::new();
        format(
            request(&dynamic, &cluster, QuorumSetup::Standalone),
            &mut out,
        )
        .unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Formatting dynamic metadata voter directory")
        );
        let boot = read_bootstrap(a.path()).unwrap().unwrap();
        assert_eq!(boot.features["kraft.version"], 1);
        assert_eq!(boot.initial_controllers.len(), 1);
        assert_eq!(
            boot.initial_controllers[0].address.to_string(),
            "localhost:9093"
        );
        let meta = meta_properties::read(a.path()).unwrap().unwrap();
        assert_eq!(
            meta.directory_id,
            Some(boot.initial_controllers[0].directory_id)
        );
    }

    #[test]
    fn start_formats_the_implicit_node_and_refuses_an_unformatted_explicit_one() {
        let a = tempfile::tempdir().unwrap();
        let implicit = node("", &[a.path()]);
        let id = prepare_for_start(&implicit, None).unwrap();
        assert_eq!(id.node_id, 1);
        assert_eq!(
            Uuid::parse(&id.cluster_id).map(|u| u.to_string()),
            Some(id.cluster_id.clone())
        );
        // A second start keeps the identity.
        assert_eq!(prepare_for_start(&implicit, None).unwrap(), id);
        // The same directory under another node id is refused.
        let e = prepare_for_start(&node("node.id=2", &[a.path()]), None).unwrap_err();
        assert!(
            e.0.starts_with("Stored node id 1 doesn't match previous node id 2"),
            "{e}"
        );

        let b = tempfile::tempdir().unwrap();
        let explicit = node(STATIC, &[b.path()]);
        assert_eq!(
            prepare_for_start(&explicit, None).unwrap_err().0,
            "No readable meta.properties files found."
        );
        // A second, unformatted log directory of a formatted explicit node is refused.
        let c = tempfile::tempdir().unwrap();
        let cluster = ids::random_uuid().to_string();
        format(
            request(&explicit, &cluster, QuorumSetup::Unspecified),
            &mut Vec::new(),
        )
        .unwrap();
        let two = node(STATIC, &[b.path(), c.path()]);
        assert!(
            prepare_for_start(&two, None)
                .unwrap_err()
                .0
                .starts_with("No `meta.properties` found in ")
        );
        assert_eq!(
            prepare_for_start(&explicit, None).unwrap().cluster_id,
            cluster
        );
    }

    #[test]
    fn start_upgrades_a_previous_release_directory_in_place() {
        let a = tempfile::tempdir().unwrap();
        let explicit = node(STATIC, &[a.path()]);
        let id = prepare_for_start(&explicit, Some("OLD-cluster-id")).unwrap();
        assert_eq!(id.cluster_id, "OLD-cluster-id");
        assert_eq!(
            meta_properties::read(a.path())
                .unwrap()
                .unwrap()
                .cluster_id
                .as_deref(),
            Some("OLD-cluster-id")
        );
        // meta.properties and the previous metadata file disagreeing is refused.
        let e = prepare_for_start(&explicit, Some("another")).unwrap_err();
        assert!(e.0.starts_with("Invalid cluster.id in: "), "{e}");
        // A file without a directory id (Kafka 3.6 and older) is given one.
        fs::write(
            a.path().join("meta.properties"),
            "version=1\nnode.id=1\ncluster.id=OLD-cluster-id\n",
        )
        .unwrap();
        let id = prepare_for_start(&explicit, None).unwrap();
        assert_ne!(id.directory_id(a.path()), Uuid::ZERO);
        assert!(
            meta_properties::read(a.path())
                .unwrap()
                .unwrap()
                .directory_id
                .is_some()
        );
    }
}
