//! `multipart/form-data` request bodies (RFC 7578), behind the
//! `multipart` feature: text fields, files streamed from disk, and parts
//! of your own, sent with [`RequestBuilder::multipart`](crate::RequestBuilder::multipart).
//!
//! ```
//! use nethttp::multipart::{Form, Part};
//!
//! let form = Form::new()
//!     .text("title", "Holiday")
//!     .part("notes", Part::bytes(&b"day 1: rain"[..]).file_name("notes.txt"));
//! assert_eq!(
//!     form.content_type(),
//!     format!("multipart/form-data; boundary={}", form.boundary()),
//! );
//! // Every size is known: the request carries this exact Content-Length,
//! // and the form is replayable (307/308 resend it).
//! let len = form.content_length().unwrap();
//! let body = form.into_body();
//! assert_eq!(body.len(), Some(len));
//! assert!(body.is_replayable());
//! ```
//!
//! Sending one (the `?` on [`Form::file`] is the file failing to open,
//! before any byte goes out):
//!
//! ```no_run
//! use nethttp::{Client, multipart::Form};
//!
//! let form = Form::new()
//!     .text("user", "ada")
//!     .file("avatar", "/tmp/ada.png")?; // Content-Type: image/png, filename="ada.png"
//! let resp = Client::new()
//!     .post("http://127.0.0.1:8080/upload")
//!     .multipart(form)
//!     .send()?;
//! # Ok::<(), nethttp::Error>(())
//! ```
//!
//! # What goes on the wire
//!
//! ```text
//! Content-Type: multipart/form-data; boundary=B
//!
//! --B\r\n
//! Content-Disposition: form-data; name="title"\r\n
//! \r\n
//! Holiday\r\n
//! --B\r\n
//! Content-Disposition: form-data; name="notes"; filename="notes.txt"\r\n
//! Content-Type: text/plain\r\n
//! \r\n
//! day 1: rain\r\n
//! --B--\r\n
//! ```
//!
//! - **Boundary**: 40 random characters of `[A-Za-z0-9]`, fresh for each
//!   [`Form`] ([`Form::boundary`]).
//! - **Names and file names** are sent as quoted strings, in UTF-8 as
//!   RFC 7578 §4.2 allows. `\` and `"` are backslash-escaped (`\\`, `\"`:
//!   the quoted-pair of RFC 9110 §5.6.4, as Go's `mime/multipart` writes
//!   them, and as Go's and Python's parsers read them). CR and LF, which
//!   no header line may carry, become `%0D` and `%0A` (as browsers send
//!   them, WHATWG HTML "multipart/form-data encoding algorithm"); a parser
//!   hands those three characters back as they are. Nothing else is
//!   changed.
//! - **Content-Type of a part**: the one given to [`Part::mime_str`]; else,
//!   for a part with a file name, a guess from its extension
//!   ([`guess_mime`]); else none (text fields, and parts without a file
//!   name, which RFC 7578 §4.4 reads as `text/plain`).
//!
//! # Streaming, length and replay
//!
//! Files ([`Form::file`], [`Part::file`]) and readers ([`Part::reader`])
//! are streamed while the request is written, never read into memory.
//!
//! - When every part's size is known (in-memory parts, regular files,
//!   readers given a length), the body's exact length is known
//!   ([`Form::content_length`]) and sent as `Content-Length`; otherwise
//!   the body is sent chunked.
//! - A form made only of in-memory parts ([`Form::text`], [`Part::bytes`],
//!   [`Part::text`]) becomes one in-memory [`Body`].
//! - A form of in-memory and file parts is replayable too: a 307/308
//!   redirect resends it and a request on a dead keep-alive connection is
//!   retried, each copy reopening the files by path when it is sent (a
//!   file that cannot be reopened then fails that request).
//! - A form with a reader part ([`Part::reader`]) is streamed once: not
//!   replayable. A 307/308 answer to it is returned to the caller instead
//!   of followed (as for [`Body::from_reader`]).
//! - A part that yields a different number of bytes than it declared (a
//!   file that changed size after [`Form::file`], a reader with a wrong
//!   length) fails the request: with kind
//!   [`InvalidRequest`](ErrorKind::InvalidRequest) when the body has a
//!   `Content-Length` (the body ends short, and the transport's length
//!   check reports it, as for any streamed body), and with the part's read
//!   error (an `io::Error` of kind `InvalidData` whose inner error is an
//!   `InvalidRequest` naming the part) when it is sent chunked.

