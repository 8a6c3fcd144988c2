//! BIO control: the chain operations behind BIO_push, BIO_pop and BIO_find_type, with what
//! they tell the BIOs of the chain (BIO_CTRL_PUSH/POP for SSL filters), and the typed BIO_ctrl.
//! Owns: the answers of the built-in kinds to BIO_ctrl. Must not read C memory: the
//! boundary (`ffi::bio::ctrl`) converts pointer arguments and out-parameters.

use std::ffi::{c_char, c_int, c_long};
use std::sync::Arc;

use super::addr::BioAddr;
use super::consts::*;
use super::file::flags_mode;
use super::msg::BIO_POLL_DESCRIPTOR;
use super::{Bio, acpt, bpair, conn, dgram, file, pair};
use crate::error::*;

impl Bio {
    /// BIO_push: appends `append` (with whatever follows it) to the end of `head`'s chain, or
    /// with None cuts the chain after its last BIO. SSL BIOs of the chain then take what
    /// follows them as their SSL's network BIO (BIO_CTRL_PUSH, bio_ssl.c).
    ///
    /// A push that would close a loop (`append`'s chain reaches a BIO of `head`'s, as
    /// BIO_push(b, b) does) is refused: OpenSSL links it, and every later walk of the chain
    /// (BIO_find_type, a filter's I/O, BIO_free_all) then runs forever.
    pub fn push_chain(head: &Arc<Bio>, append: Option<&Arc<Bio>>) -> Result<()> {
        let ours = head.chain();
        match append {
            None => {
                if let Some(last) = ours.last() {
                    last.pop_next();
                }
            }
            Some(a) => {
                if a.chain()
                    .iter()
                    .any(|x| ours.iter().any(|o| Arc::ptr_eq(o, x)))
                {
                    return Err(Error::invalid(
                        "BIO_push: the appended BIO is already in this chain (a loop)",
                    ));
                }
                Bio::push(head, a);
            }
        }
        for x in head.chain() {
            x.filter_pushed();
        }
        Ok(())
    }

    /// The BIOs of the chain from this one on, in order, stopping before a BIO already
    /// listed (so a loop made some other way cannot make a walk endless).
    pub fn chain(self: &Arc<Bio>) -> Vec<Arc<Bio>> {
        let mut out = vec![self.clone()];
        while let Some(n) = out.last().and_then(|b| b.next_bio()) {
            if out.iter().any(|b| Arc::ptr_eq(b, &n)) {
                break;
            }
            out.push(n);
        }
        out
    }

    /// BIO_pop: takes this BIO out of its chain and returns the BIO that followed it; a popped
    /// SSL BIO's SSL lets go of its network BIOs (bio_ssl.c).
    pub fn pop_chain(&self) -> Option<Arc<Bio>> {
        self.filter_popped();
        self.pop()
    }

    /// BIO_find_type: the first BIO of the chain from `this` on of type `type_id`: an exact
    /// type when it has a number in its low byte, else any BIO with all of its class bits.
    pub fn find_type(this: &Arc<Bio>, type_id: c_int) -> Option<Arc<Bio>> {
        this.chain().into_iter().find(|bio| {
            let t = bio.type_id();
            if type_id & BIO_TYPE_MASK != 0 {
                t == type_id
            } else {
                t & type_id != 0
            }
        })
    }

    /// BIO_CTRL_PUSH on an SSL BIO: the BIO now following it becomes its SSL's read and write
    /// BIO (the SSL takes a reference), unless it already is.
    pub(crate) fn filter_pushed(&self) {
        let (Some(f), Some(next)) = (self.filter(), self.next_bio()) else {
            return;
        };
        let Some(a) = f.attached() else { return };
        let (r, _) = a.engine.filter_bios();
        if !r.is_some_and(|r| Arc::ptr_eq(&r, &next)) {
            a.engine.filter_set_bios(Some(next));
        }
    }

    /// BIO_CTRL_POP on the popped SSL BIO itself: its SSL lets go of its network BIOs.
    pub(crate) fn filter_popped(&self) {
        if let Some(a) = self.filter().and_then(|f| f.attached()) {
            a.engine.filter_set_bios(None);
        }
    }
}

// ---- BIO_ctrl, typed

