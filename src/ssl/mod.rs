//! The SSL object model: one `SSL *` over a QUIC listener, connection or stream. All objects
//! of one listener (or one client connection) share a `Domain`: one lock over one `Port`.
//! Implicit event handling: every call ticks the domain first, as OpenSSL's QUIC does.
//! Must not touch: sockets directly (the port does), `extern "C"` (ffi does).
#![deny(unsafe_code)]

pub mod ctx;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use quinn_proto::{ConnectionHandle, Dir, ReadError, StreamId, VarInt, WriteError};

use crate::bio::Bio;
use crate::error::*;
use crate::quic::engine::Engine;
use crate::quic::port::{Port, UNADDRESSED_PEER};
pub use ctx::{Method, SslCtx, VerifyResult};

pub const SSL_ERROR_NONE: i32 = 0;
pub const SSL_ERROR_SSL: i32 = 1;
pub const SSL_ERROR_WANT_READ: i32 = 2;
pub const SSL_ERROR_WANT_WRITE: i32 = 3;
pub const SSL_ERROR_SYSCALL: i32 = 5;
pub const SSL_ERROR_ZERO_RETURN: i32 = 6;

pub const SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED: u32 = ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED;
pub const SSL_R_PROTOCOL_IS_SHUTDOWN: u32 = 207;
pub const SSL_R_REMOTE_PEER_ADDRESS_NOT_SET: u32 = 346;
pub const SSL_R_NO_STREAM: u32 = 355;
pub const SSL_R_CONN_USE_ONLY: u32 = 356;
pub const SSL_R_STREAM_RESET: u32 = 375;
pub const SSL_R_QUIC_PROTOCOL_ERROR: u32 = 382;
pub const SSL_R_QUIC_NETWORK_ERROR: u32 = 387;
pub const SSL_R_LISTENER_USE_ONLY: u32 = 421;
pub const SSL_R_NOT_SERVER: u32 = 284;

pub struct Domain {
    port: Mutex<Port>,
}

impl Domain {
    fn new(engine: Engine) -> Arc<Domain> {
        Arc::new(Domain {
            port: Mutex::new(Port::new(engine)),
        })
    }
    /// Locks the domain and runs one tick of event handling.
    pub fn lock_ticked(&self) -> MutexGuard<'_, Port> {
        let mut p = self.port.lock();
        p.tick(Instant::now());
        p
    }
    pub fn lock(&self) -> MutexGuard<'_, Port> {
        self.port.lock()
    }
}

/// Client settings that apply when the connection starts.
#[derive(Default)]
struct Pre {
    peer: Option<SocketAddr>,
    host: Option<String>,
    sni: Option<String>,
    alpn: Option<Vec<Vec<u8>>>,
}

pub struct Conn {
    pub domain: Arc<Domain>,
    handle: Mutex<Option<ConnectionHandle>>,
    pre: Mutex<Pre>,
    pub listener: Option<Arc<Ssl>>,
    pub verify: Arc<VerifyResult>,
    default_stream: Mutex<Option<StreamId>>,
    alpn: std::sync::OnceLock<Vec<u8>>,
    fin_seen: AtomicBool,
    closing: AtomicBool,
}

pub struct Listener {
    pub domain: Arc<Domain>,
    listening: AtomicBool,
}

// One listener per port and one connection object per connection: the size difference
// does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Kind {
    Listener(Listener),
    Conn(Conn),
}

pub struct Ssl {
    pub ctx: Arc<SslCtx>,
    pub kind: Kind,
    last_error: AtomicI32,
}

fn want_read() -> Error {
    Error::would_block()
}

