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
use std::time::Instant;

use bytes::BytesMut;
use quinn_proto::{
    ClientConfig, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint,
    EndpointConfig, Event, ServerConfig, StreamEvent, StreamId, VarInt,
};

/// Most connections driven in one `process` call, so one busy tick cannot starve the caller.
const MAX_DRIVE_PER_TICK: usize = 4096;
/// Most datagrams one connection may emit per drive (GSO batch size for quinn).
const MAX_TX_PER_DRIVE: usize = 64;

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

/// Per-connection state beside quinn's `Connection`.
pub struct Conn {
    pub q: Connection,
    queued: bool,
    timer: Option<Instant>,
    pub connected: bool,
    pub lost: Option<ConnectionError>,
    /// Streams the peer opened that the application has not taken yet.
    pub incoming: VecDeque<StreamId>,
    /// Set once the application has accepted it (server side).
    pub accepted: bool,
    /// Streams whose data (and FIN) the peer has fully acknowledged.
    pub acked: std::collections::HashSet<StreamId>,
    /// Incoming stream policy REJECT: new peer streams are stopped and reset with this code.
    pub reject_incoming: Option<u64>,
}

pub struct Engine {
    pub endpoint: Endpoint,
    server: Option<Arc<ServerConfig>>,
    pub conns: HashMap<ConnectionHandle, Conn>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    tickable: VecDeque<ConnectionHandle>,
    /// Server connections waiting for SSL_accept_connection.
    pub accept_queue: VecDeque<ConnectionHandle>,
    /// Whether new clients must prove their address with a Retry first.
    pub validate: bool,
    pub out: Vec<Out>,
    pub txbuf: Vec<u8>,
    scratch: Vec<u8>,
    /// Per-connection work done (drives plus timer expiries): the idle-cost counter.
    pub conn_ticks: u64,
}

impl Engine {
    pub fn new(server: Option<Arc<ServerConfig>>) -> Engine {
        let endpoint = Endpoint::new(
            Arc::new(EndpointConfig::default()),
            server.clone(),
            true,
            None,
        );
        Engine {
            endpoint,
            server,
            conns: HashMap::new(),
            timers: BinaryHeap::new(),
            tickable: VecDeque::new(),
            accept_queue: VecDeque::new(),
            validate: true,
            out: Vec::new(),
            txbuf: Vec::new(),
            scratch: Vec::new(),
            conn_ticks: 0,
        }
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
    ) -> Result<ConnectionHandle, quinn_proto::ConnectError> {
        let (ch, q) = self.endpoint.connect(now, cfg, remote, server_name)?;
        self.insert(ch, q, true);
        Ok(ch)
    }

    fn insert(&mut self, ch: ConnectionHandle, q: Connection, accepted: bool) {
        let c = Conn {
            q,
            queued: false,
            timer: None,
            connected: false,
            lost: None,
            incoming: VecDeque::new(),
            accepted,
            acked: Default::default(),
            reject_incoming: None,
        };
        self.conns.insert(ch, c);
        self.mark(ch);
    }

    /// Puts a connection on the tickable queue (once).
    pub fn mark(&mut self, ch: ConnectionHandle) {
        if let Some(c) = self.conns.get_mut(&ch)
            && !c.queued
        {
            c.queued = true;
            self.tickable.push_back(ch);
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
        match self
            .endpoint
            .handle(now, remote, local_ip, None, BytesMut::from(data), &mut buf)
        {
            Some(DatagramEvent::ConnectionEvent(ch, ev)) => {
                if let Some(c) = self.conns.get_mut(&ch) {
                    c.q.handle_event(ev);
                    self.mark(ch);
                }
            }
            Some(DatagramEvent::NewConnection(inc)) => {
                if self.validate && !inc.remote_address_validated() && inc.may_retry() {
                    match self.endpoint.retry(inc, &mut buf) {
                        Ok(t) => self.push_out(&t, &buf),
                        Err(e) => self.endpoint.ignore(e.into_incoming()),
                    }
                } else {
                    match self
                        .endpoint
                        .accept(inc, now, &mut buf, self.server.clone())
                    {
                        Ok((ch, q)) => {
                            self.insert(ch, q, false);
                            self.accept_queue.push_back(ch);
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
            None => {}
        }
        self.scratch = buf;
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
            let ch = ConnectionHandle(id);
            let Some(c) = self.conns.get_mut(&ch) else {
                continue;
            };
            if c.timer != Some(at) {
                continue; // stale heap entry: the timer moved since
            }
            c.timer = None;
            c.q.handle_timeout(now);
            self.conn_ticks += 1;
            self.mark(ch);
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

    fn drive(&mut self, now: Instant, ch: ConnectionHandle) {
        let Some(mut c) = self.conns.remove(&ch) else {
            return;
        };
        c.queued = false;
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
                    Event::Connected => c.connected = true,
                    Event::ConnectionLost { reason } => c.lost = Some(reason),
                    Event::Stream(StreamEvent::Opened { dir }) => {
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
                    Event::Stream(StreamEvent::Finished { id }) => {
                        c.acked.insert(id);
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
        let t = c.q.poll_timeout();
        if t != c.timer {
            c.timer = t;
            if let Some(at) = t {
                self.timers.push(Reverse((at, ch.0)));
            }
        }
        if c.q.is_drained() {
            self.accept_queue.retain(|&h| h != ch);
            return; // quinn has forgotten it too; dropping it here frees its state
        }
        self.conns.insert(ch, c);
    }

    /// The earliest timer (stale heap entries are skipped lazily, so this may be early,
    /// never late).
    pub fn next_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            match self.conns.get(&ConnectionHandle(id)) {
                Some(c) if c.timer == Some(at) => return Some(at),
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// Opens a local stream on `ch` if stream credit allows.
    pub fn open_stream(&mut self, ch: ConnectionHandle, dir: Dir) -> Option<StreamId> {
        let id = self.conns.get_mut(&ch)?.q.streams().open(dir);
        self.mark(ch);
        id
    }

    /// Clears the buffer of transmitted datagrams after the reactor sent them.
    pub fn clear_out(&mut self) {
        self.out.clear();
        self.txbuf.clear();
    }
}
