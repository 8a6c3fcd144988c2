//! The TLS-over-TCP objects: a TLS connection (`TlsObj`: TLS_method, TLS_client_method,
//! TLS_server_method) and a TLS listener (`TlsListenerObj`: SSL_new_listener on a TLS server
//! context, over a listening TCP socket). `Ssl`'s calls dispatch here for `Kind::Tls` and
//! `Kind::TlsListener`; the record layer itself is `tls::Tls`.
//! Must not touch: QUIC state (domains, ports, the engine), `extern "C"` (ffi does).
#![deny(unsafe_code)]

use super::*;

/// A TLS-over-TCP connection (TLS_method, TLS_client_method, TLS_server_method).
pub struct TlsObj {
    pub tls: crate::tls::Tls,
    /// SSL_get_servername's answer, kept so C can hold the pointer.
    pub servername: std::sync::OnceLock<std::ffi::CString>,
    /// Server (true) or client (false), once known: from the method, or from
    /// SSL_set_accept_state / SSL_set_connect_state / SSL_accept / SSL_connect.
    pub(super) role: Mutex<Option<bool>>,
    pub(super) pre: Mutex<Pre>,
    pub verify: Arc<VerifyResult>,
    pub(super) alpn: std::sync::OnceLock<Vec<u8>>,
    /// The listener that accepted it, if any (SSL_get0_listener).
    pub listener: Option<Arc<Ssl>>,
    /// SSL_set_SSL_CTX: the context that replaces `Ssl::ctx` for this connection (shared
    /// with its ClientHello hook, see `tls_started`).
    pub ctx_now: Arc<Mutex<Option<Arc<SslCtx>>>>,
    /// OSSLQUIC_set_proxy_protocol on this connection (or its listener's), over the
    /// context's setting.
    pub(super) proxy: Mutex<Option<bool>>,
    /// What its PROXY header said, kept once read so C can hold pointers into it.
    proxy_info: std::sync::OnceLock<crate::tls::proxy::ProxyInfo>,
    /// Early data: its own limits and where SSL_write_early_data / SSL_read_early_data are.
    early: Mutex<EarlyObj>,
}

/// A TLS connection's early data settings and OpenSSL's early-data state (which calls are
/// allowed when: SSL_read_early_data(3), and ssl_lib.c's checks).
#[derive(Default)]
struct EarlyObj {
    /// SSL_set_max_early_data / SSL_set_recv_max_early_data (None: the context's).
    max: Option<u32>,
    recv_max: Option<u32>,
    step: EarlyStep,
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
enum EarlyStep {
    /// Neither call was made.
    #[default]
    None,
    /// Client: SSL_write_early_data started the handshake; more early data may follow.
    Writing,
    /// Client: SSL_connect, SSL_do_handshake or SSL_write ended the early data.
    FinishedWriting,
    /// Server: SSL_read_early_data stopped before the ClientHello was answered.
    AcceptRetry,
    /// Server: SSL_read_early_data returned data (or stopped after the ClientHello).
    ReadRetry,
    /// Server: SSL_read_early_data returned SSL_READ_EARLY_DATA_FINISH.
    FinishedReading,
}

fn not_now(what: &str) -> Error {
    Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED).with(what.to_string())
}

/// A TLS listener (SSL_new_listener on a TLS server context): its listening socket's BIO.
pub struct TlsListenerObj {
    pub(super) bio: Mutex<Option<Arc<Bio>>>,
    /// OSSLQUIC_set_proxy_protocol on the listener: its connections' setting.
    pub(super) proxy: Mutex<Option<bool>>,
}

/// The listening socket of a TLS listener's BIO: a socket BIO's fd, or an accept BIO's (bound
/// and listening on first use, as its first BIO_do_accept would).
pub(crate) fn tls_listen_fd(bio: &Bio) -> Result<i32> {
    if let Some(fd) = bio.sock().map(|s| s.fd()).filter(|&fd| fd >= 0) {
        return Ok(fd);
    }
    if let Some(a) = bio.acceptor() {
        if a.fd() < 0 {
            a.state(bio).map_err(|(_, e)| e)?;
        }
        if a.fd() >= 0 {
            return Ok(a.fd());
        }
    }
    Err(Error::ssl(SSL_R_BIO_NOT_SET)
        .with("a TLS listener needs a listening socket: SSL_set_fd or an accept BIO"))
}

