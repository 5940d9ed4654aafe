use std::io;

use super::*;
use crate::h1::testing::{Failing, Pieces, deliveries};

/// What decoding one input gives: the body bytes returned (also before an
/// error), then the trailers and the bytes left in the source, or the error.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    body: Vec<u8>,
    end: Result<(Fields, Vec<u8>), String>,
}

/// Header fields as (name, value) text pairs.
type Fields = Vec<(String, String)>;

fn ok(body: &str, trailers: &[(&str, &str)], left: &str) -> Outcome {
    let trailers = trailers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    Outcome {
        body: body.as_bytes().to_vec(),
        end: Ok((trailers, left.as_bytes().to_vec())),
    }
}

fn err(body: &str, error: &str) -> Outcome {
    Outcome {
        body: body.as_bytes().to_vec(),
        end: Err(error.to_owned()),
    }
}

fn describe(e: &DecodeError) -> String {
    match e {
        DecodeError::Truncated(m) => format!("Truncated: {m}"),
        DecodeError::Malformed(m) => format!("Malformed: {m}"),
        DecodeError::Io(e) => format!("Io: {:?}", e.kind()),
    }
}

/// Reads the whole body with reads of `buf_len` bytes.
fn decode(framing: BodyFraming, src: &mut Pieces<'_>, buf_len: usize) -> Outcome {
    let mut dec = Decoder::new(framing);
    let mut buf = vec![0; buf_len];
    let mut body = Vec::new();
    for _ in 0..1_000_000 {
        match dec.read(src, &mut buf) {
            Ok(0) => {
                assert!(dec.is_done(), "Ok(0) before the body is done");
                let mut trailers: Vec<(String, String)> = dec
                    .take_trailers()
                    .unwrap_or_default()
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                    .collect();
                trailers.sort();
                // Done means done: more reads give 0 and touch nothing.
                let fills = src.blocking_fills;
                assert_eq!(dec.read(src, &mut buf).unwrap(), 0);
                assert_eq!(src.blocking_fills, fills);
                return Outcome {
                    body,
                    end: Ok((trailers, src.rest())),
                };
            }
            Ok(n) => body.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert!(!dec.is_done());
                return Outcome {
                    body,
                    end: Err(describe(&e)),
                };
            }
        }
    }
    panic!("decoder made no progress");
}

