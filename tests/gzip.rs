//! Transparent gzip, as API.md's "Compression" rule and Go's gzipReader.

mod support;

use std::{
    io::{Read, Write},
    sync::{Arc, Mutex},
    time::Duration,
};

use flate2::{Compression, write::GzEncoder};
use nethttp::{ErrorKind, Transport};
use support::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Serves every request with `body` gzipped (Content-Length or chunked),
/// recording the request heads.
fn gzip_server(plain: &'static [u8], chunked: bool) -> (ScriptedServer, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h = heads.clone();
    let server = ScriptedServer::start(move |mut c| {
        while let Some(head) = c.read_head() {
            h.lock().unwrap().push(head);
            let z = gzip(plain);
            if chunked {
                let (a, b) = z.split_at(z.len() / 2);
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                    a.len()
                ));
                c.write(a);
                c.write(format!("\r\n{:x}\r\n", b.len()));
                c.write(b);
                c.write("\r\n0\r\n\r\n");
            } else {
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                    z.len()
                ));
                c.write(&z);
            }
        }
    });
    (server, heads)
}

#[test]
fn decoded_transparently_and_connection_reused() {
    for chunked in [false, true] {
        let (server, heads) = gzip_server(b"hello, gzip world", chunked);
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        for _ in 0..3 {
            let resp = c.get(server.url("/")).send().unwrap();
            assert!(resp.headers().get("content-encoding").is_none());
            assert!(resp.headers().get("content-length").is_none());
            assert_eq!(resp.content_length(), None);
            assert_eq!(resp.text().unwrap(), "hello, gzip world");
        }
        assert_eq!(
            server.accepted(),
            1,
            "chunked={chunked}: connection not reused"
        );
        let heads = heads.lock().unwrap();
        assert!(
            heads
                .iter()
                .all(|h| h.contains(&format!("Accept-Encoding: {}\r\n", accept_encoding())))
        );
    }
}

#[test]
fn disabled_compression_leaves_body_alone() {
    let (server, heads) = gzip_server(b"raw", false);
    let t = Transport::builder().disable_compression(true).build();
    let _leaks = LeakCheck::new(&t);
    let resp = client(&t).get(server.url("/")).send().unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(resp.bytes().unwrap(), gzip(b"raw"));
    assert!(
        !heads.lock().unwrap()[0]
            .to_ascii_lowercase()
            .contains("accept-encoding")
    );
}

#[test]
fn caller_set_accept_encoding_is_not_decoded() {
    let (server, heads) = gzip_server(b"raw", false);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let resp = client(&t)
        .get(server.url("/"))
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(resp.content_length(), Some(gzip(b"raw").len() as u64));
    assert_eq!(resp.bytes().unwrap(), gzip(b"raw"));
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert_eq!(head.matches("accept-encoding").count(), 1, "{head}");
}

#[test]
fn head_and_range_do_not_ask_for_gzip() {
    let server = ScriptedServer::start(|mut c| {
        while let Some(head) = c.read_head() {
            let asked = head.contains("Accept-Encoding");
            c.write(format!(
                "HTTP/1.1 200 OK\r\nX-Asked: {asked}\r\nContent-Length: 0\r\n\r\n"
            ));
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let asked = |r: nethttp::Response| r.headers()["x-asked"].to_str().unwrap().to_string();
    assert_eq!(asked(c.head(server.url("/")).send().unwrap()), "false");
    assert_eq!(
        asked(
            c.get(server.url("/"))
                .header("Range", "bytes=0-1")
                .send()
                .unwrap()
        ),
        "false"
    );
    assert_eq!(asked(c.get(server.url("/")).send().unwrap()), "true");
}

#[test]
fn corrupt_gzip_is_a_body_read_error_and_closes() {
    let server = ScriptedServer::start(|mut c| {
        if c.read_head().is_some() {
            let mut z = gzip(b"some text that will be corrupted in the middle");
            let mid = z.len() / 2;
            z[mid] ^= 0xff;
            z[mid + 1] ^= 0xff;
            c.write(format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                z.len()
            ));
            c.write(&z);
            let _ = c.read_head();
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let mut resp = client(&t).get(server.url("/")).send().unwrap();
    let mut out = Vec::new();
    let err = resp.read_to_end(&mut out).unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<nethttp::Error>())
        .unwrap();
    assert_eq!(inner.kind(), ErrorKind::BodyRead, "{inner}");
    drop(resp);
    wait_stats(&t, Duration::from_secs(5), |s| {
        s.conns == 0 && s.threads == 0
    });
}

/// Answers each request with `Content-Encoding: gzip` and `body` framed by
/// `Content-Length` (or chunked when `chunked`), keeping the connection.
fn raw_gzip_server(body: Vec<u8>, chunked: bool) -> ScriptedServer {
    ScriptedServer::start(move |mut c| {
        while c.read_head().is_some() {
            if chunked {
                let mut out =
                    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                        .to_vec();
                if !body.is_empty() {
                    out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                    out.extend_from_slice(&body);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                c.write(out);
            } else {
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                ));
                c.write(&body);
            }
        }
    })
}

/// The `nethttp::Error` kind and the io kind of a body read error.
fn kinds(e: &std::io::Error) -> (ErrorKind, std::io::ErrorKind) {
    let inner = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<nethttp::Error>())
        .unwrap_or_else(|| panic!("no nethttp::Error inside {e:?}"));
    (inner.kind(), e.kind())
}

#[test]
fn a_gzip_error_is_sticky() {
    let mut z = gzip(&[b'q'; 4000]);
    let mid = z.len() / 2;
    z[mid] ^= 0xff;
    z[mid + 1] ^= 0xff;
    let server = raw_gzip_server(z, false);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let mut resp = client(&t).get(server.url("/")).send().unwrap();
    let mut out = Vec::new();
    let first = resp.read_to_end(&mut out).unwrap_err();
    let want = (ErrorKind::BodyRead, std::io::ErrorKind::InvalidData);
    assert_eq!(kinds(&first), want, "{first}");
    for _ in 0..3 {
        let again = resp.read(&mut [0; 64]).unwrap_err();
        assert_eq!(kinds(&again), want, "later reads fail the same way");
    }
}

#[test]
fn an_empty_gzip_body_is_an_empty_body() {
    for chunked in [true, false] {
        let server = raw_gzip_server(Vec::new(), chunked);
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        for _ in 0..2 {
            let resp = c.get(server.url("/")).send().unwrap();
            assert_eq!(resp.text().unwrap(), "", "chunked={chunked}");
        }
        assert_eq!(server.accepted(), 1, "chunked={chunked}: reused");
    }
}

#[test]
fn a_gzip_stream_cut_short_is_unexpected_eof() {
    let z = gzip(&[b'r'; 4000]);
    let server = raw_gzip_server(z[..z.len() / 2].to_vec(), true);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let mut resp = client(&t).get(server.url("/")).send().unwrap();
    let err = resp.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(
        kinds(&err),
        (ErrorKind::BodyRead, std::io::ErrorKind::UnexpectedEof),
        "{err}"
    );
}
