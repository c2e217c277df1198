//! Framing of the quorum's TCP connections.
//!
//! ## Wire format
//! A connection opens with the 8-byte [`PREAMBLE`] from the client: `ARUSRFT` and a protocol
//! version byte (1). It cannot be mistaken for a Kafka request, whose first four bytes are a
//! size that Kafka caps far below `0x41525553` ("ARUS"), so a CONTROLLER listener that also
//! speaks Kafka can peek at it and route the connection. Then each message is
//!
//! ```text
//! length: u32 BE   bytes of `payload`, at most the configured maximum
//! payload          bincode of an `RpcRequest` (client -> server) or `RpcResponse` (back)
//! ```
//!
//! one response per request, in order. A length above the maximum closes the connection
//! before anything is allocated for it.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::TransportError;

/// Sent once by the client at the start of a connection.
pub const PREAMBLE: [u8; 8] = *b"ARUSRFT\x01";

/// Default bound of one frame: room for a large metadata batch or snapshot chunk.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 64 * 1024 * 1024;

pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
    max: u32,
) -> Result<(), TransportError> {
    let size = u32::try_from(payload.len())
        .ok()
        .filter(|&size| size <= max)
        .ok_or(TransportError::FrameTooLarge {
            size: payload.len() as u64,
            max: u64::from(max),
        })?;
    writer.write_all(&size.to_be_bytes()).await?;
    writer.write_all(payload).await?;
    writer.flush().await?;
    Ok(())
}

/// The next frame, or `None` when the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Option<Vec<u8>>, TransportError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = u32::from_be_bytes(size);
    if size > max {
        return Err(TransportError::FrameTooLarge {
            size: u64::from(size),
            max: u64::from(max),
        });
    }
    let mut payload = vec![0u8; size as usize];
    reader.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused_before_allocation() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, b"hello", 16).await.unwrap();
        assert_eq!(read_frame(&mut b, 16).await.unwrap().unwrap(), b"hello");
        assert!(matches!(
            write_frame(&mut a, &[0u8; 17], 16).await,
            Err(TransportError::FrameTooLarge { size: 17, max: 16 })
        ));
        // A peer announcing 4 GiB is refused from the header alone.
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(matches!(
            read_frame(&mut b, 16).await,
            Err(TransportError::FrameTooLarge { .. })
        ));
        drop(a);
        assert!(read_frame(&mut b, 16).await.unwrap().is_none());
    }

    #[test]
    fn the_preamble_is_not_a_plausible_kafka_request_size() {
        let as_size = i32::from_be_bytes(PREAMBLE[..4].try_into().unwrap());
        // Kafka's socket.request.max.bytes default is 100 MiB.
        assert!(as_size > 100 * 1024 * 1024);
    }
}