/// A `BIO_ctrl(cmd, larg, parg)` parsed once at the C boundary (`ffi::bio::ctrl`): what an
/// argument means is fixed by the command (and for some by `larg`), never by the BIO kind, so
/// the boundary reads pointer inputs here and notes only whether an out-parameter was given
/// (`out`); the kind says what to write in its [`CtrlAnswer`]. Inputs read through a pointer
/// are `None` for NULL: a kind that uses one refuses NULL itself, so kinds that ignore the
/// command still answer as before. Commands no kind here knows are `Other`.
pub enum BioCtrl<'a> {
    Reset,
    Eof,
    Info,
    SetClose(bool),
    GetClose,
    Pending,
    WPending,
    Flush,
    Dup,
    Push,
    /// BIO_CTRL_POP; `of_self`: parg is this BIO (the one being popped).
    Pop {
        of_self: bool,
    },
    PollDescriptor {
        write: bool,
        out: bool,
    },
    SetNbio(bool),
    SetFd {
        fd: Option<c_int>,
        close: bool,
    },
    GetFd,
    DoStateMachine,
    // memory BIOs
    SetMemEofReturn(c_int),
    // pairs (datagram and byte stream)
    SetWriteBufSize(c_long),
    GetWriteBufSize,
    GetWriteGuarantee,
    GetReadRequest,
    ResetReadRequest,
    ShutdownWr,
    MakePair(Option<&'a Bio>),
    DestroyPair,
    // BIO_f_buffer
    SetBuffSize,
    GetBuffNumLines,
    // datagram BIOs
    SetPeer(Option<BioAddr>),
    SetConnected(Option<BioAddr>),
    GetPeer {
        out: bool,
    },
    DetectPeer {
        out: bool,
    },
    GetMtu,
    SetMtu(c_long),
    QueryMtu,
    MtuExceeded,
    FallbackMtu,
    MtuOverhead,
    SetDontFrag(bool),
    MtuDiscover,
    SetTimeout {
        send: bool,
        tv: Option<libc::timeval>,
    },
    GetTimeout {
        send: bool,
        out: bool,
    },
    TimerExp,
    LocalAddrCap,
    GetLocalAddrEnable {
        out: bool,
    },
    SetLocalAddrEnable(bool),
    GetCaps,
    SetCaps(u32),
    EffectiveCaps,
    GetNoTrunc,
    SetNoTrunc(bool),
    /// BIO_dgram_set0_local_addr: the address, which the BIO takes ownership of.
    Set0LocalAddr(Option<BioAddr>),
    // connect and accept BIOs
    GetConnect {
        which: c_long,
        out: bool,
    },
    SetConnect {
        which: c_long,
        arg: CtrlArg<'a>,
    },
    SetSockType(c_int),
    GetSockType,
    GetDgramBio,
    SetConnectMode(c_int),
    GetAccept {
        which: c_long,
        out: bool,
    },
    SetAccept {
        which: c_long,
        arg: CtrlArg<'a>,
    },
    SetBindMode(c_int),
    GetBindMode,
    // file BIOs
    SetFilename {
        flags: c_long,
        path: Result<&'a str>,
    },
    FileSeek(c_long),
    FileTell,
    // SSL BIOs (BIO_C_SET_SSL is the boundary's: it converts the SSL)
    Renegotiate,
    SslMode(bool),
    GetSsl {
        out: bool,
    },
    Other(c_int),
}

/// The pointer argument of BIO_C_SET_CONNECT / BIO_C_SET_ACCEPT, read as `larg` says.
pub enum CtrlArg<'a> {
    Null,
    Str(Result<&'a str>),
    Addr(BioAddr),
    Int(c_int),
    /// Non-NULL, of no type this command reads.
    Unread,
}

/// A kind's answer to a [`BioCtrl`].
pub enum CtrlAnswer {
    /// BIO_ctrl returns this; nothing is written through parg.
    Ret(c_long),
    /// BIO_ctrl returns `.0` after the boundary writes `.1` through parg (if non-NULL).
    Out(c_long, CtrlOut),
    /// The same command goes to `to` (any kind, custom ones included), whose result is
    /// returned; then this BIO takes `to`'s retry state when `copy_retry` says so.
    Forward { to: Arc<Bio>, copy_retry: CopyRetry },
    /// The kind does not do this command: an "unsupported" error naming it (the datagram
    /// kinds' answer to commands they do not know).
    Unsupported,
}

/// What the boundary writes through parg.
pub enum CtrlOut {
    Int(c_int),
    /// A `char *` (or `const void *`) owned by the BIO.
    Ptr(*const c_char),
    Bytes(*const u8),
    Addr(BioAddr),
    Poll(BIO_POLL_DESCRIPTOR),
    Timeval(libc::timeval),
    /// An opaque handle from above this layer (BIO_get_ssl's SSL *).
    Handle(usize),
    /// Nothing is written: the BIO took the `BIO_ADDR` parg pointed at, which the boundary
    /// frees (BIO_dgram_set0_local_addr).
    Consumed,
}

/// After a forwarded command: what this BIO copies of the next BIO's retry state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CopyRetry {
    No,
    /// BIO_copy_next_retry: its retry flags.
    Flags,
    /// Its retry flags and reason (the SSL BIO's BIO_flush).
    FlagsAndReason,
}

use CtrlAnswer::{Out, Ret};

