//! Message body length (RFC 9112 §6.1–6.3) and persistence (RFC 9112 §9.3):
//! pure functions over a method, a status and a header map.

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Method, StatusCode, Version};

use super::head::RequestFraming;
use crate::close_reason::CloseReason;

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body: the message ends with its head.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    CloseDelimited,
}

/// Request body size as the client knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodySize {
    /// No body at all.
    Empty,
    /// A body of exactly this many bytes.
    Known(u64),
    /// A streamed body of unknown length.
    Unknown,
}

/// How to frame a request body, by Go's `transferWriter` rules.
///
/// An empty body gets `Content-Length: 0` on POST, PUT and PATCH (many
/// servers want a length on those) and no framing header otherwise; a known
/// size is sent as `Content-Length`; an unknown one is chunked.
pub(crate) fn request_framing(method: &Method, size: BodySize) -> RequestFraming {
    match size {
        BodySize::Empty | BodySize::Known(0) => {
            if *method == Method::POST || *method == Method::PUT || *method == Method::PATCH {
                RequestFraming::Length(0)
            } else {
                RequestFraming::None
            }
        }
        BodySize::Known(n) => RequestFraming::Length(n),
        BodySize::Unknown => RequestFraming::Chunked,
    }
}

/// How the body of a response to `req_method` is delimited: RFC 9112 §6.3,
/// whose rules are numbered below as in the RFC and applied in its order.
///
/// `Err` says what is wrong with the framing headers; RFC 9112 §6.3 rule 5
/// says a user agent MUST then close the connection and discard the response.
pub(crate) fn response_framing(
    req_method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<BodyFraming, String> {
    // 1. Any response to a HEAD request and any response with a 1xx, 204 or
    //    304 status code ends with the empty line after the header section,
    //    whatever the header fields say.
    if *req_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(BodyFraming::None);
    }

    // 2. A 2xx response to CONNECT turns the connection into a tunnel right
    //    after the header section; Content-Length and Transfer-Encoding MUST
    //    be ignored. The tunnel is the caller's business: no body here.
    if *req_method == Method::CONNECT && status.is_success() {
        return Ok(BodyFraming::None);
    }

    // 3. Transfer-Encoding overrides Content-Length when both are present
    //    (`persistence` then closes the connection afterwards).
    if headers.contains_key(TRANSFER_ENCODING) {
        // 4. With chunked as the final coding, the body is the chunked data.
        //    In a response whose final coding is not chunked, the body runs
        //    until the server closes the connection.
        //    (§6.1: a sender MUST NOT apply chunked more than once.)
        let codings: Vec<&[u8]> = list_elements(headers, &TRANSFER_ENCODING)
            .map(|coding| match coding.iter().position(|&b| b == b';') {
                Some(i) => trim(&coding[..i]),
                None => coding,
            })
            .collect();
        let is_chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
        let chunked = codings.iter().filter(|c| is_chunked(c)).count();
        let final_chunked = codings.last().is_some_and(|c| is_chunked(c));
        return match (chunked, final_chunked) {
            (0 | 1, false) => Ok(BodyFraming::CloseDelimited),
            (1, true) => Ok(BodyFraming::Chunked),
            _ => Err("chunked transfer coding applied more than once".to_owned()),
        };
    }

    // 5. Without Transfer-Encoding, an invalid Content-Length is an
    //    unrecoverable error, unless it is a comma-separated list (or repeated
    //    field) whose members are all valid and all the same.
    // 6. A valid Content-Length is the body length in octets.
    if headers.contains_key(CONTENT_LENGTH) {
        return content_length(headers).map(BodyFraming::Length);
    }

    // 7. (Requests only: no body.)
    // 8. A response without a declared length runs until the server closes
    //    the connection.
    Ok(BodyFraming::CloseDelimited)
}

/// The one value of every Content-Length field and list member, all of which
/// must be the same decimal number.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<u64, String> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for member in value.as_bytes().split(|&b| b == b',') {
            let member = trim(member);
            let n = parse_decimal(member).ok_or_else(|| {
                format!(
                    "invalid Content-Length {:?}",
                    String::from_utf8_lossy(value.as_bytes())
                )
            })?;
            match found {
                Some(first) if first != n => {
                    return Err(format!("conflicting Content-Length values {first} and {n}"));
                }
                _ => found = Some(n),
            }
        }
    }
    found.ok_or_else(|| "missing Content-Length value".to_owned())
}

