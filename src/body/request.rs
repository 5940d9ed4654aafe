//! [`Body`]: what a request sends.

use std::{
    fmt,
    io::{self, Read},
    sync::Arc,
};

use bytes::Bytes;

use crate::h1::framing::BodySize;

/// A request body: bytes held in memory (replayable, so the request can be
/// retried on a dead keep-alive connection or re-sent on a 307/308), or a
/// reader streamed once.
///
/// ```
/// use nethttp::Body;
/// let a = Body::from("hello");                 // replayable
/// let b = Body::from(vec![1u8, 2, 3]);         // replayable
/// let c = Body::from_reader(std::io::empty(), None); // streamed, sent chunked
/// assert_eq!(a.len(), Some(5));
/// assert!(b.is_replayable() && !c.is_replayable());
/// ```
pub struct Body {
    kind: Kind,
}

pub(crate) enum Kind {
    Empty,
    Bytes(Bytes),
    Reader {
        reader: Box<dyn Read + Send + 'static>,
        len: Option<u64>,
        /// Opens the same bytes again, for a copy: the body is replayable.
        reopen: Option<Reopen>,
    },
}

/// Opens a streamed body's bytes again (a file by its path): what makes a
/// streamed body replayable. Shared by the copies.
pub(crate) type Reopen = Arc<dyn Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync>;

/// A copy's reader: opened at its first read, so a copy that is never
/// sent opens nothing, and a failure to open fails that request's body.
struct Reopened {
    open: Reopen,
    reader: Option<Box<dyn Read + Send>>,
}

impl Read for Reopened {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reader = match &mut self.reader {
            Some(r) => r,
            None => self.reader.insert((self.open)()?),
        };
        reader.read(buf)
    }
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body { kind: Kind::Empty }
    }

    /// A streamed body read once from `reader`. With `len` it is sent with
    /// `Content-Length` (and a reader that yields a different number of bytes
    /// fails the request with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest));
    /// without, it is sent chunked.
    pub fn from_reader(reader: impl Read + Send + 'static, len: Option<u64>) -> Body {
        Body {
            kind: Kind::Reader {
                reader: Box::new(reader),
                len,
                reopen: None,
            },
        }
    }

    /// A streamed body that can be produced again: `first` is read when
    /// the request is sent, and each copy (a retry, a 307/308 redirect)
    /// reads what `reopen` opens, when it is sent. Every reading must
    /// yield the same `len` bytes.
    #[cfg_attr(not(feature = "multipart"), allow(dead_code))]
    pub(crate) fn reopenable(
        first: impl Read + Send + 'static,
        len: Option<u64>,
        reopen: Reopen,
    ) -> Body {
        Body {
            kind: Kind::Reader {
                reader: Box::new(first),
                len,
                reopen: Some(reopen),
            },
        }
    }

    /// The body's length when known.
    pub fn len(&self) -> Option<u64> {
        match &self.kind {
            Kind::Empty => Some(0),
            Kind::Bytes(b) => Some(b.len() as u64),
            Kind::Reader { len, .. } => *len,
        }
    }

    /// True when the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// True when the body can be sent again (in-memory bytes, empty, or a
    /// stream that can be reopened, such as a multipart form of files).
    pub fn is_replayable(&self) -> bool {
        !matches!(self.kind, Kind::Reader { reopen: None, .. })
    }

    /// A copy for a retry or a redirect, when the body is replayable.
    pub(crate) fn try_clone(&self) -> Option<Body> {
        match &self.kind {
            Kind::Empty => Some(Body::empty()),
            Kind::Bytes(b) => Some(Body {
                kind: Kind::Bytes(b.clone()),
            }),
            Kind::Reader {
                len,
                reopen: Some(open),
                ..
            } => Some(Body {
                kind: Kind::Reader {
                    reader: Box::new(Reopened {
                        open: open.clone(),
                        reader: None,
                    }),
                    len: *len,
                    reopen: Some(open.clone()),
                },
            }),
            Kind::Reader { reopen: None, .. } => None,
        }
    }

    pub(crate) fn size(&self) -> BodySize {
        match &self.kind {
            Kind::Empty => BodySize::Empty,
            Kind::Bytes(b) if b.is_empty() => BodySize::Empty,
            Kind::Bytes(b) => BodySize::Known(b.len() as u64),
            Kind::Reader { len: Some(n), .. } => BodySize::Known(*n),
            Kind::Reader { len: None, .. } => BodySize::Unknown,
        }
    }

    pub(crate) fn into_kind(self) -> Kind {
        self.kind
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Kind::Reader { len, .. } => write!(f, "Body::Reader(len: {len:?})"),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body {
            kind: Kind::Bytes(Bytes::from(v)),
        }
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::from(s.into_bytes())
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body {
            kind: Kind::Bytes(Bytes::from_static(s.as_bytes())),
        }
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body {
            kind: Kind::Bytes(Bytes::from_static(s)),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body {
            kind: Kind::Bytes(b),
        }
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Body {
        Body::empty()
    }
}
