//! The connect step: from resolved addresses to one connected [`Socket`].
//!
//! Go's `sysDialer.dialParallel` and `dialSerial`, as RFC 8305 ("happy
//! eyeballs") asks:
//!
//! - The addresses split by family into *primaries* (the first address's
//!   family) and *fallbacks* (the other), each kept in resolver order.
//! - Each list is tried one address at a time. An attempt gets an equal
//!   share of what remains of the connect timeout, but at least 2 s
//!   (Go's `partialDeadline`), so one dead address cannot eat the whole
//!   timeout and a long list cannot starve each attempt.
//! - The fallbacks start after the happy-eyeballs delay, or at once when
//!   the primaries have all failed. The first connection made wins; an
//!   attempt still under way is abandoned and its socket closed.
//!
//! The built-in dialer races on the dialling thread itself: each attempt is
//! a non-blocking `connect` and one `poll` waits on both families' attempts
//! and on the next timer. A user's [`Dial`](crate::Dial) blocks, so when its
//! families race each family runs on a thread of its own (started through
//! the crate's one spawn point and counted like every other), while the
//! dialling thread waits for the first success. With one family, or no
//! delay, every dialer runs on the dialling thread alone.
//!
//! `connect_start` and `connect_done` fire for every attempt, on the thread
//! that makes it; an abandoned attempt reports `connect_done` with an error
//! of kind `Interrupted`, as Go reports the canceled loser.