// One case per line, like httparse's tables.
#[rustfmt::skip]
fn cases() -> Vec<(&'static str, BodyFraming, Vec<u8>, Outcome)> {
    use BodyFraming::{Chunked, CloseDelimited, Length, None};
    let b = |s: &str| s.as_bytes().to_vec();
    let long_ext = |len: usize| format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(len - 3)).into_bytes();
    let big_trailer = format!("0\r\nx: {}\r\n\r\n", "a".repeat(MAX_TRAILER_BYTES)).into_bytes();
    vec![
        ("none", None, b("NEXT"), ok("", &[], "NEXT")),
        ("length exact", Length(5), b("helloNEXT"), ok("hello", &[], "NEXT")),
        ("length zero", Length(0), b("NEXT"), ok("", &[], "NEXT")),
        ("length truncated", Length(10), b("hello"), err("hello", "Truncated: body ended after 5 of 10 bytes (Content-Length)")),
        ("length empty", Length(3), b(""), err("", "Truncated: body ended after 0 of 3 bytes (Content-Length)")),
        ("close delimited", CloseDelimited, b("all of it\r\n0\r\n"), ok("all of it\r\n0\r\n", &[], "")),
        ("close delimited empty", CloseDelimited, b(""), ok("", &[], "")),
        ("chunked", Chunked, b("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT"), ok("hello world", &[], "NEXT")),
        ("chunked empty body", Chunked, b("0\r\n\r\nNEXT"), ok("", &[], "NEXT")),
        ("chunked extensions", Chunked, b("5;a=b;c\r\nhello\r\n0;x=\"y;z\"\r\n\r\n"), ok("hello", &[], "")),
        ("chunked BWS before extension", Chunked, b("5 \t;a\r\nhello\r\n0 ; x\r\n\r\n"), ok("hello", &[], "")),
        ("chunked trailing whitespace", Chunked, b("5 \t \r\nhello\r\n0\t\r\n\r\n"), ok("hello", &[], "")),
        ("chunked hex", Chunked, b("A\r\n0123456789\r\nf\r\nabcdefghijklmno\r\n0\r\n\r\n"), ok("0123456789abcdefghijklmno", &[], "")),
        ("chunked leading zeros", Chunked, b("0005\r\nhello\r\n000\r\n\r\n"), ok("hello", &[], "")),
        ("chunked bare LF", Chunked, b("5\nhello\r\n0\n\nNEXT"), ok("hello", &[], "NEXT")),
        ("chunked trailers", Chunked, b("5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum: abc\r\n\r\nNEXT"), ok("hello", &[("expires", "never"), ("x-sum", "abc")], "NEXT")),
        ("chunked trailers bare LF", Chunked, b("0\nA: b\n\nNEXT"), ok("", &[("a", "b")], "NEXT")),
        ("chunked size line at limit", Chunked, long_ext(4096), ok("x", &[], "")),
        ("chunked size line too long", Chunked, long_ext(4097), err("", "Malformed: chunk size line too long")),
        ("chunked size line without end", Chunked, b(&"1".repeat(5000)), err("", "Malformed: chunk size line too long")),
        ("chunked bad hex", Chunked, b("5x\r\nhello\r\n0\r\n\r\n"), err("", "Malformed: invalid byte in chunk size")),
        ("chunked negative", Chunked, b("-5\r\nhello\r\n"), err("", "Malformed: invalid byte in chunk size")),
        ("chunked leading space", Chunked, b(" 5\r\nhello\r\n"), err("", "Malformed: invalid byte in chunk size")),
        ("chunked bad hex later", Chunked, b("5\r\nhello\r\nz\r\n"), err("hello", "Malformed: invalid byte in chunk size")),
        ("chunked empty size", Chunked, b("\r\nhello\r\n"), err("", "Malformed: empty chunk size")),
        ("chunked only extension", Chunked, b(";a\r\nhello\r\n"), err("", "Malformed: empty chunk size")),
        ("chunked size max", Chunked, b("ffffffffffffffff\r\nabc"), err("abc", "Truncated: connection closed in chunk data")),
        ("chunked size overflow", Chunked, b("10000000000000000\r\nabc"), err("", "Malformed: chunk size too large")),
        ("chunked no CRLF after data", Chunked, b("5\r\nhelloXX0\r\n\r\n"), err("hello", "Malformed: missing CRLF after chunk data")),
        ("chunked bare LF after data", Chunked, b("5\r\nhello\n0\r\n\r\n"), err("hello", "Malformed: missing CRLF after chunk data")),
        ("chunked CR only after data", Chunked, b("5\r\nhello\r0\r\n\r\n"), err("hello", "Malformed: missing CRLF after chunk data")),
        ("chunked data too long", Chunked, b("3\r\nhello\r\n0\r\n\r\n"), err("hel", "Malformed: missing CRLF after chunk data")),
        ("chunked truncated empty", Chunked, b(""), err("", "Truncated: connection closed in a chunk size line")),
        ("chunked truncated size line", Chunked, b("5"), err("", "Truncated: connection closed in a chunk size line")),
        ("chunked truncated mid-chunk", Chunked, b("5\r\nhel"), err("hel", "Truncated: connection closed in chunk data")),
        ("chunked truncated before CRLF", Chunked, b("5\r\nhello"), err("hello", "Truncated: connection closed before a chunk's CRLF")),
        ("chunked truncated in CRLF", Chunked, b("5\r\nhello\r"), err("hello", "Truncated: connection closed before a chunk's CRLF")),
        ("chunked truncated before last chunk", Chunked, b("5\r\nhello\r\n"), err("hello", "Truncated: connection closed in a chunk size line")),
        ("chunked truncated in trailers", Chunked, b("5\r\nhello\r\n0\r\nA: b\r\n"), err("hello", "Truncated: connection closed in the chunked trailer section")),
        ("chunked truncated final CRLF", Chunked, b("0\r\n\r"), err("", "Truncated: connection closed in the chunked trailer section")),
        ("chunked bad trailer", Chunked, b("0\r\nbad line\r\n\r\n"), err("", "Malformed: malformed chunked trailer section")),
        ("chunked folded trailer", Chunked, b("0\r\nA: b\r\n c\r\n\r\n"), err("", "Malformed: malformed chunked trailer section")),
        ("chunked trailers too large", Chunked, big_trailer, err("", "Malformed: chunked trailer section too large")),
    ]
}

/// The shotgun: every case, delivered whole, split at every byte and one
/// byte at a time, read with buffers of several sizes, gives one outcome.
#[test]
fn every_split_point() {
    for (name, framing, input, want) in cases() {
        for buf_len in [1, 3, 4096] {
            for (how, mut src) in deliveries(&input) {
                // Every split of the 64 KiB trailer case would take long; its
                // whole and bytewise deliveries still run.
                if input.len() > 5000 && how.starts_with("split") {
                    continue;
                }
                let got = decode(framing, &mut src, buf_len);
                assert_eq!(got, want, "{name}: {how}, reads of {buf_len}");
            }
        }
    }
}

