//! The reader thread, `nethttp-r<id>`: the only reader of the socket. It
//! splits the byte stream into frames, gathers header blocks, decodes them
//! with the HPACK decoder it owns, and demultiplexes: heads and DATA to
//! their streams (ringing each stream's bell), SETTINGS, PING, GOAWAY,
//! WINDOW_UPDATE and RST_STREAM to the connection's state. What must be
//! answered (acks, resets, GOAWAY) is queued for the writer. Its read
//! timeout doubles as the idle timer and the PING timer.

use std::{
    io::Read,
    time::{Duration, Instant},
};

use http::StatusCode;

use super::{GoAway, H2Conn, State, goaway_error};
use crate::{
    Error, ErrorKind,
    close_reason::CloseReason,
    conn::msg::Failure,
    pool::IdleCheck,
    stream::{ReadHalf, is_timeout},
};

use super::writer::Job;
use crate::h2::frame::{
    self, Assembled, BlockAssembler, ErrorCode, Frame, FrameError, SettingsParams,
};
use crate::h2::head::{self, HeadBuilder};
use crate::h2::hpack::{self, Decoder};

/// The largest frame we accept: the default we never raise (RFC 9113
/// §4.2, SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: u32 = frame::DEFAULT_MAX_FRAME_SIZE;

/// The read buffer: a few frames at a time.
const READ_BUF: usize = 64 * 1024;

/// Why the reader stops.
enum Stop {
    /// A connection error: GOAWAY with this code, then close.
    Protocol(ErrorCode, String),
    /// The socket failed or the server closed it.
    Io(Error),
    /// The connection closed (by anyone) or retired: just leave.
    Done,
}

impl From<FrameError> for Stop {
    fn from(e: FrameError) -> Stop {
        match e {
            FrameError::Connection(code, msg) => Stop::Protocol(code, msg.to_string()),
            // Stream errors are handled where they arise; one that gets
            // here is treated as what it would be on stream 0.
            FrameError::Stream(_, code, msg) => Stop::Protocol(code, msg.to_string()),
        }
    }
}

/// The reader's own state: everything that follows frame order.
struct Reader {
    conn: H2Conn,
    decoder: Decoder,
    /// The server's first frame must be SETTINGS (§3.4).
    seen_first: bool,
    /// Our outstanding PING and when it must be answered.
    ping: Option<([u8; 8], Instant)>,
    /// When the last frame arrived (for the PING interval).
    last_frame: Instant,
    pings_sent: u64,
    /// Streams whose state changed since the last ring: their bells ring
    /// once the frames already read are all handled (so a response whose
    /// HEADERS and DATA came in one read wakes its caller once, whole).
    rings: Vec<u32>,
    /// Every stream's bell rings then (a window or setting that concerns
    /// all of them changed).
    ring_everyone: bool,
}

#[inline(never)]
pub(super) fn run(conn: H2Conn, mut r: ReadHalf) {
    let max_list = conn.inner.cfg.max_response_header_bytes;
    let mut rd = Reader {
        decoder: Decoder::new(hpack_table_size()),
        seen_first: false,
        ping: None,
        last_frame: Instant::now(),
        pings_sent: 0,
        rings: Vec::new(),
        ring_everyone: false,
        conn,
    };
    // A header block may be bigger than the decoded list it makes only by
    // HPACK's overhead; beyond twice the list limit it is a flood.
    let mut asm = BlockAssembler::new(max_list.saturating_mul(2).max(64 * 1024));
    let mut buf = vec![0u8; READ_BUF];
    let stop = rd.serve(&mut r, &mut buf, &mut asm);
    match stop {
        Stop::Protocol(code, msg) => {
            let err = Error::new(
                ErrorKind::Protocol,
                format!("http2: connection error: {code}: {msg}"),
            );
            rd.conn.shut(CloseReason::Failed, Some(err), Some(code));
        }
        Stop::Io(err) => rd.conn.close(CloseReason::Failed, Some(err)),
        Stop::Done => {}
    }
}

