//! The optional `json` feature: `cargo test --features json --test json`.
#![cfg(feature = "json")]

mod support;

use nethttp::{ErrorKind, Transport};
use serde_json::{Value, json};
use support::*;

#[test]
fn json_body_out_and_back() {
    let server = InteropServer::start(1);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let sent = json!({"name": "nethttp", "threads": 2, "tags": ["blocking", "go"]});
    let back: Value = c
        .post(server.url("/echo"))
        .json(&sent)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(back, sent);
}

#[test]
fn a_json_decode_error_keeps_serde_s_error_as_its_source() {
    use std::error::Error as _;
    let server = InteropServer::start(1);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let err = c
        .get(server.url("/hello"))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyRead, "{err}");
    let serde = err
        .source()
        .and_then(|s| s.downcast_ref::<serde_json::Error>())
        .unwrap_or_else(|| panic!("no serde_json::Error source: {err:?}"));
    assert!(serde.is_syntax(), "{serde}");
    assert!(!err.to_string().contains(&serde.to_string()), "{err}");
}
