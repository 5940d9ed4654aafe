//! The client's cookie jar (Go's `net/http/cookiejar`): [`CookieJar`], which
//! `cookie_store(true)` creates for a client and `cookie_jar` shares
//! between clients.
//!
//! Parsing, storage, expiry and domain/path matching are RFC 6265 as the
//! `cookie_store` crate implements them. Two rules are added here:
//!
//! - Public suffixes (RFC 6265 §5.3 step 5), from the list compiled into
//!   the `psl` crate, so nothing is fetched at run time: a `Domain` that is
//!   a known public suffix (`com`, `co.uk`, `github.io`) is refused, unless
//!   it is the request host itself, in which case the cookie becomes
//!   host-only.
//! - `Secure` cookies go only over `https`, as Go's jar does (`cookie_store`
//!   alone would also send them to `http://localhost` and loopback IPs, as
//!   browsers do).
//!
//! Both hold for every way a cookie gets in: a response, [`CookieJar::add`]
//! and [`CookieJar::load_json`] (which drops saved cookies whose `Domain`
//! is a public suffix).

use std::{
    cmp::Reverse,
    convert::Infallible,
    error::Error as StdError,
    fmt,
    io::{BufRead, Write},
    sync::Arc,
};

use cookie_store::{Cookie, CookieDomain, CookieError, CookieStore, RawCookie, StoreAction};
use http::{HeaderMap, HeaderValue, header};
use parking_lot::Mutex;
use url::{Host, Url};

use crate::{Error, ErrorKind, Result};

/// A cookie jar (Go's `cookiejar.Jar`): the cookies responses set, kept by
/// the rules of RFC 6265 and sent back on later requests to the hosts and
/// paths they belong to.
///
/// A client gets a jar of its own with
/// [`ClientBuilder::cookie_store`](crate::ClientBuilder::cookie_store)`(true)`,
/// or uses the one given to
/// [`ClientBuilder::cookie_jar`](crate::ClientBuilder::cookie_jar); either
/// way [`Client::cookie_jar`](crate::Client::cookie_jar) returns it. A
/// `CookieJar` is a handle: its clones share one jar, so several clients
/// can share cookies, and the program can look into the jar, put cookies
/// in, and save them for a later run. `Send + Sync`; each call holds the
/// jar's lock only briefly.
///
/// On top of RFC 6265 (as the `cookie_store` crate implements it) the jar
/// refuses a `Domain` that is a public suffix (`com`, `co.uk`,
/// `github.io`; the list is compiled in), and sends `Secure` cookies over
/// `https` only (`http://localhost` included), as Go's jar does. Both
/// rules hold however a cookie got in: from a response, [`add`](Self::add)
/// or [`load_json`](Self::load_json).
///
/// `Debug` shows how many cookies the jar holds, never their values.
///
/// ```
/// use nethttp::{Client, CookieJar, Url};
///
/// let jar = CookieJar::new();
/// let url = Url::parse("https://example.com/")?;
/// jar.add("sid=abc123; Path=/; Max-Age=3600; Secure", &url)?;
/// jar.add("theme=dark; Path=/", &url)?;
/// assert_eq!(jar.cookies(&url).unwrap(), "sid=abc123; theme=dark");
///
/// // Save the persistent cookie (sid, which has a Max-Age) and load it
/// // back, as a later run of the program would.
/// let mut saved = Vec::new();
/// jar.save_json(&mut saved)?;
/// let loaded = CookieJar::load_json(&saved[..])?;
/// assert_eq!(loaded.cookies(&url).unwrap(), "sid=abc123");
///
/// // Two clients sharing the loaded jar.
/// let a = Client::builder().cookie_jar(loaded.clone()).build()?;
/// let b = Client::builder().cookie_jar(loaded).build()?;
/// # let _ = (a, b);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct CookieJar {
    jar: Arc<Jar>,
}

