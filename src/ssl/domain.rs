//! A domain: one lock over its `DomainState` (the ports, one per listener or client
//! connection, each with its engine: the endpoint side; and the threads waiting on them), and
//! the blocking machinery. This is the endpoint lock: connections have their own
//! (`quic::conn::ConnCell`), taken after it or alone, never before it; a tick reads the
//! network and delivers datagrams to connections with it released (`tick_port`).
//!
//! Blocking waits: one thread at a time (the leader) waits in `poll(2)` on the network
//! descriptors of every port plus the domain's eventfd, until the earliest engine timer;
//! then it handles events for all. Every other blocked thread parks on its own condition
//! variable with an *interest* (a connection, a listener's accept queue, or anything) and
//! is woken only when a tick touched what it waits for. When the leader leaves, the first
//! parked thread is woken to take over. A thread that handles events outside a wait (a
//! non-blocking call) wakes the waiters its tick concerns, and the leader through the
//! eventfd when its interest was touched or an earlier timer appeared. Nothing spins: a
//! blocked thread sleeps in poll or on its condvar until something it cares about happens.
//! Must not touch: sockets directly (ports do), `extern "C"` (ffi does).
#![deny(unsafe_code)]

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst,
};
use std::time::{Duration, Instant};

use crate::sync::{Asked, Condvar, Held, Mutex, MutexGuard};

use crate::bio::Bio;
use crate::bio::msg::BIO_POLL_DESCRIPTOR;
use crate::error::*;
use crate::quic::conn::{Awaits, ConnCell, ConnGuard, Link};
use crate::quic::engine::{ConnId, Engine, Note};
use crate::quic::port::{self, Port, RX_BATCH_MAX, RX_ROUNDS};
use crate::sys;
use quinn_proto::StreamId;

/// What a port's connections and accept queue saw since the last wake: (port, touched
/// connections with what, a connection joined the accept queue).
type PortNews = (PortId, Vec<(ConnId, Note)>, bool);

/// A port's index in its domain.
pub type PortId = usize;
/// How often a leader without an eventfd looks at its interest again.
const NO_WAKER_POLL: Duration = Duration::from_millis(10);

/// The port a domain object addresses: none (an empty placeholder port answers).
pub const NO_PORT: PortId = usize::MAX;

/// What a blocked thread waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Anything on this connection.
    Conn(PortId, ConnId),
    /// This stream of the connection, or the connection's state.
    Stream(PortId, ConnId, StreamId),
    /// New streams from the peer, or the connection's state.
    Incoming(PortId, ConnId),
    /// A new connection in this port's accept queue.
    Accept(PortId),
    /// Any event at all (SSL_poll, background threads).
    Any,
}

impl Interest {
    /// Waiting on connection `c` of port `port` for `what`.
    pub fn on_conn(port: PortId, c: ConnId, what: Awaits) -> Interest {
        match what {
            Awaits::Anything => Interest::Conn(port, c),
            Awaits::Stream(s) => Interest::Stream(port, c, s),
            Awaits::Incoming => Interest::Incoming(port, c),
        }
    }
}

#[derive(Clone)]
enum Wake {
    /// A parked thread's condition variable.
    Cv(Arc<Condvar>),
    /// An eventfd: the leader's (the domain's) or an SSL_poll over several domains.
    Fd(i32),
}

struct Entry {
    id: u64,
    interest: Interest,
    wake: Wake,
    woken: bool,
}

/// The descriptor a BIO can be waited on with, if it has one.
pub fn bio_fd(b: &Bio, write: bool) -> Option<i32> {
    let d: BIO_POLL_DESCRIPTOR = if write { b.wpoll() } else { b.rpoll() }.ok()?;
    d.sock_fd()
}

pub struct DomainState {
    ports: Vec<Port>,
    /// Answers for NO_PORT: no BIOs, no connections. Made on first use (only domain objects
    /// address NO_PORT): an engine is a quinn endpoint with its reset key, which a client's
    /// domain (one per client connection) would otherwise make twice.
    none: std::cell::OnceCell<Box<Port>>,
    entries: Vec<Entry>,
    next_entry: u64,
    /// The entry polling the network, and the deadline it sleeps until.
    leader: Option<(u64, Option<Instant>)>,
    /// Counts the moments some connection had been touched: a reader of object states
    /// (SSL_poll) compares it before and after, so that it never sleeps on states that
    /// changed while it was reading them (shared with the domain: see `Domain::notify`).
    activity: Arc<AtomicU64>,
    /// OSSLQUIC_set_quic_lb on the domain: its listeners' connection IDs, made later too.
    pub lb: Option<Arc<crate::quic::lb::LbConfig>>,
}

impl DomainState {
    pub fn port(&mut self, id: PortId) -> &mut Port {
        if id < self.ports.len() {
            return &mut self.ports[id];
        }
        self.none_port();
        self.none.get_mut().expect("made just above")
    }
    /// The ids of this domain's ports.
    pub fn port_ids(&self) -> std::ops::Range<PortId> {
        0..self.ports.len()
    }
    pub fn port_ref(&self, id: PortId) -> &Port {
        self.ports.get(id).unwrap_or_else(|| self.none_port())
    }
    fn none_port(&self) -> &Port {
        self.none
            .get_or_init(|| Box::new(Port::new(Engine::new(None))))
    }

    /// The ports' links with output queued: whoever releases the lock sends it (no
    /// allocation when there is none).
    fn links(&self) -> Vec<Arc<Link>> {
        self.ports
            .iter()
            .map(|p| p.engine.link())
            .filter(|l| l.has_pending())
            .cloned()
            .collect()
    }

    /// Drives connections with queued work on every port (no network input).
    pub fn run(&mut self, now: Instant) {
        for p in &mut self.ports {
            if p.engine.has_work() {
                p.run(now);
            }
        }
    }

