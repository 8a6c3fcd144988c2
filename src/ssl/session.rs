//! `SSL_SESSION`: what one handshake leaves for a later one. A client session holds the
//! rustls value that resumes it (a TLS 1.3 ticket, which resumes once, or a TLS 1.2 session)
//! beside the metadata OpenSSL shows (version, cipher, time, timeout); a server's session, or
//! one read back from bytes, holds the metadata only.
//! Owns: the session object, the per-context client cache (`ClientCache`), the per-connection
//! store rustls talks to (`ConnStore`), its serialised form, and the QUIC wrapper that tells
//! whether a handshake resumed (`ObservingClient`, `ObservingServer`).
//! Must not touch: C callbacks directly (the C boundary gives closures), connection state.
#![deny(unsafe_code)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use quinn_proto::crypto::{self, Keys, Session as QuicSession, UnsupportedVersion};
use quinn_proto::transport_parameters::TransportParameters;
use quinn_proto::{ConnectError, ConnectionId, Side, TransportError};
use rustls::NamedGroup;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;

use super::ctx::{TLS12_VERSION, TLS13_VERSION, VerifyResult};
use crate::consts::{SSL_SESS_CACHE_CLIENT, SSL_SESS_CACHE_OFF};
use crate::error::*;
use crate::sync::Mutex;

/// SSL_SESS_CACHE_NO_INTERNAL_STORE: sessions are not kept in the context's cache (the
/// application keeps them from its new-session callback).
pub const SSL_SESS_CACHE_NO_INTERNAL_STORE: i64 = 0x0200;
/// SSL_R_BAD_DATA: what d2i_SSL_SESSION reports for bytes it cannot read.
pub const SSL_R_BAD_DATA: u32 = 390;
/// PEM_R_NO_START_LINE.
pub const PEM_R_NO_START_LINE: u32 = 108;
/// The PEM label of a serialised session, as OpenSSL's.
pub const PEM_LABEL: &str = "SSL SESSION PARAMETERS";

/// A TLS 1.3 ticket is good for one resumption; a TLS 1.2 session for any number.
enum Ticket {
    None,
    Tls13(Box<Tls13ClientSessionValue>),
    Tls12(Box<Tls12ClientSessionValue>),
}

/// One `SSL_SESSION`.
pub struct Session {
    /// TLS1_2_VERSION or TLS1_3_VERSION.
    pub version: u16,
    /// The cipher suite's IANA number (0 while unknown).
    cipher: AtomicU16,
    pub quic: bool,
    /// Creation time and lifetime, in seconds (SSL_SESSION_get_time / _get_timeout).
    time: AtomicU64,
    timeout: AtomicU64,
    /// The server name the session was made with (clients; empty if none).
    pub host: String,
    /// The early data the server allows with it (its ticket's max_early_data; changed by
    /// SSL_SESSION_set_max_early_data).
    max_early_data: AtomicU32,
    ticket: Mutex<Ticket>,
    /// The context cache of the connection that made it: rustls resumes only with that
    /// context's verifier, so another context's connection does not take (and waste) it.
    origin: std::sync::Weak<ClientCache>,
}

