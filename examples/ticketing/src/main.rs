//! Concert ticket sale on Kafka ("war tiket"): an HTTP API queues bookings on a topic and
//! workers decide them in PostgreSQL, one seat to one buyer, however many press Buy at once.
//!
//! Usage: `ticketing serve | worker | migrate`, configured by environment variables (see
//! README.md).

mod api;
mod booking;
mod db;
mod kafka;
mod worker;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

struct Env {
    bootstrap: String,
    database_url: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn env() -> Env {
    Env {
        bootstrap: var("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        database_url: var(
            "DATABASE_URL",
            "host=127.0.0.1 port=5432 user=postgres dbname=ticketing",
        ),
    }
}

/// Migrates the schema and creates the topics; both are idempotent, so every process runs
/// this at start and the order in which they start does not matter.
async fn prepare(env: &Env) -> anyhow::Result<tokio_postgres::Client> {
    let mut client = db::connect_with_patience(&env.database_url, Duration::from_secs(30)).await?;
    db::migrate(&mut client).await.context("migrating")?;
    let partitions: i32 = var("BOOKINGS_PARTITIONS", "6")
        .parse()
        .context("BOOKINGS_PARTITIONS")?;
    kafka::ensure_topics(&env.bootstrap, partitions)
        .await
        .context("creating topics")?;
    Ok(client)
}

/// Turns true on SIGINT or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
        let _ = tx.send(true);
    });
    rx
}

async fn serve(env: Env) -> anyhow::Result<()> {
    let client = prepare(&env).await?;
    let addr = var("HTTP_ADDR", "127.0.0.1:8080");
    let state = Arc::new(api::AppState {
        producer: kafka::producer(&env.bootstrap)?,
        db: db::SharedClient::new(env.database_url.clone(), client),
    });
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    let mut shutdown = shutdown_signal();
    axum::serve(listener, api::router(Arc::clone(&state)))
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await?;
    Ok(())
}

async fn work(env: Env) -> anyhow::Result<()> {
    drop(prepare(&env).await?);
    let config = worker::WorkerConfig {
        bootstrap: env.bootstrap,
        database_url: env.database_url,
        instance_id: std::env::var("WORKER_INSTANCE_ID")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    if worker::run(config, shutdown_signal()).await? == worker::Closed::TimedOut {
        // The tokio runtime would otherwise wait for librdkafka's blocked close forever.
        std::process::exit(0);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Quiet by default: start-up, faults and dead letters only; RUST_LOG=ticketing=debug shows
    // every decision.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,ticketing=info".into()),
        )
        .init();
    let env = env();
    match std::env::args().nth(1).as_deref() {
        Some("serve") => serve(env).await,
        Some("worker") => work(env).await,
        Some("migrate") => prepare(&env).await.map(drop),
        _ => {
            eprintln!("usage: ticketing serve | worker | migrate");
            std::process::exit(2);
        }
    }
}