impl CopyRetry {
    /// Applies this to `bio` after `to` answered.
    pub fn apply(self, bio: &Bio, to: &Bio) {
        if self == CopyRetry::No {
            return;
        }
        bio.clear_retry();
        bio.set_flags(to.flags() & (BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY));
        if self == CopyRetry::FlagsAndReason {
            bio.set_retry_reason(to.retry_reason());
        }
    }
}

impl Bio {
    /// Answers a BIO_ctrl command on a built-in BIO, with OpenSSL's results per kind (custom
    /// BIOs never get here: their method's ctrl takes the raw arguments at the boundary).
    pub fn ctrl(&self, cmd: BioCtrl) -> Result<CtrlAnswer> {
        if self.filter().is_some() {
            return self.filter_ctrl(cmd);
        }
        if let Some(c) = self.conn() {
            // Stream or datagram mode: the connect BIO's own commands first.
            return self.conn_ctrl(c, cmd);
        }
        if self.is_stream() {
            return self.stream_ctrl(cmd);
        }
        match cmd {
            BioCtrl::Flush => return Ok(Ret(self.flush()? as c_long)),
            BioCtrl::PollDescriptor { write, out } => {
                if !out {
                    return Err(Error::null("desc"));
                }
                let d = if write { self.wpoll()? } else { self.rpoll()? };
                return Ok(Out(1, CtrlOut::Poll(d)));
            }
            BioCtrl::WPending => return Ok(Ret(self.queued_writes() as c_long)),
            _ => {}
        }
        if let Ok(d) = self.dgram() {
            return self.dgram_ctrl(d, cmd);
        }
        let p = self.pair()?;
        Ok(Ret(match cmd {
            BioCtrl::Pending => p.pending() as c_long,
            BioCtrl::Eof => p.eof() as c_long,
            BioCtrl::Reset => {
                p.reset();
                1
            }
            BioCtrl::GetClose | BioCtrl::SetClose(_) => 1,
            BioCtrl::SetWriteBufSize(n) => {
                if n < 0 {
                    return Err(Error::invalid("negative buffer size"));
                }
                p.set_write_buf_size(n as usize)?;
                1
            }
            BioCtrl::GetWriteBufSize => p.write_buf_size() as c_long,
            BioCtrl::GetWriteGuarantee => p.write_guarantee() as c_long,
            BioCtrl::MakePair(other) => {
                let other = other.ok_or_else(|| Error::null("bio"))?;
                pair::PairEnd::make_pair(p, other.pair()?)?;
                1
            }
            BioCtrl::DestroyPair => {
                p.destroy_pair();
                1
            }
            BioCtrl::GetMtu => p.mtu() as c_long,
            BioCtrl::SetMtu(n) => {
                if n <= 0 {
                    return Err(Error::invalid("MTU must be positive"));
                }
                p.set_mtu(n as usize)?;
                1
            }
            BioCtrl::GetCaps => p.caps() as c_long,
            BioCtrl::SetCaps(c) => {
                p.set_caps(c);
                1
            }
            BioCtrl::EffectiveCaps => p.effective_caps() as c_long,
            BioCtrl::GetNoTrunc => p.no_trunc() as c_long,
            BioCtrl::SetNoTrunc(on) => {
                p.set_no_trunc(on);
                1
            }
            BioCtrl::LocalAddrCap => p.local_addr_cap() as c_long,
            BioCtrl::GetLocalAddrEnable { out } => {
                if !out {
                    return Err(Error::null("parg"));
                }
                return Ok(Out(1, CtrlOut::Int(p.local_enabled() as c_int)));
            }
            BioCtrl::SetLocalAddrEnable(on) => {
                p.set_local_addr_enable(on)?;
                1
            }
            BioCtrl::Set0LocalAddr(a) => {
                p.set_default_src(a);
                // Ownership passes to us (BIO_dgram_set0_local_addr): the copy is kept.
                return Ok(Out(1, CtrlOut::Consumed));
            }
            BioCtrl::DetectPeer { .. } | BioCtrl::GetPeer { .. } => 0,
            _ => return Ok(CtrlAnswer::Unsupported),
        }))
    }

