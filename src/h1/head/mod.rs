//! Message heads: writing the request line and header section (RFC 9112 §3,
//! §5, §7.2 Host) and reading a response's status line and header section
//! (RFC 9112 §4, §5) with `httparse`.
//!
//! What `httparse` (1.10, default config plus obs-fold) accepts in a response
//! head, and so what we accept:
//!
//! - empty lines (CRLF or LF) before the status line are skipped;
//! - bare LF anywhere a CRLF ends a line;
//! - a status line without a reason phrase, with or without the space after
//!   the code (`HTTP/1.1 200\r\n`, `HTTP/1.1 200 \r\n`), and a reason phrase
//!   with obs-text (bytes >= 0x80); the reason phrase itself is not kept (no
//!   part of the API shows it, RFC 9112 §4: a client SHOULD ignore it);
//! - any three-digit code; we reject codes below 100 (`http::StatusCode`);
//! - more than one space between the version and the code, and between the
//!   code and the reason (Go, curl and hyper all accept it);
//! - `HTTP/1.0` and `HTTP/1.1`, and `HTTP/1.x` for a digit x > 1, read as
//!   1.1 (as Go, curl and hyper do: a later minor version is compatible);
//! - obs-fold (a header line continued on a line starting with SP or HTAB):
//!   RFC 9112 §5.2 says a user agent MUST replace each obs-fold with SP
//!   before interpreting the value; like Go we join the lines with one space,
//!   dropping the whitespace around the fold;
//! - an invalid field line (whitespace between the name and the colon or
//!   before the first field, a bad name, no colon, a control byte in the
//!   value) is dropped and the rest of the head kept, as browsers do
//!   (httparse's `ignore_invalid_headers_in_responses`); honouring
//!   `Content-Length : 5` where another parser ignores it is how responses
//!   get smuggled. A NUL or a lone CR still fails the head. Dropped lines
//!   are logged at debug level.

use std::fmt;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use super::Source;
use super::framing::has_token;

#[cfg(test)]
mod tests;

/// How the request body is framed on the wire (the headers it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body and no framing header.
    None,
    /// `Content-Length: n` and exactly n body bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Everything `write_request_head` needs; borrowed from the request.
#[derive(Debug)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    /// Origin-form "/path?query" as given (already percent-encoded).
    pub(crate) target: &'a str,
    /// Host value, used unless `headers` has a Host header.
    pub(crate) host: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) framing: RequestFraming,
    /// Add "Connection: close" unless the user's headers already say close.
    pub(crate) close: bool,
    /// Add "Accept-Encoding: <this>" (the encodings the transport decodes).
    pub(crate) accept_encoding: Option<&'static str>,
}

/// Our User-Agent unless the user sets one (Go sends "Go-http-client/1.1").
pub(crate) const USER_AGENT_VALUE: &str = concat!("nethttp/", env!("CARGO_PKG_VERSION"));