impl Drop for Session {
    /// Sessions are shared by a context's connections and last dropped on any thread. Arc
    /// orders that drop after every other thread's use with its Acquire fence, which valgrind's
    /// helgrind does not see; taking the ticket's (annotated) lock once tells it the same, so
    /// the race run keeps checking the real accesses.
    fn drop(&mut self) {
        drop(self.ticket.lock());
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Session {
    /// A session with metadata only: it cannot resume anything.
    pub fn metadata(version: u16, cipher: u16, quic: bool, timeout: u64, time: u64) -> Session {
        Session {
            version,
            cipher: AtomicU16::new(cipher),
            quic,
            time: AtomicU64::new(time),
            timeout: AtomicU64::new(timeout),
            host: String::new(),
            max_early_data: AtomicU32::new(0),
            ticket: Mutex::new(Ticket::None),
            origin: std::sync::Weak::new(),
        }
    }

    fn from_tls13(v: Tls13ClientSessionValue, host: String, quic: bool, timeout: u64) -> Session {
        Session {
            version: TLS13_VERSION as u16,
            cipher: AtomicU16::new(u16::from(v.suite().common.suite)),
            quic,
            time: AtomicU64::new(now_secs()),
            timeout: AtomicU64::new(timeout),
            host,
            max_early_data: AtomicU32::new(v.max_early_data_size()),
            ticket: Mutex::new(Ticket::Tls13(Box::new(v))),
            origin: std::sync::Weak::new(),
        }
    }

    fn from_tls12(v: Tls12ClientSessionValue, host: String, timeout: u64) -> Session {
        Session {
            version: TLS12_VERSION as u16,
            // rustls does not show a TLS 1.2 value's suite; the connection fills it in.
            cipher: AtomicU16::new(0),
            quic: false,
            time: AtomicU64::new(now_secs()),
            timeout: AtomicU64::new(timeout),
            host,
            max_early_data: AtomicU32::new(0),
            ticket: Mutex::new(Ticket::Tls12(Box::new(v))),
            origin: std::sync::Weak::new(),
        }
    }

    pub fn time(&self) -> u64 {
        self.time.load(Relaxed)
    }
    pub fn set_time(&self, t: u64) {
        self.time.store(t, Relaxed)
    }
    pub fn timeout(&self) -> u64 {
        self.timeout.load(Relaxed)
    }
    pub fn set_timeout(&self, t: u64) {
        self.timeout.store(t, Relaxed)
    }
    pub fn cipher(&self) -> u16 {
        self.cipher.load(Relaxed)
    }
    /// Records the cipher suite if it was not known.
    pub fn fill_cipher(&self, c: u16) {
        let _ = self.cipher.compare_exchange(0, c, Relaxed, Relaxed);
    }
    pub fn max_early_data(&self) -> u32 {
        self.max_early_data.load(Relaxed)
    }
    /// SSL_SESSION_set_max_early_data: what SSL_write_early_data checks. The ticket itself
    /// keeps the server's limit, which is what rustls sends under.
    pub fn set_max_early_data(&self, v: u32) {
        self.max_early_data.store(v, Relaxed)
    }

    /// Past its time + timeout (SSL_SESSION_set_timeout shortens or lengthens it).
    pub fn expired(&self) -> bool {
        self.time().saturating_add(self.timeout()) < now_secs()
    }

    /// SSL_SESSION_is_resumable: it holds an unused ticket or a TLS 1.2 session and has not
    /// expired.
    pub fn is_resumable(&self) -> bool {
        !matches!(*self.ticket.lock(), Ticket::None) && !self.expired()
    }

    /// Takes the TLS 1.3 ticket (it resumes once).
    fn take_tls13(&self) -> Option<Tls13ClientSessionValue> {
        if self.expired() {
            return None;
        }
        let mut t = self.ticket.lock();
        match std::mem::replace(&mut *t, Ticket::None) {
            Ticket::Tls13(v) => Some(*v),
            other => {
                *t = other;
                None
            }
        }
    }

    fn tls12(&self) -> Option<Tls12ClientSessionValue> {
        if self.expired() {
            return None;
        }
        match &*self.ticket.lock() {
            Ticket::Tls12(v) => Some((**v).clone()),
            _ => None,
        }
    }

    fn forget_tls12(&self) {
        let mut t = self.ticket.lock();
        if matches!(*t, Ticket::Tls12(_)) {
            *t = Ticket::None;
        }
    }

    /// The serialised form (i2d_SSL_SESSION): a DER SEQUENCE of this library's own layout,
    /// metadata only. rustls 0.23 cannot rebuild a client session from bytes, so the secrets
    /// are not written: a session read back cannot resume (see `decode`).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        der::octets(&mut body, MAGIC);
        der::uint(&mut body, FORMAT);
        der::uint(&mut body, u64::from(self.version));
        der::octets(&mut body, &self.cipher().to_be_bytes());
        der::uint(&mut body, self.time());
        der::uint(&mut body, self.timeout());
        der::uint(&mut body, u64::from(self.quic));
        der::octets(&mut body, self.host.as_bytes());
        der::uint(&mut body, u64::from(self.max_early_data()));
        let mut out = Vec::with_capacity(body.len() + 4);
        der::tlv(&mut out, der::SEQUENCE, &body);
        out
    }

    /// Reads `encode`'s form from the start of `bytes`; returns the session and the number
    /// of bytes it took. The session holds metadata only: SSL_SESSION_is_resumable is 0.
    pub fn decode(bytes: &[u8]) -> Result<(Session, usize)> {
        let bad = |what: &str| {
            Error::ssl(SSL_R_BAD_DATA).with(format!("not an osslquic SSL_SESSION: {what}"))
        };
        let mut r = der::Reader(bytes);
        let body = r.take(der::SEQUENCE).ok_or_else(|| bad("no SEQUENCE"))?;
        let used = bytes.len() - r.0.len();
        let mut b = der::Reader(body);
        if b.octets() != Some(MAGIC) {
            return Err(bad(
                "unknown layout (OpenSSL's own sessions cannot be read)",
            ));
        }
        if b.uint() != Some(FORMAT) {
            return Err(bad("unknown format version"));
        }
        let version = b.uint().ok_or_else(|| bad("version"))?;
        let cipher = b.octets().ok_or_else(|| bad("cipher"))?;
        let time = b.uint().ok_or_else(|| bad("time"))?;
        let timeout = b.uint().ok_or_else(|| bad("timeout"))?;
        let quic = b.uint().ok_or_else(|| bad("quic"))?;
        let host = b.octets().ok_or_else(|| bad("host"))?;
        let early = b.uint().ok_or_else(|| bad("max early data"))?;
        let (Ok(version), Ok(cipher), true, Ok(host), Ok(early)) = (
            u16::try_from(version),
            <[u8; 2]>::try_from(cipher),
            quic <= 1,
            std::str::from_utf8(host),
            u32::try_from(early),
        ) else {
            return Err(bad("field out of range"));
        };
        if !b.0.is_empty() {
            return Err(bad("trailing fields"));
        }
        let mut s = Session::metadata(
            version,
            u16::from_be_bytes(cipher),
            quic == 1,
            timeout,
            time,
        );
        s.host = host.to_string();
        s.max_early_data = AtomicU32::new(early);
        Ok((s, used))
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .field("cipher", &self.cipher())
            .field("quic", &self.quic)
            .field("resumable", &self.is_resumable())
            .finish_non_exhaustive()
    }
}

const MAGIC: &[u8] = b"osslquic SSL_SESSION";
const FORMAT: u64 = 1;

/// The few DER pieces the serialised form needs (SEQUENCE, INTEGER >= 0, OCTET STRING).
mod der {
    pub const INTEGER: u8 = 0x02;
    pub const OCTETS: u8 = 0x04;
    pub const SEQUENCE: u8 = 0x30;

