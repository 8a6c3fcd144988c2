//! `SSL_CTX`: what a program configures once (method, certificate chain and key, verification,
//! ALPN, options) and the rustls/quinn configurations built from it.

use std::sync::Arc;
use std::time::Duration;

use crate::sync::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::consts::*;
use crate::error::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    QuicClient,
    QuicClientThread,
    QuicServer,
    /// OSSL_QUIC_method (OpenSSL 4.0): client or server by use.
    Quic,
    /// TLS over TCP: TLS_method (either role), TLS_client_method, TLS_server_method.
    Tls,
    TlsClient,
    TlsServer,
}

impl Method {
    pub fn is_tls(self) -> bool {
        matches!(self, Method::Tls | Method::TlsClient | Method::TlsServer)
    }
}

pub(crate) const TLS12_VERSION: i64 = 0x0303;
pub(crate) const TLS13_VERSION: i64 = 0x0304;

/// Makes the key logger for one connection; the argument is the `SSL *` the lines belong to
/// (0 when unknown, [`KEYLOG_CURRENT_SSL`] for the TLS connection handshaking on the calling
/// thread). Provided by the C boundary, which owns the callback.
pub type KeyLogMaker = Arc<dyn Fn(usize) -> Arc<dyn rustls::KeyLog> + Send + Sync>;

/// A key logger's `SSL *` for a configuration that TLS server connections share: the one
/// whose handshake step runs on the calling thread (`domain::current_owner`).
pub const KEYLOG_CURRENT_SSL: usize = usize::MAX;

#[derive(Default)]
struct Cfg {
    keylog: Option<KeyLogMaker>,
    chain: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
    verify_mode: i32,
    verify_cb: Option<VerifyCb>,
    roots: Vec<CertificateDer<'static>>,
    alpn: Vec<Vec<u8>>,
    alpn_select: Option<super::alpn::AlpnSelect>,
    options: u64,
    domain_flags: Option<u64>,
    server: Option<Arc<quinn_proto::ServerConfig>>,
    /// TLS over TCP: protocol version bounds (0: no bound) and the cached server config.
    min_version: i64,
    max_version: i64,
    tls_server: Option<Arc<rustls::ServerConfig>>,
    /// A TLS server configuration for connections with their own max_early_data
    /// (SSL_set_max_early_data): (that value, the `tls_server` it was derived from, it).
    tls_server_own: Option<(u32, Arc<rustls::ServerConfig>, Arc<rustls::ServerConfig>)>,
    /// SSL_CTX_set_max_early_data: the early data a server's tickets allow (0: none). TLS
    /// and QUIC servers read it.
    max_early_data: u32,
    /// SSL_CTX_set_recv_max_early_data (None: OpenSSL's default, 16384): bounds what a TLS
    /// server takes (`early_data_limit`).
    recv_max_early_data: Option<u32>,
    /// Session cache controls (SSL_CTX_set_session_cache_mode, _sess_set_cache_size,
    /// _set_timeout, _set_session_id_context).
    sess_mode: Option<i64>,
    sess_size: Option<i64>,
    sess_timeout: Option<i64>,
    sess_id_ctx: Vec<u8>,
    security_level: Option<i32>,
    /// Client sessions for resumption and the session callbacks (`ssl::session`).
    client_sessions: Option<Arc<super::session::ClientCache>>,
    /// Clients (TLS and QUIC) share one verifier and one client-certificate resolver
    /// (`client_cert`): rustls resumes a session only with the very objects that made it.
    tls_verifier: Option<Arc<Verifier>>,
    client_cert: Option<Arc<dyn rustls::client::ResolvesClientCert>>,
    /// The CA names a server sends in its CertificateRequest (SSL_CTX_set_client_CA_list,
    /// SSL_CTX_add_client_CA): DER of each subject.
    client_ca: Vec<Vec<u8>>,
    /// SSL_CTX_set_tlsext_servername_callback / _arg, as the C boundary wraps them: called
    /// with the argument, returns an SSL_TLSEXT_ERR_* value.
    servername_cb: Option<ServernameCb>,
    servername_arg: usize,
    /// SSL_CTX_set_ciphersuites: the TLS 1.3 suites allowed, in order (None: rustls's).
    tls13_suites: Option<Vec<rustls::SupportedCipherSuite>>,
    /// SSL_CTX_set1_groups_list / SSL_CTX_set1_groups: the key-exchange groups offered and
    /// accepted, in order (None: OpenSSL 3.5's default, X25519MLKEM768 first; `groups`).
    groups: Option<super::groups::Groups>,
    /// OSSLQUIC_CTX_set_handshake_timeout (None: `DEFAULT_HANDSHAKE_TIMEOUT`; zero: none).
    handshake_timeout: Option<Duration>,
    /// OSSLQUIC_CTX_set_proxy_protocol: TLS servers read a PROXY header first.
    proxy_protocol: bool,
    /// OSSLQUIC_CTX_set_fleet_secret: the keys every server of a fleet shares.
    fleet: Option<FleetKeys>,
    /// SSL_CTX_set_tlsext_ticket_keys or a fleet secret: session tickets under keys that
    /// other servers share (None: rustls's own rotating keys for TLS, no tickets for QUIC).
    tickets: Option<Arc<super::tickets::Ticketer>>,
    /// QUIC clients: the NEW_TOKEN tokens servers gave, by server name, shared by every
    /// connection made from the context (a returning client proves its address at once).
    tokens: Option<Arc<dyn quinn_proto::TokenStore>>,
    /// OSSLQUIC_CTX_set_congestion_control and OSSLQUIC_CTX_set_datagrams: what QUIC
    /// connections made from it use.
    transport: crate::quic::transport::Options,
}

impl Cfg {
    fn recv_max_early_data(&self) -> u32 {
        self.recv_max_early_data
            .unwrap_or(DEFAULT_RECV_MAX_EARLY_DATA)
    }
}

/// The keys a fleet's servers derive from their shared secret (HKDF-SHA256), so that any of
/// them can answer for a connection or a token another issued.
#[derive(Clone, Copy)]
pub struct FleetKeys {
    /// Stateless reset tokens (quinn's endpoint HMAC key).
    pub reset: [u8; 32],
    /// Retry and NEW_TOKEN tokens (quinn's token key, itself an HKDF key).
    pub token: [u8; 32],
    /// Session tickets: a key as SSL_CTX_set_tlsext_ticket_keys takes it (name, secrets).
    pub ticket: [u8; super::tickets::KEY_LEN],
}

impl FleetKeys {
    fn derive(secret: &[u8]) -> FleetKeys {
        use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
        let prk = Salt::new(HKDF_SHA256, b"osslquic fleet secret v1").extract(secret);
        // An output of `out`'s length (ring asks for it as a key type).
        struct Len(usize);
        impl aws_lc_rs::hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let fill = |label: &[u8], out: &mut [u8]| {
            // At most 64 bytes, within HKDF-SHA256's bound (255 * 32): cannot fail.
            if let Ok(okm) = prk.expand(&[label], Len(out.len())) {
                let _ = okm.fill(out);
            }
        };
        let mut k = FleetKeys {
            reset: [0; 32],
            token: [0; 32],
            ticket: [0; super::tickets::KEY_LEN],
        };
        fill(b"stateless reset", &mut k.reset);
        fill(b"address validation token", &mut k.token);
        fill(b"session ticket key name", &mut k.ticket[..16]);
        fill(b"session ticket key", &mut k.ticket[16..]);
        k
    }
}

