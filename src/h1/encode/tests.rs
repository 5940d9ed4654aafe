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

/// `copy_body` from `src` into a fresh `Writes`, with an empty scratch (so
/// of the default size): the outcome and what was written.
fn copy<R: Read + ?Sized>(
    src: &mut R,
    framing: RequestFraming,
) -> (Result<u64, EncodeError>, Writes) {
    copy_through(src, framing, 0)
}

/// [`copy`] through a scratch buffer of `scratch` bytes.
fn copy_through<R: Read + ?Sized>(
    src: &mut R,
    framing: RequestFraming,
    scratch: usize,
) -> (Result<u64, EncodeError>, Writes) {
    let mut dst = Writes::default();
    let res = copy_body(src, framing, &mut dst, &mut vec![0; scratch]);
    (res, dst)
}

/// Asserts that `res` is the Content-Length mismatch `declared` / `actual`,
/// and returns the error.
#[track_caller]
fn assert_length_error(res: Result<u64, EncodeError>, declared: u64, actual: u64) -> EncodeError {
    let err = res.expect_err("want a Length error");
    assert!(
        matches!(err, EncodeError::Length { declared: d, actual: a } if (d, a) == (declared, actual)),
        "{err:?}"
    );
    err
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
    let (n, dst) = copy(
        &mut Chunks::new(&[b"hel", b"lo"]),
        RequestFraming::Length(5),
    );
    assert_eq!(n.unwrap(), 5);
    assert_eq!(dst.bytes(), b"hello");
}

#[test]
fn copy_length_zero_reads_for_extra_bytes() {
    let (n, _) = copy(&mut Chunks::new(&[]), RequestFraming::Length(0));
    assert_eq!(n.unwrap(), 0);
    let (res, _) = copy(&mut Chunks::new(&[b"x"]), RequestFraming::Length(0));
    assert_length_error(res, 0, 1);
}

#[test]
fn copy_length_short() {
    let (res, _) = copy(&mut Chunks::new(&[b"hel"]), RequestFraming::Length(5));
    let err = assert_length_error(res, 5, 3);
    assert_eq!(
        err.to_string(),
        "request body of 3 bytes shorter than its Content-Length 5"
    );
}

#[test]
fn copy_length_long() {
    let mut src = Chunks::new(&[b"hello", b" world"]);
    let (res, dst) = copy(&mut src, RequestFraming::Length(5));
    assert_length_error(res, 5, 6);
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
    let (n, dst) = copy_through(&mut &body[..], RequestFraming::Length(100_000), 1000);
    assert_eq!(n.unwrap(), 100_000);
    assert_eq!(dst.bytes(), body);
    assert!(dst.calls.iter().all(|c| c.len() <= 1000));
}

#[test]
fn copy_chunked_exact_bytes() {
    let (n, dst) = copy(
        &mut Chunks::new(&[b"abc", b"de", b"0123456789abcdefg"]),
        RequestFraming::Chunked,
    );
    assert_eq!(n.unwrap(), 22);
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
    let (n, dst) = copy(&mut Chunks::new(&[]), RequestFraming::Chunked);
    assert_eq!(n.unwrap(), 0);
    assert_eq!(dst.bytes(), LAST_CHUNK);

    // A scratch of 40 leaves 20 bytes of data per chunk.
    let (n, dst) = copy_through(&mut &[b'z'; 45][..], RequestFraming::Chunked, 40);
    n.unwrap();
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
    let (n, dst) = copy(&mut src, RequestFraming::None);
    assert_eq!(n.unwrap(), 0);
    assert!(dst.calls.is_empty());
    assert_eq!(src.pieces, vec![&b"abc"[..]]);
}

#[test]
fn read_and_write_errors_are_told_apart() {
    let mut src = Chunks::new(&[b"abc"]);
    src.fail = Some(io::ErrorKind::TimedOut);
    let (err, _) = copy(&mut src, RequestFraming::Chunked);
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
    let (n, dst) = copy(&mut Flaky(false, b"abc"), RequestFraming::Length(3));
    assert_eq!(n.unwrap(), 3);
    assert_eq!(dst.bytes(), b"abc");
}