impl CookieJar {
    /// An empty jar.
    ///
    /// ```
    /// let jar = nethttp::CookieJar::new();
    /// let url = nethttp::Url::parse("http://example.com/")?;
    /// assert!(jar.cookies(&url).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// Stores a cookie as if a response from `url` had set it with this
    /// `Set-Cookie` value; the rules are the same.
    ///
    /// - A `Domain` must domain-match `url`'s host and must not be a public
    ///   suffix (unless it is the host itself: the cookie is then
    ///   host-only). Without one the cookie is for `url`'s host only.
    /// - Without a `Path`, the path is `url`'s directory (RFC 6265 §5.1.4).
    /// - `Secure` is accepted whatever `url`'s scheme; such a cookie is
    ///   sent over `https` only. `HttpOnly` is accepted (it keeps cookies
    ///   from scripts, and a client has none).
    /// - A cookie already expired (`Max-Age=0`, an `Expires` in the past)
    ///   deletes the stored cookie of the same name, domain and path, if
    ///   there is one, and is not stored.
    /// - A cookie of the same name, domain and path is replaced.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRequest`] when the value is not visible ASCII or
    /// does not parse (no `name=value`, an empty name), when `url` is not
    /// `http` or `https`, or when the cookie is refused (a `Domain` that is
    /// a public suffix or does not match `url`'s host). The message says
    /// why; it may name the cookie, never its value.
    ///
    /// ```
    /// use nethttp::{CookieJar, ErrorKind, Url};
    ///
    /// let jar = CookieJar::new();
    /// let url = Url::parse("https://www.example.co.uk/account")?;
    /// jar.add("sid=abc123; Domain=example.co.uk; Path=/; HttpOnly", &url)?;
    /// let shop = Url::parse("https://shop.example.co.uk/")?;
    /// assert_eq!(jar.cookies(&shop).unwrap(), "sid=abc123");
    ///
    /// // A public suffix as Domain would reach every site under it.
    /// let err = jar.add("track=1; Domain=co.uk", &url).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    /// // Nor may a site set cookies for another one.
    /// assert!(jar.add("x=1; Domain=example.com", &url).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add(&self, set_cookie: &str, url: &Url) -> Result<()> {
        self.jar.add(set_cookie, url).map_err(|why| {
            Error::new(ErrorKind::InvalidRequest, format!("cookie jar: {why}")).with_url(url)
        })
    }

    /// The `Cookie` header value a client with this jar would send to
    /// `url`, or `None` when no cookie applies (or `url` is not `http` or
    /// `https`).
    ///
    /// The cookies whose domain and path match `url` and that have not
    /// expired, longest path first (RFC 6265 §5.4), and `Secure` ones only
    /// for `https`. A `Cookie` header the request sets itself goes first,
    /// joined with this one.
    ///
    /// ```
    /// use nethttp::{CookieJar, Url};
    ///
    /// let jar = CookieJar::new();
    /// let url = Url::parse("https://example.com/api/v1")?;
    /// jar.add("a=1; Path=/", &url)?;
    /// jar.add("b=2; Path=/api; Secure", &url)?;
    /// assert_eq!(jar.cookies(&url).unwrap(), "b=2; a=1");
    /// // Not the Secure one over plain http, nor the /api one elsewhere.
    /// let plain = Url::parse("http://example.com/api")?;
    /// assert_eq!(jar.cookies(&plain).unwrap(), "a=1");
    /// assert!(jar.cookies(&Url::parse("https://example.org/")?).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        self.jar.cookies_for(url)
    }

    /// Writes the jar's persistent cookies (those with a `Max-Age` or an
    /// `Expires`) that have not expired to `w`, as JSON: the format of the
    /// `cookie_store` crate's `serde::json::save`, an array of cookies
    /// with their domain, path and expiry. Session cookies are left out,
    /// as a browser forgets them when it closes. [`load_json`](Self::load_json)
    /// reads it back.
    ///
    /// The output holds the cookies' values, which are often credentials:
    /// keep it as private as a password file. The jar is locked only while
    /// the JSON is made, not while `w` is written; `w` is flushed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when writing to or flushing `w` fails.
    ///
    /// ```
    /// use nethttp::{CookieJar, Url};
    ///
    /// let jar = CookieJar::new();
    /// let url = Url::parse("https://example.com/")?;
    /// jar.add("sid=abc123; Max-Age=86400", &url)?;
    /// jar.add("session_only=1", &url)?;
    /// let mut saved = Vec::new();
    /// jar.save_json(&mut saved)?;
    /// let text = String::from_utf8(saved)?;
    /// assert!(text.contains("sid=abc123"));
    /// assert!(!text.contains("session_only"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_json(&self, w: &mut impl Write) -> Result<()> {
        let mut json = Vec::new();
        {
            let store = self.jar.store.lock();
            cookie_store::serde::json::save(&store, &mut json)
        }
        .map_err(|e| {
            Error::new(ErrorKind::Io, "cookie jar: serialising the cookies as JSON").with_source(e)
        })?;
        w.write_all(&json)
            .and_then(|()| w.flush())
            .map_err(|e| Error::from_io(e, ErrorKind::Io, "cookie jar: writing the saved cookies"))
    }

    /// A new jar holding the cookies [`save_json`](Self::save_json) wrote
    /// (the `cookie_store` crate's JSON format), minus those that have
    /// expired since.
    ///
    /// The input is treated like cookies from a server: a saved cookie
    /// whose `Domain` is a public suffix, or whose name or value is not
    /// visible ASCII, is dropped (with a `log::debug`), and the jar sends
    /// `Secure` cookies over `https` only. Cookies that later responses
    /// set pass the usual checks.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when reading `r` fails;
    /// [`ErrorKind::InvalidRequest`] when it does not hold JSON in that
    /// format. The message gives the line and column, never the text (a
    /// saved jar holds credentials).
    ///
    /// ```
    /// use nethttp::{CookieJar, ErrorKind, Url};
    ///
    /// let jar = CookieJar::new();
    /// let url = Url::parse("https://example.com/")?;
    /// jar.add("sid=abc123; Path=/; Max-Age=86400; Secure", &url)?;
    /// let mut saved = Vec::new();
    /// jar.save_json(&mut saved)?;
    ///
    /// let loaded = CookieJar::load_json(&saved[..])?;
    /// assert_eq!(loaded.cookies(&url).unwrap(), "sid=abc123");
    /// // Still Secure: not sent over plain http.
    /// assert!(loaded.cookies(&Url::parse("http://example.com/")?).is_none());
    ///
    /// let err = CookieJar::load_json(&b"{not json"[..]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_json(mut r: impl BufRead) -> Result<CookieJar> {
        let mut json = Vec::new();
        r.read_to_end(&mut json).map_err(|e| {
            Error::from_io(e, ErrorKind::Io, "cookie jar: reading the saved cookies")
        })?;
        let loaded = cookie_store::serde::json::load(&json[..]).map_err(|e| {
            let at = json_position(&*e).map_or_else(String::new, |p| format!(" ({p})"));
            Error::new(
                ErrorKind::InvalidRequest,
                format!("cookie jar: not a jar saved as JSON by save_json{at}"),
            )
        })?;
        let kept = loaded
            .iter_unexpired()
            .filter(|c| may_load(c))
            .map(|c| Ok::<_, Infallible>(c.clone()));
        let store = match CookieStore::from_cookies(kept, false) {
            Ok(store) => store,
            Err(never) => match never {},
        };
        Ok(CookieJar {
            jar: Arc::new(Jar {
                store: Mutex::new(store),
            }),
        })
    }

    /// Stores every `Set-Cookie` of a response from `url`.
    pub(crate) fn store_from(&self, url: &Url, headers: &HeaderMap) {
        self.jar.store_from(url, headers);
    }
}