    pub fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
        out.push(tag);
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
    }

    pub fn uint(out: &mut Vec<u8>, v: u64) {
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
        let mut c = Vec::with_capacity(9);
        if bytes[skip] & 0x80 != 0 {
            c.push(0);
        }
        c.extend_from_slice(&bytes[skip..]);
        tlv(out, INTEGER, &c);
    }

    pub fn octets(out: &mut Vec<u8>, v: &[u8]) {
        tlv(out, OCTETS, v)
    }

    pub struct Reader<'a>(pub &'a [u8]);

    impl<'a> Reader<'a> {
        /// The content of the next element if its tag is `tag`.
        pub fn take(&mut self, tag: u8) -> Option<&'a [u8]> {
            let (&t, rest) = self.0.split_first()?;
            let (&l, rest) = rest.split_first()?;
            let (len, rest) = if l < 0x80 {
                (l as usize, rest)
            } else {
                let k = (l & 0x7f) as usize;
                if k == 0 || k > 4 || rest.len() < k {
                    return None;
                }
                let n = rest[..k].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
                (n, &rest[k..])
            };
            if t != tag || rest.len() < len {
                return None;
            }
            self.0 = &rest[len..];
            Some(&rest[..len])
        }
        pub fn uint(&mut self) -> Option<u64> {
            let c = self.take(INTEGER)?;
            if c.is_empty() || c[0] & 0x80 != 0 || c.len() > 9 || (c.len() == 9 && c[0] != 0) {
                return None;
            }
            Some(c.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
        }
        pub fn octets(&mut self) -> Option<&'a [u8]> {
            self.take(OCTETS)
        }
    }
}

