//! The SSL object model: one `SSL *` over a QUIC listener, connection or stream. All objects
//! of one listener (or one client connection) share a `Domain`: one lock over one `Port`.
//! Implicit event handling: every call ticks the domain first, as OpenSSL's QUIC does.
//! Must not touch: sockets directly (the port does), `extern "C"` (ffi does).
#![deny(unsafe_code)]

pub mod alpn;
pub mod ciphers;
pub mod clientauth;
pub mod ctx;
pub mod domain;
pub mod filter;
pub mod fork;
mod peer;
pub mod poll;
pub mod session;
pub mod settings;
mod tls_conn;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::sync::Mutex;
use quinn_proto::{Dir, Side, StreamId, VarInt};

use crate::bio::Bio;
pub use crate::consts::*;
use crate::error::*;
use crate::quic::conn::{RecvEnd, SendError};
use crate::quic::engine::{ConnId, Engine};
use crate::quic::port::{Port, UNADDRESSED_PEER};
pub use ctx::{Method, SslCtx, VerifyResult};
pub use domain::{Domain, DomainGuard, Interest, PortGuard, PortId, current_owner};
pub(crate) use tls_conn::tls_listen_fd;
use tls_conn::tls_null_domain;
pub use tls_conn::{TlsListenerObj, TlsObj};

const SSL_R_BAD_VALUE_CODE: u32 = SSL_R_BAD_VALUE;

pub const SSL_DEFAULT_STREAM_MODE_NONE: u32 = 0;
pub const SSL_DEFAULT_STREAM_MODE_AUTO_BIDI: u32 = 1;
pub const SSL_DEFAULT_STREAM_MODE_AUTO_UNI: u32 = 2;
pub const SSL_STREAM_TYPE_NONE: i32 = 0;
pub const SSL_STREAM_TYPE_READ: i32 = 1;
pub const SSL_STREAM_TYPE_WRITE: i32 = 2;
pub const SSL_STREAM_TYPE_BIDI: i32 = 3;
pub const SSL_STREAM_STATE_NONE: i32 = 0;
pub const SSL_STREAM_STATE_OK: i32 = 1;
pub const SSL_STREAM_STATE_WRONG_DIR: i32 = 2;
pub const SSL_STREAM_STATE_FINISHED: i32 = 3;
pub const SSL_STREAM_STATE_RESET_LOCAL: i32 = 4;
pub const SSL_STREAM_STATE_RESET_REMOTE: i32 = 5;
pub const SSL_STREAM_STATE_CONN_CLOSED: i32 = 6;
pub const SSL_INCOMING_STREAM_POLICY_AUTO: i32 = 0;
pub const SSL_INCOMING_STREAM_POLICY_ACCEPT: i32 = 1;
pub const SSL_INCOMING_STREAM_POLICY_REJECT: i32 = 2;
pub const SSL_SHUTDOWN_FLAG_RAPID: u64 = 1;
pub const SSL_SHUTDOWN_FLAG_NO_STREAM_FLUSH: u64 = 2;
pub const SSL_SHUTDOWN_FLAG_NO_BLOCK: u64 = 4;
pub const SSL_SHUTDOWN_FLAG_WAIT_PEER: u64 = 8;
pub const SSL_CONN_CLOSE_FLAG_LOCAL: u32 = 1;
pub const SSL_CONN_CLOSE_FLAG_TRANSPORT: u32 = 2;

/// Client settings that apply when the connection starts.
#[derive(Default)]
struct Pre {
    peer: Option<SocketAddr>,
    host: Option<String>,
    sni: Option<String>,
    alpn: Option<Vec<Vec<u8>>>,
    /// Made by SSL_new_from_listener: no peer autodetection.
    outgoing: bool,
}

pub struct Conn {
    domain: Arc<Domain>,
    port: PortId,
    /// The engine connection's epoch (see `quic::engine::Conn::epoch`), once it exists.
    epoch: std::sync::OnceLock<Arc<std::sync::atomic::AtomicU64>>,
    handle: Mutex<Option<ConnId>>,
    pre: Mutex<Pre>,
    listener: Option<Arc<Ssl>>,
    /// SSL_listen_ex moved a listener's incoming connection into this object (made by
    /// SSL_new): from then on its domain, port and listener are these.
    peeled: std::sync::OnceLock<Peeled>,
    verify: Arc<VerifyResult>,
    default_stream: Mutex<Option<StreamId>>,
    default_st: StreamState,
    default_mode: AtomicU32,
    /// SSL_INCOMING_STREAM_POLICY_* and its application error code.
    policy: Mutex<(i32, u64)>,
    alpn: std::sync::OnceLock<Vec<u8>>,
    closing: AtomicBool,
    /// A background thread serves this connection's domain (thread-assisted mode).
    assisted: AtomicBool,
    close_code: AtomicU64,
    pub close_reason: std::sync::OnceLock<std::ffi::CString>,
}

/// Where a peeled connection (SSL_listen_ex) lives, and its client-certificate outcome
/// (the TLS session began before the object was chosen).
struct Peeled {
    domain: Arc<Domain>,
    port: PortId,
    listener: Arc<Ssl>,
    verify: Option<Arc<VerifyResult>>,
}

/// What an application did and saw on one stream (beside quinn's own stream state).
#[derive(Default)]
pub struct StreamState {
    fin_seen: AtomicBool,
    concluded: AtomicBool,
    reset_local: Mutex<Option<u64>>,
    reset_remote: Mutex<Option<u64>>,
    stopped: Mutex<Option<u64>>,
    /// Bytes taken from quinn for SSL_peek/SSL_pending, read before quinn's.
    peek: Mutex<Vec<u8>>,
}

/// A stream object (SSL_new_stream / SSL_accept_stream); it keeps its connection alive.
pub struct StreamObj {
    pub conn: Arc<Ssl>,
    pub id: StreamId,
    st: StreamState,
}

pub struct Listener {
    pub domain: Arc<Domain>,
    pub port: PortId,
    /// The domain object it was made from (SSL_new_listener_from), kept alive.
    pub parent: Option<Arc<Ssl>>,
    /// The engine's accept-queue epoch (see `quic::engine::Engine::accept_epoch`).
    epoch: Arc<std::sync::atomic::AtomicU64>,
    listening: AtomicBool,
    /// How the application takes connections: 0 not yet, PEEL_ACCEPT (SSL_accept_connection)
    /// or PEEL_LISTEN_EX (SSL_listen_ex); the two are not mixed on one listener.
    take: std::sync::atomic::AtomicU8,
}

const PEEL_ACCEPT: u8 = 1;
const PEEL_LISTEN_EX: u8 = 2;

impl Listener {
    /// Records how connections are taken; SSL_accept_connection and SSL_listen_ex do not
    /// mix on one listener (OpenSSL 4.0).
    fn take_by(&self, how: u8) -> Result<()> {
        match self.take.compare_exchange(0, how, Relaxed, Relaxed) {
            Ok(_) => Ok(()),
            Err(was) if was == how => Ok(()),
            Err(_) => Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("SSL_listen_ex and SSL_accept_connection are not mixed on one listener")),
        }
    }
}

/// A domain object (SSL_new_domain): listeners made from it share its reactor.
pub struct DomainObj {
    pub domain: Arc<Domain>,
}

// One listener per port and one connection object per connection: the size difference
// does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Kind {
    Domain(DomainObj),
    Tls(TlsObj),
    /// The listener API over TCP: a listening socket; accepted connections are `Tls`.
    TlsListener(TlsListenerObj),
    Listener(Listener),
    Conn(Conn),
    Stream(StreamObj),
}

pub struct Ssl {
    pub ctx: Arc<SslCtx>,
    pub kind: Kind,
    last_error: AtomicI32,
    /// The blocking mode the application asked for (SSL_set_blocking_mode); whether a call
    /// really blocks also depends on the domain's flags and on pollable network BIOs.
    blocking: AtomicBool,
    /// SSL_poll's last answer for this object, reused while the epoch has not moved.
    poll_cache: poll::PollCache,
    /// Its sessions (SSL_set_session, SSL_get_session).
    pub sessions: Arc<session::Slot>,
}

fn want_read() -> Error {
    Error::would_block()
}

pub const SSL_DOMAIN_FLAG_SINGLE_THREAD: u64 = 1;
pub const SSL_DOMAIN_FLAG_MULTI_THREAD: u64 = 2;
pub const SSL_DOMAIN_FLAG_THREAD_ASSISTED: u64 = 4;
pub const SSL_DOMAIN_FLAG_BLOCKING: u64 = 8;
pub const SSL_DOMAIN_FLAG_LEGACY_BLOCKING: u64 = 16;

