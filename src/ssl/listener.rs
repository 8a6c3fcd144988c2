//! The QUIC listener object (SSL_new_listener, SSL_new_listener_from): its port's accept
//! queue, SSL_listen, SSL_accept_connection, SSL_listen_ex, SSL_new_from_listener.
//! Must not touch: the TLS listener (`tls_conn`), sockets (the port does), `extern "C"`.
#![deny(unsafe_code)]

use super::*;

pub struct Listener {
    pub domain: Arc<Domain>,
    pub port: PortId,
    /// The domain object it was made from (SSL_new_listener_from), kept alive.
    pub parent: Option<Arc<Ssl>>,
    /// The engine's accept-queue epoch (see `quic::engine::Engine::accept_epoch`).
    pub(super) epoch: Arc<std::sync::atomic::AtomicU64>,
    pub(super) listening: AtomicBool,
    /// How the application takes connections: 0 not yet, PEEL_ACCEPT (SSL_accept_connection)
    /// or PEEL_LISTEN_EX (SSL_listen_ex); the two are not mixed on one listener.
    pub(super) take: std::sync::atomic::AtomicU8,
}

const PEEL_ACCEPT: u8 = 1;

const PEEL_LISTEN_EX: u8 = 2;

impl Listener {
    /// Records how connections are taken; SSL_accept_connection and SSL_listen_ex do not
    /// mix on one listener (OpenSSL 4.0).
    fn take_by(&self, how: u8) -> Result<()> {
        match self.take.compare_exchange(0, how, Relaxed, Relaxed) {
            Ok(_) => Ok(()),
            Err(was) if was == how => Ok(()),
            Err(_) => Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("SSL_listen_ex and SSL_accept_connection are not mixed on one listener")),
        }
    }
}

impl Drop for Listener {
    /// A listener in a shared domain lets go of its network BIOs (its port stays, idle).
    fn drop(&mut self) {
        if self.parent.is_some() {
            let mut g = self.domain.lock("domain: drop");
            let p = g.port(self.port);
            // In a fork child the port carries the child's own connection now.
            if !p.engine.serves_only_own() {
                p.set_bios(None, None);
            }
        }
    }
}

impl Ssl {
    pub(super) fn listener_engine(ctx: &SslCtx, validate: bool) -> Result<Engine> {
        if !ctx.can_serve() {
            return Err(
                Error::ssl(SSL_R_NOT_SERVER).with("a QUIC listener needs OSSL_QUIC_server_method")
            );
        }
        let mut engine = Engine::new(Some(ctx.server_config()?));
        engine.set_validate(validate);
        engine.set_transport(ctx.transport_options());
        if let Some(k) = ctx.fleet_keys() {
            // A new engine has no connections: cannot fail.
            engine.set_reset_key(&k.reset);
        }
        Ok(engine)
    }

    /// SSL_new_from_listener: an outgoing connection from the listener's port.
    pub fn new_from_listener(self: &Arc<Ssl>) -> Result<Arc<Ssl>> {
        let l = self.as_listener()?;
        let c = ConnObj::new(l.domain.clone(), l.port, Some(self.clone()));
        c.pre.lock().outgoing = true;
        Ok(Ssl::make(
            self.ctx.clone(),
            Kind::Conn(c),
            self.blocking.load(Relaxed),
        ))
    }

    /// SSL_accept_connection: the next queued connection; in blocking mode (and without
    /// `no_block`) waits for one, else would-block. It inherits the listener's blocking mode.
    pub(super) fn quic_accept_connection(self: &Arc<Ssl>, no_block: bool) -> Result<Arc<Ssl>> {
        if self.as_listener().is_ok()
            && self
                .locked("domain: accept_connection")
                .engine
                .serves_only_own()
        {
            return Err(fork::left_with_parent());
        }
        self.listen()?;
        let l = self.as_listener()?;
        l.take_by(PEEL_ACCEPT)?;
        let (cell, verify) = self.port_op("domain: accept_connection", !no_block, |p| {
            if p.engine.serves_only_own() {
                return Err(fork::left_with_parent());
            }
            take_next(p)
        })?;
        let mut c = ConnObj::new(l.domain.clone(), l.port, Some(self.clone()));
        // Client certificates are verified in the connection's TLS session, which may have
        // started before this object: it holds the outcome (clientauth::VerifyingServer).
        if let Some(v) = verify {
            c.verify = v;
        }
        let _ = c.cell.set(cell);
        Ok(Ssl::make(
            self.ctx.clone(),
            Kind::Conn(c),
            self.blocking.load(Relaxed),
        ))
    }

