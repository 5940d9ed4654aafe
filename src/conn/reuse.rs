//! The one reuse verdict: may this connection carry another request, now
//! that a response has ended? (RFC 9112 §9.3; Go's `readLoop`: `alive &&
//! bodyEOF && !pc.sawEOF && pc.wroteRequest() && tryPutIdleConn(trace)`.)
//! A pure function of [`Facts`], so the rule reads in one place and tests
//! as a table. The pool's own refusals (its limits, `close_idle_connections`,
//! a dropped transport) come after, from `pool::Pool::try_put_idle`, as
//! the same [`CloseReason`].

use http::{HeaderMap, StatusCode, Version};

use crate::{
    close_reason::CloseReason,
    h1::framing::{self, BodyFraming},
};

/// What decides whether a connection may be reused after one exchange.
/// The head's facts are known when the response head is read; the last two
/// only at the end, and stand at "so far, so good" until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// The transport keeps connections alive (Go's `!DisableKeepAlives`).
    pub(crate) keep_alives: bool,
    /// The request carried `Connection: close`.
    pub(crate) request_close: bool,
    /// What the response's version and fields say
    /// ([`framing::persistence`]).
    pub(crate) response: Result<(), CloseReason>,
    pub(crate) framing: BodyFraming,
    pub(crate) status: StatusCode,
    /// The writer sent the whole request (Go's `wroteRequest`).
    pub(crate) written: bool,
    /// What the server did after the response: nothing, or closed, or
    /// spoke unasked; `None` until someone looked (a lent body's end, or
    /// `PersistConn::peer_check`).
    pub(crate) after: Option<Result<(), CloseReason>>,
}

impl Facts {
    /// The facts of a response head, the end still to come.
    pub(crate) fn at_head(
        keep_alives: bool,
        request_close: bool,
        version: Version,
        headers: &HeaderMap,
        framing: BodyFraming,
        status: StatusCode,
    ) -> Facts {
        Facts {
            keep_alives,
            request_close,
            response: framing::persistence(version, headers),
            framing,
            status,
            written: true,
            after: None,
        }
    }

    /// A connection handed back unused (its request gave up before using
    /// it): nothing speaks against it.
    pub(crate) fn unused() -> Facts {
        Facts {
            keep_alives: true,
            request_close: false,
            response: Ok(()),
            framing: BodyFraming::None,
            status: StatusCode::OK,
            written: true,
            after: None,
        }
    }
}

/// The verdict, the first rule that applies giving the reason.
pub(crate) fn may_reuse(f: &Facts) -> Result<(), CloseReason> {
    if !f.keep_alives {
        return Err(CloseReason::KeepAlivesDisabled);
    }
    // RFC 9112 §9.6: a request with "close" is the connection's last.
    if f.request_close {
        return Err(CloseReason::ConnectionClose);
    }
    f.response?;
    // RFC 9112 §6.3 rule 8: the body ended because the connection did.
    if f.framing == BodyFraming::CloseDelimited {
        return Err(CloseReason::CloseDelimited);
    }
    // RFC 9110 §15.2.2: after 101 the connection speaks another protocol.
    if f.status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(CloseReason::SwitchingProtocols);
    }
    if !f.written {
        return Err(CloseReason::RequestNotWritten);
    }
    f.after.unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CloseReason::*;

    fn ok() -> Facts {
        Facts {
            keep_alives: true,
            request_close: false,
            response: Ok(()),
            framing: BodyFraming::Length(5),
            status: StatusCode::OK,
            written: true,
            after: None,
        }
    }

    #[test]
    fn verdicts() {
        let cases: &[(&str, Facts, Result<(), CloseReason>)] = &[
            ("all well", ok(), Ok(())),
            (
                "chunked",
                Facts {
                    framing: BodyFraming::Chunked,
                    ..ok()
                },
                Ok(()),
            ),
            (
                "no body",
                Facts {
                    framing: BodyFraming::None,
                    status: StatusCode::NO_CONTENT,
                    ..ok()
                },
                Ok(()),
            ),
            (
                "keep-alives off",
                Facts {
                    keep_alives: false,
                    ..ok()
                },
                Err(KeepAlivesDisabled),
            ),
            (
                "request said close",
                Facts {
                    request_close: true,
                    ..ok()
                },
                Err(ConnectionClose),
            ),
            (
                "response said close",
                Facts {
                    response: Err(ConnectionClose),
                    ..ok()
                },
                Err(ConnectionClose),
            ),
            (
                "HTTP/1.0",
                Facts {
                    response: Err(Http10),
                    ..ok()
                },
                Err(Http10),
            ),
            (
                "TE and CL",
                Facts {
                    response: Err(SuspectFraming),
                    ..ok()
                },
                Err(SuspectFraming),
            ),
            (
                "close-delimited",
                Facts {
                    framing: BodyFraming::CloseDelimited,
                    ..ok()
                },
                Err(CloseDelimited),
            ),
            (
                "101",
                Facts {
                    status: StatusCode::SWITCHING_PROTOCOLS,
                    framing: BodyFraming::None,
                    ..ok()
                },
                Err(SwitchingProtocols),
            ),
            (
                "request not written",
                Facts {
                    written: false,
                    ..ok()
                },
                Err(RequestNotWritten),
            ),
            (
                "server closed after",
                Facts {
                    after: Some(Err(PeerClosed)),
                    ..ok()
                },
                Err(PeerClosed),
            ),
            (
                "server spoke after",
                Facts {
                    after: Some(Err(UnsolicitedBytes)),
                    ..ok()
                },
                Err(UnsolicitedBytes),
            ),
            // The first rule that applies names the reason.
            (
                "keep-alives off and close",
                Facts {
                    keep_alives: false,
                    request_close: true,
                    ..ok()
                },
                Err(KeepAlivesDisabled),
            ),
            (
                "close and not written",
                Facts {
                    response: Err(ConnectionClose),
                    written: false,
                    ..ok()
                },
                Err(ConnectionClose),
            ),
            (
                "not written and closed after",
                Facts {
                    written: false,
                    after: Some(Err(PeerClosed)),
                    ..ok()
                },
                Err(RequestNotWritten),
            ),
        ];
        for (what, facts, want) in cases {
            assert_eq!(may_reuse(facts), *want, "{what}");
        }
        assert_eq!(may_reuse(&Facts::unused()), Ok(()));
    }

    #[test]
    fn facts_at_head_read_the_response() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close".parse().unwrap());
        let f = Facts::at_head(
            true,
            false,
            Version::HTTP_11,
            &h,
            BodyFraming::None,
            StatusCode::OK,
        );
        assert_eq!(may_reuse(&f), Err(ConnectionClose));
        let f = Facts::at_head(
            true,
            false,
            Version::HTTP_10,
            &HeaderMap::new(),
            BodyFraming::Length(1),
            StatusCode::OK,
        );
        assert_eq!(may_reuse(&f), Err(Http10));
    }
}
