//! The OpenSSL-style error queue: one per thread, entries packed as OpenSSL 3 packs them
//! (library in bits 23..30, reason in bits 0..22, bit 31 for a system errno).
//! Owns: `Error` (the `Err` of every fallible call), the reason tables and the queue itself.
//! Must not touch: any BIO or SSL object.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;

pub mod codes;
pub use codes::*;

/// Most entries kept per thread; the oldest is dropped beyond this, as OpenSSL's ring does.
const QUEUE_MAX: usize = 16;

/// A failure of one call. `quiet` failures (would-block) set retry state but are not queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: u32,
    pub detail: Option<String>,
    pub quiet: bool,
}

impl Error {
    pub fn new(lib: u32, reason: u32) -> Self {
        Error {
            code: pack(lib, reason),
            detail: None,
            quiet: false,
        }
    }
    pub fn bio(reason: u32) -> Self {
        Self::new(ERR_LIB_BIO, reason)
    }
    pub fn ssl(reason: u32) -> Self {
        Self::new(ERR_LIB_SSL, reason)
    }
    /// A system error from an errno value (ERR_SYSTEM_ERROR in OpenSSL 3).
    pub fn sys(errno: i32) -> Self {
        Error {
            code: ERR_SYSTEM_FLAG | (errno as u32 & 0x7FFF_FFFF),
            detail: None,
            quiet: false,
        }
    }
    pub fn last_os() -> Self {
        Self::sys(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }
    pub fn null(arg: &str) -> Self {
        Self::new(ERR_LIB_CRYPTO, ERR_R_PASSED_NULL_PARAMETER)
            .with(format!("argument `{arg}` is NULL"))
    }
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::bio(BIO_R_INVALID_ARGUMENT).with(what)
    }
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::bio(BIO_R_UNSUPPORTED_METHOD).with(what)
    }
    pub fn internal(what: impl Into<String>) -> Self {
        Self::new(ERR_LIB_CRYPTO, ERR_R_INTERNAL_ERROR).with(what)
    }
    /// A would-block outcome: the caller sees the failure value and retry flags, no queue entry.
    pub fn would_block() -> Self {
        Error {
            code: 0,
            detail: None,
            quiet: true,
        }
    }
    pub fn with(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    pub fn is_would_block(&self) -> bool {
        self.quiet
    }
    /// The peer's orderly end of the data (QUIC FIN, TLS close_notify): SSL_read's 0 with
    /// SSL_ERROR_ZERO_RETURN.
    pub fn fin() -> Self {
        Self::ssl(crate::consts::SSL_R_PROTOCOL_IS_SHUTDOWN).with("FIN")
    }
    pub fn is_fin(&self) -> bool {
        self.code == pack(ERR_LIB_SSL, crate::consts::SSL_R_PROTOCOL_IS_SHUTDOWN)
            && self.detail.as_deref() == Some("FIN")
    }
    pub fn lib(&self) -> u32 {
        lib_of(self.code)
    }
    pub fn reason(&self) -> u32 {
        reason_of(self.code)
    }
    /// Pushes this error onto the calling thread's queue unless it is a quiet would-block or
    /// the peer's end of the data, which OpenSSL reports as SSL_ERROR_ZERO_RETURN without
    /// queueing anything (its SSL_get_error would otherwise answer SSL_ERROR_SSL).
    pub fn queue(&self, func: &'static str) {
        if !self.quiet && !self.is_fin() {
            push(self.code, func, self.detail.clone());
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", reason_string(self.code))?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// OpenSSL 3's ERR_PACK: library in bits 23..30, reason (with its flag bits) in 0..22.
pub const fn pack(lib: u32, reason: u32) -> u32 {
    ((lib & 0xFF) << 23) | (reason & 0x7F_FFFF)
}
pub const fn is_system(code: u32) -> bool {
    code & ERR_SYSTEM_FLAG != 0
}
pub const fn lib_of(code: u32) -> u32 {
    if is_system(code) {
        ERR_LIB_SYS
    } else {
        (code >> 23) & 0xFF
    }
}
pub const fn reason_of(code: u32) -> u32 {
    if is_system(code) {
        code & 0x7FFF_FFFF
    } else {
        code & 0x7F_FFFF
    }
}

/// One queued error.
#[derive(Clone, Debug)]
pub struct Entry {
    pub code: u32,
    pub func: &'static str,
    pub data: Option<String>,
}

thread_local! {
    static QUEUE: RefCell<VecDeque<Entry>> = const { RefCell::new(VecDeque::new()) };
}

pub fn push(code: u32, func: &'static str, data: Option<String>) {
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        if q.len() == QUEUE_MAX {
            q.pop_front();
        }
        q.push_back(Entry { code, func, data });
    });
}
/// Removes and returns the oldest entry.
pub fn pop_front() -> Option<Entry> {
    QUEUE.with(|q| q.borrow_mut().pop_front())
}
pub fn peek_front() -> Option<Entry> {
    QUEUE.with(|q| q.borrow().front().cloned())
}
pub fn peek_back() -> Option<Entry> {
    QUEUE.with(|q| q.borrow().back().cloned())
}
pub fn clear() {
    QUEUE.with(|q| q.borrow_mut().clear());
}
pub fn len() -> usize {
    QUEUE.with(|q| q.borrow().len())
}

/// Human name of a library, as OpenSSL prints it.
pub fn lib_name(lib: u32) -> &'static str {
    match lib {
        ERR_LIB_SYS => "system library",
        ERR_LIB_BIO => "BIO routines",
        ERR_LIB_SSL => "SSL routines",
        ERR_LIB_CRYPTO => "common libcrypto routines",
        ERR_LIB_X509 => "X509 routines",
        ERR_LIB_PEM => "PEM routines",
        ERR_LIB_USER => "user library",
        _ => "unknown library",
    }
}

