//! [`Request`]: what a transport sends. Built by `client`'s
//! `RequestBuilder`; sent by `Client::execute` or `Transport::round_trip`.

use std::{fmt, sync::Arc, time::Duration};

use http::{HeaderMap, Method};
use url::Url;

use crate::{Body, CancelToken, error::Redacted, trace::ClientTrace};

/// One HTTP request: method, URL, headers, body, and per-request options.
pub struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    pub(crate) timeout: Option<Duration>,
    pub(crate) trace: Option<Arc<dyn ClientTrace>>,
    pub(crate) cancel: Option<CancelToken>,
}

impl Request {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The per-request deadline, if set.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &Redacted(&self.url))
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}
