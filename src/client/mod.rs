//! [`Client`]: the layer users call (Go's `http.Client`, `client.go`). It
//! owns default headers, credentials from the URL and the whole-exchange
//! deadline, and hands each exchange to its [`Transport`]. It never touches
//! sockets or the pool.

mod cookie;
mod redirect;
mod request;

use std::{
    fmt,
    io::{self, Read},
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use percent_encoding::percent_decode_str;

use crate::{Body, IntoUrl, Request, Response, RoundTripper, Transport};
pub use cookie::CookieJar;
pub use redirect::{Redirect, RedirectAction, RedirectPolicy};
pub use request::RequestBuilder;

/// An HTTP client. Cheap to clone (clones share one transport and its
/// pool), `Send + Sync`.
///
/// ```no_run
/// let client = nethttp::Client::new();
/// let resp = client.get("http://127.0.0.1:8080/").header("Accept", "text/plain").send()?;
/// println!("{} {}", resp.status(), resp.text()?);
/// # Ok::<(), nethttp::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    timeout: Option<Duration>,
    redirect: RedirectPolicy,
    default_headers: HeaderMap,
    /// Runs each hop instead of `transport`, when set.
    round_tripper: Option<Arc<dyn RoundTripper>>,
    /// The cookie jar, from `cookie_jar` or `cookie_store(true)`; shared
    /// by clones.
    jar: Option<CookieJar>,
}

/// Up to this much of a redirect's body is read so its connection can be
/// reused (Go's `maxBodySlurpSize`).
const REDIRECT_DRAIN: u64 = 2 << 10;

