//! The coordinators' own records as a broker reads them back from `__consumer_offsets`
//! (`arus_group::records::decode_record`) and `__transaction_state`
//! (`arus_txn::records::decode_record`) at load time. Whatever decodes must encode again and
//! decode to the same record.
#![no_main]

use arus_fuzz::{CR_TXN, split_coordinator_input};
use arus_group::records::CoordinatorRecord;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: arus_fuzz::alloc_check::Tracking = arus_fuzz::alloc_check::Tracking;

fn group(key: &[u8], value: Option<&[u8]>) {
    let len = key.len() + value.map_or(0, <[u8]>::len);
    arus_fuzz::alloc_check::reset();
    let decoded = arus_group::records::decode_record(key, value);
    arus_fuzz::alloc_check::assert_bounded(len, "group decode_record");
    let Ok(record) = decoded else {
        return;
    };
    if matches!(record, CoordinatorRecord::Unknown { .. }) {
        return;
    }
    let (k, v) = arus_group::records::encode_record(&record)
        .unwrap_or_else(|e| panic!("decoded group record does not encode: {e}\n{record:?}"));
    let again = arus_group::records::decode_record(&k, v.as_deref())
        .unwrap_or_else(|e| panic!("encoded group record does not decode: {e}\n{record:?}"));
    assert_eq!(again, record, "group record round trip differs");
}

fn txn(key: &[u8], value: Option<&[u8]>) {
    let len = key.len() + value.map_or(0, <[u8]>::len);
    arus_fuzz::alloc_check::reset();
    let decoded = arus_txn::records::decode_record(key, value);
    arus_fuzz::alloc_check::assert_bounded(len, "txn decode_record");
    let Ok(record) = decoded else {
        return;
    };
    let (k, v) = arus_txn::records::encode_record(&record);
    let again = arus_txn::records::decode_record(&k, v.as_deref())
        .unwrap_or_else(|e| panic!("encoded txn record does not decode: {e}\n{record:?}"));
    assert_eq!(again, record, "txn record round trip differs");
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, key, value)) = split_coordinator_input(data) else {
        return;
    };
    if flags & CR_TXN != 0 {
        txn(key, value);
    } else {
        group(key, value);
    }
});