/// Appends the request head to `out`.
///
/// Order: request line; Host (the user's Host header value if present, else
/// `head.host`); User-Agent (the user's values if set, else ours); the other
/// user headers in `HeaderMap` order, minus any Content-Length and
/// Transfer-Encoding (the framing decides those, as in Go); the framing
/// header; `Connection: close` if asked for and not already there;
/// `Accept-Encoding` if asked for; the empty line. User header names go
/// out as the `http` crate stores them (lowercase); the ones we generate are
/// written in canonical case.
pub(crate) fn write_request_head(head: &RequestHead<'_>, out: &mut Vec<u8>) {
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
    // The target comes from a parsed URL, so it cannot hold SP, CR or LF.
    debug_assert!(
        !head.target.bytes().any(|b| b <= b' ' || b == 0x7f),
        "request target with whitespace or control bytes: {:?}",
        head.target
    );
    debug_assert!(
        !head.host.bytes().any(|b| b < b' ' || b == 0x7f),
        "host with control bytes: {:?}",
        head.host
    );
    // An empty origin-form target is not valid; "/" is what it means.
    let target = if head.target.is_empty() {
        "/"
    } else {
        head.target
    };
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");

    // RFC 9112 §7.2: a client MUST send Host, and SHOULD send it first.
    match head.headers.get(HOST) {
        Some(v) => put(out, "Host", v.as_bytes()),
        None => put(out, "Host", head.host.as_bytes()),
    }

    let mut user_agents = head.headers.get_all(USER_AGENT).iter().peekable();
    if user_agents.peek().is_none() {
        put(out, "User-Agent", USER_AGENT_VALUE.as_bytes());
    }
    for v in user_agents {
        put(out, "User-Agent", v.as_bytes());
    }

    for (name, value) in head.headers {
        if name == HOST || name == USER_AGENT || name == CONTENT_LENGTH || name == TRANSFER_ENCODING
        {
            continue;
        }
        put(out, name.as_str(), value.as_bytes());
    }

    match head.framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => put(out, "Content-Length", n.to_string().as_bytes()),
        RequestFraming::Chunked => put(out, "Transfer-Encoding", b"chunked"),
    }
    if head.close && !has_token(head.headers, &CONNECTION, "close") {
        put(out, "Connection", b"close");
    }
    if let Some(encodings) = head.accept_encoding {
        put(out, "Accept-Encoding", encodings.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one `name: value` field line.
fn put(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A parsed response status line and header section.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) version: Version,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
}

/// Why `read_response_head` produced no head.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The source hit EOF before any byte of a head (server closed without responding).
    EmptyEof,
    /// EOF in the middle of a head.
    Truncated,
    /// The head grew past max_bytes before completing.
    TooLarge,
    /// httparse (or our checks) rejected the bytes; the string says what (e.g. "malformed status line").
    Malformed(String),
    /// An I/O error from the source (passed through unchanged so timeouts keep their kind).
    Io(std::io::Error),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::EmptyEof => f.write_str("server closed the connection before responding"),
            HeadError::Truncated => {
                f.write_str("connection closed in the middle of a response head")
            }
            HeadError::TooLarge => f.write_str("response head too large"),
            HeadError::Malformed(what) => write!(f, "malformed response head: {what}"),
            HeadError::Io(e) => write!(f, "reading response head: {e}"),
        }
    }
}

/// Header slots a first parse gets; a head with more fields retries with
/// four times as many, and the slots keep the larger set (there is no
/// fixed header-count limit).
const FIRST_SLOTS: usize = 16;

/// At most this many slots (8 KiB) are kept between parses: a server
/// sending a head of many thousand fields must not leave a reader holding
/// their slots for the rest of its life.
const KEEP_SLOTS: usize = 256;

