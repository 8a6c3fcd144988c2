//! `BIO_s_dgram_pair` and `BIO_s_dgram_mem`: datagrams in memory with OpenSSL's semantics
//! (per-direction capacity, all-or-nothing writes, truncation or no_trunc, caps negotiation
//! before addresses pass, pending = next datagram's size). Each direction is an SPSC
//! [`Ring`]; a mem BIO is one ring it both writes and reads, growing unless sized.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use crate::sync::Mutex;

use super::addr::BioAddr;
use super::consts::*;
use super::msg::BIO_POLL_DESCRIPTOR;
use super::ring::{MAX_OVERHEAD, Producer, Ring};
use super::{RxDst, Stats, TxOutcome};
use crate::error::*;
use crate::sys::TxDesc;

/// Minimum per-direction buffer, as OpenSSL's.
pub(crate) const MIN_BUF: usize = 1024;
/// Largest write buffer a half takes: its ring is allocated whole when the pair is made (or a
/// mem BIO first used), so a size from BIO_set_write_buf_size or BIO_new_bio_dgram_pair beyond
/// this is refused rather than aborting the process when the allocation fails (fuzz input
/// fuzz/corpus/bio_calls/crash-huge-write-buf-size).
pub(crate) const MAX_BUF: usize = 1 << 30;
/// Default buffer: nine datagrams of the default MTU with worst-case record overhead.
pub(crate) const DEFAULT_BUF: usize = 9 * (DGRAM_PAIR_DEFAULT_MTU + MAX_OVERHEAD);

/// Settings of one half that the other half reads (caps, liveness).
#[derive(Default)]
struct EndCfg {
    caps: AtomicU32,
    alive: AtomicBool,
}

struct Link {
    /// rings[i] is written by half i (for a mem BIO only rings[0] is used).
    rings: [Ring; 2],
    ends: [Arc<EndCfg>; 2],
    mtu: AtomicUsize,
    mem: bool,
    /// Set by BIO_destroy_bio_pair: both halves behave as if the other were freed.
    broken: AtomicBool,
}

pub struct PairEnd {
    cfg: Arc<EndCfg>,
    link: OnceLock<(Arc<Link>, usize)>,
    mem: bool,
    writebuf: AtomicUsize,
    sized: AtomicBool,
    mtu_unlinked: AtomicUsize,
    local_enabled: AtomicBool,
    no_trunc: AtomicBool,
    default_src: Mutex<Option<BioAddr>>,
}

fn non_fatal(what: &str) -> Error {
    Error::bio(BIO_R_NON_FATAL).with(what.to_string())
}

impl PairEnd {
    pub fn new() -> Self {
        PairEnd {
            cfg: Arc::new(EndCfg {
                caps: AtomicU32::new(0),
                alive: AtomicBool::new(true),
            }),
            link: OnceLock::new(),
            mem: false,
            writebuf: AtomicUsize::new(DEFAULT_BUF),
            sized: AtomicBool::new(false),
            mtu_unlinked: AtomicUsize::new(DGRAM_PAIR_DEFAULT_MTU),
            local_enabled: AtomicBool::new(false),
            no_trunc: AtomicBool::new(false),
            default_src: Mutex::new(None),
        }
    }

    /// A mem BIO: linked to itself from the start; its ring grows until a size is set.
    pub fn new_mem() -> Self {
        let mut p = Self::new();
        p.mem = true;
        p
    }

    fn link(&self) -> Result<(&Link, usize)> {
        if self.mem && self.link.get().is_none() {
            let l = Link {
                rings: [Ring::new(self.writebuf.load(Relaxed)), Ring::new(64)],
                ends: [self.cfg.clone(), self.cfg.clone()],
                mtu: AtomicUsize::new(self.mtu_unlinked.load(Relaxed)),
                mem: true,
                broken: AtomicBool::new(false),
            };
            let _ = self.link.set((Arc::new(l), 0));
        }
        match self.link.get() {
            Some((l, i)) => Ok((l, *i)),
            None => Err(Error::bio(BIO_R_UNINITIALIZED).with("datagram pair half is not paired")),
        }
    }

