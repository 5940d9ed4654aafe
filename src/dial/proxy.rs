//! Proxy selection (Go's `Transport.Proxy`, `ProxyFromEnvironment` and
//! `golang.org/x/net/http/httpproxy`): which proxy, if any, one request URL
//! goes through.
//!
//! Everything here is pure. The environment is read once, in
//! [`Proxy::from_env`], which hands plain strings to `Proxy::from_vars`;
//! the rest works on strings and URLs, so the tests never touch the process
//! environment. The transport asks [`Proxy::proxy_for`] per request and gets
//! a [`ProxyTarget`]: the proxy's URL with the credentials taken out, and the
//! `Proxy-Authorization` value built from them.

use std::net::IpAddr;

use base64::Engine as _;
use http::HeaderValue;
use percent_encoding::percent_decode_str;
use url::{Host, Url};

use crate::{Error, ErrorKind, IntoUrl};

/// Proxy URL schemes we accept when parsing. Only `http` proxies are dialled
/// today; the transport rejects the others when a request would use them.
const ACCEPTED_SCHEMES: [&str; 3] = ["http", "https", "socks5"];

/// The port of a `socks5://` proxy that names none (the `url` crate knows
/// the defaults of `http` and `https` only).
const SOCKS5_DEFAULT_PORT: u16 = 1080;

/// Which proxy a request goes through: none, the ones the environment names
/// ([`Proxy::from_env`], the default of `TransportBuilder`), or one fixed
/// proxy for every `http://` and/or `https://` request.
///
/// Proxy URLs may use the schemes `http`, `https` and `socks5`, but only
/// `http` proxies are supported for now: a request that would go through an
/// `https` or `socks5` proxy fails with [`ErrorKind::Proxy`]. Credentials in
/// the proxy URL (`http://user:pass@proxy:3128`) are percent-decoded and
/// sent as `Proxy-Authorization: Basic …`; they never show in `Debug`
/// output or error messages.
///
/// # From the environment
///
/// [`Proxy::from_env`] follows Go's `ProxyFromEnvironment`:
///
/// - `HTTP_PROXY` (or `http_proxy`) is the proxy for `http://` requests and
///   `HTTPS_PROXY` (or `https_proxy`) the one for `https://` requests. There
///   is no fallback from one to the other. The upper-case name wins when both
///   are set; an empty value counts as unset.
/// - A value without a scheme, such as `proxy.local:3128`, means
///   `http://proxy.local:3128`. An invalid value is logged and ignored.
/// - When `REQUEST_METHOD` is set the process may be a CGI script, where a
///   request's `Proxy:` header arrives as `HTTP_PROXY` ("httpoxy"), so
///   `HTTP_PROXY` is ignored. `HTTPS_PROXY` still applies.
/// - Requests to `localhost` and to loopback addresses (`127.0.0.0/8`,
///   `::1`) always go direct.
/// - `NO_PROXY` (or `no_proxy`) is a comma-separated list of targets that go
///   direct. Entries are trimmed and compared case-insensitively; empty and
///   malformed ones are ignored. An entry is one of:
///   - `*`: nothing is proxied;
///   - a host name, `example.com`: that host and all its subdomains;
///   - a host name with a leading dot, `.example.com` (or `*.example.com`):
///     the subdomains only, not `example.com` itself;
///   - an IP address, `10.1.2.3`, `::1` or `[::1]`: that address;
///   - a CIDR block, `10.0.0.0/8` or `fd00::/8`: every address in it.
///
///   Host names and IP addresses may carry a port (`example.com:8080`,
///   `10.1.2.3:80`, `[::1]:8080`), and then only that port matches. A
///   request URL without a port is matched with its scheme's default port
///   (80 or 443). Host names match host names only, never IP addresses.
///
/// The fixed proxies of [`Proxy::all`], [`Proxy::http`] and [`Proxy::https`]
/// apply to every host, loopback included, like Go's `ProxyURL`.
///
/// # Example
///
/// ```
/// use nethttp::{ErrorKind, Proxy};
///
/// // Credentials are kept out of Debug output.
/// let proxy = Proxy::all("http://user:secret@proxy.example:3128")?;
/// assert!(!format!("{proxy:?}").contains("secret"));
///
/// // A fixed proxy is a URL with a scheme; anything else is refused.
/// assert_eq!(Proxy::all("not a url").unwrap_err().kind(), ErrorKind::InvalidUrl);
/// assert_eq!(Proxy::http("ftp://proxy.example").unwrap_err().kind(), ErrorKind::InvalidUrl);
///
/// let _direct = Proxy::none();
/// # Ok::<(), nethttp::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Proxy {
    /// The proxy for `http://` requests.
    http: Option<ProxyTarget>,
    /// The proxy for `https://` requests.
    https: Option<ProxyTarget>,
    /// Set for proxies from the environment: the `NO_PROXY` list, applied
    /// together with the loopback rule. `None` for fixed proxies, which
    /// apply to every host.
    bypass: Option<NoProxy>,
}

