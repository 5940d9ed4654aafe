//! The two halves of a connection's byte stream. The reader thread (and
//! the response body it lends them to) owns the [`ReadHalf`]; the writer
//! thread owns the [`WriteHalf`]. Neither is `Clone`, so exactly one thread
//! plays each role. TLS joins as a second variant of each enum, so nothing
//! above this file names a socket type.
//!
//! The variants nest: a TLS half owns the matching half of the [`Stream`]
//! beneath it, which is a socket's or another TLS session's (TLS in TLS,
//! for an https target through an https proxy, as Go's `tls.Client` over
//! a `tls.Conn`). So a read half is a chain that ends in the socket, owned
//! whole by the reader thread; likewise the write half by the writer
//! thread, and the [`Closer`] by the connection's shared state.

use std::{
    fmt,
    io::{self, Read, Write},
    net::{Shutdown, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam_channel::Receiver;

mod page;
pub(crate) mod tls;

pub(crate) use crate::net::{Peer, Socket};
use page::Page;
use tls::{TlsCloser, TlsParts, TlsReadHalf, TlsWriteHalf};

/// A freshly dialled connection, split into its halves.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) read: ReadHalf,
    pub(crate) write: WriteHalf,
    pub(crate) closer: Closer,
    pub(crate) local_addr: SocketAddr,
    pub(crate) remote_addr: SocketAddr,
    /// The protocol TLS's ALPN settled on; `None` for plain TCP or when the
    /// server chose none.
    pub(crate) alpn: Option<Vec<u8>>,
}

impl Stream {
    /// Splits a plain connection: three handles on one socket, one file
    /// descriptor (`&Socket` reads and writes).
    pub(crate) fn plain(sock: Socket) -> io::Result<Stream> {
        let local_addr = sock.local_addr()?;
        let remote_addr = sock.peer_addr()?;
        let tcp = Arc::new(sock);
        Ok(Stream {
            read: ReadHalf::Plain(tcp.clone()),
            closer: Closer::Plain(tcp.clone()),
            write: WriteHalf::Plain(tcp),
            local_addr,
            remote_addr,
            alpn: None,
        })
    }

    /// A TLS session whose handshake is done, over a socket or another
    /// session (see [`TlsParts::new`]); the addresses are the socket's.
    pub(crate) fn tls(parts: TlsParts, local_addr: SocketAddr, remote_addr: SocketAddr) -> Stream {
        Stream {
            read: ReadHalf::Tls(Box::new(parts.read)),
            write: WriteHalf::Tls(Box::new(parts.write)),
            closer: Closer::Tls(Box::new(parts.closer)),
            local_addr,
            remote_addr,
            alpn: parts.alpn,
        }
    }
}

/// Reads through the read half. For the dial's steps (a proxy's `CONNECT`
/// or SOCKS exchange, the TLS handshake), which run on the dialling thread
/// before the halves go to the connection's threads.
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(buf)
    }
}

/// Writes through the write half; like [`Read`], for the dial's steps.
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write.flush()
    }
}

/// Reads the connection. Owned by the reader thread, lent to the caller's
/// response body while it reads.
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Plain(Arc<Socket>),
    // Boxed: the half moves between the reader thread and the body, and
    // lives in every reader frame; plain connections need not carry
    // TLS's size around. (It also ends the recursion: a TLS half owns the
    // half beneath it.)
    Tls(Box<TlsReadHalf>),
}

impl ReadHalf {
    /// Sets this half's read timeout (`SO_RCVTIMEO` on the socket at the
    /// bottom; the writer never sets it). Under TLS it bounds one whole
    /// `read` call, however many layers and records it takes.
    pub(crate) fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        match self {
            ReadHalf::Plain(s) => s.set_read_timeout(t),
            ReadHalf::Tls(s) => s.set_read_timeout(t),
        }
    }

    /// A read that never waits: `WouldBlock` when nothing has arrived
    /// (under TLS: when what arrived holds no plaintext, its records
    /// consumed on the way). `Ok(0)` is EOF (or `close_notify`).
    pub(crate) fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            // Something (bytes, EOF or an error) is there: the read takes
            // it without blocking.
            ReadHalf::Plain(s) => match s.look() {
                Peer::Quiet => Err(io::ErrorKind::WouldBlock.into()),
                Peer::Spoke | Peer::Closed => (&**s).read(buf),
            },
            ReadHalf::Tls(t) => t.read_now(buf),
        }
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadHalf::Plain(s) => (&**s).read(buf),
            ReadHalf::Tls(s) => s.read(buf),
        }
    }
}