    /// The half that reads what we write (ourselves for a mem BIO).
    fn peer_cfg(&self) -> Option<&EndCfg> {
        let (l, i) = self.link.get()?;
        Some(if l.mem { &l.ends[0] } else { &l.ends[1 - i] })
    }
    fn out_ring(l: &Link, i: usize) -> &Ring {
        if l.mem { &l.rings[0] } else { &l.rings[i] }
    }
    fn in_ring(l: &Link, i: usize) -> &Ring {
        if l.mem { &l.rings[0] } else { &l.rings[1 - i] }
    }
    fn check_peer(&self, l: &Link) -> Result<()> {
        if l.broken.load(Relaxed)
            || (!l.mem && !self.peer_cfg().is_some_and(|c| c.alive.load(Relaxed)))
        {
            return Err(
                Error::bio(BIO_R_BROKEN_PIPE).with("the other half of the datagram pair is gone")
            );
        }
        Ok(())
    }

    /// BIO_make_bio_pair: links two unpaired halves.
    pub fn make_pair(a: &PairEnd, b: &PairEnd) -> Result<()> {
        if a.mem || b.mem {
            return Err(Error::unsupported("a dgram mem BIO cannot be paired"));
        }
        if std::ptr::eq(a, b) {
            return Err(Error::invalid("cannot pair a BIO with itself"));
        }
        if a.link.get().is_some() || b.link.get().is_some() {
            return Err(Error::bio(BIO_R_IN_USE).with("datagram pair half is already paired"));
        }
        let link = Arc::new(Link {
            rings: [
                Ring::new(a.writebuf.load(Relaxed)),
                Ring::new(b.writebuf.load(Relaxed)),
            ],
            ends: [a.cfg.clone(), b.cfg.clone()],
            mtu: AtomicUsize::new(a.mtu_unlinked.load(Relaxed)),
            mem: false,
            broken: AtomicBool::new(false),
        });
        a.link
            .set((link.clone(), 0))
            .map_err(|_| Error::bio(BIO_R_IN_USE))?;
        b.link
            .set((link, 1))
            .map_err(|_| Error::bio(BIO_R_IN_USE))?;
        Ok(())
    }

    pub fn destroy_pair(&self) {
        if let Some((l, _)) = self.link.get() {
            l.broken.store(true, Relaxed);
        }
    }

    // ---- settings

