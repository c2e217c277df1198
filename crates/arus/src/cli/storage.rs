//! `arus storage`, as `kafka-storage.sh`: `random-uuid`, `format` and `info`. Messages and
//! exit codes follow Kafka's `StorageTool` (a refusal prints its reason and exits with 1).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use arus_broker::features::{
    self, METADATA_VERSION, METADATA_VERSION_4_4_IV2, METADATA_VERSION_MIN,
};
use arus_node::meta_properties::Ensemble;
use arus_node::quorum;
use arus_node::storage::{self, FormatRequest, QuorumSetup};
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum StorageCommand {
    /// Print a random cluster id (22 characters of URL-safe base64).
    RandomUuid,
    /// Write meta.properties (and the bootstrap file) in every directory of a configuration.
    Format(FormatArgs),
    /// Show the meta.properties of every directory of a configuration.
    Info(InfoArgs),
}

#[derive(Args, Debug)]
#[group(id = "quorum", multiple = false)]
pub struct QuorumFlags {
    /// Format the metadata directory of a single-controller dynamic quorum (this node).
    #[arg(long, short = 's', group = "quorum")]
    standalone: bool,
    /// The initial voters of a dynamic quorum: ID@HOST:PORT:DIRECTORY_ID,…
    #[arg(long = "initial-controllers", short = 'I', group = "quorum")]
    initial_controllers: Option<String>,
    /// Format a controller that joins an existing dynamic quorum.
    #[arg(long = "no-initial-controllers", short = 'N', group = "quorum")]
    no_initial_controllers: bool,
}

#[derive(Args, Debug)]
pub struct FormatArgs {
    /// The server.properties of the node.
    #[arg(long, short = 'c')]
    config: PathBuf,
    /// The cluster id (see `arus storage random-uuid`).
    #[arg(long = "cluster-id", short = 't')]
    cluster_id: String,
    /// Skip directories already formatted (with the same cluster and node id).
    #[arg(long = "ignore-formatted", short = 'g')]
    ignore_formatted: bool,
    /// The metadata.version to start with (4.4-IV2, the latest, by default).
    #[arg(long = "release-version", short = 'r')]
    release_version: Option<String>,
    /// A feature level to start with: NAME=LEVEL (repeatable).
    #[arg(long = "feature", short = 'f', value_name = "NAME=LEVEL")]
    features: Vec<String>,
    #[command(flatten)]
    quorum: QuorumFlags,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The server.properties of the node.
    #[arg(long, short = 'c')]
    config: PathBuf,
}

/// `metadata.version` levels Arus knows by release name.
const RELEASES: &[(&str, i16)] = &[
    ("3.3-IV3", METADATA_VERSION_MIN),
    ("4.4-IV2", METADATA_VERSION_4_4_IV2),
    ("4.4", METADATA_VERSION_4_4_IV2),
];

fn release_name(level: i16) -> String {
    RELEASES
        .iter()
        .find(|(_, l)| *l == level)
        .map_or_else(|| level.to_string(), |(n, _)| n.to_string())
}

/// Kafka's `Formatter.calculateEffectiveFeatureLevels`, over the features Arus supports.
fn feature_levels(args: &FormatArgs) -> anyhow::Result<BTreeMap<String, i16>> {
    let mut given = BTreeMap::new();
    for f in &args.features {
        let Some((name, level)) = f.split_once('=') else {
            bail!("Can't parse feature={f}. Expected NAME=LEVEL");
        };
        let level: i16 = level
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("Can't parse feature={f}. Expected NAME=LEVEL"))?;
        given.insert(name.trim().to_string(), level);
    }
    let mut names: Vec<&str> = features::SUPPORTED.iter().map(|f| f.name).collect();
    names.push("kraft.version");
    names.sort();
    let metadata_level = match (given.get(METADATA_VERSION), &args.release_version) {
        (Some(_), Some(_)) => bail!(
            "Use --release-version instead of --feature {METADATA_VERSION}=X to avoid ambiguity."
        ),
        (Some(level), None) => *level,
        (None, Some(v)) => RELEASES
            .iter()
            .find(|(n, _)| n == v)
            .map(|(_, l)| *l)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "Unknown release version '{v}'. Supported versions are: 3.3-IV3 to 4.4-IV2 (give a level between {METADATA_VERSION_MIN} and {METADATA_VERSION_4_4_IV2} with --feature {METADATA_VERSION}=LEVEL for the ones in between)"
                )
            })?,
        (None, None) => METADATA_VERSION_4_4_IV2,
    };
    given.insert(METADATA_VERSION.into(), metadata_level);
    let mut levels = BTreeMap::new();
    for (name, level) in &given {
        if name == "kraft.version" {
            if !(0..=1).contains(level) {
                bail!("No feature:kraft.version with feature level {level}");
            }
        } else {
            let Some(f) = features::supported(name) else {
                bail!(
                    "Unsupported feature: {name}. Supported features are: {}",
                    names.join(", ")
                );
            };
            if !(f.min..=f.max).contains(level) && *level != 0 {
                if name == METADATA_VERSION {
                    bail!(
                        "Unknown metadata.version {level}. Supported metadata.version levels are {} to {}",
                        f.min,
                        f.max
                    );
                }
                bail!("No feature:{name} with feature level {level}");
            }
        }
        levels.insert(name.clone(), *level);
    }
    for f in features::SUPPORTED {
        levels.entry(f.name.to_string()).or_insert(f.fresh_default);
    }
    Ok(levels)
}