/// `1*DIGIT` as a u64: no sign, no whitespace, no overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Whether the connection may persist after this response, by its version
/// and header fields; if not, why.
///
/// RFC 9112 §9.3: a "close" connection option in any Connection field ends
/// the connection; HTTP/1.1 persists by default; HTTP/1.0 persists only with
/// a "keep-alive" option; anything older never does. Also closed, because the
/// framing is suspect: RFC 9112 §6.1 says a message with Transfer-Encoding in
/// HTTP/1.0 MUST be treated as faulty framing and the connection closed after
/// it, and §6.3 rule 3 calls Transfer-Encoding together with Content-Length a
/// likely smuggling attempt.
pub(crate) fn persistence(version: Version, headers: &HeaderMap) -> Result<(), CloseReason> {
    if has_token(headers, &CONNECTION, "close") {
        return Err(CloseReason::ConnectionClose);
    }
    if headers.contains_key(TRANSFER_ENCODING)
        && (version != Version::HTTP_11 || headers.contains_key(CONTENT_LENGTH))
    {
        return Err(CloseReason::SuspectFraming);
    }
    match version {
        Version::HTTP_11 => Ok(()),
        Version::HTTP_10 if has_token(headers, &CONNECTION, "keep-alive") => Ok(()),
        _ => Err(CloseReason::Http10),
    }
}

/// Case-insensitive search for `token` among the comma-separated elements of
/// every `name` field.
pub(crate) fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    list_elements(headers, name).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// The non-empty, OWS-trimmed elements of a comma-separated list field, over
/// all its lines (RFC 9110 §5.6.1: empty elements are ignored).
fn list_elements<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a [u8]> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(trim)
        .filter(|e| !e.is_empty())
}

