//! The C boundary: every `extern "C"` function lives under this module and nowhere else.
//! Each one converts arguments, runs its body inside [`guard`] and converts the result back.
//! Owns: the guard, argument helpers and handle conversion. Must not hold logic of its own.

// C entry points take raw pointers by design; each one NULL-checks before any dereference.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::{CStr, c_char, c_int, c_long, c_ulong, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::bio::Bio;
use crate::error::{Error, Result};
use crate::ssl::{Ssl, SslCtx};

pub mod addr;
pub mod bio;
pub mod ciphers;
pub mod crypto;
pub mod err;
pub mod evp;
pub mod fork;
pub mod session;
pub mod ssl;
pub mod sslbio;
pub mod stats;
pub mod x509;

/// Runs one exported function's body: a panic becomes an internal error, an `Err` is queued
/// (unless it is a quiet would-block) and the return type's failure value is returned.
pub fn guard<T: FfiFail>(func: &'static str, body: impl FnOnce() -> Result<T>) -> T {
    guard_with(func, T::FAIL, body)
}

/// As [`guard`], with an explicit failure value where OpenSSL's convention differs.
pub fn guard_with<T>(func: &'static str, fail: T, body: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            e.queue(func);
            fail
        }
        Err(panic) if panic.is::<Error>() => {
            if let Ok(e) = panic.downcast::<Error>() {
                e.queue(func);
            }
            fail
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Error::internal(format!("internal panic: {msg}")).queue(func);
            fail
        }
    }
}

/// `ffi_entry!(NAME, { body })` or `ffi_entry!(NAME, failure_value, { body })`: a form
/// rustfmt formats (both arguments parse as expressions). The `NAME => { body }` arms are the
/// older form, kept while files still use it.
macro_rules! ffi_entry {
    ($name:ident, $body:block) => {
        $crate::ffi::guard(stringify!($name), || $body)
    };
    ($name:ident, $fail:expr, $body:block) => {
        $crate::ffi::guard_with(stringify!($name), $fail, || $body)
    };
}
pub(crate) use ffi_entry;

/// The value a C function returns when it fails, by return type.
pub trait FfiFail {
    const FAIL: Self;
}
impl FfiFail for c_int {
    const FAIL: Self = 0;
}
impl FfiFail for c_long {
    const FAIL: Self = 0;
}
impl FfiFail for c_ulong {
    const FAIL: Self = 0;
}
impl FfiFail for u32 {
    const FAIL: Self = 0;
}
impl FfiFail for u16 {
    const FAIL: Self = 0;
}
impl FfiFail for usize {
    const FAIL: Self = 0;
}
impl FfiFail for () {
    const FAIL: Self = ();
}
impl<T> FfiFail for *mut T {
    const FAIL: Self = std::ptr::null_mut();
}
impl<T> FfiFail for *const T {
    const FAIL: Self = std::ptr::null();
}

/// A shared reference to the object behind a C handle, or a clean error for NULL.
pub fn ref_arg<'a, T>(p: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: the C caller guarantees a non-NULL handle is live for the duration of the call.
    unsafe { p.as_ref() }.ok_or_else(|| Error::null(name))
}

/// An exclusive reference to a plain (non-shared) C object such as a `BIO_ADDR`.
pub fn mut_arg<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: the C caller guarantees a non-NULL pointer is live and not aliased during the call.
    unsafe { p.as_mut() }.ok_or_else(|| Error::null(name))
}

pub fn cstr_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::null(name));
    }
    // SAFETY: non-NULL, and the caller passes a NUL-terminated string (C API contract).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Error::invalid(format!("`{name}` is not valid UTF-8")))
}

/// An optional C string: NULL is `None`.
pub fn opt_cstr<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        cstr_arg(p, name).map(Some)
    }
}

pub fn slice_arg<'a>(p: *const c_void, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::null(name));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("`{name}` length too large")));
    }
    // SAFETY: the caller guarantees `p` points at `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

pub fn slice_arg_mut<'a>(p: *mut c_void, len: usize, name: &str) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::null(name));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("`{name}` length too large")));
    }
    // SAFETY: the caller guarantees `p` points at `len` writable bytes not aliased elsewhere.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

