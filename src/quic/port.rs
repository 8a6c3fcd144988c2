//! `Port`, the reactor: the only code that moves datagrams between the network BIOs and the
//! engine. Receives in batches (`recv_batch`, GRO where the BIO has it), sends in batches
//! (`send_batch`: sendmmsg with GSO runs), carries ECN codepoints both ways between the BIO
//! and quinn, and bounds the work of one tick.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release},
};
use std::time::Instant;

use super::conn::{Arrival, ConnCell};
use super::engine::{Engine, Out};
use crate::bio::addr::BioAddr;
use crate::bio::consts::*;
use crate::bio::{Bio, RxDst};
use crate::sync::{Asked, Held, LockFor, Mutex, atomic_object};
use crate::sys::{self, TxDesc};
use quinn_proto::{ConnectionEvent, EcnCodepoint};

const RX_BATCH: usize = 32;
/// One receive slot: a GRO run (up to 64 KiB of datagrams) arrives whole in one, and is
/// split here without a copy (`Bio::recv_segments`). The slots are mmap'd zero pages: a
/// slot costs memory only as far as datagrams have filled it.
const RX_SLOT: usize = sys::GRO_MAX;
/// Most receive batches per tick: bounded work, the rest waits for the next tick.
pub(crate) const RX_ROUNDS: usize = 32;
/// How far off a client engine's next timer must be for it to give its buffers back.
const IDLE_BUFFERS: std::time::Duration = std::time::Duration::from_secs(1);

/// Where datagrams from an unaddressed BIO are said to come from: never put on the wire.
pub const UNADDRESSED_PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);

/// A forwarded datagram's header on a fork channel: family (4 or 6), port (big-endian),
/// 16 address bytes.
const FWD_HEAD: usize = 19;
/// How often a fork parent looks for children that have gone.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A port's part in fork and prefork (see `ssl::fork`).
#[derive(Default)]
pub struct ForkState {
    /// Fork child: the channel its parent forwards stragglers for its connection through.
    pub from_parent: Option<OwnedFd>,
    /// Fork parent: channels to the children serving handed-over connections, by key.
    pub to_child: HashMap<u64, OwnedFd>,
    pub next_chan: u64,
    /// When the parent last looked for children that have gone.
    pub last_reap: Option<Instant>,
    /// Prefork: the sockets of workers 1.. beside the listener's own (worker 0's).
    pub workers: Vec<OwnedFd>,
    /// Prefork: the number of workers prepared for (0: not prepared).
    pub prefork: usize,
}

pub struct Port {
    pub engine: Engine,
    pub rbio: Option<Arc<Bio>>,
    pub wbio: Option<Arc<Bio>>,
    rxbuf: Option<RxBuf>,
    pub fork: ForkState,
    /// A client engine gave its I/O buffers back once (see `release_idle_buffers`).
    released: bool,
    /// A thread is receiving for this port (`rx_begin`).
    rx_busy: bool,
    /// The routed-datagram list, lent to each receive (`RxJob::routed`).
    routed: Routed,
}

/// A port's receive buffer: the slots, and what a batch says of each datagram. Made once
/// (per port, or taken from the thread's spare) and lent to each receive: a receive neither
/// clears nor copies the few KiB of addresses and lengths.
pub(crate) struct RxBuf {
    pages: sys::ZeroPages,
    meta: Box<RxMeta>,
}

struct RxMeta {
    src: [BioAddr; RX_BATCH],
    lens: [usize; RX_BATCH],
    /// Each slot's GRO segment size (0: one datagram).
    segs: [usize; RX_BATCH],
    /// Each datagram's ECN bits (0 where the BIO does not read them).
    ecn: [u8; RX_BATCH],
}

impl RxBuf {
    fn new() -> Option<RxBuf> {
        Some(RxBuf {
            pages: sys::ZeroPages::new(RX_BATCH * RX_SLOT).ok()?,
            meta: Box::new(RxMeta {
                src: [BioAddr::default(); RX_BATCH],
                lens: [0; RX_BATCH],
                segs: [0; RX_BATCH],
                ecn: [0; RX_BATCH],
            }),
        })
    }
}

