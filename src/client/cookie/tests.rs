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

// ---- CookieJar: the public handle ----

/// A `CookieJar`'s cookies for `to`, as a string.
fn jar_sent(jar: &CookieJar, to: &str) -> Option<String> {
    jar.cookies(&url(to))
        .map(|v| v.to_str().expect("ascii").to_owned())
}

/// The error `add` gives, checked to be `InvalidRequest` and never to show
/// the value `s3cr3t`.
fn refused(jar: &CookieJar, set_cookie: &str, from: &str) -> String {
    let err = jar
        .add(set_cookie, &url(from))
        .expect_err("the cookie should be refused");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cr3t"), "the value leaked: {shown}");
    err.to_string()
}

#[test]
fn cookie_jar_is_send_sync_and_clones_share() {
    fn send_sync<T: Send + Sync + Clone + Default + fmt::Debug>() {}
    send_sync::<CookieJar>();
    let jar = CookieJar::new();
    let other = jar.clone();
    other.add("a=1", &url("http://example.com/")).unwrap();
    assert_eq!(
        jar_sent(&jar, "http://example.com/").as_deref(),
        Some("a=1")
    );
    // A new jar shares nothing.
    assert_eq!(jar_sent(&CookieJar::default(), "http://example.com/"), None);
}

#[test]
fn cookie_jar_debug_shows_the_count_only() {
    let jar = CookieJar::new();
    assert_eq!(format!("{jar:?}"), "CookieJar { cookies: 0 }");
    jar.add("sid=s3cr3t", &url("http://example.com/")).unwrap();
    jar.add("other=s3cr3t; Path=/x", &url("http://example.com/"))
        .unwrap();
    assert_eq!(format!("{jar:?}"), "CookieJar { cookies: 2 }");
    assert_eq!(format!("{:?}", Some(jar)), "Some(CookieJar { cookies: 2 })");
}

#[test]
fn add_then_read_back() {
    let jar = CookieJar::new();
    let from = "https://www.example.com/shop/cart";
    jar.add("a=1", &url(from)).unwrap();
    jar.add("b=2; Path=/; Domain=example.com", &url(from))
        .unwrap();
    jar.add("c=3; Path=/shop; Secure; HttpOnly", &url(from))
        .unwrap();
    assert_eq!(
        jar_sent(&jar, "https://www.example.com/shop/x").as_deref(),
        Some("a=1; c=3; b=2")
    );
    // The same rules as cookies from responses: host-only, default path,
    // Secure only over https, Domain covers subdomains.
    assert_eq!(
        jar_sent(&jar, "http://www.example.com/shop/x").as_deref(),
        Some("a=1; b=2")
    );
    assert_eq!(
        jar_sent(&jar, "https://api.example.com/shop/x").as_deref(),
        Some("b=2")
    );
    assert_eq!(
        jar_sent(&jar, "https://www.example.com/").as_deref(),
        Some("b=2")
    );
    assert_eq!(jar_sent(&jar, "https://example.org/"), None);
    // `cookies` is what the client sends: the jar's `cookies_for`.
    assert_eq!(jar.cookies(&url(from)), jar.jar.cookies_for(&url(from)));
}

#[test]
fn add_replaces_and_deletes() {
    let jar = CookieJar::new();
    let from = "http://example.com/";
    jar.add("a=1", &url(from)).unwrap();
    jar.add("b=2", &url(from)).unwrap();
    jar.add("a=9", &url(from)).unwrap();
    assert_eq!(jar_sent(&jar, from).as_deref(), Some("a=9; b=2"));
    // An expired cookie deletes its namesake, and is no error.
    jar.add("a=; Max-Age=0", &url(from)).unwrap();
    assert_eq!(jar_sent(&jar, from).as_deref(), Some("b=2"));
    jar.add("b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", &url(from))
        .unwrap();
    assert_eq!(jar_sent(&jar, from), None);
    // Nor is one that deletes nothing.
    jar.add("gone=; Max-Age=0", &url(from)).unwrap();
    assert_eq!(jar.jar.store.lock().iter_any().count(), 0);
}

