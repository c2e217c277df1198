//! Kafka's random ids: cluster ids and directory ids are `Uuid.randomUuid()` values,
//! printed as URL-safe base64 without padding (22 characters).

use arus_protocol::Uuid;

/// Kafka's `Uuid.METADATA_TOPIC_ID` / `Uuid.ONE_UUID`: (0, 1).
pub const ONE: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/// Kafka's `Uuid.randomUuid()`: a version-4 UUID that is none of the reserved ids (zero,
/// the metadata topic's id) and whose string form does not start with `-` (it would read
/// as an option on a command line).
pub fn random_uuid() -> Uuid {
    loop {
        let id = Uuid(*uuid::Uuid::new_v4().as_bytes());
        if id != Uuid::ZERO && id != ONE && !id.to_string().starts_with('-') {
            return id;
        }
    }
}

/// Kafka's `DirectoryId.reserved`: the first 100 ids (most significant half zero, least
/// significant below 100) are reserved (UNASSIGNED = 0, LOST = 1, MIGRATING = 2, …).
pub fn is_reserved_directory_id(id: &Uuid) -> bool {
    let msb = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
    let lsb = u64::from_be_bytes(id.0[8..].try_into().expect("8 bytes"));
    msb == 0 && lsb < 100
}

/// Kafka's `Copier.generateValidDirectoryId`: random, not reserved, not starting with `-`,
/// and not already the id of another directory.
pub fn random_directory_id(taken: &[Uuid]) -> Uuid {
    loop {
        let id = Uuid(*uuid::Uuid::new_v4().as_bytes());
        if !id.to_string().starts_with('-')
            && !is_reserved_directory_id(&id)
            && !taken.contains(&id)
        {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_uuids_print_as_22_url_safe_characters_and_avoid_reserved_ids() {
        for _ in 0..1000 {
            let id = random_uuid();
            let s = id.to_string();
            assert_eq!(s.len(), 22);
            assert!(!s.starts_with('-'));
            assert!(
                s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            );
            assert_eq!(Uuid::parse(&s), Some(id));
            assert!(id != Uuid::ZERO && id != ONE);
        }
    }

    #[test]
    fn the_first_hundred_directory_ids_are_reserved() {
        let mut id = [0u8; 16];
        assert!(is_reserved_directory_id(&Uuid(id)));
        id[15] = 99;
        assert!(is_reserved_directory_id(&Uuid(id)));
        id[15] = 100;
        assert!(!is_reserved_directory_id(&Uuid(id)));
        id[15] = 0;
        id[0] = 1;
        assert!(!is_reserved_directory_id(&Uuid(id)));
        let taken = [random_directory_id(&[])];
        assert_ne!(random_directory_id(&taken), taken[0]);
    }
}