/// One receive in progress (see `Port::rx_begin`): the BIO, the buffer, what arrived.
pub struct RxJob {
    rbio: Arc<Bio>,
    addressed: bool,
    buf: RxBuf,
    /// The batch's datagrams for known connections, routed, waiting for `deliver` (kept
    /// by the port from tick to tick: no allocation per batch).
    pub routed: Routed,
}

/// Routed datagrams, each with the connection it is for (taken as delivered) and the ECN
/// codepoint to count for it (the first part of a datagram only).
pub type Routed = Vec<(Arc<ConnCell>, Option<ConnectionEvent>, Arrival)>;

/// Most datagrams one receive takes.
pub(crate) const RX_BATCH_MAX: usize = RX_BATCH;

impl RxJob {
    /// Receives one batch (no lock needed); returns how many datagrams arrived.
    pub fn recv(&mut self) -> usize {
        let RxBuf { pages, meta } = &mut self.buf;
        // An address the BIO does not write reads as none (not the last batch's).
        for a in &mut meta.src {
            a.unset();
        }
        let mut slots = pages
            .as_mut_slice()
            .chunks_exact_mut(RX_SLOT)
            .zip(meta.src.iter_mut());
        let mut dsts: [RxDst; RX_BATCH] = std::array::from_fn(|_| {
            let (buf, src) = slots.next().expect("RX_BATCH slots");
            RxDst::new(buf, Some(src), None)
        });
        // Would-block, or an error the next tick will meet again: nothing arrived.
        let n = self.rbio.recv_segments(&mut dsts).unwrap_or_default();
        for (((l, g), e), d) in meta
            .lens
            .iter_mut()
            .zip(&mut meta.segs)
            .zip(&mut meta.ecn)
            .zip(&dsts)
        {
            *l = d.len;
            *g = d.seg;
            *e = d.ecn;
        }
        n
    }
}

/// Output of one drive (or of the endpoint): datagrams and GSO runs in `txbuf`.
struct Tx {
    out: Vec<Out>,
    txbuf: Vec<u8>,
}

/// A port's output on its way to the network, in the order each connection made it. Filled
/// under a connection's lock (or the endpoint's) and sent by whichever thread holds
/// `sending`, after releasing its locks: the send (on loopback it also runs the receiver's
/// side) holds up no one. A thread that finds another sending leaves its output to it, which
/// looks at the queue again before it lets go.
#[derive(Default)]
pub struct SendQueue {
    q: Mutex<VecDeque<Tx>>,
    sending: Mutex<()>,
    /// Where output goes: the port's write BIO, and whether it takes destination addresses.
    target: Mutex<Option<(Arc<Bio>, bool)>>,
    /// The network refused output for now (EAGAIN, ENOBUFS): it waits at the front of the
    /// queue until the socket takes output again (`Port::backlogged`).
    refused: AtomicBool,
}

