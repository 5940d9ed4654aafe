//! The basic flows end to end, kept small: a first look when something
//! breaks, before the larger suites.

mod support;

use std::{io::Read, time::Duration};

use support::*;

#[test]
fn get_reuse_and_early_close() {
    let server = InteropServer::start(2);
    let t = nethttp::Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = nethttp::Client::builder()
        .transport(t.clone())
        .build()
        .unwrap();
    let rec = Recorder::new();

    for _ in 0..3 {
        let resp = client
            .get(server.url("/hello"))
            .trace(rec.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().unwrap(), "hello, world!");
    }
    let reused: Vec<bool> = rec.conns().iter().map(|c| c.reused).collect();
    assert_eq!(reused, [false, true, true]);
    let s = wait_stats(&t, Duration::from_secs(5), |s| s.threads == 2);
    assert_eq!((s.conns, s.idle, s.in_use), (1, 1, 0));

    // Dropped unread: the connection closes and both threads exit.
    let mut resp = client.get(server.url("/bytes/100000")).send().unwrap();
    let mut first = [0u8; 10];
    resp.read_exact(&mut first).unwrap();
    assert_eq!(t.stats().in_use, 1);
    drop(resp);
    assert_eq!(t.stats().in_use, 0);
    wait_stats(&t, Duration::from_secs(5), |s| {
        s.threads == 0 && s.conns == 0
    });
}
