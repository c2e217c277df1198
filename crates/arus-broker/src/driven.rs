//! The broker's stores driven by the cluster metadata (docs/cluster.md, step 5): in a
//! cluster the dynamic broker configs, the GROUP and CLIENT_METRICS configs and the
//! finalized features are not files but what the committed metadata holds. The cluster glue
//! calls these methods with the full map the current metadata image holds, each time it
//! changes; each performs exactly the side effects a local change performs (the same
//! functions run on both paths): topics re-resolve after a `log.*` default changes,
//! client-metrics subscriptions are re-armed, group overrides reach the consumer-group
//! coordinator, `transaction.version` reaches the transaction coordinator.

use std::collections::BTreeMap;

use tracing::error;

use crate::broker::Broker;
use crate::features::{Finalized, TRANSACTION_VERSION};
use crate::handlers::resource_configs::{group_configs_changed, refresh_subscriptions};
use crate::resource_configs::{ConfigMap, ResourceKind};

/// What a change of the finalized levels sets off, locally decided or from the metadata.
pub(crate) fn features_changed(broker: &Broker, finalized: &Finalized) {
    broker
        .txns
        .set_transaction_version(finalized.level(TRANSACTION_VERSION));
}

impl Broker {
    /// The BROKER configs of the cluster-default resource (`""`) and of this node's id, as
    /// the metadata holds them.
    pub fn apply_dynamic_configs_from_metadata(
        &self,
        cluster_default: BTreeMap<String, String>,
        this_broker: BTreeMap<String, String>,
    ) {
        let layers = self
            .config
            .dynamic()
            .apply_from_metadata(cluster_default, this_broker);
        for (before, after) in &layers {
            if let Err(e) = crate::dynamic_config::after_layer_change(self, before, after) {
                error!(error = %e, "cannot apply the dynamic broker configs from the metadata to the topics");
            }
        }
    }

    /// Every GROUP or CLIENT_METRICS resource with its keys, as the metadata holds them.
    pub fn apply_resource_configs_from_metadata(
        &self,
        kind: ResourceKind,
        all: BTreeMap<String, ConfigMap>,
    ) {
        let changed = self.resource_configs.apply_from_metadata(kind, all);
        if changed.is_empty() {
            return;
        }
        match kind {
            ResourceKind::ClientMetrics => refresh_subscriptions(self),
            ResourceKind::Group => {
                for name in &changed {
                    group_configs_changed(self, name);
                }
            }
        }
    }

    /// The finalized feature levels of the metadata (a feature absent is at level 0), read
    /// at metadata offset `epoch`.
    pub fn apply_features_from_metadata(&self, levels: BTreeMap<String, i16>, epoch: i64) {
        let finalized = self.features.apply_from_metadata(levels, epoch);
        features_changed(self, &finalized);
    }
}