/// How long a TLS server handshake over TCP may take unless the context says otherwise: a
/// client that connects and never finishes (slowloris) then fails its SSL_accept instead of
/// holding a thread or a process forever. The same as a QUIC handshake's bound (the 30 s idle
/// timeout).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The server-name callback as the C boundary provides it: (argument) -> SSL_TLSEXT_ERR_*.
pub type ServernameCb = Arc<dyn Fn(usize) -> i32 + Send + Sync>;

pub struct SslCtx {
    pub method: Method,
    cfg: Mutex<Cfg>,
}

fn pem_err(path: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ERR_LIB_PEM, 108).with(format!("{path}: cannot read {what}: {e}"))
}

/// Parses OpenSSL's ALPN wire format (length-prefixed names).
pub fn parse_alpn(wire: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < wire.len() {
        let n = wire[i] as usize;
        if n == 0 || i + 1 + n > wire.len() {
            return Err(Error::ssl(SSL_R_BAD_VALUE)
                .with("malformed ALPN list (want length-prefixed names)"));
        }
        out.push(wire[i + 1..i + 1 + n].to_vec());
        i += 1 + n;
    }
    Ok(out)
}

/// aws-lc-rs with its default groups ("prefer-post-quantum": X25519MLKEM768, X25519,
/// secp256r1, secp384r1), for what does not negotiate: keys, signatures, verification.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The provider with the context's TLS 1.3 suites (SSL_CTX_set_ciphersuites), if set, and
/// its groups (SSL_CTX_set1_groups_list) unless the connection has its own (`groups`).
fn suites_provider(
    c: &Cfg,
    groups: Option<&super::groups::Groups>,
) -> Arc<rustls::crypto::CryptoProvider> {
    super::ciphers::provider(c.tls13_suites.as_deref(), groups.or(c.groups.as_ref()))
}

/// Starts aws-lc's random generator, once per process. Its first use seeds a tree of
/// generators from CPU jitter, which takes tens of milliseconds of CPU: done when a program
/// makes its first context (its setup), not in the first handshake, which would carry it as
/// latency (and stamp its first packets late).
fn start_random() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use aws_lc_rs::rand::SecureRandom;
        // A failure here shows again, with an error, where random bytes are needed.
        let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut [0u8; 1]);
    });
}

impl SslCtx {
    pub fn new(method: Method) -> SslCtx {
        start_random();
        let cfg = Cfg {
            verify_mode: SSL_VERIFY_NONE,
            ..Default::default()
        };
        SslCtx {
            method,
            cfg: Mutex::new(cfg),
        }
    }

    /// Whether listeners can be made from it (a QUIC server method, or OSSL_QUIC_method).
    pub fn can_serve(&self) -> bool {
        matches!(self.method, Method::QuicServer | Method::Quic)
    }
    pub fn is_server(&self) -> bool {
        matches!(self.method, Method::QuicServer | Method::TlsServer)
    }

