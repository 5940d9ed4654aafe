//! Content-Encoding deflate: the zlib format (RFC 9110 §8.4.1.2, RFC
//! 1950), its Adler-32 checked. Servers that send raw deflate (RFC 1951)
//! under that name are common enough that browsers and curl accept it: a
//! body whose first two bytes are no zlib header is decoded as raw
//! deflate.
//!
//! flate2's low-level `Decompress` is driven here, not its `Read`
//! adapters, because those return `Ok(0)` for a stream cut short.

use std::io::{self, BufRead};

use flate2::{Decompress, FlushDecompress, Status};

use super::{Codec, Input};

pub(super) struct Inflate {
    input: Input,
    /// The body's first two bytes, taken to tell zlib from raw deflate and
    /// fed to the decompressor before the rest.
    head: [u8; 2],
    head_len: usize,
    head_fed: usize,
    /// Made once the head is known.
    z: Option<Decompress>,
    /// The stream's last block was decoded.
    ended: bool,
}

impl Inflate {
    pub(super) fn new(input: Input) -> Inflate {
        Inflate {
            input,
            head: [0; 2],
            head_len: 0,
            head_fed: 0,
            z: None,
            ended: false,
        }
    }
}

/// Takes the body's first bytes into `head` (two, unless the body is
/// shorter) and picks the format by them; how many it took.
fn sniff(input: &mut Input, head: &mut [u8; 2]) -> io::Result<(usize, Decompress)> {
    let mut len = 0;
    while len < head.len() {
        let avail = input.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        let k = avail.len().min(head.len() - len);
        head[len..len + k].copy_from_slice(&avail[..k]);
        input.consume(k);
        len += k;
    }
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "no deflate stream",
        ));
    }
    Ok((len, Decompress::new(is_zlib_header(&head[..len]))))
}

/// Whether a body starting with `head` is in the zlib format (RFC 1950
/// §2.2): the compression method is 8 (deflate), the window at most
/// 32 KiB (CINFO ≤ 7), and CMF·256 + FLG a multiple of 31.
pub(in crate::body) fn is_zlib_header(head: &[u8]) -> bool {
    match *head {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
        }
        _ => false,
    }
}

impl Codec for Inflate {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        let z = match self.z.as_mut() {
            Some(z) => z,
            None => {
                let (len, z) = sniff(&mut self.input, &mut self.head)?;
                self.head_len = len;
                self.z.insert(z)
            }
        };
        loop {
            let from_head = self.head_fed < self.head_len;
            let avail = if from_head {
                &self.head[self.head_fed..self.head_len]
            } else {
                self.input.fill_buf()?
            };
            let eof = avail.is_empty();
            let (in_before, out_before) = (z.total_in(), z.total_out());
            let status = z
                .decompress(avail, buf, FlushDecompress::None)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let used = (z.total_in() - in_before) as usize;
            let made = (z.total_out() - out_before) as usize;
            if from_head {
                self.head_fed += used;
            } else {
                self.input.consume(used);
            }
            match status {
                Status::StreamEnd => {
                    self.ended = true;
                    return Ok(made);
                }
                Status::Ok | Status::BufError => {
                    if made > 0 {
                        return Ok(made);
                    }
                    if eof {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "deflate stream ends before its last block",
                        ));
                    }
                    if used == 0 {
                        // Input and room for output, and nothing done:
                        // never loop on it.
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "deflate decoder made no progress",
                        ));
                    }
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
