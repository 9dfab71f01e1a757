//! Riak's Protocol Buffers framing: a 4-byte big-endian length, then that
//! many bytes, the message code and the body. Every frame is checked
//! against the size limit before anything is sent or allocated, and every
//! read and write against the exchange's deadline.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::RiakError;

/// `code` + `body` as one frame, length first, if it fits in `max` bytes
/// (the length counts the code byte; it must also fit the 4-byte header).
pub(super) fn encode(code: u8, body: &[u8], max: usize) -> Result<Vec<u8>, RiakError> {
    let frame_len = body.len().saturating_add(1);
    let header = u32::try_from(frame_len)
        .ok()
        .filter(|_| frame_len <= max)
        .ok_or(RiakError::FrameTooLarge {
            len: frame_len,
            max,
        })?;
    let mut out = Vec::with_capacity(frame_len + 4);
    out.extend_from_slice(&header.to_be_bytes());
    out.push(code);
    out.extend_from_slice(body);
    Ok(out)
}

/// The body of a frame returned by [`read_frame`] (which is never empty).
pub(super) fn body(frame: &[u8]) -> &[u8] {
    frame.get(1..).unwrap_or(&[])
}

/// One request/reply exchange before `deadline`: writes `request` (a frame
/// from [`encode`]), reads the reply frame (at most `max` bytes) and returns
/// it without its length: message code first, then the body.
pub(super) fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, RiakError> {
    write_all_by(stream, request, deadline)?;
    read_frame(stream, max, deadline)
}

/// Time left before `deadline`, or `Timeout`.
fn time_left(deadline: Instant) -> Result<Duration, RiakError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(RiakError::Timeout)
    } else {
        Ok(left)
    }
}

fn write_all_by(
    stream: &mut TcpStream,
    mut buf: &[u8],
    deadline: Instant,
) -> Result<(), RiakError> {
    while !buf.is_empty() {
        stream.set_write_timeout(Some(time_left(deadline)?))?;
        match stream.write(buf) {
            Ok(0) => return Err(RiakError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Fills `buf` from `stream` before `deadline`; end of stream is `UnexpectedEof`.
fn read_exact_by(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), RiakError> {
    let mut filled = 0;
    while filled < buf.len() {
        stream.set_read_timeout(Some(time_left(deadline)?))?;
        match stream.read(buf.get_mut(filled..).unwrap_or(&mut [])) {
            Ok(0) => return Err(RiakError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Buffer growth step while reading a frame body.
const READ_CHUNK: usize = 64 * 1024;

/// Reads one frame: a 4-byte big-endian length `L` (1 <= L <= `max`), then
/// `L` bytes, the message code and the body. Returns those `L` bytes. The
/// buffer doubles as bytes arrive (starting at 64 KiB) and never exceeds
/// `L`, so a length that lies costs nothing until the bytes come.
fn read_frame(stream: &mut TcpStream, max: usize, deadline: Instant) -> Result<Vec<u8>, RiakError> {
    let mut header = [0u8; 4];
    read_exact_by(stream, &mut header, deadline)?;
    let len = u32::from_be_bytes(header);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len == 0 {
        return Err(RiakError::EmptyFrame);
    }
    if len > max {
        return Err(RiakError::FrameTooLarge { len, max });
    }
    let mut frame: Vec<u8> = Vec::new();
    let mut filled = 0;
    while filled < len {
        let size = len.min(frame.len().saturating_mul(2).max(READ_CHUNK));
        frame.reserve_exact(size - frame.len());
        frame.resize(size, 0);
        read_exact_by(stream, frame.get_mut(filled..).unwrap_or(&mut []), deadline)?;
        filled = size;
    }
    Ok(frame)
}
