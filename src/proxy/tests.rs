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
    proxy
        .proxy_for(&url(target))
        .expect("fixed proxies never fail")
        .map(|t| t.url.to_string())
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
        p.fixed_for(&url("http://a.example/"))
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
        "socks6://proxy.local:1080",
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
fn proxy_headers_show_their_names_only() {
    let mut h = HeaderMap::new();
    h.insert(
        "proxy-authorization",
        HeaderValue::from_static("Bearer s3cret"),
    );
    let p = Proxy::all("http://p.local:3128").unwrap().headers(h);
    let shown = format!("{p:?}");
    assert!(
        shown.contains("proxy-authorization") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn kinds_ports_and_credentials() {
    for (value, kind, port) in [
        ("http://p.local", ProxyKind::Http, 80),
        ("https://p.local", ProxyKind::Https, 443),
        ("socks4://p.local", ProxyKind::Socks4, 1080),
        ("socks4a://p.local", ProxyKind::Socks4a, 1080),
        ("socks5://p.local:9050", ProxyKind::Socks5, 9050),
        ("socks5h://p.local", ProxyKind::Socks5h, 1080),
    ] {
        let t = ProxyTarget::from_url(url(value)).unwrap();
        assert_eq!(
            (t.kind, t.url.port_or_known_default()),
            (kind, Some(port)),
            "{value}"
        );
    }
    let t = ProxyTarget::from_url(url("socks5://us%3Aer:p%40ss@p.local")).unwrap();
    let c = t.credentials.as_ref().unwrap();
    assert_eq!(
        (c.user.as_slice(), c.pass.as_slice()),
        (&b"us:er"[..], &b"p@ss"[..])
    );
    assert!(!format!("{t:?}").contains("p@ss") && !format!("{t:?}").contains("p%40ss"));
    assert_eq!(t.url.as_str(), "socks5://p.local:1080");
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
        let target = p.fixed_for(&url("http://a.example/")).unwrap();
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
            .fixed_for(&url("https://a.example/"))
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
