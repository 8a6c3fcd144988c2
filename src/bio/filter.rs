//! `BIO_f_ssl`: a filter BIO over a byte-stream engine that this layer knows only through
//! the [`StreamFilter`] trait (the SSL object lives in `ssl/`; the C boundary attaches one
//! with `BIO_set_ssl`). Reads, writes, `BIO_do_handshake` and shutdown go to the engine,
//! which does its own network I/O through its read and write BIOs; those follow this BIO in
//! its chain (BIO_f_ssl(3)). A would-block becomes this BIO's retry flags with the direction
//! the engine waits for, or "special" with a retry reason (a connect BIO still connecting).
//! Owns: the attachment (engine, handle, close flag). Must not touch: SSL itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::sync::Mutex;

use super::consts::*;
use super::{Bio, BioMethod};
use crate::error::*;

pub static METHOD_SSL: BioMethod = BioMethod {
    type_id: BIO_TYPE_SSL,
    name: "ssl",
};

/// What a would-block of the engine waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Read,
    Write,
    /// Neither direction: a retry reason (BIO_RR_CONNECT, BIO_RR_ACCEPT, ...).
    Special(i32),
}

/// The engine behind a filter BIO (implemented by the SSL object).
pub trait StreamFilter: Send + Sync {
    /// Plaintext in: Ok(n) with n > 0; Ok(0) once the peer has ended cleanly; a would-block
    /// error (then [`filter_want`](Self::filter_want) says why) or a failure.
    fn filter_read(&self, buf: &mut [u8]) -> Result<usize>;
    /// Plaintext out, as `filter_read`.
    fn filter_write(&self, buf: &[u8]) -> Result<usize>;
    /// One handshake step: Ok once complete.
    fn filter_handshake(&self) -> Result<()>;
    /// What the last would-block waited for.
    fn filter_want(&self) -> Want;
    /// One shutdown step (the peer is told the connection ends); the result is not needed.
    fn filter_shutdown(&self);
    /// Plaintext buffered and readable without network I/O.
    fn filter_pending(&self) -> usize;
    /// Whether the handshake has not completed yet.
    fn filter_in_init(&self) -> bool;
    /// BIO_set_ssl_mode: client (true) or server.
    fn filter_set_client(&self, client: bool);
    /// The engine's network BIOs (read, write).
    fn filter_bios(&self) -> (Option<Arc<Bio>>, Option<Arc<Bio>>);
    /// Replaces the engine's network BIOs (one BIO for both, or none).
    fn filter_set_bios(&self, bio: Option<Arc<Bio>>);
}

/// An engine attached to a filter BIO.
pub struct Attached {
    pub engine: Arc<dyn StreamFilter>,
    /// The engine's C handle, as BIO_get_ssl returns it.
    pub handle: usize,
    /// Gives up the reference the application handed over with BIO_CLOSE: run when the
    /// engine is detached (the BIO freed, or another engine set) while the close flag is set.
    pub release: Box<dyn Fn() + Send + Sync>,
}

/// The state of a `BIO_f_ssl` BIO: the attached engine, if any, and BIO_get_close's flag.
#[derive(Default)]
pub struct FilterBio {
    slot: Mutex<Option<Arc<Attached>>>,
    close: AtomicBool,
}

impl FilterBio {
    /// The attached engine (cloned out, so that no lock of ours is held while it runs: it
    /// may call back into BIOs, its own network BIOs included).
    pub fn attached(&self) -> Option<Arc<Attached>> {
        self.slot.lock().clone()
    }

    /// BIO_set_ssl: detaches the current engine (as freeing would), then attaches `a` with
    /// the close flag `close`.
    pub fn attach(&self, a: Attached, close: bool) {
        self.detach();
        self.close.store(close, Relaxed);
        *self.slot.lock() = Some(Arc::new(a));
    }

    /// Detaches the engine: with the close flag set, the engine is shut down (unless still
    /// in its handshake) and the application's reference released, as freeing an SSL BIO
    /// does in OpenSSL.
    pub fn detach(&self) {
        let Some(a) = self.slot.lock().take() else {
            return;
        };
        if self.close.load(Relaxed) {
            if !a.engine.filter_in_init() {
                a.engine.filter_shutdown();
            }
            (a.release)();
        }
    }

    pub fn get_close(&self) -> bool {
        self.close.load(Relaxed)
    }
    pub fn set_close(&self, c: bool) {
        self.close.store(c, Relaxed);
    }

    /// BIO_read: the engine's plaintext, with retry flags from its would-block.
    pub(super) fn read(&self, bio: &Bio, buf: &mut [u8]) -> Result<usize> {
        let a = self.ready()?;
        let r = a.engine.filter_read(buf);
        self.flags(bio, &a, &r);
        r
    }

    /// BIO_write: to the engine, with retry flags from its would-block.
    pub(super) fn write(&self, bio: &Bio, buf: &[u8]) -> Result<usize> {
        let a = self.ready()?;
        let r = a.engine.filter_write(buf);
        self.flags(bio, &a, &r);
        r
    }

    /// BIO_do_handshake: one handshake step, retry flags as for I/O.
    pub fn handshake(&self, bio: &Bio) -> Result<()> {
        let a = self.ready()?;
        bio.clear_retry();
        bio.set_retry_reason(0);
        let r = a.engine.filter_handshake();
        self.flags(bio, &a, &r);
        r
    }

    /// The engine's read (`write` false) or write network BIO, for poll descriptors.
    pub(super) fn net_bio(&self, write: bool) -> Result<Arc<Bio>> {
        let (r, w) = self.ready()?.engine.filter_bios();
        if write { w } else { r }
            .ok_or_else(|| Error::bio(BIO_R_UNINITIALIZED).with("the SSL has no network BIO yet"))
    }

    fn ready(&self) -> Result<Arc<Attached>> {
        self.attached().ok_or_else(|| {
            Error::bio(BIO_R_UNINITIALIZED).with("no SSL attached to this BIO (BIO_set_ssl)")
        })
    }

    /// Sets `bio`'s retry flags from an engine call's outcome (bio_ssl.c's mapping of
    /// SSL_get_error).
    fn flags<T>(&self, bio: &Bio, a: &Attached, r: &Result<T>) {
        bio.clear_retry();
        bio.set_retry_reason(0);
        if matches!(r, Err(e) if e.is_would_block()) {
            match a.engine.filter_want() {
                Want::Read => bio.retry(BIO_FLAGS_READ),
                Want::Write => bio.retry(BIO_FLAGS_WRITE),
                Want::Special(reason) => {
                    bio.retry(BIO_FLAGS_IO_SPECIAL);
                    bio.set_retry_reason(reason);
                }
            }
        }
    }
}

impl Drop for FilterBio {
    fn drop(&mut self) {
        self.detach();
    }
}
