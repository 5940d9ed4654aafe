//! A response body over one HTTP/2 stream: it reads the stream's buffer,
//! which the reader thread fills, and earns the windows back as it reads.
//! Read to its end, the stream is forgotten and its slot goes back to the
//! pool; dropped before, the stream is reset (`RST_STREAM CANCEL`) and the
//! connection and its threads stay.

use std::{
    fmt,
    io::{self, Read},
    sync::Arc,
    time::Instant,
};

use crossbeam_channel::Receiver;
use http::HeaderMap;

use super::writer::Job;
use super::{H2Conn, Waits, Woke};
use crate::{
    CancelToken, Error,
    body::{BodyEnd, BodySource},
    phase::{Interrupt, Phase},
    trace::ClientTrace,
};

pub(super) struct StreamBody {
    conn: H2Conn,
    id: u32,
    bell: Receiver<()>,
    /// Held (not just its receiver) for as long as the body may be read.
    cancel: Option<CancelToken>,
    deadline: Option<Instant>,
    content_length: Option<u64>,
    /// Told `put_idle_conn` at the body's clean end, as for HTTP/1.
    trace: Option<Arc<dyn ClientTrace>>,
    /// The stream ended and was forgotten; `trailers` holds its trailers.
    ended: bool,
    trailers: Option<HeaderMap>,
    /// A sticky failure: every later read fails the same way.
    failed: Option<Error>,
}

impl StreamBody {
    pub(super) fn new(
        conn: H2Conn,
        id: u32,
        bell: Receiver<()>,
        cancel: Option<CancelToken>,
        deadline: Option<Instant>,
        content_length: Option<u64>,
        trace: Option<Arc<dyn ClientTrace>>,
    ) -> StreamBody {
        StreamBody {
            conn,
            id,
            bell,
            cancel,
            deadline,
            content_length,
            trace,
            ended: false,
            trailers: None,
            failed: None,
        }
    }

    /// Takes what the buffer has, or learns the stream's end or failure;
    /// `None`: nothing yet, wait.
    fn take(&mut self, out: &mut [u8]) -> Option<io::Result<usize>> {
        let mut st = self.conn.inner.state.lock();
        let id = self.id;
        let Some(s) = st.streams.get_mut(&id) else {
            return Some(Err(to_io(self.conn.closed_error())));
        };
        if !s.data.is_empty() {
            let n = out.len().min(s.data.len());
            out[..n].copy_from_slice(&s.data[..n]);
            let _ = s.data.split_to(n);
            // Credit for the stream (unless the server is done sending on
            // it) and for the connection.
            let n32 = n as u32;
            if let Some(inc) = s.recv_credit.consumed(n32) {
                if !s.remote_end && s.recv_window.increase(inc).is_ok() {
                    st.queue(Job::WindowUpdate { id, increment: inc });
                }
            }
            st.give_back(n);
            return Some(Ok(n));
        }
        if let Some((e, _)) = &s.error {
            return Some(Err(to_io(e.duplicate())));
        }
        if s.remote_end {
            self.trailers = s.trailers.take();
            drop(st);
            self.ended = true;
            self.conn.forget(id);
            if let Some(t) = &self.trace {
                t.put_idle_conn(None);
            }
            return Some(Ok(0));
        }
        None
    }
}

impl Read for StreamBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(to_io(e.duplicate()));
        }
        if self.ended || out.is_empty() {
            return Ok(0);
        }
        // `read_timeout`: this read may wait that long for a byte.
        let read_timeout = self.conn.inner.cfg.read_timeout;
        let stall = read_timeout.map(|t| Instant::now() + t);
        loop {
            match self.take(out) {
                Some(Ok(n)) => return Ok(n),
                Some(Err(e)) => {
                    if let Some(inner) = e.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
                        self.failed = Some(inner.duplicate());
                    }
                    return Err(e);
                }
                None => {}
            }
            let waits = Waits {
                bell: &self.bell,
                cancel: self.cancel.as_ref().map(CancelToken::receiver),
                deadline: self.deadline,
            };
            if let Err(w) = waits.wait_with(None, stall) {
                let err = match w {
                    Woke::Canceled => Interrupt::Canceled.error(Phase::ReadingBody),
                    Woke::Deadline | Woke::Timer => Interrupt::Deadline.error(Phase::ReadingBody),
                    // Forgetting the stream below resets it (`RST_STREAM
                    // CANCEL`); the connection stays.
                    Woke::Stalled => crate::conn::read_timeout_error(
                        Phase::ReadingBody,
                        read_timeout.unwrap_or_default(),
                    ),
                };
                self.failed = Some(err.duplicate());
                self.ended = true;
                self.conn.forget(self.id);
                return Err(to_io(err));
            }
        }
    }
}

fn to_io(e: Error) -> io::Error {
    io::Error::new(e.io_kind(), e)
}

impl BodySource for StreamBody {
    fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    fn may_exceed(&self, max: u64) -> bool {
        self.content_length.is_none_or(|n| n > max)
    }

    // A stream's end never decides the connection's fate: nothing to hold.
    fn hold(&mut self) {}

    fn end(&mut self, end: BodyEnd<'_>) {
        if let BodyEnd::Refused(e) = end {
            if self.failed.is_none() {
                self.failed = Some(e.duplicate());
            }
            if !self.ended {
                self.ended = true;
                self.conn.forget(self.id);
            }
        }
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if !self.ended {
            // Before its end: reset the stream, keep the connection.
            self.conn.forget(self.id);
        }
    }
}

impl fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBody")
            .field("conn", &self.conn.id())
            .field("stream", &self.id)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// A body that ended with its head (no DATA) but carried trailers.
#[derive(Debug)]
pub(super) struct Finished {
    trailers: HeaderMap,
}

impl Finished {
    pub(super) fn new(trailers: HeaderMap) -> Finished {
        Finished { trailers }
    }
}

impl Read for Finished {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl BodySource for Finished {
    fn trailers(&self) -> Option<&HeaderMap> {
        Some(&self.trailers)
    }

    fn may_exceed(&self, _: u64) -> bool {
        false
    }

    fn hold(&mut self) {}

    fn end(&mut self, _: BodyEnd<'_>) {}
}
