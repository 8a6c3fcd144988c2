//! The domain object (SSL_new_domain) and the SSL_DOMAIN_FLAG_* rules: listeners made from
//! a domain share its ports and waiting (`domain`).
//! Must not touch: connections' state (`connection`), `extern "C"`.
#![deny(unsafe_code)]

use super::*;

/// A domain object (SSL_new_domain): listeners made from it share its ports and their waiting.
pub struct DomainObj {
    pub domain: Arc<Domain>,
}

/// The flags a new domain gets: `requested` if it names a threading model, else the
/// context's flags plus `requested` (OpenSSL's rule), checked.
pub fn domain_flags(ctx: &SslCtx, requested: u64) -> Result<u64> {
    let model = SSL_DOMAIN_FLAG_SINGLE_THREAD
        | SSL_DOMAIN_FLAG_MULTI_THREAD
        | SSL_DOMAIN_FLAG_THREAD_ASSISTED;
    if requested & model == 0 {
        check_domain_flags(ctx.domain_flags() | requested)
    } else {
        check_domain_flags(requested)
    }
}

/// Validates SSL_DOMAIN_FLAG_* bits as OpenSSL does: unknown bits are unsupported, SINGLE
/// excludes MULTI and THREAD_ASSISTED; THREAD_ASSISTED implies MULTI; no model means MULTI.
pub fn check_domain_flags(mut f: u64) -> Result<u64> {
    const ALL: u64 = 31;
    if f & !ALL != 0 {
        return Err(
            Error::ssl(ERR_R_UNSUPPORTED).with(format!("unknown domain flags {:#x}", f & !ALL))
        );
    }
    if f & SSL_DOMAIN_FLAG_SINGLE_THREAD != 0
        && f & (SSL_DOMAIN_FLAG_MULTI_THREAD | SSL_DOMAIN_FLAG_THREAD_ASSISTED) != 0
    {
        return Err(Error::ssl(ERR_R_PASSED_INVALID_ARGUMENT)
            .with("SINGLE_THREAD excludes MULTI_THREAD and THREAD_ASSISTED"));
    }
    if f & (SSL_DOMAIN_FLAG_SINGLE_THREAD | SSL_DOMAIN_FLAG_THREAD_ASSISTED) == 0 {
        f |= SSL_DOMAIN_FLAG_MULTI_THREAD;
    }
    if f & SSL_DOMAIN_FLAG_THREAD_ASSISTED != 0 {
        f |= SSL_DOMAIN_FLAG_MULTI_THREAD;
    }
    Ok(f)
}

impl Ssl {
    /// SSL_new_domain: an empty domain that listeners can be made in.
    pub fn new_domain(ctx: Arc<SslCtx>, flags: u64) -> Result<Arc<Ssl>> {
        let domain = Arc::new(Domain::empty(domain_flags(&ctx, flags)?));
        let s = Ssl::make(ctx, Kind::Domain(DomainObj { domain }), true);
        s.domain().owner.store(Arc::as_ptr(&s) as usize, Relaxed);
        Ok(s)
    }

    /// SSL_new_listener_from: a listener with its own port in this domain.
    pub fn new_listener_from(self: &Arc<Ssl>, validate: bool) -> Result<Arc<Ssl>> {
        let Kind::Domain(d) = &self.kind else {
            return Err(Error::ssl(SSL_R_DOMAIN_USE_ONLY).with("only a domain supports this"));
        };
        let engine = Ssl::listener_engine(&self.ctx, validate)?;
        let epoch = engine.accept_epoch();
        let port = d.domain.add_port(engine);
        let l = Listener {
            domain: d.domain.clone(),
            port,
            parent: Some(self.clone()),
            epoch,
            listening: AtomicBool::new(false),
            take: Default::default(),
        };
        Ok(Ssl::make(
            self.ctx.clone(),
            Kind::Listener(l),
            self.blocking.load(Relaxed),
        ))
    }

    pub fn is_domain(&self) -> bool {
        matches!(self.kind, Kind::Domain(_))
    }

    /// SSL_get0_domain: the domain object this object lives in, if it was made from one.
    pub fn domain_obj(&self) -> Option<&Arc<Ssl>> {
        match &self.kind {
            Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => None,
            Kind::Listener(l) => l.parent.as_ref(),
            Kind::Conn(c) => c.listener().and_then(|l| l.domain_obj()),
            Kind::Stream(s) => s.conn.domain_obj(),
        }
    }
}
