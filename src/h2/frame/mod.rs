//! The HTTP/2 frame layer (RFC 9113 §4, §6): finding whole frames in a byte
//! buffer, decoding and validating each one, writing frames, and gathering
//! a field block across CONTINUATION frames. Pure code over byte slices: no
//! I/O, no threads, no locks; nothing a peer sends can make it panic.
//!
//! | RFC 9113 | here |
//! |---|---|
//! | §3.4 connection preface | [`PREFACE`] |
//! | §4.1 frame format | [`FrameHeader`], [`split_frame`] |
//! | §4.2 frame size | [`split_frame`], [`DEFAULT_MAX_FRAME_SIZE`], [`MAX_FRAME_SIZE_LIMIT`] |
//! | §4.3, §6.10 field blocks, CONTINUATION | [`BlockAssembler`], [`write_headers`] |
//! | §5.4 connection and stream errors | [`FrameError`] |
//! | §5.5 unknown frame types | [`Frame::Unknown`] |
//! | §6.1–§6.10 frame definitions | [`Frame`], [`decode`], the `write_*` functions |
//! | §7 error codes | [`ErrorCode`] |
//!
//! Everything [`decode`] checks is a rule about one frame on its own; the
//! rules that need connection or stream state (a DATA frame on a closed
//! stream, a PUSH_PROMISE after we disabled push, flow-control windows)
//! belong to the connection, with `super::flow` and `super::settings` for
//! the arithmetic.
//!
//! The stream identifier's reserved bit (§4.1), and the reserved bits in
//! front of the 31-bit identifiers and increments inside payloads (§6.3,
//! §6.6, §6.8, §6.9), are masked off on receipt and never set on sending.
//! Flags a frame type does not define are ignored (§4.1).

use std::fmt;

#[cfg(test)]
mod tests;

/// The client connection preface (§3.4), sent before our first SETTINGS.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of the frame header that starts every frame (§4.1).
pub(crate) const HEADER_LEN: usize = 9;

/// SETTINGS_MAX_FRAME_SIZE until a peer says otherwise, and the smallest
/// value it may say (§4.2, §6.5.2).
pub(crate) const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// The largest SETTINGS_MAX_FRAME_SIZE there is: 2^24-1, the most the
/// 24-bit length field holds (§4.2, §6.5.2).
pub(crate) const MAX_FRAME_SIZE_LIMIT: u32 = (1 << 24) - 1;

/// The reserved high bit of a stream identifier (§4.1) and of the 31-bit
/// fields inside payloads.
const RESERVED_BIT: u32 = 1 << 31;

/// Frame type codes (§6).
pub(crate) mod kind {
    /// DATA (§6.1).
    pub(crate) const DATA: u8 = 0x0;
    /// HEADERS (§6.2).
    pub(crate) const HEADERS: u8 = 0x1;
    /// PRIORITY (§6.3), deprecated but still parsed.
    pub(crate) const PRIORITY: u8 = 0x2;
    /// RST_STREAM (§6.4).
    pub(crate) const RST_STREAM: u8 = 0x3;
    /// SETTINGS (§6.5).
    pub(crate) const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (§6.6).
    pub(crate) const PUSH_PROMISE: u8 = 0x5;
    /// PING (§6.7).
    pub(crate) const PING: u8 = 0x6;
    /// GOAWAY (§6.8).
    pub(crate) const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE (§6.9).
    pub(crate) const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION (§6.10).
    pub(crate) const CONTINUATION: u8 = 0x9;
}

/// Frame flags (§6); which ones a type defines is in its section.
pub(crate) mod flag {
    /// DATA, HEADERS: the last frame the sender sends on the stream.
    pub(crate) const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub(crate) const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the field block ends here.
    pub(crate) const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a Pad Length field and padding.
    pub(crate) const PADDED: u8 = 0x8;
    /// HEADERS: Exclusive, Stream Dependency and Weight fields.
    pub(crate) const PRIORITY: u8 = 0x20;
}

/// RFC 9113 §7 error codes. A newtype so unknown codes from the peer
/// survive (§7: unknown codes MUST NOT trigger special behaviour, and may
/// be treated as INTERNAL_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErrorCode(pub(crate) u32);

// The whole §7 table, whether or not nethttp sends each code.
#[allow(dead_code)]
impl ErrorCode {
    /// Graceful shutdown, or no error.
    pub(crate) const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// An unspecific protocol error.
    pub(crate) const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// An unexpected internal error.
    pub(crate) const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    /// The peer violated flow control.
    pub(crate) const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    /// A SETTINGS frame was not acknowledged in time.
    pub(crate) const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    /// A frame arrived after the stream was half-closed.
    pub(crate) const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    /// A frame of an invalid size.
    pub(crate) const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    /// The stream was refused before any application processing.
    pub(crate) const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    /// The stream is no longer needed.
    pub(crate) const CANCEL: ErrorCode = ErrorCode(0x8);
    /// The field section compression context cannot be maintained.
    pub(crate) const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    /// The CONNECT request's connection was reset or closed.
    pub(crate) const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    /// The peer generates excessive load.
    pub(crate) const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    /// The transport does not meet minimum security requirements.
    pub(crate) const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    /// HTTP/1.1 is required for this request.
    pub(crate) const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The code's name in RFC 9113 §7, or `None` for a code it does not define.
    pub(crate) fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        NAMES.get(usize::try_from(self.0).ok()?).copied()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown error code {:#x}", self.0),
        }
    }
}

