//! The controller's replayed state and `arus-metadata`'s image, fed the same records, must
//! describe the same cluster; and a controller rebuilt from an image decides the same.

use arus_metadata::MetadataImage;

use super::*;

pub fn assert_agrees(s: &ClusterState, image: &MetadataImage) {
    assert_eq!(s.features, *image.features(), "features");
    let ids: Vec<(String, Uuid)> = s.topic_ids.iter().map(|(n, id)| (n.clone(), *id)).collect();
    let image_ids: Vec<(String, Uuid)> = image
        .topics()
        .names()
        .map(|(n, id)| (n.to_owned(), id))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    assert_eq!(ids, image_ids, "topics");
    for t in s.topics.values() {
        let it = image.topic_by_id(&t.id).expect("topic in image");
        for (pid, p) in &t.partitions {
            let ip = it.partition(*pid).expect("partition in image");
            let got = (
                &ip.replicas,
                &ip.isr,
                ip.leader,
                ip.leader_epoch,
                ip.partition_epoch,
                &ip.elr,
                &ip.last_known_elr,
                ip.leader_recovery_state.value(),
            );
            let want = (
                &p.replicas,
                &p.isr,
                p.leader,
                p.leader_epoch,
                p.partition_epoch,
                &p.elr,
                &p.last_known_elr,
                p.leader_recovery_state,
            );
            assert_eq!(got, want, "{}-{pid}", t.name);
            assert_eq!(
                ip.directories, p.directories,
                "{}-{pid} directories",
                t.name
            );
        }
        assert_eq!(it.partitions.len(), t.partitions.len());
    }
    for b in s.brokers.values() {
        let ib = image.broker(b.id).expect("broker in image");
        assert_eq!(
            (
                ib.epoch,
                ib.fenced,
                ib.in_controlled_shutdown,
                ib.incarnation_id
            ),
            (
                b.epoch,
                b.fenced,
                b.in_controlled_shutdown,
                b.incarnation_id
            ),
            "broker {}",
            b.id
        );
    }
    assert_eq!(s.brokers.len(), image.cluster().brokers().count());
    for ((rtype, name), configs) in &s.configs {
        let resource = arus_metadata::ConfigResource::new(*rtype, name.clone());
        let ic = image
            .configs()
            .get(&resource)
            .expect("config resource in image");
        for (k, v) in configs {
            assert_eq!(image.configs().value(&resource, k), Some(v.as_str()));
        }
        assert_eq!(ic.len(), configs.len());
    }
    if image.next_producer_id() >= 0 {
        assert_eq!(s.next_producer_id, image.next_producer_id());
    }
}

#[test]
fn a_controller_rebuilt_from_the_image_has_the_same_state_and_decides_alike() {
    let mut h = Harness::new(true);
    h.brokers(&[Some("a"), Some("b"), Some("c")]);
    h.create("t", 6, 3).unwrap();
    h.create("u", 2, 1).unwrap();
    let out = h.c.allocate_producer_ids(0, h.epochs[&0]).unwrap();
    h.apply(&out.records);
    h.advance(10_000, &[0, 1]);
    h.check_invariants();
    let rebuilt = Controller::from_image(h.c.config().clone(), 42, &h.image, h.now).unwrap();
    let mut a = h.c.state().clone();
    let mut b = rebuilt.state().clone();
    // Registration offsets are where the records were in the log; a snapshot places them
    // all at its own offset.
    a.register_offsets.clear();
    b.register_offsets.clear();
    a.last_offset = 0;
    b.last_offset = 0;
    assert_eq!(a, b);
}