/// The flags a new domain gets: `requested` if it names a threading model, else the
/// context's flags plus `requested` (OpenSSL's rule), checked.
pub fn domain_flags(ctx: &SslCtx, requested: u64) -> Result<u64> {
    let model = SSL_DOMAIN_FLAG_SINGLE_THREAD
        | SSL_DOMAIN_FLAG_MULTI_THREAD
        | SSL_DOMAIN_FLAG_THREAD_ASSISTED;
    if requested & model == 0 {
        check_domain_flags(ctx.domain_flags() | requested)
    } else {
        check_domain_flags(requested)
    }
}

/// Validates SSL_DOMAIN_FLAG_* bits as OpenSSL does: unknown bits are unsupported, SINGLE
/// excludes MULTI and THREAD_ASSISTED; THREAD_ASSISTED implies MULTI; no model means MULTI.
pub fn check_domain_flags(mut f: u64) -> Result<u64> {
    const ALL: u64 = 31;
    if f & !ALL != 0 {
        return Err(
            Error::ssl(ERR_R_UNSUPPORTED).with(format!("unknown domain flags {:#x}", f & !ALL))
        );
    }
    if f & SSL_DOMAIN_FLAG_SINGLE_THREAD != 0
        && f & (SSL_DOMAIN_FLAG_MULTI_THREAD | SSL_DOMAIN_FLAG_THREAD_ASSISTED) != 0
    {
        return Err(Error::ssl(ERR_R_PASSED_INVALID_ARGUMENT)
            .with("SINGLE_THREAD excludes MULTI_THREAD and THREAD_ASSISTED"));
    }
    if f & (SSL_DOMAIN_FLAG_SINGLE_THREAD | SSL_DOMAIN_FLAG_THREAD_ASSISTED) == 0 {
        f |= SSL_DOMAIN_FLAG_MULTI_THREAD;
    }
    if f & SSL_DOMAIN_FLAG_THREAD_ASSISTED != 0 {
        f |= SSL_DOMAIN_FLAG_MULTI_THREAD;
    }
    Ok(f)
}

impl Ssl {
    fn make(ctx: Arc<SslCtx>, kind: Kind, blocking: bool) -> Arc<Ssl> {
        Arc::new(Ssl {
            ctx,
            kind,
            last_error: AtomicI32::new(0),
            blocking: AtomicBool::new(blocking),
            poll_cache: poll::PollCache::default(),
            sessions: Arc::new(session::Slot::new()),
        })
    }

