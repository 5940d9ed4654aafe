#!/usr/bin/env python3
"""A scripted HTTP/2 server for nethttp's fault tests (python `h2`, hyper-h2).

Listens on 127.0.0.1, port 0 (the kernel picks), prints ``PORT <n>`` as its
first stdout line, serves every connection on a thread of its own until it
is killed, and exits when its stdin closes if stdin is a pipe (so a test
that dies does not leave it running; give it /dev/null to run it by hand). Plain TCP speaks HTTP/2 with prior knowledge (h2c: the
client sends the connection preface directly); with ``--cert FILE --key
FILE`` (PEM) it speaks TLS with ALPN ``h2`` instead.

    python3 h2peer.py [--scenario NAME] [--cert FILE --key FILE] [--verbose]

Every response carries ``x-peer-conn`` (the connection's number: 0 for the
first connection accepted, 1 for the next, ...) and ``x-peer-stream`` (the
stream id). Request paths are matched without their query string. Pattern
bodies are byte ``i % 251`` at offset ``i``.

Scenarios (``--scenario``):

echo (default)
    200 with ``x-method``, ``x-path``, ``x-body-len`` (the request body's
    length), ``x-content-length`` (the request's content-length, or
    ``none``), ``x-saw-headers`` (the request's header names in order,
    pseudo-headers included, comma-joined) and the request body echoed back
    (with content-length). By path:
    ``/bytes/N``       N pattern bytes instead (frames sized to the flow-
                       control windows and the client's max frame size).
    ``/trailers``      body ``hello``, then trailers ``x-trailer: done``.
    ``/slow/MS``       waits MS milliseconds, then answers as echo.
    ``/continue``      for ``expect: 100-continue``: sends a 100 first (also
                       when the body came already), reads the body, then
                       answers as echo plus ``x-saw-expect`` (the request's
                       expect header, or ``none``).
    ``/status/N``      status N, empty body.
    ``/big-headers/N`` header ``x-big`` of N bytes (CONTINUATION frames when
                       it exceeds a frame), empty body.
max_streams_2
    SETTINGS_MAX_CONCURRENT_STREAMS = 2; every request waits 200 ms, then
    answers as echo plus ``x-peak-streams`` (the most streams open at once
    on this connection so far, counting any over the limit). A stream over
    the limit once the client has ACKed the SETTINGS gets
    RST_STREAM(REFUSED_STREAM), and a line on stderr.
goaway_after_1
    Connection 0: answers stream 1 as echo, then sends GOAWAY
    (last_stream_id=1, NO_ERROR) and ignores every later stream (no answer;
    PINGs and SETTINGS still work); closes 10 s later or when the client
    does. Later connections serve echo.
refuse_first
    On each connection the first request gets RST_STREAM(REFUSED_STREAM);
    later ones are served as echo.
rst_mid_body
    ``/bytes/N``: headers (content-length N) and N/2 bytes of the body, then
    RST_STREAM(INTERNAL_ERROR). Other paths: echo.
goaway_error
    On the first request: GOAWAY(last_stream_id=0, PROTOCOL_ERROR, debug
    data ``test says no``), then closes the connection (FIN).
tiny_window
    SETTINGS_INITIAL_WINDOW_SIZE = 10 (the connection window stays 65535);
    request bodies are read with a WINDOW_UPDATE of 10 for the stream per
    10 bytes received (the connection window is refilled as data comes).
    Answers 200 with ``x-body-len`` and ``x-body-sha256`` (hex), empty body.
ping
    Sends a PING right after its SETTINGS and one per request; answers each
    request as echo plus ``x-pings-acked`` (PING ACKs received so far on the
    connection, after waiting up to 200 ms for the ACK of the request's own
    PING).
silent_after_settings
    Sends its SETTINGS, takes the client's preface and SETTINGS (and ACKs
    them), then never sends anything again (no PING ACK, no response); it
    reads and drops what comes until the client closes.
data_after_reset
    ``/bytes/N``: headers (content-length N), then 1 KiB DATA frames every
    10 ms; once the client resets the stream it sends the rest of the N
    bytes at once as raw DATA frames on the reset stream (within the
    connection window, which it keeps counting, waiting up to 5 s for the
    client's connection WINDOW_UPDATEs). Other paths: echo.
"""

