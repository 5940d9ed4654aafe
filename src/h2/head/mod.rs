//! Message heads as HTTP/2 field lists (RFC 9113 §8.1–§8.3): the request's
//! pseudo-header fields and headers in the order the HPACK encoder takes
//! them, and the checks a response or trailer field list must pass.
//!
//! | RFC 9113 | here |
//! |---|---|
//! | §8.2.2 connection-specific fields (never sent) | [`request_fields`] |
//! | §8.3.1 request pseudo-header fields | [`request_fields`] |
//! | §8.1.1 malformed messages, §8.2 field validity | [`HeadBuilder`] |
//! | §8.3.2 response pseudo-header fields | [`HeadBuilder::finish`] |
//! | §8.1 trailers carry no pseudo-header field | [`HeadBuilder::trailers`] |

use http::{
    HeaderMap, HeaderName, HeaderValue, Method, StatusCode,
    header::{CONNECTION, CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING, UPGRADE, USER_AGENT},
};

use crate::h1::head::USER_AGENT_VALUE;

#[cfg(test)]
mod tests;

/// A field's name: a pseudo-header (`:method`…) or a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldName {
    Pseudo(&'static str),
    Header(HeaderName),
}

impl FieldName {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            FieldName::Pseudo(p) => p.as_bytes(),
            FieldName::Header(h) => h.as_str().as_bytes(),
        }
    }
}

/// One field of a request head. Values are `HeaderValue`s (a clone is a
/// reference count or a short copy); `HeaderValue::is_sensitive` values
/// are encoded never-indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: FieldName,
    pub(crate) value: HeaderValue,
}

/// What [`request_fields`] needs; borrowed from the request.
#[derive(Debug)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    /// "https" or "http".
    pub(crate) scheme: &'a str,
    /// host[:port] from the URL, used unless `headers` has a Host header.
    pub(crate) authority: &'a str,
    /// "/path?query", already percent-encoded.
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    /// The body's length when known (`Some(0)` for an empty body that
    /// still says so, as HTTP/1.1 does for POST, PUT and PATCH).
    pub(crate) content_length: Option<u64>,
    /// Add `accept-encoding: <this>` (the encodings the transport decodes).
    pub(crate) accept_encoding: Option<&'static str>,
}

/// The request head as fields: `:method`, `:scheme`, `:authority`, `:path`
/// (§8.3.1: all pseudo-header fields before the regular ones), then
/// User-Agent (the user's or ours), the user's headers in `HeaderMap`
/// order, `content-length` when known, `accept-encoding` when asked
/// for. Dropped, as Go does: Host (it becomes `:authority`), the
/// connection-specific fields of §8.2.2 (`Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `Transfer-Encoding`, `Upgrade`) and any `TE` other
/// than `trailers`. A user's Content-Length is replaced by the body's own.
///
/// `Err` for a URL or Host value that cannot be a field value (never for
/// a URL the `url` crate parsed).
pub(crate) fn request_fields(head: &RequestHead<'_>) -> Result<Vec<Field>, &'static str> {
    let mut out = Vec::with_capacity(6 + head.headers.len());
    let pseudo = |name, value: &str| -> Result<Field, &'static str> {
        Ok(Field {
            name: FieldName::Pseudo(name),
            value: HeaderValue::from_str(value).map_err(|_| "invalid pseudo-header value")?,
        })
    };
    // The common values without a copy each (a HeaderValue from a
    // static string shares it).
    let method = match *head.method {
        Method::GET => Some("GET"),
        Method::POST => Some("POST"),
        Method::PUT => Some("PUT"),
        Method::HEAD => Some("HEAD"),
        Method::DELETE => Some("DELETE"),
        _ => None,
    };
    out.push(match method {
        Some(m) => Field {
            name: FieldName::Pseudo(":method"),
            value: HeaderValue::from_static(m),
        },
        None => pseudo(":method", head.method.as_str())?,
    });
    out.push(match head.scheme {
        "https" => Field {
            name: FieldName::Pseudo(":scheme"),
            value: HeaderValue::from_static("https"),
        },
        "http" => Field {
            name: FieldName::Pseudo(":scheme"),
            value: HeaderValue::from_static("http"),
        },
        other => pseudo(":scheme", other)?,
    });
    let authority = match head.headers.get(HOST) {
        Some(h) => h.clone(),
        None => HeaderValue::from_str(head.authority).map_err(|_| "invalid authority")?,
    };
    out.push(Field {
        name: FieldName::Pseudo(":authority"),
        value: authority,
    });
    let path = if head.path.is_empty() { "/" } else { head.path };
    out.push(pseudo(":path", path)?);

    if !head.headers.contains_key(USER_AGENT) {
        out.push(Field {
            name: FieldName::Header(USER_AGENT),
            value: HeaderValue::from_static(USER_AGENT_VALUE),
        });
    }
    for (name, value) in head.headers {
        if is_connection_specific(name) || name == HOST || name == CONTENT_LENGTH {
            continue;
        }
        if name == TE && !value.as_bytes().eq_ignore_ascii_case(b"trailers") {
            continue;
        }
        out.push(Field {
            name: FieldName::Header(name.clone()),
            value: value.clone(),
        });
    }
    if let Some(n) = head.content_length {
        out.push(Field {
            name: FieldName::Header(CONTENT_LENGTH),
            value: HeaderValue::from(n),
        });
    }
    if let Some(encodings) = head.accept_encoding {
        out.push(Field {
            name: FieldName::Header(http::header::ACCEPT_ENCODING),
            value: HeaderValue::from_static(encodings),
        });
    }
    Ok(out)
}