/// Readable text for a packed code; `None` only for codes this library never produces.
pub fn reason_text(code: u32) -> Option<String> {
    if is_system(code) {
        return Some(std::io::Error::from_raw_os_error(reason_of(code) as i32).to_string());
    }
    let lib = lib_of(code);
    let reason = reason_of(code);
    let generic = reason & !ERR_R_FATAL;
    let text = match (lib, reason) {
        (_, ERR_R_PASSED_NULL_PARAMETER) => "passed a null parameter",
        (_, ERR_R_INTERNAL_ERROR) => "internal error",
        (_, ERR_R_INIT_FAIL) => "init fail",
        (_, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED) => "should not have been called",
        (_, ERR_R_MALLOC_FAILURE) => "malloc failure",
        (_, ERR_R_UNSUPPORTED) => "unsupported",
        (_, ERR_R_PASSED_INVALID_ARGUMENT) => "passed invalid argument",
        (ERR_LIB_BIO, r) => bio_reason(r)?,
        (ERR_LIB_SSL, r) => ssl_reason(r)?,
        (ERR_LIB_PEM, 108) => "no start line",
        _ => return (generic != reason).then(|| format!("reason({generic})")),
    };
    Some(text.to_string())
}

/// Readable text for a packed code, never empty.
pub fn reason_string(code: u32) -> String {
    reason_text(code).unwrap_or_else(|| format!("reason({})", reason_of(code)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_matches_openssl3() {
        let e = Error::bio(BIO_R_NON_FATAL);
        assert_eq!(e.code, (32 << 23) | 112);
        assert_eq!((e.lib(), e.reason()), (ERR_LIB_BIO, BIO_R_NON_FATAL));
        let s = Error::sys(libc::EAGAIN);
        assert_eq!(s.code, 0x8000_0000 | libc::EAGAIN as u32);
        assert_eq!((s.lib(), s.reason()), (ERR_LIB_SYS, libc::EAGAIN as u32));
        assert_eq!(Error::null("x").code & 0x7F_FFFF, 258 | ERR_R_FATAL);
    }

    #[test]
    fn queue_is_fifo_bounded_and_quiet_errors_are_not_queued() {
        clear();
        Error::would_block().queue("f");
        assert_eq!(len(), 0);
        for r in 0..20 {
            Error::bio(100 + r).queue("f");
        }
        assert_eq!(len(), QUEUE_MAX);
        assert_eq!(peek_front().unwrap().code, pack(ERR_LIB_BIO, 104));
        assert_eq!(peek_back().unwrap().code, pack(ERR_LIB_BIO, 119));
        assert_eq!(pop_front().unwrap().code, pack(ERR_LIB_BIO, 104));
        clear();
        assert!(pop_front().is_none());
    }

    #[test]
    fn every_code_has_readable_text() {
        assert_eq!(
            reason_string(pack(ERR_LIB_BIO, BIO_R_PEER_ADDR_NOT_AVAILABLE)),
            "peer address not available"
        );
        assert!(reason_string(Error::sys(libc::ECONNREFUSED).code).contains("refused"));
        assert_eq!(reason_string(pack(ERR_LIB_BIO, 9999)), "reason(9999)");
    }
}
