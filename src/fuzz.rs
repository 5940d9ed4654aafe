//! Entry points for the fuzz targets in `fuzz/` (feature `_fuzz`; not part
//! of the API, no stability promised). Each runs one of the `h1` or `h2`
//! codecs on raw bytes and asserts what it must keep whatever the bytes
//! are: beyond "no panic", for `h1` the same outcome however the bytes
//! arrive (the split-point property the unit tests check on chosen
//! inputs), for `h2` that what was decoded encodes back to the same thing.

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::h1::{
    decode::{DecodeError, Decoder},
    framing::{self, BodyFraming},
    head::{HeadError, HeaderSlots, read_response_head},
    testing::Pieces,
};
use crate::h2::{frame, hpack};

/// The head limit the targets parse with: small, so the limit's edges are
/// reachable.
const MAX_HEAD: usize = 4096;

/// The response-head parser on `data[1..]`, delivered whole and split in
/// two where `data[0]` says: the same head (or the same kind of failure)
/// and the same bytes left for the body.
pub fn response_head(data: &[u8]) {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let at = usize::from(pick) * input.len() / 255;
    let whole = head_outcome(Pieces::new(vec![input]));
    let split = head_outcome(Pieces::split(input, at));
    assert_eq!(whole, split, "split at {at}");
}

/// What parsing one head gave, for comparison.
fn head_outcome(mut src: Pieces<'_>) -> String {
    match read_response_head(&mut src, MAX_HEAD, &mut HeaderSlots::new()) {
        Ok(head) => {
            assert!(head.status.as_u16() >= 100, "status below 100");
            format!(
                "{:?} {} {:?} left {:?}",
                head.version,
                head.status,
                head.headers,
                src.rest()
            )
        }
        Err(HeadError::Malformed(_)) => "Malformed".to_owned(),
        Err(e) => format!("{e:?}"),
    }
}

/// The chunked decoder on `data[1..]`: read whole with reads of a size
/// `data[0]` picks, and one byte at a time with one-byte reads; the same
/// body, trailers and outcome. The body is never longer than the input.
pub fn chunked_body(data: &[u8]) {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let read_len = usize::from(pick) + 1;
    let whole = decode(Pieces::new(vec![input]), read_len);
    let bytewise = decode(Pieces::bytewise(input), 1);
    assert_eq!(whole, bytewise);
    assert!(whole.0.len() <= input.len(), "more body than input");
}

/// Decodes a whole chunked body: its bytes, then its trailers or the kind
/// of error that ended it.
fn decode(mut src: Pieces<'_>, read_len: usize) -> (Vec<u8>, String) {
    let mut dec = Decoder::new(BodyFraming::Chunked);
    let mut buf = vec![0; read_len];
    let mut body = Vec::new();
    // Every read returns bytes or ends: the input bounds the loop.
    loop {
        match dec.read(&mut src, &mut buf) {
            Ok(0) => {
                assert!(dec.is_done(), "Ok(0) before the end");
                return (body, format!("trailers {:?}", dec.take_trailers()));
            }
            Ok(n) => body.extend_from_slice(&buf[..n]),
            Err(DecodeError::Truncated(_)) => return (body, "Truncated".to_owned()),
            Err(DecodeError::Malformed(_)) => return (body, "Malformed".to_owned()),
            Err(DecodeError::Io(e)) => panic!("no I/O error from memory: {e}"),
        }
    }
}

/// The body-length rules on a method, a status and header lines taken
/// from `data` (`name: value` per line; lines that are not a valid field
/// are skipped). A `Content-Length` framing agrees with `content_length`;
/// HEAD, 1xx, 204 and 304 never have a body.
pub fn framing(data: &[u8]) {
    let [m, hi, lo, rest @ ..] = data else {
        return;
    };
    let method =
        [Method::GET, Method::HEAD, Method::POST, Method::CONNECT][usize::from(*m) % 4].clone();
    let code = 100 + (u16::from(*hi) << 8 | u16::from(*lo)) % 500;
    let Ok(status) = StatusCode::from_u16(code) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let result = framing::response_framing(&method, status, &headers);
    if let Ok(BodyFraming::Length(n)) = result {
        assert_eq!(framing::content_length(&headers), Ok(n));
    }
    let bodiless = method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if bodiless {
        assert_eq!(result, Ok(BodyFraming::None));
    }
    let _ = framing::persistence(http::Version::HTTP_11, &headers);
}

/// The HTTP/2 frame codec on `data` as a sequence of frames, split,
/// decoded and reassembled into field blocks as a connection reads them
/// (1024-byte frames, 4096-byte blocks): no panic; every frame handed out
/// lies within `data` and the frame size; splitting and reassembly fail
/// only with connection errors, and a stream error names its frame's
/// stream; a decoded frame written again decodes to the same frame (DATA
/// without its padding); a reassembled field block, no longer than the
/// bound, written again as HEADERS and CONTINUATION frames reassembles to
/// the same bytes.
pub fn h2_frames(data: &[u8]) {
    frame::fuzz_frames(data);
}

/// The HPACK decoder on `data` as one field block (4096-byte table,
/// 2048-byte list bound): no panic; the fields emitted, also before an
/// error, stay within the bound; a block that decodes, encoded again (every
/// third field never-indexed) and decoded by a fresh decoder, gives the
/// same fields, and the encoder's and decoder's tables agree.
pub fn hpack(data: &[u8]) {
    hpack::fuzz_decode(data);
}
