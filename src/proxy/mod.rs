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

use std::{borrow::Cow, fmt, net::IpAddr, sync::Arc};

use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use percent_encoding::percent_decode_str;
use url::{Host, Url};

use crate::{
    Error, ErrorKind, IntoUrl,
    error::{Redacted, redact_raw},
};

/// Proxy URL schemes we accept, as [`ProxyKind::of`] names them.
const ACCEPTED_SCHEMES: [&str; 6] = ["http", "https", "socks4", "socks4a", "socks5", "socks5h"];

/// The port of a SOCKS proxy that names none (the `url` crate knows the
/// defaults of `http` and `https` only).
const SOCKS_DEFAULT_PORT: u16 = 1080;

/// How a proxy is spoken to: its URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ProxyKind {
    /// An HTTP proxy: absolute-form requests for http, `CONNECT` for https.
    Http,
    /// The same inside TLS to the proxy.
    Https,
    /// SOCKS4: IPv4 targets only, names resolved here.
    Socks4,
    /// SOCKS4a: names resolved by the proxy.
    Socks4a,
    /// SOCKS5 (RFC 1928): names resolved here.
    Socks5,
    /// SOCKS5 with names resolved by the proxy (curl's `socks5h`).
    Socks5h,
}

impl ProxyKind {
    fn of(scheme: &str) -> Option<ProxyKind> {
        Some(match scheme {
            "http" => ProxyKind::Http,
            "https" => ProxyKind::Https,
            "socks4" => ProxyKind::Socks4,
            "socks4a" => ProxyKind::Socks4a,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            _ => return None,
        })
    }

    /// A SOCKS proxy: the connection tunnels to one target, and requests
    /// go in origin form as if direct.
    pub(crate) fn is_socks(self) -> bool {
        !matches!(self, ProxyKind::Http | ProxyKind::Https)
    }
}

/// A proxy chosen per request by the user's function.
type ProxyFn = dyn Fn(&Url) -> Option<Url> + Send + Sync;

/// Which proxy a request goes through: none, the ones the environment names
/// ([`Proxy::from_env`], the default of `TransportBuilder`), or one fixed
/// proxy for every `http://` and/or `https://` request, or one the caller's
/// function picks per request ([`Proxy::custom`], Go's `Transport.Proxy`).
///
/// # Kinds of proxy
///
/// The proxy URL's scheme says how it is spoken to:
///
/// - `http://`: plain `http://` requests go to the proxy in absolute form,
///   `https://` ones through a `CONNECT` tunnel, TLS end to end.
/// - `https://`: the same, inside TLS to the proxy, checked with the
///   transport's TLS configuration.
/// - `socks5://` (RFC 1928; names resolved here) and `socks5h://` (names
///   resolved by the proxy); `socks4a://` (names resolved by the proxy) and
///   `socks4://` (IPv4 only). The default port is 1080. Every connection
///   tunnels to one target, and requests go as if direct.
///
/// Credentials in the proxy URL (`http://user:pass@proxy:3128`) are
/// percent-decoded: HTTP proxies get them as `Proxy-Authorization: Basic
/// …`, SOCKS5 proxies as a username/password (RFC 1929; "no
/// authentication" is offered too, and the proxy chooses), SOCKS4 ones as
/// the user id. They never show in `Debug` output or error messages.
/// Headers set with [`Proxy::headers`] go on every `CONNECT` and every
/// absolute-form request.
///
/// Any failure on the way to or through a proxy (it cannot be reached,
/// TLS to it fails, SOCKS refuses, `CONNECT` is answered with an error) is
/// [`ErrorKind::Proxy`], and the message names the proxy.
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
#[derive(Clone)]
pub struct Proxy {
    /// The proxy for `http://` requests.
    http: Option<ProxyTarget>,
    /// The proxy for `https://` requests.
    https: Option<ProxyTarget>,
    /// Set for proxies from the environment: the `NO_PROXY` list, applied
    /// together with the loopback rule. `None` for fixed proxies, which
    /// apply to every host.
    bypass: Option<NoProxy>,
    /// [`Proxy::custom`]'s function; when set, the fields above are empty.
    custom: Option<Arc<ProxyFn>>,
    /// Sent on `CONNECT` and absolute-form requests.
    headers: HeaderMap,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("http", &self.http)
            .field("https", &self.https)
            .field("bypass", &self.bypass)
            .field("custom", &self.custom.is_some())
            // Names only: a value may be a credential.
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One proxy to dial, as the transport needs it. Part of the connection
/// key: different proxies or credentials never share a connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProxyTarget {
    /// The proxy's URL, one of [`ACCEPTED_SCHEMES`], without userinfo.
    /// Its port is `port_or_known_default()`; a SOCKS URL always has one.
    pub(crate) url: Url,
    pub(crate) kind: ProxyKind,
    /// `Basic base64(user:pass)` from the proxy URL's percent-decoded
    /// userinfo, marked sensitive; `None` when the URL had no userinfo.
    pub(crate) authorization: Option<HeaderValue>,
    /// The same userinfo, percent-decoded, for SOCKS.
    pub(crate) credentials: Option<Credentials>,
}

/// A proxy's user name and password, percent-decoded to raw bytes. Never
/// printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Credentials {
    pub(crate) user: Vec<u8>,
    pub(crate) pass: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(..)")
    }
}

impl Proxy {
    /// Never use a proxy: every request connects directly.
    pub fn none() -> Proxy {
        Proxy {
            http: None,
            https: None,
            bypass: None,
            custom: None,
            headers: HeaderMap::new(),
        }
    }