    /// SSL_listen_ex (OpenSSL 4.0, as fixed in 4.0.x): moves the next queued incoming
    /// connection into `new_conn`, a fresh QUIC connection object from SSL_new. Ok(true)
    /// when one was moved, Ok(false) when none is queued (it never waits). `new_conn` then
    /// belongs to this listener's domain and keeps the listener alive; its handshake goes on
    /// there (SSL_do_handshake/SSL_accept on it, or I/O).
    pub(super) fn quic_listen_ex(self: &Arc<Ssl>, new_conn: &Arc<Ssl>) -> Result<bool> {
        let l = self.as_listener()?;
        let c = new_conn.as_conn().map_err(|_| {
            Error::ssl(SSL_R_CONN_USE_ONLY).with("new_conn must be a QUIC connection from SSL_new")
        })?;
        if c.listener().is_some() || c.cell.get().is_some() {
            return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("new_conn must be a fresh connection object that has not started"));
        }
        if c.domain().flags & SSL_DOMAIN_FLAG_THREAD_ASSISTED != 0 {
            return Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED)
                .with("new_conn must not be thread-assisted"));
        }
        if self.locked("domain: listen_ex").engine.serves_only_own() {
            return Err(fork::left_with_parent());
        }
        self.listen()?;
        l.take_by(PEEL_LISTEN_EX)?;
        let taken = self.port_op("domain: listen_ex", false, take_next);
        let (cell, verify) = match taken {
            Ok(t) => t,
            Err(e) if e.is_would_block() => return Ok(false),
            Err(e) => return Err(e),
        };
        let _ = c.peeled.set(Peeled {
            domain: l.domain.clone(),
            port: l.port,
            listener: self.clone(),
            verify,
        });
        let _ = c.cell.set(cell);
        Ok(true)
    }

    pub fn accept_queue_len(&self) -> Result<usize> {
        self.as_listener()?;
        Ok(self
            .locked_ticked("domain: accept_queue_len")
            .engine
            .accept_queue_len())
    }

    /// OSSLQUIC_set_max_pending_connections: bounds the listener's accept queue (see
    /// `quic::engine::DEFAULT_MAX_PENDING`); connections already queued stay.
    pub fn set_max_pending(&self, max: usize) -> Result<()> {
        self.as_listener()?;
        self.locked("domain: set_max_pending")
            .engine
            .set_max_pending(max);
        Ok(())
    }

    /// OSSLQUIC_get_max_pending_connections.
    pub fn max_pending(&self) -> Result<usize> {
        self.as_listener()?;
        Ok(self.locked("domain: max_pending").engine.max_pending())
    }

    /// OSSLQUIC_set_quic_lb: the connection IDs a listener (a domain: each of its listeners,
    /// and those made later) issues follow `lb` from now on. Only before it has connections.
    pub fn set_quic_lb(&self, lb: Arc<crate::quic::lb::LbConfig>) -> Result<()> {
        let busy = || {
            Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED).with(
                "QUIC-LB is configured before a listener has connections or is prepared for \
                 prefork (OSSLQUIC_prefork)",
            )
        };
        match &self.kind {
            Kind::Domain(d) => {
                let mut g = d.domain.lock("domain: set_quic_lb");
                let ids: Vec<_> = g.port_ids().collect();
                // Prefork's steering program was made for the IDs it had.
                if ids.iter().any(|&id| g.port(id).fork.prefork != 0) {
                    return Err(busy());
                }
                for id in ids {
                    if !g.port(id).engine.set_lb(Some(lb.clone())) {
                        return Err(busy());
                    }
                }
                g.lb = Some(lb);
            }
            Kind::Listener(_) => {
                let mut p = self.locked("domain: set_quic_lb");
                if p.fork.prefork != 0 || !p.engine.set_lb(Some(lb)) {
                    return Err(busy());
                }
            }
            _ => {
                return Err(Error::ssl(SSL_R_LISTENER_USE_ONLY)
                    .with("QUIC-LB is set on a QUIC listener or domain"));
            }
        }
        Ok(())
    }

    /// OSSLQUIC_set_max_unvalidated_handshakes: bounds the handshakes in progress with
    /// unproven addresses (see `quic::engine::DEFAULT_MAX_UNVALIDATED`).
    pub fn set_max_unvalidated(&self, max: usize) -> Result<()> {
        self.as_listener()?;
        self.locked("domain: set_max_unvalidated")
            .engine
            .set_max_unvalidated(max);
        Ok(())
    }

    /// OSSLQUIC_get_max_unvalidated_handshakes.
    pub fn max_unvalidated(&self) -> Result<usize> {
        self.as_listener()?;
        Ok(self
            .locked("domain: max_unvalidated")
            .engine
            .max_unvalidated())
    }

    /// SSL_listen on a QUIC listener: needs its network BIO.
    pub(super) fn quic_listen(&self) -> Result<()> {
        let l = self.as_listener()?;
        if self.locked("domain: listen").rbio.is_none() {
            return Err(Error::ssl(SSL_R_BIO_NOT_SET)
                .with("set a network BIO (SSL_set_fd/SSL_set_bio) first"));
        }
        l.listening.store(true, Relaxed);
        Ok(())
    }
}

/// A connection taken off the accept queue, and the verification state its TLS session
/// made (client certificates).
type Taken = (Arc<ConnCell>, Option<Arc<VerifyResult>>);

/// The next connection off a listener's accept queue (would-block if none).
fn take_next(p: &mut Port) -> Result<Taken> {
    let cell = p.engine.accept_next().ok_or_else(want_read)?;
    let verify = peer::session_verify(cell.lock("conn: accepted").crypto_session());
    Ok((cell, verify))
}
