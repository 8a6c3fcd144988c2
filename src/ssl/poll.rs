//! SSL_poll: readiness of listeners, connections and streams, level-triggered, and the wait
//! for it. Reading an object's state is a few lookups under its domain's lock and touches
//! no other connection; waiting reuses the domain's blocking machinery (one domain) or
//! polls every domain's descriptors plus an eventfd the domains signal (several).
//! Must not touch: `extern "C"` (ffi walks the caller's item array).
#![deny(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::fence;
use std::time::Instant;

use quinn_proto::Dir;

use super::domain::{Domain, Interest};
use super::*;
use crate::sys;

pub const SSL_POLL_EVENT_F: u64 = 1 << 0;
pub const SSL_POLL_EVENT_EL: u64 = 1 << 1;
pub const SSL_POLL_EVENT_EC: u64 = 1 << 2;
pub const SSL_POLL_EVENT_ECD: u64 = 1 << 3;
pub const SSL_POLL_EVENT_ER: u64 = 1 << 4;
pub const SSL_POLL_EVENT_EW: u64 = 1 << 5;
pub const SSL_POLL_EVENT_R: u64 = 1 << 6;
pub const SSL_POLL_EVENT_W: u64 = 1 << 7;
pub const SSL_POLL_EVENT_IC: u64 = 1 << 8;
pub const SSL_POLL_EVENT_ISB: u64 = 1 << 9;
pub const SSL_POLL_EVENT_ISU: u64 = 1 << 10;
pub const SSL_POLL_EVENT_OSB: u64 = 1 << 11;
pub const SSL_POLL_EVENT_OSU: u64 = 1 << 12;
/// osslquic's events (bits OpenSSL leaves unused): an RFC 9221 datagram can be read, and
/// one of the largest size the peer takes can be written (OSSLQUIC_read_datagram,
/// OSSLQUIC_write_datagram).
pub const OSSLQUIC_POLL_EVENT_DR: u64 = 1 << 24;
pub const OSSLQUIC_POLL_EVENT_DW: u64 = 1 << 25;
pub const SSL_POLL_FLAG_NO_HANDLE_EVENTS: u64 = 1;
pub const SSL_R_POLL_REQUEST_NOT_SUPPORTED: u32 = 418;

/// SSL_poll's last answer for one object: the epoch it was computed at (0: none), the events
/// asked and the events found. Written under the domain's lock, read without it, as a
/// sequence lock: `seq` is odd while an answer is being written, and a reader that sees the
/// same even `seq` before and after reading has a consistent answer.
#[derive(Default)]
pub struct PollCache {
    seq: AtomicU64,
    at: AtomicU64,
    mask: AtomicU64,
    ev: AtomicU64,
}

impl PollCache {
    fn get(&self, epoch: u64, mask: u64) -> Option<u64> {
        crate::sync::atomic_objects(&[&self.seq, &self.at, &self.mask, &self.ev]);
        let s1 = self.seq.load(Acquire);
        if s1 & 1 == 1 {
            return None;
        }
        let (at, m, ev) = (
            self.at.load(Relaxed),
            self.mask.load(Relaxed),
            self.ev.load(Relaxed),
        );
        fence(Acquire);
        if self.seq.load(Relaxed) != s1 || at == 0 || at != epoch || m != mask {
            return None;
        }
        Some(ev)
    }
    fn put(&self, epoch: u64, mask: u64, ev: u64) {
        crate::sync::atomic_objects(&[&self.seq, &self.at, &self.mask, &self.ev]);
        self.seq.fetch_add(1, Relaxed);
        fence(Release);
        self.at.store(epoch, Relaxed);
        self.mask.store(mask, Relaxed);
        self.ev.store(ev, Relaxed);
        self.seq.fetch_add(1, Release);
    }
}

/// One item of an SSL_poll call, as the C boundary decoded it.
pub enum Target<'a> {
    /// An SSL item whose SSL pointer is NULL: skipped.
    Skip,
    /// Not something SSL_poll can wait on (a socket or custom descriptor, no descriptor).
    Unsupported,
    Obj(&'a Ssl),
    /// A TLS-over-TCP connection or listener: readiness from rustls's buffers and its socket.
    Tls(&'a Ssl),
}

pub struct Item<'a> {
    pub target: Target<'a>,
    pub events: u64,
    pub revents: u64,
}

fn unsupported(what: &str) -> Error {
    Error::ssl(SSL_R_POLL_REQUEST_NOT_SUPPORTED).with(what.to_string())
}

