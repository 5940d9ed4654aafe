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
