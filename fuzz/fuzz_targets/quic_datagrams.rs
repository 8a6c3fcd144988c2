//! Datagrams into a QUIC server (a listener's engine) and a client, through the sans-I/O
//! engine with a manual clock. The two engines run a genuine handshake; the input is the
//! network between them: it passes, drops, replays, edits and coalesces their real datagrams,
//! injects raw bytes or Initial packets it encrypts with the real Initial keys (so arbitrary
//! frames reach the frame parser, in the Initial space where most do not belong), from the
//! peer's address or others, while the clock advances and the applications connect, accept,
//! write, read and close. So every state is reached: no connection, mid-handshake,
//! established, closing.
#![no_main]

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use osslquic::consts::SSL_VERIFY_PEER;
use osslquic::quic::engine::{ConnId, Engine};
use osslquic::ssl::ctx::{Method, SslCtx, VerifyResult};
use osslquic_fuzz::{Reader, certs};
use quinn_proto::crypto::Keys;
use quinn_proto::{ConnectionId, Dir, ServerConfig, VarInt};

const ALPN: &[u8] = b"\x04fuzz";
/// Operations per input, datagrams queued per direction, datagrams remembered per direction.
const MAX_OPS: usize = 400;
const MAX_QUEUE: usize = 64;
const MAX_SEEN: usize = 64;

fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4433)
}

fn client_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 50000)
}

/// A datagram's source: the genuine peer, or one of a few others (same host other port,
/// another host, IPv6, port 0).
fn source(genuine: SocketAddr, pick: u8) -> SocketAddr {
    match pick % 6 {
        0 | 1 => genuine,
        2 => SocketAddr::new(genuine.ip(), genuine.port().wrapping_add(1)),
        3 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), 443),
        4 => SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7)), 4433),
        _ => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 0),
    }
}

struct Ctxs {
    server: Arc<ServerConfig>,
    client: SslCtx,
}

fn ctxs() -> &'static Ctxs {
    static CTXS: OnceLock<Ctxs> = OnceLock::new();
    CTXS.get_or_init(|| {
        let c = certs();
        let server = SslCtx::new(Method::QuicServer);
        server.use_certificate_chain_file(&c.chain).unwrap();
        server.use_private_key_file(&c.key).unwrap();
        server.set_alpn(ALPN).unwrap();
        let client = SslCtx::new(Method::QuicClient);
        client.load_verify_file(&c.ca).unwrap();
        client.set_verify(SSL_VERIFY_PEER);
        client.set_alpn(ALPN).unwrap();
        Ctxs {
            server: server.server_config().unwrap(),
            client,
        }
    })
}

/// One side's view of the network: genuine datagrams in flight to it, and every genuine
/// datagram it was sent (the first MAX_SEEN / 2, then a ring), for replays and edits.
#[derive(Default)]
struct Wire {
    queue: VecDeque<Vec<u8>>,
    seen: Vec<Vec<u8>>,
    seen_count: usize,
}

impl Wire {
    fn push(&mut self, d: &[u8]) {
        if self.queue.len() == MAX_QUEUE {
            self.queue.pop_front();
        }
        self.queue.push_back(d.to_vec());
        if self.seen.len() < MAX_SEEN {
            self.seen.push(d.to_vec());
        } else {
            let half = MAX_SEEN / 2;
            self.seen[half + self.seen_count % half] = d.to_vec();
        }
        self.seen_count += 1;
    }

    fn pick(&self, i: u8) -> Option<&[u8]> {
        (!self.seen.is_empty()).then(|| self.seen[usize::from(i) % self.seen.len()].as_slice())
    }
}

struct World {
    now: Instant,
    server: Engine,
    client: Engine,
    to_server: Wire,
    to_client: Wire,
    /// The client's first Initial's destination and source connection IDs.
    client_dcid: Vec<u8>,
    client_scid: Vec<u8>,
    clients: Vec<ConnId>,
    accepted: Vec<ConnId>,
    /// The bidirectional stream each side writes on, once opened.
    stream: [Option<(ConnId, quinn_proto::StreamId)>; 2],
}

impl World {
    fn new(validate: bool) -> World {
        let mut server = Engine::new(Some(ctxs().server.clone()));
        server.set_validate(validate);
        World {
            now: Instant::now(),
            server,
            client: Engine::new(None),
            to_server: Wire::default(),
            to_client: Wire::default(),
            client_dcid: Vec::new(),
            client_scid: Vec::new(),
            clients: Vec::new(),
            accepted: Vec::new(),
            stream: [None, None],
        }
    }