    /// The earliest moment some port needs a tick: now when work is queued and the network
    /// takes output, else the earliest timer.
    pub fn next_deadline(&mut self, now: Instant) -> Option<Instant> {
        let mut best: Option<Instant> = None;
        for p in &mut self.ports {
            let t = if p.engine.has_work() && !p.backlogged() {
                Some(now)
            } else {
                p.engine.next_timeout()
            };
            best = match (best, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        best
    }

    /// Whether a thread (the leader) is waiting on the network for everyone: a thread about
    /// to block need not handle events itself, the leader wakes at the first datagram.
    pub fn polled(&self) -> bool {
        self.leader.is_some()
    }

    fn set_leader(
        &mut self,
        l: Option<(u64, Option<Instant>)>,
        flag: &AtomicBool,
        offered: &AtomicBool,
    ) {
        self.leader = l;
        flag.store(l.is_some(), SeqCst);
        if l.is_some() {
            offered.store(false, SeqCst);
        }
    }

    /// Whether a thread can wait on this domain's network: every port with BIOs has file
    /// descriptors to poll.
    pub fn pollable(&self) -> bool {
        self.ports.iter().all(|p| {
            let r = p.rbio.as_ref().is_none_or(|b| bio_fd(b, false).is_some());
            let w = p.wbio.as_ref().is_none_or(|b| bio_fd(b, true).is_some());
            r && w
        })
    }

    /// The descriptors to wait on: each port's read side, and its write side while output
    /// is waiting for room.
    fn poll_fds(&self, out: &mut Vec<sys::PollFd>) {
        let mut extra = Vec::new();
        for p in &self.ports {
            extra.clear();
            p.fork_fds(&mut extra);
            out.extend(extra.iter().map(|&fd| sys::PollFd {
                fd,
                read: true,
                write: false,
                ready: false,
            }));
            if let Some(fd) = p.rbio.as_ref().and_then(|b| bio_fd(b, false)) {
                out.push(sys::PollFd {
                    fd,
                    read: true,
                    write: false,
                    ready: false,
                });
            }
            if p.backlogged()
                && let Some(fd) = p.wbio.as_ref().and_then(|b| bio_fd(b, true))
            {
                out.push(sys::PollFd {
                    fd,
                    read: false,
                    write: true,
                    ready: false,
                });
            }
        }
    }

    fn register(&mut self, interest: Interest, wake: Wake) -> u64 {
        let id = self.next_entry;
        self.next_entry += 1;
        self.entries.push(Entry {
            id,
            interest,
            wake,
            woken: false,
        });
        id
    }

    /// Removes an entry; true when it had been woken.
    fn unregister(&mut self, id: u64) -> bool {
        match self.entries.iter().position(|e| e.id == id) {
            Some(i) => self.entries.swap_remove(i).woken,
            None => false,
        }
    }

    fn woken(&self, id: u64) -> bool {
        self.entries.iter().any(|e| e.id == id && e.woken)
    }

    /// Wakes the waiters whose interest the work since the last call touched, and the
    /// leader when a timer earlier than its deadline appeared. Called whenever the lock is
    /// released, so the touched lists never grow. With `handover`, also makes sure that
    /// while threads are parked one of them is awake to lead when no one does.
    fn wake(&mut self, handover: bool) {
        let mut news: Vec<PortNews> = Vec::new();
        for (pid, p) in self.ports.iter_mut().enumerate() {
            let (touched, accepted) = p.engine.take_news();
            if !touched.is_empty() || accepted {
                news.push((pid, touched, accepted));
            }
        }
        if !news.is_empty() {
            self.activity.fetch_add(1, SeqCst);
        }
        if self.entries.is_empty() {
            return;
        }
        for (pid, touched, accepted) in news {
            let touched = &touched[..];
            for e in self.entries.iter_mut().filter(|e| !e.woken) {
                let hit = match e.interest {
                    Interest::Any => true,
                    Interest::Accept(q) => q == pid && accepted,
                    Interest::Conn(q, c) => q == pid && touched.iter().any(|t| t.0 == c),
                    Interest::Stream(q, c, sid) => {
                        q == pid
                            && touched
                                .iter()
                                .any(|&(tc, n)| tc == c && Awaits::Stream(sid).woken_by(n))
                    }
                    Interest::Incoming(q, c) => {
                        q == pid
                            && touched
                                .iter()
                                .any(|&(tc, n)| tc == c && Awaits::Incoming.woken_by(n))
                    }
                };
                if hit {
                    e.woken = true;
                    signal(&e.wake);
                }
            }
        }
        if let Some((lid, Some(until))) = self.leader {
            let now = Instant::now();
            if self.next_deadline(now).is_some_and(|d| d < until)
                && let Some(e) = self.entries.iter_mut().find(|e| e.id == lid && !e.woken)
            {
                e.woken = true;
                signal(&e.wake);
            }
        }
        let parked = |e: &Entry| matches!(e.wake, Wake::Cv(_));
        if handover
            && self.leader.is_none()
            && !self.entries.iter().any(|e| e.woken && parked(e))
            && let Some(e) = self.entries.iter_mut().find(|e| parked(e))
        {
            e.woken = true;
            signal(&e.wake);
        }
    }
}

fn signal(w: &Wake) {
    match w {
        Wake::Cv(cv) => {
            cv.notify_one();
        }
        Wake::Fd(fd) if *fd >= 0 => sys::eventfd_signal(*fd),
        Wake::Fd(_) => {}
    }
}

thread_local! {
    /// The owner of the domain this thread last locked: callbacks run under that lock.
    static CURRENT_OWNER: Cell<usize> = const { Cell::new(0) };
    /// This thread's condition variable for parking in any domain.
    static PARK: Arc<Condvar> = Arc::new(Condvar::new());
}

/// The `SSL *` (as an address) whose domain is handling events on this thread: the listener
/// or client connection. For callbacks (ALPN selection) that OpenSSL passes an `SSL *`.
pub fn current_owner() -> usize {
    CURRENT_OWNER.with(Cell::get)
}

/// Names the `SSL *` whose handshake runs on this thread (TLS objects, which have no domain).
pub fn set_current_owner(ssl: usize) {
    CURRENT_OWNER.with(|c| c.set(ssl));
}

pub struct Domain {
    r: Mutex<DomainState>,
    /// The listener or client connection this domain was made for (its `SSL *` address),
    /// named to callbacks that run during event handling.
    pub owner: AtomicUsize,
    /// Wakes the leader out of poll(2) (an eventfd this domain owns; replaced in a forked
    /// child, whose parent keeps the original).
    waker: AtomicI32,
    /// SSL_DOMAIN_FLAG_* this domain was made with.
    pub flags: u64,
    /// Bumped whenever any object state of the domain may have changed (every engine's
    /// `changes` is this counter; object operations bump it too).
    pub changes: Arc<std::sync::atomic::AtomicU64>,
    /// The fork generation (`sys::fork_generation`) of the process this domain serves: in
    /// any other process (a child forked without handing it anything) it is left behind.
    generation: std::sync::atomic::AtomicU64,
    /// Set when the object owning a background thread goes away: the thread exits.
    stopping: std::sync::atomic::AtomicBool,
    /// Threads in a wait on this domain, and SSL_poll watchers (`watch`): while there are
    /// none, a connection's drive outside the lock need not take it to wake anyone
    /// (`notify`). Raised before a waiter checks its condition, read after a driver
    /// published its change (both SeqCst), so one of the two always sees the other.
    waiting: AtomicUsize,
    /// Mirrors `DomainState::leader.is_some()` for callers without the lock.
    leading: AtomicBool,
    /// Whether a thread can wait on this domain's network (`DomainState::pollable`), kept
    /// up to date when BIOs change (`refresh_pollable`).
    pollable: AtomicBool,
    /// See `DomainState::activity`.
    activity: Arc<AtomicU64>,
    /// The connections threads are parked on (one entry per thread, `park`), for handing
    /// leadership on; `parked_count` is its length, read without the list's lock.
    parked: Mutex<Vec<Arc<ConnCell>>>,
    parked_count: AtomicUsize,
    /// Leadership was offered to a parked thread and no one has taken it yet (`offer_lead`);
    /// cleared when a thread leads, or by the woken thread that takes the offer (it leads,
    /// or offers again when its call completes).
    offered: AtomicBool,
    /// The background thread, joined when it is stopped.
    assist: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Domain {
    fn drop(&mut self) {
        let fd = self.waker();
        if fd >= 0 {
            let _ = sys::close(fd);
        }
    }
}

/// The locked domain state; releasing it wakes whoever the work done under it concerns, then
/// sends the output queued meanwhile (`conn::Link::send_pending`).
pub struct DomainGuard<'a> {
    /// `None` only inside Drop.
    g: Option<MutexGuard<'a, DomainState>>,
    d: &'a Domain,
    /// Releasing the lock with no thread polling offers leadership to a thread parked on a
    /// connection; false when the releasing thread answers for that itself (`wait_conn`).
    offer: bool,
    /// What the lock is held for (hold times with the `lock-tracking` feature).
    held: Held,
}

impl<'a> DomainGuard<'a> {
    /// The purpose this hold counts for; see [`Held::relabel`].
    pub fn held(&mut self) -> &mut Held {
        &mut self.held
    }

    /// Runs `f` with the domain's lock released (taken again before this returns), after
    /// sending the output queued meanwhile, as releasing the guard does.
    pub fn unlocked<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let links = self.links();
        self.held.pause();
        let r = MutexGuard::unlocked(self.raw(), || {
            for l in links {
                l.send_pending();
            }
            f()
        });
        self.held.resume();
        r
    }

    fn raw(&mut self) -> &mut MutexGuard<'a, DomainState> {
        self.g
            .as_mut()
            .expect("a domain guard holds its lock until dropped")
    }
}