thread_local! {
    /// Buffers of output this thread has sent, handed back to an engine that gives its own
    /// away (`Port::flush`): no allocation per flush.
    static SPARE: std::cell::RefCell<Vec<(Vec<Out>, Vec<u8>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}
const SPARES: usize = 4;

impl SendQueue {
    /// Sends what is queued, unless another thread is at it (it sends this thread's output
    /// too) or the network refuses output (the rest waits for the next drain).
    pub fn drain(&self) {
        atomic_object(&self.refused);
        while let Some(_sending) = self.sending.try_lock() {
            let _held = Held::begin("sender: draining the send queue", Asked::now());
            let target = self.target.lock_for("send queue: push or pop").clone();
            loop {
                let Some(mut tx) = self.q.lock_for("send queue: push or pop").pop_front() else {
                    break;
                };
                let Some((wbio, addressed)) = &target else {
                    recycle(tx);
                    continue;
                };
                let unsent = send_out(wbio, *addressed, &tx.out, &tx.txbuf);
                match unsent {
                    Some((out, txbuf)) => {
                        tx.out = out;
                        tx.txbuf = txbuf;
                        self.q.lock_for("send queue: push or pop").push_front(tx);
                        self.refused.store(true, Release);
                        return;
                    }
                    None => recycle(tx),
                }
            }
            self.refused.store(false, Release);
            drop(_held);
            drop(_sending);
            if self.q.lock_for("send queue: push or pop").is_empty() {
                return;
            }
        }
    }

    pub fn refused(&self) -> bool {
        atomic_object(&self.refused);
        self.refused.load(Acquire)
    }

    /// Queues one drive's output (taken from `spare_buffers`).
    pub fn push(&self, out: Vec<Out>, txbuf: Vec<u8>) {
        self.q
            .lock_for("send queue: push or pop")
            .push_back(Tx { out, txbuf });
    }

    /// Takes everything queued (for engine-level users without a port).
    pub fn take_all(&self) -> Vec<(Vec<Out>, Vec<u8>)> {
        let mut q = self.q.lock_for("send queue: push or pop");
        q.drain(..).map(|tx| (tx.out, tx.txbuf)).collect()
    }

    /// Points the queue at new BIOs; what was queued for the old ones goes with them (a
    /// port let go in a forked child must not send what its parent sends).
    fn retarget(&self, target: Option<(Arc<Bio>, bool)>) {
        let mut q = self.q.lock_for("send queue: push or pop");
        for tx in q.drain(..) {
            recycle(tx);
        }
        *self.target.lock_for("send queue: push or pop") = target;
        self.refused.store(false, Release);
    }
}

thread_local! {
    /// The receive buffer a port let go on this thread (freed, or idle), for the next port
    /// that needs one: a client's handshake then neither maps nor unmaps 2 MiB, nor takes
    /// page faults on it (4% of a handshake's CPU, `bench/quic.sh`'s handshakes over a
    /// datagram pair). One per thread: what it keeps is one port's, not one per connection.
    static SPARE_RX: std::cell::RefCell<Option<RxBuf>> =
        const { std::cell::RefCell::new(None) };
}

/// A receive buffer: this thread's spare, or new zero pages (None if mmap fails). A spare is
/// not zero: receives overwrite what they use.
fn new_rxbuf() -> Option<RxBuf> {
    SPARE_RX
        .try_with(|s| s.borrow_mut().take())
        .ok()
        .flatten()
        .or_else(RxBuf::new)
}

/// Keeps a receive buffer a port no longer needs as this thread's spare (if it has none).
fn spare_rxbuf(b: RxBuf) {
    let _ = SPARE_RX.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Some(b);
        }
    });
}

/// Empty output buffers, from this thread's spares when it has some.
pub fn spare_buffers() -> (Vec<Out>, Vec<u8>) {
    SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default()
}

/// Gives unused output buffers back to this thread's spares.
pub fn return_buffers(out: Vec<Out>, txbuf: Vec<u8>) {
    recycle(Tx { out, txbuf });
}

fn recycle(mut tx: Tx) {
    tx.out.clear();
    tx.txbuf.clear();
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARES {
            s.push((tx.out, tx.txbuf));
        }
    });
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Some(b) = self.rxbuf.take() {
            spare_rxbuf(b);
        }
    }
}

impl Port {
    pub fn new(engine: Engine) -> Port {
        Port {
            engine,
            rbio: None,
            wbio: None,
            rxbuf: None,
            fork: ForkState::default(),
            released: false,
            rx_busy: false,
            routed: Vec::new(),
        }
    }

    /// Attaches network BIOs: they are made non-blocking, and GRO is turned on for a socket
    /// (this reactor always reads until the BIO would block).
    pub fn set_bios(&mut self, r: Option<Arc<Bio>>, w: Option<Arc<Bio>>) {
        for b in r.iter().chain(w.iter()) {
            if let Some(c) = b.conn() {
                // A datagram connect BIO (BIO_new_ssl_connect): it connects on first use.
                c.prepare_for_port();
            } else if let Ok(d) = b.dgram() {
                let _ = d.set_nbio(true);
            }
        }
        if let Some(Ok(d)) = r.as_ref().filter(|b| b.conn().is_none()).map(|b| b.dgram()) {
            d.set_offload(true, true);
        }
        // ECN (quinn marks and validates; a BIO without it reports no codepoints and quinn
        // stops marking after the first ACKs), unless the application turned it off.
        // (A datagram connect BIO turns it on when it connects: `prepare_for_port`.)
        for b in r.iter().chain(w.iter()).filter(|b| b.conn().is_none()) {
            if let Ok(d) = b.dgram() {
                d.want_ecn();
            }
        }
        self.rbio = r;
        self.wbio = w;
        let addressed = self.write_addressed();
        let target = self.wbio.clone().map(|b| (b, addressed));
        self.engine.link().sendq.retarget(target);
    }

