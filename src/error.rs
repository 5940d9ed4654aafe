//! The crate's one error type: a kind to branch on, the URL, and a message
//! that names the operation that failed (Go's `url.Error` plus the
//! operation-named sentinels of `transport.go`).
//!
//! This is a leaf module: it depends on nothing else in the crate. Every
//! message the crate shows a user is worded here or at the one call site that
//! builds it; the `Display` text is for people, not for matching.

use std::{error::Error as StdError, fmt, io};

use http::StatusCode;
use url::Url;

/// What went wrong, coarsely: the thing a program branches on.
///
/// `#[non_exhaustive]`: new kinds may appear in minor releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL could not be parsed, has no host, or has an unsupported scheme.
    InvalidUrl,
    /// The request is malformed: a bad header name or value (CR/LF), or a
    /// streamed body whose length differs from the declared one.
    InvalidRequest,
    /// The host name could not be resolved.
    Dns,
    /// The TCP connection could not be established.
    Connect,
    /// The TLS handshake or a TLS record failed.
    Tls,
    /// The proxy could not be reached, refused the tunnel or failed; the
    /// message names the proxy (without its password).
    Proxy,
    /// A deadline passed: the request's or client's timeout, the connect
    /// timeout, or the response-header timeout.
    Timeout,
    /// The request was canceled through its [`CancelToken`](crate::CancelToken).
    Canceled,
    /// No connection became available within `pool_wait_timeout`.
    PoolTimeout,
    /// An I/O error on an established connection (including a server that
    /// closed the connection before sending a response).
    Io,
    /// The server sent a malformed response.
    Protocol,
    /// The response head was larger than `max_response_header_bytes`.
    HeaderTooLarge,
    /// The redirect limit was reached.
    TooManyRedirects,
    /// A redirect could not be followed (bad `Location`, or a custom policy
    /// returned an error).
    Redirect,
    /// The response body could not be read to its end: truncated or malformed.
    BodyRead,
    /// The response body (decoded) is larger than the bound set with
    /// [`Response::limit`](crate::Response::limit).
    BodyTooLarge,
    /// The server answered with a client or server error status (4xx or
    /// 5xx), from [`Response::error_for_status`](crate::Response::error_for_status);
    /// [`Error::status`] says which.
    Status,
}

