//! Redirects: the policy users choose, and the pure rules for one hop (Go's
//! `redirectBehavior`, `shouldCopyHeaderOnRedirect`, `refererForURL`).
//! Nothing here does I/O; `Client::execute` runs the loop.

use std::{fmt, sync::Arc};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use url::Url;

use crate::{
    Error, ErrorKind,
    error::{Redacted, redact_raw},
};

/// Which redirects a [`Client`](crate::Client) follows.
///
/// ```
/// use nethttp::{RedirectAction, RedirectPolicy};
/// let none = RedirectPolicy::none();
/// let five = RedirectPolicy::limited(5);
/// let same_host = RedirectPolicy::custom(|r| {
///     if r.next_url().host() == r.previous()[0].host() {
///         RedirectAction::Follow
///     } else {
///         RedirectAction::Stop
///     }
/// });
/// # let _ = (none, five, same_host);
/// ```
#[derive(Clone)]
pub struct RedirectPolicy {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    None,
    Limited(usize),
    Custom(Arc<dyn Fn(&Redirect) -> RedirectAction + Send + Sync>),
}

impl RedirectPolicy {
    /// Follow nothing: every 3xx is returned as it is.
    pub fn none() -> RedirectPolicy {
        RedirectPolicy { kind: Kind::None }
    }

    /// Follow up to `n` redirects; the next one fails with
    /// [`ErrorKind::TooManyRedirects`]. The default is `limited(10)`.
    pub fn limited(n: usize) -> RedirectPolicy {
        RedirectPolicy {
            kind: Kind::Limited(n),
        }
    }

    /// Ask `f` at each redirect.
    pub fn custom(
        f: impl Fn(&Redirect) -> RedirectAction + Send + Sync + 'static,
    ) -> RedirectPolicy {
        RedirectPolicy {
            kind: Kind::Custom(Arc::new(f)),
        }
    }

    /// What to do with the redirect described by `r`.
    pub(crate) fn decide(&self, r: &Redirect) -> Result<bool, Error> {
        match &self.kind {
            Kind::None => Ok(false),
            Kind::Limited(n) if r.previous.len() > *n => Err(Error::new(
                ErrorKind::TooManyRedirects,
                format!("stopped after {n} redirects"),
            )),
            Kind::Limited(_) => Ok(true),
            Kind::Custom(f) => match f(r) {
                RedirectAction::Follow => Ok(true),
                RedirectAction::Stop => Ok(false),
                RedirectAction::Error(m) => Err(Error::new(ErrorKind::Redirect, m)),
            },
        }
    }
}

impl Default for RedirectPolicy {
    fn default() -> Self {
        RedirectPolicy::limited(10)
    }
}

impl fmt::Debug for RedirectPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::None => f.write_str("RedirectPolicy::none()"),
            Kind::Limited(n) => write!(f, "RedirectPolicy::limited({n})"),
            Kind::Custom(_) => f.write_str("RedirectPolicy::custom(..)"),
        }
    }
}

/// A redirect about to be followed, as a custom policy sees it. Its
/// `Debug` output hides passwords in the URLs.
#[derive(Clone)]
pub struct Redirect {
    status: StatusCode,
    next: Url,
    previous: Vec<Url>,
}

impl Redirect {
    pub(crate) fn new(status: StatusCode, next: Url, previous: Vec<Url>) -> Redirect {
        Redirect {
            status,
            next,
            previous,
        }
    }

    /// The redirect's status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Where it points.
    pub fn next_url(&self) -> &Url {
        &self.next
    }

    /// The URLs requested so far, first one first; the last one sent this
    /// redirect.
    pub fn previous(&self) -> &[Url] {
        &self.previous
    }

    pub(crate) fn into_parts(self) -> (Url, Vec<Url>) {
        (self.next, self.previous)
    }
}

impl fmt::Debug for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<_> = self.previous.iter().map(Redacted).collect();
        f.debug_struct("Redirect")
            .field("status", &self.status)
            .field("next", &Redacted(&self.next))
            .field("previous", &previous)
            .finish()
    }
}

/// A custom policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectAction {
    /// Follow the redirect.
    Follow,
    /// Return the 3xx response to the caller.
    Stop,
    /// Fail with [`ErrorKind::Redirect`] and this message.
    Error(String),
}

/// The next request of a redirect chain.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// 307/308: send the same body again.
    pub(crate) keep_body: bool,
}

