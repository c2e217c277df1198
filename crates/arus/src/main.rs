//! The `arus` binary: `serve` runs the broker; `topic`, `produce`, `consume` and `group` talk to a
//! running broker through `arus-client`. Configuration loading lives here (DESIGN §6).

mod cli;
mod settings;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "arus",
    version,
    about = "A Kafka-protocol event streaming broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (defaults: 127.0.0.1:9092, data in ./arus-data).
    Serve(settings::ServeArgs),
    /// Create, list, describe, alter or delete topics.
    #[command(subcommand)]
    Topic(cli::topic::TopicCommand),
    /// Produce lines from stdin as records.
    Produce(cli::produce::ProduceArgs),
    /// Print records from a topic.
    Consume(cli::consume::ConsumeArgs),
    /// List, describe, reset the offsets of, or delete consumer groups.
    #[command(subcommand)]
    Group(cli::group::GroupCommand),
    /// Describe the cluster: nodes, roles, controller, metadata quorum, features.
    #[command(subcommand)]
    Cluster(cli::cluster::ClusterCommand),
    /// Format or inspect data directories, as kafka-storage.sh (random-uuid, format, info).
    #[command(subcommand)]
    Storage(cli::storage::StorageCommand),
    /// Local development helpers: `arus dev cluster --nodes 3` runs a three-node cluster.
    #[command(subcommand)]
    Dev(cli::dev::DevCommand),
}

/// glibc's malloc raises its mmap threshold to the size of the largest block freed (up to
/// 32 MiB), after which large request buffers come from the heap: they are copied when they
/// grow and stay resident after they are freed, so one large request would keep its size in
/// RSS for good. A fixed threshold keeps every block of 256 KiB or more in its own mapping:
/// returned to the system when freed, and grown by `mremap` without a copy.
fn fix_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Logs to stderr through a filter from `ARUS_LOG` (default `warn`) that the BROKER_LOGGER
/// config resource can replace at run time (`arus_broker::broker_logger`).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    let initial = std::env::var("ARUS_LOG")
        .ok()
        .filter(|f| EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| "warn".to_string());
    let (filter, handle) = tracing_subscriber::reload::Layer::new(EnvFilter::new(&initial));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
    arus_broker::broker_logger::install(
        &initial,
        Box::new(move |directives| {
            let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
            handle.reload(filter).map_err(|e| e.to_string())
        }),
    );
}

fn main() -> anyhow::Result<()> {
    fix_malloc_thresholds();
    let cli = Cli::parse();
    init_logging();
    // Storage commands touch only files: no runtime, and Kafka's exit code 1 on refusal.
    let command = match cli.command {
        Command::Storage(cmd) => {
            if let Err(e) = cli::storage::run(cmd) {
                eprintln!("{e:#}");
                std::process::exit(1);
            }
            return Ok(());
        }
        other => other,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Serve(args) => settings::serve(args).await,
            Command::Topic(cmd) => cli::topic::run(cmd).await,
            Command::Produce(args) => cli::produce::run(args).await,
            Command::Consume(args) => cli::consume::run(args).await,
            Command::Group(cmd) => cli::group::run(cmd).await,
            Command::Cluster(cmd) => cli::cluster::run(cmd).await,
            Command::Storage(cmd) => cli::storage::run(cmd),
            Command::Dev(cmd) => cli::dev::run(cmd).await,
        }
    })
}