    /// SSL_new: a client connection (QUIC client methods only).
    pub fn new_client(ctx: Arc<SslCtx>) -> Result<Arc<Ssl>> {
        if ctx.method.is_tls() {
            let role = match ctx.method {
                Method::TlsClient => Some(false),
                Method::TlsServer => Some(true),
                _ => None,
            };
            return Ok(Ssl::make(ctx, Kind::Tls(TlsObj::new(role, None)), true));
        }
        if ctx.is_server() {
            return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("SSL_new on a QUIC server context: use SSL_new_listener"));
        }
        let domain = Domain::new(Engine::new(None), domain_flags(&ctx, 0)?);
        let s = Ssl::make(ctx, Kind::Conn(Conn::new(domain, 0, None)), true);
        s.domain().owner.store(Arc::as_ptr(&s) as usize, Relaxed);
        Ok(s)
    }

    fn listener_engine(ctx: &SslCtx, validate: bool) -> Result<Engine> {
        if !ctx.can_serve() {
            return Err(
                Error::ssl(SSL_R_NOT_SERVER).with("a QUIC listener needs OSSL_QUIC_server_method")
            );
        }
        let mut engine = Engine::new(Some(ctx.server_config()?));
        engine.set_validate(validate);
        Ok(engine)
    }

    /// SSL_new_listener: a QUIC server listener in a domain of its own, or a TLS listener
    /// over a listening TCP socket (on TLS_method / TLS_server_method contexts).
    pub fn new_listener(ctx: Arc<SslCtx>, validate: bool) -> Result<Arc<Ssl>> {
        if ctx.method.is_tls() {
            if ctx.method == Method::TlsClient {
                return Err(Error::ssl(SSL_R_NOT_SERVER)
                    .with("a TLS listener needs TLS_method or TLS_server_method"));
            }
            return Ok(Ssl::make(
                ctx,
                Kind::TlsListener(TlsListenerObj::new()),
                true,
            ));
        }
        let engine = Ssl::listener_engine(&ctx, validate)?;
        let epoch = engine.accept_epoch();
        let domain = Domain::new(engine, domain_flags(&ctx, 0)?);
        let l = Listener {
            domain,
            port: 0,
            parent: None,
            epoch,
            listening: AtomicBool::new(false),
            take: Default::default(),
        };
        let s = Ssl::make(ctx, Kind::Listener(l), true);
        s.domain().owner.store(Arc::as_ptr(&s) as usize, Relaxed);
        Ok(s)
    }

    /// SSL_new_domain: an empty domain that listeners can be made in.
    pub fn new_domain(ctx: Arc<SslCtx>, flags: u64) -> Result<Arc<Ssl>> {
        let domain = Arc::new(Domain::empty(domain_flags(&ctx, flags)?));
        let s = Ssl::make(ctx, Kind::Domain(DomainObj { domain }), true);
        s.domain().owner.store(Arc::as_ptr(&s) as usize, Relaxed);
        Ok(s)
    }

    /// SSL_new_listener_from: a listener with its own port in this domain.
    pub fn new_listener_from(self: &Arc<Ssl>, validate: bool) -> Result<Arc<Ssl>> {
        let Kind::Domain(d) = &self.kind else {
            return Err(Error::ssl(SSL_R_DOMAIN_USE_ONLY).with("only a domain supports this"));
        };
        let engine = Ssl::listener_engine(&self.ctx, validate)?;
        let epoch = engine.accept_epoch();
        let port = d.domain.add_port(engine);
        let l = Listener {
            domain: d.domain.clone(),
            port,
            parent: Some(self.clone()),
            epoch,
            listening: AtomicBool::new(false),
            take: Default::default(),
        };
        Ok(Ssl::make(
            self.ctx.clone(),
            Kind::Listener(l),
            self.blocking.load(Relaxed),
        ))
    }

    /// SSL_new_from_listener: an outgoing connection from the listener's port.
    pub fn new_from_listener(self: &Arc<Ssl>) -> Result<Arc<Ssl>> {
        let l = self.as_listener()?;
        let c = Conn::new(l.domain.clone(), l.port, Some(self.clone()));
        c.pre.lock().outgoing = true;
        Ok(Ssl::make(
            self.ctx.clone(),
            Kind::Conn(c),
            self.blocking.load(Relaxed),
        ))
    }

    pub fn is_domain(&self) -> bool {
        matches!(self.kind, Kind::Domain(_))
    }

    /// SSL_get0_domain: the domain object this object lives in, if it was made from one.
    pub fn domain_obj(&self) -> Option<&Arc<Ssl>> {
        match &self.kind {
            Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => None,
            Kind::Listener(l) => l.parent.as_ref(),
            Kind::Conn(c) => c.listener().and_then(|l| l.domain_obj()),
            Kind::Stream(s) => s.conn.domain_obj(),
        }
    }

    pub fn domain(&self) -> &Arc<Domain> {
        match &self.kind {
            Kind::Tls(_) | Kind::TlsListener(_) => tls_null_domain(),
            Kind::Domain(d) => &d.domain,
            Kind::Listener(l) => &l.domain,
            Kind::Conn(c) => c.domain(),
            Kind::Stream(s) => s.conn.domain(),
        }
    }

    /// This object's port in its domain (a domain object has none: NO_PORT addresses an
    /// empty placeholder).
    pub fn port_id(&self) -> PortId {
        match &self.kind {
            Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => domain::NO_PORT,
            Kind::Listener(l) => l.port,
            Kind::Conn(c) => c.port(),
            Kind::Stream(s) => s.conn.port_id(),
        }
    }

    /// Locks the domain, addressing this object's port.
    pub fn locked(&self, purpose: &'static str) -> PortGuard<'_> {
        PortGuard {
            g: self.domain().lock(purpose),
            id: self.port_id(),
        }
    }

    /// As `locked`, after one tick of the port.
    fn locked_ticked(&self, purpose: &'static str) -> PortGuard<'_> {
        let mut p = self.locked(purpose);
        let was = p.g.held().relabel("domain: tick (by a call)");
        p.tick(Instant::now());
        p.g.held().relabel(was);
        p
    }

    /// SSL_set_blocking_mode: fails when blocking is asked for but the domain or its
    /// network BIOs cannot block.
    pub fn set_blocking(&self, on: bool) -> Result<()> {
        match &self.kind {
            // TLS: a listener's mode is what accept does (and its connections inherit); a
            // connection's is its socket's.
            Kind::TlsListener(_) => {
                self.blocking.store(on, Relaxed);
                return Ok(());
            }
            Kind::Tls(t) => {
                t.set_blocking(on)?;
                self.blocking.store(on, Relaxed);
                return Ok(());
            }
            _ => {}
        }
        if on {
            let g = self.domain().lock("domain: set_blocking");
            if !self.domain().allows_blocking() {
                return Err(
                    domain::not_pollable().with("the domain was made without blocking support")
                );
            }
            if !g.pollable() {
                return Err(domain::not_pollable());
            }
        }
        self.blocking.store(on, Relaxed);
        Ok(())
    }

    /// SSL_get_blocking_mode: whether calls on this object block now.
    pub fn is_blocking(&self) -> bool {
        if matches!(self.kind, Kind::Tls(_) | Kind::TlsListener(_)) {
            return self.blocking.load(Relaxed);
        }
        self.blocking_in(&self.locked("domain: is_blocking"))
    }

    /// Whether a call on this object blocks: asked for, allowed by the domain's flags, and
    /// possible with its BIOs (checked under the caller's lock).
    fn blocking_in(&self, g: &PortGuard<'_>) -> bool {
        self.blocking.load(Relaxed) && self.domain().allows_blocking() && g.g.pollable()
    }

    /// What a blocked call on this object waits for: its stream (a stream object, or a
    /// connection's default stream once it exists), the peer's new streams (`incoming`:
    /// SSL_accept_stream), the connection, or the listener's accept queue.
    fn interest(&self, incoming: bool) -> Interest {
        let port = self.port_id();
        let Some(h) = self.conn_obj().and_then(|c| *c.handle.lock()) else {
            return match &self.kind {
                Kind::Listener(l) => Interest::Accept(l.port),
                _ => Interest::Any,
            };
        };
        match &self.kind {
            _ if incoming => Interest::Incoming(port, h),
            Kind::Stream(s) => Interest::Stream(port, h, s.id),
            Kind::Conn(c) => match *c.default_stream.lock() {
                Some(id) => Interest::Stream(port, h, id),
                None => Interest::Conn(port, h),
            },
            _ => Interest::Conn(port, h),
        }
    }

    /// Runs an operation: first on what is already buffered; if it would block, after one
    /// tick; if it still would block and this object is in blocking mode, waits for events
    /// that concern it and tries again until it completes or fails.
    /// `may_block` false: never wait (a NO_BLOCK flag).
    fn op<T>(
        &self,
        purpose: &'static str,
        may_block: bool,
        f: impl FnMut(&mut Port) -> Result<T>,
    ) -> Result<T> {
        self.op_waiting(purpose, may_block, false, f)
    }

    /// As `op`; `incoming`: a blocked call waits for the peer's new streams.
    fn op_waiting<T>(
        &self,
        purpose: &'static str,
        may_block: bool,
        incoming: bool,
        mut f: impl FnMut(&mut Port) -> Result<T>,
    ) -> Result<T> {
        let mut p = self.locked(purpose);
        // The object's own state may change (SSL_poll's cached answer must not be reused).
        self.bump_epoch();
        match f(&mut p) {
            Err(e) if e.is_would_block() => {}
            r => return r,
        }
        let will_block = may_block && self.blocking_in(&p);
        // A call about to block while another thread polls the network for the domain
        // leaves the network to it (it wakes at the first datagram and hands this thread
        // whatever concerns it): no second receive that would mostly find nothing.
        if !(will_block && p.g.polled()) {
            p.g.held().relabel("domain: tick (by a call)");
            p.tick(Instant::now());
            p.g.held().relabel(purpose);
        }
        loop {
            match f(&mut p) {
                Err(e) if e.is_would_block() && will_block => {}
                r => {
                    self.bump_epoch();
                    return r;
                }
            }
            // Send what this call queued (flow-control credit, acknowledgements) before
            // sleeping: no one else may tick soon.
            p.g.run(Instant::now());
            let interest = self.interest(incoming);
            self.domain().wait(&mut p.g, interest, None);
        }
    }

    /// The epoch SSL_poll's cache of this object follows: its connection's, or its
    /// listener's accept queue's.
    pub fn epoch(&self) -> Option<&Arc<std::sync::atomic::AtomicU64>> {
        match &self.kind {
            Kind::Listener(l) => Some(&l.epoch),
            Kind::Domain(_) => None,
            _ => self.conn_obj()?.epoch.get(),
        }
    }

    fn bump_epoch(&self) {
        if let Some(e) = self.epoch() {
            e.fetch_add(1, Relaxed);
            self.domain().changes.fetch_add(1, Relaxed);
        }
    }

    pub fn as_conn(&self) -> Result<&Conn> {
        match &self.kind {
            Kind::Conn(c) => Ok(c),
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => {
                Err(Error::ssl(SSL_R_CONN_USE_ONLY)
                    .with("not supported on a listener, domain or TLS connection"))
            }
            Kind::Stream(_) => {
                Err(Error::ssl(SSL_R_CONN_USE_ONLY).with("only a connection supports this"))
            }
        }
    }
    pub fn as_listener(&self) -> Result<&Listener> {
        match &self.kind {
            Kind::Listener(l) => Ok(l),
            _ => Err(Error::ssl(SSL_R_LISTENER_USE_ONLY).with("only a listener supports this")),
        }
    }
    /// SSL_is_server: a listener, a connection a listener accepted (or peeled off), a TLS
    /// connection in the server role.
    pub fn is_server(&self) -> bool {
        match &self.kind {
            Kind::Tls(t) => t.is_server(&self.ctx),
            Kind::Listener(_) | Kind::TlsListener(_) => true,
            Kind::Domain(_) => false,
            Kind::Conn(_) | Kind::Stream(_) => {
                self.conn_obj().is_some_and(|c| c.listener().is_some())
            }
        }
    }

    /// A TLS-over-TCP object (connection or listener), not a QUIC one.
    pub fn is_tls(&self) -> bool {
        matches!(self.kind, Kind::Tls(_) | Kind::TlsListener(_))
    }

    pub fn is_listener(&self) -> bool {
        matches!(self.kind, Kind::Listener(_) | Kind::TlsListener(_))
    }

    pub fn set_last_error(&self, e: i32) {
        self.last_error.store(e, Relaxed);
    }
    pub fn last_error(&self) -> i32 {
        self.last_error.load(Relaxed)
    }

    /// Records the SSL_get_error outcome of a call and passes its result through.
    pub fn note<T>(&self, r: Result<T>, want: i32) -> Result<T> {
        self.set_last_error(match &r {
            Ok(_) => SSL_ERROR_NONE,
            Err(e) if e.is_would_block() => match &self.kind {
                Kind::Tls(t) => t.tls.want(),
                _ => want,
            },
            Err(e)
                if e.code == pack(ERR_LIB_SSL, SSL_R_PROTOCOL_IS_SHUTDOWN)
                    && e.detail.as_deref() == Some("FIN") =>
            {
                SSL_ERROR_ZERO_RETURN
            }
            Err(e) if is_system(e.code) => SSL_ERROR_SYSCALL,
            Err(_) => SSL_ERROR_SSL,
        });
        r
    }

    pub fn set_bios(&self, r: Option<Arc<Bio>>, w: Option<Arc<Bio>>) {
        match &self.kind {
            Kind::Tls(t) => t.tls.set_bios(r, w),
            Kind::TlsListener(l) => *l.bio.lock() = r.or(w),
            _ => self.locked("domain: set_bios").set_bios(r, w),
        }
    }
    pub fn rbio(&self) -> Option<Arc<Bio>> {
        match &self.kind {
            Kind::Tls(t) => t.tls.rbio(),
            Kind::TlsListener(l) => l.bio.lock().clone(),
            _ => self.locked("domain: rbio").rbio.clone(),
        }
    }
    pub fn wbio(&self) -> Option<Arc<Bio>> {
        match &self.kind {
            Kind::Tls(t) => t.tls.wbio(),
            Kind::TlsListener(l) => l.bio.lock().clone(),
            _ => self.locked("domain: wbio").wbio.clone(),
        }
    }

    /// SSL_handle_events: one tick of the whole domain.
    pub fn handle_events(&self) {
        self.domain()
            .lock("domain: handle_events")
            .tick(Instant::now());
    }

    /// SSL_get_event_timeout: time until the next timer (None = infinite); zero when work is
    /// already queued.
    pub fn event_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        self.domain()
            .lock("domain: event_timeout")
            .next_deadline(now)
            .map(|t| t.saturating_duration_since(now))
    }

    /// SSL_net_write_desired: output is waiting for the network to take it.
    pub fn net_write_desired(&self) -> bool {
        self.locked("domain: net_write_desired").backlogged()
    }

    pub fn conn_ticks(&self) -> u64 {
        self.locked("domain: conn_ticks").engine.conn_ticks()
    }

    // ---- listener

    pub fn listen(&self) -> Result<()> {
        if let Kind::TlsListener(t) = &self.kind {
            return t.listen();
        }
        let l = self.as_listener()?;
        if self.locked("domain: listen").rbio.is_none() {
            return Err(Error::ssl(SSL_R_BIO_NOT_SET)
                .with("set a network BIO (SSL_set_fd/SSL_set_bio) first"));
        }
        l.listening.store(true, Relaxed);
        Ok(())
    }

    /// SSL_accept_connection: the next queued connection; in blocking mode (and without
    /// `no_block`) waits for one, else would-block. It inherits the listener's blocking mode.
    pub fn accept_connection(self: &Arc<Ssl>, no_block: bool) -> Result<Arc<Ssl>> {
        if let Kind::TlsListener(l) = &self.kind {
            return l.accept(self, no_block);
        }
        if self.as_listener().is_ok()
            && self
                .locked("domain: accept_connection")
                .engine
                .serves_only_own()
        {
            return Err(fork::left_with_parent());
        }
        self.listen()?;
        let l = self.as_listener()?;
        l.take_by(PEEL_ACCEPT)?;
        let (ch, epoch, verify) = self.op("domain: accept_connection", !no_block, |p| {
            if p.engine.serves_only_own() {
                return Err(fork::left_with_parent());
            }
            let ch = p.engine.accept_next().ok_or_else(want_read)?;
            let conn = p.engine.conn(ch);
            let epoch = conn.map(|c| c.epoch.clone());
            Ok((
                ch,
                epoch,
                conn.and_then(|c| peer::session_verify(c.crypto_session())),
            ))
        })?;
        let mut c = Conn::new(l.domain.clone(), l.port, Some(self.clone()));
        // Client certificates are verified in the connection's TLS session, which may have
        // started before this object: it holds the outcome (clientauth::VerifyingServer).
        if let Some(v) = verify {
            c.verify = v;
        }
        *c.handle.lock() = Some(ch);
        if let Some(e) = epoch {
            let _ = c.epoch.set(e);
        }
        Ok(Ssl::make(
            self.ctx.clone(),
            Kind::Conn(c),
            self.blocking.load(Relaxed),
        ))
    }

    /// SSL_listen_ex (OpenSSL 4.0, as fixed in 4.0.x): moves the next queued incoming
    /// connection into `new_conn`, a fresh QUIC connection object from SSL_new. Ok(true)
    /// when one was moved, Ok(false) when none is queued (it never waits). `new_conn` then
    /// belongs to this listener's domain and keeps the listener alive; its handshake goes on
    /// there (SSL_do_handshake/SSL_accept on it, or I/O).
    pub fn listen_ex(self: &Arc<Ssl>, new_conn: &Arc<Ssl>) -> Result<bool> {
        if let Kind::TlsListener(_) = &self.kind {
            return Err(Error::unsupported("SSL_listen_ex is for QUIC listeners"));
        }
        let l = self.as_listener()?;
        let c = new_conn.as_conn().map_err(|_| {
            Error::ssl(SSL_R_CONN_USE_ONLY).with("new_conn must be a QUIC connection from SSL_new")
        })?;
        if c.listener().is_some() || c.handle.lock().is_some() {
            return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("new_conn must be a fresh connection object that has not started"));
        }
        if c.domain().flags & SSL_DOMAIN_FLAG_THREAD_ASSISTED != 0 {
            return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("new_conn must not be thread-assisted"));
        }
        if self.locked("domain: listen_ex").engine.serves_only_own() {
            return Err(fork::left_with_parent());
        }
        self.listen()?;
        l.take_by(PEEL_LISTEN_EX)?;
        let taken = self.op("domain: listen_ex", false, |p| {
            let ch = p.engine.accept_next().ok_or_else(want_read)?;
            let conn = p.engine.conn(ch);
            let epoch = conn.map(|c| c.epoch.clone());
            Ok((
                ch,
                epoch,
                conn.and_then(|c| peer::session_verify(c.crypto_session())),
            ))
        });
        let (ch, epoch, verify) = match taken {
            Ok(t) => t,
            Err(e) if e.is_would_block() => return Ok(false),
            Err(e) => return Err(e),
        };
        let _ = c.peeled.set(Peeled {
            domain: l.domain.clone(),
            port: l.port,
            listener: self.clone(),
            verify,
        });
        *c.handle.lock() = Some(ch);
        if let Some(e) = epoch {
            let _ = c.epoch.set(e);
        }
        Ok(true)
    }

    pub fn accept_queue_len(&self) -> Result<usize> {
        self.as_listener()?;
        Ok(self
            .locked_ticked("domain: accept_queue_len")
            .engine
            .accept_queue_len())
    }

    // ---- connection

    pub fn set_initial_peer(&self, a: SocketAddr) -> Result<()> {
        self.as_conn()?.pre.lock().peer = Some(a);
        Ok(())
    }
    fn pre(&self) -> Result<&Mutex<Pre>> {
        match &self.kind {
            Kind::Tls(t) => Ok(&t.pre),
            _ => Ok(&self.as_conn()?.pre),
        }
    }
    pub fn set_host(&self, h: &str) -> Result<()> {
        self.pre()?.lock().host = Some(h.to_string());
        Ok(())
    }
    pub fn set_sni(&self, h: &str) -> Result<()> {
        self.pre()?.lock().sni = Some(h.to_string());
        Ok(())
    }
    pub fn set_alpn(&self, wire: &[u8]) -> Result<()> {
        self.pre()?.lock().alpn = Some(ctx::parse_alpn(wire)?);
        Ok(())
    }

    /// SSL_set_connect_state (false) / SSL_set_accept_state (true) on a TLS object; a
    /// no-op on QUIC objects, whose role is fixed. `only_if_unset`: SSL_connect/SSL_accept
    /// on TLS_method pick the role only when none was chosen.
    pub fn set_tls_role(&self, server: bool, only_if_unset: bool) {
        if let Kind::Tls(t) = &self.kind {
            t.set_role(server, only_if_unset);
        }
    }

    /// SSL_get_servername (TLS): a server connection's SNI from the client; a client's own.
    pub fn servername(&self) -> Option<String> {
        match &self.kind {
            Kind::Tls(t) => t.tls.server_name().or_else(|| t.pre.lock().sni.clone()),
            _ => None,
        }
    }

    /// SSL_session_reused.
    pub fn session_reused(&self) -> bool {
        match &self.kind {
            Kind::Tls(t) => t.tls.resumed(),
            Kind::Conn(_) => self
                .quic_handshake()
                .is_some_and(|(_, resumed, done)| resumed && done),
            Kind::Stream(st) => st.conn.session_reused(),
            _ => false,
        }
    }

    /// A QUIC connection's handshake facts: (ALPN, resumed, complete).
    fn quic_handshake(&self) -> Option<(Option<Vec<u8>>, bool, bool)> {
        let c = self.as_conn().ok()?;
        let h = (*c.handle.lock())?;
        let p = self.locked("domain: quic_handshake");
        let conn = p.engine.conn(h)?;
        let session = conn.crypto_session();
        let data = session.handshake_data()?;
        let hd = data.downcast::<session::QuicHandshake>().ok()?;
        Some((hd.protocol.clone(), hd.resumed, !session.is_handshaking()))
    }

    /// The session store a client connection's rustls configuration uses.
    fn store(&self, ctx: &SslCtx, quic: bool) -> Arc<dyn rustls::client::ClientSessionStore> {
        Arc::new(session::ConnStore::new(
            ctx.client_cache(),
            self.sessions.clone(),
            self as *const Ssl as usize,
            ctx.cache_settings(),
            quic,
        ))
    }

    /// SSL_set_session: the session a client's next handshake offers (None clears it).
    pub fn set_session(&self, s: Option<Arc<session::Session>>) -> Result<()> {
        let started = match &self.kind {
            Kind::Tls(t) => t.session_settable()?,
            Kind::Conn(c) if c.listener.is_none() => c.handle.lock().is_some(),
            Kind::Conn(_) => {
                return Err(Error::unsupported(
                    "SSL_set_session on a connection of a listener (it does not resume)",
                ));
            }
            _ => {
                return Err(Error::ssl(SSL_R_CONN_USE_ONLY)
                    .with("SSL_set_session needs a client connection"));
            }
        };
        if started {
            return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("SSL_set_session after the handshake started"));
        }
        if let Some(s) = &s
            && self.ctx.method.is_tls() == s.quic
        {
            return Err(Error::ssl(SSL_R_BAD_VALUE_CODE)
                .with("a QUIC session for a TLS connection, or the reverse"));
        }
        self.sessions.set_preset(s);
        Ok(())
    }

    /// SSL_get_session: the newest session the handshake made (a client's newest ticket),
    /// else the one SSL_set_session gave if it resumed or the handshake has not finished,
    /// else (handshake finished) a metadata session; None before the handshake without one.
    pub fn session(&self) -> Option<Arc<session::Session>> {
        if let Kind::Stream(st) = &self.kind {
            return st.conn.session();
        }
        if let Some(s) = self.sessions.newest() {
            if !session::in_callback()
                && s.cipher() == 0
                && let Some(c) = self.cipher()
            {
                s.fill_cipher(u16::from(c));
            }
            return Some(s);
        }
        // Inside a session callback the connection is locked: what is above is all there is.
        if session::in_callback() {
            return self.sessions.preset();
        }
        let done = match &self.kind {
            Kind::Tls(t) => t.tls.started() && !t.tls.is_handshaking(),
            Kind::Conn(_) => self.quic_handshake().is_some_and(|(_, _, done)| done),
            _ => return None,
        };
        let preset = self.sessions.preset();
        if !done || self.session_reused() {
            return preset;
        }
        let version = match self.tls_version() {
            "TLSv1.2" => ctx::TLS12_VERSION,
            _ => ctx::TLS13_VERSION,
        } as u16;
        let cipher = self.cipher().map_or(0, u16::from);
        let quic = !self.ctx.method.is_tls();
        let timeout = self.ctx.cache_settings().timeout;
        Some(
            self.sessions
                .meta(|born| session::Session::metadata(version, cipher, quic, timeout, born)),
        )
    }

    /// The negotiated cipher suite of a TLS connection (quinn does not tell a QUIC
    /// connection's).
    pub fn cipher(&self) -> Option<rustls::CipherSuite> {
        match &self.kind {
            Kind::Tls(t) => t.tls.cipher(),
            _ => None,
        }
    }

    pub fn tls_version(&self) -> &'static str {
        match &self.kind {
            Kind::Tls(t) => t.tls.version(),
            _ => "TLSv1.3",
        }
    }

    /// Starts the client connection if it has not started; returns its handle.
    fn started(&self, c: &Conn, p: &mut Port) -> Result<ConnId> {
        if let Some(h) = *c.handle.lock() {
            return Ok(h);
        }
        if p.rbio.is_none() || p.wbio.is_none() {
            return Err(Error::ssl(SSL_R_BIO_NOT_SET)
                .with("set a network BIO (SSL_set_fd/SSL_set_bio) first"));
        }
        let pre = c.pre.lock();
        let peer = match pre.peer {
            Some(a) => a,
            None if !p.write_addressed() => UNADDRESSED_PEER,
            None if pre.outgoing => {
                return Err(Error::ssl(SSL_R_REMOTE_PEER_ADDRESS_NOT_SET).with(
                    "a connection from SSL_new_from_listener needs SSL_set1_initial_peer_addr",
                ));
            }
            None => p
                .wbio
                .as_ref()
                .and_then(|b| b.dgram().ok().and_then(|d| d.detect_peer()))
                .and_then(|a| a.to_socket_addr())
                .ok_or_else(|| {
                    Error::ssl(SSL_R_REMOTE_PEER_ADDRESS_NOT_SET)
                        .with("call SSL_set1_initial_peer_addr or use a connected socket")
                })?,
        };
        let name = pre
            .sni
            .clone()
            .or_else(|| pre.host.clone())
            .unwrap_or_else(|| "localhost".into());
        let alpn = pre.alpn.clone();
        drop(pre);
        if alpn
            .as_ref()
            .map_or(self.ctx.alpn().is_empty(), |a| a.is_empty())
        {
            return Err(Error::ssl(235).with("QUIC requires ALPN: call SSL_set_alpn_protos"));
        }
        // Connections of a listener (SSL_new_from_listener) do not resume.
        let store = c.listener.is_none().then(|| self.store(&self.ctx, true));
        let cfg = self.ctx.client_config_for(
            alpn,
            c.verify.clone(),
            self as *const Ssl as usize,
            store,
        )?;
        let h = p
            .engine
            .connect(Instant::now(), cfg, peer, &name)
            .map_err(|e| {
                Error::ssl(SSL_R_QUIC_PROTOCOL_ERROR).with(format!("cannot connect: {e}"))
            })?;
        *c.handle.lock() = Some(h);
        if let Some(conn) = p.engine.conn(h) {
            let _ = c.epoch.set(conn.epoch.clone());
        }
        p.tick(Instant::now());
        if self.domain().flags & SSL_DOMAIN_FLAG_THREAD_ASSISTED != 0 && c.listener().is_none() {
            self.domain().start_assist()?;
            c.assisted.store(true, Relaxed);
        }
        Ok(h)
    }

    /// SSL_connect / SSL_do_handshake / SSL_accept: Ok once the handshake is complete.
    pub fn do_handshake(&self) -> Result<()> {
        if let Kind::Tls(t) = &self.kind {
            return t.do_handshake(self);
        }
        let c = self.as_conn()?;
        self.op("domain: do_handshake", true, |p| {
            let h = self.started(c, p)?;
            let conn = p.engine.conn(h).ok_or_else(|| closed_error(None))?;
            if let Some(e) = &conn.lost {
                return Err(closed_error(Some(e)));
            }
            if conn.connected || !conn.is_handshaking() {
                return Ok(());
            }
            Err(want_read())
        })
    }

    /// The default stream, created or accepted on first use per the default stream mode.
    fn default_stream(
        &self,
        c: &Conn,
        p: &mut Port,
        h: ConnId,
        for_write: bool,
    ) -> Result<StreamId> {
        if let Some(id) = *c.default_stream.lock() {
            return Ok(id);
        }
        let dir = match c.default_mode.load(Relaxed) {
            SSL_DEFAULT_STREAM_MODE_AUTO_BIDI => Dir::Bi,
            SSL_DEFAULT_STREAM_MODE_AUTO_UNI => Dir::Uni,
            _ => {
                return Err(Error::ssl(SSL_R_NO_STREAM).with(
                    "no default stream (mode NONE): use SSL_new_stream / SSL_accept_stream",
                ));
            }
        };
        let conn = p.engine.conn_mut(h).ok_or_else(|| closed_error(None))?;
        let peer_first = conn.incoming.iter().position(|id| id.dir() == dir);
        let id = match peer_first {
            Some(i) if !for_write || dir == Dir::Bi => {
                conn.incoming.remove(i).expect("index found")
            }
            _ if for_write => p.engine.open_stream(h, dir).ok_or_else(|| {
                Error::ssl(SSL_R_STREAM_COUNT_LIMITED)
                    .with("no stream credit for the default stream yet")
            })?,
            _ => return Err(want_read()),
        };
        *c.default_stream.lock() = Some(id);
        // From now on the AUTO policy refuses the peer's new streams.
        if let Some(conn) = p.engine.conn_mut(h) {
            conn.reject_incoming = c.reject_incoming();
        }
        Ok(id)
    }

    fn live(&self, c: &Conn, p: &mut Port) -> Result<ConnId> {
        self.live_or_closed(c, p, false)
    }

    /// As `live`; with `allow_closed`, a closed connection still answers, so that data it
    /// received before closing can be read (OpenSSL returns buffered data and FIN first).
    fn live_or_closed(&self, c: &Conn, p: &mut Port, allow_closed: bool) -> Result<ConnId> {
        let h = self.started(c, p)?;
        let conn = p.engine.conn_mut(h).ok_or_else(|| closed_error(None))?;
        conn.reject_incoming = c.reject_incoming();
        if let Some(e) = &conn.lost {
            if allow_closed && conn.connected {
                return Ok(h);
            }
            return Err(closed_error(Some(e)));
        }
        if !conn.connected && conn.is_handshaking() {
            return Err(want_read());
        }
        Ok(h)
    }

    /// The connection, its handle, the stream and its state that an I/O call addresses: a
    /// stream object's own stream, or a connection's default stream.
    fn target(&self, p: &mut Port, for_write: bool) -> Result<(ConnId, StreamId, &StreamState)> {
        let allow_closed = !for_write;
        match &self.kind {
            Kind::Conn(c) => {
                let h = self.live_or_closed(c, p, allow_closed)?;
                let id = match self.default_stream(c, p, h, for_write) {
                    Ok(id) => id,
                    // No stream will ever arrive on a closed connection.
                    Err(e) if e.is_would_block() => {
                        match p.engine.conn(h).and_then(|c| c.lost.as_ref()) {
                            Some(lost) => return Err(closed_error(Some(lost))),
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                };
                Ok((h, id, &c.default_st))
            }
            Kind::Stream(s) => {
                let c = s.conn.as_conn()?;
                let h = s.conn.live_or_closed(c, p, allow_closed)?;
                Ok((h, s.id, &s.st))
            }
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => {
                Err(Error::ssl(SSL_R_CONN_USE_ONLY)
                    .with("not supported on a listener, domain or TLS connection"))
            }
        }
    }

    fn local_side(p: &Port, h: ConnId) -> Option<Side> {
        p.engine.conn(h).map(|c| c.side())
    }

    /// SSL_write_ex: to the stream or the default stream. `conclude` sends FIN after the data.
    pub fn write(&self, data: &[u8], conclude: bool) -> Result<usize> {
        if let Kind::Tls(t) = &self.kind {
            return t.write(self, data);
        }
        let blocking = {
            let p = self.locked("domain: write");
            self.blocking_in(&p)
        };
        let mut done = 0;
        self.op("domain: write", true, |p| {
            // Blocking writes take everything (waiting for flow-control credit); non-blocking
            // ones return what fitted.
            loop {
                let n = self.write_locked(p, &data[done..], conclude)?;
                done += n;
                if done == data.len() || !blocking && done > 0 {
                    return Ok(done);
                }
                if n == 0 {
                    return Err(Error::would_block());
                }
            }
        })
    }

    fn write_locked(&self, p: &mut Port, data: &[u8], conclude: bool) -> Result<usize> {
        let (h, id, st) = self.target(p, true)?;
        if id.dir() == Dir::Uni && Some(id.initiator()) != Self::local_side(p, h) {
            return Err(
                Error::ssl(SSL_R_STREAM_RECV_ONLY).with("cannot write to a receive-only stream")
            );
        }
        if let Some(code) = *st.reset_local.lock() {
            return Err(
                Error::ssl(SSL_R_STREAM_RESET).with(format!("stream was reset locally ({code})"))
            );
        }
        if st.concluded.load(Relaxed) {
            return Err(Error::ssl(SSL_R_STREAM_FINISHED).with("the stream is already concluded"));
        }
        let conn = p.engine.conn_mut(h).ok_or_else(|| closed_error(None))?;
        let n = if data.is_empty() {
            0
        } else {
            match conn.send(id, data) {
                Ok(n) => n,
                Err(SendError::Blocked) => return Err(Error::would_block()),
                Err(SendError::Stopped(code)) => {
                    *st.stopped.lock() = Some(code);
                    return Err(Error::ssl(SSL_R_STREAM_RESET)
                        .with(format!("peer stopped the stream ({code})")));
                }
                Err(SendError::Closed) => {
                    return Err(Error::ssl(SSL_R_STREAM_FINISHED).with("the stream is closed"));
                }
            }
        };
        if conclude && n == data.len() {
            conn.finish(id);
            st.concluded.store(true, Relaxed);
        }
        p.engine.mark(h);
        p.run(Instant::now());
        Ok(n)
    }

    /// Moves what quinn has for the stream into its peek buffer (at most `max` bytes more),
    /// noting FIN and resets.
    fn pull(p: &mut Port, h: ConnId, id: StreamId, st: &StreamState, max: usize) {
        let Some(conn) = p.engine.conn_mut(h) else {
            return;
        };
        let mut buf = st.peek.lock();
        let (_, end, transmit) = conn.recv(id, max, |b| buf.extend_from_slice(b));
        Self::note_end(st, end);
        // Only taking data can free flow-control credit worth telling the peer about.
        if transmit {
            p.engine.mark(h);
        }
    }

    /// Records how a stream read ended (FIN, reset) in the object's stream state.
    fn note_end(st: &StreamState, end: Option<RecvEnd>) {
        match end {
            Some(RecvEnd::Fin) => st.fin_seen.store(true, Relaxed),
            Some(RecvEnd::Reset(code)) => *st.reset_remote.lock() = Some(code),
            Some(RecvEnd::Blocked) | None => {}
        }
    }

    /// SSL_read_ex (`peek` false) or SSL_peek_ex (`peek` true).
    pub fn read(&self, out: &mut [u8], peek: bool) -> Result<usize> {
        if let Kind::Tls(t) = &self.kind {
            return t.read(self, out, peek);
        }
        // Data already buffered is served before more is taken in (as OpenSSL does), which
        // keeps quinn's reassembly buffers short during bulk transfers: see `op`.
        self.op("domain: read", true, |p| self.read_locked(p, out, peek))
    }

    fn read_locked(&self, p: &mut Port, out: &mut [u8], peek: bool) -> Result<usize> {
        let (h, id, st) = self.target(p, false)?;
        if id.dir() == Dir::Uni && Some(id.initiator()) == Self::local_side(p, h) {
            return Err(
                Error::ssl(SSL_R_STREAM_SEND_ONLY).with("cannot read from a send-only stream")
            );
        }
        let mut n = 0;
        {
            let mut buf = st.peek.lock();
            if !buf.is_empty() {
                n = buf.len().min(out.len());
                out[..n].copy_from_slice(&buf[..n]);
                if !peek {
                    buf.drain(..n);
                }
            }
        }
        if n < out.len() && !st.fin_seen.load(Relaxed) && st.reset_remote.lock().is_none() {
            if peek {
                Self::pull(p, h, id, st, out.len() - n);
                let buf = st.peek.lock();
                let m = buf.len().min(out.len());
                out[n..m].copy_from_slice(&buf[n..m]);
                n = m;
            } else if let Some(conn) = p.engine.conn_mut(h) {
                let want = out.len() - n;
                let dst = &mut out[n..];
                let mut at = 0;
                let (got, end, _) = conn.recv(id, want, |b| {
                    dst[at..at + b.len()].copy_from_slice(b);
                    at += b.len();
                });
                n += got;
                Self::note_end(st, end);
            }
            p.engine.mark(h);
            p.run(Instant::now());
        }
        if n > 0 {
            return Ok(n);
        }
        if let Some(code) = *st.reset_remote.lock() {
            return Err(
                Error::ssl(SSL_R_STREAM_RESET).with(format!("peer reset the stream ({code})"))
            );
        }
        if st.fin_seen.load(Relaxed) {
            return Err(Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("FIN"));
        }
        if let Some(lost) = p.engine.conn(h).and_then(|c| c.lost.as_ref()) {
            return Err(closed_error(Some(lost)));
        }
        Err(want_read())
    }

    /// SSL_pending: bytes readable now without waiting (pulled into the peek buffer).
    pub fn pending(&self) -> usize {
        if let Kind::Tls(t) = &self.kind {
            return t.tls.pending();
        }
        let mut p = self.locked("domain: pending");
        let Ok((h, id, st)) = self.target(&mut p, false) else {
            return 0;
        };
        Self::pull(&mut p, h, id, st, 1 << 20);
        st.peek.lock().len()
    }

    /// SSL_stream_conclude.
    pub fn conclude(&self) -> Result<()> {
        self.write(&[], true).map(|_| ())
    }

    /// SSL_stream_reset: RESET_STREAM with `code` (send side).
    pub fn reset_stream(&self, code: u64) -> Result<()> {
        let mut p = self.locked_ticked("domain: reset_stream");
        let (h, id, st) = self.target(&mut p, true)?;
        if id.dir() == Dir::Uni && Some(id.initiator()) != Self::local_side(&p, h) {
            return Err(
                Error::ssl(SSL_R_STREAM_RECV_ONLY).with("cannot reset a receive-only stream")
            );
        }
        let vcode = VarInt::from_u64(code)
            .map_err(|_| Error::ssl(SSL_R_BAD_VALUE_CODE).with("error code too large"))?;
        if let Some(conn) = p.engine.conn_mut(h) {
            let _ = conn.reset(id, vcode);
            conn.unacked_fin.remove(&id);
        }
        *st.reset_local.lock() = Some(code);
        p.engine.mark(h);
        p.run(Instant::now());
        Ok(())
    }

    /// SSL_new_stream: a new local stream on this connection.
    /// In blocking mode (and without `no_block`) waits for the handshake and for stream
    /// credit; otherwise fails with STREAM_COUNT_LIMITED when the peer allows no more.
    pub fn new_stream(self: &Arc<Ssl>, uni: bool, no_block: bool) -> Result<Arc<Ssl>> {
        let c = self.as_conn()?;
        let mut limited = false;
        let r = self.op("domain: new_stream", !no_block, |p| {
            let h = self.live(c, p)?;
            limited = false;
            p.engine
                .open_stream(h, if uni { Dir::Uni } else { Dir::Bi })
                .ok_or_else(|| {
                    limited = true;
                    want_read()
                })
        });
        match r {
            Ok(id) => Ok(self.stream_obj(id)),
            Err(e) if e.is_would_block() && limited => {
                Err(Error::ssl(SSL_R_STREAM_COUNT_LIMITED)
                    .with("the peer allows no more streams yet"))
            }
            Err(e) => Err(e),
        }
    }

    fn stream_obj(self: &Arc<Ssl>, id: StreamId) -> Arc<Ssl> {
        let s = StreamObj {
            conn: self.clone(),
            id,
            st: StreamState::default(),
        };
        Ssl::make(
            self.ctx.clone(),
            Kind::Stream(s),
            self.blocking.load(Relaxed),
        )
    }

    /// SSL_accept_stream: the next stream the peer opened; in blocking mode (and without
    /// `no_block`) waits for one.
    /// SSL_accept_stream: the peer's next stream, of direction `dir` if given (OpenSSL 3.6's
    /// SSL_ACCEPT_STREAM_UNI/_BIDI: the first queued stream of that kind; others stay queued).
    pub fn accept_stream(self: &Arc<Ssl>, no_block: bool, dir: Option<Dir>) -> Result<Arc<Ssl>> {
        let c = self.as_conn()?;
        let id = self.op_waiting("domain: accept_stream", !no_block, true, |p| {
            let h = self.live(c, p)?;
            let q = p
                .engine
                .conn_mut(h)
                .map(|conn| &mut conn.incoming)
                .ok_or_else(want_read)?;
            let at = q
                .iter()
                .position(|id| dir.is_none_or(|d| id.dir() == d))
                .ok_or_else(want_read)?;
            q.remove(at).ok_or_else(want_read)
        })?;
        Ok(self.stream_obj(id))
    }

    /// SSL_get_peer_addr (OpenSSL 4.0): the peer's address of a QUIC connection or stream
    /// (where quinn last heard from it), or of a TLS connection over a socket.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        if let Kind::Tls(t) = &self.kind {
            return t.peer_addr();
        }
        let c = self.conn_obj().ok_or_else(|| {
            Error::ssl(SSL_R_CONN_USE_ONLY).with("only a connection or stream has a peer")
        })?;
        let p = self.locked("domain: peer_addr");
        if let Some(h) = *c.handle.lock()
            && let Some(conn) = p.engine.conn(h)
        {
            return Ok(conn.remote_address());
        }
        c.pre.lock().peer.ok_or_else(|| {
            Error::ssl(SSL_R_REMOTE_PEER_ADDRESS_NOT_SET).with("the connection has not started")
        })
    }

    pub fn accept_stream_queue_len(&self) -> Result<usize> {
        let c = self.as_conn()?;
        let mut p = self.locked_ticked("domain: accept_stream_queue_len");
        let h = self.live(c, &mut p)?;
        Ok(p.engine.conn(h).map_or(0, |conn| conn.incoming.len()))
    }

    pub fn set_default_stream_mode(&self, mode: u32) -> Result<()> {
        let c = self.as_conn()?;
        if mode > SSL_DEFAULT_STREAM_MODE_AUTO_UNI {
            return Err(Error::invalid(format!(
                "unknown default stream mode {mode}"
            )));
        }
        if c.default_stream.lock().is_some() {
            return Err(Error::ssl(SSL_R_FEATURE_NOT_RENEGOTIABLE)
                .with("the default stream already exists"));
        }
        c.default_mode.store(mode, Relaxed);
        self.bump_epoch();
        Ok(())
    }

    pub fn set_incoming_stream_policy(&self, policy: i32, aec: u64) -> Result<()> {
        let c = self.as_conn()?;
        if !matches!(
            policy,
            SSL_INCOMING_STREAM_POLICY_AUTO
                | SSL_INCOMING_STREAM_POLICY_ACCEPT
                | SSL_INCOMING_STREAM_POLICY_REJECT
        ) {
            return Err(Error::invalid(format!(
                "unknown incoming stream policy {policy}"
            )));
        }
        *c.policy.lock() = (policy, aec);
        Ok(())
    }

    /// The stream this object addresses without creating one: (handle, id) if known.
    fn known_stream(&self) -> Option<(StreamId, &StreamState)> {
        match &self.kind {
            Kind::Stream(s) => Some((s.id, &s.st)),
            Kind::Conn(c) => (*c.default_stream.lock()).map(|id| (id, &c.default_st)),
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => None,
        }
    }

    /// SSL_get_stream_id: the stream's id, or u64::MAX without one.
    pub fn stream_id(&self) -> u64 {
        self.known_stream()
            .map_or(u64::MAX, |(id, _)| u64::from(id))
    }

    /// SSL_get_stream_type.
    pub fn stream_type(&self) -> i32 {
        let Some((id, _)) = self.known_stream() else {
            return match &self.kind {
                Kind::Conn(c) if c.default_mode.load(Relaxed) != SSL_DEFAULT_STREAM_MODE_NONE => {
                    SSL_STREAM_TYPE_BIDI
                }
                _ => SSL_STREAM_TYPE_NONE,
            };
        };
        if id.dir() == Dir::Bi {
            return SSL_STREAM_TYPE_BIDI;
        }
        if Some(id.initiator()) == self.side() {
            SSL_STREAM_TYPE_WRITE
        } else {
            SSL_STREAM_TYPE_READ
        }
    }

    pub fn is_stream_local(&self) -> bool {
        self.known_stream()
            .is_some_and(|(id, _)| Some(id.initiator()) == self.side())
    }

    fn conn_obj(&self) -> Option<&Conn> {
        match &self.kind {
            Kind::Conn(c) => Some(c),
            Kind::Stream(s) => s.conn.as_conn().ok(),
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => None,
        }
    }

    fn side(&self) -> Option<Side> {
        let c = self.conn_obj()?;
        let h = (*c.handle.lock())?;
        let p = self.locked("domain: side");
        Self::local_side(&p, h)
    }

    fn conn_lost(&self) -> bool {
        let Some(c) = self.conn_obj() else {
            return false;
        };
        let Some(h) = *c.handle.lock() else {
            return false;
        };
        let p = self.locked("domain: conn_lost");
        p.engine.conn(h).is_none_or(|conn| conn.lost.is_some())
    }

    /// SSL_get_stream_read_state.
    pub fn read_state(&self) -> i32 {
        let Some((id, st)) = self.known_stream() else {
            return SSL_STREAM_STATE_NONE;
        };
        if id.dir() == Dir::Uni && Some(id.initiator()) == self.side() {
            return SSL_STREAM_STATE_WRONG_DIR;
        }
        let _ = self.pending();
        if st.reset_remote.lock().is_some() {
            SSL_STREAM_STATE_RESET_REMOTE
        } else if st.fin_seen.load(Relaxed) && st.peek.lock().is_empty() {
            SSL_STREAM_STATE_FINISHED
        } else if self.conn_lost() {
            SSL_STREAM_STATE_CONN_CLOSED
        } else {
            SSL_STREAM_STATE_OK
        }
    }

    /// SSL_get_stream_write_state.
    pub fn write_state(&self) -> i32 {
        let Some((id, st)) = self.known_stream() else {
            return SSL_STREAM_STATE_NONE;
        };
        if id.dir() == Dir::Uni && Some(id.initiator()) != self.side() {
            return SSL_STREAM_STATE_WRONG_DIR;
        }
        self.refresh_stopped(id, st);
        if st.reset_local.lock().is_some() {
            SSL_STREAM_STATE_RESET_LOCAL
        } else if st.stopped.lock().is_some() {
            SSL_STREAM_STATE_RESET_REMOTE
        } else if st.concluded.load(Relaxed) {
            SSL_STREAM_STATE_FINISHED
        } else if self.conn_lost() {
            SSL_STREAM_STATE_CONN_CLOSED
        } else {
            SSL_STREAM_STATE_OK
        }
    }

    fn refresh_stopped(&self, id: StreamId, st: &StreamState) {
        let Some(c) = self.conn_obj() else { return };
        let Some(h) = *c.handle.lock() else { return };
        let mut p = self.locked_ticked("domain: refresh_stopped");
        if let Some(conn) = p.engine.conn_mut(h)
            && let Some(code) = conn.stopped(id)
        {
            *st.stopped.lock() = Some(code);
        }
    }

    /// The application error code of a remote reset (read) or STOP_SENDING (write).
    pub fn stream_error_code(&self, write: bool) -> Option<u64> {
        let (id, st) = self.known_stream()?;
        if write {
            self.refresh_stopped(id, st);
            *st.stopped.lock()
        } else {
            let _ = self.pending();
            *st.reset_remote.lock()
        }
    }

    /// SSL_get_conn_close_info: (code, frame type, reason, local, transport) once closed.
    pub fn close_info(&self) -> Option<(u64, u64, Vec<u8>, bool, bool)> {
        let c = self.conn_obj()?;
        let h = (*c.handle.lock())?;
        let p = self.locked("domain: close_info");
        let lost = p.engine.conn(h).map(|conn| conn.lost.clone());
        let local = c.closing.load(Relaxed);
        match lost {
            None | Some(None) if local => {
                Some((c.close_code.load(Relaxed), 0, Vec::new(), true, false))
            }
            Some(Some(e)) => Some(close_details(&e, local)),
            _ => None,
        }
    }

    /// SSL_shutdown(_ex): conclude the default stream, wait for every concluded stream's data
    /// to be acknowledged (unless NO_STREAM_FLUSH), send CONNECTION_CLOSE, then wait out the
    /// closing period (unless RAPID). As in SSL_shutdown_ex(3), RAPID skips only the
    /// terminating period: stream data written before the call is still delivered. Ok(true) when done, Ok(false) while in progress; a blocking
    /// object waits (unless NO_BLOCK).
    pub fn shutdown(&self, code: u64, reason: &[u8], flags: u64) -> Result<bool> {
        if let Kind::Tls(t) = &self.kind {
            return t.tls.shutdown();
        }
        let c = self.as_conn()?;
        let rapid = flags & SSL_SHUTDOWN_FLAG_RAPID != 0;
        let flush = flags & SSL_SHUTDOWN_FLAG_NO_STREAM_FLUSH == 0;
        let r = self.op(
            "domain: shutdown",
            flags & SSL_SHUTDOWN_FLAG_NO_BLOCK == 0,
            |p| {
                let Some(h) = *c.handle.lock() else {
                    return Ok(());
                };
                let Some(conn) = p.engine.conn_mut(h) else {
                    return Ok(());
                };
                if conn.drained {
                    return Ok(());
                }
                if !c.closing.load(Relaxed) && conn.lost.is_none() && !conn.is_closed() {
                    if let Some(id) = *c.default_stream.lock() {
                        conn.finish(id);
                    }
                    // Concluded streams whose data the peer has not acknowledged yet: come back
                    // later (OpenSSL flushes streams first).
                    if flush && conn.unflushed() {
                        p.engine.mark(h);
                        p.run(Instant::now());
                        return Err(want_read());
                    }
                    c.closing.store(true, Relaxed);
                    c.close_code.store(code, Relaxed);
                    let code = VarInt::from_u64(code).unwrap_or(VarInt::from_u32(0));
                    conn.close(Instant::now(), code, bytes::Bytes::copy_from_slice(reason));
                    p.engine.mark(h);
                    p.run(Instant::now());
                }
                if rapid {
                    return Ok(());
                }
                // Closing (or draining after the peer closed): done once quinn has forgotten it.
                Err(want_read())
            },
        );
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.is_would_block() => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn verify_result(&self) -> i64 {
        if let Kind::Tls(t) = &self.kind {
            return t.verify.code.load(Relaxed);
        }
        self.conn_obj().map_or(0, |c| c.verify().code.load(Relaxed))
    }

    /// The negotiated ALPN protocol, kept with the object so C can hold a pointer to it.
    pub fn alpn_selected_ref(&self) -> Option<&[u8]> {
        if let Kind::Tls(t) = &self.kind {
            return t.alpn_selected_ref();
        }
        let c = self.as_conn().ok()?;
        if c.alpn.get().is_none() {
            let _ = c.alpn.set(self.alpn_selected()?);
        }
        c.alpn.get().map(|v| v.as_slice())
    }

    /// The negotiated ALPN protocol, if any.
    pub fn alpn_selected(&self) -> Option<Vec<u8>> {
        self.quic_handshake()?.0
    }
}

