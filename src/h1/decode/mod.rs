//! Response body decoding: Content-Length, chunked (RFC 9112 §7.1, with
//! trailers §7.1.2) and close-delimited bodies, read straight out of a
//! [`Source`]'s buffer into the caller's buffer.
//!
//! The chunked rules follow Go's `internal/chunked.go`: a size line is read
//! up to LF (so a bare LF is accepted), trailing SP/HTAB/CR are trimmed,
//! chunk extensions after `;` are ignored, and chunk data must be followed by
//! exactly CRLF.

use std::{fmt, io};

use http::HeaderMap;

use super::Source;
use super::framing::BodyFraming;

#[cfg(test)]
mod tests;

/// Longest chunk-size line we accept, extensions included, LF excluded
/// (Go's `maxLineLength`).
const MAX_CHUNK_SIZE_LINE: usize = 4096;

/// Most bytes we accept in a trailer section, final empty line included.
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Why a body could not be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// EOF before the framing's end (Content-Length not reached, or no last chunk).
    Truncated(String),
    /// Malformed chunked coding (bad size line, missing CRLF after data, size
    /// overflow, trailers too big...).
    Malformed(String),
    /// I/O error from the source, unchanged.
    Io(io::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated(msg) | DecodeError::Malformed(msg) => f.write_str(msg),
            DecodeError::Io(e) => write!(f, "reading response body: {e}"),
        }
    }
}

/// Decodes one response body, framed as its [`BodyFraming`] says.
#[derive(Debug)]
pub(crate) struct Decoder {
    kind: Kind,
    /// The chunked trailer section, once the last chunk was read.
    trailers: Option<HeaderMap>,
    /// An error met after some bytes were already copied in the same `read`;
    /// those bytes are returned first and this on the next call.
    pending: Option<DecodeError>,
    /// The `Content-Length`, for a body framed by one.
    length: Option<u64>,
}

#[derive(Debug)]
enum Kind {
    /// `remaining` of `total` Content-Length bytes left.
    Length {
        remaining: u64,
        total: u64,
    },
    Chunked(Chunked),
    /// RFC 9112 §6.3 rule 8: the body is everything until the server closes.
    CloseDelimited,
    /// The body is complete; reads return 0 without touching the source.
    Done,
    /// The chunked coding was malformed; the stream position is unknown.
    Failed,
}

impl Decoder {
    /// A decoder for one body; `BodyFraming::None` and `Length(0)` start done.
    pub(crate) fn new(framing: BodyFraming) -> Decoder {
        let kind = match framing {
            BodyFraming::None | BodyFraming::Length(0) => Kind::Done,
            BodyFraming::Length(n) => Kind::Length {
                remaining: n,
                total: n,
            },
            BodyFraming::Chunked => Kind::Chunked(Chunked::new()),
            BodyFraming::CloseDelimited => Kind::CloseDelimited,
        };
        let length = match framing {
            BodyFraming::Length(n) => Some(n),
            _ => None,
        };
        Decoder {
            kind,
            trailers: None,
            pending: None,
            length,
        }
    }

    /// The whole body's length when the framing declares it up front
    /// (`Content-Length`).
    pub(crate) fn length(&self) -> Option<u64> {
        self.length
    }

    /// True once the whole body, and for chunked its trailers, was consumed
    /// from the source.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.kind, Kind::Done)
    }

    /// The chunked trailers, once done (None if there were none or the body
    /// is not chunked).
    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Reads decoded body bytes into `buf`, copying straight out of the
    /// source's buffer. `Ok(0)` only when the body is done (or `buf` is
    /// empty).
    ///
    /// Never blocks once the body is complete, and makes [`is_done`] true as
    /// early as possible: a Content-Length body when its last byte is read; a
    /// chunked body when its last data bytes are returned and the CRLF, the
    /// last chunk and the trailer section are already buffered in `src` (the
    /// decoder consumes framing bytes that are buffered, but never waits for
    /// more once it has data to return); a close-delimited body at EOF.
    ///
    /// [`is_done`]: Decoder::is_done
    pub(crate) fn read<S: Source>(
        &mut self,
        src: &mut S,
        buf: &mut [u8],
    ) -> Result<usize, DecodeError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.kind {
            Kind::Done => Ok(0),
            Kind::Failed => Err(DecodeError::Malformed(
                "chunked body already failed to decode".to_owned(),
            )),
            Kind::Length { remaining, total } => {
                let want = buf
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                if let Some(res) = src.read_direct(&mut buf[..want]) {
                    let n = res.map_err(DecodeError::Io)?;
                    if n == 0 {
                        return Err(DecodeError::Truncated(format!(
                            "body ended after {} of {} bytes (Content-Length)",
                            *total - *remaining,
                            total
                        )));
                    }
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.kind = Kind::Done;
                    }
                    return Ok(n);
                }
                let avail = super::fill(src).map_err(DecodeError::Io)?;
                if avail.is_empty() {
                    return Err(DecodeError::Truncated(format!(
                        "body ended after {} of {} bytes (Content-Length)",
                        *total - *remaining,
                        total
                    )));
                }
                let n = copy_prefix(avail, buf, *remaining);
                src.consume(n);
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.kind = Kind::Done;
                }
                Ok(n)
            }
            Kind::CloseDelimited => {
                if let Some(res) = src.read_direct(buf) {
                    let n = res.map_err(DecodeError::Io)?;
                    if n == 0 {
                        self.kind = Kind::Done;
                    }
                    return Ok(n);
                }
                let avail = super::fill(src).map_err(DecodeError::Io)?;
                if avail.is_empty() {
                    self.kind = Kind::Done;
                    return Ok(0);
                }
                let n = copy_prefix(avail, buf, u64::MAX);
                src.consume(n);
                Ok(n)
            }
            Kind::Chunked(chunked) => {
                let (n, err) = chunked.read(src, buf);
                if chunked.state == ChunkState::End {
                    self.trailers = chunked.trailers.take();
                    self.kind = Kind::Done;
                }
                if let Some(e) = err {
                    if matches!(e, DecodeError::Malformed(_)) {
                        self.kind = Kind::Failed;
                    }
                    if n == 0 {
                        return Err(e);
                    }
                    self.pending = Some(e);
                }
                Ok(n)
            }
        }
    }
}

