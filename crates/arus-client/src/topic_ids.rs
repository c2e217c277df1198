//! Topic ids in place of names: Produce v13, OffsetCommit v10, OffsetFetch v10 and
//! TxnOffsetCommit v6 name topics only by id. Like Kafka's Java client (its
//! `ProduceRequest`/`OffsetCommitRequest`/`OffsetFetchRequest` builders), [`crate::Client::send`]
//! uses those versions only when it knows the id of every topic a request names, and
//! otherwise stays at the last version that names topics; it puts the names back into
//! the answer, so callers read responses the same way at every version.

use std::collections::HashMap;

use arus_protocol::{ApiKey, ErrorCode, Request, Response, Uuid};

/// The last version of `api` that names topics; the next one names them by id only.
pub(crate) fn last_by_name_version(api: ApiKey) -> Option<i16> {
    match api {
        ApiKey::Produce => Some(12),
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => Some(9),
        ApiKey::TxnOffsetCommit => Some(5),
        _ => None,
    }
}

/// The names whose ids the request needs at an id version, or `None` if it cannot be put
/// in ids: an OffsetFetch of all of a group's topics answers with ids only, which this
/// client could only name with a Metadata request for every topic.
pub(crate) fn names(request: &Request) -> Option<Vec<String>> {
    let named = |name: &String, id: &Uuid| (*id == Uuid::ZERO).then(|| name.clone());
    Some(match request {
        Request::Produce(r) => r
            .topic_data
            .iter()
            .filter_map(|t| named(&t.name, &t.topic_id))
            .collect(),
        Request::OffsetCommit(r) => r
            .topics
            .iter()
            .filter_map(|t| named(&t.name, &t.topic_id))
            .collect(),
        Request::TxnOffsetCommit(r) => r
            .topics
            .iter()
            .filter_map(|t| named(&t.name, &t.topic_id))
            .collect(),
        Request::OffsetFetch(r) => {
            let mut out = Vec::new();
            for g in &r.groups {
                out.extend(
                    g.topics
                        .as_ref()?
                        .iter()
                        .filter_map(|t| named(&t.name, &t.topic_id)),
                );
            }
            out
        }
        _ => Vec::new(),
    })
}

/// Fills in the id of every topic named in `request` (from `ids`, which holds them all).
pub(crate) fn set_ids(request: &mut Request, ids: &HashMap<String, Uuid>) {
    let fill = |name: &str, id: &mut Uuid| {
        if *id == Uuid::ZERO
            && let Some(known) = ids.get(name)
        {
            *id = *known;
        }
    };
    match request {
        Request::Produce(r) => r
            .topic_data
            .iter_mut()
            .for_each(|t| fill(&t.name, &mut t.topic_id)),
        Request::OffsetCommit(r) => r
            .topics
            .iter_mut()
            .for_each(|t| fill(&t.name, &mut t.topic_id)),
        Request::TxnOffsetCommit(r) => r
            .topics
            .iter_mut()
            .for_each(|t| fill(&t.name, &mut t.topic_id)),
        Request::OffsetFetch(r) => r
            .groups
            .iter_mut()
            .flat_map(|g| g.topics.iter_mut().flatten())
            .for_each(|t| fill(&t.name, &mut t.topic_id)),
        _ => {}
    }
}

/// Puts the names of `names` (id to name) into an id version's answer. Returns the names
/// the broker answered UNKNOWN_TOPIC_ID for (their cached ids are stale: the topic was
/// deleted, perhaps created again).
pub(crate) fn restore_names(response: &mut Response, names: &HashMap<Uuid, String>) -> Vec<String> {
    let unknown = ErrorCode::UnknownTopicId.code();
    let mut stale = Vec::new();
    let mut name = |id: &Uuid, name: &mut String, codes: Vec<i16>| {
        if let Some(n) = names.get(id) {
            if name.is_empty() {
                *name = n.clone();
            }
            if codes.contains(&unknown) {
                stale.push(n.clone());
            }
        }
    };
    match response {
        Response::Produce(r) => r.responses.iter_mut().for_each(|t| {
            name(
                &t.topic_id,
                &mut t.name,
                t.partition_responses.iter().map(|p| p.error_code).collect(),
            )
        }),
        Response::OffsetCommit(r) => r.topics.iter_mut().for_each(|t| {
            name(
                &t.topic_id,
                &mut t.name,
                t.partitions.iter().map(|p| p.error_code).collect(),
            )
        }),
        Response::TxnOffsetCommit(r) => r.topics.iter_mut().for_each(|t| {
            name(
                &t.topic_id,
                &mut t.name,
                t.partitions.iter().map(|p| p.error_code).collect(),
            )
        }),
        Response::OffsetFetch(r) => r
            .groups
            .iter_mut()
            .flat_map(|g| g.topics.iter_mut())
            .for_each(|t| {
                name(
                    &t.topic_id,
                    &mut t.name,
                    t.partitions.iter().map(|p| p.error_code).collect(),
                )
            }),
        _ => {}
    }
    stale.sort();
    stale.dedup();
    stale
}