/// (code, frame type, reason, closed locally, transport-level) for SSL_get_conn_close_info.
fn close_details(e: &quinn_proto::ConnectionError, local: bool) -> (u64, u64, Vec<u8>, bool, bool) {
    use quinn_proto::ConnectionError as E;
    match e {
        E::ApplicationClosed(a) => (
            a.error_code.into_inner(),
            0,
            a.reason.to_vec(),
            local,
            false,
        ),
        E::ConnectionClosed(c) => {
            // quinn does not expose the frame type's number: reported as 0.
            (u64::from(c.error_code), 0, c.reason.to_vec(), local, true)
        }
        E::TransportError(t) => (
            u64::from(t.code),
            0,
            t.reason.clone().into_bytes(),
            true,
            true,
        ),
        E::TimedOut => (u64::MAX, 0, b"idle timeout".to_vec(), true, true),
        E::Reset => (0, 0, b"stateless reset".to_vec(), false, true),
        E::LocallyClosed => (0, 0, Vec::new(), true, false),
        E::VersionMismatch => (0, 0, b"version mismatch".to_vec(), false, true),
        E::CidsExhausted => (0, 0, b"connection IDs exhausted".to_vec(), true, true),
    }
}

fn closed_error(e: Option<&quinn_proto::ConnectionError>) -> Error {
    match e {
        Some(quinn_proto::ConnectionError::ApplicationClosed(a)) => {
            Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with(format!(
                "peer closed the connection (code {})",
                a.error_code
            ))
        }
        Some(quinn_proto::ConnectionError::TimedOut) => {
            Error::ssl(SSL_R_QUIC_NETWORK_ERROR).with("idle timeout")
        }
        Some(e) => Error::ssl(SSL_R_QUIC_PROTOCOL_ERROR).with(e.to_string()),
        None => Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("connection is closed"),
    }
}

