//! BIOs: datagram sockets, datagram pairs and memory, custom methods (BIO_meth_*), their
//! addresses, batching and poll descriptors. Knows nothing of SSL.
//! Owns: the `Bio` object behind every `BIO *`, retry flags, statistics and the generic
//! halves of BIO_sendmmsg/BIO_recvmmsg and the zero-copy API; each kind supplies `tx`/`rx`.

pub mod acpt;
pub mod addr;
pub mod bpair;
pub mod conn;
pub mod consts;
pub mod ctrl;
pub mod custom;
pub mod dgram;
pub mod file;
pub mod filter;
pub mod mem;
pub mod msg;
pub mod pair;
pub mod ring;
pub mod sock;
pub mod zc;

use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use crate::sync::Mutex;

use crate::error::*;
use crate::sys::TxDesc;
use addr::BioAddr;
use consts::*;
use msg::{BIO_POLL_DESCRIPTOR, MsgArray};
use zc::{RawBuf, ReadSide, WriteSide};

/// The opaque C type behind `BIO *` (the handle is the address of a [`Bio`]). Declared here
/// rather than in `ffi/` because custom methods' callbacks, which this layer calls, take it.
#[allow(non_camel_case_types)]
pub struct bio_st {
    _opaque: [u8; 0],
}
pub type BIO = bio_st;

/// What `BIO_s_*()` returns: the kind of BIO to create.
pub struct BioMethod {
    pub type_id: i32,
    pub name: &'static str,
}

pub static METHOD_DGRAM: BioMethod = BioMethod {
    type_id: BIO_TYPE_DGRAM,
    name: "datagram socket",
};
pub static METHOD_DGRAM_PAIR: BioMethod = BioMethod {
    type_id: BIO_TYPE_DGRAM_PAIR,
    name: "BIO dgram pair",
};
pub static METHOD_DGRAM_MEM: BioMethod = BioMethod {
    type_id: BIO_TYPE_DGRAM_MEM,
    name: "BIO dgram mem",
};
pub static METHOD_SOCKET: BioMethod = BioMethod {
    type_id: BIO_TYPE_SOCKET,
    name: "socket",
};
pub static METHOD_MEM: BioMethod = BioMethod {
    type_id: BIO_TYPE_MEM,
    name: "memory buffer",
};
pub static METHOD_BIO: BioMethod = BioMethod {
    type_id: BIO_TYPE_BIO,
    name: "BIO pair",
};
pub static METHOD_BUFFER: BioMethod = BioMethod {
    type_id: BIO_TYPE_BUFFER,
    name: "buffer",
};
pub static METHOD_FILE: BioMethod = BioMethod {
    type_id: file::BIO_TYPE_FILE,
    name: "FILE pointer",
};
/// Placeholder of a custom BIO's `method` field: its type and name come from its
/// [`custom::CustomMethod`].
pub static METHOD_CUSTOM: BioMethod = BioMethod {
    type_id: BIO_TYPE_NONE,
    name: "custom",
};

/// One receive destination: a caller's buffer and where to put the addresses. It borrows
/// them, so safe code cannot make one that outlives its memory; over a C `BIO_MSG` array,
/// destinations come from [`MsgArray::rx_dst`](msg::MsgArray::rx_dst), an `unsafe`
/// constructor.
pub struct RxDst<'a> {
    pub buf: &'a mut [u8],
    pub src: Option<&'a mut BioAddr>,
    pub local: Option<&'a mut BioAddr>,
    /// Out: bytes delivered (at most `buf.len()`).
    pub len: usize,
    /// Out: the datagram's ECN codepoint (0b10 ECT(0), 0b01 ECT(1), 0b11 CE), or 0 for
    /// Not-ECT and wherever the BIO does not know (only a socket BIO with ECN on reads it).
    pub ecn: u8,
    /// Out, from `Bio::recv_segments` only: the bytes are a GRO run of datagrams of `seg`
    /// bytes each (the last may be shorter), all with the same addresses and ECN; 0: one
    /// datagram.
    pub seg: usize,
}

impl<'a> RxDst<'a> {
    pub fn new(
        buf: &'a mut [u8],
        src: Option<&'a mut BioAddr>,
        local: Option<&'a mut BioAddr>,
    ) -> Self {
        RxDst {
            buf,
            src,
            local,
            len: 0,
            ecn: 0,
            seg: 0,
        }
    }
}

/// Hands the first (at most `N`) of `items` to `f` as one slice built on the stack: a batch
/// path neither allocates nor initialises slots it does not use.
pub(crate) fn on_stack<T, R, const N: usize>(
    items: impl IntoIterator<Item = T>,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut store: [MaybeUninit<T>; N] = [const { MaybeUninit::uninit() }; N];
    let mut n = 0;
    for (slot, item) in store.iter_mut().zip(items) {
        slot.write(item);
        n += 1;
    }
    // SAFETY: the first n entries were written just above.
    let items = unsafe { std::slice::from_raw_parts_mut(store.as_mut_ptr().cast::<T>(), n) };
    let r = f(items);
    // SAFETY: the n initialised entries are dropped once and not used again.
    unsafe { std::ptr::drop_in_place(items) };
    r
}

/// How far a batch send got: `sent` items, then `err` for the item that stopped it.
pub struct TxOutcome {
    pub sent: usize,
    pub err: Option<Error>,
}