    /// The port's send queue.
    pub fn sendq(&self) -> &Arc<SendQueue> {
        &self.engine.link().sendq
    }

    fn read_addressed(&self) -> bool {
        self.rbio
            .as_ref()
            .is_some_and(|b| b.effective_caps() & BIO_DGRAM_CAP_PROVIDES_SRC_ADDR != 0)
    }
    pub fn write_addressed(&self) -> bool {
        self.wbio
            .as_ref()
            .is_some_and(|b| b.effective_caps() & BIO_DGRAM_CAP_HANDLES_DST_ADDR != 0)
    }

    /// A tick after the network's datagrams were taken in: forwarded datagrams, timers,
    /// connections with work, network out.
    pub fn tick_rest(&mut self, now: Instant) {
        if self.fork.from_parent.is_some() {
            self.receive_forwarded(now);
        }
        if !self.fork.to_child.is_empty() {
            // At most once a second: a poll(2) over every child's channel costs O(children),
            // too much for every tick of a parent with many children. A child that is gone
            // is also noticed at once when a datagram is forwarded to it.
            if self
                .fork
                .last_reap
                .is_none_or(|t| now.saturating_duration_since(t) >= REAP_EVERY)
            {
                self.fork.last_reap = Some(now);
                self.reap_children();
            }
        }
        self.engine.handle_timeouts(now);
        self.run(now);
        self.release_idle_buffers(now);
    }

    /// A client engine with nothing due within `IDLE_BUFFERS` gives its I/O buffers back:
    /// the receive batch and quinn's transmit buffer, 141 KiB that an OpenSSL client
    /// connection (its own engine and port) otherwise keeps for life (issue 13). Once only:
    /// the first quiet moment is the end of the handshake's exchanges, and a connection that
    /// works after that keeps them (a request/response client is quiet between every
    /// response and its next request, and would allocate them again each time). A
    /// listener's are shared by all its connections and kept.
    fn release_idle_buffers(&mut self, now: Instant) {
        if self.released || self.engine.is_server() || self.engine.conn_count() == 0 {
            return;
        }
        let soon = self
            .engine
            .next_timeout()
            .is_some_and(|t| t < now + IDLE_BUFFERS);
        if soon || self.backlogged() || self.engine.has_work() {
            return;
        }
        self.released = true;
        if let Some(b) = self.rxbuf.take() {
            spare_rxbuf(b);
        }
        self.engine.release_scratch();
    }

    /// Drives the connections with work; while the network refuses earlier output
    /// (backlog), they wait on the work list and their output stays inside quinn, which
    /// paces itself.
    pub fn run(&mut self, now: Instant) {
        if self.sendq().refused() {
            self.sendq().drain();
        }
        if !self.sendq().refused() {
            self.engine.process(now);
        }
        self.flush();
    }

    /// Output waiting for the network to accept it (SSL_net_write_desired).
    pub fn backlogged(&self) -> bool {
        !self.engine.out.is_empty() || self.sendq().refused()
    }

    /// Takes the port's receive right (one receiver at a time, so each connection's
    /// datagrams are delivered in order) with its buffer, for a receive that runs without
    /// the domain's lock. None if there is no read BIO or another thread is receiving.
    pub fn rx_begin(&mut self) -> Option<RxJob> {
        if self.rx_busy {
            return None;
        }
        let rbio = self.rbio.clone()?;
        // Without memory for the buffer (mmap failed) the port does not read this time.
        let buf = self.take_rxbuf()?;
        self.rx_busy = true;
        Some(RxJob {
            addressed: self.read_addressed(),
            rbio,
            buf,
            routed: std::mem::take(&mut self.routed),
        })
    }

