//! The sans-I/O QUIC engine: one quinn-proto `Endpoint`, the map of its connections (each
//! in its own `ConnCell`), the accept queue and the fork role. The engine lives under the
//! endpoint's lock (the domain's); every call takes `now`. Datagrams come in through
//! `handle_datagram`, which routes each into its connection under that connection's lock;
//! connections' output goes to the port's send queue (`conn::Link`), the endpoint's own
//! (Retry, resets) through `out`.
//!
//! Scheduling follows lsquic's engine: a connection is touched only when it has work — it is
//! on the work list (a datagram reached it, or it waits for the endpoint or the network) or
//! its timer in the min-heap is due. An idle connection costs nothing per tick;
//! `conn_ticks` counts the per-connection work so tests can show it.
//! Must not touch: BIOs, sockets, the SSL object model.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quinn_proto::{
    ClientConfig, ConnectionHandle, ConnectionId, ConnectionIdGenerator, DatagramEvent,
    EcnCodepoint, Endpoint, EndpointConfig, EndpointEvent, InvalidCid, ServerConfig, StreamId,
};
use rand::Rng;

use super::coalesce;
use super::conn::{Arrival, ConnCell, ConnGuard, ConnState, Link};
use super::lb::{LbCids, LbConfig};
use super::retry;
use super::transport::{self, Closing};

/// Most connections driven in one `process` call, so one busy tick cannot starve the caller.
const MAX_DRIVE_PER_TICK: usize = 4096;

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
    /// ECN codepoint quinn asks for on every one of them (`EcnCodepoint` bits), 0 for none.
    pub ecn: u8,
}

/// Length of the connection IDs this engine issues.
pub const CID_LEN: usize = 8;

/// Whether `c`, one of `conns`, may still be in its handshake (the engine's lists of such
/// connections drop the others).
fn in_handshake(conns: &HashMap<ConnId, Arc<ConnCell>>, c: &ConnCell) -> bool {
    !c.settled() && conns.contains_key(&c.id)
}

/// A datagram (or part of one) the endpoint routed to a known connection, for delivery under
/// that connection's lock.
pub type RoutedDatagram = (Arc<ConnCell>, quinn_proto::ConnectionEvent, Arrival);

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
        crate::sys::rng().fill_bytes(&mut b);
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
    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// An endpoint on `base` (its stateless-reset key is shared by every process of a fork or
/// prefork family, so any of them can be recognised by its peers) issuing IDs for `worker`,
/// or QUIC-LB IDs under `lb` (a fleet's load balancer routes by them; a prefork worker's
/// configuration already names the worker).
fn new_endpoint(
    base: &EndpointConfig,
    server: Option<Arc<ServerConfig>>,
    worker: Option<u8>,
    lb: Option<Arc<LbConfig>>,
) -> Endpoint {
    let mut cfg = base.clone();
    match lb {
        Some(lb) => cfg.cid_generator(move || Box::new(LbCids::new(lb.clone()))),
        None => cfg.cid_generator(move || Box::new(Cids { worker })),
    };
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
    /// New connections refused (CONNECTION_REFUSED) because the accept queue was full.
    pub refused: u64,
    /// Retries sent: address validation asked of a new client, because the listener
    /// validates every address or because too many unvalidated handshakes were in progress.
    pub retries: u64,
    /// Retries received whose integrity tag did not verify (`quic::retry`): dropped.
    pub bad_retries: u64,
}

/// Most connections a listener keeps waiting for SSL_accept_connection (mid-handshake or
/// established) unless the application sets another bound: beyond it, new connections are
/// refused at their first Initial. A peer's connections cost memory until accepted (about
/// 30 KiB each when idle, more mid-handshake), so an application that stops accepting must
/// not let them pile up without limit.
pub const DEFAULT_MAX_PENDING: usize = 1024;

/// How long a Retry answers a client's other Initial datagrams with the same destination ID:
/// those of one ClientHello arrive together (OpenSSL 3.5's clients and ours, with a
/// post-quantum key share, send two). A lost Retry is then answered again when the client
/// sends its Initials again, after its probe timeout (a second at first), which is longer.
const RETRY_DEDUP: Duration = Duration::from_millis(250);
/// At most this many recent Retries are remembered (a flood of new clients forgets sooner).
const RETRY_DEDUP_MAX: usize = 4096;