impl fmt::Debug for CookieJar {
    // Cookie values are credentials: show how many there are, not what.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("cookies", &self.jar.count())
            .finish()
    }
}

/// The jar behind a [`CookieJar`] and its clones.
#[derive(Default)]
struct Jar {
    store: Mutex<CookieStore>,
}

impl fmt::Debug for Jar {
    // Cookie values are credentials: show how many there are, not what.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jar")
            .field("cookies", &self.count())
            .finish()
    }
}

impl Jar {
    /// How many unexpired cookies the jar holds.
    fn count(&self) -> usize {
        self.store.lock().iter_unexpired().count()
    }

    /// The `Cookie` header value for a request to `url`, or `None` when no
    /// cookie applies.
    ///
    /// Cookies with longer paths come first (RFC 6265 §5.4); among equal
    /// paths, the order they were first stored in.
    fn cookies_for(&self, url: &Url) -> Option<HeaderValue> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let store = self.store.lock();
        let mut cookies: Vec<&Cookie<'static>> = store
            .matches(url)
            .into_iter()
            .filter(|c| https || c.secure() != Some(true))
            .collect();
        if cookies.is_empty() {
            return None;
        }
        // Stable: ties keep the store's insertion order.
        cookies.sort_by_key(|c| Reverse(c.path.len()));
        let line = cookies
            .iter()
            .map(|c| {
                let (name, value) = c.name_value();
                format!("{name}={value}")
            })
            .collect::<Vec<_>>()
            .join("; ");
        match HeaderValue::from_str(&line) {
            Ok(value) => Some(value),
            Err(e) => {
                log::debug!("cookie jar: no Cookie header for {url}: {e}");
                None
            }
        }
    }

    /// Stores every `Set-Cookie` of a response from `url` (invalid or
    /// refused ones are ignored, with a `log::debug`).
    fn store_from(&self, url: &Url, headers: &HeaderMap) {
        let mut values = headers.get_all(header::SET_COOKIE).iter().peekable();
        if values.peek().is_none() {
            return;
        }
        let mut store = self.store.lock();
        for value in values {
            let stored = match value.to_str() {
                Ok(text) => store_one(&mut store, text, url),
                Err(_) => Err(Refusal::from("the Set-Cookie value is not text")),
            };
            if let Err(why) = stored {
                log::debug!("cookie jar: ignoring a Set-Cookie from {url}: {why}");
            }
        }
    }

    /// Stores one cookie as if a response from `url` had set it with this
    /// `Set-Cookie` value; the error says why not.
    fn add(&self, set_cookie: &str, url: &Url) -> Result<(), Refusal> {
        if !is_header_text(set_cookie) {
            return Err("the Set-Cookie value is not visible ASCII".into());
        }
        store_one(&mut self.store.lock(), set_cookie, url)
    }
}

