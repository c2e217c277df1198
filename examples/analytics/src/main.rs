//! Real-time user analytics on Kafka (Arus): an HTTP API writes user events and page views,
//! two independent consumer groups aggregate them, and a dashboard shows the result live.
//! See README.md for the data flow.

mod aggregates;
mod api;
mod lag;
mod model;
mod pipeline;
mod publisher;
mod topics;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::aggregates::{AnalyticsAggregate, StatsAggregate};
use crate::pipeline::Pipeline;

#[derive(Parser, Debug)]
#[command(about = "Real-time user analytics on a Kafka-protocol broker")]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Address of the HTTP API and dashboard.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Replication factor for the topics the app creates.
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// A user counts as active if seen within this many seconds.
    #[arg(long, default_value_t = 300)]
    active_window_secs: u64,
    /// How long a request waits for the broker's acknowledgement before answering 503.
    #[arg(long, default_value_t = 10_000)]
    delivery_timeout_ms: u64,
    #[arg(long, default_value = "stats")]
    stats_group: String,
    #[arg(long, default_value = "analytics")]
    analytics_group: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,analytics=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();

    topics::ensure_topics(&args.bootstrap, args.replication_factor).await?;
    let publisher = publisher::Publisher::new(
        &args.bootstrap,
        Duration::from_millis(args.delivery_timeout_ms),
    )?;

    // One transactional producer per group, ids derived from the group so a restarted app
    // (or a stray second copy) takes over the same id and fences the old one. Initialised
    // before the rebuild, which must not stop short of a crashed run's open transaction.
    let (stats_txn, analytics_txn) = {
        let (bootstrap, sg, ag) = (
            args.bootstrap.clone(),
            args.stats_group.clone(),
            args.analytics_group.clone(),
        );
        tokio::task::spawn_blocking(move || {
            anyhow::Ok((
                publisher::Publisher::transactional(&bootstrap, &format!("{sg}-pipeline"))?,
                publisher::Publisher::transactional(&bootstrap, &format!("{ag}-pipeline"))?,
            ))
        })
        .await??
    };

    // The state comes back before any group resumes: the groups' committed offsets are only
    // meaningful together with the aggregates committed in the same transactions.
    let (stats, analytics, restored) = {
        let (bootstrap, sg, ag) = (
            args.bootstrap.clone(),
            args.stats_group.clone(),
            args.analytics_group.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let mut stats = StatsAggregate::default();
            let mut analytics = AnalyticsAggregate::default();
            let n = pipeline::rebuild(&bootstrap, (&sg, &mut stats), (&ag, &mut analytics))?;
            anyhow::Ok((stats, analytics, n))
        })
        .await??
    };
    tracing::info!(
        records = restored,
        "state rebuilt from {}",
        topics::ANALYTICS_EVENTS
    );
    let stats = Arc::new(Mutex::new(stats));
    let analytics = Arc::new(Mutex::new(analytics));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut groups = tokio::task::JoinSet::new();
    groups.spawn(
        Pipeline {
            group: args.stats_group.clone(),
            consumer: pipeline::group_consumer(&args.bootstrap, &args.stats_group)?,
            aggregate: stats.clone(),
            publisher: stats_txn,
        }
        .run(shutdown_rx.clone()),
    );
    groups.spawn(
        Pipeline {
            group: args.analytics_group.clone(),
            consumer: pipeline::group_consumer(&args.bootstrap, &args.analytics_group)?,
            aggregate: analytics.clone(),
            publisher: analytics_txn,
        }
        .run(shutdown_rx.clone()),
    );

    let state = api::AppState {
        publisher: publisher.clone(),
        stats,
        analytics,
        lag: Arc::new(lag::LagReporter::new(
            &args.bootstrap,
            &[&args.stats_group, &args.analytics_group],
        )?),
        active_window_ms: i64::try_from(args.active_window_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "HTTP API and dashboard listening");
    let mut server_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.changed().await;
            })
            .into_future(),
    );

    // Run until a signal, or until a group fails (then stop everything: a supervisor restart
    // resumes from the last consistent state).
    let mut failure = None;
    tokio::select! {
        signal = shutdown_signal() => signal?,
        Some(res) = groups.join_next() => {
            failure = Some(match res {
                Ok(Ok(())) => anyhow::anyhow!("a consumer group stopped unexpectedly"),
                Ok(Err(e)) => e,
                Err(e) => e.into(),
            });
        }
    }
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    while let Some(res) = groups.join_next().await {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "consumer group failed"),
            Err(e) => tracing::error!(error = %e, "consumer group task failed"),
        }
    }
    server.await??;
    let publisher_flush = publisher.clone();
    tokio::task::spawn_blocking(move || publisher_flush.flush(Duration::from_secs(10))).await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