/// The ClientHello hook of a TLS server whose server-name callback may switch contexts
/// (SSL_set_SSL_CTX): after the callback, the new context's server configuration (its
/// certificate) and ALPN callback, or None if the context is still `base`.
fn switch_hook(t: &TlsObj, base: &Arc<SslCtx>) -> crate::tls::SwitchHook {
    let cell = t.ctx_now.clone();
    let base = base.clone();
    Arc::new(move || {
        let Some(c) = cell.lock().clone().filter(|c| !Arc::ptr_eq(c, &base)) else {
            return Ok(None);
        };
        Ok(Some((c.tls_server_config()?, c.alpn_select())))
    })
}

/// The domain TLS objects answer with: no ports, so QUIC calls on them are no-ops.
pub(super) fn tls_null_domain() -> &'static Arc<Domain> {
    static D: std::sync::OnceLock<Arc<Domain>> = std::sync::OnceLock::new();
    D.get_or_init(|| Arc::new(Domain::empty(SSL_DOMAIN_FLAG_MULTI_THREAD)))
}

impl TlsObj {
    /// A connection in `role` (server: true) if known, accepted by `listener` if any.
    pub(super) fn new(role: Option<bool>, listener: Option<Arc<Ssl>>) -> TlsObj {
        TlsObj {
            tls: crate::tls::Tls::new(),
            servername: std::sync::OnceLock::new(),
            role: Mutex::new(role),
            pre: Mutex::new(Pre::default()),
            verify: Arc::new(VerifyResult::default()),
            alpn: std::sync::OnceLock::new(),
            listener,
            ctx_now: Arc::default(),
            proxy: Mutex::new(None),
            proxy_info: std::sync::OnceLock::new(),
            early: Mutex::new(EarlyObj::default()),
        }
    }

    /// What the connection's PROXY header said, once read.
    pub(super) fn proxy_info(&self) -> Option<&crate::tls::proxy::ProxyInfo> {
        if self.proxy_info.get().is_none() {
            let _ = self.proxy_info.set(self.tls.proxy_info()?);
        }
        self.proxy_info.get()
    }

    /// Creates the TLS object's rustls connection on first use.
    fn started(&self, ssl: &Ssl) -> Result<()> {
        if self.tls.started() {
            return Ok(());
        }
        let server = (*self.role.lock()).ok_or_else(|| {
            Error::ssl(SSL_R_UNINITIALIZED)
                .with("TLS_method: call SSL_set_connect_state or SSL_set_accept_state first")
        })?;
        let ctx = ssl.cur_ctx();
        // SSL_set1_groups_list on this object, either role.
        let groups = self.pre.lock().groups.clone();
        let setup = if server {
            // A client certificate's verify callback names this SSL.
            self.verify.ssl.store(ssl as *const Ssl as usize, Relaxed);
            let servername = ctx.servername_hook();
            let switched = servername.as_ref().map(|_| switch_hook(self, &ctx));
            let hello = crate::tls::Hello {
                servername,
                alpn: ctx.alpn_select(),
                switched,
            };
            let own = self.own_early_data_limit(&ctx);
            let cfg = ctx.tls_server_config_own(own, groups.as_ref())?;
            if hello.servername.is_some() || hello.alpn.is_some() {
                crate::tls::Setup::ServerAlpn(cfg, hello)
            } else {
                crate::tls::Setup::Server(cfg)
            }
        } else {
            let pre = self.pre.lock();
            let name = pre.sni.clone().or_else(|| pre.host.clone());
            let alpn = pre.alpn.clone();
            drop(pre);
            let name = match name {
                Some(n) => rustls::pki_types::ServerName::try_from(n.clone())
                    .map_err(|e| Error::invalid(format!("host name {n:?}: {e}")))?,
                // No name: no SNI is sent (verification then fails unless VERIFY_NONE).
                None => rustls::pki_types::ServerName::IpAddress(
                    std::net::IpAddr::from([0u8, 0, 0, 0]).into(),
                ),
            };
            let owner = ssl as *const Ssl as usize;
            let early = self.early.lock().step == EarlyStep::Writing;
            let cfg = ctx.tls_client_config(
                alpn,
                self.verify.clone(),
                owner,
                ssl.store(&ctx, false),
                early,
                groups.as_ref(),
            )?;
            crate::tls::Setup::Client(cfg, name)
        };
        self.tls
            .ignore_eof
            .store(ctx.options() & SSL_OP_IGNORE_UNEXPECTED_EOF != 0, Relaxed);
        let limit = if server {
            ctx.handshake_timeout()
        } else {
            None
        };
        if server && self.proxy.lock().unwrap_or_else(|| ctx.proxy_protocol()) {
            self.tls.require_proxy();
        }
        self.tls.start(setup, limit)
    }

