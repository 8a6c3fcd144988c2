//! Client certificates (issue 12): a server that asks for and verifies them
//! (`SSL_VERIFY_PEER` [| `SSL_VERIFY_FAIL_IF_NO_PEER_CERT`] on a server context), and a
//! client that offers one. rustls decides per handshake through the `ClientCertVerifier`
//! here, which reads the connection's own verify mode (SSL_set_verify) or the context's,
//! runs webpki, then the application's verify callback, and records the outcome for
//! SSL_get_verify_result, as `ctx::Verifier` does for servers' certificates.
//! QUIC listeners share one rustls configuration among their connections, so a wrapper
//! around quinn's server crypto gives each connection's TLS session its own outcome
//! (`VerifyResult`), reachable afterwards through the session's peer identity (`QuicPeer`).
//! Must not touch: C callbacks directly (the context holds Rust closures).
#![deny(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use quinn_proto::crypto::{self, Keys, Session, UnsupportedVersion};
use quinn_proto::transport_parameters::TransportParameters;
use quinn_proto::{ConnectionId, Side, TransportError};
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::ctx::{Chain, VerifyCb, VerifyResult, current_verify, judge, with_verify_result};
use crate::consts::{SSL_VERIFY_FAIL_IF_NO_PEER_CERT, SSL_VERIFY_PEER};

/// A server's client-certificate policy, as OpenSSL's server applies SSL_VERIFY_*: NONE
/// asks for nothing; PEER asks, accepts no certificate, and fails the handshake on a bad one
/// unless the verify callback says go on; FAIL_IF_NO_PEER_CERT also refuses no certificate.
/// SSL_VERIFY_CLIENT_ONCE changes nothing: rustls neither renegotiates nor asks again after
/// the handshake, so a client is only ever asked once.
pub struct ClientVerifier {
    /// webpki over the context's trusted CAs (None: no CA loaded, every certificate fails
    /// with X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY).
    inner: Option<Arc<dyn ClientCertVerifier>>,
    mode: i32,
    cb: Option<VerifyCb>,
    /// The CA names sent in the CertificateRequest (SSL_CTX_set_client_CA_list & co.).
    hints: Vec<DistinguishedName>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("mode", &self.mode)
            .field("callback", &self.cb.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientVerifier {
    pub fn new(
        roots: &[CertificateDer<'static>],
        mode: i32,
        cb: Option<VerifyCb>,
        hints: Vec<DistinguishedName>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> crate::error::Result<ClientVerifier> {
        let mut store = rustls::RootCertStore::empty();
        for r in roots {
            let _ = store.add(r.clone());
        }
        let inner = if store.is_empty() {
            None
        } else {
            // This verifier decides whether a certificate is required (`client_auth_mandatory`
            // below), so webpki's own is told to allow none.
            Some(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(store),
                    provider.clone(),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| crate::error::Error::internal(e.to_string()))?,
            )
        };
        Ok(ClientVerifier {
            inner,
            mode,
            cb,
            hints,
            provider,
        })
    }

    /// The mode and callback for the connection handshaking on this thread: its own
    /// (SSL_set_verify), else the context's.
    fn settings(&self) -> (i32, Option<VerifyCb>, Option<Arc<VerifyResult>>) {
        let target = current_verify();
        let (mode, cb) = target
            .as_ref()
            .and_then(|t| t.own.lock().clone())
            .unwrap_or_else(|| (self.mode, self.cb.clone()));
        (mode, cb, target)
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.settings().0 & SSL_VERIFY_PEER != 0
    }

    fn client_auth_mandatory(&self) -> bool {
        let mode = self.settings().0;
        mode & SSL_VERIFY_PEER != 0 && mode & SSL_VERIFY_FAIL_IF_NO_PEER_CERT != 0
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let r = match &self.inner {
            Some(v) => v.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        let (mode, cb, target) = self.settings();
        // The SSL the callback names: the connection (TLS), or, for a QUIC connection whose
        // SSL object SSL_accept_connection has not made yet, its listener.
        let ssl = target
            .as_ref()
            .map(|t| t.ssl.load(Relaxed))
            .filter(|&s| s != 0)
            .unwrap_or_else(super::domain::current_owner);
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
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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

/// A client's certificate: offered whenever a server asks (OpenSSL's client does not filter
/// by the server's CA names either). One object per context: rustls resumes a session only
/// with the resolver that made it.
#[derive(Debug)]
pub struct OfferCert(pub Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for OfferCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// What a QUIC server connection's session reports as its peer identity: the client's
/// certificates (if it sent any) and the connection's verification outcome.
pub struct QuicPeer {
    pub certs: Option<Vec<CertificateDer<'static>>>,
    pub verify: Arc<VerifyResult>,
}

/// quinn's server crypto with a verification outcome per connection (see the module doc).
pub struct VerifyingServer {
    pub inner: Arc<dyn crypto::ServerConfig>,
}

impl crypto::ServerConfig for VerifyingServer {
    fn initial_keys(
        &self,
        version: u32,
        dst_cid: &ConnectionId,
    ) -> Result<Keys, UnsupportedVersion> {
        self.inner.initial_keys(version, dst_cid)
    }

    fn retry_tag(&self, version: u32, orig_dst_cid: &ConnectionId, packet: &[u8]) -> [u8; 16] {
        self.inner.retry_tag(version, orig_dst_cid, packet)
    }

    fn start_session(
        self: Arc<Self>,
        version: u32,
        params: &TransportParameters,
    ) -> Box<dyn Session> {
        let verify = Arc::new(VerifyResult::default());
        let inner = with_verify_result(&verify, || {
            self.inner.clone().start_session(version, params)
        });
        Box::new(VerifyingSession { inner, verify })
    }
}

/// A server session whose handshake steps report verification to its own `VerifyResult`.
struct VerifyingSession {
    inner: Box<dyn Session>,
    verify: Arc<VerifyResult>,
}

impl Session for VerifyingSession {
    fn initial_keys(&self, dst_cid: &ConnectionId, side: Side) -> Keys {
        self.inner.initial_keys(dst_cid, side)
    }
    fn handshake_data(&self) -> Option<Box<dyn std::any::Any>> {
        self.inner.handshake_data()
    }
    fn peer_identity(&self) -> Option<Box<dyn std::any::Any>> {
        let certs = self
            .inner
            .peer_identity()
            .and_then(|p| p.downcast::<Vec<CertificateDer<'static>>>().ok())
            .map(|b| *b);
        Some(Box::new(QuicPeer {
            certs,
            verify: self.verify.clone(),
        }))
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
    fn read_handshake(&mut self, buf: &[u8]) -> Result<bool, TransportError> {
        let inner = &mut self.inner;
        with_verify_result(&self.verify, || inner.read_handshake(buf))
    }
    fn transport_parameters(&self) -> Result<Option<TransportParameters>, TransportError> {
        self.inner.transport_parameters()
    }
    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        let inner = &mut self.inner;
        with_verify_result(&self.verify, || inner.write_handshake(buf))
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
    ) -> Result<(), crypto::ExportKeyingMaterialError> {
        self.inner.export_keying_material(output, label, context)
    }
}
