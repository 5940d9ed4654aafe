//! The writer thread, `nethttp-w<id>`: the only writer of the socket. It
//! sends the connection preface and our SETTINGS, then writes the jobs
//! callers, bodies and the reader queue, in queue order, batching what is
//! already queued into one write. It owns the HPACK encoder (its dynamic
//! table follows the order blocks go out) and never calls user code.

use std::io::Write;

use crossbeam_channel::{Receiver, select};

use super::{H2Conn, Start};
use crate::h2::frame::{self, ErrorCode};
use crate::h2::head::Field;
use crate::h2::hpack::Encoder;
use crate::{Error, close_reason::CloseReason, stream::WriteHalf};

/// What the writer is asked to send.
pub(super) enum Job {
    /// A stream's request head: HEADERS (and CONTINUATIONs).
    Headers {
        id: u32,
        fields: Vec<Field>,
        end_stream: bool,
    },
    /// Request body bytes the windows already allowed (at most the peer's
    /// frame size).
    Data {
        id: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    WindowUpdate {
        id: u32,
        increment: u32,
    },
    Reset {
        id: u32,
        code: ErrorCode,
    },
    /// Acknowledges the server's SETTINGS, after applying what concerns
    /// the writer: its HPACK table size and frame size.
    SettingsAck {
        /// The smallest table size the SETTINGS frame carried, and the
        /// size it ended with (RFC 7541 §4.2: the encoder signals both).
        header_table: Option<(u32, u32)>,
        max_frame_size: u32,
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    GoAway {
        code: ErrorCode,
    },
    /// The last job: the connection closed. Graceful: shut the socket
    /// down once the queue is written (TLS says `close_notify`).
    Close {
        graceful: bool,
    },
}

/// Jobs already queued are written together, up to about this much.
const BATCH: usize = 64 * 1024;

#[inline(never)]
pub(super) fn run(conn: H2Conn, mut w: WriteHalf, jobs: Receiver<Job>, start: Start) {
    let mut enc = Encoder::new();
    let mut max_frame = frame::DEFAULT_MAX_FRAME_SIZE;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut scratch = Vec::with_capacity(256);
    buf.extend_from_slice(frame::PREFACE);
    frame::write_settings(&mut buf, &start.settings);
    if start.conn_window_increase > 0 {
        frame::write_window_update(&mut buf, 0, start.conn_window_increase);
    }
    if let Err(e) = flush(&mut w, &mut buf) {
        return fail(&conn, &e);
    }
    let poked = w.poked();
    loop {
        // The next job often comes within microseconds (a stream's next
        // request, a window update): yield first, as HTTP/1's writer does.
        let job = match &poked {
            None => crate::conn::recv_soon(&jobs).ok(),
            Some(poked) => match crate::conn::try_soon(&jobs, crate::conn::THREAD_YIELDS) {
                Some(job) => job.ok(),
                None => select! {
                    recv(jobs) -> job => job.ok(),
                    recv(poked) -> _ => {
                        let _ = w.send_pending();
                        continue;
                    }
                },
            },
        };
        let Some(job) = job else { return };
        let mut close = encode(job, &mut enc, &mut max_frame, &mut buf, &mut scratch);
        while close.is_none() && buf.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => close = encode(job, &mut enc, &mut max_frame, &mut buf, &mut scratch),
                Err(_) => break,
            }
        }
        if let Err(e) = flush(&mut w, &mut buf) {
            return fail(&conn, &e);
        }
        match close {
            None => {}
            Some(true) => {
                conn.inner.closer.close_gracefully();
                return;
            }
            Some(false) => return,
        }
    }
}

/// Appends one job's frames to `buf`. `Some(graceful)` for the close job.
/// `scratch` holds a header block on its way into `buf` (kept, so a
/// request costs no allocation for it).
fn encode(
    job: Job,
    enc: &mut Encoder,
    max_frame: &mut u32,
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Option<bool> {
    match job {
        Job::Headers {
            id,
            fields,
            end_stream,
        } => {
            let block = &mut *scratch;
            block.clear();
            enc.encode(
                fields.iter().map(|f| {
                    (
                        f.name.as_bytes(),
                        f.value.as_bytes(),
                        f.value.is_sensitive(),
                    )
                }),
                block,
            );
            frame::write_headers(buf, id, block, end_stream, *max_frame);
        }
        Job::Data {
            id,
            data,
            end_stream,
        } => {
            // The caller cut its chunk to the windows; the frame size it
            // knew may since have shrunk only if the server lowered it,
            // which §6.5.2 forbids below 16,384: split to be safe.
            let max = *max_frame as usize;
            let mut rest = &data[..];
            loop {
                let n = rest.len().min(max);
                let (now, later) = rest.split_at(n);
                frame::write_data(buf, id, now, end_stream && later.is_empty());
                rest = later;
                if rest.is_empty() {
                    break;
                }
            }
        }
        Job::WindowUpdate { id, increment } => frame::write_window_update(buf, id, increment),
        Job::Reset { id, code } => frame::write_rst_stream(buf, id, code),
        Job::SettingsAck {
            header_table,
            max_frame_size,
        } => {
            if let Some((min, last)) = header_table {
                enc.set_max_table_size(min as usize);
                enc.set_max_table_size(last as usize);
            }
            *max_frame = max_frame_size;
            frame::write_settings_ack(buf);
        }
        Job::Ping { ack, data } => frame::write_ping(buf, ack, data),
        // We never accept a stream from the server: last stream id 0.
        Job::GoAway { code } => frame::write_goaway(buf, 0, code, b""),
        Job::Close { graceful } => return Some(graceful),
    }
    None
}

fn flush(w: &mut WriteHalf, buf: &mut Vec<u8>) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let res = w.write_all(buf).and_then(|()| w.flush());
    buf.clear();
    // A big batch's buffer is not kept for the connection's life.
    if buf.capacity() > 4 * BATCH {
        buf.shrink_to(BATCH);
    }
    res
}

fn fail(conn: &H2Conn, e: &std::io::Error) {
    let err = Error::new(
        crate::stream::error_kind(e),
        format!("http2: write to the connection failed: {e}"),
    );
    conn.close(CloseReason::Failed, Some(err));
}