    /// A datagram socket: a `BIO_s_datagram`, or a connect BIO in datagram mode once
    /// connected.
    fn dgram_ctrl(&self, d: &dgram::DgramSock, cmd: BioCtrl) -> Result<CtrlAnswer> {
        // The address out-parameter: its sockaddr length (at least 1), or 0 for none.
        let out_addr = |a: Option<BioAddr>, out: bool| -> Result<CtrlAnswer> {
            if !out {
                return Err(Error::null("parg"));
            }
            Ok(match a {
                Some(a) => Out(a.sockaddr_len().max(1) as c_long, CtrlOut::Addr(a)),
                None => Ret(0),
            })
        };
        Ok(match cmd {
            BioCtrl::SetFd { fd, close } => {
                d.set_fd(fd.ok_or_else(|| Error::null("fd"))?, close)?;
                Ret(1)
            }
            BioCtrl::GetFd => {
                let fd = d.fd();
                Out(fd as c_long, CtrlOut::Int(fd))
            }
            BioCtrl::GetClose => Ret(d.get_close() as c_long),
            BioCtrl::SetClose(on) => {
                d.set_close(on);
                Ret(1)
            }
            BioCtrl::SetNbio(on) => {
                d.set_nbio(on)?;
                Ret(1)
            }
            BioCtrl::Pending => Ret(d.pending() as c_long),
            BioCtrl::Eof | BioCtrl::Info | BioCtrl::Reset => Ret(0),
            BioCtrl::SetPeer(a) => {
                d.set_peer(a);
                Ret(1)
            }
            BioCtrl::SetConnected(a) => {
                d.set_connected(a);
                Ret(1)
            }
            BioCtrl::GetPeer { out } => {
                // As OpenSSL: the (possibly cleared) peer is always copied out.
                if !out {
                    return Err(Error::null("parg"));
                }
                match d.peer() {
                    Some(a) => Out(a.sockaddr_len().max(1) as c_long, CtrlOut::Addr(a)),
                    None => Out(0, CtrlOut::Addr(BioAddr::default())),
                }
            }
            BioCtrl::DetectPeer { out } => out_addr(d.detect_peer(), out)?,
            BioCtrl::GetMtu => Ret(d.mtu() as c_long),
            BioCtrl::SetMtu(n) => {
                if n < 0 {
                    return Err(Error::invalid("negative MTU"));
                }
                d.set_mtu(n as usize);
                Ret(n)
            }
            BioCtrl::QueryMtu => Ret(d.query_mtu() as c_long),
            BioCtrl::MtuExceeded => Ret(d.mtu_exceeded() as c_long),
            BioCtrl::FallbackMtu => Ret(d.fallback_mtu() as c_long),
            BioCtrl::MtuOverhead => Ret(d.mtu_overhead() as c_long),
            BioCtrl::SetDontFrag(on) => {
                d.set_dont_frag(on)?;
                Ret(1)
            }
            BioCtrl::MtuDiscover => {
                d.set_dont_frag(true)?;
                Ret(1)
            }
            BioCtrl::SetTimeout { send, tv } => {
                d.set_timeout(send, tv.ok_or_else(|| Error::null("parg"))?)?;
                Ret(1)
            }
            BioCtrl::GetTimeout { send, out } => {
                if !out {
                    return Err(Error::null("parg"));
                }
                let tv = d.get_timeout(send)?;
                Out(size_of::<libc::timeval>() as c_long, CtrlOut::Timeval(tv))
            }
            BioCtrl::TimerExp => Ret(0),
            BioCtrl::LocalAddrCap => Ret(d.local_addr_cap() as c_long),
            BioCtrl::GetLocalAddrEnable { out } => {
                if !out {
                    return Err(Error::null("parg"));
                }
                Out(1, CtrlOut::Int(d.local_enabled() as c_int))
            }
            BioCtrl::SetLocalAddrEnable(on) => {
                d.set_local_addr_enable(on)?;
                Ret(1)
            }
            BioCtrl::EffectiveCaps | BioCtrl::GetCaps => Ret((BIO_DGRAM_CAP_HANDLES_SRC_ADDR
                | BIO_DGRAM_CAP_HANDLES_DST_ADDR
                | BIO_DGRAM_CAP_PROVIDES_SRC_ADDR
                | BIO_DGRAM_CAP_PROVIDES_DST_ADDR)
                as c_long),
            BioCtrl::GetNoTrunc => Ret(0),
            _ => CtrlAnswer::Unsupported,
        })
    }