/// Copies as much of `avail` into `buf` as both hold, at most `limit` bytes;
/// returns the count.
fn copy_prefix(avail: &[u8], buf: &mut [u8], limit: u64) -> usize {
    let mut n = avail.len().min(buf.len());
    if let Ok(limit) = usize::try_from(limit) {
        n = n.min(limit);
    }
    buf[..n].copy_from_slice(&avail[..n]);
    n
}

/// Where the chunked decoder is, byte by byte (RFC 9112 §7.1):
///
/// ```text
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// last-chunk   = 1*("0") [ chunk-ext ] CRLF
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// In a chunk-size line (with extensions), up to its LF.
    Size,
    /// In chunk data, with this many (> 0) bytes to go.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// In the trailer section after the last chunk, up to its empty line.
    Trailers,
    /// After the trailer section: the body is complete.
    End,
}

impl ChunkState {
    fn eof_message(self) -> &'static str {
        match self {
            ChunkState::Size => "connection closed in a chunk size line",
            ChunkState::Data(_) => "connection closed in chunk data",
            ChunkState::DataCr | ChunkState::DataLf => "connection closed before a chunk's CRLF",
            ChunkState::Trailers => "connection closed in the chunked trailer section",
            ChunkState::End => "connection closed after the chunked body",
        }
    }
}

#[derive(Debug)]
struct Chunked {
    state: ChunkState,
    /// The part of a size line or of the trailer section seen so far, when
    /// it spans reads (chunk data never goes through here).
    line: Vec<u8>,
    /// Where the current line starts in `line` (trailer section only).
    line_start: usize,
    trailers: Option<HeaderMap>,
}

impl Chunked {
    fn new() -> Self {
        Chunked {
            state: ChunkState::Size,
            line: Vec::new(),
            line_start: 0,
            trailers: None,
        }
    }

    /// Fills `buf` with chunk data. Blocks (in `fill_buf`) only while no
    /// byte was copied; after that it goes on only through bytes already
    /// buffered, consuming framing bytes up to the next data or the end.
    /// Returns the bytes copied, and an error that stopped it.
    fn read<S: Source>(&mut self, src: &mut S, buf: &mut [u8]) -> (usize, Option<DecodeError>) {
        let mut n = 0;
        loop {
            if self.state == ChunkState::End {
                return (n, None);
            }
            if matches!(self.state, ChunkState::Data(_)) && n == buf.len() {
                return (n, None);
            }
            if let (0, ChunkState::Data(remaining)) = (n, self.state) {
                let want = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                match src.read_direct(&mut buf[..want]) {
                    Some(Ok(0)) => {
                        let msg = self.state.eof_message().to_owned();
                        return (0, Some(DecodeError::Truncated(msg)));
                    }
                    Some(Ok(k)) => {
                        self.state = match remaining - k as u64 {
                            0 => ChunkState::DataCr,
                            left => ChunkState::Data(left),
                        };
                        return (k, None);
                    }
                    Some(Err(e)) => return (0, Some(DecodeError::Io(e))),
                    None => {}
                }
            }
            let avail = if n == 0 {
                match super::fill(src) {
                    Ok(avail) => avail,
                    Err(e) => return (0, Some(DecodeError::Io(e))),
                }
            } else {
                src.buffered()
            };
            if avail.is_empty() {
                if n > 0 {
                    return (n, None);
                }
                let msg = self.state.eof_message().to_owned();
                return (0, Some(DecodeError::Truncated(msg)));
            }
            if let ChunkState::Data(remaining) = self.state {
                let k = copy_prefix(avail, &mut buf[n..], remaining);
                src.consume(k);
                n += k;
                self.state = match remaining - k as u64 {
                    0 => ChunkState::DataCr,
                    left => ChunkState::Data(left),
                };
            } else {
                match self.advance(avail) {
                    Ok(used) => src.consume(used),
                    Err(e) => return (n, Some(e)),
                }
            }
        }
    }

