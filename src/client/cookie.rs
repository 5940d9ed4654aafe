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
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    /// A response from `from` carrying these `Set-Cookie` lines.
    fn set(jar: &Jar, from: &str, lines: &[&str]) {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(
                header::SET_COOKIE,
                HeaderValue::from_str(line).expect("test header"),
            );
        }
        jar.store_from(&url(from), &headers);
    }

    /// The Cookie header for `to`, as a string.
    fn sent(jar: &Jar, to: &str) -> Option<String> {
        jar.cookies_for(&url(to))
            .map(|v| v.to_str().expect("ascii").to_owned())
    }

    #[test]
    fn empty_jar_sends_nothing() {
        let jar = Jar::default();
        assert_eq!(sent(&jar, "http://example.com/"), None);
        set(&jar, "http://example.com/", &[]);
        assert_eq!(sent(&jar, "http://example.com/"), None);
    }

    #[test]
    fn same_host_round_trip() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["a=1"]);
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("a=1"));
        assert_eq!(
            sent(&jar, "http://example.com/x/y?q=1").as_deref(),
            Some("a=1")
        );
        // Cookies are not isolated by port (RFC 6265 §8.5).
        assert_eq!(
            sent(&jar, "http://example.com:8080/").as_deref(),
            Some("a=1")
        );
        // Host-only: not to subdomains nor other hosts.
        assert_eq!(sent(&jar, "http://www.example.com/"), None);
        assert_eq!(sent(&jar, "http://example.org/"), None);
    }

    #[test]
    fn loopback_host_round_trip() {
        let jar = Jar::default();
        set(&jar, "http://127.0.0.1:5000/login", &["sid=abc; Path=/"]);
        assert_eq!(
            sent(&jar, "http://127.0.0.1:5000/home").as_deref(),
            Some("sid=abc")
        );
        assert_eq!(sent(&jar, "http://127.0.0.2:5000/home"), None);
        assert_eq!(sent(&jar, "http://localhost:5000/home"), None);
    }

    #[test]
    fn replacing_a_cookie() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["a=1"]);
        set(&jar, "http://example.com/", &["a=2"]);
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("a=2"));
    }

    #[test]
    fn path_matching() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["p=1; Path=/api"]);
        assert_eq!(sent(&jar, "http://example.com/api").as_deref(), Some("p=1"));
        assert_eq!(
            sent(&jar, "http://example.com/api/v1").as_deref(),
            Some("p=1")
        );
        assert_eq!(sent(&jar, "http://example.com/"), None);
        assert_eq!(sent(&jar, "http://example.com/apix"), None);
    }

    #[test]
    fn default_path_is_the_request_directory() {
        let jar = Jar::default();
        set(&jar, "http://example.com/dir/page", &["d=1"]);
        assert_eq!(
            sent(&jar, "http://example.com/dir/other").as_deref(),
            Some("d=1")
        );
        assert_eq!(sent(&jar, "http://example.com/dir").as_deref(), Some("d=1"));
        assert_eq!(sent(&jar, "http://example.com/"), None);
        assert_eq!(sent(&jar, "http://example.com/directory"), None);
    }

    #[test]
    fn domain_attribute_covers_subdomains() {
        let jar = Jar::default();
        set(
            &jar,
            "http://www.example.com/",
            &["d=1; Domain=example.com"],
        );
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("d=1"));
        assert_eq!(
            sent(&jar, "http://www.example.com/").as_deref(),
            Some("d=1")
        );
        assert_eq!(
            sent(&jar, "http://a.b.example.com/").as_deref(),
            Some("d=1")
        );
        assert_eq!(sent(&jar, "http://notexample.com/"), None);
        assert_eq!(sent(&jar, "http://example.org/"), None);
    }

    #[test]
    fn domain_attribute_leading_dot_and_case() {
        let jar = Jar::default();
        set(
            &jar,
            "http://www.Example.com/",
            &["d=1; Domain=.EXAMPLE.com"],
        );
        assert_eq!(
            sent(&jar, "http://api.example.com/").as_deref(),
            Some("d=1")
        );
    }

    #[test]
    fn cookie_for_another_domain_is_refused() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["x=1; Domain=evil.com"]);
        // Nor for a subdomain set by its parent.
        set(
            &jar,
            "http://example.com/",
            &["y=1; Domain=www.example.com"],
        );
        assert_eq!(sent(&jar, "http://evil.com/"), None);
        assert_eq!(sent(&jar, "http://example.com/"), None);
        assert_eq!(sent(&jar, "http://www.example.com/"), None);
    }

    #[test]
    fn secure_cookies_only_over_https() {
        let jar = Jar::default();
        set(&jar, "https://example.com/", &["s=1; Secure", "n=2"]);
        assert_eq!(
            sent(&jar, "https://example.com/").as_deref(),
            Some("s=1; n=2")
        );
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("n=2"));
        // Go's rule, not the browsers': loopback over http is not secure.
        set(&jar, "https://localhost/", &["s=1; Secure"]);
        assert_eq!(sent(&jar, "http://localhost/"), None);
        set(&jar, "https://127.0.0.1/", &["s=1; Secure"]);
        assert_eq!(sent(&jar, "http://127.0.0.1/"), None);
        assert_eq!(sent(&jar, "https://127.0.0.1/").as_deref(), Some("s=1"));
    }

    #[test]
    fn http_only_is_irrelevant_to_an_http_client() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["h=1; HttpOnly"]);
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("h=1"));
    }

    #[test]
    fn max_age_zero_removes() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["a=1", "b=2"]);
        set(&jar, "http://example.com/", &["a=; Max-Age=0"]);
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("b=2"));
        set(&jar, "http://example.com/", &["b=; Max-Age=-1"]);
        assert_eq!(sent(&jar, "http://example.com/"), None);
        // Removed from the store, not merely hidden.
        assert_eq!(jar.store.lock().iter_any().count(), 0);
    }

    #[test]
    fn past_expires_removes() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["a=1"]);
        set(
            &jar,
            "http://example.com/",
            &["a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT"],
        );
        assert_eq!(sent(&jar, "http://example.com/"), None);
        // A new cookie that is already expired is not stored.
        set(
            &jar,
            "http://example.com/",
            &["c=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT"],
        );
        assert_eq!(sent(&jar, "http://example.com/"), None);
    }

    #[test]
    fn future_expiry_is_kept_and_max_age_wins() {
        let jar = Jar::default();
        set(
            &jar,
            "http://example.com/",
            &[
                "a=1; Max-Age=3600",
                "b=2; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
                // Max-Age takes precedence over Expires (RFC 6265 §5.3 step 3).
                "c=3; Max-Age=0; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
            ],
        );
        assert_eq!(
            sent(&jar, "http://example.com/").as_deref(),
            Some("a=1; b=2")
        );
    }

    #[test]
    fn public_suffix_domains_are_refused() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["a=1; Domain=com"]);
        set(&jar, "http://example.com/", &["b=1; Domain=.COM"]);
        set(&jar, "http://www.example.co.uk/", &["c=1; Domain=co.uk"]);
        // A private-section suffix counts too.
        set(&jar, "http://evil.github.io/", &["d=1; Domain=github.io"]);
        // An IDN suffix (рф), given in Unicode.
        set(&jar, "http://xn--e1afmkfd.xn--p1ai/", &["e=1; Domain=рф"]);
        for to in [
            "http://example.com/",
            "http://other.com/",
            "http://www.example.co.uk/",
            "http://bbc.co.uk/",
            "http://evil.github.io/",
            "http://victim.github.io/",
            "http://xn--e1afmkfd.xn--p1ai/",
            "http://xn--80a.xn--p1ai/",
        ] {
            assert_eq!(sent(&jar, to), None, "{to}");
        }
        assert_eq!(jar.store.lock().iter_any().count(), 0);
    }

    #[test]
    fn registrable_domain_under_a_public_suffix_is_fine() {
        let jar = Jar::default();
        set(
            &jar,
            "http://www.example.co.uk/",
            &["r=1; Domain=example.co.uk"],
        );
        assert_eq!(
            sent(&jar, "http://shop.example.co.uk/").as_deref(),
            Some("r=1")
        );
        assert_eq!(sent(&jar, "http://other.co.uk/"), None);
    }

    #[test]
    fn public_suffix_that_is_the_request_host_becomes_host_only() {
        let jar = Jar::default();
        set(&jar, "http://github.io/", &["h=1; Domain=github.io"]);
        assert_eq!(sent(&jar, "http://github.io/").as_deref(), Some("h=1"));
        assert_eq!(sent(&jar, "http://x.github.io/"), None);
    }

    #[test]
    fn public_suffix_rule_cases() {
        let from = url("http://www.example.co.uk/");
        assert_eq!(public_suffix_rule("co.uk", &from), Suffix::Refused);
        assert_eq!(public_suffix_rule("uk", &from), Suffix::Refused);
        assert_eq!(public_suffix_rule(".Co.UK", &from), Suffix::Refused);
        assert_eq!(
            public_suffix_rule("example.co.uk", &from),
            Suffix::NotPublic
        );
        assert_eq!(public_suffix_rule("192.0.2.1", &from), Suffix::NotPublic);
        // Unlisted TLDs are not treated as suffixes (only known rules count).
        assert_eq!(public_suffix_rule("example.test", &from), Suffix::NotPublic);
        let host = url("http://co.uk/");
        assert_eq!(public_suffix_rule("co.uk", &host), Suffix::IsRequestHost);
    }

    #[test]
    fn multiple_cookies_are_joined_longest_path_first() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["a=1", "b=2"]);
        set(&jar, "http://example.com/", &["c=3; Path=/x"]);
        assert_eq!(
            sent(&jar, "http://example.com/").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(
            sent(&jar, "http://example.com/x/y").as_deref(),
            Some("c=3; a=1; b=2")
        );
    }

    #[test]
    fn quoted_and_empty_values_go_back_as_received() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["q=\"v w\"", "e="]);
        assert_eq!(
            sent(&jar, "http://example.com/").as_deref(),
            Some("q=\"v w\"; e=")
        );
    }

    #[test]
    fn invalid_set_cookie_lines_are_ignored() {
        let jar = Jar::default();
        let mut headers = HeaderMap::new();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("no-equals-sign"),
        );
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_bytes(b"k=\xff\xfe").expect("obs-text is a valid header value"),
        );
        headers.append(header::SET_COOKIE, HeaderValue::from_static("=nameless"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("ok=1"));
        jar.store_from(&url("http://example.com/"), &headers);
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("ok=1"));
    }

    #[test]
    fn only_http_schemes() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["a=1"]);
        assert_eq!(sent(&jar, "ftp://example.com/"), None);
    }

    #[test]
    fn debug_does_not_show_values() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", &["secret=hunter2"]);
        let shown = format!("{jar:?}");
        assert_eq!(shown, "Jar { cookies: 1 }");
    }
}