    fn connect(&mut self) {
        if self.clients.len() >= 4 {
            return;
        }
        let cfg = ctxs()
            .client
            .client_config(None, Arc::new(VerifyResult::default()))
            .unwrap();
        if let Ok(ch) = self
            .client
            .connect(self.now, cfg, server_addr(), "localhost")
        {
            self.clients.push(ch);
        }
    }

    /// Timers due, connections driven, and what both engines sent put on the wire.
    fn step(&mut self) {
        for e in [&mut self.client, &mut self.server] {
            e.handle_timeouts(self.now);
            e.process(self.now);
        }
        for (out, buf) in self.client.take_transmits() {
            for o in out {
                for seg in buf[o.off..o.off + o.len].chunks(o.seg.max(1)) {
                    if self.client_dcid.is_empty()
                        && let Some((d, s)) = long_header_cids(seg)
                    {
                        self.client_dcid = d.to_vec();
                        self.client_scid = s.to_vec();
                    }
                    if o.dst == server_addr() {
                        self.to_server.push(seg);
                    }
                }
            }
        }
        for (out, buf) in self.server.take_transmits() {
            for o in out {
                for seg in buf[o.off..o.off + o.len].chunks(o.seg.max(1)) {
                    // Answers to other sources go nowhere.
                    if o.dst == client_addr() {
                        self.to_client.push(seg);
                    }
                }
            }
        }
    }

    fn deliver(&mut self, to_server: bool, from: SocketAddr, d: &[u8]) {
        let (e, local) = if to_server {
            (&mut self.server, server_addr())
        } else {
            (&mut self.client, client_addr())
        };
        e.handle_datagram(self.now, from, Some(local.ip()), d);
    }

    fn wire(&mut self, to_server: bool) -> &mut Wire {
        if to_server {
            &mut self.to_server
        } else {
            &mut self.to_client
        }
    }

    fn genuine(to_server: bool) -> SocketAddr {
        if to_server {
            client_addr()
        } else {
            server_addr()
        }
    }

    fn conn_of(&self, server: bool) -> Option<ConnId> {
        if server {
            self.accepted.first().copied()
        } else {
            self.clients.first().copied()
        }
    }

