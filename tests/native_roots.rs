//! The `native-roots` feature: `cargo test --features native-roots --test native_roots`.
//!
//! rustls-native-certs reads `SSL_CERT_FILE` in place of the system store.
//! Setting the environment needs `unsafe` in edition 2024 (forbidden
//! here), so the test runs itself again as a child process with the
//! variable set, against a server this process runs.
#![cfg(feature = "native-roots")]

mod support;

use std::{env, process::Command, time::Duration};

use nethttp::{Client, ErrorKind, Transport};
use support::{LeakCheck, tls};

const CHILD_URL: &str = "NETHTTP_NATIVE_ROOTS_URL";

#[test]
fn trusts_the_platform_store_it_is_pointed_at() {
    if let Some(url) = env::var_os(CHILD_URL) {
        return child(url.to_str().unwrap());
    }
    let (ca, leaf) = tls::pki();
    let server = tls::TlsServer::start(leaf.server_config(), |mut c| {
        while c.read_head().is_some() {
            if c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nnative")
                .is_err()
            {
                return;
            }
        }
    });
    let dir = env::temp_dir().join(format!("nethttp-native-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("ca.pem");
    std::fs::write(&pem, ca.cert_pem()).unwrap();

    let mut child = Command::new(env::current_exe().unwrap())
        .args([
            "--exact",
            "trusts_the_platform_store_it_is_pointed_at",
            "--nocapture",
        ])
        .env("SSL_CERT_FILE", &pem)
        .env_remove("SSL_CERT_DIR")
        .env(CHILD_URL, server.url("/"))
        .spawn()
        .unwrap();
    let ok = support::wait_until(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ok {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok && status.success(), "child failed: {status:?}");
    assert_eq!(server.accepted(), 1);

    // Here, without SSL_CERT_FILE, the default (webpki) roots do not know
    // the test CA.
    let plain = Transport::new();
    let _leaks = LeakCheck::new(&plain);
    let c = Client::builder().transport(plain.clone()).build().unwrap();
    assert_eq!(
        c.get(server.url("/")).send().unwrap_err().kind(),
        ErrorKind::Tls
    );
}

fn child(url: &str) {
    let t = Transport::builder().native_roots(true).build();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder().transport(t.clone()).build().unwrap();
    assert_eq!(c.get(url).send().unwrap().text().unwrap(), "native");
}
