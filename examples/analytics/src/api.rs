//! The HTTP API and the dashboard page.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::join_all;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::aggregates::{AnalyticsAggregate, StatsAggregate};
use crate::lag::LagReporter;
use crate::model::{Batch, BatchItem, MAX_BATCH, PageView, UserEvent};
use crate::publisher::{Ack, Publisher};
use crate::topics::{PAGE_VIEWS, USER_EVENTS};

/// Value of the `source` header on every record the API writes, so consumers (and the stats
/// group's per-source counts) can tell API traffic from other producers.
const SOURCE: &str = "analytics-api";
const CORRELATION_HEADER: &str = "x-correlation-id";

#[derive(Clone)]
pub struct AppState {
    pub publisher: Publisher,
    pub stats: Arc<Mutex<StatsAggregate>>,
    pub analytics: Arc<Mutex<AnalyticsAggregate>>,
    pub lag: Arc<LagReporter>,
    pub active_window_ms: i64,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(|| async { "ok" }))
        .route("/events/user-event", post(user_event))
        .route("/events/page-view", post(page_view))
        .route("/events/batch-events", post(batch_events))
        .route("/events/stats", get(stats))
        .route("/events/analytics", get(analytics))
        .route("/events/analytics/active-users", get(active_users))
        .route("/events/analytics/top-pages", get(top_pages))
        .route("/events/analytics/event-counts", get(event_counts))
        .route("/events/analytics/lag", get(lag))
        .with_state(state)
}

pub enum ApiError {
    BadRequest(String),
    /// The broker did not acknowledge in time: the client must not assume the event is stored.
    Unavailable(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "request body is empty; expected JSON".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Reuses the caller's correlation id so a request can be traced through Kafka into the
/// consumers' logs and dead letters; mints one otherwise.
fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// A validated event, stamped and ready to write.
struct Outgoing {
    topic: &'static str,
    user_id: String,
    event_id: String,
    payload: Vec<u8>,
}

fn prepare(item: BatchItem) -> Result<Outgoing, String> {
    item.validate()?;
    let event_id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let (topic, user_id, payload) = match item {
        BatchItem::UserEvent(mut e) => {
            if e.event_id.is_some() {
                return Err("event_id is assigned by the server".into());
            }
            e.event_id = Some(event_id.clone());
            e.timestamp.get_or_insert(now);
            (USER_EVENTS, e.user_id.clone(), serde_json::to_vec(&e))
        }
        BatchItem::PageView(mut p) => {
            if p.event_id.is_some() {
                return Err("event_id is assigned by the server".into());
            }
            p.event_id = Some(event_id.clone());
            p.timestamp.get_or_insert(now);
            (PAGE_VIEWS, p.user_id.clone(), serde_json::to_vec(&p))
        }
    };
    Ok(Outgoing {
        topic,
        user_id,
        event_id,
        payload: payload.map_err(|e| e.to_string())?,
    })
}

impl AppState {
    /// Keyed by user id: all of one user's events go to one partition, in order.
    async fn publish(&self, out: &Outgoing, correlation_id: &str) -> Result<Ack, ApiError> {
        self.publisher
            .send(
                out.topic,
                &out.user_id,
                &out.payload,
                &[
                    ("correlation-id", correlation_id.as_bytes()),
                    ("source", SOURCE.as_bytes()),
                ],
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, topic = out.topic, "event not acknowledged");
                ApiError::Unavailable(format!("the broker did not acknowledge the event: {e}"))
            })
    }
}

fn accepted(out: &Outgoing, ack: Ack, correlation_id: &str) -> Value {
    json!({
        "status": "accepted",
        "event_id": out.event_id,
        "correlation_id": correlation_id,
        "topic": out.topic,
        "partition": ack.partition,
        "offset": ack.offset,
    })
}

async fn single(
    state: AppState,
    headers: HeaderMap,
    item: BatchItem,
) -> Result<impl IntoResponse, ApiError> {
    let out = prepare(item).map_err(ApiError::BadRequest)?;
    let cid = correlation_id(&headers);
    let ack = state.publish(&out, &cid).await?;
    Ok((StatusCode::CREATED, Json(accepted(&out, ack, &cid))))
}