    /// Lets the endpoint route the `n` datagrams `job` received: what belongs to a known
    /// connection lands in `job.routed`, for delivery under that connection's lock.
    pub fn rx_route(&mut self, job: &mut RxJob, n: usize, now: Instant) {
        let RxBuf { pages, meta } = &mut job.buf;
        for i in 0..n {
            let remote = if job.addressed {
                meta.src[i].to_socket_addr().unwrap_or(UNADDRESSED_PEER)
            } else {
                UNADDRESSED_PEER
            };
            let slot = &pages.as_mut_slice()[i * RX_SLOT..i * RX_SLOT + meta.lens[i]];
            let ecn = EcnCodepoint::from_bits(meta.ecn[i]);
            // A GRO run: its datagrams in order, each routed on its own (an empty datagram
            // is one too, which chunks() would not yield).
            let seg = match meta.segs[i] {
                0 => slot.len().max(1),
                s => s,
            };
            let empty = slot.is_empty().then_some(slot);
            for data in slot.chunks(seg).chain(empty) {
                for (cell, ev, arrival) in self
                    .engine
                    .route_datagram(now, remote, None, ecn, data)
                    .into_iter()
                    .flatten()
                {
                    job.routed.push((cell, Some(ev), arrival));
                }
            }
        }
    }

    /// In a forked child: a receive the parent's threads had in progress is not this
    /// process's.
    pub fn rx_reset(&mut self) {
        self.rx_busy = false;
    }

    /// Gives the receive right and the buffer back.
    pub fn rx_end(&mut self, mut job: RxJob) {
        self.rxbuf = Some(job.buf);
        job.routed.clear();
        self.routed = job.routed;
        self.rx_busy = false;
    }