/// The caller's header slots for [`read_response_head`] (httparse's way:
/// the caller owns the slots, the parser owns no memory). Capacity only,
/// empty between parses; reused, so a parse allocates no slots once its
/// caller has parsed a head. On the heap rather than in a frame: a reader
/// thread's deepest stack stays resident for as long as its connection
/// lives, and the parse is its deepest path.
#[derive(Debug, Default)]
pub(crate) struct HeaderSlots(Vec<httparse::Header<'static>>);

impl HeaderSlots {
    pub(crate) fn new() -> HeaderSlots {
        HeaderSlots(Vec::new())
    }
}

/// `v`'s allocation, emptied, for headers borrowing another buffer. The
/// collect reuses the allocation in place (same element layout).
// The filter_map changes the element's lifetime, which `filter` cannot.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut v: Vec<httparse::Header<'_>>) -> Vec<httparse::Header<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Reads exactly one response head from `src` and consumes exactly its bytes:
/// whatever follows stays buffered in `src` for the body decoder.
///
/// The fast path parses the `fill_buf` slice in place. When that is partial,
/// the head is gathered in a `Vec` (never more than `max_bytes`) while we keep
/// reading. A head longer than `max_bytes` (including its final empty line)
/// is `TooLarge`. 1xx heads are returned like any other; the caller loops.
pub(crate) fn read_response_head<S: Source>(
    src: &mut S,
    max_bytes: usize,
    slots: &mut HeaderSlots,
) -> Result<ResponseHead, HeadError> {
    let avail = super::fill(src).map_err(HeadError::Io)?;
    if avail.is_empty() {
        return Err(HeadError::EmptyEof);
    }
    let window = &avail[..avail.len().min(max_bytes)];
    if let Some((len, head)) = parse(window, slots)? {
        src.consume(len);
        return Ok(head);
    }
    if window.len() == max_bytes {
        return Err(HeadError::TooLarge);
    }
    let acc = window.to_vec();
    src.consume(acc.len());
    read_head_rest(src, max_bytes, acc, slots)
}

/// [`read_response_head`] for a head that did not arrive in one read:
/// gathers it in `acc` (which holds its first bytes, already consumed).
#[inline(never)]
fn read_head_rest<S: Source>(
    src: &mut S,
    max_bytes: usize,
    mut acc: Vec<u8>,
    slots: &mut HeaderSlots,
) -> Result<ResponseHead, HeadError> {
    let mut parsed_len = acc.len();

    loop {
        let avail = super::fill(src).map_err(HeadError::Io)?;
        if avail.is_empty() {
            // Every candidate end of head was parsed when it arrived, so this
            // last parse can only tell a malformed head from a short one.
            parse(&acc, slots)?;
            return Err(HeadError::Truncated);
        }
        let prev = acc.len();
        let take = avail.len().min(max_bytes - prev);
        acc.extend_from_slice(&avail[..take]);
        // Parsing is skipped unless the new bytes may end the head (an empty
        // line), the head has doubled since the last parse (so garbage is
        // still caught early while a slowly trickled head costs O(n) parses
        // in total), or the limit is reached.
        let full = acc.len() == max_bytes;
        if full || may_end_head(&acc[prev.saturating_sub(2)..]) || acc.len() >= 2 * parsed_len {
            parsed_len = acc.len();
            if let Some((len, head)) = parse(&acc, slots)? {
                debug_assert!(len > prev, "head ended in bytes parsed before");
                src.consume(len.saturating_sub(prev));
                return Ok(head);
            }
            if full {
                return Err(HeadError::TooLarge);
            }
        }
        src.consume(take);
    }
}

/// Whether `bytes` hold an empty line ending ("\n\n" or "\n\r\n"); every
/// complete head ends with one.
fn may_end_head(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

/// Outcome of one `httparse` pass with a given number of header slots.
enum Attempt {
    /// The head is `len` bytes; its fields are the first `fields` slots.
    Complete {
        len: usize,
        version: Version,
        status: StatusCode,
        fields: usize,
    },
    Partial,
    TooManyHeaders,
}

/// Parses `buf` as a response head: `Some((head length, head))` when
/// complete, `None` when more bytes are needed.
///
/// The `httparse` pass and the building of the head run in sibling frames
/// below this one, not nested, for the same reason the slots live on the
/// heap (see [`HeaderSlots`]).
fn parse(buf: &[u8], slots: &mut HeaderSlots) -> Result<Option<(usize, ResponseHead)>, HeadError> {
    match parse_in(buf, slots) {
        Err(HeadError::Malformed(_)) if later_minor_version(buf).is_some() => {
            parse_later_minor(buf, slots)
        }
        parsed => parsed,
    }
}

/// [`parse`] on the caller's header slots.
fn parse_in(
    buf: &[u8],
    kept: &mut HeaderSlots,
) -> Result<Option<(usize, ResponseHead)>, HeadError> {
    let mut slots = recycle(std::mem::take(&mut kept.0));
    let parsed = parse_with(buf, &mut slots);
    if slots.capacity() <= KEEP_SLOTS {
        kept.0 = recycle(slots);
    }
    parsed
}

/// Where the minor version digit of an `HTTP/1.x` status line with x > 1
/// sits in `buf` (after any empty lines, which httparse skips too).
fn later_minor_version(buf: &[u8]) -> Option<usize> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    match line {
        // The space may not have arrived yet: httparse then waits for it.
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9']
        | [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            b'2'..=b'9',
            b' ',
            ..,
        ] => Some(start + 7),
        _ => None,
    }
}

/// A head whose status line says `HTTP/1.x`, x > 1: parsed as `HTTP/1.1`
/// (the same length, so offsets into `buf` hold). Off the hot path: only
/// after the strict parse failed.
#[cold]
#[inline(never)]
fn parse_later_minor(
    buf: &[u8],
    slots: &mut HeaderSlots,
) -> Result<Option<(usize, ResponseHead)>, HeadError> {
    let mut patched = buf.to_vec();
    if let Some(i) = later_minor_version(buf) {
        patched[i] = b'1';
    }
    parse_in(&patched, slots)
}

/// [`parse`] with `slots` as the slot store, grown as the head needs.
fn parse_with<'b>(
    buf: &'b [u8],
    slots: &mut Vec<httparse::Header<'b>>,
) -> Result<Option<(usize, ResponseHead)>, HeadError> {
    // A field line takes at least 3 bytes ("a:\n"), so `buf` cannot hold more
    // than len/3 of them: the loop ends.
    let most = buf.len() / 3 + 1;
    let mut n = slots.capacity().max(FIRST_SLOTS);
    loop {
        slots.resize(n, httparse::EMPTY_HEADER);
        match try_parse(buf, slots)? {
            Attempt::Complete {
                len,
                version,
                status,
                fields,
            } => {
                return Ok(Some((
                    len,
                    build(buf, len, version, status, &slots[..fields])?,
                )));
            }
            Attempt::Partial => return Ok(None),
            Attempt::TooManyHeaders if n >= most => {
                return Err(malformed(format_args!("too many header fields")));
            }
            Attempt::TooManyHeaders => n = (n * 4).min(most),
        }
    }
}

