use std::io;

use http::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, USER_AGENT};

use super::*;
use crate::h1::testing::{Failing, Pieces, deliveries};

// ---- write_request_head ----

fn request(method: &Method, target: &str, headers: &HeaderMap, framing: RequestFraming) -> String {
    let head = RequestHead {
        method,
        target,
        host: "example.com:8080",
        headers,
        framing,
        close: false,
        accept_encoding: None,
    };
    let mut out = Vec::new();
    write_request_head(&head, &mut out);
    String::from_utf8(out).unwrap()
}

fn ua() -> String {
    format!("User-Agent: nethttp/{}\r\n", env!("CARGO_PKG_VERSION"))
}

#[test]
fn request_get() {
    let got = request(
        &Method::GET,
        "/a/b?c=d%20e",
        &HeaderMap::new(),
        RequestFraming::None,
    );
    let want = format!(
        "GET /a/b?c=d%20e HTTP/1.1\r\nHost: example.com:8080\r\n{}\r\n",
        ua()
    );
    assert_eq!(got, want);
}

#[test]
fn request_empty_target_is_slash() {
    let got = request(&Method::GET, "", &HeaderMap::new(), RequestFraming::None);
    assert!(got.starts_with("GET / HTTP/1.1\r\n"), "{got}");
}

#[test]
fn request_post_with_length_and_user_headers() {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT, HeaderValue::from_static("*/*"));
    h.append("x-multi", HeaderValue::from_static("1"));
    h.append("x-multi", HeaderValue::from_static("2"));
    let got = request(&Method::POST, "/upload", &h, RequestFraming::Length(5));
    let want = format!(
        "POST /upload HTTP/1.1\r\nHost: example.com:8080\r\n{}accept: */*\r\nx-multi: 1\r\nx-multi: 2\r\nContent-Length: 5\r\n\r\n",
        ua()
    );
    assert_eq!(got, want);
}

#[test]
fn request_chunked() {
    let got = request(
        &Method::PUT,
        "/x",
        &HeaderMap::new(),
        RequestFraming::Chunked,
    );
    let want = format!(
        "PUT /x HTTP/1.1\r\nHost: example.com:8080\r\n{}Transfer-Encoding: chunked\r\n\r\n",
        ua()
    );
    assert_eq!(got, want);
}

#[test]
fn request_user_framing_headers_are_skipped() {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("99"));
    h.insert(TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
    h.insert("x-a", HeaderValue::from_static("b"));
    let got = request(&Method::POST, "/", &h, RequestFraming::Length(0));
    let want = format!(
        "POST / HTTP/1.1\r\nHost: example.com:8080\r\n{}x-a: b\r\nContent-Length: 0\r\n\r\n",
        ua()
    );
    assert_eq!(got, want);
}

#[test]
fn request_user_host_and_user_agent_win_in_place() {
    let mut h = HeaderMap::new();
    h.insert("x-first", HeaderValue::from_static("1"));
    h.insert(USER_AGENT, HeaderValue::from_static("curl/8"));
    h.insert(HOST, HeaderValue::from_static("virtual.test"));
    let got = request(&Method::GET, "/", &h, RequestFraming::None);
    assert_eq!(
        got,
        "GET / HTTP/1.1\r\nHost: virtual.test\r\nUser-Agent: curl/8\r\nx-first: 1\r\n\r\n"
    );
}

#[test]
fn request_close_and_gzip() {
    let write = |headers: &HeaderMap, accept_gzip: bool| {
        let accept_encoding = accept_gzip.then_some("gzip");
        let head = RequestHead {
            method: &Method::DELETE,
            target: "/r",
            host: "h",
            headers,
            framing: RequestFraming::None,
            close: true,
            accept_encoding,
        };
        let mut out = Vec::new();
        write_request_head(&head, &mut out);
        String::from_utf8(out).unwrap()
    };
    let want = format!(
        "DELETE /r HTTP/1.1\r\nHost: h\r\n{}Connection: close\r\nAccept-Encoding: gzip\r\n\r\n",
        ua()
    );
    assert_eq!(write(&HeaderMap::new(), true), want);

    // The user already says close: no second Connection line.
    let mut h = HeaderMap::new();
    h.insert(CONNECTION, HeaderValue::from_static("Close"));
    let want = format!(
        "DELETE /r HTTP/1.1\r\nHost: h\r\n{}connection: Close\r\n\r\n",
        ua()
    );
    assert_eq!(write(&h, false), want);
}

#[test]
fn request_appends_to_out() {
    let mut out = b"earlier".to_vec();
    let h = HeaderMap::new();
    let head = RequestHead {
        method: &Method::HEAD,
        target: "*",
        host: "h",
        headers: &h,
        framing: RequestFraming::None,
        close: false,
        accept_encoding: None,
    };
    write_request_head(&head, &mut out);
    assert!(out.starts_with(b"earlierHEAD * HTTP/1.1\r\nHost: h\r\n"));
    assert!(out.ends_with(b"\r\n\r\n"));
}

