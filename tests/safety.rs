//! API.md's "Safety rules": passwords never leave in text, callbacks that
//! panic leak nothing, body size limits, the thread stack floor.

mod support;
use support::*;

use nethttp::{Client, ErrorKind, Redirect, RedirectAction, RedirectPolicy, Request, Transport};

/// Asserts that `text` shows the user but never the password.
#[track_caller]
fn assert_redacted(what: &str, text: &str) {
    assert!(
        !text.contains("s3cret"),
        "{what} leaks the password: {text}"
    );
    assert!(text.contains("ann:***@"), "{what} hides the URL: {text}");
}

#[test]
fn passwords_never_show_in_errors_requests_or_responses() {
    // A port nothing listens on: a connect error that names the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://ann:s3cret@127.0.0.1:{port}/x");
    let err = Client::new().get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_redacted("Error's Display", &err.to_string());
    assert_redacted("Error's Debug", &format!("{err:?}"));
    // The URL itself is given back as it was.
    assert_eq!(err.url().map(|u| u.password()), Some(Some("s3cret")));

    let req = Request::builder(nethttp::http::Method::GET, &url)
        .build()
        .unwrap();
    assert_redacted("Request's Debug", &format!("{req:?}"));

    let server = ok_server("hi");
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let url = format!("http://ann:s3cret@{}/y", server.addr);
    let resp = client(&t).get(&url).send().unwrap();
    assert_redacted("Response's Debug", &format!("{resp:?}"));
    resp.discard().unwrap();

    // A URL that does not parse is quoted without its password.
    let err = Client::new()
        .get("http://ann:s3cret@[::1/")
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
}

#[test]
fn passwords_never_show_in_redirects() {
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            if head.starts_with("GET /from ") {
                c.write("HTTP/1.1 302 Found\r\nLocation: /to\r\nContent-Length: 0\r\n\r\n");
            } else {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        }
    });
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let s = seen.clone();
    let policy = RedirectPolicy::custom(move |r: &Redirect| {
        *s.lock().unwrap() = format!("{r:?}");
        RedirectAction::Error(format!("stop at {}", r.status()))
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder()
        .transport(t.clone())
        .redirect(policy)
        .build()
        .unwrap();
    let url = format!("http://ann:s3cret@{}/from", server.addr);
    let err = c.get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_redacted("Redirect's Debug", &seen.lock().unwrap());
    assert_redacted("redirect error", &err.to_string());
}