/// Writes the connection. Held by whoever plays the writer role: one
/// writer at a time takes TLS output and writes the socket, so records and
/// requests go out in order (see `conn::Shared::write` for who that is).
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Plain(Arc<Socket>),
    // Boxed: a TLS write half owns the write half beneath it.
    Tls(Box<TlsWriteHalf>),
}

impl WriteHalf {
    /// Ready when the read side needs records sent (TLS alerts); `None`
    /// for plain TCP, where the read side never needs the writer. Under
    /// TLS in TLS one channel serves every layer: a poke from any of them
    /// wakes the writer thread.
    pub(crate) fn poked(&self) -> Option<Receiver<()>> {
        match self {
            WriteHalf::Plain(_) => None,
            WriteHalf::Tls(w) => Some(w.poked().clone()),
        }
    }

    /// Sends what the read side queued (TLS only), in every layer.
    pub(crate) fn send_pending(&mut self) -> io::Result<()> {
        match self {
            WriteHalf::Plain(_) => Ok(()),
            WriteHalf::Tls(w) => w.send_pending(),
        }
    }

    /// Takes as much of `buf` as it can without waiting and returns how
    /// much: plain TCP sends what fits in the socket's buffer; TLS seals it
    /// all (as far as rustls takes it) and sends the records that fit,
    /// keeping the rest queued ([`WriteHalf::queued`]) for the next
    /// `write` or `flush`, which send them first. Never fails: an error is
    /// left for a blocking write to meet again (0 bytes taken, or, under
    /// TLS, records left queued), so it is reported once, by the writer.
    pub(crate) fn write_now(&mut self, buf: &[u8]) -> usize {
        match self {
            WriteHalf::Plain(s) => s.send_now(buf).unwrap_or(0),
            WriteHalf::Tls(w) => w.write_now(buf),
        }
    }

    /// Whether bytes taken by [`WriteHalf::write_now`] still wait to be
    /// sent, in this layer or any beneath.
    pub(crate) fn queued(&self) -> bool {
        match self {
            WriteHalf::Plain(_) => false,
            WriteHalf::Tls(w) => w.queued(),
        }
    }

    /// Sets the write timeout (`SO_SNDTIMEO`) of the socket at the bottom,
    /// whatever the layers: for the dial's steps (the TLS handshake), on
    /// the dialling thread before the writer thread exists, and for an
    /// upgraded connection's hand-over (cleared).
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            WriteHalf::Plain(s) => s.set_write_timeout(t),
            WriteHalf::Tls(w) => w.set_write_timeout(t),
        }
    }

    /// Ends the write direction: under TLS, `close_notify` in every layer
    /// (top first, each sealed in the layer beneath), then the socket's
    /// FIN (`shutdown(Write)`). The read direction stays open. For an
    /// upgraded connection, whose one owner writes (no writer thread).
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            WriteHalf::Plain(s) => s.shutdown(Shutdown::Write),
            WriteHalf::Tls(w) => w.shutdown_write(),
        }
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WriteHalf::Plain(s) => (&**s).write(buf),
            WriteHalf::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            WriteHalf::Plain(s) => (&**s).flush(),
            WriteHalf::Tls(s) => s.flush(),
        }
    }
}

/// Shuts the socket down from any thread: wakes a blocked read (it returns
/// EOF or an error) and a blocked write (it fails). Held by the connection's
/// shared state. The reader thread also waits on it, without reading, while
/// a response body holds the read half. Under TLS in TLS every layer's
/// closer owns the one beneath; the socket is at the bottom.
///
/// Cloned only to hand an upgraded connection's caller a closer of its own
/// (the connection's shared state drops its clone without shutting down).
#[derive(Debug, Clone)]
pub(crate) enum Closer {
    Plain(Arc<Socket>),
    // Boxed: a TLS closer owns the closer beneath it.
    Tls(Box<TlsCloser>),
}

