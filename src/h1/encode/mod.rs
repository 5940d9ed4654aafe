//! Request body encoding: exactly Content-Length bytes, or the chunked
//! coding (RFC 9112 §7.1) without trailers, copied from a `Read` to a
//! `Write`.

use std::{fmt, io};

use super::head::RequestFraming;

/// The last chunk and the empty trailer section that end a chunked body.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Room for a chunk-size line in front of the data: 16 hex digits and CRLF.
const SIZE_LINE_ROOM: usize = 18;

/// The copy buffer's size when the caller's `scratch` is too small.
const DEFAULT_SCRATCH: usize = 32 * 1024;

/// Writes "<hex len>\r\n" right-aligned into `line`; returns where it starts.
fn size_line(len: usize, line: &mut [u8; SIZE_LINE_ROOM]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    line[SIZE_LINE_ROOM - 2..].copy_from_slice(b"\r\n");
    let mut start = SIZE_LINE_ROOM - 2;
    let mut rest = len;
    loop {
        start -= 1;
        line[start] = HEX[rest % 16];
        rest /= 16;
        if rest == 0 {
            return start;
        }
    }
}

/// Why a request body could not be copied.
#[derive(Debug)]
pub(crate) enum EncodeError {
    /// Reading the caller's body failed.
    Read(io::Error),
    /// Writing to the connection failed.
    Write(io::Error),
    /// The body was not the length declared in Content-Length. When it was
    /// longer, `actual` is `declared + 1`: we stop after one byte too many.
    Length { declared: u64, actual: u64 },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Read(e) => write!(f, "reading request body: {e}"),
            EncodeError::Write(e) => write!(f, "writing request body: {e}"),
            EncodeError::Length { declared, actual } if actual > declared => {
                write!(f, "request body longer than its Content-Length {declared}")
            }
            EncodeError::Length { declared, actual } => write!(
                f,
                "request body of {actual} bytes shorter than its Content-Length {declared}"
            ),
        }
    }
}

/// Copies a request body from `src` to `dst` framed as `framing`; returns the
/// body bytes copied. Does not flush.
///
/// - `Length(n)`: exactly n bytes. Fewer is an error, and so is more: after n
///   bytes we read once more and fail if that gives a byte.
/// - `Chunked`: one chunk per read of `src`, each written with a single
///   `write_all`, then [`LAST_CHUNK`].
/// - `None`: nothing; `src` is not read.
///
/// `scratch` is the copy buffer, used at its current length (it is grown to
/// 32 KiB if it is too short to be useful).
pub(crate) fn copy_body<R: io::Read + ?Sized, W: io::Write + ?Sized>(
    src: &mut R,
    framing: RequestFraming,
    dst: &mut W,
    scratch: &mut Vec<u8>,
) -> Result<u64, EncodeError> {
    if scratch.len() < 2 * SIZE_LINE_ROOM {
        scratch.resize(DEFAULT_SCRATCH, 0);
    }
    match framing {
        RequestFraming::None => Ok(0),
        RequestFraming::Length(declared) => copy_length(src, declared, dst, scratch),
        RequestFraming::Chunked => copy_chunked(src, dst, scratch),
    }
}

fn copy_length<R: io::Read + ?Sized, W: io::Write + ?Sized>(
    src: &mut R,
    declared: u64,
    dst: &mut W,
    scratch: &mut [u8],
) -> Result<u64, EncodeError> {
    let mut copied: u64 = 0;
    while copied < declared {
        let want = usize::try_from(declared - copied)
            .map_or(scratch.len(), |left| left.min(scratch.len()));
        let n = read(src, &mut scratch[..want])?;
        if n == 0 {
            return Err(EncodeError::Length {
                declared,
                actual: copied,
            });
        }
        dst.write_all(&scratch[..n]).map_err(EncodeError::Write)?;
        copied += n as u64;
    }
    if read(src, &mut scratch[..1])? != 0 {
        return Err(EncodeError::Length {
            declared,
            actual: declared + 1,
        });
    }
    Ok(copied)
}

fn copy_chunked<R: io::Read + ?Sized, W: io::Write + ?Sized>(
    src: &mut R,
    dst: &mut W,
    scratch: &mut [u8],
) -> Result<u64, EncodeError> {
    // Layout: [size line room][data][CRLF], so each chunk is one write.
    let data_end = scratch.len() - 2;
    let mut copied: u64 = 0;
    loop {
        let n = read(src, &mut scratch[SIZE_LINE_ROOM..data_end])?;
        if n == 0 {
            dst.write_all(LAST_CHUNK).map_err(EncodeError::Write)?;
            return Ok(copied);
        }
        let mut line = [0; SIZE_LINE_ROOM];
        let start = size_line(n, &mut line);
        scratch[start..SIZE_LINE_ROOM].copy_from_slice(&line[start..]);
        let end = SIZE_LINE_ROOM + n;
        scratch[end..end + 2].copy_from_slice(b"\r\n");
        dst.write_all(&scratch[start..end + 2])
            .map_err(EncodeError::Write)?;
        copied += n as u64;
    }
}

/// One `read`, retried on `Interrupted`.
fn read<R: io::Read + ?Sized>(src: &mut R, buf: &mut [u8]) -> Result<usize, EncodeError> {
    loop {
        match src.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other.map_err(EncodeError::Read),
        }
    }
}

#[cfg(test)]
mod tests;