/// The application's new-session callback as the C boundary wraps it: (the `SSL *`, the
/// session). The wrapper decides who keeps the reference.
pub type NewCb = Arc<dyn Fn(usize, &Arc<Session>) + Send + Sync>;
/// The remove-session callback: the session leaving the context's cache.
pub type RemoveCb = Arc<dyn Fn(&Arc<Session>) + Send + Sync>;

thread_local! {
    /// Set while a session callback runs: SSL_get_session must then not lock the connection
    /// (its handshake step holds the lock).
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside a session callback.
pub fn in_callback() -> bool {
    IN_CALLBACK.with(Cell::get)
}

fn in_cb<T>(f: impl FnOnce() -> T) -> T {
    let prev = IN_CALLBACK.with(|c| c.replace(true));
    let out = f();
    IN_CALLBACK.with(|c| c.set(prev));
    out
}

/// Up to this many TLS 1.3 tickets are kept per server (rustls's own cache keeps 8 too).
const TICKETS_PER_SERVER: usize = 8;

#[derive(Default)]
struct Entry {
    kx: Option<NamedGroup>,
    tls12: Option<Arc<Session>>,
    /// Oldest first.
    tls13: VecDeque<Arc<Session>>,
}

/// A client context's sessions, by server name, and its session callbacks. Connections
/// resume from it automatically (an osslquic extension) and SSL_set_session feeds it
/// explicitly; a session's TLS 1.3 ticket is consumed by whichever uses it first.
#[derive(Default)]
pub struct ClientCache {
    servers: Mutex<VecDeque<(ServerName<'static>, Entry)>>,
    new_cb: Mutex<Option<NewCb>>,
    remove_cb: Mutex<Option<RemoveCb>>,
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCache").finish_non_exhaustive()
    }
}

impl ClientCache {
    pub fn set_new_cb(&self, cb: Option<NewCb>) {
        *self.new_cb.lock() = cb;
    }
    pub fn set_remove_cb(&self, cb: Option<RemoveCb>) {
        *self.remove_cb.lock() = cb;
    }

    fn removed(&self, gone: Vec<Arc<Session>>) {
        if gone.is_empty() {
            return;
        }
        if let Some(cb) = self.remove_cb.lock().clone() {
            in_cb(|| gone.iter().for_each(|s| cb(s)));
        }
    }

    /// Edits the entry for `name` (made if missing, the oldest server evicted beyond
    /// `max_servers`); returns what `f` returns and the sessions that left the cache.
    fn edit<T>(
        &self,
        name: &ServerName<'static>,
        max_servers: usize,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> (T, Vec<Arc<Session>>) {
        let mut gone = Vec::new();
        let mut m = self.servers.lock();
        let i = match m.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                while m.len() >= max_servers.max(1) {
                    if let Some((_, e)) = m.pop_front() {
                        gone.extend(e.tls12);
                        gone.extend(e.tls13);
                    }
                }
                m.push_back((name.clone(), Entry::default()));
                m.len() - 1
            }
        };
        let e = &mut m[i].1;
        // Used and expired sessions leave as they are found.
        e.tls13.retain(|s| {
            let keep = s.is_resumable();
            if !keep && s.expired() {
                gone.push(s.clone());
            }
            keep
        });
        let out = f(e);
        (out, gone)
    }

    /// The max_early_data of the TLS 1.3 session a connection to `name` would resume from
    /// the cache (the oldest unused one, as `ConnStore::take_tls13_ticket` takes it); 0 if
    /// none.
    pub fn early_data_for(&self, name: &ServerName<'_>) -> u32 {
        self.with(name, |e| {
            e.tls13
                .iter()
                .find(|s| s.is_resumable())
                .map_or(0, |s| s.max_early_data())
        })
        .unwrap_or(0)
    }

    fn with<T>(&self, name: &ServerName<'_>, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let mut m = self.servers.lock();
        m.iter_mut().find(|(n, _)| n == name).map(|(_, e)| f(e))
    }
}

/// What one connection's sessions are: the one SSL_set_session gave it, the ones its
/// handshake made (newest last), and the metadata session SSL_get_session shows when it
/// made none.
#[derive(Default)]
pub struct Slot {
    preset: Mutex<Option<Arc<Session>>>,
    made: Mutex<VecDeque<Arc<Session>>>,
    meta: std::sync::OnceLock<Arc<Session>>,
    /// When the connection object was made: the time of its metadata session.
    born: std::sync::OnceLock<u64>,
}