impl Client {
    /// A client with its own transport and default settings.
    pub fn new() -> Client {
        Client {
            inner: Arc::new(Inner {
                transport: Transport::new(),
                round_tripper: None,
                timeout: None,
                redirect: RedirectPolicy::default(),
                default_headers: HeaderMap::new(),
                jar: None,
            }),
        }
    }

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            transport: None,
            round_tripper: None,
            timeout: None,
            redirect: RedirectPolicy::default(),
            cookie_store: false,
            cookie_jar: None,
            default_headers: Ok(HeaderMap::new()),
        }
    }

    /// The transport this client sends through.
    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The jar this client keeps cookies in: the one given to
    /// [`ClientBuilder::cookie_jar`], or the one
    /// [`ClientBuilder::cookie_store`]`(true)` made; `None` without a jar.
    /// Clones of the client share it.
    ///
    /// ```
    /// let client = nethttp::Client::builder().cookie_store(true).build()?;
    /// let jar = client.cookie_jar().expect("cookie_store(true) made one");
    /// let url = nethttp::Url::parse("https://example.com/")?;
    /// jar.add("sid=abc123", &url)?;
    /// // What the client's next request to example.com carries.
    /// assert_eq!(client.cookie_jar().unwrap().cookies(&url).unwrap(), "sid=abc123");
    /// assert!(nethttp::Client::new().cookie_jar().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cookie_jar(&self) -> Option<&CookieJar> {
        self.inner.jar.as_ref()
    }

    /// A GET request.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A HEAD request.
    pub fn head(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// A POST request.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A PUT request.
    pub fn put(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A PATCH request.
    pub fn patch(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A DELETE request.
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        RequestBuilder::new(Some(self.clone()), method, url)
    }

    /// Sends a request (Go's `Client.Do`), following redirects as the
    /// client's [`RedirectPolicy`] allows. The client's timeout and the
    /// request's own bound the whole exchange, every hop and the body read
    /// included; the earlier of the two wins.
    pub fn execute(&self, mut req: Request) -> crate::Result<Response> {
        let start = Instant::now();
        for (name, value) in &self.inner.default_headers {
            if !req.headers.contains_key(name) {
                req.headers.append(name.clone(), value.clone());
            }
        }
        add_url_auth(&mut req);
        let deadline = [self.inner.timeout, req.timeout]
            .into_iter()
            .flatten()
            .min()
            .map(|t| start + t);
        let initial_headers = req.headers.clone();
        let mut via: Vec<url::Url> = Vec::new();
        loop {
            let replay = req.body.try_clone();
            let method = req.method.clone();
            let (timeout, trace, cancel) = (req.timeout, req.trace.clone(), req.cancel.clone());
            if let Some(jar) = &self.inner.jar {
                add_jar_cookies(jar, &mut req);
            }
            let resp = self.hop(req, deadline)?;
            // The response knows this hop's URL: nothing is copied unless a
            // redirect is followed.
            if let Some(jar) = &self.inner.jar {
                jar.store_from(resp.url(), resp.headers());
            }
            let fail = |e: crate::Error| e.with_url(resp.url());
            let hop = match redirect::next_hop(
                &method,
                resp.status(),
                resp.headers(),
                resp.url(),
                replay.is_some(),
            ) {
                Ok(Some(hop)) => hop,
                Ok(None) => return Ok(resp),
                Err(e) => return Err(fail(e)),
            };
            via.push(resp.url().clone());
            let step = Redirect::new(resp.status(), hop.url, via);
            if !self.inner.redirect.decide(&step).map_err(fail)? {
                return Ok(resp);
            }
            let (next_url, previous) = step.into_parts();
            via = previous;
            // Read a little so a small redirect body frees its connection.
            let mut body = resp.into_body();
            let _ = io::copy(&mut (&mut body).take(REDIRECT_DRAIN), &mut io::sink());
            drop(body);

            // `via` holds the first URL first and this hop's last.
            let initial_url = via.first().unwrap_or(&next_url);
            let current = via.last().unwrap_or(&next_url);
            let mut headers = HeaderMap::new();
            for (name, value) in &initial_headers {
                if redirect::should_copy_header(name, initial_url, &next_url)
                    && (hop.keep_body || !redirect::is_content_header(name))
                    && name != header::REFERER
                {
                    headers.append(name.clone(), value.clone());
                }
            }
            if let Some(r) = redirect::referer(current, &next_url) {
                headers.insert(header::REFERER, r);
            }
            req = Request {
                method: hop.method,
                url: next_url,
                headers,
                body: match replay {
                    Some(b) if hop.keep_body => b,
                    _ => Body::empty(),
                },
                timeout,
                trace,
                cancel,
            };
            add_url_auth(&mut req);
        }
    }
}

impl Client {
    /// One exchange of the redirect chain, through the round tripper when
    /// there is one (given what remains of the deadline as the request's
    /// timeout), else the transport.
    fn hop(&self, mut req: Request, deadline: Option<Instant>) -> crate::Result<Response> {
        let Some(rt) = &self.inner.round_tripper else {
            return self.inner.transport.round_trip_until(req, deadline);
        };
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(crate::Error::new(
                    crate::ErrorKind::Timeout,
                    "deadline exceeded before the request was sent",
                )
                .with_url(&req.url));
            }
            req.timeout = Some(left);
        }
        let url = req.url.clone();
        rt.round_trip(req).map_err(|e| e.with_url(&url))
    }
}

