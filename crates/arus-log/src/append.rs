//! Appending to a [`Log`]: a leader's append, which assigns offsets and stamps its leader
//! epoch, and a follower's ([`Log::append_as_follower`]), which keeps the leader's; both
//! check the input whole before anything is written, update the producer state, the
//! aborted-transaction index and the epoch cache, and write through the same segment path.

use super::*;

impl Log {
    /// Appends already-validated batches (one or more concatenated v2 batches). Assigns
    /// consecutive offsets from the log end by rewriting each batch's `baseOffset` (and
    /// `partitionLeaderEpoch` when `leader_epoch` is given) in place — neither is covered
    /// by the CRC. The whole call lands in one segment; the active segment is rolled first
    /// if the append would push it past `segment_bytes`, if it is older than `segment_ms`,
    /// if its index is full, or if relative offsets/positions would overflow u32.
    /// Writes go to the page cache; durability comes from [`Log::flush_target`].
    pub fn append(
        &mut self,
        batches: &mut [u8],
        leader_epoch: Option<i32>,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let headers = parse_append_input(batches)?;
        // Plain (non-idempotent) producers skip everything below.
        let idempotent = headers.iter().any(|(_, h)| h.producer_id >= 0);
        if idempotent {
            // Kafka `UnifiedLog.analyzeAndValidateProducerState`: a retried batch is
            // answered with the original's offsets and not written again.
            for (_, h) in &headers {
                if let Some(d) = self.producers.find_duplicate(h) {
                    return Ok(AppendInfo {
                        first_offset: d.first_offset,
                        last_offset: d.last_offset,
                        max_timestamp: NO_TIMESTAMP,
                        offset_of_max_timestamp: -1,
                        bytes: 0,
                        duplicate: true,
                        completed_txns: Vec::new(),
                    });
                }
            }
        }
        let total_offsets: i64 = headers
            .iter()
            .map(|(_, h)| i64::from(h.last_offset_delta) + 1)
            .sum();
        let append_max_ts = headers
            .iter()
            .map(|(_, h)| h.max_timestamp)
            .max()
            .unwrap_or(NO_TIMESTAMP);
        let first_offset = self.log_end_offset();
        let last_offset = first_offset + total_offsets - 1;
        let mut producer_batches: Vec<(BatchHeader, Option<ControlMarker>)> = Vec::new();
        if idempotent {
            let mut next = first_offset;
            for &(pos, h) in &headers {
                let h = BatchHeader {
                    base_offset: next,
                    ..h
                };
                next = h.last_offset() + 1;
                if h.producer_id < 0 {
                    continue;
                }
                let marker = producer_marker(&h, &batches[pos..pos + h.size], pos)?;
                producer_batches.push((h, marker));
            }
            self.producers
                .validate_append(producer_batches.iter().copied())?;
        }
        self.maybe_roll(batches.len() as u64, append_max_ts, last_offset, now_ms)?;

        // Assign offsets.
        let mut next = first_offset;
        let mut assigned = Vec::with_capacity(headers.len());
        for &(pos, h) in &headers {
            let b = &mut batches[pos..pos + h.size];
            batch::set_base_offset(b, next);
            if let Some(e) = leader_epoch {
                batch::set_leader_epoch(b, e);
            }
            let h = BatchHeader {
                base_offset: next,
                ..h
            };
            next = h.last_offset() + 1;
            assigned.push((pos, h));
        }

        let mut info = self.write_batches(batches, &assigned, first_offset, last_offset)?;
        self.apply_producer_batches(producer_batches, &mut info)?;
        Ok(info)
    }