/// Most handshakes a listener that does not validate addresses (SSL_LISTENER_FLAG_NO_VALIDATE)
/// keeps in progress with clients whose address is unproven, unless the application sets
/// another bound: beyond it, a new client is asked for a Retry first, as a validating listener
/// asks every one. A spoofed Initial makes such a handshake, which then waits for the idle
/// timeout (30 s) for a peer that never answers: a flood of them would otherwise fill the
/// accept queue and lock real clients out. 128 is more than a busy server's handshakes
/// within one round trip; beyond it clients pay one round trip more.
pub const DEFAULT_MAX_UNVALIDATED: usize = 128;

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
    /// Each connection in its own cell (its own lock); application objects hold the cells.
    conns: HashMap<ConnId, Arc<ConnCell>>,
    by_handle: HashMap<ConnectionHandle, ConnId>,
    next_id: ConnId,
    /// Server connections waiting for SSL_accept_connection.
    accept_queue: VecDeque<ConnId>,
    /// Whether new clients must prove their address with a Retry first.
    validate: bool,
    /// Bound of the accept queue (`DEFAULT_MAX_PENDING` unless set).
    max_pending: usize,
    /// Server connections accepted without a proven address whose handshake may still be
    /// in progress (pruned when at the bound), and their bound (`DEFAULT_MAX_UNVALIDATED`).
    unvalidated: Vec<Arc<ConnCell>>,
    max_unvalidated: usize,
    /// QUIC-LB: the connection IDs issued follow this configuration (`set_lb`).
    lb: Option<Arc<LbConfig>>,
    /// The transport options of connections made from now on.
    transport: transport::Options,
    /// Client connections whose handshake may still be in progress, with the destination
    /// connection ID of their first Initial: a Retry must verify against one (`retry`).
    client_odcids: Vec<(Arc<ConnCell>, ConnectionId)>,
    /// Retries and refusals sent lately, by client address and the destination ID it chose:
    /// a ClientHello that spans two Initial datagrams (a post-quantum key share does) gets
    /// one answer, not one per datagram (see `RETRY_DEDUP`).
    recent_retries: VecDeque<(Instant, SocketAddr, ConnectionId)>,
    /// The same answers, for the lookup each unproven Initial makes (`retried_lately`).
    recent_keys: HashSet<(SocketAddr, ConnectionId)>,
    /// The endpoint's own datagrams (Retry, version negotiation, stateless resets, refusals).
    pub(super) out: Vec<Out>,
    pub(super) txbuf: Vec<u8>,
    scratch: Vec<u8>,
    /// Bumped whenever the accept queue changes (see `ConnCell::epoch`).
    accept_epoch: Arc<AtomicU64>,
    /// A connection joined the accept queue since the owner last looked.
    accepted: bool,
    stats: Stats,
    /// Which connections this process serves when fork or prefork split a listener's.
    role: Role,
    /// Fork child: its own connections that drained, whose IDs quinn keeps routing to them
    /// (to nothing): a late datagram of theirs is not counted as another's (`foreign_in`).
    kept_drained: Vec<ConnectionHandle>,
    /// Datagrams to forward to children (sent by the reactor).
    pub(super) fwd_out: Vec<Fwd>,
    pub(super) fwdbuf: Vec<u8>,
    /// What the connections share with the port (send queue, timers, work, news).
    link: Arc<Link>,
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
        let endpoint = new_endpoint(&endpoint_cfg, server.clone(), None, None);
        let link = Arc::new(Link::new(server.is_some(), Arc::new(AtomicU64::new(1))));
        link.declare_atomics();
        Engine {
            endpoint_cfg,
            endpoint,
            server,
            conns: HashMap::new(),
            by_handle: HashMap::new(),
            next_id: 1,
            accept_queue: VecDeque::new(),
            validate: true,
            max_pending: DEFAULT_MAX_PENDING,
            unvalidated: Vec::new(),
            max_unvalidated: DEFAULT_MAX_UNVALIDATED,
            client_odcids: Vec::new(),
            recent_retries: VecDeque::new(),
            recent_keys: HashSet::new(),
            lb: None,
            transport: transport::Options::default(),
            out: Vec::new(),
            txbuf: Vec::new(),
            scratch: Vec::new(),
            accepted: false,
            accept_epoch: Arc::new(AtomicU64::new(1)),
            stats: Stats::default(),
            role: Role::Whole,
            kept_drained: Vec::new(),
            fwd_out: Vec::new(),
            fwdbuf: Vec::new(),
            link,
        }
    }

    /// What the connections share with the port.
    pub fn link(&self) -> &Arc<Link> {
        &self.link
    }

    fn changed(&self) {
        self.link.changes.fetch_add(1, Relaxed);
    }

    /// QUIC-LB: every connection ID issued from now on (in handshakes and NEW_CONNECTION_ID)
    /// follows `lb` (None: random IDs again). Only before the engine has connections, and
    /// not in a prefork worker or fork child (`OSSLQUIC_prefork` derived theirs).
    pub fn set_lb(&mut self, lb: Option<Arc<LbConfig>>) -> bool {
        if !self.endpoint_replaceable() {
            return false;
        }
        self.lb = lb;
        self.remake_endpoint();
        true
    }

    /// Whether the endpoint may be made again (new ID generator or reset key): no connection
    /// depends on it yet, and fork or prefork have not split it.
    fn endpoint_replaceable(&self) -> bool {
        self.conns.is_empty() && matches!(self.role, Role::Whole)
    }

    /// The endpoint made again from `endpoint_cfg` and `lb`.
    fn remake_endpoint(&mut self) {
        self.endpoint = new_endpoint(
            &self.endpoint_cfg,
            self.server.clone(),
            None,
            self.lb.clone(),
        );
    }

    /// The key of the stateless resets this engine sends and recognises (a fleet's shared
    /// one: any server can reset a connection another served). Only before it has
    /// connections, and not once fork or prefork split it.
    pub fn set_reset_key(&mut self, key: &[u8; 32]) -> bool {
        if !self.endpoint_replaceable() {
            return false;
        }
        let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        self.endpoint_cfg = EndpointConfig::new(Arc::new(hmac));
        self.remake_endpoint();
        true
    }

    /// The transport options of the connections this engine accepts (a listener's context's
    /// congestion controller and datagram queue), and makes with `connect`.
    pub fn set_transport(&mut self, opts: transport::Options) {
        self.transport = opts;
    }

    pub fn lb(&self) -> Option<&Arc<LbConfig>> {
        self.lb.as_ref()
    }

    /// Prefork worker `index`: a fresh endpoint (its own random state) whose connection IDs
    /// carry the index (in their first octet, or with QUIC-LB in the server ID's last, see
    /// `LbConfig::for_worker`). Only before the engine has connections.
    pub fn become_worker(&mut self, index: u8) -> bool {
        let forwarding = self.role.forwarded().is_some_and(|f| !f.is_empty());
        if !self.conns.is_empty() || forwarding || matches!(self.role, Role::Child(_)) {
            return false;
        }
        let lb = match &self.lb {
            Some(lb) => match lb.for_worker(index) {
                Some(w) => Some(Arc::new(w)),
                None => return false,
            },
            None => None,
        };
        self.endpoint = new_endpoint(
            &self.endpoint_cfg,
            self.server.clone(),
            Some(index),
            lb.clone(),
        );
        self.lb = lb;
        self.role = Role::Worker(index, HashMap::new());
        self.stats = Stats::default();
        self.by_handle.clear();
        self.link.timers.lock().clear();
        self.link.work.lock().clear();
        self.accept_queue.clear();
        self.accept_epoch.fetch_add(1, Relaxed);
        self.changed();
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

    /// Takes connection `id` out of this process: its objects answer as for a connection
    /// that is gone, and nothing more is sent for it from here. Returns its cell.
    fn let_go(&mut self, id: ConnId) -> Option<(Arc<ConnCell>, bool)> {
        let cell = self.conns.remove(&id)?;
        let drained = {
            let mut c = cell.lock("conn: let go (fork)");
            c.gone = true;
            c.forgotten = true;
            c.drained
        };
        cell.set_dead();
        cell.bump();
        if self.by_handle.get(&cell.handle) == Some(&id) {
            self.by_handle.remove(&cell.handle);
        }
        self.accept_queue.retain(|&a| a != id);
        Some((cell, drained))
    }

    /// Fork parent: hands connection `id` to a child. It is forgotten here without a word
    /// to the peer; datagrams that still arrive for it are forwarded through `chan`.
    pub fn hand_over(&mut self, id: ConnId, chan: u64) -> bool {
        let Some((cell, drained)) = self.let_go(id) else {
            return false;
        };
        if let Role::Whole = self.role {
            self.role = Role::Parent(HashMap::new());
        }
        if !drained && let Some(forwarded) = self.role.forwarded() {
            forwarded.insert(cell.handle, chan);
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
            if let Some((cell, drained)) = self.let_go(k)
                && !drained
            {
                let _ = self
                    .endpoint
                    .handle_event(cell.handle, EndpointEvent::drained());
            }
        }
        if let Some(forwarded) = self.role.forwarded() {
            for (h, _) in std::mem::take(forwarded) {
                let _ = self.endpoint.handle_event(h, EndpointEvent::drained());
            }
        }
        for h in std::mem::take(&mut self.kept_drained) {
            let _ = self.endpoint.handle_event(h, EndpointEvent::drained());
        }
        self.link.work.lock().retain(|&t| t == id);
        self.accept_queue.clear();
        self.accept_epoch.fetch_add(1, Relaxed);
        self.changed();
        self.clear_out();
        self.fwd_out.clear();
        self.fwdbuf.clear();
        self.role = Role::Child(HashMap::new());
        // The figures are this process's from here on.
        self.stats = Stats::default();
        self.mark(id);
    }

    /// The cell of connection `id`, while the engine knows it.
    pub fn cell(&self, id: ConnId) -> Option<Arc<ConnCell>> {
        self.conns.get(&id).cloned()
    }

    /// Every connection's cell.
    pub fn cells(&self) -> Vec<Arc<ConnCell>> {
        self.conns.values().cloned().collect()
    }

    /// The connection `id`, locked, while the engine knows it.
    pub fn conn(&self, id: ConnId) -> Option<ConnGuard<'_>> {
        self.conns.get(&id).map(|c| c.lock("conn: engine look-up"))
    }

    /// Whether server connection `id` got its first connection IDs from this endpoint: its
    /// ClientHello is whole (quinn asks for the IDs once it has the client's transport
    /// parameters) and no endpoint event of it is waiting. False for an unknown connection.
    pub fn first_ids_issued(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|cell| {
            let c = cell.lock("engine: first ids");
            c.q.crypto_session().handshake_data().is_some()
                && c.endpoint_events.is_empty()
                && !cell.needs_endpoint()
        })
    }

    /// Opens a local stream on connection `id` if stream credit allows, and puts the
    /// connection on the work list (for engine-level users; objects use `ConnState`).
    pub fn open_stream(&mut self, id: ConnId, dir: quinn_proto::Dir) -> Option<StreamId> {
        let s = self.conn(id)?.open_stream(dir);
        self.mark(id);
        s
    }

    /// Connections the engine knows (live, or drained but still held by an object).
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Every connection, locked one at a time.
    pub fn connections(&self) -> impl Iterator<Item = ConnGuard<'_>> {
        self.conns.values().map(|c| c.lock("conn: engine look-up"))
    }

    /// Server connections waiting for SSL_accept_connection.
    pub fn accept_queue_len(&self) -> usize {
        self.accept_queue.len()
    }

    /// Bumped whenever the accept queue changes (see `ConnCell::epoch`).
    pub fn accept_epoch(&self) -> Arc<AtomicU64> {
        self.accept_epoch.clone()
    }

    /// Bounds the accept queue: beyond `max` connections waiting for SSL_accept_connection,
    /// new ones are refused (0: every new connection is refused, as a draining server
    /// wants).
    pub fn set_max_pending(&mut self, max: usize) {
        self.max_pending = max;
    }

    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// Bounds the handshakes in progress with unproven addresses: beyond `max`, new
    /// clients get a Retry first (0: every one does, as with validation on).
    pub fn set_max_unvalidated(&mut self, max: usize) {
        self.max_unvalidated = max;
    }

    pub fn max_unvalidated(&self) -> usize {
        self.max_unvalidated
    }

    /// Whether the handshakes in progress with unproven addresses are at their bound
    /// (those that ended are dropped from the count first).
    fn unvalidated_full(&mut self) -> bool {
        if self.unvalidated.len() >= self.max_unvalidated {
            let conns = &self.conns;
            self.unvalidated.retain(|c| in_handshake(conns, c));
        }
        self.unvalidated.len() >= self.max_unvalidated
    }

    /// Whether new clients must prove their address with a Retry first (the default).
    pub fn set_validate(&mut self, on: bool) {
        self.validate = on;
    }

    /// Per-connection work done so far (drives plus timer expiries): the idle-cost counter.
    pub fn conn_ticks(&self) -> u64 {
        self.link.conn_ticks.load(Relaxed)
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Makes this engine's connections bump `changes` (a domain's, shared by its engines)
    /// with every epoch. Only before it has connections.
    pub fn share_changes(&mut self, changes: Arc<AtomicU64>) {
        debug_assert!(self.conns.is_empty());
        let given = self.link.given_time();
        self.link = Arc::new(Link::new(self.server.is_some(), changes));
        self.link.declare_atomics();
        if given {
            self.link.use_given_time();
        }
    }

    /// What changed for the application since the last call: the connections touched (with
    /// what) and whether a connection joined the accept queue.
    pub fn take_news(&mut self) -> (Vec<(ConnId, Note)>, bool) {
        (self.link.take_news(), std::mem::take(&mut self.accepted))
    }

    /// Takes every datagram made so far and not sent: the endpoint's own, then what the
    /// connections queued (for engine-level users without a port).
    pub fn take_transmits(&mut self) -> Vec<(Vec<Out>, Vec<u8>)> {
        let mut all = Vec::new();
        if !self.out.is_empty() {
            all.push((
                std::mem::take(&mut self.out),
                std::mem::take(&mut self.txbuf),
            ));
        }
        all.extend(self.link.sendq.take_all());
        all
    }

    pub fn is_server(&self) -> bool {
        self.server.is_some()
    }

    /// Starts a client connection with the engine's transport options; it is on the work
    /// list at once.
    pub fn connect(
        &mut self,
        now: Instant,
        cfg: ClientConfig,
        remote: SocketAddr,
        server_name: &str,
    ) -> Result<ConnId, quinn_proto::ConnectError> {
        self.connect_with(now, cfg, remote, server_name, self.transport)
    }

    /// As `connect`, with the transport options of the connection's own context (a port
    /// carries connections of several contexts: the engine's options are its listener's).
    pub fn connect_with(
        &mut self,
        now: Instant,
        cfg: ClientConfig,
        remote: SocketAddr,
        server_name: &str,
        opts: transport::Options,
    ) -> Result<ConnId, quinn_proto::ConnectError> {
        let mut cfg = cfg;
        let closing = Closing::default();
        // The first Initial's destination ID, chosen here (as quinn would: random, 16 bytes)
        // so that a Retry's integrity tag can be checked before quinn sees it.
        let mut b = [0u8; 16];
        crate::sys::rng().fill_bytes(&mut b);
        let odcid = ConnectionId::new(&b);
        let qlog = transport::qlog(&odcid, false);
        cfg.transport_config(Arc::new(transport::config(&closing, opts, qlog)));
        cfg.initial_dst_cid_provider(Arc::new(move || odcid));
        let (ch, q) = self.endpoint.connect(now, cfg, remote, server_name)?;
        let id = self.insert(ch, ConnState::new(q, true, closing, opts.datagram_queue));
        let conns = &self.conns;
        self.client_odcids.retain(|(c, _)| in_handshake(conns, c));
        if let Some(c) = self.conns.get(&id) {
            self.client_odcids.push((c.clone(), odcid));
        }
        Ok(id)
    }

    fn insert(&mut self, ch: ConnectionHandle, state: ConnState) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        let cell = ConnCell::new(id, ch, state, self.link.clone());
        let cell = Arc::new(cell);
        cell.declare_atomics();
        self.conns.insert(id, cell);
        self.by_handle.insert(ch, id);
        self.mark(id);
        id
    }

    /// SSL_accept_connection: the next queued server connection, now held by the
    /// application.
    pub fn accept_next(&mut self) -> Option<Arc<ConnCell>> {
        let id = self.accept_queue.pop_front()?;
        self.accept_epoch.fetch_add(1, Relaxed);
        self.changed();
        let cell = self.conns.get(&id)?.clone();
        cell.lock("conn: accepted").held = true;
        Some(cell)
    }

    /// The application let go of its object: forget a drained connection now, or let
    /// the endpoint forget it when it drains.
    pub fn release(&mut self, id: ConnId) {
        let Some(cell) = self.conns.get(&id) else {
            return;
        };
        let mut c = cell.lock("conn: release");
        c.held = false;
        let forget = c.drained && c.forgotten;
        drop(c);
        if forget {
            self.conns.remove(&id);
        }
    }

    /// Puts a connection on the work list (once).
    pub fn mark(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get(&id) {
            c.mark();
        }
    }

    /// Feeds one received datagram to the endpoint, and to its connection.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        data: &[u8],
    ) {
        self.handle_datagram_ecn(now, remote, local_ip, None, data);
    }

    /// `handle_datagram` for a datagram that arrived with ECN bits `ecn` in its IP header.
    pub fn handle_datagram_ecn(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<EcnCodepoint>,
        data: &[u8],
    ) {
        for (cell, ev, arrival) in self
            .route_datagram(now, remote, local_ip, ecn, data)
            .into_iter()
            .flatten()
        {
            self.deliver(now, &cell, ev, arrival);
        }
    }

    /// Feeds a routed datagram to its connection and drives it, in one hold of its lock: an
    /// application call never sees quinn's state ahead of what a drive made of it (a closed
    /// connection whose loss is not recorded yet).
    pub fn deliver(
        &mut self,
        now: Instant,
        cell: &Arc<ConnCell>,
        ev: quinn_proto::ConnectionEvent,
        arrival: Arrival,
    ) {
        self.drive_with(now, cell, "conn: datagram", |_, c| {
            c.count_arrival(arrival);
            c.handle_event(ev);
            true
        });
    }

    /// Feeds one received datagram to the endpoint. What is for a known connection comes
    /// back with it, for the caller to deliver under that connection's lock, in order (and
    /// then to drive it); the rest (new connections, stateless answers, forwarding) is done
    /// here. A 1-RTT packet coalesced behind long-header packets is handed to quinn in a
    /// buffer of its own (`coalesce`: quinn would keep the whole datagram alive for as long
    /// as it buffers any of that packet's stream data), so there can be two events.
    pub fn route_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<EcnCodepoint>,
        data: &[u8],
    ) -> [Option<RoutedDatagram>; 2] {
        self.stats.datagrams_in += 1;
        if retry::is_v1_retry(data)
            && !self
                .client_odcids
                .iter()
                .any(|(_, odcid)| retry::intact(data, odcid))
        {
            self.stats.bad_retries += 1;
            return [None, None];
        }
        match coalesce::short_header_tail(data) {
            Some(at) => {
                let first = self.route_packets(now, remote, local_ip, ecn, &data[..at]);
                let mut second = self.route_packets(now, remote, local_ip, ecn, &data[at..]);
                if first.is_some()
                    && let Some((_, _, a)) = second.as_mut()
                {
                    a.ecn = None; // a datagram split in two is counted once
                }
                [first, second]
            }
            None => [self.route_packets(now, remote, local_ip, ecn, data), None],
        }
    }

    /// `route_datagram` for one buffer: quinn's endpoint sees it as one datagram.
    fn route_packets(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<EcnCodepoint>,
        data: &[u8],
    ) -> Option<RoutedDatagram> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let mut routed = None;
        match self
            .endpoint
            .handle(now, remote, local_ip, ecn, BytesMut::from(data), &mut buf)
        {
            Some(DatagramEvent::ConnectionEvent(ch, ev)) => {
                if let Some(&id) = self.by_handle.get(&ch)
                    && let Some(cell) = self.conns.get(&id)
                {
                    let arrival = Arrival {
                        ecn,
                        len: data.len(),
                        handshake: coalesce::has_handshake_packet(data),
                    };
                    routed = Some((cell.clone(), ev, arrival));
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
                // (A client back with a Retry token names the same original ID: not a repeat.)
                let key = (inc.remote_address(), *inc.orig_dst_cid());
                if !inc.remote_address_validated() && self.retried_lately(now, key) {
                    // The rest of a ClientHello already answered with a Retry or a refusal.
                    self.endpoint.ignore(inc);
                } else if self.accept_queue.len() >= self.max_pending {
                    // Full: CONNECTION_REFUSED at once, before a Retry round trip or any
                    // state is spent on the connection.
                    let t = self.endpoint.refuse(inc, &mut buf);
                    self.push_out(&t, &buf);
                    self.stats.refused += 1;
                    self.answered(now, key);
                } else if !inc.remote_address_validated()
                    && inc.may_retry()
                    && (self.validate || self.unvalidated_full())
                {
                    match self.endpoint.retry(inc, &mut buf) {
                        Ok(t) => {
                            self.push_out(&t, &buf);
                            self.stats.retries += 1;
                            self.answered(now, key);
                        }
                        Err(e) => self.endpoint.ignore(e.into_incoming()),
                    }
                } else {
                    let proven = inc.remote_address_validated();
                    let closing = Closing::default();
                    let qlog = transport::qlog(inc.orig_dst_cid(), true);
                    let opts = self.transport;
                    let cfg = self.server.as_ref().map(|s| {
                        let mut s = (**s).clone();
                        s.transport_config(Arc::new(transport::config(&closing, opts, qlog)));
                        Arc::new(s)
                    });
                    match self.endpoint.accept(inc, now, &mut buf, cfg) {
                        Ok((ch, q)) => {
                            let mut state = ConnState::new(q, false, closing, opts.datagram_queue);
                            if !proven {
                                state.unproven(data.len());
                            }
                            let id = self.insert(ch, state);
                            if !proven && let Some(c) = self.conns.get(&id) {
                                self.unvalidated.push(c.clone());
                            }
                            self.stats.accepted += 1;
                            self.accept_queue.push_back(id);
                            self.accept_epoch.fetch_add(1, Relaxed);
                            self.changed();
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
        routed
    }

    /// Notes a Retry or refusal sent to `key` (see `retried_lately`).
    fn answered(&mut self, now: Instant, key: (SocketAddr, ConnectionId)) {
        if self.recent_keys.insert(key) {
            self.recent_retries.push_back((now, key.0, key.1));
        }
    }

    /// Whether a Retry or refusal went to this client address and first destination ID within
    /// `RETRY_DEDUP` (older entries are forgotten here).
    fn retried_lately(&mut self, now: Instant, key: (SocketAddr, ConnectionId)) -> bool {
        while let Some(&(t, a, c)) = self.recent_retries.front() {
            if now.saturating_duration_since(t) < RETRY_DEDUP
                && self.recent_retries.len() < RETRY_DEDUP_MAX
            {
                break;
            }
            self.recent_retries.pop_front();
            self.recent_keys.remove(&(a, c));
        }
        self.recent_keys.contains(&key)
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
            ecn: t.ecn.map_or(0, |e| e as u8),
        });
    }

    /// Fires every due timer and drives the connections concerned.
    pub fn handle_timeouts(&mut self, now: Instant) {
        loop {
            let due = {
                let mut t = self.link.timers.lock();
                match t.peek().copied() {
                    Some(Reverse((at, id))) if at <= now => {
                        t.pop();
                        Some((at, id))
                    }
                    _ => None,
                }
            };
            let Some((at, id)) = due else { break };
            let Some(cell) = self.conns.get(&id).cloned() else {
                continue;
            };
            if !cell.timer_is(at) {
                continue; // stale heap entry: the timer moved since
            }
            // Fired and driven in one hold of the connection's lock (see `deliver`).
            self.drive_with(now, &cell, "conn: timer", |cell, c| {
                cell.fire_timer(c, at, now)
            });
        }
    }

    /// Drives the connections on the work list: their events, endpoint events, transmits
    /// and timers.
    pub fn process(&mut self, now: Instant) {
        let n = self.link.work.lock().len().min(MAX_DRIVE_PER_TICK);
        for _ in 0..n {
            let Some(id) = self.link.work.lock().pop_front() else {
                break;
            };
            if let Some(cell) = self.conns.get(&id).cloned() {
                self.drive_cell(now, &cell);
            }
        }
    }

    pub fn has_work(&self) -> bool {
        self.link.has_work()
    }

    /// Drives one connection, with the endpoint at hand for what the drive asks of it.
    pub fn drive_cell(&mut self, now: Instant, cell: &Arc<ConnCell>) {
        self.drive_with(now, cell, "conn: drive (events)", |_, _| true);
    }

    /// Locks a connection this process serves, lets `first` act on it (false: nothing to
    /// drive), then drives it until what it asks of the endpoint is answered, all in one
    /// hold of its lock; forgets it if it drained with no object holding it.
    fn drive_with(
        &mut self,
        now: Instant,
        cell: &Arc<ConnCell>,
        purpose: &'static str,
        first: impl FnOnce(&ConnCell, &mut ConnState) -> bool,
    ) {
        let mut c = cell.lock(purpose);
        if c.gone {
            return;
        }
        if c.broken {
            // A panic ended it (`ConnCell::poison`): all that concerns it now is the end of
            // its linger, when the endpoint forgets it (its drive below does nothing).
            if !cell.forget_broken(&mut c, now) {
                return;
            }
        } else if cell.contain(&mut c, now, |c| first(cell, c)) == Some(false) {
            // Nothing to drive; None is a panic: the connection lingers (`ConnCell::poison`).
            return;
        }
        cell.unqueue();
        loop {
            cell.drive(&mut c, now);
            if !self.serve_locked(cell, &mut c) {
                break;
            }
        }
        let forget = c.drained && !c.held;
        drop(c);
        if forget {
            self.conns.remove(&cell.id);
        }
    }

    /// What a connection's drive left for the endpoint, after an application call drove it
    /// under its own lock (`ConnCell::needs_endpoint`).
    pub fn serve(&mut self, now: Instant, cell: &Arc<ConnCell>) {
        if !cell.needs_endpoint() || !self.conns.contains_key(&cell.id) {
            return;
        }
        self.drive_cell(now, cell);
    }

    /// Applies the connection's endpoint events (quinn's answers go back into it) and
    /// forgets it once drained. True when the connection must be driven again.
    fn serve_locked(&mut self, cell: &ConnCell, c: &mut ConnState) -> bool {
        cell.needs_endpoint
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let mut again = false;
        for ev in std::mem::take(&mut c.endpoint_events) {
            // A fork child does not let quinn forget its own drained connection: a datagram
            // the peer still sends for it (a retransmission, its CONNECTION_CLOSE) is then
            // routed to that handle and dropped, where an unknown ID would count as another
            // connection's. The child serves its few connections only; the entry is small.
            if ev.is_drained() && self.serves_only_own() {
                self.kept_drained.push(cell.handle);
                continue;
            }
            if let Some(cev) = self.endpoint.handle_event(cell.handle, ev) {
                again |= cell
                    .contain(c, Instant::now(), |c| c.handle_event(cev))
                    .is_some();
            }
        }
        if c.drained && !c.forgotten {
            // quinn has forgotten it and may reuse its handle: unmap it. The record stays
            // while the application holds an object that may still ask how it ended.
            c.forgotten = true;
            if self.by_handle.get(&cell.handle) == Some(&cell.id) {
                self.by_handle.remove(&cell.handle);
            }
            let id = cell.id;
            self.accept_queue.retain(|&a| a != id);
            self.accept_epoch.fetch_add(1, Relaxed);
            self.changed();
        }
        again
    }

    /// The earliest timer (stale heap entries are skipped lazily, so this may be early,
    /// never late).
    pub fn next_timeout(&mut self) -> Option<Instant> {
        let mut t = self.link.timers.lock();
        while let Some(Reverse((at, id))) = t.peek().copied() {
            match self.conns.get(&id) {
                Some(c) if c.timer_is(at) => return Some(at),
                _ => {
                    t.pop();
                }
            }
        }
        None
    }

    /// Frees the endpoint's response buffer; the next response allocates it again.
    pub fn release_scratch(&mut self) {
        self.scratch = Vec::new();
    }

    /// Clears the buffer of the endpoint's datagrams after the reactor sent them.
    pub fn clear_out(&mut self) {
        self.out.clear();
        self.txbuf.clear();
    }
}
