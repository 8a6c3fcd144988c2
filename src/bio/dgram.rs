//! `BIO_s_datagram`: a UDP socket. Batches go through sendmmsg/recvmmsg with GSO for runs of
//! same-size datagrams to one peer and GRO on receive where the kernel offers them; local
//! addresses come from IP_PKTINFO/IPV6_RECVPKTINFO when enabled; ECN bits are read and
//! written (IP_TOS/IPV6_TCLASS) once ECN is on. Every OS call is a safe function of `sys`
//! (`sys::udp`, `sys::sock`); this file holds the BIO's state and rules.
#![deny(unsafe_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::Relaxed};

use crate::sync::{Mutex, MutexGuard};

use super::addr::BioAddr;
use super::msg::BIO_POLL_DESCRIPTOR;
use super::{RxDst, Stats, TxOutcome, on_stack};
use crate::error::*;
use crate::sys::{self, BATCH, GRO_MAX, RxSlot, SendResult, TxDesc, TxOpts};

pub struct DgramSock {
    fd: AtomicI32,
    close: AtomicBool,
    peer: Mutex<Option<BioAddr>>,
    connected: AtomicBool,
    bound: Mutex<BioAddr>,
    mtu: AtomicUsize,
    mtu_exceeded: AtomicBool,
    local_enabled: AtomicBool,
    gso: AtomicBool,
    gro: AtomicBool,
    /// ECN: received datagrams' codepoints are read (IP_RECVTOS / IPV6_RECVTCLASS set), and
    /// sent ones' written (`TxDesc::ecn` as a control message); the second goes off alone if
    /// the kernel refuses the control message. `ecn_refused`: the application turned ECN
    /// off (OSSLQUIC_BIO_dgram_set_ecn), so a QUIC port does not turn it on.
    ecn_rx: AtomicBool,
    ecn_tx: AtomicBool,
    ecn_refused: AtomicBool,
    rx: Mutex<RxState>,
}

/// A datagram received coalesced (GRO) that the caller had no room for yet: `len` bytes at
/// `off` in the arena, its addresses and ECN codepoint.
struct Stashed {
    off: usize,
    len: usize,
    src: BioAddr,
    dst: Option<BioAddr>,
    ecn: u8,
}

/// How a receive begins (`DgramSock::rx_start`).
enum RxStart<'a> {
    Served(usize),
    Fresh(i32, u16, MutexGuard<'a, RxState>),
}

/// Datagrams received coalesced (GRO) that the caller had no room for yet, in order.
#[derive(Default)]
struct RxState {
    arena: Vec<u8>,
    items: VecDeque<Stashed>,
    /// Overflow areas (one per slot) that let a coalesced datagram arrive whole: 4 MiB of
    /// address space, whose pages exist only once GRO has written to them (a BIO made per
    /// connection must not pay for zeroing them).
    tails: Option<sys::ZeroPages>,
}

/// Keeps a datagram (received across `a` and `b`) for a later receive.
fn stash(
    arena: &mut Vec<u8>,
    items: &mut VecDeque<Stashed>,
    a: &[u8],
    b: &[u8],
    src: BioAddr,
    dst: Option<BioAddr>,
    ecn: u8,
) {
    let off = arena.len();
    arena.extend_from_slice(a);
    arena.extend_from_slice(b);
    items.push_back(Stashed {
        off,
        len: a.len() + b.len(),
        src,
        dst,
        ecn,
    });
}