use std::{
    collections::{VecDeque, hash_map::RandomState},
    fmt,
    fs::File,
    hash::{BuildHasher, Hash, Hasher},
    io::{self, Read},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;

use crate::{Body, Error, ErrorKind, body::request::Reopen};

/// Length of a boundary [`Form::new`] makes.
const BOUNDARY_LEN: usize = 40;

/// The boundary's alphabet: 62 characters no parser treats specially.
const BOUNDARY_ALPHABET: &[u8; 62] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A `multipart/form-data` form: named parts in order. Build it, then
/// send it with [`RequestBuilder::multipart`](crate::RequestBuilder::multipart)
/// (which sets the `Content-Type` with the boundary), or turn it into a
/// [`Body`] yourself with [`into_body`](Form::into_body).
///
/// ```
/// use nethttp::multipart::{Form, Part};
/// let form = Form::new()
///     .text("a", "1")
///     .part("b", Part::bytes(vec![0u8, 1, 2]).mime_str("application/octet-stream")?);
/// assert_eq!(form.content_length(), Some(form.into_body().len().unwrap()));
/// # Ok::<(), nethttp::Error>(())
/// ```
pub struct Form {
    boundary: String,
    fields: Vec<(String, Part)>,
}

impl Form {
    /// An empty form with a fresh random boundary.
    ///
    /// ```
    /// let (a, b) = (nethttp::multipart::Form::new(), nethttp::multipart::Form::new());
    /// assert_ne!(a.boundary(), b.boundary());
    /// ```
    pub fn new() -> Form {
        Form {
            boundary: new_boundary(),
            fields: Vec::new(),
        }
    }

    /// The boundary between parts: 40 characters of `[A-Za-z0-9]`.
    ///
    /// ```
    /// let form = nethttp::multipart::Form::new();
    /// assert_eq!(form.boundary().len(), 40);
    /// assert!(form.boundary().bytes().all(|b| b.is_ascii_alphanumeric()));
    /// ```
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// Adds a text field: no file name, no `Content-Type`.
    ///
    /// ```
    /// let form = nethttp::multipart::Form::new().text("q", "rust").text("lang", "en");
    /// assert!(form.content_length().is_some());
    /// ```
    pub fn text(self, name: impl Into<String>, value: impl Into<String>) -> Form {
        self.part(name, Part::text(value))
    }

    /// Adds a file part, streamed from `path` when the request is sent:
    /// see [`Part::file`] (file name, `Content-Type` guess, errors).
    ///
    /// ```
    /// use nethttp::{ErrorKind, multipart::Form};
    /// let err = Form::new().file("doc", "/no/such/file.pdf").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Io);
    /// ```
    pub fn file(self, name: impl Into<String>, path: impl AsRef<Path>) -> crate::Result<Form> {
        Ok(self.part(name, Part::file(path)?))
    }

    /// Adds a part of your own.
    ///
    /// ```
    /// use nethttp::multipart::{Form, Part};
    /// let form = Form::new().part("data", Part::reader(std::io::empty(), None));
    /// assert_eq!(form.content_length(), None); // sent chunked
    /// ```
    pub fn part(mut self, name: impl Into<String>, part: Part) -> Form {
        self.fields.push((name.into(), part));
        self
    }

    /// The `Content-Type` header value: `multipart/form-data; boundary=…`.
    ///
    /// ```
    /// let form = nethttp::multipart::Form::new();
    /// assert!(form.content_type().starts_with("multipart/form-data; boundary="));
    /// ```
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The body's exact length in bytes, when every part's size is known
    /// (then it is sent as `Content-Length`); `None` when some part has no
    /// known size (then the body is sent chunked).
    ///
    /// ```
    /// let form = nethttp::multipart::Form::new();
    /// // Only the closing delimiter: "--" boundary "--" CRLF.
    /// assert_eq!(form.content_length(), Some(40 + 6));
    /// ```
    pub fn content_length(&self) -> Option<u64> {
        let mut total = self.closing().len() as u64;
        for (name, part) in &self.fields {
            let head = head_bytes(&self.boundary, name, part).len() as u64;
            total = total.checked_add(head + 2)?.checked_add(part.len()?)?;
        }
        Some(total)
    }

    /// The form as a request [`Body`]: in memory when every part is;
    /// otherwise streamed (files and readers are read
    /// as it is written), with a length when every size is known and
    /// chunked when not. Set the `Content-Type` from
    /// [`content_type`](Form::content_type) yourself when you send it
    /// without [`RequestBuilder::multipart`](crate::RequestBuilder::multipart).
    ///
    /// ```
    /// use nethttp::{Request, http::Method, multipart::{Form, Part}};
    /// let form = Form::new().text("a", "1");
    /// let (content_type, boundary) = (form.content_type(), form.boundary().to_string());
    /// let body = form.into_body();
    /// assert!(body.is_replayable());
    /// let req = Request::builder(Method::POST, "http://127.0.0.1:1/")
    ///     .header("Content-Type", content_type)
    ///     .body(body)
    ///     .build()?;
    /// assert!(req.headers()["content-type"].to_str().unwrap().ends_with(&boundary));
    /// let streamed = Form::new().part("r", Part::reader(&b"abc"[..], Some(3))).into_body();
    /// assert!(!streamed.is_replayable());
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn into_body(self) -> Body {
        let len = self.content_length();
        let mut segments: VecDeque<Segment> = VecDeque::new();
        // How to read the form again (a 307/308, a retry): the same runs
        // of bytes, files reopened by path. `None` once a reader part (read
        // once) is in.
        let mut again: Option<Vec<Again>> = Some(Vec::new());
        let mut buf: Vec<u8> = Vec::new();
        let closing = self.closing();
        for (name, part) in self.fields {
            let head = head_bytes(&self.boundary, &name, &part);
            buf.extend_from_slice(&head);
            match part.source {
                Source::Bytes(data) => buf.extend_from_slice(&data),
                Source::File { file, path, len } => {
                    flush(&mut buf, &mut segments, &mut again);
                    if let Some(a) = &mut again {
                        a.push(Again::File {
                            name: name.clone(),
                            path,
                            len,
                        });
                    }
                    segments.push_back(Segment::Stream(Stream::new(name, Box::new(file), len)));
                }
                Source::Reader { reader, len } => {
                    flush(&mut buf, &mut segments, &mut again);
                    again = None;
                    segments.push_back(Segment::Stream(Stream::new(name, reader, len)));
                }
            }
            buf.extend_from_slice(b"\r\n");
        }
        buf.extend_from_slice(&closing);
        if segments.is_empty() {
            return Body::from(buf);
        }
        flush(&mut buf, &mut segments, &mut again);
        let reader = FormReader::new(segments, len.is_some());
        match again {
            Some(runs) => {
                let runs: Arc<[Again]> = runs.into();
                let checked = len.is_some();
                let reopen: Reopen = Arc::new(move || {
                    let mut segments = VecDeque::with_capacity(runs.len());
                    for run in runs.iter() {
                        segments.push_back(match run {
                            Again::Bytes(b) => Segment::Bytes(io::Cursor::new(b.clone())),
                            Again::File { name, path, len } => {
                                let file = File::open(path)?;
                                Segment::Stream(Stream::new(name.clone(), Box::new(file), *len))
                            }
                        });
                    }
                    Ok(Box::new(FormReader::new(segments, checked)))
                });
                Body::reopenable(reader, len, reopen)
            }
            None => Body::from_reader(reader, len),
        }
    }

    /// `--boundary--\r\n`.
    fn closing(&self) -> Vec<u8> {
        format!("--{}--\r\n", self.boundary).into_bytes()
    }
}

impl Default for Form {
    fn default() -> Form {
        Form::new()
    }
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Form")
            .field("boundary", &self.boundary)
            .field("parts", &self.fields)
            .finish()
    }
}