/// Go's `redirectBehavior` plus the `Location` rules: `Ok(None)` means the
/// response is returned as it is (not a redirect, no `Location`, or a
/// 307/308 whose body cannot be sent again).
pub(crate) fn next_hop(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    current: &Url,
    body_replayable: bool,
) -> Result<Option<Hop>, Error> {
    let (method, keep_body) = match status.as_u16() {
        // RFC 9110 §15.4.2-4: clients may (and in practice do) switch to GET.
        301..=303 if *method == Method::GET || *method == Method::HEAD => (method.clone(), false),
        301..=303 => (Method::GET, false),
        // RFC 9110 §15.4.8-9: same method, same body.
        307 | 308 if body_replayable => (method.clone(), true),
        _ => return Ok(None),
    };
    // A 3xx without Location is seen in the wild (Go issues 17773, 49281);
    // an empty one is returned as it is too (Go).
    let Some(loc) = headers.get(header::LOCATION).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let loc = location_text(loc.as_bytes());
    let loc = loc.as_ref();
    let mut url = current.join(loc).map_err(|e| {
        Error::new(
            ErrorKind::Redirect,
            format!("failed to parse Location header {:?}: {e}", redact_raw(loc)),
        )
    })?;
    // A Location without a fragment inherits the current one (RFC 9110 §10.2.2);
    // fragments are never sent, so only `Response::url` shows it.
    if url.fragment().is_none() {
        url.set_fragment(current.fragment());
    }
    Ok(Some(Hop {
        method,
        url,
        keep_body,
    }))
}

/// A `Location` value as text for the URL parser. Servers send raw bytes
/// above ASCII (Go, curl and hyper follow them): UTF-8 is passed on, and the
/// parser percent-encodes it (and IDNA-encodes a host); anything else has
/// those bytes percent-encoded here.
fn location_text(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(text) => text.into(),
        Err(_) => percent_encoding::percent_encode(raw, percent_encoding::CONTROLS).into(),
    }
}

/// Go's `shouldCopyHeaderOnRedirect`: credentials and cookies follow a
/// redirect only to the same host:port or one of its subdomains.
pub(crate) fn should_copy_header(name: &HeaderName, initial: &Url, dest: &Url) -> bool {
    let sensitive = name == header::AUTHORIZATION
        || name == header::WWW_AUTHENTICATE
        || name == header::COOKIE
        || name.as_str() == "cookie2";
    if !sensitive {
        return true;
    }
    match (canonical_addr(initial), canonical_addr(dest)) {
        (Some(parent), Some(sub)) => is_domain_or_subdomain(&sub, &parent),
        _ => false,
    }
}

fn canonical_addr(u: &Url) -> Option<String> {
    let host = u.host_str()?.to_ascii_lowercase();
    Some(format!("{}:{}", host, u.port_or_known_default()?))
}

fn is_domain_or_subdomain(sub: &str, parent: &str) -> bool {
    sub == parent
        || (sub.len() > parent.len()
            && sub.ends_with(parent)
            && sub.as_bytes()[sub.len() - parent.len() - 1] == b'.')
}

/// Go's `refererForURL`: the previous URL without credentials or fragment,
/// and never from https to http.
pub(crate) fn referer(last: &Url, next: &Url) -> Option<HeaderValue> {
    if last.scheme() == "https" && next.scheme() == "http" {
        return None;
    }
    let mut r = last.clone();
    let _ = r.set_username("");
    let _ = r.set_password(None);
    r.set_fragment(None);
    HeaderValue::try_from(r.as_str()).ok()
}