fn err_io(e: std::io::Error) -> Error {
    Error::sys(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Bytes `[off, off+len)` of a datagram received across `buf[..cap]` and `tail`.
fn split_at_tail<'a>(
    buf: &'a [u8],
    tail: &'a [u8],
    off: usize,
    len: usize,
) -> (&'a [u8], &'a [u8]) {
    let end = off + len;
    let a = if off < buf.len() {
        &buf[off..end.min(buf.len())]
    } else {
        &[][..]
    };
    let t0 = off.saturating_sub(buf.len());
    let t1 = end.saturating_sub(buf.len());
    (a, &tail[t0.min(tail.len())..t1.min(tail.len())])
}

impl DgramSock {
    pub fn new() -> Self {
        DgramSock {
            fd: AtomicI32::new(-1),
            close: AtomicBool::new(false),
            peer: Mutex::new(None),
            connected: AtomicBool::new(false),
            bound: Mutex::new(BioAddr::default()),
            mtu: AtomicUsize::new(0),
            mtu_exceeded: AtomicBool::new(false),
            local_enabled: AtomicBool::new(false),
            gso: AtomicBool::new(false),
            gro: AtomicBool::new(false),
            ecn_rx: AtomicBool::new(false),
            ecn_tx: AtomicBool::new(false),
            ecn_refused: AtomicBool::new(false),
            rx: Mutex::new(RxState::default()),
        }
    }

    pub fn fd(&self) -> i32 {
        self.fd.load(Relaxed)
    }
    fn need_fd(&self) -> Result<i32> {
        let fd = self.fd();
        if fd < 0 {
            Err(Error::bio(BIO_R_UNINITIALIZED).with("no socket: call BIO_set_fd first"))
        } else {
            Ok(fd)
        }
    }

    /// BIO_set_fd: adopts `fd`, records its local address and, if it is connected, its peer.
    pub fn set_fd(&self, fd: i32, close: bool) -> Result<()> {
        if fd < 0 {
            return Err(Error::invalid(format!("bad file descriptor {fd}")));
        }
        self.release_fd();
        self.fd.store(fd, Relaxed);
        self.close.store(close, Relaxed);
        *self.bound.lock() = sys::local_addr(fd).unwrap_or_default();
        match sys::peer_addr(fd) {
            Ok(p) => {
                *self.peer.lock() = Some(p);
                self.connected.store(true, Relaxed);
            }
            Err(_) => {
                *self.peer.lock() = None;
                self.connected.store(false, Relaxed);
            }
        }
        let udp = sys::is_dgram(fd);
        self.gso.store(udp && sys::gso_supported(fd), Relaxed);
        // GRO stays off unless asked for (OSSLQUIC_BIO_dgram_set_offload): coalesced data the
        // caller had no room for waits inside the BIO, where poll() on the fd cannot see it;
        // only a reader that drains to would-block (our QUIC reactor) should turn it on.
        self.gro.store(false, Relaxed);
        // ECN likewise: the QUIC port asks for it (`want_ecn`), or the application.
        self.ecn_rx.store(false, Relaxed);
        self.ecn_tx.store(false, Relaxed);
        Ok(())
    }

    pub(crate) fn release_fd(&self) {
        let fd = self.fd.swap(-1, Relaxed);
        if fd < 0 {
            return;
        }
        if self.close.load(Relaxed) {
            let _ = sys::close(fd);
        } else {
            // The application keeps the socket: leave it as we found it.
            if self.gro.swap(false, Relaxed) {
                sys::enable_gro(fd, false);
            }
            self.ecn_tx.store(false, Relaxed);
            if self.ecn_rx.swap(false, Relaxed) {
                let _ = sys::set_recv_ecn(fd, self.is_ipv6(), false);
            }
        }
    }

    pub fn get_close(&self) -> bool {
        self.close.load(Relaxed)
    }
    pub fn set_close(&self, c: bool) {
        self.close.store(c, Relaxed);
    }

    pub fn disable_gro(&self) {
        let fd = self.fd();
        if fd >= 0 && self.gro.swap(false, Relaxed) {
            sys::enable_gro(fd, false);
        }
    }
    /// Turns the offloads on or off (benchmarks and tests of the fallback paths).
    pub fn set_offload(&self, gso: bool, gro: bool) {
        let fd = self.fd();
        self.gso
            .store(gso && fd >= 0 && sys::gso_supported(fd), Relaxed);
        if gro {
            self.gro
                .store(fd >= 0 && sys::enable_gro(fd, true), Relaxed);
        } else {
            self.disable_gro();
        }
    }
    /// Size of the next datagram already received into the BIO (GRO stash), else 0.
    pub fn pending(&self) -> usize {
        self.rx.lock().items.front().map_or(0, |i| i.len)
    }

    /// OSSLQUIC_BIO_dgram_set_ecn: turns ECN on (codepoints of received datagrams read,
    /// those of sent ones written) or off, and remembers an "off" so that a QUIC port does
    /// not turn it back on. Returns whether ECN is on now: an IPv4 or IPv6 UDP socket whose
    /// kernel takes IP_RECVTOS / IPV6_RECVTCLASS can; anything else stays off (quinn then
    /// finds the path not ECN-capable: its first ACKs carry no ECN counts).
    pub fn set_ecn(&self, on: bool) -> bool {
        self.ecn_refused.store(!on, Relaxed);
        self.apply_ecn(on)
    }

    /// A QUIC port attaching the BIO: ECN on, unless the application turned it off.
    pub fn want_ecn(&self) {
        if !self.ecn_refused.load(Relaxed) {
            self.apply_ecn(true);
        }
    }

    /// Whether ECN is on: (written on send, read on receive).
    pub fn ecn(&self) -> (bool, bool) {
        (self.ecn_tx.load(Relaxed), self.ecn_rx.load(Relaxed))
    }

    fn apply_ecn(&self, on: bool) -> bool {
        let fd = self.fd();
        let ip = fd >= 0 && self.local_addr_cap() && sys::is_dgram(fd);
        if !ip {
            self.ecn_rx.store(false, Relaxed);
            self.ecn_tx.store(false, Relaxed);
            return false;
        }
        let was = self.ecn_rx.load(Relaxed);
        let rx = if on || was {
            sys::set_recv_ecn(fd, self.is_ipv6(), on).is_ok() && on
        } else {
            false
        };
        self.ecn_rx.store(rx, Relaxed);
        self.ecn_tx.store(rx, Relaxed);
        rx
    }

    pub fn offload(&self) -> (bool, bool) {
        (self.gso.load(Relaxed), self.gro.load(Relaxed))
    }

    pub fn mtu(&self) -> usize {
        self.mtu.load(Relaxed)
    }
    pub fn set_mtu(&self, m: usize) {
        self.mtu.store(m, Relaxed);
    }
    pub fn mtu_exceeded(&self) -> bool {
        self.mtu_exceeded.swap(false, Relaxed)
    }
    pub fn local_enabled(&self) -> bool {
        self.local_enabled.load(Relaxed)
    }
    fn is_ipv6(&self) -> bool {
        self.bound.lock().is_ipv6()
    }

    /// Whether local addresses can be had (Linux: IP_PKTINFO / IPV6_RECVPKTINFO).
    pub fn local_addr_cap(&self) -> bool {
        let b = self.bound.lock();
        b.is_ipv4() || b.is_ipv6()
    }

    pub fn set_local_addr_enable(&self, on: bool) -> Result<()> {
        let fd = self.need_fd()?;
        if on && !self.local_addr_cap() {
            return Err(
                Error::bio(BIO_R_LOCAL_ADDR_NOT_AVAILABLE).with("socket family has no packet info")
            );
        }
        if self.local_addr_cap() {
            sys::set_recv_pktinfo(fd, self.is_ipv6(), on).map_err(err_io)?;
        }
        self.local_enabled.store(on, Relaxed);
        Ok(())
    }

    pub fn peer(&self) -> Option<BioAddr> {
        *self.peer.lock()
    }
    /// BIO_dgram_set_peer / BIO_ctrl_dgram_connect: where BIO_write sends (no connect(2)).
    pub fn set_peer(&self, p: Option<BioAddr>) {
        *self.peer.lock() = p;
    }
    /// BIO_ctrl_set_connected: a peer means "the socket is connected"; NULL means not.
    pub fn set_connected(&self, p: Option<BioAddr>) {
        self.connected.store(p.is_some(), Relaxed);
        *self.peer.lock() = p;
    }
    pub fn detect_peer(&self) -> Option<BioAddr> {
        self.peer().or_else(|| sys::peer_addr(self.fd()).ok())
    }

    pub fn query_mtu(&self) -> usize {
        let fd = self.fd();
        if fd < 0 || !self.connected.load(Relaxed) {
            return 0;
        }
        if !self.local_addr_cap() {
            return 0;
        }
        let overhead = self.mtu_overhead();
        match sys::path_mtu(fd, self.is_ipv6()) {
            Ok(m) if m > overhead => {
                let mtu = m - overhead;
                self.mtu.store(mtu, Relaxed);
                mtu
            }
            _ => 0,
        }
    }
    pub fn mtu_overhead(&self) -> usize {
        if self.is_ipv6() { 48 } else { 28 }
    }
    pub fn fallback_mtu(&self) -> usize {
        if self.is_ipv6() { 1280 - 48 } else { 576 - 28 }
    }
    pub fn set_dont_frag(&self, on: bool) -> Result<()> {
        let fd = self.need_fd()?;
        sys::set_dont_fragment(fd, self.is_ipv6(), on).map_err(err_io)
    }
    pub fn set_timeout(&self, send: bool, tv: sys::Timeval) -> Result<()> {
        sys::set_timeout(self.need_fd()?, send, tv).map_err(err_io)
    }
    pub fn get_timeout(&self, send: bool) -> Result<sys::Timeval> {
        sys::timeout(self.need_fd()?, send).map_err(err_io)
    }

    pub fn set_nbio(&self, on: bool) -> Result<()> {
        sys::set_nonblocking(self.need_fd()?, on).map_err(err_io)
    }

    pub fn poll_descriptor(&self) -> Result<BIO_POLL_DESCRIPTOR> {
        Ok(BIO_POLL_DESCRIPTOR::fd(self.need_fd()?))
    }

    // ---- legacy I/O

    pub fn read(&self, buf: &mut [u8], stats: &Stats) -> Result<usize> {
        let fd = self.need_fd()?;
        let mut src = BioAddr::default();
        let n = if self.gro.load(Relaxed) || !self.rx.lock().items.is_empty() {
            let mut d = [RxDst::new(&mut buf[..], Some(&mut src), None)];
            self.rx(&mut d, stats)?;
            d[0].len
        } else {
            let n = sys::recv_from(fd, buf, &mut src).map_err(err_io)?;
            stats.recv_calls.fetch_add(1, Relaxed);
            stats.recv_dgrams.fetch_add(1, Relaxed);
            n.min(buf.len())
        };
        if !self.connected.load(Relaxed) && !src.is_unspec() {
            // As OpenSSL's does: on an unconnected socket a read retargets later writes.
            *self.peer.lock() = Some(src);
        }
        Ok(n)
    }

    pub fn write(&self, buf: &[u8], stats: &Stats) -> Result<usize> {
        let fd = self.need_fd()?;
        let dst = if self.connected.load(Relaxed) {
            None
        } else {
            self.peer()
        };
        stats.send_calls.fetch_add(1, Relaxed);
        match sys::send_to(fd, buf, dst.as_ref()) {
            Ok(n) => {
                stats.sent_dgrams.fetch_add(1, Relaxed);
                Ok(n)
            }
            Err(e) => {
                if e.raw_os_error() == Some(libc::EMSGSIZE) {
                    self.mtu_exceeded.store(true, Relaxed);
                }
                Err(err_io(e))
            }
        }
    }

    // ---- batches

    pub fn tx(&self, descs: &[TxDesc<'_>], stats: &Stats) -> TxOutcome {
        let fd = match self.need_fd() {
            Ok(fd) => fd,
            Err(e) => {
                return TxOutcome {
                    sent: 0,
                    err: Some(e),
                };
            }
        };
        // Validate source addresses up front: the batch stops before the first bad item.
        let mut ok = descs.len();
        let mut err = None;
        let bound_port = self.bound.lock().raw_port();
        for (i, d) in descs.iter().enumerate() {
            if let Some(src) = d.src {
                if !self.local_enabled() {
                    err = Some(Error::bio(BIO_R_LOCAL_ADDR_NOT_AVAILABLE)
                        .with("enable local addresses (BIO_dgram_set_local_addr_enable) before setting BIO_MSG.local"));
                } else if src.raw_port() != 0 && src.raw_port() != bound_port {
                    err = Some(
                        Error::bio(BIO_R_PORT_MISMATCH)
                            .with("BIO_MSG.local port differs from the bound port"),
                    );
                }
                if err.is_some() {
                    ok = i;
                    break;
                }
            }
        }
        let ecn = self.ecn_tx.load(Relaxed);
        // A connected socket's datagrams have no destination: the peer's family decides
        // between IP_TOS and IPV6_TCLASS.
        let peer_v4 = ecn
            && match self.peer().and_then(|p| p.to_socket_addr()) {
                Some(std::net::SocketAddr::V4(_)) => true,
                Some(std::net::SocketAddr::V6(a)) => a.ip().to_ipv4_mapped().is_some(),
                None => !self.is_ipv6(),
            };
        let mut sent = 0;
        while sent < ok {
            let opts = TxOpts {
                gso: self.gso.load(Relaxed),
                ecn: ecn && self.ecn_tx.load(Relaxed),
                peer_v4,
            };
            let mut counts = (0u64, 0u64, 0u64);
            let r = sys::send_batch(fd, &descs[sent..ok], opts, &mut counts);
            stats.send_calls.fetch_add(counts.0, Relaxed);
            stats.gso_sends.fetch_add(counts.1, Relaxed);
            if counts.2 > 0 {
                stats.ecn_sent.fetch_add(counts.2, Relaxed);
            }
            match r {
                SendResult::Sent(n) => {
                    sent += n;
                    if sent < ok {
                        // The kernel took part of the batch: report the rest as retryable.
                        err = Some(Error::sys(libc::EAGAIN));
                        break;
                    }
                }
                SendResult::GsoRefused => {
                    self.gso.store(false, Relaxed);
                }
                SendResult::EcnRefused => {
                    // As quinn-udp: send without ECN bits from now on (quinn then finds its
                    // marks never acknowledged and stops making them).
                    self.ecn_tx.store(false, Relaxed);
                }
                SendResult::Failed(e) => {
                    if e == libc::EMSGSIZE {
                        self.mtu_exceeded.store(true, Relaxed);
                    }
                    err = Some(Error::sys(e));
                    break;
                }
            }
        }
        stats.sent_dgrams.fetch_add(sent as u64, Relaxed);
        TxOutcome {
            sent,
            err: if sent < descs.len() { err } else { None },
        }
    }

    /// The start of both receives: datagrams stashed by an earlier `rx` are served first
    /// (one per destination); otherwise the descriptor, the bound port (network order) and
    /// the receive state, locked for the recvmmsg.
    fn rx_start(&self, dsts: &mut [RxDst<'_>], stats: &Stats) -> Result<RxStart<'_>> {
        let fd = self.need_fd()?;
        let bound_port = self.bound.lock().raw_port();
        let mut rx = self.rx.lock();
        let served = self.serve_stash(&mut rx, dsts, 0, stats);
        if served > 0 {
            stats.recv_dgrams.fetch_add(served as u64, Relaxed);
            return Ok(RxStart::Served(served));
        }
        Ok(RxStart::Fresh(fd, bound_port, rx))
    }

    /// Receives into `dsts`: stashed datagrams first, then one recvmmsg. Coalesced (GRO)
    /// datagrams are split into consecutive destinations; what does not fit is stashed.
    pub fn rx(&self, dsts: &mut [RxDst<'_>], stats: &Stats) -> Result<usize> {
        let (fd, bound_port, mut rx) = match self.rx_start(dsts, stats)? {
            RxStart::Served(n) => return Ok(n),
            RxStart::Fresh(fd, port, rx) => (fd, port, rx),
        };
        let gro = self.gro.load(Relaxed);
        if gro && rx.tails.is_none() {
            rx.tails = Some(sys::ZeroPages::new(BATCH * GRO_MAX).map_err(err_io)?);
        }
        let want_cmsg = gro || self.local_enabled() || self.ecn_rx.load(Relaxed);
        let local_of = |dst: Option<BioAddr>| {
            dst.map(|mut a| {
                a.set_port(u16::from_be(bound_port));
                a
            })
        };
        let RxState {
            arena,
            items,
            tails,
        } = &mut *rx;
        // Overflow areas, one GRO_MAX region per slot, only with GRO.
        let tails: &mut [u8] = match tails {
            Some(t) if gro => t.as_mut_slice(),
            _ => &mut [],
        };
        let mut tails = tails.chunks_exact_mut(GRO_MAX);
        // Scratch sources only where the caller asked for none but GRO may need one to stamp
        // the segments it splits off; otherwise the kernel writes no name at all.
        let mut srcs: [std::mem::MaybeUninit<BioAddr>; BATCH] =
            [const { std::mem::MaybeUninit::uninit() }; BATCH];
        let slots = dsts.iter_mut().zip(srcs.iter_mut()).map(|(d, scratch)| {
            let cap = d.buf.len();
            let tail = match tails.next() {
                Some(t) if cap < GRO_MAX => &mut t[..GRO_MAX - cap],
                _ => &mut [][..],
            };
            let src = match d.src.as_deref_mut() {
                Some(s) => Some(s),
                None if gro => Some(scratch.write(BioAddr::default())),
                None => None,
            };
            RxSlot::new(&mut d.buf[..], tail, src)
        });
        // What each destination gets: bytes, local IP and ECN codepoint (compact: this array
        // is initialised on every call); and the first coalesced slot.
        let mut delivered = [(0usize, None::<std::net::IpAddr>, 0u8); BATCH];
        let (got, coalesced) = on_stack::<_, _, BATCH>(slots, |slots| {
            stats.recv_calls.fetch_add(1, Relaxed);
            let got = sys::recv_batch(fd, slots, true, want_cmsg).map_err(err_io)?;
            for i in 0..got {
                let s = &slots[i];
                delivered[i] = (s.len.min(s.buf.len()), s.dst.and_then(|a| a.ip()), s.ecn);
                if s.seg > 0 && s.len > s.seg {
                    // Coalesced: the first segment stays here; the rest, and everything
                    // received after it in this call, wait in the stash in arrival order.
                    delivered[i].0 = s.seg.min(s.buf.len());
                    let segs = s.len.div_ceil(s.seg);
                    stats.gro_dgrams.fetch_add(segs as u64, Relaxed);
                    for (j, sj) in slots.iter().enumerate().take(got).skip(i) {
                        let total = sj.len.min(sj.buf.len() + sj.tail.len());
                        let seg = if sj.seg > 0 { sj.seg } else { total.max(1) };
                        let srcj = sj.src.as_deref().copied().unwrap_or_default();
                        let lj = local_of(sj.dst);
                        let mut off = if j == i { seg } else { 0 };
                        while off < total || (off == 0 && total == 0) {
                            let len = seg.min(total - off);
                            let (a, b) = split_at_tail(sj.buf, sj.tail, off, len);
                            stash(arena, items, a, b, srcj, lj, sj.ecn);
                            if len == 0 {
                                break;
                            }
                            off += len;
                        }
                    }
                    return Ok((got, Some(i)));
                }
            }
            Ok((got, None))
        })?;
        let mut out = got;
        let mut ecn_seen = [0u64; 4];
        for (i, (d, (len, ip, ecn))) in dsts.iter_mut().zip(delivered).enumerate().take(got) {
            let local =
                ip.map(|ip| BioAddr::from_socket_addr(&(ip, u16::from_be(bound_port)).into()));
            finish(d, len, None, local, ecn);
            ecn_seen[usize::from(ecn & 3)] += 1;
            if coalesced == Some(i) {
                out = i + 1 + self.serve_stash(&mut rx, dsts, i + 1, stats);
                break;
            }
        }
        stats.recv_dgrams.fetch_add(out as u64, Relaxed);
        stats.count_ecn_received(&ecn_seen);
        Ok(out)
    }

    /// `Bio::recv_segments` on a socket: each destination (at least GRO_MAX bytes, so a
    /// coalesced run is never cut) gets what one message brought, a GRO run whole with its
    /// segment size. Datagrams an earlier `rx` stashed come first, one per destination.
    pub fn rx_segments(&self, dsts: &mut [RxDst<'_>], stats: &Stats) -> Result<usize> {
        let (fd, bound_port) = match self.rx_start(dsts, stats)? {
            RxStart::Served(n) => return Ok(n),
            // Nothing is stashed here, so the receive state is not held across recvmmsg.
            RxStart::Fresh(fd, port, _) => (fd, port),
        };
        let want_cmsg = self.gro.load(Relaxed) || self.local_enabled() || self.ecn_rx.load(Relaxed);
        // What each destination gets: bytes, segment size, local IP, ECN codepoint.
        let mut got_each = [(0usize, 0usize, None::<std::net::IpAddr>, 0u8); BATCH];
        let slots = dsts
            .iter_mut()
            .map(|d| RxSlot::new(&mut d.buf[..], &mut [], d.src.as_deref_mut()));
        let got = on_stack::<_, _, BATCH>(slots, |slots| {
            stats.recv_calls.fetch_add(1, Relaxed);
            let got = sys::recv_batch(fd, slots, true, want_cmsg).map_err(err_io)?;
            for (g, s) in got_each.iter_mut().zip(&slots[..got]) {
                let len = s.len.min(s.buf.len());
                let seg = if s.seg > 0 && len > s.seg { s.seg } else { 0 };
                *g = (len, seg, s.dst.and_then(|a| a.ip()), s.ecn);
            }
            Ok(got)
        })?;
        let mut ecn_seen = [0u64; 4];
        let mut datagrams = 0u64;
        for (d, (len, seg, ip, ecn)) in dsts.iter_mut().zip(got_each).take(got) {
            let local =
                ip.map(|ip| BioAddr::from_socket_addr(&(ip, u16::from_be(bound_port)).into()));
            finish(d, len, None, local, ecn);
            d.seg = seg;
            let n = if seg > 0 { len.div_ceil(seg) as u64 } else { 1 };
            if seg > 0 {
                stats.gro_dgrams.fetch_add(n, Relaxed);
            }
            ecn_seen[usize::from(ecn & 3)] += n;
            datagrams += n;
        }
        stats.recv_dgrams.fetch_add(datagrams, Relaxed);
        stats.count_ecn_received(&ecn_seen);
        Ok(got)
    }

    /// Copies stashed datagrams into `dsts[from..]`; returns how many.
    fn serve_stash(
        &self,
        rx: &mut RxState,
        dsts: &mut [RxDst<'_>],
        from: usize,
        stats: &Stats,
    ) -> usize {
        let mut n = 0;
        let mut ecn_seen = [0u64; 4];
        while from + n < dsts.len() {
            let Some(it) = rx.items.pop_front() else {
                break;
            };
            let d = &mut dsts[from + n];
            let c = it.len.min(d.buf.len());
            d.buf[..c].copy_from_slice(&rx.arena[it.off..it.off + c]);
            finish(d, c, Some(it.src), it.dst, it.ecn);
            ecn_seen[usize::from(it.ecn & 3)] += 1;
            n += 1;
        }
        stats.count_ecn_received(&ecn_seen);
        if rx.items.is_empty() {
            rx.arena.clear();
        }
        stats.copies.fetch_add(n as u64, Relaxed);
        n
    }
}

/// Records a delivered datagram: its length, ECN codepoint and, where the caller asked, its
/// addresses.
fn finish(d: &mut RxDst<'_>, len: usize, src: Option<BioAddr>, local: Option<BioAddr>, ecn: u8) {
    d.len = len;
    d.ecn = ecn;
    if let (Some(s), Some(out)) = (src, d.src.as_deref_mut()) {
        *out = s;
    }
    if let Some(l) = d.local.as_deref_mut() {
        *l = local.unwrap_or_default();
    }
}

impl Drop for DgramSock {
    fn drop(&mut self) {
        self.release_fd();
    }
}

impl Default for DgramSock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::IntoRawFd;

    /// A kernel that refuses the ECN control message (EINVAL, as Linux before 3.13 does
    /// for IP_TOS): the batch still goes out, unmarked, and the BIO stops writing ECN bits
    /// (quinn-udp's fallback); it keeps reading them.
    #[test]
    fn ecn_refused_by_the_kernel_turns_marking_off_and_sends_anyway() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let to = BioAddr::from_socket_addr(&rx.local_addr().unwrap());
        let tx = DgramSock::new();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_fd(sock.into_raw_fd(), true).unwrap();
        // GSO off: EINVAL on a GSO send turns GSO off first (a kernel with UDP_SEGMENT takes
        // TOS control messages); this is about the ECN fallback alone.
        tx.set_offload(false, false);
        assert!(tx.set_ecn(true));
        let stats = Stats::default();
        let data = [7u8; 100];
        let descs = [TxDesc {
            data: &data,
            dst: Some(&to),
            src: None,
            ecn: 0b10,
        }; 3];
        crate::sys::tests::MALFORMED_TOS.with(|m| m.set(true));
        let out = tx.tx(&descs, &stats);
        crate::sys::tests::MALFORMED_TOS.with(|m| m.set(false));
        assert_eq!(out.sent, 3, "{:?}", out.err.map(|e| e.code));
        assert_eq!(tx.ecn(), (false, true), "writing off, reading on");
        assert_eq!(stats.ecn_sent.load(Relaxed), 0);
        let mut buf = [0u8; 200];
        for _ in 0..3 {
            assert_eq!(rx.recv(&mut buf).unwrap(), 100);
        }
        // Off for good: later batches go without the control message.
        assert_eq!(tx.tx(&descs[..1], &stats).sent, 1);
        assert_eq!(stats.ecn_sent.load(Relaxed), 0);
    }
}