#[test]
fn chunked_done_right_after_last_data_when_terminator_buffered() {
    for input in [
        &b"5\r\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhello\r\n0;ext\r\nA: b\r\nC: d\r\n\r\n",
        b"2\r\nhe\r\n3\r\nllo\r\n0\n\n",
    ] {
        for buf_len in [5, 64] {
            let mut src = Pieces::new(vec![input, b"NEXT"]);
            let mut dec = Decoder::new(BodyFraming::Chunked);
            let mut buf = vec![0; buf_len];
            assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 5);
            assert_eq!(&buf[..5], b"hello");
            assert!(dec.is_done(), "{input:?}");
            assert_eq!(src.blocking_fills, 0, "must not wait for more input");
            assert_eq!(src.rest(), b"NEXT");
            assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 0);
            assert_eq!(src.blocking_fills, 0);
        }
    }
}

#[test]
fn chunked_not_done_and_no_wait_when_terminator_not_buffered() {
    for (first, second) in [
        (&b"5\r\nhello"[..], &b"\r\n0\r\n\r\n"[..]),
        (b"5\r\nhello\r", b"\n0\r\n\r\n"),
        (b"5\r\nhello\r\n0\r", b"\n\r\n"),
        (b"5\r\nhello\r\n0\r\n", b"\r\n"),
        (b"5\r\nhello\r\n0\r\nA: b\r\n", b"\r\n"),
    ] {
        let mut src = Pieces::new(vec![first, second]);
        let mut dec = Decoder::new(BodyFraming::Chunked);
        let mut buf = [0; 64];
        assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 5);
        assert!(!dec.is_done());
        assert_eq!(
            src.blocking_fills, 0,
            "{first:?}: must not wait once it has data"
        );
        assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 0);
        assert!(dec.is_done());
        assert_eq!(src.rest(), b"");
    }
}

#[test]
fn chunked_read_crosses_buffered_chunk_boundaries() {
    let mut src = Pieces::new(vec![b"3\r\nabc\r\n3\r\ndef\r\n", b"0\r\n\r\n"]);
    let mut dec = Decoder::new(BodyFraming::Chunked);
    let mut buf = [0; 64];
    assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b"abcdef");
    assert!(!dec.is_done());
    assert_eq!(src.blocking_fills, 0);
}

#[test]
fn length_done_when_last_byte_read() {
    let mut src = Pieces::new(vec![b"hello", b"NEXT"]);
    let mut dec = Decoder::new(BodyFraming::Length(5));
    let mut buf = [0; 64];
    assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 5);
    assert!(dec.is_done());
    assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 0);
    assert_eq!(src.blocking_fills, 0);
    assert_eq!(src.rest(), b"NEXT");
}

#[test]
fn error_after_data_comes_on_the_next_read_and_sticks() {
    let mut src = Pieces::new(vec![b"5\r\nhelloXX"]);
    let mut dec = Decoder::new(BodyFraming::Chunked);
    let mut buf = [0; 64];
    assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 5);
    let e = dec.read(&mut src, &mut buf).unwrap_err();
    assert_eq!(describe(&e), "Malformed: missing CRLF after chunk data");
    let e = dec.read(&mut src, &mut buf).unwrap_err();
    assert_eq!(
        describe(&e),
        "Malformed: chunked body already failed to decode"
    );
    assert!(!dec.is_done());
}

#[test]
fn io_errors_pass_through_with_their_kind() {
    for framing in [
        BodyFraming::Length(5),
        BodyFraming::Chunked,
        BodyFraming::CloseDelimited,
    ] {
        let mut src = Failing {
            kind: io::ErrorKind::TimedOut,
            interrupted: false,
        };
        let mut dec = Decoder::new(framing);
        let e = dec.read(&mut src, &mut [0; 8]).unwrap_err();
        assert!(
            matches!(&e, DecodeError::Io(io) if io.kind() == io::ErrorKind::TimedOut),
            "{framing:?}: {e:?}"
        );
        assert!(!dec.is_done());
    }
}

#[test]
fn empty_buf_reads_nothing() {
    let mut src = Pieces::new(vec![b"5\r\nhello\r\n0\r\n\r\n"]);
    let mut dec = Decoder::new(BodyFraming::Chunked);
    assert_eq!(dec.read(&mut src, &mut []).unwrap(), 0);
    assert_eq!(src.rest(), b"5\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn works_on_a_plain_slice() {
    let mut src: &[u8] = b"3\r\nabc\r\n0\r\nA: b\r\n\r\nNEXT";
    let mut dec = Decoder::new(BodyFraming::Chunked);
    let mut buf = [0; 64];
    assert_eq!(dec.read(&mut src, &mut buf).unwrap(), 3);
    assert!(dec.is_done());
    assert_eq!(src, b"NEXT");
    let trailers = dec.take_trailers().unwrap();
    assert_eq!(trailers["a"], "b");
    assert!(dec.take_trailers().is_none());
}
