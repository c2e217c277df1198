//! Client quotas, ACLs, SCRAM credentials and delegation tokens, kept as Kafka keys them
//! (the records themselves are the values) until the security issue gives them behaviour.

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_protocol::Uuid;
use arus_protocol::metadata::{
    AccessControlEntryRecord, DelegationTokenRecord, UserScramCredentialRecord,
};

/// A quota entity: entity type (`user`, `client-id`, `ip`) -> name (`None` = the default
/// entity of that type). Kafka's `ClientQuotaEntity`.
pub type QuotaEntity = BTreeMap<String, Option<String>>;

/// Everything that is not topics, brokers, configs or features.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityImage {
    /// entity -> quota key -> value; entities with no quota left are dropped.
    pub(crate) client_quotas: Arc<BTreeMap<QuotaEntity, Arc<BTreeMap<String, f64>>>>,
    /// ACL id -> the entry.
    pub(crate) acls: Arc<BTreeMap<Uuid, AccessControlEntryRecord>>,
    /// (mechanism, user name) -> credential.
    pub(crate) scram: Arc<BTreeMap<(i8, String), UserScramCredentialRecord>>,
    /// token id -> token.
    pub(crate) delegation_tokens: Arc<BTreeMap<String, DelegationTokenRecord>>,
}

impl SecurityImage {
    pub fn client_quotas(&self) -> &BTreeMap<QuotaEntity, Arc<BTreeMap<String, f64>>> {
        &self.client_quotas
    }

    pub fn acls(&self) -> &BTreeMap<Uuid, AccessControlEntryRecord> {
        &self.acls
    }

    pub fn scram_credential(
        &self,
        mechanism: i8,
        user: &str,
    ) -> Option<&UserScramCredentialRecord> {
        self.scram.get(&(mechanism, user.to_string()))
    }

    pub fn scram_credentials(&self) -> &BTreeMap<(i8, String), UserScramCredentialRecord> {
        &self.scram
    }

    pub fn delegation_tokens(&self) -> &BTreeMap<String, DelegationTokenRecord> {
        &self.delegation_tokens
    }
}
