//! Content-Encoding zstd (RFC 8878), with ruzstd's frame decoder driven
//! here: every frame of the body in turn (a body may hold several, as a
//! gzip body several members), skippable frames skipped, each frame's
//! content checksum checked when it has one. Each frame's header is read
//! here first, to refuse a window over 8 MiB (RFC 9659: HTTP's zstd
//! encoders must not need more, and browsers refuse more): the decoder
//! keeps up to a window of decoded bytes, so that bounds its memory.
//! Frames that need a dictionary are refused (ruzstd has none to give).

use std::io::{self, Read};

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder, errors::FrameDecoderError};

use super::{Codec, Input, read_full};

/// A zstd frame's magic number (little-endian on the wire).
const MAGIC: u32 = 0xFD2F_B528;

/// Skippable frames' magic numbers: 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE: u32 = 0x184D_2A50;

/// The largest window a frame may need (RFC 9659 §3).
pub(in crate::body) const MAX_WINDOW: u64 = 8 << 20;

pub(super) struct Zstd {
    input: Input,
    frame: FrameDecoder,
    /// A frame is being decoded (its header was read).
    in_frame: bool,
}

impl Zstd {
    pub(super) fn new(input: Input) -> Zstd {
        Zstd {
            input,
            frame: FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Reads the next frame's header, skipping skippable frames, and
    /// starts decoding that frame. False at the end of the body.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            let mut magic = [0; 4];
            match read_full(&mut self.input, &mut magic)? {
                0 => return Ok(false),
                4 => {}
                _ => return Err(cut_short("a frame's magic number")),
            }
            let number = u32::from_le_bytes(magic);
            if number & SKIPPABLE_MASK == SKIPPABLE {
                let mut size = [0; 4];
                if read_full(&mut self.input, &mut size)? < size.len() {
                    return Err(cut_short("a skippable frame's size"));
                }
                let size = u64::from(u32::from_le_bytes(size));
                let skipped = io::copy(&mut (&mut self.input).take(size), &mut io::sink())?;
                if skipped < size {
                    return Err(cut_short("a skippable frame"));
                }
                continue;
            }
            if number != MAGIC {
                return Err(corrupt(format!(
                    "no zstd frame: magic number {number:#010x}"
                )));
            }
            let mut header = magic.to_vec();
            let mut descriptor = [0; 1];
            if read_full(&mut self.input, &mut descriptor)? < 1 {
                return Err(cut_short("a frame header"));
            }
            header.push(descriptor[0]);
            let start = header.len();
            header.resize(start + header_fields_len(descriptor[0]), 0);
            if read_full(&mut self.input, &mut header[start..])? < header.len() - start {
                return Err(cut_short("a frame header"));
            }
            let window = window_size(descriptor[0], &header[start..]);
            if window > MAX_WINDOW {
                return Err(corrupt(format!(
                    "a zstd frame needs a {window}-byte window, over the 8 MiB that RFC 9659 allows"
                )));
            }
            self.frame
                .init(&header[..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            return Ok(true);
        }
    }

    /// A decoding error: the stream cut short when the input ended before
    /// it, else corrupt.
    fn decode_error(&self, e: FrameDecoderError) -> io::Error {
        let kind = if self.input.get_ref().eof() {
            io::ErrorKind::UnexpectedEof
        } else {
            io::ErrorKind::InvalidData
        };
        io::Error::new(kind, e)
    }

    /// The frame was decoded and all of it read: its checksum, if it has
    /// one, must match what was decoded.
    fn check_frame(&self) -> io::Result<()> {
        match (
            self.frame.get_checksum_from_data(),
            self.frame.get_calculated_checksum(),
        ) {
            (Some(sent), Some(decoded)) if sent != decoded => Err(corrupt(format!(
                "zstd content checksum {sent:#010x}, decoded bytes hash to {decoded:#010x}"
            ))),
            _ => Ok(()),
        }
    }
}

impl Codec for Zstd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            // ruzstd's StreamingDecoder loop: decode blocks until `buf`
            // can be filled past the window it keeps, or the frame ends.
            while self.frame.can_collect() < buf.len() && !self.frame.is_finished() {
                let want = buf.len() - self.frame.can_collect();
                if let Err(e) = self
                    .frame
                    .decode_blocks(&mut self.input, BlockDecodingStrategy::UptoBytes(want))
                {
                    return Err(self.decode_error(e));
                }
            }
            let n = self
                .frame
                .read(buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if n > 0 {
                return Ok(n);
            }
            // The frame is finished and all of it read.
            self.check_frame()?;
            self.in_frame = false;
        }
    }

    fn input(&self) -> &Input {
        &self.input
    }

    fn input_mut(&mut self) -> &mut Input {
        &mut self.input
    }
}

/// How many header bytes follow a frame's descriptor (RFC 8878 §3.1.1.1):
/// the window descriptor unless the frame is a single segment, the
/// dictionary ID, the frame content size.
fn header_fields_len(descriptor: u8) -> usize {
    let single_segment = descriptor & 0x20 != 0;
    let window = usize::from(!single_segment);
    let dictionary = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
    let content_size = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    window + dictionary + content_size
}

/// The window a frame needs (RFC 8878 §3.1.1.1.2), from its descriptor and
/// the header fields after it: a single segment's is its content size.
pub(in crate::body) fn window_size(descriptor: u8, fields: &[u8]) -> u64 {
    if descriptor & 0x20 == 0 {
        let exponent = u32::from(fields[0] >> 3);
        let mantissa = u64::from(fields[0] & 0x07);
        let base = 1u64 << (10 + exponent);
        return base + base / 8 * mantissa;
    }
    let dictionary = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
    match fields[dictionary..] {
        [a] => u64::from(a),
        [a, b] => u64::from(u16::from_le_bytes([a, b])) + 256,
        [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => unreachable!("header_fields_len sized the fields"),
    }
}

fn cut_short(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("zstd stream ends inside {what}"),
    )
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}