/// One part of a [`Form`]: its data (bytes in memory, a file, or a
/// reader), and optionally a file name and a `Content-Type`.
///
/// ```
/// use nethttp::multipart::Part;
/// let part = Part::bytes(&b"%PDF-1.7 ..."[..])
///     .file_name("report.pdf") // Content-Type guessed: application/pdf
///     .mime_str("application/x-pdf")?; // or given
/// # Ok::<(), nethttp::Error>(())
/// ```
pub struct Part {
    source: Source,
    file_name: Option<String>,
    mime: Option<String>,
}

/// Where a part's data comes from.
enum Source {
    Bytes(Vec<u8>),
    /// Opened by [`Part::file`]; `len` from its metadata (a regular file).
    File {
        file: File,
        path: PathBuf,
        len: Option<u64>,
    },
    Reader {
        reader: Box<dyn Read + Send + 'static>,
        len: Option<u64>,
    },
}

impl Part {
    /// A part of bytes held in memory.
    ///
    /// ```
    /// let part = nethttp::multipart::Part::bytes(vec![0xffu8, 0x00]);
    /// # let _ = part;
    /// ```
    pub fn bytes(data: impl Into<Vec<u8>>) -> Part {
        Part::new(Source::Bytes(data.into()))
    }

    /// A part of UTF-8 text held in memory (what [`Form::text`] adds).
    ///
    /// ```
    /// let part = nethttp::multipart::Part::text("héllo").mime_str("text/plain; charset=utf-8")?;
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn text(value: impl Into<String>) -> Part {
        Part::bytes(value.into().into_bytes())
    }