/// The 9-byte header in front of every frame (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Payload length (24 bits), the header not included.
    pub(crate) len: u32,
    /// Frame type; see [`kind`].
    pub(crate) kind: u8,
    /// Flags; see [`flag`].
    pub(crate) flags: u8,
    /// Stream identifier with the reserved bit cleared.
    pub(crate) stream: u32,
}

impl FrameHeader {
    /// Reads a header from its 9 bytes.
    pub(crate) fn parse(bytes: &[u8; HEADER_LEN]) -> FrameHeader {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *bytes;
        FrameHeader {
            len: u32::from_be_bytes([0, l0, l1, l2]),
            kind,
            flags,
            // §4.1: the reserved bit MUST be ignored when receiving.
            stream: u32::from_be_bytes([s0, s1, s2, s3]) & !RESERVED_BIT,
        }
    }

    /// Appends the header's 9 bytes (the length's low 24 bits, the stream
    /// identifier without the reserved bit).
    pub(crate) fn write(self, dst: &mut Vec<u8>) {
        let [_, l0, l1, l2] = self.len.to_be_bytes();
        dst.extend_from_slice(&[l0, l1, l2, self.kind, self.flags]);
        dst.extend_from_slice(&(self.stream & !RESERVED_BIT).to_be_bytes());
    }

    /// True if every bit of `flag` is set.
    pub(crate) fn has(self, flag: u8) -> bool {
        self.flags & flag == flag
    }
}

/// What a malformed frame is (RFC 9113 §5.4): a connection error (GOAWAY
/// with the code, then close) or a stream error (RST_STREAM on that stream).
/// The string says what was wrong, for logs and the GOAWAY debug data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// §5.4.1: the connection cannot go on.
    Connection(ErrorCode, &'static str),
    /// §5.4.2: only this stream is affected.
    Stream(u32, ErrorCode, &'static str),
}

impl FrameError {
    /// The error code to send.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            FrameError::Connection(code, _) | FrameError::Stream(_, code, _) => *code,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Connection(code, what) => write!(f, "{code}: {what}"),
            FrameError::Stream(id, code, what) => write!(f, "stream {id}: {code}: {what}"),
        }
    }
}

/// Shorthand for a connection error.
fn conn(code: ErrorCode, what: &'static str) -> FrameError {
    FrameError::Connection(code, what)
}

/// Looks for one whole frame at the start of `buf`.
///
/// `Ok(None)`: more bytes are needed. `Ok(Some((header, total_len)))`: the
/// frame is `buf[..total_len]`, header and payload; the payload is
/// `buf[HEADER_LEN..total_len]`. A length above `max_frame_size` (the
/// SETTINGS_MAX_FRAME_SIZE we advertised) is a connection FRAME_SIZE_ERROR
/// (§4.2), decided from the 9 header bytes alone, before the payload
/// arrives, so a peer cannot make us buffer more than one allowed frame.
pub(crate) fn split_frame(
    buf: &[u8],
    max_frame_size: u32,
) -> Result<Option<(FrameHeader, usize)>, FrameError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = FrameHeader::parse(head);
    // §4.2: a frame exceeding SETTINGS_MAX_FRAME_SIZE. A connection error
    // whatever the type: we cannot skip a payload we refuse to buffer, and
    // an oversized HEADERS, SETTINGS or stream-0 frame MUST be one anyway.
    if header.len > max_frame_size {
        return Err(conn(
            ErrorCode::FRAME_SIZE_ERROR,
            "frame larger than SETTINGS_MAX_FRAME_SIZE",
        ));
    }
    // At most 2^24-1 + 9, which fits any usize of 32 bits or more;
    // checked all the same rather than cast.
    let Some(total) = usize::try_from(header.len)
        .ok()
        .and_then(|len| len.checked_add(HEADER_LEN))
    else {
        return Err(conn(ErrorCode::FRAME_SIZE_ERROR, "frame too large"));
    };
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((header, total)))
}

/// One decoded frame, borrowing its payload (§6).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// DATA (§6.1), padding removed.
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        /// The whole payload length, Pad Length field and padding
        /// included: what counts against flow control (§6.1, §6.9.1).
        flow_len: u32,
    },
    /// HEADERS (§6.2), padding removed; `block` is a field block fragment
    /// unless `end_headers`.
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        priority: Option<Priority>,
        block: &'a [u8],
    },
    /// PRIORITY (§6.3); deprecated (§5.3.2), parsed so it can be ignored.
    Priority { stream: u32, priority: Priority },
    /// RST_STREAM (§6.4).
    RstStream { stream: u32, code: ErrorCode },
    /// SETTINGS (§6.5) on stream 0; `params` is empty when `ack`.
    Settings {
        ack: bool,
        params: SettingsParams<'a>,
    },
    /// PUSH_PROMISE (§6.6), padding removed.
    PushPromise {
        stream: u32,
        promised: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// PING (§6.7) on stream 0.
    Ping { ack: bool, data: [u8; 8] },
    /// GOAWAY (§6.8) on stream 0.
    GoAway {
        last_stream: u32,
        code: ErrorCode,
        debug: &'a [u8],
    },
    /// WINDOW_UPDATE (§6.9); `stream` 0 is the connection window. The
    /// increment is never 0.
    WindowUpdate { stream: u32, increment: u32 },
    /// CONTINUATION (§6.10).
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// A frame type this code does not know: to be ignored (§4.1, §5.5),
    /// except inside a field block, where it is an error (see
    /// [`BlockAssembler`]).
    Unknown { kind: u8, stream: u32 },
}