/// Writes through an optional out-pointer.
pub fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: a non-NULL out-pointer from C points at writable storage for a T.
        unsafe { p.write(v) }
    }
}

// ---- BIO handles: a `BIO *` is the data pointer of an `Arc<Bio>`.

pub use crate::bio::{BIO, bio_st};

pub fn bio_into_handle(b: Arc<Bio>) -> *mut BIO {
    Arc::into_raw(b) as *mut BIO
}

pub fn bio_arg<'a>(b: *mut BIO) -> Result<&'a Bio> {
    ref_arg(b as *const Bio, "bio")
}

/// A new strong reference to the BIO behind a handle.
pub fn bio_arc(b: *mut BIO) -> Result<Arc<Bio>> {
    if b.is_null() {
        return Err(Error::null("bio"));
    }
    let p = b as *const Bio;
    // SAFETY: `p` came from `Arc::into_raw` (bio_into_handle) and the caller holds a reference.
    unsafe {
        Arc::increment_strong_count(p);
        Ok(Arc::from_raw(p))
    }
}

/// Gives up the reference the C caller holds.
pub fn bio_release(b: *mut BIO) {
    if !b.is_null() {
        // SAFETY: the caller passes a handle it owns one reference of (BIO_free contract).
        unsafe { drop(Arc::from_raw(b as *const Bio)) }
    }
}

// ---- SSL handles: an `SSL *` is the data pointer of an `Arc<Ssl>`, an `SSL_CTX *` of an
// `Arc<SslCtx>`. Here, beside the BIO handles, so every file of ffi/ can name them without
// importing ffi::ssl.

/// The opaque C type behind `SSL_METHOD *`.
pub struct ssl_method_st {
    _opaque: [u8; 0],
}

pub type SSL_METHOD = ssl_method_st;

/// The opaque C type behind `SSL_CTX *`.
pub struct ssl_ctx_st {
    _opaque: [u8; 0],
}

pub type SSL_CTX = ssl_ctx_st;

/// The opaque C type behind `SSL *`.
pub struct ssl_st {
    _opaque: [u8; 0],
}

pub type SSL = ssl_st;

pub fn ctx_arg<'a>(c: *const SSL_CTX) -> Result<&'a SslCtx> {
    ref_arg(c as *const SslCtx, "ctx")
}

pub fn ctx_arc(c: *const SSL_CTX) -> Result<Arc<SslCtx>> {
    ctx_arg(c)?;
    // SAFETY: a non-NULL SSL_CTX* came from Arc::into_raw in SSL_CTX_new; the caller holds a ref.
    unsafe {
        Arc::increment_strong_count(c as *const SslCtx);
        Ok(Arc::from_raw(c as *const SslCtx))
    }
}

pub fn ssl_arg<'a>(s: *const SSL) -> Result<&'a Ssl> {
    ref_arg(s as *const Ssl, "ssl")
}

pub fn ssl_arc(s: *const SSL) -> Result<Arc<Ssl>> {
    ssl_arg(s)?;
    // SAFETY: a non-NULL SSL* came from Arc::into_raw; the caller holds a reference.
    unsafe {
        Arc::increment_strong_count(s as *const Ssl);
        Ok(Arc::from_raw(s as *const Ssl))
    }
}

pub fn ssl_handle(s: Arc<Ssl>) -> *mut SSL {
    Arc::into_raw(s) as *mut SSL
}

/// Takes over the reference the caller passes with a BIO (SSL_set_bio's ownership rule).
pub fn take_bio(b: *mut BIO) -> Option<Arc<Bio>> {
    // SAFETY: a non-NULL BIO* came from Arc::into_raw; the caller gives us its reference.
    (!b.is_null()).then(|| unsafe { Arc::from_raw(b as *const Bio) })
}

/// Gives up the reference the C caller holds to an SSL object (NULL: nothing).
pub fn ssl_release(s: *mut SSL) {
    if !s.is_null() {
        // SAFETY: the caller passes a handle it owns one reference of (SSL_free contract).
        unsafe { drop(Arc::from_raw(s as *const Ssl)) }
    }
}