impl Conn {
    /// The code new peer streams are refused with, if they are: always under REJECT; under
    /// AUTO once the connection has a default stream (an application using one is not
    /// prepared for others), unless the default stream mode is NONE.
    fn reject_incoming(&self) -> Option<u64> {
        let (policy, aec) = *self.policy.lock();
        let refuse = match policy {
            SSL_INCOMING_STREAM_POLICY_REJECT => true,
            SSL_INCOMING_STREAM_POLICY_AUTO => {
                self.default_mode.load(Relaxed) != SSL_DEFAULT_STREAM_MODE_NONE
                    && self.default_stream.lock().is_some()
            }
            _ => false,
        };
        refuse.then_some(aec)
    }

    /// The domain serving this connection.
    pub fn domain(&self) -> &Arc<Domain> {
        self.peeled.get().map_or(&self.domain, |p| &p.domain)
    }
    /// Its port in that domain.
    pub fn port(&self) -> PortId {
        self.peeled.get().map_or(self.port, |p| p.port)
    }
    /// The listener that accepted it (a server connection), else None.
    pub fn listener(&self) -> Option<&Arc<Ssl>> {
        self.peeled
            .get()
            .map(|p| &p.listener)
            .or(self.listener.as_ref())
    }
    /// Its verification state (SSL_get_verify_result, the verify callback's).
    pub fn verify(&self) -> &Arc<VerifyResult> {
        self.peeled
            .get()
            .and_then(|p| p.verify.as_ref())
            .unwrap_or(&self.verify)
    }