/// The deprecated priority fields of HEADERS and PRIORITY (§6.2, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Priority {
    /// The Exclusive bit.
    pub(crate) exclusive: bool,
    /// The stream depended on (31 bits).
    pub(crate) dependency: u32,
    /// The Weight field as on the wire: the weight minus one (RFC 7540
    /// §6.2).
    pub(crate) weight: u8,
}

impl Priority {
    /// The 5 bytes of Exclusive, Stream Dependency and Weight.
    fn parse(bytes: &[u8; 5]) -> Priority {
        let [d0, d1, d2, d3, weight] = *bytes;
        let word = u32::from_be_bytes([d0, d1, d2, d3]);
        Priority {
            exclusive: word & RESERVED_BIT != 0,
            dependency: word & !RESERVED_BIT,
            weight,
        }
    }
}

/// A SETTINGS frame's parameters: 6-byte entries of a 16-bit identifier and
/// a 32-bit value (§6.5.1), in frame order. Iterating yields `(id, value)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SettingsParams<'a> {
    /// A whole number of entries (decode checked the length); a trailing
    /// partial entry would be skipped, never read.
    bytes: &'a [u8],
}

#[cfg_attr(not(test), allow(dead_code))]
impl<'a> SettingsParams<'a> {
    /// The parameters in `bytes`; any trailing partial entry is ignored.
    pub(crate) fn new(bytes: &'a [u8]) -> SettingsParams<'a> {
        SettingsParams { bytes }
    }

    /// No parameters.
    pub(crate) fn empty() -> SettingsParams<'static> {
        SettingsParams { bytes: &[] }
    }

    /// How many parameters there are.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / 6
    }

    /// True if there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `(identifier, value)` pairs in frame order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u16, u32)> + 'a {
        // chunks_exact yields 6 bytes at a time: nothing is filtered out.
        self.bytes.chunks_exact(6).filter_map(|entry| {
            let (id, value) = entry.split_first_chunk::<2>()?;
            let value = <[u8; 4]>::try_from(value).ok()?;
            Some((u16::from_be_bytes(*id), u32::from_be_bytes(value)))
        })
    }
}

