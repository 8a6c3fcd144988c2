//! TLS over a byte stream (TCP) on rustls: one SSL object's rustls client or server
//! connection, pumped through its read and write BIOs (any BIO with stream semantics: a
//! socket, memory, a BIO pair). OpenSSL's retry model: a call that would block on the BIO
//! returns would-block and says which direction (`want`); the application retries the same
//! call.
//! Must not touch: sockets directly (BIOs do), `extern "C"` (ffi does).
#![deny(unsafe_code)]

mod hello;
pub mod proxy;

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::sync::Mutex;

use crate::bio::Bio;
use crate::consts::*;
use crate::error::*;

/// What the application's ALPN callback (SSL_CTX_set_alpn_select_cb) decided; used by TLS
/// servers here and by QUIC servers (`ssl::alpn`).
pub enum AlpnChoice {
    /// Use this protocol (the client offered it, or the handshake fails).
    Use(Vec<u8>),
    /// No protocol, handshake goes on (SSL_TLSEXT_ERR_NOACK). QUIC requires ALPN, so there
    /// the handshake ends with no_application_protocol.
    NoAck,
    /// Refused (SSL_TLSEXT_ERR_ALERT_FATAL): the handshake ends with no_application_protocol.
    Fatal,
}

/// The application's chooser: the client's offer in order → the choice.
pub type AlpnSelect = Arc<dyn Fn(&[Vec<u8>]) -> AlpnChoice + Send + Sync>;

/// How the connection is to be made once the handshake starts.
pub enum Setup {
    Client(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    ),
    Server(Arc<rustls::ServerConfig>),
    /// A server whose ALPN protocol the application's callback chooses per ClientHello:
    /// rustls's `Acceptor` reads the ClientHello first, then the connection starts from the
    /// base configuration with the chosen protocol.
    ServerAlpn(Arc<rustls::ServerConfig>, Hello),
}

/// What a server does with a ClientHello before its connection starts: the application's
/// server-name callback (SSL_TLSEXT_ERR_* result), then its ALPN choice.
#[derive(Clone, Default)]
pub struct Hello {
    pub servername: Option<Arc<dyn Fn() -> i32 + Send + Sync>>,
    pub alpn: Option<AlpnSelect>,
    /// Asked after the server-name callback: the configuration (and ALPN callback) of the
    /// context the callback switched to with SSL_set_SSL_CTX, if it did.
    pub switched: Option<SwitchHook>,
}

/// See `Hello::switched`.
pub type SwitchHook =
    Arc<dyn Fn() -> Result<Option<(Arc<rustls::ServerConfig>, Option<AlpnSelect>)>> + Send + Sync>;

/// The ClientHello reader of a `Setup::ServerAlpn` connection, and what follows it.
type Accepting = (rustls::server::Acceptor, Arc<rustls::ServerConfig>, Hello);

const SSL_R_CALLBACK_FAILED: u32 = 234;

#[derive(Default)]
struct State {
    conn: Option<rustls::Connection>,
    /// Before `conn`, for `Setup::ServerAlpn`.
    accepting: Option<Accepting>,
    /// Our close_notify is queued (SSL_shutdown was called).
    sent_close: bool,
    /// The peer's close_notify arrived.
    got_close: bool,
    /// The transport reached EOF.
    eof: bool,
    /// Bytes a write accepted whose records have not all reached the BIO yet: the retried
    /// call reports them once they have (OpenSSL's retry-the-same-write contract).
    owed: Option<usize>,
    /// A fatal error ended the connection.
    failed: bool,
    /// Plaintext taken out of rustls by SSL_peek, read before rustls's.
    peeked: Vec<u8>,
    /// A server's handshake must be over by then (the context's handshake timeout, as the
    /// bound given); None once it is, or without a bound.
    deadline: Option<(Instant, Duration)>,
    /// The handshake ran out of time: the connection failed.
    timed_out: Option<Duration>,
    /// A server that requires a PROXY protocol header: the bytes read of it so far, then
    /// what it said.
    proxy: Proxy,
    /// Bytes read past the PROXY header: the peer's first TLS bytes, read before the BIO's.
    pre: Vec<u8>,
    /// TLS 1.3 early data.
    early: Early,
}

/// A connection's early data (SSL_write_early_data, SSL_read_early_data).
#[derive(Default)]
struct Early {
    /// Server: SSL_read_early_data starts the handshake. Otherwise early data is refused, as
    /// OpenSSL's server refuses what the application does not read with it.
    reading: bool,
    /// Server: what the first ClientHello offered.
    hello: hello::Sniff,
    /// Client: SSL_write_early_data starts the handshake, offering early data.
    offered: bool,
    /// Client: the session's limit and what was written against it (OpenSSL counts against
    /// the session's max_early_data).
    limit: u32,
    written: usize,
}

#[derive(Default)]
enum Proxy {
    #[default]
    Off,
    Reading(Vec<u8>),
    Read(proxy::ProxyInfo),
}

