//! The HTTP API: accept a booking (queue it on Kafka) and report its outcome (from PostgreSQL).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::json;

use crate::booking::Booking;
use crate::db::{self, SharedClient};
use crate::kafka::{BOOKINGS_TOPIC, DELIVERY_TIMEOUT, Quiet};

pub struct AppState {
    pub producer: FutureProducer<Quiet>,
    pub db: SharedClient,
}

/// A valid booking is well under 1 KiB; refusing large bodies early bounds the memory a
/// client can make us hold.
const MAX_BODY: usize = 4 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/book-ticket", post(book_ticket))
        .route("/bookings/{idempotency_key}", get(booking_status))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Answers 202 only once the broker has acknowledged the record (acks=all): from then on the
/// booking survives a crash of this process or of the broker, and the worker will decide it.
async fn book_ticket(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let booking = match Booking::parse(&body) {
        Ok(booking) => booking,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let payload = match serde_json::to_vec(&booking) {
        Ok(payload) => payload,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    // Keyed by concert: every booking of one concert lands on one partition, in order, so one
    // worker decides them one after another and "first come, first served" holds.
    let record = FutureRecord::to(BOOKINGS_TOPIC)
        .key(booking.concert_id.as_str())
        .payload(&payload);
    // A zero queue timeout: when librdkafka's local queue is full we shed load at once (503)
    // rather than pile up waiting requests.
    let delivery = state.producer.send(record, Timeout::After(Duration::ZERO));
    // message.timeout.ms already bounds delivery; the outer timeout only guards against a
    // delivery report that never comes (e.g. the producer being torn down).
    match tokio::time::timeout(DELIVERY_TIMEOUT + Duration::from_secs(2), delivery).await {
        Ok(Ok(_)) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "status": "queued" })),
        )
            .into_response(),
        Ok(Err((e, _))) => {
            tracing::debug!(error = %e, key = booking.idempotency_key, "booking not queued");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("booking not queued, retry with the same idempotency_key: {e}"),
            )
        }
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "booking not queued in time, retry with the same idempotency_key",
        ),
    }
}

async fn booking_status(State(state): State<Arc<AppState>>, Path(key): Path<String>) -> Response {
    if !Booking::is_valid_key(&key) {
        return error(StatusCode::BAD_REQUEST, "invalid idempotency_key");
    }
    let client = match state.db.get().await {
        Ok(client) => client,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
    };
    match db::find_decision(&client, &key).await {
        Ok(Some(decision)) => (StatusCode::OK, axum::Json(decision)).into_response(),
        // Unknown and not-yet-decided look the same: the record may still be in the topic.
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "status": "pending" })),
        )
            .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
    }
}

/// Liveness plus database reachability; Kafka reachability shows in `POST /book-ticket`
/// answering 503, which is what a load balancer should act on anyway.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    let database = match state.db.get().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if database { "ok" } else { "degraded" }, "database": database });
    (status, axum::Json(body)).into_response()
}
