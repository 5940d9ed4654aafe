//! The phases of an exchange that a cancel or a deadline can interrupt, and
//! the errors of the waits that end at one (ureq's `Timeout` names the
//! phase the same way): a new wait that a deadline bounds gets a [`Phase`]
//! here. A dial step whose own timeout fires words its error itself
//! (`dial tcp …`, `tls handshake …`), as Go's dialer does.
//! A leaf module.

use std::{
    fmt,
    time::{Duration, Instant},
};

use crate::{Error, ErrorKind};

/// Where an exchange stood when it was interrupted.
#[derive(Clone, Copy)]
pub(crate) enum Phase<'a> {
    /// Waiting in the pool for a connection to this `host:port`.
    WaitingForConnection(&'a dyn fmt::Display),
    /// Dialling this `host:port`: DNS, connect, proxy tunnel, TLS.
    Connecting(&'a dyn fmt::Display),
    WritingRequest,
    AwaitingHeaders,
    ReadingBody,
}

impl fmt::Debug for Phase<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phase({self})")
    }
}

impl fmt::Display for Phase<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::WaitingForConnection(to) => write!(f, "waiting for a free connection to {to}"),
            Phase::Connecting(to) => write!(f, "connecting to {to}"),
            Phase::WritingRequest => f.write_str("writing the request"),
            Phase::AwaitingHeaders => f.write_str("awaiting response headers"),
            Phase::ReadingBody => f.write_str("reading the response body"),
        }
    }
}

/// What interrupted an exchange: the request's cancel token, or its (or
/// its client's) deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Canceled,
    Deadline,
}

impl Interrupt {
    /// The error a request gets when this interrupted it in `phase`: kind
    /// `Canceled` or `Timeout`.
    pub(crate) fn error(self, phase: Phase<'_>) -> Error {
        match self {
            Interrupt::Canceled => Error::new(
                ErrorKind::Canceled,
                format!("request canceled while {phase}"),
            ),
            Interrupt::Deadline => Error::new(
                ErrorKind::Timeout,
                format!("deadline exceeded while {phase}"),
            ),
        }
    }
}

/// A step's own timeout (`None` or zero: none) tightened to what is left of
/// the request's `deadline`; the deadline's error, naming `phase`, when it
/// has passed already.
pub(crate) fn bound(
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    phase: Phase<'_>,
) -> Result<Option<Duration>, Error> {
    let timeout = timeout.filter(|t| !t.is_zero());
    let Some(d) = deadline else {
        return Ok(timeout);
    };
    let left = d.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Interrupt::Deadline.error(phase));
    }
    Ok(Some(timeout.map_or(left, |t| t.min(left))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_phase() {
        let key = "example.com:443";
        let e = Interrupt::Deadline.error(Phase::Connecting(&key));
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(
            e.message(),
            "deadline exceeded while connecting to example.com:443"
        );
        let e = Interrupt::Canceled.error(Phase::ReadingBody);
        assert_eq!(e.kind(), ErrorKind::Canceled);
        assert_eq!(
            e.message(),
            "request canceled while reading the response body"
        );
    }

    #[test]
    fn a_step_timeout_is_bounded_by_the_deadline() {
        let secs = Duration::from_secs;
        let phase = Phase::WritingRequest;
        assert_eq!(bound(None, Some(secs(5)), phase).unwrap(), Some(secs(5)));
        assert_eq!(bound(None, Some(Duration::ZERO), phase).unwrap(), None);
        let soon = Instant::now() + secs(2);
        let b = bound(Some(soon), Some(secs(30)), phase).unwrap().unwrap();
        assert!(b <= secs(2) && b > secs(1), "{b:?}");
        let b = bound(Some(soon), None, phase).unwrap().unwrap();
        assert!(b <= secs(2), "{b:?}");
        let now = Instant::now();
        let past = now.checked_sub(Duration::from_millis(1)).unwrap_or(now);
        assert_eq!(
            bound(Some(past), Some(secs(5)), phase).unwrap_err().kind(),
            ErrorKind::Timeout
        );
    }
}
