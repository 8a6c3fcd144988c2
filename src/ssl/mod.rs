//! The SSL object model: one `SSL *` over a QUIC listener, connection or stream. All objects
//! of one listener (or one client connection) share a `Domain`: one lock over one `Port`.
//! Implicit event handling: every call ticks the domain first, as OpenSSL's QUIC does.
//! Must not touch: sockets directly (the port does), `extern "C"` (ffi does).
#![deny(unsafe_code)]

pub mod alpn;
pub mod ctx;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed,
};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use quinn_proto::{Dir, ReadError, Side, StreamId, VarInt, WriteError};

use crate::bio::Bio;
use crate::error::*;
use crate::quic::engine::{ConnId, Engine};
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
pub const SSL_R_STREAM_FINISHED: u32 = 365;
pub const SSL_R_STREAM_RECV_ONLY: u32 = 366;
pub const SSL_R_STREAM_SEND_ONLY: u32 = 379;
pub const SSL_R_STREAM_COUNT_LIMITED: u32 = 411;
pub const SSL_R_FEATURE_NOT_RENEGOTIABLE: u32 = 413;
const SSL_R_BAD_VALUE_CODE: u32 = ctx::SSL_R_BAD_VALUE;

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
pub const SSL_CONN_CLOSE_FLAG_LOCAL: u32 = 1;
pub const SSL_CONN_CLOSE_FLAG_TRANSPORT: u32 = 2;

pub struct Domain {
    port: Mutex<Port>,
    /// The listener or client connection this domain was made for (its `SSL *` address),
    /// named to callbacks that run during event handling.
    owner: AtomicUsize,
}

thread_local! {
    /// The owner of the domain this thread last locked: callbacks run under that lock.
    static CURRENT_OWNER: Cell<usize> = const { Cell::new(0) };
}

/// The `SSL *` (as an address) whose domain is handling events on this thread: the listener
/// or client connection. For callbacks (ALPN selection) that OpenSSL passes an `SSL *`.
pub fn current_owner() -> usize {
    CURRENT_OWNER.with(Cell::get)
}

impl Domain {
    fn new(engine: Engine) -> Arc<Domain> {
        Arc::new(Domain {
            port: Mutex::new(Port::new(engine)),
            owner: AtomicUsize::new(0),
        })
    }
    /// Locks the domain and runs one tick of event handling.
    pub fn lock_ticked(&self) -> MutexGuard<'_, Port> {
        let mut p = self.lock();
        p.tick(Instant::now());
        p
    }
    pub fn lock(&self) -> MutexGuard<'_, Port> {
        let p = self.port.lock();
        CURRENT_OWNER.with(|c| c.set(self.owner.load(Relaxed)));
        p
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
    handle: Mutex<Option<ConnId>>,
    pre: Mutex<Pre>,
    pub listener: Option<Arc<Ssl>>,
    pub verify: Arc<VerifyResult>,
    default_stream: Mutex<Option<StreamId>>,
    default_st: StreamState,
    default_mode: AtomicU32,
    reject: Mutex<Option<u64>>,
    alpn: std::sync::OnceLock<Vec<u8>>,
    closing: AtomicBool,
    close_code: AtomicU64,
    pub close_reason: std::sync::OnceLock<std::ffi::CString>,
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
    listening: AtomicBool,
}

