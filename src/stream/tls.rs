//! The two halves of a TLS session over rustls 0.23, for a connection with
//! one reader thread and one writer thread (DESIGN.md, "TLS with one
//! reader and one writer thread"). The handshake is the dial's
//! (`dial::tls`); this module takes the session once it is done.
//!
//! rustls 0.23 has one state machine for both directions and no split API,
//! so the two halves share it as `Arc<Mutex<ClientConnection>>`, shaped like
//! rustls 0.24's `Connection::split()` so moving to that API touches only
//! this file.
//!
//! A session sits on a *lower stream*, not on a socket: each half owns the
//! matching half of the [`Stream`] beneath ([`TlsReadHalf`] its
//! [`ReadHalf`], [`TlsWriteHalf`] its [`WriteHalf`], [`TlsCloser`] its
//! [`Closer`]). The lower stream is a socket's, or another session's: TLS
//! in TLS, for an https target through an https proxy (Go's `tls.Client`
//! over a `tls.Conn`). Below, "I/O" means a call into the lower stream,
//! which for a socket is a syscall. The rules, which hold in every layer:
//!
//! 1. Nobody holds the rustls lock during I/O, a blocking channel
//!    operation, the user's body read, or a trace hook. A layer releases
//!    its lock before it calls the layer beneath, so no two layers' locks
//!    are ever held together (no lock order to keep).
//! 2. [`TlsReadHalf`] reads ciphertext from the lower read half without the
//!    lock, then locks to feed it, decrypt and take plaintext. If rustls
//!    now has records to send (an alert), it pokes the writer; it never
//!    writes. Its lower read half is the reader thread's too.
//! 3. [`TlsWriteHalf`] is the only taker of TLS output (`write_tls`, under
//!    the lock, into a buffer) and the only writer to the lower stream
//!    (after unlocking), so records reach the wire in the order TLS
//!    numbered them. It owns its lower write half, so the same holds for
//!    the lower session's records. One thread at a time holds the half: the
//!    writer thread, or a caller writing its request head without waiting
//!    ([`TlsWriteHalf::write_now`]; the connection's lock on the half
//!    decides). (The one exception is [`TlsCloser::close_notify`], for idle
//!    connections only.)
//! 4. Records without plaintext (TLS 1.3 session tickets, key updates) are
//!    consumed inside [`TlsReadHalf::read`], which returns only plaintext,
//!    `close_notify` or EOF; so the idle peek never mistakes a ticket for
//!    the server speaking out of turn. A lower session's read does the same
//!    for its records, so the upper one sees only the lower's plaintext.
//! 5. All layers of a connection share one poke channel: a poke from any
//!    layer's read half wakes the writer thread, and
//!    [`TlsWriteHalf::send_pending`] sends what every layer has queued, down
//!    the stack (the lower layers' alerts included; each layer's records in
//!    its own order).
//! 6. A TCP FIN without `close_notify` reads as a plain EOF here; the body's
//!    framing decides whether that was a truncation (length-framed and
//!    chunked bodies) or the body's natural end (close-delimited, as Go).
//!    A lower session that ends (`close_notify` or EOF) is an EOF to the
//!    one above, judged the same way.
//!
//! The common case, one session on a socket, costs an enum match and a
//! pointer hop per socket read or write over a session that owned its
//! socket (no copy, allocation or lock more): the lower halves share one
//! `Arc<Socket>` (one file descriptor), as a plain stream's do.

use std::{
    io::{self, Read, Write},
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rustls::ClientConnection;

use super::{Closer, ReadHalf, Stream, WriteHalf};

/// Ciphertext read buffer: one full TLS record and its header.
const CIPHERTEXT_BUF: usize = 16 * 1024 + 512;

/// How long [`TlsCloser::close_notify`] lets the socket take the closing
/// records before it shuts the socket down anyway.
const CLOSE_NOTIFY_WRITE: Duration = Duration::from_millis(100);

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
    /// Splits `conn`, whose handshake is done, over `lower`: the read half
    /// takes the lower read half, the write half the lower write half, the
    /// closer the lower closer. Over another session the poke channel is
    /// that session's (rule 5).
    pub(crate) fn new(lower: Stream, conn: ClientConnection) -> io::Result<TlsParts> {
        let Stream {
            read: lower_read,
            write: lower_write,
            closer: lower_closer,
            ..
        } = lower;
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let tls = Arc::new(Mutex::new(conn));
        let (poke, poked) = match (&lower_read, &lower_write) {
            (ReadHalf::Tls(r), WriteHalf::Tls(w)) => (r.poke.clone(), w.poked.clone()),
            // Capacity 1: pokes that arrive while one is pending coalesce.
            _ => crossbeam_channel::bounded(1),
        };
        Ok(TlsParts {
            alpn,
            read: TlsReadHalf {
                lower: lower_read,
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
                lower: lower_closer,
                tls: tls.clone(),
            },
            write: TlsWriteHalf {
                lower: lower_write,
                tls,
                out: Vec::new(),
                poked,
            },
        })
    }
}