const SSL_R_READ_TIMEOUT_EXPIRED: u32 = 312;

fn timeout_err(limit: Duration) -> Error {
    Error::ssl(SSL_R_READ_TIMEOUT_EXPIRED).with(format!(
        "the TLS handshake did not finish within {} ms (OSSLQUIC_CTX_set_handshake_timeout)",
        limit.as_millis()
    ))
}

/// The read and write BIOs.
type Bios = (Option<Arc<Bio>>, Option<Arc<Bio>>);

pub struct Tls {
    bios: Mutex<Bios>,
    st: Mutex<State>,
    /// Which direction the last would-block waited for (SSL_ERROR_WANT_READ / _WRITE).
    want: AtomicI32,
    /// The client's SNI, known from the ClientHello on (kept apart from `st`, so that the
    /// server-name callback may ask for it while the state is locked).
    sni: Mutex<Option<String>>,
    /// SSL_OP_IGNORE_UNEXPECTED_EOF: an EOF without close_notify reads as a clean end.
    pub ignore_eof: std::sync::atomic::AtomicBool,
}

/// Whether a handshake bounded by `deadline` ran out of time before input arrived on `r`:
/// Some(its bound) if so. On a blocking socket this waits (poll) until input or the
/// deadline, unless the application gave the socket a shorter receive timeout (SO_RCVTIMEO),
/// which the read then honours; other BIOs answer at once (a non-blocking caller comes back,
/// or calls SSL_handle_events when SSL_get_event_timeout says).
fn expired(deadline: Option<(Instant, Duration)>, r: &Bio) -> Option<Duration> {
    let (at, limit) = deadline?;
    let blocking_fd = r
        .sock()
        .map(|s| s.fd())
        .filter(|&fd| fd >= 0 && crate::sys::is_blocking(fd));
    loop {
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Some(limit);
        }
        let fd = blocking_fd?;
        if crate::sys::recv_timeout(fd).is_some_and(|t| t < left) {
            return None;
        }
        let mut p = [crate::sys::PollFd {
            fd,
            read: true,
            write: false,
            ready: false,
        }];
        // 0: the wait ended (time, or a signal): look at the clock again.
        match crate::sys::poll(&mut p, Some(left)) {
            Ok(0) => continue,
            _ => return None,
        }
    }
}

/// The write BIO as an `io::Write` for rustls.
struct Out<'a>(&'a Bio);
impl Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(to_io)
    }
    /// rustls hands over every queued record at once: a socket takes them in one call
    /// (a 64 KiB SSL_write is four records).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs).map_err(to_io)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The read BIO as an `io::Read` for rustls (Ok(0): end of stream), after the bytes read
/// past a PROXY header (`State::pre`); what it reads is shown to the ClientHello sniffer.
struct In<'a>(&'a Bio, &'a mut Vec<u8>, &'a mut hello::Sniff);
impl Read for In<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.1.is_empty() {
            let n = buf.len().min(self.1.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            self.2.feed(&buf[..n]);
            return Ok(n);
        }
        let n = self.0.read(buf).map_err(to_io)?;
        self.2.feed(&buf[..n]);
        Ok(n)
    }
}

/// SSL_get_error's value for a would-block of BIO `b` in direction `dir`: a BIO that is
/// still connecting or accepting (retry "special", BIO_RR_CONNECT / BIO_RR_ACCEPT) makes it
/// SSL_ERROR_WANT_CONNECT / SSL_ERROR_WANT_ACCEPT, as OpenSSL's SSL_get_error does.
fn want_of(b: &Bio, dir: i32) -> i32 {
    use crate::bio::consts::{BIO_FLAGS_IO_SPECIAL, BIO_RR_ACCEPT, BIO_RR_CONNECT};
    if b.flags() & BIO_FLAGS_IO_SPECIAL == 0 {
        return dir;
    }
    match b.retry_reason() {
        BIO_RR_CONNECT => SSL_ERROR_WANT_CONNECT,
        BIO_RR_ACCEPT => SSL_ERROR_WANT_ACCEPT,
        _ => dir,
    }
}

fn to_io(e: Error) -> io::Error {
    if e.is_would_block() {
        io::Error::from(io::ErrorKind::WouldBlock)
    } else if is_system(e.code) {
        // Keep the errno: the caller sees SSL_ERROR_SYSCALL, as with OpenSSL.
        io::Error::from_raw_os_error(reason_of(e.code) as i32)
    } else {
        io::Error::other(e.to_string())
    }
}

