//! The optional `multipart` feature: `cargo test --features multipart --test multipart`.
//!
//! Forms go to a real, independent parser: [`FormPeer`] is a python3
//! `http.server` that reads the body (Content-Length or chunked, which it
//! decodes itself) and parses it with Python's own MIME parser (the
//! `email` package), answering JSON. The exact bytes on the wire are
//! checked against a scripted raw-TCP server.
#![cfg(feature = "multipart")]

mod support;

use std::{
    io::{self, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use nethttp::{
    ErrorKind, Transport,
    http::StatusCode,
    multipart::{Form, Part},
};
use serde_json::Value;
use support::{LeakCheck, ScriptedServer, XorShift, bounded, client, h2::read_port, header_value};

/// How long the python peer may take to start, and every test's bound.
const LIMIT: Duration = Duration::from_secs(30);

/// The peer: POST anywhere is parsed and described as JSON; POST
/// `/redirect/CODE` reads the body and answers CODE to `/parse`.
const PEER: &str = r#"
import email.parser, email.policy, hashlib, json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                if self.rfile.read(2) != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_POST(self):
        body = self.read_body()
        if self.path.startswith("/redirect/"):
            code = int(self.path.split("/")[2])
            self.send_response(code)
            self.send_header("Location", "/parse?after=%d" % code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ctype = self.headers.get("Content-Type", "")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
        parts = []
        for p in (msg.iter_parts() if msg.is_multipart() else []):
            data = p.get_payload(decode=True)
            parts.append({
                "name": p.get_param("name", header="content-disposition"),
                "filename": p.get_filename(),
                # As sent (the parsed header object would re-quote it).
                "content_type": dict((k.lower(), v) for k, v in p.raw_items()).get("content-type"),
                "ct_params": dict(p.get_params()[1:]) if "Content-Type" in p else None,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "text": data.decode("utf-8", "replace") if len(data) <= 4096 else None,
                "defects": [repr(d) for d in p.defects],
            })
        reply = json.dumps({
            "path": self.path,
            "content_type": ctype,
            "content_length": self.headers.get("Content-Length"),
            "transfer_encoding": self.headers.get("Transfer-Encoding"),
            "body_len": len(body),
            "multipart": msg.is_multipart(),
            "boundary": msg.get_boundary(),
            "defects": [repr(d) for d in msg.defects],
            "preamble": msg.preamble,
            "parts": parts,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("PORT %d" % server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()  # until the test drops us (or dies)
server.shutdown()
"#;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nethttp-multipart-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The python peer ([`PEER`]) on 127.0.0.1; killed on drop, and it exits
/// by itself when the test process dies (its stdin closes).
struct FormPeer {
    port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    _dir: TempDir,
}

impl FormPeer {
    /// `None` (after a skip message) when python3 is missing; panics
    /// under CI then, and whenever the peer does not start.
    fn start(test: &str) -> Option<FormPeer> {
        if !support::peer_available(
            "python3",
            &["-c", "import email.parser, http.server"],
            "python3",
            test,
        ) {
            return None;
        }
        let dir = TempDir::new();
        let script = dir.join("form_peer.py");
        std::fs::write(&script, PEER).expect("write form_peer.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3 form_peer.py");
        let stdin = child.stdin.take();
        let Some(port) = read_port(child.stdout.take().expect("peer stdout"), LIMIT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("form_peer.py did not print its port within {LIMIT:?}");
        };
        Some(FormPeer {
            port,
            child,
            stdin,
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for FormPeer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SHA-256 of `data` in hex, by python's hashlib (no hash crate here).
fn sha256(data: &[u8]) -> String {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("python3 hashlib");
    writer.join().expect("writer").expect("write to python3");
    String::from_utf8(out.stdout)
        .expect("hex")
        .trim()
        .to_string()
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// POSTs `form` to `url` through a fresh transport (leak-checked) and
/// returns the status and the peer's JSON (Null when not 200).
fn post(url: String, form: Form) -> (StatusCode, Value) {
    bounded("post form", LIMIT, move || {
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let resp = client(&t)
            .post(url)
            .multipart(form)
            .send()
            .expect("send form");
        let status = resp.status();
        let body = resp.bytes().expect("read reply");
        let json = if status == StatusCode::OK {
            serde_json::from_slice(&body).expect("peer JSON")
        } else {
            Value::Null
        };
        (status, json)
    })
}

/// The parts the peer saw, checking the envelope on the way: a multipart
/// body with our boundary, no defects anywhere, no preamble.
fn parts<'a>(reply: &'a Value, boundary: &str) -> &'a [Value] {
    assert_eq!(reply["multipart"], true, "{reply:#}");
    assert_eq!(reply["boundary"], boundary);
    assert_eq!(
        reply["content_type"],
        format!("multipart/form-data; boundary={boundary}")
    );
    assert_eq!(reply["defects"], Value::Array(vec![]), "{reply:#}");
    assert!(reply["preamble"].is_null(), "{reply:#}");
    let parts = reply["parts"].as_array().expect("parts");
    for p in parts {
        assert_eq!(p["defects"], Value::Array(vec![]), "{p:#}");
    }
    parts
}

#[test]
fn text_fields_reach_python_s_parser_with_their_names_and_values() {
    let Some(peer) = FormPeer::start("text_fields") else {
        return;
    };
    let fields = [
        ("plain", "hello"),
        ("ünïcødé 名前", "värde ✓ 🚀"),
        ("quo\"ted", "with \"quotes\" inside"),
        ("back\\slash\\", "C:\\dir\\"),
        ("semi;colon = x", "a; b"),
        ("line\r\nbreak", "multi\r\nline\nvalue\r\n"),
        ("empty", ""),
    ];
    let mut form = Form::new();
    for (k, v) in fields {
        form = form.text(k, v);
    }
    let boundary = form.boundary().to_string();
    let declared = form.content_length().expect("all in memory");
    let (status, reply) = post(peer.url("/parse"), form);
    assert_eq!(status, StatusCode::OK);
    let parts = parts(&reply, &boundary);
    assert_eq!(reply["content_length"], declared.to_string());
    assert_eq!(reply["body_len"], declared);
    assert!(reply["transfer_encoding"].is_null());
    assert_eq!(parts.len(), fields.len());
    for (p, (k, v)) in parts.iter().zip(fields) {
        // The documented rule: `\` and `"` come back as sent (backslash
        // escapes), CR and LF as `%0D` / `%0A`.
        let want_name = k.replace('\r', "%0D").replace('\n', "%0A");
        assert_eq!(p["name"], want_name.as_str(), "{p:#}");
        assert_eq!(p["text"], v, "{p:#}");
        assert_eq!(p["size"], v.len());
        assert!(p["filename"].is_null(), "{p:#}");
        assert!(p["content_type"].is_null(), "text fields carry none: {p:#}");
    }
}

#[test]
fn a_5_mb_file_is_streamed_byte_exact_with_a_content_length() {
    let Some(peer) = FormPeer::start("five_mb_file") else {
        return;
    };
    let dir = TempDir::new();
    let big = random_bytes(5 << 20, 7);
    let big_path = dir.join("upload.bin");
    std::fs::write(&big_path, &big).expect("write upload.bin");
    let png_path = dir.join("Tiny Photo \"1\".PNG");
    std::fs::write(&png_path, b"\x89PNG\r\n\x1a\n").expect("write png");
    let csv_path = dir.join("data.txt");
    std::fs::write(&csv_path, b"a,b\r\n1,2\r\n").expect("write csv");

    let form = Form::new()
        .text("title", "five megabytes")
        .file("upload", &big_path)
        .expect("open upload.bin")
        .file("photo", &png_path)
        .expect("open png")
        .part(
            "table",
            Part::file(&csv_path)
                .expect("open data.txt")
                .file_name("renamed.csv")
                .mime_str("text/csv; header=present")
                .expect("mime"),
        );
    let boundary = form.boundary().to_string();
    let declared = form.content_length().expect("regular files have lengths");
    assert!(declared > 5 << 20);
    let (status, reply) = post(peer.url("/parse"), form);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["content_length"], declared.to_string());
    assert_eq!(reply["body_len"], declared);
    let parts = parts(&reply, &boundary);
    assert_eq!(parts.len(), 4);

    assert_eq!(parts[0]["name"], "title");
    assert_eq!(parts[0]["text"], "five megabytes");

    let up = &parts[1];
    assert_eq!(up["name"], "upload");
    assert_eq!(up["filename"], "upload.bin");
    assert_eq!(up["content_type"], "application/octet-stream");
    assert_eq!(up["size"], big.len());
    assert_eq!(up["sha256"], sha256(&big).as_str());

    let photo = &parts[2];
    assert_eq!(photo["filename"], "Tiny Photo \"1\".PNG");
    assert_eq!(photo["content_type"], "image/png");
    assert_eq!(photo["sha256"], sha256(b"\x89PNG\r\n\x1a\n").as_str());

    let table = &parts[3];
    assert_eq!(table["filename"], "renamed.csv");
    assert_eq!(table["content_type"], "text/csv; header=present");
    assert_eq!(table["ct_params"]["header"], "present");
    assert_eq!(table["text"], "a,b\r\n1,2\r\n");
}

#[test]
fn a_reader_part_with_a_length_is_sent_with_content_length() {
    let Some(peer) = FormPeer::start("reader_known") else {
        return;
    };
    let data = random_bytes(300_000, 11);
    let form = Form::new().text("k", "v").part(
        "blob",
        Part::reader(io::Cursor::new(data.clone()), Some(data.len() as u64)).file_name("blob.gif"),
    );
    let boundary = form.boundary().to_string();
    let declared = form.content_length().expect("known");
    let (status, reply) = post(peer.url("/parse"), form);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["content_length"], declared.to_string());
    assert!(reply["transfer_encoding"].is_null());
    let parts = parts(&reply, &boundary);
    assert_eq!(parts[1]["filename"], "blob.gif");
    assert_eq!(parts[1]["content_type"], "image/gif");
    assert_eq!(parts[1]["size"], data.len());
    assert_eq!(parts[1]["sha256"], sha256(&data).as_str());
}

#[test]
fn a_reader_part_without_a_length_makes_the_body_chunked() {
    let Some(peer) = FormPeer::start("reader_unknown") else {
        return;
    };
    let data = random_bytes(1_000_003, 13);
    let form = Form::new()
        .part("first", Part::reader(io::Cursor::new(data.clone()), None))
        .text("after", "the stream")
        .part("empty", Part::reader(io::empty(), None).file_name("e.json"));
    let boundary = form.boundary().to_string();
    assert_eq!(form.content_length(), None);
    let (status, reply) = post(peer.url("/parse"), form);
    assert_eq!(status, StatusCode::OK);
    assert!(reply["content_length"].is_null(), "{reply:#}");
    assert_eq!(reply["transfer_encoding"], "chunked");
    let parts = parts(&reply, &boundary);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0]["name"], "first");
    assert!(parts[0]["content_type"].is_null());
    assert_eq!(parts[0]["size"], data.len());
    assert_eq!(parts[0]["sha256"], sha256(&data).as_str());
    assert_eq!(parts[1]["text"], "the stream");
    assert_eq!(parts[2]["filename"], "e.json");
    assert_eq!(parts[2]["content_type"], "application/json");
    assert_eq!(parts[2]["size"], 0);
}

/// What a [`ScriptedServer`] saw of one request: its head, and the body
/// of exactly Content-Length bytes, and whether anything followed it.
struct Seen {
    head: String,
    body: Vec<u8>,
    extra: bool,
}

/// A server that reads one request's head and Content-Length body,
/// checks that nothing more arrives, and answers 200.
fn recording_server() -> (ScriptedServer, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let server = ScriptedServer::start(move |mut c| {
        let Some(head) = c.read_head() else { return };
        let len: usize = header_value(&head.to_ascii_lowercase(), "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = c.read_body(len).unwrap_or_default();
        let _ = c.stream.set_read_timeout(Some(Duration::from_millis(200)));
        let extra = c.reader.read(&mut [0u8; 1]).is_ok_and(|n| n > 0);
        let _ = tx.lock().expect("tx").send(Seen { head, body, extra });
        c.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    });
    (server, rx)
}

#[test]
fn content_length_is_exactly_the_bytes_on_the_wire() {
    let dir = TempDir::new();
    let file = dir.join("notes.txt");
    std::fs::write(&file, "line 1\r\nline 2\n").expect("write notes.txt");
    let form = Form::new()
        .text("a", "1")
        .file("notes", &file)
        .expect("open notes.txt")
        .part("r", Part::reader(&b"xyz"[..], Some(3)))
        .part(
            "raw",
            Part::bytes(vec![0u8, 255, 13, 10])
                .mime_str("application/x-raw")
                .expect("mime"),
        );
    let b = form.boundary().to_string();
    let content_type = form.content_type();
    let declared = form.content_length().expect("known");
    let want = [
        format!("--{b}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n").into_bytes(),
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"notes\"; filename=\"notes.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nline 1\r\nline 2\n\r\n"
        )
        .into_bytes(),
        format!("--{b}\r\nContent-Disposition: form-data; name=\"r\"\r\n\r\nxyz\r\n").into_bytes(),
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"raw\"\r\n\
             Content-Type: application/x-raw\r\n\r\n"
        )
        .into_bytes(),
        vec![0u8, 255, 13, 10],
        format!("\r\n--{b}--\r\n").into_bytes(),
    ]
    .concat();
    assert_eq!(declared, want.len() as u64);

    let (server, rx) = recording_server();
    let url = server.url("/upload");
    let status = bounded("post", LIMIT, move || {
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let resp = client(&t).post(url).multipart(form).send().expect("send");
        let status = resp.status();
        resp.discard().expect("discard");
        status
    });
    assert_eq!(status, StatusCode::OK);
    let seen = rx.recv_timeout(LIMIT).expect("the server saw the request");
    let lower = seen.head.to_ascii_lowercase();
    assert_eq!(
        header_value(&lower, "content-length"),
        Some(declared.to_string().as_str())
    );
    assert_eq!(header_value(&lower, "transfer-encoding"), None);
    assert_eq!(
        header_value(&lower, "content-type"),
        Some(content_type.to_ascii_lowercase().as_str())
    );
    assert!(!seen.extra, "bytes after the declared body");
    assert_eq!(
        String::from_utf8_lossy(&seen.body),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(seen.body, want);
}

#[test]
fn a_file_is_read_while_the_request_is_written_not_when_added() {
    let dir = TempDir::new();
    let path = dir.join("late.txt");
    std::fs::write(&path, "before").expect("write");
    let form = Form::new().file("f", &path).expect("open late.txt");
    // Same length, new bytes: what is sent is what the file holds when
    // the request goes out (the part holds the open file, not a copy).
    std::fs::write(&path, "after!").expect("rewrite");
    let (server, rx) = recording_server();
    let url = server.url("/");
    bounded("post", LIMIT, move || {
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        client(&t)
            .post(url)
            .multipart(form)
            .send()
            .expect("send")
            .discard()
            .expect("discard");
    });
    let seen = rx.recv_timeout(LIMIT).expect("request");
    let body = String::from_utf8(seen.body).expect("utf-8");
    assert!(body.contains("\r\n\r\nafter!\r\n"), "{body}");
}

#[test]
fn multipart_replaces_an_earlier_content_type() {
    let (server, rx) = recording_server();
    let form = Form::new().text("a", "1");
    let content_type = form.content_type();
    let url = server.url("/");
    bounded("post", LIMIT, move || {
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        client(&t)
            .post(url)
            .header("Content-Type", "text/plain")
            .multipart(form)
            .send()
            .expect("send")
            .discard()
            .expect("discard");
    });
    let seen = rx.recv_timeout(LIMIT).expect("request");
    let types: Vec<&str> = seen
        .head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .collect();
    assert_eq!(
        types,
        [format!("content-type: {content_type}").as_str()],
        "{}",
        seen.head
    );
}

#[test]
fn a_307_or_308_redirect_resends_an_in_memory_form() {
    let Some(peer) = FormPeer::start("redirect_in_memory") else {
        return;
    };
    for code in [307, 308] {
        let form = Form::new().text("k", "v").part(
            "blob",
            Part::bytes(random_bytes(100_000, code)).file_name("b.zip"),
        );
        let boundary = form.boundary().to_string();
        let (status, reply) = post(peer.url(&format!("/redirect/{code}")), form);
        assert_eq!(status, StatusCode::OK, "{code} not followed");
        assert_eq!(reply["path"], format!("/parse?after={code}"));
        let parts = parts(&reply, &boundary);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0]["text"], "v");
        assert_eq!(parts[1]["content_type"], "application/zip");
        assert_eq!(parts[1]["size"], 100_000);
    }
}

#[test]
fn a_307_or_308_redirect_resends_a_file_form_reopening_the_file() {
    let Some(peer) = FormPeer::start("redirect_file") else {
        return;
    };
    let dir = TempDir::new();
    let path = dir.join("f.bin");
    let data = random_bytes(300_000, 9);
    std::fs::write(&path, &data).expect("write f.bin");
    for code in [307, 308] {
        let form = Form::new()
            .text("k", "v")
            .file("f", &path)
            .expect("open f.bin");
        let boundary = form.boundary().to_string();
        let (status, reply) = post(peer.url(&format!("/redirect/{code}")), form);
        assert_eq!(status, StatusCode::OK, "{code} not followed");
        assert_eq!(reply["path"], format!("/parse?after={code}"));
        let parts = parts(&reply, &boundary);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1]["size"], 300_000);
        assert_eq!(parts[1]["sha256"], sha256(&data).as_str());
    }
}

#[test]
fn a_307_to_a_reader_form_is_returned_not_followed() {
    let Some(peer) = FormPeer::start("redirect_streamed") else {
        return;
    };
    let form = Form::new().part("r", Part::reader(&b"read once"[..], Some(9)));
    let (status, _) = post(peer.url("/redirect/307"), form);
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
}

#[test]
fn a_missing_file_fails_before_any_byte_is_sent() {
    let server = ScriptedServer::start(|mut c| {
        let _ = c.read_request();
    });
    let missing = Path::new("/nonexistent-dir/nethttp-no-such-file.bin");
    let err = Form::new()
        .text("a", "1")
        .file("f", missing)
        .expect_err("a missing file is an error");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.to_string().contains("nethttp-no-such-file.bin"),
        "{err}"
    );
    let source = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .expect("io::Error source");
    assert_eq!(source.kind(), io::ErrorKind::NotFound);

    let dir = TempDir::new();
    let err = Part::file(&dir.0).expect_err("a directory is an error");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::IsADirectory);

    // Nothing was built, so nothing could be sent.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.accepted(), 0);
}

