//! The decoders on an in-memory source that records what the body tells
//! it (`hold`, `end`): the end-of-body protocol and the error rules, for
//! every encoding this build decodes, fed in pieces of every size.

use std::{
    io::{self, Read},
    sync::{Arc, Mutex},
};

use http::HeaderMap;

use super::DecodedBody;
use crate::{
    Error, ErrorKind,
    body::{BodyEnd, BodySource, Encoding},
};

/// A body source serving `data` in pieces of at most `piece` bytes, then
/// `Ok(0)` (or, with `fail_at`, the connection's own error at that offset),
/// and logging what the layer above says.
#[derive(Debug)]
struct Fake {
    data: Vec<u8>,
    pos: usize,
    piece: usize,
    fail_at: Option<usize>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Read for Fake {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let end = self.fail_at.unwrap_or(self.data.len());
        if self.pos == end && self.fail_at.is_some() {
            let err = Error::new(ErrorKind::BodyRead, "unexpected EOF reading body: fake")
                .with_io_kind(io::ErrorKind::UnexpectedEof);
            return Err(err.into());
        }
        let n = buf.len().min(self.piece).min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl BodySource for Fake {
    fn trailers(&self) -> Option<&HeaderMap> {
        None
    }

    fn may_exceed(&self, _: u64) -> bool {
        true
    }

    fn hold(&mut self) {
        self.log.lock().unwrap().push("hold".into());
    }

    fn end(&mut self, end: BodyEnd<'_>) {
        self.log.lock().unwrap().push(match end {
            BodyEnd::Clean => "clean".to_string(),
            BodyEnd::Refused(e) => format!("refused: {}", e.message()),
        });
    }
}

/// A decoder over `data`, and the log of its source.
fn body(
    encoding: Encoding,
    data: Vec<u8>,
    piece: usize,
    fail_at: Option<usize>,
) -> (DecodedBody, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        data,
        pos: 0,
        piece,
        fail_at,
        log: log.clone(),
    };
    (DecodedBody::new(Box::new(fake), encoding), log)
}

/// Reads `body` to its end or first error in reads of `chunk` bytes.
fn read_all(body: &mut DecodedBody, chunk: usize) -> (Vec<u8>, io::Result<()>) {
    let mut out = Vec::new();
    let mut buf = vec![0; chunk];
    loop {
        match body.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(e)),
        }
    }
}

/// The nethttp error inside a body read error, and the io kind.
fn inner(e: &io::Error) -> (&Error, io::ErrorKind) {
    let inner = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .unwrap_or_else(|| panic!("no nethttp::Error inside {e:?}"));
    (inner, e.kind())
}

fn name(encoding: Encoding) -> &'static str {
    super::encoding_name(encoding)
}

/// Text-like bytes with repeats at all distances and some noise: every
/// kind of block and match the encoders make.
fn sample(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut line = 0u64;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % 5 == 0 {
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            out.extend_from_slice(format!("line {line}: value {} ok\n", x % 1000).as_bytes());
        }
        line += 1;
    }
    out.truncate(len);
    out
}