/// A `nethttp` error: a [`kind`](Error::kind), the URL it happened on, the
/// operation that failed, and the underlying cause when there is one.
///
/// The `Display` text says what failed in words meant for people; do not
/// parse it. Branch on [`kind`](Error::kind) instead. The underlying cause
/// (an `io::Error`, a TLS or JSON error) is [`source`](std::error::Error::source),
/// and its text is not repeated in `Display` (the Rust API guidelines'
/// convention), so a report that prints the chain shows each cause once.
///
/// ```
/// let err = nethttp::get("ftp://example.com/").unwrap_err();
/// assert_eq!(err.kind(), nethttp::ErrorKind::InvalidUrl);
/// assert!(!err.is_timeout());
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    url: Option<Url>,
    /// The `io::ErrorKind` this error maps to when it leaves through `Read`.
    io_kind: Option<io::ErrorKind>,
    /// The response status, for [`ErrorKind::Status`].
    status: Option<StatusCode>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// Builds an error of `kind` whose message says what failed: for
    /// [`RoundTripper`](crate::RoundTripper) middleware and mocks that fail
    /// an exchange themselves.
    ///
    /// ```
    /// use nethttp::{Error, ErrorKind};
    /// let e = Error::new(ErrorKind::Connect, "mock: connection refused");
    /// assert_eq!(e.kind(), ErrorKind::Connect);
    /// assert_eq!(e.to_string(), "connect error: mock: connection refused");
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                url: None,
                io_kind: None,
                status: None,
                source: None,
            }),
        }
    }

    /// The error [`Response::error_for_status`](crate::Response::error_for_status)
    /// returns for `status` from `url`.
    pub(crate) fn status_error(status: StatusCode, url: &Url) -> Error {
        let mut e = Error::new(ErrorKind::Status, format!("server answered {status}"));
        e.inner.status = Some(status);
        e.with_url(url)
    }

    /// The response status, for errors of kind [`ErrorKind::Status`].
    ///
    /// ```
    /// let e = nethttp::Error::new(nethttp::ErrorKind::Io, "boom");
    /// assert_eq!(e.status(), None);
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// A callback of the user's (a trace hook, a body reader) panicked on
    /// one of the crate's threads `while` doing something: kind `Io`, and
    /// the message says so (API.md, "Safety rules").
    pub(crate) fn callback_panicked(during: &str) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("a callback panicked on a nethttp thread while {during}"),
        )
    }

    /// Attaches the underlying cause.
    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// Attaches the URL, unless one is already set (the innermost URL wins,
    /// which after a redirect is the hop that failed).
    pub(crate) fn with_url(mut self, url: &Url) -> Error {
        if self.inner.url.is_none() {
            self.inner.url = Some(url.clone());
        }
        self
    }

    /// Reclassifies this error as `kind`, its message prefixed with
    /// `context` (the source stays).
    pub(crate) fn reclassify(mut self, kind: ErrorKind, context: impl fmt::Display) -> Error {
        self.inner.kind = kind;
        self.inner.message = format!("{context}: {}", self.inner.message);
        self
    }

    /// Sets the `io::ErrorKind` used when this error is turned into an
    /// `io::Error` (body reads).
    pub(crate) fn with_io_kind(mut self, kind: io::ErrorKind) -> Error {
        self.inner.io_kind = Some(kind);
        self
    }

    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// True for [`ErrorKind::Timeout`] and [`ErrorKind::PoolTimeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Timeout | ErrorKind::PoolTimeout)
    }

    /// The URL of the request that failed, when known.
    pub fn url(&self) -> Option<&Url> {
        self.inner.url.as_ref()
    }

    /// The message without the URL (the operation and what went wrong).
    pub(crate) fn message(&self) -> &str {
        &self.inner.message
    }

    /// A copy for a second receiver (the cause is flattened to its text).
    pub(crate) fn duplicate(&self) -> Error {
        let mut e = Error::new(self.inner.kind, self.inner.message.clone());
        e.inner.url = self.inner.url.clone();
        e.inner.io_kind = self.inner.io_kind;
        e.inner.status = self.inner.status;
        if let Some(src) = &self.inner.source {
            e.inner.source = Some(src.to_string().into());
        }
        e
    }

    /// The `io::ErrorKind` this error has when surfaced through `Read`.
    pub(crate) fn io_kind(&self) -> io::ErrorKind {
        if let Some(k) = self.inner.io_kind {
            return k;
        }
        match self.inner.kind {
            ErrorKind::Timeout | ErrorKind::PoolTimeout => io::ErrorKind::TimedOut,
            ErrorKind::BodyRead => io::ErrorKind::UnexpectedEof,
            ErrorKind::Protocol | ErrorKind::HeaderTooLarge | ErrorKind::BodyTooLarge => {
                io::ErrorKind::InvalidData
            }
            ErrorKind::InvalidRequest | ErrorKind::InvalidUrl => io::ErrorKind::InvalidInput,
            ErrorKind::Io => match self.source_io_kind() {
                Some(k) => k,
                None => io::ErrorKind::Other,
            },
            _ => io::ErrorKind::Other,
        }
    }

    fn source_io_kind(&self) -> Option<io::ErrorKind> {
        self.inner
            .source
            .as_ref()
            .and_then(|s| s.downcast_ref::<io::Error>())
            .map(io::Error::kind)
    }

    /// Recovers a `nethttp::Error` that travelled inside an `io::Error`
    /// (through a `Read` impl); wraps any other I/O error as `kind`.
    pub(crate) fn from_io(err: io::Error, kind: ErrorKind, message: &str) -> Error {
        if err.get_ref().is_some_and(|e| e.is::<Error>()) {
            let io_kind = err.kind();
            return match err.into_inner().map(|b| b.downcast::<Error>()) {
                Some(Ok(e)) => *e,
                // Unreachable given the check above; keep a sensible error anyway.
                _ => Error::new(kind, message.to_string()).with_io_kind(io_kind),
            };
        }
        Error::new(kind, message).with_source(err)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(url) = &self.inner.url {
            d.field("url", &Redacted(url));
        }
        if let Some(src) = &self.inner.source {
            d.field("source", src);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.url {
            Some(url) => write!(
                f,
                "{} {}: {}",
                kind_word(self.inner.kind),
                Redacted(url),
                self.inner.message
            ),
            None => write!(f, "{}: {}", kind_word(self.inner.kind), self.inner.message),
        }
    }
}

