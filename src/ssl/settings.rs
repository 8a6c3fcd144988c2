//! Per-connection settings that replace the context's: SSL_set_verify (a mode and callback
//! of the connection's own; the verification itself is `ctx::Verifier`'s, shared by TLS and
//! QUIC clients) and SSL_set_SSL_CTX (a TLS connection switching to another context, as a
//! server-name callback does to serve another certificate).
#![deny(unsafe_code)]

use std::sync::Arc;

use super::ctx::VerifyCb;
use super::*;

impl Ssl {
    /// The verification state of this connection (a TLS connection, a QUIC connection or
    /// its stream's connection).
    pub(super) fn verify_state(&self) -> Option<&Arc<VerifyResult>> {
        match &self.kind {
            Kind::Tls(t) => Some(&t.verify),
            _ => self.conn_obj().map(|c| c.verify()),
        }
    }

    /// SSL_set_verify: this connection's own mode and callback (before its handshake).
    pub fn set_verify(&self, mode: i32, cb: Option<VerifyCb>) -> Result<()> {
        let v = self.verify_state().ok_or_else(|| {
            Error::ssl(SSL_R_CONN_USE_ONLY).with("SSL_set_verify applies to connections")
        })?;
        *v.own.lock() = Some((mode, cb));
        Ok(())
    }

    /// SSL_get_verify_mode: the connection's own mode, else its context's.
    pub fn verify_mode(&self) -> i32 {
        self.verify_state()
            .and_then(|v| v.own.lock().as_ref().map(|o| o.0))
            .unwrap_or_else(|| self.cur_ctx().verify_mode())
    }

    /// The context in effect: the one SSL_set_SSL_CTX chose (TLS), else the one the object
    /// was made from.
    pub fn cur_ctx(&self) -> Arc<SslCtx> {
        match &self.kind {
            Kind::Tls(t) => t.ctx_now.lock().clone(),
            _ => None,
        }
        .unwrap_or_else(|| self.ctx.clone())
    }

    /// SSL_set_SSL_CTX on a TLS connection: `ctx` (None: the original context) applies from
    /// its next handshake step on; inside the server-name callback, the handshake goes on
    /// with its certificate and ALPN callback. Session caches stay the original context's
    /// only as far as rustls allows (a switched server uses the new context's).
    pub fn set_ssl_ctx(&self, ctx: Option<Arc<SslCtx>>) -> Result<Arc<SslCtx>> {
        let Kind::Tls(t) = &self.kind else {
            return Err(Error::unsupported(
                "SSL_set_SSL_CTX is supported on TLS connections only",
            ));
        };
        let ctx = ctx.unwrap_or_else(|| self.ctx.clone());
        if !ctx.method.is_tls() {
            return Err(Error::ssl(ERR_R_PASSED_INVALID_ARGUMENT)
                .with("SSL_set_SSL_CTX: not a TLS context"));
        }
        *t.ctx_now.lock() = Some(ctx.clone());
        Ok(ctx)
    }
}
