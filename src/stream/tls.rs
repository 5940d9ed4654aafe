//! The two halves of a TLS session over rustls 0.23, for a connection with
//! one reader thread and one writer thread (DESIGN.md, "TLS with one
//! reader and one writer thread"). The handshake is the dial's
//! (`dial::tls`); this module takes the session once it is done.
//!
//! rustls 0.23 has one state machine for both directions and no split API,
//! so the two halves share it as `Arc<Mutex<ClientConnection>>`, shaped like
//! rustls 0.24's `Connection::split()` so moving to that API touches only
//! this file. The rules:
//!
//! 1. Nobody holds the rustls lock during socket I/O, a blocking channel
//!    operation, the user's body read, or a trace hook.
//! 2. [`TlsReadHalf`] reads ciphertext from the socket without the lock,
//!    then locks to feed it, decrypt and take plaintext. If rustls now has
//!    records to send (an alert), it pokes the writer; it never writes.
//! 3. [`TlsWriteHalf`] is the only taker of TLS output (`write_tls`, under
//!    the lock, into a buffer) and the only socket writer (after unlocking),
//!    so records reach the wire in the order TLS numbered them.
//! 4. Records without plaintext (TLS 1.3 session tickets, key updates) are
//!    consumed inside [`TlsReadHalf::read`], which returns only plaintext,
//!    `close_notify` or EOF; so the idle peek never mistakes a ticket for
//!    the server speaking out of turn.
//! 5. A TCP FIN without `close_notify` reads as a plain EOF here; the body's
//!    framing decides whether that was a truncation (length-framed and
//!    chunked bodies) or the body's natural end (close-delimited, as Go).

use std::{
    io::{self, Read, Write},
    net::Shutdown,
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rustls::ClientConnection;

use super::{Peer, Socket};

/// Ciphertext read buffer: one full TLS record and its header.
const CIPHERTEXT_BUF: usize = 16 * 1024 + 512;

/// True when an I/O error carries a rustls error (a TLS failure after the
/// handshake).
pub(crate) fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// A connected TLS session, split into its roles.
#[derive(Debug)]
pub(crate) struct TlsParts {
    pub(crate) read: TlsReadHalf,
    pub(crate) write: TlsWriteHalf,
    pub(crate) closer: TlsCloser,
    /// The protocol ALPN settled on, if the server chose one.
    pub(crate) alpn: Option<Vec<u8>>,
}

impl TlsParts {
    pub(crate) fn new(tcp: Socket, conn: ClientConnection) -> io::Result<TlsParts> {
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let tls = Arc::new(Mutex::new(conn));
        // Capacity 1: pokes that arrive while one is pending coalesce.
        let (poke, poked) = crossbeam_channel::bounded(1);
        Ok(TlsParts {
            alpn,
            read: TlsReadHalf {
                sock: tcp.try_clone()?,
                tls: tls.clone(),
                poke,
                cipher: Ciphertext {
                    buf: vec![0; CIPHERTEXT_BUF].into_boxed_slice(),
                    start: 0,
                    end: 0,
                    records: Records::default(),
                },
                eof: false,
                timeout: None,
                shortened: false,
            },
            closer: TlsCloser {
                sock: tcp.try_clone()?,
                tls: tls.clone(),
            },
            write: TlsWriteHalf {
                sock: tcp,
                tls,
                out: Vec::new(),
                poked,
            },
        })
    }
}

/// The reader role. Not `Clone`: one thread (or the body it is lent to)
/// reads at a time.
pub(crate) struct TlsReadHalf {
    sock: Socket,
    /// Shared with the writer half; held only for in-memory work.
    tls: Arc<Mutex<ClientConnection>>,
    /// Wakes the writer when rustls has records to send (alerts).
    poke: Sender<()>,
    cipher: Ciphertext,
    /// The socket reached EOF and rustls was told.
    eof: bool,
    /// The read timeout the owner set: it bounds one whole `read` call,
    /// however many plaintext-free records (tickets, key updates) arrive.
    timeout: Option<Duration>,
    /// The socket's timeout was cut to what remained of the last call's.
    shortened: bool,
}

/// Ciphertext read but not yet given to rustls: `buf[start..end]`.
struct Ciphertext {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    records: Records,
}

/// Where the ciphertext stream stands against TLS record boundaries, so a
/// TCP FIN without `close_notify` can be judged as Go's crypto/tls does: at
/// a boundary it is a plain EOF (rule 6), inside a record a truncation.
#[derive(Debug, Default)]
struct Records {
    /// Bytes of the next record header seen so far (0..5).
    header: [u8; 5],
    have: usize,
    /// Bytes of the current record's body still to come.
    body_left: usize,
}

impl Records {
    fn track(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let k = self.body_left.min(bytes.len());
                self.body_left -= k;
                bytes = &bytes[k..];
                continue;
            }
            let k = (5 - self.have).min(bytes.len());
            self.header[self.have..self.have + k].copy_from_slice(&bytes[..k]);
            self.have += k;
            bytes = &bytes[k..];
            if self.have == 5 {
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.have = 0;
            }
        }
    }

    fn at_boundary(&self) -> bool {
        self.have == 0 && self.body_left == 0
    }
}