#[test]
fn add_accepts_a_public_suffix_that_is_the_host_as_host_only() {
    let jar = CookieJar::new();
    jar.add("h=1; Domain=github.io", &url("https://github.io/"))
        .unwrap();
    assert_eq!(jar_sent(&jar, "https://github.io/").as_deref(), Some("h=1"));
    assert_eq!(jar_sent(&jar, "https://x.github.io/"), None);
}

#[test]
fn add_secure_from_http_is_kept_for_https() {
    // As a response over http would: stored, sent over https only.
    let jar = CookieJar::new();
    jar.add("s=1; Secure", &url("http://example.com/")).unwrap();
    assert_eq!(jar_sent(&jar, "http://example.com/"), None);
    assert_eq!(
        jar_sent(&jar, "https://example.com/").as_deref(),
        Some("s=1")
    );
}

#[test]
fn add_refuses_public_suffix_domains() {
    let jar = CookieJar::new();
    let msg = refused(&jar, "sid=s3cr3t; Domain=com", "http://example.com/");
    assert!(msg.contains("public suffix"), "{msg}");
    assert!(msg.contains("\"sid\""), "the name is shown: {msg}");
    assert!(
        msg.contains("http://example.com/"),
        "the URL is shown: {msg}"
    );
    refused(
        &jar,
        "sid=s3cr3t; Domain=.CO.UK",
        "http://www.example.co.uk/",
    );
    refused(
        &jar,
        "sid=s3cr3t; Domain=github.io",
        "http://evil.github.io/",
    );
    assert_eq!(jar.jar.store.lock().iter_any().count(), 0);
}

#[test]
fn add_refuses_other_domains() {
    let jar = CookieJar::new();
    let msg = refused(&jar, "sid=s3cr3t; Domain=evil.com", "http://example.com/");
    assert!(msg.contains("does not domain-match"), "{msg}");
    assert!(msg.contains("evil.com"), "{msg}");
    refused(
        &jar,
        "sid=s3cr3t; Domain=www.example.com",
        "http://example.com/",
    );
    // Domain cookies are for names, not IP addresses.
    refused(&jar, "sid=s3cr3t; Domain=0.0.1", "http://127.0.0.1/");
    assert_eq!(jar.jar.store.lock().iter_any().count(), 0);
}

#[test]
fn add_refuses_what_does_not_parse() {
    let jar = CookieJar::new();
    let from = "http://example.com/";
    let msg = refused(&jar, "s3cr3t", from);
    assert!(msg.contains("does not parse"), "{msg}");
    refused(&jar, "=s3cr3t", from);
    refused(&jar, "", from);
    let msg = refused(&jar, "k=s3cr3t\u{e9}", from);
    assert!(msg.contains("not visible ASCII"), "{msg}");
    refused(&jar, "k=s3cr3t\u{1}", from);
    refused(&jar, "k=s3cr3t\r\nX-Injected: 1", from);
    assert_eq!(jar.jar.store.lock().iter_any().count(), 0);
}

#[test]
fn add_refuses_non_http_urls() {
    let jar = CookieJar::new();
    let msg = refused(&jar, "k=s3cr3t", "ftp://example.com/");
    assert!(msg.contains("http and https"), "{msg}");
    refused(&jar, "k=s3cr3t", "file:///tmp/x");
    refused(&jar, "k=s3cr3t", "data:text/plain,x");
}

/// The stored cookie `name` of a jar.
fn stored(jar: &CookieJar, name: &str) -> Option<Cookie<'static>> {
    jar.jar
        .store
        .lock()
        .iter_any()
        .find(|c| c.name() == name)
        .cloned()
}

fn saved(jar: &CookieJar) -> Vec<u8> {
    let mut out = Vec::new();
    jar.save_json(&mut out).unwrap();
    out
}