    /// Consumes framing bytes (size lines, the CRLF after data, the trailer
    /// section) from `bytes` until chunk data starts, the body ends or
    /// `bytes` run out. Returns how many bytes it used.
    fn advance(&mut self, bytes: &[u8]) -> Result<usize, DecodeError> {
        let mut used = 0;
        while used < bytes.len() {
            let rest = &bytes[used..];
            match self.state {
                ChunkState::Data(_) | ChunkState::End => break,
                ChunkState::DataCr | ChunkState::DataLf => {
                    let want = if self.state == ChunkState::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if rest[0] != want {
                        return Err(malformed("missing CRLF after chunk data"));
                    }
                    used += 1;
                    self.state = if want == b'\r' {
                        ChunkState::DataLf
                    } else {
                        ChunkState::Size
                    };
                }
                ChunkState::Size => {
                    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                        if self.line.len() + rest.len() > MAX_CHUNK_SIZE_LINE {
                            return Err(malformed("chunk size line too long"));
                        }
                        self.line.extend_from_slice(rest);
                        used += rest.len();
                        break;
                    };
                    if self.line.len() + lf > MAX_CHUNK_SIZE_LINE {
                        return Err(malformed("chunk size line too long"));
                    }
                    let size = if self.line.is_empty() {
                        parse_chunk_size(&rest[..lf])?
                    } else {
                        self.line.extend_from_slice(&rest[..lf]);
                        let size = parse_chunk_size(&self.line)?;
                        self.line.clear();
                        size
                    };
                    used += lf + 1;
                    self.state = match size {
                        0 => ChunkState::Trailers,
                        n => ChunkState::Data(n),
                    };
                }
                ChunkState::Trailers => {
                    let end = rest.iter().position(|&b| b == b'\n').map(|lf| lf + 1);
                    let take = end.unwrap_or(rest.len());
                    if self.line.len() + take > MAX_TRAILER_BYTES {
                        return Err(malformed("chunked trailer section too large"));
                    }
                    self.line.extend_from_slice(&rest[..take]);
                    used += take;
                    if end.is_some() {
                        // A whole line is in; an empty one ends the section.
                        let line = &self.line[self.line_start..self.line.len() - 1];
                        if line.is_empty() || line == b"\r" {
                            self.trailers = parse_trailers(&self.line)?;
                            self.line = Vec::new();
                            self.state = ChunkState::End;
                        } else {
                            self.line_start = self.line.len();
                        }
                    }
                }
            }
        }
        Ok(used)
    }
}

fn malformed(what: &str) -> DecodeError {
    DecodeError::Malformed(what.to_owned())
}

/// The size in a chunk-size line (LF removed): hex digits, then optional
/// whitespace and `;extensions`, which are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, DecodeError> {
    let line = trim_end(line);
    let digits = match line.iter().position(|&b| b == b';') {
        // RFC 9112 §7.1.1 allows BWS before ';' (Go does not).
        Some(semi) => trim_end(&line[..semi]),
        None => line,
    };
    if digits.is_empty() {
        return Err(malformed("empty chunk size"));
    }
    let mut size: u64 = 0;
    for &b in digits {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(malformed("invalid byte in chunk size")),
        };
        size = size
            .checked_mul(16)
            .map(|s| s | u64::from(digit))
            .ok_or_else(|| malformed("chunk size too large"))?;
    }
    Ok(size)
}

/// `bytes` without trailing SP, HTAB and CR.
fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Parses a complete trailer section (field lines and the final empty line).
fn parse_trailers(section: &[u8]) -> Result<Option<HeaderMap>, DecodeError> {
    // A field line takes at least 3 bytes ("a:\n"), so this is enough slots.
    let mut slots = vec![httparse::EMPTY_HEADER; section.len() / 3 + 1];
    let fields = match httparse::parse_headers(section, &mut slots) {
        Ok(httparse::Status::Complete((_, fields))) => fields,
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(malformed("malformed chunked trailer section"));
        }
    };
    if fields.is_empty() {
        return Ok(None);
    }
    let mut map = HeaderMap::with_capacity(fields.len());
    for f in fields {
        let name = http::HeaderName::from_bytes(f.name.as_bytes())
            .map_err(|_| malformed("invalid trailer field name"))?;
        let value = http::HeaderValue::from_bytes(f.value)
            .map_err(|_| malformed("invalid trailer field value"))?;
        map.append(name, value);
    }
    Ok(Some(map))
}