impl Ssl {
    /// SSL_new: a client connection (QUIC client methods only).
    pub fn new_client(ctx: Arc<SslCtx>) -> Result<Arc<Ssl>> {
        if ctx.is_server() {
            return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("SSL_new on a QUIC server context: use SSL_new_listener"));
        }
        let domain = Domain::new(Engine::new(None));
        Ok(Arc::new(Ssl {
            ctx,
            kind: Kind::Conn(Conn::new(domain, None)),
            last_error: AtomicI32::new(0),
        }))
    }

    /// SSL_new_listener: a QUIC server listener.
    pub fn new_listener(ctx: Arc<SslCtx>, validate: bool) -> Result<Arc<Ssl>> {
        if !ctx.is_server() {
            return Err(
                Error::ssl(SSL_R_NOT_SERVER).with("SSL_new_listener needs OSSL_QUIC_server_method")
            );
        }
        let mut engine = Engine::new(Some(ctx.server_config()?));
        engine.validate = validate;
        let domain = Domain::new(engine);
        let l = Listener {
            domain,
            listening: AtomicBool::new(false),
        };
        Ok(Arc::new(Ssl {
            ctx,
            kind: Kind::Listener(l),
            last_error: AtomicI32::new(0),
        }))
    }

    pub fn domain(&self) -> &Arc<Domain> {
        match &self.kind {
            Kind::Listener(l) => &l.domain,
            Kind::Conn(c) => &c.domain,
        }
    }
    pub fn as_conn(&self) -> Result<&Conn> {
        match &self.kind {
            Kind::Conn(c) => Ok(c),
            Kind::Listener(_) => {
                Err(Error::ssl(SSL_R_CONN_USE_ONLY).with("not supported on a listener"))
            }
        }
    }
    pub fn as_listener(&self) -> Result<&Listener> {
        match &self.kind {
            Kind::Listener(l) => Ok(l),
            Kind::Conn(_) => {
                Err(Error::ssl(SSL_R_LISTENER_USE_ONLY).with("only a listener supports this"))
            }
        }
    }
    pub fn is_listener(&self) -> bool {
        matches!(self.kind, Kind::Listener(_))
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
            Err(e) if e.is_would_block() => want,
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
        self.domain().lock().set_bios(r, w);
    }
    pub fn rbio(&self) -> Option<Arc<Bio>> {
        self.domain().lock().rbio.clone()
    }
    pub fn wbio(&self) -> Option<Arc<Bio>> {
        self.domain().lock().wbio.clone()
    }

    /// SSL_handle_events: one tick of the whole domain.
    pub fn handle_events(&self) {
        drop(self.domain().lock_ticked());
    }

    /// SSL_get_event_timeout: time until the next timer (None = infinite); zero when work is
    /// already queued.
    pub fn event_timeout(&self) -> Option<Duration> {
        let mut p = self.domain().lock();
        if p.engine.has_work() {
            return Some(Duration::ZERO);
        }
        p.engine
            .next_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    pub fn conn_ticks(&self) -> u64 {
        self.domain().lock().engine.conn_ticks
    }

    // ---- listener

    pub fn listen(&self) -> Result<()> {
        let l = self.as_listener()?;
        if self.domain().lock().rbio.is_none() {
            return Err(Error::ssl(SSL_R_BIO_NOT_SET)
                .with("set a network BIO (SSL_set_fd/SSL_set_bio) first"));
        }
        l.listening.store(true, Relaxed);
        Ok(())
    }

    /// SSL_accept_connection (non-blocking): the next queued connection, or would-block.
    pub fn accept_connection(self: &Arc<Ssl>) -> Result<Arc<Ssl>> {
        self.listen()?;
        let l = self.as_listener()?;
        let ch = {
            let mut p = l.domain.lock_ticked();
            p.engine.accept_queue.pop_front()
        };
        let ch = ch.ok_or_else(want_read)?;
        let c = Conn::new(l.domain.clone(), Some(self.clone()));
        *c.handle.lock() = Some(ch);
        Ok(Arc::new(Ssl {
            ctx: self.ctx.clone(),
            kind: Kind::Conn(c),
            last_error: AtomicI32::new(0),
        }))
    }

    pub fn accept_queue_len(&self) -> Result<usize> {
        let l = self.as_listener()?;
        Ok(l.domain.lock_ticked().engine.accept_queue.len())
    }

    // ---- connection

    pub fn set_initial_peer(&self, a: SocketAddr) -> Result<()> {
        self.as_conn()?.pre.lock().peer = Some(a);
        Ok(())
    }
    pub fn set_host(&self, h: &str) -> Result<()> {
        self.as_conn()?.pre.lock().host = Some(h.to_string());
        Ok(())
    }
    pub fn set_sni(&self, h: &str) -> Result<()> {
        self.as_conn()?.pre.lock().sni = Some(h.to_string());
        Ok(())
    }
    pub fn set_alpn(&self, wire: &[u8]) -> Result<()> {
        self.as_conn()?.pre.lock().alpn = Some(ctx::parse_alpn(wire)?);
        Ok(())
    }

    /// Starts the client connection if it has not started; returns its handle.
    fn started(&self, c: &Conn, p: &mut Port) -> Result<ConnectionHandle> {
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
        let cfg = self.ctx.client_config(alpn, c.verify.clone())?;
        let h = p
            .engine
            .connect(Instant::now(), cfg, peer, &name)
            .map_err(|e| {
                Error::ssl(SSL_R_QUIC_PROTOCOL_ERROR).with(format!("cannot connect: {e}"))
            })?;
        *c.handle.lock() = Some(h);
        p.tick(Instant::now());
        Ok(h)
    }

    /// SSL_connect / SSL_do_handshake / SSL_accept: Ok once the handshake is complete.
    pub fn do_handshake(&self) -> Result<()> {
        let c = self.as_conn()?;
        let mut p = c.domain.lock_ticked();
        let h = self.started(c, &mut p)?;
        let conn = p.engine.conns.get(&h).ok_or_else(|| closed_error(None))?;
        if let Some(e) = &conn.lost {
            return Err(closed_error(Some(e)));
        }
        if conn.connected || !conn.q.is_handshaking() {
            return Ok(());
        }
        Err(want_read())
    }

    /// The default stream, created or accepted on first use (AUTO_BIDI).
    fn default_stream(
        &self,
        c: &Conn,
        p: &mut Port,
        h: ConnectionHandle,
        for_write: bool,
    ) -> Result<StreamId> {
        if let Some(id) = *c.default_stream.lock() {
            return Ok(id);
        }
        let conn = p
            .engine
            .conns
            .get_mut(&h)
            .ok_or_else(|| closed_error(None))?;
        let peer_first = conn.incoming.iter().position(|id| id.dir() == Dir::Bi);
        let id = match peer_first {
            Some(i) => conn.incoming.remove(i).expect("index found"),
            None if for_write => p.engine.open_stream(h, Dir::Bi).ok_or_else(|| {
                Error::ssl(411).with("no stream credit for the default stream yet")
            })?,
            None => return Err(want_read()),
        };
        *c.default_stream.lock() = Some(id);
        Ok(id)
    }

    fn live(&self, c: &Conn, p: &mut Port) -> Result<ConnectionHandle> {
        let h = self.started(c, p)?;
        let conn = p.engine.conns.get(&h).ok_or_else(|| closed_error(None))?;
        if let Some(e) = &conn.lost {
            return Err(closed_error(Some(e)));
        }
        if !conn.connected && conn.q.is_handshaking() {
            return Err(want_read());
        }
        Ok(h)
    }

    /// SSL_write_ex on a connection's default stream. `conclude` sends FIN after the data.
    pub fn write(&self, data: &[u8], conclude: bool) -> Result<usize> {
        let c = self.as_conn()?;
        let mut p = c.domain.lock_ticked();
        let h = self.live(c, &mut p)?;
        let id = self.default_stream(c, &mut p, h, true)?;
        let conn = p
            .engine
            .conns
            .get_mut(&h)
            .ok_or_else(|| closed_error(None))?;
        let mut s = conn.q.send_stream(id);
        let n = if data.is_empty() {
            0
        } else {
            match s.write(data) {
                Ok(n) => n,
                Err(WriteError::Blocked) => return Err(Error::would_block()),
                Err(WriteError::Stopped(code)) => {
                    return Err(Error::ssl(SSL_R_STREAM_RESET)
                        .with(format!("peer stopped the stream ({code})")));
                }
                Err(WriteError::ClosedStream) => {
                    return Err(Error::ssl(365).with("the stream is already concluded"));
                }
            }
        };
        if conclude && n == data.len() {
            let _ = s.finish();
        }
        p.engine.mark(h);
        p.engine.process(Instant::now());
        p.flush();
        Ok(n)
    }

    /// SSL_read_ex / SSL_peek_ex on the default stream.
    pub fn read(&self, out: &mut [u8]) -> Result<usize> {
        let c = self.as_conn()?;
        if c.fin_seen.load(Relaxed) {
            return Err(Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("FIN"));
        }
        let mut p = c.domain.lock_ticked();
        let h = self.live(c, &mut p)?;
        let id = self.default_stream(c, &mut p, h, false)?;
        let conn = p
            .engine
            .conns
            .get_mut(&h)
            .ok_or_else(|| closed_error(None))?;
        let mut rs = conn.q.recv_stream(id);
        let mut chunks = match rs.read(true) {
            Ok(ch) => ch,
            Err(_) => {
                return Err(Error::ssl(SSL_R_NO_STREAM).with("the default stream is not readable"));
            }
        };
        let mut n = 0;
        let mut fin = false;
        let mut err = None;
        while n < out.len() {
            match chunks.next(out.len() - n) {
                Ok(Some(ch)) => {
                    out[n..n + ch.bytes.len()].copy_from_slice(&ch.bytes);
                    n += ch.bytes.len();
                }
                Ok(None) => {
                    fin = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    err = Some(
                        Error::ssl(SSL_R_STREAM_RESET)
                            .with(format!("peer reset the stream ({code})")),
                    );
                    break;
                }
            }
        }
        let _ = chunks.finalize();
        p.engine.mark(h);
        p.engine.process(Instant::now());
        p.flush();
        if n > 0 {
            if fin {
                c.fin_seen.store(true, Relaxed);
            }
            return Ok(n);
        }
        if let Some(e) = err {
            return Err(e);
        }
        if fin {
            c.fin_seen.store(true, Relaxed);
            return Err(Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("FIN"));
        }
        Err(want_read())
    }

    /// SSL_stream_conclude on the default stream.
    pub fn conclude(&self) -> Result<()> {
        self.write(&[], true).map(|_| ())
    }

    /// SSL_shutdown: conclude, wait for our stream data to be acknowledged, then close.
    /// Ok(true) when done, Ok(false) while in progress.
    pub fn shutdown(&self, code: u64, reason: &[u8]) -> Result<bool> {
        let c = self.as_conn()?;
        let mut p = c.domain.lock_ticked();
        let Some(h) = *c.handle.lock() else {
            return Ok(true);
        };
        let Some(conn) = p.engine.conns.get_mut(&h) else {
            return Ok(true);
        };
        if conn.q.is_closed() || conn.lost.is_some() {
            return Ok(true);
        }
        if !c.closing.load(Relaxed) {
            if let Some(id) = *c.default_stream.lock() {
                let _ = conn.q.send_stream(id).finish();
                // Data still unacknowledged: come back later (OpenSSL flushes streams first).
                let stopped = matches!(conn.q.send_stream(id).stopped(), Ok(Some(_)));
                if !stopped && !conn.acked.contains(&id) {
                    p.engine.mark(h);
                    p.engine.process(Instant::now());
                    p.flush();
                    return Ok(false);
                }
            }
            c.closing.store(true, Relaxed);
            let code = VarInt::from_u64(code).unwrap_or(VarInt::from_u32(0));
            conn.q
                .close(Instant::now(), code, bytes::Bytes::copy_from_slice(reason));
            p.engine.mark(h);
            p.engine.process(Instant::now());
            p.flush();
        }
        Ok(true)
    }

    pub fn verify_result(&self) -> i64 {
        match &self.kind {
            Kind::Conn(c) => c.verify.code.load(Relaxed),
            Kind::Listener(_) => 0,
        }
    }

    /// The negotiated ALPN protocol, kept with the object so C can hold a pointer to it.
    pub fn alpn_selected_ref(&self) -> Option<&[u8]> {
        let c = self.as_conn().ok()?;
        if c.alpn.get().is_none() {
            let _ = c.alpn.set(self.alpn_selected()?);
        }
        c.alpn.get().map(|v| v.as_slice())
    }

    /// The negotiated ALPN protocol, if any.
    pub fn alpn_selected(&self) -> Option<Vec<u8>> {
        let c = self.as_conn().ok()?;
        let h = (*c.handle.lock())?;
        let p = c.domain.lock();
        let conn = p.engine.conns.get(&h)?;
        let data = conn.q.crypto_session().handshake_data()?;
        let hd = data
            .downcast::<quinn_proto::crypto::rustls::HandshakeData>()
            .ok()?;
        hd.protocol.clone()
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
    fn new(domain: Arc<Domain>, listener: Option<Arc<Ssl>>) -> Conn {
        Conn {
            domain,
            handle: Mutex::new(None),
            pre: Mutex::new(Pre::default()),
            listener,
            verify: Arc::new(VerifyResult::default()),
            default_stream: Mutex::new(None),
            alpn: std::sync::OnceLock::new(),
            fin_seen: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        }
    }
}

impl Drop for Conn {
    /// Freeing a live connection closes it (the peer is told at once rather than by timeout).
    fn drop(&mut self) {
        if let Some(h) = *self.handle.get_mut() {
            let mut p = self.domain.lock();
            if let Some(c) = p.engine.conns.get_mut(&h)
                && !c.q.is_closed()
            {
                c.q.close(Instant::now(), VarInt::from_u32(0), bytes::Bytes::new());
                p.engine.mark(h);
                p.engine.process(Instant::now());
                p.flush();
            }
        }
    }
}