#[test]
fn save_and_load_keep_persistent_cookies_as_they_were() {
    let jar = CookieJar::new();
    let from = "https://www.example.com/app/page";
    jar.add("host=1; Max-Age=3600", &url(from)).unwrap();
    jar.add(
        "dom=2; Domain=example.com; Path=/; Secure; HttpOnly; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
        &url(from),
    )
    .unwrap();
    jar.add("deep=3; Path=/app/deep; Max-Age=86400", &url(from))
        .unwrap();
    jar.add("session=4; Path=/", &url(from)).unwrap();
    jar.add("session2=5; Domain=example.com", &url(from))
        .unwrap();

    let loaded = CookieJar::load_json(&saved(&jar)[..]).unwrap();
    assert_eq!(format!("{loaded:?}"), "CookieJar { cookies: 3 }");
    for name in ["host", "dom", "deep"] {
        let (a, b) = (stored(&jar, name).unwrap(), stored(&loaded, name).unwrap());
        assert_eq!(a.name_value(), b.name_value(), "{name}");
        assert_eq!(a.domain, b.domain, "{name}");
        assert_eq!(String::from(&*a.path), String::from(&*b.path), "{name}");
        assert_eq!(a.secure(), b.secure(), "{name}");
        assert_eq!(a.http_only(), b.http_only(), "{name}");
        // To the second (CookieExpiration's equality).
        assert_eq!(a.expires, b.expires, "{name}");
        assert!(b.is_persistent(), "{name}");
    }
    assert!(matches!(
        stored(&loaded, "host").unwrap().domain,
        CookieDomain::HostOnly(ref h) if h == "www.example.com"
    ));
    assert!(stored(&loaded, "session").is_none());
    assert!(stored(&loaded, "session2").is_none());

    // And they are sent as before, Secure over https only.
    assert_eq!(
        jar_sent(&loaded, "https://www.example.com/app/deep/x").as_deref(),
        Some("deep=3; host=1; dom=2")
    );
    assert_eq!(
        jar_sent(&loaded, "http://www.example.com/app/x").as_deref(),
        Some("host=1")
    );
    assert_eq!(
        jar_sent(&loaded, "https://api.example.com/").as_deref(),
        Some("dom=2")
    );
    // A loaded jar is a new one: nothing shared with the saved jar.
    loaded.add("new=1", &url(from)).unwrap();
    assert!(stored(&jar, "new").is_none());
    // Saving the loaded jar gives the same file.
    assert_eq!(saved(&loaded).len(), saved(&jar).len());
}

#[test]
fn save_of_an_empty_or_session_only_jar_loads_as_empty() {
    let jar = CookieJar::new();
    jar.add("s=1", &url("http://example.com/")).unwrap();
    let out = saved(&jar);
    assert_eq!(String::from_utf8(out.clone()).unwrap().trim(), "[]");
    let loaded = CookieJar::load_json(&out[..]).unwrap();
    assert_eq!(format!("{loaded:?}"), "CookieJar { cookies: 0 }");
}

/// A saved cookie in cookie_store's JSON format.
fn saved_cookie(raw: &str, domain: &str, expires: &str) -> String {
    format!(
        r#"{{"raw_cookie": "{raw}", "path": ["/", true], "domain": {domain}, "expires": {expires}}}"#
    )
}

