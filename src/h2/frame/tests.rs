use super::*;

use ErrorCode as E;

// ---- helpers ----

/// A frame built by hand: header fields as given (the stream written as is,
/// reserved bit included), then the payload.
fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    assert!(len <= MAX_FRAME_SIZE_LIMIT);
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits exactly one whole frame off `bytes` and decodes it.
fn one(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (header, total) = split_frame(bytes, MAX_FRAME_SIZE_LIMIT)?.expect("a whole frame");
    assert_eq!(total, bytes.len(), "exactly one frame");
    decode(header, &bytes[HEADER_LEN..total])
}

/// Every frame in `bytes`, split and decoded; panics on leftovers.
fn all(mut bytes: &[u8]) -> Vec<Frame<'_>> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (header, total) = split_frame(bytes, MAX_FRAME_SIZE_LIMIT)
            .unwrap()
            .expect("whole frames only");
        frames.push(decode(header, &bytes[HEADER_LEN..total]).unwrap());
        bytes = &bytes[total..];
    }
    frames
}

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

// ---- error codes ----

#[test]
fn error_code_names() {
    let all = [
        (E::NO_ERROR, "NO_ERROR"),
        (E::PROTOCOL_ERROR, "PROTOCOL_ERROR"),
        (E::INTERNAL_ERROR, "INTERNAL_ERROR"),
        (E::FLOW_CONTROL_ERROR, "FLOW_CONTROL_ERROR"),
        (E::SETTINGS_TIMEOUT, "SETTINGS_TIMEOUT"),
        (E::STREAM_CLOSED, "STREAM_CLOSED"),
        (E::FRAME_SIZE_ERROR, "FRAME_SIZE_ERROR"),
        (E::REFUSED_STREAM, "REFUSED_STREAM"),
        (E::CANCEL, "CANCEL"),
        (E::COMPRESSION_ERROR, "COMPRESSION_ERROR"),
        (E::CONNECT_ERROR, "CONNECT_ERROR"),
        (E::ENHANCE_YOUR_CALM, "ENHANCE_YOUR_CALM"),
        (E::INADEQUATE_SECURITY, "INADEQUATE_SECURITY"),
        (E::HTTP_1_1_REQUIRED, "HTTP_1_1_REQUIRED"),
    ];
    for (i, (code, name)) in all.into_iter().enumerate() {
        assert_eq!(code.0, u32::try_from(i).unwrap(), "{name}");
        assert_eq!(code.name(), Some(name));
        assert_eq!(code.to_string(), name);
    }
    assert_eq!(ErrorCode(0xe).name(), None);
    assert_eq!(ErrorCode(0xe).to_string(), "unknown error code 0xe");
    assert_eq!(
        ErrorCode(u32::MAX).to_string(),
        "unknown error code 0xffffffff"
    );
}

#[test]
fn frame_error_display() {
    let e = FrameError::Connection(E::FRAME_SIZE_ERROR, "PING frame length is not 8");
    assert_eq!(
        e.to_string(),
        "FRAME_SIZE_ERROR: PING frame length is not 8"
    );
    assert_eq!(e.code(), E::FRAME_SIZE_ERROR);
    let e = FrameError::Stream(3, E::PROTOCOL_ERROR, "WINDOW_UPDATE increment is 0");
    assert_eq!(
        e.to_string(),
        "stream 3: PROTOCOL_ERROR: WINDOW_UPDATE increment is 0"
    );
    assert_eq!(e.code(), E::PROTOCOL_ERROR);
}

// ---- exact bytes, from the RFC 9113 §6 layouts ----

#[test]
fn exact_bytes() {
    let mut out = Vec::new();
    write_settings(&mut out, &[(0x3, 100), (0x4, 65_535)]);
    assert_eq!(
        out,
        hex("00000c 04 00 00000000  0003 00000064  0004 0000ffff")
    );

    out.clear();
    write_settings_ack(&mut out);
    assert_eq!(out, hex("000000 04 01 00000000"));

    out.clear();
    write_ping(&mut out, true, *b"abcdefgh");
    assert_eq!(out, hex("000008 06 01 00000000 6162636465666768"));

    out.clear();
    write_window_update(&mut out, 0x8000_0001, 0xffff_ffff);
    assert_eq!(
        out,
        hex("000004 08 00 00000001 7fffffff"),
        "reserved bits cleared"
    );

    out.clear();
    write_rst_stream(&mut out, 5, E::CANCEL);
    assert_eq!(out, hex("000004 03 00 00000005 00000008"));

    out.clear();
    write_goaway(&mut out, 7, E::ENHANCE_YOUR_CALM, b"hi");
    assert_eq!(out, hex("00000a 07 00 00000000 00000007 0000000b 6869"));

    out.clear();
    write_data(&mut out, 1, b"hello", true);
    assert_eq!(out, hex("000005 00 01 00000001 68656c6c6f"));

    out.clear();
    write_headers(&mut out, 3, b"\x82\x84", false, 16_384);
    assert_eq!(out, hex("000002 01 04 00000003 8284"));

    out.clear();
    write_headers(&mut out, 3, b"", true, 16_384);
    assert_eq!(out, hex("000000 01 05 00000003"));

    assert_eq!(PREFACE.len(), 24);
}