    /// Runs a record-layer call of `ssl` (this object's handle): the rustls connection
    /// started, `ssl` the owner callbacks see, and its verify result current.
    fn call<T>(&self, ssl: &Ssl, f: impl FnOnce(&crate::tls::Tls) -> Result<T>) -> Result<T> {
        self.started(ssl)?;
        domain::set_current_owner(ssl as *const Ssl as usize);
        ctx::with_verify_result(&self.verify, || f(&self.tls))
    }

    /// SSL_connect / SSL_do_handshake / SSL_accept.
    pub(super) fn do_handshake(&self, ssl: &Ssl) -> Result<()> {
        self.early_gate(true, "completing the handshake")?;
        self.call(ssl, |t| t.do_handshake())
    }

    /// SSL_read_ex / SSL_peek_ex.
    pub(super) fn read(&self, ssl: &Ssl, out: &mut [u8], peek: bool) -> Result<usize> {
        self.early_gate(false, "SSL_read")?;
        self.call(ssl, |t| t.read(out, peek))
    }

    /// SSL_write_ex.
    pub(super) fn write(&self, ssl: &Ssl, data: &[u8]) -> Result<usize> {
        self.early_gate(true, "SSL_write")?;
        self.call(ssl, |t| t.write(data))
    }

    /// OpenSSL's early-data rules for the other calls: a server must not read before
    /// SSL_read_early_data got past the ClientHello, nor write or complete the handshake
    /// (`and_reading`) before it returned FINISH; a client's SSL_connect, SSL_do_handshake or
    /// SSL_write ends its early data (`and_reading` marks those).
    fn early_gate(&self, and_reading: bool, what: &str) -> Result<()> {
        let mut e = self.early.lock();
        match e.step {
            s if s == EarlyStep::AcceptRetry || (and_reading && s == EarlyStep::ReadRetry) => {
                Err(not_now(&format!(
                    "{what} before SSL_read_early_data returned SSL_READ_EARLY_DATA_FINISH"
                )))
            }
            EarlyStep::Writing if and_reading => {
                e.step = EarlyStep::FinishedWriting;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// SSL_write_early_data: a client's first call must come before any other I/O, with a
    /// session that allows early data (the one SSL_set_session gave, else the one the
    /// context's cache would offer); later calls add data until the handshake goes on. A
    /// server writes to the client before its Finished, after SSL_read_early_data.
    pub(super) fn write_early_data(&self, ssl: &Ssl, data: &[u8]) -> Result<usize> {
        let step = self.early.lock().step;
        match step {
            EarlyStep::None => {
                if *self.role.lock() != Some(false) || self.tls.started() {
                    return Err(not_now(
                        "SSL_write_early_data: a client's, before any other I/O of the connection",
                    ));
                }
                let limit = self.session_early_limit(ssl);
                if limit == 0 {
                    return Err(not_now(
                        "SSL_write_early_data: no session that allows early data (SSL_set_session)",
                    ));
                }
                self.early.lock().step = EarlyStep::Writing;
                self.tls.offer_early_data(limit);
                self.call(ssl, |t| t.write_early_data(data))
            }
            EarlyStep::Writing => self.call(ssl, |t| t.write_early_data(data)),
            EarlyStep::ReadRetry | EarlyStep::FinishedReading if self.tls.is_handshaking() => {
                self.call(ssl, |t| t.write_unauthenticated(data))
            }
            EarlyStep::FinishedReading => self.call(ssl, |t| t.write(data)),
            _ => Err(not_now(
                "SSL_write_early_data at this point of the connection",
            )),
        }
    }

    /// The max_early_data of the session a client connection would resume: SSL_set_session's
    /// (as OpenSSL checks), else the one the context's cache would offer (an osslquic
    /// extension: its clients resume from the cache by themselves).
    fn session_early_limit(&self, ssl: &Ssl) -> u32 {
        if let Some(s) = ssl.sessions.preset() {
            return s.max_early_data();
        }
        let pre = self.pre.lock();
        let Some(name) = pre.sni.clone().or_else(|| pre.host.clone()) else {
            return 0;
        };
        drop(pre);
        rustls::pki_types::ServerName::try_from(name)
            .map_or(0, |n| ssl.cur_ctx().client_cache().early_data_for(&n))
    }

    /// SSL_read_early_data: Ok(Some(n)) with early data, Ok(None) once there is no more
    /// (SSL_READ_EARLY_DATA_FINISH). Only a server's first I/O call starts it (TLS_method
    /// takes the server role, as SSL_accept would); after FINISH it is refused.
    pub(super) fn read_early_data(&self, ssl: &Ssl, out: &mut [u8]) -> Result<Option<usize>> {
        let step = self.early.lock().step;
        match step {
            EarlyStep::None => {
                if *self.role.lock() == Some(false) {
                    return Err(not_now("SSL_read_early_data is a server's"));
                }
                if self.tls.started() {
                    return Err(not_now(
                        "SSL_read_early_data: before any other I/O of the connection",
                    ));
                }
                self.set_role(true, true);
                self.early.lock().step = EarlyStep::AcceptRetry;
                self.tls.accept_early_data();
            }
            EarlyStep::AcceptRetry | EarlyStep::ReadRetry => {}
            _ => {
                return Err(not_now(
                    "SSL_read_early_data after SSL_READ_EARLY_DATA_FINISH, or on a client",
                ));
            }
        }
        let r = self.call(ssl, |t| t.read_early_data(out));
        let next = match &r {
            Ok(None) => EarlyStep::FinishedReading,
            Ok(Some(_)) => EarlyStep::ReadRetry,
            Err(_) if self.tls.hello_answered() => EarlyStep::ReadRetry,
            Err(_) => EarlyStep::AcceptRetry,
        };
        self.early.lock().step = next;
        r
    }

    /// SSL_get_early_data_status.
    pub(super) fn early_data_status(&self) -> i32 {
        self.tls.early_data_status()
    }

    /// SSL_set_max_early_data / SSL_set_recv_max_early_data (recv: the second).
    pub(super) fn set_max_early_data(&self, v: u32, recv: bool) {
        let mut e = self.early.lock();
        if recv {
            e.recv_max = Some(v);
        } else {
            e.max = Some(v);
        }
    }

    /// A server's early data limit (`ctx::early_data_limit`) when this object has its own
    /// max_early_data or recv_max_early_data, else None (the context's configuration).
    fn own_early_data_limit(&self, ctx: &SslCtx) -> Option<u32> {
        let e = self.early.lock();
        if e.max.is_none() && e.recv_max.is_none() {
            return None;
        }
        Some(super::ctx::early_data_limit(
            e.max.unwrap_or_else(|| ctx.max_early_data()),
            e.recv_max.unwrap_or_else(|| ctx.recv_max_early_data()),
        ))
    }

    /// SSL_get_max_early_data / SSL_get_recv_max_early_data: its own, else the context's.
    pub(super) fn max_early_data(&self, ctx: &SslCtx, recv: bool) -> u32 {
        let e = self.early.lock();
        if recv {
            e.recv_max.unwrap_or_else(|| ctx.recv_max_early_data())
        } else {
            e.max.unwrap_or_else(|| ctx.max_early_data())
        }
    }

    /// SSL_set_connect_state (false) / SSL_set_accept_state (true); `only_if_unset`: keep a
    /// role already chosen.
    pub(super) fn set_role(&self, server: bool, only_if_unset: bool) {
        let mut r = self.role.lock();
        if !(only_if_unset && r.is_some()) {
            *r = Some(server);
        }
    }

    /// SSL_is_server: the chosen role, else the method's.
    pub(super) fn is_server(&self, ctx: &SslCtx) -> bool {
        self.role.lock().unwrap_or(ctx.method == Method::TlsServer)
    }

    /// SSL_set_blocking_mode: the mode of its socket, if it has one.
    pub(super) fn set_blocking(&self, on: bool) -> Result<()> {
        if let Some(fd) = self.tls.rbio().and_then(|b| b.sock().map(|s| s.fd())) {
            crate::sys::set_nonblocking(fd, !on)
                .map_err(|e| Error::sys(e.raw_os_error().unwrap_or(libc::EIO)))?;
        }
        Ok(())
    }

    /// SSL_get_peer_addr: the client's address its PROXY header gave, else the peer of its
    /// socket BIO.
    pub(super) fn peer_addr(&self) -> Result<SocketAddr> {
        if let Some(a) = self.proxy_info().and_then(|i| i.source) {
            return Ok(a);
        }
        self.tls
            .rbio()
            .and_then(|b| crate::bio::peer_of(&b))
            .ok_or_else(|| Error::ssl(SSL_R_BIO_NOT_SET).with("no connected socket BIO"))
    }

    /// The negotiated ALPN protocol, kept so C can hold a pointer to it.
    pub(super) fn alpn_selected_ref(&self) -> Option<&[u8]> {
        if self.alpn.get().is_none() {
            let _ = self.alpn.set(self.tls.alpn()?);
        }
        self.alpn.get().map(|v| v.as_slice())
    }

    /// SSL_set_session's check: Ok(whether the handshake started); a server refuses.
    pub(super) fn session_settable(&self) -> Result<bool> {
        if *self.role.lock() == Some(true) {
            return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("SSL_set_session on a server connection"));
        }
        Ok(self.tls.started())
    }
}

impl TlsListenerObj {
    pub(super) fn new() -> TlsListenerObj {
        TlsListenerObj {
            bio: Mutex::new(None),
            proxy: Mutex::new(None),
        }
    }

    /// SSL_listen: a socket listens already (listen(2) is the application's); an accept BIO
    /// binds and listens here if BIO_do_accept has not yet.
    pub(super) fn listen(&self) -> Result<()> {
        let bio = self.bio.lock().clone().ok_or_else(|| {
            Error::ssl(SSL_R_BIO_NOT_SET).with("set the listening socket (SSL_set_fd) first")
        })?;
        tls_listen_fd(&bio).map(|_| ())
    }

    /// SSL_accept_connection on a TLS listener: accept(2) on its socket; a blocking
    /// listener waits (poll(2), no spinning). The connection gets its own socket BIO (which
    /// closes the fd when freed), the listener's blocking mode, and the server role.
    pub(super) fn accept(&self, ssl: &Arc<Ssl>, no_block: bool) -> Result<Arc<Ssl>> {
        let bio = self.bio.lock().clone().ok_or_else(|| {
            Error::ssl(SSL_R_BIO_NOT_SET).with("set the listening socket (SSL_set_fd) first")
        })?;
        let fd = tls_listen_fd(&bio)?;
        let blocking = ssl.blocking.load(Relaxed) && !no_block;
        let mut p = [crate::sys::PollFd {
            fd,
            read: true,
            write: false,
            ready: false,
        }];
        // A socket left blocking must not block a non-blocking accept.
        if !blocking
            && !matches!(
                crate::sys::poll(&mut p, Some(Duration::ZERO)),
                Ok(n) if n > 0
            )
        {
            return Err(want_read());
        }
        let nfd = loop {
            match crate::sys::accept(fd) {
                Ok(Some(nfd)) => break nfd,
                Ok(None) if blocking => {
                    let mut p = [crate::sys::PollFd {
                        fd,
                        read: true,
                        write: false,
                        ready: false,
                    }];
                    crate::sys::poll(&mut p, None)
                        .map_err(|e| Error::sys(e.raw_os_error().unwrap_or(libc::EIO)))?;
                }
                Ok(None) => return Err(want_read()),
                Err(e) => {
                    return Err(Error::sys(e.raw_os_error().unwrap_or(libc::EIO))
                        .with(format!("accept: {e}")));
                }
            }
        };
        let b = Bio::new(&crate::bio::METHOD_SOCKET);
        let sb = b.sock().ok_or_else(|| Error::internal("socket BIO"))?;
        sb.set_fd(nfd, true)?;
        crate::sys::set_nonblocking(nfd, !ssl.blocking.load(Relaxed))
            .map_err(|e| Error::sys(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let t = TlsObj::new(Some(true), Some(ssl.clone()));
        *t.proxy.lock() = *self.proxy.lock();
        t.tls.set_bios(Some(b.clone()), Some(b));
        Ok(Ssl::make(
            ssl.ctx.clone(),
            Kind::Tls(t),
            ssl.blocking.load(Relaxed),
        ))
    }
}

impl Ssl {
    /// OSSLQUIC_set_proxy_protocol: a TLS listener's connections, or a TLS server
    /// connection before its handshake, read a PROXY header first (or not, over the
    /// context's setting).
    pub fn set_proxy_protocol(&self, on: bool) -> Result<()> {
        match &self.kind {
            Kind::TlsListener(l) => *l.proxy.lock() = Some(on),
            Kind::Tls(t) if t.tls.started() => {
                return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                    .with("the PROXY protocol is set before the handshake starts"));
            }
            Kind::Tls(t) => *t.proxy.lock() = Some(on),
            _ => {
                return Err(Error::unsupported(
                    "the PROXY protocol is for TLS over TCP (a TLS listener or connection)",
                ));
            }
        }
        Ok(())
    }

    /// What a TLS connection's PROXY header said, None before it was read (or without one).
    pub fn proxy_info(&self) -> Option<&crate::tls::proxy::ProxyInfo> {
        match &self.kind {
            Kind::Tls(t) => t.proxy_info(),
            _ => None,
        }
    }
}