/// One proxy to dial, as the transport needs it. Part of the connection
/// key: different proxies or credentials never share a connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProxyTarget {
    /// The proxy's URL, scheme `http`, `https` or `socks5` (only `http` is
    /// supported by the transport for now), without userinfo. Its port is
    /// `port_or_known_default()`; a `socks5` URL always has one.
    pub(crate) url: Url,
    /// `Basic base64(user:pass)` from the proxy URL's percent-decoded
    /// userinfo, marked sensitive; `None` when the URL had no userinfo.
    pub(crate) authorization: Option<HeaderValue>,
}

impl Proxy {
    /// Never use a proxy: every request connects directly.
    pub fn none() -> Proxy {
        Proxy {
            http: None,
            https: None,
            bypass: None,
        }
    }

    /// The proxies the environment names, read now (at this call), by the
    /// rules in [the type's docs](Proxy#from-the-environment). Invalid
    /// values are logged with `log::warn!` and ignored.
    ///
    /// This is the default of `TransportBuilder`.
    pub fn from_env() -> Proxy {
        Proxy::from_vars(
            env_any(&["HTTP_PROXY", "http_proxy"]).as_deref(),
            env_any(&["HTTPS_PROXY", "https_proxy"]).as_deref(),
            env_any(&["NO_PROXY", "no_proxy"]).as_deref(),
            std::env::var_os("REQUEST_METHOD").is_some_and(|v| !v.is_empty()),
        )
    }

    /// Sends every `http://` and `https://` request through `url`.
    ///
    /// `url` needs a scheme (`http`, `https` or `socks5`) and a host;
    /// anything else is an error of kind [`ErrorKind::InvalidUrl`].
    pub fn all(url: impl IntoUrl) -> crate::Result<Proxy> {
        let target = ProxyTarget::from_url(proxy_url(url)?)?;
        Ok(Proxy {
            http: Some(target.clone()),
            https: Some(target),
            bypass: None,
        })
    }

    /// Sends `http://` requests through `url`; `https://` ones go direct.
    ///
    /// `url` needs a scheme (`http`, `https` or `socks5`) and a host;
    /// anything else is an error of kind [`ErrorKind::InvalidUrl`].
    pub fn http(url: impl IntoUrl) -> crate::Result<Proxy> {
        Ok(Proxy {
            http: Some(ProxyTarget::from_url(proxy_url(url)?)?),
            https: None,
            bypass: None,
        })
    }

    /// Sends `https://` requests through `url`; `http://` ones go direct.
    ///
    /// `url` needs a scheme (`http`, `https` or `socks5`) and a host;
    /// anything else is an error of kind [`ErrorKind::InvalidUrl`].
    pub fn https(url: impl IntoUrl) -> crate::Result<Proxy> {
        Ok(Proxy {
            http: None,
            https: Some(ProxyTarget::from_url(proxy_url(url)?)?),
            bypass: None,
        })
    }

    /// The environment rules on explicit values: `http`, `https` and
    /// `no_proxy` are the values of `HTTP_PROXY`, `HTTPS_PROXY` and
    /// `NO_PROXY` (`None` or empty when unset), `cgi` whether
    /// `REQUEST_METHOD` is set.
    fn from_vars(
        http: Option<&str>,
        https: Option<&str>,
        no_proxy: Option<&str>,
        cgi: bool,
    ) -> Proxy {
        let mut http = env_target("HTTP_PROXY", http);
        if cgi && http.is_some() {
            // Go fails such requests instead; see golang.org/s/cgihttpproxy.
            log::warn!(
                "nethttp: ignoring HTTP_PROXY because REQUEST_METHOD is set: \
                 in a CGI process it may come from a request's Proxy header"
            );
            http = None;
        }
        Proxy {
            http,
            https: env_target("HTTPS_PROXY", https),
            bypass: Some(NoProxy::parse(no_proxy.unwrap_or(""))),
        }
    }

