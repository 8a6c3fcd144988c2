//! The sans-I/O QUIC engine: one quinn-proto `Endpoint` and its connections. Every call
//! takes `now`; datagrams come in through `handle_datagram` and leave through `out`.
//!
//! Scheduling follows lsquic's engine: a connection is touched only when it has work — it is
//! on the tickable queue (a datagram or an application call reached it) or its timer in the
//! min-heap is due. An idle connection costs nothing per tick; `conn_ticks` counts the
//! per-connection work so tests can show it.
//! Must not touch: BIOs, sockets, the SSL object model.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::BytesMut;
use quinn_proto::{
    ClientConfig, Connection, ConnectionHandle, ConnectionId, ConnectionIdGenerator, DatagramEvent,
    Dir, Endpoint, EndpointConfig, EndpointEvent, Event, InvalidCid, ServerConfig, StreamEvent,
    StreamId, VarInt,
};
use rand::Rng;

use super::conn::{ConnState, update_nudge};
use super::transport::{self, Closing};

/// Most connections driven in one `process` call, so one busy tick cannot starve the caller.
const MAX_DRIVE_PER_TICK: usize = 4096;
/// Most datagrams one connection may emit per drive (GSO batch size for quinn).
const MAX_TX_PER_DRIVE: usize = 64;

/// The engine's own connection id. Unlike quinn's `ConnectionHandle`, which quinn reuses
/// once a connection has drained, an id is never reused, so an application object can never
/// end up addressing someone else's connection.
pub type ConnId = u64;

/// What changed on a connection, for waking the threads that wait on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// Data, FIN, a reset or STOP_SENDING on this stream, it became writable again, or the
    /// peer acknowledged all of it.
    Stream(StreamId),
    /// The peer opened streams.
    Incoming,
    /// The connection's own state: established, closed, drained, new stream credit.
    State,
}

/// One datagram (or GSO run) to send: `len` bytes at `off` in `Engine::txbuf`.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub dst: SocketAddr,
    pub src_ip: Option<IpAddr>,
    pub off: usize,
    pub len: usize,
    /// Segment size when `len` holds several datagrams.
    pub seg: usize,
}

/// Length of the connection IDs this engine issues.
pub const CID_LEN: usize = 8;

/// Issues connection IDs from the calling thread's random generator (reseeded after a fork,
/// so no two processes issue the same IDs). A prefork worker's IDs carry its index in their
/// first byte: the kernel's steering program (see `ssl::fork`) routes datagrams by it, and a
/// worker ignores (answers no stateless reset to) IDs of other workers.
struct Cids {
    worker: Option<u8>,
}

impl ConnectionIdGenerator for Cids {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut b = [0u8; CID_LEN];
        rand::rng().fill_bytes(&mut b);
        if let Some(w) = self.worker {
            b[0] = w;
        }
        ConnectionId::new(&b)
    }
    fn validate(&self, cid: &ConnectionId) -> Result<(), InvalidCid> {
        match self.worker {
            Some(w) if cid.len() != CID_LEN || cid[0] != w => Err(InvalidCid),
            _ => Ok(()),
        }
    }
    fn cid_len(&self) -> usize {
        CID_LEN
    }
    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

/// An endpoint on `base` (its stateless-reset key is shared by every process of a fork or
/// prefork family, so any of them can be recognised by its peers) issuing IDs for `worker`.
fn new_endpoint(
    base: &EndpointConfig,
    server: Option<Arc<ServerConfig>>,
    worker: Option<u8>,
) -> Endpoint {
    let mut cfg = base.clone();
    cfg.cid_generator(move || Box::new(Cids { worker }));
    Endpoint::new(Arc::new(cfg), server, true, None)
}

/// What an engine saw: for tests and the fork/prefork demos' logs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Of them, datagrams for connections this process does not serve (a fork child's
    /// copies of other connections, another prefork worker's connection IDs).
    pub foreign_in: u64,
    /// Datagrams a fork parent forwarded to the child serving their connection.
    pub forwarded: u64,
    /// Connections accepted (queued for SSL_accept_connection).
    pub accepted: u64,
}

/// A datagram for a forked child: `len` bytes at `off` in `Engine::fwdbuf`.
#[derive(Clone, Copy, Debug)]
pub struct Fwd {
    pub chan: u64,
    pub from: SocketAddr,
    pub off: usize,
    pub len: usize,
}