async fn user_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let event: UserEvent = parse_body(&body)?;
    single(state, headers, BatchItem::UserEvent(event)).await
}

async fn page_view(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let view: PageView = parse_body(&body)?;
    single(state, headers, BatchItem::PageView(view)).await
}

/// All-or-nothing validation, then every event is sent concurrently. If any is not
/// acknowledged the answer is 503 with per-event results, so the client knows exactly which
/// ones were stored and which to retry.
async fn batch_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let batch: Batch = parse_body(&body)?;
    if batch.events.is_empty() {
        return Err(ApiError::BadRequest("events must not be empty".into()));
    }
    if batch.events.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_BATCH} events per batch"
        )));
    }
    let outgoing = batch
        .events
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            prepare(item).map_err(|e| ApiError::BadRequest(format!("events[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cid = correlation_id(&headers);
    let acks = join_all(outgoing.iter().map(|out| state.publish(out, &cid))).await;
    let failed = acks.iter().filter(|a| a.is_err()).count();
    let results: Vec<Value> = outgoing
        .iter()
        .zip(&acks)
        .map(|(out, ack)| match ack {
            Ok(ack) => accepted(out, *ack, &cid),
            Err(_) => json!({ "status": "failed", "event_id": out.event_id, "topic": out.topic }),
        })
        .collect();
    let (status, body) = if failed == 0 {
        (
            StatusCode::CREATED,
            json!({ "accepted": results.len(), "correlation_id": cid, "results": results }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "error": format!("the broker did not acknowledge {failed} of {} events", results.len()),
                "accepted": results.len() - failed,
                "failed": failed,
                "correlation_id": cid,
                "results": results,
            }),
        )
    };
    Ok((status, Json(body)).into_response())
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(state.stats.lock().unwrap_or_else(|p| p.into_inner()).view())
}

fn analytics_view(state: &AppState, top: usize) -> Value {
    let a = state.analytics.lock().unwrap_or_else(|p| p.into_inner());
    let active = a.active_users(now_ms(), state.active_window_ms);
    json!({
        "active_users": active.len(),
        "active_window_secs": state.active_window_ms / 1000,
        "known_users": a.users.len(),
        "event_counts": a.event_types,
        "total_user_events": a.event_types.values().sum::<u64>(),
        "total_page_views": a.pages.values().sum::<u64>(),
        "top_pages": top_pages_json(&a, top),
        "dead_letters": a.dead_letters,
    })
}

fn top_pages_json(a: &AnalyticsAggregate, limit: usize) -> Value {
    a.top_pages(limit)
        .into_iter()
        .map(|(page, views)| json!({ "page": page, "views": views }))
        .collect()
}

/// `?limit=N`, 1..=1000, default 10.
fn limit(query: Option<String>) -> Result<usize, ApiError> {
    let Some(query) = query else { return Ok(10) };
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("limit=") {
            return v
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest("limit must be an integer in 1..=1000".into())
                });
        }
    }
    Ok(10)
}

async fn analytics(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(analytics_view(&state, limit(q)?)))
}

async fn active_users(State(state): State<AppState>) -> Json<Value> {
    let a = state.analytics.lock().unwrap_or_else(|p| p.into_inner());
    let users: Vec<Value> = a
        .active_users(now_ms(), state.active_window_ms)
        .into_iter()
        .map(|(id, u)| json!({ "user_id": id, "last_seen_ms": u.last_seen_ms, "events": u.events }))
        .collect();
    Json(json!({
        "active_users": users.len(),
        "active_window_secs": state.active_window_ms / 1000,
        "users": users,
    }))
}

async fn top_pages(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(q)?;
    let a = state.analytics.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Json(json!({ "top_pages": top_pages_json(&a, limit) })))
}

async fn event_counts(State(state): State<AppState>) -> Json<Value> {
    let a = state.analytics.lock().unwrap_or_else(|p| p.into_inner());
    Json(json!({ "event_counts": a.event_types }))
}

async fn lag(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let reporter = state.lag.clone();
    let groups = tokio::task::spawn_blocking(move || reporter.report())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
    Ok(Json(json!({ "groups": groups })))
}