#[test]
fn a_part_shorter_than_declared_fails_the_request() {
    let (server, _rx) = recording_server();
    let url = server.url("/");
    let err = bounded("post", LIMIT, move || {
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let form = Form::new().part("short", Part::reader(&b"abc"[..], Some(10)));
        client(&t)
            .post(url)
            .multipart(form)
            .send()
            .expect_err("must fail")
    });
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
}

#[test]
fn a_part_longer_than_declared_fails_the_request() {
    let (server, _rx) = recording_server();
    let url = server.url("/");
    let err = bounded("post", LIMIT, move || {
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let form = Form::new()
            .part("long", Part::reader(&b"abcdef"[..], Some(3)))
            .text("after", "x");
        client(&t)
            .post(url)
            .multipart(form)
            .send()
            .expect_err("must fail")
    });
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
}

#[test]
fn a_wrong_part_length_in_a_chunked_form_fails_the_request() {
    let server = ScriptedServer::start(|mut c| {
        let _ = c.read_request();
        c.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    });
    let url = server.url("/");
    let err = bounded("post", LIMIT, move || {
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        let form = Form::new()
            .part("short", Part::reader(&b"abc"[..], Some(10)))
            .part("stream", Part::reader(io::empty(), None));
        client(&t)
            .post(url)
            .multipart(form)
            .send()
            .expect_err("must fail")
    });
    // The part's read error names it, and keeps its kind.
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(" / ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    assert!(chain.contains("multipart part \"short\""), "{chain}");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err:?}");
}