/// Visible ASCII, spaces and tabs: what `HeaderValue::to_str` lets through
/// from a response, and what a `Cookie` header can carry.
fn is_header_text(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// Why a cookie was not stored, in words for a log line or an error
/// message: it may name the cookie, never its value.
type Refusal = String;

/// Parses one `Set-Cookie` value from `url`, applies the rules and stores
/// the cookie; a cookie that deletes another (expired, or `Max-Age=0`)
/// removes it from the store rather than leaving it expired.
fn store_one(store: &mut CookieStore, text: &str, url: &Url) -> Result<(), Refusal> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "cookies are kept for http and https URLs, not {}",
            url.scheme()
        ));
    }
    let mut raw =
        RawCookie::parse(text).map_err(|e| format!("the Set-Cookie value does not parse: {e}"))?;
    let name = raw.name().to_owned();
    if let Some(domain) = raw.domain() {
        match public_suffix_rule(domain, url) {
            Suffix::NotPublic => {}
            Suffix::IsRequestHost => raw.unset_domain(),
            Suffix::Refused => {
                return Err(format!(
                    "cookie {name:?}: Domain={domain} is a public suffix"
                ));
            }
        }
    }
    let cookie = Cookie::try_from_raw_cookie(&raw, url)
        .map_err(|e| refusal(&name, &raw, url, &e))?
        .into_owned();
    let domain = String::from(&cookie.domain);
    let path = String::from(&*cookie.path);
    match store.insert(cookie, url) {
        Ok(StoreAction::ExpiredExisting) => {
            store.remove(&domain, &path, &name);
            Ok(())
        }
        // Already expired and nothing to delete: nothing to do.
        Ok(StoreAction::Inserted | StoreAction::UpdatedExisting) | Err(CookieError::Expired) => {
            Ok(())
        }
        Err(e) => Err(refusal(&name, &raw, url, &e)),
    }
}

