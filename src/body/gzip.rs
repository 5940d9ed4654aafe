//! Transparent gzip (Go's `gzipReader`): a response the transport asked to
//! be gzipped is decoded on the fly. The decoder reads the connection body
//! to its end, so the connection is handed back as for any other body.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;

use super::ConnBody;
use crate::{Error, ErrorKind};

/// Decodes a gzip body read from a connection.
pub(crate) struct GzipBody {
    /// Multi-member, as Go's reader: it stops only at the body's end.
    decoder: MultiGzDecoder<ConnBody>,
}

impl GzipBody {
    pub(crate) fn new(body: ConnBody) -> GzipBody {
        GzipBody {
            decoder: MultiGzDecoder::new(body),
        }
    }

    pub(crate) fn conn_body(&self) -> &ConnBody {
        self.decoder.get_ref()
    }

    pub(crate) fn conn_body_mut(&mut self) -> &mut ConnBody {
        self.decoder.get_mut()
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoder.read(buf).map_err(|e| {
            // Errors from the connection already carry a nethttp::Error.
            if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
                return e;
            }
            let err = Error::new(ErrorKind::BodyRead, format!("corrupt gzip body: {e}"))
                .with_io_kind(io::ErrorKind::InvalidData);
            // The rest of the body is unreadable: never reuse the connection.
            self.decoder.get_mut().abandon(err.duplicate());
            err.into()
        })
    }
}
