//! Response frames with holes: `records` values left out of the encoded bytes so that the
//! connection can send them straight from the log's files (`sendfile`), as Kafka does with
//! `FileRecords.writeTo` → `transferTo`. The broker then never copies fetched data through
//! user space.
//!
//! The generated encoders write every `records` field through [`crate::codec::write_records`].
//! [`encode_response_spliced`] installs a plan for the duration of one (synchronous) encode:
//! the n-th `records` field the encoder meets takes the n-th entry of the plan — `None`
//! encodes the field's own value, `Some(len)` writes only the length prefix for `len` bytes
//! and records a hole at that position. Encoders visit fields in declaration order, so the
//! plan's order is the order of the `records` fields in the message (for Fetch: topics, then
//! partitions, as they appear in the response).

use std::cell::RefCell;
use std::collections::VecDeque;

use bytes::BytesMut;

use crate::{ApiKey, EncodeError, Response};

struct Plan {
    entries: VecDeque<Option<usize>>,
    holes: Vec<Hole>,
}

thread_local! {
    static PLAN: RefCell<Option<Plan>> = const { RefCell::new(None) };
}

/// Bytes left out of a frame: they belong at `position` of [`SplicedFrame::bytes`] (before the
/// byte now there) and are `len` long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hole {
    pub position: usize,
    pub len: usize,
}

/// A response frame whose size prefix counts its holes.
#[derive(Debug)]
pub struct SplicedFrame {
    pub bytes: BytesMut,
    /// In plan order, positions ascending; one per `Some` entry of the plan.
    pub holes: Vec<Hole>,
}

/// The plan's entry for the `records` field being written, if a plan is installed.
pub(crate) fn next_hole(position_after_prefix: impl FnOnce(usize) -> usize) -> Option<usize> {
    PLAN.with(|p| {
        let mut p = p.borrow_mut();
        let plan = p.as_mut()?;
        let len = plan.entries.pop_front()??;
        plan.holes.push(Hole {
            position: position_after_prefix(len),
            len,
        });
        Some(len)
    })
}

/// Removes the plan on every exit path, so a failed encode cannot leak it into the next.
struct Installed;

impl Installed {
    fn new(entries: Vec<Option<usize>>) -> Installed {
        PLAN.with(|p| {
            *p.borrow_mut() = Some(Plan {
                entries: entries.into(),
                holes: Vec::new(),
            })
        });
        Installed
    }

    fn take(self) -> Option<Plan> {
        PLAN.with(|p| p.borrow_mut().take())
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        PLAN.with(|p| p.borrow_mut().take());
    }
}

/// Like [`crate::encode_response`], with the `records` fields named by `plan` left out (see
/// the module doc). Fails with [`EncodeError::SpliceMismatch`] if the message has a different
/// number of `records` fields than the plan has entries.
pub fn encode_response_spliced(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &Response,
    plan: Vec<Option<usize>>,
) -> Result<SplicedFrame, EncodeError> {
    let expected = plan.len();
    let mut out = BytesMut::new();
    let installed = Installed::new(plan);
    crate::encode_response(correlation_id, api_key, version, body, &mut out)?;
    let plan = installed.take().ok_or(EncodeError::SpliceMismatch {
        expected,
        unused: expected,
    })?;
    if !plan.entries.is_empty() {
        return Err(EncodeError::SpliceMismatch {
            expected,
            unused: plan.entries.len(),
        });
    }
    // `encode_response` sized the frame without the holes.
    let left_out: usize = plan.holes.iter().map(|h| h.len).sum();
    let len = out.len() - 4 + left_out;
    let len32 = i32::try_from(len).map_err(|_| EncodeError::FrameTooLarge(len))?;
    out[..4].copy_from_slice(&len32.to_be_bytes());
    Ok(SplicedFrame {
        bytes: out,
        holes: plan.holes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::FetchResponse;
    use crate::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use bytes::Bytes;

    fn response(records: &[&'static [u8]]) -> Response {
        Response::Fetch(FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| PartitionData {
                        partition_index: i as i32,
                        records: Some(Bytes::from_static(r)),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    /// Filling the holes with the left-out bytes gives exactly the ordinary encoding.
    fn check(version: i16) {
        let full = response(&[b"first-records", b"", b"third-records-longer"]);
        let mut expected = BytesMut::new();
        crate::encode_response(7, ApiKey::Fetch, version, &full, &mut expected).unwrap();

        // Holes for partitions 0 and 2; the encoded values there are ignored.
        let placeholder = response(&[b"", b"", b""]);
        let frame = encode_response_spliced(
            7,
            ApiKey::Fetch,
            version,
            &placeholder,
            vec![Some(13), None, Some(20)],
        )
        .unwrap();
        let fill: [&[u8]; 2] = [b"first-records", b"third-records-longer"];
        let mut rebuilt = Vec::new();
        let mut at = 0;
        for (hole, data) in frame.holes.iter().zip(fill) {
            rebuilt.extend_from_slice(&frame.bytes[at..hole.position]);
            assert_eq!(hole.len, data.len());
            rebuilt.extend_from_slice(data);
            at = hole.position;
        }
        rebuilt.extend_from_slice(&frame.bytes[at..]);
        assert_eq!(rebuilt, expected.to_vec(), "version {version}");
    }

    #[test]
    fn holes_filled_equal_the_ordinary_encoding_classic_and_flexible() {
        check(4); // classic bytes: int32 length
        check(11); // flexible: compact length (uvarint len + 1)
        check(17);
    }

    #[test]
    fn a_plan_that_does_not_match_the_message_is_an_error_and_is_removed() {
        let r = response(&[b"a"]);
        let err = encode_response_spliced(1, ApiKey::Fetch, 12, &r, vec![None, Some(3)]);
        assert!(matches!(
            err,
            Err(EncodeError::SpliceMismatch {
                expected: 2,
                unused: 1
            })
        ));
        // No plan lingers: an ordinary encode writes the records.
        let mut out = BytesMut::new();
        crate::encode_response(1, ApiKey::Fetch, 12, &r, &mut out).unwrap();
        // Compact bytes: uvarint(len + 1) = 2, then the record byte.
        assert!(out.windows(2).any(|w| w == [2, b'a']));
        assert!(PLAN.with(|p| p.borrow().is_none()));
    }
}