/// The reader role. Not `Clone`: one thread (or the body it is lent to)
/// reads at a time, and it owns the lower read half with it.
pub(crate) struct TlsReadHalf {
    /// The stream beneath: a socket's read half or a lower session's.
    lower: ReadHalf,
    /// Shared with the writer half and the closer; held only for in-memory
    /// work.
    tls: Arc<Mutex<ClientConnection>>,
    /// Wakes the writer when rustls has records to send (alerts).
    poke: Sender<()>,
    cipher: Ciphertext,
    /// The lower stream reached EOF and rustls was told.
    eof: bool,
    /// The read timeout the owner set: it bounds one whole `read` call,
    /// however many plaintext-free records (tickets, key updates) arrive.
    timeout: Option<Duration>,
    /// The lower stream's timeout was cut to what remained of the last
    /// call's.
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
    /// Sets the timeout that bounds one whole `read` call, and the lower
    /// stream's (down to the socket's `SO_RCVTIMEO`).
    pub(crate) fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.lower.set_read_timeout(t)?;
        self.timeout = t;
        self.shortened = false;
        Ok(())
    }

    /// Reads ciphertext from the lower stream, without the lock. After the
    /// first read of a call, what is left of the call's timeout bounds the
    /// wait.
    fn read_lower(&mut self, deadline: Option<Instant>, first: bool) -> io::Result<usize> {
        if !first {
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::WouldBlock, "read timed out"));
                }
                self.lower.set_read_timeout(Some(left))?;
                self.shortened = true;
            }
        }
        loop {
            match self.lower.read(&mut self.cipher.buf) {
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
    /// A read that never waits for the lower stream: plaintext, `Ok(0)`
    /// for `close_notify` or EOF, or `WouldBlock` once what has arrived is
    /// used up (records without plaintext are consumed on the way, in
    /// every layer).
    pub(crate) fn read_now(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.read_with(out, false)
    }

    /// The read, waiting for the lower stream (`wait`) or not.
    fn read_with(&mut self, out: &mut [u8], wait: bool) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.shortened {
            self.lower.set_read_timeout(self.timeout)?;
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
            // More ciphertext, read without the lock. Not waiting: the
            // lower stream's `WouldBlock` (nothing on the socket, or no
            // plaintext in a lower session's records) is ours.
            let n = if wait {
                self.read_lower(deadline, first)?
            } else {
                self.lower.read_now(&mut self.cipher.buf)?
            };
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
            .field("lower", &self.lower)
            .finish()
    }
}

/// The writer role: the only taker of TLS output and the only writer to
/// the lower stream, on whichever thread holds it (rule 3). It owns the
/// lower write half, so under TLS in TLS its holder is the only one that
/// takes the lower session's output too.
pub(crate) struct TlsWriteHalf {
    /// The stream beneath: a socket's write half or a lower session's.
    lower: WriteHalf,
    tls: Arc<Mutex<ClientConnection>>,
    /// Records taken from rustls, written after the lock is released.
    out: Vec<u8>,
    /// Pokes from the read halves (of every layer, rule 5): rustls has
    /// records to send.
    poked: Receiver<()>,
}

impl TlsWriteHalf {
    pub(crate) fn poked(&self) -> &Receiver<()> {
        &self.poked
    }

    /// Sends whatever rustls has queued (an alert, a key update answer),
    /// then what the layers beneath have queued: a poke does not say which
    /// layer's read half sent it, so every layer looks. This layer's
    /// records go first, as application data of the layer beneath (whose
    /// own pending records its write takes first); a layer with nothing
    /// queued costs a lock and a check.
    pub(crate) fn send_pending(&mut self) -> io::Result<()> {
        {
            let mut tls = self.tls.lock();
            while tls.wants_write() {
                tls.write_tls(&mut self.out)?;
            }
        }
        self.write_out()?;
        self.lower.send_pending()
    }

    /// [`WriteHalf::write_now`] for this layer: seal what rustls takes,
    /// then hand the lower stream what it takes without waiting; the rest
    /// stays in `out`, ahead of anything sealed later.
    pub(crate) fn write_now(&mut self, buf: &[u8]) -> usize {
        let n = {
            let mut tls = self.tls.lock();
            let Ok(n) = tls.writer().write(buf) else {
                return 0;
            };
            while tls.wants_write() {
                if tls.write_tls(&mut self.out).is_err() {
                    break;
                }
            }
            n
        };
        if !self.out.is_empty() {
            let sent = self.lower.write_now(&self.out);
            self.out.drain(..sent);
        }
        n
    }

    /// Records sealed but not yet sent, here or beneath.
    pub(crate) fn queued(&self) -> bool {
        !self.out.is_empty() || self.lower.queued()
    }

    /// Writes the records taken from rustls to the lower stream.
    fn write_out(&mut self) -> io::Result<()> {
        let res = self.lower.write_all(&self.out);
        self.out.clear();
        res
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.lower.set_write_timeout(t)
    }

    /// Ends this session's write direction, then the stream beneath:
    /// `close_notify` (after anything rustls still had queued), sealed
    /// into the lower stream by its own write, then the lower stream's
    /// [`WriteHalf::shutdown_write`] (its own `close_notify`, down to the
    /// socket's FIN). Reading goes on: rustls decrypts what the peer sends
    /// after our `close_notify`. Only for an upgraded connection, whose one
    /// owner holds this half: rule 3 holds (this is the writer role).
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        {
            let mut tls = self.tls.lock();
            tls.send_close_notify();
            while tls.wants_write() {
                tls.write_tls(&mut self.out)?;
            }
        }
        self.write_out()?;
        self.lower.flush()?;
        self.lower.shutdown_write()
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
        self.write_out()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

impl std::fmt::Debug for TlsWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsWriteHalf")
            .field("lower", &self.lower)
            .finish_non_exhaustive()
    }
}