    /// The byte-stream kinds, with OpenSSL's results (bss_sock.c, bss_mem.c, bss_bio.c):
    /// commands a kind does not know return 0 with nothing queued, as there.
    fn stream_ctrl(&self, cmd: BioCtrl) -> Result<CtrlAnswer> {
        if let Some(f) = self.file() {
            return file_ctrl(f, cmd);
        }
        if let Some(c) = self.conn() {
            return self.conn_ctrl(c, cmd);
        }
        if let Some(a) = self.acceptor() {
            return self.acpt_ctrl(a, cmd);
        }
        if let Some(s) = self.sock() {
            return Ok(match cmd {
                BioCtrl::SetFd { fd, close } => {
                    s.set_fd(fd.ok_or_else(|| Error::null("fd"))?, close)?;
                    self.clear_flags(!0);
                    Ret(1)
                }
                BioCtrl::GetFd => {
                    let fd = s.fd();
                    if fd >= 0 {
                        Out(fd as c_long, CtrlOut::Int(fd))
                    } else {
                        Ret(fd as c_long)
                    }
                }
                BioCtrl::GetClose => Ret(s.get_close() as c_long),
                BioCtrl::SetClose(on) => {
                    s.set_close(on);
                    Ret(1)
                }
                BioCtrl::Dup | BioCtrl::Flush => Ret(1),
                BioCtrl::Eof => Ret((self.flags() & BIO_FLAGS_IN_EOF != 0) as c_long),
                // Both directions answer with the socket's descriptor.
                BioCtrl::PollDescriptor { out, .. } => {
                    if !out {
                        return Err(Error::null("desc"));
                    }
                    Out(1, CtrlOut::Poll(self.rpoll()?))
                }
                // OpenSSL's socket BIO has no BIO_C_SET_NBIO: BIO_set_nbio returns 0 and
                // leaves the fd as it is (use BIO_socket_nbio on the fd).
                _ => Ret(0),
            });
        }
        if let Some(m) = self.mem() {
            return Ok(match cmd {
                BioCtrl::Reset => {
                    m.reset();
                    Ret(1)
                }
                BioCtrl::Eof => Ret((m.pending() == 0) as c_long),
                BioCtrl::SetMemEofReturn(v) => {
                    m.set_eof_return(v);
                    Ret(1)
                }
                BioCtrl::Info => {
                    let (p, n) = m.data();
                    Out(n as c_long, CtrlOut::Bytes(p))
                }
                BioCtrl::GetClose => Ret(m.get_close() as c_long),
                BioCtrl::SetClose(on) => {
                    m.set_close(on);
                    Ret(1)
                }
                BioCtrl::Pending => Ret(m.pending() as c_long),
                BioCtrl::WPending => Ret(0),
                BioCtrl::Dup | BioCtrl::Flush => Ret(1),
                _ => Ret(0),
            });
        }
        if let Some(p) = self.byte_pair() {
            return Ok(Ret(match cmd {
                BioCtrl::SetWriteBufSize(n) => {
                    if n < 0 {
                        return Err(Error::invalid("negative buffer size"));
                    }
                    p.set_write_buf_size(n as usize)?;
                    1
                }
                BioCtrl::GetWriteBufSize => p.write_buf_size() as c_long,
                BioCtrl::MakePair(other) => {
                    let other = other.ok_or_else(|| Error::null("bio"))?;
                    let o = other.byte_pair().ok_or_else(|| {
                        Error::invalid(format!(
                            "cannot pair a BIO pair half with a {} BIO",
                            other.name()
                        ))
                    })?;
                    bpair::BytePair::make_pair(p, o)?;
                    1
                }
                BioCtrl::DestroyPair => {
                    p.destroy();
                    1
                }
                BioCtrl::GetWriteGuarantee => p.write_guarantee() as c_long,
                BioCtrl::GetReadRequest => p.read_request() as c_long,
                BioCtrl::ResetReadRequest => {
                    p.reset_read_request();
                    1
                }
                BioCtrl::ShutdownWr => {
                    p.shutdown_wr();
                    1
                }
                // bss_bio.c clears this half's buffer and returns 0.
                BioCtrl::Reset => {
                    p.reset();
                    0
                }
                BioCtrl::GetClose | BioCtrl::SetClose(_) => 1,
                BioCtrl::Pending => p.pending() as c_long,
                BioCtrl::WPending => p.wpending() as c_long,
                BioCtrl::Flush => 1,
                BioCtrl::Eof => p.eof() as c_long,
                _ => 0,
            }));
        }
        // BIO_f_buffer: nothing is buffered here, so its own sizes are accepted and ignored;
        // everything else is the next BIO's answer (0 without one).
        match cmd {
            BioCtrl::SetBuffSize | BioCtrl::Push | BioCtrl::Pop { .. } => return Ok(Ret(1)),
            BioCtrl::GetBuffNumLines => return Ok(Ret(0)),
            _ => {}
        }
        Ok(match self.next_bio() {
            Some(to) => CtrlAnswer::Forward {
                to,
                copy_retry: CopyRetry::Flags,
            },
            None => Ret(0),
        })
    }