impl fmt::Debug for SettingsParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Decodes one frame's payload, validating every §6 rule that can be
/// checked on the frame alone (the checks are numbered with their section).
///
/// `payload` is the frame's payload, `buf[HEADER_LEN..total_len]` after
/// [`split_frame`]; its length, not `header.len`, is the one checked.
///
/// Stream errors come only from frames that carry no connection state
/// (PRIORITY, a zero WINDOW_UPDATE on a stream); every malformed frame that
/// carries a field block or counts against connection flow control is a
/// connection error, since dropping it would desynchronise the HPACK
/// context or the connection window (§4.2, §5.4.2).
pub(crate) fn decode(header: FrameHeader, payload: &[u8]) -> Result<Frame<'_>, FrameError> {
    use ErrorCode as E;
    let stream = header.stream;
    match header.kind {
        kind::DATA => {
            // §6.1: DATA MUST be associated with a stream.
            if stream == 0 {
                return Err(conn(E::PROTOCOL_ERROR, "DATA frame on stream 0"));
            }
            let (_, data) = unpad(header, payload, 0)?;
            Ok(Frame::Data {
                stream,
                end_stream: header.has(flag::END_STREAM),
                data,
                // At most 2^24-1 after split_frame; saturating is only for
                // a caller handing in something else.
                flow_len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            })
        }
        kind::HEADERS => {
            // §6.2: HEADERS MUST be associated with a stream.
            if stream == 0 {
                return Err(conn(E::PROTOCOL_ERROR, "HEADERS frame on stream 0"));
            }
            let with_priority = header.has(flag::PRIORITY);
            let (fixed, block) = unpad(header, payload, if with_priority { 5 } else { 0 })?;
            let priority = match fixed.first_chunk::<5>() {
                Some(fields) if with_priority => {
                    let p = Priority::parse(fields);
                    // RFC 7540 §5.3.1 (whose priority fields RFC 9113
                    // §5.3.2 keeps): a stream cannot depend on itself, a
                    // stream error. Made a connection error here: the
                    // frame's field block must still reach HPACK, and a
                    // stream error would drop it (§5.4.1 allows this).
                    if p.dependency == stream {
                        return Err(conn(E::PROTOCOL_ERROR, "HEADERS stream depends on itself"));
                    }
                    Some(p)
                }
                _ => None,
            };
            Ok(Frame::Headers {
                stream,
                end_stream: header.has(flag::END_STREAM),
                end_headers: header.has(flag::END_HEADERS),
                priority,
                block,
            })
        }
        kind::PRIORITY => {
            // §6.3: PRIORITY on stream 0 is a connection error.
            if stream == 0 {
                return Err(conn(E::PROTOCOL_ERROR, "PRIORITY frame on stream 0"));
            }
            // §6.3: a length other than 5 is a stream FRAME_SIZE_ERROR.
            let Ok(fields) = <&[u8; 5]>::try_from(payload) else {
                return Err(FrameError::Stream(
                    stream,
                    E::FRAME_SIZE_ERROR,
                    "PRIORITY frame length is not 5",
                ));
            };
            let priority = Priority::parse(fields);
            // RFC 7540 §5.3.1: a stream cannot depend on itself.
            if priority.dependency == stream {
                return Err(FrameError::Stream(
                    stream,
                    E::PROTOCOL_ERROR,
                    "PRIORITY stream depends on itself",
                ));
            }
            Ok(Frame::Priority { stream, priority })
        }
        kind::RST_STREAM => {
            // §6.4: RST_STREAM MUST be associated with a stream.
            if stream == 0 {
                return Err(conn(E::PROTOCOL_ERROR, "RST_STREAM frame on stream 0"));
            }
            // §6.4: a length other than 4 is a connection FRAME_SIZE_ERROR.
            let Ok(code) = <[u8; 4]>::try_from(payload) else {
                return Err(conn(
                    E::FRAME_SIZE_ERROR,
                    "RST_STREAM frame length is not 4",
                ));
            };
            Ok(Frame::RstStream {
                stream,
                code: ErrorCode(u32::from_be_bytes(code)),
            })
        }
        kind::SETTINGS => {
            // §6.5: SETTINGS on a stream other than 0.
            if stream != 0 {
                return Err(conn(E::PROTOCOL_ERROR, "SETTINGS frame on a stream"));
            }
            let ack = header.has(flag::ACK);
            // §6.5: an ACK with a payload.
            if ack && !payload.is_empty() {
                return Err(conn(E::FRAME_SIZE_ERROR, "SETTINGS ACK with a payload"));
            }
            // §6.5: a length that is not a multiple of 6.
            if payload.len() % 6 != 0 {
                return Err(conn(
                    E::FRAME_SIZE_ERROR,
                    "SETTINGS frame length is not a multiple of 6",
                ));
            }
            Ok(Frame::Settings {
                ack,
                params: SettingsParams::new(payload),
            })
        }
        kind::PUSH_PROMISE => {
            // §6.6: PUSH_PROMISE on stream 0.
            if stream == 0 {
                return Err(conn(E::PROTOCOL_ERROR, "PUSH_PROMISE frame on stream 0"));
            }
            let (fixed, block) = unpad(header, payload, 4)?;
            let Some(&promised) = fixed.first_chunk::<4>() else {
                // unpad returned exactly 4 fixed bytes; unreachable.
                return Err(conn(E::FRAME_SIZE_ERROR, "PUSH_PROMISE frame too short"));
            };
            Ok(Frame::PushPromise {
                stream,
                // §6.6: the reserved bit before the Promised Stream ID.
                promised: u32::from_be_bytes(promised) & !RESERVED_BIT,
                end_headers: header.has(flag::END_HEADERS),
                block,
            })
        }
        kind::PING => {
            // §6.7: PING on a stream other than 0.
            if stream != 0 {
                return Err(conn(E::PROTOCOL_ERROR, "PING frame on a stream"));
            }
            // §6.7: a length other than 8.
            let Ok(data) = <[u8; 8]>::try_from(payload) else {
                return Err(conn(E::FRAME_SIZE_ERROR, "PING frame length is not 8"));
            };
            Ok(Frame::Ping {
                ack: header.has(flag::ACK),
                data,
            })
        }
        kind::GOAWAY => {
            // §6.8: GOAWAY on a stream other than 0.
            if stream != 0 {
                return Err(conn(E::PROTOCOL_ERROR, "GOAWAY frame on a stream"));
            }
            // §6.8, §4.2: too short for Last-Stream-ID and Error Code.
            let Some((fixed, debug)) = payload.split_first_chunk::<8>() else {
                return Err(conn(E::FRAME_SIZE_ERROR, "GOAWAY frame shorter than 8"));
            };
            let [l0, l1, l2, l3, c0, c1, c2, c3] = *fixed;
            Ok(Frame::GoAway {
                // §6.8: the reserved bit before Last-Stream-ID.
                last_stream: u32::from_be_bytes([l0, l1, l2, l3]) & !RESERVED_BIT,
                code: ErrorCode(u32::from_be_bytes([c0, c1, c2, c3])),
                debug,
            })
        }
        kind::WINDOW_UPDATE => {
            // §6.9: a length other than 4 is a connection FRAME_SIZE_ERROR.
            let Ok(word) = <[u8; 4]>::try_from(payload) else {
                return Err(conn(
                    E::FRAME_SIZE_ERROR,
                    "WINDOW_UPDATE frame length is not 4",
                ));
            };
            // §6.9: the reserved bit before the increment.
            let increment = u32::from_be_bytes(word) & !RESERVED_BIT;
            // §6.9: an increment of 0 is a stream error on a stream, a
            // connection error on the connection window.
            if increment == 0 {
                let what = "WINDOW_UPDATE increment is 0";
                return Err(if stream == 0 {
                    conn(E::PROTOCOL_ERROR, what)
                } else {
                    FrameError::Stream(stream, E::PROTOCOL_ERROR, what)
                });
            }
            Ok(Frame::WindowUpdate { stream, increment })
        }
        kind::CONTINUATION => {
            // §6.10: CONTINUATION MUST be associated with a stream.
            if stream == 0 {
                return Err(conn(E::PROTOCOL_ERROR, "CONTINUATION frame on stream 0"));
            }
            Ok(Frame::Continuation {
                stream,
                end_headers: header.has(flag::END_HEADERS),
                block: payload,
            })
        }
        // §4.1, §5.5: frames of unknown type MUST be ignored.
        kind => Ok(Frame::Unknown { kind, stream }),
    }
}