/// Shuts a TLS connection down from any thread. Held by the connection's
/// shared state; it owns the lower closer (down to the socket). A clone
/// shares the session and the socket (an upgraded connection's owner gets
/// one).
#[derive(Clone)]
pub(crate) struct TlsCloser {
    /// The stream beneath: a socket's closer or a lower session's.
    lower: Closer,
    tls: Arc<Mutex<ClientConnection>>,
}

impl TlsCloser {
    /// The closer beneath, for looks that take nothing (see
    /// `Closer::look`).
    pub(crate) fn lower(&self) -> &Closer {
        &self.lower
    }

    /// Abrupt: shuts the socket at the bottom down, which wakes blocked
    /// reads and writes in every layer at once.
    pub(crate) fn shutdown(&self) {
        self.lower.shutdown();
    }

    /// For a connection that is idle (its writer has nothing to send):
    /// `close_notify` in every layer, best effort and briefly, then shut
    /// down.
    ///
    /// Layered, the inner `close_notify` must reach the peer *inside* the
    /// outer session: raw inner records on the socket would be garbage to
    /// the proxy. So each layer seals what the layer above handed it
    /// (nothing, at the top) as application data of its own session, adds
    /// its own `close_notify` (closing the inner session closes the stream
    /// beneath it, as in Go), and hands the records down; the socket gets
    /// them in one write. Each layer's lock is held only for its in-memory
    /// sealing (rule 1).
    ///
    /// Taking output here bends rule 3, as the single-layer close always
    /// did, and for the same reason it is safe on an idle connection: the
    /// writer thread has taken nothing it has not written, so the closing
    /// records are numbered after everything on the wire in every layer.
    /// Should a writer be mid-write (a poke's alert) after all, the worst
    /// case is closing records the peer cannot read on a connection that is
    /// being shut down anyway; this adds no new kind of race for layers.
    pub(crate) fn close_notify(&self) {
        let records = self.seal_closing(&[]);
        close_down(&self.lower, &records);
        self.shutdown();
    }