    /// The proxy for a request to `target`, or `None` to connect directly.
    /// Only `http` and `https` targets are ever proxied. The result borrows
    /// from `self`; clone it to keep it past the `Proxy`.
    pub(crate) fn proxy_for(&self, target: &Url) -> Option<&ProxyTarget> {
        let proxy = match target.scheme() {
            "http" => self.http.as_ref(),
            "https" => self.https.as_ref(),
            _ => None,
        }?;
        if let Some(bypass) = &self.bypass {
            let host = target.host_str()?;
            let port = target.port_or_known_default()?;
            if is_loopback(host) || bypass.matches(host, port) {
                return None;
            }
        }
        Some(proxy)
    }
}

impl ProxyTarget {
    /// Checks the scheme and host, moves the userinfo into the
    /// `Proxy-Authorization` value and fills in the `socks5` port.
    fn from_url(mut url: Url) -> crate::Result<ProxyTarget> {
        if !ACCEPTED_SCHEMES.contains(&url.scheme()) {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!(
                    "proxy {}: unsupported scheme {:?} (want http, https or socks5)",
                    redact(&url),
                    url.scheme()
                ),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("proxy {}: no host", redact(&url)),
            ));
        }
        let authorization = basic_auth(&url);
        // Both calls only fail for URLs without a host, excluded above.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if url.scheme() == "socks5" && url.port().is_none() {
            let _ = url.set_port(Some(SOCKS5_DEFAULT_PORT));
        }
        Ok(ProxyTarget { url, authorization })
    }
}

/// Parses a fixed proxy's URL. The `IntoUrl` error quotes the input, which
/// may hold a password, so only the parser's reason is kept.
fn proxy_url(url: impl IntoUrl) -> crate::Result<Url> {
    url.into_url().map_err(|e| {
        let reason = std::error::Error::source(&e)
            .map_or_else(|| "not a URL".to_owned(), ToString::to_string);
        Error::new(
            ErrorKind::InvalidUrl,
            format!("invalid proxy URL: {reason}"),
        )
    })
}

/// `Basic base64(user:pass)` from `url`'s userinfo, percent-decoded to raw
/// bytes; `None` when there is no userinfo.
fn basic_auth(url: &Url) -> Option<HeaderValue> {
    let (user, pass) = (url.username(), url.password());
    if user.is_empty() && pass.is_none() {
        return None;
    }
    let mut raw: Vec<u8> = percent_decode_str(user).collect();
    raw.push(b':');
    raw.extend(percent_decode_str(pass.unwrap_or("")));
    let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
    // Base64 is ASCII, always a valid header value.
    let mut value = HeaderValue::try_from(format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The first of `names` that is set, non-empty and valid Unicode (Go's
/// `getEnvAny`).
fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// Parses one environment value; a blank or invalid one is `None`, and an
/// invalid one is logged.
fn env_target(name: &str, value: Option<&str>) -> Option<ProxyTarget> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    match parse_env_value(value) {
        Ok(target) => Some(target),
        Err(e) => {
            log::warn!("nethttp: ignoring {name}: {e}");
            None
        }
    }
}

/// Parses a proxy value from the environment: a URL, or `host[:port]`
/// (also `user:pass@host:port`), which means `http://host[:port]`.
fn parse_env_value(value: &str) -> crate::Result<ProxyTarget> {
    let parsed = Url::parse(value);
    if let Ok(url) = &parsed {
        if ACCEPTED_SCHEMES.contains(&url.scheme()) {
            return ProxyTarget::from_url(url.clone());
        }
    }
    // "proxy.local:3128" parses with the scheme "proxy.local", and
    // "10.0.0.1:3128" not at all: both are host:port without a scheme. A
    // value that spells out "://" did name its scheme, and it is not ours.
    if !value.contains("://") {
        if let Ok(url) = Url::parse(&format!("http://{value}")) {
            return ProxyTarget::from_url(url);
        }
    }
    match parsed {
        Ok(url) => ProxyTarget::from_url(url),
        Err(e) => Err(Error::new(
            ErrorKind::InvalidUrl,
            format!("proxy {:?}: {e}", redact_raw(value)),
        )
        .with_source(e)),
    }
}

/// `url` for messages, with its password hidden.
fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

/// A string that failed to parse as a URL, for messages: any userinfo
/// (everything before the last `@`, after the scheme) is hidden.
fn redact_raw(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((before, after)) => {
            let scheme = before.find("://").map_or("", |i| &before[..i + 3]);
            format!("{scheme}***@{after}")
        }
        None => value.to_owned(),
    }
}

/// True for the targets the environment rules never proxy: `localhost` and
/// loopback IP addresses, with or without brackets.
fn is_loopback(host: &str) -> bool {
    let host = strip_brackets(host);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| canonical_ip(ip).is_loopback())
}

