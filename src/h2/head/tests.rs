use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::*;

fn names_values(fields: &[Field]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|f| {
            (
                String::from_utf8_lossy(f.name.as_bytes()).into_owned(),
                f.value.to_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .collect()
}

#[test]
fn request_fields_put_pseudo_headers_first_and_drop_connection_specific_ones() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.test:8443"));
    headers.insert("connection", HeaderValue::from_static("keep-alive"));
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
    headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    headers.insert("te", HeaderValue::from_static("gzip"));
    headers.insert("content-length", HeaderValue::from_static("99"));
    headers.insert("x-one", HeaderValue::from_static("1"));
    headers.append("x-one", HeaderValue::from_static("2"));
    let fields = request_fields(&RequestHead {
        method: &Method::POST,
        scheme: "https",
        authority: "ignored.test",
        path: "/a?b=c",
        headers: &headers,
        content_length: Some(5),
        accept_encoding: Some("gzip"),
    })
    .unwrap();
    assert_eq!(
        names_values(&fields),
        pairs(&[
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "example.test:8443"),
            (":path", "/a?b=c"),
            ("user-agent", USER_AGENT_VALUE),
            ("x-one", "1"),
            ("x-one", "2"),
            ("content-length", "5"),
            ("accept-encoding", "gzip"),
        ])
    );
}

#[test]
fn request_fields_keep_te_trailers_and_the_users_agent() {
    let mut headers = HeaderMap::new();
    headers.insert("te", HeaderValue::from_static("Trailers"));
    headers.insert("user-agent", HeaderValue::from_static("me/1"));
    let fields = request_fields(&RequestHead {
        method: &Method::GET,
        scheme: "http",
        authority: "127.0.0.1:80",
        path: "",
        headers: &headers,
        content_length: None,
        accept_encoding: None,
    })
    .unwrap();
    assert_eq!(
        names_values(&fields),
        pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "127.0.0.1:80"),
            (":path", "/"),
            ("te", "Trailers"),
            ("user-agent", "me/1"),
        ])
    );
}

/// A decoded field list, as the HPACK decoder emits it.
type Fields<'a> = &'a [(&'a [u8], &'a [u8])];

fn head(fields: Fields<'_>) -> Result<(StatusCode, HeaderMap), &'static str> {
    let mut b = HeadBuilder::new();
    for (n, v) in fields {
        b.field(n, v);
    }
    b.finish()
}

#[test]
fn response_heads_are_checked_as_section_8_says() {
    #[rustfmt::skip]
    let cases: &[(Fields<'_>, Result<u16, &str>)] = &[
        (&[(b":status", b"200"), (b"x-a", b"1")], Ok(200)),
        (&[(b":status", b"103")], Ok(103)),
        (&[(b"x-a", b"1")], Err("response without :status")),
        (&[(b":status", b"200"), (b":status", b"200")], Err("duplicate :status")),
        (&[(b"x-a", b"1"), (b":status", b"200")], Err("pseudo-header field after a regular field")),
        (&[(b":status", b"200"), (b":path", b"/")], Err("unknown or request pseudo-header field in a response")),
        (&[(b":status", b"20")], Err("invalid :status")),
        (&[(b":status", b"2000")], Err("invalid :status")),
        (&[(b":status", b"099")], Err("invalid :status")),
        (&[(b":status", b"+20")], Err("invalid :status")),
        (&[(b":status", b"200"), (b"X-A", b"1")], Err("uppercase field name")),
        (&[(b":status", b"200"), (b"x a", b"1")], Err("invalid field name")),
        (&[(b":status", b"200"), (b"x-a", b"1\r\n2")], Err("invalid field value")),
        (&[(b":status", b"200"), (b"x-a", b"1\0")], Err("invalid field value")),
        (&[(b":status", b"200"), (b"connection", b"close")], Err("connection-specific field in a response")),
        (&[(b":status", b"200"), (b"transfer-encoding", b"chunked")], Err("connection-specific field in a response")),
    ];
    for (fields, want) in cases {
        let got = head(fields).map(|(s, _)| s.as_u16());
        assert_eq!(got, *want, "{fields:?}");
    }
}

#[test]
fn trailers_carry_no_pseudo_header() {
    let mut b = HeadBuilder::new();
    b.field(b"x-checksum", b"abc");
    let t = b.trailers().unwrap();
    assert_eq!(t["x-checksum"], "abc");
    let mut b = HeadBuilder::new();
    b.field(b":status", b"200");
    assert_eq!(b.trailers(), Err("pseudo-header field in trailers"));
}

#[test]
fn content_length_must_be_one_number() {
    let cl = |values: &[&'static str]| {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("content-length", HeaderValue::from_static(v));
        }
        content_length(&h)
    };
    assert_eq!(cl(&[]), Ok(None));
    assert_eq!(cl(&["12"]), Ok(Some(12)));
    assert_eq!(cl(&["12", "12"]), Ok(Some(12)));
    assert_eq!(cl(&["12, 12"]), Ok(Some(12)));
    assert!(cl(&["12", "13"]).is_err());
    assert!(cl(&["-1"]).is_err());
    assert!(cl(&["1e3"]).is_err());
    assert!(cl(&[""]).is_err());
    assert!(cl(&["99999999999999999999999"]).is_err());
}