/// Splits the payload of a frame that may be PADDED (DATA, HEADERS,
/// PUSH_PROMISE) into its `fixed` bytes of mandatory fields after the Pad
/// Length, and the rest with the padding dropped.
///
/// A payload too short for the Pad Length and the fixed fields is a
/// FRAME_SIZE_ERROR (§4.2: too small to contain mandatory frame data); it is
/// a connection error because all three types change connection state (a
/// field block, or the connection window). Padding longer than what is left
/// after those fields is a PROTOCOL_ERROR (§6.1, §6.2, §6.6: padding the
/// length of the payload or greater; for HEADERS and PUSH_PROMISE,
/// padding that would overlap the priority or promised-stream fields too).
fn unpad(header: FrameHeader, payload: &[u8], fixed: usize) -> Result<(&[u8], &[u8]), FrameError> {
    use ErrorCode as E;
    let (pad, rest) = if header.has(flag::PADDED) {
        match payload.split_first() {
            Some((&pad, rest)) => (usize::from(pad), rest),
            None => return Err(conn(E::FRAME_SIZE_ERROR, "PADDED frame without Pad Length")),
        }
    } else {
        (0, payload)
    };
    let Some((fields, rest)) = rest.split_at_checked(fixed) else {
        return Err(conn(E::FRAME_SIZE_ERROR, "frame too short for its fields"));
    };
    let Some(body) = rest.len().checked_sub(pad).and_then(|len| rest.get(..len)) else {
        return Err(conn(E::PROTOCOL_ERROR, "padding exceeds the frame payload"));
    };
    Ok((fields, body))
}

// ---- writers (§4.1, §6): each appends whole frames to `dst` ----
//
// We never pad (padding is optional, §6.1) and never send priority signals
// (deprecated, §5.3.2). Stream identifiers and 31-bit fields are written
// with the reserved bit clear (§4.1), whatever the caller passes.

/// Appends a frame header for a payload of `len` bytes.
fn write_header(dst: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(
        len <= MAX_FRAME_SIZE_LIMIT as usize,
        "frame payload of {len}"
    );
    let header = FrameHeader {
        len: u32::try_from(len).unwrap_or(u32::MAX) & MAX_FRAME_SIZE_LIMIT,
        kind,
        flags,
        stream: stream & !RESERVED_BIT,
    };
    header.write(dst);
}

/// Appends a field block as one HEADERS frame and as many CONTINUATION
/// frames as it takes at `max_frame_size` bytes each (§4.3, §6.2, §6.10);
/// END_STREAM on the HEADERS frame if `end_stream`, END_HEADERS on the last
/// frame. An empty block is one empty HEADERS frame.
///
/// `max_frame_size` is the peer's SETTINGS_MAX_FRAME_SIZE; values outside
/// the legal 2^14..=2^24-1 (§6.5.2) are clamped into it, since every peer
/// accepts 2^14.
pub(crate) fn write_headers(
    dst: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame_size: u32,
) {
    let max = max_frame_size.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT);
    let max = usize::try_from(max).unwrap_or(DEFAULT_MAX_FRAME_SIZE as usize);
    let mut first = true;
    let mut rest = block;
    loop {
        let (chunk, tail) = rest.split_at(rest.len().min(max));
        rest = tail;
        let mut flags = if rest.is_empty() {
            flag::END_HEADERS
        } else {
            0
        };
        let kind = if first {
            if end_stream {
                flags |= flag::END_STREAM;
            }
            kind::HEADERS
        } else {
            kind::CONTINUATION
        };
        write_header(dst, chunk.len(), kind, flags, stream);
        dst.extend_from_slice(chunk);
        first = false;
        if rest.is_empty() {
            return;
        }
    }
}