    /// Fork child: datagrams the parent forwarded (they reached the listener's socket).
    fn receive_forwarded(&mut self, now: Instant) {
        let Some(fd) = self.fork.from_parent.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        // The receive buffer, taken for the loop (no allocation per tick).
        let Some(mut rxbuf) = self.take_rxbuf() else {
            return;
        };
        let buf = rxbuf.pages.as_mut_slice();
        for _ in 0..RX_BATCH * RX_ROUNDS {
            match sys::recv_one(fd, &mut buf[..FWD_HEAD + RX_SLOT]) {
                Ok(Some(n)) if n > FWD_HEAD => {
                    if let Some(from) = fwd_head_decode(&buf[..FWD_HEAD]) {
                        self.engine
                            .handle_datagram(now, from, None, &buf[FWD_HEAD..n]);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    // The parent has gone: no more stragglers.
                    self.fork.from_parent = None;
                    break;
                }
                Err(_) => break,
            }
        }
        self.rxbuf = Some(rxbuf);
    }

    /// The receive buffer: the port's, or another (`new_rxbuf`).
    fn take_rxbuf(&mut self) -> Option<RxBuf> {
        self.rxbuf.take().or_else(new_rxbuf)
    }

    /// Fork parent: forgets the children that have exited (their channel hung up).
    fn reap_children(&mut self) {
        let mut fds: Vec<sys::PollFd> = self
            .fork
            .to_child
            .values()
            .map(|f| sys::PollFd {
                fd: f.as_raw_fd(),
                read: true,
                write: false,
                ready: false,
            })
            .collect();
        if sys::poll(&mut fds, Some(std::time::Duration::ZERO)).unwrap_or(0) == 0 {
            return;
        }
        let gone: Vec<u64> = self
            .fork
            .to_child
            .iter()
            .filter(|(_, f)| fds.iter().any(|p| p.ready && p.fd == f.as_raw_fd()))
            .map(|(&k, _)| k)
            .collect();
        for k in gone {
            self.forget_child(k);
        }
    }

    fn forget_child(&mut self, chan: u64) {
        self.fork.to_child.remove(&chan);
        self.engine.forget_forwarded(chan);
    }

    /// Fork parent: passes on datagrams for connections now served by children.
    fn forward(&mut self) {
        for f in std::mem::take(&mut self.engine.fwd_out) {
            let Some(fd) = self.fork.to_child.get(&f.chan).map(|c| c.as_raw_fd()) else {
                continue;
            };
            let head = fwd_head_encode(&f.from);
            // A full channel drops the datagram (QUIC recovers); a gone child is forgotten.
            if let Err(e) = sys::send_two(fd, &head, &self.engine.fwdbuf[f.off..f.off + f.len])
                && e.raw_os_error() != Some(libc::EAGAIN)
            {
                self.forget_child(f.chan);
            }
        }
        self.engine.fwdbuf.clear();
    }

    /// The fork channel to wait on besides the network BIOs (a child's, from its parent).
    /// A parent's channels are not waited on: a child's exit needs no prompt answer.
    pub fn fork_fds(&self, out: &mut Vec<i32>) {
        out.extend(self.fork.from_parent.as_ref().map(|f| f.as_raw_fd()));
    }

    /// Queues what the endpoint produced for the network (the connections queue their own
    /// as they are driven); the lock's holder sends it all after releasing its lock. What
    /// the network refuses for now (a full socket buffer) waits for the next drain; on a hard
    /// error it is dropped (QUIC recovers).
    pub fn flush(&mut self) {
        if !self.engine.fwd_out.is_empty() {
            self.forward();
        }
        if self.wbio.is_none() {
            self.engine.clear_out();
            return;
        }
        if !self.engine.out.is_empty() {
            let (out, txbuf) = spare_buffers();
            let out = std::mem::replace(&mut self.engine.out, out);
            let txbuf = std::mem::replace(&mut self.engine.txbuf, txbuf);
            self.sendq().push(out, txbuf);
            self.engine.link().set_pending();
        }
    }
}

/// Delivers routed datagrams (emptying `routed`) and drives each connection they reached,
/// in one hold of its lock per connection: its datagrams in the order they came, then one
/// drive (an application call never sees quinn's state ahead of what a drive made of it: a
/// closed connection whose loss is not recorded yet). Connections whose drive left something
/// for the endpoint are added to `left`.
pub fn deliver(routed: &mut Routed, left: &mut Vec<Arc<ConnCell>>, now: Instant) {
    for i in 0..routed.len() {
        let Some(ev) = routed[i].1.take() else {
            continue; // delivered with an earlier datagram of its connection
        };
        let cell = routed[i].0.clone();
        let mut c = cell.lock("conn: datagrams");
        if c.gone {
            continue;
        }
        c.count_arrival(routed[i].2);
        // A panic while a datagram is handled ends this connection only (`ConnCell::contain`).
        let _ = cell.contain(&mut c, now, |c| c.handle_event(ev));
        for later in routed[i + 1..].iter_mut() {
            if Arc::ptr_eq(&later.0, &cell)
                && let Some(ev) = later.1.take()
            {
                c.count_arrival(later.2);
                let _ = cell.contain(&mut c, now, |c| c.handle_event(ev));
            }
        }
        cell.drive(&mut c, now);
        drop(c);
        if cell.needs_endpoint() {
            left.push(cell);
        }
    }
    routed.clear();
}

/// Sends `out` (datagrams and GSO runs in `txbuf`) through `wbio` in one batch; returns the
/// datagrams the network refused for now, in order, one per entry.
fn send_out(wbio: &Bio, addressed: bool, out: &[Out], txbuf: &[u8]) -> Option<(Vec<Out>, Vec<u8>)> {
    // This thread's descriptor arrays, reused from send to send (fresh ones if a BIO's
    // callback sends again from inside the send).
    SEND_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            let (dsts, descs) = &mut *s;
            send_with(wbio, addressed, out, txbuf, dsts, descs)
        }
        Err(_) => send_with(
            wbio,
            addressed,
            out,
            txbuf,
            &mut Vec::new(),
            &mut Vec::new(),
        ),
    })
}