#[test]
fn header_parse_and_write() {
    let bytes = hex("ffffff fe 3a ffffffff");
    let header = FrameHeader::parse(bytes.first_chunk().unwrap());
    assert_eq!(
        header,
        FrameHeader {
            len: MAX_FRAME_SIZE_LIMIT,
            kind: 0xfe,
            flags: 0x3a,
            stream: 0x7fff_ffff,
        }
    );
    let mut out = Vec::new();
    header.write(&mut out);
    assert_eq!(out, hex("ffffff fe 3a 7fffffff"));
}

// ---- round trips ----

#[test]
fn round_trip_writers() {
    let settings = hex("0001 00001000 0005 00004000");
    let cases: Vec<(Vec<u8>, Frame<'_>)> = vec![
        (
            {
                let mut v = Vec::new();
                write_data(&mut v, 1, b"abc", false);
                v
            },
            Frame::Data {
                stream: 1,
                end_stream: false,
                data: b"abc",
                flow_len: 3,
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_data(&mut v, 0x7fff_ffff, b"", true);
                v
            },
            Frame::Data {
                stream: 0x7fff_ffff,
                end_stream: true,
                data: b"",
                flow_len: 0,
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_headers(&mut v, 1, b"block", true, 16_384);
                v
            },
            Frame::Headers {
                stream: 1,
                end_stream: true,
                end_headers: true,
                priority: None,
                block: b"block",
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_settings(&mut v, &[(0x1, 4096), (0x5, 16_384)]);
                v
            },
            Frame::Settings {
                ack: false,
                params: SettingsParams::new(&settings),
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_settings(&mut v, &[]);
                v
            },
            Frame::Settings {
                ack: false,
                params: SettingsParams::empty(),
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_settings_ack(&mut v);
                v
            },
            Frame::Settings {
                ack: true,
                params: SettingsParams::empty(),
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_ping(&mut v, false, [1, 2, 3, 4, 5, 6, 7, 8]);
                v
            },
            Frame::Ping {
                ack: false,
                data: [1, 2, 3, 4, 5, 6, 7, 8],
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_ping(&mut v, true, [0xff; 8]);
                v
            },
            Frame::Ping {
                ack: true,
                data: [0xff; 8],
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_window_update(&mut v, 0, 1);
                v
            },
            Frame::WindowUpdate {
                stream: 0,
                increment: 1,
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_window_update(&mut v, 9, 0x7fff_ffff);
                v
            },
            Frame::WindowUpdate {
                stream: 9,
                increment: 0x7fff_ffff,
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_rst_stream(&mut v, 3, ErrorCode(0xdead));
                v
            },
            Frame::RstStream {
                stream: 3,
                code: ErrorCode(0xdead),
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_goaway(&mut v, 0, E::NO_ERROR, b"");
                v
            },
            Frame::GoAway {
                last_stream: 0,
                code: E::NO_ERROR,
                debug: b"",
            },
        ),
        (
            {
                let mut v = Vec::new();
                write_goaway(&mut v, 0xffff_ffff, E::PROTOCOL_ERROR, b"why");
                v
            },
            Frame::GoAway {
                last_stream: 0x7fff_ffff,
                code: E::PROTOCOL_ERROR,
                debug: b"why",
            },
        ),
    ];
    for (bytes, want) in &cases {
        assert_eq!(one(bytes).as_ref(), Ok(want), "{bytes:02x?}");
    }
}

