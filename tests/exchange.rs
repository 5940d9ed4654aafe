//! Around the exchange: `RoundTripper` middleware and mocks under the
//! client's redirects, cookies and deadline; `Response::from_http`,
//! `into_http` and `Request: TryFrom<http::Request>`; `error_for_status`;
//! `bearer_auth` and `user_agent` on the wire. Real sockets on 127.0.0.1
//! (scripted servers) wherever a network is involved; every transport ends
//! with a leak check.

mod support;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use nethttp::{
    Client, Error, ErrorKind, Request, Response, RoundTripper, Transport, Url, http,
    http::{Method, StatusCode},
};
use support::*;

/// One canned answer: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, &'static str);

/// What a mock saw of one request: method, URL, headers, timeout.
type Seen = (Method, String, http::HeaderMap, Option<Duration>);

/// A mock: answers from a script by call number, and records each
/// request it saw.
struct Mock {
    answers: Vec<Answer>,
    seen: Mutex<Vec<Seen>>,
}

impl Mock {
    fn new(answers: Vec<Answer>) -> Arc<Mock> {
        Arc::new(Mock {
            answers,
            seen: Mutex::new(Vec::new()),
        })
    }
}

impl RoundTripper for Mock {
    fn round_trip(&self, req: Request) -> nethttp::Result<Response> {
        let mut seen = self.seen.lock().unwrap();
        let n = seen.len();
        seen.push((
            req.method().clone(),
            req.url().to_string(),
            req.headers().clone(),
            req.timeout(),
        ));
        let Some((status, headers, body)) = self.answers.get(n) else {
            return Err(Error::new(ErrorKind::Connect, "mock: no more answers"));
        };
        let mut resp = http::Response::builder().status(*status);
        for (k, v) in headers {
            resp = resp.header(*k, v.as_str());
        }
        let resp = resp.body(body.as_bytes()).unwrap();
        Ok(Response::from_http(resp, req.url().clone()))
    }
}

#[test]
fn a_mock_sits_under_the_clients_redirects_cookies_and_deadline() {
    let mock = Mock::new(vec![
        (
            302,
            vec![
                ("location", "/next".to_string()),
                ("set-cookie", "session=abc; Path=/".to_string()),
            ],
            "moved",
        ),
        (200, vec![("content-length", "4".to_string())], "done"),
    ]);
    let client = Client::builder()
        .round_tripper(mock.clone())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .user_agent("mock-test/1")
        .build()
        .unwrap();
    let resp = client.get("http://mock.invalid/start").send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.url().as_str(), "http://mock.invalid/next");
    assert_eq!(resp.content_length(), Some(4));
    assert_eq!(resp.text().unwrap(), "done");
    let seen = mock.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "the client followed the redirect itself");
    assert_eq!(seen[1].1, "http://mock.invalid/next");
    assert_eq!(seen[1].2["cookie"], "session=abc", "the client's jar");
    assert_eq!(seen[0].2["user-agent"], "mock-test/1");
    for (_, _, _, timeout) in seen.iter() {
        let t = timeout.expect("the deadline travels as the request's timeout");
        assert!(
            t <= Duration::from_secs(30) && t > Duration::from_secs(20),
            "{t:?}"
        );
    }
    // The client's own transport is still there, untouched.
    assert_eq!(client.transport().stats().conns, 0);
}

#[test]
fn a_mock_error_carries_the_url() {
    let client = Client::builder()
        .round_tripper(Mock::new(vec![]))
        .build()
        .unwrap();
    let err = client.get("http://mock.invalid/x").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.url().map(Url::as_str), Some("http://mock.invalid/x"));
}

/// Retries 503 answers with a doubling backoff, at most `tries` times:
/// the middleware of the README and `examples/retry.rs`, in miniature.
struct Retry {
    inner: Transport,
    tries: u32,
    attempts: AtomicUsize,
}

impl RoundTripper for Retry {
    fn round_trip(&self, req: Request) -> nethttp::Result<Response> {
        let mut backoff = Duration::from_millis(10);
        for attempt in 1..=self.tries {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            let Some(this) = req.try_clone() else {
                return self.inner.round_trip(req);
            };
            let resp = self.inner.round_trip(this)?;
            assert_eq!(resp.url().path(), "/flaky");
            if resp.status() != StatusCode::SERVICE_UNAVAILABLE || attempt == self.tries {
                return Ok(resp);
            }
            resp.discard()?; // read to the end: the connection is reused
            std::thread::sleep(backoff);
            backoff *= 2;
        }
        Err(Error::new(ErrorKind::Io, "retry: no attempt made"))
    }
}