/// `bytes` without leading and trailing SP and HTAB (OWS).
fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `"a: 1 | b: 2"` as a header map, fields in order.
    fn fields(spec: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        for field in spec.split('|').filter(|f| !f.trim().is_empty()) {
            let (name, value) = field.split_once(':').unwrap();
            let name = HeaderName::from_bytes(name.trim().as_bytes()).unwrap();
            let value = value.strip_prefix(' ').unwrap_or(value);
            let value = value.strip_suffix(' ').unwrap_or(value);
            h.append(name, http::HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn request_framing_follows_go() {
        use BodySize::{Empty, Known, Unknown};
        use RequestFraming as F;
        let cases = [
            (Method::GET, Empty, F::None),
            (Method::GET, Known(0), F::None),
            (Method::HEAD, Empty, F::None),
            (Method::DELETE, Empty, F::None),
            (Method::OPTIONS, Known(0), F::None),
            (Method::POST, Empty, F::Length(0)),
            (Method::PUT, Known(0), F::Length(0)),
            (Method::PATCH, Empty, F::Length(0)),
            (Method::GET, Known(3), F::Length(3)),
            (Method::POST, Known(u64::MAX), F::Length(u64::MAX)),
            (Method::POST, Unknown, F::Chunked),
            (Method::GET, Unknown, F::Chunked),
        ];
        for (method, size, want) in cases {
            assert_eq!(request_framing(&method, size), want, "{method} {size:?}");
        }
    }

    // One case per line, like httparse's tables.
    #[rustfmt::skip]
    const RESPONSE_FRAMING: &[(&str, u16, &str, Result<BodyFraming, ()>)] = {
        use BodyFraming::{Chunked, CloseDelimited, Length, None};
        &[
            // 1. HEAD, 1xx, 204, 304: no body whatever the headers say.
            ("HEAD", 200, "content-length: 10", Ok(None)),
            ("HEAD", 200, "transfer-encoding: chunked", Ok(None)),
            ("GET", 100, "", Ok(None)),
            ("GET", 101, "", Ok(None)),
            ("GET", 103, "content-length: 5", Ok(None)),
            ("GET", 204, "content-length: 5", Ok(None)),
            ("GET", 304, "transfer-encoding: chunked", Ok(None)),
            ("GET", 304, "content-length: junk", Ok(None)),
            // 2. CONNECT 2xx is a tunnel; CONNECT 4xx has a body.
            ("CONNECT", 200, "content-length: 5", Ok(None)),
            ("CONNECT", 407, "content-length: 5", Ok(Length(5))),
            // 3./4. Transfer-Encoding, chunked last or not, wins over Content-Length.
            ("GET", 200, "transfer-encoding: chunked", Ok(Chunked)),
            ("GET", 200, "transfer-encoding: Chunked", Ok(Chunked)),
            ("GET", 200, "transfer-encoding: gzip, chunked", Ok(Chunked)),
            ("GET", 200, "transfer-encoding: gzip | transfer-encoding: chunked", Ok(Chunked)),
            ("GET", 200, "transfer-encoding: gzip,, chunked ,", Ok(Chunked)),
            ("GET", 200, "transfer-encoding: chunked | content-length: 5", Ok(Chunked)),
            ("GET", 200, "transfer-encoding: chunked | content-length: junk", Ok(Chunked)),
            ("GET", 200, "transfer-encoding: gzip", Ok(CloseDelimited)),
            ("GET", 200, "transfer-encoding: chunked, gzip", Ok(CloseDelimited)),
            ("GET", 200, "transfer-encoding: identity | content-length: 5", Ok(CloseDelimited)),
            ("GET", 200, "transfer-encoding: ", Ok(CloseDelimited)),
            ("GET", 200, "transfer-encoding: chunked, chunked", Err(())),
            ("GET", 200, "transfer-encoding: chunked | transfer-encoding: gzip, chunked", Err(())),
            // 5./6. Content-Length: all values the same valid decimal.
            ("GET", 200, "content-length: 0", Ok(Length(0))),
            ("GET", 200, "content-length: 42", Ok(Length(42))),
            ("GET", 200, "content-length: \t42\t", Ok(Length(42))),
            ("GET", 200, "content-length: 007", Ok(Length(7))),
            ("GET", 200, "content-length: 18446744073709551615", Ok(Length(u64::MAX))),
            ("GET", 200, "content-length: 42, 42", Ok(Length(42))),
            ("GET", 200, "content-length: 42 | content-length: 42", Ok(Length(42))),
            ("GET", 200, "content-length: 42, 43", Err(())),
            ("GET", 200, "content-length: 42 | content-length: 43", Err(())),
            ("GET", 200, "content-length: 42,", Err(())),
            ("GET", 200, "content-length: ", Err(())),
            ("GET", 200, "content-length: +42", Err(())),
            ("GET", 200, "content-length: -1", Err(())),
            ("GET", 200, "content-length: 4 2", Err(())),
            ("GET", 200, "content-length: 0x10", Err(())),
            ("GET", 200, "content-length: 18446744073709551616", Err(())),
            // 8. Otherwise the body runs until the server closes.
            ("GET", 200, "", Ok(CloseDelimited)),
            ("POST", 500, "", Ok(CloseDelimited)),
            ("GET", 200, "content-type: text/plain", Ok(CloseDelimited)),
        ]
    };

    #[test]
    fn response_framing_table() {
        for (method, code, spec, want) in RESPONSE_FRAMING {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let status = StatusCode::from_u16(*code).unwrap();
            let got = response_framing(&method, status, &fields(spec));
            match (&got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{method} {code} {spec:?}"),
                (Err(msg), Err(())) => assert!(!msg.is_empty()),
                _ => panic!("{method} {code} {spec:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn framing_errors_say_what_is_wrong() {
        let err = |spec| response_framing(&Method::GET, StatusCode::OK, &fields(spec)).unwrap_err();
        assert_eq!(
            err("content-length: 1, 2"),
            "conflicting Content-Length values 1 and 2"
        );
        assert_eq!(err("content-length: abc"), "invalid Content-Length \"abc\"");
        assert_eq!(
            err("transfer-encoding: chunked, chunked"),
            "chunked transfer coding applied more than once"
        );
    }

    #[rustfmt::skip]
    const PERSISTENCE: &[(Version, &str, Result<(), CloseReason>)] = {
        use CloseReason::{ConnectionClose, Http10, SuspectFraming};
        &[
            (Version::HTTP_11, "", Ok(())),
            (Version::HTTP_11, "connection: keep-alive", Ok(())),
            (Version::HTTP_11, "connection: close", Err(ConnectionClose)),
            (Version::HTTP_11, "connection: Close", Err(ConnectionClose)),
            (Version::HTTP_11, "connection: upgrade, close", Err(ConnectionClose)),
            (Version::HTTP_11, "connection: keep-alive | connection:  CLOSE ", Err(ConnectionClose)),
            (Version::HTTP_11, "connection: closed", Ok(())),
            (Version::HTTP_11, "transfer-encoding: chunked", Ok(())),
            (Version::HTTP_11, "transfer-encoding: chunked | content-length: 3", Err(SuspectFraming)),
            (Version::HTTP_10, "", Err(Http10)),
            (Version::HTTP_10, "connection: keep-alive", Ok(())),
            (Version::HTTP_10, "connection: Keep-Alive", Ok(())),
            (Version::HTTP_10, "connection: keep-alive, close", Err(ConnectionClose)),
            (Version::HTTP_10, "connection: keep-alive | transfer-encoding: chunked", Err(SuspectFraming)),
            (Version::HTTP_09, "connection: keep-alive", Err(Http10)),
        ]
    };

    #[test]
    fn persistence_table() {
        for (version, spec, want) in PERSISTENCE {
            let got = persistence(*version, &fields(spec));
            assert_eq!(got, *want, "{version:?} {spec:?}");
        }
    }

    #[test]
    fn has_token_table() {
        let h = fields("connection: a, B ,,\tc\t | connection: d");
        for t in ["a", "b", "B", "c", "d"] {
            assert!(has_token(&h, &CONNECTION, t), "{t}");
        }
        for t in ["", "e", "a, b", "ab"] {
            assert!(!has_token(&h, &CONNECTION, t), "{t:?}");
        }
        assert!(!has_token(&h, &TRANSFER_ENCODING, "a"));
    }
}
