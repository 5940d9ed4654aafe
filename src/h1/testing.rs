//! Test sources for the "shotgun" tests: the same bytes delivered in pieces.
//! Also built for the fuzz targets (feature `_fuzz`), which use only part
//! of it; hence the allow outside the unit tests.
#![cfg_attr(not(test), allow(dead_code))]

use std::io::{self, BufRead, Read};

use super::Source;

/// Serves `pieces` one at a time, like a socket that delivers one segment per
/// `read`: `fill_buf` returns the rest of the current piece and moves to the
/// next piece only once the current one is consumed; `buffered` never moves.
#[derive(Debug)]
pub(crate) struct Pieces<'a> {
    pieces: Vec<&'a [u8]>,
    idx: usize,
    pos: usize,
    /// `fill_buf` calls made while nothing was buffered (a real socket would
    /// have blocked in each of them).
    pub(crate) blocking_fills: usize,
    /// Offer `read_direct`: with nothing buffered, a read takes the next
    /// piece straight into the caller's buffer, as a socket read would.
    direct: bool,
}

impl<'a> Pieces<'a> {
    pub(crate) fn new(pieces: Vec<&'a [u8]>) -> Self {
        Pieces {
            pieces,
            idx: 0,
            pos: 0,
            blocking_fills: 0,
            direct: false,
        }
    }

    /// The same delivery, offering direct reads.
    pub(crate) fn direct(mut self) -> Self {
        self.direct = true;
        self
    }

    /// `input` split in two at `at`.
    pub(crate) fn split(input: &'a [u8], at: usize) -> Self {
        let (a, b) = input.split_at(at);
        Self::new(vec![a, b])
    }

    /// `input` one byte per piece.
    pub(crate) fn bytewise(input: &'a [u8]) -> Self {
        Self::new(input.chunks(1).collect())
    }

    /// Everything not consumed yet, across all pieces.
    pub(crate) fn rest(&self) -> Vec<u8> {
        let mut out = self.buffered().to_vec();
        for p in self.pieces.iter().skip(self.idx + 1) {
            out.extend_from_slice(p);
        }
        out
    }
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Pieces<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.buffered().is_empty() {
            self.blocking_fills += 1;
            while self.idx < self.pieces.len() && self.pos == self.pieces[self.idx].len() {
                self.idx += 1;
                self.pos = 0;
            }
        }
        Ok(self.buffered())
    }

    fn consume(&mut self, amt: usize) {
        assert!(amt <= self.buffered().len(), "consumed more than buffered");
        self.pos += amt;
    }
}

impl Source for Pieces<'_> {
    fn buffered(&self) -> &[u8] {
        match self.pieces.get(self.idx) {
            Some(p) => &p[self.pos..],
            None => &[],
        }
    }

    fn read_direct(&mut self, out: &mut [u8]) -> Option<io::Result<usize>> {
        if !self.direct || !self.buffered().is_empty() {
            return None;
        }
        // Move to the next piece (a socket read waiting for a segment).
        let avail = match self.fill_buf() {
            Ok(a) => a,
            Err(e) => return Some(Err(e)),
        };
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Some(Ok(n))
    }
}

/// A source whose every `fill_buf` fails with `kind` (after `Interrupted`
/// once, which the codecs must retry).
#[derive(Debug)]
pub(crate) struct Failing {
    pub(crate) kind: io::ErrorKind,
    pub(crate) interrupted: bool,
}

impl Read for Failing {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(self.kind, "test failure"))
    }
}

impl BufRead for Failing {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        Err(io::Error::new(self.kind, "test failure"))
    }

    fn consume(&mut self, _amt: usize) {}
}

impl Source for Failing {
    fn buffered(&self) -> &[u8] {
        &[]
    }
}

/// Every way the tests deliver `input`: whole, split at each byte position,
/// and one byte at a time. Each comes with a label for assertion messages.
pub(crate) fn deliveries(input: &[u8]) -> Vec<(String, Pieces<'_>)> {
    let mut out = vec![("whole".to_owned(), Pieces::new(vec![input]))];
    for at in 0..=input.len() {
        out.push((format!("split at {at}"), Pieces::split(input, at)));
    }
    out.push(("bytewise".to_owned(), Pieces::bytewise(input)));
    let direct: Vec<_> = [
        (
            "whole, direct reads".to_owned(),
            Pieces::new(vec![input]).direct(),
        ),
        (
            "bytewise, direct reads".to_owned(),
            Pieces::bytewise(input).direct(),
        ),
    ]
    .into_iter()
    .chain((0..=input.len()).map(|at| {
        (
            format!("split at {at}, direct reads"),
            Pieces::split(input, at).direct(),
        )
    }))
    .collect();
    out.extend(direct);
    out
}
