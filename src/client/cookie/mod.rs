//! The client's cookie jar (Go's `net/http/cookiejar`), used when the
//! client is built with `cookie_store(true)`.
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

use std::{cmp::Reverse, fmt};

use cookie_store::{Cookie, CookieStore, RawCookie, StoreAction};
use http::{HeaderMap, HeaderValue, header};
use parking_lot::Mutex;
use url::{Host, Url};

/// The client's cookie jar (shared by clones of a `Client`).
#[derive(Default)]
pub(crate) struct Jar {
    store: Mutex<CookieStore>,
}

impl fmt::Debug for Jar {
    // Cookie values are credentials: show how many there are, not what.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cookies = self.store.lock().iter_unexpired().count();
        f.debug_struct("Jar").field("cookies", &cookies).finish()
    }
}

impl Jar {
    /// The `Cookie` header value for a request to `url`, or `None` when no
    /// cookie applies.
    ///
    /// Cookies with longer paths come first (RFC 6265 §5.4); among equal
    /// paths, the order they were first stored in.
    pub(crate) fn cookies_for(&self, url: &Url) -> Option<HeaderValue> {
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

    /// Stores every `Set-Cookie` of a response from `url` (invalid ones are
    /// ignored, with a `log::debug`).
    pub(crate) fn store_from(&self, url: &Url, headers: &HeaderMap) {
        let mut values = headers.get_all(header::SET_COOKIE).iter().peekable();
        if values.peek().is_none() {
            return;
        }
        let mut store = self.store.lock();
        for value in values {
            let Ok(text) = value.to_str() else {
                log::debug!("cookie jar: ignoring a Set-Cookie from {url} that is not text");
                continue;
            };
            let mut raw = match RawCookie::parse(text.to_owned()) {
                Ok(raw) => raw,
                Err(e) => {
                    log::debug!("cookie jar: ignoring a Set-Cookie from {url}: {e}");
                    continue;
                }
            };
            if let Some(domain) = raw.domain() {
                match public_suffix_rule(domain, url) {
                    Suffix::NotPublic => {}
                    Suffix::IsRequestHost => raw.unset_domain(),
                    Suffix::Refused => {
                        log::debug!(
                            "cookie jar: ignoring cookie {:?} from {url}: Domain={domain} is a public suffix",
                            raw.name()
                        );
                        continue;
                    }
                }
            }
            insert(&mut store, &raw, url);
        }
    }
}

/// Inserts one parsed cookie; a cookie that deletes another (expired, or
/// `Max-Age=0`) removes it from the store rather than leaving it expired.
fn insert(store: &mut CookieStore, raw: &RawCookie<'_>, url: &Url) {
    let cookie = match Cookie::try_from_raw_cookie(raw, url) {
        Ok(cookie) => cookie.into_owned(),
        Err(e) => {
            log::debug!(
                "cookie jar: ignoring cookie {:?} from {url}: {e}",
                raw.name()
            );
            return;
        }
    };
    let domain = String::from(&cookie.domain);
    let path = String::from(&*cookie.path);
    let name = cookie.name().to_owned();
    match store.insert(cookie, url) {
        Ok(StoreAction::ExpiredExisting) => {
            store.remove(&domain, &path, &name);
        }
        Ok(StoreAction::Inserted | StoreAction::UpdatedExisting) => {}
        Err(e) => log::debug!("cookie jar: not storing cookie {name:?} from {url}: {e}"),
    }
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
    let domain = domain.trim();
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    // Canonical form (lower case, punycode), as the list is looked up in.
    let Ok(Host::Domain(domain)) = Host::parse(domain) else {
        // An IP address is no suffix; anything unparsable is refused later
        // by cookie_store's own domain checks.
        return Suffix::NotPublic;
    };
    let bare = domain.strip_suffix('.').unwrap_or(&domain);
    let public = psl_lookup::is_known_suffix(bare);
    if !public {
        Suffix::NotPublic
    } else if url
        .host_str()
        .is_some_and(|h| h.strip_suffix('.').unwrap_or(h) == bare)
    {
        Suffix::IsRequestHost
    } else {
        Suffix::Refused
    }
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