fn kind_word(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidUrl => "invalid URL",
        ErrorKind::InvalidRequest => "invalid request",
        ErrorKind::Dns => "dns error",
        ErrorKind::Connect => "connect error",
        ErrorKind::Tls => "tls error",
        ErrorKind::Proxy => "proxy error",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Canceled => "canceled",
        ErrorKind::PoolTimeout => "pool timeout",
        ErrorKind::Io => "i/o error",
        ErrorKind::Protocol => "protocol error",
        ErrorKind::HeaderTooLarge => "response header too large",
        ErrorKind::TooManyRedirects => "too many redirects",
        ErrorKind::Redirect => "redirect error",
        ErrorKind::BodyRead => "body read error",
        ErrorKind::BodyTooLarge => "response body too large",
        ErrorKind::Status => "http status error",
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn StdError + 'static))
    }
}

/// Keeps the mapping of API.md: truncated bodies are `UnexpectedEof`,
/// malformed chunks `InvalidData`, deadlines `TimedOut`, cancels `Other`; the
/// `nethttp::Error` stays reachable through `get_ref()`.
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

/// A URL as messages show it (Go's `redactedURL`): the password, if there
/// is one, replaced by `***`; the user name stays. `Display` writes it
/// bare, `Debug` quoted.
pub(crate) struct Redacted<'a>(pub(crate) &'a Url);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.password().is_none() {
            return f.write_str(self.0.as_str());
        }
        let mut url = self.0.clone();
        // Only fails for URLs that cannot have credentials, and this one has.
        let _ = url.set_password(Some("***"));
        f.write_str(url.as_str())
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// A string that failed to parse as a URL, for messages: any userinfo
/// (everything before the last `@`, after the scheme) is hidden, since
/// nothing tells a user name from a password any more.
pub(crate) fn redact_raw(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((before, after)) => {
            let scheme = before.find("://").map_or("", |i| &before[..i + 3]);
            format!("{scheme}***@{after}")
        }
        None => value.to_owned(),
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trip_keeps_kind_and_error() {
        let e = Error::new(ErrorKind::BodyRead, "chunk size line is not hex")
            .with_io_kind(io::ErrorKind::InvalidData);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        let inner = io.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert_eq!(inner.map(Error::kind), Some(ErrorKind::BodyRead));
        let back = Error::from_io(io, ErrorKind::Io, "read");
        assert_eq!(back.kind(), ErrorKind::BodyRead);
    }

    #[test]
    fn default_io_kinds() {
        let cases = [
            (ErrorKind::Timeout, io::ErrorKind::TimedOut),
            (ErrorKind::Canceled, io::ErrorKind::Other),
            (ErrorKind::BodyRead, io::ErrorKind::UnexpectedEof),
        ];
        for (kind, io_kind) in cases {
            assert_eq!(io::Error::from(Error::new(kind, "x")).kind(), io_kind);
        }
    }

    #[test]
    fn redaction() {
        let url = |s: &str| Url::parse(s).unwrap();
        let shown = |s: &str| Redacted(&url(s)).to_string();
        assert_eq!(shown("http://ann:s3cret@h/p"), "http://ann:***@h/p");
        assert_eq!(shown("http://:s3cret@h/"), "http://:***@h/");
        assert_eq!(shown("http://ann@h/"), "http://ann@h/");
        assert_eq!(shown("http://h/"), "http://h/");
        assert_eq!(
            format!("{:?}", Redacted(&url("http://a:b@h/"))),
            "\"http://a:***@h/\""
        );
        assert_eq!(redact_raw("http://u:p@h:1"), "http://***@h:1");
        assert_eq!(redact_raw("u:p@h:1"), "***@h:1");
        assert_eq!(redact_raw("h:1"), "h:1");
    }

    #[test]
    fn display_names_kind_url_and_operation() {
        let url = Url::parse("http://127.0.0.1:1/x").unwrap();
        let e = Error::new(ErrorKind::Connect, "dial tcp 127.0.0.1:1: refused").with_url(&url);
        assert_eq!(
            e.to_string(),
            "connect error http://127.0.0.1:1/x: dial tcp 127.0.0.1:1: refused"
        );
        assert!(Error::new(ErrorKind::PoolTimeout, "x").is_timeout());
    }
}
