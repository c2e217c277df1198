//! What the quorum's membership records about each member.
//!
//! openraft keeps one `BasicNode { addr: String }` per member, in every membership log entry
//! and snapshot (bincode, see `log_store::segment`). KIP-853 needs a voter's directory id
//! beside its address, so the string holds both:
//!
//! ```text
//! host:port                  the address where the member accepts the quorum's frames
//! host:port#<directory id>   the same, with Kafka's directory id (base64, 22 characters)
//! ```
//!
//! A `#` never occurs in a host name or port, and entries written before directory ids were
//! recorded (plain `host:port`) read as members without one; nothing else changes on disk.

use crate::types::Node;

const SEPARATOR: char = '#';

/// One member as the membership describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `host:port` where it accepts the quorum's frames (a voter's CONTROLLER listener).
    pub address: String,
    /// Kafka's directory id of its metadata log directory, opaque here; `None` when not
    /// known (a static quorum's voters, observers).
    pub directory_id: Option<String>,
}

impl Member {
    pub fn new(address: impl Into<String>, directory_id: Option<String>) -> Member {
        Member {
            address: address.into(),
            directory_id: directory_id.filter(|d| !d.is_empty()),
        }
    }

    /// Reads what [`Member::to_node`] wrote (or a plain `host:port`).
    pub fn from_node(node: &Node) -> Member {
        match node.addr.split_once(SEPARATOR) {
            Some((address, directory)) => Member::new(address, Some(directory.to_string())),
            None => Member::new(node.addr.clone(), None),
        }
    }

    pub fn to_node(&self) -> Node {
        match &self.directory_id {
            Some(d) => Node::new(format!("{}{SEPARATOR}{d}", self.address)),
            None => Node::new(self.address.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_id_travels_with_the_address() {
        let m = Member::new("10.0.0.1:9093", Some("J8aAPcfLQt2bqs1JT_rMgQ".into()));
        assert_eq!(m.to_node().addr, "10.0.0.1:9093#J8aAPcfLQt2bqs1JT_rMgQ");
        assert_eq!(Member::from_node(&m.to_node()), m);
    }

    #[test]
    fn a_plain_address_has_no_directory_id() {
        let m = Member::from_node(&Node::new("[::1]:9093".to_string()));
        assert_eq!(m, Member::new("[::1]:9093", None));
        assert_eq!(m.to_node().addr, "[::1]:9093");
    }
}
