//! The optional `json` feature: `cargo test --features json --test json`.
#![cfg(feature = "json")]

mod support;

use nethttp::{Client, ErrorKind, Transport};
use serde_json::{Value, json};
use support::*;

#[test]
fn json_body_out_and_back() {
    let server = InteropServer::start(1);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder().transport(t.clone()).build().unwrap();
    let sent = json!({"name": "nethttp", "threads": 2, "tags": ["blocking", "go"]});
    let back: Value = c
        .post(server.url("/echo"))
        .json(&sent)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(back, sent);
    let err = c
        .get(server.url("/hello"))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyRead, "{err}");
}