/// Sessions a connection remembers for SSL_get_session's pointers (OpenSSL's pointer is good
/// until the connection's session changes; these stay good longer).
const MADE_KEPT: usize = 16;

impl Slot {
    pub fn new() -> Slot {
        let s = Slot::default();
        let _ = s.born.set(now_secs());
        s
    }

    /// SSL_set_session (None: SSL_set_session(s, NULL) clears it).
    pub fn set_preset(&self, s: Option<Arc<Session>>) {
        *self.preset.lock() = s;
    }
    pub fn preset(&self) -> Option<Arc<Session>> {
        self.preset.lock().clone()
    }
    /// The newest session this connection's handshake made.
    pub fn newest(&self) -> Option<Arc<Session>> {
        self.made.lock().back().cloned()
    }
    fn push(&self, s: Arc<Session>) {
        let mut m = self.made.lock();
        if m.len() == MADE_KEPT {
            m.pop_front();
        }
        m.push_back(s);
    }
    /// The metadata session (made once, with what the caller knows now).
    pub fn meta(&self, make: impl FnOnce(u64) -> Session) -> Arc<Session> {
        self.meta
            .get_or_init(|| Arc::new(make(self.born.get().copied().unwrap_or_else(now_secs))))
            .clone()
    }
}

/// The context settings a connection's store follows, taken when it starts.
#[derive(Clone, Copy, Debug)]
pub struct CacheSettings {
    /// SSL_CTX_set_session_cache_mode.
    pub mode: i64,
    /// SSL_CTX_set_timeout, seconds.
    pub timeout: u64,
    /// SSL_CTX_sess_set_cache_size (0: no limit).
    pub size: i64,
}

/// The session store rustls asks on one client connection: a session from SSL_set_session
/// first (and then only it), else the context's cache; new sessions go to the connection's
/// slot, the cache (unless the mode keeps them out) and the new-session callback.
pub struct ConnStore {
    cache: Arc<ClientCache>,
    slot: Arc<Slot>,
    /// The `SSL *` for the new-session callback.
    ssl: usize,
    settings: CacheSettings,
    quic: bool,
}

impl std::fmt::Debug for ConnStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnStore")
            .field("ssl", &self.ssl)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ConnStore {
    pub fn new(
        cache: Arc<ClientCache>,
        slot: Arc<Slot>,
        ssl: usize,
        settings: CacheSettings,
        quic: bool,
    ) -> ConnStore {
        ConnStore {
            cache,
            slot,
            ssl,
            settings,
            quic,
        }
    }

    /// The session SSL_set_session gave, if any, and whether this context's connections can
    /// resume it (it was made by one of them).
    fn preset(&self) -> Option<(Arc<Session>, bool)> {
        let p = self.slot.preset()?;
        let ours = std::ptr::eq(p.origin.as_ptr(), Arc::as_ptr(&self.cache));
        Some((p, ours))
    }

    fn internal_store(&self) -> bool {
        self.settings.mode != SSL_SESS_CACHE_OFF
            && self.settings.mode & SSL_SESS_CACHE_NO_INTERNAL_STORE == 0
    }

    fn max_servers(&self) -> usize {
        match self.settings.size {
            n if n <= 0 => usize::MAX,
            n => (n as usize).div_ceil(TICKETS_PER_SERVER),
        }
    }

    /// A session the handshake made: kept by the connection and the cache, and announced.
    fn made(&self, name: ServerName<'static>, mut s: Session, tls13: bool) {
        s.origin = Arc::downgrade(&self.cache);
        let s = Arc::new(s);
        self.slot.push(s.clone());
        if self.internal_store() {
            let (mut gone, evicted) = self.cache.edit(&name, self.max_servers(), |e| {
                let mut gone = Vec::new();
                if tls13 {
                    if e.tls13.len() == TICKETS_PER_SERVER {
                        gone.extend(e.tls13.pop_front());
                    }
                    e.tls13.push_back(s.clone());
                } else {
                    gone.extend(e.tls12.replace(s.clone()));
                }
                gone
            });
            gone.extend(evicted);
            self.cache.removed(gone);
        }
        // SSL_CTX_sess_set_new_cb(3): a client calls it when the mode includes
        // SSL_SESS_CACHE_CLIENT, for every new session (each TLS 1.3 ticket).
        if self.settings.mode & SSL_SESS_CACHE_CLIENT != 0 {
            let cb = self.cache.new_cb.lock().clone();
            if let Some(cb) = cb {
                in_cb(|| cb(self.ssl, &s));
            }
        }
    }
}