    /// A connect BIO, following bss_conn.c `conn_ctrl` (unknown commands: 0).
    fn conn_ctrl(&self, c: &conn::ConnectBio, cmd: BioCtrl) -> Result<CtrlAnswer> {
        Ok(match cmd {
            BioCtrl::Reset => {
                c.reset(self);
                Ret(0)
            }
            BioCtrl::DoStateMachine => Ret(step_result(c.state(self))),
            // bss_conn.c answers only with a non-NULL out-pointer (so BIO_get_conn_ip_family
            // and BIO_get_conn_mode, which pass NULL, return 0 there).
            BioCtrl::GetConnect { out: false, .. } => Ret(0),
            BioCtrl::GetConnect { which, .. } => match which {
                0 => Out(1, CtrlOut::Ptr(c.hostname_ptr())),
                1 => Out(1, CtrlOut::Ptr(c.port_ptr())),
                2 => Out(1, CtrlOut::Ptr(c.address_ptr().cast())),
                3 => Ret(c.family() as c_long),
                4 => Ret(c.mode() as c_long),
                _ => Ret(0),
            },
            BioCtrl::SetConnect {
                arg: CtrlArg::Null, ..
            } => Ret(1),
            BioCtrl::SetConnect { which, arg } => match (which, arg) {
                (0, CtrlArg::Str(s)) => {
                    c.set_hostname(s?)?;
                    Ret(1)
                }
                (1, CtrlArg::Str(s)) => {
                    c.set_port(s?)?;
                    Ret(1)
                }
                (2, CtrlArg::Addr(a)) => {
                    c.set_address(&a)?;
                    Ret(1)
                }
                (3, CtrlArg::Int(f)) => {
                    c.set_family(f);
                    Ret(1)
                }
                _ => Ret(0),
            },
            BioCtrl::SetSockType(t) => {
                c.set_sock_type(t)?;
                Ret(1)
            }
            BioCtrl::GetSockType => Ret(c.sock_type() as c_long),
            BioCtrl::GetDgramBio => {
                return Err(Error::unsupported(
                    "BIO_get0_dgram_bio: a datagram connect BIO here is itself the datagram BIO",
                ));
            }
            BioCtrl::SetNbio(on) => {
                c.set_nbio(on);
                Ret(1)
            }
            BioCtrl::SetConnectMode(m) => {
                c.set_mode(m);
                Ret(1)
            }
            BioCtrl::GetFd => {
                if !c.init() {
                    return Ok(Ret(-1));
                }
                Out(c.fd() as c_long, CtrlOut::Int(c.fd()))
            }
            BioCtrl::GetClose => Ret(c.io().get_close() as c_long),
            BioCtrl::SetClose(on) => {
                c.io().set_close(on);
                Ret(1)
            }
            BioCtrl::Pending | BioCtrl::WPending => Ret(0),
            BioCtrl::Flush | BioCtrl::Dup => Ret(1),
            BioCtrl::Eof => Ret((self.flags() & BIO_FLAGS_IN_EOF != 0) as c_long),
            BioCtrl::PollDescriptor { out, .. } => {
                if !out {
                    return Err(Error::null("desc"));
                }
                match self.rpoll() {
                    Ok(d) => Out(1, CtrlOut::Poll(d)),
                    Err(_) => Ret(0),
                }
            }
            // Datagram mode, connected: the datagram socket's commands (peer, MTU, caps...).
            cmd => match c.dgram_if_connected() {
                Some(d) => return self.dgram_ctrl(d, cmd),
                None => Ret(0),
            },
        })
    }

    /// An accept BIO, following bss_acpt.c `acpt_ctrl` (unknown commands: 0).
    fn acpt_ctrl(&self, a: &acpt::AcceptBio, cmd: BioCtrl) -> Result<CtrlAnswer> {
        Ok(match cmd {
            BioCtrl::Reset => {
                a.reset(self);
                Ret(0)
            }
            BioCtrl::DoStateMachine => Ret(step_result(a.state(self))),
            BioCtrl::SetAccept {
                which,
                arg: CtrlArg::Null,
            } => {
                match which {
                    2 => a.set_nbio_accept(false),
                    5 => a.set_tfo(false),
                    _ => {}
                }
                Ret(1)
            }
            BioCtrl::SetAccept { which, arg } => match (which, arg) {
                (0, CtrlArg::Str(s)) => {
                    a.set_name(s?)?;
                    Ret(1)
                }
                (1, CtrlArg::Str(s)) => {
                    a.set_port(s?)?;
                    Ret(1)
                }
                (2, _) => {
                    a.set_nbio_accept(true);
                    Ret(1)
                }
                (3, _) => {
                    return Err(Error::unsupported(
                        "BIO_set_accept_bios is not supported: push a filter on each accepted BIO",
                    ));
                }
                (4, CtrlArg::Int(f)) => {
                    a.set_family(f);
                    Ret(1)
                }
                (5, _) => {
                    a.set_tfo(true);
                    Ret(1)
                }
                _ => Ret(1),
            },
            BioCtrl::SetNbio(on) => {
                a.set_nbio(on);
                Ret(1)
            }
            BioCtrl::SetFd { fd, close } => {
                a.set_fd(fd.ok_or_else(|| Error::null("fd"))?, close);
                Ret(1)
            }
            BioCtrl::GetFd => {
                if !a.init() {
                    return Ok(Ret(-1));
                }
                Out(a.fd() as c_long, CtrlOut::Int(a.fd()))
            }
            BioCtrl::GetAccept { .. } if !a.init() => Ret(-1),
            BioCtrl::GetAccept { which, out } => match which {
                0..=3 if out => {
                    let which = [
                        acpt::Name::AcceptHost,
                        acpt::Name::AcceptPort,
                        acpt::Name::PeerHost,
                        acpt::Name::PeerPort,
                    ][which as usize];
                    Out(1, CtrlOut::Ptr(a.name_ptr(which)))
                }
                4 => Ret(a.family() as c_long),
                _ => Ret(-1),
            },
            BioCtrl::GetClose => Ret(a.get_close() as c_long),
            BioCtrl::SetClose(on) => {
                a.set_close(on);
                Ret(1)
            }
            BioCtrl::Pending | BioCtrl::WPending => Ret(0),
            BioCtrl::Flush | BioCtrl::Dup => Ret(1),
            BioCtrl::SetBindMode(m) => {
                a.set_bind_mode(m);
                Ret(1)
            }
            BioCtrl::GetBindMode => Ret(a.bind_mode() as c_long),
            BioCtrl::Eof => match self.next_bio() {
                Some(to) => CtrlAnswer::Forward {
                    to,
                    copy_retry: CopyRetry::No,
                },
                None => Ret(0),
            },
            _ => Ret(0),
        })
    }