    pub fn use_certificate_chain_file(&self, path: &str) -> Result<()> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| pem_err(path, "certificates", e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| pem_err(path, "certificates", e))?;
        if certs.is_empty() {
            return Err(Error::new(ERR_LIB_PEM, 108).with(format!("{path}: no certificate found")));
        }
        let mut c = self.cfg.lock();
        c.chain = certs;
        c.server = None;
        c.tls_server = None;
        c.client_cert = None;
        Ok(())
    }

    pub fn use_private_key_file(&self, path: &str) -> Result<()> {
        let key =
            PrivateKeyDer::from_pem_file(path).map_err(|e| pem_err(path, "a private key", e))?;
        provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| {
                Error::ssl(SSL_R_BAD_VALUE).with(format!("{path}: unsupported private key: {e}"))
            })?;
        let mut c = self.cfg.lock();
        c.key = Some(key);
        c.server = None;
        c.tls_server = None;
        c.client_cert = None;
        Ok(())
    }

    /// SSL_CTX_check_private_key: the key must sign for the leaf certificate's public key.
    pub fn check_private_key(&self) -> Result<()> {
        let c = self.cfg.lock();
        let leaf = c
            .chain
            .first()
            .ok_or_else(|| Error::ssl(SSL_R_NO_CERTIFICATE_ASSIGNED))?;
        let key = c
            .key
            .as_ref()
            .ok_or_else(|| Error::ssl(SSL_R_NO_PRIVATE_KEY_ASSIGNED))?;
        let signer = provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| Error::ssl(SSL_R_BAD_VALUE).with(e.to_string()))?;
        let ck = rustls::sign::CertifiedKey::new(vec![leaf.clone()], signer);
        ck.keys_match().map_err(|e| {
            Error::ssl(SSL_R_KEY_VALUES_MISMATCH)
                .with(format!("private key does not match the certificate: {e}"))
        })
    }

    /// SSL_CTX_set_keylog_callback (None clears it; SSLKEYLOGFILE applies then).
    pub fn set_keylog(&self, m: Option<KeyLogMaker>) {
        let mut c = self.cfg.lock();
        c.keylog = m;
        c.server = None;
        c.tls_server = None;
    }

    /// SSL_CTX_set_verify's mode.
    pub fn set_verify(&self, mode: i32) {
        let mut c = self.cfg.lock();
        c.verify_mode = mode;
        c.tls_verifier = None;
        c.server = None;
        c.tls_server = None;
    }
    /// SSL_CTX_set_verify's callback (None: no callback).
    pub fn set_verify_callback(&self, cb: Option<VerifyCb>) {
        let mut c = self.cfg.lock();
        c.verify_cb = cb;
        c.tls_verifier = None;
        c.server = None;
        c.tls_server = None;
    }
    pub fn verify_mode(&self) -> i32 {
        self.cfg.lock().verify_mode
    }
    pub fn verify_cb(&self) -> Option<VerifyCb> {
        self.cfg.lock().verify_cb.clone()
    }

    pub fn load_verify_file(&self, path: &str) -> Result<()> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| pem_err(path, "CA certificates", e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| pem_err(path, "CA certificates", e))?;
        let mut c = self.cfg.lock();
        c.roots.extend(certs);
        c.tls_verifier = None;
        c.server = None;
        c.tls_server = None;
        Ok(())
    }

    pub fn load_verify_dir(&self, dir: &str) -> Result<()> {
        let rd = std::fs::read_dir(dir).map_err(|e| pem_err(dir, "a CA directory", e))?;
        for ent in rd.flatten() {
            let p = ent.path();
            if p.is_file()
                && let Ok(it) = CertificateDer::pem_file_iter(&p)
            {
                let mut c = self.cfg.lock();
                c.roots.extend(it.flatten());
                c.tls_verifier = None;
                c.server = None;
                c.tls_server = None;
            }
        }
        Ok(())
    }

    /// SSL_CTX_set_default_verify_paths: SSL_CERT_FILE / SSL_CERT_DIR, else Debian's bundle.
    pub fn set_default_verify_paths(&self) -> Result<()> {
        let file = std::env::var("SSL_CERT_FILE")
            .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
        let _ = self.load_verify_file(&file);
        if let Ok(dir) = std::env::var("SSL_CERT_DIR") {
            let _ = self.load_verify_dir(&dir);
        }
        Ok(())
    }

    /// SSL_CTX_set_client_CA_list (replaces) / SSL_CTX_add_client_CA (appends): the CA
    /// names a server sends when it asks for a client certificate.
    pub fn set_client_ca(&self, names: Vec<Vec<u8>>, append: bool) {
        let mut c = self.cfg.lock();
        if !append {
            c.client_ca.clear();
        }
        c.client_ca.extend(names);
        c.server = None;
        c.tls_server = None;
    }

    pub fn set_alpn(&self, wire: &[u8]) -> Result<()> {
        let list = parse_alpn(wire)?;
        let mut c = self.cfg.lock();
        c.alpn = list;
        c.server = None;
        Ok(())
    }
    pub fn set_servername_cb(&self, cb: Option<ServernameCb>) {
        self.cfg.lock().servername_cb = cb;
    }
    pub fn set_servername_arg(&self, arg: usize) {
        self.cfg.lock().servername_arg = arg;
    }
    /// The server-name callback bound to its current argument, if set.
    pub fn servername_hook(&self) -> Option<Arc<dyn Fn() -> i32 + Send + Sync>> {
        let c = self.cfg.lock();
        let cb = c.servername_cb.clone()?;
        let arg = c.servername_arg;
        Some(Arc::new(move || cb(arg)))
    }

    /// The ALPN selection callback, if set.
    pub fn alpn_select(&self) -> Option<super::alpn::AlpnSelect> {
        self.cfg.lock().alpn_select.clone()
    }

    /// SSL_CTX_set_alpn_select_cb (None clears it).
    pub fn set_alpn_select(&self, f: Option<super::alpn::AlpnSelect>) {
        let mut c = self.cfg.lock();
        c.alpn_select = f;
        c.server = None;
        c.tls_server = None;
    }
    pub fn alpn(&self) -> Vec<Vec<u8>> {
        self.cfg.lock().alpn.clone()
    }
    /// SSL_CTX_get_domain_flags: what new domains get (OpenSSL's default for the client and
    /// server methods: MULTI_THREAD | LEGACY_BLOCKING; for the thread method
    /// MULTI_THREAD | THREAD_ASSISTED | BLOCKING).
    pub fn domain_flags(&self) -> u64 {
        self.cfg.lock().domain_flags.unwrap_or(match self.method {
            Method::QuicClientThread => 2 | 4 | 8,
            _ => 2 | 16,
        })
    }
    pub fn set_domain_flags(&self, f: u64) {
        self.cfg.lock().domain_flags = Some(f);
    }
    pub fn options(&self) -> u64 {
        self.cfg.lock().options
    }

    /// OSSLQUIC_CTX_set_handshake_timeout: the bound of a TLS server handshake (zero: none).
    pub fn set_handshake_timeout(&self, t: Duration) {
        self.cfg.lock().handshake_timeout = Some(t);
    }

    /// OSSLQUIC_CTX_set_fleet_secret: derives the fleet's keys; the server configurations
    /// made from now on use them.
    pub fn set_fleet_secret(&self, secret: &[u8]) -> Result<()> {
        if secret.len() < 16 {
            return Err(Error::ssl(SSL_R_BAD_VALUE)
                .with("a fleet secret has at least 16 bytes (32 random bytes are best)"));
        }
        let mut c = self.cfg.lock();
        let keys = FleetKeys::derive(secret);
        c.fleet = Some(keys);
        c.server = None;
        // The ticket key rotates: tickets sealed under a previous secret's key still open.
        Self::ticketer(&mut c).rotate(&keys.ticket);
        Ok(())
    }

    /// The context's ticket keys, made (and the cached server configurations dropped, to be
    /// remade with them) on first use.
    fn ticketer(c: &mut Cfg) -> Arc<super::tickets::Ticketer> {
        if let Some(t) = &c.tickets {
            return t.clone();
        }
        let t = Arc::new(super::tickets::Ticketer::new(ticket_lifetime(c)));
        c.tickets = Some(t.clone());
        c.server = None;
        c.tls_server = None;
        t
    }

    /// SSL_CTX_set_tlsext_ticket_keys: `keys` holds one 80-byte key (OpenSSL's form: name,
    /// HMAC secret, AES key) or, an osslquic extension for rotation, up to `MAX_KEYS` of
    /// them, newest first: new tickets are sealed under the first, the others still open.
    pub fn set_ticket_keys(&self, keys: &[u8]) -> Result<()> {
        use super::tickets::{KEY_LEN, MAX_KEYS};
        if keys.is_empty() || !keys.len().is_multiple_of(KEY_LEN) || keys.len() > KEY_LEN * MAX_KEYS
        {
            return Err(Error::ssl(SSL_R_INVALID_TICKET_KEYS_LENGTH).with(format!(
                "ticket keys are {KEY_LEN} bytes each, 1 to {MAX_KEYS} of them; got {} bytes",
                keys.len()
            )));
        }
        let list: Vec<[u8; KEY_LEN]> = keys
            .chunks_exact(KEY_LEN)
            .filter_map(|k| k.try_into().ok())
            .collect();
        Self::ticketer(&mut self.cfg.lock()).set(&list);
        Ok(())
    }

    /// SSL_CTX_set_tlsext_ticket_key_evp_cb: the application names and finds ticket keys
    /// (None: the context's keys again).
    pub fn set_ticket_callback(&self, cb: Option<super::tickets::KeyCallback>) {
        Self::ticketer(&mut self.cfg.lock()).set_callback(cb);
    }

    /// SSL_CTX_get_tlsext_ticket_keys: the newest key (a random one is made first if the
    /// context has none, as OpenSSL's context always holds one).
    pub fn ticket_key(&self) -> Result<[u8; super::tickets::KEY_LEN]> {
        Self::ticketer(&mut self.cfg.lock())
            .newest()
            .ok_or_else(|| Error::internal("no random bytes for a ticket key"))
    }

    pub fn fleet_keys(&self) -> Option<FleetKeys> {
        self.cfg.lock().fleet
    }

    /// OSSLQUIC_CTX_set_congestion_control: by name ("cubic", "newreno", "bbr").
    pub fn set_congestion(&self, name: &str) -> Result<()> {
        let cc = crate::quic::transport::Congestion::from_name(name).ok_or_else(|| {
            Error::ssl(SSL_R_BAD_VALUE).with(format!(
                "congestion control {name:?}: \"cubic\", \"newreno\" or \"bbr\""
            ))
        })?;
        self.cfg.lock().transport.congestion = cc;
        Ok(())
    }

    pub fn congestion(&self) -> crate::quic::transport::Congestion {
        self.cfg.lock().transport.congestion
    }

    /// OSSLQUIC_CTX_set_datagrams: RFC 9221 datagrams, at most `queue` unread (0: off).
    pub fn set_datagrams(&self, queue: usize) {
        self.cfg.lock().transport.datagram_queue = queue;
    }

    pub fn transport_options(&self) -> crate::quic::transport::Options {
        self.cfg.lock().transport
    }

    /// OSSLQUIC_CTX_set_proxy_protocol.
    pub fn set_proxy_protocol(&self, on: bool) {
        self.cfg.lock().proxy_protocol = on;
    }

    pub fn proxy_protocol(&self) -> bool {
        self.cfg.lock().proxy_protocol
    }

    /// The bound of a TLS server handshake, None if there is none.
    pub fn handshake_timeout(&self) -> Option<Duration> {
        let t = self
            .cfg
            .lock()
            .handshake_timeout
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        (!t.is_zero()).then_some(t)
    }
    pub fn set_options(&self, set: u64, clear: u64) -> u64 {
        let mut c = self.cfg.lock();
        c.options = (c.options | set) & !clear;
        c.tls_server = None;
        c.server = None;
        c.options
    }

    /// SSL_CTX_set_max_early_data: what this context's servers accept and announce in their
    /// tickets. Servers then issue single-use (stateful) tickets, as OpenSSL does with its
    /// anti-replay protection on (see `tls_server_config`; rustls accepts early data only on
    /// those), so ticket keys shared by a fleet do not apply meanwhile. QUIC knows only "none"
    /// and "unbounded" (RFC 9001 §4.6.1): any other value means the latter, bounded by the
    /// transport's flow control.
    pub fn set_max_early_data(&self, v: u32) {
        let mut c = self.cfg.lock();
        c.max_early_data = v;
        c.tls_server = None;
        c.server = None;
    }
    /// SSL_CTX_get_max_early_data (0 unless set, as OpenSSL).
    pub fn max_early_data(&self) -> u32 {
        self.cfg.lock().max_early_data
    }
    /// SSL_CTX_set_recv_max_early_data: a TLS server takes at most this much early data
    /// (see `early_data_limit`). QUIC's early data is bounded by flow control instead.
    pub fn set_recv_max_early_data(&self, v: u32) {
        let mut c = self.cfg.lock();
        c.recv_max_early_data = Some(v);
        c.tls_server = None;
    }
    /// SSL_CTX_get_recv_max_early_data (OpenSSL's default: SSL3_RT_MAX_PLAIN_LENGTH).
    pub fn recv_max_early_data(&self) -> u32 {
        self.cfg.lock().recv_max_early_data()
    }

    /// SSL_CTX_set_min/max_proto_version for TLS over TCP (1.2 or 1.3; 0 clears).
    pub fn set_proto_version(&self, max: bool, v: i64) -> Result<()> {
        if v != 0 && v != TLS12_VERSION && v != TLS13_VERSION {
            return Err(Error::ssl(SSL_R_WRONG_SSL_VERSION).with(format!(
                "version {v:#x}: only TLS 1.2 (0x303) and 1.3 (0x304) are supported"
            )));
        }
        let mut c = self.cfg.lock();
        if max {
            c.max_version = v;
        } else {
            c.min_version = v;
        }
        c.tls_server = None;
        Ok(())
    }

    fn tls_versions(c: &Cfg) -> Result<Vec<&'static rustls::SupportedProtocolVersion>> {
        let lo = if c.min_version == 0 {
            TLS12_VERSION
        } else {
            c.min_version
        };
        let hi = if c.max_version == 0 {
            TLS13_VERSION
        } else {
            c.max_version
        };
        // SSL_OP_NO_TLSv1_2 / _3 take a version out as well (SSL_CTX_set_options(3)).
        let off = |bit: u64| c.options & bit != 0;
        let mut v = Vec::new();
        if lo <= TLS12_VERSION && hi >= TLS12_VERSION && !off(crate::consts::SSL_OP_NO_TLSv1_2) {
            v.push(&rustls::version::TLS12);
        }
        if lo <= TLS13_VERSION && hi >= TLS13_VERSION && !off(crate::consts::SSL_OP_NO_TLSv1_3) {
            v.push(&rustls::version::TLS13);
        }
        if v.is_empty() {
            return Err(Error::ssl(SSL_R_WRONG_SSL_VERSION).with(
                "no protocol version left: the minimum is above the maximum, or SSL_OP_NO_TLSv1_* removed the rest",
            ));
        }
        Ok(v)
    }

    /// SSL_CTX_set_session_cache_mode: returns the previous mode (default SERVER).
    pub fn set_session_cache_mode(&self, m: i64) -> i64 {
        let mut c = self.cfg.lock();
        let old = c.sess_mode.replace(m).unwrap_or(SSL_SESS_CACHE_SERVER);
        c.tls_server = None;
        old
    }
    pub fn session_cache_mode(&self) -> i64 {
        self.cfg.lock().sess_mode.unwrap_or(SSL_SESS_CACHE_SERVER)
    }
    /// SSL_CTX_sess_set_cache_size: returns the previous size (OpenSSL's default 20480).
    pub fn set_session_cache_size(&self, n: i64) -> i64 {
        let mut c = self.cfg.lock();
        let old = c
            .sess_size
            .replace(n)
            .unwrap_or(SSL_SESSION_CACHE_MAX_SIZE_DEFAULT);
        c.tls_server = None;
        old
    }
    pub fn session_cache_size(&self) -> i64 {
        self.cfg
            .lock()
            .sess_size
            .unwrap_or(SSL_SESSION_CACHE_MAX_SIZE_DEFAULT)
    }
    /// SSL_CTX_set_timeout: returns the previous timeout in seconds (default 7200 for
    /// TLS_method contexts). Recorded; rustls's tickets live 6 hours.
    pub fn set_session_timeout(&self, t: i64) -> i64 {
        let mut c = self.cfg.lock();
        let old = c.sess_timeout.replace(t).unwrap_or(7200);
        if let Some(k) = &c.tickets {
            k.set_lifetime(ticket_lifetime(&c));
        }
        old
    }
    pub fn session_timeout(&self) -> i64 {
        self.cfg.lock().sess_timeout.unwrap_or(7200)
    }
    /// The context's client sessions and session callbacks.
    pub fn client_cache(&self) -> Arc<super::session::ClientCache> {
        self.cfg
            .lock()
            .client_sessions
            .get_or_insert_with(Default::default)
            .clone()
    }
    /// The cache settings a connection starting now follows.
    pub fn cache_settings(&self) -> super::session::CacheSettings {
        let c = self.cfg.lock();
        super::session::CacheSettings {
            mode: c.sess_mode.unwrap_or(SSL_SESS_CACHE_SERVER),
            timeout: c.sess_timeout.unwrap_or(7200).max(0) as u64,
            size: c.sess_size.unwrap_or(SSL_SESSION_CACHE_MAX_SIZE_DEFAULT),
        }
    }
    /// SSL_CTX_set_session_id_context (at most 32 bytes, as OpenSSL).
    pub fn set_session_id_context(&self, id: &[u8]) -> Result<()> {
        if id.len() > 32 {
            return Err(Error::ssl(SSL_R_SSL_SESSION_ID_CONTEXT_TOO_LONG)
                .with("a session id context has at most 32 bytes"));
        }
        self.cfg.lock().sess_id_ctx = id.to_vec();
        Ok(())
    }
    /// SSL_CTX_set_security_level: recorded, not enforced (rustls offers nothing weaker than
    /// level 2 allows; levels 3-5 would also refuse keys under 128/192/256 bits).
    pub fn set_security_level(&self, l: i32) {
        self.cfg.lock().security_level = Some(l);
    }
    pub fn security_level(&self) -> i32 {
        // OpenSSL 3's default (OPENSSL_TLS_SECURITY_LEVEL).
        self.cfg.lock().security_level.unwrap_or(2)
    }

    /// SSL_CTX_set_ciphersuites: the TLS 1.3 suites of later handshakes (see `ciphers`).
    pub fn set_ciphersuites(&self, list: &str) -> Result<()> {
        let suites = super::ciphers::parse_tls13(list)?;
        let mut c = self.cfg.lock();
        c.tls13_suites = Some(suites);
        c.server = None;
        c.tls_server = None;
        c.tls_verifier = None;
        Ok(())
    }

    /// SSL_CTX_set1_groups_list / SSL_CTX_set1_groups: the groups of later handshakes (see
    /// `groups`); listeners made before keep theirs, as with set_ciphersuites.
    pub fn set_groups(&self, groups: super::groups::Groups) {
        let mut c = self.cfg.lock();
        c.groups = Some(groups);
        c.server = None;
        c.tls_server = None;
    }

    /// The rustls server configuration for TLS over TCP (cached until the context changes).
    pub fn tls_server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        self.tls_server_config_for(None)
    }

    /// As [`tls_server_config`](Self::tls_server_config), for a connection with its own
    /// groups (SSL_set1_groups_list): made for it, not cached.
    pub fn tls_server_config_for(
        &self,
        groups: Option<&super::groups::Groups>,
    ) -> Result<Arc<rustls::ServerConfig>> {
        let mut c = self.cfg.lock();
        if let (Some(s), None) = (&c.tls_server, groups) {
            return Ok(s.clone());
        }
        if c.chain.is_empty() {
            return Err(Error::ssl(SSL_R_NO_CERTIFICATE_ASSIGNED)
                .with("a TLS server needs SSL_CTX_use_certificate_chain_file first"));
        }
        let key = c.key.as_ref().ok_or_else(|| {
            Error::ssl(SSL_R_NO_PRIVATE_KEY_ASSIGNED)
                .with("a TLS server needs SSL_CTX_use_PrivateKey_file first")
        })?;
        let mut tls = rustls::ServerConfig::builder_with_provider(suites_provider(&c, groups))
            .with_protocol_versions(&Self::tls_versions(&c)?)
            .map_err(|e| Error::internal(e.to_string()))?
            .with_client_cert_verifier(Self::client_verifier(&c)?)
            .with_single_cert(c.chain.clone(), key.clone_key())
            .map_err(|e| Error::ssl(SSL_R_KEY_VALUES_MISMATCH).with(e.to_string()))?;
        tls.alpn_protocols = c.alpn.clone();
        tls.ignore_client_order = c.options & crate::consts::SSL_OP_CIPHER_SERVER_PREFERENCE != 0;
        tls.key_log = key_log(&c, KEYLOG_CURRENT_SSL);
        // Resumption: a session cache (TLS 1.2 session ids, TLS 1.3 stateful tickets) unless
        // the server cache is off, and stateless tickets unless SSL_OP_NO_TICKET or early data
        // is on.
        let mode = c.sess_mode.unwrap_or(SSL_SESS_CACHE_SERVER);
        let size = c.sess_size.unwrap_or(SSL_SESSION_CACHE_MAX_SIZE_DEFAULT);
        tls.session_storage = if mode & SSL_SESS_CACHE_SERVER != 0 && size != 0 {
            rustls::server::ServerSessionMemoryCache::new(if size < 0 { 1 } else { size as usize })
        } else {
            Arc::new(rustls::server::NoServerSessionStorage {})
        };
        // Early data (SSL_CTX_set_max_early_data > 0): rustls accepts it only on a stateful
        // ticket and issues tickets that allow it only without a ticketer (RFC 8446 section
        // 8.1). A stateful TLS 1.3 ticket is taken out of the session cache when it resumes,
        // so it carries early data once: OpenSSL's default anti-replay, which also switches to
        // stateful tickets while max_early_data > 0. SSL_OP_NO_ANTI_REPLAY cannot turn that
        // off (rustls refuses 0-RTT on stateless tickets), and shared ticket keys
        // (SSL_CTX_set_tlsext_ticket_keys, a fleet secret) do not apply while early data is
        // on: tickets resume only at the server that issued them.
        tls.max_early_data_size = early_data_limit(c.max_early_data, c.recv_max_early_data());
        if c.options & SSL_OP_NO_TICKET == 0 && tls.max_early_data_size == 0 {
            tls.ticketer = Self::stateless_tickets(&c)?;
        }
        let tls = Arc::new(tls);
        if groups.is_none() {
            c.tls_server = Some(tls.clone());
        }
        Ok(tls)
    }

    /// The stateless ticketer of a TLS server: the context's shared keys, else rustls's own.
    fn stateless_tickets(c: &Cfg) -> Result<Arc<dyn rustls::server::ProducesTickets>> {
        Ok(match &c.tickets {
            Some(t) => t.clone(),
            None => rustls::crypto::aws_lc_rs::Ticketer::new()
                .map_err(|e| Error::internal(e.to_string()))?,
        })
    }

    /// The TLS server configuration for a connection whose own early data limit
    /// (SSL_set_max_early_data, SSL_set_recv_max_early_data: `early_data_limit`) is `own`, if set, and whose own groups are `groups`: the
    /// context's (or the one made for those groups), with that limit and the tickets it
    /// needs (stateful with early data, else as the context's would be). It shares the
    /// context's session cache.
    pub fn tls_server_config_own(
        &self,
        own: Option<u32>,
        groups: Option<&super::groups::Groups>,
    ) -> Result<Arc<rustls::ServerConfig>> {
        let base = self.tls_server_config_for(groups)?;
        let Some(v) = own.filter(|&v| v != base.max_early_data_size) else {
            return Ok(base);
        };
        if groups.is_some() {
            let mut d = (*base).clone();
            d.max_early_data_size = v;
            if v > 0 {
                d.ticketer = Arc::new(NoTickets);
            }
            return Ok(Arc::new(d));
        }
        let mut c = self.cfg.lock();
        if let Some((m, b, d)) = &c.tls_server_own
            && *m == v
            && Arc::ptr_eq(b, &base)
        {
            return Ok(d.clone());
        }
        let mut d = (*base).clone();
        d.max_early_data_size = v;
        if v > 0 {
            d.ticketer = Arc::new(NoTickets);
        } else if c.options & SSL_OP_NO_TICKET == 0 {
            d.ticketer = Self::stateless_tickets(&c)?;
        }
        let d = Arc::new(d);
        c.tls_server_own = Some((v, base, d.clone()));
        Ok(d)
    }

    /// A rustls client configuration for one TLS-over-TCP connection; `sessions` is the
    /// connection's session store (`session::ConnStore`); `early_data`: the connection
    /// offers early data (SSL_write_early_data); `groups` its own groups
    /// (SSL_set1_groups_list; None: the context's).
    pub fn tls_client_config(
        &self,
        alpn: Option<Vec<Vec<u8>>>,
        result: Arc<VerifyResult>,
        ssl: usize,
        sessions: Arc<dyn rustls::client::ClientSessionStore>,
        early_data: bool,
        groups: Option<&super::groups::Groups>,
    ) -> Result<Arc<rustls::ClientConfig>> {
        // Outcomes are reported through `with_verify_result` (see there); the callback's
        // X509_STORE_CTX_get_ex_data names this SSL.
        result.ssl.store(ssl, std::sync::atomic::Ordering::Relaxed);
        let mut c = self.cfg.lock();
        let (verifier, cert) = self.client_parts(&mut c)?;
        let mut tls = rustls::ClientConfig::builder_with_provider(suites_provider(&c, groups))
            .with_protocol_versions(&Self::tls_versions(&c)?)
            .map_err(|e| Error::internal(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(cert);
        tls.alpn_protocols = alpn.unwrap_or_else(|| c.alpn.clone());
        tls.key_log = key_log(&c, ssl);
        tls.resumption = rustls::client::Resumption::store(sessions);
        // Offered only by a connection that SSL_write_early_data starts: OpenSSL's client
        // sends the early_data extension then and only then.
        tls.enable_early_data = early_data;
        Ok(Arc::new(tls))
    }

    /// What a client offers when a server asks for a certificate: the context's chain and
    /// key if both are set (SSL_CTX_use_certificate_chain_file / _use_PrivateKey_file),
    /// else nothing. Cached: rustls resumes only with the resolver that made a session.
    /// What every client configuration of this context shares (TLS and QUIC): one verifier
    /// and one client-certificate resolver, made once (rustls resumes a session only with
    /// the very objects that made it).
    fn client_parts(
        &self,
        c: &mut Cfg,
    ) -> Result<(
        Arc<dyn ServerCertVerifier>,
        Arc<dyn rustls::client::ResolvesClientCert>,
    )> {
        let verifier = match &c.tls_verifier {
            Some(v) => v.clone(),
            None => {
                let v = self.verifier(c, None)?;
                c.tls_verifier = Some(v.clone());
                v
            }
        };
        Ok((verifier, Self::client_cert(c)?))
    }

    fn client_cert(c: &mut Cfg) -> Result<Arc<dyn rustls::client::ResolvesClientCert>> {
        if let Some(r) = &c.client_cert {
            return Ok(r.clone());
        }
        let r: Arc<dyn rustls::client::ResolvesClientCert> = match (&c.key, c.chain.is_empty()) {
            (Some(key), false) => {
                let signer = provider()
                    .key_provider
                    .load_private_key(key.clone_key())
                    .map_err(|e| Error::ssl(SSL_R_BAD_VALUE).with(e.to_string()))?;
                Arc::new(super::clientauth::OfferCert(Arc::new(
                    rustls::sign::CertifiedKey::new(c.chain.clone(), signer),
                )))
            }
            _ => Arc::new(NoClientCert),
        };
        c.client_cert = Some(r.clone());
        Ok(r)
    }

    /// A server's client-certificate verifier (see `clientauth::ClientVerifier`).
    fn client_verifier(c: &Cfg) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
        Ok(Arc::new(super::clientauth::ClientVerifier::new(
            &c.roots,
            c.verify_mode,
            c.verify_cb.clone(),
            c.client_ca
                .iter()
                .map(|d| rustls::DistinguishedName::from(d.clone()))
                .collect(),
            provider(),
        )?))
    }

    /// The certificate verifier for a client connection (see `Verifier`).
    fn verifier(&self, c: &Cfg, result: Option<Arc<VerifyResult>>) -> Result<Arc<Verifier>> {
        let mut roots = rustls::RootCertStore::empty();
        for r in &c.roots {
            let _ = roots.add(r.clone());
        }
        let inner: Option<Arc<dyn ServerCertVerifier>> = if roots.is_empty() {
            None
        } else {
            Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .map_err(|e| Error::internal(e.to_string()))?,
            )
        };
        Ok(Arc::new(Verifier {
            inner,
            mode: c.verify_mode,
            cb: c.verify_cb.clone(),
            result,
            provider: provider(),
        }))
    }

    /// The quinn server configuration (cached until the context changes).
    pub fn server_config(&self) -> Result<Arc<quinn_proto::ServerConfig>> {
        let mut c = self.cfg.lock();
        if let Some(s) = &c.server {
            return Ok(s.clone());
        }
        if c.chain.is_empty() {
            return Err(Error::ssl(SSL_R_NO_CERTIFICATE_ASSIGNED)
                .with("a QUIC server needs SSL_CTX_use_certificate_chain_file first"));
        }
        let key = c.key.as_ref().ok_or_else(|| {
            Error::ssl(SSL_R_NO_PRIVATE_KEY_ASSIGNED)
                .with("a QUIC server needs SSL_CTX_use_PrivateKey_file first")
        })?;
        let mut tls = rustls::ServerConfig::builder_with_provider(suites_provider(&c, None))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::internal(e.to_string()))?
            .with_client_cert_verifier(Self::client_verifier(&c)?)
            .with_single_cert(c.chain.clone(), key.clone_key())
            .map_err(|e| Error::ssl(SSL_R_KEY_VALUES_MISMATCH).with(e.to_string()))?;
        tls.alpn_protocols = c.alpn.clone();
        tls.ignore_client_order = c.options & crate::consts::SSL_OP_CIPHER_SERVER_PREFERENCE != 0;
        // One configuration serves every connection of the listener, so server-side lines
        // carry no SSL pointer.
        tls.key_log = key_log(&c, 0);
        // The context's ticket keys, shared with the listeners made from it so that keys set
        // later reach them: while it holds none, rustls's stateful tickets (which only this
        // process resumes); once given keys, stateless tickets any server holding them opens.
        if c.options & SSL_OP_NO_TICKET == 0 && c.max_early_data == 0 {
            tls.ticketer = Self::ticketer(&mut c);
        }
        // Early data (0-RTT): single-use stateful tickets (see `set_max_early_data`).
        if c.max_early_data > 0 {
            tls.max_early_data_size = u32::MAX;
        }
        let inner: Arc<dyn quinn_proto::crypto::ServerConfig> = match &c.alpn_select {
            Some(f) => Arc::new(super::alpn::SelectingServer::new(tls, f.clone())?),
            None => Arc::new(
                quinn_proto::crypto::rustls::QuicServerConfig::with_initial(
                    Arc::new(tls),
                    super::ciphers::quic_initial()?,
                )
                .map_err(|e| Error::internal(e.to_string()))?,
            ),
        };
        // Client certificates: each connection's outcome is its own (clientauth).
        let inner: Arc<dyn quinn_proto::crypto::ServerConfig> =
            if c.verify_mode & SSL_VERIFY_PEER != 0 {
                Arc::new(super::clientauth::VerifyingServer { inner })
            } else {
                inner
            };
        // Wrapped to tell resumed handshakes (SSL_session_reused).
        let crypto = Arc::new(super::session::ObservingServer(inner));
        // The engine gives each connection its own transport settings (quic::transport).
        let sc = Arc::new(match &c.fleet {
            // Tokens any server of the fleet accepts.
            Some(k) => quinn_proto::ServerConfig::new(
                crypto,
                Arc::new(
                    aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, &[]).extract(&k.token),
                ),
            ),
            None => quinn_proto::ServerConfig::with_crypto(crypto),
        });
        c.server = Some(sc.clone());
        Ok(sc)
    }

    /// A client configuration for one connection; verification outcomes land in `result`.
    pub fn client_config(
        &self,
        alpn: Option<Vec<Vec<u8>>>,
        result: Arc<VerifyResult>,
    ) -> Result<quinn_proto::ClientConfig> {
        self.client_config_for(alpn, result, 0, None, false, None)
    }

    /// As [`client_config`](Self::client_config), naming the `SSL *` that key-log lines
    /// belong to, with the connection's session store (`session::ConnStore`; None: none)
    /// and its own groups (SSL_set1_groups_list; None: the context's). `early`: the client
    /// offers early data when its session allows it.
    pub fn client_config_for(
        &self,
        alpn: Option<Vec<Vec<u8>>>,
        result: Arc<VerifyResult>,
        ssl: usize,
        sessions: Option<Arc<dyn rustls::client::ClientSessionStore>>,
        early: bool,
        groups: Option<&super::groups::Groups>,
    ) -> Result<quinn_proto::ClientConfig> {
        let mut c = self.cfg.lock();
        result.ssl.store(ssl, std::sync::atomic::Ordering::Relaxed);
        // The context's shared verifier and resolver, as for TLS clients (rustls resumes
        // only with the objects that made a ticket); the session wrapper names the
        // connection it reports to.
        let (verifier, cert) = self.client_parts(&mut c)?;
        let mut tls = rustls::ClientConfig::builder_with_provider(suites_provider(&c, groups))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::internal(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(cert);
        tls.alpn_protocols = alpn.unwrap_or_else(|| c.alpn.clone());
        tls.key_log = key_log(&c, ssl);
        tls.resumption = match sessions {
            Some(s) => rustls::client::Resumption::store(s),
            None => rustls::client::Resumption::disabled(),
        };
        tls.enable_early_data = early;
        let crypto = quinn_proto::crypto::rustls::QuicClientConfig::with_initial(
            Arc::new(tls),
            super::ciphers::quic_initial()?,
        )
        .map_err(|e| Error::internal(e.to_string()))?;
        let crypto = super::session::ObservingClient {
            inner: Arc::new(crypto),
            verify: result,
        };
        let tokens = c
            .tokens
            .get_or_insert_with(|| Arc::new(crate::quic::tokens::TokenStore::default()))
            .clone();
        // The engine gives each connection its own transport settings (quic::transport).
        let mut cfg = quinn_proto::ClientConfig::new(Arc::new(crypto));
        cfg.token_store(tokens);
        Ok(cfg)
    }
}