    fn new(domain: Arc<Domain>, port: PortId, listener: Option<Arc<Ssl>>) -> Conn {
        Conn {
            domain,
            port,
            epoch: std::sync::OnceLock::new(),
            handle: Mutex::new(None),
            pre: Mutex::new(Pre::default()),
            listener,
            peeled: std::sync::OnceLock::new(),
            verify: Arc::new(VerifyResult::default()),
            default_stream: Mutex::new(None),
            default_st: StreamState::default(),
            default_mode: AtomicU32::new(SSL_DEFAULT_STREAM_MODE_AUTO_BIDI),
            policy: Mutex::new((SSL_INCOMING_STREAM_POLICY_AUTO, 0)),
            alpn: std::sync::OnceLock::new(),
            closing: AtomicBool::new(false),
            assisted: AtomicBool::new(false),
            close_code: AtomicU64::new(0),
            close_reason: std::sync::OnceLock::new(),
        }
    }
}

impl Drop for Conn {
    /// Freeing a live connection closes it (the peer is told at once rather than by timeout);
    /// the engine then forgets it once quinn has.
    fn drop(&mut self) {
        let h = *self.handle.get_mut();
        // A peeled connection (SSL_listen_ex) lives in its listener's domain, not its own.
        let (domain, port) = (self.domain().clone(), self.port());
        if *self.assisted.get_mut() {
            domain.stop_assist();
        }
        if let Some(h) = h {
            let mut g = domain.lock("domain: drop");
            let p = g.port(port);
            if let Some(c) = p.engine.conn_mut(h)
                && !c.is_closed()
            {
                c.close(Instant::now(), VarInt::from_u32(0), bytes::Bytes::new());
                p.engine.mark(h);
                p.run(Instant::now());
            }
            p.engine.release(h);
        }
    }
}