/// Go's `Client.send` with a jar: the jar's cookies for the URL join any
/// `Cookie` header the request already has.
fn add_jar_cookies(jar: &CookieJar, req: &mut Request) {
    let Some(jar_cookies) = jar.cookies(&req.url) else {
        return;
    };
    let value = match req.headers.get(header::COOKIE) {
        Some(own) => {
            let mut joined = own.as_bytes().to_vec();
            joined.extend_from_slice(b"; ");
            joined.extend_from_slice(jar_cookies.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or(jar_cookies)
        }
        None => jar_cookies,
    };
    req.headers.insert(header::COOKIE, value);
}

/// Adds `Authorization: Basic` from the URL's user info, unless the request
/// already carries an `Authorization` header.
fn add_url_auth(req: &mut Request) {
    if !req.headers.contains_key(header::AUTHORIZATION) {
        if let Some(auth) = url_basic_auth(&req.url) {
            req.headers.insert(header::AUTHORIZATION, auth);
        }
    }
}

/// `Authorization: Basic` from the URL's percent-decoded user info (Go's
/// `Client.send`).
fn url_basic_auth(url: &url::Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let user = percent_decode_str(url.username()).decode_utf8_lossy();
    let pass = url
        .password()
        .map(|p| percent_decode_str(p).decode_utf8_lossy());
    let raw = format!("{}:{}", user, pass.as_deref().unwrap_or(""));
    let mut v = HeaderValue::try_from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
    .ok()?;
    v.set_sensitive(true);
    Some(v)
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.inner.transport)
            .field("round_tripper", &self.inner.round_tripper.is_some())
            .field("timeout", &self.inner.timeout)
            .field("redirect", &self.inner.redirect)
            .field("cookies", &self.inner.jar)
            .field("default_headers", &self.inner.default_headers)
            .finish()
    }
}

/// Configures a [`Client`].
#[must_use]
pub struct ClientBuilder {
    transport: Option<Transport>,
    round_tripper: Option<Arc<dyn RoundTripper>>,
    timeout: Option<Duration>,
    redirect: RedirectPolicy,
    cookie_store: bool,
    cookie_jar: Option<CookieJar>,
    default_headers: crate::Result<HeaderMap>,
}

impl ClientBuilder {
    /// Sends through `transport` (clones share one pool). Defaults to a new
    /// transport of its own.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Runs every exchange through `rt` instead of the transport (Go's
    /// `Client.Transport` is this interface): middleware such as logging,
    /// retries or auth wrapped around a [`Transport`], or a mock that
    /// answers without a network. Redirects, cookies, default headers and
    /// the deadline stay the client's: each hop is one `round_trip`, with
    /// what remains of the deadline as the request's timeout.
    /// [`Client::transport`] still returns the client's own default
    /// transport, which `rt` may or may not use.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use nethttp::{Client, Request, Response, RoundTripper, Transport};
    ///
    /// /// Counts the exchanges that pass through.
    /// struct Counting { inner: Transport, seen: AtomicUsize }
    ///
    /// impl RoundTripper for Counting {
    ///     fn round_trip(&self, req: Request) -> nethttp::Result<Response> {
    ///         self.seen.fetch_add(1, Ordering::Relaxed);
    ///         self.inner.round_trip(req)
    ///     }
    /// }
    ///
    /// let client = Client::builder()
    ///     .round_tripper(Counting { inner: Transport::new(), seen: AtomicUsize::new(0) })
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn round_tripper(mut self, rt: impl RoundTripper) -> Self {
        self.round_tripper = Some(Arc::new(rt));
        self
    }