/// The lifetime a ticket announces: the session timeout (SSL_CTX_set_timeout), in seconds.
fn ticket_lifetime(c: &Cfg) -> u32 {
    c.sess_timeout.unwrap_or(7200).clamp(0, u32::MAX as i64) as u32
}

/// The key logger: the application's callback, else SSLKEYLOGFILE, else none.
fn key_log(c: &Cfg, ssl: usize) -> Arc<dyn rustls::KeyLog> {
    match &c.keylog {
        Some(m) => m(ssl),
        None if std::env::var_os("SSLKEYLOGFILE").is_some() => Arc::new(rustls::KeyLogFile::new()),
        None => Arc::new(rustls::NoKeyLog),
    }
}

/// One call of the application's verify callback: what its X509_STORE_CTX shows
/// (preverify_ok, the error and its depth, the SSL) and what it may change (the error).
#[derive(Clone, Debug)]
pub struct VerifyCall {
    pub ok: bool,
    pub error: i64,
    pub depth: i32,
    /// The `SSL *` being verified (0 if unknown).
    pub ssl: usize,
    /// The certificate at `depth` (X509_STORE_CTX_get_current_cert), if the peer sent it.
    pub cert: Option<CertificateDer<'static>>,
}

/// The verify callback as the C boundary provides it: true to go on, false to fail.
pub type VerifyCb = Arc<dyn Fn(&mut VerifyCall) -> bool + Send + Sync>;

