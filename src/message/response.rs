//! [`Response`].

use std::{
    fmt,
    io::{self, Read},
};

use http::{HeaderMap, StatusCode, Version};
use url::Url;

use crate::{
    Error, ErrorKind, ResponseBody,
    body::{BodyEnd, BodySource},
    error::Redacted,
};

/// A response: status and headers at once, the body through [`Read`].
///
/// Read the body to its end ([`text`](Response::text),
/// [`bytes`](Response::bytes), [`discard`](Response::discard), or `Read`
/// until `Ok(0)`) and its connection is reused; drop it earlier and the
/// connection closes. Either way nothing leaks.
pub struct Response {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    url: Url,
    content_length: Option<u64>,
    body: ResponseBody,
}

impl Response {
    /// A response read off a connection for a request to `url`.
    pub(crate) fn new(
        (status, version, headers): (StatusCode, Version, HeaderMap),
        content_length: Option<u64>,
        body: ResponseBody,
        url: Url,
    ) -> Response {
        Response {
            status,
            version,
            headers,
            url,
            content_length,
            body,
        }
    }

    /// A response made from an `http` crate response, for mocks and
    /// [`RoundTripper`](crate::RoundTripper) middleware: no connection
    /// behind it, the body read from `resp`'s reader. `url` is the URL it
    /// answers. The `Content-Length` header, when valid, is its
    /// [`content_length`](Response::content_length).
    ///
    /// ```
    /// use nethttp::{Response, Url, http};
    /// let resp = http::Response::builder()
    ///     .status(200)
    ///     .header("content-type", "text/plain")
    ///     .body(&b"hello"[..])
    ///     .unwrap();
    /// let resp = Response::from_http(resp, Url::parse("http://mock.invalid/").unwrap());
    /// assert_eq!(resp.status(), 200);
    /// assert_eq!(resp.text()?, "hello");
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn from_http(resp: http::Response<impl Read + Send + 'static>, url: Url) -> Response {
        let (parts, body) = resp.into_parts();
        let content_length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        Response {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            url,
            content_length,
            body: ResponseBody::from_source(Box::new(Reader(body))),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version of the response.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The URL that answered (after redirects, the last one).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The body's length when the response declares it. For HEAD, the
    /// `Content-Length` header's value (the body itself is empty).
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Reads the body to its end as UTF-8 (invalid sequences become U+FFFD).
    pub fn text(self) -> crate::Result<String> {
        let bytes = self.bytes()?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads the body to its end.
    pub fn bytes(mut self) -> crate::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.content_length.unwrap_or(0).min(1 << 20) as usize);
        self.body
            .read_to_end(&mut out)
            .map_err(|e| Error::from_io(e, ErrorKind::BodyRead, "read body").with_url(&self.url))?;
        Ok(out)
    }

    /// Reads the body to its end and decodes it as JSON; malformed JSON is
    /// [`ErrorKind::BodyRead`].
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(self) -> crate::Result<T> {
        let url = self.url.clone();
        let bytes = self.bytes()?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(ErrorKind::BodyRead, "decode JSON body")
                .with_source(e)
                .with_url(&url)
        })
    }

    /// Reads the rest of the body and throws it away, so the connection is
    /// reused. Returns how many bytes that was.
    pub fn discard(mut self) -> crate::Result<u64> {
        io::copy(&mut self.body, &mut io::sink())
            .map_err(|e| Error::from_io(e, ErrorKind::BodyRead, "discard body").with_url(&self.url))
    }

    /// Bounds the body: any read past `max_bytes` of it (decoded bytes,
    /// after decoding) fails with `io::ErrorKind::InvalidData` whose inner error
    /// is [`ErrorKind::BodyTooLarge`], and the connection closes; later
    /// reads fail the same way. It bounds a decompression bomb too.
    /// [`text`](Self::text), [`bytes`](Self::bytes) and `json` have no
    /// limit of their own (Go's `io.ReadAll`); chain them after this.
    ///
    /// ```no_run
    /// let body = nethttp::get("http://127.0.0.1:8080/")?.limit(1 << 20).bytes()?;
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn limit(mut self, max_bytes: u64) -> Response {
        self.body.limit(max_bytes);
        self
    }

    /// The chunked trailers, once the body has been read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.body.trailers()
    }

    /// The body alone. Dropping it before its end closes the connection.
    pub fn into_body(self) -> ResponseBody {
        self.body
    }

    /// This response if its status is not an error; for 4xx and 5xx an
    /// error of kind [`ErrorKind::Status`] whose [`status`](Error::status)
    /// says which, and the response is dropped (its connection closes
    /// unless the body was already read).
    ///
    /// ```no_run
    /// let body = nethttp::get("http://127.0.0.1:8080/")?.error_for_status()?.text()?;
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn error_for_status(self) -> crate::Result<Response> {
        if self.status.is_client_error() || self.status.is_server_error() {
            return Err(Error::status_error(self.status, &self.url));
        }
        Ok(self)
    }

    /// The response as an `http` crate response: status, version, headers,
    /// the final URL as an extension (`Url`), and the body, which keeps
    /// its connection until read to its end or dropped.
    ///
    /// ```no_run
    /// let resp: http::Response<nethttp::ResponseBody> = nethttp::get("http://127.0.0.1:8080/")?.into_http();
    /// let url = resp.extensions().get::<nethttp::Url>();
    /// # let _ = url;
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn into_http(self) -> http::Response<ResponseBody> {
        let mut resp = http::Response::new(self.body);
        *resp.status_mut() = self.status;
        *resp.version_mut() = self.version;
        *resp.headers_mut() = self.headers;
        resp.extensions_mut().insert(self.url);
        resp
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

/// A body read from any reader: no connection, no trailers, nothing to
/// hand back.
struct Reader<R>(R);

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R> fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reader(..)")
    }
}

impl<R: Read + Send> BodySource for Reader<R> {
    fn trailers(&self) -> Option<&HeaderMap> {
        None
    }

    fn may_exceed(&self, _max: u64) -> bool {
        true
    }

    fn hold(&mut self) {}

    fn end(&mut self, _end: BodyEnd<'_>) {}
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("url", &Redacted(&self.url))
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}
