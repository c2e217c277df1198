//! The BROKER_LOGGER config resource (resource type 8): log levels changed at run time with
//! IncrementalAlterConfigs and listed by DescribeConfigs, as Kafka's `RuntimeLoggerManager`
//! and `LoggingController` do for log4j. Changes are not persisted: a restart starts again
//! from `ARUS_LOG`, as Kafka starts again from its log4j configuration.
//!
//! Loggers are `tracing` targets, which are module paths (`arus_broker`,
//! `arus_broker::handlers::produce`, ...); a level set on a target applies to the modules
//! below it unless they have their own, like log4j's logger hierarchy. The root logger is
//! named `root`, as in Kafka. Kafka's levels map onto `tracing`'s one to one, except FATAL:
//! `tracing` has no level above ERROR and Arus emits no fatal events, so FATAL shows nothing
//! (`off`), as log4j at FATAL hides ERROR events.
//!
//! The levels are a pure state machine ([`LoggerLevels`]) that renders an `EnvFilter`
//! directive string; the binary installs the function that applies it to its subscriber
//! ([`install`]). Without one (tests that build a `Broker` in-process) the levels are kept
//! and described but change no output.

mod levels;

pub use levels::{KafkaLevel, LoggerError, LoggerLevels, ROOT_LOGGER};

use std::sync::{Mutex, OnceLock};

use arus_protocol::ErrorCode;
use arus_protocol::messages::incremental_alter_configs_request::AlterableConfig;

/// Applies a rendered filter directive string to the process's subscriber.
pub type ApplyFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

struct Runtime {
    levels: Mutex<LoggerLevels>,
    apply: Option<ApplyFilter>,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Installs the process's logger levels, parsed from the `ARUS_LOG` filter the subscriber
/// started with, and the function that reloads the subscriber's filter. Only the first call
/// takes effect (there is one subscriber per process).
pub fn install(initial_filter: &str, apply: ApplyFilter) {
    let _ = RUNTIME.set(Runtime {
        levels: Mutex::new(LoggerLevels::parse(initial_filter)),
        apply: Some(apply),
    });
}

fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| Runtime {
        levels: Mutex::new(LoggerLevels::parse("warn")),
        apply: None,
    })
}

/// Kafka's checks of a BROKER_LOGGER resource name (`ConfigHelper` for describe,
/// `RuntimeLoggerManager.validateResourceNameIsNodeId` for alter).
fn check_node(node_id: i32, name: &str, describe: bool) -> Result<(), (ErrorCode, String)> {
    let invalid = |m: String| Err((ErrorCode::InvalidRequest, m));
    if describe && name.is_empty() {
        return invalid("Broker id must not be empty".into());
    }
    match name.parse::<i32>() {
        Ok(id) if id == node_id => Ok(()),
        Ok(id) if describe => invalid(format!(
            "Unexpected broker id, expected {node_id} but received {id}"
        )),
        Ok(id) => invalid(format!(
            "Unexpected node id. Expected {node_id}, but received {id}"
        )),
        Err(_) if describe => invalid(format!("Broker id must be an integer, but it is: {name}")),
        Err(_) => invalid(format!("Node id must be an integer, but it is: {name}")),
    }
}

/// The loggers with their effective levels (Kafka's `ConfigHelper` for BROKER_LOGGER).
pub fn describe(node_id: i32, name: &str) -> Result<Vec<LoggerEntry>, (ErrorCode, String)> {
    check_node(node_id, name, true)?;
    let levels = runtime().levels.lock().unwrap_or_else(|e| e.into_inner());
    Ok(levels
        .effective_levels()
        .into_iter()
        .map(|(name, level)| LoggerEntry { name, level })
        .collect())
}

/// One logger as DescribeConfigs lists it.
pub struct LoggerEntry {
    pub name: String,
    pub level: String,
}

/// IncrementalAlterConfigs on a BROKER_LOGGER resource: every operation is validated first
/// (Kafka's `validateLogLevelConfigs`), then, unless `validate_only`, applied and the filter
/// reloaded.
pub fn alter(
    node_id: i32,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), (ErrorCode, String)> {
    check_node(node_id, name, false)?;
    let runtime = runtime();
    let mut levels = runtime.levels.lock().unwrap_or_else(|e| e.into_inner());
    let mut next = levels.clone();
    for op in ops {
        next.apply(&op.name, op.config_operation, op.value.as_deref())
            .map_err(|e| (e.code(), e.to_string()))?;
    }
    if validate_only || next == *levels {
        return Ok(());
    }
    if let Some(apply) = &runtime.apply {
        apply(&next.filter_directives()).map_err(|e| {
            tracing::error!(error = %e, "cannot reload the log filter");
            (ErrorCode::UnknownServerError, e)
        })?;
    }
    for op in ops {
        match op.value.as_deref() {
            Some(level) if op.config_operation == levels::OP_SET => {
                tracing::warn!("Updated the log level of {} to {level}", op.name)
            }
            _ => tracing::warn!("Unset the log level of {}", op.name),
        }
    }
    *levels = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_are_checked_as_kafka_checks_them() {
        let e = |r: Result<(), (ErrorCode, String)>| r.unwrap_err().1;
        assert_eq!(e(check_node(1, "", true)), "Broker id must not be empty");
        assert_eq!(
            e(check_node(1, "2", true)),
            "Unexpected broker id, expected 1 but received 2"
        );
        assert_eq!(
            e(check_node(1, "x", true)),
            "Broker id must be an integer, but it is: x"
        );
        assert_eq!(
            e(check_node(1, "2", false)),
            "Unexpected node id. Expected 1, but received 2"
        );
        assert_eq!(
            e(check_node(1, "x", false)),
            "Node id must be an integer, but it is: x"
        );
        assert!(check_node(1, "1", true).is_ok() && check_node(1, "1", false).is_ok());
    }
}