/// One `httparse` pass over `buf`, filling `slots`.
#[inline(never)]
fn try_parse<'b>(buf: &'b [u8], slots: &mut [httparse::Header<'b>]) -> Result<Attempt, HeadError> {
    let mut res = httparse::Response::new(slots);
    let status = httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true)
        .parse_response(&mut res, buf);
    let len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Attempt::Partial),
        Err(httparse::Error::TooManyHeaders) => return Ok(Attempt::TooManyHeaders),
        Err(e) => return Err(malformed(format_args!("{}", describe(e)))),
    };
    let version = match res.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(malformed(format_args!("unsupported HTTP version"))),
    };
    let code = res.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| malformed(format_args!("invalid status code {code:03}")))?;
    if log::log_enabled!(log::Level::Debug) {
        log_dropped_fields(&buf[..len], res.headers.len());
    }
    Ok(Attempt::Complete {
        len,
        version,
        status,
        fields: res.headers.len(),
    })
}

/// The head of `buf[..len]` from its parsed fields.
#[inline(never)]
fn build(
    buf: &[u8],
    len: usize,
    version: Version,
    status: StatusCode,
    fields: &[httparse::Header<'_>],
) -> Result<ResponseHead, HeadError> {
    // One copy of the head; every field value is a shared slice of it
    // rather than a copy of its own (one allocation per head, not per field).
    let head = Bytes::copy_from_slice(&buf[..len]);
    let mut headers = HeaderMap::with_capacity(fields.len());
    for h in fields {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| malformed(format_args!("invalid header name {:?}", h.name)))?;
        // httparse hands out subslices of `buf`, so the same bytes sit at
        // the same offset in `head` (checked; a copy otherwise).
        let start = (h.value.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        let range = start..start.saturating_add(h.value.len());
        let raw = match head.get(range.clone()) {
            Some(same) if same == h.value => head.slice(range),
            _ => Bytes::copy_from_slice(h.value),
        };
        let value = header_value(raw)
            .ok_or_else(|| malformed(format_args!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    Ok(ResponseHead {
        version,
        status,
        headers,
    })
}

/// A field value as `http` holds it, with each obs-fold (CRLF or LF followed
/// by SP/HTAB, left in place by httparse) and the whitespace around it
/// replaced by one space (RFC 9112 §5.2; Go's textproto joins the same
/// way). An unfolded value shares `raw`'s buffer; a folded one is copied.
fn header_value(raw: Bytes) -> Option<HeaderValue> {
    if !raw.iter().any(|&b| b == b'\r' || b == b'\n') {
        return HeaderValue::from_maybe_shared(raw).ok();
    }
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let mut joined = Vec::with_capacity(raw.len());
    for (i, line) in raw.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let start = line.iter().position(|b| !is_ws(b)).unwrap_or(line.len());
        let end = line
            .iter()
            .rposition(|b| !is_ws(b))
            .map_or(start, |e| e + 1);
        if start == end {
            continue;
        }
        if i > 0 && !joined.is_empty() {
            joined.push(b' ');
        }
        joined.extend_from_slice(&line[start..end]);
    }
    HeaderValue::from_bytes(&joined).ok()
}

/// Logs how many field lines httparse dropped as invalid (see the module
/// doc).
#[cold]
#[inline(never)]
fn log_dropped_fields(head: &[u8], kept: usize) {
    let dropped = dropped_fields(head, kept);
    if dropped > 0 {
        log::debug!("nethttp: dropped {dropped} invalid header line(s) of a response");
    }
}

/// How many field lines of `head` are not among the `kept` fields: its
/// lines, less the status line, the final empty line and obs-fold
/// continuations.
fn dropped_fields(head: &[u8], kept: usize) -> usize {
    let lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty())
        .skip(1)
        .filter(|l| !l.is_empty() && !matches!(l[0], b' ' | b'\t'))
        .count();
    lines.saturating_sub(kept)
}

/// A `Malformed` error, built out of line: formatting takes stack, and
/// the parse path is the deepest a reader thread goes.
#[cold]
#[inline(never)]
fn malformed(what: std::fmt::Arguments<'_>) -> HeadError {
    HeadError::Malformed(what.to_string())
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::Status => "malformed status line",
        httparse::Error::Version => "malformed HTTP version",
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many header fields",
    }
}