impl Closer {
    /// Abrupt close: any blocked read or write wakes at once.
    pub(crate) fn shutdown(&self) {
        match self {
            // Already shut down or reset: nothing left to do either way.
            Closer::Plain(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Closer::Tls(t) => t.shutdown(),
        }
    }

    /// Plain TCP: blocks until the socket has a byte to read, EOF or an
    /// error, taking nothing (`MSG_PEEK`), for at most its read timeout.
    /// `None` for TLS (any number of layers), where bytes on the socket
    /// need not be plaintext.
    pub(crate) fn wait_readable(&self) -> Option<io::Result<()>> {
        match self {
            Closer::Plain(s) => Some(s.wait_readable()),
            Closer::Tls(_) => None,
        }
    }

    /// What the server has sent by now, without waiting and without taking
    /// anything (`recv` with `MSG_PEEK | MSG_DONTWAIT`, per call: unlike
    /// `O_NONBLOCK` it leaves the socket's other handles blocking). Safe
    /// from any thread, while another blocks in a read.
    ///
    /// Under TLS, bytes on the socket may be records without plaintext
    /// (session tickets, key updates): [`Peer::Spoke`] then means only that
    /// something arrived. Every TLS layer asks the one beneath: the look is
    /// always the socket's.
    pub(crate) fn look(&self) -> Peer {
        match self {
            Closer::Plain(s) => s.look(),
            Closer::Tls(t) => t.lower().look(),
        }
    }

    /// Whether bytes on the socket are plaintext (plain TCP) rather than
    /// TLS records, which may carry none.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Closer::Tls(_))
    }

    /// Orderly close of an idle connection: TLS says `close_notify` first,
    /// in every layer (see [`TlsCloser::close_notify`]).
    pub(crate) fn close_gracefully(&self) {
        match self {
            Closer::Plain(_) => self.shutdown(),
            Closer::Tls(t) => t.close_notify(),
        }
    }
}

/// The read half with its buffer: the reader thread's peek, the head parser
/// and the body decoders all read through it. It moves with the read half
/// to the response body and back, so bytes read ahead are never lost.
///
/// The buffer is a [`Page`] of its own, which [`release`] can give back to
/// the OS while the connection sits idle.
///
/// [`release`]: BufReadHalf::release
#[derive(Debug)]
pub(crate) struct BufReadHalf {
    inner: ReadHalf,
    buf: Page,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// The read timeout currently set on the socket, to skip needless
    /// `setsockopt` calls.
    timeout: Option<Duration>,
    /// The transport's `read_timeout`: a head or body read ([`fill_buf`],
    /// [`Read::read`]) that waits this long without a byte fails with a
    /// [`Stalled`] error (kind `TimedOut`) instead of waiting on. `None`
    /// (the default) costs nothing per read. Set by whoever owns the half:
    /// the reader thread at its start, an upgrade's hand-over (cleared).
    ///
    /// [`fill_buf`]: io::BufRead::fill_buf
    stall: Option<Duration>,
}

impl BufReadHalf {
    /// Fails only if the OS refuses to map the buffer (see [`Page::take`]).
    pub(crate) fn new(inner: ReadHalf) -> io::Result<BufReadHalf> {
        Ok(BufReadHalf {
            inner,
            buf: Page::take()?,
            pos: 0,
            end: 0,
            timeout: None,
            stall: None,
        })
    }

    /// The buffer's page is resident (see [`Page::is_resident`]).
    pub(crate) fn holds_page(&self) -> bool {
        self.buf.is_resident()
    }

    /// Gives the buffer's page back to the OS if it holds no unread byte
    /// (see [`Page::release`]); for the reader thread's idle wait. Returns
    /// whether it did.
    pub(crate) fn release(&mut self) -> bool {
        self.pos == self.end && self.buf.release()
    }

    /// What the server has sent past the response just read, without
    /// waiting: for a body's end, while the body holds the read half.
    /// Bytes already buffered count; under TLS, records that arrived are
    /// decrypted here, so a `close_notify` reads as [`Peer::Closed`] and
    /// session tickets as nothing.
    pub(crate) fn peer_now(&mut self) -> Peer {
        if self.pos != self.end {
            return Peer::Spoke;
        }
        match &mut self.inner {
            ReadHalf::Plain(s) => s.look(),
            ReadHalf::Tls(t) => match t.read_now(&mut self.buf) {
                Ok(0) => Peer::Closed,
                Ok(n) => {
                    (self.pos, self.end) = (0, n);
                    self.buf.written();
                    Peer::Spoke
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Peer::Quiet,
                Err(_) => Peer::Closed,
            },
        }
    }

    /// Takes every buffered byte out of the buffer.
    pub(crate) fn take_buffered(&mut self) -> Vec<u8> {
        let bytes = self.buf[self.pos..self.end].to_vec();
        self.pos = self.end;
        bytes
    }

    /// Sets the read timeout unless it is already `t`.
    pub(crate) fn set_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        if self.timeout != t {
            self.inner.set_read_timeout(t)?;
            self.timeout = t;
        }
        Ok(())
    }

