//! Transparent decoding of every encoding this build has (features gzip,
//! deflate, brotli, zstd), over real sockets: API.md's "Around the
//! exchange" (decoded like gzip; Accept-Encoding lists what is enabled;
//! `deflate` is zlib, raw deflate accepted) and the gzip rules of
//! tests/gzip.rs, for each. The servers send what the encoders' own crates
//! make (flate2, brotli, ruzstd).
//!
//! Run: cargo test --features brotli,zstd,deflate --test encodings
// Built without any decoder, only the Accept-Encoding test has anything
// to check.
#![cfg_attr(
    not(any(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    )),
    allow(dead_code)
)]

mod support;

use std::{
    io::Read,
    sync::{Arc, Mutex},
    time::Duration,
};

use nethttp::{ErrorKind, Transport};
use support::*;

/// The `Accept-Encoding` this build must send: the enabled encodings, in
/// the order gzip, deflate, br, zstd.
fn enabled_encodings() -> Option<String> {
    let names: Vec<&str> = [
        ("gzip", cfg!(feature = "gzip")),
        ("deflate", cfg!(feature = "deflate")),
        ("br", cfg!(feature = "brotli")),
        ("zstd", cfg!(feature = "zstd")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// Text-like bytes with repeats at all distances and some noise, so the
/// encoders use every kind of block they have.
fn sample(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut rng = XorShift::new(0x5eed);
    let mut line = 0u64;
    while out.len() < len {
        let x = rng.next();
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

#[cfg(any(feature = "gzip", feature = "deflate"))]
use std::io::Write;

#[cfg(feature = "gzip")]
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `deflate` as RFC 9110 means it: the zlib format.
#[cfg(feature = "deflate")]
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What some servers send as `deflate`: raw deflate, no zlib wrapper.
#[cfg(feature = "deflate")]
fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[cfg(feature = "brotli")]
fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 5,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
    out
}

#[cfg(feature = "zstd")]
fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

type Heads = Arc<Mutex<Vec<String>>>;

/// Answers every request on a keep-alive connection with `body` under
/// `Content-Encoding: coding` (none when empty), framed by
/// `Content-Length` or chunked (pieces of at most 7,000 bytes); records
/// the request heads.
fn encoded_server(coding: &'static str, body: Vec<u8>, chunked: bool) -> (ScriptedServer, Heads) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h = heads.clone();
    let server = ScriptedServer::start(move |mut c| {
        let _ = c.stream.set_write_timeout(Some(Duration::from_secs(20)));
        while let Some(head) = c.read_head() {
            h.lock().unwrap().push(head);
            let mut out = b"HTTP/1.1 200 OK\r\n".to_vec();
            if !coding.is_empty() {
                out.extend_from_slice(format!("Content-Encoding: {coding}\r\n").as_bytes());
            }
            if chunked {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for piece in body.chunks(7000) {
                    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    out.extend_from_slice(piece);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            } else {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
            }
            c.write(out);
        }
    });
    (server, heads)
}

/// The `nethttp::Error` kind and the io kind of a body read error.
fn kinds(e: &std::io::Error) -> (ErrorKind, std::io::ErrorKind) {
    let inner = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<nethttp::Error>())
        .unwrap_or_else(|| panic!("no nethttp::Error inside {e:?}"));
    (inner.kind(), e.kind())
}

/// A large body (1.5 MB) decodes byte for byte over both framings, the
/// headers of the encoded bytes are gone, the connection is reused, and
/// every request asked for exactly the enabled encodings.
fn large_body_decodes_and_reuses(coding: &'static str, encode: fn(&[u8]) -> Vec<u8>) {
    let plain = sample(1_500_000);
    let encoded = encode(&plain);
    assert!(encoded.len() < plain.len(), "{coding} compressed nothing");
    let want = format!(
        "Accept-Encoding: {}\r\n",
        enabled_encodings().expect("a decoder is enabled")
    );
    for chunked in [false, true] {
        let (server, heads) = encoded_server(coding, encoded.clone(), chunked);
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        for _ in 0..3 {
            let resp = c.get(server.url("/")).send().unwrap();
            assert!(resp.headers().get("content-encoding").is_none());
            assert!(resp.headers().get("content-length").is_none());
            assert_eq!(resp.content_length(), None);
            let got = resp.bytes().unwrap();
            assert!(
                got == plain,
                "{coding} chunked={chunked}: {} bytes decoded, {} sent",
                got.len(),
                plain.len()
            );
        }
        assert_eq!(
            server.accepted(),
            1,
            "{coding} chunked={chunked}: connection not reused"
        );
        let heads = heads.lock().unwrap();
        assert_eq!(heads.len(), 3);
        for head in heads.iter() {
            assert!(head.contains(&want), "{head}");
            let lower = head.to_ascii_lowercase();
            assert_eq!(lower.matches("accept-encoding").count(), 1, "{head}");
        }
    }
}

/// A stream damaged in the middle fails the read with `BodyRead` /
/// `InvalidData`, again on every later read, and its connection closes:
/// the next request opens another.
fn corrupt_stream_fails_and_closes(coding: &'static str, encode: fn(&[u8]) -> Vec<u8>) {
    let plain = sample(200_000);
    let mut encoded = encode(&plain);
    let mid = encoded.len() / 2;
    for b in encoded[mid..mid + 64].iter_mut().step_by(2) {
        *b ^= 0xa5;
    }
    let (server, _) = encoded_server(coding, encoded, false);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let mut resp = c.get(server.url("/")).send().unwrap();
    let mut out = Vec::new();
    let err = resp.read_to_end(&mut out).unwrap_err();
    let want = (ErrorKind::BodyRead, std::io::ErrorKind::InvalidData);
    assert_eq!(kinds(&err), want, "{coding}: {err}");
    let name = if coding == "br" { "brotli" } else { coding };
    assert!(
        err.to_string().contains(&format!("corrupt {name} body")),
        "{err}"
    );
    for _ in 0..3 {
        let again = resp.read(&mut [0; 64]).unwrap_err();
        assert_eq!(
            kinds(&again),
            want,
            "{coding}: later reads fail the same way"
        );
    }
    // Closed at the error, before the body is dropped.
    wait_stats(&t, Duration::from_secs(5), |s| {
        s.conns == 0 && s.threads == 0
    });
    drop(resp);
    c.get(server.url("/")).send().unwrap().discard().ok();
    assert_eq!(
        server.accepted(),
        2,
        "{coding}: the failed connection was reused"
    );
}

/// 100 MB of zeros, compressed: a limit of 1 MiB delivers exactly 1 MiB,
/// then `BodyTooLarge` (sticky), and the connection closes.
fn limit_bounds_a_bomb(coding: &'static str, encode: fn(&[u8]) -> Vec<u8>) {
    const MAX: u64 = 1 << 20;
    let bomb = encode(&vec![0; 100 << 20]);
    assert!(bomb.len() < 1 << 20, "{coding}: {} bytes", bomb.len());
    let (server, _) = encoded_server(coding, bomb, false);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let mut resp = c.get(server.url("/")).send().unwrap().limit(MAX);
    let mut got = 0u64;
    let mut buf = vec![0; 64 * 1024];
    let err = loop {
        match resp.read(&mut buf) {
            Ok(0) => panic!("{coding}: read to the end past the limit ({got} bytes)"),
            Ok(n) => {
                assert!(buf[..n].iter().all(|&b| b == 0));
                got += n as u64;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(got, MAX, "{coding}: bytes delivered before the error");
    let want = (ErrorKind::BodyTooLarge, std::io::ErrorKind::InvalidData);
    assert_eq!(kinds(&err), want, "{coding}: {err}");
    assert_eq!(kinds(&resp.read(&mut buf).unwrap_err()), want, "sticky");
    wait_stats(&t, Duration::from_secs(5), |s| s.conns == 0);
    drop(resp);
    c.get(server.url("/")).send().unwrap().discard().ok();
    assert_eq!(
        server.accepted(),
        2,
        "{coding}: the connection past the limit was reused"
    );
}

/// `disable_compression(true)`: no `Accept-Encoding`, and the bytes come as
/// sent, headers and all.
fn disabled_compression_leaves_the_body_alone(coding: &'static str, encode: fn(&[u8]) -> Vec<u8>) {
    let encoded = encode(b"raw bytes, still encoded");
    let (server, heads) = encoded_server(coding, encoded.clone(), false);
    let t = Transport::builder().disable_compression(true).build();
    let _leaks = LeakCheck::new(&t);
    let resp = client(&t).get(server.url("/")).send().unwrap();
    assert_eq!(resp.headers()["content-encoding"], coding);
    assert_eq!(resp.content_length(), Some(encoded.len() as u64));
    assert_eq!(resp.bytes().unwrap(), encoded);
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(!head.contains("accept-encoding"), "{head}");
}

/// A caller who sets `Accept-Encoding` gets the encoded bytes: nothing is
/// decoded behind their back, and their header is the only one.
fn caller_set_accept_encoding_is_not_decoded(coding: &'static str, encode: fn(&[u8]) -> Vec<u8>) {
    let encoded = encode(b"raw bytes, still encoded");
    let (server, heads) = encoded_server(coding, encoded.clone(), false);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let resp = client(&t)
        .get(server.url("/"))
        .header("Accept-Encoding", coding)
        .send()
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], coding);
    assert_eq!(resp.content_length(), Some(encoded.len() as u64));
    assert_eq!(resp.bytes().unwrap(), encoded);
    // The caller's header as they set it (names go out in lower case).
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        head.contains(&format!("accept-encoding: {coding}\r\n")),
        "{head}"
    );
    assert_eq!(head.matches("accept-encoding").count(), 1, "{head}");
}

/// A body of zero bytes under the encoding is an empty body, and its
/// connection is reused.
fn empty_body_is_empty(coding: &'static str) {
    for chunked in [false, true] {
        let (server, _) = encoded_server(coding, Vec::new(), chunked);
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        for _ in 0..2 {
            let resp = c.get(server.url("/")).send().unwrap();
            assert_eq!(resp.bytes().unwrap(), b"".as_slice(), "{coding}");
        }
        assert_eq!(server.accepted(), 1, "{coding} chunked={chunked}: reused");
    }
}

/// The tests above for one encoding, behind its feature.
macro_rules! encoding_tests {
    ($feature:literal, $module:ident, $coding:literal, $encode:path) => {
        #[cfg(feature = $feature)]
        mod $module {
            use super::*;

            #[test]
            fn large_body_decodes_byte_exact_and_the_connection_is_reused() {
                large_body_decodes_and_reuses($coding, $encode);
            }

            #[test]
            fn a_corrupt_stream_fails_and_closes_the_connection() {
                corrupt_stream_fails_and_closes($coding, $encode);
            }

            #[test]
            fn the_limit_bounds_a_decompression_bomb() {
                limit_bounds_a_bomb($coding, $encode);
            }

            #[test]
            fn disabled_compression_leaves_the_body_alone() {
                super::disabled_compression_leaves_the_body_alone($coding, $encode);
            }

            #[test]
            fn a_caller_set_accept_encoding_is_not_decoded() {
                caller_set_accept_encoding_is_not_decoded($coding, $encode);
            }

            #[test]
            fn an_empty_body_is_an_empty_body() {
                empty_body_is_empty($coding);
            }
        }
    };
}

encoding_tests!("gzip", gzip_encoding, "gzip", gzip);
encoding_tests!("deflate", deflate_encoding, "deflate", zlib);
encoding_tests!("brotli", brotli_encoding, "br", brotli);
encoding_tests!("zstd", zstd_encoding, "zstd", zstd);

#[test]
fn accept_encoding_lists_exactly_the_enabled_encodings() {
    let (server, heads) = encoded_server("", b"plain".to_vec(), false);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let resp = client(&t).get(server.url("/")).send().unwrap();
    assert_eq!(resp.text().unwrap(), "plain");
    let head = heads.lock().unwrap()[0].clone();
    let sent: Vec<&str> = head
        .lines()
        .filter_map(|l| l.strip_prefix("Accept-Encoding: "))
        .collect();
    match enabled_encodings() {
        Some(want) => assert_eq!(sent, [want.as_str()], "{head}"),
        None => assert!(sent.is_empty(), "{head}"),
    }
    if cfg!(all(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    )) {
        assert_eq!(sent, ["gzip, deflate, br, zstd"]);
    }
}

/// `deflate` is zlib, and raw deflate is accepted too (as browsers and
/// curl do), over both framings, the connection reused.
#[cfg(feature = "deflate")]
#[test]
fn deflate_accepts_zlib_and_raw_deflate() {
    let plain = sample(1_200_000);
    for (what, encoded) in [("zlib", zlib(&plain)), ("raw", raw_deflate(&plain))] {
        for chunked in [false, true] {
            let (server, _) = encoded_server("deflate", encoded.clone(), chunked);
            let t = Transport::new();
            let _leaks = LeakCheck::new(&t);
            let c = client(&t);
            for _ in 0..2 {
                let resp = c.get(server.url("/")).send().unwrap();
                assert!(resp.headers().get("content-encoding").is_none());
                let got = resp.bytes().unwrap();
                assert!(
                    got == plain,
                    "{what} chunked={chunked}: {} bytes",
                    got.len()
                );
            }
            assert_eq!(server.accepted(), 1, "{what} chunked={chunked}: reused");
        }
    }
}

/// Bytes after the end of the encoded stream make it a corrupt body: the
/// decoded bytes come, then the error, and the connection closes.
#[cfg(any(feature = "deflate", feature = "brotli", feature = "zstd"))]
#[test]
fn data_after_the_stream_is_a_corrupt_body() {
    let plain = sample(100_000);
    let cases: Vec<(&'static str, Vec<u8>)> = vec![
        #[cfg(feature = "deflate")]
        ("deflate", zlib(&plain)),
        #[cfg(feature = "brotli")]
        ("br", brotli(&plain)),
        #[cfg(feature = "zstd")]
        ("zstd", zstd(&plain)),
    ];
    for (coding, mut encoded) in cases {
        encoded.extend_from_slice(b"trailing garbage");
        let (server, _) = encoded_server(coding, encoded, true);
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let mut resp = client(&t).get(server.url("/")).send().unwrap();
        let mut out = Vec::new();
        let err = resp.read_to_end(&mut out).unwrap_err();
        assert_eq!(
            kinds(&err),
            (ErrorKind::BodyRead, std::io::ErrorKind::InvalidData),
            "{coding}: {err}"
        );
        assert!(out == plain, "{coding}: the stream's own bytes came first");
        wait_stats(&t, Duration::from_secs(5), |s| s.conns == 0);
    }
}

/// Stacked encodings, two `Content-Encoding` fields, and unknown codings
/// are left as they came (Go decodes nothing but a lone gzip): headers
/// kept, bytes raw, and the connection reused as for any body.
#[cfg(feature = "gzip")]
#[test]
fn stacked_and_unknown_encodings_are_left_alone() {
    let encoded = gzip(b"twice?");
    for coding in [
        "gzip, br",
        "gzip, gzip",
        "compress",
        "identity",
        "gzip\r\nContent-Encoding: gzip",
    ] {
        let (server, _) = encoded_server(coding, encoded.clone(), false);
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        for _ in 0..2 {
            let resp = c.get(server.url("/")).send().unwrap();
            assert!(resp.headers().get("content-encoding").is_some(), "{coding}");
            assert_eq!(
                resp.content_length(),
                Some(encoded.len() as u64),
                "{coding}"
            );
            assert_eq!(resp.bytes().unwrap(), encoded, "{coding}");
        }
        assert_eq!(server.accepted(), 1, "{coding}: reused");
    }
}

/// RFC 9110 §8.4.1.3: a recipient treats `x-gzip` as gzip.
#[cfg(feature = "gzip")]
#[test]
fn x_gzip_is_gzip() {
    let (server, _) = encoded_server("x-gzip", gzip(b"hello, x-gzip"), false);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let resp = client(&t).get(server.url("/")).send().unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
    assert_eq!(resp.text().unwrap(), "hello, x-gzip");
}