    /// A part streamed from `reader` while the request is written: `len`
    /// bytes, or, with `None`, until it ends (the whole body is then sent
    /// chunked). A reader that yields a different number of bytes than
    /// `len` fails the request (see the [module docs](self)).
    ///
    /// ```
    /// use nethttp::multipart::{Form, Part};
    /// let form = Form::new().part("log", Part::reader(std::io::repeat(b'x').take(1000), Some(1000)));
    /// # use std::io::Read;
    /// assert!(form.content_length().unwrap() > 1000);
    /// ```
    pub fn reader(reader: impl Read + Send + 'static, len: Option<u64>) -> Part {
        Part::new(Source::Reader {
            reader: Box::new(reader),
            len,
        })
    }

    /// A part streamed from the file at `path` while the request is
    /// written (never read into memory). The file is opened now and its
    /// length taken from its metadata; the file name is the path's last
    /// component and the `Content-Type` is guessed from its extension
    /// ([`guess_mime`]); both can be replaced with
    /// [`file_name`](Part::file_name) and [`mime_str`](Part::mime_str).
    /// Something that is not a regular file (a pipe, say) has no known
    /// length, so the body is sent chunked.
    ///
    /// A file that cannot be opened (or is a directory) is an error of
    /// kind [`Io`](ErrorKind::Io) whose source is the `io::Error`
    /// (`NotFound`, `PermissionDenied`, `IsADirectory`, …), so nothing is
    /// sent.
    ///
    /// ```
    /// use nethttp::multipart::Part;
    /// let dir = std::env::temp_dir();
    /// let err = Part::file(&dir).unwrap_err();
    /// assert_eq!(err.kind(), nethttp::ErrorKind::Io);
    /// assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::IsADirectory);
    /// ```
    pub fn file(path: impl AsRef<Path>) -> crate::Result<Part> {
        let path = path.as_ref();
        let fail = |e: io::Error| {
            Error::new(
                ErrorKind::Io,
                format!("multipart: open {}: {e}", path.display()),
            )
            .with_source(e)
        };
        let file = File::open(path).map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        if meta.is_dir() {
            return Err(fail(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        let len = meta.is_file().then_some(meta.len());
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        Ok(Part {
            source: Source::File {
                file,
                path: path.to_path_buf(),
                len,
            },
            file_name,
            mime: None,
        })
    }

    /// Sets the part's file name (`filename="…"` in its
    /// `Content-Disposition`). Unless [`mime_str`](Part::mime_str) sets
    /// one, the `Content-Type` is then guessed from its extension.
    ///
    /// ```
    /// let part = nethttp::multipart::Part::bytes(&b"{}"[..]).file_name("empty.json");
    /// # let _ = part;
    /// ```
    pub fn file_name(mut self, name: impl Into<String>) -> Part {
        self.file_name = Some(name.into());
        self
    }

    /// Sets the part's `Content-Type`. A value that is not
    /// `type/subtype` (tokens) with optional `;` parameters of visible
    /// characters is an error of kind
    /// [`InvalidRequest`](ErrorKind::InvalidRequest).
    ///
    /// ```
    /// use nethttp::{ErrorKind, multipart::Part};
    /// assert!(Part::text("x").mime_str("text/csv; header=present").is_ok());
    /// let err = Part::text("x").mime_str("text\r\nX-Evil: 1").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    /// ```
    pub fn mime_str(mut self, mime: &str) -> crate::Result<Part> {
        if !valid_mime(mime) {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("multipart: not a media type: {mime:?}"),
            ));
        }
        self.mime = Some(mime.to_string());
        Ok(self)
    }

    fn new(source: Source) -> Part {
        Part {
            source,
            file_name: None,
            mime: None,
        }
    }

    /// The data's length, when known.
    fn len(&self) -> Option<u64> {
        match &self.source {
            Source::Bytes(b) => Some(b.len() as u64),
            Source::File { len, .. } | Source::Reader { len, .. } => *len,
        }
    }

    /// The `Content-Type` this part is sent with, if any.
    fn content_type(&self) -> Option<&str> {
        match (&self.mime, &self.file_name) {
            (Some(m), _) => Some(m),
            (None, Some(name)) => Some(guess_mime(name)),
            (None, None) => None,
        }
    }
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Part");
        match &self.source {
            Source::Bytes(b) => d.field("bytes", &b.len()),
            Source::File { path, len, .. } => d.field("file", path).field("len", len),
            Source::Reader { len, .. } => d.field("reader_len", len),
        };
        d.field("file_name", &self.file_name)
            .field("mime", &self.mime)
            .finish()
    }
}