import argparse
import hashlib
import os
import re
import select
import socket
import ssl
import stat
import struct
import sys
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

SCENARIOS = (
    "echo",
    "max_streams_2",
    "goaway_after_1",
    "refuse_first",
    "rst_mid_body",
    "goaway_error",
    "tiny_window",
    "ping",
    "silent_after_settings",
    "data_after_reset",
)

VERBOSE = False


def log(msg):
    sys.stderr.write("h2peer: %s\n" % msg)
    sys.stderr.flush()


def debug(msg):
    if VERBOSE:
        log(msg)


def pattern(offset, n):
    """n bytes of the pattern (byte i % 251 at offset i) from `offset`."""
    start = offset % 251
    reps = (start + n) // 251 + 1
    return (bytes(range(251)) * reps)[start:start + n]


def raw_frame(ftype, flags, stream_id, payload=b""):
    """One HTTP/2 frame's bytes: the 9-byte header and the payload."""
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags])
            + struct.pack(">I", stream_id & 0x7FFFFFFF) + payload)


FRAME_DATA, FRAME_SETTINGS, FRAME_GOAWAY = 0x0, 0x4, 0x7
FLAG_END_STREAM = 0x1


class Stream:
    """What the connection has seen of one request."""

    def __init__(self, sid, headers):
        self.sid = sid
        self.headers = headers  # [(name, value)] as received, in order
        self.body = bytearray()
        self.ended = False  # END_STREAM received
        self.reset = False  # RST_STREAM received (or sent)
        self.unreturned = 0  # tiny_window: bytes not yet handed back

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None