    pub fn set_write_buf_size(&self, n: usize) -> Result<()> {
        if self.link.get().is_some() {
            return Err(Error::bio(BIO_R_IN_USE)
                .with("buffer size must be set before pairing or first use"));
        }
        if n > MAX_BUF {
            return Err(Error::invalid(format!(
                "write buffer size {n} is over the maximum ({MAX_BUF})"
            )));
        }
        let n = if n == 0 { DEFAULT_BUF } else { n.max(MIN_BUF) };
        self.writebuf.store(n, Relaxed);
        self.sized.store(true, Relaxed);
        Ok(())
    }
    pub fn write_buf_size(&self) -> usize {
        match self.link.get() {
            Some((l, i)) => Self::out_ring(l, *i).capacity(),
            None => self.writebuf.load(Relaxed),
        }
    }
    pub fn mtu(&self) -> usize {
        match self.link.get() {
            Some((l, _)) => l.mtu.load(Relaxed),
            None => self.mtu_unlinked.load(Relaxed),
        }
    }
    /// Sets the MTU of both halves (informational; it bounds the write guarantee).
    pub fn set_mtu(&self, m: usize) -> Result<()> {
        if m == 0 {
            return Err(Error::invalid("MTU must be positive"));
        }
        match self.link.get() {
            Some((l, _)) => l.mtu.store(m, Relaxed),
            None => self.mtu_unlinked.store(m, Relaxed),
        }
        Ok(())
    }
    pub fn caps(&self) -> u32 {
        self.cfg.caps.load(Relaxed)
    }
    pub fn set_caps(&self, c: u32) {
        self.cfg.caps.store(c, Relaxed);
    }
    /// The caps of the half that reads what we write (our own for a mem BIO).
    pub fn effective_caps(&self) -> u32 {
        if self.mem {
            return self.caps();
        }
        self.peer_cfg().map_or(0, |c| c.caps.load(Relaxed))
    }
    pub fn no_trunc(&self) -> bool {
        self.no_trunc.load(Relaxed)
    }
    pub fn set_no_trunc(&self, on: bool) {
        self.no_trunc.store(on, Relaxed);
    }
    pub fn local_addr_cap(&self) -> bool {
        let need = BIO_DGRAM_CAP_HANDLES_SRC_ADDR | BIO_DGRAM_CAP_PROVIDES_DST_ADDR;
        self.effective_caps() & need == need
    }
    pub fn local_enabled(&self) -> bool {
        self.local_enabled.load(Relaxed)
    }
    pub fn set_local_addr_enable(&self, on: bool) -> Result<()> {
        if on && !self.local_addr_cap() {
            return Err(Error::bio(BIO_R_LOCAL_ADDR_NOT_AVAILABLE).with(
                "the reading half must set caps HANDLES_SRC_ADDR and PROVIDES_DST_ADDR first",
            ));
        }
        self.local_enabled.store(on, Relaxed);
        Ok(())
    }
    pub fn set_default_src(&self, a: Option<BioAddr>) {
        *self.default_src.lock() = a;
    }
    pub fn pending(&self) -> usize {
        match self.link() {
            Ok((l, i)) => Self::in_ring(l, i).peek_len().unwrap_or(0),
            Err(_) => 0,
        }
    }
    pub fn write_guarantee(&self) -> usize {
        let Ok((l, i)) = self.link() else { return 0 };
        let free = Self::out_ring(l, i)
            .free_space()
            .saturating_sub(MAX_OVERHEAD);
        if free < self.mtu() { 0 } else { free }
    }
    pub fn reset(&self) {
        if let Ok((l, i)) = self.link() {
            Self::out_ring(l, i).clear();
        }
    }
    /// BIO_eof: true only without a live peer.
    pub fn eof(&self) -> bool {
        if self.mem {
            return false;
        }
        match self.link.get() {
            Some((l, _)) => self.check_peer(l).is_err(),
            None => true,
        }
    }

    pub fn enable_pollable(&self) -> Result<i32> {
        let (l, i) = self.link()?;
        Self::in_ring(l, i)
            .enable_waker()
            .map_err(|e| Error::sys(e.raw_os_error().unwrap_or(libc::EIO)))
    }
    pub fn rpoll(&self) -> Result<BIO_POLL_DESCRIPTOR> {
        let fd = self
            .link()
            .ok()
            .and_then(|(l, i)| Self::in_ring(l, i).waker_fd());
        fd.map(BIO_POLL_DESCRIPTOR::fd).ok_or_else(|| {
            Error::unsupported("a datagram pair is not pollable unless OSSLQUIC_dgram_pair_set_pollable was called")
        })
    }
    pub fn wakeups(&self) -> u64 {
        self.link()
            .map_or(0, |(l, i)| Self::in_ring(l, i).wakeups() as u64)
    }

    // ---- I/O

    fn push(
        &self,
        prod: &mut Producer<'_>,
        data: &[u8],
        src: &BioAddr,
        dst: &BioAddr,
    ) -> Result<()> {
        let grow = self.mem && !self.sized.load(Relaxed);
        if !grow
            && Ring::record_len(data.len(), src.encode().len(), dst.encode().len())
                > prod.capacity()
        {
            return Err(Error::invalid(format!(
                "datagram of {} bytes can never fit the pair's buffer",
                data.len()
            )));
        }
        if prod.push(&[data], src, dst, grow) {
            Ok(())
        } else {
            Err(non_fatal("datagram pair buffer is full"))
        }
    }

    pub fn write(&self, buf: &[u8], stats: &Stats) -> Result<usize> {
        let (l, i) = self.link()?;
        self.check_peer(l)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let src = self.default_src.lock().unwrap_or_default();
        self.push(
            &mut Self::out_ring(l, i).producer(),
            buf,
            &src,
            &BioAddr::default(),
        )?;
        stats.sent_dgrams.fetch_add(1, Relaxed);
        stats.copies.fetch_add(1, Relaxed);
        Ok(buf.len())
    }