    /// An SSL BIO, following bio_ssl.c `ssl_ctrl`: without an SSL everything returns 0;
    /// commands it does not handle go to the SSL's read BIO.
    fn filter_ctrl(&self, cmd: BioCtrl) -> Result<CtrlAnswer> {
        let f = self
            .filter()
            .ok_or_else(|| Error::internal("not an SSL BIO"))?;
        let Some(a) = f.attached() else {
            return Ok(Ret(0));
        };
        let e = &a.engine;
        let (rbio, wbio) = e.filter_bios();
        let pass = |b: Option<Arc<Bio>>, copy_retry| match b {
            Some(to) => CtrlAnswer::Forward { to, copy_retry },
            None => Ret(0),
        };
        Ok(match cmd {
            BioCtrl::Info | BioCtrl::Dup | BioCtrl::Other(BIO_CTRL_SET_CALLBACK) => Ret(0),
            BioCtrl::Reset => {
                return Err(Error::unsupported(
                    "BIO_reset on an SSL BIO (SSL_clear) is not supported: make a new SSL",
                ));
            }
            BioCtrl::Renegotiate => {
                return Err(Error::unsupported(
                    "renegotiation is not supported (rustls does not renegotiate)",
                ));
            }
            BioCtrl::SslMode(client) => {
                e.filter_set_client(client);
                Ret(1)
            }
            BioCtrl::GetSsl { out: false } => Ret(0),
            BioCtrl::GetSsl { out: true } => Out(1, CtrlOut::Handle(a.handle)),
            BioCtrl::GetClose => Ret(f.get_close() as c_long),
            BioCtrl::SetClose(on) => {
                f.set_close(on);
                Ret(1)
            }
            BioCtrl::WPending => pass(wbio, CopyRetry::No),
            BioCtrl::Pending => match e.filter_pending() {
                0 => pass(rbio, CopyRetry::No),
                n => Ret(n as c_long),
            },
            BioCtrl::Flush => {
                self.clear_retry();
                pass(wbio, CopyRetry::FlagsAndReason)
            }
            BioCtrl::Push => {
                self.filter_pushed();
                Ret(1)
            }
            BioCtrl::Pop { of_self } => {
                if of_self {
                    e.filter_set_bios(None);
                }
                Ret(1)
            }
            BioCtrl::DoStateMachine => match f.handshake(self) {
                Ok(()) => Ret(1),
                Err(e) if e.is_would_block() => Ret(-1),
                Err(e) => {
                    e.queue("BIO_do_handshake");
                    Ret(-1)
                }
            },
            BioCtrl::PollDescriptor { write, .. } => {
                match if write { self.wpoll() } else { self.rpoll() } {
                    Ok(d) => Out(1, CtrlOut::Poll(d)),
                    Err(_) => Ret(0),
                }
            }
            _ => pass(rbio, CopyRetry::No),
        })
    }
}

/// A state machine's outcome as BIO_do_connect/BIO_do_accept return it: the failure's value
/// (0 or -1, as OpenSSL's step) with the error queued.
fn step_result(r: std::result::Result<i32, (i32, Error)>) -> c_long {
    match r {
        Ok(v) => v as c_long,
        Err((v, e)) => {
            e.queue("BIO_do_handshake");
            v as c_long
        }
    }
}