#[test]
fn load_drops_expired_public_suffix_and_unsendable_cookies() {
    let future = r#"{"AtUtc": "2100-08-03T00:38:37Z"}"#;
    let json = format!(
        "[{}, {}, {}, {}, {}]",
        saved_cookie("ok=1; Path=/", r#"{"HostOnly": "example.com"}"#, future),
        saved_cookie(
            "old=1; Path=/",
            r#"{"HostOnly": "example.com"}"#,
            r#"{"AtUtc": "2000-08-03T00:38:37Z"}"#
        ),
        // A file edited to reach every .co.uk or .com site.
        saved_cookie("wide=1; Path=/", r#"{"Suffix": "co.uk"}"#, future),
        saved_cookie("wide2=1; Path=/", r#"{"Suffix": "com"}"#, future),
        saved_cookie(
            "bad=\\u0001; Path=/",
            r#"{"HostOnly": "example.com"}"#,
            future
        ),
    );
    let loaded = CookieJar::load_json(json.as_bytes()).unwrap();
    assert_eq!(format!("{loaded:?}"), "CookieJar { cookies: 1 }");
    assert_eq!(
        jar_sent(&loaded, "http://example.com/").as_deref(),
        Some("ok=1")
    );
    assert_eq!(jar_sent(&loaded, "http://www.bbc.co.uk/"), None);
    assert_eq!(jar_sent(&loaded, "http://other.com/"), None);
    // A registrable domain is fine.
    let json = format!(
        "[{}]",
        saved_cookie("d=1; Path=/", r#"{"Suffix": "example.co.uk"}"#, future)
    );
    let loaded = CookieJar::load_json(json.as_bytes()).unwrap();
    assert_eq!(
        jar_sent(&loaded, "http://shop.example.co.uk/").as_deref(),
        Some("d=1")
    );
    // A loaded jar still refuses public suffixes from responses.
    set(
        &loaded.jar,
        "http://www.example.co.uk/",
        &["x=1; Domain=co.uk"],
    );
    assert_eq!(jar_sent(&loaded, "http://other.co.uk/"), None);
}

/// `load_json`'s error, checked to be `InvalidRequest` and never to quote
/// the input.
fn load_refused(input: &[u8]) -> String {
    let err = CookieJar::load_json(input).expect_err("the input should be refused");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cr3t"), "the input leaked: {shown}");
    err.to_string()
}

#[test]
fn load_of_malformed_json_is_invalid_request() {
    let msg = load_refused(b"{not json");
    assert!(msg.contains("(line 1 column "), "{msg}");
    load_refused(b"");
    load_refused(b"{}");
    load_refused(b"[1, 2]");
    load_refused(b"[\"sid=s3cr3t\"]");
    // A cookie that does not parse, a field of the wrong type.
    let msg = load_refused(
        br#"[{"raw_cookie": "s3cr3t", "path": ["/", true], "domain": {"HostOnly": "a.com"}, "expires": "SessionEnd"}]"#,
    );
    assert!(msg.contains("line 1 column"), "{msg}");
    load_refused(
        br#"[{"raw_cookie": "sid=s3cr3t", "path": "s3cr3t", "domain": {"HostOnly": "a.com"}, "expires": "SessionEnd"}]"#,
    );
    load_refused(b"[\xff\xfe]");
    // Truncated output of save_json.
    let jar = CookieJar::new();
    jar.add("sid=s3cr3t; Max-Age=60", &url("http://example.com/"))
        .unwrap();
    let out = saved(&jar);
    load_refused(&out[..out.len() / 2]);
}

struct Broken;

impl std::io::Read for Broken {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "no",
        ))
    }
}

impl std::io::Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn io_failures_are_kind_io() {
    let err = CookieJar::load_json(std::io::BufReader::new(Broken)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::PermissionDenied
    );
    let jar = CookieJar::new();
    jar.add("sid=1; Max-Age=60", &url("http://example.com/"))
        .unwrap();
    let err = jar.save_json(&mut Broken).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::StorageFull
    );
}

#[test]
fn json_position_takes_only_the_position() {
    let e: Box<dyn StdError> =
        "invalid value: string \"sid=s3cr3t\", expected x at line 3 column 17".into();
    assert_eq!(json_position(&*e).as_deref(), Some("line 3 column 17"));
    let e: Box<dyn StdError> = "stream did not contain valid UTF-8".into();
    assert_eq!(json_position(&*e), None);
    let e: Box<dyn StdError> = "x at line s3cr3t column 1".into();
    assert_eq!(json_position(&*e), None);
}