/// Appends `data` as a DATA frame, END_STREAM if `end_stream` (§6.1).
///
/// The caller keeps `data` within the peer's SETTINGS_MAX_FRAME_SIZE and
/// the flow-control windows; only data beyond the 24-bit length field
/// (2^24-1 bytes) is split into more frames, END_STREAM on the last.
pub(crate) fn write_data(dst: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    let mut rest = data;
    loop {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME_SIZE_LIMIT as usize));
        rest = tail;
        let flags = if end_stream && rest.is_empty() {
            flag::END_STREAM
        } else {
            0
        };
        write_header(dst, chunk.len(), kind::DATA, flags, stream);
        dst.extend_from_slice(chunk);
        if rest.is_empty() {
            return;
        }
    }
}

/// Appends a SETTINGS frame with `params` as `(identifier, value)` in order
/// (§6.5). 2,730 parameters fill the smallest frame size; we send six.
pub(crate) fn write_settings(dst: &mut Vec<u8>, params: &[(u16, u32)]) {
    debug_assert!(params.len() * 6 <= DEFAULT_MAX_FRAME_SIZE as usize);
    write_header(dst, params.len() * 6, kind::SETTINGS, 0, 0);
    for &(id, value) in params {
        dst.extend_from_slice(&id.to_be_bytes());
        dst.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends an empty SETTINGS frame with ACK (§6.5.3).
pub(crate) fn write_settings_ack(dst: &mut Vec<u8>) {
    write_header(dst, 0, kind::SETTINGS, flag::ACK, 0);
}

/// Appends a PING, or with `ack` a PING response echoing `data` (§6.7).
pub(crate) fn write_ping(dst: &mut Vec<u8>, ack: bool, data: [u8; 8]) {
    let flags = if ack { flag::ACK } else { 0 };
    write_header(dst, 8, kind::PING, flags, 0);
    dst.extend_from_slice(&data);
}

/// Appends a WINDOW_UPDATE for `stream` (0: the connection) (§6.9). The
/// increment's reserved bit is cleared; it must be 1..=2^31-1.
pub(crate) fn write_window_update(dst: &mut Vec<u8>, stream: u32, increment: u32) {
    debug_assert!(increment & !RESERVED_BIT != 0, "WINDOW_UPDATE of 0");
    write_header(dst, 4, kind::WINDOW_UPDATE, 0, stream);
    dst.extend_from_slice(&(increment & !RESERVED_BIT).to_be_bytes());
}

/// Appends a RST_STREAM for `stream` with `code` (§6.4).
pub(crate) fn write_rst_stream(dst: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    write_header(dst, 4, kind::RST_STREAM, 0, stream);
    dst.extend_from_slice(&code.0.to_be_bytes());
}

/// Most GOAWAY debug bytes we send: what fits the smallest frame size every
/// peer accepts, after Last-Stream-ID and Error Code.
const MAX_GOAWAY_DEBUG: usize = DEFAULT_MAX_FRAME_SIZE as usize - 8;

/// Appends a GOAWAY (§6.8). `debug` is cut to fit a 2^14-byte payload: it
/// is diagnostic only, and a longer frame could exceed the peer's limit.
pub(crate) fn write_goaway(dst: &mut Vec<u8>, last_stream: u32, code: ErrorCode, debug: &[u8]) {
    let debug = debug.get(..MAX_GOAWAY_DEBUG).unwrap_or(debug);
    write_header(dst, 8 + debug.len(), kind::GOAWAY, 0, 0);
    dst.extend_from_slice(&(last_stream & !RESERVED_BIT).to_be_bytes());
    dst.extend_from_slice(&code.0.to_be_bytes());
    dst.extend_from_slice(debug);
}

// ---- field blocks across frames (§4.3, §6.2, §6.6, §6.10) ----

/// Capacity the gathering buffer keeps between blocks: a peer that once
/// sent a huge block must not leave the connection holding its bytes.
const KEEP_CAPACITY: usize = 16 * 1024;

/// What the connection should handle after [`BlockAssembler::push`].
///
/// A field block complete in one frame is borrowed from that frame (no
/// copy); one gathered across CONTINUATIONs is borrowed from the
/// assembler's buffer, and is valid until the next `push`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assembled<'a> {
    /// Any frame but HEADERS, PUSH_PROMISE and CONTINUATION, unchanged.
    Frame(Frame<'a>),
    /// A whole field block from HEADERS (and CONTINUATIONs): a header or
    /// trailer section for HPACK. END_STREAM is the HEADERS frame's. The
    /// deprecated priority fields are dropped (§5.3.2).
    Block {
        stream: u32,
        end_stream: bool,
        block: &'a [u8],
    },
    /// A whole field block from PUSH_PROMISE (and CONTINUATIONs): the
    /// promised request; HPACK must decode it even if the push is refused.
    PushPromise {
        stream: u32,
        promised: u32,
        block: &'a [u8],
    },
    /// A fragment was stored; the next frame must be its CONTINUATION.
    Pending,
}

/// Gathers a field block across HEADERS/PUSH_PROMISE + CONTINUATION frames.
///
/// After a HEADERS or PUSH_PROMISE without END_HEADERS the only legal next
/// frame is a CONTINUATION on the same stream (§6.2, §6.6, §6.10); anything
/// else, an unknown frame type included (§5.5), is a connection
/// PROTOCOL_ERROR, as is a CONTINUATION with no block open (§6.10).
///
/// `max_block` bounds each block (the 2024 CONTINUATION floods, Go's
/// CVE-2023-45288 among them); beyond it, a connection ENHANCE_YOUR_CALM (we cannot skip a
/// block: HPACK must see all of it). Each CONTINUATION is charged its 9
/// header bytes on top of its fragment, so a flood of empty CONTINUATIONs
/// ends too.
///
/// While [`in_progress`](Self::in_progress), a frame [`decode`] rejects
/// with a stream error is a connection PROTOCOL_ERROR as well: it is not
/// the CONTINUATION that must come next.
#[derive(Debug)]
pub(crate) struct BlockAssembler {
    max_block: usize,
    /// The fragments so far of the open block, or the last gathered block
    /// (handed out by `push`, cleared by the next one).
    buf: Vec<u8>,
    /// What `max_block` has been charged for the open block.
    charged: usize,
    /// The open block, if any.
    open: Option<Open>,
}

/// A field block waiting for CONTINUATIONs.
#[derive(Debug, Clone, Copy)]
struct Open {
    stream: u32,
    /// `None` for HEADERS; the promised stream for PUSH_PROMISE.
    promised: Option<u32>,
    /// The HEADERS frame's END_STREAM.
    end_stream: bool,
}

impl BlockAssembler {
    /// An assembler refusing blocks larger than `max_block` bytes.
    pub(crate) fn new(max_block: usize) -> Self {
        BlockAssembler {
            max_block,
            buf: Vec::new(),
            charged: 0,
            open: None,
        }
    }

    /// True while a block is open: a CONTINUATION is expected next.
    pub(crate) fn in_progress(&self) -> bool {
        self.open.is_some()
    }

    /// Every decoded frame goes through here first; see [`Assembled`].
    pub(crate) fn push<'a>(&'a mut self, frame: Frame<'a>) -> Result<Assembled<'a>, FrameError> {
        use ErrorCode as E;
        if let Some(open) = self.open {
            // §6.2, §6.6, §6.10: only a CONTINUATION on the same stream.
            let Frame::Continuation {
                stream,
                end_headers,
                block,
            } = frame
            else {
                return Err(conn(
                    E::PROTOCOL_ERROR,
                    "frame other than CONTINUATION inside a field block",
                ));
            };
            if stream != open.stream {
                return Err(conn(
                    E::PROTOCOL_ERROR,
                    "CONTINUATION on another stream inside a field block",
                ));
            }
            self.charge(block.len().saturating_add(HEADER_LEN))?;
            self.buf.extend_from_slice(block);
            if !end_headers {
                return Ok(Assembled::Pending);
            }
            self.open = None;
            let block = self.buf.as_slice();
            return Ok(match open.promised {
                None => Assembled::Block {
                    stream,
                    end_stream: open.end_stream,
                    block,
                },
                Some(promised) => Assembled::PushPromise {
                    stream,
                    promised,
                    block,
                },
            });
        }

        // No block open: forget the last gathered one.
        self.buf.clear();
        self.buf.shrink_to(KEEP_CAPACITY);
        self.charged = 0;
        let (open, end_headers, block) = match frame {
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                block,
                ..
            } => {
                let open = Open {
                    stream,
                    promised: None,
                    end_stream,
                };
                (open, end_headers, block)
            }
            Frame::PushPromise {
                stream,
                promised,
                end_headers,
                block,
            } => {
                let open = Open {
                    stream,
                    promised: Some(promised),
                    end_stream: false,
                };
                (open, end_headers, block)
            }
            // §6.10: a CONTINUATION MUST follow a frame without END_HEADERS.
            Frame::Continuation { .. } => {
                return Err(conn(
                    E::PROTOCOL_ERROR,
                    "CONTINUATION without a field block open",
                ));
            }
            other => return Ok(Assembled::Frame(other)),
        };
        self.charge(block.len())?;
        if !end_headers {
            self.buf.extend_from_slice(block);
            self.open = Some(open);
            return Ok(Assembled::Pending);
        }
        // Complete in one frame: borrowed from the frame, nothing copied.
        Ok(match open.promised {
            None => Assembled::Block {
                stream: open.stream,
                end_stream: open.end_stream,
                block,
            },
            Some(promised) => Assembled::PushPromise {
                stream: open.stream,
                promised,
                block,
            },
        })
    }

    /// The gathering buffer's capacity, for the memory test.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Charges `n` more bytes to the open block against `max_block`.
    fn charge(&mut self, n: usize) -> Result<(), FrameError> {
        match self.charged.checked_add(n) {
            Some(total) if total <= self.max_block => {
                self.charged = total;
                Ok(())
            }
            _ => {
                // The connection ends here; drop what was gathered.
                self.open = None;
                self.buf = Vec::new();
                Err(conn(ErrorCode::ENHANCE_YOUR_CALM, "field block too large"))
            }
        }
    }
}

// ---- fuzzing ----

/// Runs `data` through [`split_frame`], [`decode`] and a [`BlockAssembler`]
/// as a connection would, and asserts what must hold whatever the bytes:
/// no panic; every frame handed out lies within `data`; a decoded frame
/// re-encoded with the `write_*` functions decodes to the same frame (DATA
/// without its padding); a reassembled field block, written again with
/// [`write_headers`] at the smallest frame size, reassembles to the same
/// bytes.
#[cfg(any(test, feature = "_fuzz"))]
pub(crate) fn fuzz_frames(data: &[u8]) {
    // Small limits, so their edges are reachable from short inputs.
    const MAX_FRAME: u32 = 1024;
    const MAX_BLOCK: usize = 4096;
    let mut asm = BlockAssembler::new(MAX_BLOCK);
    let mut rest = data;
    loop {
        let (header, total) = match split_frame(rest, MAX_FRAME) {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => {
                assert!(matches!(e, FrameError::Connection(..)), "{e:?}");
                return;
            }
        };
        assert!(total <= rest.len() && total >= HEADER_LEN);
        assert!(header.len <= MAX_FRAME && header.stream & RESERVED_BIT == 0);
        let Some((frame_bytes, tail)) = rest.split_at_checked(total) else {
            panic!("split_frame returned {total} of {}", rest.len());
        };
        rest = tail;
        let payload = frame_bytes.get(HEADER_LEN..).unwrap_or_default();
        let frame = match decode(header, payload) {
            Ok(frame) => frame,
            // A stream error ends only its stream, unless a block is open:
            // then nothing but a CONTINUATION may come.
            Err(FrameError::Stream(id, ..)) if !asm.in_progress() => {
                assert_eq!(id, header.stream);
                continue;
            }
            Err(_) => return,
        };
        check_reencode(&frame);
        match asm.push(frame) {
            Ok(Assembled::Block {
                stream,
                end_stream,
                block,
            }) => {
                assert!(block.len() <= MAX_BLOCK);
                let mut again = Vec::new();
                write_headers(&mut again, stream, block, end_stream, 0);
                assert_eq!(
                    reassemble(&again),
                    Some((stream, end_stream, block.to_vec()))
                );
            }
            Ok(Assembled::PushPromise { block, .. }) => assert!(block.len() <= MAX_BLOCK),
            Ok(Assembled::Frame(_) | Assembled::Pending) => {}
            Err(e) => {
                assert!(matches!(e, FrameError::Connection(..)), "{e:?}");
                return;
            }
        }
    }
}

/// Re-encodes `frame` if it has an encoder and checks it decodes the same.
#[cfg(any(test, feature = "_fuzz"))]
fn check_reencode(frame: &Frame<'_>) {
    let mut out = Vec::new();
    let want = match *frame {
        Frame::Data {
            stream,
            end_stream,
            data,
            ..
        } => {
            write_data(&mut out, stream, data, end_stream);
            Frame::Data {
                stream,
                end_stream,
                data,
                flow_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            }
        }
        Frame::Settings { ack: true, .. } => {
            write_settings_ack(&mut out);
            Frame::Settings {
                ack: true,
                params: SettingsParams::empty(),
            }
        }
        Frame::Settings { ack: false, params } => {
            let pairs: Vec<(u16, u32)> = params.iter().collect();
            write_settings(&mut out, &pairs);
            Frame::Settings { ack: false, params }
        }
        Frame::Ping { ack, data } => {
            write_ping(&mut out, ack, data);
            Frame::Ping { ack, data }
        }
        Frame::WindowUpdate { stream, increment } => {
            write_window_update(&mut out, stream, increment);
            Frame::WindowUpdate { stream, increment }
        }
        Frame::RstStream { stream, code } => {
            write_rst_stream(&mut out, stream, code);
            Frame::RstStream { stream, code }
        }
        Frame::GoAway {
            last_stream,
            code,
            debug,
        } => {
            write_goaway(&mut out, last_stream, code, debug);
            Frame::GoAway {
                last_stream,
                code,
                debug,
            }
        }
        _ => return,
    };
    let got = split_frame(&out, MAX_FRAME_SIZE_LIMIT);
    let Ok(Some((header, total))) = got else {
        panic!("re-encoded {frame:?} does not split: {got:?}");
    };
    assert_eq!(total, out.len(), "re-encoded {frame:?}");
    let payload = out.get(HEADER_LEN..).unwrap_or_default();
    assert_eq!(decode(header, payload).as_ref(), Ok(&want));
}

/// Splits, decodes and assembles frames holding one field block: its
/// stream, END_STREAM and bytes, or `None` if they are anything else.
#[cfg(any(test, feature = "_fuzz"))]
fn reassemble(mut bytes: &[u8]) -> Option<(u32, bool, Vec<u8>)> {
    let mut asm = BlockAssembler::new(usize::MAX);
    while let Ok(Some((header, total))) = split_frame(bytes, DEFAULT_MAX_FRAME_SIZE) {
        let (frame, tail) = bytes.split_at_checked(total)?;
        bytes = tail;
        let frame = decode(header, frame.get(HEADER_LEN..)?).ok()?;
        match asm.push(frame).ok()? {
            Assembled::Pending => {}
            Assembled::Block {
                stream,
                end_stream,
                block,
            } if bytes.is_empty() => return Some((stream, end_stream, block.to_vec())),
            _ => return None,
        }
    }
    None
}
