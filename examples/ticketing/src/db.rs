//! PostgreSQL: connections, schema migrations, and the one transaction that decides a booking.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use crate::booking::Booking;

/// The schema, as numbered files in `migrations/`, embedded at build time so a deployed binary
/// carries its own schema. Applied in order; each version is recorded in `schema_migrations`.
/// A unit test checks this list against the directory so a new file cannot be forgotten here.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_bookings.sql",
        include_str!("../migrations/0001_bookings.sql"),
    ),
    (
        2,
        "0002_processed_at_index.sql",
        include_str!("../migrations/0002_processed_at_index.sql"),
    ),
];

/// Key of the session advisory lock held while migrating, so an API server and workers started
/// together do not apply the same migration twice. Any constant unique to this app will do.
const MIGRATION_LOCK: i64 = 0x7469_636b_6574; // "ticket"

/// Opens a connection, driving it on a background task that ends when the client is dropped or
/// the server goes away (the client then reports `is_closed`, which callers use to reconnect).
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

/// One connection shared by the API's handlers (tokio-postgres pipelines concurrent queries on
/// it), replaced transparently after the database restarts.
pub struct SharedClient {
    url: String,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl SharedClient {
    pub fn new(url: String, client: Client) -> Self {
        Self {
            url,
            client: tokio::sync::Mutex::new(Some(Arc::new(client))),
        }
    }

    pub async fn get(&self) -> Result<Arc<Client>, tokio_postgres::Error> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(connect(&self.url).await?);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }
}

/// Connects, retrying for up to `patience`: at start-up the database may still be booting.
pub async fn connect_with_patience(url: &str, patience: Duration) -> anyhow::Result<Client> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match connect(url).await {
            Ok(client) => return Ok(client),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "postgres not reachable yet, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("connecting to postgres")),
        }
    }
}

/// Applies the migrations not yet recorded in `schema_migrations`, each in its own transaction.
pub async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply_pending(client).await;
    // Unlock even after a failure; if the connection itself failed the lock went with it.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result?;
    unlock.map(|_| ())
}

async fn apply_pending(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER     PRIMARY KEY,
                 name       TEXT        NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    for &(version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        let applied = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&version],
            )
            .await?
            .is_some();
        if applied {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

/// What the worker decided for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Confirmed,
    Rejected(RejectReason),
    /// The key was decided before (a redelivery or a client retry): nothing was changed.
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    SeatTaken,
    UserAlreadyBooked,
}

/// Where a record was read from; stored with the decision.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub partition: i32,
    pub offset: i64,
}

/// The worker's connection with its statements prepared once, since every record runs them.
pub struct BookingStore {
    client: Client,
    insert_booking: Statement,
    record_decision: Statement,
}

impl BookingStore {
    pub async fn new(client: Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            // ON CONFLICT DO NOTHING turns "seat already sold" (or "user already has a ticket",
            // or "this key already booked") into an empty result instead of an error that
            // would abort the transaction, whose decision we still must record.
            insert_booking: client
                .prepare(
                    "INSERT INTO bookings (idempotency_key, user_id, concert_id, seat_number)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
                )
                .await?,
            // The reason of a rejection is worked out in the same statement to save a round
            // trip per record: under a ticket war nearly every record is a rejection.
            record_decision: client
                .prepare(
                    "INSERT INTO processed_requests (idempotency_key, outcome, reason, user_id,
                         concert_id, seat_number, kafka_partition, kafka_offset)
                     SELECT $1, $2::TEXT,
                         CASE WHEN $2 = 'confirmed' THEN NULL
                              WHEN EXISTS (SELECT 1 FROM bookings
                                           WHERE concert_id = $4 AND seat_number = $5)
                              THEN 'seat_taken'
                              ELSE 'user_already_booked' END,
                         $3, $4, $5, $6, $7
                     ON CONFLICT (idempotency_key) DO NOTHING
                     RETURNING reason",
                )
                .await?,
            client,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Decides one booking in a single transaction: try to take the seat, then record the key
    /// with its outcome; if the key was already recorded, roll everything back. Either all of
    /// it commits or nothing does, so redelivering the record after any failure is safe.
    ///
    /// Two workers deciding the same key at once (possible for a moment during a rebalance)
    /// need no extra lock: the second blocks on the first's uncommitted unique-index entries
    /// and, once the first commits, finds the key taken and rolls back.
    pub async fn decide(
        &mut self,
        booking: &Booking,
        source: Source,
    ) -> Result<Decision, tokio_postgres::Error> {
        let tx = self.client.transaction().await?;
        let booked = tx
            .query_opt(
                &self.insert_booking,
                &[
                    &booking.idempotency_key,
                    &booking.user_id,
                    &booking.concert_id,
                    &booking.seat_number,
                ],
            )
            .await?
            .is_some();
        let outcome = if booked { "confirmed" } else { "rejected" };
        let recorded = tx
            .query_opt(
                &self.record_decision,
                &[
                    &booking.idempotency_key,
                    &outcome,
                    &booking.user_id,
                    &booking.concert_id,
                    &booking.seat_number,
                    &source.partition,
                    &source.offset,
                ],
            )
            .await?;
        let Some(row) = recorded else {
            // Decided before (a redelivery or a client retry): dropping the transaction rolls
            // back whatever this attempt wrote, so the first decision stands alone.
            return Ok(Decision::Duplicate);
        };
        let reason: Option<&str> = row.get(0);
        let decision = match reason {
            None => Decision::Confirmed,
            Some("seat_taken") => Decision::Rejected(RejectReason::SeatTaken),
            Some(_) => Decision::Rejected(RejectReason::UserAlreadyBooked),
        };
        tx.commit().await?;
        Ok(decision)
    }
}

/// Whether retrying cannot help: the data itself is refused (SQLSTATE class 22, data
/// exception, or 23, integrity violation other than the conflicts `decide` handles). Anything
/// else (connection lost, server restarting, deadlock, serialisation failure) is transient.
pub fn is_permanent(error: &tokio_postgres::Error) -> bool {
    match error.code() {
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => false,
        Some(code) => code.code().starts_with("22") || code.code().starts_with("23"),
        None => false,
    }
}

/// A decided request, as answered by `GET /bookings/{key}`.
#[derive(Debug, serde::Serialize)]
pub struct DecisionView {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub user_id: String,
    pub concert_id: String,
    pub seat_number: i32,
}

pub async fn find_decision(
    client: &Client,
    key: &str,
) -> Result<Option<DecisionView>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT outcome, reason, user_id, concert_id, seat_number
             FROM processed_requests WHERE idempotency_key = $1",
            &[&key],
        )
        .await?;
    Ok(row.map(|r| DecisionView {
        status: r.get(0),
        reason: r.get(1),
        user_id: r.get(2),
        concert_id: r.get(3),
        seat_number: r.get(4),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<&str> = MIGRATIONS.iter().map(|m| m.1).collect();
        assert_eq!(files, embedded);
        for (i, (version, name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1, "versions are 1, 2, 3, ...");
            assert!(name.starts_with(&format!("{version:04}_")), "{name}");
        }
    }
}
