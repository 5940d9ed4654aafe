//! Protocol upgrades (RFC 9110 §7.8): [`Response::upgrade`] takes the
//! connection of a `101 Switching Protocols` response out of the pool and
//! gives its socket to the caller as an [`Upgraded`] stream (Go's
//! `errCallerOwnsConn`, where `Response.Body` becomes an
//! `io.ReadWriteCloser`). WebSocket (RFC 6455) is the common case.
//!
//! The connection's side of the hand-over is `conn`'s (`conn::switch` and
//! `PersistConn::hand_over`): its reader thread lent the 101's body its
//! buffered read half for good, its writer thread gives its write half
//! back, both exit, and the pool forgets the connection. What is left
//! holds no thread: [`Upgraded`] does its I/O on its owner's thread, TLS
//! included.

use std::{
    fmt,
    io::{self, Read, Write},
};

use crossbeam_channel::Receiver;
use http::{StatusCode, Version};

use crate::{
    Error, ErrorKind, Response,
    conn::{Handed, switch::Switch},
    stream::{BufReadHalf, Closer, WriteHalf},
};

impl Response {
    /// Takes over the connection of a `101 Switching Protocols` response
    /// (RFC 9110 §7.8), for a protocol spoken after HTTP/1.1 on the same
    /// socket: WebSocket, say. The connection leaves the pool for good (no
    /// longer counted by [`Transport::stats`](crate::Transport::stats), its
    /// per-host slot freed), its two threads exit, and its socket goes to
    /// the returned [`Upgraded`], open, with no timeout set: neither the
    /// client's `timeout`, the request's, nor `read_timeout` bounds it.
    /// Bytes the server sent right after the 101 come out of its `read`
    /// first.
    ///
    /// Send the upgrade request yourself, with `Connection: upgrade` and
    /// `Upgrade: <protocol>` (and what the protocol asks for). A request
    /// with them gets no `Connection: close`, even from a transport that
    /// [disables keep-alives](crate::TransportBuilder::disable_keep_alives).
    /// Until this is called (or the response dropped) the connection is in
    /// use; dropping the response instead closes it. A request body still
    /// being sent when the 101 came goes out whole before this returns.
    /// Returns once the connection's threads have left; the counts of
    /// [`live_threads`](crate::live_threads) and `stats().threads` drop a
    /// moment later.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRequest`] for any other status, an HTTP/2
    /// response (HTTP/2 has no 101, RFC 9113 §8.6), or a response that did
    /// not come from a connection (one made with `Response::from_http`);
    /// the response is dropped as usual. [`ErrorKind::Io`] if the
    /// connection closed before it could be taken over.
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// let client = nethttp::Client::new();
    /// let resp = client
    ///     .get("http://127.0.0.1:8080/chat")
    ///     .header("connection", "upgrade")
    ///     .header("upgrade", "my-protocol")
    ///     .send()?;
    /// let mut stream = resp.upgrade()?;
    /// stream.write_all(b"hello")?;
    /// let mut buf = [0; 5];
    /// stream.read_exact(&mut buf)?;
    /// stream.shutdown()?; // our FIN; the server's bytes can still be read
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn upgrade(self) -> crate::Result<Upgraded> {
        let url = self.url().clone();
        let refuse = |why: &str| {
            Error::new(ErrorKind::InvalidRequest, format!("cannot upgrade: {why}")).with_url(&url)
        };
        if self.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(refuse(&format!(
                "the response is {}, not 101 Switching Protocols",
                self.status()
            )));
        }
        if self.version() != Version::HTTP_11 {
            return Err(refuse(&format!(
                "a 101 over {:?} (only HTTP/1.1 switches protocols; HTTP/2 has no 101)",
                self.version()
            )));
        }
        let mut body = self.into_body();
        let switch = body
            .take_upgrade()
            .and_then(|any| any.downcast::<Switch>().ok());
        drop(body);
        let Some(switch) = switch else {
            return Err(refuse("the response did not come from a connection"));
        };
        let handed = switch.hand_over().map_err(|e| e.with_url(&url))?;
        Ok(Upgraded::new(handed))
    }
}

/// The socket of an upgraded connection ([`Response::upgrade`]): `Read`
/// and `Write` on the caller's thread, plain TCP (or a Unix socket) or TLS
/// (also TLS inside TLS, through an https proxy). It holds no thread, and
/// no timeout bounds its reads or writes.
///
/// [`shutdown`](Upgraded::shutdown) ends the write direction (TLS:
/// `close_notify`, then FIN) and leaves reading open; dropping it closes
/// both directions (TLS says `close_notify` first, if `shutdown` did not).
///
/// TLS keeps its rules here too: a read can make the session queue
/// records of its own (a key update's answer, an alert); they are sent
/// before the read returns, and a failure to send them is the next
/// write's error.
pub struct Upgraded {
    /// The read half, with the bytes the connection's reader had read past
    /// the 101's head still buffered.
    read: BufReadHalf,
    write: WriteHalf,
    /// Shuts the socket down at drop.
    closer: Closer,
    /// TLS: rings when a read queued records to send (rule 5 of
    /// `stream::tls`); `None` for plain streams.
    poked: Option<Receiver<()>>,
    /// `shutdown` ended the write direction.
    write_shut: bool,
    /// Sending what a read queued failed: the next write reports it.
    send_failed: Option<io::Error>,
}

impl Upgraded {
    fn new(handed: Handed) -> Upgraded {
        let Handed {
            read,
            write,
            closer,
        } = handed;
        Upgraded {
            poked: write.poked(),
            read,
            write,
            closer,
            write_shut: false,
            send_failed: None,
        }
    }

    /// Ends the write direction: under TLS, `close_notify` in every layer,
    /// then the socket's FIN (`shutdown(Write)`); plain, the FIN. The peer
    /// reads its end of stream; what it sends afterwards can still be read
    /// here. Writes after it fail with `BrokenPipe`. Calling it again does
    /// nothing.
    pub fn shutdown(&mut self) -> io::Result<()> {
        if self.write_shut {
            return Ok(());
        }
        self.write_shut = true;
        self.write.shutdown_write()
    }

    /// Sends what the read just queued, if it queued anything (TLS).
    fn after_read(&mut self) {
        let Some(poked) = &self.poked else {
            return;
        };
        if poked.try_recv().is_ok() && !self.write_shut {
            if let Err(e) = self.write.send_pending() {
                self.send_failed.get_or_insert(e);
            }
        }
    }

    fn check_write(&mut self) -> io::Result<()> {
        if let Some(e) = self.send_failed.take() {
            return Err(e);
        }
        if self.write_shut {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the upgraded connection's write side was shut down",
            ));
        }
        Ok(())
    }
}

impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let res = self.read.read(buf);
        self.after_read();
        res
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_write()?;
        self.write.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check_write()?;
        self.write.flush()
    }
}

/// Closes both directions. Under TLS, unless `shutdown` already did,
/// `close_notify` goes first in every layer, best effort (the socket gets
/// a moment to take it), as an idle pooled connection closes.
impl Drop for Upgraded {
    fn drop(&mut self) {
        if self.write_shut {
            self.closer.shutdown();
        } else {
            self.closer.close_gracefully();
        }
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("tls", &self.closer.is_tls())
            .field("buffered", &crate::h1::Source::buffered(&self.read).len())
            .field("write_shut", &self.write_shut)
            .finish()
    }
}

// `Upgraded` moves between threads with its socket (the halves were made
// to move between a connection's threads and its caller's).
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Upgraded>();
};
