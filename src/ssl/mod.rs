//! The SSL object model: one `SSL *` (`Ssl`, a small handle) over a QUIC domain, listener,
//! connection or stream, or a TLS connection or listener (`Kind`). This file keeps the
//! handle, the constructors, the accessors, the `op` wrapper and the dispatch of each call to
//! the kind's own file: `domain_obj`, `listener`, `connection`, `stream`, `tls_conn`. All QUIC
//! objects of one listener (or one client connection) share a `Domain`: one lock over its
//! ports. Implicit event handling: a call that would block ticks the domain, as OpenSSL's
//! QUIC does.
//! Must not touch: sockets directly (the port does), `extern "C"` (ffi does).
#![deny(unsafe_code)]

pub mod alpn;
pub mod ciphers;
pub mod clientauth;
mod connection;
pub mod ctx;
pub mod domain;
mod domain_obj;
pub mod filter;
pub mod fork;
pub mod groups;
mod listener;
mod peer;
pub mod poll;
pub mod session;
pub mod settings;
mod stream;
pub mod tickets;
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
use crate::quic::conn::{Awaits, ConnCell, ConnGuard, ConnState};
use crate::quic::engine::Engine;
use crate::quic::port::{Port, UNADDRESSED_PEER};
use crate::quic::stream::{PartState, StreamFault};
pub use connection::ConnObj;
use connection::{Peeled, closed_error};
pub use ctx::{Method, SslCtx, VerifyResult};
pub use domain::{Domain, DomainGuard, Interest, PortGuard, PortId, current_owner};
pub use domain_obj::{DomainObj, check_domain_flags, domain_flags};
pub use listener::Listener;
pub use stream::StreamObj;
pub(crate) use tls_conn::tls_listen_fd;
use tls_conn::tls_null_domain;
pub use tls_conn::{TlsListenerObj, TlsObj};

const SSL_R_BAD_VALUE_CODE: u32 = SSL_R_BAD_VALUE;

/// Client settings that apply when the connection starts.
#[derive(Default)]
struct Pre {
    peer: Option<SocketAddr>,
    host: Option<String>,
    sni: Option<String>,
    alpn: Option<Vec<Vec<u8>>>,
    /// SSL_set1_groups_list / SSL_set1_groups: this connection's groups (None: its context's).
    groups: Option<groups::Groups>,
    /// Made by SSL_new_from_listener: no peer autodetection.
    outgoing: bool,
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
    Conn(ConnObj),
    Stream(StreamObj),
}

/// See `Ssl::init_state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InitState {
    pub before: bool,
    pub in_init: bool,
    pub finished: bool,
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

/// Early data on a TLS listener: it is a TLS connection's.
fn not_a_tls_conn() -> Error {
    Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED).with("early data is a TLS connection's")
}

fn want_read() -> Error {
    Error::would_block()
}