/// The HPACK table size we allow the server's encoder (the default; we
/// never advertise another).
fn hpack_table_size() -> usize {
    4096
}

impl Reader {
    fn serve(&mut self, r: &mut ReadHalf, buf: &mut [u8], asm: &mut BlockAssembler) -> Stop {
        let (mut start, mut end) = (0usize, 0usize);
        // The read timeout last set: a busy connection's reads (no timer)
        // cost no `setsockopt` each.
        let mut timeout_set = None;
        loop {
            // Every whole frame in the buffer.
            loop {
                let found = match frame::split_frame(&buf[start..end], MAX_FRAME) {
                    Ok(f) => f,
                    Err(e) => return e.into(),
                };
                let Some((header, total)) = found else { break };
                let payload = &buf[start + frame::HEADER_LEN..start + total];
                self.last_frame = Instant::now();
                let res = match frame::decode(header, payload) {
                    Ok(f) => self.frame(asm, f),
                    // Inside a header block a stream error would leave
                    // HPACK's state behind: the connection's error then.
                    Err(FrameError::Stream(id, code, msg)) if !asm.in_progress() => {
                        self.stream_error(id, code, msg.to_string());
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                };
                if let Err(stop) = res {
                    return stop;
                }
                start += total;
            }
            self.ring_bells();
            if start == end {
                (start, end) = (0, 0);
            } else if start > 0 && end == buf.len() {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            }
            if self.conn.is_closed() {
                return Stop::Done;
            }
            let timeout = self.timeout(self.conn.idle_for());
            if timeout != timeout_set {
                if let Err(e) = r.set_read_timeout(timeout) {
                    return Stop::Io(Error::from_io(e, ErrorKind::Io, "http2: set read timeout"));
                }
                timeout_set = timeout;
            }
            match r.read(&mut buf[end..]) {
                Ok(0) => return self.eof(),
                Ok(n) => end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    if let Some(stop) = self.timer() {
                        return stop;
                    }
                }
                Err(e) => {
                    if self.conn.is_closed() {
                        return Stop::Done;
                    }
                    let kind = crate::stream::error_kind(&e);
                    return Stop::Io(Error::new(
                        kind,
                        format!("http2: read from the connection failed: {e}"),
                    ));
                }
            }
        }
    }

    /// The server closed its side.
    fn eof(&self) -> Stop {
        if self.conn.is_closed() {
            return Stop::Done;
        }
        let goaway = self.conn.inner.state.lock().goaway.clone();
        let err = match goaway {
            Some(g) => goaway_error(&g),
            None => Error::new(ErrorKind::Io, "http2: server closed the connection"),
        };
        Stop::Io(err)
    }

    /// The read timeout: the earliest of the idle timer (`idle_for`: how
    /// long the connection has had no stream, if it has none) and the
    /// PING timer.
    fn timeout(&self, idle_for: Option<Duration>) -> Option<Duration> {
        let cfg = &self.conn.inner.cfg;
        // While streams are open the idle timer still runs, whole: a read
        // that blocks cannot learn that the last stream ended meanwhile,
        // so it wakes by then and counts the rest from `idle_since`. The
        // connection closes at `idle_since + idle_conn_timeout` all the
        // same, and a busy one wakes once per timeout for nothing.
        let idle = cfg.idle_conn_timeout.map(|t| match idle_for {
            Some(d) => t.saturating_sub(d).max(Duration::from_millis(1)),
            None => t,
        });
        let ping = match (self.ping, cfg.http2_ping_interval) {
            (Some((_, due)), _) => Some(
                due.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ),
            (None, Some(every)) => Some(
                (self.last_frame + every)
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ),
            (None, None) => None,
        };
        match (idle, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A read timed out: a PING overdue closes the connection, a quiet
    /// one gets a PING, an idle one past its timeout asks the pool.
    fn timer(&mut self) -> Option<Stop> {
        let cfg = self.conn.inner.cfg.clone();
        let now = Instant::now();
        if let Some((_, due)) = self.ping {
            if now >= due {
                return Some(Stop::Io(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "http2: no PING ACK from the server within {:?}",
                        cfg.http2_ping_timeout
                    ),
                )));
            }
        } else if let Some(every) = cfg.http2_ping_interval {
            if now >= self.last_frame + every {
                self.pings_sent += 1;
                let data = self.pings_sent.to_be_bytes();
                self.ping = Some((data, now + cfg.http2_ping_timeout));
                self.conn
                    .inner
                    .state
                    .lock()
                    .queue(Job::Ping { ack: false, data });
            }
        }
        if let (Some(t), Some(d)) = (cfg.idle_conn_timeout, self.conn.idle_for()) {
            if d >= t {
                if let IdleCheck::Expired = self.conn.idle_check(t) {
                    self.conn.close_idle(CloseReason::IdleTimeout);
                    return Some(Stop::Done);
                }
            }
        }
        None
    }