pub enum Kind {
    Dgram(dgram::DgramSock),
    Pair(pair::PairEnd),
    Custom(custom::CustomBio),
    /// BIO_s_socket: a byte stream over a connected socket.
    Sock(sock::SockBio),
    /// BIO_s_mem / BIO_new_mem_buf.
    Mem(mem::MemBio),
    /// BIO_s_bio: one half of a byte-stream pair.
    BytePair(bpair::BytePair),
    /// BIO_f_buffer: a filter that passes everything to the next BIO of its chain.
    Buffer,
    /// BIO_s_connect: resolves, connects, then a byte stream over its own socket.
    Conn(conn::ConnectBio),
    /// BIO_s_accept: a listening socket; accepted connections are chained after it.
    Accept(acpt::AcceptBio),
    /// BIO_f_ssl: a filter over an engine from outside this layer (an SSL object).
    Filter(filter::FilterBio),
    /// BIO_s_file / BIO_new_file: a file opened by name.
    File(file::FileBio),
}

/// Counters updated once per batch (never per datagram on a shared line).
#[derive(Default)]
pub struct Stats {
    pub send_calls: AtomicU64,
    pub sent_dgrams: AtomicU64,
    pub gso_sends: AtomicU64,
    pub recv_calls: AtomicU64,
    pub recv_dgrams: AtomicU64,
    pub gro_dgrams: AtomicU64,
    pub copies: AtomicU64,
    /// Datagrams sent with ECN bits set; received with ECT(0), ECT(1), CE (read only where
    /// ECN is on: `dgram::DgramSock::set_ecn`).
    pub ecn_sent: AtomicU64,
    pub ecn_ect0_recv: AtomicU64,
    pub ecn_ect1_recv: AtomicU64,
    pub ecn_ce_recv: AtomicU64,
}

impl Stats {
    /// Adds one batch's received codepoints, `seen[bits]` (bits: 0b10 ECT(0), 0b01 ECT(1),
    /// 0b11 CE; 0 Not-ECT is not counted).
    pub fn count_ecn_received(&self, seen: &[u64; 4]) {
        for (c, n) in [
            (&self.ecn_ect1_recv, seen[1]),
            (&self.ecn_ect0_recv, seen[2]),
            (&self.ecn_ce_recv, seen[3]),
        ] {
            if n > 0 {
                c.fetch_add(n, Relaxed);
            }
        }
    }
}

pub struct Bio {
    pub method: &'static BioMethod,
    pub kind: Kind,
    flags: AtomicI32,
    /// BIO_get_retry_reason (BIO_RR_CONNECT, BIO_RR_ACCEPT).
    retry_reason: AtomicI32,
    pub stats: Stats,
    zc_read: Mutex<ReadSide>,
    zc_write: Mutex<WriteSide>,
    zc_read_used: AtomicBool,
    zc_write_used: AtomicBool,
    /// The chain (BIO_push/BIO_pop). Links do not own, as in OpenSSL: each BIO of a chain
    /// keeps the references its users hold, and BIO_free_all releases one per BIO. A freed
    /// BIO simply ends the chain (no dangling pointer).
    next: Mutex<Weak<Bio>>,
    prev: Mutex<Weak<Bio>>,
}

/// Errors for a would-block of the legacy calls (set retry flags, queue nothing).
fn is_retry_errno(e: i32) -> bool {
    matches!(
        e,
        libc::EAGAIN | libc::EINTR | libc::EINPROGRESS | libc::EALREADY
    )
}

impl Bio {
    pub fn new(method: &'static BioMethod) -> Arc<Bio> {
        let kind = match method.type_id {
            BIO_TYPE_DGRAM => Kind::Dgram(dgram::DgramSock::new()),
            BIO_TYPE_DGRAM_MEM => Kind::Pair(pair::PairEnd::new_mem()),
            BIO_TYPE_SOCKET => Kind::Sock(sock::SockBio::default()),
            BIO_TYPE_MEM => Kind::Mem(mem::MemBio::new()),
            BIO_TYPE_BIO => Kind::BytePair(bpair::BytePair::default()),
            BIO_TYPE_BUFFER => Kind::Buffer,
            BIO_TYPE_CONNECT => Kind::Conn(conn::ConnectBio::default()),
            BIO_TYPE_ACCEPT => Kind::Accept(acpt::AcceptBio::default()),
            BIO_TYPE_SSL => Kind::Filter(filter::FilterBio::default()),
            file::BIO_TYPE_FILE => Kind::File(file::FileBio::default()),
            _ => Kind::Pair(pair::PairEnd::new()),
        };
        let bio = Self::with_kind(method, kind);
        if let Kind::Accept(a) = &bio.kind {
            a.set_me(Arc::downgrade(&bio));
        }
        bio
    }

    /// A read-only memory BIO over a copy of `data` (BIO_new_mem_buf).
    pub fn new_mem_buf(data: &[u8]) -> Arc<Bio> {
        Self::with_kind(&METHOD_MEM, Kind::Mem(mem::MemBio::read_only(data)))
    }

    fn with_kind(method: &'static BioMethod, kind: Kind) -> Arc<Bio> {
        Arc::new(Bio {
            method,
            kind,
            flags: AtomicI32::new(0),
            retry_reason: AtomicI32::new(0),
            stats: Stats::default(),
            zc_read: Mutex::new(ReadSide::default()),
            zc_write: Mutex::new(WriteSide::default()),
            zc_read_used: AtomicBool::new(false),
            zc_write_used: AtomicBool::new(false),
            next: Mutex::new(Weak::new()),
            prev: Mutex::new(Weak::new()),
        })
    }

    /// A BIO of an application's method (BIO_new with a BIO_meth_new method): the method's
    /// `create` runs on it; if that returns 0 the BIO is dropped without `destroy`
    /// (BIO_new(3): NULL and ERR_R_INIT_FAIL).
    pub fn new_custom(m: Arc<custom::CustomMethod>) -> Result<Arc<Bio>> {
        let bio = Self::with_kind(&METHOD_CUSTOM, Kind::Custom(custom::CustomBio::new(m)));
        custom::create(&bio)?;
        Ok(bio)
    }