pub struct Engine {
    endpoint: Endpoint,
    /// The endpoint's configuration (its reset key), kept for a prefork worker's endpoint.
    endpoint_cfg: EndpointConfig,
    server: Option<Arc<ServerConfig>>,
    /// Boxed: `drive` takes a connection out of the map while it works on it, and quinn's
    /// `Connection` is kilobytes (moving it in and out cost 6-9% of a busy server's CPU).
    conns: HashMap<ConnId, Box<ConnState>>,
    by_handle: HashMap<ConnectionHandle, ConnId>,
    next_id: ConnId,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    tickable: VecDeque<ConnId>,
    /// Server connections waiting for SSL_accept_connection.
    accept_queue: VecDeque<ConnId>,
    /// Whether new clients must prove their address with a Retry first.
    validate: bool,
    pub(super) out: Vec<Out>,
    pub(super) txbuf: Vec<u8>,
    scratch: Vec<u8>,
    /// Per-connection work done (drives plus timer expiries): the idle-cost counter.
    conn_ticks: u64,
    /// Bumped whenever the accept queue changes (see `Conn::epoch`).
    accept_epoch: Arc<AtomicU64>,
    /// Bumped with every epoch of this engine (connections' and the accept queue's); shared
    /// by the engines of one domain (`Domain::changes`): SSL_poll may reuse a whole answer
    /// while it has not moved.
    changes: Arc<AtomicU64>,
    /// What changed for the application since the owner last took this list: whose
    /// waiters to wake. Drives that change nothing an application waits for (acknowledgements,
    /// retransmissions) add nothing.
    touched: Vec<(ConnId, Note)>,
    /// A connection joined the accept queue since the owner last looked.
    accepted: bool,
    stats: Stats,
    /// Which connections this process serves when fork or prefork split a listener's.
    role: Role,
    /// Datagrams to forward to children (sent by the reactor).
    pub(super) fwd_out: Vec<Fwd>,
    pub(super) fwdbuf: Vec<u8>,
}

/// Which of a listener's connections this engine serves, once fork or prefork split them
/// between processes (`ssl::fork`).
#[derive(Debug, Default)]
pub enum Role {
    /// All of them: no fork happened.
    #[default]
    Whole,
    /// A fork parent: everything but the connections handed to children.
    Parent(Forwarded),
    /// A fork child: only the connections present; new connections and datagrams for
    /// unknown ones are dropped without an answer (the parent answers those). It may hand
    /// its own on in turn.
    Child(Forwarded),
    /// Prefork worker with this index, carried in the first byte of its connection IDs: new
    /// connections the kernel steers here, and its own, except those it handed to children.
    Worker(u8, Forwarded),
}

/// Connections handed to children: their quinn handles stay mapped to their forwarding
/// channel, so that datagrams that still reach this process are recognised and forwarded.
pub type Forwarded = HashMap<ConnectionHandle, u64>;

impl Role {
    fn forwarded(&mut self) -> Option<&mut Forwarded> {
        match self {
            Role::Parent(f) | Role::Worker(_, f) | Role::Child(f) => Some(f),
            Role::Whole => None,
        }
    }
}

impl Engine {
    pub fn new(server: Option<Arc<ServerConfig>>) -> Engine {
        let endpoint_cfg = EndpointConfig::default();
        let endpoint = new_endpoint(&endpoint_cfg, server.clone(), None);
        Engine {
            endpoint_cfg,
            endpoint,
            server,
            conns: HashMap::new(),
            by_handle: HashMap::new(),
            next_id: 1,
            timers: BinaryHeap::new(),
            tickable: VecDeque::new(),
            accept_queue: VecDeque::new(),
            validate: true,
            out: Vec::new(),
            txbuf: Vec::new(),
            scratch: Vec::new(),
            conn_ticks: 0,
            touched: Vec::new(),
            accepted: false,
            accept_epoch: Arc::new(AtomicU64::new(1)),
            stats: Stats::default(),
            changes: Arc::new(AtomicU64::new(1)),
            role: Role::Whole,
            fwd_out: Vec::new(),
            fwdbuf: Vec::new(),
        }
    }