// ---- read_response_head ----

/// A head as the tests compare it; errors as text.
fn describe(r: &Result<ResponseHead, HeadError>) -> String {
    match r {
        Ok(h) => {
            let fields: Vec<String> = h
                .headers
                .iter()
                .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            format!(
                "{:?} {} [{}]",
                h.version,
                h.status.as_u16(),
                fields.join(", ")
            )
        }
        Err(HeadError::Malformed(m)) => format!("Malformed: {m}"),
        Err(HeadError::Io(e)) => format!("Io: {:?}", e.kind()),
        Err(e) => format!("{e:?}"),
    }
}

const MAX: usize = 1024;

// One case per line, like httparse's tables:
// (name, input, expected description, bytes left in the source on success).
// An empty description only asks for success (the long inputs).
#[rustfmt::skip]
fn head_cases() -> Vec<(&'static str, Vec<u8>, &'static str, &'static [u8])> {
    let b = |s: &str| s.as_bytes().to_vec();
    let many: String = (0..100).map(|i| format!("h{i}:{i}\r\n")).collect();
    let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n").into_bytes();
    let long = |a_count: usize, tail: &str| [b("HTTP/1.1 200 OK\r\nA: "), vec![b'a'; a_count], b(tail)].concat();
    vec![
        ("simple", b("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: t\r\n\r\nhello"), "HTTP/1.1 200 [content-length=5, server=t]", b"hello"),
        ("no headers", b("HTTP/1.1 204 No Content\r\n\r\n"), "HTTP/1.1 204 []", b""),
        ("1xx leaves the next head", b("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), "HTTP/1.1 100 []", b"HTTP/1.1 200 OK\r\n\r\n"),
        ("http/1.0", b("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"), "HTTP/1.0 200 [connection=keep-alive]", b""),
        ("no reason phrase", b("HTTP/1.1 200\r\n\r\n"), "HTTP/1.1 200 []", b""),
        ("empty reason phrase", b("HTTP/1.1 404 \r\n\r\n"), "HTTP/1.1 404 []", b""),
        ("reason with spaces", b("HTTP/1.1 404 Not  Found here\r\n\r\n"), "HTTP/1.1 404 []", b""),
        ("obs-text reason", b("HTTP/1.1 200 \u{c9}t\u{e9}\r\n\r\n"), "HTTP/1.1 200 []", b""),
        ("bare LF", b("HTTP/1.1 200 OK\nA: b\n\nbody"), "HTTP/1.1 200 [a=b]", b"body"),
        ("leading empty lines", b("\r\n\nHTTP/1.1 200 OK\r\n\r\n"), "HTTP/1.1 200 []", b""),
        ("value whitespace trimmed", b("HTTP/1.1 200 OK\r\nA: \t b c \t\r\nE:\r\n\r\n"), "HTTP/1.1 200 [a=b c, e=]", b""),
        ("repeated fields", b("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX: y\r\nset-cookie: b=2\r\n\r\n"), "HTTP/1.1 200 [set-cookie=a=1, set-cookie=b=2, x=y]", b""),
        ("obs-fold joined with one space", b("HTTP/1.1 200 OK\r\nA: b\r\n  c\r\n\td\r\nE: f\r\n\r\n"), "HTTP/1.1 200 [a=b c d, e=f]", b""),
        ("obs-fold after trailing space", b("HTTP/1.1 200 OK\r\nA: b \t\r\n \t c\nE: f\r\n\r\n"), "HTTP/1.1 200 [a=b c, e=f]", b""),
        ("obs-fold of an empty value", b("HTTP/1.1 200 OK\r\nA:\r\n c\r\n\r\n"), "HTTP/1.1 200 [a=c]", b""),
        ("obs-text value", b("HTTP/1.1 200 OK\r\nA: caf\u{e9}\r\n\r\n"), "HTTP/1.1 200 [a=caf\u{e9}]", b""),
        ("more headers than the first slots", many, "", b""),
        ("code 999", b("HTTP/1.1 999 Odd\r\n\r\n"), "HTTP/1.1 999 []", b""),
        ("code below 100", b("HTTP/1.1 099 Low\r\n\r\n"), "Malformed: invalid status code 099", b""),
        ("two-digit code", b("HTTP/1.1 20 OK\r\n\r\n"), "Malformed: malformed status line", b""),
        ("four-digit code", b("HTTP/1.1 2000 OK\r\n\r\n"), "Malformed: malformed status line", b""),
        ("no space after version", b("HTTP/1.1200 OK\r\n\r\n"), "Malformed: malformed HTTP version", b""),
        ("two spaces after version", b("HTTP/1.1  200 OK\r\n\r\n"), "HTTP/1.1 200 []", b""),
        ("spaces around the code", b("HTTP/1.1   404   Not Found\r\nA: b\r\n\r\n"), "HTTP/1.1 404 [a=b]", b""),
        ("control byte in reason", b("HTTP/1.1 200 O\x01K\r\n\r\n"), "Malformed: malformed status line", b""),
        ("HTTP/2 status line", b("HTTP/2 200 OK\r\n\r\n"), "Malformed: malformed HTTP version", b""),
        ("HTTP/1.2 is read as 1.1", b("HTTP/1.2 200 OK\r\nA: b\r\n\r\nrest"), "HTTP/1.1 200 [a=b]", b"rest"),
        ("HTTP/1.9 after empty lines", b("\r\nHTTP/1.9 204 X\r\n\r\n"), "HTTP/1.1 204 []", b""),
        ("HTTP/1.10", b("HTTP/1.10 200 OK\r\n\r\n"), "Malformed: malformed HTTP version", b""),
        ("HTTP/1.x", b("HTTP/1.x 200 OK\r\n\r\n"), "Malformed: malformed HTTP version", b""),
        ("not http", b("SSH-2.0-OpenSSH_9.6\r\n"), "Malformed: malformed HTTP version", b""),
        ("lowercase version", b("http/1.1 200 OK\r\n\r\n"), "Malformed: malformed HTTP version", b""),
        // Invalid field lines are dropped, the rest of the head kept
        // (httparse's browser-compatible mode; Chrome and Firefox do it).
        ("space in header name dropped", b("HTTP/1.1 200 OK\r\nBad Name: x\r\nB: c\r\n\r\n"), "HTTP/1.1 200 [b=c]", b""),
        ("space before colon dropped", b("HTTP/1.1 200 OK\r\nA: b\r\nContent-Length : 5\r\nB: c\r\n\r\n"), "HTTP/1.1 200 [a=b, b=c]", b""),
        ("tab before colon dropped", b("HTTP/1.1 200 OK\r\nName\t: x\r\n\r\n"), "HTTP/1.1 200 []", b""),
        ("no colon dropped", b("HTTP/1.1 200 OK\r\nNoColon\r\nB: c\r\n\r\n"), "HTTP/1.1 200 [b=c]", b""),
        ("empty name dropped", b("HTTP/1.1 200 OK\r\n: x\r\n\r\n"), "HTTP/1.1 200 []", b""),
        ("whitespace before first field dropped", b("HTTP/1.1 200 OK\r\n A: b\r\nB: c\r\n\r\n"), "HTTP/1.1 200 [b=c]", b""),
        ("control byte in value dropped", b("HTTP/1.1 200 OK\r\nA: b\x01c\r\nB: c\r\n\r\n"), "HTTP/1.1 200 [b=c]", b""),
        ("DEL in value dropped", b("HTTP/1.1 200 OK\r\nA: b\x7fc\r\n\r\n"), "HTTP/1.1 200 []", b""),
        ("NUL in value", b("HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n"), "Malformed: invalid header value", b""),
        ("CR without LF", b("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"), "Malformed: invalid header value", b""),
        ("empty", b(""), "EmptyEof", b""),
        ("truncated status line", b("HTTP/1.1 20"), "Truncated", b""),
        ("truncated headers", b("HTTP/1.1 200 OK\r\nA: b\r\n"), "Truncated", b""),
        ("truncated final CR", b("HTTP/1.1 200 OK\r\n\r"), "Truncated", b""),
        ("just a newline", b("\r\n"), "Truncated", b""),
        ("exactly the limit", long(MAX - 24, "\r\n\r\nbody"), "", b"body"),
        ("one past the limit", long(MAX - 23, "\r\n\r\n"), "TooLarge", b""),
        ("endless header", long(2 * MAX, ""), "TooLarge", b""),
        ("garbage past the limit", long(2 * MAX, "\x01\r\n\r\n"), "TooLarge", b""),
    ]
}

/// The shotgun: each head delivered whole, split at every byte and one
/// byte at a time parses the same and leaves the same bytes behind.
#[test]
fn read_head_every_split_point() {
    for (name, input, want, left) in head_cases() {
        let mut first: Option<String> = None;
        for (how, mut src) in deliveries(&input) {
            let got = read_response_head(&mut src, MAX, &mut HeaderSlots::new());
            let got_text = describe(&got);
            if want.is_empty() {
                // Long cases: checked for sameness and success only.
                assert!(got.is_ok(), "{name}: {how}: {got_text}");
            } else {
                assert_eq!(got_text, want, "{name}: {how}");
            }
            if got.is_ok() {
                assert_eq!(src.rest(), left, "{name}: {how}: bytes left");
            }
            match &first {
                None => first = Some(got_text),
                Some(f) => assert_eq!(&got_text, f, "{name}: {how}"),
            }
        }
    }
}

/// The head case with more fields than a thread's first slot set.
fn many_fields() -> Vec<u8> {
    head_cases()
        .into_iter()
        .find(|c| c.0 == "more headers than the first slots")
        .map(|c| c.1)
        .unwrap()
}

/// Kept header slots: (address, capacity, length).
fn kept(slots: &HeaderSlots) -> (usize, usize, usize) {
    (slots.0.as_ptr() as usize, slots.0.capacity(), slots.0.len())
}

#[test]
fn many_headers_all_parsed() {
    let input = many_fields();
    let head = read_response_head(&mut &input[..], 1 << 20, &mut HeaderSlots::new()).unwrap();
    assert_eq!(head.headers.len(), 100);
    assert_eq!(head.headers["h99"], "99");
}

#[test]
fn head_limit_counts_the_final_empty_line() {
    let input = b"HTTP/1.1 200 OK\r\n\r\nbody";
    assert!(read_response_head(&mut &input[..], 19, &mut HeaderSlots::new()).is_ok());
    assert!(matches!(
        read_response_head(&mut &input[..], 18, &mut HeaderSlots::new()),
        Err(HeadError::TooLarge)
    ));
    assert!(matches!(
        read_response_head(&mut &input[..], 0, &mut HeaderSlots::new()),
        Err(HeadError::TooLarge)
    ));
}

#[test]
fn one_xx_then_final_head_from_one_source() {
    let input = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    for (how, mut src) in deliveries(input) {
        let early = read_response_head(&mut src, MAX, &mut HeaderSlots::new()).unwrap();
        assert_eq!(early.status, 103, "{how}");
        let fin = read_response_head(&mut src, MAX, &mut HeaderSlots::new()).unwrap();
        assert_eq!(fin.status, 200, "{how}");
        assert_eq!(src.rest(), b"hi", "{how}");
    }
}

#[test]
fn head_does_not_wait_for_bytes_after_the_head() {
    // The head completes in the first piece; the body is not asked for.
    let mut src = Pieces::new(vec![b"HTTP/1.1 200 OK\r\n", b"\r\n", b"body"]);
    read_response_head(&mut src, MAX, &mut HeaderSlots::new()).unwrap();
    assert_eq!(src.blocking_fills, 1);
    assert_eq!(src.rest(), b"body");
}

#[test]
fn head_io_errors_pass_through() {
    let mut src = Failing {
        kind: io::ErrorKind::TimedOut,
        interrupted: false,
    };
    match read_response_head(&mut src, MAX, &mut HeaderSlots::new()) {
        Err(HeadError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
        other => panic!("{}", describe(&other)),
    }
}

#[test]
fn header_slots_are_kept_between_parses() {
    // A head with many fields grows this thread's slots; the next parse
    // starts with the grown set, in the same allocation.
    let input = many_fields();
    let mut slots = HeaderSlots::new();
    read_response_head(&mut &input[..], 1 << 20, &mut slots).unwrap();
    let (ptr, cap, _) = kept(&slots);
    assert!(cap >= 100, "slots kept: {cap}");
    let small = b"HTTP/1.1 204 No Content\r\nA: 1\r\n\r\n";
    let small = read_response_head(&mut &small[..], MAX, &mut slots).unwrap();
    assert_eq!(small.headers["a"], "1");
    assert_eq!(kept(&slots), (ptr, cap, 0));
}

#[test]
fn huge_heads_do_not_leave_their_slots_behind() {
    let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..1000 {
        input.extend_from_slice(format!("h{i}: {i}\r\n").as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    let mut slots = HeaderSlots::new();
    let head = read_response_head(&mut &input[..], 1 << 20, &mut slots).unwrap();
    assert_eq!(head.headers.len(), 1000);
    let (_, cap, _) = kept(&slots);
    assert!(cap <= KEEP_SLOTS, "kept {cap} slots");
}

#[test]
fn dropped_field_lines_are_counted_for_the_log() {
    let count = |head: &str| {
        let r = read_response_head(&mut head.as_bytes(), MAX, &mut HeaderSlots::new()).unwrap();
        dropped_fields(head.as_bytes(), r.headers.len())
    };
    assert_eq!(count("HTTP/1.1 200 OK\r\nA: b\r\n\r\n"), 0);
    assert_eq!(count("\r\nHTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"), 0);
    assert_eq!(count("HTTP/1.1 200 OK\r\nA : b\r\nC: d\nNo\r\n\r\n"), 2);
}