/// §8.2.2: fields that are only meaningful to one HTTP/1 connection.
fn is_connection_specific(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Collects a decoded response (or trailer) field list and checks it
/// (§8.1.1, §8.2, §8.3.2). The HPACK decoder calls [`field`](Self::field)
/// for each field; the first violation is kept and reported by
/// [`finish`](Self::finish), which makes the message malformed: a stream
/// error of type PROTOCOL_ERROR.
#[derive(Debug, Default)]
pub(crate) struct HeadBuilder {
    status: Option<StatusCode>,
    headers: HeaderMap,
    saw_regular: bool,
    error: Option<&'static str>,
}

impl HeadBuilder {
    pub(crate) fn new() -> HeadBuilder {
        HeadBuilder::default()
    }

    /// Takes one decoded field.
    pub(crate) fn field(&mut self, name: &[u8], value: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.take(name, value) {
            self.error = Some(e);
        }
    }

    fn take(&mut self, name: &[u8], value: &[u8]) -> Result<(), &'static str> {
        if let Some(pseudo) = name.strip_prefix(b":") {
            // §8.3: pseudo-header fields come first, and a response has
            // exactly one, `:status`.
            if self.saw_regular {
                return Err("pseudo-header field after a regular field");
            }
            if pseudo != b"status" {
                return Err("unknown or request pseudo-header field in a response");
            }
            if self.status.is_some() {
                return Err("duplicate :status");
            }
            let status = match value {
                [a, b, c] if value.iter().all(u8::is_ascii_digit) => {
                    let n =
                        u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
                    StatusCode::from_u16(n).map_err(|_| "invalid :status")?
                }
                _ => return Err("invalid :status"),
            };
            self.status = Some(status);
            return Ok(());
        }
        self.saw_regular = true;
        // §8.2.1: field names are lowercase in HTTP/2.
        if name.iter().any(u8::is_ascii_uppercase) {
            return Err("uppercase field name");
        }
        let name = HeaderName::from_bytes(name).map_err(|_| "invalid field name")?;
        if is_connection_specific(&name) {
            return Err("connection-specific field in a response");
        }
        // §8.2.1: no NUL, CR or LF; other controls are refused by the
        // `http` crate too (as Go's `ValidHeaderFieldValue` does).
        let value = HeaderValue::from_bytes(value).map_err(|_| "invalid field value")?;
        self.headers.append(name, value);
        Ok(())
    }

    /// A response head: its `:status` and headers.
    pub(crate) fn finish(self) -> Result<(StatusCode, HeaderMap), &'static str> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.status {
            Some(s) => Ok((s, self.headers)),
            None => Err("response without :status"),
        }
    }

    /// A trailer section: no pseudo-header field at all (§8.1).
    pub(crate) fn trailers(self) -> Result<HeaderMap, &'static str> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.status.is_some() {
            return Err("pseudo-header field in trailers");
        }
        Ok(self.headers)
    }
}

/// The response's `content-length`, when it has exactly one valid value
/// (§8.1.1: it must then equal the DATA payload's length). `Err` for a
/// value that is not a number or several that disagree.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    let mut found = None;
    for v in headers.get_all(CONTENT_LENGTH) {
        let s = v.to_str().map_err(|_| "invalid content-length")?;
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err("invalid content-length");
            }
            let n: u64 = part.parse().map_err(|_| "invalid content-length")?;
            if found.is_some_and(|f| f != n) {
                return Err("conflicting content-length values");
            }
            found = Some(n);
        }
    }
    Ok(found)
}