#[test]
fn round_trip_hand_written() {
    use flag::*;
    // (frame bytes, decoded) for what no writer produces: padding,
    // priority, PUSH_PROMISE, CONTINUATION, unknown types and flags,
    // reserved bits set.
    #[rustfmt::skip]
    let cases: Vec<(Vec<u8>, Frame<'_>)> = vec![
        // DATA with padding: flow_len counts Pad Length and padding.
        (raw(kind::DATA, PADDED | END_STREAM, 1, b"\x03abc\0\0\0"),
         Frame::Data { stream: 1, end_stream: true, data: b"abc", flow_len: 7 }),
        // Pad Length 0: one extra byte of flow control.
        (raw(kind::DATA, PADDED, 1, b"\x00abc"),
         Frame::Data { stream: 1, end_stream: false, data: b"abc", flow_len: 4 }),
        // All padding, no data.
        (raw(kind::DATA, PADDED, 1, b"\x02\0\0"),
         Frame::Data { stream: 1, end_stream: false, data: b"", flow_len: 3 }),
        // Undefined flags are ignored, the reserved stream bit masked.
        (raw(kind::DATA, 0xf6, 0x8000_0005, b"x"),
         Frame::Data { stream: 5, end_stream: false, data: b"x", flow_len: 1 }),
        (raw(kind::HEADERS, PADDED | END_HEADERS, 3, b"\x01hb\0"),
         Frame::Headers { stream: 3, end_stream: false, end_headers: true, priority: None, block: b"hb" }),
        (raw(kind::HEADERS, PRIORITY, 3, b"\x80\0\0\x01\x0fhb"),
         Frame::Headers { stream: 3, end_stream: false, end_headers: false,
                          priority: Some(Priority { exclusive: true, dependency: 1, weight: 15 }), block: b"hb" }),
        (raw(kind::HEADERS, PRIORITY | PADDED | END_STREAM, 3, b"\x02\0\0\0\x00\xffhb\0\0"),
         Frame::Headers { stream: 3, end_stream: true, end_headers: false,
                          priority: Some(Priority { exclusive: false, dependency: 0, weight: 255 }), block: b"hb" }),
        // Padding exactly what is left: an empty fragment.
        (raw(kind::HEADERS, PRIORITY | PADDED, 3, b"\x02\0\0\0\x01\x10\0\0"),
         Frame::Headers { stream: 3, end_stream: false, end_headers: false,
                          priority: Some(Priority { exclusive: false, dependency: 1, weight: 16 }), block: b"" }),
        (raw(kind::PRIORITY, 0, 5, b"\x80\0\0\x03\x07"),
         Frame::Priority { stream: 5, priority: Priority { exclusive: true, dependency: 3, weight: 7 } }),
        (raw(kind::PUSH_PROMISE, END_HEADERS, 1, b"\x80\0\0\x02pp"),
         Frame::PushPromise { stream: 1, promised: 2, end_headers: true, block: b"pp" }),
        (raw(kind::PUSH_PROMISE, PADDED, 1, b"\x01\0\0\0\x04pp\0"),
         Frame::PushPromise { stream: 1, promised: 4, end_headers: false, block: b"pp" }),
        (raw(kind::CONTINUATION, END_HEADERS, 1, b"cc"),
         Frame::Continuation { stream: 1, end_headers: true, block: b"cc" }),
        (raw(kind::CONTINUATION, 0, 1, b""),
         Frame::Continuation { stream: 1, end_headers: false, block: b"" }),
        (raw(kind::WINDOW_UPDATE, 0xff, 0x8000_0000, b"\x80\0\0\x01"),
         Frame::WindowUpdate { stream: 0, increment: 1 }),
        (raw(kind::GOAWAY, 0xff, 0, b"\xff\xff\xff\xff\0\0\0\x0ddebug"),
         Frame::GoAway { last_stream: 0x7fff_ffff, code: E::HTTP_1_1_REQUIRED, debug: b"debug" }),
        (raw(kind::PING, 0xfe, 0, b"12345678"),
         Frame::Ping { ack: false, data: *b"12345678" }),
        // A SETTINGS frame on stream 0 with the reserved bit set is on stream 0.
        (raw(kind::SETTINGS, 0, 0x8000_0000, b""),
         Frame::Settings { ack: false, params: SettingsParams::empty() }),
        // Unknown types are ignored whatever their stream, flags, payload.
        (raw(0xa, 0xff, 0, b"whatever"), Frame::Unknown { kind: 0xa, stream: 0 }),
        (raw(0xff, 0, 0x8000_0007, b""), Frame::Unknown { kind: 0xff, stream: 7 }),
    ];
    for (bytes, want) in &cases {
        assert_eq!(one(bytes).as_ref(), Ok(want), "{bytes:02x?}");
    }
}

#[test]
fn settings_params_iterate_in_order() {
    let bytes = hex("0003 00000064 0004 0000ffff 0003 00000001");
    let params = SettingsParams::new(&bytes);
    assert_eq!(params.len(), 3);
    assert!(!params.is_empty());
    assert_eq!(
        params.iter().collect::<Vec<_>>(),
        [(3, 100), (4, 65_535), (3, 1)]
    );
    assert_eq!(format!("{params:?}"), "[(3, 100), (4, 65535), (3, 1)]");
    // A trailing partial entry is never read.
    let params = SettingsParams::new(&bytes[..10]);
    assert_eq!(params.iter().collect::<Vec<_>>(), [(3, 100)]);
    assert!(SettingsParams::empty().is_empty());
}

// ---- split_frame ----

#[test]
fn split_frame_at_every_point() {
    let mut buf = Vec::new();
    write_ping(&mut buf, false, *b"pingpong");
    write_headers(&mut buf, 1, &[7; 300], false, 16_384);
    write_settings_ack(&mut buf);
    let ends = [17, 17 + 309, 17 + 309 + 9];
    assert_eq!(buf.len(), ends[2]);
    for cut in 0..=buf.len() {
        // Take whole frames off the prefix as a reader would.
        let mut prefix = &buf[..cut];
        let mut consumed = 0;
        let mut found = 0;
        while let Some((header, total)) = split_frame(prefix, 16_384).unwrap() {
            assert!(decode(header, &prefix[HEADER_LEN..total]).is_ok());
            prefix = &prefix[total..];
            consumed += total;
            found += 1;
        }
        let want = ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(found, want, "cut at {cut}");
        assert_eq!(consumed, ends[..want].last().copied().unwrap_or(0));
    }
}

#[test]
fn split_frame_limits() {
    // Fewer than 9 bytes: never enough.
    for n in 0..HEADER_LEN {
        assert_eq!(split_frame(&[0xff; 8][..n], 16_384), Ok(None));
    }
    // Oversize, decided from the 9 header bytes alone.
    let over = raw(kind::DATA, 0, 1, &[0; 16_385]);
    let err = Err(FrameError::Connection(
        E::FRAME_SIZE_ERROR,
        "frame larger than SETTINGS_MAX_FRAME_SIZE",
    ));
    assert_eq!(split_frame(&over[..HEADER_LEN], 16_384), err);
    assert_eq!(split_frame(&over, 16_384), err);
    // Whatever the type, a SETTINGS or an unknown one.
    assert_eq!(split_frame(&hex("004001 04 00 00000000"), 16_384), err);
    assert_eq!(split_frame(&hex("ffffff ee 00 00000000"), 16_384), err);
    // At the limit: incomplete until the last byte is there.
    let at = raw(kind::DATA, 0, 1, &[0; 16_384]);
    assert_eq!(split_frame(&at[..at.len() - 1], 16_384), Ok(None));
    let (header, total) = split_frame(&at, 16_384).unwrap().unwrap();
    assert_eq!((header.len, total), (16_384, 16_393));
    // A larger advertised limit lets it through.
    assert!(split_frame(&over, 16_385).unwrap().is_some());
    // Bytes after the frame are left alone.
    let mut two = at.clone();
    two.extend_from_slice(&hex("000000"));
    assert_eq!(split_frame(&two, 16_384).unwrap().unwrap().1, 16_393);
}