fn format(args: FormatArgs) -> anyhow::Result<()> {
    let config = crate::settings::load_config_file(&args.config)?;
    let features = feature_levels(&args)?;
    let quorum = if args.quorum.standalone {
        QuorumSetup::Standalone
    } else if let Some(list) = &args.quorum.initial_controllers {
        QuorumSetup::InitialControllers(quorum::parse_initial_controllers(list)?)
    } else if args.quorum.no_initial_controllers {
        QuorumSetup::NoInitialControllers
    } else {
        QuorumSetup::Unspecified
    };
    let release_version = release_name(features[METADATA_VERSION]);
    let mut out = std::io::stdout();
    storage::format(
        FormatRequest {
            node: &config.node,
            cluster_id: &args.cluster_id,
            ignore_formatted: args.ignore_formatted,
            quorum,
            features,
            release_version,
        },
        &mut out,
    )?;
    Ok(())
}

/// Kafka's `StorageTool.infoCommand`: the directories, their metadata, and any problem
/// (exit code 1 when there is one).
fn info(args: InfoArgs) -> anyhow::Result<()> {
    let config = crate::settings::load_config_file(&args.config)?;
    let node = &config.node;
    let mut dirs: Vec<PathBuf> = node.log_dirs.clone();
    if !dirs.contains(&node.metadata_log.dir) {
        dirs.push(node.metadata_log.dir.clone());
    }
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for d in &dirs {
        if !d.exists() {
            problems.push(format!("{} does not exist", d.display()));
        } else if !d.is_dir() {
            problems.push(format!("{} is not a directory", d.display()));
        } else {
            found.push(d.clone());
        }
    }
    let ensemble = Ensemble::load(&found, None);
    for d in &ensemble.empty {
        problems.push(format!("{} is not formatted.", d.display()));
    }
    for (d, why) in &ensemble.errors {
        problems.push(format!("Error reading {}: {why}", d.display()));
    }
    if let Err(e) = ensemble.verify(None, None, Default::default()) {
        problems.push(format!("meta.properties inconsistency: {e}"));
    }
    let mut lines = Vec::new();
    if !found.is_empty() {
        lines.push(format!(
            "Found log director{}:",
            if found.len() == 1 { "y" } else { "ies" }
        ));
        lines.extend(found.iter().map(|d| format!("  {}", d.display())));
        lines.push(String::new());
    }
    if let Some(meta) = ensemble.props.values().next() {
        lines.push(format!("Found metadata: {}", meta.properties_display()));
        lines.push(String::new());
    }
    if let Ok(Some(bootstrap)) = storage::read_bootstrap(&node.metadata_log.dir) {
        lines.push(format!(
            "Found bootstrap metadata: {}",
            bootstrap
                .features
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        lines.push(String::new());
    }
    if !problems.is_empty() {
        lines.push(format!(
            "Found problem{}:",
            if problems.len() == 1 { "" } else { "s" }
        ));
        lines.extend(problems.iter().map(|p| format!("  {p}")));
        lines.push(String::new());
    }
    println!("{}", lines.join("\n").trim_end());
    if !problems.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

pub fn run(cmd: StorageCommand) -> anyhow::Result<()> {
    match cmd {
        StorageCommand::RandomUuid => {
            println!("{}", arus_node::ids::random_uuid());
            Ok(())
        }
        StorageCommand::Format(args) => format(args),
        StorageCommand::Info(args) => info(args),
    }
}
