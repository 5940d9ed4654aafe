//! Content-Encoding br (RFC 7932), with brotli-decompressor's stream
//! decoder driven over the input here: its `Read` adapter reports an
//! error once and `Ok(0)` after, and cannot tell a stream cut short from a
//! corrupt one. Large-window brotli (a window up to 1 GiB, not part of
//! RFC 7932) is refused: a standard window is at most 16 MiB.

use std::io::{self, BufRead};

use brotli_decompressor::{
    BrotliDecoderParameter, BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc,
};

use super::{Codec, Input};

pub(super) struct Brotli {
    input: Input,
    state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
    /// Decoded bytes so far (the decoder's own count).
    total_out: usize,
    /// The stream's last meta-block was decoded.
    ended: bool,
}

impl Brotli {
    pub(super) fn new(input: Input) -> Brotli {
        let mut state = BrotliState::new(
            StandardAlloc::default(),
            StandardAlloc::default(),
            StandardAlloc::default(),
        );
        // The decoder starts with large windows allowed; RFC 7932 has none.
        let set = state.set_parameter(BrotliDecoderParameter::BROTLI_DECODER_PARAM_LARGE_WINDOW, 0);
        debug_assert!(set, "parameters are set before the first byte");
        Brotli {
            input,
            state,
            total_out: 0,
            ended: false,
        }
    }
}

impl Codec for Brotli {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        loop {
            let avail = self.input.fill_buf()?;
            let eof = avail.is_empty();
            let (mut avail_in, mut in_offset) = (avail.len(), 0);
            let (mut avail_out, mut out_offset) = (buf.len(), 0);
            let result = BrotliDecompressStream(
                &mut avail_in,
                &mut in_offset,
                avail,
                &mut avail_out,
                &mut out_offset,
                buf,
                &mut self.total_out,
                &mut self.state,
            );
            self.input.consume(in_offset);
            match result {
                BrotliResult::ResultSuccess => {
                    self.ended = true;
                    return Ok(out_offset);
                }
                BrotliResult::NeedsMoreOutput if out_offset > 0 => return Ok(out_offset),
                BrotliResult::NeedsMoreOutput => {
                    // Room for output, and none made: never loop on it.
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "brotli decoder made no progress",
                    ));
                }
                BrotliResult::NeedsMoreInput if out_offset > 0 => return Ok(out_offset),
                BrotliResult::NeedsMoreInput if eof => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "brotli stream ends before its last meta-block",
                    ));
                }
                BrotliResult::NeedsMoreInput if in_offset == 0 => {
                    // Input there, none taken and no output: never loop on
                    // it (the decoder takes all it is given before asking
                    // for more).
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "brotli decoder made no progress",
                    ));
                }
                BrotliResult::NeedsMoreInput => {}
                BrotliResult::ResultFailure => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("brotli decoder: {:?}", self.state.error_code),
                    ));
                }
            }
        }
    }

    fn input(&self) -> &Input {
        &self.input
    }

    fn input_mut(&mut self) -> &mut Input {
        &mut self.input
    }
}