impl TlsReadHalf {
    pub(crate) fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(t)?;
        self.timeout = t;
        self.shortened = false;
        Ok(())
    }

    /// Reads ciphertext from the socket, without the lock. After the first
    /// read of a call, what is left of the call's timeout bounds the wait.
    fn read_socket(&mut self, deadline: Option<Instant>, first: bool) -> io::Result<usize> {
        if !first {
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::WouldBlock, "read timed out"));
                }
                self.sock.set_read_timeout(Some(left))?;
                self.shortened = true;
            }
        }
        loop {
            match self.sock.read(&mut self.cipher.buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl Ciphertext {
    /// Feeds held ciphertext to rustls and takes plaintext into `out`.
    /// `None`: rustls needs more ciphertext. Caller holds the lock.
    fn step_locked(
        &mut self,
        tls: &mut ClientConnection,
        out: &mut [u8],
    ) -> Option<io::Result<usize>> {
        while self.start < self.end {
            let mut rest = &self.buf[self.start..self.end];
            match tls.read_tls(&mut rest) {
                // After close_notify rustls takes nothing more; RFC 8446
                // §6.1: data after it is ignored.
                Ok(0) => {
                    self.start = self.end;
                    break;
                }
                Ok(n) => self.start += n,
                // Its plaintext buffer is full: hand plaintext out first.
                Err(_) => break,
            }
            if let Err(e) = tls.process_new_packets() {
                return Some(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
        }
        match tls.reader().read(out) {
            // n == 0 means close_notify: a clean end of stream.
            Ok(n) => Some(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            // FIN without close_notify: an EOF like any other between
            // records (rule 6); inside a record, bytes were lost.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Some(if self.records.at_boundary() {
                    Ok(0)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed in the middle of a TLS record",
                    ))
                })
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl TlsReadHalf {
    /// A read that never waits for the socket: plaintext, `Ok(0)` for
    /// `close_notify` or EOF, or `WouldBlock` once what has arrived is
    /// used up (records without plaintext are consumed on the way).
    pub(crate) fn read_now(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.read_with(out, false)
    }

    /// The read, waiting for the socket (`wait`) or not.
    fn read_with(&mut self, out: &mut [u8], wait: bool) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.shortened {
            self.sock.set_read_timeout(self.timeout)?;
            self.shortened = false;
        }
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut first = true;
        loop {
            let (got, poke) = {
                let mut tls = self.tls.lock();
                let got = self.cipher.step_locked(&mut tls, out);
                (got, tls.wants_write())
            };
            if poke {
                let _ = self.poke.try_send(());
            }
            if let Some(res) = got {
                return res;
            }
            if self.eof {
                return Ok(0);
            }
            if !wait && self.sock.look() == Peer::Quiet {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // More ciphertext, read without the lock.
            let n = self.read_socket(deadline, first)?;
            first = false;
            self.cipher.records.track(&self.cipher.buf[..n]);
            (self.cipher.start, self.cipher.end) = (0, n);
            if n == 0 {
                self.eof = true;
                let mut tls = self.tls.lock();
                // An empty read tells rustls the peer closed.
                let _ = tls.read_tls(&mut &[][..]);
                let _ = tls.process_new_packets();
            }
        }
    }
}

impl Read for TlsReadHalf {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.read_with(out, true)
    }
}

impl std::fmt::Debug for TlsReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReadHalf")
            .field("buffered", &(self.cipher.end - self.cipher.start))
            .finish()
    }
}

/// The writer role: the only thread that takes TLS output or writes the
/// socket.
pub(crate) struct TlsWriteHalf {
    sock: Socket,
    tls: Arc<Mutex<ClientConnection>>,
    /// Records taken from rustls, written after the lock is released.
    out: Vec<u8>,
    /// Pokes from the reader half: rustls has records to send.
    poked: Receiver<()>,
}

impl TlsWriteHalf {
    pub(crate) fn poked(&self) -> &Receiver<()> {
        &self.poked
    }

    /// Sends whatever rustls has queued (an alert, a key update answer).
    pub(crate) fn send_pending(&mut self) -> io::Result<()> {
        {
            let mut tls = self.tls.lock();
            while tls.wants_write() {
                tls.write_tls(&mut self.out)?;
            }
        }
        self.sock.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }
}

impl Write for TlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = {
            let mut tls = self.tls.lock();
            let n = tls.writer().write(buf)?;
            while tls.wants_write() {
                tls.write_tls(&mut self.out)?;
            }
            n
        };
        self.sock.write_all(&self.out)?;
        self.out.clear();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

impl std::fmt::Debug for TlsWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsWriteHalf").finish_non_exhaustive()
    }
}