#[test]
fn a_retrying_middleware_wraps_a_real_transport() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = ScriptedServer::start(move |mut conn| {
        while conn.read_request().is_some() {
            if c.fetch_add(1, Ordering::SeqCst) < 2 {
                conn.write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
            } else {
                conn.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        }
    });
    let transport = Transport::new();
    let _leaks = LeakCheck::new(&transport);
    let retry = Retry {
        inner: transport.clone(),
        tries: 5,
        attempts: AtomicUsize::new(0),
    };
    let client = Client::builder().round_tripper(retry).build().unwrap();
    let resp = client
        .get(server.url("/flaky"))
        .header("x-id", "7")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "ok");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(server.accepted(), 1, "the drained 503s kept the connection");
}

#[test]
fn a_deadline_spent_before_the_round_tripper_runs_is_a_timeout() {
    struct Slow;
    impl RoundTripper for Slow {
        fn round_trip(&self, req: Request) -> nethttp::Result<Response> {
            std::thread::sleep(Duration::from_millis(300));
            let resp = http::Response::builder()
                .status(301)
                .header("location", "/again")
                .body(std::io::empty())
                .unwrap();
            Ok(Response::from_http(resp, req.url().clone()))
        }
    }
    let client = Client::builder()
        .round_tripper(Slow)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.get("http://mock.invalid/").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn error_for_status_splits_4xx_and_5xx_from_the_rest() {
    let server = ScriptedServer::start(|mut conn| {
        while let Some((head, _)) = conn.read_request() {
            let status = head.split_whitespace().nth(1).unwrap_or("/200")[1..].to_string();
            conn.write(format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n"));
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    for code in [200u16, 204, 304, 404, 418, 500, 503] {
        let res = client
            .get(server.url(&format!("/{code}")))
            .send()
            .unwrap()
            .error_for_status();
        match code {
            400..=599 => {
                let err = res.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Status);
                assert_eq!(err.status(), Some(StatusCode::from_u16(code).unwrap()));
                assert_eq!(
                    err.url().map(|u| u.path().to_string()),
                    Some(format!("/{code}"))
                );
                assert!(err.to_string().contains(&code.to_string()), "{err}");
            }
            _ => assert_eq!(res.unwrap().status().as_u16(), code),
        }
    }
    assert_eq!(Error::new(ErrorKind::Io, "x").status(), None);
}

#[test]
fn bearer_auth_and_user_agent_reach_the_wire() {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h = heads.clone();
    let server = ScriptedServer::start(move |mut conn| {
        while let Some((head, _)) = conn.read_request() {
            h.lock().unwrap().push(head.to_ascii_lowercase());
            conn.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder()
        .transport(t.clone())
        .user_agent("agent/2")
        .user_agent("agent/3")
        .build()
        .unwrap();
    c.get(server.url("/a")).bearer_auth("tok-1").send().unwrap();
    c.get(server.url("/b"))
        .header("user-agent", "mine/1")
        .send()
        .unwrap();
    let heads = heads.lock().unwrap();
    assert_eq!(
        header_value(&heads[0], "authorization"),
        Some("bearer tok-1")
    );
    assert_eq!(
        header_value(&heads[0], "user-agent"),
        Some("agent/3"),
        "the last one wins"
    );
    assert_eq!(heads[0].matches("user-agent").count(), 1);
    assert_eq!(
        header_value(&heads[1], "user-agent"),
        Some("mine/1"),
        "the request's own wins"
    );
    let bad = c
        .get(server.url("/c"))
        .bearer_auth("a\r\nb")
        .send()
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidRequest);
    assert!(!bad.to_string().contains("a\r\nb"));
    let bad_ua = Client::builder().user_agent("x\ny").build().unwrap_err();
    assert_eq!(bad_ua.kind(), ErrorKind::InvalidRequest);
}

#[test]
fn http_crate_requests_and_responses_convert_both_ways() {
    let server = ScriptedServer::start(|mut conn| {
        while let Some((head, body)) = conn.read_request() {
            let lower = head.to_ascii_lowercase();
            let echo = format!(
                "{} {} {}",
                head.split_whitespace().next().unwrap_or(""),
                header_value(&lower, "x-tag").unwrap_or("-"),
                String::from_utf8_lossy(&body)
            );
            conn.write(format!(
                "HTTP/1.1 201 Created\r\nX-Reply: yes\r\nContent-Length: {}\r\n\r\n{echo}",
                echo.len()
            ));
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let req = http::Request::put(server.url("/thing"))
        .header("x-tag", "t1")
        .body("payload")
        .unwrap();
    let req = Request::try_from(req).unwrap();
    assert_eq!(req.method(), Method::PUT);
    let resp = client(&t).execute(req).unwrap().into_http();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["x-reply"], "yes");
    assert_eq!(
        resp.extensions().get::<Url>().map(Url::path),
        Some("/thing")
    );
    let mut body = String::new();
    std::io::Read::read_to_string(&mut resp.into_body(), &mut body).unwrap();
    assert_eq!(body, "PUT t1 payload");
    // A URI without scheme and host cannot be sent.
    let relative = http::Request::get("/only/a/path").body(()).unwrap();
    let err = Request::try_from(relative.map(|()| "")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
}