/// `[::1]` → `::1`; anything else unchanged.
fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it
/// maps, so that it matches IPv4 entries, as in Go.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A parsed `NO_PROXY` list: the targets that connect directly.
#[derive(Clone, Debug, Default)]
struct NoProxy {
    /// `*` was listed: nothing is proxied.
    all: bool,
    /// Every other well-formed entry, in list order.
    entries: Vec<Bypass>,
}

/// One `NO_PROXY` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bypass {
    /// One IP address (IPv4-mapped ones stored as IPv4), on one port or all.
    Ip { ip: IpAddr, port: Option<u16> },
    /// Every address whose first `bits` bits equal `net`'s, on any port.
    Cidr { net: IpAddr, bits: u8 },
    /// A lower-case ASCII (punycode) host name and its subdomains, or only
    /// the subdomains, on one port or all.
    Domain {
        name: String,
        subdomains_only: bool,
        port: Option<u16>,
    },
}

impl NoProxy {
    /// Parses a comma-separated list; malformed entries are dropped, as Go
    /// makes "a best effort" and ignores errors.
    fn parse(list: &str) -> NoProxy {
        let mut entries = Vec::new();
        for entry in list.split(',') {
            let entry = entry.trim().to_lowercase();
            if entry == "*" {
                return NoProxy {
                    all: true,
                    entries: Vec::new(),
                };
            }
            if let Some(bypass) = Bypass::parse(&entry) {
                entries.push(bypass);
            }
        }
        NoProxy {
            all: false,
            entries,
        }
    }

    /// Whether a request to `host` (a name or an IP address, IPv6 with or
    /// without brackets) on `port` goes direct. The loopback rule is not
    /// part of this; see [`is_loopback`].
    fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        let host = strip_brackets(&host);
        let ip = host.parse::<IpAddr>().ok().map(canonical_ip);
        self.entries.iter().any(|e| e.matches(host, ip, port))
    }
}

impl Bypass {
    /// Parses one trimmed, lower-case, non-`*` entry; `None` when it is
    /// empty or malformed.
    fn parse(entry: &str) -> Option<Bypass> {
        if entry.is_empty() {
            return None;
        }
        // A CIDR block takes no port, as in Go.
        if let Some((addr, bits)) = entry.split_once('/') {
            let net = addr.parse::<IpAddr>().ok()?;
            if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let bits = bits.parse::<u8>().ok()?;
            let width = if net.is_ipv4() { 32 } else { 128 };
            if bits > width {
                return None;
            }
            return Some(Bypass::Cidr { net, bits });
        }
        let (host, port) = split_host_port(entry)?;
        // "host:" is Go's "any port" too.
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(p.parse::<u16>().ok()?),
        };
        if host.is_empty() {
            return None;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Bypass::Ip {
                ip: canonical_ip(ip),
                port,
            });
        }
        if host.starts_with('[') || host.contains(':') {
            return None; // brackets or colons around something not an IP
        }
        // ".example.com" and "*.example.com" match the subdomains only.
        let (name, subdomains_only) = match host.strip_prefix("*.").or(host.strip_prefix('.')) {
            Some(rest) => (rest, true),
            None => (host, false),
        };
        if name.is_empty() {
            return None;
        }
        Some(Bypass::Domain {
            name: ascii_name(name),
            subdomains_only,
            port,
        })
    }

    /// Whether this entry covers `host` (lower case, no brackets), which is
    /// the IP address `ip` when it parses as one, on `port`.
    fn matches(&self, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
        match self {
            Bypass::Ip { ip: want, port: p } => ip == Some(*want) && p.is_none_or(|p| p == port),
            Bypass::Cidr { net, bits } => ip.is_some_and(|ip| cidr_contains(*net, *bits, ip)),
            Bypass::Domain {
                name,
                subdomains_only,
                port: p,
            } => {
                let subdomain = host
                    .strip_suffix(name.as_str())
                    .is_some_and(|head| head.ends_with('.'));
                ip.is_none()
                    && (subdomain || (!subdomains_only && host == name))
                    && p.is_none_or(|p| p == port)
            }
        }
    }
}