    /// Prefork worker `index`: a fresh endpoint (its own random state) whose connection IDs
    /// carry the index. Only before the engine has connections.
    pub fn become_worker(&mut self, index: u8) -> bool {
        let forwarding = self.role.forwarded().is_some_and(|f| !f.is_empty());
        if !self.conns.is_empty() || forwarding || matches!(self.role, Role::Child(_)) {
            return false;
        }
        self.endpoint = new_endpoint(&self.endpoint_cfg, self.server.clone(), Some(index));
        self.role = Role::Worker(index, HashMap::new());
        self.stats = Stats::default();
        self.by_handle.clear();
        self.timers.clear();
        self.tickable.clear();
        self.accept_queue.clear();
        self.accept_epoch.fetch_add(1, Relaxed);
        self.changes.fetch_add(1, Relaxed);
        self.clear_out();
        true
    }

    /// The engine's role among the processes serving its listener.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// Whether this engine serves only the connections it was handed (a fork child).
    pub fn serves_only_own(&self) -> bool {
        matches!(self.role, Role::Child(_))
    }

    /// Fork parent: hands connection `id` to a child. It is forgotten here without a word
    /// to the peer; datagrams that still arrive for it are forwarded through `chan`.
    pub fn hand_over(&mut self, id: ConnId, chan: u64) -> bool {
        let Some(c) = self.conns.remove(&id) else {
            return false;
        };
        // The parent's object for it now answers as for a connection that is gone.
        c.epoch.fetch_add(1, Relaxed);
        self.changes.fetch_add(1, Relaxed);
        self.by_handle.remove(&c.handle);
        self.tickable.retain(|&t| t != id);
        self.accept_queue.retain(|&a| a != id);
        if let Role::Whole = self.role {
            self.role = Role::Parent(HashMap::new());
        }
        if !c.drained
            && let Some(forwarded) = self.role.forwarded()
        {
            forwarded.insert(c.handle, chan);
        }
        true
    }

    /// Fork parent: the child behind `chan` is gone; quinn may forget its connections.
    pub fn forget_forwarded(&mut self, chan: u64) {
        let Some(forwarded) = self.role.forwarded() else {
            return;
        };
        let gone: Vec<ConnectionHandle> = forwarded
            .iter()
            .filter(|e| *e.1 == chan)
            .map(|e| *e.0)
            .collect();
        for h in gone {
            forwarded.remove(&h);
            let _ = self.endpoint.handle_event(h, EndpointEvent::drained());
        }
    }

    /// Fork child: keeps connection `id` only; every other one is forgotten without a word
    /// to its peer (the parent or another child serves it), and nothing new is accepted.
    pub fn keep_only(&mut self, id: ConnId) {
        let others: Vec<ConnId> = self.conns.keys().copied().filter(|&k| k != id).collect();
        for k in others {
            if let Some(c) = self.conns.remove(&k)
                && !c.drained
            {
                self.by_handle.remove(&c.handle);
                let _ = self
                    .endpoint
                    .handle_event(c.handle, EndpointEvent::drained());
            }
        }
        if let Some(forwarded) = self.role.forwarded() {
            for (h, _) in std::mem::take(forwarded) {
                let _ = self.endpoint.handle_event(h, EndpointEvent::drained());
            }
        }
        self.tickable.retain(|&t| t == id);
        self.accept_queue.clear();
        self.accept_epoch.fetch_add(1, Relaxed);
        self.changes.fetch_add(1, Relaxed);
        self.clear_out();
        self.fwd_out.clear();
        self.fwdbuf.clear();
        self.role = Role::Child(HashMap::new());
        // The figures are this process's from here on.
        self.stats = Stats::default();
        self.mark(id);
    }

    /// The connection `id`, while the engine knows it.
    pub fn conn(&self, id: ConnId) -> Option<&ConnState> {
        self.conns.get(&id).map(|c| &**c)
    }

    pub fn conn_mut(&mut self, id: ConnId) -> Option<&mut ConnState> {
        self.conns.get_mut(&id).map(|c| &mut **c)
    }

    /// Connections the engine knows (live, or drained but still held by an object).
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    pub fn connections(&self) -> impl Iterator<Item = &ConnState> {
        self.conns.values().map(|c| &**c)
    }

    /// Server connections waiting for SSL_accept_connection.
    pub fn accept_queue_len(&self) -> usize {
        self.accept_queue.len()
    }