/// A connection's verification state: the outcome for SSL_get_verify_result, and what
/// SSL_set_verify chose for it instead of the context's mode and callback.
#[derive(Default)]
pub struct VerifyResult {
    pub code: std::sync::atomic::AtomicI64,
    /// SSL_set_verify on this connection: (mode, callback).
    pub own: Mutex<Option<(i32, Option<VerifyCb>)>>,
    /// The connection's `SSL *`, for the callback's X509_STORE_CTX_get_ex_data.
    pub ssl: std::sync::atomic::AtomicUsize,
    /// The peer's certificates as X509 objects, made on first request after the handshake
    /// (SSL_get1_peer_certificate, SSL_get_peer_cert_chain).
    pub peer: std::sync::OnceLock<crate::x509::PeerCerts>,
}

impl std::fmt::Debug for VerifyResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyResult")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

/// Verifies like OpenSSL's client: with a mode other than SSL_VERIFY_NONE a failure aborts
/// the handshake; with SSL_VERIFY_NONE the handshake goes on and the failure is only
/// recorded. A verify callback sees each outcome and decides: returning 1 on a failure goes
/// on (the error stays recorded unless it clears it), returning 0 fails the handshake.
pub(super) struct Verifier {
    inner: Option<Arc<dyn ServerCertVerifier>>,
    mode: i32,
    cb: Option<VerifyCb>,
    /// Where outcomes go: one connection's (QUIC), or, for a verifier a context's TLS
    /// connections share, the connection handshaking on this thread (`with_verify_result`).
    result: Option<Arc<VerifyResult>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

thread_local! {
    static CURRENT_VERIFY: std::cell::RefCell<Option<Arc<VerifyResult>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a step of a TLS connection's handshake) with `r` as the place a shared
/// verifier reports to.
pub fn with_verify_result<T>(r: &Arc<VerifyResult>, f: impl FnOnce() -> T) -> T {
    let prev = CURRENT_VERIFY.with(|c| c.borrow_mut().replace(r.clone()));
    let out = f();
    CURRENT_VERIFY.with(|c| *c.borrow_mut() = prev);
    out
}

/// The connection whose handshake step runs on this thread (see `with_verify_result`).
pub(super) fn current_verify() -> Option<Arc<VerifyResult>> {
    CURRENT_VERIFY.with(|c| c.borrow().clone())
}

/// The early data limit of a TLS server whose max_early_data is `max` and recv_max_early_data
/// `recv`. OpenSSL advertises `max` in its tickets and takes in at most the smaller of the
/// two (more ends the connection: SSL_R_TOO_MUCH_EARLY_DATA). rustls has one value for both,
/// `ServerConfig::max_early_data_size`: it is advertised and enforced. The smaller of the two
/// keeps OpenSSL's limit on what is taken in and tells clients that limit, so a client that
/// keeps to its ticket is not cut off where an OpenSSL server would cut it off; with `recv`
/// 0, tickets allow no early data. Refused early data is skipped up to rustls's own bound
/// (the larger of the limit and 16384), not `recv`.
pub(crate) fn early_data_limit(max: u32, recv: u32) -> u32 {
    max.min(recv)
}

/// OpenSSL's default recv_max_early_data: one full record (SSL3_RT_MAX_PLAIN_LENGTH).
const DEFAULT_RECV_MAX_EARLY_DATA: u32 = 16384;

/// No stateless tickets: rustls then issues stateful ones from the session cache (a TLS
/// connection's own max_early_data, see `SslCtx::tls_server_config_for`).
#[derive(Debug)]
struct NoTickets;

impl rustls::server::ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// A client that has no certificate to offer (one object per context: see `Cfg`).
#[derive(Debug)]
struct NoClientCert;

impl rustls::client::ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
    fn has_certs(&self) -> bool {
        false
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("mode", &self.mode)
            .field("callback", &self.cb.is_some())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The connection being verified: this verifier's own (QUIC), or the TLS connection
    /// handshaking on this thread.
    fn target(&self) -> Option<Arc<VerifyResult>> {
        match &self.result {
            Some(r) => Some(r.clone()),
            None => current_verify(),
        }
    }

    /// Runs the verify callback over the chain's outcome, as OpenSSL's chain verification
    /// calls it: on success once per presented certificate, from the top down to the leaf
    /// (depth 0) with preverify_ok 1; on a failure once with preverify_ok 0, the error and
    /// its depth. Returns (go on, the error to record).
    pub(super) fn callback(
        cb: &VerifyCb,
        ssl: usize,
        chain: &[&CertificateDer<'_>],
        failure: Option<(i64, i32)>,
    ) -> (bool, i64) {
        let chain_len = chain.len();
        let call = |ok, error, depth: i32| {
            let mut call = VerifyCall {
                ok,
                error,
                depth,
                ssl,
                cert: chain
                    .get(depth as usize)
                    .map(|c| CertificateDer::from(c.to_vec())),
            };
            (cb(&mut call), call.error)
        };
        let mut error = X509_V_OK;
        if let Some((e, depth)) = failure {
            let go;
            (go, error) = call(false, e, depth);
            // An issuer that cannot be found is the one failure OpenSSL's chain building
            // goes on from when the callback accepts it: a lone certificate then also fails
            // its signature check (X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE), and the
            // certificates are then reported as for a good chain, carrying the error. Other
            // failures are reported once.
            if !go || e != X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY {
                return (go, error);
            }
            if chain_len == 1 {
                let go;
                (go, error) = call(false, X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, 0);
                if !go {
                    return (false, error);
                }
            }
        }
        for depth in (0..chain_len as i32).rev() {
            let go;
            (go, error) = call(true, error, depth);
            if !go {
                return (false, error);
            }
        }
        (true, error)
    }
}

pub(super) fn x509_code(e: &rustls::Error) -> i64 {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::Expired)
        | rustls::Error::InvalidCertificate(C::ExpiredContext { .. }) => {
            X509_V_ERR_CERT_HAS_EXPIRED
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        }
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            X509_V_ERR_HOSTNAME_MISMATCH
        }
        rustls::Error::InvalidCertificate(_) => X509_V_ERR_CERT_REJECTED,
        _ => X509_V_ERR_UNSPECIFIED,
    }
}