/// What a blocked call on a connection or stream object waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WaitsFor {
    /// Any change of the connection (a handshake, a shutdown's flush, stream credit).
    Conn,
    /// The object's stream (a connection's default stream once it exists), or the
    /// connection's state.
    Stream,
    /// The peer's new streams, or the connection's state.
    Incoming,
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
        let s = Ssl::make(ctx, Kind::Conn(ConnObj::new(domain, 0, None)), true);
        s.domain().owner.store(Arc::as_ptr(&s) as usize, Relaxed);
        Ok(s)
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

    /// One tick of this object's port (receive, timers, connections with work).
    fn tick_port(&self) {
        self.locked_ticked("domain: tick (by a call)");
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

    /// What a blocked call on a connection or stream object (its connection held as `c`)
    /// waits for, as `on` says; a connection's default stream once it exists.
    fn awaits(&self, c: &ConnState, on: WaitsFor) -> Awaits {
        match (on, &self.kind) {
            (WaitsFor::Incoming, _) => Awaits::Incoming,
            (WaitsFor::Conn, _) => Awaits::Anything,
            (WaitsFor::Stream, Kind::Stream(s)) => Awaits::Stream(s.id),
            (WaitsFor::Stream, _) => c.default_stream().map_or(Awaits::Anything, Awaits::Stream),
        }
    }

    /// What a blocked call on a listener waits for: its accept queue (anything, before it
    /// has a port).
    fn listener_interest(&self) -> Interest {
        match &self.kind {
            Kind::Listener(l) => Interest::Accept(l.port),
            _ => Interest::Any,
        }
    }

    /// Whether a call on this object blocks: asked for, allowed by the domain's flags, and
    /// possible with its BIOs.
    fn blocking_now(&self) -> bool {
        if !self.blocking.load(Relaxed) || !self.domain().allows_blocking() {
            return false;
        }
        // A BIO may become pollable later (a connect BIO has its socket once it connects):
        // a domain not known to be pollable is looked at again.
        self.domain().is_pollable() || {
            let p = self.locked("domain: is_pollable");
            self.domain().refresh_pollable(&p.g);
            self.domain().is_pollable()
        }
    }

    /// Runs an operation on the object's port with the domain locked (listener calls):
    /// first on what is already there; if it would block, after one tick; if it still would
    /// block and this object is in blocking mode, waits for events that concern it and tries
    /// again until it completes or fails. `may_block` false: never wait (a NO_BLOCK flag).
    fn port_op<T>(
        &self,
        purpose: &'static str,
        may_block: bool,
        mut f: impl FnMut(&mut Port) -> Result<T>,
    ) -> Result<T> {
        let mut p = self.locked(purpose);
        self.bump_epoch();
        match f(&mut p) {
            Err(e) if e.is_would_block() => {}
            r => return r,
        }
        let will_block = may_block && self.blocking_in(&p);
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
            p.g.run(Instant::now());
            let interest = self.listener_interest();
            self.domain().wait(&mut p.g, interest, None);
        }
    }

    /// Runs an operation on the object's connection (a connection or stream object), with
    /// only that connection locked (starting a client connection first): first on what is
    /// already buffered; if it would block, after one tick of the port; if it still would
    /// block and this object is in blocking mode, waits for events that concern it and
    /// tries again until it completes or fails. `may_block` false: never wait (a NO_BLOCK
    /// flag). A blocked call waits for any change of the connection.
    fn op<T>(
        &self,
        purpose: &'static str,
        may_block: bool,
        f: impl FnMut(&mut ConnState) -> Result<T>,
    ) -> Result<T> {
        self.op_waiting(purpose, may_block, WaitsFor::Conn, f)
    }

    /// As `op`; a blocked call waits for what `on` says.
    fn op_waiting<T>(
        &self,
        purpose: &'static str,
        may_block: bool,
        on: WaitsFor,
        mut f: impl FnMut(&mut ConnState) -> Result<T>,
    ) -> Result<T> {
        let cell = self.start()?;
        // The object's own state may change (SSL_poll's cached answer must not be reused).
        self.bump_epoch();
        let (r, _) = self.conn_try(&cell, purpose, &mut f);
        match r {
            Err(e) if e.is_would_block() => {}
            r => return r,
        }
        let will_block = may_block && self.blocking_now();
        // A call about to block while another thread polls the network for the domain
        // leaves the network to it (it wakes at the first datagram and hands this thread
        // whatever concerns it): no second receive that would mostly find nothing.
        if !(will_block && self.domain().is_polled()) {
            self.locked("domain: tick (by a call)").tick(Instant::now());
        }
        // This thread took an offer to lead from a thread that stopped polling (`park`).
        let mut took = false;
        loop {
            let mut c = match self.enter(&cell, purpose) {
                Ok(c) => c,
                Err(e) => {
                    if took {
                        self.domain().pass_lead();
                    }
                    return Err(e);
                }
            };
            let r = Self::run_on(&cell, &mut c, &mut f);
            let drove = Self::settle(&cell, &mut c);
            let blocked = will_block && matches!(&r, Err(e) if e.is_would_block());
            // Blocked, and nothing of this call's own to hand on (what a drive queued is sent
            // and served once the lock is released): while another thread polls the
            // network, sleep on the connection itself. Parking means another thread leads:
            // this one answers for leadership again only if it takes an offer.
            let what = self.awaits(&c, on);
            if blocked && !drove {
                let was = std::mem::take(&mut took);
                if self.domain().park(&cell, &mut c, what, &mut took) {
                    continue;
                }
                took |= was;
            }
            let seen = cell.epoch.load(std::sync::atomic::Ordering::SeqCst);
            drop(c);
            if drove {
                self.after_conn(&cell);
            }
            if !blocked {
                self.bump_epoch();
                if took {
                    self.domain().pass_lead();
                }
                return r;
            }
            // No thread polls the network (or this call's drive had output to send first):
            // wait through the domain, which makes this thread the poller; it then answers
            // for handing leadership on when its call completes.
            let interest = Interest::on_conn(self.port_id(), cell.id, what);
            self.domain().wait_conn(interest, &cell.epoch, seen, None);
            took = true;
        }
    }

    /// One try of an operation on the locked connection (see `enter` and `settle`).
    /// Returns the result and the connection's epoch as the try left it.
    fn conn_try<T>(
        &self,
        cell: &Arc<ConnCell>,
        purpose: &'static str,
        f: &mut impl FnMut(&mut ConnState) -> Result<T>,
    ) -> (Result<T>, u64) {
        let mut c = match self.enter(cell, purpose) {
            Ok(c) => c,
            Err(e) => return (Err(e), 0),
        };
        let r = Self::run_on(cell, &mut c, f);
        let drove = Self::settle(cell, &mut c);
        let seen = cell.epoch.load(std::sync::atomic::Ordering::SeqCst);
        drop(c);
        if drove {
            self.after_conn(cell);
        }
        (r, seen)
    }

    /// Locks the object's connection for a call (callbacks the call's drive runs name this
    /// object's domain owner). Fails if this process no longer serves it (fork), or if this
    /// thread already holds it: a callback that the connection's own drive runs (certificate
    /// verification, a session callback) called back into it.
    fn enter<'c>(&self, cell: &'c ConnCell, purpose: &'static str) -> Result<ConnGuard<'c>> {
        if cell.held_here() {
            return Err(Error::unsupported(format!(
                "{purpose}: called from a callback that runs on this connection's own \
                 handshake; call it after the callback returns"
            )));
        }
        domain::set_current_owner(self.domain().owner.load(Relaxed));
        let c = cell.lock(purpose);
        if c.gone {
            return Err(closed_error(None));
        }
        if c.broken {
            return Err(closed_error(c.lost.as_ref()));
        }
        Ok(c)
    }

    /// Runs a call's work on its locked connection; a panic inside it (quinn, rustls, this
    /// library) closes the connection (`ConnCell::contain`) and the call fails as on a lost
    /// connection.
    fn run_on<T>(
        cell: &ConnCell,
        c: &mut ConnGuard<'_>,
        f: impl FnOnce(&mut ConnState) -> Result<T>,
    ) -> Result<T> {
        match cell.contain(c, Instant::now(), f) {
            Some(r) => r,
            None => Err(closed_error(c.lost.as_ref())),
        }
    }

    /// Drives the connection if the call changed it, before its lock is let go; true if it
    /// did (the caller then runs `after_conn` once the lock is released).
    fn settle(cell: &ConnCell, c: &mut ConnGuard<'_>) -> bool {
        let drove = c.take_dirty() || c.broken;
        if drove {
            cell.drive(c, Instant::now());
        }
        drove
    }

    /// After a connection was driven under its own lock (released now): the endpoint
    /// serves what the drive left for it, waiters are woken, output is sent.
    fn after_conn(&self, cell: &Arc<ConnCell>) {
        if cell.needs_endpoint() {
            let mut p = self.locked("domain: serve a connection");
            p.engine.serve(Instant::now(), cell);
            return;
        }
        self.domain().notify(&cell.link);
    }

    /// Runs `f` on the object's connection, locked, if it has started and this process
    /// still serves it; drives it after if `f` changed it.
    fn with_conn<R>(
        &self,
        purpose: &'static str,
        f: impl FnOnce(&mut ConnState) -> R,
    ) -> Option<R> {
        let cell = self.cell()?.clone();
        let mut c = match self.enter(&cell, purpose) {
            Ok(c) => c,
            // Answered as for a connection that is gone; a callback's mistake is told.
            Err(e) => {
                if cell.held_here() {
                    e.queue(purpose);
                }
                return None;
            }
        };
        let r = cell.contain(&mut c, Instant::now(), f);
        let drove = Self::settle(&cell, &mut c);
        drop(c);
        if drove || r.is_none() {
            self.after_conn(&cell);
        }
        r
    }

    /// Reads the object's connection record (how it ended, its flags), locked, even after a
    /// panic broke it (`ConnCell::poison`), where `with_conn` refuses; None if it has not
    /// started, this process no longer serves it, or this thread already holds it (a
    /// callback of its own drive).
    fn conn_record<R>(&self, purpose: &'static str, f: impl FnOnce(&ConnState) -> R) -> Option<R> {
        let cell = self.cell()?;
        if cell.held_here() {
            return None;
        }
        let c = cell.lock(purpose);
        (!c.gone).then(|| f(&c))
    }

    /// The connection cell of a connection or stream object, once it has one.
    pub(super) fn cell(&self) -> Option<&Arc<ConnCell>> {
        self.conn_obj()?.cell.get()
    }

    /// The object's connection cell, starting a client connection that has not started.
    fn start(&self) -> Result<Arc<ConnCell>> {
        if let Some(cell) = self.cell() {
            return Ok(cell.clone());
        }
        let c = self.conn_obj().ok_or_else(|| {
            Error::ssl(SSL_R_CONN_USE_ONLY)
                .with("not supported on a listener, domain or TLS connection")
        })?;
        let mut p = self.locked("domain: start");
        match &self.kind {
            Kind::Stream(s) => s.conn.started(c, &mut p),
            _ => self.started(c, &mut p),
        }
    }

    /// The epoch SSL_poll's cache of this object follows: its connection's, or its
    /// listener's accept queue's.
    pub fn epoch(&self) -> Option<&Arc<std::sync::atomic::AtomicU64>> {
        match &self.kind {
            Kind::Listener(l) => Some(&l.epoch),
            Kind::Domain(_) => None,
            _ => self.cell().map(|c| &c.epoch),
        }
    }

    fn bump_epoch(&self) {
        if let Some(e) = self.epoch() {
            e.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.domain().changes.fetch_add(1, Relaxed);
        }
    }

    pub fn as_conn(&self) -> Result<&ConnObj> {
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

    /// The handshake's progress as SSL_in_before, SSL_in_init and SSL_is_init_finished report
    /// it: that of a TLS connection, or of a QUIC connection's TLS handshake. A fresh object is
    /// before and in init; a started one in init until its handshake completes; a failed one
    /// in init again. Streams, listeners and domains have no handshake: all false (OpenSSL 3.5
    /// finds no TLS object behind them).
    pub fn init_state(&self) -> InitState {
        let (started, complete) = match &self.kind {
            Kind::Tls(t) => t.tls.init_progress(),
            Kind::Conn(_) => match self.cell() {
                None => (false, false),
                Some(_) => (
                    true,
                    self.with_conn("conn: init_state", |c| c.connected)
                        .unwrap_or(false),
                ),
            },
            _ => return InitState::default(),
        };
        InitState {
            before: !started,
            in_init: !complete,
            finished: complete,
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
            Err(e) if e.is_fin() => SSL_ERROR_ZERO_RETURN,
            Err(e) if is_system(e.code) => SSL_ERROR_SYSCALL,
            Err(_) => SSL_ERROR_SSL,
        });
        r
    }

    pub fn set_bios(&self, r: Option<Arc<Bio>>, w: Option<Arc<Bio>>) {
        match &self.kind {
            Kind::Tls(t) => t.tls.set_bios(r, w),
            Kind::TlsListener(l) => *l.bio.lock() = r.or(w),
            _ => {
                let mut p = self.locked("domain: set_bios");
                p.set_bios(r, w);
                self.domain().refresh_pollable(&p.g);
                drop(p);
                // An established client connection on a new socket: an active migration.
                if matches!(&self.kind, Kind::Conn(c) if c.listener.is_none())
                    && self.cell().is_some()
                {
                    self.with_conn("conn: migrate", |conn| conn.migrated());
                }
            }
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

    /// SSL_handle_events: one tick of the whole domain; on a TLS object, a server handshake
    /// past its deadline fails.
    pub fn handle_events(&self) {
        if let Kind::Tls(t) = &self.kind {
            t.tls.expire(Instant::now());
            return;
        }
        self.domain()
            .lock("domain: handle_events")
            .tick(Instant::now());
    }

    /// SSL_get_event_timeout: time until the next timer (None = infinite); zero when work is
    /// already queued.
    pub fn event_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        if let Kind::Tls(t) = &self.kind {
            return t
                .tls
                .handshake_deadline()
                .map(|at| at.saturating_duration_since(now));
        }
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

    /// The settings a client connection (QUIC or TLS) starts with.
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

    /// SSL_set1_groups_list / SSL_set1_groups: the groups of this connection's handshake, for
    /// a TLS object (either role) or a QUIC client connection before it starts. A QUIC
    /// listener's connections take their context's (quinn's server configuration is the
    /// listener's): OpenSSL would let them differ, we say unsupported.
    pub fn set_groups(&self, g: groups::Groups) -> Result<()> {
        match &self.kind {
            Kind::Tls(t) => t.pre.lock().groups = Some(g),
            Kind::Conn(c) if c.cell.get().is_none() => c.pre.lock().groups = Some(g),
            _ => {
                return Err(Error::unsupported(
                    "groups of a QUIC listener or of a started or accepted QUIC connection: \
                     set them on the SSL_CTX (SSL_CTX_set1_groups_list)",
                ));
            }
        }
        Ok(())
    }

    /// SSL_get_negotiated_group's group: the one the handshake's key exchange used (None
    /// before that, and for a resumption without one). A stream answers for its connection.
    pub fn negotiated_group(&self) -> Option<rustls::NamedGroup> {
        match &self.kind {
            Kind::Tls(t) => t.tls.kx_group(),
            Kind::Conn(_) => self.quic_group(),
            Kind::Stream(st) => st.conn.negotiated_group(),
            _ => None,
        }
    }

    // ---- calls each kind answers its own way: TLS objects in tls_conn.rs, QUIC ones in
    // listener.rs, connection.rs and stream.rs

    /// SSL_listen: a listener starts taking connections.
    pub fn listen(&self) -> Result<()> {
        match &self.kind {
            Kind::TlsListener(t) => t.listen(),
            _ => self.quic_listen(),
        }
    }

    /// SSL_accept_connection: the next queued connection; in blocking mode (and without
    /// `no_block`) waits for one, else would-block. It inherits the listener's blocking mode.
    pub fn accept_connection(self: &Arc<Ssl>, no_block: bool) -> Result<Arc<Ssl>> {
        match &self.kind {
            Kind::TlsListener(l) => l.accept(self, no_block),
            _ => self.quic_accept_connection(no_block),
        }
    }

    /// SSL_listen_ex (OpenSSL 4.0, as fixed in 4.0.x): moves the next queued incoming
    /// connection into `new_conn`, a fresh QUIC connection object from SSL_new. Ok(true)
    /// when one was moved, Ok(false) when none is queued (it never waits). `new_conn` then
    /// belongs to this listener's domain and keeps the listener alive; its handshake goes on
    /// there (SSL_do_handshake/SSL_accept on it, or I/O).
    pub fn listen_ex(self: &Arc<Ssl>, new_conn: &Arc<Ssl>) -> Result<bool> {
        match &self.kind {
            Kind::TlsListener(_) => Err(Error::unsupported("SSL_listen_ex is for QUIC listeners")),
            _ => self.quic_listen_ex(new_conn),
        }
    }

    /// SSL_connect / SSL_do_handshake / SSL_accept: Ok once the handshake is complete.
    pub fn do_handshake(&self) -> Result<()> {
        match &self.kind {
            Kind::Tls(t) => t.do_handshake(self),
            _ => self.conn_handshake(),
        }
    }

    /// SSL_shutdown(_ex): conclude the default stream, wait for every concluded stream's data
    /// to be acknowledged (unless NO_STREAM_FLUSH), send CONNECTION_CLOSE, then wait out the
    /// closing period (unless RAPID). As in SSL_shutdown_ex(3), RAPID skips only the
    /// terminating period: stream data written before the call is still delivered. WAIT_PEER
    /// waits for the peer's close first. Ok(true) when done, Ok(false) while in progress; a
    /// blocking object waits (unless NO_BLOCK).
    pub fn shutdown(&self, code: u64, reason: &[u8], flags: u64) -> Result<bool> {
        match &self.kind {
            Kind::Tls(t) => t.tls.shutdown(),
            _ => self.conn_shutdown(code, reason, flags),
        }
    }

    /// SSL_get_peer_addr (OpenSSL 4.0): the peer's address of a QUIC connection or stream
    /// (where quinn last heard from it), or of a TLS connection over a socket.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        match &self.kind {
            Kind::Tls(t) => t.peer_addr(),
            _ => self.conn_peer_addr(),
        }
    }

    /// SSL_write_ex: to the stream or the default stream. `conclude` sends FIN after the data.
    pub fn write(&self, data: &[u8], conclude: bool) -> Result<usize> {
        match &self.kind {
            Kind::Tls(t) => t.write(self, data),
            _ => self.stream_write(data, conclude),
        }
    }

    /// SSL_read_ex (`peek` false) or SSL_peek_ex (`peek` true).
    pub fn read(&self, out: &mut [u8], peek: bool) -> Result<usize> {
        match &self.kind {
            Kind::Tls(t) => t.read(self, out, peek),
            _ => self.stream_read(out, peek),
        }
    }

    /// SSL_pending: bytes readable now without waiting (pulled into the peek buffer).
    pub fn pending(&self) -> usize {
        match &self.kind {
            Kind::Tls(t) => t.tls.pending(),
            _ => self.stream_pending(),
        }
    }

    /// SSL_has_pending (see `stream_has_pending` for QUIC objects).
    pub fn has_pending(&self) -> bool {
        match &self.kind {
            Kind::Tls(t) => t.tls.pending() > 0,
            _ => self.stream_has_pending(),
        }
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
    /// SSL_key_update: TLS 1.3 sends a KeyUpdate; QUIC starts a key phase change at once
    /// (quinn; the peer follows, and an update still in progress absorbs this one).
    /// Errors as OpenSSL 3.5 gives them: TLS checks the version (WRONG_SSL_VERSION, also
    /// before the handshake), then the type (INVALID_KEY_UPDATE_TYPE), then that the handshake
    /// is done (STILL_IN_INIT); QUIC takes a connection only (CONN_USE_ONLY), a bad type is
    /// ERR_R_PASSED_INVALID_ARGUMENT, and before the handshake TOO_MANY_KEY_UPDATES.
    pub fn key_update(&self, kind: i32) -> Result<()> {
        let valid = kind == SSL_KEY_UPDATE_NOT_REQUESTED || kind == SSL_KEY_UPDATE_REQUESTED;
        let what = || format!("key update type {kind}: SSL_KEY_UPDATE_NOT_REQUESTED or _REQUESTED");
        match &self.kind {
            Kind::Tls(t) => t.tls.key_update(
                valid
                    .then_some(())
                    .ok_or_else(|| Error::ssl(SSL_R_INVALID_KEY_UPDATE_TYPE).with(what())),
            ),
            Kind::Conn(_) if !valid => Err(Error::ssl(ERR_R_PASSED_INVALID_ARGUMENT).with(what())),
            Kind::Conn(_) => self.quic_key_update(),
            _ => Err(Error::ssl(SSL_R_CONN_USE_ONLY).with("a key update is a connection's")),
        }
    }

    // ---- Early data: TLS connections in tls_conn.rs, QUIC 0-RTT in connection.rs.

    /// SSL_write_early_data: the bytes taken.
    pub fn write_early_data(&self, data: &[u8]) -> Result<usize> {
        match &self.kind {
            Kind::Tls(t) => t.write_early_data(self, data),
            Kind::Conn(_) | Kind::Stream(_) => self.quic_write_early_data(data),
            Kind::Listener(_) | Kind::Domain(_) => Err(Error::ssl(SSL_R_CONN_USE_ONLY)
                .with("early data is written on a connection or stream")),
            Kind::TlsListener(_) => Err(not_a_tls_conn()),
        }
    }

    /// SSL_read_early_data: Ok(Some(n)) with early data, Ok(None) for
    /// SSL_READ_EARLY_DATA_FINISH.
    pub fn read_early_data(&self, out: &mut [u8]) -> Result<Option<usize>> {
        match &self.kind {
            Kind::Tls(t) => t.read_early_data(self, out),
            // A QUIC server's early data arrives on its streams (read with SSL_read).
            Kind::Conn(_) | Kind::Stream(_) if self.side() == Some(Side::Server) => Ok(None),
            Kind::Conn(_) | Kind::Stream(_) | Kind::Listener(_) | Kind::Domain(_) => {
                Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                    .with("early data is read by a server connection"))
            }
            Kind::TlsListener(_) => Err(not_a_tls_conn()),
        }
    }

    /// SSL_get_early_data_status (SSL_EARLY_DATA_*).
    pub fn early_data_status(&self) -> Result<i32> {
        match &self.kind {
            Kind::Tls(t) => Ok(t.early_data_status()),
            Kind::Conn(_) | Kind::Stream(_) => Ok(self.quic_early_data_status()),
            Kind::Listener(_) | Kind::Domain(_) | Kind::TlsListener(_) => {
                Ok(SSL_EARLY_DATA_NOT_SENT)
            }
        }
    }

    /// SSL_set_max_early_data (`recv` false) / SSL_set_recv_max_early_data (`recv` true).
    pub fn set_max_early_data(&self, v: u32, recv: bool) -> Result<()> {
        match &self.kind {
            Kind::Tls(t) => {
                t.set_max_early_data(v, recv);
                Ok(())
            }
            // QUIC: the context's setting decides (its listeners' tickets).
            Kind::Conn(_) | Kind::Stream(_) | Kind::Listener(_) | Kind::Domain(_) => {
                Err(Error::unsupported(
                    "a QUIC object's early data follows its context: SSL_CTX_set_max_early_data",
                ))
            }
            Kind::TlsListener(_) => Err(not_a_tls_conn()),
        }
    }

    /// SSL_get_max_early_data / SSL_get_recv_max_early_data: the connection's own value,
    /// else its context's.
    pub fn max_early_data(&self, recv: bool) -> u32 {
        match &self.kind {
            Kind::Tls(t) => t.max_early_data(&self.cur_ctx(), recv),
            Kind::Conn(_) | Kind::Stream(_) | Kind::Listener(_) | Kind::Domain(_) if recv => {
                self.ctx.recv_max_early_data()
            }
            Kind::Conn(_) | Kind::Stream(_) | Kind::Listener(_) | Kind::Domain(_) => {
                self.ctx.max_early_data()
            }
            Kind::TlsListener(_) if recv => self.ctx.recv_max_early_data(),
            Kind::TlsListener(_) => self.ctx.max_early_data(),
        }
    }

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
            Kind::Conn(c) if c.listener.is_none() => c.cell.get().is_some(),
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

    fn conn_obj(&self) -> Option<&ConnObj> {
        match &self.kind {
            Kind::Conn(c) => Some(c),
            Kind::Stream(s) => s.conn.as_conn().ok(),
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => None,
        }
    }

    /// SSL_get_verify_result.
    pub fn verify_result(&self) -> i64 {
        match &self.kind {
            Kind::Tls(t) => t.verify.code.load(Relaxed),
            _ => self.conn_obj().map_or(0, |c| c.verify().code.load(Relaxed)),
        }
    }

    /// The negotiated ALPN protocol, kept with the object so C can hold a pointer to it.
    pub fn alpn_selected_ref(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Tls(t) => t.alpn_selected_ref(),
            _ => self.conn_alpn_selected_ref(),
        }
    }
}