    /// `above` (the upper layer's closing records) as application data of
    /// this session, then this session's `close_notify`: its last records.
    /// Best effort: whatever rustls refuses is left out.
    fn seal_closing(&self, mut above: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut tls = self.tls.lock();
        while !above.is_empty() {
            // Its buffer limit counts unsent records: take them as we go.
            match tls.writer().write(above) {
                Ok(n) if n > 0 => above = &above[n..],
                _ => break,
            }
            while tls.wants_write() {
                if tls.write_tls(&mut out).is_err() {
                    break;
                }
            }
        }
        tls.send_close_notify();
        while tls.wants_write() {
            if tls.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }
}

/// Sends the closing records of the layers above down through `lower`: a
/// socket writes them (for at most [`CLOSE_NOTIFY_WRITE`]), a session seals
/// them with its own `close_notify` and hands them further down.
fn close_down(lower: &Closer, records: &[u8]) {
    match lower {
        Closer::Plain(sock) => {
            let _ = sock.set_write_timeout(Some(CLOSE_NOTIFY_WRITE));
            let _ = (&**sock).write_all(records);
        }
        Closer::Tls(t) => close_down(&t.lower, &t.seal_closing(records)),
    }
}

impl std::fmt::Debug for TlsCloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCloser")
            .field("lower", &self.lower)
            .finish_non_exhaustive()
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

/// TLS in TLS over real sockets: a rustls server for "proxy.test" whose
/// plaintext carries a second rustls server for "target.test", and the
/// client's two layers made by the dial's `tls::connect`.
#[cfg(test)]
mod layered_tests {
    use std::{
        io::{Read, Write},
        net::{Shutdown, SocketAddr, TcpListener, TcpStream},
        sync::{Arc, OnceLock, mpsc},
        thread::{self, JoinHandle},
        time::{Duration, Instant},
    };

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use rustls::{
        ClientConfig, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
        crypto::CryptoProvider,
        pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
    };

    use super::{
        super::{Peer, ReadHalf, Socket, Stream, WriteHalf},
        is_tls_error,
    };
    use crate::{ErrorKind, dial::tls::connect};

    /// The dial's handshake, naming the host in errors.
    fn connect_stream(
        lower: Stream,
        host: &str,
        config: &Arc<rustls::ClientConfig>,
        timeout: Option<Duration>,
        offer: Option<&[&[u8]]>,
        protocols: &[&[u8]],
        trace: Option<&dyn crate::trace::ClientTrace>,
    ) -> Result<Stream, crate::Error> {
        connect(lower, host, &host, config, timeout, offer, protocols, trace)
    }

    /// The proxy's end: TLS on the TCP socket.
    type Outer = StreamOwned<ServerConnection, TcpStream>;
    /// The target's end: TLS inside the proxy's session.
    type Inner = StreamOwned<ServerConnection, Outer>;

    /// What the client offers and speaks at each layer.
    const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
    /// Bounds every wait in these tests: a hang fails instead.
    const PATIENCE: Duration = Duration::from_secs(20);