/// A file BIO, following bss_file.c (unknown commands: 0).
fn file_ctrl(f: &file::FileBio, cmd: BioCtrl) -> Result<CtrlAnswer> {
    Ok(match cmd {
        BioCtrl::SetFilename { flags, path } => {
            f.open(path?, flags_mode(flags)?)?;
            f.set_close(flags & BIO_CLOSE as c_long != 0);
            Ret(1)
        }
        BioCtrl::Reset => {
            f.seek(0)?;
            Ret(0)
        }
        // fseek(3)'s result, as bss_file.c returns it: 0 on success.
        BioCtrl::FileSeek(off) => {
            if off < 0 {
                return Err(Error::invalid("negative file offset"));
            }
            f.seek(off as u64)?;
            Ret(0)
        }
        BioCtrl::FileTell | BioCtrl::Info => Ret(f.tell()? as c_long),
        BioCtrl::Eof => Ret(f.eof() as c_long),
        BioCtrl::Flush => {
            f.flush()?;
            Ret(1)
        }
        BioCtrl::GetClose => Ret(f.get_close() as c_long),
        BioCtrl::SetClose(on) => {
            f.set_close(on);
            Ret(1)
        }
        BioCtrl::Dup => Ret(1),
        BioCtrl::Pending | BioCtrl::WPending => Ret(0),
        BioCtrl::GetFd => Out(0, CtrlOut::Int(-1)),
        _ => Ret(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bio::{METHOD_BUFFER, METHOD_DGRAM, METHOD_DGRAM_MEM, METHOD_MEM};

    fn ret(a: Result<CtrlAnswer>) -> Option<c_long> {
        match a {
            Ok(Ret(v)) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn memory_bio_answers_as_bss_mem() {
        let m = Bio::new(&METHOD_MEM);
        m.write(b"hello").unwrap();
        assert_eq!(ret(m.ctrl(BioCtrl::Pending)), Some(5));
        assert_eq!(ret(m.ctrl(BioCtrl::Eof)), Some(0));
        // Unknown commands: 0 with nothing queued (bss_mem.c).
        assert_eq!(ret(m.ctrl(BioCtrl::Other(12345))), Some(0));
        assert!(matches!(
            m.ctrl(BioCtrl::Info),
            Ok(Out(5, CtrlOut::Bytes(_)))
        ));
    }

    #[test]
    fn datagram_kinds_refuse_unknown_commands() {
        let p = Bio::new(&METHOD_DGRAM_MEM);
        assert!(matches!(
            p.ctrl(BioCtrl::Other(12345)),
            Ok(CtrlAnswer::Unsupported)
        ));
        assert_eq!(ret(p.ctrl(BioCtrl::GetPeer { out: true })), Some(0));
        // A poll descriptor needs somewhere to go, checked before the kind is asked.
        let d = Bio::new(&METHOD_DGRAM);
        let e = d
            .ctrl(BioCtrl::PollDescriptor {
                write: false,
                out: false,
            })
            .err()
            .expect("NULL out-parameter refused");
        assert!(e.to_string().contains("desc"), "{e}");
    }

    #[test]
    fn buffer_filter_forwards_to_its_next_bio() {
        let b = Bio::new(&METHOD_BUFFER);
        assert_eq!(ret(b.ctrl(BioCtrl::Pending)), Some(0));
        let m = Bio::new(&METHOD_MEM);
        Bio::push_chain(&b, Some(&m)).unwrap();
        match b.ctrl(BioCtrl::Pending) {
            Ok(CtrlAnswer::Forward { to, copy_retry }) => {
                assert!(Arc::ptr_eq(&to, &m));
                assert!(copy_retry == CopyRetry::Flags);
            }
            _ => panic!("expected a forward to the next BIO"),
        }
        // Its own sizes are accepted and ignored.
        assert_eq!(ret(b.ctrl(BioCtrl::SetBuffSize)), Some(1));
    }

    /// A push that would close a loop is refused and the chain is left as it was (fuzz
    /// input fuzz/corpus/bio_calls/timeout-push-loop: BIO_find_type then never returned).
    #[test]
    fn push_refuses_a_loop() {
        let a = Bio::new(&METHOD_BUFFER);
        let b = Bio::new(&METHOD_MEM);
        assert!(Bio::push_chain(&a, Some(&a)).is_err());
        assert!(a.next_bio().is_none());
        Bio::push_chain(&a, Some(&b)).unwrap();
        assert!(Bio::push_chain(&a, Some(&b)).is_err());
        assert!(Bio::push_chain(&b, Some(&a)).is_err());
        assert!(b.next_bio().is_none());
        assert_eq!(a.chain().len(), 2);
        assert!(Bio::find_type(&a, BIO_TYPE_MEM).is_some_and(|x| Arc::ptr_eq(&x, &b)));
        assert!(Bio::find_type(&b, BIO_TYPE_BUFFER).is_none());
    }
}