use std::{
    io,
    net::SocketAddr,
    os::fd::OwnedFd,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rustix::event::{PollFd, PollFlags, Timespec};
use socket2::{Domain, SockAddr, Type};

use crate::{
    net::{Dial, Hook, NO_ADDR, Socket, TcpOptions},
    threads::Threads,
    trace::ClientTrace,
};

/// Go's `saneMinimum`: no attempt gets less than this of the connect
/// timeout unless less than this remains in all.
const SANE_MINIMUM: Duration = Duration::from_secs(2);

/// What a dial needs besides its addresses: shared by the attempts, moved
/// into racing threads.
#[derive(Clone)]
pub(crate) struct Attempts {
    pub(crate) tcp: TcpOptions,
    /// The happy-eyeballs delay; `None`: all addresses in one list.
    pub(crate) delay: Option<Duration>,
    /// The end of the whole connect (the connect timeout and the request's
    /// deadline, whichever is first).
    pub(crate) until: Option<Instant>,
    pub(crate) trace: Option<Arc<dyn ClientTrace>>,
    /// The transport's threads, for racing threads.
    pub(crate) threads: Arc<Threads>,
}

/// The end of the next attempt, with `left` addresses (this one included)
/// still to try in its list (Go's `partialDeadline`).
fn attempt_until(now: Instant, until: Option<Instant>, left: usize) -> io::Result<Option<Instant>> {
    let Some(until) = until else {
        return Ok(None);
    };
    let remaining = until.saturating_duration_since(now);
    if remaining.is_zero() {
        return Err(timed_out());
    }
    let share = remaining / u32::try_from(left.max(1)).unwrap_or(u32::MAX);
    let share = if share >= SANE_MINIMUM {
        share
    } else {
        remaining.min(SANE_MINIMUM)
    };
    Ok(Some(now + share))
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

fn abandoned() -> io::Error {
    io::Error::new(
        io::ErrorKind::Interrupted,
        "another address connected first",
    )
}

/// Splits `addrs` into the first address's family and the other, keeping
/// their order (Go's `addrList.partition`).
pub(crate) fn partition(addrs: &[SocketAddr]) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let Some(first) = addrs.first() else {
        return (Vec::new(), Vec::new());
    };
    addrs.iter().partition(|a| a.is_ipv4() == first.is_ipv4())
}

impl Attempts {
    fn trace(&self) -> Option<&dyn ClientTrace> {
        self.trace.as_deref()
    }

    /// The built-in TCP dialer over `addrs`.
    pub(crate) fn tcp(&self, addrs: &[SocketAddr]) -> io::Result<Socket> {
        let (primaries, fallbacks) = match self.delay {
            Some(_) => partition(addrs),
            None => (addrs.to_vec(), Vec::new()),
        };
        let dest = |list: Vec<SocketAddr>| -> Vec<Dest> {
            list.into_iter()
                .map(|a| Dest {
                    addr: SockAddr::from(a),
                    reported: a,
                })
                .collect()
        };
        let mut race = Race::new(self, dest(primaries), dest(fallbacks));
        let sock = race.run()?;
        let sock = Socket::Tcp(sock.into());
        self.tune(&sock);
        Ok(sock)
    }

    /// One Unix socket: the same machinery, one attempt, reported as
    /// `0.0.0.0:0`.
    pub(crate) fn unix(&self, path: &Path) -> io::Result<Socket> {
        let dest = Dest {
            addr: SockAddr::unix(path)?,
            reported: NO_ADDR,
        };
        let mut race = Race::new(self, vec![dest], Vec::new());
        Ok(Socket::Unix(OwnedFd::from(race.run()?).into()))
    }

    /// A user's dialer over `addrs`: serial on this thread, or the
    /// families raced on threads of their own.
    pub(crate) fn custom(
        &self,
        dialer: &Hook<dyn Dial>,
        addrs: &[SocketAddr],
    ) -> io::Result<Socket> {
        let (primaries, fallbacks) = match self.delay {
            Some(_) => partition(addrs),
            None => (addrs.to_vec(), Vec::new()),
        };
        let sock = match (self.delay, fallbacks.is_empty()) {
            (Some(delay), false) => self.race_threads(dialer, primaries, fallbacks, delay)?,
            _ => serial(self, dialer, &primaries, &AtomicBool::new(false))?,
        };
        self.tune(&sock);
        Ok(sock)
    }

    /// The TCP options every socket gets, whoever dialled it. Failures
    /// leave the socket as it was: an option is a wish, not a condition.
    fn tune(&self, sock: &Socket) {
        if let Socket::Tcp(s) = sock {
            let _ = s.set_nodelay(self.tcp.nodelay);
            if let Some(idle) = self.tcp.keepalive {
                let ka = socket2::TcpKeepalive::new()
                    .with_time(idle)
                    .with_interval(idle);
                let _ = socket2::SockRef::from(s).set_tcp_keepalive(&ka);
            }
        }
    }

    /// Races two families of a blocking dialer: each on a counted thread,
    /// the fallback after `delay` (or at once when the primaries have all
    /// failed); this thread waits for the first success.
    fn race_threads(
        &self,
        dialer: &Hook<dyn Dial>,
        primaries: Vec<SocketAddr>,
        fallbacks: Vec<SocketAddr>,
        delay: Duration,
    ) -> io::Result<Socket> {
        // Unbounded: a racer never blocks on its send, and a socket sent
        // after this thread gave up is dropped (closed) with the channel.
        let (tx, rx) = crossbeam_channel::unbounded::<(bool, io::Result<Socket>)>();
        let won = Arc::new(AtomicBool::new(false));
        let start = |primary: bool, list: Vec<SocketAddr>| -> io::Result<()> {
            let (me, dialer, tx, won) = (self.clone(), dialer.clone(), tx.clone(), won.clone());
            let name = format!("nethttp-dial-{}", if primary { "a" } else { "b" });
            self.threads.spawn_transient(name, move || {
                let res = serial(&me, &dialer, &list, &won);
                let _ = tx.send((primary, res));
            })
        };
        start(true, primaries)?;
        let fallback_at = Instant::now() + delay;
        let mut fallbacks = Some(fallbacks);
        let mut failed: [Option<io::Error>; 2] = [None, None];
        loop {
            let wait_until = match (&fallbacks, self.until) {
                (Some(_), Some(u)) => Some(u.min(fallback_at)),
                (Some(_), None) => Some(fallback_at),
                (None, u) => u,
            };
            let got = match wait_until {
                Some(t) => rx.recv_deadline(t).ok(),
                None => rx.recv().ok(),
            };
            match got {
                Some((_, Ok(sock))) => {
                    won.store(true, Ordering::SeqCst);
                    return Ok(sock);
                }
                Some((primary, Err(e))) => {
                    failed[usize::from(!primary)] = Some(e);
                    if primary {
                        if let Some(list) = fallbacks.take() {
                            start(false, list)?;
                        }
                    }
                }
                None if fallbacks.is_some() && Instant::now() >= fallback_at => {
                    if let Some(list) = fallbacks.take() {
                        start(false, list)?;
                    }
                }
                None if self.until.is_some_and(|u| Instant::now() >= u) => {
                    won.store(true, Ordering::SeqCst);
                    return Err(timed_out());
                }
                None => {}
            }
            if fallbacks.is_none() && failed.iter().all(Option::is_some) {
                let [primary, fallback] = failed;
                return Err(primary.or(fallback).unwrap_or_else(timed_out));
            }
        }
    }
}

/// A user's dialer over one list, one address at a time, until one
/// connects, the list ends, or another racer has won (`won`).
fn serial(
    me: &Attempts,
    dialer: &Hook<dyn Dial>,
    list: &[SocketAddr],
    won: &AtomicBool,
) -> io::Result<Socket> {
    let mut first_err = None;
    for (i, &addr) in list.iter().enumerate() {
        if won.load(Ordering::SeqCst) {
            return Err(first_err.unwrap_or_else(abandoned));
        }
        let now = Instant::now();
        let until = match attempt_until(now, me.until, list.len() - i) {
            Ok(u) => u,
            Err(e) => return Err(first_err.unwrap_or(e)),
        };
        if let Some(t) = me.trace() {
            t.connect_start(addr);
        }
        let res = dialer.dial(addr, until.map(|u| u.saturating_duration_since(now)));
        if let Some(t) = me.trace() {
            t.connect_done(addr, res.as_ref().err());
        }
        match res {
            Ok(sock) => return Ok(sock),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to dial")))
}

/// One address to connect to, and how trace hooks report it.
struct Dest {
    addr: SockAddr,
    reported: SocketAddr,
}

/// A non-blocking connect under way.
struct Pending {
    sock: socket2::Socket,
    reported: SocketAddr,
    until: Option<Instant>,
}

/// One family's list: the next address to try and the attempt under way.
struct Lane {
    dests: std::vec::IntoIter<Dest>,
    pending: Option<Pending>,
    first_err: Option<io::Error>,
    started: bool,
}

impl Lane {
    fn new(dests: Vec<Dest>) -> Lane {
        Lane {
            dests: dests.into_iter(),
            pending: None,
            first_err: None,
            started: false,
        }
    }

    fn done(&self) -> bool {
        self.pending.is_none() && self.dests.len() == 0
    }

    fn fail(&mut self, e: io::Error) {
        self.first_err.get_or_insert(e);
    }
}

/// The built-in dialer's race: both families on this thread.
struct Race<'a> {
    me: &'a Attempts,
    lanes: [Lane; 2],
    fallback_at: Option<Instant>,
}

impl<'a> Race<'a> {
    fn new(me: &'a Attempts, primaries: Vec<Dest>, fallbacks: Vec<Dest>) -> Race<'a> {
        let fallback_at = match (fallbacks.is_empty(), me.delay) {
            (false, Some(d)) => Some(Instant::now() + d),
            _ => None,
        };
        let mut lanes = [Lane::new(primaries), Lane::new(fallbacks)];
        lanes[0].started = true;
        Race {
            me,
            lanes,
            fallback_at,
        }
    }

    fn run(&mut self) -> io::Result<socket2::Socket> {
        loop {
            let now = Instant::now();
            for i in 0..2 {
                // The fallbacks start at their time, or at once when the
                // primaries have all failed (just now, perhaps).
                if i == 1 && (self.fallback_at.is_some_and(|t| now >= t) || self.lanes[0].done()) {
                    self.lanes[1].started = true;
                }
                self.expire(i, now);
                if let Some(sock) = self.start_next(i, now) {
                    self.abandon_others(i);
                    return finish(sock);
                }
            }
            if self.lanes.iter().all(Lane::done) {
                let [a, b] = [
                    self.lanes[0].first_err.take(),
                    self.lanes[1].first_err.take(),
                ];
                return Err(a.or(b).unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no address to dial")
                }));
            }
            if let Some((i, sock)) = self.wait()? {
                self.abandon_others(i);
                return finish(sock);
            }
        }
    }

    /// Ends lane `i`'s attempt if its share of the timeout is spent.
    fn expire(&mut self, i: usize, now: Instant) {
        let lane = &mut self.lanes[i];
        if lane
            .pending
            .as_ref()
            .is_some_and(|p| p.until.is_some_and(|u| now >= u))
        {
            if let Some(p) = lane.pending.take() {
                let e = timed_out();
                if let Some(t) = self.me.trace() {
                    t.connect_done(p.reported, Some(&e));
                }
                lane.fail(e);
            }
        }
    }

    /// Starts lane `i`'s next attempts until one is under way or the list
    /// ends; a connect that completes at once is returned.
    fn start_next(&mut self, i: usize, now: Instant) -> Option<socket2::Socket> {
        let me = self.me;
        let lane = &mut self.lanes[i];
        if !lane.started {
            return None;
        }
        while lane.pending.is_none() {
            let left = lane.dests.len();
            let dest = lane.dests.next()?;
            let until = match attempt_until(now, me.until, left) {
                Ok(u) => u,
                Err(e) => {
                    // Out of time: the rest of this list is not tried.
                    lane.fail(e);
                    lane.dests = Vec::new().into_iter();
                    return None;
                }
            };
            if let Some(t) = me.trace() {
                t.connect_start(dest.reported);
            }
            match start(&dest, &me.tcp) {
                Ok((sock, true)) => {
                    if let Some(t) = me.trace() {
                        t.connect_done(dest.reported, None);
                    }
                    return Some(sock);
                }
                Ok((sock, false)) => {
                    lane.pending = Some(Pending {
                        sock,
                        reported: dest.reported,
                        until,
                    });
                }
                Err(e) => {
                    if let Some(t) = me.trace() {
                        t.connect_done(dest.reported, Some(&e));
                    }
                    lane.fail(e);
                }
            }
        }
        None
    }

    /// Closes the attempts still under way in the other lane.
    fn abandon_others(&mut self, winner: usize) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            if i == winner {
                continue;
            }
            if let Some(p) = lane.pending.take() {
                if let Some(t) = self.me.trace() {
                    t.connect_done(p.reported, Some(&abandoned()));
                }
            }
        }
    }

    /// Waits for an attempt to finish or the next timer (an attempt's end,
    /// the fallback's start), then settles what finished: the winner and
    /// its lane, if one connected.
    fn wait(&mut self) -> io::Result<Option<(usize, socket2::Socket)>> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut fds = Vec::with_capacity(2);
        let mut owners = Vec::with_capacity(2);
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(p) = &lane.pending {
                fds.push(PollFd::new(&p.sock, PollFlags::OUT));
                owners.push(i);
                next = earliest(next, p.until);
            }
        }
        if !self.lanes[1].started {
            next = earliest(next, self.fallback_at);
        }
        let timeout = next
            .map(|t| Timespec::try_from(t.saturating_duration_since(now)))
            .transpose()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "timeout out of range"))?;
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(e) if e == rustix::io::Errno::INTR => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&owners)
            .filter(|(fd, _)| !fd.revents().is_empty())
            .map(|(_, &i)| i)
            .collect();
        drop(fds);
        for i in ready {
            let Some(p) = self.lanes[i].pending.take() else {
                continue;
            };
            let res = match p.sock.take_error() {
                Ok(None) => Ok(()),
                Ok(Some(e)) | Err(e) => Err(e),
            };
            if let Some(t) = self.me.trace() {
                t.connect_done(p.reported, res.as_ref().err());
            }
            match res {
                Ok(()) => return Ok(Some((i, p.sock))),
                Err(e) => self.lanes[i].fail(e),
            }
        }
        Ok(None)
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Opens a socket for `dest` and starts a non-blocking connect: the socket,
/// and whether it connected at once.
fn start(dest: &Dest, tcp: &TcpOptions) -> io::Result<(socket2::Socket, bool)> {
    let domain = dest.addr.domain();
    let protocol = (domain != Domain::UNIX).then_some(socket2::Protocol::TCP);
    // Non-blocking from the start where the platform can say so in the
    // `socket` call: one system call fewer per connection.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let sock = socket2::Socket::new(domain, Type::STREAM.nonblocking(), protocol)?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let sock = {
        let sock = socket2::Socket::new(domain, Type::STREAM, protocol)?;
        sock.set_nonblocking(true)?;
        sock
    };
    if domain != Domain::UNIX {
        if let Some(ip) = tcp.local_address {
            sock.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
        }
    }
    match sock.connect(&dest.addr) {
        Ok(()) => Ok((sock, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((sock, false)),
        // A Unix socket with a full backlog fails with EAGAIN: no connect
        // is under way, so it is an error like a refusal.
        Err(e) => Err(e),
    }
}

/// A connected socket back to blocking mode, as the connection's threads
/// use it.
fn finish(sock: socket2::Socket) -> io::Result<socket2::Socket> {
    // One `ioctl(FIONBIO)`, where `set_nonblocking` reads the flags and
    // writes them back (two `fcntl`s).
    rustix::io::ioctl_fionbio(&sock, false)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use std::{
        net::{Ipv6Addr, TcpListener},
        sync::{Mutex, atomic::AtomicUsize},
    };

    use super::*;

    /// Records `connect_start` / `connect_done` as `+addr` and
    /// `-addr:outcome` (`ok`, or the error's kind).
    #[derive(Default)]
    struct Hooks(Mutex<Vec<String>>);

    impl ClientTrace for Hooks {
        fn connect_start(&self, addr: SocketAddr) {
            self.0.lock().unwrap().push(format!("+{addr}"));
        }
        fn connect_done(&self, addr: SocketAddr, err: Option<&io::Error>) {
            let how = err.map_or("ok".to_string(), |e| format!("{:?}", e.kind()));
            self.0.lock().unwrap().push(format!("-{addr}:{how}"));
        }
    }

    fn attempts(delay: Option<Duration>, within: Duration, trace: &Arc<Hooks>) -> Attempts {
        Attempts {
            tcp: TcpOptions::default(),
            delay,
            until: Some(Instant::now() + within),
            trace: Some(trace.clone() as Arc<dyn ClientTrace>),
            threads: Threads::new(256 * 1024, Duration::ZERO, 0),
        }
    }

    /// A listener on `[::1]` whose accept queue is full, so further SYNs
    /// are dropped and connects to it hang: the dead address of happy
    /// eyeballs, on loopback. `None` (the test skips, loudly) when ::1 is
    /// not usable or the queue does not fill.
    fn dead_v6() -> Option<(SocketAddr, Vec<socket2::Socket>)> {
        let l = socket2::Socket::new(Domain::IPV6, Type::STREAM, None).ok()?;
        l.bind(&SockAddr::from(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))))
            .ok()?;
        l.listen(0).ok()?;
        let addr = l.local_addr().ok()?.as_socket()?;
        let mut keep = vec![l];
        for _ in 0..8 {
            let c = socket2::Socket::new(Domain::IPV6, Type::STREAM, None).ok()?;
            c.set_nonblocking(true).ok()?;
            let _ = c.connect(&SockAddr::from(addr));
            keep.push(c);
        }
        // Proof that it is dead: a blocking connect times out.
        let probe = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        if probe.is_ok() {
            eprintln!("SKIP: could not make a dead listener on ::1");
            return None;
        }
        Some((addr, keep))
    }

    #[test]
    fn partial_deadlines_follow_go() {
        let now = Instant::now();
        let at = |within: u64, left| {
            attempt_until(now, Some(now + Duration::from_secs(within)), left)
                .unwrap()
                .map(|t| t - now)
        };
        // An equal share of what remains...
        assert_eq!(at(30, 3), Some(Duration::from_secs(10)));
        // ...but at least 2 s, unless less remains in all.
        assert_eq!(at(30, 100), Some(Duration::from_secs(2)));
        assert_eq!(at(1, 2), Some(Duration::from_secs(1)));
        assert_eq!(attempt_until(now, None, 3).unwrap(), None);
        let spent = attempt_until(now, Some(now), 1).unwrap_err();
        assert_eq!(spent.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn families_split_in_order() {
        let a: SocketAddr = "[::1]:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let c: SocketAddr = "[::1]:3".parse().unwrap();
        assert_eq!(partition(&[a, b, c]), (vec![a, c], vec![b]));
        assert_eq!(partition(&[b, a]), (vec![b], vec![a]));
        assert_eq!(partition(&[]), (vec![], vec![]));
    }

    #[test]
    fn a_dead_primary_loses_to_the_fallback_after_the_delay() {
        let Some((dead, _keep)) = dead_v6() else {
            return;
        };
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let live_addr = live.local_addr().unwrap();
        let trace = Arc::new(Hooks::default());
        let a = attempts(
            Some(Duration::from_millis(100)),
            Duration::from_secs(20),
            &trace,
        );
        let started = Instant::now();
        let sock = a.tcp(&[dead, live_addr]).expect("the fallback connects");
        let took = started.elapsed();
        assert_eq!(sock.peer_addr().unwrap(), live_addr);
        assert!(
            took >= Duration::from_millis(100),
            "fallback waited for the delay: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(
            *trace.0.lock().unwrap(),
            [
                format!("+{dead}"),
                format!("+{live_addr}"),
                format!("-{live_addr}:ok"),
                format!("-{dead}:Interrupted"),
            ]
        );
    }

    #[test]
    fn a_refused_primary_starts_the_fallback_at_once() {
        // A port nobody listens on: refused at once.
        let closed = {
            let l = TcpListener::bind("[::1]:0");
            let Ok(l) = l else {
                eprintln!("SKIP: ::1 not usable");
                return;
            };
            l.local_addr().unwrap()
        };
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let trace = Arc::new(Hooks::default());
        let a = attempts(
            Some(Duration::from_secs(30)),
            Duration::from_secs(60),
            &trace,
        );
        let started = Instant::now();
        let sock = a
            .tcp(&[closed, live.local_addr().unwrap()])
            .expect("fallback");
        assert_eq!(sock.peer_addr().unwrap(), live.local_addr().unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "did not wait out the delay"
        );
        let events = trace.0.lock().unwrap().clone();
        assert_eq!(
            events[1],
            format!("-{closed}:ConnectionRefused"),
            "{events:?}"
        );
    }

    #[test]
    fn the_timeout_spans_every_address() {
        let Some((dead, _keep)) = dead_v6() else {
            return;
        };
        let Some((dead2, _keep2)) = dead_v6() else {
            return;
        };
        let trace = Arc::new(Hooks::default());
        for delay in [None, Some(Duration::from_millis(50))] {
            let a = attempts(delay, Duration::from_millis(800), &trace);
            let started = Instant::now();
            let err = a.tcp(&[dead, dead2]).unwrap_err();
            let took = started.elapsed();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(took >= Duration::from_millis(750), "{took:?}");
            assert!(
                took < Duration::from_millis(1500),
                "one timeout for all: {took:?}"
            );
        }
    }

    #[test]
    fn a_custom_dialer_races_on_counted_threads() {
        let Some((dead, _keep)) = dead_v6() else {
            return;
        };
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let live_addr = live.local_addr().unwrap();
        let trace = Arc::new(Hooks::default());
        let a = attempts(
            Some(Duration::from_millis(50)),
            Duration::from_secs(4),
            &trace,
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let dialer: Hook<dyn Dial> = Hook(Arc::new(move |addr, timeout: Option<Duration>| {
            c.fetch_add(1, Ordering::SeqCst);
            let t = timeout.expect("the connect timeout is passed on");
            std::net::TcpStream::connect_timeout(&addr, t).map(Socket::from)
        }));
        let sock = a
            .custom(&dialer, &[dead, live_addr])
            .expect("fallback wins");
        assert!(matches!(&sock, Socket::Tcp(s) if s.peer_addr().unwrap() == live_addr));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The loser's thread ends with its attempt's share (2 s here).
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.threads.working() != 0 {
            assert!(Instant::now() < deadline, "racing threads never ended");
            std::thread::sleep(Duration::from_millis(10));
        }
        // One address: no thread at all.
        let a1 = attempts(
            Some(Duration::from_millis(50)),
            Duration::from_secs(4),
            &trace,
        );
        a1.custom(&dialer, &[live_addr]).expect("direct");
        assert_eq!(a1.threads.working(), 0);
    }

    #[test]
    fn unix_sockets_connect_and_report_no_address() {
        let dir = std::env::temp_dir().join(format!("nethttp-unix-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("connect.sock");
        let _ = std::fs::remove_file(&path);
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let trace = Arc::new(Hooks::default());
        let a = attempts(None, Duration::from_secs(5), &trace);
        let sock = a.unix(&path).expect("connects");
        assert!(matches!(sock, Socket::Unix(_)));
        assert_eq!(*trace.0.lock().unwrap(), ["+0.0.0.0:0", "-0.0.0.0:0:ok"]);
        let err = a.unix(&dir.join("missing.sock")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