/// The `Content-Type` guessed for a file name, by its extension (ignoring
/// case): `txt` `text/plain`, `html`/`htm` `text/html`, `css` `text/css`,
/// `csv` `text/csv`, `json` `application/json`, `xml` `application/xml`,
/// `pdf` `application/pdf`, `zip` `application/zip`, `gz`
/// `application/gzip`, `png` `image/png`, `jpg`/`jpeg` `image/jpeg`, `gif`
/// `image/gif`, `svg` `image/svg+xml`, `webp` `image/webp`; anything else
/// `application/octet-stream`.
///
/// ```
/// use nethttp::multipart::guess_mime;
/// assert_eq!(guess_mime("photo.JPG"), "image/jpeg");
/// assert_eq!(guess_mime("data.bin"), "application/octet-stream");
/// assert_eq!(guess_mime("README"), "application/octet-stream");
/// ```
pub fn guess_mime(file_name: &str) -> &'static str {
    let ext = match file_name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// A part's delimiter and headers, up to and including the blank line.
fn head_bytes(boundary: &str, name: &str, part: &Part) -> Vec<u8> {
    let mut h = Vec::with_capacity(boundary.len() + name.len() + 64);
    h.extend_from_slice(b"--");
    h.extend_from_slice(boundary.as_bytes());
    h.extend_from_slice(b"\r\nContent-Disposition: form-data; name=");
    quote_param(&mut h, name);
    if let Some(file_name) = &part.file_name {
        h.extend_from_slice(b"; filename=");
        quote_param(&mut h, file_name);
    }
    h.extend_from_slice(b"\r\n");
    if let Some(ct) = part.content_type() {
        h.extend_from_slice(b"Content-Type: ");
        h.extend_from_slice(ct.as_bytes());
        h.extend_from_slice(b"\r\n");
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// Appends `value` as a quoted string: `\` and `"` backslash-escaped, CR
/// and LF percent-encoded (the module docs give the reasons).
fn quote_param(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    for b in value.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\r' => out.extend_from_slice(b"%0D"),
            b'\n' => out.extend_from_slice(b"%0A"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// `type/subtype` (RFC 9110 tokens), then anything of visible ASCII,
/// space and tab (the parameters).
fn valid_mime(mime: &str) -> bool {
    let (essence, params) = mime.split_once(';').unwrap_or((mime, ""));
    let Some((ty, sub)) = essence.trim_end().split_once('/') else {
        return false;
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(is_tchar);
    token(ty)
        && token(sub)
        && params
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// 40 characters of `[A-Za-z0-9]` from std's randomly keyed SipHash (its
/// keys come from the OS once per thread, and every `RandomState` gets
/// fresh ones), fed the time, a process-wide counter and the thread.
fn new_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut out = String::with_capacity(BOUNDARY_LEN);
    let mut round = 0u32;
    while out.len() < BOUNDARY_LEN {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_u32(round);
        h.write_u32(std::process::id());
        std::thread::current().id().hash(&mut h);
        let mut x = h.finish();
        // 10 base-62 digits use 59.5 of the 64 bits.
        for _ in 0..10 {
            out.push(char::from(BOUNDARY_ALPHABET[(x % 62) as usize]));
            x /= 62;
        }
        round += 1;
    }
    out.truncate(BOUNDARY_LEN);
    out
}

/// A streamed form: in-memory runs (delimiters, headers, bytes parts)
/// between the streamed parts.
struct FormReader {
    segments: VecDeque<Segment>,
    /// The body has a `Content-Length`: a part of the wrong size ends the
    /// body early, so the transport's length check fails the request with
    /// `InvalidRequest`. Chunked, nothing would notice: the part's read
    /// fails instead.
    length_checked: bool,
    /// Ended early (a part of the wrong size): only `Ok(0)` from now on.
    ended: bool,
}

enum Segment {
    Bytes(io::Cursor<Bytes>),
    Stream(Stream),
}

/// Ends the run of bytes in `buf`: a segment, and a run to read again.
fn flush(buf: &mut Vec<u8>, segments: &mut VecDeque<Segment>, again: &mut Option<Vec<Again>>) {
    let bytes = Bytes::from(std::mem::take(buf));
    if let Some(a) = again {
        a.push(Again::Bytes(bytes.clone()));
    }
    segments.push_back(Segment::Bytes(io::Cursor::new(bytes)));
}

/// One run of a form to read again: bytes, or a file to reopen.
enum Again {
    Bytes(Bytes),
    File {
        name: String,
        path: PathBuf,
        len: Option<u64>,
    },
}

impl FormReader {
    /// Reads `segments` in turn; empty byte runs are dropped.
    fn new(mut segments: VecDeque<Segment>, length_checked: bool) -> FormReader {
        segments.retain(|s| !matches!(s, Segment::Bytes(c) if c.get_ref().is_empty()));
        FormReader {
            segments,
            length_checked,
            ended: false,
        }
    }
}

/// A streamed part's data, checked against its declared length.
struct Stream {
    name: String,
    reader: Box<dyn Read + Send + 'static>,
    len: Option<u64>,
    done: u64,
}

impl Stream {
    fn new(name: String, reader: Box<dyn Read + Send + 'static>, len: Option<u64>) -> Stream {
        Stream {
            name,
            reader,
            len,
            done: 0,
        }
    }

    /// Reads the next bytes into `buf` (not empty): `Ok(0)` at the
    /// part's end, `Err(Mismatch)` when it is not the declared size.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        let want = match self.len {
            Some(len) if self.done >= len => {
                // The declared length is reached: the reader must be at
                // its end (one byte more means a longer part).
                return match retry(|| self.reader.read(&mut [0u8; 1]))? {
                    0 => Ok(0),
                    _ => Err(StreamError::Mismatch(format!(
                        "multipart part {:?}: more than the {len} bytes declared",
                        self.name
                    ))),
                };
            }
            Some(len) => usize::try_from(len - self.done).map_or(buf.len(), |l| l.min(buf.len())),
            None => buf.len(),
        };
        let n = retry(|| self.reader.read(&mut buf[..want]))?;
        if n == 0 {
            if let Some(len) = self.len {
                return Err(StreamError::Mismatch(format!(
                    "multipart part {:?}: {} bytes where {len} were declared",
                    self.name, self.done
                )));
            }
        }
        self.done += n as u64;
        Ok(n)
    }
}

enum StreamError {
    Io(io::Error),
    Mismatch(String),
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> StreamError {
        StreamError::Io(e)
    }
}

fn retry(mut f: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl Read for FormReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.ended {
            return Ok(0);
        }
        while let Some(seg) = self.segments.front_mut() {
            let n = match seg {
                Segment::Bytes(c) => c.read(buf)?,
                Segment::Stream(s) => match s.read(buf) {
                    Ok(n) => n,
                    Err(StreamError::Io(e)) => return Err(e),
                    Err(StreamError::Mismatch(msg)) if self.length_checked => {
                        log::debug!("nethttp: {msg}; ending the body early");
                        self.ended = true;
                        self.segments.clear();
                        return Ok(0);
                    }
                    Err(StreamError::Mismatch(msg)) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            Error::new(ErrorKind::InvalidRequest, msg),
                        ));
                    }
                },
            };
            if n > 0 {
                return Ok(n);
            }
            self.segments.pop_front();
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_bytes(form: Form) -> Vec<u8> {
        let body = form.into_body();
        match body.into_kind() {
            crate::body::request::Kind::Empty => Vec::new(),
            crate::body::request::Kind::Bytes(b) => b.to_vec(),
            crate::body::request::Kind::Reader { mut reader, .. } => {
                let mut out = Vec::new();
                reader.read_to_end(&mut out).expect("read form");
                out
            }
        }
    }

    #[test]
    fn layout_is_rfc_7578() {
        let mut form = Form::new()
            .text("a", "1")
            .part("f", Part::bytes(&b"xy"[..]).file_name("f.txt"))
            .part(
                "r",
                Part::reader(&b"zz"[..], Some(2))
                    .mime_str("text/x-z")
                    .unwrap(),
            );
        form.boundary = "B".to_string();
        let want = "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
                    --B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nxy\r\n\
                    --B\r\nContent-Disposition: form-data; name=\"r\"\r\n\
                    Content-Type: text/x-z\r\n\r\nzz\r\n--B--\r\n";
        assert_eq!(form.content_length(), Some(want.len() as u64));
        assert_eq!(String::from_utf8(body_bytes(form)).unwrap(), want);
    }

    #[test]
    fn names_escape_quotes_backslashes_and_line_breaks() {
        let mut out = Vec::new();
        quote_param(&mut out, "a\"b\\c\r\nd ü%");
        assert_eq!(out, "\"a\\\"b\\\\c%0D%0Ad ü%\"".as_bytes());
    }

    #[test]
    fn boundaries_are_long_alphanumeric_and_fresh() {
        let all: std::collections::HashSet<String> = (0..1000).map(|_| new_boundary()).collect();
        assert_eq!(all.len(), 1000);
        for b in &all {
            assert_eq!(b.len(), BOUNDARY_LEN);
            assert!(b.bytes().all(|c| c.is_ascii_alphanumeric()), "{b}");
        }
        // Every character of the alphabet shows up: the digits are spread.
        let used: std::collections::HashSet<char> = all.iter().flat_map(|b| b.chars()).collect();
        assert_eq!(used.len(), 62);
    }

    #[test]
    fn in_memory_forms_are_one_replayable_body() {
        let body = Form::new()
            .text("a", "1")
            .part("b", Part::bytes(vec![1u8; 10]))
            .into_body();
        assert!(body.is_replayable());
        let body = Form::new().part("r", Part::reader(io::empty(), Some(0)));
        assert!(!body.into_body().is_replayable());
    }

    #[test]
    fn file_forms_replay_by_reopening_their_files() {
        let path = std::env::temp_dir().join(format!("nethttp-mp-{}.txt", std::process::id()));
        std::fs::write(&path, "first").unwrap();
        let form = Form::new().text("a", "1").file("f", &path).unwrap();
        let boundary = form.boundary().to_string();
        let body = form.into_body();
        assert!(body.is_replayable());
        let copy = body.try_clone().expect("a copy");
        let read = |b: Body| {
            let crate::body::request::Kind::Reader { mut reader, .. } = b.into_kind() else {
                panic!("streamed");
            };
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let first = read(body);
        assert!(first.contains("first") && first.ends_with(&format!("--{boundary}--\r\n")));
        // The copy reopens the file when it is read, and reads the same.
        assert_eq!(read(copy), first);
        // A copy whose file is gone fails its own read, not the clone.
        let form = Form::new().file("f", &path).unwrap();
        let body = form.into_body();
        std::fs::remove_file(&path).unwrap();
        let copy = body.try_clone().expect("a copy, opened lazily");
        let crate::body::request::Kind::Reader { mut reader, .. } = copy.into_kind() else {
            panic!("streamed");
        };
        let err = reader.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn unknown_sizes_mean_no_length() {
        let form = Form::new()
            .text("a", "1")
            .part("r", Part::reader(&b"abc"[..], None));
        assert_eq!(form.content_length(), None);
        let body = form.into_body();
        assert_eq!(body.len(), None);
        let bytes = body_bytes(Form::new().part("r", Part::reader(&b"abc"[..], None)));
        assert!(bytes.windows(7).any(|w| w == b"\r\nabc\r\n"));
    }

    #[test]
    fn wrong_part_length_ends_a_measured_body_early() {
        let mut form = Form::new().part("r", Part::reader(&b"abc"[..], Some(5)));
        form.boundary = "B".to_string();
        let declared = form.content_length().unwrap();
        let sent = body_bytes(form);
        assert!((sent.len() as u64) < declared);
        // Longer than declared: stops at the declared length, ends there.
        let form = Form::new().part("r", Part::reader(&b"abcdef"[..], Some(5)));
        let declared = form.content_length().unwrap();
        let sent = body_bytes(form);
        assert!((sent.len() as u64) < declared);
        assert!(sent.ends_with(b"abcde"));
    }

    #[test]
    fn wrong_part_length_fails_a_chunked_body() {
        let form = Form::new()
            .part("r", Part::reader(&b"abc"[..], Some(5)))
            .part("s", Part::reader(io::empty(), None));
        let crate::body::request::Kind::Reader { mut reader, .. } = form.into_body().into_kind()
        else {
            panic!("not streamed");
        };
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .unwrap();
        assert_eq!(inner.kind(), ErrorKind::InvalidRequest);
        assert!(inner.to_string().contains("\"r\""), "{inner}");
    }

    #[test]
    fn mime_strings_are_checked() {
        for ok in [
            "text/plain",
            "image/svg+xml",
            "text/plain; charset=\"utf-8\"",
        ] {
            assert!(valid_mime(ok), "{ok}");
        }
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "te xt/plain",
            "text/plain\r\nX: y",
            "a/b;\n",
        ] {
            assert!(!valid_mime(bad), "{bad:?}");
        }
    }

    #[test]
    fn mime_guesses() {
        assert_eq!(guess_mime("a.tar.GZ"), "application/gzip");
        assert_eq!(guess_mime("index.htm"), "text/html");
        assert_eq!(guess_mime(".hidden"), "application/octet-stream");
    }
}