fn host_of(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        _ => String::new(),
    }
}

impl ClientSessionStore for ConnStore {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        if self.internal_store() {
            let ((), gone) = self
                .cache
                .edit(&name, self.max_servers(), |e| e.kx = Some(group));
            self.cache.removed(gone);
        }
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.cache.with(name, |e| e.kx).flatten()
    }

    fn set_tls12_session(&self, name: ServerName<'static>, value: Tls12ClientSessionValue) {
        let s = Session::from_tls12(value, host_of(&name), self.settings.timeout);
        self.made(name, s, false);
    }

    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        // A session set with SSL_set_session is the only one offered.
        if let Some((p, ours)) = self.preset() {
            return if ours { p.tls12() } else { None };
        }
        self.cache
            .with(name, |e| e.tls12.as_ref()?.tls12())
            .flatten()
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        let gone = self.cache.with(name, |e| e.tls12.take()).flatten();
        if let Some(s) = gone {
            s.forget_tls12();
            self.cache.removed(vec![s]);
        }
    }

    fn insert_tls13_ticket(&self, name: ServerName<'static>, value: Tls13ClientSessionValue) {
        let s = Session::from_tls13(value, host_of(&name), self.quic, self.settings.timeout);
        self.made(name, s, true);
    }

    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        if let Some((p, ours)) = self.preset() {
            return if ours { p.take_tls13() } else { None };
        }
        // The oldest first: the newest is what SSL_get1_session handed the application.
        self.cache
            .with(name, |e| {
                while let Some(s) = e.tls13.pop_front() {
                    if let Some(v) = s.take_tls13() {
                        return Some(v);
                    }
                }
                None
            })
            .flatten()
    }
}

// ---- QUIC: telling a resumed handshake from a full one, and its key-exchange group.
//
// quinn does not show rustls's handshake kind nor its group, so the connection's TLS session
// is wrapped and its handshake messages are watched: a full TLS 1.3 handshake carries the
// server's Certificate message, a resumed one does not; the ServerHello's key_share names
// the group (SSL_get_negotiated_group). The client watches what it reads, the server
// what it writes. The client wrapper also names the connection a context-wide certificate
// verifier reports to (rustls resumes only with the very verifier that made a ticket, so a
// context's QUIC clients share one, as its TLS clients do).

/// handshake_data() of a wrapped QUIC session: quinn's fields plus the handshake kind.
pub struct QuicHandshake {
    pub protocol: Option<Vec<u8>>,
    pub server_name: Option<String>,
    /// The handshake is complete and resumed a session.
    pub resumed: bool,
    /// The key-exchange group of the ServerHello, once seen.
    pub group: Option<rustls::NamedGroup>,
}

/// Follows TLS handshake message framing (type, 24-bit length) over a byte stream.
#[derive(Default)]
struct Framer {
    header: [u8; 4],
    have: usize,
    left: usize,
    certificate: bool,
    /// The body of a ServerHello (or HelloRetryRequest) being read, kept only while it is:
    /// its key_share can span packets (X25519MLKEM768's is 1,120 bytes).
    hello: Option<Vec<u8>>,
    /// The group of the last ServerHello's key_share (a HelloRetryRequest's names the group
    /// asked for; the ServerHello after it the one used).
    group: Option<u16>,
}

const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
const HS_COMPRESSED_CERTIFICATE: u8 = 25;
/// Larger than any ServerHello of the groups we have (MLKEM1024's: about 1,700 bytes).
const MAX_SERVER_HELLO: usize = 4096;
const EXT_KEY_SHARE: u16 = 51;