class Conn:
    """One HTTP/2 connection: an I/O thread that owns the socket and feeds
    h2, and a thread per request that answers it. Everything touching the
    h2 state machine holds `self.cond`; bytes for the socket are queued in
    `self.out` (in h2's order) and the I/O thread writes them."""

    def __init__(self, sock, index, scenario):
        self.sock = sock
        self.index = index
        self.scenario = scenario
        self.cond = threading.Condition()
        self.out = bytearray()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.streams = {}
        self.requests = 0  # requests received on this connection
        self.peak_streams = 0
        self.pings_sent = 0
        self.acked_pings = set()
        self.closed = False  # the socket is gone (EOF or error)
        self.close_when_flushed = False
        self.discard_input = False  # read and drop everything from now on
        self.close_deadline = None  # time.monotonic() after which we close
        self.goaway_sent = False
        self.settings_acked = False  # the client ACKed our SETTINGS
        self.raw_sent = 0  # raw DATA bytes written behind h2's back
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.inbuf = bytearray()  # received bytes not yet a whole frame
        self.preface_seen = False
        self.silent_settings_seen = False

    # ---- sending (call with self.cond held) ----

    def pump(self):
        """Moves what h2 wants to send into the output queue."""
        data = self.h2.data_to_send()
        if data:
            self.out += data
        if self.out or self.close_when_flushed:
            try:
                self.wake_w.send(b"x")
            except OSError:
                pass

    def write_raw(self, data):
        self.pump()
        self.out += data
        self.pump()

    def start(self):
        wanted = {}
        if self.scenario == "max_streams_2":
            wanted[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 2
        if self.scenario == "tiny_window":
            wanted[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = 10
        with self.cond:
            if wanted:
                # The first SETTINGS frame carries `wanted`, but h2 must
                # treat them as pending until the client ACKs (a client may
                # send under the defaults until it has read our SETTINGS).
                defaults = self.h2.local_settings
                sent = h2.settings.Settings(client=False, initial_values={
                    **{k: defaults[k] for k in defaults}, **wanted})
                self.h2.local_settings = sent
                self.h2.initiate_connection()
                pending = h2.settings.Settings(
                    client=False, initial_values={k: defaults[k] for k in defaults})
                for k, v in wanted.items():
                    # The stream limit is enforced here, not by h2 (which
                    # makes a breach a connection error).
                    if k != h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                        pending[k] = v
                self.h2.local_settings = pending
            else:
                self.h2.initiate_connection()
            if self.scenario == "ping":
                self.send_ping()
            self.pump()

    def send_ping(self):
        self.pings_sent += 1
        opaque = struct.pack(">Q", self.pings_sent)
        self.h2.ping(opaque)
        return opaque

    def common_headers(self, st, status):
        return [
            (":status", str(status)),
            ("x-peer-conn", str(self.index)),
            ("x-peer-stream", str(st.sid)),
        ]

    def alive(self, st):
        return not (st.reset or self.closed or self.goaway_sent)

    def wait(self, pred, timeout):
        """Waits (self.cond held) until pred() or the timeout; returns pred()."""
        return self.cond.wait_for(pred, timeout)

    def respond(self, st, status, headers=(), body=b"", end=True, content_length=True):
        """Sends the response head and `body` within flow control. False
        when the stream or connection went away."""
        with self.cond:
            if not self.alive(st):
                return False
            hs = self.common_headers(st, status) + list(headers)
            if content_length and end:
                hs.append(("content-length", str(len(body))))
            try:
                self.h2.send_headers(st.sid, hs, end_stream=end and not body)
            except h2.exceptions.H2Error as e:
                debug("conn %d stream %d: send_headers: %r" % (self.index, st.sid, e))
                return False
            self.pump()
        if body:
            return self.send_body(st, body, end=end)
        return True

    def send_body(self, st, body, end=True):
        """Sends `body` in DATA frames within the stream and connection
        windows, waiting (up to 30 s each time) for WINDOW_UPDATEs."""
        view = memoryview(bytes(body))
        if not view:
            if end:
                with self.cond:
                    if not self.alive(st):
                        return False
                    try:
                        self.h2.end_stream(st.sid)
                    except h2.exceptions.H2Error:
                        return False
                    self.pump()
            return True
        pos = 0
        while pos < len(view):
            with self.cond:
                def room():
                    if not self.alive(st):
                        return True
                    try:
                        return self.h2.local_flow_control_window(st.sid) > 0
                    except h2.exceptions.H2Error:
                        return True
                if not self.wait(room, 30.0):
                    log("conn %d stream %d: no flow-control window for 30 s "
                        "(%d of %d bytes sent); giving up" % (self.index, st.sid, pos, len(view)))
                    return False
                if not self.alive(st):
                    return False
                try:
                    n = min(self.h2.local_flow_control_window(st.sid),
                            self.h2.max_outbound_frame_size, len(view) - pos)
                    last = pos + n == len(view)
                    self.h2.send_data(st.sid, view[pos:pos + n].tobytes(),
                                      end_stream=end and last)
                except h2.exceptions.H2Error as e:
                    debug("conn %d stream %d: send_data: %r" % (self.index, st.sid, e))
                    return False
                pos += n
                self.pump()
        return True

    def reset_stream(self, st, code):
        with self.cond:
            st.reset = True
            try:
                self.h2.reset_stream(st.sid, code)
            except h2.exceptions.H2Error:
                pass
            self.pump()

    def read_body(self, st, timeout=30.0):
        """Waits until the request body ended; False on reset/timeout."""
        with self.cond:
            ok = self.wait(lambda: st.ended or not self.alive(st), timeout)
            return ok and st.ended

    # ---- answering requests (one thread per request) ----

    def handle(self, st):
        try:
            self.handle_inner(st)
        except Exception as e:  # a peer bug: say so, keep serving
            log("conn %d stream %d: handler failed: %r" % (self.index, st.sid, e))
            self.reset_stream(st, h2.errors.ErrorCodes.INTERNAL_ERROR)

    def handle_inner(self, st):
        sc = self.scenario
        path = (st.header(":path") or "").split("?", 1)[0]
        m = re.fullmatch(r"/bytes/(\d+)", path)
        if sc == "rst_mid_body" and m:
            n = int(m.group(1))
            if self.respond(st, 200, [("content-length", str(n))], end=False):
                if self.send_body(st, pattern(0, n // 2), end=False):
                    self.reset_stream(st, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return
        if sc == "data_after_reset" and m:
            self.data_after_reset(st, int(m.group(1)))
            return
        if sc == "tiny_window":
            if not self.read_body(st):
                return
            self.respond(st, 200, [
                ("x-body-len", str(len(st.body))),
                ("x-body-sha256", hashlib.sha256(st.body).hexdigest()),
            ])
            return
        extra = []
        if sc == "max_streams_2":
            time.sleep(0.2)
            with self.cond:
                extra.append(("x-peak-streams", str(self.peak_streams)))
        if sc == "ping":
            with self.cond:
                opaque = self.send_ping()
                self.pump()
                self.wait(lambda: opaque in self.acked_pings or self.closed, 0.2)
                extra.append(("x-pings-acked", str(len(self.acked_pings))))
        self.echo(st, path, extra)

    def echo(self, st, path, extra):
        m = re.fullmatch(r"/bytes/(\d+)", path)
        if m:
            n = int(m.group(1))
            head = st.header(":method") == "HEAD"
            if self.respond(st, 200, extra + [("content-length", str(n))],
                            end=head, content_length=False) and not head:
                self.send_body(st, pattern(0, n))
            return
        if path == "/trailers":
            if self.respond(st, 200, extra, end=False):
                if self.send_body(st, b"hello", end=False):
                    with self.cond:
                        if self.alive(st):
                            try:
                                self.h2.send_headers(st.sid, [("x-trailer", "done")],
                                                     end_stream=True)
                            except h2.exceptions.H2Error:
                                pass
                            self.pump()
            return
        m = re.fullmatch(r"/slow/(\d+)", path)
        if m:
            time.sleep(int(m.group(1)) / 1000.0)
        if path == "/continue":
            with self.cond:
                if self.alive(st):
                    try:
                        self.h2.send_headers(st.sid, self.common_headers(st, 100))
                    except h2.exceptions.H2Error:
                        return
                    self.pump()
            extra = extra + [("x-saw-expect", st.header("expect") or "none")]
        m = re.fullmatch(r"/status/(\d+)", path)
        if m:
            if self.read_body(st):
                self.respond(st, int(m.group(1)), extra)
            return
        m = re.fullmatch(r"/big-headers/(\d+)", path)
        if m:
            if self.read_body(st):
                self.respond(st, 200, extra + [("x-big", "b" * int(m.group(1)))])
            return
        if not self.read_body(st):
            return
        headers = extra + [
            ("x-method", st.header(":method") or ""),
            ("x-path", st.header(":path") or ""),
            ("x-body-len", str(len(st.body))),
            ("x-content-length", st.header("content-length") or "none"),
            ("x-saw-headers", ",".join(k for k, _ in st.headers)),
        ]
        body = b"" if st.header(":method") == "HEAD" else bytes(st.body)
        self.respond(st, 200, headers, body)

    def data_after_reset(self, st, n):
        if not self.respond(st, 200, [("content-length", str(n))], end=False,
                            content_length=False):
            return
        chunk = 1024
        pos = 0
        # While the stream is open: 1 KiB every 10 ms, through h2.
        while pos < n:
            k = min(chunk, n - pos)
            if not self.send_body(st, pattern(pos, k), end=pos + k == n):
                break
            pos += k
            if pos < n:
                time.sleep(0.01)
        if pos >= n:
            return
        with self.cond:
            if not st.reset or self.closed:
                return  # the connection went away, not the stream
        # The client reset the stream: the rest as raw DATA frames, which h2
        # will not send on a closed stream. They count against the
        # connection window (h2's view of it is kept in step by hand).
        debug("conn %d stream %d: reset at %d of %d; sending the rest raw"
              % (self.index, st.sid, pos, n))
        while pos < n:
            with self.cond:
                def room():
                    return self.closed or self.h2.outbound_flow_control_window > 0
                if not self.wait(room, 5.0) or self.closed:
                    log("conn %d stream %d: no connection window for the "
                        "data after the reset (%d of %d sent)" % (self.index, st.sid, pos, n))
                    return
                k = min(chunk, n - pos, self.h2.outbound_flow_control_window,
                        self.h2.max_outbound_frame_size)
                flags = FLAG_END_STREAM if pos + k == n else 0
                self.write_raw(raw_frame(FRAME_DATA, flags, st.sid, pattern(pos, k)))
                self.h2.outbound_flow_control_window -= k
                self.raw_sent += k
                pos += k

    # ---- receiving (the I/O thread, self.cond held) ----

    def on_bytes(self, data):
        """Feeds h2 one frame at a time, so each event sees the connection
        as it was at its frame (open stream counts, say)."""
        if self.discard_input:
            return
        self.inbuf += data
        for chunk in self.split_frames():
            if self.scenario == "silent_after_settings" and not self.silent_pass(chunk):
                continue
            try:
                events = self.h2.receive_data(chunk)
            except h2.exceptions.ProtocolError as e:
                log("conn %d: protocol error from the client: %r (GOAWAY sent)"
                    % (self.index, e))
                self.pump()
                self.discard_input = True
                self.close_when_flushed = True
                return
            for ev in events:
                self.on_event(ev)
            if self.discard_input:
                break
        self.pump()

    def split_frames(self):
        """Takes the client preface, then whole frames, off `self.inbuf`."""
        buf = self.inbuf
        if not self.preface_seen:
            if len(buf) < 24:
                return
            self.preface_seen = True
            chunk = bytes(buf[:24])
            del buf[:24]
            yield chunk
        while len(buf) >= 9:
            end = 9 + int.from_bytes(buf[:3], "big")
            if len(buf) < end:
                return
            chunk = bytes(buf[:end])
            del buf[:end]
            yield chunk

    def silent_pass(self, chunk):
        """silent_after_settings: whether h2 gets this chunk: the preface,
        the client's first SETTINGS and SETTINGS ACKs; nothing else."""
        if len(chunk) == 24 and chunk.startswith(b"PRI "):
            return True
        if chunk[3] == FRAME_SETTINGS and chunk[4] & 0x1:
            return True  # the ACK of ours
        if chunk[3] == FRAME_SETTINGS and not self.silent_settings_seen:
            self.silent_settings_seen = True
            return True
        debug("conn %d: silent: dropping frame type %d" % (self.index, chunk[3]))
        return False

    def on_event(self, ev):
        debug("conn %d: %r" % (self.index, ev))
        sc = self.scenario
        if isinstance(ev, h2.events.RequestReceived):
            st = Stream(ev.stream_id, list(ev.headers))
            self.streams[ev.stream_id] = st
            self.requests += 1
            self.peak_streams = max(self.peak_streams, self.h2.open_inbound_streams)
            if ev.stream_ended is not None:
                st.ended = True
            if sc == "max_streams_2" and self.settings_acked and self.h2.open_inbound_streams > 2:
                log("conn %d: stream %d exceeds MAX_CONCURRENT_STREAMS=2 "
                    "(%d open): RST_STREAM(REFUSED_STREAM)"
                    % (self.index, st.sid, self.h2.open_inbound_streams))
                st.reset = True
                self.h2.reset_stream(st.sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                return
            if sc == "goaway_after_1" and self.index == 0 and st.sid != 1:
                debug("conn %d: ignoring stream %d" % (self.index, st.sid))
                return
            if sc == "refuse_first" and self.requests == 1:
                st.reset = True
                self.h2.reset_stream(st.sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                return
            if sc == "goaway_error":
                self.h2.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR,
                                         additional_data=b"test says no",
                                         last_stream_id=0)
                self.goaway_sent = True
                self.discard_input = True
                self.close_when_flushed = True
                return
            target = self.handle
            if sc == "goaway_after_1" and self.index == 0:
                target = self.handle_then_goaway
            threading.Thread(target=target, args=(st,), daemon=True).start()
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.body += ev.data
            self.give_back(st, ev.stream_id, ev.flow_controlled_length)
            if st is not None and ev.stream_ended is not None:
                st.ended = True
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.reset = True
        elif isinstance(ev, h2.events.SettingsAcknowledged):
            self.settings_acked = True
        elif isinstance(ev, h2.events.PingAckReceived):
            self.acked_pings.add(bytes(ev.ping_data))
        elif isinstance(ev, h2.events.ConnectionTerminated):
            debug("conn %d: client GOAWAY %r" % (self.index, ev))
        self.cond.notify_all()

    def give_back(self, st, sid, n):
        """Hands received flow-controlled bytes back to the client."""
        if n <= 0:
            return
        if self.scenario != "tiny_window":
            try:
                self.h2.acknowledge_received_data(n, sid)
            except h2.exceptions.H2Error:
                pass
            return
        # tiny_window: the connection window as the data comes; the stream
        # window 10 bytes at a time, for every 10 bytes received.
        self.h2.increment_flow_control_window(n)
        if st is None:
            return
        st.unreturned += n
        while st.unreturned >= 10:
            st.unreturned -= 10
            try:
                self.h2.increment_flow_control_window(10, sid)
            except h2.exceptions.H2Error:
                break

    def handle_then_goaway(self, st):
        self.handle(st)
        with self.cond:
            # A raw GOAWAY keeps h2 running (PING, SETTINGS, WINDOW_UPDATE
            # still answered); later streams are ignored.
            payload = struct.pack(">II", 1, h2.errors.ErrorCodes.NO_ERROR)
            self.write_raw(raw_frame(FRAME_GOAWAY, 0, 0, payload))
            self.goaway_sent = True
            self.close_deadline = time.monotonic() + 10.0
            self.cond.notify_all()

    # ---- the I/O thread ----

    def run(self):
        try:
            self.start()
            self.io_loop()
        except Exception as e:
            log("conn %d: %r" % (self.index, e))
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()
            try:
                self.sock.close()
            except OSError:
                pass
            self.wake_r.close()
            self.wake_w.close()
            debug("conn %d: closed" % self.index)

    def io_loop(self):
        sock = self.sock
        sock.setblocking(False)
        is_tls = isinstance(sock, ssl.SSLSocket)
        shut = False
        drain_until = None
        while True:
            with self.cond:
                want_write = bool(self.out)
                if self.close_when_flushed and not self.out and not shut:
                    shut = True
                    drain_until = time.monotonic() + 2.0
                    try:
                        sock.shutdown(socket.SHUT_WR)  # FIN (TLS: no close_notify)
                    except OSError:
                        pass
            now = time.monotonic()
            if drain_until is not None and now >= drain_until:
                return
            if self.close_deadline is not None and now >= self.close_deadline:
                return
            timeout = 0.5
            if is_tls and sock.pending():
                timeout = 0
            r, w, _ = select.select([sock, self.wake_r], [sock] if want_write else [], [], timeout)
            if self.wake_r in r:
                try:
                    while self.wake_r.recv(4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
            if w:
                with self.cond:
                    chunk = bytes(self.out[:256 * 1024])
                try:
                    sent = sock.send(chunk)
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    sent = 0
                except OSError as e:
                    debug("conn %d: send: %r" % (self.index, e))
                    return
                with self.cond:
                    del self.out[:sent]
            if sock in r or (is_tls and sock.pending()):
                while True:
                    try:
                        data = sock.recv(256 * 1024)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        break
                    except OSError as e:
                        debug("conn %d: recv: %r" % (self.index, e))
                        return
                    if not data:
                        debug("conn %d: EOF" % self.index)
                        return
                    with self.cond:
                        self.on_bytes(data)
                    if not (is_tls and sock.pending()):
                        break


def serve(listener, scenario, tls_ctx):
    index = 0
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_conn, args=(sock, index, scenario, tls_ctx),
                         daemon=True).start()
        index += 1


def serve_conn(sock, index, scenario, tls_ctx):
    if tls_ctx is not None:
        try:
            sock.settimeout(10.0)
            sock = tls_ctx.wrap_socket(sock, server_side=True)
            if sock.selected_alpn_protocol() != "h2":
                log("conn %d: ALPN %r, not h2" % (index, sock.selected_alpn_protocol()))
                sock.close()
                return
        except (OSError, ssl.SSLError) as e:
            log("conn %d: TLS handshake failed: %r" % (index, e))
            sock.close()
            return
    Conn(sock, index, scenario).run()


def watch_stdin():
    """Exits the process when stdin, a pipe, closes (the test that started
    us died or dropped its handle). Any other stdin (a file, /dev/null,
    /dev/zero, a terminal) is left alone: the peer then runs until killed."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return
    try:
        while sys.stdin.buffer.read1(4096):
            pass
    except Exception:
        pass
    os._exit(0)


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="echo", choices=SCENARIOS)
    ap.add_argument("--cert", help="PEM certificate chain: serve TLS with ALPN h2")
    ap.add_argument("--key", help="PEM private key for --cert")
    ap.add_argument("--verbose", action="store_true", help="log events to stderr")
    args = ap.parse_args()
    VERBOSE = args.verbose
    tls_ctx = None
    if args.cert or args.key:
        if not (args.cert and args.key):
            ap.error("--cert and --key go together")
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(args.cert, args.key)
        tls_ctx.set_alpn_protocols(["h2"])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write("PORT %d\n" % listener.getsockname()[1])
    sys.stdout.flush()
    try:
        serve(listener, args.scenario, tls_ctx)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