/// A peer's presented chain: its certificate and the intermediates it sent.
pub(super) struct Chain<'a, 'b> {
    pub end_entity: &'a CertificateDer<'b>,
    pub intermediates: &'a [CertificateDer<'b>],
}

/// Concludes a peer chain's verification as OpenSSL does, for servers' certificates and
/// clients' alike: webpki's outcome `r` goes to the verify callback (`cb`, naming `ssl`),
/// which may accept a failure or refuse a success; the resulting code is recorded in
/// `target` (SSL_get_verify_result). Ok to go on: the callback said so, the outcome was good,
/// or the mode is SSL_VERIFY_NONE (the failure stays recorded).
pub(super) fn judge(
    r: std::result::Result<(), rustls::Error>,
    chain: &Chain<'_, '_>,
    mode: i32,
    cb: Option<&VerifyCb>,
    ssl: usize,
    target: Option<&Arc<VerifyResult>>,
) -> std::result::Result<(), rustls::Error> {
    use std::sync::atomic::Ordering::Relaxed;
    let failure = r.as_ref().err().map(|e| {
        let code = x509_code(e);
        // An unknown issuer is found at the top of the presented chain.
        let depth = if code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY {
            chain.intermediates.len() as i32
        } else {
            0
        };
        (code, depth)
    });
    let (go, mut code) = match cb {
        Some(cb) => {
            let certs: Vec<&CertificateDer<'_>> = std::iter::once(chain.end_entity)
                .chain(chain.intermediates)
                .collect();
            Verifier::callback(cb, ssl, &certs, failure)
        }
        None => (r.is_ok(), failure.map_or(X509_V_OK, |f| f.0)),
    };
    if !go && code == X509_V_OK {
        // A refusal always leaves an error (OpenSSL's safety net in X509_verify_cert).
        code = X509_V_ERR_UNSPECIFIED;
    }
    if let Some(t) = target {
        t.code.store(code, Relaxed);
    }
    match r {
        _ if go || mode == SSL_VERIFY_NONE => Ok(()),
        Err(e) => Err(e),
        Ok(()) => Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        )),
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let r = match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        let target = self.target();
        let (mode, cb) = target
            .as_ref()
            .and_then(|t| t.own.lock().clone())
            .unwrap_or_else(|| (self.mode, self.cb.clone()));
        let ssl = target.as_ref().map_or(0, |t| t.ssl.load(Relaxed));
        let chain = Chain {
            end_entity,
            intermediates,
        };
        judge(
            r.map(|_| ()),
            &chain,
            mode,
            cb.as_ref(),
            ssl,
            target.as_ref(),
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::FleetKeys;

    #[test]
    fn fleet_keys_differ_by_secret_and_by_purpose() {
        let a = FleetKeys::derive(b"sixteen bytes ok");
        let b = FleetKeys::derive(b"sixteen bytes ok");
        let c = FleetKeys::derive(b"sixteen bytes ok!");
        assert_eq!(a.ticket, b.ticket);
        assert_eq!(a.reset, b.reset);
        for (x, y) in [(&a.reset[..], &c.reset[..]), (&a.token[..], &c.token[..])] {
            assert_ne!(x, y);
        }
        assert_ne!(a.ticket[..16], c.ticket[..16]);
        assert_ne!(a.ticket[16..], c.ticket[16..]);
        // Every part filled (an HKDF output of the wrong length leaves zeros).
        for part in [&a.reset[..], &a.token[..], &a.ticket[..16], &a.ticket[16..]] {
            assert!(part.iter().any(|&b| b != 0));
        }
        assert_ne!(a.reset, a.token);
    }
}
