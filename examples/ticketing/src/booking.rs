//! The booking request: its wire format (HTTP body and Kafka record value) and its validation.
//!
//! The same validation runs twice: in the API, so a client gets a clear 400 instead of a queued
//! request that can never succeed, and in the worker, because the topic is an open interface any
//! Kafka client can write to, so a record is untrusted input there too.

use serde::{Deserialize, Serialize};

/// Longest accepted idempotency key, in bytes. Bounded so a client cannot make us store (and
/// index) arbitrarily large keys; 128 fits a UUID or a ULID with a prefix.
pub const MAX_KEY_LEN: usize = 128;
/// Longest accepted user or concert id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Seats are numbered 1..=MAX_SEAT; the largest venues hold under 100,000 people.
pub const MAX_SEAT: i64 = 100_000;

/// A validated booking request, as queued on `ticket-bookings` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub idempotency_key: String,
    pub user_id: String,
    pub concert_id: String,
    pub seat_number: i32,
}

/// Why a request body is not a valid booking. Its text is sent to clients as is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("body must be a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{0}` must be a string")]
    NotAString(&'static str),
    #[error("field `{0}` must not be empty")]
    Empty(&'static str),
    #[error("field `{field}` is longer than {max} bytes")]
    TooLong { field: &'static str, max: usize },
    #[error("field `{0}` may only contain letters, digits, '-', '_', '.' and ':'")]
    BadCharacters(&'static str),
    #[error("field `seat_number` must be an integer from 1 to {MAX_SEAT}")]
    BadSeat,
}

impl Booking {
    /// Parses and validates a request body (or a record value: the format is the same).
    ///
    /// Parsed through `serde_json::Value` rather than derived `Deserialize` so each problem gets
    /// its own message naming the field, which serde's first-error-wins messages do not give.
    pub fn parse(body: &[u8]) -> Result<Self, ValidationError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ValidationError::Json(e.to_string()))?;
        let object = value.as_object().ok_or(ValidationError::NotAnObject)?;
        let text = |field: &'static str, max: usize| -> Result<String, ValidationError> {
            let s = object
                .get(field)
                .ok_or(ValidationError::Missing(field))?
                .as_str()
                .ok_or(ValidationError::NotAString(field))?;
            if s.is_empty() {
                return Err(ValidationError::Empty(field));
            }
            if s.len() > max {
                return Err(ValidationError::TooLong { field, max });
            }
            // A conservative alphabet keeps ids safe to log, to put in URLs and in headers.
            if !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
            {
                return Err(ValidationError::BadCharacters(field));
            }
            Ok(s.to_owned())
        };
        let idempotency_key = text("idempotency_key", MAX_KEY_LEN)?;
        let user_id = text("user_id", MAX_ID_LEN)?;
        let concert_id = text("concert_id", MAX_ID_LEN)?;
        let seat = object
            .get("seat_number")
            .ok_or(ValidationError::Missing("seat_number"))?
            .as_i64()
            .filter(|s| (1..=MAX_SEAT).contains(s))
            .ok_or(ValidationError::BadSeat)?;
        let seat_number = i32::try_from(seat).map_err(|_| ValidationError::BadSeat)?;
        Ok(Self {
            idempotency_key,
            user_id,
            concert_id,
            seat_number,
        })
    }

    /// Whether `key` could be an idempotency key at all (used by `GET /bookings/{key}`).
    pub fn is_valid_key(key: &str) -> bool {
        !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Booking, ValidationError> {
        Booking::parse(s.as_bytes())
    }

    #[test]
    fn accepts_a_valid_booking() {
        let b =
            parse(r#"{"idempotency_key":"k-1","user_id":"u1","concert_id":"c1","seat_number":7}"#)
                .unwrap();
        assert_eq!(b.seat_number, 7);
        assert_eq!(b.concert_id, "c1");
        // Round trip: the record value the API writes is what the worker parses.
        assert_eq!(parse(&serde_json::to_string(&b).unwrap()).unwrap(), b);
    }

    #[test]
    fn names_the_faulty_field() {
        assert_eq!(
            parse(r#"{"user_id":"u","concert_id":"c","seat_number":1}"#),
            Err(ValidationError::Missing("idempotency_key"))
        );
        assert_eq!(
            parse(r#"{"idempotency_key":"k","user_id":"","concert_id":"c","seat_number":1}"#),
            Err(ValidationError::Empty("user_id"))
        );
        assert_eq!(
            parse(r#"{"idempotency_key":"k","user_id":"u","concert_id":5,"seat_number":1}"#),
            Err(ValidationError::NotAString("concert_id"))
        );
        let long = "x".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            parse(&format!(
                r#"{{"idempotency_key":"{long}","user_id":"u","concert_id":"c","seat_number":1}}"#
            )),
            Err(ValidationError::TooLong {
                field: "idempotency_key",
                max: MAX_KEY_LEN
            })
        );
        assert_eq!(
            parse(r#"{"idempotency_key":"k k","user_id":"u","concert_id":"c","seat_number":1}"#),
            Err(ValidationError::BadCharacters("idempotency_key"))
        );
        assert_eq!(parse("[1]"), Err(ValidationError::NotAnObject));
        assert!(matches!(parse("{"), Err(ValidationError::Json(_))));
    }

    #[test]
    fn rejects_bad_seats() {
        for seat in ["0", "-1", "1.5", "\"7\"", "100001", "99999999999", "null"] {
            let body = format!(
                r#"{{"idempotency_key":"k","user_id":"u","concert_id":"c","seat_number":{seat}}}"#
            );
            assert_eq!(parse(&body), Err(ValidationError::BadSeat), "seat {seat}");
        }
        let body = r#"{"idempotency_key":"k","user_id":"u","concert_id":"c","seat_number":100000}"#;
        assert!(parse(body).is_ok());
    }

    #[test]
    fn key_check_matches_body_validation() {
        assert!(Booking::is_valid_key("abc-1_2.3:4"));
        assert!(!Booking::is_valid_key(""));
        assert!(!Booking::is_valid_key("a/b"));
        assert!(!Booking::is_valid_key(&"k".repeat(MAX_KEY_LEN + 1)));
    }
}