/// Splits `host`, `host:port`, `[v6]` and `[v6]:port`; a bare IPv6 address
/// (two or more colons) has no port. `None` for brackets around something
/// other than an IP address, a bracket left open, or text after the `]` that
/// is not `:port`.
fn split_host_port(entry: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<IpAddr>().ok()?;
        return match after {
            "" => Some((inside, None)),
            _ => Some((inside, Some(after.strip_prefix(':')?))),
        };
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => Some((host, Some(port))),
        _ => Some((entry, None)),
    }
}

/// A host name as the `url` crate spells hosts: non-ASCII names in punycode
/// (IDNA). A name IDNA rejects is kept as it is; it will not match.
fn ascii_name(name: &str) -> String {
    if name.is_ascii() {
        return name.to_owned();
    }
    match Host::parse(name) {
        Ok(Host::Domain(ascii)) => ascii,
        _ => name.to_owned(),
    }
}

/// Whether `ip` lies in `net/bits`. Addresses of the other family never do.
fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let (net, ip, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
        _ => return false,
    };
    // Shifting out the host bits leaves the prefixes; /0 shifts everything
    // out (checked_shr: a shift by 128 is None, and everything matches).
    let host_bits = width - u32::from(bits);
    (net ^ ip).checked_shr(host_bits).unwrap_or(0) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_table() {
        // (NO_PROXY, target host, target port, goes direct)
        let rows: &[(&str, &str, u16, bool)] = &[
            // host names and subdomains
            ("example.com", "example.com", 80, true),
            ("example.com", "a.example.com", 80, true),
            ("example.com", "a.b.example.com", 443, true),
            ("example.com", "badexample.com", 80, false),
            ("example.com", "example.com.evil", 80, false),
            ("example.com", "example.org", 80, false),
            // leading dot and "*.": subdomains only
            (".example.com", "example.com", 80, false),
            (".example.com", "a.example.com", 80, true),
            ("*.example.com", "example.com", 80, false),
            ("*.example.com", "a.example.com", 80, true),
            // ports
            ("example.com:8080", "example.com", 8080, true),
            ("example.com:8080", "example.com", 80, false),
            ("example.com:8080", "a.example.com", 8080, true),
            (".example.com:443", "a.example.com", 443, true),
            ("example.com:", "example.com", 1234, true),
            ("example.com:http", "example.com", 80, false),
            // IPv4
            ("10.1.2.3", "10.1.2.3", 80, true),
            ("10.1.2.3", "10.1.2.4", 80, false),
            ("10.1.2.3:80", "10.1.2.3", 80, true),
            ("10.1.2.3:80", "10.1.2.3", 8080, false),
            ("10.1.2.3", "[::ffff:10.1.2.3]", 80, true),
            // host names never match IP addresses (Go's suffix test would)
            ("2.3", "10.1.2.3", 80, false),
            // IPv6, with and without brackets
            ("2001:db8::1", "[2001:db8::1]", 443, true),
            ("2001:db8::1", "2001:db8::1", 443, true),
            ("[2001:db8::1]", "[2001:db8::1]", 443, true),
            ("[2001:db8::1]:8443", "[2001:db8::1]", 8443, true),
            ("[2001:db8::1]:8443", "[2001:db8::1]", 443, false),
            ("2001:db8::1", "[2001:db8::2]", 443, false),
            ("[2001:DB8::1]", "[2001:db8::1]", 80, true),
            // CIDR v4
            ("10.0.0.0/8", "10.255.1.2", 80, true),
            ("10.0.0.0/8", "11.0.0.1", 80, false),
            ("192.168.1.0/24", "192.168.1.77", 8080, true),
            ("192.168.1.0/24", "192.168.2.1", 80, false),
            ("10.1.2.3/32", "10.1.2.3", 80, true),
            ("10.9.9.9/8", "10.1.1.1", 80, true),
            ("0.0.0.0/0", "203.0.113.9", 80, true),
            ("0.0.0.0/0", "[2001:db8::1]", 80, false),
            ("10.0.0.0/8", "ten.example", 80, false),
            ("10.0.0.0/33", "10.0.0.1", 80, false),
            ("10.0.0.0/8:80", "10.0.0.1", 80, false),
            // CIDR v6
            ("2001:db8::/32", "[2001:db8:ffff::1]", 80, true),
            ("2001:db8::/32", "[2001:db9::1]", 80, false),
            ("::/0", "[2001:db8::1]", 80, true),
            ("::/0", "10.0.0.1", 80, false),
            ("fd00::/8", "[fdff::1]", 80, true),
            ("2001:db8::1/128", "[2001:db8::1]", 80, true),
            ("2001:db8::1/128", "[2001:db8::2]", 80, false),
            // "*"
            ("*", "anything.example", 80, true),
            ("*", "10.0.0.1", 8080, true),
            ("foo.com, *", "example.com", 80, true),
            // case and spaces
            ("EXAMPLE.com", "example.com", 80, true),
            ("example.com", "A.EXAMPLE.COM", 80, true),
            ("  foo.com ,  example.com  ", "example.com", 80, true),
            ("foo.com,\texample.com", "a.example.com", 80, true),
            // empty lists and entries
            ("", "example.com", 80, false),
            (",,, ,", "example.com", 80, false),
            (",example.com,", "example.com", 80, true),
            // malformed entries are ignored, the others still apply
            (".", "example.com", 80, false),
            ("*.", "example.com", 80, false),
            (":80", "example.com", 80, false),
            ("[::1", "example.com", 80, false),
            ("[nope]:80, example.com", "example.com", 80, true),
            ("example.com:99999", "example.com", 80, false),
            // non-ASCII names are compared in punycode
            ("bücher.example", "xn--bcher-kva.example", 80, true),
            ("*.BÜCHER.example", "a.xn--bcher-kva.example", 80, true),
        ];
        for &(list, host, port, want) in rows {
            let got = NoProxy::parse(list).matches(host, port);
            assert_eq!(got, want, "NO_PROXY={list:?} host={host:?} port={port}");
        }
    }

    #[test]
    fn no_proxy_parse_shapes() {
        let parsed = NoProxy::parse(".A.com:81,1.2.3.4,[::1]:9,10.0.0.0/8");
        assert!(!parsed.all);
        assert_eq!(
            parsed.entries,
            vec![
                Bypass::Domain {
                    name: "a.com".into(),
                    subdomains_only: true,
                    port: Some(81),
                },
                Bypass::Ip {
                    ip: "1.2.3.4".parse().unwrap(),
                    port: None,
                },
                Bypass::Ip {
                    ip: "::1".parse().unwrap(),
                    port: Some(9),
                },
                Bypass::Cidr {
                    net: "10.0.0.0".parse().unwrap(),
                    bits: 8,
                },
            ]
        );
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// The proxy URL chosen for `target`, as a string.
    fn chosen(proxy: &Proxy, target: &str) -> Option<String> {
        proxy.proxy_for(&url(target)).map(|t| t.url.to_string())
    }

    #[test]
    fn selection_by_target_scheme() {
        let env = Proxy::from_vars(
            Some("http://hp:1"),
            Some("http://sp:2"),
            Some("direct.example"),
            false,
        );
        let only_http = Proxy::from_vars(Some("http://hp:1"), None, None, false);
        let only_https = Proxy::from_vars(None, Some("http://sp:2"), Some(""), false);
        let all = Proxy::all("http://ap:3").unwrap();
        let http = Proxy::http("http://hp:4").unwrap();
        let https = Proxy::https("http://sp:5").unwrap();
        let none = Proxy::none();
        let rows: &[(&Proxy, &str, Option<&str>)] = &[
            (&env, "http://a.example/x", Some("http://hp:1/")),
            (&env, "https://a.example/x", Some("http://sp:2/")),
            (&env, "http://direct.example/", None),
            (&env, "https://www.direct.example:8443/", None),
            (&env, "ftp://a.example/", None),
            (&env, "ws://a.example/", None),
            (&only_http, "http://a.example/", Some("http://hp:1/")),
            (&only_http, "https://a.example/", None),
            (&only_https, "http://a.example/", None),
            (&only_https, "https://a.example/", Some("http://sp:2/")),
            (&all, "http://a.example/", Some("http://ap:3/")),
            (&all, "https://a.example/", Some("http://ap:3/")),
            (&all, "ftp://a.example/", None),
            (&http, "http://a.example/", Some("http://hp:4/")),
            (&http, "https://a.example/", None),
            (&https, "http://a.example/", None),
            (&https, "https://a.example/", Some("http://sp:5/")),
            (&none, "http://a.example/", None),
            (&none, "https://a.example/", None),
        ];
        for &(proxy, target, want) in rows {
            assert_eq!(
                chosen(proxy, target).as_deref(),
                want,
                "{proxy:?} target {target}"
            );
        }
    }

    #[test]
    fn no_proxy_uses_default_port_of_target_scheme() {
        let p = Proxy::from_vars(
            Some("http://hp:1"),
            Some("http://sp:2"),
            Some("a.example:80,b.example:443"),
            false,
        );
        assert_eq!(chosen(&p, "http://a.example/"), None);
        assert_eq!(chosen(&p, "http://a.example:80/"), None);
        assert!(chosen(&p, "http://a.example:8080/").is_some());
        assert!(chosen(&p, "https://a.example/").is_some());
        assert_eq!(chosen(&p, "https://b.example/"), None);
        assert!(chosen(&p, "http://b.example/").is_some());
    }

    #[test]
    fn env_loopback_bypass() {
        let p = Proxy::from_vars(Some("http://hp:1"), Some("http://sp:2"), None, false);
        for target in [
            "http://localhost/",
            "http://LOCALHOST:8080/",
            "https://localhost/",
            "http://127.0.0.1/",
            "http://127.1.2.3:9000/",
            "http://[::1]/",
            "https://[::1]:8443/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(chosen(&p, target), None, "{target}");
        }
        for target in [
            "http://localhost.example/",
            "http://foo.localhost/",
            "http://128.0.0.1/",
            "http://[::2]/",
        ] {
            assert!(chosen(&p, target).is_some(), "{target}");
        }
    }

    #[test]
    fn fixed_proxies_apply_to_loopback() {
        // Like Go's ProxyURL: an explicit proxy applies to every host.
        let p = Proxy::all("http://127.0.0.1:3128").unwrap();
        assert_eq!(
            chosen(&p, "http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:3128/")
        );
        assert!(chosen(&p, "http://localhost/").is_some());
    }

    #[test]
    fn cgi_ignores_http_proxy_only() {
        let p = Proxy::from_vars(Some("http://hp:1"), Some("http://sp:2"), None, true);
        assert_eq!(chosen(&p, "http://a.example/"), None);
        assert_eq!(
            chosen(&p, "https://a.example/").as_deref(),
            Some("http://sp:2/")
        );
        let p = Proxy::from_vars(Some("http://hp:1"), None, None, false);
        assert!(chosen(&p, "http://a.example/").is_some());
    }

    #[test]
    fn scheme_less_env_values_mean_http() {
        let rows: &[(&str, &str)] = &[
            ("proxy.local:3128", "http://proxy.local:3128/"),
            ("proxy.local", "http://proxy.local/"),
            ("localhost:3128", "http://localhost:3128/"),
            ("10.0.0.1:3128", "http://10.0.0.1:3128/"),
            ("[2001:db8::1]:3128", "http://[2001:db8::1]:3128/"),
            ("u:p@proxy.local:3128", "http://proxy.local:3128/"),
            ("  proxy.local:3128  ", "http://proxy.local:3128/"),
            ("http://proxy.local:3128", "http://proxy.local:3128/"),
            ("HTTP://Proxy.Local:80", "http://proxy.local/"),
            ("https://proxy.local", "https://proxy.local/"),
            ("socks5://proxy.local", "socks5://proxy.local:1080"),
            ("socks5://proxy.local:9050", "socks5://proxy.local:9050"),
        ];
        for &(value, want) in rows {
            let p = Proxy::from_vars(Some(value), None, None, false);
            assert_eq!(
                chosen(&p, "http://a.example/").as_deref(),
                Some(want),
                "{value:?}"
            );
        }
        let p = Proxy::from_vars(Some("u:p@proxy.local:3128"), None, None, false);
        assert!(
            p.proxy_for(&url("http://a.example/"))
                .unwrap()
                .authorization
                .is_some()
        );
    }

    #[test]
    fn bad_env_values_mean_no_proxy() {
        for value in [
            "",
            "   ",
            "not a url",
            "ftp://proxy.local",
            "socks4://proxy.local:1080",
            "http://",
            "http://proxy.local:99999",
            ":3128",
            "http://user:secret@bad host:1",
        ] {
            let p = Proxy::from_vars(Some(value), Some(value), None, false);
            assert_eq!(chosen(&p, "http://a.example/"), None, "{value:?}");
            assert_eq!(chosen(&p, "https://a.example/"), None, "{value:?}");
        }
        // One bad variable does not spoil the other.
        let p = Proxy::from_vars(Some("ftp://x"), Some("http://sp:2"), None, false);
        assert_eq!(chosen(&p, "http://a.example/"), None);
        assert!(chosen(&p, "https://a.example/").is_some());
    }

    #[test]
    fn bad_fixed_urls_are_errors() {
        for value in [
            "not a url",
            "proxy.local:3128",
            "10.0.0.1:3128",
            "ftp://proxy.local",
            "socks5://",
            "http://user:secret@:1",
        ] {
            for result in [Proxy::all(value), Proxy::http(value), Proxy::https(value)] {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{value:?}");
                assert!(!err.to_string().contains("secret"), "{err}");
            }
        }
        assert!(Proxy::all(url("https://proxy.local")).is_ok());
        let socks = url("socks5://proxy.local");
        assert!(Proxy::all(&socks).is_ok());
        assert_eq!(socks.scheme(), "socks5");
        assert!(Proxy::all(String::from("http://proxy.local")).is_ok());
    }

    #[test]
    fn userinfo_becomes_basic_authorization() {
        // (proxy URL, decoded "user:pass")
        let rows: &[(&str, Option<&str>)] = &[
            ("http://u%40x:p%20w@proxy:1", Some("u@x:p w")),
            ("http://user:pass@proxy:1", Some("user:pass")),
            ("http://user@proxy:1", Some("user:")),
            ("http://:pass@proxy:1", Some(":pass")),
            ("http://%C3%BC:%3A%2F@proxy:1", Some("ü::/")),
            ("http://proxy:1", None),
        ];
        for &(proxy, want) in rows {
            let p = Proxy::all(proxy).unwrap();
            let target = p.proxy_for(&url("http://a.example/")).unwrap();
            assert_eq!(target.url.as_str(), "http://proxy:1/", "{proxy}");
            assert_eq!(target.url.username(), "");
            assert_eq!(target.url.password(), None);
            let got = target.authorization.as_ref().map(|v| {
                assert!(v.is_sensitive());
                let b64 = v.to_str().unwrap().strip_prefix("Basic ").unwrap();
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap();
                String::from_utf8(raw).unwrap()
            });
            assert_eq!(got.as_deref(), want, "{proxy}");
        }
        assert_eq!(
            Proxy::all("http://Aladdin:open%20sesame@proxy:1")
                .unwrap()
                .proxy_for(&url("https://a.example/"))
                .unwrap()
                .authorization
                .as_ref()
                .unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn credentials_stay_out_of_debug_and_messages() {
        let p = Proxy::from_vars(Some("http://u:hunter2@proxy:1"), None, None, false);
        assert!(!format!("{p:?}").contains("hunter2"));
        let err = parse_env_value("ftp://u:hunter2@proxy").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = parse_env_value("http://u:hunter2@bad host").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(redact_raw("http://u:p@h:1"), "http://***@h:1");
        assert_eq!(redact_raw("u:p@h:1"), "***@h:1");
        assert_eq!(redact_raw("h:1"), "h:1");
    }

    #[test]
    fn cidr_edges() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains(v4("10.0.0.0"), 0, v4("255.255.255.255")));
        assert!(cidr_contains(v4("10.0.0.0"), 31, v4("10.0.0.1")));
        assert!(!cidr_contains(v4("10.0.0.0"), 32, v4("10.0.0.1")));
        assert!(cidr_contains(v4("::"), 0, v4("ffff::1")));
        assert!(cidr_contains(v4("2001:db8::"), 127, v4("2001:db8::1")));
        assert!(!cidr_contains(v4("2001:db8::"), 128, v4("2001:db8::1")));
        assert!(!cidr_contains(v4("::"), 0, v4("1.2.3.4")));
    }
}