/// Words for `cookie_store`'s reasons.
fn refusal(name: &str, raw: &RawCookie<'_>, url: &Url, e: &CookieError) -> Refusal {
    match (e, raw.domain()) {
        (CookieError::DomainMismatch, Some(domain)) => format!(
            "cookie {name:?}: Domain={domain} does not domain-match the host {}",
            url.host_str().unwrap_or("")
        ),
        (CookieError::Parse, Some(domain)) => {
            format!("cookie {name:?}: Domain={domain} is not a domain name")
        }
        _ => format!("cookie {name:?}: {e}"),
    }
}

/// Whether a cookie read from a saved jar may go into a new one: its
/// `Domain` is no public suffix (as [`public_suffix_rule`] refuses it from
/// a response), and it can be sent (visible ASCII, as `store_from` takes).
fn may_load(cookie: &Cookie<'_>) -> bool {
    let (name, value) = cookie.name_value();
    if name.is_empty() || !is_header_text(name) || !is_header_text(value) {
        log::debug!("cookie jar: not loading a saved cookie that is not visible ASCII");
        return false;
    }
    if let CookieDomain::Suffix(domain) = &cookie.domain {
        if known_public_suffix(domain).is_some() {
            log::debug!(
                "cookie jar: not loading saved cookie {name:?}: Domain={domain} is a public suffix"
            );
            return false;
        }
    }
    true
}

/// Where a JSON error is ("line 3 column 7"), taken from `serde_json`'s
/// message, whose other words may quote the input (cookie values
/// included).
fn json_position(e: &(dyn StdError + 'static)) -> Option<String> {
    let text = e.to_string();
    let (_, at) = text.rsplit_once(" at line ")?;
    let (line, column) = at.split_once(" column ")?;
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (number(line) && number(column)).then(|| format!("line {line} column {column}"))
}

/// What RFC 6265 §5.3 step 5 makes of a `Domain` attribute.
#[derive(Debug, PartialEq, Eq)]
enum Suffix {
    /// Not a known public suffix: the usual domain-match rules apply.
    NotPublic,
    /// A public suffix that is the request host itself: host-only cookie.
    IsRequestHost,
    /// A public suffix for another host: the cookie is ignored.
    Refused,
}

fn public_suffix_rule(domain: &str, url: &Url) -> Suffix {
    let Some(suffix) = known_public_suffix(domain) else {
        return Suffix::NotPublic;
    };
    if url
        .host_str()
        .is_some_and(|h| h.strip_suffix('.').unwrap_or(h) == suffix)
    {
        Suffix::IsRequestHost
    } else {
        Suffix::Refused
    }
}

/// A `Domain` attribute in canonical form (lower case, punycode, no
/// leading or trailing dot), when it is a known public suffix.
fn known_public_suffix(domain: &str) -> Option<String> {
    let domain = domain.trim();
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    // Canonical form, as the list is looked up in. An IP address is no
    // suffix; anything unparsable is refused later by cookie_store's own
    // domain checks.
    let Ok(Host::Domain(mut domain)) = Host::parse(domain) else {
        return None;
    };
    if domain.ends_with('.') {
        domain.pop();
    }
    psl_lookup::is_known_suffix(&domain).then_some(domain)
}

/// The list lookup is a very large generated function that is compiled into
/// this crate; kept in its own module (its own codegen unit) so incremental
/// builds reuse it when the rest of this file changes.
mod psl_lookup {
    use psl::Psl;

    /// Whether `domain` (lower case, ASCII, no trailing dot) is itself a
    /// suffix named in the list (the list's implicit `*` rule is not
    /// counted, as in `cookie_store` and curl).
    #[inline(never)]
    pub(super) fn is_known_suffix(domain: &str) -> bool {
        psl::List
            .suffix(domain.as_bytes())
            .is_some_and(|s| s.is_known() && s.trim().as_bytes() == domain.as_bytes())
    }
}

#[cfg(test)]
mod tests;