impl Framer {
    fn feed(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.left > 0 {
                let n = self.left.min(buf.len());
                self.left -= n;
                if let Some(h) = &mut self.hello {
                    h.extend_from_slice(&buf[..n]);
                }
                buf = &buf[n..];
                if self.left == 0 {
                    self.hello_done();
                }
                continue;
            }
            self.header[self.have] = buf[0];
            self.have += 1;
            buf = &buf[1..];
            if self.have == 4 {
                self.have = 0;
                let h = self.header;
                if h[0] == HS_CERTIFICATE || h[0] == HS_COMPRESSED_CERTIFICATE {
                    self.certificate = true;
                }
                self.left = (h[1] as usize) << 16 | (h[2] as usize) << 8 | h[3] as usize;
                if h[0] == HS_SERVER_HELLO && self.left <= MAX_SERVER_HELLO {
                    self.hello = Some(Vec::with_capacity(self.left));
                    if self.left == 0 {
                        self.hello_done();
                    }
                }
            }
        }
    }

    fn hello_done(&mut self) {
        if let Some(body) = self.hello.take()
            && let Some(g) = key_share_group(&body)
        {
            self.group = Some(g);
        }
    }
}

/// The group of a ServerHello body's key_share extension (RFC 8446 4.1.3, 4.2.8: a
/// ServerHello's entry and a HelloRetryRequest's selected_group both begin with it).
fn key_share_group(b: &[u8]) -> Option<u16> {
    let u16_at = |i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
    // legacy_version (2), random (32), legacy_session_id_echo (1 + n)
    let mut i = 34;
    i += 1 + *b.get(i)? as usize;
    // cipher_suite (2), legacy_compression_method (1), extensions (2 + n)
    i += 3;
    let end = (i + 2 + u16_at(i)? as usize).min(b.len());
    i += 2;
    while i + 4 <= end {
        let (ty, len) = (u16_at(i)?, u16_at(i + 2)? as usize);
        if ty == EXT_KEY_SHARE {
            return u16_at(i + 4);
        }
        i += 4 + len;
    }
    None
}

struct Observed {
    inner: Box<dyn QuicSession>,
    seen: Framer,
    /// Client: the connection the shared verifier reports to.
    verify: Option<Arc<VerifyResult>>,
}

impl Observed {
    fn resumed(&self) -> bool {
        !self.inner.is_handshaking() && !self.seen.certificate
    }
}

impl QuicSession for Observed {
    fn initial_keys(&self, dst_cid: &ConnectionId, side: Side) -> Keys {
        self.inner.initial_keys(dst_cid, side)
    }
    fn handshake_data(&self) -> Option<Box<dyn std::any::Any>> {
        let d = self.inner.handshake_data()?;
        let d = d
            .downcast::<quinn_proto::crypto::rustls::HandshakeData>()
            .ok()?;
        Some(Box::new(QuicHandshake {
            protocol: d.protocol.clone(),
            server_name: d.server_name.clone(),
            resumed: self.resumed(),
            group: self.seen.group.map(rustls::NamedGroup::from),
        }))
    }
    fn peer_identity(&self) -> Option<Box<dyn std::any::Any>> {
        self.inner.peer_identity()
    }
    fn early_crypto(&self) -> Option<(Box<dyn crypto::HeaderKey>, Box<dyn crypto::PacketKey>)> {
        self.inner.early_crypto()
    }
    fn early_data_accepted(&self) -> Option<bool> {
        self.inner.early_data_accepted()
    }
    fn is_handshaking(&self) -> bool {
        self.inner.is_handshaking()
    }
    fn read_handshake(&mut self, buf: &[u8]) -> std::result::Result<bool, TransportError> {
        match self.verify.clone() {
            Some(v) => {
                self.seen.feed(buf);
                super::ctx::with_verify_result(&v, || self.inner.read_handshake(buf))
            }
            None => self.inner.read_handshake(buf),
        }
    }
    fn transport_parameters(
        &self,
    ) -> std::result::Result<Option<TransportParameters>, TransportError> {
        self.inner.transport_parameters()
    }
    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        let start = buf.len();
        let keys = self.inner.write_handshake(buf);
        if self.verify.is_none() {
            self.seen.feed(&buf[start..]);
        }
        keys
    }
    fn next_1rtt_keys(&mut self) -> Option<crypto::KeyPair<Box<dyn crypto::PacketKey>>> {
        self.inner.next_1rtt_keys()
    }
    fn is_valid_retry(&self, orig_dst_cid: &ConnectionId, header: &[u8], payload: &[u8]) -> bool {
        self.inner.is_valid_retry(orig_dst_cid, header, payload)
    }
    fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: &[u8],
    ) -> std::result::Result<(), crypto::ExportKeyingMaterialError> {
        self.inner.export_keying_material(output, label, context)
    }
}

