//! Server-side ALPN chosen by the application (SSL_CTX_set_alpn_select_cb) on QUIC.
//! rustls picks ALPN from a fixed list in its `ServerConfig`; OpenSSL lets a callback pick
//! per ClientHello. This wraps quinn's rustls server crypto: a connection's TLS session is
//! created only once its ClientHello is complete. A scratch rustls connection, whose
//! certificate resolver records the client's ALPN offer and then stops, reads the buffered
//! ClientHello; the callback chooses; the real session starts with a configuration that
//! offers exactly that protocol and reads the same bytes.
//! Must not touch: C callbacks directly (the caller gives a Rust closure).
#![deny(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::Mutex;
use quinn_proto::crypto::rustls::QuicServerConfig;
use quinn_proto::crypto::{self, Keys, ServerConfig as _, Session, UnsupportedVersion};
use quinn_proto::transport_parameters::TransportParameters;
use quinn_proto::{ConnectionId, Side, TransportError};

use crate::error::*;

// The callback's types live in `tls/` (both TLS and QUIC servers use them).
pub use crate::tls::{AlpnChoice, AlpnSelect};

thread_local! {
    /// The scratch resolver's finding: `Some(offer)` once a ClientHello was seen.
    static OFFER: RefCell<Option<Vec<Vec<u8>>>> = const { RefCell::new(None) };
}

/// Records the client's ALPN offer and declines to pick a certificate, which stops the
/// scratch handshake right there.
#[derive(Debug)]
struct Recorder;

impl rustls::server::ResolvesServerCert for Recorder {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let offer: Vec<Vec<u8>> = hello
            .alpn()
            .map(|it| it.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        OFFER.with(|o| *o.borrow_mut() = Some(offer));
        None
    }
}

/// quinn's server crypto with the ALPN decided per connection.
pub struct SelectingServer {
    base: Arc<rustls::ServerConfig>,
    base_quic: Arc<QuicServerConfig>,
    scratch: Arc<rustls::ServerConfig>,
    select: AlpnSelect,
    /// One quinn crypto config per chosen protocol (and `None` for "no protocol").
    by_choice: Mutex<HashMap<Option<Vec<u8>>, Arc<QuicServerConfig>>>,
}

fn quic_version(v: u32) -> Option<rustls::quic::Version> {
    match v {
        0xff00_001d..=0xff00_0020 => Some(rustls::quic::Version::V1Draft),
        0x0000_0001 | 0xff00_0021..=0xff00_0022 => Some(rustls::quic::Version::V1),
        _ => None,
    }
}