    fn op(&mut self, r: &mut Reader) {
        match r.u8() % 13 {
            // Pass the next 1..=8 genuine datagrams.
            0 => {
                let to_server = r.bool();
                let n = r.u8() % 8 + 1;
                for _ in 0..n {
                    let Some(d) = self.wire(to_server).queue.pop_front() else {
                        break;
                    };
                    self.deliver(to_server, Self::genuine(to_server), &d);
                }
            }
            // Lose 1..=8 genuine datagrams.
            1 => {
                let to_server = r.bool();
                let n = r.u8() % 8 + 1;
                for _ in 0..n {
                    self.wire(to_server).queue.pop_front();
                }
            }
            // A datagram seen before, edited, from some source.
            2 => {
                let to_server = r.bool();
                let i = r.u8();
                let from = source(Self::genuine(to_server), r.u8());
                let Some(mut d) = self.wire(to_server).pick(i).map(<[u8]>::to_vec) else {
                    return;
                };
                for _ in 0..r.u8() % 4 + 1 {
                    edit(&mut d, r);
                }
                self.deliver(to_server, from, &d);
            }
            // Raw bytes.
            3 => {
                let to_server = r.bool();
                let from = source(Self::genuine(to_server), r.u8());
                let d = r.long_bytes().to_vec();
                self.deliver(to_server, from, &d);
            }
            // An Initial packet with arbitrary frames, protected with real Initial keys.
            4 => {
                let to_server = r.bool();
                let from = source(Self::genuine(to_server), r.u8());
                if let Some(d) = self.forge_initial(to_server, r) {
                    self.deliver(to_server, from, &d);
                }
            }
            // Two datagrams seen before, coalesced into one.
            5 => {
                let to_server = r.bool();
                let (a, b) = (r.u8(), r.u8());
                let w = self.wire(to_server);
                let (Some(a), Some(b)) = (w.pick(a), w.pick(b)) else {
                    return;
                };
                let d = [a, b].concat();
                self.deliver(to_server, Self::genuine(to_server), &d);
            }
            // The clock advances by up to 65 s.
            6 => self.now += Duration::from_millis(u64::from(r.u16())),
            // The clock jumps to the next timer.
            7 => {
                let next = [self.client.next_timeout(), self.server.next_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(t) = next {
                    self.now = self.now.max(t);
                }
            }
            8 => self.connect(),
            9 => {
                while let Some(cell) = self.server.accept_next() {
                    self.accepted.push(cell.id);
                }
            }
            // Write on a stream of the first connection (opened on first use).
            10 => {
                let server = r.bool();
                let data = r.long_bytes();
                let fin = r.bool();
                self.write(server, data, fin);
            }
            // Read what the peer sent on the streams it opened.
            11 => {
                let server = r.bool();
                let max = usize::from(r.u16());
                let conn = self.conn_of(server);
                let e = if server {
                    &mut self.server
                } else {
                    &mut self.client
                };
                if let Some(id) = conn {
                    if let Some(mut c) = e.conn(id) {
                        let streams: Vec<_> = c.incoming.iter().copied().collect();
                        for s in streams {
                            c.recv(s, max, |_| {});
                        }
                    }
                    e.mark(id);
                }
            }
            // Close the first connection.
            _ => {
                let server = r.bool();
                let code = VarInt::from_u32(u32::from(r.u16()));
                let now = self.now;
                let conn = self.conn_of(server);
                let e = if server {
                    &mut self.server
                } else {
                    &mut self.client
                };
                if let Some(id) = conn {
                    if let Some(mut c) = e.conn(id) {
                        c.close(now, code, bytes::Bytes::from_static(b"fuzz"));
                    }
                    e.mark(id);
                }
            }
        }
    }

    /// What each connection reached (OSSLQUIC_FUZZ_TRACE=1, for writing seeds).
    fn trace(&self) {
        for (side, e, ids) in [
            ("client", &self.client, &self.clients),
            ("server", &self.server, &self.accepted),
        ] {
            for &id in ids {
                if let Some(c) = e.conn(id) {
                    eprintln!(
                        "{side} {id}: connected {} handshaking {} closed {} lost {:?}",
                        c.connected,
                        c.is_handshaking(),
                        c.is_closed(),
                        c.lost
                    );
                }
            }
        }
        eprintln!(
            "server connections {}, queued {}",
            self.server.conn_count(),
            self.server.accept_queue_len()
        );
    }

    fn write(&mut self, server: bool, data: &[u8], fin: bool) {
        let Some(id) = self.conn_of(server) else {
            return;
        };
        let e = if server {
            &mut self.server
        } else {
            &mut self.client
        };
        let slot = &mut self.stream[usize::from(server)];
        let sid = match *slot {
            Some((c, s)) if c == id => s,
            _ => {
                let Some(s) = e.open_stream(id, Dir::Bi) else {
                    return;
                };
                *slot = Some((id, s));
                s
            }
        };
        if let Some(mut c) = e.conn(id) {
            let _ = c.send(sid, data);
            if fin {
                c.finish(sid);
            }
        }
        e.mark(id);
    }

    /// An Initial packet: header fields and frames from the input, protected with the keys
    /// derived from the client's real first destination CID (or one from the input).
    fn forge_initial(&self, to_server: bool, r: &mut Reader) -> Option<Vec<u8>> {
        let version = match r.u8() % 4 {
            0 | 1 => 1,
            2 => 0xff00_001d,
            _ => r.u32(),
        };
        let key_cid = match r.u8() % 2 {
            0 => self.client_dcid.clone(),
            _ => r.bytes().to_vec(),
        };
        let dcid = match r.u8() % 3 {
            0 if to_server => key_cid.clone(),
            0 => self.client_scid.clone(),
            1 => self.client_dcid.clone(),
            _ => r.bytes().to_vec(),
        };
        let scid = r.bytes().to_vec();
        let token = r.bytes().to_vec();
        let pn = r.u32();
        let pad = r.bool();
        let frames = r.long_bytes();
        // quinn refuses CIDs over 20 bytes before deriving keys; so do we (the header may
        // still carry a longer one).
        let cid = ConnectionId::new(&key_cid[..key_cid.len().min(20)]);
        let keys = ctxs()
            .server
            .crypto
            .initial_keys(version, &cid)
            .or_else(|_| ctxs().server.crypto.initial_keys(1, &cid))
            .ok()?;
        Some(initial_packet(
            &keys, to_server, version, &dcid, &scid, &token, pn, frames, pad,
        ))
    }
}

/// Builds a protected Initial packet. `to_server`: as the client sends it (the server's
/// remote keys), else as the server sends it.
#[allow(clippy::too_many_arguments)]
fn initial_packet(
    keys: &Keys,
    to_server: bool,
    version: u32,
    dcid: &[u8],
    scid: &[u8],
    token: &[u8],
    pn: u32,
    frames: &[u8],
    pad: bool,
) -> Vec<u8> {
    let (packet_key, header_key) = if to_server {
        (&keys.packet.remote, &keys.header.remote)
    } else {
        (&keys.packet.local, &keys.header.local)
    };
    let pn_len = 4;
    let mut payload = frames.to_vec();
    // Header protection samples 16 bytes from 4 past the packet number's start.
    let min = 20usize.saturating_sub(pn_len);
    if payload.len() < min {
        payload.resize(min, 0);
    }
    let mut p = vec![0xc0 | (pn_len as u8 - 1)];
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    if to_server {
        put_varint(&mut p, token.len() as u64);
        p.extend_from_slice(token);
    }
    let tag = packet_key.tag_len();
    if pad {
        // A client's Initial datagram must be at least 1200 bytes.
        let fixed = p.len() + 2 + pn_len + tag;
        if fixed + payload.len() < 1200 {
            payload.resize(1200 - fixed, 0);
        }
    }
    let len = (pn_len + payload.len() + tag).min(0x3fff);
    p.push(0x40 | (len >> 8) as u8);
    p.push(len as u8);
    let pn_offset = p.len();
    p.extend_from_slice(&pn.to_be_bytes());
    let header_len = p.len();
    p.extend_from_slice(&payload);
    p.resize(p.len() + tag, 0);
    packet_key.encrypt(u64::from(pn), &mut p, header_len);
    header_key.encrypt(pn_offset, &mut p);
    p
}

fn put_varint(p: &mut Vec<u8>, v: u64) {
    match v {
        0..=0x3f => p.push(v as u8),
        0x40..=0x3fff => p.extend_from_slice(&(0x4000 | v as u16).to_be_bytes()),
        0x4000..=0x3fff_ffff => p.extend_from_slice(&(0x8000_0000 | v as u32).to_be_bytes()),
        _ => p.extend_from_slice(&(0xc000_0000_0000_0000 | v).to_be_bytes()),
    }
}

/// A long header's destination and source connection IDs.
fn long_header_cids(d: &[u8]) -> Option<(&[u8], &[u8])> {
    if d.first()? & 0x80 == 0 {
        return None;
    }
    let dl = usize::from(*d.get(5)?);
    let dcid = d.get(6..6 + dl)?;
    let sl = usize::from(*d.get(6 + dl)?);
    let scid = d.get(7 + dl..7 + dl + sl)?;
    Some((dcid, scid))
}

/// One edit of a datagram: flip a bit, set a byte, truncate, append, insert, or write a
/// large varint somewhere.
fn edit(d: &mut Vec<u8>, r: &mut Reader) {
    let kind = r.u8() % 6;
    let pos = usize::from(r.u16());
    let at = if d.is_empty() { 0 } else { pos % d.len() };
    match kind {
        0 => {
            let bit = r.u8() % 8;
            if let Some(b) = d.get_mut(at) {
                *b ^= 1 << bit;
            }
        }
        1 => {
            let v = r.u8();
            if let Some(b) = d.get_mut(at) {
                *b = v;
            }
        }
        2 => d.truncate(pos % (d.len() + 1)),
        3 => d.extend_from_slice(r.bytes()),
        4 => {
            let ins = r.bytes();
            d.splice(at..at, ins.iter().copied());
        }
        _ => {
            let mut v = Vec::new();
            put_varint(&mut v, r.u64() >> 2 | 0x3fff_ffff_ffff_0000);
            let end = (at + v.len()).min(d.len());
            d.splice(at..end, v);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mut w = World::new(r.bool());
    // The client connects first unless the input says otherwise (so the server's
    // no-connection state is reachable too).
    if r.bool() {
        w.connect();
    }
    w.step();
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        w.op(&mut r);
        w.step();
    }
    if std::env::var_os("OSSLQUIC_FUZZ_TRACE").is_some() {
        w.trace();
    }
});