    /// The `BIO *` handle of this BIO, as the application's callbacks receive it.
    pub fn handle(&self) -> *mut BIO {
        self as *const Bio as *mut BIO
    }

    pub fn type_id(&self) -> i32 {
        match &self.kind {
            Kind::Custom(c) => c.method.type_id,
            _ => self.method.type_id,
        }
    }
    /// The method name, for messages.
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        match &self.kind {
            Kind::Custom(c) => c.method.name.to_string_lossy(),
            _ => self.method.name.into(),
        }
    }
    pub fn dgram(&self) -> Result<&dgram::DgramSock> {
        match &self.kind {
            Kind::Dgram(d) => Ok(d),
            Kind::Conn(c) if c.is_dgram() => c.dgram_sock(self),
            _ => Err(Error::unsupported(format!(
                "not supported on a {} BIO",
                self.name()
            ))),
        }
    }
    pub fn pair(&self) -> Result<&pair::PairEnd> {
        match &self.kind {
            Kind::Pair(p) => Ok(p),
            _ => Err(Error::unsupported(format!(
                "not supported on a {} BIO",
                self.name()
            ))),
        }
    }
    pub fn sock(&self) -> Option<&sock::SockBio> {
        match &self.kind {
            Kind::Sock(s) => Some(s),
            _ => None,
        }
    }
    pub fn mem(&self) -> Option<&mem::MemBio> {
        match &self.kind {
            Kind::Mem(m) => Some(m),
            _ => None,
        }
    }
    pub fn byte_pair(&self) -> Option<&bpair::BytePair> {
        match &self.kind {
            Kind::BytePair(p) => Some(p),
            _ => None,
        }
    }
    pub fn conn(&self) -> Option<&conn::ConnectBio> {
        match &self.kind {
            Kind::Conn(c) => Some(c),
            _ => None,
        }
    }
    pub fn acceptor(&self) -> Option<&acpt::AcceptBio> {
        match &self.kind {
            Kind::Accept(a) => Some(a),
            _ => None,
        }
    }
    /// The file of a BIO_s_file BIO.
    pub fn file(&self) -> Option<&file::FileBio> {
        match &self.kind {
            Kind::File(f) => Some(f),
            _ => None,
        }
    }
    /// The SSL filter state of a BIO_f_ssl BIO.
    pub fn filter(&self) -> Option<&filter::FilterBio> {
        match &self.kind {
            Kind::Filter(f) => Some(f),
            _ => None,
        }
    }
    /// Whether this is one of the byte-stream kinds (socket, mem, BIO pair, buffer filter,
    /// connect and accept BIOs).
    pub fn is_stream(&self) -> bool {
        match &self.kind {
            Kind::Conn(c) => !c.is_dgram(),
            k => matches!(
                k,
                Kind::Sock(_)
                    | Kind::Mem(_)
                    | Kind::BytePair(_)
                    | Kind::Buffer
                    | Kind::Accept(_)
                    | Kind::Filter(_)
                    | Kind::File(_)
            ),
        }
    }

    pub fn retry_reason(&self) -> i32 {
        self.retry_reason.load(Relaxed)
    }
    pub fn set_retry_reason(&self, r: i32) {
        self.retry_reason.store(r, Relaxed);
    }

    /// Runs a connect BIO's state machine until connected, or an accept BIO's until a
    /// connection is chained after it; None when it is there. Some(Err) is the failure, a
    /// retry being a quiet would-block with the state machine's flags (IO_SPECIAL) kept.
    fn ensure_ready(&self) -> Option<Result<usize>> {
        let step = match &self.kind {
            Kind::Conn(c) if !c.connected() => c.state(self),
            Kind::Accept(a) if self.next_bio().is_none() => a.state(self),
            _ => return None,
        };
        match step {
            Ok(r) if r > 0 => match &self.kind {
                // An accept that only bound and listened: accept now (acpt_read loops).
                Kind::Accept(_) => self.ensure_ready(),
                _ => None,
            },
            Ok(_) => Some(Err(Error::would_block())),
            Err((_, e)) => Some(Err(e)),
        }
    }

    // ---- chains (BIO_push, BIO_pop, BIO_next)

    /// The next BIO of the chain, if any (and still alive).
    pub fn next_bio(&self) -> Option<Arc<Bio>> {
        self.next.lock().upgrade()
    }

    /// BIO_push: appends `append` (and whatever follows it) after the last BIO of `this`'s
    /// chain.
    pub fn push(this: &Arc<Bio>, append: &Arc<Bio>) {
        let mut last = this.clone();
        while let Some(n) = last.next_bio() {
            if Arc::ptr_eq(&n, this) {
                break; // a cycle someone made: stop rather than loop
            }
            last = n;
        }
        *last.next.lock() = Arc::downgrade(append);
        *append.prev.lock() = Arc::downgrade(&last);
    }

    /// Makes `next` the BIO after this one (BIO_set_next): the rest of this BIO's chain is
    /// dropped from it; `next` keeps its own chain.
    pub fn set_next(this: &Arc<Bio>, next: Option<&Arc<Bio>>) {
        *this.next.lock() = next.map_or_else(Weak::new, Arc::downgrade);
        if let Some(n) = next {
            *n.prev.lock() = Arc::downgrade(this);
        }
    }

    /// Cuts the chain after this BIO (BIO_push(b, NULL) on the last BIO does nothing else).
    pub fn pop_next(&self) {
        *self.next.lock() = Weak::new();
    }

    /// BIO_pop: takes this BIO out of its chain, joining its neighbours; returns the BIO that
    /// followed it.
    pub fn pop(&self) -> Option<Arc<Bio>> {
        let next = std::mem::take(&mut *self.next.lock());
        let prev = std::mem::take(&mut *self.prev.lock());
        if let Some(p) = prev.upgrade() {
            *p.next.lock() = next.clone();
        }
        let n = next.upgrade();
        if let Some(n) = &n {
            *n.prev.lock() = prev;
        }
        n
    }

    /// The next BIO for a filter, or the error a filter without one gives.
    fn filter_next(&self) -> Result<Arc<Bio>> {
        self.next_bio().ok_or_else(|| {
            Error::bio(BIO_R_UNINITIALIZED)
                .with(format!("a {} BIO needs a next BIO (BIO_push)", self.name()))
        })
    }

    /// A filter's I/O: the next BIO's, with its retry flags copied (BIO_copy_next_retry).
    fn via_next<T>(&self, f: impl FnOnce(&Bio) -> Result<T>) -> Result<T> {
        let n = self.filter_next()?;
        let r = f(&n);
        self.set_flags(n.flags() & (BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY));
        r
    }

    /// BIO_gets on a BIO_f_buffer: a line from the next BIO, taken one byte at a time (this
    /// filter keeps no buffer, so it must not read past the newline). Stops after a newline,
    /// when `out` is full, at end of stream, or when the next BIO would block or fails after
    /// some bytes came (those are returned, as bf_buff.c's buffer_gets does).
    pub fn gets_through(&self, out: &mut [u8]) -> Result<usize> {
        self.clear_retry();
        let mut n = 0;
        while n < out.len() {
            let mut b = [0u8];
            match self.via_next(|nx| nx.read(&mut b)) {
                Ok(1) => {
                    out[n] = b[0];
                    n += 1;
                    if b[0] == b'\n' {
                        break;
                    }
                }
                Ok(_) => break,
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// The custom state of a BIO made from a BIO_meth_new method, if it is one.
    pub fn custom(&self) -> Option<&custom::CustomBio> {
        match &self.kind {
            Kind::Custom(c) => Some(c),
            _ => None,
        }
    }
    pub fn as_custom(&self) -> Result<&custom::CustomBio> {
        self.custom().ok_or_else(|| {
            Error::unsupported(format!(
                "only for BIOs of a BIO_meth_new method, not a {} BIO",
                self.name()
            ))
        })
    }

    // ---- retry flags (BIO_should_retry and friends)

    pub fn flags(&self) -> i32 {
        self.flags.load(Relaxed)
    }
    pub fn set_flags(&self, f: i32) {
        self.flags.fetch_or(f, Relaxed);
    }
    pub fn clear_flags(&self, f: i32) {
        self.flags.fetch_and(!f, Relaxed);
    }
    pub(crate) fn clear_retry(&self) {
        self.clear_flags(BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY);
    }
    fn retry(&self, dir: i32) {
        self.set_flags(dir | BIO_FLAGS_SHOULD_RETRY);
    }

    // ---- legacy one-datagram I/O

    /// BIO_read: one datagram; truncation as the kind defines it.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        if self.zc_read_used.load(Relaxed) {
            return Err(Error::bio(BIO_R_IN_USE)
                .with("BIO_read cannot be used after BIO_read_dequeue on this BIO"));
        }
        self.clear_retry();
        let r = match &self.kind {
            Kind::Dgram(d) => d.read(buf, &self.stats),
            Kind::Pair(p) => p.read(buf, &self.stats),
            Kind::Custom(c) => custom::read_one(self, c, buf),
            Kind::Sock(s) => {
                let r = s.read(buf);
                if matches!(r, Ok(0)) && !buf.is_empty() {
                    self.set_flags(BIO_FLAGS_IN_EOF);
                }
                r
            }
            Kind::Mem(m) => match m.read(buf) {
                mem::MemRead::Data(n) => Ok(n),
                mem::MemRead::Empty(0) => Ok(0),
                mem::MemRead::Empty(_) => Err(Error::would_block()),
            },
            Kind::BytePair(p) => p.read(buf).map(|r| match r {
                bpair::PairRead::Data(n) => n,
                bpair::PairRead::Eof => 0,
            }),
            Kind::Buffer => return self.via_next(|n| n.read(buf)),
            Kind::Conn(c) if c.is_dgram() => {
                c.dgram_sock(self).and_then(|d| d.read(buf, &self.stats))
            }
            Kind::Conn(c) => {
                if let Some(r) = self.ensure_ready() {
                    return r;
                }
                let r = c.io().read(buf);
                if matches!(r, Ok(0)) && !buf.is_empty() {
                    self.set_flags(BIO_FLAGS_IN_EOF);
                }
                r
            }
            Kind::Accept(_) => {
                if let Some(r) = self.ensure_ready() {
                    return r;
                }
                return self.via_next(|n| n.read(buf));
            }
            Kind::Filter(f) => return f.read(self, buf),
            Kind::File(f) => f.read(buf),
        };
        self.note_retry(r, BIO_FLAGS_READ)
    }

    /// BIO_write: one datagram.
    pub fn write(&self, buf: &[u8]) -> Result<usize> {
        if self.zc_write_used.load(Relaxed) {
            return Err(Error::bio(BIO_R_IN_USE)
                .with("BIO_write cannot be used after BIO_write_queue on this BIO"));
        }
        self.clear_retry();
        let r = match &self.kind {
            Kind::Dgram(d) => d.write(buf, &self.stats),
            Kind::Pair(p) => p.write(buf, &self.stats),
            Kind::Custom(c) => custom::write_one(self, c, buf),
            Kind::Sock(s) => s.write(buf),
            Kind::Mem(m) => m.write(buf),
            Kind::BytePair(p) => p.write(buf),
            Kind::Buffer => return self.via_next(|n| n.write(buf)),
            Kind::Conn(c) if c.is_dgram() => {
                c.dgram_sock(self).and_then(|d| d.write(buf, &self.stats))
            }
            Kind::Conn(c) => {
                if let Some(r) = self.ensure_ready() {
                    return r;
                }
                c.io().write(buf)
            }
            Kind::Accept(_) => {
                if let Some(r) = self.ensure_ready() {
                    return r;
                }
                return self.via_next(|n| n.write(buf));
            }
            Kind::Filter(f) => return f.write(self, buf),
            Kind::File(f) => f.write(buf),
        };
        self.note_retry(r, BIO_FLAGS_WRITE)
    }

    /// Writes `bufs` in order, as `write` does one buffer: socket BIOs (a plain one, or a
    /// connected connect BIO) in one system call; any other BIO gets the first non-empty
    /// buffer through `write`. Ok(n): the first n bytes of the concatenation were taken.
    pub fn write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> Result<usize> {
        let sock = match &self.kind {
            Kind::Sock(s) => Some(s),
            Kind::Conn(c) if !c.is_dgram() && c.connected() => Some(c.io()),
            _ => None,
        };
        let Some(sock) = sock.filter(|_| !self.zc_write_used.load(Relaxed)) else {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            return self.write(first);
        };
        self.clear_retry();
        self.note_retry(sock.write_vectored(bufs), BIO_FLAGS_WRITE)
    }

    fn note_retry(&self, r: Result<usize>, dir: i32) -> Result<usize> {
        match r {
            Err(e) if e.is_would_block() || e.code == pack(ERR_LIB_BIO, BIO_R_NON_FATAL) => {
                self.retry(dir);
                Err(e)
            }
            Err(e) if is_system(e.code) && is_retry_errno(reason_of(e.code) as i32) => {
                self.retry(dir);
                Err(Error::would_block())
            }
            other => other,
        }
    }

    // ---- batched I/O (BIO_sendmmsg / BIO_recvmmsg)

    /// Sends `msgs`; Ok(n) is partial success with n >= 1 (or n == 0 for an empty array).
    /// Stops at the first failing item; fails only if item 0 fails.
    pub fn sendmmsg(&self, msgs: &MsgArray, flags: u64) -> Result<usize> {
        if flags != 0 {
            return Err(Error::invalid("BIO_sendmmsg flags must be 0"));
        }
        let mut done = 0;
        const CHUNK: usize = 256;
        while done < msgs.len() {
            let n = (msgs.len() - done).min(CHUNK);
            let mut bad = None;
            let descs = (done..done + n).map_while(|i| {
                let (p, l) = msgs.data(i);
                if p.is_null() && l > 0 {
                    bad = Some(Error::null("BIO_MSG.data"));
                    return None;
                }
                Some(msgs.tx_desc(i))
            });
            let (out, m) = on_stack::<_, _, CHUNK>(descs, |descs| (self.tx(descs), descs.len()));
            for i in done..done + out.sent {
                msgs.complete(i, msgs.data(i).1);
            }
            done += out.sent;
            if let Some(e) = out.err.or(bad) {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
            if out.sent < m {
                break;
            }
        }
        Ok(done)
    }

    /// Receives into `msgs`; as for sendmmsg, 0 received is an error (non-fatal when the
    /// source is merely empty).
    pub fn recvmmsg(&self, msgs: &MsgArray, flags: u64) -> Result<usize> {
        if flags != 0 {
            return Err(Error::invalid("BIO_recvmmsg flags must be 0"));
        }
        let mut usable = msgs.len();
        let mut bad = None;
        for i in 0..msgs.len() {
            // Input BIO_MSG.flags are ignored, as OpenSSL's implementation does; output
            // flags are cleared (MsgArray::complete).
            if !msgs.local(i).is_null() && !self.local_enabled() {
                bad = Some(Error::bio(BIO_R_LOCAL_ADDR_NOT_AVAILABLE)
                    .with("BIO_dgram_set_local_addr_enable(b, 1) must succeed before asking for local addresses"));
            } else if msgs.data(i).0.is_null() && msgs.data(i).1 > 0 {
                bad = Some(Error::null("BIO_MSG.data"));
            }
            if bad.is_some() {
                usable = i;
                break;
            }
        }
        if usable == 0 {
            return match bad {
                Some(e) => Err(e),
                None => Ok(0),
            };
        }
        let n = usable.min(crate::sys::BATCH);
        // SAFETY: each item's destination is made once, and they live only inside this call,
        // where nothing else reads or writes the items' buffers and addresses.
        let dsts = (0..n).map(|i| unsafe { msgs.rx_dst(i) });
        let mut lens = [0usize; crate::sys::BATCH];
        let got = on_stack::<_, _, { crate::sys::BATCH }>(dsts, |dsts| {
            let got = self.rx(dsts)?;
            for (l, d) in lens.iter_mut().zip(dsts.iter()).take(got) {
                *l = d.len;
            }
            Ok(got)
        })?;
        for (i, &l) in lens.iter().enumerate().take(got) {
            msgs.complete(i, l);
        }
        Ok(got)
    }

    /// Receives into caller-described destinations (the reactor's path; no C arrays).
    pub fn recv_batch(&self, dsts: &mut [RxDst<'_>]) -> Result<usize> {
        self.rx(dsts)
    }

    /// As `recv_batch`, but a socket BIO with GRO hands a coalesced run over whole, in one
    /// destination, with its segment size (`RxDst::seg`), instead of splitting it across
    /// destinations through its stash (two copies). Destinations must hold `GRO_MAX`
    /// bytes for that (64 KiB); smaller ones, and other BIOs, get `recv_batch` (seg 0).
    pub fn recv_segments(&self, dsts: &mut [RxDst<'_>]) -> Result<usize> {
        let whole = dsts.iter().all(|d| d.buf.len() >= crate::sys::GRO_MAX);
        match &self.kind {
            Kind::Dgram(d) if whole => d.rx_segments(dsts, &self.stats),
            Kind::Conn(c) if whole && c.is_dgram() => {
                c.dgram_sock(self)?.rx_segments(dsts, &self.stats)
            }
            _ => self.rx(dsts),
        }
    }

    /// Sends a batch of datagrams (the reactor's path).
    pub fn send_batch(&self, descs: &[TxDesc<'_>]) -> TxOutcome {
        self.tx(descs)
    }

    /// BIO_dgram_get_effective_caps: what the far side of this BIO does with addresses.
    pub fn effective_caps(&self) -> u32 {
        match &self.kind {
            Kind::Conn(c) if !c.is_dgram() => 0,
            Kind::Dgram(_) | Kind::Conn(_) => {
                BIO_DGRAM_CAP_HANDLES_SRC_ADDR
                    | BIO_DGRAM_CAP_HANDLES_DST_ADDR
                    | BIO_DGRAM_CAP_PROVIDES_SRC_ADDR
                    | BIO_DGRAM_CAP_PROVIDES_DST_ADDR
            }
            Kind::Pair(p) => p.effective_caps(),
            Kind::Custom(c) => custom::effective_caps(self, c),
            _ => 0,
        }
    }

    fn local_enabled(&self) -> bool {
        match &self.kind {
            Kind::Dgram(d) => d.local_enabled(),
            Kind::Conn(c) => c.dgram_if_connected().is_some_and(|d| d.local_enabled()),
            Kind::Pair(p) => p.local_enabled(),
            Kind::Custom(c) => custom::local_enabled(self, c),
            _ => false,
        }
    }

    fn tx(&self, descs: &[TxDesc<'_>]) -> TxOutcome {
        match &self.kind {
            Kind::Dgram(d) => d.tx(descs, &self.stats),
            Kind::Conn(c) if c.is_dgram() => match c.dgram_sock(self) {
                Ok(d) => d.tx(descs, &self.stats),
                Err(e) => TxOutcome {
                    sent: 0,
                    err: Some(e),
                },
            },
            Kind::Pair(p) => p.tx(descs, &self.stats),
            Kind::Custom(c) => custom::tx(self, c, descs),
            _ => TxOutcome {
                sent: 0,
                err: Some(self.not_datagram()),
            },
        }
    }

    fn rx(&self, dsts: &mut [RxDst<'_>]) -> Result<usize> {
        match &self.kind {
            Kind::Dgram(d) => d.rx(dsts, &self.stats),
            Kind::Conn(c) if c.is_dgram() => c.dgram_sock(self)?.rx(dsts, &self.stats),
            Kind::Pair(p) => p.rx(dsts, &self.stats),
            Kind::Custom(c) => custom::rx(self, c, dsts),
            _ => Err(self.not_datagram()),
        }
    }

    // ---- zero-copy read side

    pub fn set_read_callback(&self, cb: zc::ReadAllocCb, arg: *mut std::ffi::c_void) -> Result<()> {
        if let Kind::Dgram(d) = &self.kind {
            // Buffers from the callback are datagram-sized: coalesced reads would not fit.
            d.disable_gro();
        }
        let mut r = self.zc_read.lock();
        r.alloc = cb;
        r.alloc_arg = arg;
        Ok(())
    }
    pub fn set_read_free_callback(&self, cb: zc::ReadFreeCb, arg: *mut std::ffi::c_void) {
        let mut r = self.zc_read.lock();
        r.free = cb;
        r.free_arg = arg;
    }
    pub fn push_read_buffer(&self, buf: RawBuf) {
        self.zc_read.lock().pool.push(buf);
    }
    pub fn set_read_batch(&self, n: usize) -> Result<()> {
        if n == 0 || n > BIO_DGRAM_MAX_READ_BATCH {
            return Err(Error::invalid(format!(
                "read batch must be 1..={BIO_DGRAM_MAX_READ_BATCH}, got {n}"
            )));
        }
        self.zc_read.lock().batch = n;
        Ok(())
    }

    /// Size asked of the allocation callback.
    fn zc_buf_len(&self) -> usize {
        let mtu = match &self.kind {
            Kind::Dgram(d) => d.mtu(),
            Kind::Pair(p) => p.mtu(),
            _ => 0,
        };
        mtu.max(2048)
    }

    /// BIO_read_dequeue: the next filled buffer, refilling with one batch when none is ready.
    pub fn read_dequeue(&self) -> Result<(RawBuf, usize)> {
        self.no_zero_copy_on_custom()?;
        self.zc_read_used.store(true, Relaxed);
        self.clear_retry();
        let mut r = self.zc_read.lock();
        if r.ready.is_empty() {
            let (want, len) = (r.batch, self.zc_buf_len());
            r.gather(want, len);
            if r.scratch.is_empty() {
                return Err(Error::bio(BIO_R_UNINITIALIZED)
                    .with("no read buffers: set a read callback or push buffers first"));
            }
            // Only the n address pairs in use are initialised (not all 64: 16 KiB per refill).
            let mut addrs: [MaybeUninit<(BioAddr, BioAddr)>; BIO_DGRAM_MAX_READ_BATCH] =
                [const { MaybeUninit::uninit() }; BIO_DGRAM_MAX_READ_BATCH];
            let mut lens = [0usize; BIO_DGRAM_MAX_READ_BATCH];
            let dsts = r.scratch.iter().zip(addrs.iter_mut()).map(|(b, a)| {
                let a = a.write((BioAddr::default(), BioAddr::default()));
                // SAFETY: the application lent the BIO this buffer of b.cap bytes until it is
                // dequeued (BIO_set_read_callback(3), BIO_push_read_buffer); it is in no
                // other destination and nothing else touches it during the call.
                let buf = unsafe { b.as_mut_slice() };
                RxDst::new(buf, Some(&mut a.0), Some(&mut a.1))
            });
            let got = on_stack::<_, Result<usize>, BIO_DGRAM_MAX_READ_BATCH>(dsts, |dsts| {
                let got = self.rx(dsts)?;
                for (l, d) in lens.iter_mut().zip(dsts.iter()).take(got) {
                    *l = d.len;
                }
                Ok(got)
            });
            let got = match got {
                Ok(n) => n,
                Err(e) => {
                    while let Some(b) = r.scratch.pop() {
                        r.pool.push(b);
                    }
                    drop(r);
                    let non_fatal = e.code == pack(ERR_LIB_BIO, BIO_R_NON_FATAL)
                        || (is_system(e.code) && is_retry_errno(reason_of(e.code) as i32));
                    if non_fatal {
                        self.retry(BIO_FLAGS_READ);
                        return Err(Error::would_block());
                    }
                    return Err(e);
                }
            };
            for (k, &len) in lens.iter().enumerate().take(got) {
                let buf = r.scratch[k];
                // SAFETY: entries below scratch.len() were initialised above; k < got <= that.
                let (src, dst) = unsafe { addrs[k].assume_init() };
                r.ready.push_back(zc::Filled { buf, len, src, dst });
            }
            while r.scratch.len() > got {
                let b = r.scratch.pop().expect("len > got");
                r.pool.push(b);
            }
            r.scratch.clear();
        }
        let f = r.ready.pop_front().expect("filled above");
        r.last_src = f.src;
        r.last_dst = f.dst;
        Ok((f.buf, f.len))
    }

    pub fn incoming_origin(&self) -> BioAddr {
        self.zc_read.lock().last_src
    }
    pub fn incoming_dest(&self) -> BioAddr {
        self.zc_read.lock().last_dst
    }

    // ---- zero-copy write side

    pub fn set_write_done_callback(&self, cb: zc::WriteDoneCb, arg: *mut std::ffi::c_void) {
        let mut w = self.zc_write.lock();
        w.done = cb;
        w.done_arg = arg as usize;
    }
    pub fn set_outgoing_dest(&self, a: Option<BioAddr>) {
        self.zc_write.lock().next_dst = a;
    }
    pub fn set_outgoing_origin(&self, a: Option<BioAddr>) {
        self.zc_write.lock().next_src = a;
    }
    pub fn write_queue(&self, ptr: *const u8, len: usize) -> Result<()> {
        self.no_zero_copy_on_custom()?;
        self.zc_write_used.store(true, Relaxed);
        let mut w = self.zc_write.lock();
        let (dst, src) = (w.next_dst, w.next_src);
        w.queue.push_back(zc::Queued { ptr, len, dst, src });
        Ok(())
    }
    pub fn queued_writes(&self) -> usize {
        self.zc_write.lock().queue.len()
    }

    /// BIO_flush: sends everything queued in as few syscalls as possible. Ok(true) when the
    /// queue is empty, Ok(false) (retry-write set) when the network would block.
    pub fn flush(&self) -> Result<bool> {
        self.clear_retry();
        let mut w = self.zc_write.lock();
        let mut blocked = false;
        while !w.queue.is_empty() {
            const CHUNK: usize = 256;
            let n = w.queue.len().min(CHUNK);
            let descs = w.queue.iter().map(|q| TxDesc {
                // SAFETY: BIO_write_queue(3): the buffer stays valid and unchanged until the
                // write-done callback reports it, which happens after this send.
                data: unsafe { q.as_slice() },
                dst: q.dst.as_ref(),
                src: q.src.as_ref(),
                ecn: 0,
            });
            let out = on_stack::<_, _, CHUNK>(descs, |descs| self.tx(descs));
            for _ in 0..out.sent {
                let q = w.queue.pop_front().expect("sent from queue");
                w.completions
                    .push((q.ptr as usize, q.len, BIO_DGRAM_WRITE_DONE_OK));
            }
            match out.err {
                None if out.sent == n => continue,
                None => {
                    blocked = true;
                    break;
                }
                Some(e) => {
                    let non_fatal = e.code == pack(ERR_LIB_BIO, BIO_R_NON_FATAL)
                        || (is_system(e.code) && is_retry_errno(reason_of(e.code) as i32));
                    if non_fatal {
                        blocked = true;
                        break;
                    }
                    let q = w.queue.pop_front().expect("failed item in queue");
                    w.completions
                        .push((q.ptr as usize, q.len, BIO_DGRAM_WRITE_DONE_FAILED));
                    e.queue("BIO_flush");
                }
            }
        }
        let mut done = std::mem::take(&mut w.completions);
        let (cb, arg) = (w.done, w.done_arg);
        drop(w);
        report_writes(cb, arg, &mut done, None);
        self.zc_write.lock().completions = done;
        if blocked {
            self.retry(BIO_FLAGS_WRITE);
        }
        Ok(!blocked)
    }

    /// The zero-copy calls hold this BIO's zero-copy locks across the kind's I/O, and a
    /// custom method's callbacks must run with no lock of ours held, so custom BIOs refuse
    /// them (BIO_flush on a custom BIO is the method's own ctrl).
    fn no_zero_copy_on_custom(&self) -> Result<()> {
        match &self.kind {
            Kind::Custom(_) => Err(Error::unsupported(
                "the zero-copy datagram API is not available on custom BIOs",
            )),
            _ => Ok(()),
        }
    }

    // ---- poll descriptors

    pub fn rpoll(&self) -> Result<BIO_POLL_DESCRIPTOR> {
        match &self.kind {
            Kind::Dgram(d) => d.poll_descriptor(),
            Kind::Pair(p) => p.rpoll(),
            Kind::Custom(c) => custom::poll_descriptor(self, c, BIO_CTRL_GET_RPOLL_DESCRIPTOR),
            Kind::Sock(s) => s.poll_descriptor(),
            Kind::Buffer => self.filter_next()?.rpoll(),
            Kind::Conn(c) => conn_poll(c),
            Kind::Accept(a) => listener_poll(a.fd()),
            Kind::Filter(f) => f.net_bio(false)?.rpoll(),
            Kind::Mem(_) | Kind::BytePair(_) | Kind::File(_) => Err(self.not_pollable()),
        }
    }
    pub fn wpoll(&self) -> Result<BIO_POLL_DESCRIPTOR> {
        match &self.kind {
            Kind::Dgram(d) => d.poll_descriptor(),
            Kind::Pair(_) => Err(Error::unsupported(
                "a datagram pair has no write poll descriptor",
            )),
            Kind::Custom(c) => custom::poll_descriptor(self, c, BIO_CTRL_GET_WPOLL_DESCRIPTOR),
            Kind::Sock(s) => s.poll_descriptor(),
            Kind::Buffer => self.filter_next()?.wpoll(),
            Kind::Conn(c) => conn_poll(c),
            Kind::Accept(a) => listener_poll(a.fd()),
            Kind::Filter(f) => f.net_bio(true)?.wpoll(),
            Kind::Mem(_) | Kind::BytePair(_) | Kind::File(_) => Err(self.not_pollable()),
        }
    }

    fn not_pollable(&self) -> Error {
        Error::unsupported(format!("a {} BIO has no poll descriptor", self.name()))
    }
    fn not_datagram(&self) -> Error {
        Error::unsupported(format!(
            "a {} BIO is a byte stream: datagram batches are not available",
            self.name()
        ))
    }

    pub fn wakeups(&self) -> u64 {
        match &self.kind {
            Kind::Pair(p) => p.wakeups(),
            _ => 0,
        }
    }
}

/// An accept BIO's poll descriptor: its listening socket, readable when a connection waits
/// (OpenSSL's accept BIO answers no poll descriptor; SSL_poll on a TCP listener needs one).
/// The peer of the connected socket under a stream BIO (socket, connect, or a buffer over
/// one), for SSL_get_peer_addr on TLS connections.
pub fn peer_of(b: &Bio) -> Option<std::net::SocketAddr> {
    let fd = match &b.kind {
        Kind::Sock(s) => s.fd(),
        Kind::Conn(c) => c.fd(),
        Kind::Buffer => return peer_of(&*b.next_bio()?),
        _ => return None,
    };
    (fd >= 0)
        .then(|| crate::sys::peer_addr(fd).ok())
        .flatten()
        .and_then(|a| a.to_socket_addr())
}

/// A connect BIO's descriptor: its datagram socket in datagram mode (none before it
/// connects), else its stream socket.
fn conn_poll(c: &conn::ConnectBio) -> Result<BIO_POLL_DESCRIPTOR> {
    if c.is_dgram() {
        return match c.dgram_if_connected() {
            Some(d) => d.poll_descriptor(),
            None => Err(Error::bio(BIO_R_UNINITIALIZED).with("not connected yet")),
        };
    }
    c.io().poll_descriptor()
}

fn listener_poll(fd: i32) -> Result<BIO_POLL_DESCRIPTOR> {
    if fd < 0 {
        return Err(
            Error::bio(BIO_R_UNINITIALIZED).with("no listening socket: BIO_do_accept first")
        );
    }
    Ok(BIO_POLL_DESCRIPTOR::fd(fd))
}

/// Calls the write-done callback for each completion, with `status` overriding when given.
fn report_writes(
    cb: zc::WriteDoneCb,
    arg: usize,
    done: &mut Vec<(usize, usize, c_int)>,
    status: Option<c_int>,
) {
    if let Some(cb) = cb {
        for &(p, l, s) in done.iter() {
            // SAFETY: the application's callback with its own buffer and argument.
            unsafe { cb(p as *const _, l, status.unwrap_or(s), arg as *mut _) };
        }
    }
    done.clear();
}

impl Drop for Bio {
    fn drop(&mut self) {
        if let Kind::Custom(c) = &self.kind {
            // BIO_free(3): the method's destroy runs once, on the last reference.
            c.destroy(self.handle());
        }
        let w = self.zc_write.get_mut();
        let mut pending: Vec<(usize, usize, c_int)> = w
            .queue
            .drain(..)
            .map(|q| (q.ptr as usize, q.len, BIO_DGRAM_WRITE_DONE_FREED))
            .collect();
        report_writes(w.done, w.done_arg, &mut pending, None);
        let r = self.zc_read.get_mut();
        let bufs = r.drain_all();
        if let Some(free) = r.free {
            for b in bufs {
                // SAFETY: returning the application's own buffer through its callback.
                unsafe { free(b.ptr.cast(), b.cap, r.free_arg) };
            }
        }
    }
}
