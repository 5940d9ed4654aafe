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

    /// A copy to send again (a retrying middleware's next attempt):
    /// everything but a body that cannot be replayed, which makes it
    /// `None`. Bodies from bytes and strings replay; streamed ones do not.
    ///
    /// ```
    /// use nethttp::{Body, Request, http::Method};
    /// let req = Request::builder(Method::PUT, "http://127.0.0.1:1/").body("data").build()?;
    /// assert!(req.try_clone().is_some());
    /// let streamed = Request::builder(Method::PUT, "http://127.0.0.1:1/")
    ///     .body(Body::from_reader(std::io::empty(), None))
    ///     .build()?;
    /// assert!(streamed.try_clone().is_none());
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn try_clone(&self) -> Option<Request> {
        Some(Request {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.try_clone()?,
            timeout: self.timeout,
            trace: self.trace.clone(),
            cancel: self.cancel.clone(),
        })
    }
}

/// An `http` crate request as a nethttp one: method, URI (which must be
/// absolute, with a scheme and a host: else [`ErrorKind::InvalidUrl`]),
/// headers and body. The version and extensions are not carried over; the
/// transport chooses the version.
///
/// [`ErrorKind::InvalidUrl`]: crate::ErrorKind::InvalidUrl
///
/// ```
/// let req = http::Request::post("http://127.0.0.1:8080/items")
///     .header("content-type", "application/json")
///     .body(r#"{"a":1}"#)
///     .unwrap();
/// let req = nethttp::Request::try_from(req)?;
/// assert_eq!(req.url().path(), "/items");
/// assert_eq!(req.headers()["content-type"], "application/json");
/// # Ok::<(), nethttp::Error>(())
/// ```
impl<B: Into<Body>> TryFrom<http::Request<B>> for Request {
    type Error = crate::Error;

    fn try_from(req: http::Request<B>) -> crate::Result<Request> {
        let (parts, body) = req.into_parts();
        // A relative URI ("/items") does not parse: InvalidUrl.
        let url = crate::IntoUrl::into_url(parts.uri.to_string())?;
        Ok(Request {
            method: parts.method,
            url,
            headers: parts.headers,
            body: body.into(),
            timeout: None,
            trace: None,
            cancel: None,
        })
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