// One listener per port and one connection object per connection: the size difference
// does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Kind {
    Listener(Listener),
    Conn(Conn),
    Stream(StreamObj),
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
        let s = Arc::new(Ssl {
            ctx,
            kind: Kind::Conn(Conn::new(domain, None)),
            last_error: AtomicI32::new(0),
        });
        s.domain().owner.store(Arc::as_ptr(&s) as usize, Relaxed);
        Ok(s)
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
        let s = Arc::new(Ssl {
            ctx,
            kind: Kind::Listener(l),
            last_error: AtomicI32::new(0),
        });
        s.domain().owner.store(Arc::as_ptr(&s) as usize, Relaxed);
        Ok(s)
    }

    pub fn domain(&self) -> &Arc<Domain> {
        match &self.kind {
            Kind::Listener(l) => &l.domain,
            Kind::Conn(c) => &c.domain,
            Kind::Stream(s) => s.conn.domain(),
        }
    }
    pub fn as_conn(&self) -> Result<&Conn> {
        match &self.kind {
            Kind::Conn(c) => Ok(c),
            Kind::Listener(_) => {
                Err(Error::ssl(SSL_R_CONN_USE_ONLY).with("not supported on a listener"))
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
        if p.engine.has_work() && !p.backlogged() {
            return Some(Duration::ZERO);
        }
        p.engine
            .next_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// SSL_net_write_desired: output is waiting for the network to take it.
    pub fn net_write_desired(&self) -> bool {
        self.domain().lock().backlogged()
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
            p.engine.accept_next()
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
        let cfg =
            self.ctx
                .client_config_for(alpn, c.verify.clone(), self as *const Ssl as usize)?;
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
        let conn = p
            .engine
            .conns
            .get_mut(&h)
            .ok_or_else(|| closed_error(None))?;
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
        Ok(id)
    }

    fn live(&self, c: &Conn, p: &mut Port) -> Result<ConnId> {
        self.live_or_closed(c, p, false)
    }

    /// As `live`; with `allow_closed`, a closed connection still answers, so that data it
    /// received before closing can be read (OpenSSL returns buffered data and FIN first).
    fn live_or_closed(&self, c: &Conn, p: &mut Port, allow_closed: bool) -> Result<ConnId> {
        let h = self.started(c, p)?;
        let conn = p
            .engine
            .conns
            .get_mut(&h)
            .ok_or_else(|| closed_error(None))?;
        conn.reject_incoming = c.reject_incoming();
        if let Some(e) = &conn.lost {
            if allow_closed && conn.connected {
                return Ok(h);
            }
            return Err(closed_error(Some(e)));
        }
        if !conn.connected && conn.q.is_handshaking() {
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
                        match p.engine.conns.get(&h).and_then(|c| c.lost.as_ref()) {
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
            Kind::Listener(_) => {
                Err(Error::ssl(SSL_R_CONN_USE_ONLY).with("not supported on a listener"))
            }
        }
    }

    fn local_side(p: &Port, h: ConnId) -> Option<Side> {
        p.engine.conns.get(&h).map(|c| c.q.side())
    }

    /// SSL_write_ex: to the stream or the default stream. `conclude` sends FIN after the data.
    pub fn write(&self, data: &[u8], conclude: bool) -> Result<usize> {
        self.ticking_if_needed(|p| self.write_locked(p, data, conclude))
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
                    *st.stopped.lock() = Some(code.into_inner());
                    return Err(Error::ssl(SSL_R_STREAM_RESET)
                        .with(format!("peer stopped the stream ({code})")));
                }
                Err(WriteError::ClosedStream) => {
                    return Err(Error::ssl(SSL_R_STREAM_FINISHED).with("the stream is closed"));
                }
            }
        };
        if conclude && n == data.len() {
            let _ = s.finish();
            st.concluded.store(true, Relaxed);
        }
        p.engine.mark(h);
        p.run(Instant::now());
        Ok(n)
    }

    /// Moves what quinn has for the stream into its peek buffer (at most `max` bytes more),
    /// noting FIN and resets.
    fn pull(p: &mut Port, h: ConnId, id: StreamId, st: &StreamState, max: usize) {
        let Some(conn) = p.engine.conns.get_mut(&h) else {
            return;
        };
        let mut buf = st.peek.lock();
        let mut rs = conn.q.recv_stream(id);
        let Ok(mut chunks) = rs.read(true) else {
            return;
        };
        let mut room = max;
        while room > 0 {
            match chunks.next(room) {
                Ok(Some(ch)) => {
                    room -= ch.bytes.len();
                    buf.extend_from_slice(&ch.bytes);
                }
                Ok(None) => {
                    st.fin_seen.store(true, Relaxed);
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    *st.reset_remote.lock() = Some(code.into_inner());
                    break;
                }
            }
        }
        let _ = chunks.finalize();
        p.engine.mark(h);
    }

    /// SSL_read_ex (`peek` false) or SSL_peek_ex (`peek` true).
    pub fn read(&self, out: &mut [u8], peek: bool) -> Result<usize> {
        self.ticking_if_needed(|p| self.read_locked(p, out, peek))
    }

    /// Runs `f` on the locked domain without handling network events first; only if it
    /// would block are events handled and `f` tried again. Data already buffered is thus
    /// served before more is taken in (as OpenSSL does), which keeps quinn's reassembly
    /// buffers short during bulk transfers.
    fn ticking_if_needed<T>(&self, mut f: impl FnMut(&mut Port) -> Result<T>) -> Result<T> {
        let dom = self.domain().clone();
        let mut p = dom.lock();
        match f(&mut p) {
            Err(e) if e.is_would_block() => {
                p.tick(Instant::now());
                f(&mut p)
            }
            r => r,
        }
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
            } else if let Some(conn) = p.engine.conns.get_mut(&h)
                && let mut rs = conn.q.recv_stream(id)
                && let Ok(mut chunks) = rs.read(true)
            {
                while n < out.len() {
                    match chunks.next(out.len() - n) {
                        Ok(Some(ch)) => {
                            out[n..n + ch.bytes.len()].copy_from_slice(&ch.bytes);
                            n += ch.bytes.len();
                        }
                        Ok(None) => {
                            st.fin_seen.store(true, Relaxed);
                            break;
                        }
                        Err(ReadError::Blocked) => break,
                        Err(ReadError::Reset(code)) => {
                            *st.reset_remote.lock() = Some(code.into_inner());
                            break;
                        }
                    }
                }
                let _ = chunks.finalize();
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
        if let Some(lost) = p.engine.conns.get(&h).and_then(|c| c.lost.as_ref()) {
            return Err(closed_error(Some(lost)));
        }
        Err(want_read())
    }

    /// SSL_pending: bytes readable now without waiting (pulled into the peek buffer).
    pub fn pending(&self) -> usize {
        let dom = self.domain().clone();
        let mut p = dom.lock();
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
        let dom = self.domain().clone();
        let mut p = dom.lock_ticked();
        let (h, id, st) = self.target(&mut p, true)?;
        if id.dir() == Dir::Uni && Some(id.initiator()) != Self::local_side(&p, h) {
            return Err(
                Error::ssl(SSL_R_STREAM_RECV_ONLY).with("cannot reset a receive-only stream")
            );
        }
        let vcode = VarInt::from_u64(code)
            .map_err(|_| Error::ssl(SSL_R_BAD_VALUE_CODE).with("error code too large"))?;
        if let Some(conn) = p.engine.conns.get_mut(&h) {
            let _ = conn.q.send_stream(id).reset(vcode);
        }
        *st.reset_local.lock() = Some(code);
        p.engine.mark(h);
        p.run(Instant::now());
        Ok(())
    }

    /// SSL_new_stream: a new local stream on this connection.
    pub fn new_stream(self: &Arc<Ssl>, uni: bool) -> Result<Arc<Ssl>> {
        let c = self.as_conn()?;
        let mut p = c.domain.lock_ticked();
        let h = self.live(c, &mut p)?;
        let id = p
            .engine
            .open_stream(h, if uni { Dir::Uni } else { Dir::Bi })
            .ok_or_else(|| {
                Error::ssl(SSL_R_STREAM_COUNT_LIMITED).with("the peer allows no more streams yet")
            })?;
        drop(p);
        Ok(self.stream_obj(id))
    }

    fn stream_obj(self: &Arc<Ssl>, id: StreamId) -> Arc<Ssl> {
        let s = StreamObj {
            conn: self.clone(),
            id,
            st: StreamState::default(),
        };
        Arc::new(Ssl {
            ctx: self.ctx.clone(),
            kind: Kind::Stream(s),
            last_error: AtomicI32::new(0),
        })
    }

    /// SSL_accept_stream (non-blocking): the next stream the peer opened.
    pub fn accept_stream(self: &Arc<Ssl>) -> Result<Arc<Ssl>> {
        let c = self.as_conn()?;
        let mut p = c.domain.lock_ticked();
        let h = self.live(c, &mut p)?;
        let id = p
            .engine
            .conns
            .get_mut(&h)
            .and_then(|conn| conn.incoming.pop_front())
            .ok_or_else(want_read)?;
        drop(p);
        Ok(self.stream_obj(id))
    }

    pub fn accept_stream_queue_len(&self) -> Result<usize> {
        let c = self.as_conn()?;
        let mut p = c.domain.lock_ticked();
        let h = self.live(c, &mut p)?;
        Ok(p.engine.conns.get(&h).map_or(0, |conn| conn.incoming.len()))
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
        Ok(())
    }

    pub fn set_incoming_stream_policy(&self, policy: i32, aec: u64) -> Result<()> {
        let c = self.as_conn()?;
        match policy {
            SSL_INCOMING_STREAM_POLICY_AUTO | SSL_INCOMING_STREAM_POLICY_ACCEPT => {
                *c.reject.lock() = None
            }
            SSL_INCOMING_STREAM_POLICY_REJECT => *c.reject.lock() = Some(aec),
            _ => {
                return Err(Error::invalid(format!(
                    "unknown incoming stream policy {policy}"
                )));
            }
        }
        Ok(())
    }

    /// The stream this object addresses without creating one: (handle, id) if known.
    fn known_stream(&self) -> Option<(StreamId, &StreamState)> {
        match &self.kind {
            Kind::Stream(s) => Some((s.id, &s.st)),
            Kind::Conn(c) => (*c.default_stream.lock()).map(|id| (id, &c.default_st)),
            Kind::Listener(_) => None,
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
            Kind::Listener(_) => None,
        }
    }

    fn side(&self) -> Option<Side> {
        let c = self.conn_obj()?;
        let h = (*c.handle.lock())?;
        let p = c.domain.lock();
        Self::local_side(&p, h)
    }

    fn conn_lost(&self) -> bool {
        let Some(c) = self.conn_obj() else {
            return false;
        };
        let Some(h) = *c.handle.lock() else {
            return false;
        };
        let p = c.domain.lock();
        p.engine
            .conns
            .get(&h)
            .is_none_or(|conn| conn.lost.is_some())
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
        let mut p = c.domain.lock_ticked();
        if let Some(conn) = p.engine.conns.get_mut(&h)
            && let Ok(Some(code)) = conn.q.send_stream(id).stopped()
        {
            *st.stopped.lock() = Some(code.into_inner());
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
        let p = c.domain.lock();
        let lost = p.engine.conns.get(&h).map(|conn| conn.lost.clone());
        let local = c.closing.load(Relaxed);
        match lost {
            None | Some(None) if local => {
                Some((c.close_code.load(Relaxed), 0, Vec::new(), true, false))
            }
            Some(Some(e)) => Some(close_details(&e, local)),
            _ => None,
        }
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
                    p.run(Instant::now());
                    return Ok(false);
                }
            }
            c.closing.store(true, Relaxed);
            c.close_code.store(code, Relaxed);
            let code = VarInt::from_u64(code).unwrap_or(VarInt::from_u32(0));
            conn.q
                .close(Instant::now(), code, bytes::Bytes::copy_from_slice(reason));
            p.engine.mark(h);
            p.run(Instant::now());
        }
        Ok(true)
    }

    pub fn verify_result(&self) -> i64 {
        self.conn_obj().map_or(0, |c| c.verify.code.load(Relaxed))
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
    fn reject_incoming(&self) -> Option<u64> {
        *self.reject.lock()
    }

    fn new(domain: Arc<Domain>, listener: Option<Arc<Ssl>>) -> Conn {
        Conn {
            domain,
            handle: Mutex::new(None),
            pre: Mutex::new(Pre::default()),
            listener,
            verify: Arc::new(VerifyResult::default()),
            default_stream: Mutex::new(None),
            default_st: StreamState::default(),
            default_mode: AtomicU32::new(SSL_DEFAULT_STREAM_MODE_AUTO_BIDI),
            reject: Mutex::new(None),
            alpn: std::sync::OnceLock::new(),
            closing: AtomicBool::new(false),
            close_code: AtomicU64::new(0),
            close_reason: std::sync::OnceLock::new(),
        }
    }
}

