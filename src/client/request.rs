//! [`RequestBuilder`], and [`Request::builder`].

use std::{fmt, sync::Arc, time::Duration};

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use crate::{
    Body, CancelToken, Client, Error, ErrorKind, IntoUrl, Request, Response, trace::ClientTrace,
};

impl Request {
    /// Starts a request without a client: finish with
    /// [`build`](RequestBuilder::build) and run it with
    /// [`Client::execute`] or [`Transport::round_trip`](crate::Transport::round_trip),
    /// or [`send`](RequestBuilder::send) it on the process-wide default
    /// client.
    ///
    /// ```
    /// use nethttp::{Request, http::Method};
    /// let req = Request::builder(Method::GET, "http://127.0.0.1:1/x")
    ///     .header("X-Trace", "1")
    ///     .build()?;
    /// assert_eq!(req.url().path(), "/x");
    /// let bad = Request::builder(Method::GET, "http://h/").header("X-Bad", "a\r\nb").build();
    /// assert_eq!(bad.unwrap_err().kind(), nethttp::ErrorKind::InvalidRequest);
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn builder(method: Method, url: impl IntoUrl) -> RequestBuilder {
        RequestBuilder::new(None, method, url)
    }
}

/// Builds a [`Request`]. Errors (a bad URL, header or query) are kept and
/// reported by [`build`](RequestBuilder::build) or
/// [`send`](RequestBuilder::send), before any byte reaches the network.
#[must_use = "a RequestBuilder does nothing until built or sent"]
pub struct RequestBuilder {
    client: Option<Client>,
    req: crate::Result<Request>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Option<Client>, method: Method, url: impl IntoUrl) -> RequestBuilder {
        let req = url.into_url().map(|url| Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Body::empty(),
            timeout: None,
            trace: None,
            cancel: None,
        });
        RequestBuilder { client, req }
    }

    fn map(mut self, f: impl FnOnce(&mut Request) -> crate::Result<()>) -> RequestBuilder {
        if let Ok(req) = &mut self.req {
            if let Err(e) = f(req) {
                self.req = Err(e);
            }
        }
        self
    }

    /// Adds a header (appended: repeated names are kept). A name or value
    /// that is not valid HTTP (CR/LF, say) fails the request with
    /// [`ErrorKind::InvalidRequest`].
    pub fn header<K, V>(self, name: K, value: V) -> RequestBuilder
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|req| {
            let (name, value) = header_pair(name, value)?;
            req.headers.append(name, value);
            Ok(())
        })
    }

    /// Adds every header of `headers`.
    pub fn headers(self, headers: HeaderMap) -> RequestBuilder {
        self.map(|req| {
            let mut last = None;
            for (name, value) in headers {
                if let Some(n) = name {
                    last = Some(n);
                }
                if let Some(n) = &last {
                    req.headers.append(n.clone(), value);
                }
            }
            Ok(())
        })
    }

    /// Appends `pairs` to the URL's query string, percent-encoded.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> RequestBuilder {
        self.map(|req| {
            let mut q = req.url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k.as_ref(), v.as_ref());
            }
            Ok(())
        })
    }

    /// Sets `Authorization: Basic` from a user name and optional password.
    pub fn basic_auth(
        self,
        user: impl fmt::Display,
        pass: Option<impl fmt::Display>,
    ) -> RequestBuilder {
        let raw = match pass {
            Some(p) => format!("{user}:{p}"),
            None => format!("{user}:"),
        };
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        self.map(|req| {
            let mut v = HeaderValue::try_from(value)
                .map_err(|e| Error::new(ErrorKind::InvalidRequest, format!("basic auth: {e}")))?;
            v.set_sensitive(true);
            req.headers.insert(header::AUTHORIZATION, v);
            Ok(())
        })
    }

    /// Sets `Authorization: Bearer <token>` (RFC 6750), marked sensitive
    /// (HTTP/2 never indexes it). A token with CR, LF or other bytes a
    /// header cannot carry fails with `InvalidRequest`; the error does not
    /// show the token.
    ///
    /// ```
    /// let req = nethttp::Request::builder(http::Method::GET, "http://127.0.0.1:1/")
    ///     .bearer_auth("t0ken")
    ///     .build()?;
    /// assert_eq!(req.headers()["authorization"], "Bearer t0ken");
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn bearer_auth(self, token: impl fmt::Display) -> RequestBuilder {
        let value = format!("Bearer {token}");
        self.map(|req| {
            let mut v = HeaderValue::try_from(value).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    "bearer auth: the token is not a valid header value",
                )
            })?;
            v.set_sensitive(true);
            req.headers.insert(header::AUTHORIZATION, v);
            Ok(())
        })
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<Body>) -> RequestBuilder {
        let body = body.into();
        self.map(|req| {
            req.body = body;
            Ok(())
        })
    }

    /// Sets an `application/x-www-form-urlencoded` body.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> RequestBuilder {
        let mut enc = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            enc.append_pair(k.as_ref(), v.as_ref());
        }
        let encoded = enc.finish();
        self.map(|req| {
            req.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            req.body = Body::from(encoded);
            Ok(())
        })
    }

    /// Sets a JSON body (`Content-Type: application/json`). A value that
    /// cannot be serialized fails the request with
    /// [`ErrorKind::InvalidRequest`].
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> RequestBuilder {
        let body = serde_json::to_vec(value).map_err(|e| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("serialize JSON body: {e}"),
            )
        });
        self.map(|req| {
            req.body = Body::from(body?);
            req.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(())
        })
    }

    /// Sets a `multipart/form-data` body (feature `multipart`) and its
    /// `Content-Type` with the form's boundary, replacing any set before.
    /// The body has a `Content-Length` when every part's size is known,
    /// and is replayable (307/308, retries) when every part is in memory;
    /// see [`multipart`](crate::multipart).
    ///
    /// ```
    /// use nethttp::multipart::Form;
    /// let form = Form::new().text("name", "ada");
    /// let boundary = form.boundary().to_string();
    /// let req = nethttp::Request::builder(http::Method::POST, "http://127.0.0.1:1/")
    ///     .multipart(form)
    ///     .build()?;
    /// assert_eq!(
    ///     req.headers()["content-type"],
    ///     format!("multipart/form-data; boundary={boundary}").as_str(),
    /// );
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    #[cfg(feature = "multipart")]
    pub fn multipart(self, form: crate::multipart::Form) -> RequestBuilder {
        let content_type = HeaderValue::try_from(form.content_type()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidRequest,
                "multipart: the boundary is not a valid header value",
            )
        });
        let body = form.into_body();
        self.map(|req| {
            req.headers.insert(header::CONTENT_TYPE, content_type?);
            req.body = body;
            Ok(())
        })
    }

    /// A deadline for the whole exchange of this request: connection,
    /// headers and body read.
    pub fn timeout(self, t: Duration) -> RequestBuilder {
        self.map(|req| {
            req.timeout = Some(t);
            Ok(())
        })
    }

    /// Hooks to call at this request's milestones.
    pub fn trace(self, trace: Arc<dyn ClientTrace>) -> RequestBuilder {
        self.map(|req| {
            req.trace = Some(trace);
            Ok(())
        })
    }

    /// A token that cancels this request from another thread.
    pub fn cancel(self, token: CancelToken) -> RequestBuilder {
        self.map(|req| {
            req.cancel = Some(token);
            Ok(())
        })
    }

    /// The request, or the first error met while building it.
    pub fn build(self) -> crate::Result<Request> {
        self.req
    }

    /// Builds the request and runs it on the client that made this builder
    /// ([`Client::execute`]); a builder from [`Request::builder`] runs on
    /// the process-wide default client, as [`get`](crate::get) does.
    pub fn send(self) -> crate::Result<Response> {
        let req = self.req?;
        match &self.client {
            Some(client) => client.execute(req),
            None => super::default_client().execute(req),
        }
    }
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("request", &self.req)
            .finish()
    }
}

/// Converts a header name and value, as `RequestBuilder::header` takes them.
pub(crate) fn header_pair<K, V>(name: K, value: V) -> crate::Result<(HeaderName, HeaderValue)>
where
    HeaderName: TryFrom<K>,
    <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
    HeaderValue: TryFrom<V>,
    <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
{
    let name = HeaderName::try_from(name).map_err(|e| {
        let e: http::Error = e.into();
        Error::new(
            ErrorKind::InvalidRequest,
            format!("invalid header name: {e}"),
        )
    })?;
    let value = HeaderValue::try_from(value).map_err(|e| {
        let e: http::Error = e.into();
        Error::new(
            ErrorKind::InvalidRequest,
            format!("invalid value for header {name}: {e}"),
        )
    })?;
    Ok((name, value))
}
