//! The error convention (Rust API guidelines, C-GOOD-ERR): `Display` says
//! what failed in our words; the underlying cause is `source()`, never
//! repeated in `Display`, so `anyhow`-style reports print each cause once.

mod support;
use support::*;

use std::{error::Error as _, io::Read};

use nethttp::{Client, ErrorKind, Transport};

/// Asserts that no error in `err`'s chain repeats its source's text, and
/// returns the chain's length.
#[track_caller]
fn assert_causes_not_repeated(err: &(dyn std::error::Error + 'static)) -> usize {
    let mut len = 1;
    let mut cur = err;
    while let Some(src) = cur.source() {
        let (outer, inner) = (cur.to_string(), src.to_string());
        assert!(
            !outer.contains(&inner),
            "Display repeats its source:\n  outer: {outer}\n  inner: {inner}"
        );
        cur = src;
        len += 1;
    }
    len
}

#[test]
fn a_connect_error_keeps_the_os_error_as_its_source() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let err = Client::new().get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the io::Error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(assert_causes_not_repeated(&err), 2);
}

#[test]
fn body_read_errors_keep_one_text_per_cause() {
    // Promises 10 bytes, sends 3, closes.
    let server = ScriptedServer::start(|mut c| {
        if c.read_request().is_some() {
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let mut resp = client(&t).get(server.url("/")).send().unwrap();
    let mut body = Vec::new();
    let io = resp.read_to_end(&mut body).unwrap_err();
    assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_causes_not_repeated(&io);
    drop(resp);
    let err = client(&t).get(server.url("/")).send().unwrap();
    let err = err.bytes().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyRead);
    assert_causes_not_repeated(&err);
}

#[test]
fn an_invalid_url_keeps_the_parse_error_as_its_source() {
    let err = Client::new().get("http://[::1/").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    assert!(err.source().is_some(), "{err:?}");
    assert_eq!(assert_causes_not_repeated(&err), 2);
}
