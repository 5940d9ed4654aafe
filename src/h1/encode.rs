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

/// Appends one chunk (size line, data, CRLF) to `out`; empty data writes
/// nothing, since a zero-size chunk would end the body.
pub(crate) fn write_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let mut line = [0; SIZE_LINE_ROOM];
    let start = size_line(data.len(), &mut line);
    out.extend_from_slice(&line[start..]);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

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
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A reader that hands out `pieces` one per `read`, then EOF, or an error.
    struct Chunks {
        pieces: Vec<&'static [u8]>,
        fail: Option<io::ErrorKind>,
    }

    impl Chunks {
        fn new(pieces: &[&'static [u8]]) -> Self {
            Chunks {
                pieces: pieces.iter().rev().copied().collect(),
                fail: None,
            }
        }
    }

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.pieces.pop() {
                Some(p) => {
                    let n = p.len().min(buf.len());
                    buf[..n].copy_from_slice(&p[..n]);
                    if n < p.len() {
                        self.pieces.push(&p[n..]);
                    }
                    Ok(n)
                }
                None => match self.fail {
                    Some(kind) => Err(kind.into()),
                    None => Ok(0),
                },
            }
        }
    }

    /// A writer that records each write call separately.
    #[derive(Default)]
    struct Writes {
        calls: Vec<Vec<u8>>,
        fail: bool,
    }

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.fail {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.calls.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn bytes(&self) -> Vec<u8> {
            self.calls.concat()
        }
    }

    #[test]
    fn write_chunk_table() {
        let big = vec![b'x'; 0x1234];
        let cases: [(&[u8], Vec<u8>); 4] = [
            (b"", vec![]),
            (b"a", b"1\r\na\r\n".to_vec()),
            (b"0123456789abcdef", b"10\r\n0123456789abcdef\r\n".to_vec()),
            (&big, [&b"1234\r\n"[..], &big, b"\r\n"].concat()),
        ];
        for (data, want) in cases {
            let mut out = b"prefix".to_vec();
            write_chunk(data, &mut out);
            assert_eq!(out, [&b"prefix"[..], &want].concat());
        }
    }

    #[test]
    fn size_line_extremes() {
        let mut line = [0; SIZE_LINE_ROOM];
        let start = size_line(0, &mut line);
        assert_eq!(&line[start..], b"0\r\n");
        let start = size_line(usize::MAX, &mut line);
        assert_eq!(&line[start..], format!("{:x}\r\n", usize::MAX).as_bytes());
    }

    #[test]
    fn copy_length_exact() {
        let mut src = Chunks::new(&[b"hel", b"lo"]);
        let mut dst = Writes::default();
        let n = copy_body(
            &mut src,
            RequestFraming::Length(5),
            &mut dst,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(n, 5);
        assert_eq!(dst.bytes(), b"hello");
    }

    #[test]
    fn copy_length_zero_reads_for_extra_bytes() {
        let mut dst = Writes::default();
        let n = copy_body(
            &mut Chunks::new(&[]),
            RequestFraming::Length(0),
            &mut dst,
            &mut Vec::new(),
        );
        assert_eq!(n.unwrap(), 0);
        let err = copy_body(
            &mut Chunks::new(&[b"x"]),
            RequestFraming::Length(0),
            &mut dst,
            &mut Vec::new(),
        );
        assert!(
            matches!(
                err,
                Err(EncodeError::Length {
                    declared: 0,
                    actual: 1
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn copy_length_short() {
        let mut src = Chunks::new(&[b"hel"]);
        let mut dst = Writes::default();
        let err = copy_body(
            &mut src,
            RequestFraming::Length(5),
            &mut dst,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                EncodeError::Length {
                    declared: 5,
                    actual: 3
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "request body of 3 bytes shorter than its Content-Length 5"
        );
    }

    #[test]
    fn copy_length_long() {
        let mut src = Chunks::new(&[b"hello", b" world"]);
        let mut dst = Writes::default();
        let err = copy_body(
            &mut src,
            RequestFraming::Length(5),
            &mut dst,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                EncodeError::Length {
                    declared: 5,
                    actual: 6
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            dst.bytes(),
            b"hello",
            "never writes past the declared length"
        );
        // Exactly one byte past the length was read.
        let mut rest = Vec::new();
        src.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"world");
    }

    #[test]
    fn copy_length_through_small_scratch() {
        let body: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut src = &body[..];
        let mut dst = Writes::default();
        let mut scratch = vec![0; 1000];
        let n = copy_body(
            &mut src,
            RequestFraming::Length(100_000),
            &mut dst,
            &mut scratch,
        )
        .unwrap();
        assert_eq!(n, 100_000);
        assert_eq!(dst.bytes(), body);
        assert!(dst.calls.iter().all(|c| c.len() <= 1000));
    }

    #[test]
    fn copy_chunked_exact_bytes() {
        let mut src = Chunks::new(&[b"abc", b"de", b"0123456789abcdefg"]);
        let mut dst = Writes::default();
        let n = copy_body(&mut src, RequestFraming::Chunked, &mut dst, &mut Vec::new()).unwrap();
        assert_eq!(n, 22);
        assert_eq!(
            dst.bytes(),
            b"3\r\nabc\r\n2\r\nde\r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n"
        );
        // One write per chunk, one for the end.
        assert_eq!(dst.calls.len(), 4);
        assert_eq!(dst.calls[0], b"3\r\nabc\r\n");
    }

    #[test]
    fn copy_chunked_empty_and_small_scratch() {
        let mut dst = Writes::default();
        let n = copy_body(
            &mut Chunks::new(&[]),
            RequestFraming::Chunked,
            &mut dst,
            &mut Vec::new(),
        );
        assert_eq!(n.unwrap(), 0);
        assert_eq!(dst.bytes(), LAST_CHUNK);

        // A scratch of 40 leaves 20 bytes of data per chunk.
        let mut dst = Writes::default();
        let mut scratch = vec![0; 40];
        let mut src = &[b'z'; 45][..];
        copy_body(&mut src, RequestFraming::Chunked, &mut dst, &mut scratch).unwrap();
        let z = |n| "z".repeat(n);
        let want = format!(
            "14\r\n{}\r\n14\r\n{}\r\n5\r\n{}\r\n0\r\n\r\n",
            z(20),
            z(20),
            z(5)
        );
        assert_eq!(String::from_utf8(dst.bytes()).unwrap(), want);
    }

    #[test]
    fn copy_none_reads_nothing() {
        let mut src = Chunks::new(&[b"abc"]);
        let mut dst = Writes::default();
        let n = copy_body(&mut src, RequestFraming::None, &mut dst, &mut Vec::new()).unwrap();
        assert_eq!(n, 0);
        assert!(dst.calls.is_empty());
        assert_eq!(src.pieces, vec![&b"abc"[..]]);
    }

    #[test]
    fn read_and_write_errors_are_told_apart() {
        let mut src = Chunks::new(&[b"abc"]);
        src.fail = Some(io::ErrorKind::TimedOut);
        let err = copy_body(
            &mut src,
            RequestFraming::Chunked,
            &mut Writes::default(),
            &mut Vec::new(),
        );
        assert!(
            matches!(&err, Err(EncodeError::Read(e)) if e.kind() == io::ErrorKind::TimedOut),
            "{err:?}"
        );

        let mut dst = Writes {
            fail: true,
            ..Writes::default()
        };
        let err = copy_body(
            &mut Chunks::new(&[b"abc"]),
            RequestFraming::Length(3),
            &mut dst,
            &mut Vec::new(),
        );
        assert!(
            matches!(&err, Err(EncodeError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe),
            "{err:?}"
        );
    }

    #[test]
    fn interrupted_reads_are_retried() {
        struct Flaky(bool, &'static [u8]);
        impl Read for Flaky {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 = !self.0;
                if self.0 {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                self.1.read(buf)
            }
        }
        let mut dst = Writes::default();
        let n = copy_body(
            &mut Flaky(false, b"abc"),
            RequestFraming::Length(3),
            &mut dst,
            &mut Vec::new(),
        );
        assert_eq!(n.unwrap(), 3);
        assert_eq!(dst.bytes(), b"abc");
    }
}