    pub fn read(&self, buf: &mut [u8], stats: &Stats) -> Result<usize> {
        let (l, i) = self.link()?;
        self.check_peer(l)?;
        let ring = Self::in_ring(l, i);
        let popped = ring.consumer().pop_into(buf, self.no_trunc(), None, None);
        match popped {
            None => Err(Error::would_block()),
            Some((len, copied)) if copied == 0 && len > buf.len() => Err(Error::invalid(format!(
                "buffer of {} bytes is too small for the next datagram of {} bytes (no_trunc is on)",
                buf.len(),
                len
            ))),
            Some((_, copied)) => {
                stats.recv_calls.fetch_add(1, Relaxed);
                stats.recv_dgrams.fetch_add(1, Relaxed);
                stats.copies.fetch_add(1, Relaxed);
                Ok(copied)
            }
        }
    }

    pub fn tx(&self, descs: &[TxDesc<'_>], stats: &Stats) -> TxOutcome {
        let (l, i) = match self
            .link()
            .and_then(|(l, i)| self.check_peer(l).map(|_| (l, i)))
        {
            Ok(x) => x,
            Err(e) => {
                return TxOutcome {
                    sent: 0,
                    err: Some(e),
                };
            }
        };
        let default_src = self.default_src.lock().unwrap_or_default();
        let peer_caps = self.effective_caps();
        let mut sent = 0;
        let mut err = None;
        let mut prod = Self::out_ring(l, i).producer();
        for d in descs {
            let (dst, src) = (d.dst, d.src);
            if dst.is_some() && peer_caps & BIO_DGRAM_CAP_HANDLES_DST_ADDR == 0 {
                err = Some(
                    Error::bio(BIO_R_PEER_ADDR_NOT_AVAILABLE)
                        .with("the reading half has not set caps BIO_DGRAM_CAP_HANDLES_DST_ADDR"),
                );
                break;
            }
            if src.is_some() && !self.local_enabled() {
                err = Some(Error::bio(BIO_R_LOCAL_ADDR_NOT_AVAILABLE)
                    .with("enable local addresses (BIO_dgram_set_local_addr_enable) before setting BIO_MSG.local"));
                break;
            }
            let data = d.data;
            if let Err(e) = self.push(
                &mut prod,
                data,
                src.unwrap_or(&default_src),
                dst.unwrap_or(&BioAddr::default()),
            ) {
                err = Some(e);
                break;
            }
            sent += 1;
        }
        stats.send_calls.fetch_add(1, Relaxed);
        stats.sent_dgrams.fetch_add(sent as u64, Relaxed);
        stats.copies.fetch_add(sent as u64, Relaxed);
        TxOutcome { sent, err }
    }

    /// BIO_recvmmsg on a pair: stops at the first empty read; nothing at all is NON_FATAL.
    pub fn rx(&self, dsts: &mut [RxDst<'_>], stats: &Stats) -> Result<usize> {
        let (l, i) = self.link()?;
        self.check_peer(l)?;
        let mut cons = Self::in_ring(l, i).consumer();
        let mut n = 0;
        for d in dsts.iter_mut() {
            let cap = d.buf.len();
            let (src, local) = (d.src.as_deref_mut(), d.local.as_deref_mut());
            let Some((len, copied)) = cons.pop_into(d.buf, self.no_trunc(), src, local) else {
                break;
            };
            if copied == 0 && len > cap {
                if n == 0 {
                    return Err(Error::invalid(format!(
                        "buffer of {} bytes is too small for the next datagram of {} bytes (no_trunc is on)",
                        cap, len
                    )));
                }
                break;
            }
            d.len = copied;
            n += 1;
        }
        drop(cons);
        stats.recv_calls.fetch_add(1, Relaxed);
        stats.recv_dgrams.fetch_add(n as u64, Relaxed);
        stats.copies.fetch_add(n as u64, Relaxed);
        if n == 0 {
            return Err(non_fatal("no datagram waiting"));
        }
        Ok(n)
    }
}

impl Default for PairEnd {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PairEnd {
    fn drop(&mut self) {
        self.cfg.alive.store(false, Relaxed);
    }
}
