//! AddRaftVoter / RemoveRaftVoter on the file-backed single node. Its quorum is itself alone,
//! fixed, as a `controller.quorum.voters` quorum at kraft.version 0, which Kafka's
//! `AddVoterHandler` / `RemoveVoterHandler` refuse with UNSUPPORTED_VERSION. In a cluster
//! both are forwarded to the active controller (`forwarding`).

use arus_protocol::ErrorCode;
use arus_protocol::messages::{AddRaftVoterResponse, RemoveRaftVoterResponse};
use tracing::warn;

pub fn add_on_static_quorum() -> AddRaftVoterResponse {
    warn!("AddRaftVoter refused: this single node's quorum is static (kraft.version 0)");
    AddRaftVoterResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        error_message: Some(
            "Cluster doesn't support adding voter because the kraft.version feature is 0".into(),
        ),
        ..Default::default()
    }
}

pub fn remove_on_static_quorum() -> RemoveRaftVoterResponse {
    warn!("RemoveRaftVoter refused: this single node's quorum is static (kraft.version 0)");
    RemoveRaftVoterResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        error_message: Some(
            "Cluster doesn't support removing voter because the kraft.version feature is 0".into(),
        ),
        ..Default::default()
    }
}