    /// Sets the stall bound of head and body reads (see `stall`).
    pub(crate) fn set_stall(&mut self, stall: Option<Duration>) {
        self.stall = stall.filter(|d| !d.is_zero());
    }

    /// No read timeout and no stall bound from now on, whatever was set
    /// (the socket's option is cleared even if the cache says it is): an
    /// upgraded connection's reads wait as long as its owner does.
    pub(crate) fn clear_timeouts(&mut self) -> io::Result<()> {
        self.stall = None;
        self.inner.set_read_timeout(None)?;
        self.timeout = None;
        Ok(())
    }

    /// A read with a stall bound is about to wait: the socket's timeout
    /// becomes the bound, so the first timeout is the stall. A `setsockopt`
    /// only when another timeout is set: the first read of a response
    /// after the idle peek (which sets its own), and after a stall check
    /// cut it short.
    fn arm_stall(&mut self) -> io::Result<Option<Instant>> {
        let Some(stall) = self.stall else {
            return Ok(None);
        };
        self.set_timeout(Some(stall))?;
        Ok(Some(Instant::now()))
    }

    /// A read timed out (`SO_RCVTIMEO`) in a read that began at `started`:
    /// the [`Stalled`] error once the stall bound has passed, else `None`
    /// (read on), with the socket's timeout cut to what remains so the
    /// bound is kept to the millisecond. Off the hot path: only a timeout
    /// comes here.
    fn stalled(&mut self, started: Option<Instant>) -> Option<io::Error> {
        let (stall, started) = (self.stall?, started?);
        let left = stall.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Some(io::Error::new(io::ErrorKind::TimedOut, Stalled(stall)));
        }
        if self.timeout.is_none_or(|t| t > left) {
            // At worst the next wake comes a little late.
            let _ = self.set_timeout(Some(left.max(Duration::from_millis(1))));
        }
        None
    }
}

/// The error of a read that got no byte within the transport's
/// `read_timeout` (see [`BufReadHalf::set_stall`]), inside an
/// `io::Error` of kind `TimedOut`: [`stalled`] tells it from any other.
#[derive(Debug)]
pub(crate) struct Stalled(pub(crate) Duration);

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no data received for {:?}", self.0)
    }
}

impl std::error::Error for Stalled {}

/// The stall bound an error reports, if it is a [`Stalled`] read.
pub(crate) fn stalled(e: &io::Error) -> Option<Duration> {
    e.get_ref()?.downcast_ref::<Stalled>().map(|s| s.0)
}

impl BufReadHalf {
    /// The idle wait's read: like `fill_buf`, but a read timeout comes back
    /// as an error, for the reader thread's idle check.
    pub(crate) fn peek(&mut self) -> io::Result<&[u8]> {
        self.fill(false)
    }

    /// The idle wait's timeout stays set on the socket between peeks
    /// (setting and clearing it per request cost two syscalls). Outside the
    /// peek a read timeout means nothing, so reads just go on waiting: a
    /// slow response is bounded by the request's deadline, not by the idle
    /// timeout; unless a stall bound is set (`read_timeout`), which such a
    /// read then checks at each timeout.
    fn fill(&mut self, retry_timeouts: bool) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            let started = if retry_timeouts {
                self.arm_stall()?
            } else {
                None
            };
            let n = loop {
                match self.inner.read(&mut self.buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if retry_timeouts && is_timeout(&e) => match self.stalled(started) {
                        Some(err) => return Err(err),
                        None => continue,
                    },
                    other => break other?,
                }
            };
            self.end = n;
            if n > 0 {
                self.buf.written();
            }
        }
        Ok(&self.buf[self.pos..self.end])
    }
}

/// The kind of a socket failure: a TLS alert or a bad record is a TLS
/// error, anything else I/O.
pub(crate) fn error_kind(e: &io::Error) -> crate::ErrorKind {
    if tls::is_tls_error(e) {
        crate::ErrorKind::Tls
    } else {
        crate::ErrorKind::Io
    }
}

/// A read timeout (`SO_RCVTIMEO`), whichever kind the platform reports.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Read for BufReadHalf {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // Large reads with nothing buffered skip the copy.
        if let Some(res) = crate::h1::Source::read_direct(self, out) {
            return res;
        }
        let n = {
            let avail = io::BufRead::fill_buf(self)?;
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        };
        io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl io::BufRead for BufReadHalf {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.fill(true)
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }
}