    struct Pki {
        client: Arc<ClientConfig>,
        /// "proxy.test", ALPN http/1.1.
        proxy: Arc<ServerConfig>,
        /// "target.test", ALPN h2.
        target: Arc<ServerConfig>,
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A CA, a leaf for each server, a client that trusts the CA. Made once
    /// per test binary. Both servers send TLS 1.3 session tickets (rustls's
    /// default), which the client's layers must absorb.
    fn pki() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, "layered test CA");
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key"))
                .expect("self-signed ca");
            let server = |name: &str, alpn: &[u8]| {
                let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
                params.distinguished_name.push(DnType::CommonName, name);
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                let key = KeyPair::generate().expect("leaf key");
                let cert = params.signed_by(&key, &ca).expect("sign leaf");
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
                let mut config = ServerConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .expect("versions")
                    .with_no_client_auth()
                    .with_single_cert(vec![cert.der().clone()], key)
                    .expect("server cert");
                config.alpn_protocols = vec![alpn.to_vec()];
                Arc::new(config)
            };
            let mut roots = RootCertStore::empty();
            roots.add(ca.der().clone()).expect("trust the ca");
            let client = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Pki {
                client: Arc::new(client),
                proxy: server("proxy.test", b"http/1.1"),
                target: server("target.test", b"h2"),
            }
        })
    }

    /// Accepts one connection on 127.0.0.1 and runs `script` on the
    /// proxy's session (its handshake runs at the first read or write).
    fn serve(script: impl FnOnce(Outer) + Send + 'static) -> (SocketAddr, JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = thread::spawn(move || {
            let (sock, _) = l.accept().expect("accept");
            sock.set_read_timeout(Some(PATIENCE)).expect("timeout");
            let conn = ServerConnection::new(pki().proxy.clone()).expect("proxy session");
            script(StreamOwned::new(conn, sock));
        });
        (addr, server)
    }

    /// The target's session inside the proxy's.
    fn inner(outer: Outer) -> Inner {
        let conn = ServerConnection::new(pki().target.clone()).expect("target session");
        StreamOwned::new(conn, outer)
    }

    /// The TCP socket beneath both server sessions.
    fn tcp(inner: &Inner) -> &TcpStream {
        &inner.sock.sock
    }

    /// The client's TLS stream to the proxy.
    fn to_proxy(addr: SocketAddr) -> Stream {
        let sock = TcpStream::connect(addr).expect("connect");
        let plain = Stream::plain(Socket::from(sock)).expect("plain stream");
        connect_stream(
            plain,
            "proxy.test",
            &pki().client,
            Some(PATIENCE),
            Some(ALPN),
            ALPN,
            None,
        )
        .expect("tls to the proxy")
    }

    /// The client's TLS stream to the target, inside one to the proxy.
    fn to_target(addr: SocketAddr) -> Stream {
        let outer = to_proxy(addr);
        assert_eq!(outer.alpn.as_deref(), Some(&b"http/1.1"[..]), "proxy ALPN");
        let mut s = connect_stream(
            outer,
            "target.test",
            &pki().client,
            Some(PATIENCE),
            Some(ALPN),
            ALPN,
            None,
        )
        .expect("tls to the target, inside");
        assert_eq!(s.alpn.as_deref(), Some(&b"h2"[..]), "target ALPN");
        s.read.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s
    }

    /// Waits (bounded) until `look` says `want`: loopback delivers in
    /// microseconds, not at once.
    fn eventually(look: impl Fn() -> Peer, want: Peer) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while look() != want {
            assert!(Instant::now() < deadline, "never saw {want:?}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 4099) as u8).collect()
    }

    #[test]
    fn tls_in_tls_echoes_a_mebibyte_on_two_threads() {
        const LEN: usize = 1 << 20;
        let (close_tx, close_rx) = mpsc::channel::<()>();
        let (addr, server) = serve(move |outer| {
            let mut s = inner(outer);
            let mut buf = vec![0; 40_000];
            let mut echoed = 0;
            while echoed < LEN {
                let n = s.read(&mut buf).expect("server read");
                assert!(n > 0, "client closed after {echoed} bytes");
                s.write_all(&buf[..n]).expect("server write");
                echoed += n;
            }
            s.flush().expect("server flush");
            // Idle until told: then a FIN, with no close_notify.
            close_rx.recv().expect("close signal");
            tcp(&s).shutdown(Shutdown::Write).expect("fin");
            // Wait for the client's end, so nothing is reset.
            let _ = tcp(&s).read(&mut buf);
        });
        let Stream {
            read,
            write,
            closer,
            ..
        } = to_target(addr);
        // As on a connection: the writer thread owns the write half (and
        // the proxy session's beneath it), the reader thread the read half.
        let writer = thread::spawn(move || {
            let mut write = write;
            let data = pattern(LEN);
            // Odd-sized writes: inner records straddle outer ones.
            for chunk in data.chunks(10_007) {
                write.write_all(chunk).expect("client write");
            }
            write.flush().expect("client flush");
            write
        });
        let reader = thread::spawn(move || {
            let mut read = read;
            let mut got = Vec::with_capacity(LEN);
            let mut buf = vec![0; 20_000];
            while got.len() < LEN {
                let n = read.read(&mut buf).expect("client read");
                assert!(n > 0, "EOF after {} bytes", got.len());
                got.extend_from_slice(&buf[..n]);
            }
            (read, got)
        });
        let _write = writer.join().expect("writer thread");
        let (mut read, got) = reader.join().expect("reader thread");
        assert_eq!(got.len(), LEN);
        assert!(got == pattern(LEN), "the echo differs");
        // Tickets and all records consumed: nothing waits on the socket.
        assert_eq!(closer.look(), Peer::Quiet, "idle");
        assert!(
            closer.wait_readable().is_none(),
            "TLS never waits on the socket"
        );
        close_tx.send(()).expect("signal");
        eventually(|| closer.look(), Peer::Closed);
        // A FIN between records is an EOF in both layers.
        assert_eq!(read.read(&mut [0; 16]).expect("read at EOF"), 0);
        closer.shutdown();
        server.join().expect("server thread");
    }

    #[test]
    fn shutdown_wakes_a_read_blocked_in_the_inner_session() {
        let (addr, server) = serve(|outer| {
            let mut s = inner(outer);
            // Handshakes, then waits for bytes that never come.
            let _ = s.read(&mut [0; 16]);
        });
        let Stream {
            mut read, closer, ..
        } = to_target(addr);
        read.set_read_timeout(None).expect("no timeout");
        let (done_tx, done_rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let res = read.read(&mut [0; 16]).map_err(|e| e.kind());
            let _ = done_tx.send(res);
        });
        thread::sleep(Duration::from_millis(200));
        assert!(done_rx.try_recv().is_err(), "the read is blocked");
        let shut = Instant::now();
        closer.shutdown();
        let res = done_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("shutdown woke the read");
        assert!(shut.elapsed() < Duration::from_secs(5));
        assert!(!matches!(res, Ok(n) if n > 0), "{res:?}");
        reader.join().expect("reader thread");
        server.join().expect("server thread");
    }

    /// An upgraded connection's `shutdown`: `close_notify` in the inner
    /// session (sealed in the outer), then the outer's, then FIN; what the
    /// server sends after that still reads.
    #[test]
    fn shutdown_write_ends_both_sessions_and_reading_goes_on() {
        let (tx, rx) = mpsc::channel();
        let (addr, server) = serve(move |outer| {
            let mut s = inner(outer);
            let mut got = Vec::new();
            // Ok(0) only for close_notify; a bare EOF is UnexpectedEof.
            let end = s.read_to_end(&mut got).map(drop).map_err(|e| e.kind());
            s.write_all(b"after").expect("write after the client's end");
            s.flush().expect("flush");
            let proxy = s.sock.read(&mut [0; 16]).map_err(|e| e.kind());
            let fin = tcp(&s).read(&mut [0; 16]).map_err(|e| e.kind());
            let _ = tx.send((got, end, proxy, fin));
            s.conn.send_close_notify();
            let _ = s.flush();
            let _ = tcp(&s).shutdown(Shutdown::Write);
        });
        let Stream {
            mut read,
            mut write,
            closer,
            ..
        } = to_target(addr);
        write.write_all(b"last words").expect("write");
        write.shutdown_write().expect("shutdown_write");
        let (got, end, proxy, fin) = rx.recv_timeout(PATIENCE).expect("server");
        assert_eq!(got, b"last words");
        assert_eq!(
            end,
            Ok(()),
            "target's close_notify, sealed in the proxy session"
        );
        assert_eq!(proxy, Ok(0), "proxy's close_notify after it");
        assert_eq!(fin, Ok(0), "then FIN");
        let mut rest = Vec::new();
        read.read_to_end(&mut rest).expect("read after our end");
        assert_eq!(rest, b"after");
        closer.shutdown();
        server.join().expect("server thread");
    }

    #[test]
    fn close_gracefully_says_close_notify_in_both_sessions() {
        let (tx, rx) = mpsc::channel();
        let (addr, server) = serve(move |outer| {
            let mut s = inner(outer);
            // Ok(0) only for close_notify; a bare EOF is UnexpectedEof.
            let target = s.read(&mut [0; 16]).map_err(|e| e.kind());
            let proxy = s.sock.read(&mut [0; 16]).map_err(|e| e.kind());
            let _ = tx.send((target, proxy));
        });
        let stream = to_target(addr);
        stream.closer.close_gracefully();
        let (target, proxy) = rx.recv_timeout(PATIENCE).expect("server saw the close");
        assert_eq!(
            target,
            Ok(0),
            "target's close_notify, sealed in the proxy session"
        );
        assert_eq!(proxy, Ok(0), "proxy's close_notify after it");
        server.join().expect("server thread");
    }

    /// Whether the write half's layer `depth` (0: the top) holds records
    /// to send.
    fn queued(write: &WriteHalf, depth: usize) -> bool {
        let WriteHalf::Tls(w) = write else {
            panic!("no TLS at depth {depth}")
        };
        match depth {
            0 => w.tls.lock().wants_write(),
            _ => queued(&w.lower, depth - 1),
        }
    }

    /// A bad record at `depth` (0: the target's session, 1: the proxy's)
    /// makes that layer's read half queue an alert and poke; the writer's
    /// `send_pending` sends it, through the proxy's session when it is the
    /// target's.
    fn alert_reaches_the_server(depth: usize) {
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (addr, server) = serve(move |outer| {
            let mut s = inner(outer);
            s.write_all(b"ready").expect("ready");
            s.flush().expect("flush");
            // Apart from "ready": a read that takes both fails whole.
            go_rx.recv().expect("go");
            // An application-data record that decrypts in no session.
            let mut junk = vec![0x17, 3, 3, 0, 48];
            junk.extend_from_slice(&[0xa5; 48]);
            let res = if depth == 0 {
                s.sock.write_all(&junk).expect("junk inside");
                s.sock.flush().expect("flush");
                s.read(&mut [0; 16])
            } else {
                (&s.sock.sock).write_all(&junk).expect("junk on the socket");
                s.sock.read(&mut [0; 16])
            };
            let _ = tx.send(res.map_err(|e| e.to_string()));
        });
        let Stream {
            mut read, write, ..
        } = to_target(addr);
        let mut buf = [0; 16];
        assert_eq!(read.read(&mut buf).expect("ready"), 5);
        go_tx.send(()).expect("go");
        let e = read
            .read(&mut buf)
            .expect_err("the bad record fails the read");
        assert!(is_tls_error(&e), "{e:?}");
        let mut write = write;
        let poked = write.poked().expect("TLS has a poke channel");
        poked.recv_timeout(PATIENCE).expect("the read half poked");
        assert!(queued(&write, depth), "the alert waits in its layer");
        write.send_pending().expect("send the alert");
        assert!(!queued(&write, 0) && !queued(&write, 1), "all sent");
        let res = rx.recv_timeout(PATIENCE).expect("server's read");
        let e = res.expect_err("the server hears the alert");
        assert!(e.contains("BadRecordMac"), "{e}");
        drop((read, write));
        server.join().expect("server thread");
    }

    #[test]
    fn an_alert_from_the_inner_session_goes_out_sealed_in_the_outer() {
        alert_reaches_the_server(0);
    }

    #[test]
    fn an_alert_from_the_outer_session_goes_out_through_the_inner_writer() {
        alert_reaches_the_server(1);
    }

    #[test]
    fn an_inner_handshake_that_stalls_times_out() {
        let (addr, server) = serve(|mut outer| {
            // The proxy's session answers; nothing answers inside it.
            let mut buf = [0; 4096];
            while matches!(outer.read(&mut buf), Ok(n) if n > 0) {}
        });
        let outer = to_proxy(addr);
        let started = Instant::now();
        let e = connect_stream(
            outer,
            "target.test",
            &pki().client,
            Some(Duration::from_millis(300)),
            None,
            ALPN,
            None,
        )
        .expect_err("nobody answers the inner handshake");
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
        assert_eq!(e.message(), "tls handshake with target.test timed out");
        assert!(started.elapsed() < Duration::from_secs(5));
        server.join().expect("server thread");
    }

    #[test]
    fn an_inner_certificate_for_another_name_is_a_tls_error() {
        let (addr, server) = serve(|outer| {
            let mut s = inner(outer);
            let _ = s.read(&mut [0; 16]);
        });
        let outer = to_proxy(addr);
        let e = connect_stream(
            outer,
            "other.test",
            &pki().client,
            Some(PATIENCE),
            None,
            ALPN,
            None,
        )
        .expect_err("the target's certificate names target.test");
        assert_eq!(e.kind(), ErrorKind::Tls, "{e:?}");
        assert!(
            e.message().contains("not valid for this host name"),
            "{}",
            e.message()
        );
        server.join().expect("server thread");
    }

    #[test]
    fn layered_halves_are_boxed_and_small() {
        // The enums stay two words whatever the nesting.
        let words = 2 * std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<ReadHalf>(), words);
        assert_eq!(std::mem::size_of::<WriteHalf>(), words);
    }
}
