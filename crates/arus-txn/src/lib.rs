//! `arus-txn`: the transaction coordinator as a pure state machine (work in progress).