impl Drop for Listener {
    /// A listener in a shared domain lets go of its network BIOs (its port stays, idle).
    fn drop(&mut self) {
        if self.parent.is_some() {
            let mut g = self.domain.lock("domain: drop");
            let p = g.port(self.port);
            // In a fork child the port carries the child's own connection now.
            if !p.engine.serves_only_own() {
                p.set_bios(None, None);
            }
        }
    }
}

impl Drop for StreamObj {
    /// Freeing a stream the application did not finish resets its send side and asks the
    /// peer to stop sending, as OpenSSL does.
    fn drop(&mut self) {
        let Ok(c) = self.conn.as_conn() else { return };
        let Some(h) = *c.handle.lock() else { return };
        let mut p = self.conn.locked("domain: drop");
        let Some(conn) = p.engine.conn_mut(h) else {
            return;
        };
        let side = conn.side();
        let sends = self.id.dir() == Dir::Bi || self.id.initiator() == side;
        let recvs = self.id.dir() == Dir::Bi || self.id.initiator() != side;
        if sends && !*self.st.concluded.get_mut() && self.st.reset_local.get_mut().is_none() {
            let _ = conn.reset(self.id, VarInt::from_u32(0));
        }
        if recvs && !*self.st.fin_seen.get_mut() && self.st.reset_remote.get_mut().is_none() {
            let _ = conn.stop(self.id, VarInt::from_u32(0));
        }
        p.engine.mark(h);
        p.run(Instant::now());
    }
}
