//! Content-Encoding gzip (RFC 1952), as Go's `gzipReader`: multi-member,
//! so it stops only at the body's end, and bytes after a member that do
//! not start another are a corrupt stream.

use std::io::{self, Read};

use flate2::bufread::MultiGzDecoder;

use super::{Codec, Input};

pub(super) struct Gzip(MultiGzDecoder<Input>);

impl Gzip {
    pub(super) fn new(input: Input) -> Gzip {
        Gzip(MultiGzDecoder::new(input))
    }
}

impl Codec for Gzip {
    /// flate2's own errors: `UnexpectedEof` for a stream cut short, other
    /// kinds for corrupt data.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    fn input(&self) -> &Input {
        self.0.get_ref()
    }

    fn input_mut(&mut self) -> &mut Input {
        self.0.get_mut()
    }
}