    /// Appends batches exactly as the partition's leader wrote them (Kafka
    /// `UnifiedLog.appendAsFollower`, origin REPLICATION): offsets and `partitionLeaderEpoch`
    /// are kept, not assigned. Checked first, and refused whole without writing anything:
    /// each batch's header and CRC-32C ([`LogError::CorruptBatch`]), the first offset not
    /// below the log end ([`LogError::UnexpectedAppendOffset`]: truncate first), and each
    /// batch starting after the previous one's last offset ([`LogError::OffsetsOutOfOrder`]).
    /// As in Kafka, the first batch may start above the log end: a compacted leader's log
    /// has gaps, which the follower's log then has too.
    ///
    /// The leader epoch cache takes each batch's epoch at its base offset; the producer
    /// state is updated without the client checks (no duplicate detection, no sequence or
    /// epoch validation: the leader did them), so idempotent producers, open transactions,
    /// aborted transactions (`.txnindex`) and the last stable offset are rebuilt as the
    /// leader has them. Durability is the caller's, as for [`Log::append`].
    pub fn append_as_follower(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let headers = parse_append_input(batches)?;
        let log_end_offset = self.log_end_offset();
        let mut previous_last: Option<i64> = None;
        let mut producer_batches = Vec::new();
        for &(pos, h) in &headers {
            let bytes = &batches[pos..pos + h.size];
            if !batch::crc_ok(&h, bytes) {
                tracing::warn!(dir = %self.dir.display(), base_offset = h.base_offset, "follower append refused: CRC mismatch");
                return Err(LogError::CorruptBatch {
                    position: pos,
                    reason: format!("CRC mismatch in the batch at offset {}", h.base_offset),
                });
            }
            match previous_last {
                None if h.base_offset < log_end_offset => {
                    let last_offset = headers
                        .last()
                        .map_or(h.last_offset(), |(_, l)| l.last_offset());
                    tracing::warn!(dir = %self.dir.display(), first_offset = h.base_offset, log_end_offset, "follower append refused: it starts below the log end");
                    return Err(LogError::UnexpectedAppendOffset {
                        first_offset: h.base_offset,
                        last_offset,
                        log_end_offset,
                    });
                }
                Some(previous_last_offset) if h.base_offset <= previous_last_offset => {
                    tracing::warn!(dir = %self.dir.display(), base_offset = h.base_offset, previous_last_offset, "follower append refused: offsets out of order");
                    return Err(LogError::OffsetsOutOfOrder {
                        position: pos,
                        base_offset: h.base_offset,
                        previous_last_offset,
                    });
                }
                _ => {}
            }
            previous_last = Some(h.last_offset());
            if h.producer_id >= 0 {
                let marker = producer_marker(&h, bytes, pos)?;
                producer_batches.push((h, marker));
            }
        }
        let (Some((_, first)), Some((_, last))) = (headers.first(), headers.last()) else {
            // `parse_append_input` already refuses an empty append.
            return Err(LogError::CorruptBatch {
                position: 0,
                reason: "empty append".into(),
            });
        };
        let (first_offset, last_offset) = (first.base_offset, last.last_offset());
        let append_max_ts = headers
            .iter()
            .map(|(_, h)| h.max_timestamp)
            .max()
            .unwrap_or(NO_TIMESTAMP);
        // Index entries hold offsets relative to the segment's base in 32 bits and a new
        // segment starts at the log end, so a gap that large cannot be written (Kafka would
        // roll at the append's first offset; a follower truncates fully to the leader's start
        // first). Smaller overflows of the active segment are a roll (`maybe_roll`).
        if last_offset - log_end_offset > i64::from(u32::MAX) {
            tracing::warn!(dir = %self.dir.display(), first_offset, log_end_offset, "follower append refused: too far past the log end");
            return Err(LogError::InvalidArgument(format!(
                "follower append at offsets {first_offset}..={last_offset} is too far past the log end offset {log_end_offset}; truncate the log to start at {first_offset} first"
            )));
        }
        self.maybe_roll(batches.len() as u64, append_max_ts, last_offset, now_ms)?;
        let mut info = self.write_batches(batches, &headers, first_offset, last_offset)?;
        self.apply_producer_batches(producer_batches, &mut info)?;
        Ok(info)
    }