    /// Bumped whenever the accept queue changes (see `ConnState::epoch`).
    pub fn accept_epoch(&self) -> Arc<AtomicU64> {
        self.accept_epoch.clone()
    }

    /// Whether new clients must prove their address with a Retry first (the default).
    pub fn set_validate(&mut self, on: bool) {
        self.validate = on;
    }

    /// Per-connection work done so far (drives plus timer expiries): the idle-cost counter.
    pub fn conn_ticks(&self) -> u64 {
        self.conn_ticks
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Makes this engine bump `changes` (a domain's, shared by its engines) with every epoch.
    pub fn share_changes(&mut self, changes: Arc<AtomicU64>) {
        self.changes = changes;
    }

    /// What changed for the application since `clear_news`: the connections touched (with
    /// what) and whether a connection joined the accept queue.
    pub fn news(&self) -> (&[(ConnId, Note)], bool) {
        (&self.touched, self.accepted)
    }

    pub fn clear_news(&mut self) {
        self.touched.clear();
        self.accepted = false;
    }

    /// The datagrams made so far (each `Out` addresses its bytes in the buffer), until
    /// `clear_out`.
    pub fn transmits(&self) -> (&[Out], &[u8]) {
        (&self.out, &self.txbuf)
    }

    pub fn is_server(&self) -> bool {
        self.server.is_some()
    }

    /// Starts a client connection; it becomes tickable at once.
    pub fn connect(
        &mut self,
        now: Instant,
        cfg: ClientConfig,
        remote: SocketAddr,
        server_name: &str,
    ) -> Result<ConnId, quinn_proto::ConnectError> {
        let mut cfg = cfg;
        let closing = Closing::default();
        cfg.transport_config(Arc::new(transport::config(&closing)));
        let (ch, q) = self.endpoint.connect(now, cfg, remote, server_name)?;
        Ok(self.insert(ch, q, true, closing))
    }

    fn insert(
        &mut self,
        ch: ConnectionHandle,
        q: Connection,
        held: bool,
        closing: Closing,
    ) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        let c = ConnState {
            q,
            handle: ch,
            drained: false,
            held,
            queued: false,
            timer: None,
            connected: false,
            lost: None,
            incoming: VecDeque::new(),
            acked: Default::default(),
            unacked_fin: Default::default(),
            reject_incoming: None,
            write_blocked: Default::default(),
            open_blocked: [false; 2],
            epoch: Arc::new(AtomicU64::new(1)),
            closing,
            nudge: None,
            nudges: 0,
        };
        self.conns.insert(id, Box::new(c));
        self.by_handle.insert(ch, id);
        self.mark(id);
        id
    }

    /// SSL_accept_connection: the next queued server connection, now held by the
    /// application.
    pub fn accept_next(&mut self) -> Option<ConnId> {
        let id = self.accept_queue.pop_front()?;
        self.accept_epoch.fetch_add(1, Relaxed);
        self.changes.fetch_add(1, Relaxed);
        if let Some(c) = self.conns.get_mut(&id) {
            c.held = true;
        }
        Some(id)
    }

    /// The application let go of its object: forget a drained connection now, or let
    /// `drive` forget it when it drains.
    pub fn release(&mut self, id: ConnId) {
        match self.conns.get_mut(&id) {
            Some(c) if c.drained => {
                self.conns.remove(&id);
            }
            Some(c) => c.held = false,
            None => {}
        }
    }

    /// Puts a connection on the tickable queue (once).
    pub fn mark(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get(&id) {
            c.epoch.fetch_add(1, Relaxed);
            self.changes.fetch_add(1, Relaxed);
        }
        if let Some(c) = self.conns.get_mut(&id)
            && !c.queued
            && !c.drained
        {
            c.queued = true;
            self.tickable.push_back(id);
        }
    }

    /// Feeds one received datagram to the endpoint.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        data: &[u8],
    ) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        self.stats.datagrams_in += 1;
        match self
            .endpoint
            .handle(now, remote, local_ip, None, BytesMut::from(data), &mut buf)
        {
            Some(DatagramEvent::ConnectionEvent(ch, ev)) => {
                if let Some(&id) = self.by_handle.get(&ch)
                    && let Some(c) = self.conns.get_mut(&id)
                {
                    c.q.handle_event(ev);
                    self.mark(id);
                } else if let Some(&chan) = self.role.forwarded().and_then(|f| f.get(&ch)) {
                    let off = self.fwdbuf.len();
                    self.fwdbuf.extend_from_slice(data);
                    self.fwd_out.push(Fwd {
                        chan,
                        from: remote,
                        off,
                        len: data.len(),
                    });
                    self.stats.forwarded += 1;
                }
            }
            Some(DatagramEvent::NewConnection(inc)) if self.serves_only_own() => {
                self.endpoint.ignore(inc);
                self.stats.foreign_in += 1;
            }
            Some(DatagramEvent::Response(_)) if self.serves_only_own() => {
                self.stats.foreign_in += 1
            }
            Some(DatagramEvent::NewConnection(inc)) => {
                if self.validate && !inc.remote_address_validated() && inc.may_retry() {
                    match self.endpoint.retry(inc, &mut buf) {
                        Ok(t) => self.push_out(&t, &buf),
                        Err(e) => self.endpoint.ignore(e.into_incoming()),
                    }
                } else {
                    let closing = Closing::default();
                    let cfg = self.server.as_ref().map(|s| {
                        let mut s = (**s).clone();
                        s.transport_config(Arc::new(transport::config(&closing)));
                        Arc::new(s)
                    });
                    match self.endpoint.accept(inc, now, &mut buf, cfg) {
                        Ok((ch, q)) => {
                            let id = self.insert(ch, q, false, closing);
                            self.stats.accepted += 1;
                            self.accept_queue.push_back(id);
                            self.accept_epoch.fetch_add(1, Relaxed);
                            self.changes.fetch_add(1, Relaxed);
                            self.accepted = true;
                        }
                        Err(e) => {
                            if let Some(t) = e.response {
                                self.push_out(&t, &buf);
                            }
                        }
                    }
                }
            }
            Some(DatagramEvent::Response(t)) => self.push_out(&t, &buf),
            None => {
                if self.endpoint_ignored_foreign(data) {
                    self.stats.foreign_in += 1;
                }
            }
        }
        self.scratch = buf;
    }

    /// Whether a datagram the endpoint dropped was addressed to a connection this process
    /// does not serve: another prefork worker's ID, or (fork child) any short-header one.
    fn endpoint_ignored_foreign(&self, data: &[u8]) -> bool {
        let short = data.first().is_some_and(|b| b & 0x80 == 0);
        short
            && data.len() > CID_LEN
            && match self.role {
                Role::Child(_) => true,
                Role::Worker(w, _) => data[1] != w,
                Role::Whole | Role::Parent(_) => false,
            }
    }

    fn push_out(&mut self, t: &quinn_proto::Transmit, buf: &[u8]) {
        let off = self.txbuf.len();
        self.txbuf.extend_from_slice(&buf[..t.size]);
        self.out.push(Out {
            dst: t.destination,
            src_ip: t.src_ip,
            off,
            len: t.size,
            seg: t.segment_size.unwrap_or(t.size),
        });
    }

    /// Fires every due timer; the connections concerned become tickable.
    pub fn handle_timeouts(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            if c.timer != Some(at) {
                continue; // stale heap entry: the timer moved since
            }
            c.timer = None;
            if c.nudge.is_some_and(|t| t <= now) {
                c.nudge = None;
                c.nudges += 1;
                c.q.ping();
            }
            c.q.handle_timeout(now);
            self.conn_ticks += 1;
            self.mark(id);
        }
    }

    /// Drives the tickable connections: their events, endpoint events, transmits and timers.
    pub fn process(&mut self, now: Instant) {
        let n = self.tickable.len().min(MAX_DRIVE_PER_TICK);
        for _ in 0..n {
            let Some(ch) = self.tickable.pop_front() else {
                break;
            };
            self.drive(now, ch);
        }
    }

    pub fn has_work(&self) -> bool {
        !self.tickable.is_empty()
    }

    fn drive(&mut self, now: Instant, id: ConnId) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        let ch = c.handle;
        c.queued = false;
        c.epoch.fetch_add(1, Relaxed);
        self.changes.fetch_add(1, Relaxed);
        self.conn_ticks += 1;
        loop {
            let mut progressed = false;
            while let Some(ev) = c.q.poll_endpoint_events() {
                progressed = true;
                if let Some(cev) = self.endpoint.handle_event(ch, ev) {
                    c.q.handle_event(cev);
                }
            }
            while let Some(ev) = c.q.poll() {
                progressed = true;
                match ev {
                    Event::Connected => {
                        c.connected = true;
                        self.touched.push((id, Note::State));
                    }
                    Event::ConnectionLost { reason } => {
                        // quinn closed it itself (an error, a timeout): its close packet
                        // must not wait for congestion credit either.
                        c.closing.set();
                        c.lost = Some(reason);
                        self.touched.push((id, Note::State));
                    }
                    Event::Stream(StreamEvent::Opened { dir }) => {
                        self.touched.push((id, Note::Incoming));
                        transport::grow_streams(&mut c.q, dir);
                        while let Some(id) = c.q.streams().accept(dir) {
                            match c
                                .reject_incoming
                                .and_then(|code| VarInt::from_u64(code).ok())
                            {
                                Some(code) => {
                                    let _ = c.q.recv_stream(id).stop(code);
                                    if dir == Dir::Bi {
                                        let _ = c.q.send_stream(id).reset(code);
                                    }
                                }
                                None => c.incoming.push_back(id),
                            }
                        }
                    }
                    Event::Stream(StreamEvent::Finished { id: s }) => {
                        c.acked.insert(s);
                        c.unacked_fin.remove(&s);
                        self.touched.push((id, Note::Stream(s)));
                    }
                    Event::Stream(StreamEvent::Writable { id: s }) => {
                        c.write_blocked.remove(&s);
                        self.touched.push((id, Note::Stream(s)));
                    }
                    Event::Stream(
                        StreamEvent::Readable { id: s } | StreamEvent::Stopped { id: s, .. },
                    ) => self.touched.push((id, Note::Stream(s))),
                    Event::Stream(StreamEvent::Available { dir }) => {
                        c.open_blocked[dir as usize] = false;
                        self.touched.push((id, Note::State));
                    }
                    _ => {}
                }
            }
            let mut buf = std::mem::take(&mut self.scratch);
            for _ in 0..MAX_TX_PER_DRIVE {
                buf.clear();
                match c.q.poll_transmit(now, MAX_TX_PER_DRIVE, &mut buf) {
                    Some(t) => {
                        progressed = true;
                        self.push_out(&t, &buf);
                    }
                    None => break,
                }
            }
            self.scratch = buf;
            if !progressed {
                break;
            }
        }
        if self.server.is_some() {
            update_nudge(&mut c, now);
        }
        let t = match (c.q.poll_timeout(), c.nudge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if t != c.timer {
            c.timer = t;
            if let Some(at) = t {
                self.timers.push(Reverse((at, id)));
            }
        }
        if c.q.is_drained() {
            // quinn has forgotten it and may reuse its handle: unmap it. Keep the record only
            // while the application holds an object that may still ask how it ended.
            self.by_handle.remove(&ch);
            self.accept_queue.retain(|&a| a != id);
            self.accept_epoch.fetch_add(1, Relaxed);
            self.changes.fetch_add(1, Relaxed);
            c.drained = true;
            c.timer = None;
            self.touched.push((id, Note::State));
            if !c.held {
                return;
            }
        }
        self.conns.insert(id, c);
    }

    /// The earliest timer (stale heap entries are skipped lazily, so this may be early,
    /// never late).
    pub fn next_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            match self.conns.get(&id) {
                Some(c) if c.timer == Some(at) => return Some(at),
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// Opens a local stream on `ch` if stream credit allows.
    pub fn open_stream(&mut self, id: ConnId, dir: Dir) -> Option<StreamId> {
        let c = self.conns.get_mut(&id)?;
        if c.drained {
            return None;
        }
        let s = c.q.streams().open(dir);
        c.open_blocked[dir as usize] = s.is_none();
        self.mark(id);
        s
    }

    /// Frees the transmit scratch buffer (quinn reserves room for `MAX_TX_PER_DRIVE`
    /// datagrams in it); the next drive that sends allocates it again.
    pub fn release_scratch(&mut self) {
        self.scratch = Vec::new();
    }

    /// Clears the buffer of transmitted datagrams after the reactor sent them.
    pub fn clear_out(&mut self) {
        self.out.clear();
        self.txbuf.clear();
    }
}
