//! Message body length (RFC 9112 §6.1–6.3) and persistence (RFC 9112 §9.3):
//! pure functions over a method, a status and a header map.

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Method, StatusCode, Version};

use super::head::RequestFraming;

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
    //    (`response_wants_close` then closes the connection afterwards).
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
        let is_chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
        return match codings.iter().filter(is_chunked).count() {
            0 => Ok(BodyFraming::CloseDelimited),
            1 if codings.last().is_some_and(is_chunked) => Ok(BodyFraming::Chunked),
            1 => Ok(BodyFraming::CloseDelimited),
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
fn content_length(headers: &HeaderMap) -> Result<u64, String> {
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

/// True when the connection must close after this response.
///
/// RFC 9112 §9.3: a "close" connection option in any Connection field ends
/// the connection; HTTP/1.1 persists by default; HTTP/1.0 persists only with
/// a "keep-alive" option; anything older never does. Also closed, because the
/// framing is suspect: RFC 9112 §6.1 says a message with Transfer-Encoding in
/// HTTP/1.0 MUST be treated as faulty framing and the connection closed after
/// it, and §6.3 rule 3 calls Transfer-Encoding together with Content-Length a
/// likely smuggling attempt.
pub(crate) fn response_wants_close(version: Version, headers: &HeaderMap) -> bool {
    if has_token(headers, &CONNECTION, "close") {
        return true;
    }
    if headers.contains_key(TRANSFER_ENCODING)
        && (version != Version::HTTP_11 || headers.contains_key(CONTENT_LENGTH))
    {
        return true;
    }
    match version {
        Version::HTTP_11 => false,
        Version::HTTP_10 => !has_token(headers, &CONNECTION, "keep-alive"),
        _ => true,
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
    let end = bytes.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in fields {
            h.append(
                HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
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

    #[test]
    fn response_framing_table() {
        use BodyFraming::{Chunked, CloseDelimited, Length, None};
        let get = Method::GET;
        let ok = StatusCode::OK;
        let te_chunked = [("transfer-encoding", "chunked")];
        let cases: Vec<(Method, u16, Vec<(&'static str, &'static str)>, Result<BodyFraming, ()>)> = vec![
            // 1. HEAD, 1xx, 204, 304: no body whatever the headers say.
            (Method::HEAD, 200, vec![("content-length", "10")], Ok(None)),
            (Method::HEAD, 200, te_chunked.to_vec(), Ok(None)),
            (get.clone(), 100, vec![], Ok(None)),
            (get.clone(), 101, vec![], Ok(None)),
            (get.clone(), 103, vec![("content-length", "5")], Ok(None)),
            (get.clone(), 204, vec![("content-length", "5")], Ok(None)),
            (get.clone(), 304, te_chunked.to_vec(), Ok(None)),
            (get.clone(), 304, vec![("content-length", "junk")], Ok(None)),
            // 2. CONNECT 2xx is a tunnel; CONNECT 4xx has a body.
            (Method::CONNECT, 200, vec![("content-length", "5")], Ok(None)),
            (Method::CONNECT, 407, vec![("content-length", "5")], Ok(Length(5))),
            // 3./4. Transfer-Encoding.
            (get.clone(), 200, te_chunked.to_vec(), Ok(Chunked)),
            (get.clone(), 200, vec![("transfer-encoding", "Chunked")], Ok(Chunked)),
            (get.clone(), 200, vec![("transfer-encoding", "gzip, chunked")], Ok(Chunked)),
            (get.clone(), 200, vec![("transfer-encoding", "gzip"), ("transfer-encoding", "chunked")], Ok(Chunked)),
            (get.clone(), 200, vec![("transfer-encoding", "gzip,, chunked ,")], Ok(Chunked)),
            (get.clone(), 200, vec![("transfer-encoding", "chunked"), ("content-length", "5")], Ok(Chunked)),
            (get.clone(), 200, vec![("transfer-encoding", "chunked"), ("content-length", "junk")], Ok(Chunked)),
            (get.clone(), 200, vec![("transfer-encoding", "gzip")], Ok(CloseDelimited)),
            (get.clone(), 200, vec![("transfer-encoding", "chunked, gzip")], Ok(CloseDelimited)),
            (get.clone(), 200, vec![("transfer-encoding", "identity"), ("content-length", "5")], Ok(CloseDelimited)),
            (get.clone(), 200, vec![("transfer-encoding", "")], Ok(CloseDelimited)),
            (get.clone(), 200, vec![("transfer-encoding", "chunked, chunked")], Err(())),
            // 5./6. Content-Length.
            (get.clone(), 200, vec![("content-length", "0")], Ok(Length(0))),
            (get.clone(), 200, vec![("content-length", "42")], Ok(Length(42))),
            (get.clone(), 200, vec![("content-length", " 42 ")], Ok(Length(42))),
            (get.clone(), 200, vec![("content-length", "007")], Ok(Length(7))),
            (get.clone(), 200, vec![("content-length", "18446744073709551615")], Ok(Length(u64::MAX))),
            (get.clone(), 200, vec![("content-length", "42, 42")], Ok(Length(42))),
            (get.clone(), 200, vec![("content-length", "42"), ("content-length", "42")], Ok(Length(42))),
            (get.clone(), 200, vec![("content-length", "42, 43")], Err(())),
            (get.clone(), 200, vec![("content-length", "42"), ("content-length", "43")], Err(())),
            (get.clone(), 200, vec![("content-length", "42,")], Err(())),
            (get.clone(), 200, vec![("content-length", "")], Err(())),
            (get.clone(), 200, vec![("content-length", "+42")], Err(())),
            (get.clone(), 200, vec![("content-length", "-1")], Err(())),
            (get.clone(), 200, vec![("content-length", "4 2")], Err(())),
            (get.clone(), 200, vec![("content-length", "0x10")], Err(())),
            (get.clone(), 200, vec![("content-length", "18446744073709551616")], Err(())),
            // 8. Otherwise until close.
            (get.clone(), 200, vec![], Ok(CloseDelimited)),
            (Method::POST, 500, vec![], Ok(CloseDelimited)),
        ];
        for (method, code, fields, want) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            let got = response_framing(&method, status, &map(&fields));
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{method} {code} {fields:?}"),
                (Err(msg), Err(())) => assert!(!msg.is_empty()),
                _ => panic!("{method} {code} {fields:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(response_framing(&get, ok, &HeaderMap::new()), Ok(CloseDelimited));
    }

    #[test]
    fn framing_errors_say_what_is_wrong() {
        let err = |fields| response_framing(&Method::GET, StatusCode::OK, &map(fields)).unwrap_err();
        assert_eq!(err(&[("content-length", "1, 2")]), "conflicting Content-Length values 1 and 2");
        assert_eq!(err(&[("content-length", "abc")]), "invalid Content-Length \"abc\"");
    }

    #[test]
    fn response_wants_close_table() {
        use Version as V;
        let cases: Vec<(Version, Vec<(&'static str, &'static str)>, bool)> = vec![
            (V::HTTP_11, vec![], false),
            (V::HTTP_11, vec![("connection", "keep-alive")], false),
            (V::HTTP_11, vec![("connection", "close")], true),
            (V::HTTP_11, vec![("connection", "Close")], true),
            (V::HTTP_11, vec![("connection", "upgrade, close")], true),
            (V::HTTP_11, vec![("connection", "keep-alive"), ("connection", " CLOSE ")], true),
            (V::HTTP_11, vec![("connection", "closed")], false),
            (V::HTTP_11, vec![("transfer-encoding", "chunked")], false),
            (V::HTTP_11, vec![("transfer-encoding", "chunked"), ("content-length", "3")], true),
            (V::HTTP_10, vec![], true),
            (V::HTTP_10, vec![("connection", "keep-alive")], false),
            (V::HTTP_10, vec![("connection", "Keep-Alive")], false),
            (V::HTTP_10, vec![("connection", "keep-alive, close")], true),
            (V::HTTP_10, vec![("connection", "keep-alive"), ("transfer-encoding", "chunked")], true),
            (V::HTTP_09, vec![("connection", "keep-alive")], true),
        ];
        for (version, fields, want) in cases {
            assert_eq!(response_wants_close(version, &map(&fields)), want, "{version:?} {fields:?}");
        }
    }

    #[test]
    fn has_token_table() {
        let h = map(&[("connection", "a, B ,,\tc\t"), ("connection", "d")]);
        for t in ["a", "b", "B", "c", "d"] {
            assert!(has_token(&h, &CONNECTION, t), "{t}");
        }
        for t in ["", "e", "a, b", "ab"] {
            assert!(!has_token(&h, &CONNECTION, t), "{t:?}");
        }
        assert!(!has_token(&h, &TRANSFER_ENCODING, "a"));
    }
}