impl Ssl {
    /// The events of `mask` this object has now (no event handling). Unchanged objects
    /// answer from a cache without taking the domain's lock, so polling many idle objects
    /// costs little more than polling one.
    pub fn poll_events(&self, mask: u64) -> u64 {
        if let Some(e) = self.epoch()
            && let Some(ev) = self.poll_cache.get(e.load(Acquire), mask)
        {
            return ev;
        }
        // The epoch is read before the state under the lock that guards it: whatever changes
        // after moves it again, so an answer is never reused for a state it was not made from.
        let answer = match &self.kind {
            Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => None,
            Kind::Listener(l) => {
                let p = self.locked("domain: poll (poll_events)");
                let e = l.epoch.load(Acquire);
                let ev = if p.engine.accept_queue_len() == 0 {
                    0
                } else {
                    SSL_POLL_EVENT_IC
                };
                Some((e, ev))
            }
            Kind::Conn(c) => match self.cell() {
                None => return SSL_POLL_EVENT_W & mask, // not started: write starts it
                Some(cell) => self.with_conn("conn: poll (poll_events)", |conn| {
                    (cell.epoch.load(Acquire), self.conn_events(c, conn))
                }),
            },
            Kind::Stream(s) => match (s.conn.as_conn(), self.cell()) {
                (Ok(c), Some(cell)) => self.with_conn("conn: poll (poll_events)", |conn| {
                    (cell.epoch.load(Acquire), Self::stream_events(conn, s.id, c))
                }),
                _ => return 0,
            },
        };
        let Some((e, ev)) = answer else {
            // A connection no longer served here (fork): ended.
            return if self.cell().is_some() {
                (SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD) & mask
            } else {
                0
            };
        };
        let ev = ev & mask;
        if self.epoch().is_some() {
            self.poll_cache.put(e, mask, ev);
        }
        ev
    }

    fn conn_events(&self, c: &ConnObj, conn: &mut ConnState) -> u64 {
        if conn.drained {
            return SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD;
        }
        if c.closing.load(Relaxed) || conn.lost.is_some() || conn.is_closed() {
            return SSL_POLL_EVENT_EC;
        }
        let mut ev = 0;
        if conn.connected {
            if !conn.open_blocked[Dir::Bi as usize] {
                ev |= SSL_POLL_EVENT_OSB;
            }
            if !conn.open_blocked[Dir::Uni as usize] {
                ev |= SSL_POLL_EVENT_OSU;
            }
        }
        if conn.has_incoming(Dir::Bi) {
            ev |= SSL_POLL_EVENT_ISB;
        }
        if conn.has_incoming(Dir::Uni) {
            ev |= SSL_POLL_EVENT_ISU;
        }
        if conn.has_datagram() {
            ev |= OSSLQUIC_POLL_EVENT_DR;
        }
        if conn.datagram_writable() {
            ev |= OSSLQUIC_POLL_EVENT_DW;
        }
        // The default stream's events show on the connection.
        match conn.default_stream() {
            Some(id) => ev |= Self::stream_events(conn, id, c),
            None if c.default_dir().is_some() => ev |= SSL_POLL_EVENT_W,
            None => {}
        }
        ev
    }

    fn stream_events(conn: &mut ConnState, id: StreamId, c: &ConnObj) -> u64 {
        let r = conn.readiness(id);
        let mut ev = 0;
        if r.reset_by_peer {
            ev |= SSL_POLL_EVENT_ER;
        } else if r.readable {
            ev |= SSL_POLL_EVENT_R;
        }
        if r.stopped_by_peer {
            ev |= SSL_POLL_EVENT_EW;
        } else if r.writable && !c.closing.load(Relaxed) {
            ev |= SSL_POLL_EVENT_W;
        }
        ev
    }
}