impl crate::h1::Source for BufReadHalf {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Large body reads go straight from the socket to the caller's buffer:
    /// one syscall and no copy through ours.
    fn read_direct(&mut self, out: &mut [u8]) -> Option<io::Result<usize>> {
        if self.pos != self.end || out.len() < self.buf.len() {
            return None;
        }
        let started = match self.arm_stall() {
            Ok(started) => started,
            Err(e) => return Some(Err(e)),
        };
        Some(loop {
            match self.inner.read(out) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => match self.stalled(started) {
                    Some(err) => break Err(err),
                    None => continue,
                },
                other => break other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{BufRead, Write},
        net::{TcpListener, TcpStream},
        time::Duration,
    };

    use super::*;

    /// A read half on a real socket, and the server's end of it.
    fn pair() -> (BufReadHalf, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        let mut rd = BufReadHalf::new(ReadHalf::Plain(Arc::new(c.into()))).expect("buffer");
        // Bounded: a test that waits for bytes that never come fails.
        rd.set_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        (rd, s)
    }

    #[test]
    fn an_emptied_buffer_gives_its_page_back_and_reads_on() {
        let (mut rd, mut server) = pair();
        server.write_all(b"hello").expect("write");
        assert_eq!(rd.fill_buf().expect("read"), b"hello");
        rd.consume(5);
        assert!(rd.holds_page());
        assert!(rd.release());
        assert!(!rd.holds_page());
        assert!(!rd.release(), "nothing left to give back");
        server.write_all(b"world").expect("write");
        assert_eq!(rd.fill_buf().expect("read"), b"world");
        assert!(rd.holds_page());
    }

    #[test]
    fn a_read_that_stalls_past_its_bound_fails_and_a_steady_one_does_not() {
        let (mut rd, mut server) = pair();
        let stall = Duration::from_millis(150);
        rd.set_stall(Some(stall));
        // Bytes every third of the bound, five bounds in all: no stall.
        let writer = std::thread::spawn(move || {
            for _ in 0..15 {
                std::thread::sleep(stall / 3);
                server.write_all(b"x").expect("write");
            }
            server
        });
        let mut got = 0;
        while got < 15 {
            let n = rd.fill_buf().expect("steady bytes").len();
            rd.consume(n);
            got += n;
        }
        let _server = writer.join().expect("writer");
        // Then nothing: the next read fails after the bound, as `Stalled`.
        let started = std::time::Instant::now();
        let e = rd.fill_buf().expect_err("stalled");
        let took = started.elapsed();
        assert!(took >= stall && took < stall * 10, "{took:?}");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(stalled(&e), Some(stall));
        // Cleared: a plain timeout error is no stall.
        rd.clear_timeouts().expect("clear");
        assert_eq!(stalled(&io::Error::from(io::ErrorKind::TimedOut)), None);
    }

    #[test]
    fn a_buffer_with_unread_bytes_keeps_them() {
        let (mut rd, mut server) = pair();
        server.write_all(b"ab").expect("write");
        assert_eq!(rd.fill_buf().expect("read"), b"ab");
        rd.consume(1);
        assert!(!rd.release());
        assert_eq!(rd.fill_buf().expect("read"), b"b");
    }
}

#[cfg(test)]
mod look_tests {
    use std::{
        io::Write,
        net::{Shutdown, TcpListener, TcpStream},
        time::{Duration, Instant},
    };

    use super::*;

    /// Waits (bounded) until `look` on `sock` says `want`: loopback
    /// delivers in microseconds, not at once.
    fn eventually(sock: &Socket, want: Peer) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while sock.look() != want {
            assert!(Instant::now() < deadline, "never saw {want:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn look_takes_nothing_and_never_waits() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = Arc::new(Socket::from(
            TcpStream::connect(l.local_addr().expect("addr")).expect("connect"),
        ));
        let (mut s, _) = l.accept().expect("accept");
        // A blocking socket with no timeout: a look that waited would hang.
        assert_eq!(c.look(), Peer::Quiet);
        s.write_all(b"x").expect("write");
        eventually(&c, Peer::Spoke);
        assert_eq!(c.look(), Peer::Spoke, "the byte is still there");
        let mut rd = BufReadHalf::new(ReadHalf::Plain(c.clone())).expect("buffer");
        assert_eq!(rd.peer_now(), Peer::Spoke);
        s.shutdown(Shutdown::Write).expect("shutdown");
        io::BufRead::fill_buf(&mut rd).expect("read the byte");
        io::BufRead::consume(&mut rd, 1);
        eventually(&c, Peer::Closed);
        assert_eq!(rd.peer_now(), Peer::Closed);
    }
}