    /// The `User-Agent` of every request that does not set its own
    /// (default: `nethttp/<version>`). A bad value fails
    /// [`build`](ClientBuilder::build) with `InvalidRequest`.
    ///
    /// ```
    /// let client = nethttp::Client::builder().user_agent("my-tool/1.0").build()?;
    /// # let _ = client;
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn user_agent<V>(mut self, value: V) -> Self
    where
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        if let Ok(map) = &mut self.default_headers {
            match request::header_pair(header::USER_AGENT, value) {
                Ok((n, v)) => {
                    map.insert(n, v);
                }
                Err(e) => self.default_headers = Err(e),
            }
        }
        self
    }

    /// Bounds every exchange as a whole: waiting for a connection, dialling,
    /// writing, the response headers and reading the body (Go's
    /// `Client.Timeout`). Defaults to none.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Which redirects to follow. Defaults to [`RedirectPolicy::limited`]`(10)`.
    pub fn redirect(mut self, policy: RedirectPolicy) -> Self {
        self.redirect = policy;
        self
    }

    /// Keep an RFC 6265 cookie jar (with the public-suffix rules): cookies
    /// a response sets, redirects included, go back on later requests to
    /// the hosts and paths they belong to. Defaults to off. `true` makes a
    /// new, empty jar for this client (and its clones), which
    /// [`Client::cookie_jar`] returns; a jar given to
    /// [`cookie_jar`](Self::cookie_jar) is used instead.
    pub fn cookie_store(mut self, enable: bool) -> Self {
        self.cookie_store = enable;
        self
    }

    /// Keeps cookies in `jar`, which turns the cookie store on. The client
    /// shares the jar with every clone of the [`CookieJar`] handle: several
    /// clients given one jar share their cookies, and the program can put
    /// cookies in before the first request, read them, or save them.
    ///
    /// When both this and [`cookie_store`](Self::cookie_store) are called,
    /// in either order, `jar` is used (even with `cookie_store(false)`).
    ///
    /// ```
    /// use nethttp::{Client, CookieJar, Url};
    ///
    /// let url = Url::parse("https://api.example.com/")?;
    /// let jar = CookieJar::new();
    /// jar.add("sid=abc123; Path=/", &url)?;
    /// let a = Client::builder().cookie_jar(jar.clone()).build()?;
    /// let b = Client::builder().cookie_jar(jar).build()?;
    /// // A cookie that reaches a's jar (here added by hand) is b's too.
    /// a.cookie_jar().unwrap().add("theme=dark", &url)?;
    /// let sent = b.cookie_jar().unwrap().cookies(&url).unwrap();
    /// assert_eq!(sent, "sid=abc123; theme=dark");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cookie_jar(mut self, jar: CookieJar) -> Self {
        self.cookie_jar = Some(jar);
        self
    }

    /// A header added to every request that does not set it itself.
    pub fn default_header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        if let Ok(map) = &mut self.default_headers {
            match request::header_pair(name, value) {
                Ok((n, v)) => {
                    map.append(n, v);
                }
                Err(e) => self.default_headers = Err(e),
            }
        }
        self
    }

    /// The client; [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) for a bad default header.
    pub fn build(self) -> crate::Result<Client> {
        Ok(Client {
            inner: Arc::new(Inner {
                transport: self.transport.unwrap_or_default(),
                round_tripper: self.round_tripper,
                timeout: self.timeout,
                redirect: self.redirect,
                jar: self
                    .cookie_jar
                    .or_else(|| self.cookie_store.then(CookieJar::new)),
                default_headers: self.default_headers?,
            }),
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The process-wide client behind [`get`], [`head`] and [`post`] (Go's
/// `DefaultClient`).
pub(crate) fn default_client() -> &'static Client {
    static DEFAULT: OnceLock<Client> = OnceLock::new();
    DEFAULT.get_or_init(Client::new)
}

/// GET on the process-wide default client.
pub fn get(url: impl IntoUrl) -> crate::Result<Response> {
    default_client().get(url).send()
}

/// HEAD on the process-wide default client.
pub fn head(url: impl IntoUrl) -> crate::Result<Response> {
    default_client().head(url).send()
}

/// POST on the process-wide default client.
pub fn post(
    url: impl IntoUrl,
    content_type: &str,
    body: impl Into<Body>,
) -> crate::Result<Response> {
    default_client()
        .post(url)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn url_userinfo_is_percent_decoded() {
        let url = url::Url::parse("http://user:pa%20ss@host/").unwrap();
        let v = url_basic_auth(&url).unwrap();
        let expect = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("user:pa ss")
        );
        assert_eq!(v.to_str().unwrap(), expect);
        assert!(url_basic_auth(&url::Url::parse("http://host/").unwrap()).is_none());
    }

    #[test]
    fn bad_default_header_fails_build() {
        let err = Client::builder()
            .default_header("X-A", "a\nb")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn bad_url_is_an_error() {
        let err = Client::new().get("not a url").send().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    }
}
