//! Broker, controller, feature and quota records (Kafka's `ClusterDelta`, `FeaturesDelta`,
//! `ClientQuotasDelta`).

use std::sync::Arc;

use arus_protocol::metadata::{
    BrokerRegistrationChangeRecord, ClientQuotaRecord, FeatureLevelRecord, RegisterBrokerRecord,
    RegisterControllerRecord,
};

use super::{DeltaError, MIN_METADATA_VERSION, MetadataDelta};
use crate::image::{
    BrokerRegistration, ControllerRegistration, KRAFT_VERSION, METADATA_VERSION, QuotaEntity,
};

impl MetadataDelta {
    /// A registration replaces any previous registration of that id.
    pub(super) fn replay_register_broker(&mut self, r: &RegisterBrokerRecord) {
        let broker = BrokerRegistration::from_record(r);
        Arc::make_mut(&mut self.state.cluster.brokers).insert(broker.id, Arc::new(broker));
    }

    /// Kafka does not check the epoch of an unregistration, nor that the broker exists.
    pub(super) fn replay_unregister_broker(&mut self, id: i32) {
        if self.state.cluster.brokers.contains_key(&id) {
            Arc::make_mut(&mut self.state.cluster.brokers).remove(&id);
        }
    }

    pub(super) fn replay_register_controller(&mut self, r: &RegisterControllerRecord) {
        let controller = ControllerRegistration::from_record(r);
        Arc::make_mut(&mut self.state.cluster.controllers)
            .insert(controller.id, Arc::new(controller));
    }

    pub(super) fn replay_unregister_controller(&mut self, id: i32) {
        if self.state.cluster.controllers.contains_key(&id) {
            Arc::make_mut(&mut self.state.cluster.controllers).remove(&id);
        }
    }

    /// The registration a Fence/Unfence/Change record refers to: it must exist with the
    /// same epoch (Kafka's `getBrokerOrThrow`).
    fn registered_broker(
        &self,
        broker: i32,
        epoch: i64,
        action: &'static str,
    ) -> Result<&Arc<BrokerRegistration>, DeltaError> {
        let current = self
            .state
            .cluster
            .broker(broker)
            .ok_or(DeltaError::UnknownBroker { broker, action })?;
        if current.epoch != epoch {
            return Err(DeltaError::BrokerEpochMismatch {
                broker,
                action,
                given: epoch,
                current: current.epoch,
            });
        }
        Ok(current)
    }

    /// FenceBrokerRecord / UnfenceBrokerRecord.
    pub(super) fn replay_fencing(
        &mut self,
        broker: i32,
        epoch: i64,
        fenced: bool,
    ) -> Result<(), DeltaError> {
        let action = if fenced { "fence" } else { "unfence" };
        let current = self.registered_broker(broker, epoch, action)?;
        if current.fenced != fenced {
            let mut next = BrokerRegistration::clone(current);
            next.fenced = fenced;
            self.put_broker(next);
        }
        Ok(())
    }

    /// BrokerRegistrationChangeRecord: fenced 1 = fence, -1 = unfence, 0 = no change;
    /// inControlledShutdown 1 = enters controlled shutdown, 0 = no change; log dirs replace
    /// the broker's when not empty; cordoned log dirs replace them when not null.
    pub(super) fn replay_registration_change(
        &mut self,
        r: &BrokerRegistrationChangeRecord,
    ) -> Result<(), DeltaError> {
        let current = self.registered_broker(r.broker_id, r.broker_epoch, "change")?;
        let fenced = match r.fenced {
            1 => true,
            0 => current.fenced,
            -1 => false,
            other => return Err(DeltaError::InvalidFencingChange(other)),
        };
        let in_controlled_shutdown = match r.in_controlled_shutdown {
            1 => true,
            0 => current.in_controlled_shutdown,
            other => return Err(DeltaError::InvalidControlledShutdownChange(other)),
        };
        let mut next = BrokerRegistration::clone(current);
        next.fenced = fenced;
        next.in_controlled_shutdown = in_controlled_shutdown;
        if !r.log_dirs.is_empty() {
            next.directories = r.log_dirs.clone();
        }
        if let Some(cordoned) = &r.cordoned_log_dirs {
            next.cordoned_directories = Some(cordoned.clone());
        }
        if next != **current {
            self.put_broker(next);
        }
        Ok(())
    }

    fn put_broker(&mut self, broker: BrokerRegistration) {
        Arc::make_mut(&mut self.state.cluster.brokers).insert(broker.id, Arc::new(broker));
    }

    /// Kafka's `FeaturesDelta.replay`: `metadata.version` must be a level Kafka 4.x
    /// supports; `kraft.version` belongs to the Raft layer and is ignored; any other
    /// feature at level 0 is removed.
    pub(super) fn replay_feature_level(
        &mut self,
        r: &FeatureLevelRecord,
    ) -> Result<(), DeltaError> {
        if r.name == METADATA_VERSION && r.feature_level < MIN_METADATA_VERSION {
            return Err(DeltaError::UnsupportedMetadataVersion(r.feature_level));
        }
        if r.name == KRAFT_VERSION {
            return Ok(());
        }
        if r.feature_level == 0 && r.name != METADATA_VERSION {
            if self.state.features.contains_key(&r.name) {
                Arc::make_mut(&mut self.state.features).remove(&r.name);
            }
        } else {
            Arc::make_mut(&mut self.state.features).insert(r.name.clone(), r.feature_level);
        }
        Ok(())
    }

    /// Sets (or with `remove`, deletes) one quota of an entity; an entity with no quota
    /// left is dropped.
    pub(super) fn replay_client_quota(&mut self, r: &ClientQuotaRecord) {
        let entity: QuotaEntity = r
            .entity
            .iter()
            .map(|e| (e.entity_type.clone(), e.entity_name.clone()))
            .collect();
        let quotas = &mut self.state.security.client_quotas;
        if r.remove {
            let present = quotas.get(&entity).is_some_and(|q| q.contains_key(&r.key));
            if present {
                let all = Arc::make_mut(quotas);
                if let Some(q) = all.get_mut(&entity) {
                    Arc::make_mut(q).remove(&r.key);
                    if q.is_empty() {
                        all.remove(&entity);
                    }
                }
            }
        } else {
            let q = Arc::make_mut(quotas).entry(entity).or_default();
            Arc::make_mut(q).insert(r.key.clone(), r.value);
        }
    }
}