    /// One decoded frame, through the header-block assembler.
    fn frame(&mut self, asm: &mut BlockAssembler, f: Frame<'_>) -> Result<(), Stop> {
        if !self.seen_first {
            // §3.4: the server's preface is a SETTINGS frame.
            if !matches!(f, Frame::Settings { ack: false, .. }) {
                return Err(Stop::Protocol(
                    ErrorCode::PROTOCOL_ERROR,
                    "the server's first frame is not SETTINGS".into(),
                ));
            }
            self.seen_first = true;
        }
        match asm.push(f)? {
            Assembled::Pending => Ok(()),
            Assembled::Block {
                stream,
                end_stream,
                block,
            } => self.headers(stream, end_stream, block),
            // §8.4: we said ENABLE_PUSH = 0, so a PUSH_PROMISE is a
            // connection error.
            Assembled::PushPromise { .. } => Err(Stop::Protocol(
                ErrorCode::PROTOCOL_ERROR,
                "PUSH_PROMISE with push disabled".into(),
            )),
            Assembled::Frame(f) => self.other(f),
        }
    }

    fn other(&mut self, f: Frame<'_>) -> Result<(), Stop> {
        match f {
            Frame::Data {
                stream,
                end_stream,
                data,
                flow_len,
            } => self.data(stream, end_stream, data, flow_len),
            Frame::Settings { ack: false, params } => self.settings(params),
            Frame::Settings { ack: true, .. } => Ok(()),
            Frame::Ping { ack: false, data } => {
                self.conn
                    .inner
                    .state
                    .lock()
                    .queue(Job::Ping { ack: true, data });
                Ok(())
            }
            Frame::Ping { ack: true, data } => {
                if self.ping.is_some_and(|(sent, _)| sent == data) {
                    self.ping = None;
                }
                Ok(())
            }
            Frame::RstStream { stream, code } => self.rst(stream, code),
            Frame::GoAway {
                last_stream,
                code,
                debug,
            } => {
                self.goaway(last_stream, code, debug);
                Ok(())
            }
            Frame::WindowUpdate { stream, increment } => self.window_update(stream, increment),
            // Gathered into blocks by the assembler; never here.
            Frame::Headers { .. } | Frame::Continuation { .. } | Frame::PushPromise { .. } => {
                Ok(())
            }
            Frame::Priority { .. } | Frame::Unknown { .. } => Ok(()),
        }
    }

    /// §5.1: a frame on a stream id we never opened (even: server-initiated,
    /// which we never accept; or above the last id we used) is a
    /// connection error.
    fn check_opened(st: &State, id: u32, what: &str) -> Result<(), Stop> {
        if id % 2 == 0 || id >= st.next_id {
            return Err(Stop::Protocol(
                ErrorCode::PROTOCOL_ERROR,
                format!("{what} on stream {id}, which was never opened"),
            ));
        }
        Ok(())
    }

