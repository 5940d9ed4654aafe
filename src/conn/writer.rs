//! The writer thread, `nethttp-w<id>` (Go's `persistConn.writeLoop`). For
//! each request given to it, it writes the head, waits for `100 Continue`
//! when asked to, streams the body, and reports twice: to the caller (the
//! result) and to whoever decides reuse (wrote). A request with nothing to
//! stream is usually written by its caller instead, in one write that does
//! not wait ([`PersistConn::write_now`]); the writer gets what did not fit.
//! Both hold the connection's write half while they write, so one writes
//! at a time. The writer also sends what the TLS read side queued (alerts).
//! After a `101 Switching Protocols` the caller may ask for the write half
//! instead ([`ToWriter::HandOver`]): the writer gives it up and exits,
//! without closing anything.

use std::{
    io::{self, Write},
    sync::atomic::Ordering,
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};

use super::{
    PersistConn,
    msg::{Answer, Reply, ToWriter, WriteFailure, WriteRequest},
};
use crate::{
    Error, ErrorKind,
    body::request::Kind as BodyKind,
    h1::encode::{self, EncodeError},
    stream::{self, WriteHalf},
};

/// Copy buffer for streamed bodies: one chunk per fill.
const COPY_BUF: usize = 32 * 1024;

/// The writer thread's state.
struct Writer {
    conn: PersistConn,
    /// Caller → writer: the requests (or the hand-over of an upgrade);
    /// disconnects when the connection closes.
    writech: Receiver<ToWriter>,
    /// The writer's verdict on each request, for whoever decides reuse.
    wrote: Sender<bool>,
    reply: Sender<Reply>,
    /// A streamed body's copy buffer, [`COPY_BUF`] long once used.
    scratch: Vec<u8>,
}

/// What the writer can expect after a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Only the first request or the close (nothing before the first, or
    /// after a last request or a failure): park at once.
    Park,
    /// Another request may come soon: yield a few times before parking.
    Soon,
}

// Not inlined into the thread's start closure: one frame of its own.
#[inline(never)]
pub(super) fn run(
    conn: PersistConn,
    poked: Option<Receiver<()>>,
    writech: Receiver<ToWriter>,
    wrote: Sender<bool>,
    reply: Sender<Reply>,
) {
    let mut writer = Writer {
        conn,
        writech,
        wrote,
        reply,
        scratch: Vec::new(),
    };
    let mut next = Next::Park;
    let hand_over = loop {
        match writer.next_request(next, poked.as_ref()) {
            Some(ToWriter::Request(wr)) => next = writer.serve(wr),
            Some(ToWriter::HandOver(to)) => break to,
            // The connection closed: the write half drops here (the
            // socket was shut down by `close`).
            None => {
                drop(writer.conn.inner.write.lock().take());
                return;
            }
        }
    };
    // The caller owns the connection now (`PersistConn::hand_over` marked
    // it so before asking, and waits for this): give it the half, exit,
    // close nothing. (If it is gone, the drop of `hand_over` says so.)
    if let Some(w) = writer.conn.inner.write.lock().take() {
        let _ = hand_over.send(w);
    }
}

impl Writer {
    /// Waits for the next request; `None` once the connection closed.
    ///
    /// Plain TCP waits on `writech` alone: a plain `recv` returns without
    /// touching the channel's lock again, which the caller may still hold
    /// while it wakes us. `close` ends the wait by dropping the only
    /// sender. TLS also waits for the read side's pokes (`poked`): it
    /// queued records (an alert) to send; a failure there surfaces on the
    /// read side. A request that comes soon is taken before the `select!`
    /// (as in `recv_soon`; a poke waits those few yields).
    fn next_request(&mut self, next: Next, poked: Option<&Receiver<()>>) -> Option<ToWriter> {
        let soon = next == Next::Soon;
        loop {
            let wr = match poked {
                None if soon => super::recv_soon(&self.writech),
                None => super::recv_now(&self.writech),
                Some(poked) => match soon
                    .then(|| super::try_soon(&self.writech, super::THREAD_YIELDS))
                    .flatten()
                {
                    Some(wr) => wr,
                    None => select! {
                        recv(self.writech) -> wr => wr,
                        recv(poked) -> _ => {
                            if let Some(w) = self.conn.inner.write.lock().as_mut() {
                                let _ = w.send_pending();
                            }
                            continue;
                        }
                    },
                },
            };
            return wr.ok();
        }
    }

