//! The peer's certificates of a connection (TLS or QUIC) as X509 objects
//! (SSL_get1_peer_certificate, SSL_get_peer_cert_chain), made once the handshake is over and
//! kept with the connection's verification state.
//! Must not touch: the engine's state beyond reading a session's peer identity.
#![deny(unsafe_code)]

use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use super::clientauth::QuicPeer;
use super::{Kind, Ssl, VerifyResult};
use crate::error::*;
use crate::x509::PeerCerts;

impl Ssl {
    /// The peer's certificates, or None while the handshake is not over (or on objects that
    /// are not connections).
    pub fn peer_certs(&self) -> Result<Option<&PeerCerts>> {
        if let Kind::Stream(s) = &self.kind {
            return s.conn.peer_certs();
        }
        let Some(v) = self.verify_state() else {
            return Ok(None);
        };
        if let Some(p) = v.peer.get() {
            return Ok(Some(p));
        }
        let Some((certs, server)) = self.peer_der()? else {
            return Ok(None);
        };
        let asked = self.verify_mode() & crate::consts::SSL_VERIFY_PEER != 0;
        let made = PeerCerts::new(&certs, server, asked)?;
        let _ = v.peer.set(made);
        Ok(v.peer.get())
    }

    /// After the handshake: what the peer sent (its own certificate first; empty if none)
    /// and whether this end is the server.
    fn peer_der(&self) -> Result<Option<(Vec<CertificateDer<'static>>, bool)>> {
        match &self.kind {
            Kind::Tls(t) => {
                let Some(certs) = t.tls.peer_certificates() else {
                    return Ok(None);
                };
                let server = (*t.role.lock()).unwrap_or(false);
                Ok(Some((certs, server)))
            }
            Kind::Conn(c) => {
                let server = c.listener.is_some();
                let certs = self.with_conn("conn: peer (certificates)", |conn| {
                    if conn.is_handshaking() {
                        return None;
                    }
                    let Some(id) = conn.crypto_session().peer_identity() else {
                        return Some(Vec::new());
                    };
                    Some(match id.downcast::<Vec<CertificateDer<'static>>>() {
                        Ok(v) => *v,
                        Err(id) => id
                            .downcast::<QuicPeer>()
                            .ok()
                            .and_then(|q| q.certs)
                            .unwrap_or_default(),
                    })
                });
                Ok(certs.flatten().map(|certs| (certs, server)))
            }
            _ => Ok(None),
        }
    }
}

/// The verification state a QUIC server connection's session made for it (see
/// `clientauth::VerifyingServer`), if the listener asks for client certificates.
pub(super) fn session_verify(
    session: &dyn quinn_proto::crypto::Session,
) -> Option<Arc<VerifyResult>> {
    let id = session.peer_identity()?;
    id.downcast::<QuicPeer>().ok().map(|p| p.verify)
}