    /// Lets `f` choose the proxy for each request from its URL (Go's
    /// `Transport.Proxy`): `Some(proxy URL)` of any kind this type
    /// supports, or `None` to go direct. A URL that is not a proxy URL
    /// fails that request with [`ErrorKind::Proxy`]. Called once per
    /// request attempt, on the caller's thread.
    ///
    /// ```
    /// use nethttp::{Proxy, Url};
    /// let proxy = Proxy::custom(|url: &Url| match url.host_str() {
    ///     Some(h) if h.ends_with(".onion") => Url::parse("socks5h://127.0.0.1:9050").ok(),
    ///     _ => None,
    /// });
    /// let t = nethttp::Transport::builder().proxy(proxy).build();
    /// # let _ = t;
    /// ```
    pub fn custom(f: impl Fn(&Url) -> Option<Url> + Send + Sync + 'static) -> Proxy {
        Proxy {
            custom: Some(Arc::new(f)),
            ..Proxy::none()
        }
    }

    /// Headers sent to HTTP proxies on every `CONNECT` and every
    /// absolute-form request (Go's `ProxyConnectHeader`), such as a
    /// `Proxy-Authorization` of another scheme. A request's own header of
    /// the same name wins on absolute-form requests.
    ///
    /// ```
    /// use nethttp::{Proxy, http::HeaderMap};
    /// let mut headers = HeaderMap::new();
    /// headers.insert("proxy-authorization", "Bearer t0ken".parse().unwrap());
    /// let proxy = Proxy::all("http://127.0.0.1:3128")?.headers(headers);
    /// # let _ = proxy;
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn headers(mut self, headers: HeaderMap) -> Proxy {
        self.headers = headers;
        self
    }

    /// The headers of [`Proxy::headers`].
    pub(crate) fn extra_headers(&self) -> &HeaderMap {
        &self.headers
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
    /// `url` needs a scheme (see [kinds](Proxy#kinds-of-proxy)) and a host;
    /// anything else is an error of kind [`ErrorKind::InvalidUrl`].
    pub fn all(url: impl IntoUrl) -> crate::Result<Proxy> {
        let target = ProxyTarget::from_url(proxy_url(url)?)?;
        Ok(Proxy {
            http: Some(target.clone()),
            https: Some(target),
            ..Proxy::none()
        })
    }

    /// Sends `http://` requests through `url`; `https://` ones go direct.
    ///
    /// `url` needs a scheme (see [kinds](Proxy#kinds-of-proxy)) and a host;
    /// anything else is an error of kind [`ErrorKind::InvalidUrl`].
    pub fn http(url: impl IntoUrl) -> crate::Result<Proxy> {
        Ok(Proxy {
            http: Some(ProxyTarget::from_url(proxy_url(url)?)?),
            ..Proxy::none()
        })
    }

    /// Sends `https://` requests through `url`; `http://` ones go direct.
    ///
    /// `url` needs a scheme (see [kinds](Proxy#kinds-of-proxy)) and a host;
    /// anything else is an error of kind [`ErrorKind::InvalidUrl`].
    pub fn https(url: impl IntoUrl) -> crate::Result<Proxy> {
        Ok(Proxy {
            https: Some(ProxyTarget::from_url(proxy_url(url)?)?),
            ..Proxy::none()
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
            ..Proxy::none()
        }
    }

    /// The proxy for a request to `target`, or `None` to connect directly.
    /// Only `http` and `https` targets are ever proxied. A custom
    /// function's bad URL is [`ErrorKind::Proxy`].
    pub(crate) fn proxy_for(&self, target: &Url) -> crate::Result<Option<Cow<'_, ProxyTarget>>> {
        if let Some(f) = &self.custom {
            if !matches!(target.scheme(), "http" | "https") {
                return Ok(None);
            }
            let Some(url) = f(target) else {
                return Ok(None);
            };
            return ProxyTarget::from_url(url)
                .map(|t| Some(Cow::Owned(t)))
                .map_err(|e| Error::new(ErrorKind::Proxy, e.message().to_string()));
        }
        Ok(self.fixed_for(target).map(Cow::Borrowed))
    }

    /// [`Proxy::proxy_for`] for the fixed and environment proxies.
    fn fixed_for(&self, target: &Url) -> Option<&ProxyTarget> {
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
    /// `Proxy-Authorization` value and the credentials, and fills in the
    /// SOCKS port.
    fn from_url(mut url: Url) -> crate::Result<ProxyTarget> {
        let Some(kind) = ProxyKind::of(url.scheme()) else {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!(
                    "proxy {}: unsupported scheme {:?} (want http, https, socks4, socks4a, socks5 or socks5h)",
                    Redacted(&url),
                    url.scheme()
                ),
            ));
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("proxy {}: no host", Redacted(&url)),
            ));
        }
        let credentials = credentials(&url);
        let authorization = credentials.as_ref().and_then(basic_auth);
        // Both calls only fail for URLs without a host, excluded above.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if kind.is_socks() && url.port().is_none() {
            let _ = url.set_port(Some(SOCKS_DEFAULT_PORT));
        }
        Ok(ProxyTarget {
            url,
            kind,
            authorization,
            credentials,
        })
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

/// `url`'s userinfo, percent-decoded to raw bytes; `None` when there is
/// none.
fn credentials(url: &Url) -> Option<Credentials> {
    let (user, pass) = (url.username(), url.password());
    if user.is_empty() && pass.is_none() {
        return None;
    }
    Some(Credentials {
        user: percent_decode_str(user).collect(),
        pass: percent_decode_str(pass.unwrap_or("")).collect(),
    })
}

/// `Basic base64(user:pass)`, marked sensitive.
fn basic_auth(c: &Credentials) -> Option<HeaderValue> {
    let mut raw = c.user.clone();
    raw.push(b':');
    raw.extend_from_slice(&c.pass);
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
            format!("proxy {:?} is not a URL", redact_raw(value)),
        )
        .with_source(e)),
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
mod tests;