impl DomainGuard<'_> {
    /// One round of event handling on every port.
    pub fn tick(&mut self, now: Instant) {
        for pid in self.port_ids() {
            self.tick_port(pid, now);
        }
    }

    /// One round of event handling on port `pid`. The network is read and each datagram
    /// delivered and its connection driven with the domain's lock released: the lock is
    /// held only while the endpoint routes the batch (and for the timers and the connections
    /// on the work list after).
    ///
    /// Each batch is handled at the time it arrived, not `now`: the connections' sends in
    /// between are stamped with the system's clock (`Link::send_time`), and an ACK for one
    /// of them handled at an earlier time would give quinn an RTT sample of zero.
    pub fn tick_port(&mut self, pid: PortId, mut now: Instant) {
        if pid >= self.ports.len() {
            return;
        }
        if let Some(mut job) = self.port(pid).rx_begin() {
            let mut left: Vec<Arc<ConnCell>> = Vec::new();
            // A panic (in quinn's endpoint, a BIO) must not leave the receive right taken,
            // or the port would never read again: it is given back, then the panic goes on
            // to the C boundary. A connection's own panics are contained where they happen
            // (`ConnCell::contain`).
            let rounds = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for _ in 0..RX_ROUNDS {
                    self.held.pause();
                    let n = MutexGuard::unlocked(self.raw(), || job.recv());
                    self.held.resume();
                    now = now.max(Instant::now());
                    self.port(pid).rx_route(&mut job, n, now);
                    if !job.routed.is_empty() {
                        self.held.pause();
                        MutexGuard::unlocked(self.raw(), || {
                            port::deliver(&mut job.routed, &mut left, now)
                        });
                        self.held.resume();
                    }
                    if n < RX_BATCH_MAX {
                        break;
                    }
                }
            }));
            let p = self.port(pid);
            p.rx_end(job);
            for cell in left {
                p.engine.serve(now, &cell);
            }
            if let Err(e) = rounds {
                std::panic::resume_unwind(e);
            }
            now = now.max(Instant::now());
        }
        self.port(pid).tick_rest(now);
    }
}