/// Fills every item's `revents`; the count of items with events, or the error of the first
/// unsupported item (whose revents is F; later items are zeroed).
fn readout(items: &mut [Item<'_>]) -> std::result::Result<usize, (usize, Error)> {
    let socks = tls_readiness(items);
    let mut count = 0;
    for i in 0..items.len() {
        let it = &mut items[i];
        it.revents = match &it.target {
            Target::Skip => 0,
            Target::Unsupported => {
                it.revents = SSL_POLL_EVENT_F;
                for later in &mut items[i + 1..] {
                    later.revents = 0;
                }
                return Err((
                    count + 1,
                    unsupported("SSL_poll waits only on QUIC listeners, connections and streams"),
                ));
            }
            Target::Obj(s) => s.poll_events(it.events),
            Target::Tls(s) => {
                let (r, w) = socks.get(i).copied().flatten().unwrap_or((false, false));
                s.tls_poll_events(it.events, r, w)
            }
        };
        if it.revents != 0 {
            count += 1;
        }
    }
    Ok(count)
}

/// A TLS object's socket, if it has one (a listener's may be an accept BIO's).
fn tls_sock(s: &Ssl) -> Option<i32> {
    let b = s.rbio()?;
    match &s.kind {
        Kind::TlsListener(_) => super::tls_listen_fd(&b).ok(),
        _ => b.sock().map(|x| x.fd()).filter(|&fd| fd >= 0),
    }
}

/// Per item, for TLS items with a socket: (readable, writable) now, from one zero-timeout
/// poll(2) over all of them. Empty when there are no TLS items.
fn tls_readiness(items: &[Item<'_>]) -> Vec<Option<(bool, bool)>> {
    if !items.iter().any(|it| matches!(it.target, Target::Tls(_))) {
        return Vec::new();
    }
    let mut at = vec![None; items.len()];
    let mut fds = Vec::new();
    for (i, it) in items.iter().enumerate() {
        if let Target::Tls(s) = &it.target
            && let Some(fd) = tls_sock(s)
        {
            // One entry per direction, so each says what it saw.
            at[i] = Some(fds.len());
            fds.push(sys::PollFd {
                fd,
                read: true,
                write: false,
                ready: false,
            });
            fds.push(sys::PollFd {
                fd,
                read: false,
                write: matches!(s.kind, Kind::Tls(_)),
                ready: false,
            });
        }
    }
    let _ = sys::poll(&mut fds, Some(std::time::Duration::ZERO));
    at.into_iter()
        .map(|k| k.map(|k| (fds[k].ready, fds[k + 1].write && fds[k + 1].ready)))
        .collect()
}

/// The sockets of the TLS items, with what their requested events need: readable for
/// R/IC, writable for W.
fn tls_fds(items: &[Item<'_>]) -> Vec<sys::PollFd> {
    let mut out = Vec::new();
    for it in items {
        if let Target::Tls(s) = &it.target
            && let Some(fd) = tls_sock(s)
        {
            out.push(sys::PollFd {
                fd,
                read: it.events & (SSL_POLL_EVENT_R | SSL_POLL_EVENT_IC) != 0,
                write: it.events & SSL_POLL_EVENT_W != 0,
                ready: false,
            });
        }
    }
    out
}

impl Ssl {
    /// SSL_poll's view of a TLS connection or listener: R when plaintext is buffered or the
    /// socket is readable (a read or handshake step can progress), W when the socket takes
    /// data, EC|ECD once closed; IC on a listener whose socket has a connection waiting.
    /// `readable`/`writable`: what its socket showed (see `tls_readiness`).
    pub fn tls_poll_events(&self, mask: u64, readable: bool, writable: bool) -> u64 {
        let ev = match &self.kind {
            Kind::TlsListener(_) if readable => SSL_POLL_EVENT_IC,
            Kind::Tls(t) => {
                let mut ev = 0;
                if t.tls.closed() {
                    ev |= SSL_POLL_EVENT_EC | SSL_POLL_EVENT_ECD;
                }
                if t.tls.pending() > 0 || (readable && t.tls.poll_readable()) {
                    ev |= SSL_POLL_EVENT_R;
                }
                if writable && !t.tls.closed() {
                    ev |= SSL_POLL_EVENT_W;
                }
                ev
            }
            _ => 0,
        };
        ev & mask
    }
}

/// The distinct domains of the items, in order of first appearance.
fn domains(items: &[Item<'_>]) -> Vec<Arc<Domain>> {
    let mut out: Vec<Arc<Domain>> = Vec::new();
    for it in items {
        if let Target::Obj(s) = &it.target {
            let d = s.domain();
            if !out.iter().any(|x| Arc::ptr_eq(x, d)) {
                out.push(d.clone());
            }
        }
    }
    out
}

thread_local! {
    /// This thread's eventfd for waits over several domains (made on first use).
    static POLL_FD: i32 = sys::eventfd().unwrap_or(-1);
}

/// This thread's last SSL_poll answer that can be given again: the item array (each
/// item's SSL pointer and events), the domains' change counters read before the answer was
/// computed, and the answer. `pins` keep the objects' allocations (not the objects) alive,
/// so an address in `keys` cannot come to name another object.
pub struct Snapshot<P> {
    pub keys: Vec<(usize, u64)>,
    pub pins: Vec<P>,
    /// Weak: a thread's last answer must not keep a freed domain (and its sockets) alive.
    doms: Vec<(std::sync::Weak<Domain>, u64)>,
    pub revents: Vec<u64>,
    pub count: usize,
}

/// Whether this thread's last SSL_poll answer still holds for its domains: none of their
/// objects changed since (after handling events, unless NO_HANDLE_EVENTS), and the call
/// would not have to wait (`zero_timeout`: it returns at once even with no events). The
/// caller also checks, item by item, that the array is the same (`Snapshot::keys`): polling
/// many idle objects costs a comparison per item and nothing per object.
pub fn unchanged<P>(snap: &Snapshot<P>, flags: u64, zero_timeout: bool) -> bool {
    if snap.count == 0 && !zero_timeout {
        return false;
    }
    let handle = flags & SSL_POLL_FLAG_NO_HANDLE_EVENTS == 0;
    snap.doms.iter().all(|(w, c)| {
        let Some(d) = w.upgrade() else { return false };
        if handle {
            d.lock("domain: poll (unchanged)").tick(Instant::now());
        }
        d.changes.load(Acquire) == *c
    })
}

/// A snapshot of a call's answer, if it may be given again: every item an SSL object whose
/// cached state follows epochs (no TLS objects, whose readiness is their socket's).
pub fn snapshot<P>(
    items: &[Item<'_>],
    keys: Vec<(usize, u64)>,
    pins: Vec<P>,
    doms: Vec<(Arc<Domain>, u64)>,
    count: usize,
) -> Option<Snapshot<P>> {
    let cacheable = items.iter().all(|it| match &it.target {
        Target::Skip => true,
        Target::Obj(s) => s.epoch().is_some() || matches!(s.kind, Kind::Domain(_)),
        Target::Unsupported | Target::Tls(_) => false,
    });
    cacheable.then(|| Snapshot {
        keys,
        pins,
        doms: doms
            .into_iter()
            .map(|(d, c)| (Arc::downgrade(&d), c))
            .collect(),
        revents: items.iter().map(|it| it.revents).collect(),
        count,
    })
}

/// SSL_poll: Ok(count) when the call succeeded (events or timeout), Err((count, error))
/// when an item cannot be polled. `seen` gets the domains' change counters as they were
/// before the answer was read.
pub fn poll(
    items: &mut [Item<'_>],
    deadline: Option<Instant>,
    flags: u64,
    seen_changes: &mut Vec<(Arc<Domain>, u64)>,
) -> std::result::Result<usize, (usize, Error)> {
    let doms = domains(items);
    let tls_fds = tls_fds(items);
    let mut handle = flags & SSL_POLL_FLAG_NO_HANDLE_EVENTS == 0;
    loop {
        if handle {
            for d in &doms {
                d.lock("domain: poll (poll)").tick(Instant::now());
            }
        }
        handle = true;
        let seen: Vec<u64> = doms.iter().map(|d| d.activity()).collect();
        seen_changes.clear();
        seen_changes.extend(doms.iter().map(|d| (d.clone(), d.changes.load(Acquire))));
        let count = readout(items)?;
        let now = Instant::now();
        if count > 0 || deadline.is_some_and(|d| d <= now) {
            return Ok(count);
        }
        if doms.is_empty() && tls_fds.is_empty() {
            // Nothing to wait for: sleep out a finite timeout, return at once otherwise.
            if let Some(d) = deadline {
                let _ = sys::poll(&mut [], Some(d - now));
            }
            return Ok(0);
        }
        if !doms
            .iter()
            .all(|d| d.lock("domain: poll (poll)").pollable())
        {
            if let Some(first) = items.first_mut() {
                first.revents = SSL_POLL_EVENT_F;
            }
            for it in items.iter_mut().skip(1) {
                it.revents = 0;
            }
            return Err((
                1,
                unsupported("cannot wait: a network BIO has no poll descriptor (use a socket)"),
            ));
        }
        if let ([d], true) = (doms.as_slice(), tls_fds.is_empty()) {
            // The wait handles events (or is woken by someone who did); it does not start
            // if another thread changed states while they were being read.
            d.wait_unless_active(seen[0], Interest::Any, deadline);
            handle = false;
        } else {
            wait_many(&doms, &seen, deadline, &tls_fds);
        }
    }
}

/// Waits on several domains: their network descriptors and an eventfd they signal when
/// anything happens, until the earliest timer of any of them or `deadline`.
fn wait_many(doms: &[Arc<Domain>], seen: &[u64], deadline: Option<Instant>, extra: &[sys::PollFd]) {
    let fd = POLL_FD.with(|f| *f);
    let mut fds = extra.to_vec();
    let mut until = deadline;
    if fd >= 0 {
        fds.push(sys::PollFd {
            fd,
            read: true,
            write: false,
            ready: false,
        });
    }
    let ids: Vec<u64> = doms
        .iter()
        .map(|d| if fd >= 0 { d.watch(fd) } else { u64::MAX })
        .collect();
    // Activity since the states were read: look again instead of sleeping.
    if doms.iter().zip(seen).any(|(d, &s)| d.activity() != s) {
        until = Some(Instant::now());
    }
    for d in doms {
        if let Some(t) = d.net_fds(&mut fds) {
            until = Some(until.map_or(t, |u| u.min(t)));
        }
    }
    let now = Instant::now();
    let _ = sys::poll(&mut fds, until.map(|u| u.saturating_duration_since(now)));
    if fd >= 0 {
        sys::eventfd_drain(fd);
    }
    for (d, id) in doms.iter().zip(ids) {
        if id != u64::MAX {
            d.unwatch(id);
        }
    }
}