/// OpenSSL's reason for a rustls error: received alerts are 1000 + the alert number (as
/// SSL_AD_REASON_OFFSET makes them), the common failures have their own reasons.
fn tls_err(e: &rustls::Error) -> Error {
    use rustls::Error as E;
    let reason = match e {
        E::AlertReceived(a) => 1000 + u32::from(u8::from(*a)),
        E::NoApplicationProtocol => 235,
        E::InvalidCertificate(_) => 134,
        E::NoCertificatesPresented => SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE,
        E::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon) => 193,
        E::PeerIncompatible(_) => 1040,
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => 267,
        E::DecryptError => 1020,
        _ => SSL_R_TLS_HANDSHAKE_FAILURE,
    };
    Error::ssl(reason).with(e.to_string())
}

fn io_err(e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::sys(n).with(e.to_string()),
        None => Error::ssl(ERR_R_INTERNAL_ERROR).with(e.to_string()),
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls::new()
    }
}

impl Tls {
    pub fn new() -> Tls {
        Tls {
            bios: Mutex::new((None, None)),
            st: Mutex::new(State::default()),
            want: AtomicI32::new(SSL_ERROR_WANT_READ),
            sni: Mutex::new(None),
            ignore_eof: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn set_bios(&self, r: Option<Arc<Bio>>, w: Option<Arc<Bio>>) {
        *self.bios.lock() = (r, w);
    }
    pub fn rbio(&self) -> Option<Arc<Bio>> {
        self.bios.lock().0.clone()
    }
    pub fn wbio(&self) -> Option<Arc<Bio>> {
        self.bios.lock().1.clone()
    }

    /// The direction the last would-block was waiting for.
    pub fn want(&self) -> i32 {
        self.want.load(Relaxed)
    }

    fn blocked(&self, want: i32) -> Error {
        self.want.store(want, Relaxed);
        Error::would_block()
    }

    pub fn started(&self) -> bool {
        let st = self.st.lock();
        st.conn.is_some() || st.accepting.is_some()
    }

    /// Reads the ClientHello (Setup::ServerAlpn), asks the callback, and starts the
    /// connection. Ok(()) once `conn` exists.
    fn accept_hello(&self, st: &mut State, r: &Bio, w: &Bio) -> Result<()> {
        let deadline = st.deadline;
        let early = st.early.reading;
        loop {
            let Some((acc, cfg, select)) = st.accepting.as_mut() else {
                return Ok(());
            };
            match acc.accept() {
                Ok(Some(accepted)) => {
                    *self.sni.lock() = accepted.client_hello().server_name().map(str::to_string);
                    if let Some(cb) = &select.servername
                        && cb() == SSL_TLSEXT_ERR_ALERT_FATAL
                    {
                        st.accepting = None;
                        st.failed = true;
                        drain_input(r);
                        return Err(Error::ssl(SSL_R_CALLBACK_FAILED)
                            .with("the server name callback refused the connection"));
                    }
                    // The callback may have switched the connection to another context: its
                    // certificate and ALPN callback apply from here.
                    match select.switched.as_ref().map(|f| f()) {
                        Some(Ok(Some((c, alpn)))) => {
                            *cfg = c;
                            select.alpn = alpn;
                        }
                        Some(Err(e)) => {
                            st.accepting = None;
                            st.failed = true;
                            drain_input(r);
                            return Err(e);
                        }
                        _ => {}
                    }
                    let offer: Vec<Vec<u8>> = accepted
                        .client_hello()
                        .alpn()
                        .map(|it| it.map(<[u8]>::to_vec).collect())
                        .unwrap_or_default();
                    let mut c = (**cfg).clone();
                    if !early {
                        // Refused unless SSL_read_early_data reads it (rustls decides while
                        // it reads the ClientHello, inside into_connection).
                        c.max_early_data_size = 0;
                    }
                    if let Some(select) = select.alpn.as_ref().filter(|_| !offer.is_empty()) {
                        c.alpn_protocols = match select(&offer) {
                            AlpnChoice::Use(p) => vec![p],
                            AlpnChoice::NoAck => Vec::new(),
                            // A protocol no client offers: rustls answers no_application_protocol.
                            AlpnChoice::Fatal => vec![b"\0refused".to_vec()],
                        };
                    }
                    st.accepting = None;
                    match accepted.into_connection(Arc::new(c)) {
                        Ok(conn) => {
                            st.conn = Some(conn.into());
                            return Ok(());
                        }
                        Err((e, mut alert)) => {
                            st.failed = true;
                            let _ = alert.write_all(&mut Out(w));
                            drain_input(r);
                            return Err(tls_err(&e));
                        }
                    }
                }
                // Bytes read past a PROXY header come first: waiting for the socket before
                // them would hang a blocking server whose header and ClientHello arrived
                // together (the client waits for the answer).
                Ok(None)
                    if st.pre.is_empty()
                        && let Some(limit) = expired(deadline, r) =>
                {
                    st.accepting = None;
                    return Err(Self::time_out(st, limit));
                }
                Ok(None) => match acc.read_tls(&mut In(r, &mut st.pre, &mut st.early.hello)) {
                    Ok(0) => {
                        st.eof = true;
                        st.failed = true;
                        return Err(Error::ssl(SSL_R_UNEXPECTED_EOF_WHILE_READING)
                            .with("the peer closed the connection during the handshake"));
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(self.blocked(want_of(r, SSL_ERROR_WANT_READ)));
                    }
                    Err(e) => {
                        st.failed = true;
                        return Err(io_err(e));
                    }
                },
                Err((e, mut alert)) => {
                    st.accepting = None;
                    st.failed = true;
                    let _ = alert.write_all(&mut Out(w));
                    drain_input(r);
                    return Err(tls_err(&e));
                }
            }
        }
    }

    /// Creates the rustls connection (at the first handshake step).
    /// `limit` bounds a server's handshake (from now).
    pub fn start(&self, setup: Setup, limit: Option<Duration>) -> Result<()> {
        let mut st = self.st.lock();
        if st.conn.is_some() || st.accepting.is_some() {
            return Ok(());
        }
        if !matches!(setup, Setup::Client(..)) {
            st.deadline = limit.map(|l| (Instant::now() + l, l));
        }
        let conn: rustls::Connection = match setup {
            Setup::ServerAlpn(cfg, select) => {
                st.accepting = Some((rustls::server::Acceptor::default(), cfg, select));
                return Ok(());
            }
            Setup::Client(cfg, name) => rustls::ClientConnection::new(cfg, name)
                .map_err(|e| tls_err(&e))?
                .into(),
            Setup::Server(cfg) => {
                let mut sc = rustls::ServerConnection::new(cfg).map_err(|e| tls_err(&e))?;
                if !st.early.reading {
                    // Refused unless SSL_read_early_data reads it.
                    sc.reject_early_data();
                }
                sc.into()
            }
        };
        st.conn = Some(conn);
        Ok(())
    }

    fn bios_or_err(&self) -> Result<(Arc<Bio>, Arc<Bio>)> {
        let b = self.bios.lock();
        match (&b.0, &b.1) {
            (Some(r), Some(w)) => Ok((r.clone(), w.clone())),
            _ => Err(Error::ssl(SSL_R_BIO_NOT_SET)
                .with("set a network BIO (SSL_set_fd/SSL_set_bio) first")),
        }
    }

    /// Sends every queued TLS record to the write BIO.
    fn flush(&self, st: &mut State, w: &Bio) -> Result<()> {
        let conn = st.conn.as_mut().ok_or_else(uninit)?;
        while conn.wants_write() {
            match conn.write_tls(&mut Out(w)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(self.blocked(want_of(w, SSL_ERROR_WANT_WRITE)));
                }
                Err(e) => {
                    st.failed = true;
                    return Err(io_err(e));
                }
            }
        }
        Ok(())
    }

    /// Reads what the read BIO has and processes it. Ok(false) at end of stream.
    fn fill(&self, st: &mut State, r: &Bio, w: &Bio) -> Result<bool> {
        let conn = st.conn.as_mut().ok_or_else(uninit)?;
        let n = match conn.read_tls(&mut In(r, &mut st.pre, &mut st.early.hello)) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(self.blocked(want_of(r, SSL_ERROR_WANT_READ)));
            }
            Err(e) => {
                st.failed = true;
                return Err(io_err(e));
            }
        };
        if n == 0 {
            st.eof = true;
            return Ok(false);
        }
        let r_io = conn.process_new_packets();
        if let rustls::Connection::Server(sc) = &*conn
            && let Some(name) = sc.server_name()
        {
            let mut sni = self.sni.lock();
            if sni.is_none() {
                *sni = Some(name.to_string());
            }
        }
        match r_io {
            Ok(io) => {
                if io.peer_has_closed() {
                    st.got_close = true;
                }
                Ok(true)
            }
            Err(e) => {
                // Send the alert rustls queued, then fail.
                st.failed = true;
                let _ = self.flush(st, w);
                drain_input(r);
                Err(tls_err(&e))
            }
        }
    }

    /// Drives the handshake until it completes or the BIO would block.
    fn pump(&self, st: &mut State, r: &Bio, w: &Bio) -> Result<()> {
        self.read_proxy(st, r)?;
        self.accept_hello(st, r, w)?;
        loop {
            self.flush(st, w)?;
            let conn = st.conn.as_ref().ok_or_else(uninit)?;
            if !conn.is_handshaking() {
                st.deadline = None;
                return Ok(());
            }
            if st.pre.is_empty()
                && let Some(limit) = expired(st.deadline, r)
            {
                return Err(Self::time_out(st, limit));
            }
            if !self.fill(st, r, w)? {
                return Err(Error::ssl(SSL_R_UNEXPECTED_EOF_WHILE_READING)
                    .with("the peer closed the connection during the handshake"));
            }
        }
    }

    /// A server that requires it reads the PROXY header first (bounded by
    /// `proxy::MAX_HEADER` and by the handshake's deadline); bytes read past it are the
    /// peer's TLS bytes (`State::pre`).
    fn read_proxy(&self, st: &mut State, r: &Bio) -> Result<()> {
        loop {
            let Proxy::Reading(buf) = &mut st.proxy else {
                return Ok(());
            };
            match proxy::parse(buf) {
                Ok(proxy::Parsed::Done(info, len)) => {
                    st.pre = buf.split_off(len);
                    st.proxy = Proxy::Read(info);
                    return Ok(());
                }
                Ok(proxy::Parsed::Incomplete) => {}
                Err(e) => {
                    st.failed = true;
                    return Err(e);
                }
            }
            if let Some(limit) = expired(st.deadline, r) {
                return Err(Self::time_out(st, limit));
            }
            let mut chunk = [0u8; 512];
            match r.read(&mut chunk) {
                Ok(0) => {
                    st.eof = true;
                    st.failed = true;
                    return Err(Error::ssl(SSL_R_UNEXPECTED_EOF_WHILE_READING)
                        .with("the peer closed the connection before its PROXY header ended"));
                }
                Ok(n) => {
                    if let Proxy::Reading(buf) = &mut st.proxy {
                        buf.extend_from_slice(&chunk[..n]);
                    }
                }
                Err(e) if e.is_would_block() => {
                    return Err(self.blocked(want_of(r, SSL_ERROR_WANT_READ)));
                }
                Err(e) => {
                    st.failed = true;
                    return Err(e);
                }
            }
        }
    }

    /// A server: requires a PROXY protocol header before the handshake (call before the
    /// first handshake step).
    pub fn require_proxy(&self) {
        let mut st = self.st.lock();
        if matches!(st.proxy, Proxy::Off) {
            st.proxy = Proxy::Reading(Vec::new());
        }
    }

    /// What the PROXY header said, once read.
    pub fn proxy_info(&self) -> Option<proxy::ProxyInfo> {
        match &self.st.lock().proxy {
            Proxy::Read(i) => Some(i.clone()),
            _ => None,
        }
    }

    /// The handshake ran out of time: the connection fails.
    fn time_out(st: &mut State, limit: Duration) -> Error {
        st.failed = true;
        st.timed_out = Some(limit);
        st.deadline = None;
        timeout_err(limit)
    }

    /// When a server's handshake must be over (None: done, or no bound).
    pub fn handshake_deadline(&self) -> Option<Instant> {
        self.st.lock().deadline.map(|(at, _)| at)
    }

    /// SSL_handle_events on a TLS object: a handshake past its deadline fails (the next call
    /// reports the timeout).
    pub fn expire(&self, now: Instant) {
        let mut st = self.st.lock();
        if let Some((at, limit)) = st.deadline
            && now >= at
        {
            Self::time_out(&mut st, limit);
        }
    }

    fn check(&self, st: &State) -> Result<()> {
        if let Some(limit) = st.timed_out {
            return Err(timeout_err(limit));
        }
        if st.failed {
            return Err(
                Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("the connection failed earlier")
            );
        }
        Ok(())
    }

    pub fn do_handshake(&self) -> Result<()> {
        let (r, w) = self.bios_or_err()?;
        let mut st = self.st.lock();
        self.check(&st)?;
        self.pump(&mut st, &r, &w)
    }

    /// SSL_read / SSL_peek: plaintext, or FIN (close_notify) as PROTOCOL_IS_SHUTDOWN "FIN".
    pub fn read(&self, out: &mut [u8], peek: bool) -> Result<usize> {
        let (r, w) = self.bios_or_err()?;
        let mut st = self.st.lock();
        self.check(&st)?;
        self.pump(&mut st, &r, &w)?;
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if !st.peeked.is_empty() {
                let n = st.peeked.len().min(out.len());
                out[..n].copy_from_slice(&st.peeked[..n]);
                if !peek {
                    st.peeked.drain(..n);
                }
                return Ok(n);
            }
            let conn = st.conn.as_mut().ok_or_else(uninit)?;
            let got = if peek {
                // rustls cannot peek: what is taken waits in `peeked` for the next read.
                let mut tmp = vec![0u8; out.len().min(16384)];
                let r = conn.reader().read(&mut tmp);
                if let Ok(n) = r {
                    st.peeked.extend_from_slice(&tmp[..n]);
                }
                r
            } else {
                conn.reader().read(out)
            };
            match got {
                Ok(0) => return Err(Error::fin()),
                Ok(_) if peek => continue,
                Ok(n) => {
                    let _ = self.flush(&mut st, &w);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                Err(e) => return Err(io_err(e)),
            }
            if st.eof && self.ignore_eof.load(Relaxed) {
                return Err(Error::fin());
            }
            if st.eof {
                st.failed = true;
                return Err(Error::ssl(SSL_R_UNEXPECTED_EOF_WHILE_READING)
                    .with("the peer closed without close_notify"));
            }
            self.fill(&mut st, &r, &w)?;
        }
    }

    /// SSL_write: all of `data` is taken (rustls buffers it) and sent as far as the BIO
    /// accepts; if it stops, WANT_WRITE, and the retried call reports the count.
    pub fn write(&self, data: &[u8]) -> Result<usize> {
        let (r, w) = self.bios_or_err()?;
        let mut st = self.st.lock();
        self.check(&st)?;
        if let Some(n) = st.owed {
            self.flush(&mut st, &w)?;
            st.owed = None;
            return Ok(n);
        }
        self.pump(&mut st, &r, &w)?;
        if st.sent_close {
            return Err(Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("SSL_shutdown was called"));
        }
        let mut done = 0;
        while done < data.len() {
            let conn = st.conn.as_mut().ok_or_else(uninit)?;
            let n = conn.writer().write(&data[done..]).map_err(io_err)?;
            done += n;
            if let Err(e) = self.flush(&mut st, &w) {
                if e.is_would_block() && done > 0 {
                    // Taken but not all sent: the retried call reports `done` once it is
                    // (and the caller writes the rest after that).
                    st.owed = Some(done);
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
        }
        Ok(done)
    }

    /// SSL_shutdown: 0 after sending close_notify, 1 once the peer's has arrived too.
    pub fn shutdown(&self) -> Result<bool> {
        let (r, w) = self.bios_or_err()?;
        let mut st = self.st.lock();
        if st.conn.is_none() {
            return Ok(true);
        }
        let first = !st.sent_close;
        if first && let Some(conn) = st.conn.as_mut() {
            conn.send_close_notify();
            st.sent_close = true;
        }
        self.flush(&mut st, &w)?;
        if st.got_close || st.failed {
            return Ok(true);
        }
        if first {
            return Ok(false);
        }
        // Later calls wait for the peer's close_notify, discarding data still arriving.
        loop {
            let conn = st.conn.as_mut().ok_or_else(uninit)?;
            let mut sink = [0u8; 4096];
            match conn.reader().read(&mut sink) {
                Ok(0) => {
                    st.got_close = true;
                    return Ok(true);
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Ok(true),
            }
            if !self.fill(&mut st, &r, &w)? {
                return Ok(true);
            }
        }
    }

    /// SSL_pending: plaintext bytes buffered.
    pub fn pending(&self) -> usize {
        let mut st = self.st.lock();
        st.conn
            .as_mut()
            .and_then(|c| c.process_new_packets().ok())
            .map_or(0, |io| io.plaintext_bytes_to_read())
            + st.peeked.len()
    }

    /// The negotiated protocol version's name, as SSL_get_version gives it.
    pub fn version(&self) -> &'static str {
        let st = self.st.lock();
        match st.conn.as_ref().and_then(|c| c.protocol_version()) {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLSv1.3",
        }
    }

    pub fn alpn(&self) -> Option<Vec<u8>> {
        let st = self.st.lock();
        st.conn.as_ref()?.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// For SSL_poll on a readable socket: takes in what arrived (without blocking) and says
    /// whether a read would now return something: plaintext, close_notify, or an error. During
    /// the handshake any input counts (a handshake step can progress).
    pub fn poll_readable(&self) -> bool {
        let Ok((r, w)) = self.bios_or_err() else {
            return false;
        };
        let mut st = self.st.lock();
        let Some(conn) = st.conn.as_ref() else {
            return true;
        };
        if conn.is_handshaking() {
            return true;
        }
        match self.fill(&mut st, &r, &w) {
            Ok(_) | Err(_) if st.got_close || st.eof || st.failed => true,
            Err(e) if !e.is_would_block() => true,
            _ => {
                !st.peeked.is_empty()
                    || st
                        .conn
                        .as_mut()
                        .and_then(|c| c.process_new_packets().ok())
                        .is_some_and(|io| io.plaintext_bytes_to_read() > 0)
            }
        }
    }

    /// The name the client asked for (SNI), on a server connection.
    /// Kept apart from the connection state, which callbacks running inside a handshake step
    /// (server name, verify) find locked.
    pub fn server_name(&self) -> Option<String> {
        self.sni.lock().clone()
    }

    /// The connection is over: close_notify received, the transport ended, or it failed.
    pub fn closed(&self) -> bool {
        let st = self.st.lock();
        st.got_close || st.failed || (st.eof && st.conn.is_some())
    }

    /// SSL_session_reused: the handshake resumed an earlier session.
    pub fn resumed(&self) -> bool {
        let st = self.st.lock();
        st.conn.as_ref().and_then(|c| c.handshake_kind()) == Some(rustls::HandshakeKind::Resumed)
    }

    /// The key-exchange group of the handshake (SSL_get_negotiated_group), once known.
    pub fn kx_group(&self) -> Option<rustls::NamedGroup> {
        let st = self.st.lock();
        st.conn
            .as_ref()?
            .negotiated_key_exchange_group()
            .map(|g| g.name())
    }

    /// The negotiated cipher suite.
    pub fn cipher(&self) -> Option<rustls::CipherSuite> {
        let st = self.st.lock();
        st.conn
            .as_ref()?
            .negotiated_cipher_suite()
            .map(|s| s.suite())
    }

    /// After the handshake, the certificates the peer sent (its own first; empty if none).
    /// None while handshaking, and when the state is locked: a callback running inside a
    /// handshake step of this connection must not wait for it.
    pub fn peer_certificates(&self) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
        let st = self.st.try_lock()?;
        let conn = st.conn.as_ref().filter(|c| !c.is_handshaking())?;
        Some(
            conn.peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        )
    }

    /// SSL_key_update on a TLS 1.3 connection after its handshake: a KeyUpdate message is
    /// queued (rustls always requests the peer's update too) and goes out with the next write
    /// or handshake step.
    /// `valid`: the type's check, made after the version's as OpenSSL does.
    pub fn key_update(&self, valid: Result<()>) -> Result<()> {
        let mut st = self.st.lock();
        let conn = st
            .conn
            .as_mut()
            .filter(|c| c.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3))
            .ok_or_else(|| {
                Error::ssl(SSL_R_WRONG_SSL_VERSION)
                    .with("key updates are TLS 1.3's (no version is negotiated yet, or another)")
            })?;
        valid?;
        if conn.is_handshaking() {
            return Err(
                Error::ssl(SSL_R_STILL_IN_INIT).with("a key update comes after the handshake")
            );
        }
        conn.refresh_traffic_keys()
            .map_err(|e| Error::ssl(SSL_R_STILL_IN_INIT).with(e.to_string()))
    }

    // ---- TLS 1.3 early data (SSL_write_early_data, SSL_read_early_data); the order of
    // calls OpenSSL allows is checked by the SSL object (`ssl::tls_conn`).

    /// A client connection about to start: it offers early data, up to `limit` bytes (the
    /// session's max_early_data). Call before the handshake starts.
    pub fn offer_early_data(&self, limit: u32) {
        let mut st = self.st.lock();
        st.early.offered = true;
        st.early.limit = limit;
    }

    /// A server connection about to start: it accepts early data (if its configuration
    /// does), for SSL_read_early_data. Call before the handshake starts.
    pub fn accept_early_data(&self) {
        self.st.lock().early.reading = true;
    }

    /// The server has read the ClientHello and answered it: whether early data is accepted
    /// is known.
    pub fn hello_answered(&self) -> bool {
        let st = self.st.lock();
        st.conn
            .as_ref()
            .is_some_and(|c| c.negotiated_cipher_suite().is_some())
    }

    /// SSL_read_early_data's step on a server: Ok(Some(n)) with early data, Ok(None) when
    /// there is none (more): the client sent none, it was refused, or all of it has been
    /// read and the client's EndOfEarlyData has arrived (rustls shows that as the end of the
    /// handshake: the client's Finished follows EndOfEarlyData in the same flight).
    pub fn read_early_data(&self, out: &mut [u8]) -> Result<Option<usize>> {
        let (r, w) = self.bios_or_err()?;
        let mut st = self.st.lock();
        self.check(&st)?;
        self.read_proxy(&mut st, &r)?;
        self.accept_hello(&mut st, &r, &w)?;
        loop {
            self.flush(&mut st, &w)?;
            let Some(rustls::Connection::Server(sc)) = st.conn.as_mut() else {
                return Err(Error::ssl(ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                    .with("SSL_read_early_data is a server's"));
            };
            let handshaking = sc.is_handshaking();
            let answered = sc.negotiated_cipher_suite().is_some();
            match sc.early_data() {
                Some(mut ed) => {
                    if let Ok(n @ 1..) = ed.read(out) {
                        return Ok(Some(n));
                    }
                    if !handshaking {
                        st.deadline = None;
                        return Ok(None);
                    }
                }
                // None sent, or refused: known once the ClientHello is answered.
                None if answered || !handshaking => {
                    if !handshaking {
                        st.deadline = None;
                    }
                    return Ok(None);
                }
                None => {}
            }
            if st.pre.is_empty()
                && let Some(limit) = expired(st.deadline, &r)
            {
                return Err(Self::time_out(&mut st, limit));
            }
            if !self.fill(&mut st, &r, &w)? {
                st.failed = true;
                return Err(Error::ssl(SSL_R_UNEXPECTED_EOF_WHILE_READING)
                    .with("the peer closed the connection during the handshake"));
            }
        }
    }

    /// SSL_write_early_data's step on a client that offers early data: all of `data` is
    /// taken. When rustls sends no early data on this connection (the ticket was used
    /// meanwhile, or the server has already refused it), the bytes are dropped, as the
    /// server skips refused early data: SSL_get_early_data_status then says REJECTED and the
    /// application sends them again after the handshake, as OpenSSL's client must.
    /// More than the session allows fails the connection (SSL_R_TOO_MUCH_EARLY_DATA, fatal
    /// as in OpenSSL). A BIO that would block: WANT_WRITE, and the retried call reports the
    /// count once the records are out.
    pub fn write_early_data(&self, data: &[u8]) -> Result<usize> {
        let (_, w) = self.bios_or_err()?;
        let mut st = self.st.lock();
        self.check(&st)?;
        if let Some(n) = st.owed {
            self.flush(&mut st, &w)?;
            st.owed = None;
            return Ok(n);
        }
        let (written, limit) = (st.early.written, st.early.limit as usize);
        let Some(rustls::Connection::Client(cc)) = st.conn.as_mut() else {
            return Err(Error::ssl(ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("SSL_write_early_data is a client's"));
        };
        if !cc.is_handshaking() {
            return Err(Error::ssl(ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("SSL_write_early_data after the handshake"));
        }
        let room = cc.early_data().map(|ed| ed.bytes_left());
        if written + data.len() > limit || room.is_some_and(|left| data.len() > left) {
            st.failed = true;
            return Err(Error::ssl(SSL_R_TOO_MUCH_EARLY_DATA).with(format!(
                "{} bytes of early data after {written}: the session allows {limit}",
                data.len()
            )));
        }
        if let Some(mut ed) = cc.early_data() {
            ed.write_all(data).map_err(io_err)?;
        }
        st.early.written += data.len();
        match self.flush(&mut st, &w) {
            Err(e) if e.is_would_block() => {
                st.owed = Some(data.len());
                Err(e)
            }
            r => r.map(|()| data.len()),
        }
    }

    /// SSL_write_early_data on a server after SSL_read_early_data: data to the client before
    /// its Finished (unauthenticated). rustls sends it once its own Finished is out; the
    /// handshake is not driven further.
    pub fn write_unauthenticated(&self, data: &[u8]) -> Result<usize> {
        let (_, w) = self.bios_or_err()?;
        let mut st = self.st.lock();
        self.check(&st)?;
        if let Some(n) = st.owed {
            self.flush(&mut st, &w)?;
            st.owed = None;
            return Ok(n);
        }
        let conn = st.conn.as_mut().ok_or_else(uninit)?;
        conn.writer().write_all(data).map_err(io_err)?;
        match self.flush(&mut st, &w) {
            Err(e) if e.is_would_block() => {
                st.owed = Some(data.len());
                Err(e)
            }
            r => r.map(|()| data.len()),
        }
    }

    /// SSL_get_early_data_status: SSL_EARLY_DATA_ACCEPTED, _REJECTED (offered, not
    /// accepted; a client says so from its first SSL_write_early_data on, as OpenSSL's) or
    /// _NOT_SENT.
    pub fn early_data_status(&self) -> i32 {
        let mut st = self.st.lock();
        let offered = st.early.offered || st.early.hello.offered();
        let accepted = match st.conn.as_mut() {
            Some(rustls::Connection::Client(cc)) => cc.is_early_data_accepted(),
            Some(rustls::Connection::Server(sc)) => sc.early_data().is_some(),
            None => false,
        };
        if accepted {
            SSL_EARLY_DATA_ACCEPTED
        } else if offered {
            SSL_EARLY_DATA_REJECTED
        } else {
            SSL_EARLY_DATA_NOT_SENT
        }
    }

    /// (started, complete): whether the handshake has begun (a failure counts as begun, as
    /// OpenSSL leaves its "before" state on any error), and whether it completed without a
    /// fatal error since (after one, OpenSSL is back "in init").
    pub fn init_progress(&self) -> (bool, bool) {
        let st = self.st.lock();
        let started = st.conn.is_some() || st.accepting.is_some() || st.failed;
        let complete = !st.failed && st.conn.as_ref().is_some_and(|c| !c.is_handshaking());
        (started, complete)
    }

    pub fn is_handshaking(&self) -> bool {
        self.st
            .lock()
            .conn
            .as_ref()
            .is_none_or(|c| c.is_handshaking())
    }
}

/// After a fatal alert: takes in what the peer already sent (at most 64 KiB, never
/// blocking), so that closing the socket right after sends FIN rather than a reset, which
/// could destroy the alert before the peer reads it.
fn drain_input(r: &Bio) {
    let Some(fd) = r.sock().map(|s| s.fd()).filter(|&fd| fd >= 0) else {
        return;
    };
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        // Only what is there now: the socket may be a blocking one.
        let mut p = [crate::sys::PollFd {
            fd,
            read: true,
            write: false,
            ready: false,
        }];
        if !matches!(
            crate::sys::poll(&mut p, Some(std::time::Duration::ZERO)),
            Ok(1)
        ) {
            break;
        }
        match r.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

fn uninit() -> Error {
    Error::ssl(SSL_R_UNINITIALIZED).with("the handshake has not started")
}