impl Deref for DomainGuard<'_> {
    type Target = DomainState;
    fn deref(&self) -> &DomainState {
        self.g
            .as_ref()
            .expect("a domain guard holds its lock until dropped")
    }
}
impl DerefMut for DomainGuard<'_> {
    fn deref_mut(&mut self) -> &mut DomainState {
        self.raw()
    }
}
impl Drop for DomainGuard<'_> {
    fn drop(&mut self) {
        let Some(mut g) = self.g.take() else { return };
        g.wake(true);
        // No thread polls the network and none of the domain's waiters was woken to take
        // over: a thread parked on a connection is (`Domain::park`).
        let parked = |e: &Entry| matches!(e.wake, Wake::Cv(_));
        let offer =
            self.offer && g.leader.is_none() && !g.entries.iter().any(|e| e.woken && parked(e));
        let links = g.links();
        self.held.pause();
        drop(g);
        for l in links {
            l.send_pending();
        }
        if offer {
            self.d.offer_lead();
        }
    }
}

/// The locked domain, addressing one port (dereferences to it).
pub struct PortGuard<'a> {
    pub g: DomainGuard<'a>,
    pub id: PortId,
}

impl Deref for PortGuard<'_> {
    type Target = Port;
    fn deref(&self) -> &Port {
        self.g.port_ref(self.id)
    }
}
impl DerefMut for PortGuard<'_> {
    fn deref_mut(&mut self) -> &mut Port {
        self.g.port(self.id)
    }
}

impl PortGuard<'_> {
    /// One round of event handling on this port (see `DomainGuard::tick_port`).
    pub fn tick(&mut self, now: Instant) {
        self.g.tick_port(self.id, now);
    }
}

impl Domain {
    /// A domain with one port over `engine`.
    pub fn new(mut engine: Engine, flags: u64) -> Arc<Domain> {
        let d = Domain::empty(flags);
        engine.share_changes(d.changes.clone());
        d.r.lock().ports.push(Port::new(engine));
        Arc::new(d)
    }

    /// A domain without ports yet (SSL_new_domain).
    pub fn empty(flags: u64) -> Domain {
        let activity = Arc::new(AtomicU64::new(0));
        Domain {
            r: Mutex::new(DomainState {
                ports: Vec::new(),
                none: std::cell::OnceCell::new(),
                entries: Vec::new(),
                next_entry: 0,
                leader: None,
                activity: activity.clone(),
                lb: None,
            }),
            waiting: AtomicUsize::new(0),
            leading: AtomicBool::new(false),
            pollable: AtomicBool::new(true),
            activity,
            parked: Mutex::new(Vec::new()),
            parked_count: AtomicUsize::new(0),
            offered: AtomicBool::new(false),
            owner: AtomicUsize::new(0),
            waker: AtomicI32::new(-1),
            generation: std::sync::atomic::AtomicU64::new({
                sys::watch_forks();
                sys::fork_generation()
            }),
            flags,
            changes: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            stopping: std::sync::atomic::AtomicBool::new(false),
            assist: Mutex::new(None),
        }
    }

    /// The leader's eventfd, or -1 while no thread has waited on the network yet.
    fn waker(&self) -> i32 {
        self.waker.load(Relaxed)
    }

    /// The leader's eventfd, made by the first thread that leads (under the domain's lock):
    /// a domain only driven by non-blocking calls (a client among thousands) never holds
    /// one. -1 if it cannot be made (out of descriptors).
    fn lead_waker(&self) -> i32 {
        let fd = self.waker();
        if fd >= 0 {
            return fd;
        }
        let fd = sys::eventfd().unwrap_or(-1);
        self.waker.store(fd, Relaxed);
        fd
    }

    /// In a child process right after fork(2), with the domain locked by the forking
    /// thread (the only thread the child has): the parent's waiters do not exist here, and
    /// the eventfd is the parent's too (a wake-up meant for one process could be taken by
    /// the other), so the child lets it go; its first thread to lead makes its own.
    pub fn after_fork_child(&self, g: &mut DomainGuard<'_>) {
        self.generation.store(sys::fork_generation(), Relaxed);
        let old = self.waker.swap(-1, Relaxed);
        if old >= 0 {
            let _ = sys::close(old);
        }
        g.entries.clear();
        g.set_leader(None, &self.leading, &self.offered);
        // The parent's parked threads are not in this process.
        self.parked.lock().clear();
        self.parked_count.store(0, SeqCst);
        // A thread of the parent may have been receiving: not in this process.
        for p in g.ports.iter_mut() {
            p.rx_reset();
        }
        self.waiting.store(0, SeqCst);
        // No background thread crossed the fork.
        let _ = self
            .assist
            .try_lock()
            .map(|mut a| a.take().map(std::mem::forget));
    }

    /// Adds a port (a listener made in this domain); returns its id.
    pub fn add_port(&self, mut engine: Engine) -> PortId {
        engine.share_changes(self.changes.clone());
        let mut r = self.lock("domain: add_port");
        if let Some(lb) = &r.lb {
            // A new engine has no connections: cannot fail.
            engine.set_lb(Some(lb.clone()));
        }
        r.ports.push(Port::new(engine));
        self.refresh_pollable(&r);
        r.ports.len() - 1
    }

    /// Records whether the domain's network can be waited on (after its BIOs changed).
    pub fn refresh_pollable(&self, g: &DomainState) {
        self.pollable.store(g.pollable(), SeqCst);
    }

    /// Whether a thread can wait on this domain's network, without the lock.
    pub fn is_pollable(&self) -> bool {
        self.declare_atomics();
        self.pollable.load(SeqCst)
    }

    /// Whether a thread polls the network for everyone now, without the lock.
    pub fn is_polled(&self) -> bool {
        self.declare_atomics();
        self.leading.load(SeqCst)
    }

