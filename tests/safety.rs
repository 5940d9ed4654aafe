//! API.md's "Safety rules": passwords never leave in text, callbacks that
//! panic leak nothing, body size limits, the thread stack floor.

mod support;
use support::*;

use std::time::Duration;

use nethttp::{Client, ErrorKind, Redirect, RedirectAction, RedirectPolicy, Request, Transport};

/// Asserts that `text` shows the user but never the password.
#[track_caller]
fn assert_redacted(what: &str, text: &str) {
    assert!(
        !text.contains("s3cret"),
        "{what} leaks the password: {text}"
    );
    assert!(text.contains("ann:***@"), "{what} hides the URL: {text}");
}

#[test]
fn passwords_never_show_in_errors_requests_or_responses() {
    // A port nothing listens on: a connect error that names the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://ann:s3cret@127.0.0.1:{port}/x");
    let err = Client::new().get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_redacted("Error's Display", &err.to_string());
    assert_redacted("Error's Debug", &format!("{err:?}"));
    // The URL itself is given back as it was.
    assert_eq!(err.url().map(|u| u.password()), Some(Some("s3cret")));

    let req = Request::builder(nethttp::http::Method::GET, &url)
        .build()
        .unwrap();
    assert_redacted("Request's Debug", &format!("{req:?}"));

    let server = ok_server("hi");
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let url = format!("http://ann:s3cret@{}/y", server.addr);
    let resp = client(&t).get(&url).send().unwrap();
    assert_redacted("Response's Debug", &format!("{resp:?}"));
    resp.discard().unwrap();

    // A URL that does not parse is quoted without its password.
    let err = Client::new()
        .get("http://ann:s3cret@[::1/")
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
}

#[test]
fn passwords_never_show_in_redirects() {
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            if head.starts_with("GET /from ") {
                c.write("HTTP/1.1 302 Found\r\nLocation: /to\r\nContent-Length: 0\r\n\r\n");
            } else {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        }
    });
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let s = seen.clone();
    let policy = RedirectPolicy::custom(move |r: &Redirect| {
        *s.lock().unwrap() = format!("{r:?}");
        RedirectAction::Error(format!("stop at {}", r.status()))
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder()
        .transport(t.clone())
        .redirect(policy)
        .build()
        .unwrap();
    let url = format!("http://ann:s3cret@{}/from", server.addr);
    let err = c.get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_redacted("Redirect's Debug", &seen.lock().unwrap());
    assert_redacted("redirect error", &err.to_string());
}

/// Serves `/len/N` (N bytes, Content-Length), `/chunked/N` (N bytes in
/// chunks of 7) and `/bomb` (10 MiB of zeros, gzipped) on a keep-alive
/// connection.
fn sized_server() -> ScriptedServer {
    use std::io::Write;
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0; 10 << 20]).unwrap();
        enc.finish().unwrap()
    };
    ScriptedServer::start(move |mut c| {
        while let Some((head, _)) = c.read_request() {
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["len", n] => {
                    let n: usize = n.parse().unwrap();
                    c.write(format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n"));
                    c.write(vec![b'x'; n]);
                }
                ["chunked", n] => {
                    let n: usize = n.parse().unwrap();
                    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    for start in (0..n).step_by(7) {
                        let k = (n - start).min(7);
                        out.extend_from_slice(format!("{k:x}\r\n{}\r\n", "y".repeat(k)).as_bytes());
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                    c.write(out);
                }
                _ => {
                    c.write(format!(
                        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                        bomb.len()
                    ));
                    c.write(&bomb);
                }
            }
        }
    })
}

/// Reads `resp` to its end; the error must be `BodyTooLarge` (io kind
/// `InvalidData`) after exactly `max` bytes, and stay so.
#[track_caller]
fn assert_too_large(mut resp: nethttp::Response, max: u64) {
    use std::io::Read;
    let mut got = 0u64;
    let mut buf = [0; 4096];
    let err = loop {
        match resp.read(&mut buf) {
            Ok(0) => panic!("read to the end past the limit ({got} bytes)"),
            Ok(n) => got += n as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(got, max, "bytes delivered before the error");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<nethttp::Error>())
        .unwrap();
    assert_eq!(inner.kind(), ErrorKind::BodyTooLarge, "{inner}");
    let again = resp.read(&mut buf).unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::InvalidData, "sticky");
}

#[test]
fn a_body_limit_fails_the_read_past_it_and_closes_the_connection() {
    let server = sized_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    for (path, max) in [("/len/11", 10), ("/chunked/100", 50), ("/bomb", 1 << 20)] {
        let before = server.accepted();
        let resp = c.get(server.url(path)).send().unwrap().limit(max);
        assert_too_large(resp, max);
        wait_stats(&t, Duration::from_secs(5), |s| s.conns == 0);
        // The connection that exceeded the limit was not reused: the
        // next request made a second one.
        c.get(server.url("/len/1")).send().unwrap().bytes().unwrap();
        assert_eq!(server.accepted(), before + 2, "{path}");
        t.close_idle_connections();
    }
}

#[test]
fn a_body_within_its_limit_reads_and_reuses_as_usual() {
    use std::io::Read;
    let server = sized_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    // Exactly at the limit, whatever the framing.
    let body = c
        .get(server.url("/chunked/50"))
        .send()
        .unwrap()
        .limit(50)
        .bytes();
    assert_eq!(body.unwrap().len(), 50);
    let body = c
        .get(server.url("/len/10"))
        .send()
        .unwrap()
        .limit(10)
        .bytes();
    assert_eq!(body.unwrap().len(), 10);
    // Content-Length within the limit: the connection is back as soon as
    // its last byte is read, without waiting for Ok(0).
    let mut resp = c.get(server.url("/len/10")).send().unwrap().limit(100);
    let mut ten = [0; 10];
    resp.read_exact(&mut ten).unwrap();
    assert_eq!(t.stats().idle, 1, "{:?}", t.stats());
    drop(resp);
    assert_eq!(server.accepted(), 1);
}