    /// Writes batches whose offsets are final (`assigned`: position in `batches` and header)
    /// to the active segment, indexes them and records their leader epochs (Kafka
    /// `UnifiedLog.append` → `maybeAssignEpochStartOffset` for each batch). The caller has
    /// rolled the segment if needed and validated the producer state.
    pub(crate) fn write_batches(
        &mut self,
        batches: &[u8],
        assigned: &[(usize, BatchHeader)],
        first_offset: i64,
        last_offset: i64,
    ) -> Result<AppendInfo, LogError> {
        let interval = u64::from(self.config.index_interval_bytes);
        let index_bytes = self.config.segment_index_bytes;
        let seg = self.active_mut();
        let start_pos = seg.size;
        if let Err(e) = seg.log.write_all_at(batches, start_pos) {
            let _ = seg.log.set_len(start_pos);
            return Err(io_at(&seg.log_path)(e));
        }

        // The data is in the segment now; index files are a cache (rebuilt by recovery if
        // they end up inconsistent), so failures to write them only cost a warning.
        seg.size += batches.len() as u64;
        seg.next_offset = last_offset + 1;
        let mut info = AppendInfo {
            first_offset,
            last_offset,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: -1,
            bytes: batches.len(),
            duplicate: false,
            completed_txns: Vec::new(),
        };
        let max_oi = Segment::max_index_entries(index_bytes, segment::INDEX_ENTRY_LEN);
        let max_ti = Segment::max_index_entries(index_bytes, segment::TIME_INDEX_ENTRY_LEN);
        for &(pos, h) in assigned {
            let bytes = &batches[pos..pos + h.size];
            let file_pos = start_pos + pos as u64;
            if h.max_timestamp > info.max_timestamp {
                info.max_timestamp = h.max_timestamp;
                info.offset_of_max_timestamp = batch::offset_of_max_timestamp(&h, bytes);
            }
            if seg.first_batch_timestamp.is_none() {
                seg.first_batch_timestamp = Some(h.max_timestamp);
            }
            // Kafka 4.4 `LogSegment.append`, batch by batch (see the `segment` docs).
            if h.max_timestamp > seg.max_timestamp {
                seg.max_timestamp = h.max_timestamp;
                seg.shallow_offset_of_max_timestamp = h.last_offset();
                seg.offset_of_max_timestamp = if h.max_timestamp == info.max_timestamp {
                    info.offset_of_max_timestamp
                } else {
                    batch::offset_of_max_timestamp(&h, bytes)
                };
            }
            if seg.bytes_since_index_entry > interval && file_pos <= u64::from(u32::MAX) {
                if seg.offset_index.len() < max_oi {
                    let rel = (h.last_offset() - seg.base) as u32;
                    let rel_base = (h.base_offset - seg.base) as u32;
                    if let Err((path, e)) = seg.append_offset_entry(rel, file_pos as u32, rel_base)
                    {
                        tracing::warn!(path = %path.display(), "index write failed: {e}");
                    }
                }
                if seg.time_index.len() < max_ti
                    && let Err((path, e)) = seg.maybe_append_time_entry()
                {
                    tracing::warn!(path = %path.display(), "time index write failed: {e}");
                }
                seg.bytes_since_index_entry = 0;
            }
            seg.bytes_since_index_entry += h.size as u64;
        }
        // Kafka `UnifiedLog.append` → `maybeAssignEpochStartOffset` for each batch.
        for &(pos, h) in assigned {
            let epoch = batch::leader_epoch(&batches[pos..pos + h.size]);
            if epoch >= 0 && self.epochs.latest_epoch() != Some(epoch) {
                // Both are non-negative here, so the assignment cannot be refused.
                self.update_epochs(|c| {
                    let _ = c.assign(epoch, h.base_offset);
                });
            }
        }
        Ok(info)
    }

    /// Applies the producer-state effects of written batches (Kafka origin REPLICATION's
    /// `ProducerStateManager.update`, which a validated client append ends with too):
    /// completed transactions go to `info`, aborted ones to the `.txnindex`.
    pub(crate) fn apply_producer_batches(
        &mut self,
        producer_batches: Vec<(BatchHeader, Option<ControlMarker>)>,
        info: &mut AppendInfo,
    ) -> Result<(), LogError> {
        for (h, marker) in producer_batches {
            if let Some(c) = self.producers.apply(&h, marker) {
                info.completed_txns.push(c.completed);
                if let Some(a) = c.aborted {
                    self.add_aborted(a)?;
                }
            }
        }
        Ok(())
    }

    /// Records an aborted transaction in memory and in the active segment's `.txnindex`.
    pub(crate) fn add_aborted(&mut self, a: AbortedTxn) -> Result<(), LogError> {
        self.aborted.push(a);
        let leo = self.log_end_offset();
        let created = self.active_mut().append_txn_entry(&a)?;
        if created {
            self.txn_dir_dirty = Some(leo);
        }
        Ok(())
    }
}

/// Splits append input into batches, checking each header and that the batches exactly
/// cover the input. Returns `(position in input, header)` per batch.
pub(crate) fn parse_append_input(b: &[u8]) -> Result<Vec<(usize, BatchHeader)>, LogError> {
    if b.is_empty() {
        return Err(LogError::CorruptBatch {
            position: 0,
            reason: "empty append".into(),
        });
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let h = batch::parse_header(&b[pos..]).map_err(|r| LogError::CorruptBatch {
            position: pos,
            reason: r.into(),
        })?;
        if pos + h.size > b.len() {
            return Err(LogError::CorruptBatch {
                position: pos,
                reason: format!(
                    "batch of {} bytes but only {} remain",
                    h.size,
                    b.len() - pos
                ),
            });
        }
        out.push((pos, h));
        pos += h.size;
    }
    Ok(out)
}

/// The transaction marker of a control batch appended by a producer (`None` for a data
/// batch); a control batch with records but no valid marker is corrupt.
pub(crate) fn producer_marker(
    h: &BatchHeader,
    bytes: &[u8],
    position: usize,
) -> Result<Option<ControlMarker>, LogError> {
    if !h.is_control() {
        return Ok(None);
    }
    let m = batch::control_marker(bytes);
    if m.is_none() && h.record_count > 0 {
        return Err(LogError::CorruptBatch {
            position,
            reason: "control batch without a valid transaction marker".into(),
        });
    }
    Ok(m)
}