    /// After a connection was driven outside the domain's lock: wakes whoever waits for what
    /// the drive changed (taking the lock only while someone waits), and sends its output.
    pub fn notify(&self, link: &Link) {
        self.declare_atomics();
        if link.has_news() {
            if self.waiting.load(SeqCst) > 0 {
                drop(self.lock("domain: wake after a call"));
            } else {
                if !link.take_news().is_empty() {
                    self.activity.fetch_add(1, SeqCst);
                }
            }
        }
        link.send_pending();
    }

    /// Blocks a thread on connection `cell` (held as `g`) while another thread polls the
    /// network for everyone: it sleeps on the connection's own condition variable, woken by
    /// a drive with news `what` waits for, or offered leadership when
    /// the polling thread leaves (`offer_lead`). False at once if no thread polls (the
    /// caller then leads itself). The domain's lock is not taken. `took` is set when the
    /// thread took an offer of leadership: if its call then completes without leading, it
    /// must pass the offer on (`pass_lead`).
    pub fn park(
        &self,
        cell: &Arc<ConnCell>,
        g: &mut ConnGuard<'_>,
        what: Awaits,
        took: &mut bool,
    ) -> bool {
        self.declare_atomics();
        self.parked.lock().push(cell.clone());
        self.parked_count.fetch_add(1, SeqCst);
        // Registered before looking (both SeqCst): a leader leaving now either sees this
        // thread in the list, or this thread sees it gone.
        let polled = self.is_polled();
        if polled {
            cell.park(g, what);
        }
        self.parked_count.fetch_sub(1, SeqCst);
        if !self.is_polled() && self.offered.swap(false, SeqCst) {
            *took = true;
        }
        let mut list = self.parked.lock();
        if let Some(i) = list.iter().position(|c| Arc::ptr_eq(c, cell)) {
            list.swap_remove(i);
        }
        polled
    }

    /// No thread polls the network: wakes the threads parked on one connection, so that one
    /// of them takes over (each tries its call again, then leads or parks).
    fn offer_lead(&self) {
        if self.parked_count.load(SeqCst) == 0
            || self.is_polled()
            || self.offered.swap(true, SeqCst)
        {
            return;
        }
        let Some(cell) = self.parked.lock().first().cloned() else {
            self.offered.store(false, SeqCst);
            return;
        };
        let mut g = cell.lock("conn: hand leadership over");
        cell.wake_one(&mut g);
    }

    /// A thread that took an offer of leadership (`park`) and did not lead: if still no
    /// thread polls, the next parked thread is offered it.
    pub fn pass_lead(&self) {
        if !self.is_polled() {
            self.offer_lead();
        }
    }

    /// The activity count (see `DomainState::activity`); publishes pending work first.
    pub fn activity(&self) -> u64 {
        let mut g = self.lock("domain: activity");
        g.wake(true);
        g.activity.load(SeqCst)
    }

