//! The controller's error: a Kafka error code and the message Kafka sends with it.

use arus_protocol::ErrorCode;

/// A refused command: the exact Kafka error code and, where Kafka sends one, its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", code.name(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
pub struct ControllerError {
    /// Kafka's error code for the response.
    pub code: ErrorCode,
    /// Kafka's error message (`None` where Kafka sends the code alone).
    pub message: Option<String>,
}

impl ControllerError {
    /// An error with Kafka's message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ControllerError {
            code,
            message: Some(message.into()),
        }
    }

    /// An error Kafka sends without a message of its own.
    pub fn code_only(code: ErrorCode) -> Self {
        ControllerError {
            code,
            message: None,
        }
    }
}

/// Shorthand for the controller's results.
pub type ControllerResult<T> = Result<T, ControllerError>;
