//! Small whole-file records guarded by a checksum (the vote, the purge point, snapshots).
//!
//! Layout: `magic: [u8; 4]`, `crc32c: u32 BE` of the body, `body` (bincode of the value).
//! Such files are written with `Disk::write_atomic`, so a reader sees the old or the new file;
//! the checksum catches media corruption, which is reported, never guessed around.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

pub(crate) fn encode<T: Serialize>(magic: [u8; 4], value: &T) -> Result<Vec<u8>, StoreError> {
    let body = bincode::serialize(value).map_err(StoreError::Encode)?;
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(
    file: &str,
    magic: [u8; 4],
    data: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        file: file.to_string(),
        reason: reason.to_string(),
    };
    if data.len() < 8 || data[..4] != magic {
        return Err(corrupt("bad header"));
    }
    let crc = u32::from_be_bytes(data[4..8].try_into().expect("4 bytes"));
    let body = &data[8..];
    if crc32c::crc32c(body) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    bincode::deserialize(body).map_err(|source| StoreError::Decode {
        file: file.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_detects_damage() {
        let bytes = encode(*b"TEST", &(7u64, "x".to_string())).unwrap();
        let back: (u64, String) = decode("f", *b"TEST", &bytes).unwrap();
        assert_eq!(back, (7, "x".to_string()));
        let mut damaged = bytes.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(matches!(
            decode::<(u64, String)>("f", *b"TEST", &damaged),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(decode::<(u64, String)>("f", *b"ELSE", &bytes).is_err());
    }
}