impl Drop for Conn {
    /// Freeing a live connection closes it (the peer is told at once rather than by timeout);
    /// the engine then forgets it once quinn has.
    fn drop(&mut self) {
        if let Some(h) = *self.handle.get_mut() {
            let mut p = self.domain.lock();
            if let Some(c) = p.engine.conns.get_mut(&h)
                && !c.q.is_closed()
            {
                c.q.close(Instant::now(), VarInt::from_u32(0), bytes::Bytes::new());
                p.engine.mark(h);
                p.run(Instant::now());
            }
            p.engine.release(h);
        }
    }
}

impl Drop for StreamObj {
    /// Freeing a stream the application did not finish resets its send side and asks the
    /// peer to stop sending, as OpenSSL does.
    fn drop(&mut self) {
        let Ok(c) = self.conn.as_conn() else { return };
        let Some(h) = *c.handle.lock() else { return };
        let mut p = c.domain.lock();
        let Some(conn) = p.engine.conns.get_mut(&h) else {
            return;
        };
        let side = conn.q.side();
        let sends = self.id.dir() == Dir::Bi || self.id.initiator() == side;
        let recvs = self.id.dir() == Dir::Bi || self.id.initiator() != side;
        if sends && !*self.st.concluded.get_mut() && self.st.reset_local.get_mut().is_none() {
            let _ = conn.q.send_stream(self.id).reset(VarInt::from_u32(0));
        }
        if recvs && !*self.st.fin_seen.get_mut() && self.st.reset_remote.get_mut().is_none() {
            let _ = conn.q.recv_stream(self.id).stop(VarInt::from_u32(0));
        }
        p.engine.mark(h);
        p.run(Instant::now());
    }
}