/// Shuts a TLS connection down from any thread.
pub(crate) struct TlsCloser {
    sock: Socket,
    tls: Arc<Mutex<ClientConnection>>,
}

impl TlsCloser {
    /// The socket beneath, for looks that take nothing (see
    /// `Closer::look`).
    pub(crate) fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Abrupt: wakes blocked reads and writes at once.
    pub(crate) fn shutdown(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// For a connection that is idle (its writer has nothing to send):
    /// `close_notify` first, best effort and briefly, then shut down.
    pub(crate) fn close_notify(&self) {
        let mut out = Vec::new();
        {
            let mut tls = self.tls.lock();
            tls.send_close_notify();
            while tls.wants_write() {
                if tls.write_tls(&mut out).is_err() {
                    break;
                }
            }
        }
        let _ = self
            .sock
            .set_write_timeout(Some(Duration::from_millis(100)));
        let _ = (&self.sock).write_all(&out);
        self.shutdown();
    }
}

impl std::fmt::Debug for TlsCloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCloser").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Records;

    #[test]
    fn record_boundaries_at_every_split() {
        // Two records: 3-byte body, then an empty body; then half a header.
        let stream = [23, 3, 3, 0, 3, b'a', b'b', b'c', 23, 3, 3, 0, 0, 23, 3];
        let boundary_after = |n: usize| {
            let mut r = Records::default();
            r.track(&stream[..n]);
            r.at_boundary()
        };
        let want: Vec<usize> = vec![0, 8, 13];
        for n in 0..=stream.len() {
            assert_eq!(boundary_after(n), want.contains(&n), "after {n} bytes");
            // Split anywhere before n: same answer.
            for cut in 0..=n {
                let mut r = Records::default();
                r.track(&stream[..cut]);
                r.track(&stream[cut..n]);
                assert_eq!(r.at_boundary(), want.contains(&n), "{cut}/{n}");
            }
        }
    }
}