fn encode(encoding: Encoding, data: &[u8]) -> Vec<u8> {
    match encoding {
        #[cfg(feature = "gzip")]
        Encoding::Gzip => {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        #[cfg(feature = "deflate")]
        Encoding::Deflate => zlib(data),
        #[cfg(feature = "brotli")]
        Encoding::Brotli => {
            use std::io::Write;
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        #[cfg(feature = "zstd")]
        Encoding::Zstd => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
    }
}

#[cfg(feature = "deflate")]
fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[cfg(feature = "deflate")]
fn raw_deflate(data: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn decodes_byte_exact_whatever_the_pieces_and_reads() {
    for &encoding in Encoding::ENABLED {
        let big = sample(300_000);
        let small = sample(5_000);
        for (plain, piece, chunk) in [
            (&big, 1 << 20, 8192),
            (&big, 4096, 100_000),
            (&big, 7, 13),
            (&small, 1, 1),
            (&small, 2, 4096),
            (&small, 3, 7),
        ] {
            let (mut b, log) = body(encoding, encode(encoding, plain), piece, None);
            let (out, end) = read_all(&mut b, chunk);
            end.unwrap_or_else(|e| panic!("{encoding:?} piece {piece} chunk {chunk}: {e}"));
            assert!(out == *plain, "{encoding:?} piece {piece} chunk {chunk}");
            // The clean end was told once, after the last byte.
            assert_eq!(*log.lock().unwrap(), ["clean"], "{encoding:?}");
            assert_eq!(b.read(&mut [0; 16]).unwrap(), 0, "Ok(0) again");
            assert_eq!(*log.lock().unwrap(), ["clean"], "{encoding:?}: once");
        }
    }
}

#[test]
fn an_empty_body_is_an_empty_body() {
    for &encoding in Encoding::ENABLED {
        let (mut b, log) = body(encoding, Vec::new(), 4096, None);
        let (out, end) = read_all(&mut b, 64);
        end.unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
        assert!(out.is_empty());
        assert_eq!(*log.lock().unwrap(), ["clean"], "{encoding:?}");
    }
}

#[test]
fn an_empty_stream_decodes_to_nothing() {
    for &encoding in Encoding::ENABLED {
        let (mut b, log) = body(encoding, encode(encoding, b""), 4096, None);
        let (out, end) = read_all(&mut b, 64);
        end.unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
        assert!(out.is_empty());
        assert_eq!(*log.lock().unwrap(), ["clean"], "{encoding:?}");
    }
}

/// Checks a refused body: the error's kinds and message, the connection
/// refused once, and the error sticky.
#[track_caller]
fn assert_refused(
    encoding: Encoding,
    b: &mut DecodedBody,
    log: &Mutex<Vec<String>>,
    err: io::Error,
    io_kind: io::ErrorKind,
    message: &str,
) {
    let (e, kind) = inner(&err);
    assert_eq!(
        (e.kind(), kind),
        (ErrorKind::BodyRead, io_kind),
        "{encoding:?}: {e}"
    );
    assert_eq!(e.message(), message, "{encoding:?}");
    assert_eq!(
        *log.lock().unwrap(),
        [format!("refused: {message}")],
        "{encoding:?}"
    );
    for _ in 0..3 {
        let again = b.read(&mut [0; 64]).unwrap_err();
        let (e, kind) = inner(&again);
        assert_eq!(
            (e.kind(), kind, e.message()),
            (ErrorKind::BodyRead, io_kind, message)
        );
    }
    assert_eq!(log.lock().unwrap().len(), 1, "{encoding:?}: refused once");
}

#[test]
fn a_stream_cut_short_is_unexpected_eof_and_refused() {
    let plain = sample(50_000);
    for &encoding in Encoding::ENABLED {
        let full = encode(encoding, &plain);
        for cut in [1, full.len() / 2, full.len() - 1] {
            let (mut b, log) = body(encoding, full[..cut].to_vec(), 1000, None);
            let (out, end) = read_all(&mut b, 4096);
            assert!(
                plain.starts_with(&out),
                "{encoding:?}: a prefix of the body"
            );
            let message = format!("{} body cut short", name(encoding));
            let err = end.expect_err("cut short");
            assert_refused(
                encoding,
                &mut b,
                &log,
                err,
                io::ErrorKind::UnexpectedEof,
                &message,
            );
        }
    }
}

#[test]
fn data_after_the_stream_is_a_corrupt_body() {
    let plain = sample(20_000);
    for &encoding in Encoding::ENABLED {
        for trailer in [&b"x"[..], b"garbage after the stream", &[0; 64]] {
            let mut data = encode(encoding, &plain);
            data.extend_from_slice(trailer);
            let (mut b, log) = body(encoding, data, 4096, None);
            let (out, end) = read_all(&mut b, 4096);
            let err = end.expect_err("trailing data");
            // Bytes after a gzip member start another (multi-member, as
            // Go's reader), bytes after a zstd frame another frame: fewer
            // than a gzip member header's ten, or a zstd magic number's
            // four, are that member or frame cut short.
            let cut = match name(encoding) {
                "gzip" => trailer.len() < 10,
                "zstd" => trailer.len() < 4,
                _ => false,
            };
            let (io_kind, message) = if cut {
                (
                    io::ErrorKind::UnexpectedEof,
                    format!("{} body cut short", name(encoding)),
                )
            } else {
                (
                    io::ErrorKind::InvalidData,
                    format!("corrupt {} body", name(encoding)),
                )
            };
            assert_refused(encoding, &mut b, &log, err, io_kind, &message);
            // Bytes past the stream are no excuse to lose the stream's own.
            assert!(plain.starts_with(&out), "{encoding:?}");
        }
    }
}

#[test]
fn a_corrupt_stream_is_invalid_data_and_refused() {
    let plain = sample(50_000);
    for &encoding in Encoding::ENABLED {
        let mut data = encode(encoding, &plain);
        // Every other byte of a stretch in the middle flipped: each of
        // these decoders fails on it (gzip, zlib and zstd would also
        // catch a subtler change by their checksums; raw deflate and
        // brotli have none).
        let mid = data.len() / 2;
        for b in &mut data[mid..mid + 64].iter_mut().step_by(2) {
            *b ^= 0xa5;
        }
        let (mut b, log) = body(encoding, data, 4096, None);
        let err = read_all(&mut b, 4096).1.expect_err("corrupt");
        let message = format!("corrupt {} body", name(encoding));
        assert_refused(
            encoding,
            &mut b,
            &log,
            err,
            io::ErrorKind::InvalidData,
            &message,
        );
    }
}

#[test]
fn the_connections_own_error_comes_through_as_it_is() {
    let plain = sample(50_000);
    for &encoding in Encoding::ENABLED {
        let data = encode(encoding, &plain);
        let (mut b, log) = body(encoding, data.clone(), 1000, Some(data.len() / 2));
        let err = read_all(&mut b, 4096).1.expect_err("source error");
        let (e, kind) = inner(&err);
        assert_eq!(
            (e.kind(), kind, e.message()),
            (
                ErrorKind::BodyRead,
                io::ErrorKind::UnexpectedEof,
                "unexpected EOF reading body: fake"
            ),
            "{encoding:?}"
        );
        // The source closed its connection itself; nothing refused here.
        assert!(log.lock().unwrap().is_empty(), "{encoding:?}");
        let again = b.read(&mut [0; 8]).unwrap_err();
        assert_eq!(
            inner(&again).0.message(),
            "unexpected EOF reading body: fake"
        );
    }
}

#[cfg(feature = "deflate")]
mod deflate {
    use std::io::Write;

    use super::*;
    use crate::body::decode::inflate::is_zlib_header;

    #[test]
    fn zlib_headers_are_told_from_raw_deflate() {
        let plain = sample(10_000);
        for level in 0..=9 {
            let mut e =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
            e.write_all(&plain).unwrap();
            let z = e.finish().unwrap();
            assert!(is_zlib_header(&z), "zlib level {level}: {:02x?}", &z[..2]);
            let raw = raw_deflate(&plain, level);
            assert!(
                !is_zlib_header(&raw),
                "raw level {level}: {:02x?}",
                &raw[..2]
            );
        }
        // The common zlib headers (32 KiB window, each FLEVEL).
        for head in [[0x78, 0x01], [0x78, 0x5e], [0x78, 0x9c], [0x78, 0xda]] {
            assert!(is_zlib_header(&head), "{head:02x?}");
        }
        // Smaller windows are zlib too: CINFO 0 to 7.
        assert!(is_zlib_header(&[0x08, 0x1d]));
        assert!(is_zlib_header(&[0x58, 0x09]));
        // CINFO 8 (a 64 KiB window) is not, check bits right or not.
        assert!(!is_zlib_header(&[0x88, 0x98]));
        assert_eq!((0x88u16 << 8 | 0x98) % 31, 0);
        // Not method 8.
        assert!(!is_zlib_header(&[0x77, 0x01]));
        // The check bits wrong.
        assert!(!is_zlib_header(&[0x78, 0x9d]));
        assert!(!is_zlib_header(&[0x78]));
        assert!(!is_zlib_header(&[]));
    }

    #[test]
    fn zlib_and_raw_deflate_both_decode() {
        let plain = sample(100_000);
        for (what, data) in [("zlib", zlib(&plain)), ("raw", raw_deflate(&plain, 6))] {
            for piece in [1, 2, 3, 4096] {
                let (mut b, log) = body(Encoding::Deflate, data.clone(), piece, None);
                let (out, end) = read_all(&mut b, 8192);
                end.unwrap_or_else(|e| panic!("{what} piece {piece}: {e}"));
                assert!(out == plain, "{what} piece {piece}");
                assert_eq!(*log.lock().unwrap(), ["clean"]);
            }
        }
    }

    #[test]
    fn a_zlib_checksum_mismatch_is_corrupt() {
        let plain = sample(10_000);
        let mut data = zlib(&plain);
        let last = data.len() - 1;
        data[last] ^= 1; // Adler-32's last byte
        let (mut b, log) = body(Encoding::Deflate, data, 4096, None);
        let err = read_all(&mut b, 4096).1.expect_err("adler");
        assert_refused(
            Encoding::Deflate,
            &mut b,
            &log,
            err,
            io::ErrorKind::InvalidData,
            "corrupt deflate body",
        );
    }

    #[test]
    fn an_invalid_block_type_is_corrupt() {
        // BFINAL 1, BTYPE 11 (reserved): raw deflate, since 0x07 is no zlib
        // method.
        let (mut b, log) = body(Encoding::Deflate, vec![0x07, 0x00, 0x00], 4096, None);
        let err = read_all(&mut b, 64).1.expect_err("invalid block type");
        assert_refused(
            Encoding::Deflate,
            &mut b,
            &log,
            err,
            io::ErrorKind::InvalidData,
            "corrupt deflate body",
        );
    }

    #[test]
    fn a_one_byte_body_is_cut_short() {
        let (mut b, log) = body(Encoding::Deflate, vec![0x78], 4096, None);
        let err = read_all(&mut b, 64).1.expect_err("one byte");
        assert_refused(
            Encoding::Deflate,
            &mut b,
            &log,
            err,
            io::ErrorKind::UnexpectedEof,
            "deflate body cut short",
        );
    }
}

#[cfg(feature = "brotli")]
mod br {
    use super::*;

    #[test]
    fn a_large_window_stream_is_refused() {
        // RFC 7932 brotli has windows of at most 16 MiB; the large-window
        // extension (up to 1 GiB) is not the br content coding.
        let plain = sample(10_000);
        let params = brotli::enc::BrotliEncoderParams {
            large_window: true,
            lgwin: 26,
            ..Default::default()
        };
        let mut data = Vec::new();
        brotli::BrotliCompress(&mut &plain[..], &mut data, &params).unwrap();
        let (mut b, log) = body(Encoding::Brotli, data, 4096, None);
        let err = read_all(&mut b, 4096).1.expect_err("large window");
        assert_refused(
            Encoding::Brotli,
            &mut b,
            &log,
            err,
            io::ErrorKind::InvalidData,
            "corrupt brotli body",
        );
    }
}

#[cfg(feature = "zstd")]
mod zstd {
    use super::*;
    use crate::body::decode::zstd::{MAX_WINDOW, window_size};

    /// A frame of one raw block holding `content`, with `descriptor` and the
    /// header fields after it.
    fn raw_frame(descriptor: u8, fields: &[u8], content: &[u8]) -> Vec<u8> {
        let mut f = 0xFD2F_B528u32.to_le_bytes().to_vec();
        f.push(descriptor);
        f.extend_from_slice(fields);
        let block = (content.len() as u32) << 3 | 1; // raw, last block
        f.extend_from_slice(&block.to_le_bytes()[..3]);
        f.extend_from_slice(content);
        f
    }

    /// A frame with a window descriptor and no content size or checksum.
    fn windowed(window_descriptor: u8, content: &[u8]) -> Vec<u8> {
        raw_frame(0x00, &[window_descriptor], content)
    }

    fn decode(data: Vec<u8>) -> (Vec<u8>, io::Result<()>, Vec<String>) {
        let (mut b, log) = body(Encoding::Zstd, data, 4096, None);
        let (out, end) = read_all(&mut b, 4096);
        let log = log.lock().unwrap().clone();
        (out, end, log)
    }

    #[test]
    fn window_sizes_follow_rfc_8878() {
        assert_eq!(window_size(0x00, &[0x00]), 1 << 10);
        assert_eq!(window_size(0x00, &[0x68]), 8 << 20);
        assert_eq!(window_size(0x00, &[0x69]), (8 << 20) + (1 << 20));
        assert_eq!(window_size(0x00, &[0x77]), (16 << 20) + 7 * (2 << 20));
        // A single segment's window is its content size.
        assert_eq!(window_size(0x20, &[200]), 200);
        assert_eq!(window_size(0x60, &[0x00, 0x01]), 256 + 256);
        assert_eq!(window_size(0xa0, &[0, 0, 0x90, 0]), 9 << 20);
        assert_eq!(window_size(0xe0, &[1, 0, 0, 0, 0, 0, 0, 1]), (1 << 56) + 1);
        // After a one-byte dictionary ID.
        assert_eq!(window_size(0x21, &[7, 100]), 100);
    }

    #[test]
    fn frames_of_up_to_an_8_mib_window_decode_and_larger_are_refused() {
        let (out, end, log) = decode(windowed(0x68, b"abc"));
        end.unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(log, ["clean"]);
        assert_eq!(MAX_WINDOW, 8 << 20);

        for frame in [
            windowed(0x69, b"abc"),
            windowed(0x70, b"abc"),
            // A single segment of 9 MiB, its window its content size: the
            // header alone refuses it.
            raw_frame(0xa0, &[0, 0, 0x90, 0], b""),
        ] {
            let (out, end, log) = decode(frame);
            assert!(out.is_empty());
            let err = end.expect_err("window over 8 MiB");
            let (e, kind) = inner(&err);
            assert_eq!(
                (e.kind(), kind),
                (ErrorKind::BodyRead, io::ErrorKind::InvalidData)
            );
            assert!(format!("{e:?}").contains("RFC 9659"), "{e:?}");
            assert_eq!(log, ["refused: corrupt zstd body"]);
        }
    }

    #[test]
    fn every_frame_decodes_and_skippable_frames_are_skipped() {
        let a = sample(40_000);
        let b = sample(70_000);
        let mut data = encode(Encoding::Zstd, &a);
        // A skippable frame (magic 0x184D2A5x, size, bytes).
        data.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
        data.extend_from_slice(&5u32.to_le_bytes());
        data.extend_from_slice(b"skip!");
        data.extend_from_slice(&encode(Encoding::Zstd, &b));
        data.extend_from_slice(&raw_frame(0x20, &[3], b"end"));
        let (out, end, log) = decode(data);
        end.unwrap();
        assert!(out == [&a[..], &b[..], b"end"].concat());
        assert_eq!(log, ["clean"]);
    }

    #[test]
    fn a_checksum_mismatch_is_corrupt() {
        let plain = sample(10_000);
        let mut data = encode(Encoding::Zstd, &plain);
        // ruzstd's encoder writes a content checksum (its `hash` feature).
        let descriptor = data[4];
        assert_ne!(descriptor & 0x04, 0, "a checksum is present");
        let last = data.len() - 1;
        data[last] ^= 1;
        let (out, end, log) = decode(data);
        assert!(out == plain, "the bytes came, then the check failed");
        let err = end.expect_err("checksum");
        let (e, kind) = inner(&err);
        assert_eq!(
            (e.kind(), kind),
            (ErrorKind::BodyRead, io::ErrorKind::InvalidData)
        );
        assert!(format!("{e:?}").contains("checksum"), "{e:?}");
        assert_eq!(log, ["refused: corrupt zstd body"]);
    }

    #[test]
    fn a_frame_that_needs_a_dictionary_is_corrupt() {
        // Dictionary ID flag 1: a one-byte ID after the window descriptor.
        let (out, end, log) = decode(raw_frame(0x01, &[0x68, 9], b"abc"));
        assert!(out.is_empty());
        let err = end.expect_err("dictionary");
        assert_eq!(inner(&err).1, io::ErrorKind::InvalidData);
        assert_eq!(log, ["refused: corrupt zstd body"]);
    }

    #[test]
    fn a_partial_magic_number_is_cut_short() {
        let mut data = windowed(0x68, b"abc");
        data.extend_from_slice(&[0x28, 0xb5]);
        let (out, end, log) = decode(data);
        assert_eq!(out, b"abc");
        assert_eq!(
            inner(&end.expect_err("cut")).1,
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(log, ["refused: zstd body cut short"]);
    }
}
