//! The connection's side of a `101 Switching Protocols` response (RFC 9110
//! §15.2.2): after it the connection speaks another protocol, so it is
//! never reused, and it has no body. Its [`Switching`] body holds the read
//! half the reader thread lent it for good (with whatever the reader had
//! read past the head) and a handle on the connection, and ends in exactly
//! one of two ways:
//!
//! - `Response::upgrade` takes them out ([`BodySource::take_upgrade`]) as a
//!   [`Switch`], whose [`hand_over`](Switch::hand_over) gives the caller
//!   the socket (`PersistConn::hand_over`);
//! - dropped (the response, its body, or a `Switch` that was never handed
//!   over), it closes the connection: both threads exit, as for any body
//!   dropped early.
//!
//! Both types live on the caller's thread (or in the reply channel, which
//! drops them when both connection threads have exited).

use std::{
    any::Any,
    fmt,
    io::{self, Read},
};

use http::HeaderMap;

use super::{Handed, PersistConn};
use crate::{
    Error,
    body::{BodyEnd, BodySource},
    close_reason::CloseReason,
    stream::BufReadHalf,
};

/// The body of a 101 response: empty to read, and the connection's until
/// it is upgraded or dropped.
pub(crate) struct Switching {
    /// The connection and the read half lent for good; `None` once taken
    /// for an upgrade.
    held: Option<(PersistConn, BufReadHalf)>,
}

impl Switching {
    pub(super) fn new(conn: PersistConn, rd: BufReadHalf) -> Box<Switching> {
        Box::new(Switching {
            held: Some((conn, rd)),
        })
    }
}

/// A 101 has no content (RFC 9110 §15.2.2): reads end at once. The
/// connection stays the response's until it is upgraded or dropped.
impl Read for Switching {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl BodySource for Switching {
    fn trailers(&self) -> Option<&HeaderMap> {
        None
    }

    fn may_exceed(&self, _: u64) -> bool {
        false
    }

    // Nothing to hold: the end of this empty body decides nothing.
    fn hold(&mut self) {}

    fn end(&mut self, _: BodyEnd<'_>) {}

    fn take_upgrade(&mut self) -> Option<Box<dyn Any + Send>> {
        let held = self.held.take()?;
        Some(Box::new(Switch { held: Some(held) }))
    }
}

impl Drop for Switching {
    fn drop(&mut self) {
        close(self.held.take());
    }
}

impl fmt::Debug for Switching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("conn", &self.held.as_ref().map(|(c, _)| c.id()))
            .field("switching_protocols", &true)
            .finish()
    }
}

/// A 101's connection on its way to the caller (`Response::upgrade`).
pub(crate) struct Switch {
    /// `None` once handed over.
    held: Option<(PersistConn, BufReadHalf)>,
}

impl Switch {
    /// Gives the caller the socket (see `PersistConn::hand_over`).
    pub(crate) fn hand_over(mut self) -> Result<Handed, Error> {
        match self.held.take() {
            Some((conn, rd)) => conn.hand_over(rd),
            None => Err(Error::new(
                crate::ErrorKind::InvalidRequest,
                "the connection was already taken over",
            )),
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        close(self.held.take());
    }
}

/// A 101 dropped without an upgrade: the read half goes, the connection
/// closes (socket shut down, both threads woken to exit).
fn close(held: Option<(PersistConn, BufReadHalf)>) {
    if let Some((conn, rd)) = held {
        drop(rd);
        conn.close(CloseReason::SwitchingProtocols);
    }
}