impl SelectingServer {
    pub fn new(base: rustls::ServerConfig, select: AlpnSelect) -> Result<SelectingServer> {
        let mut scratch = base.clone();
        scratch.cert_resolver = Arc::new(Recorder);
        scratch.key_log = Arc::new(rustls::NoKeyLog);
        let base = Arc::new(base);
        let base_quic = Arc::new(
            QuicServerConfig::with_initial(base.clone(), super::ciphers::quic_initial()?)
                .map_err(|e| Error::internal(e.to_string()))?,
        );
        Ok(SelectingServer {
            base,
            base_quic,
            scratch: Arc::new(scratch),
            select,
            by_choice: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration for a connection whose first handshake bytes are `hello`, or None
    /// while the ClientHello is incomplete.
    fn choose(&self, version: u32, hello: &[u8]) -> Option<Arc<QuicServerConfig>> {
        let v = quic_version(version)?;
        let Ok(mut probe) = rustls::quic::ServerConnection::new(self.scratch.clone(), v, vec![])
        else {
            return Some(self.base_quic.clone());
        };
        OFFER.with(|o| *o.borrow_mut() = None);
        let read = probe.read_hs(hello);
        let offer = OFFER.with(|o| o.borrow_mut().take());
        match (offer, read) {
            (None, Ok(())) => None,
            // Malformed, or no ALPN offered: the ordinary configuration reports or serves it.
            (None, Err(_)) => Some(self.base_quic.clone()),
            (Some(offer), _) if offer.is_empty() => Some(self.base_quic.clone()),
            (Some(offer), _) => {
                let key = match (self.select)(&offer) {
                    AlpnChoice::Use(p) => Some(p),
                    AlpnChoice::NoAck | AlpnChoice::Fatal => None,
                };
                Some(self.config_for(key))
            }
        }
    }

    fn config_for(&self, choice: Option<Vec<u8>>) -> Arc<QuicServerConfig> {
        let mut m = self.by_choice.lock();
        if let Some(c) = m.get(&choice) {
            return c.clone();
        }
        let mut tls = (*self.base).clone();
        tls.alpn_protocols = choice.iter().cloned().collect();
        let made = super::ciphers::quic_initial()
            .ok()
            .and_then(|i| QuicServerConfig::with_initial(Arc::new(tls), i).ok())
            .map(Arc::new)
            .unwrap_or_else(|| self.base_quic.clone());
        m.insert(choice, made.clone());
        made
    }
}

impl crypto::ServerConfig for SelectingServer {
    fn initial_keys(
        &self,
        version: u32,
        dst_cid: &ConnectionId,
    ) -> Result<Keys, UnsupportedVersion> {
        self.base_quic.initial_keys(version, dst_cid)
    }

    fn retry_tag(&self, version: u32, orig_dst_cid: &ConnectionId, packet: &[u8]) -> [u8; 16] {
        self.base_quic.retry_tag(version, orig_dst_cid, packet)
    }

    fn start_session(
        self: Arc<Self>,
        version: u32,
        params: &TransportParameters,
    ) -> Box<dyn Session> {
        Box::new(Pending {
            cfg: self,
            version,
            params: *params,
            hello: Vec::new(),
            inner: None,
        })
    }
}

/// A server session that waits for the whole ClientHello before its TLS session exists.
struct Pending {
    cfg: Arc<SelectingServer>,
    version: u32,
    params: TransportParameters,
    hello: Vec<u8>,
    inner: Option<Box<dyn Session>>,
}

impl Session for Pending {
    fn initial_keys(&self, dst_cid: &ConnectionId, side: Side) -> Keys {
        match &self.inner {
            Some(s) => s.initial_keys(dst_cid, side),
            // The server side's keys depend only on the version and the client's first
            // destination id; quinn accepted the version before starting this session.
            None => match crypto::ServerConfig::initial_keys(
                &*self.cfg.base_quic,
                self.version,
                dst_cid,
            ) {
                Ok(k) => k,
                Err(_) => self
                    .cfg
                    .base_quic
                    .clone()
                    .start_session(self.version, &self.params)
                    .initial_keys(dst_cid, side),
            },
        }
    }
    fn handshake_data(&self) -> Option<Box<dyn std::any::Any>> {
        self.inner.as_ref()?.handshake_data()
    }
    fn peer_identity(&self) -> Option<Box<dyn std::any::Any>> {
        self.inner.as_ref()?.peer_identity()
    }
    fn early_crypto(&self) -> Option<(Box<dyn crypto::HeaderKey>, Box<dyn crypto::PacketKey>)> {
        self.inner.as_ref()?.early_crypto()
    }
    fn early_data_accepted(&self) -> Option<bool> {
        self.inner.as_ref()?.early_data_accepted()
    }
    fn is_handshaking(&self) -> bool {
        self.inner.as_ref().is_none_or(|s| s.is_handshaking())
    }
    fn read_handshake(&mut self, buf: &[u8]) -> std::result::Result<bool, TransportError> {
        if let Some(s) = &mut self.inner {
            return s.read_handshake(buf);
        }
        self.hello.extend_from_slice(buf);
        let Some(cfg) = self.cfg.choose(self.version, &self.hello) else {
            return Ok(false);
        };
        let mut s = cfg.start_session(self.version, &self.params);
        let hello = std::mem::take(&mut self.hello);
        let r = s.read_handshake(&hello);
        self.inner = Some(s);
        r
    }
    fn transport_parameters(
        &self,
    ) -> std::result::Result<Option<TransportParameters>, TransportError> {
        match &self.inner {
            Some(s) => s.transport_parameters(),
            None => Ok(None),
        }
    }
    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        self.inner.as_mut()?.write_handshake(buf)
    }
    fn next_1rtt_keys(&mut self) -> Option<crypto::KeyPair<Box<dyn crypto::PacketKey>>> {
        self.inner.as_mut()?.next_1rtt_keys()
    }
    fn is_valid_retry(&self, orig_dst_cid: &ConnectionId, header: &[u8], payload: &[u8]) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|s| s.is_valid_retry(orig_dst_cid, header, payload))
    }
    fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: &[u8],
    ) -> std::result::Result<(), crypto::ExportKeyingMaterialError> {
        match &self.inner {
            Some(s) => s.export_keying_material(output, label, context),
            None => Err(crypto::ExportKeyingMaterialError),
        }
    }
}