    /// Writes one request and reports: to whoever decides reuse (`wrote`),
    /// and to the caller (a failure always, a success when it runs a
    /// response-header timer).
    // Out of line: its frame (the write's, over 1 KiB) is not under the
    // wait for the next request. Callers write most requests themselves,
    // so the writer mostly waits, and that wait's stack stays in two pages.
    #[inline(never)]
    fn serve(&mut self, wr: WriteRequest) -> Next {
        let seq = wr.seq;
        let report_success = wr.report_success;
        let last = wr.last;
        let trace = wr.trace.clone();
        let (result, body_sent) = match self.conn.inner.write.lock().as_mut() {
            Some(w) => write_request(&self.conn, w, wr, &mut self.scratch),
            // Taken only by this thread, as it leaves.
            None => (Err(socket_failure(closed_half(), "request head")), false),
        };
        if result.is_ok() {
            self.conn
                .inner
                .requests_written
                .fetch_add(1, Ordering::SeqCst);
        }
        if let Some(t) = &trace {
            t.wrote_request(result.as_ref().err().map(|f| &f.err));
        }
        let next = if result.is_ok() && !last {
            Next::Soon
        } else {
            Next::Park
        };
        // Both channels have room for this one message: never blocks.
        let _ = self.wrote.try_send(result.is_ok() && body_sent);
        // A success nobody waits for is not sent: the caller is woken once,
        // by the response. After a failure the connection is never reused;
        // the caller or the body closes it, and that ends this loop.
        if result.is_err() || report_success {
            let answer = Answer::Written(result);
            let _ = self.reply.try_send(Reply { seq, answer });
        }
        next
    }
}

/// Counts bytes that reach the socket (Go's `persistConnWriter`), so a
/// failed request can tell whether it wrote anything.
struct Counting<'a> {
    w: &'a mut WriteHalf,
    conn: &'a PersistConn,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.conn.inner.nwrite.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

fn closed_half() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the write half is gone")
}

fn socket_failure(e: io::Error, what: &str) -> WriteFailure {
    // A TLS alert (say, the server refusing our certificate) is a TLS error.
    WriteFailure {
        err: Error::new(stream::error_kind(&e), format!("write {what}")).with_source(e),
        on_socket: true,
    }
}

/// Writes one request. Returns the outcome and whether the body was sent
/// (it is not when the server refused `Expect: 100-continue`).
fn write_request(
    conn: &PersistConn,
    w: &mut WriteHalf,
    wr: WriteRequest,
    scratch: &mut Vec<u8>,
) -> (Result<(), WriteFailure>, bool) {
    let mut out = Counting { w, conn };
    let WriteRequest {
        head,
        body,
        framing,
        continue_rx,
        trace,
        headers_told,
        ..
    } = wr;

    // A small in-memory body with no `100 Continue` gate before it came
    // inside `head` already (`writes_now`, on the caller's thread).
    if let Err(e) = out.write_all(&head).and_then(|()| out.flush()) {
        return (Err(socket_failure(e, "request head")), false);
    }
    if let Some(t) = trace.as_ref().filter(|_| !headers_told) {
        t.wrote_headers();
    }

    if let Some(gate) = continue_rx {
        if let Some(t) = &trace {
            t.wait_100_continue();
        }
        // No answer in time: send anyway (Go's expectContinueTimeout). The
        // gate disconnects when the reader exits: the connection closed.
        let send_body = match gate.recv_timeout(conn.config().expect_continue_timeout) {
            Ok(go) => go,
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        };
        if !send_body {
            return (Ok(()), false);
        }
    }

    let res = match body {
        BodyKind::Empty => Ok(()),
        BodyKind::Bytes(b) => out
            .write_all(&b)
            .map_err(|e| socket_failure(e, "request body")),
        BodyKind::Reader { mut reader, .. } => {
            // The copy buffer: copy_body uses it at its current length.
            scratch.clear();
            scratch.resize(COPY_BUF, 0);
            match encode::copy_body(&mut reader, framing, &mut out, scratch) {
                Ok(_) => Ok(()),
                Err(EncodeError::Write(e)) => Err(socket_failure(e, "request body")),
                Err(EncodeError::Read(e)) => Err(WriteFailure {
                    // A reader that fails with a nethttp::Error inside (a
                    // multipart part of the wrong size) keeps its kind.
                    err: Error::from_io(e, ErrorKind::Io, "read request body"),
                    on_socket: false,
                }),
                Err(EncodeError::Length { declared, actual }) => Err(WriteFailure {
                    err: Error::new(
                        ErrorKind::InvalidRequest,
                        format!(
                            "request body length {actual} differs from the declared {declared}"
                        ),
                    ),
                    on_socket: false,
                }),
            }
        }
    };
    let res = res.and_then(|()| out.flush().map_err(|e| socket_failure(e, "request body")));
    (res, true)
}