/// A QUIC client's crypto configuration, wrapped (see above).
pub struct ObservingClient {
    pub inner: Arc<dyn crypto::ClientConfig>,
    pub verify: Arc<VerifyResult>,
}

impl crypto::ClientConfig for ObservingClient {
    fn start_session(
        self: Arc<Self>,
        version: u32,
        server_name: &str,
        params: &TransportParameters,
    ) -> std::result::Result<Box<dyn QuicSession>, ConnectError> {
        let inner = self
            .inner
            .clone()
            .start_session(version, server_name, params)?;
        Ok(Box::new(Observed {
            inner,
            seen: Framer::default(),
            verify: Some(self.verify.clone()),
        }))
    }
}

/// A QUIC server's crypto configuration, wrapped (see above).
pub struct ObservingServer(pub Arc<dyn crypto::ServerConfig>);

impl crypto::ServerConfig for ObservingServer {
    fn initial_keys(
        &self,
        version: u32,
        dst_cid: &ConnectionId,
    ) -> std::result::Result<Keys, UnsupportedVersion> {
        self.0.initial_keys(version, dst_cid)
    }
    fn retry_tag(&self, version: u32, orig_dst_cid: &ConnectionId, packet: &[u8]) -> [u8; 16] {
        self.0.retry_tag(version, orig_dst_cid, packet)
    }
    fn start_session(
        self: Arc<Self>,
        version: u32,
        params: &TransportParameters,
    ) -> Box<dyn QuicSession> {
        Box::new(Observed {
            inner: self.0.clone().start_session(version, params),
            seen: Framer::default(),
            verify: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut s = Session::metadata(0x0304, 0x1302, true, 7200, 1_700_000_000);
        s.host = "example.test".into();
        s.max_early_data = AtomicU32::new(0xffff_ffff);
        let bytes = s.encode();
        let mut with_tail = bytes.clone();
        with_tail.extend_from_slice(b"tail");
        let (d, used) = Session::decode(&with_tail).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(d.encode(), bytes);
        assert_eq!((d.version, d.cipher(), d.quic), (0x0304, 0x1302, true));
        assert_eq!((d.time(), d.timeout()), (1_700_000_000, 7200));
        assert_eq!(d.host, "example.test");
        assert!(!d.is_resumable());
    }

    #[test]
    fn decode_refuses_damage() {
        let bytes = Session::metadata(0x0303, 0xc02c, false, 300, 5).encode();
        for cut in 0..bytes.len() {
            assert!(Session::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[4] ^= 1; // inside the magic
        assert!(Session::decode(&other).is_err());
        assert!(Session::decode(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn long_lengths() {
        let mut s = Session::metadata(0x0304, 1, false, 1, 1);
        s.host = "h".repeat(300);
        let (d, _) = Session::decode(&s.encode()).unwrap();
        assert_eq!(d.host.len(), 300);
    }

    #[test]
    fn framer_finds_certificate_across_splits() {
        // EncryptedExtensions (8, 2 bytes), Certificate (11, 3 bytes), Finished (20, 1 byte).
        let stream = [8, 0, 0, 2, 0, 0, 11, 0, 0, 3, 1, 2, 3, 20, 0, 0, 1, 9];
        for split in 0..stream.len() {
            let mut f = Framer::default();
            f.feed(&stream[..split]);
            f.feed(&stream[split..]);
            assert!(f.certificate, "split {split}");
        }
        let mut f = Framer::default();
        // A body byte equal to 11 is not a message type.
        f.feed(&[8, 0, 0, 2, 11, 11, 20, 0, 0, 1, 9]);
        assert!(!f.certificate);
    }

    #[test]
    fn expiry_follows_timeout() {
        let s = Session::metadata(0x0304, 1, false, 10, now_secs());
        assert!(!s.expired());
        s.set_time(now_secs() - 100);
        assert!(s.expired());
        s.set_timeout(1000);
        assert!(!s.expired());
    }
}