// ---- malformed frames: one row per rule, with the section ----

/// `(rule, kind, flags, stream, payload, error)`.
type Malformed = (&'static str, u8, u8, u32, &'static [u8], FrameError);

#[rustfmt::skip]
fn malformed() -> Vec<Malformed> {
    use flag::*;
    use FrameError::{Connection as C, Stream as S};
    vec![
        ("§6.1 DATA on stream 0", kind::DATA, 0, 0, b"x", C(E::PROTOCOL_ERROR, "DATA frame on stream 0")),
        ("§6.2 HEADERS on stream 0", kind::HEADERS, END_HEADERS, 0, b"x", C(E::PROTOCOL_ERROR, "HEADERS frame on stream 0")),
        ("§6.3 PRIORITY on stream 0", kind::PRIORITY, 0, 0, b"\0\0\0\x01\0", C(E::PROTOCOL_ERROR, "PRIORITY frame on stream 0")),
        ("§6.4 RST_STREAM on stream 0", kind::RST_STREAM, 0, 0, b"\0\0\0\0", C(E::PROTOCOL_ERROR, "RST_STREAM frame on stream 0")),
        ("§6.6 PUSH_PROMISE on stream 0", kind::PUSH_PROMISE, 0, 0, b"\0\0\0\x02", C(E::PROTOCOL_ERROR, "PUSH_PROMISE frame on stream 0")),
        ("§6.10 CONTINUATION on stream 0", kind::CONTINUATION, 0, 0, b"", C(E::PROTOCOL_ERROR, "CONTINUATION frame on stream 0")),
        ("§6.5 SETTINGS on a stream", kind::SETTINGS, 0, 1, b"", C(E::PROTOCOL_ERROR, "SETTINGS frame on a stream")),
        ("§6.7 PING on a stream", kind::PING, 0, 1, b"12345678", C(E::PROTOCOL_ERROR, "PING frame on a stream")),
        ("§6.8 GOAWAY on a stream", kind::GOAWAY, 0, 1, b"\0\0\0\0\0\0\0\0", C(E::PROTOCOL_ERROR, "GOAWAY frame on a stream")),
        // Padding (§6.1, §6.2, §6.6): Pad Length >= payload length.
        ("§6.1 DATA padding = payload", kind::DATA, PADDED, 1, b"\x04abc", C(E::PROTOCOL_ERROR, "padding exceeds the frame payload")),
        ("§6.1 DATA padding > payload", kind::DATA, PADDED, 1, b"\xff", C(E::PROTOCOL_ERROR, "padding exceeds the frame payload")),
        ("§6.1 DATA padding = payload, 1 byte", kind::DATA, PADDED, 1, b"\x01", C(E::PROTOCOL_ERROR, "padding exceeds the frame payload")),
        ("§6.2 HEADERS padding > payload", kind::HEADERS, PADDED, 1, b"\x03ab", C(E::PROTOCOL_ERROR, "padding exceeds the frame payload")),
        ("§6.2 HEADERS padding over priority", kind::HEADERS, PADDED | PRIORITY, 1, b"\x01\0\0\0\0\x10", C(E::PROTOCOL_ERROR, "padding exceeds the frame payload")),
        ("§6.6 PUSH_PROMISE padding over promised id", kind::PUSH_PROMISE, PADDED, 1, b"\x02\0\0\0\x02", C(E::PROTOCOL_ERROR, "padding exceeds the frame payload")),
        // §4.2: too short for the mandatory fields.
        ("§4.2 DATA PADDED, no Pad Length", kind::DATA, PADDED, 1, b"", C(E::FRAME_SIZE_ERROR, "PADDED frame without Pad Length")),
        ("§4.2 HEADERS PADDED, no Pad Length", kind::HEADERS, PADDED, 1, b"", C(E::FRAME_SIZE_ERROR, "PADDED frame without Pad Length")),
        ("§6.2 HEADERS PRIORITY, too short", kind::HEADERS, PRIORITY, 1, b"\0\0\0\x03", C(E::FRAME_SIZE_ERROR, "frame too short for its fields")),
        ("§6.2 HEADERS PRIORITY|PADDED, too short", kind::HEADERS, PRIORITY | PADDED, 1, b"\0\0\0\0\x03", C(E::FRAME_SIZE_ERROR, "frame too short for its fields")),
        ("§6.6 PUSH_PROMISE too short", kind::PUSH_PROMISE, 0, 1, b"\0\0\x02", C(E::FRAME_SIZE_ERROR, "frame too short for its fields")),
        ("§6.6 PUSH_PROMISE PADDED, too short", kind::PUSH_PROMISE, PADDED, 1, b"\0\0\0\x02", C(E::FRAME_SIZE_ERROR, "frame too short for its fields")),
        // §6.5 SETTINGS sizes.
        ("§6.5 SETTINGS length % 6", kind::SETTINGS, 0, 0, b"\0\x01\0\0\x10", C(E::FRAME_SIZE_ERROR, "SETTINGS frame length is not a multiple of 6")),
        ("§6.5 SETTINGS length % 6, longer", kind::SETTINGS, 0, 0, b"\0\x01\0\0\x10\0\0", C(E::FRAME_SIZE_ERROR, "SETTINGS frame length is not a multiple of 6")),
        ("§6.5 SETTINGS ACK with payload", kind::SETTINGS, ACK, 0, b"\0\x01\0\0\x10\0", C(E::FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")),
        ("§6.5 SETTINGS ACK with odd payload", kind::SETTINGS, ACK, 0, b"\0", C(E::FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")),
        // §6.7 PING, §6.4 RST_STREAM, §6.9 WINDOW_UPDATE, §6.3 PRIORITY sizes.
        ("§6.7 PING short", kind::PING, 0, 0, b"1234567", C(E::FRAME_SIZE_ERROR, "PING frame length is not 8")),
        ("§6.7 PING long", kind::PING, ACK, 0, b"123456789", C(E::FRAME_SIZE_ERROR, "PING frame length is not 8")),
        ("§6.4 RST_STREAM short", kind::RST_STREAM, 0, 1, b"\0\0\0", C(E::FRAME_SIZE_ERROR, "RST_STREAM frame length is not 4")),
        ("§6.4 RST_STREAM long", kind::RST_STREAM, 0, 1, b"\0\0\0\0\0", C(E::FRAME_SIZE_ERROR, "RST_STREAM frame length is not 4")),
        ("§6.9 WINDOW_UPDATE short", kind::WINDOW_UPDATE, 0, 1, b"\0\0\x01", C(E::FRAME_SIZE_ERROR, "WINDOW_UPDATE frame length is not 4")),
        ("§6.9 WINDOW_UPDATE long, stream 0", kind::WINDOW_UPDATE, 0, 0, b"\0\0\0\x01\0", C(E::FRAME_SIZE_ERROR, "WINDOW_UPDATE frame length is not 4")),
        ("§6.9 WINDOW_UPDATE 0 on a stream", kind::WINDOW_UPDATE, 0, 3, b"\0\0\0\0", S(3, E::PROTOCOL_ERROR, "WINDOW_UPDATE increment is 0")),
        ("§6.9 WINDOW_UPDATE 0 on the connection", kind::WINDOW_UPDATE, 0, 0, b"\0\0\0\0", C(E::PROTOCOL_ERROR, "WINDOW_UPDATE increment is 0")),
        ("§6.9 WINDOW_UPDATE 0 after masking", kind::WINDOW_UPDATE, 0, 3, b"\x80\0\0\0", S(3, E::PROTOCOL_ERROR, "WINDOW_UPDATE increment is 0")),
        ("§6.3 PRIORITY short", kind::PRIORITY, 0, 3, b"\0\0\0\x01", S(3, E::FRAME_SIZE_ERROR, "PRIORITY frame length is not 5")),
        ("§6.3 PRIORITY long", kind::PRIORITY, 0, 3, b"\0\0\0\x01\0\0", S(3, E::FRAME_SIZE_ERROR, "PRIORITY frame length is not 5")),
        ("§6.8 GOAWAY short", kind::GOAWAY, 0, 0, b"\0\0\0\0\0\0\0", C(E::FRAME_SIZE_ERROR, "GOAWAY frame shorter than 8")),
        ("§6.8 GOAWAY empty", kind::GOAWAY, 0, 0, b"", C(E::FRAME_SIZE_ERROR, "GOAWAY frame shorter than 8")),
        // RFC 7540 §5.3.1: a stream depending on itself (HEADERS: connection, see decode).
        ("§5.3.1 PRIORITY self-dependency", kind::PRIORITY, 0, 3, b"\0\0\0\x03\x10", S(3, E::PROTOCOL_ERROR, "PRIORITY stream depends on itself")),
        ("§5.3.1 PRIORITY self-dependency, exclusive", kind::PRIORITY, 0, 3, b"\x80\0\0\x03\x10", S(3, E::PROTOCOL_ERROR, "PRIORITY stream depends on itself")),
        ("§5.3.1 HEADERS self-dependency", kind::HEADERS, PRIORITY | END_HEADERS, 5, b"\0\0\0\x05\x10hb", C(E::PROTOCOL_ERROR, "HEADERS stream depends on itself")),
        // The stream id check comes first when two rules apply.
        ("§6.3 PRIORITY on stream 0, bad length", kind::PRIORITY, 0, 0, b"", C(E::PROTOCOL_ERROR, "PRIORITY frame on stream 0")),
        ("§6.5 SETTINGS ACK on a stream with payload", kind::SETTINGS, ACK, 2, b"\0", C(E::PROTOCOL_ERROR, "SETTINGS frame on a stream")),
    ]
}

#[test]
fn malformed_frames_table() {
    for (rule, kind, flags, stream, payload, want) in malformed() {
        let bytes = raw(kind, flags, stream, payload);
        assert_eq!(one(&bytes), Err(want), "{rule}");
        // The reserved stream bit changes nothing.
        let bytes = raw(kind, flags, stream | 0x8000_0000, payload);
        assert!(one(&bytes).is_err(), "{rule} with the reserved bit");
    }
}

// ---- field blocks ----

/// Splits, decodes and pushes every frame in `bytes`; the assembler's
/// answers, blocks copied out.
fn push_all(asm: &mut BlockAssembler, bytes: &[u8]) -> Vec<Result<String, FrameError>> {
    all(bytes)
        .into_iter()
        .map(|frame| {
            asm.push(frame).map(|a| match a {
                Assembled::Block {
                    stream,
                    end_stream,
                    block,
                } => format!("block {stream} {end_stream} {}", block.len()),
                Assembled::PushPromise {
                    stream,
                    promised,
                    block,
                } => format!("push {stream} {promised} {}", block.len()),
                Assembled::Pending => "pending".to_owned(),
                Assembled::Frame(f) => format!("{f:?}"),
            })
        })
        .collect()
}

#[test]
fn write_headers_splits_and_assembler_joins() {
    let block: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    for end_stream in [false, true] {
        let mut out = Vec::new();
        write_headers(&mut out, 5, &block, end_stream, 16_384);
        let frames = all(&out);
        let end = if end_stream { flag::END_STREAM } else { 0 };
        // HEADERS 16384, CONTINUATION 16384, CONTINUATION 7232 + END_HEADERS.
        assert_eq!(out[..9], [0x00, 0x40, 0x00, kind::HEADERS, end, 0, 0, 0, 5]);
        let second = HEADER_LEN + 16_384;
        assert_eq!(&out[second..second + 9], &hex("004000 09 00 00000005")[..]);
        let third = second + HEADER_LEN + 16_384;
        assert_eq!(&out[third..third + 9], &hex("001c40 09 04 00000005")[..]);
        assert_eq!(out.len(), third + HEADER_LEN + 7_232);
        assert_eq!(frames.len(), 3);

        let mut asm = BlockAssembler::new(40_000 + 2 * HEADER_LEN);
        let mut answers = Vec::new();
        for frame in frames {
            let got = asm.push(frame).unwrap();
            if let Assembled::Block {
                stream,
                end_stream: got_end,
                block: got_block,
            } = got
            {
                assert_eq!((stream, got_end), (5, end_stream));
                assert_eq!(got_block, &block[..]);
                answers.push("block");
            } else {
                assert_eq!(got, Assembled::Pending);
                answers.push("pending");
            }
            assert_eq!(asm.in_progress(), answers.last() == Some(&"pending"));
        }
        assert_eq!(answers, ["pending", "pending", "block"]);
    }
}

#[test]
fn write_headers_frame_sizes() {
    // (block length, max_frame_size, payload length of each frame)
    #[rustfmt::skip]
    let cases: &[(usize, u32, &[usize])] = &[
        (0, 16_384, &[0]),
        (16_384, 16_384, &[16_384]),
        (16_385, 16_384, &[16_384, 1]),
        (32_768, 16_384, &[16_384, 16_384]),
        (40_000, 20_000, &[20_000, 20_000]),
        // Below the legal minimum: clamped up to 2^14.
        (20_000, 0, &[16_384, 3_616]),
        (20_000, 100, &[16_384, 3_616]),
        // Above the legal maximum: clamped down to 2^24-1.
        (16_777_216, u32::MAX, &[16_777_215, 1]),
    ];
    for &(len, max, want) in cases {
        let mut out = Vec::new();
        write_headers(&mut out, 1, &vec![0; len], false, max);
        let lens: Vec<usize> = all(&out)
            .iter()
            .map(|f| match f {
                Frame::Headers { block, .. } | Frame::Continuation { block, .. } => block.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(lens, want, "{len} at {max}");
    }
}

#[test]
fn write_data_splits_only_beyond_24_bits() {
    let mut out = Vec::new();
    write_data(&mut out, 3, &vec![1; 16_777_216], true);
    let frames = all(&out);
    assert_eq!(frames.len(), 2);
    assert!(
        matches!(frames[0], Frame::Data { end_stream: false, data, .. } if data.len() == 16_777_215)
    );
    assert!(matches!(frames[1], Frame::Data { end_stream: true, data, .. } if data.len() == 1));
}

#[test]
fn goaway_debug_is_cut_to_fit() {
    let mut out = Vec::new();
    write_goaway(&mut out, 1, E::INTERNAL_ERROR, &[b'x'; 20_000]);
    let (header, total) = split_frame(&out, 16_384).unwrap().unwrap();
    assert_eq!((header.len, total), (16_384, out.len()));
    let Ok(Frame::GoAway { debug, .. }) = one(&out) else {
        panic!()
    };
    assert_eq!(debug.len(), 16_376);
}

#[test]
fn single_frame_block_is_borrowed() {
    let bytes = raw(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        b"hb",
    );
    let frame = one(&bytes).unwrap();
    let mut asm = BlockAssembler::new(100);
    let Ok(Assembled::Block { block, .. }) = asm.push(frame) else {
        panic!()
    };
    // The very bytes of the frame: nothing was copied.
    assert!(std::ptr::eq(block.as_ptr(), bytes[HEADER_LEN..].as_ptr()));
}

/// `(name, frames, what push answers for each)`.
type Sequence = (&'static str, Vec<Vec<u8>>, Vec<Result<String, FrameError>>);

#[test]
fn assembler_sequences() {
    use flag::*;
    let h = |flags, stream, block: &[u8]| raw(kind::HEADERS, flags, stream, block);
    let c = |flags, stream, block: &[u8]| raw(kind::CONTINUATION, flags, stream, block);
    let pp = |flags, stream, rest: &[u8]| raw(kind::PUSH_PROMISE, flags, stream, rest);
    let ok = |s: &str| Ok(s.to_owned());
    let interleaved = Err(FrameError::Connection(
        E::PROTOCOL_ERROR,
        "frame other than CONTINUATION inside a field block",
    ));
    let other_stream = Err(FrameError::Connection(
        E::PROTOCOL_ERROR,
        "CONTINUATION on another stream inside a field block",
    ));
    let orphan = Err(FrameError::Connection(
        E::PROTOCOL_ERROR,
        "CONTINUATION without a field block open",
    ));
    let mut ping = Vec::new();
    write_ping(&mut ping, false, [0; 8]);
    let mut data = Vec::new();
    write_data(&mut data, 1, b"d", false);

    #[rustfmt::skip]
    let cases: Vec<Sequence> = vec![
        ("one frame", vec![h(END_HEADERS, 1, b"abc")], vec![ok("block 1 false 3")]),
        ("END_STREAM kept across CONTINUATIONs",
         vec![h(END_STREAM, 1, b"ab"), c(0, 1, b""), c(END_HEADERS, 1, b"cd")],
         vec![ok("pending"), ok("pending"), ok("block 1 true 4")]),
        ("frames pass through around blocks",
         vec![ping.clone(), h(0, 3, b"a"), c(END_HEADERS, 3, b"b"), data.clone()],
         vec![ok("Ping { ack: false, data: [0, 0, 0, 0, 0, 0, 0, 0] }"), ok("pending"), ok("block 3 false 2"),
              ok("Data { stream: 1, end_stream: false, data: [100], flow_len: 1 }")]),
        ("PUSH_PROMISE across CONTINUATIONs",
         vec![pp(0, 1, b"\0\0\0\x02ab"), c(END_HEADERS, 1, b"c")],
         vec![ok("pending"), ok("push 1 2 3")]),
        ("PUSH_PROMISE in one frame", vec![pp(END_HEADERS, 1, b"\0\0\0\x04")], vec![ok("push 1 4 0")]),
        ("two blocks in a row",
         vec![h(0, 1, b"a"), c(END_HEADERS, 1, b"b"), h(0, 3, b"c"), c(END_HEADERS, 3, b"")],
         vec![ok("pending"), ok("block 1 false 2"), ok("pending"), ok("block 3 false 1")]),
        // §6.2, §6.10: anything but a CONTINUATION on the same stream.
        ("DATA mid-block", vec![h(0, 1, b"a"), data.clone()], vec![ok("pending"), interleaved.clone()]),
        ("PING mid-block", vec![h(0, 1, b"a"), ping.clone()], vec![ok("pending"), interleaved.clone()]),
        ("HEADERS mid-block", vec![h(0, 1, b"a"), h(END_HEADERS, 3, b"")], vec![ok("pending"), interleaved.clone()]),
        ("§5.5 unknown type mid-block", vec![h(0, 1, b"a"), raw(0xbb, 0, 1, b"")], vec![ok("pending"), interleaved.clone()]),
        ("PRIORITY mid-block", vec![h(0, 1, b"a"), raw(kind::PRIORITY, 0, 1, b"\0\0\0\x03\0")], vec![ok("pending"), interleaved.clone()]),
        ("CONTINUATION on another stream", vec![h(0, 1, b"a"), c(END_HEADERS, 3, b"b")], vec![ok("pending"), other_stream.clone()]),
        ("CONTINUATION on another stream, PUSH_PROMISE",
         vec![pp(0, 1, b"\0\0\0\x02"), c(0, 1, b""), c(END_HEADERS, 2, b"")],
         vec![ok("pending"), ok("pending"), other_stream]),
        ("CONTINUATION with no block", vec![c(END_HEADERS, 1, b"")], vec![orphan.clone()]),
        ("CONTINUATION after a finished block", vec![h(END_HEADERS, 1, b"a"), c(END_HEADERS, 1, b"")], vec![ok("block 1 false 1"), orphan]),
    ];
    for (name, frames, want) in cases {
        let mut asm = BlockAssembler::new(1 << 20);
        let bytes = frames.concat();
        let got = push_all(&mut asm, &bytes);
        // push_all carries on after an error; compare up to the first.
        assert_eq!(&got[..want.len()], &want[..], "{name}");
    }
}

#[test]
fn assembler_limits_blocks() {
    use flag::*;
    let calm_err = FrameError::Connection(E::ENHANCE_YOUR_CALM, "field block too large");
    let calm: Result<String, _> = Err(calm_err.clone());

    // One frame: up to max_block exactly.
    let mut asm = BlockAssembler::new(100);
    let at = raw(kind::HEADERS, END_HEADERS, 1, &[0; 100]);
    assert!(matches!(
        asm.push(one(&at).unwrap()),
        Ok(Assembled::Block { .. })
    ));
    let over = raw(kind::HEADERS, END_HEADERS, 1, &[0; 101]);
    assert_eq!(asm.push(one(&over).unwrap()), Err(calm_err));

    // Across frames, each CONTINUATION charged its 9 header bytes too.
    let mut asm = BlockAssembler::new(100);
    let mut bytes = raw(kind::HEADERS, 0, 1, &[0; 40]);
    bytes.extend(raw(kind::CONTINUATION, 0, 1, &[0; 40])); // 40 + 49 = 89
    bytes.extend(raw(kind::CONTINUATION, END_HEADERS, 1, &[0; 2])); // + 11 = 100
    let got = push_all(&mut asm, &bytes);
    assert_eq!(got[2], Ok("block 1 false 82".to_owned()));
    let mut asm = BlockAssembler::new(100);
    let mut bytes = raw(kind::HEADERS, 0, 1, &[0; 40]);
    bytes.extend(raw(kind::CONTINUATION, 0, 1, &[0; 40]));
    bytes.extend(raw(kind::CONTINUATION, END_HEADERS, 1, &[0; 3])); // 101
    let got = push_all(&mut asm, &bytes);
    assert_eq!(got[2], calm);
    assert!(!asm.in_progress());

    // A flood of empty CONTINUATIONs ends: 11 fit in 100 bytes, not 12.
    let mut asm = BlockAssembler::new(100);
    let mut bytes = raw(kind::HEADERS, 0, 1, &[]);
    for _ in 0..12 {
        bytes.extend(raw(kind::CONTINUATION, 0, 1, &[]));
    }
    let got = push_all(&mut asm, &bytes);
    assert!(got[..12].iter().all(|a| *a == Ok("pending".to_owned())));
    assert_eq!(got[12], calm);

    // A big flood at a realistic limit.
    let mut asm = BlockAssembler::new(64 * 1024);
    let mut bytes = raw(kind::HEADERS, 0, 1, &[]);
    let fragment = raw(kind::CONTINUATION, 0, 1, &[0x41; 16_384]);
    for _ in 0..10 {
        bytes.extend_from_slice(&fragment);
    }
    let got = push_all(&mut asm, &bytes);
    let first_err = got.iter().position(Result::is_err).unwrap();
    assert_eq!(first_err, 4, "64 KiB holds three 16 KiB CONTINUATIONs");
    assert_eq!(got[first_err], calm);
}

#[test]
fn assembler_keeps_little_memory() {
    let mut asm = BlockAssembler::new(1 << 20);
    let mut bytes = Vec::new();
    write_headers(&mut bytes, 1, &[0; 200_000], false, 16_384);
    let got = push_all(&mut asm, &bytes);
    assert_eq!(got.last().unwrap(), &Ok("block 1 false 200000".to_owned()));
    // The next frame frees all but KEEP_CAPACITY of the buffer.
    let mut ping = Vec::new();
    write_ping(&mut ping, false, [0; 8]);
    push_all(&mut asm, &ping);
    assert!(asm.capacity() <= 16 * 1024, "{}", asm.capacity());
}

// ---- no panics, whatever the bytes ----

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn fuzz_random_bytes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        buf.clear();
        let len = rng.below(256);
        buf.extend((0..len).map(|_| rng.next() as u8));
        fuzz_frames(&buf);
    }
}

#[test]
fn fuzz_random_frames() {
    // Plausible frames: small lengths, known types, few streams, random
    // flags and payload bytes, so decode and the assembler see real work.
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut buf = Vec::new();
    let mut frames = 0;
    for _ in 0..20_000 {
        buf.clear();
        for _ in 0..rng.below(12) {
            let len = match rng.below(4) {
                0 => rng.below(10),
                1 => [0, 4, 5, 6, 8, 9, 12][rng.below(7) as usize],
                _ => rng.below(64),
            };
            let kind = rng.below(12) as u8;
            let flags = match rng.below(3) {
                0 => 0,
                1 => flag::END_HEADERS,
                _ => rng.next() as u8,
            };
            let stream = match rng.below(8) {
                0 => 0,
                1 => rng.next() as u32,
                n => (n as u32) / 2,
            };
            let payload: Vec<u8> = (0..len)
                .map(|_| match rng.below(3) {
                    0 => 0,
                    _ => rng.next() as u8,
                })
                .collect();
            buf.extend(raw(kind, flags, stream, &payload));
            frames += 1;
        }
        // Whole, and cut short at a random point.
        fuzz_frames(&buf);
        let cut = rng.below(buf.len() as u64 + 1) as usize;
        fuzz_frames(&buf[..cut]);
    }
    assert!(frames > 100_000);
}

#[test]
fn fuzz_property_on_known_frames() {
    // The property checks in fuzz_frames, run on frames known to decode.
    let mut buf = Vec::new();
    write_settings(&mut buf, &[(1, 0), (4, 1 << 20)]);
    write_settings_ack(&mut buf);
    write_ping(&mut buf, true, *b"12345678");
    write_window_update(&mut buf, 0, 1000);
    buf.extend(raw(kind::HEADERS, 0, 1, &[0x82; 1000]));
    buf.extend(raw(kind::CONTINUATION, 0, 1, &[0x82; 1000]));
    buf.extend(raw(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x82; 1000]));
    buf.extend(raw(kind::DATA, flag::PADDED, 1, b"\x02ab\0\0"));
    write_rst_stream(&mut buf, 1, E::CANCEL);
    write_goaway(&mut buf, 1, E::NO_ERROR, b"bye");
    fuzz_frames(&buf);
}
