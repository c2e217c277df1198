//! The `*_authorized_operations` bit sets of Metadata and DescribeCluster.
//!
//! Arus has no authorizer yet, so — as Kafka does without one — every operation that applies
//! to the resource type is allowed (Kafka's `AclEntry.supportedOperations`). The bit positions are Kafka's `AclOperation` codes.
//! When the client did not ask, Kafka sends `i32::MIN` ("not provided").

const READ: u32 = 3;
const WRITE: u32 = 4;
const CREATE: u32 = 5;
const DELETE: u32 = 6;
const ALTER: u32 = 7;
const DESCRIBE: u32 = 8;
const CLUSTER_ACTION: u32 = 9;
const DESCRIBE_CONFIGS: u32 = 10;
const ALTER_CONFIGS: u32 = 11;
const IDEMPOTENT_WRITE: u32 = 12;

pub const NOT_PROVIDED: i32 = i32::MIN;

fn bits(ops: &[u32]) -> i32 {
    ops.iter().fold(0i32, |acc, op| acc | (1 << op))
}

pub fn topic(requested: bool) -> i32 {
    if !requested {
        return NOT_PROVIDED;
    }
    bits(&[
        READ,
        WRITE,
        CREATE,
        DELETE,
        ALTER,
        DESCRIBE,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
    ])
}

pub fn cluster(requested: bool) -> i32 {
    if !requested {
        return NOT_PROVIDED;
    }
    bits(&[
        CREATE,
        ALTER,
        DESCRIBE,
        CLUSTER_ACTION,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
        IDEMPOTENT_WRITE,
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn topic_operations_match_kafka_without_an_authorizer() {
        // READ|WRITE|CREATE|DELETE|ALTER|DESCRIBE|DESCRIBE_CONFIGS|ALTER_CONFIGS
        assert_eq!(super::topic(true), 0b1101_1111_1000);
        assert_eq!(super::topic(false), i32::MIN);
    }
}