/// Headers that describe a body; dropped when a hop drops the body.
pub(crate) fn is_content_header(name: &HeaderName) -> bool {
    name.as_str().starts_with("content-") || name == header::TRANSFER_ENCODING
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn loc(l: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, l.parse().unwrap());
        h
    }

    #[test]
    fn hop_table() {
        let cur = url("http://a.example/x/y?q#frag");
        let get = Method::GET;
        let post = Method::POST;
        let hop = |m: &Method, code: u16, h: &HeaderMap, replayable: bool| {
            next_hop(m, StatusCode::from_u16(code).unwrap(), h, &cur, replayable)
                .map(|o| o.map(|h| (h.method.to_string(), h.url.to_string(), h.keep_body)))
                .map_err(|e| e.kind())
        };
        let s = |m: &str, u: &str, keep: bool| Ok(Some((m.to_string(), u.to_string(), keep)));
        // method rules
        assert_eq!(
            hop(&get, 301, &loc("/z"), true),
            s("GET", "http://a.example/z#frag", false)
        );
        assert_eq!(
            hop(&Method::HEAD, 302, &loc("/z"), true),
            s("HEAD", "http://a.example/z#frag", false)
        );
        assert_eq!(
            hop(&post, 303, &loc("/z"), true),
            s("GET", "http://a.example/z#frag", false)
        );
        assert_eq!(
            hop(&post, 302, &loc("/z"), false),
            s("GET", "http://a.example/z#frag", false)
        );
        assert_eq!(
            hop(&post, 307, &loc("/z"), true),
            s("POST", "http://a.example/z#frag", true)
        );
        assert_eq!(
            hop(&Method::PUT, 308, &loc("/z#f2"), true),
            s("PUT", "http://a.example/z#f2", true)
        );
        // 307 with a streamed body: return the 3xx
        assert_eq!(hop(&post, 307, &loc("/z"), false), Ok(None));
        // relative, scheme-relative, absolute Location
        assert_eq!(
            hop(&get, 302, &loc("z"), true),
            s("GET", "http://a.example/x/z#frag", false)
        );
        assert_eq!(
            hop(&get, 302, &loc("//b.example/w"), true),
            s("GET", "http://b.example/w#frag", false)
        );
        assert_eq!(
            hop(&get, 302, &loc("https://c.example:8443/"), true),
            s("GET", "https://c.example:8443/#frag", false)
        );
        // not redirects, missing Location
        assert_eq!(hop(&get, 200, &loc("/z"), true), Ok(None));
        assert_eq!(hop(&get, 304, &loc("/z"), true), Ok(None));
        assert_eq!(hop(&get, 302, &HeaderMap::new(), true), Ok(None));
        // invalid Location
        let bad = next_hop(&get, StatusCode::FOUND, &loc("http://[::1"), &cur, true).unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Redirect);
        // An empty Location returns the 3xx as it is (Go).
        assert_eq!(hop(&get, 302, &loc(""), true), Ok(None));
        // Raw bytes above ASCII are percent-encoded and followed (Go, curl,
        // hyper): UTF-8, and bytes that are not UTF-8 at all.
        let raw = |bytes: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(header::LOCATION, HeaderValue::from_bytes(bytes).unwrap());
            h
        };
        assert_eq!(
            hop(&get, 302, &raw("/caf\u{e9}/x?q=\u{e9}".as_bytes()), true),
            s("GET", "http://a.example/caf%C3%A9/x?q=%C3%A9#frag", false)
        );
        assert_eq!(
            hop(&get, 302, &raw(b"/caf\xe9 x"), true),
            s("GET", "http://a.example/caf%E9%20x#frag", false)
        );
        assert_eq!(
            hop(
                &get,
                302,
                &raw("http://b\u{fc}cher.example/".as_bytes()),
                true
            ),
            s("GET", "http://xn--bcher-kva.example/#frag", false)
        );
    }

    #[test]
    fn sensitive_headers_follow_only_to_same_host_or_subdomain() {
        let auth = header::AUTHORIZATION;
        let init = url("http://example.com/");
        assert!(should_copy_header(
            &auth,
            &init,
            &url("http://example.com/other")
        ));
        assert!(should_copy_header(
            &auth,
            &init,
            &url("http://sub.example.com/")
        ));
        assert!(!should_copy_header(
            &auth,
            &init,
            &url("http://evilexample.com/")
        ));
        assert!(!should_copy_header(
            &auth,
            &init,
            &url("http://example.com:8080/")
        ));
        assert!(!should_copy_header(&auth, &init, &url("http://other.org/")));
        assert!(!should_copy_header(
            &header::COOKIE,
            &init,
            &url("http://127.0.0.1/")
        ));
        assert!(!should_copy_header(
            &header::WWW_AUTHENTICATE,
            &init,
            &url("http://x.org/")
        ));
        assert!(should_copy_header(
            &header::ACCEPT,
            &init,
            &url("http://other.org/")
        ));
        // https default port 443 differs from http's 80
        assert!(!should_copy_header(
            &auth,
            &init,
            &url("https://example.com/")
        ));
    }

    #[test]
    fn referer_rules() {
        let r = referer(
            &url("http://u:p@a.example/x?q#f"),
            &url("http://b.example/"),
        )
        .unwrap();
        assert_eq!(r, "http://a.example/x?q");
        assert!(referer(&url("https://a.example/"), &url("http://a.example/")).is_none());
        assert!(referer(&url("http://a.example/"), &url("https://a.example/")).is_some());
    }

    #[test]
    fn policies() {
        let r = |n: usize| {
            Redirect::new(
                StatusCode::FOUND,
                url("http://x/"),
                vec![url("http://x/"); n],
            )
        };
        assert_eq!(RedirectPolicy::limited(2).decide(&r(2)).ok(), Some(true));
        let err = RedirectPolicy::limited(2).decide(&r(3)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
        assert_eq!(RedirectPolicy::none().decide(&r(1)).ok(), Some(false));
        let stop = RedirectPolicy::custom(|_| RedirectAction::Stop);
        assert_eq!(stop.decide(&r(1)).ok(), Some(false));
        let fail = RedirectPolicy::custom(|_| RedirectAction::Error("no".into()));
        assert_eq!(fail.decide(&r(1)).unwrap_err().kind(), ErrorKind::Redirect);
    }
}