    fn settings(&mut self, params: SettingsParams<'_>) -> Result<(), Stop> {
        let more_streams = {
            let mut st = self.conn.inner.state.lock();
            let old_window = st.peer.initial_window_size;
            let old_max = st.max_streams();
            let changes = st.peer.apply(params)?;
            st.seen_settings = true;
            let new_window = st.peer.initial_window_size;
            if new_window != old_window {
                // §6.9.2: the change applies to every open stream's window.
                for s in st.streams.values_mut() {
                    if s.send_window.adjust(old_window, new_window).is_err() {
                        return Err(Stop::Protocol(
                            ErrorCode::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window".into(),
                        ));
                    }
                }
            }
            let max_frame_size = st.peer.max_frame_size;
            let header_table = changes
                .header_table_min
                .map(|min| (min, st.peer.header_table_size));
            st.queue(Job::SettingsAck {
                header_table,
                max_frame_size,
            });
            self.ring_everyone = true;
            st.max_streams() > old_max
        };
        if more_streams {
            self.conn.capacity_freed();
        }
        Ok(())
    }

    fn headers(&mut self, id: u32, end_stream: bool, block: &[u8]) -> Result<(), Stop> {
        let max_list = self.conn.inner.cfg.max_response_header_bytes;
        let mut b = HeadBuilder::new();
        let decoded = self
            .decoder
            .decode(block, max_list, &mut |n, v| b.field(n, v));
        let too_large = match decoded {
            Ok(()) => false,
            Err(hpack::DecodeError::HeaderListTooLarge) => true,
            Err(e) => {
                return Err(Stop::Protocol(ErrorCode::COMPRESSION_ERROR, e.to_string()));
            }
        };
        let mut st = self.conn.inner.state.lock();
        Self::check_opened(&st, id, "HEADERS")?;
        let Some(s) = st.streams.get_mut(&id) else {
            // A stream we reset and forgot: ignore (§5.1, "closed").
            return Ok(());
        };
        if s.remote_end {
            drop(st);
            self.stream_error(
                id,
                ErrorCode::STREAM_CLOSED,
                "HEADERS after END_STREAM".into(),
            );
            return Ok(());
        }
        if too_large {
            let err = Error::new(
                ErrorKind::HeaderTooLarge,
                format!("http2: response header list larger than {max_list} bytes"),
            );
            s.error = Some((err, Failure::Other));
            let freed = st.reset(id, ErrorCode::CANCEL);
            self.rings.push(id);
            self.conn.unlock(st, freed);
            return Ok(());
        }
        let malformed = if !s.got_response {
            match b.finish() {
                Err(e) => Some(e.to_string()),
                Ok((status, _)) if status == StatusCode::SWITCHING_PROTOCOLS => {
                    // §8.6: HTTP/2 has no 101.
                    Some("101 Switching Protocols in HTTP/2".into())
                }
                Ok((status, headers)) if status.is_informational() => {
                    if end_stream {
                        Some("1xx response with END_STREAM".into())
                    } else {
                        s.informational.push((status, headers));
                        None
                    }
                }
                Ok((status, headers)) => match head::content_length(&headers) {
                    Err(e) => Some(e.to_string()),
                    Ok(cl) => {
                        let no_body = s.head_request
                            || status == StatusCode::NO_CONTENT
                            || status == StatusCode::NOT_MODIFIED;
                        s.content_length = if no_body { None } else { cl };
                        let cl_unmet = end_stream && !no_body && cl.is_some_and(|n| n != 0);
                        s.response = Some((status, headers));
                        s.got_response = true;
                        cl_unmet.then(|| "content-length with no DATA".to_string())
                    }
                },
            }
        } else if !end_stream {
            Some("trailers without END_STREAM".into())
        } else {
            match b.trailers() {
                Err(e) => Some(e.to_string()),
                Ok(t) => {
                    s.trailers = Some(t);
                    length_mismatch(s.content_length, s.received)
                }
            }
        };
        if let Some(why) = malformed {
            drop(st);
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, why);
            return Ok(());
        }
        let mut freed = false;
        if end_stream {
            s.remote_end = true;
            freed = st.settle(id);
        }
        self.rings.push(id);
        self.conn.unlock(st, freed);
        Ok(())
    }

    fn data(&mut self, id: u32, end_stream: bool, data: &[u8], flow_len: u32) -> Result<(), Stop> {
        let mut st = self.conn.inner.state.lock();
        // §6.9.1: the connection window counts every DATA frame, whatever
        // its stream.
        if st.recv_window.consume(flow_len).is_err() {
            return Err(Stop::Protocol(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window".into(),
            ));
        }
        Self::check_opened(&st, id, "DATA")?;
        let padding = flow_len as usize - data.len();
        let Some(s) = st.streams.get_mut(&id) else {
            // Reset and forgotten: the bytes go nowhere; the window comes
            // back at once.
            st.give_back(flow_len as usize);
            return Ok(());
        };
        if s.remote_end {
            st.give_back(flow_len as usize);
            drop(st);
            self.stream_error(id, ErrorCode::STREAM_CLOSED, "DATA after END_STREAM".into());
            return Ok(());
        }
        if s.recv_window.consume(flow_len).is_err() {
            st.give_back(flow_len as usize);
            drop(st);
            self.stream_error(
                id,
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the stream window".into(),
            );
            return Ok(());
        }
        let malformed = if !s.got_response {
            Some("DATA before the response head".to_string())
        } else {
            s.received += data.len() as u64;
            if s.head_request && !data.is_empty() {
                Some("DATA in a response to HEAD".into())
            } else if s.content_length.is_some_and(|n| s.received > n) {
                Some("more DATA than content-length".into())
            } else if end_stream {
                length_mismatch(s.content_length, s.received)
            } else {
                None
            }
        };
        if let Some(why) = malformed {
            st.give_back(flow_len as usize);
            drop(st);
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, why);
            return Ok(());
        }
        s.data.extend_from_slice(data);
        // Padding is consumed on arrival: its credit comes back now.
        if padding > 0 {
            let p = padding as u32;
            if let Some(inc) = s.recv_credit.consumed(p) {
                if !end_stream && s.recv_window.increase(inc).is_ok() {
                    st.queue(Job::WindowUpdate { id, increment: inc });
                }
            }
            st.give_back(padding);
        }
        let mut freed = false;
        if end_stream {
            if let Some(s) = st.streams.get_mut(&id) {
                s.remote_end = true;
            }
            freed = st.settle(id);
        }
        self.rings.push(id);
        self.conn.unlock(st, freed);
        Ok(())
    }

    fn rst(&mut self, id: u32, code: ErrorCode) -> Result<(), Stop> {
        let mut st = self.conn.inner.state.lock();
        // §6.4: RST_STREAM on an idle stream is a connection error.
        Self::check_opened(&st, id, "RST_STREAM")?;
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.local_end && s.remote_end && s.error.is_some() {
            // Already closed with its error (ours or an earlier reset):
            // the first word stands.
            return Ok(());
        }
        let complete = s.remote_end && s.error.is_none();
        if !complete {
            let (err, class) = if code == ErrorCode::REFUSED_STREAM {
                (
                    Error::new(
                        ErrorKind::Protocol,
                        "http2: the server refused the stream (REFUSED_STREAM)",
                    ),
                    Failure::NotProcessed,
                )
            } else {
                (
                    Error::new(
                        ErrorKind::Protocol,
                        format!("http2: the server reset the stream: {code}"),
                    ),
                    Failure::Other,
                )
            };
            s.error = Some((err, class));
        }
        // §8.1: after a complete response, RST_STREAM (NO_ERROR) only asks
        // us to stop sending the request body.
        s.local_end = true;
        s.remote_end = true;
        let freed = st.settle(id);
        self.rings.push(id);
        self.conn.unlock(st, freed);
        Ok(())
    }

    fn goaway(&mut self, last_stream: u32, code: ErrorCode, debug: &[u8]) {
        let g = GoAway {
            last_stream,
            code,
            debug: String::from_utf8_lossy(&debug[..debug.len().min(256)]).into_owned(),
        };
        let err = goaway_error(&g);
        let mut freed = false;
        {
            let mut st = self.conn.inner.state.lock();
            // §6.8: streams above the last id were not processed: they may
            // be retried on another connection.
            let above: Vec<u32> = st
                .streams
                .keys()
                .copied()
                .filter(|&id| id > last_stream)
                .collect();
            for id in above {
                if let Some(s) = st.streams.get_mut(&id) {
                    if s.error.is_none() {
                        s.error = Some((err.duplicate(), Failure::NotProcessed));
                    }
                    s.local_end = true;
                    s.remote_end = true;
                }
                freed |= st.settle(id);
            }
            st.goaway = Some(g);
            self.ring_everyone = true;
        }
        // It takes no new stream: the pool forgets it now.
        self.conn.inner.owner.closed(&self.conn);
        if freed || self.conn.streams() == 0 {
            // The pool no longer knows it: with no stream left it closes.
            self.conn.capacity_freed();
        }
    }

    fn window_update(&mut self, id: u32, increment: u32) -> Result<(), Stop> {
        let mut st = self.conn.inner.state.lock();
        if id == 0 {
            if st.send_window.increase(increment).is_err() {
                return Err(Stop::Protocol(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "WINDOW_UPDATE overflows the connection window".into(),
                ));
            }
            self.ring_everyone = true;
            return Ok(());
        }
        Self::check_opened(&st, id, "WINDOW_UPDATE")?;
        let Some(s) = st.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.send_window.increase(increment).is_err() {
            drop(st);
            self.stream_error(
                id,
                ErrorCode::FLOW_CONTROL_ERROR,
                "WINDOW_UPDATE overflows the stream window".into(),
            );
            return Ok(());
        }
        self.rings.push(id);
        Ok(())
    }

    /// Rings the bells of the streams whose state changed since the last
    /// time (see `rings`).
    fn ring_bells(&mut self) {
        if self.rings.is_empty() && !self.ring_everyone {
            return;
        }
        let st = self.conn.inner.state.lock();
        if std::mem::take(&mut self.ring_everyone) {
            st.ring_all();
        } else {
            for id in &self.rings {
                if let Some(s) = st.streams.get(id) {
                    let _ = s.bell.try_send(());
                }
            }
        }
        drop(st);
        self.rings.clear();
    }

    /// §5.4.2: a stream error resets that stream only; its caller gets a
    /// `Protocol` error naming the code.
    fn stream_error(&mut self, id: u32, code: ErrorCode, why: String) {
        let freed = {
            let mut st = self.conn.inner.state.lock();
            match st.streams.get_mut(&id) {
                Some(s) => {
                    if s.error.is_none() {
                        s.error = Some((
                            Error::new(
                                ErrorKind::Protocol,
                                format!("http2: stream error: {code}: {why}"),
                            ),
                            Failure::Other,
                        ));
                    }
                    let freed = st.reset(id, code);
                    self.rings.push(id);
                    freed
                }
                // Forgotten: reset it all the same, unless it was never
                // opened (§5.1: no RST_STREAM on an idle stream).
                None => {
                    if id % 2 == 1 && id < st.next_id {
                        st.queue(Job::Reset { id, code });
                    }
                    false
                }
            }
        };
        if freed {
            self.conn.capacity_freed();
        }
    }
}

/// §8.1.1: DATA that does not add up to the declared content-length.
fn length_mismatch(content_length: Option<u64>, received: u64) -> Option<String> {
    match content_length {
        Some(n) if n != received => {
            Some(format!("content-length {n} but {received} bytes of DATA"))
        }
        _ => None,
    }
}