thread_local! {
    static SEND_SCRATCH: std::cell::RefCell<(Vec<BioAddr>, Vec<TxDesc<'static>>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

fn send_with(
    wbio: &Bio,
    addressed: bool,
    out: &[Out],
    txbuf: &[u8],
    dsts: &mut Vec<BioAddr>,
    scratch: &mut Vec<TxDesc<'static>>,
) -> Option<(Vec<Out>, Vec<u8>)> {
    dsts.clear();
    if addressed {
        dsts.extend(out.iter().map(|o| BioAddr::from_socket_addr(&o.dst)));
    }
    // The scratch vector's allocation, lent to descriptors that borrow this call's buffers.
    let mut descs = sys::recycle(std::mem::take(scratch));
    let dsts = &*dsts;
    for (k, o) in out.iter().enumerate() {
        let mut off = 0;
        while off < o.len {
            let len = o.seg.min(o.len - off);
            descs.push(TxDesc {
                data: &txbuf[o.off + off..o.off + off + len],
                dst: if addressed { Some(&dsts[k]) } else { None },
                src: None,
                ecn: o.ecn,
            });
            off += len;
        }
    }
    let sent = wbio.send_batch(&descs);
    let (total, unsent_bytes) = (
        descs.len(),
        descs[sent.sent.min(descs.len())..]
            .iter()
            .map(|d| d.data.len())
            .sum::<usize>(),
    );
    *scratch = sys::recycle(descs);
    let retry = sent.err.as_ref().is_some_and(|e| {
        let c = e.code;
        crate::error::is_system(c)
            && matches!(
                crate::error::reason_of(c) as i32,
                libc::EAGAIN | libc::ENOBUFS | libc::EINTR
            )
            || c == crate::error::pack(crate::error::ERR_LIB_BIO, crate::error::BIO_R_NON_FATAL)
    });
    if sent.sent >= total || !retry {
        return None;
    }
    // Keep the unsent datagrams, in order, one per entry.
    let mut u = (
        Vec::with_capacity(total - sent.sent),
        Vec::with_capacity(unsent_bytes),
    );
    let mut datagram = 0;
    for o in out {
        let mut off = 0;
        while off < o.len {
            let len = o.seg.min(o.len - off);
            if datagram >= sent.sent {
                u.0.push(Out {
                    dst: o.dst,
                    src_ip: o.src_ip,
                    off: u.1.len(),
                    len,
                    seg: len,
                    ecn: o.ecn,
                });
                u.1.extend_from_slice(&txbuf[o.off + off..o.off + off + len]);
            }
            datagram += 1;
            off += len;
        }
    }
    Some(u)
}

fn fwd_head_encode(a: &SocketAddr) -> [u8; FWD_HEAD] {
    let mut h = [0u8; FWD_HEAD];
    let port = a.port().to_be_bytes();
    h[1..3].copy_from_slice(&port);
    match a.ip() {
        IpAddr::V4(ip) => {
            h[0] = 4;
            h[3..7].copy_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            h[0] = 6;
            h[3..19].copy_from_slice(&ip.octets());
        }
    }
    h
}

fn fwd_head_decode(h: &[u8]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([h[1], h[2]]);
    let ip = match h[0] {
        4 => IpAddr::V4(Ipv4Addr::new(h[3], h[4], h[5], h[6])),
        6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&h[3..19]).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks a buffer (a new mapping reads zero).
    fn mark(b: &mut RxBuf, v: u8) {
        b.pages.as_mut_slice()[RX_SLOT] = v;
    }

    fn marked(b: &mut RxBuf) -> u8 {
        b.pages.as_mut_slice()[RX_SLOT]
    }

    /// A port let go of on a thread leaves its receive buffer to the thread's next port
    /// (no mmap, munmap or page faults per short-lived client); the thread keeps one.
    #[test]
    fn a_freed_ports_receive_buffer_serves_the_next_port() {
        let mut p = Port::new(Engine::new(None));
        let mut b = p.take_rxbuf().expect("mmap");
        assert_eq!(b.pages.len(), RX_BATCH * RX_SLOT);
        mark(&mut b, 1);
        p.rxbuf = Some(b);
        drop(p);
        let mut q = Port::new(Engine::new(None));
        let mut b = q.take_rxbuf().expect("the spare");
        assert_eq!(marked(&mut b), 1, "the next port mapped a new buffer");
        // A second port's buffer while the spare is taken: a new mapping.
        let mut r = Port::new(Engine::new(None));
        let mut c = r.take_rxbuf().expect("mmap");
        assert_eq!(marked(&mut c), 0);
        mark(&mut c, 2);
        q.rxbuf = Some(b);
        r.rxbuf = Some(c);
        drop(q);
        drop(r); // the thread keeps one already: this one is unmapped
        let mut s = Port::new(Engine::new(None));
        assert_eq!(marked(&mut s.take_rxbuf().expect("the spare")), 1);
        let mut t = Port::new(Engine::new(None));
        assert_eq!(marked(&mut t.take_rxbuf().expect("mmap")), 0);
    }
}
