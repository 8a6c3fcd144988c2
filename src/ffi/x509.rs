//! The verify callback's side of the C API: SSL_verify_cb, the minimal X509_STORE_CTX a
//! callback receives (its error, error depth and SSL; no certificates: osslquic has no X509
//! objects, so X509_STORE_CTX_get_current_cert returns NULL), SSL_set_verify and the verify
//! mode getters.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use super::ssl::{SSL, SSL_CTX};
use super::{ffi_entry, ref_arg};
use crate::error::*;
use crate::ssl::ctx::{VerifyCall, VerifyCb};
use crate::ssl::{Ssl, SslCtx};

/// The opaque C type behind `X509_STORE_CTX *`: what a verify callback is given.
#[allow(non_camel_case_types)]
pub struct x509_store_ctx_st {
    _opaque: [u8; 0],
}
pub type X509_STORE_CTX = x509_store_ctx_st;

/// The opaque C type behind `X509 *` (never made here: see X509_STORE_CTX_get_current_cert).
#[allow(non_camel_case_types)]
pub struct x509_st {
    _opaque: [u8; 0],
}
pub type X509 = x509_st;

/// The verify callback type: `int cb(int preverify_ok, X509_STORE_CTX *ctx)`; non-zero goes
/// on, 0 fails the handshake.
pub type SSL_verify_cb =
    Option<unsafe extern "C" fn(preverify_ok: c_int, x509_ctx: *mut X509_STORE_CTX) -> c_int>;

/// The ex_data index under which the X509_STORE_CTX of a callback holds the `SSL *`.
const SSL_EX_DATA_IDX: c_int = 0;

/// What an `X509_STORE_CTX *` handed to a callback points at (on the stack, for the call).
struct StoreCtx {
    error: c_int,
    depth: c_int,
    ssl: usize,
}

/// The callback as the verifier calls it: the call's facts in a StoreCtx, the callback's
/// error (X509_STORE_CTX_set_error) back out.
pub(super) fn verify_cb(cb: SSL_verify_cb) -> Option<VerifyCb> {
    let f = cb?;
    Some(Arc::new(move |call: &mut VerifyCall| {
        let mut sc = StoreCtx {
            error: call.error as c_int,
            depth: call.depth,
            ssl: call.ssl,
        };
        // SAFETY: the application's callback, given a pointer to a StoreCtx that lives for
        // the call (the X509_STORE_CTX_* functions below read it back).
        let r = unsafe { f(call.ok as c_int, (&mut sc as *mut StoreCtx).cast()) };
        call.error = i64::from(sc.error);
        r != 0
    }))
}

fn store<'a>(ctx: *const X509_STORE_CTX) -> Result<&'a mut StoreCtx> {
    ref_arg(ctx, "ctx")?;
    // SAFETY: a non-NULL X509_STORE_CTX* is the StoreCtx a verify callback was given, alive
    // during the callback (the only place an application has one).
    Ok(unsafe { &mut *(ctx as *mut StoreCtx) })
}

/// The verification error of the call (X509_V_OK while the chain is fine). Only inside a
/// verify callback. See X509_STORE_CTX_get_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_get_error(ctx: *const X509_STORE_CTX) -> c_int {
    ffi_entry!(X509_STORE_CTX_get_error => { Ok(store(ctx)?.error) })
}

/// Sets the error SSL_get_verify_result will report (X509_V_OK clears it). Only inside a
/// verify callback. See X509_STORE_CTX_set_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_set_error(ctx: *mut X509_STORE_CTX, s: c_int) {
    ffi_entry!(X509_STORE_CTX_set_error => {
        store(ctx)?.error = s;
        Ok(())
    })
}

/// The depth in the chain of the certificate the call is about (0: the peer's own).
/// See X509_STORE_CTX_get_error_depth(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_get_error_depth(ctx: *const X509_STORE_CTX) -> c_int {
    ffi_entry!(X509_STORE_CTX_get_error_depth => { Ok(store(ctx)?.depth) })
}

/// Always NULL: osslquic does not expose certificates as X509 objects.
/// See X509_STORE_CTX_get_current_cert(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_get_current_cert(ctx: *const X509_STORE_CTX) -> *mut X509 {
    ffi_entry!(X509_STORE_CTX_get_current_cert => {
        store(ctx)?;
        Ok(std::ptr::null_mut())
    })
}

/// The `SSL *` being verified for `idx` == SSL_get_ex_data_X509_STORE_CTX_idx(), else NULL.
/// See X509_STORE_CTX_get_ex_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_get_ex_data(
    ctx: *const X509_STORE_CTX,
    idx: c_int,
) -> *mut c_void {
    ffi_entry!(X509_STORE_CTX_get_ex_data => {
        let sc = store(ctx)?;
        Ok(if idx == SSL_EX_DATA_IDX { sc.ssl as *mut c_void } else { std::ptr::null_mut() })
    })
}

/// The index under which a verify callback's X509_STORE_CTX holds its SSL.
/// See SSL_get_ex_data_X509_STORE_CTX_idx(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_ex_data_X509_STORE_CTX_idx() -> c_int {
    SSL_EX_DATA_IDX
}

/// Sets this connection's own verification mode and callback (NULL: none), instead of its
/// context's. Set it before the handshake. See SSL_set_verify(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_verify(ssl: *mut SSL, mode: c_int, cb: SSL_verify_cb) {
    ffi_entry!(SSL_set_verify => {
        ref_arg(ssl as *const Ssl, "ssl")?.set_verify(mode, verify_cb(cb))
    })
}

/// The connection's verification mode (its own, else its context's); 0 for NULL.
/// See SSL_get_verify_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_verify_mode(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_get_verify_mode => { Ok(ref_arg(ssl as *const Ssl, "ssl")?.verify_mode()) })
}

/// The context's verification mode; 0 for NULL. See SSL_CTX_get_verify_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_verify_mode(ctx: *const SSL_CTX) -> c_int {
    ffi_entry!(SSL_CTX_get_verify_mode => { Ok(ref_arg(ctx as *const SslCtx, "ctx")?.verify_mode()) })
}