    /// As `wait`, but returns at once (true) if the domain saw activity since `seen`.
    pub fn wait_unless_active(
        &self,
        seen: u64,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> bool {
        let mut g = self.lock("domain: wait_unless_active");
        self.waiting.fetch_add(1, SeqCst);
        g.wake(false);
        let r = if g.activity.load(SeqCst) != seen {
            true
        } else {
            self.wait_counted(&mut g, interest, deadline)
        };
        self.waiting.fetch_sub(1, SeqCst);
        r
    }

    /// Blocks on `interest` of a connection, unless its `epoch` moved from `seen` (what the
    /// caller checked under the connection's lock, released since): returns true at once
    /// then. Called without any connection lock held. The caller may have led: when its call
    /// completes it must hand leadership on (`pass_lead`).
    pub fn wait_conn(
        &self,
        interest: Interest,
        epoch: &AtomicU64,
        seen: u64,
        deadline: Option<Instant>,
    ) -> bool {
        let mut g = self.lock("domain: wait for a connection");
        // The caller hands leadership on itself when its call completes (`pass_lead`): a
        // leader going back to its connection mostly leads again at once.
        g.offer = false;
        self.waiting.fetch_add(1, SeqCst);
        let r = if epoch.load(SeqCst) != seen {
            true
        } else {
            self.wait_counted(&mut g, interest, deadline)
        };
        self.waiting.fetch_sub(1, SeqCst);
        r
    }

    /// Tells the race detector which fields are atomics read and stored by several threads
    /// (see `sync::atomic_object`).
    fn declare_atomics(&self) {
        crate::sync::atomic_objects(&[
            &self.stopping,
            &self.waiting,
            &self.leading,
            &self.pollable,
            &*self.activity,
            &self.parked_count,
            &self.offered,
            &self.owner,
            &self.waker,
            &self.generation,
        ]);
    }

    /// Locks the domain for `purpose` (a name for hold-time figures).
    pub fn lock(&self, purpose: &'static str) -> DomainGuard<'_> {
        if crate::quic::conn::holding_any() {
            // A callback (run under a connection's lock by its drive) called a function that
            // needs the domain: taking it here could wait for ever for a thread that holds
            // the domain and waits for this connection. The exported function's guard turns
            // this into its error (`ffi::guard_with`); resume_unwind, not panic!, so that no
            // panic hook prints it as a crash.
            std::panic::resume_unwind(Box::new(Error::unsupported(format!(
                "{purpose}: called from a callback that runs on a connection's handshake, \
                 which cannot use its domain (listener, domain or other connections' calls); \
                 call it after the callback returns"
            ))));
        }
        self.declare_atomics();
        let asked = Asked::now();
        let g = self.r.lock();
        let held = Held::begin(purpose, asked);
        CURRENT_OWNER.with(|c| c.set(self.owner.load(Relaxed)));
        let mut g = DomainGuard {
            g: Some(g),
            d: self,
            offer: true,
            held,
        };
        let now = sys::fork_generation();
        if self.generation.load(Relaxed) != now {
            self.left_behind(&mut g);
            self.generation.store(now, Relaxed);
        }
        g
    }

    /// First use in a process forked from the one this domain served, without the domain
    /// having been handed over (`ssl::fork`): its connections and sockets are the parent's,
    /// so it goes quiet here — connections forgotten without a word (no packet may be sent
    /// with the parent's keys and packet numbers), network BIOs let go. Ports prepared for
    /// prefork wait for OSSLQUIC_prefork_worker.
    fn left_behind(&self, g: &mut DomainGuard<'_>) {
        for p in g.ports.iter_mut().filter(|p| p.fork.prefork == 0) {
            p.engine.keep_only(ConnId::MAX);
            p.fork = Default::default();
            p.set_bios(None, None);
        }
        self.refresh_pollable(g);
        self.after_fork_child(g);
    }

    /// Whether the domain's flags let its objects block (BLOCKING or LEGACY_BLOCKING).
    pub fn allows_blocking(&self) -> bool {
        self.flags & (super::SSL_DOMAIN_FLAG_BLOCKING | super::SSL_DOMAIN_FLAG_LEGACY_BLOCKING) != 0
    }

    /// Blocks until something of `interest` may have changed, or `deadline` passes (false
    /// then). The caller re-checks its condition: a return may be spurious.
    pub fn wait(
        &self,
        g: &mut DomainGuard<'_>,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> bool {
        self.waiting.fetch_add(1, SeqCst);
        let r = self.wait_counted(g, interest, deadline);
        self.waiting.fetch_sub(1, SeqCst);
        r
    }

    /// `wait`, with `waiting` already raised by the caller.
    fn wait_counted(
        &self,
        g: &mut DomainGuard<'_>,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> bool {
        let now = Instant::now();
        if deadline.is_some_and(|d| d <= now) {
            return false;
        }
        // What this thread did under the lock (new timers, touched connections, output) must
        // reach the others before it sleeps: parking keeps the guard, so its Drop would not
        // run.
        g.wake(false);
        for l in g.links() {
            l.send_pending();
        }
        if g.leader.is_none() {
            self.lead(g, interest, deadline)
        } else {
            let cv = PARK.with(Arc::clone);
            let id = g.register(interest, Wake::Cv(cv.clone()));
            let mut timed_out = false;
            while !g.woken(id) && !timed_out {
                g.held.pause();
                timed_out = match deadline {
                    Some(d) => cv.wait_until(g.raw(), d).timed_out(),
                    None => {
                        cv.wait(g.raw());
                        false
                    }
                };
                g.held.resume();
            }
            let woken = g.unregister(id);
            // Leadership may have passed to this thread while it was parked.
            woken || !timed_out
        }
    }

    /// Polls the network for everyone until an event, the earliest timer, a wake-up or
    /// `deadline`; then handles events and hands leadership on.
    fn lead(&self, g: &mut DomainGuard<'_>, interest: Interest, deadline: Option<Instant>) -> bool {
        let now = Instant::now();
        let until = match (g.next_deadline(now), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let waker = self.lead_waker();
        let id = g.register(interest, Wake::Fd(waker));
        g.set_leader(Some((id, until)), &self.leading, &self.offered);
        let mut fds = Vec::with_capacity(4);
        if waker >= 0 {
            fds.push(sys::PollFd {
                fd: waker,
                read: true,
                write: false,
                ready: false,
            });
        }
        g.poll_fds(&mut fds);
        let mut timeout = until.map(|u| u.saturating_duration_since(now));
        if waker < 0 {
            // No eventfd (out of descriptors): no one can wake this thread early, so it
            // looks again every 10 ms.
            timeout = Some(timeout.map_or(NO_WAKER_POLL, |t| t.min(NO_WAKER_POLL)));
        }
        if timeout != Some(Duration::ZERO) {
            g.held.pause();
            MutexGuard::unlocked(g.raw(), || {
                let _ = sys::poll(&mut fds, timeout);
            });
            g.held.resume();
        }
        if waker >= 0 {
            sys::eventfd_drain(waker);
        }
        let now = Instant::now();
        let was = g.held.relabel("domain: tick (leader)");
        // Still the leader while it handles what the poll found (the tick delivers with the
        // lock released): a thread woken by this tick parks again instead of taking over.
        g.tick(now);
        g.held.relabel(was);
        g.set_leader(None, &self.leading, &self.offered);
        g.unregister(id);
        // Leadership passes on when this thread releases the lock without waiting again
        // (`wake` with handover, from the guard's Drop).
        deadline.is_none_or(|d| now < d)
    }

    /// Starts the thread-assisted mode's background thread (OSSL_QUIC_client_thread_method):
    /// it keeps handling events, timers included, while the application does nothing. It
    /// is the only thread the library ever starts, and only when asked for.
    pub fn start_assist(self: &Arc<Domain>) -> Result<()> {
        let d = self.clone();
        let h = std::thread::Builder::new()
            .name("osslquic-assist".into())
            .spawn(move || {
                let mut g = d.lock("domain: start_assist");
                while !d.stopping.load(Relaxed) {
                    g.tick(Instant::now());
                    d.wait(&mut g, Interest::Any, None);
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the assist thread: {e}")))?;
        *self.assist.lock() = Some(h);
        Ok(())
    }

    /// Ends the background thread, if any: it notices at its next wake-up, which this
    /// causes.
    /// Returns once the thread has ended, so no thread of the library outlives the object
    /// that asked for it.
    pub fn stop_assist(&self) {
        self.stopping.store(true, Relaxed);
        {
            let mut g = self.lock("domain: stop_assist");
            for e in g.entries.iter_mut() {
                e.woken = true;
                signal(&e.wake);
            }
            if self.waker() >= 0 {
                sys::eventfd_signal(self.waker());
            }
        }
        if let Some(h) = self.assist.lock().take() {
            let _ = h.join();
        }
    }

    /// Registers an eventfd waiter (SSL_poll over several domains); returns its entry id.
    pub fn watch(&self, fd: i32) -> u64 {
        let mut g = self.lock("domain: watch");
        self.waiting.fetch_add(1, SeqCst);
        g.register(Interest::Any, Wake::Fd(fd))
    }
    pub fn unwatch(&self, id: u64) {
        let mut g = self.lock("domain: unwatch");
        if g.entries.iter().any(|e| e.id == id) {
            self.waiting.fetch_sub(1, SeqCst);
        }
        g.unregister(id);
    }
    /// Descriptors to wait on for this domain's network (SSL_poll over several domains).
    pub fn net_fds(&self, out: &mut Vec<sys::PollFd>) -> Option<Instant> {
        let mut g = self.lock("domain: net_fds");
        g.poll_fds(out);
        g.next_deadline(Instant::now())
    }
}

/// An error for blocking on BIOs that cannot be polled.
pub fn not_pollable() -> Error {
    Error::ssl(crate::error::ERR_R_UNSUPPORTED).with(
        "blocking mode needs network BIOs with poll descriptors (a socket, or a pollable \
         datagram pair)",
    )
}

/// The waiting and hand-over logic on its own: parking on a connection, leadership offered
/// and passed on, the epoch check that closes the gap before registering, and which waiters
/// a connection's news wake. Threads here wait for each other's steps by polling atomics
/// with a 10 s bound, never by sleeping.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssl::ctx::{Method, SslCtx, VerifyResult};
    use std::sync::mpsc;

    /// A client domain with `n` connections that have not reached any peer.
    fn conns(n: usize) -> (Arc<Domain>, Vec<Arc<ConnCell>>) {
        let d = Domain::new(Engine::new(None), 0);
        let ctx = SslCtx::new(Method::QuicClient);
        let mut cells = Vec::new();
        for _ in 0..n {
            let cfg = ctx
                .client_config(
                    Some(vec![b"hq".to_vec()]),
                    Arc::new(VerifyResult::default()),
                )
                .expect("client config");
            let mut g = d.lock("test");
            let e = &mut g.port(0).engine;
            let id = e
                .connect(
                    Instant::now(),
                    cfg,
                    "127.0.0.1:4433".parse().expect("address"),
                    "localhost",
                )
                .expect("connect");
            cells.push(e.cell(id).expect("cell"));
        }
        (d, cells)
    }

    /// Publishes `note` on `cell`, as a drive that changed it does.
    fn news(cell: &ConnCell, note: Note) {
        let mut c = cell.lock("test");
        let _ = cell.announce(&mut c, &[(cell.id, note)]);
    }

    /// Threads parked on `cell` (its lock is free while they sleep).
    fn parked(cell: &ConnCell) -> usize {
        let c = cell.lock("test: parked");
        cell.parked(&c)
    }

    /// Waits (bounded) until another thread's step shows in `cond`.
    fn until(what: &str, cond: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    /// A thread that parks on `cell` until `done` is set (checked under the connection's
    /// lock) or it takes an offer of leadership; sends whether it took one.
    fn parker(
        d: &Arc<Domain>,
        cell: &Arc<ConnCell>,
        done: &Arc<AtomicBool>,
    ) -> mpsc::Receiver<bool> {
        let (tx, rx) = mpsc::channel();
        let (d, cell, done) = (d.clone(), cell.clone(), done.clone());
        std::thread::spawn(move || {
            let mut g = cell.lock("test: parker");
            let mut took = false;
            while !done.load(SeqCst) && !took {
                if !d.park(&cell, &mut g, Awaits::Anything, &mut took) {
                    break;
                }
            }
            drop(g);
            let _ = tx.send(took);
        });
        rx
    }

    fn result(rx: &mpsc::Receiver<bool>, what: &str) -> bool {
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{what}: the parked thread did not return"))
    }

    #[test]
    fn park_returns_at_once_when_no_thread_polls() {
        let (d, cells) = conns(1);
        let mut g = cells[0].lock("test");
        let mut took = false;
        assert!(
            !d.park(&cells[0], &mut g, Awaits::Anything, &mut took),
            "parked with no poller"
        );
        assert!(!took);
        assert_eq!(d.parked_count.load(SeqCst), 0);
        assert!(d.parked.lock().is_empty(), "left in the parked list");
    }

    #[test]
    fn news_of_a_connection_wake_its_parked_thread() {
        let (d, cells) = conns(2);
        d.leading.store(true, SeqCst);
        let done = Arc::new(AtomicBool::new(false));
        let rx = parker(&d, &cells[0], &done);
        until("the thread to park", || parked(&cells[0]) == 1);
        // News of another connection wake no one here.
        news(&cells[1], Note::State);
        assert!(rx.try_recv().is_err(), "woken by another connection's news");
        {
            let mut c = cells[0].lock("test");
            done.store(true, SeqCst);
            cells[0].announce(&mut c, &[(cells[0].id, Note::State)]);
        }
        assert!(!result(&rx, "news"), "took leadership that was not offered");
        assert_eq!(d.parked_count.load(SeqCst), 0);
    }

    /// A thread parked for the peer's new streams sleeps through news of streams and is
    /// woken once by the news it waits for.
    #[test]
    fn a_parked_thread_sleeps_through_news_it_does_not_wait_for() {
        let (d, cells) = conns(1);
        d.leading.store(true, SeqCst);
        let cell = cells[0].clone();
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        {
            let (d, cell, done) = (d.clone(), cell.clone(), done.clone());
            std::thread::spawn(move || {
                let mut g = cell.lock("test: parker");
                let mut rounds = 0;
                let mut took = false;
                while !done.load(SeqCst) {
                    if !d.park(&cell, &mut g, Awaits::Incoming, &mut took) {
                        break;
                    }
                    rounds += 1;
                }
                drop(g);
                let _ = tx.send(rounds);
            });
        }
        until("the thread to park", || parked(&cell) == 1);
        let s = |i| StreamId::new(quinn_proto::Side::Client, quinn_proto::Dir::Bi, i);
        {
            // The thread registered under the lock and sleeps in `park` now.
            let mut c = cell.lock("test");
            let id = cell.id;
            let notes = [(id, Note::Stream(s(0))), (id, Note::Stream(s(1)))];
            assert!(!cell.announce(&mut c, &notes), "woken by news of streams");
            done.store(true, SeqCst);
            assert!(cell.announce(&mut c, &[(id, Note::Incoming)]), "not woken");
        }
        let rounds = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the parked thread did not return");
        assert_eq!(rounds, 1, "woken by news of streams it does not wait for");
    }

    #[test]
    fn a_leaving_poller_offers_leadership_once_and_it_is_passed_on() {
        let (d, cells) = conns(2);
        d.leading.store(true, SeqCst);
        let never = Arc::new(AtomicBool::new(false));
        let first = parker(&d, &cells[0], &never);
        until("one parked thread", || d.parked_count.load(SeqCst) == 1);
        let second = parker(&d, &cells[1], &never);
        until("two parked threads", || d.parked_count.load(SeqCst) == 2);
        // The poller leaves. While an offer is open, offering again wakes no one.
        d.leading.store(false, SeqCst);
        d.offered.store(true, SeqCst);
        d.offer_lead();
        assert_eq!(d.parked_count.load(SeqCst), 2, "woken by a second offer");
        assert!(d.offered.load(SeqCst));
        // With none open, one thread is offered leadership, and the offer stays open until
        // it is taken.
        d.offered.store(false, SeqCst);
        d.offer_lead();
        assert!(
            result(&first, "offer"),
            "the first parked thread did not take the offer"
        );
        assert!(
            !d.offered.load(SeqCst),
            "the offer was taken but is still open"
        );
        assert!(
            second.try_recv().is_err(),
            "two threads were offered leadership"
        );
        assert_eq!(parked(&cells[1]), 1);
        // The taker's call completed without leading: it passes the offer on.
        d.pass_lead();
        assert!(
            result(&second, "passed offer"),
            "the offer was not passed on"
        );
        assert_eq!(d.parked_count.load(SeqCst), 0);
    }

    #[test]
    fn a_new_leader_withdraws_an_offer_not_taken() {
        let (d, cells) = conns(1);
        let mut g = d.lock("test");
        d.offered.store(true, SeqCst);
        g.set_leader(Some((7, None)), &d.leading, &d.offered);
        assert!(d.is_polled());
        assert!(!d.offered.load(SeqCst), "an offer survived a new leader");
        g.set_leader(None, &d.leading, &d.offered);
        drop(g);
        // With no one parked, releasing the lock offers nothing.
        assert!(!d.offered.load(SeqCst));
        assert_eq!(parked(&cells[0]), 0);
    }

    #[test]
    fn a_change_before_registering_is_not_slept_through() {
        let (d, cells) = conns(1);
        let cell = &cells[0];
        // The new connection's first drive: afterwards its next timer is its first probe,
        // about a second away (quinn's initial RTT estimate), so a wait until a deadline
        // 50 ms away could only end by timing out.
        d.lock("test").tick(Instant::now());
        assert!(
            d.lock("test")
                .next_deadline(Instant::now())
                .is_some_and(|t| t > Instant::now() + Duration::from_millis(100)),
            "the connection has work or a timer due soon"
        );
        let seen = cell.epoch.load(SeqCst);
        // Changed after the caller checked, before it registered: it must not sleep.
        cell.bump();
        let woke = d.wait_conn(
            Interest::Conn(0, cell.id),
            &cell.epoch,
            seen,
            Some(Instant::now() + Duration::from_millis(50)),
        );
        assert!(woke, "slept through a change made before registering");
        assert_eq!(d.waiting.load(SeqCst), 0, "waiter count left raised");
    }

    #[test]
    fn news_wake_only_the_waiters_they_concern() {
        let (d, cells) = conns(2);
        let (a, b) = (cells[0].id, cells[1].id);
        let s = quinn_proto::StreamId::new(quinn_proto::Side::Client, quinn_proto::Dir::Bi, 0);
        let other = quinn_proto::StreamId::new(quinn_proto::Side::Client, quinn_proto::Dir::Bi, 1);
        let interests = [
            Interest::Conn(0, a),
            Interest::Stream(0, a, s),
            Interest::Stream(0, a, other),
            Interest::Incoming(0, a),
            Interest::Accept(0),
            Interest::Conn(0, b),
            Interest::Any,
        ];
        let cases: [(Note, [bool; 7]); 3] = [
            (
                Note::Stream(s),
                [true, true, false, false, false, false, true],
            ),
            (
                Note::Incoming,
                [true, false, false, true, false, false, true],
            ),
            (Note::State, [true, true, true, true, false, false, true]),
        ];
        for (note, want) in cases {
            let mut g = d.lock("test");
            let ids: Vec<u64> = interests
                .iter()
                .map(|&i| g.register(i, Wake::Fd(-1)))
                .collect();
            news(&cells[0], note);
            g.wake(false);
            let got: Vec<bool> = ids.iter().map(|&id| g.woken(id)).collect();
            assert_eq!(got, want, "{note:?}: woken {interests:?}");
            for id in ids {
                g.unregister(id);
            }
        }
    }

    #[test]
    fn news_without_waiters_only_count_as_activity() {
        let (d, cells) = conns(1);
        let before = d.activity.load(SeqCst);
        news(&cells[0], Note::State);
        d.notify(&cells[0].link);
        assert!(!cells[0].link.has_news(), "news kept with no one waiting");
        assert_eq!(d.activity.load(SeqCst), before + 1);
    }
}
