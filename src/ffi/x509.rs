//! Certificates in the C API: the verify callback's side (SSL_verify_cb, the X509_STORE_CTX
//! a callback receives: its error, error depth, SSL and current certificate; SSL_set_verify
//! and the verify mode getters), X509 objects (reference-counted `crate::x509::Certificate`) with
//! their names and serial numbers, PEM in and out, the stacks OpenSSL's API hands out
//! (a connection's peer chain, CA name lists), and the client CA list of a server context.

use std::ffi::{c_char, c_int, c_long, c_ulong, c_void};
use std::sync::Arc;

use super::{SSL, SSL_CTX};
use super::{bio_arg, cstr_arg, ffi_entry, put, ref_arg};
use crate::error::*;
use crate::ssl::ctx::{VerifyCall, VerifyCb};
use crate::ssl::{Ssl, SslCtx};
use crate::x509::{Integer, Name, Stack};

/// The opaque C type behind `X509_STORE_CTX *`: what a verify callback is given.
#[allow(non_camel_case_types)]
pub struct x509_store_ctx_st {
    _opaque: [u8; 0],
}
pub type X509_STORE_CTX = x509_store_ctx_st;

/// The opaque C type behind `X509 *`: the data pointer of an `Arc<crate::x509::Certificate>`.
#[allow(non_camel_case_types)]
pub struct x509_st {
    _opaque: [u8; 0],
}
pub type X509 = x509_st;

/// The opaque C type behind `X509_NAME *`: a `crate::x509::Name`, inside its X509 (from
/// X509_get_subject_name) or boxed (in a list from SSL_load_client_CA_file).
#[allow(non_camel_case_types)]
pub struct X509_name_st {
    _opaque: [u8; 0],
}
pub type X509_NAME = X509_name_st;

/// The opaque C type behind `ASN1_INTEGER *`: a `crate::x509::Integer` inside its X509.
#[allow(non_camel_case_types)]
pub struct asn1_string_st {
    _opaque: [u8; 0],
}
pub type ASN1_INTEGER = asn1_string_st;

/// The opaque C type behind `OPENSSL_STACK *` (and every `STACK_OF(type) *`): a
/// `crate::x509::Stack`.
#[allow(non_camel_case_types)]
pub struct stack_st {
    _opaque: [u8; 0],
}
pub type OPENSSL_STACK = stack_st;

/// `STACK_OF(X509)`: the same object as OPENSSL_STACK, typed as OpenSSL's headers type it.
#[allow(non_camel_case_types)]
pub struct stack_st_X509 {
    _opaque: [u8; 0],
}

/// `STACK_OF(X509_NAME)`.
#[allow(non_camel_case_types)]
pub struct stack_st_X509_NAME {
    _opaque: [u8; 0],
}

/// The passphrase callback of the PEM readers (`pem_password_cb *` in OpenSSL's pem.h);
/// certificates need none, so it is never called.
pub type PemPasswordCb = Option<
    unsafe extern "C" fn(buf: *mut c_char, size: c_int, rwflag: c_int, u: *mut c_void) -> c_int,
>;

/// A function applied to each item by OPENSSL_sk_pop_free (X509_NAME_free, X509_free).
pub type OPENSSL_sk_freefunc = Option<unsafe extern "C" fn(item: *mut c_void)>;

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
    /// The certificate at `depth`, alive for the call (X509_STORE_CTX_get_current_cert).
    cert: Option<Arc<crate::x509::Certificate>>,
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
            // A certificate webpki accepted or rejected: decodable, or shown as none.
            cert: call
                .cert
                .as_ref()
                .and_then(|c| crate::x509::Certificate::from_der(c).ok())
                .map(Arc::new),
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
    ffi_entry!(X509_STORE_CTX_get_error, { Ok(store(ctx)?.error) })
}

/// Sets the error SSL_get_verify_result will report (X509_V_OK clears it). Only inside a
/// verify callback. See X509_STORE_CTX_set_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_set_error(ctx: *mut X509_STORE_CTX, s: c_int) {
    ffi_entry!(X509_STORE_CTX_set_error, {
        store(ctx)?.error = s;
        Ok(())
    })
}

/// The depth in the chain of the certificate the call is about (0: the peer's own).
/// See X509_STORE_CTX_get_error_depth(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_get_error_depth(ctx: *const X509_STORE_CTX) -> c_int {
    ffi_entry!(X509_STORE_CTX_get_error_depth, { Ok(store(ctx)?.depth) })
}

/// The certificate the call is about (at X509_STORE_CTX_get_error_depth), owned by the
/// X509_STORE_CTX: valid during the callback (X509_up_ref to keep it). NULL if the peer did
/// not send the certificate at that depth. See X509_STORE_CTX_get_current_cert(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_get_current_cert(ctx: *const X509_STORE_CTX) -> *mut X509 {
    ffi_entry!(X509_STORE_CTX_get_current_cert, {
        Ok(store(ctx)?
            .cert
            .as_ref()
            .map_or(std::ptr::null_mut(), |c| Arc::as_ptr(c) as *mut X509))
    })
}

/// The `SSL *` being verified for `idx` == SSL_get_ex_data_X509_STORE_CTX_idx(), else NULL.
/// See X509_STORE_CTX_get_ex_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_STORE_CTX_get_ex_data(
    ctx: *const X509_STORE_CTX,
    idx: c_int,
) -> *mut c_void {
    ffi_entry!(X509_STORE_CTX_get_ex_data, {
        let sc = store(ctx)?;
        Ok(if idx == SSL_EX_DATA_IDX {
            sc.ssl as *mut c_void
        } else {
            std::ptr::null_mut()
        })
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
    ffi_entry!(SSL_set_verify, {
        ref_arg(ssl as *const Ssl, "ssl")?.set_verify(mode, verify_cb(cb))
    })
}

/// The connection's verification mode (its own, else its context's); 0 for NULL.
/// See SSL_get_verify_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_verify_mode(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_get_verify_mode, {
        Ok(ref_arg(ssl as *const Ssl, "ssl")?.verify_mode())
    })
}

/// The context's verification mode; 0 for NULL. See SSL_CTX_get_verify_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_verify_mode(ctx: *const SSL_CTX) -> c_int {
    ffi_entry!(SSL_CTX_get_verify_mode, {
        Ok(ref_arg(ctx as *const SslCtx, "ctx")?.verify_mode())
    })
}

// ---- X509 objects

fn x509_arg<'a>(x: *const X509) -> Result<&'a crate::x509::Certificate> {
    ref_arg(x as *const crate::x509::Certificate, "x")
}

fn x509_handle(x: Arc<crate::x509::Certificate>) -> *mut X509 {
    Arc::into_raw(x) as *mut X509
}

fn name_arg<'a>(n: *const X509_NAME) -> Result<&'a Name> {
    ref_arg(n as *const Name, "name")
}

/// An argument out of its range (ERR_R_PASSED_INVALID_ARGUMENT, as a NULL one is
/// ERR_R_PASSED_NULL_PARAMETER).
fn bad_arg(what: String) -> Error {
    Error::new(ERR_LIB_CRYPTO, ERR_R_PASSED_INVALID_ARGUMENT).with(what)
}

/// Writes all of `data` to a BIO (a BIO that takes nothing more fails the call).
fn write_all(bio: &crate::bio::Bio, data: &[u8]) -> Result<()> {
    let mut done = 0;
    while done < data.len() {
        match bio.write(&data[done..])? {
            0 => return Err(Error::bio(BIO_R_BROKEN_PIPE).with("the BIO took no more bytes")),
            n => done += n,
        }
    }
    Ok(())
}

fn stack_arg<'a>(st: *const OPENSSL_STACK) -> Result<&'a Stack> {
    ref_arg(st as *const Stack, "st")
}

/// Gives up one reference to a certificate; NULL is a no-op. See X509_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_free(x: *mut X509) {
    ffi_entry!(X509_free, {
        x509_release(x);
        Ok(())
    })
}

/// Takes one more reference to a certificate. Returns 1, 0 for NULL. See X509_up_ref(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_up_ref(x: *mut X509) -> c_int {
    ffi_entry!(X509_up_ref, {
        x509_arg(x)?;
        // SAFETY: a non-NULL X509* came from Arc::into_raw and the caller holds a reference.
        unsafe { Arc::increment_strong_count(x as *const crate::x509::Certificate) };
        Ok(1)
    })
}

/// The certificate's subject name, owned by the certificate (do not free). NULL for NULL.
/// See X509_get_subject_name(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_get_subject_name(x: *const X509) -> *mut X509_NAME {
    ffi_entry!(X509_get_subject_name, {
        Ok(x509_arg(x)?.subject() as *const Name as *mut X509_NAME)
    })
}

/// The certificate's issuer name, owned by the certificate (do not free). NULL for NULL.
/// See X509_get_issuer_name(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_get_issuer_name(x: *const X509) -> *mut X509_NAME {
    ffi_entry!(X509_get_issuer_name, {
        Ok(x509_arg(x)?.issuer() as *const Name as *mut X509_NAME)
    })
}

/// The certificate's serial number, owned by the certificate (do not free; read it with
/// ASN1_INTEGER_get). NULL for NULL. See X509_get_serialNumber(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_get_serialNumber(x: *mut X509) -> *mut ASN1_INTEGER {
    ffi_entry!(X509_get_serialNumber, {
        Ok(x509_arg(x)?.serial() as *const Integer as *mut ASN1_INTEGER)
    })
}

/// As X509_get_serialNumber, for a const certificate. See X509_get0_serialNumber(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_get0_serialNumber(x: *const X509) -> *const ASN1_INTEGER {
    ffi_entry!(X509_get0_serialNumber, {
        Ok(x509_arg(x)?.serial() as *const Integer as *const ASN1_INTEGER)
    })
}

/// The integer's value; -1 if it does not fit in a long; 0 (and an error) for NULL.
/// See ASN1_INTEGER_get(3).
#[unsafe(no_mangle)]
pub extern "C" fn ASN1_INTEGER_get(a: *const ASN1_INTEGER) -> c_long {
    ffi_entry!(ASN1_INTEGER_get, {
        Ok(ref_arg(a as *const Integer, "a")?.get() as c_long)
    })
}

/// The name as "/C=../O=../CN=..". With `buf` NULL the string is allocated (free it with
/// OPENSSL_free) and `size` is ignored; else at most `size` bytes including the NUL are
/// written, whole entries only (as OpenSSL 3.5), and `buf` is returned. NULL (and an
/// error) for a NULL name or `size` < 1 with a buffer (OpenSSL prints "NO X509_NAME" for a
/// NULL name). See X509_NAME_oneline(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_NAME_oneline(
    a: *const X509_NAME,
    buf: *mut c_char,
    size: c_int,
) -> *mut c_char {
    ffi_entry!(X509_NAME_oneline, {
        let name = name_arg(a)?;
        if buf.is_null() {
            let p = super::crypto::c_string(&name.oneline(None));
            if p.is_null() {
                return Err(Error::new(ERR_LIB_CRYPTO, ERR_R_MALLOC_FAILURE));
            }
            return Ok(p);
        }
        if size < 1 {
            return Err(bad_arg(format!("buffer size {size}: want at least 1")));
        }
        let text = name.oneline(Some(size as usize));
        let out = super::slice_arg_mut(buf.cast(), size as usize, "buf")?;
        out[..text.len()].copy_from_slice(text.as_bytes());
        out[text.len()] = 0;
        Ok(buf)
    })
}

/// Prints the name to `out` in the form `flags` selects (XN_FLAG_COMPAT (0),
/// XN_FLAG_ONELINE, XN_FLAG_RFC2253, XN_FLAG_MULTILINE or their parts), after `indent`
/// spaces (ignored by XN_FLAG_COMPAT, as OpenSSL). Returns the bytes written (1 for
/// XN_FLAG_COMPAT), -1 on failure (0 for COMPAT). See X509_NAME_print_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_NAME_print_ex(
    out: *mut super::BIO,
    nm: *const X509_NAME,
    indent: c_int,
    flags: c_ulong,
) -> c_int {
    let fail = if flags == 0 { 0 } else { -1 };
    ffi_entry!(X509_NAME_print_ex, fail, {
        let bio = bio_arg(out)?;
        let name = name_arg(nm)?;
        let text = name.print_ex(indent.max(0) as usize, flags);
        write_all(bio, text.as_bytes())?;
        Ok(if flags == 0 { 1 } else { text.len() as c_int })
    })
}

/// Frees a name made by this library for a CA list (SSL_load_client_CA_file); NULL is a
/// no-op. Never pass the name of a certificate (X509_get_subject_name). See X509_NAME_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_NAME_free(a: *mut X509_NAME) {
    ffi_entry!(X509_NAME_free, {
        name_release(a);
        Ok(())
    })
}

/// Reads the next PEM certificate from `bp` (skipping other blocks; what follows stays in
/// the BIO). With `x` non-NULL, an object already in `*x` is freed and `*x` gets the new
/// one (the same reference that is returned). `cb` and `u` are unused: certificates are not
/// encrypted. NULL on failure (PEM_R_NO_START_LINE when no certificate is left).
/// See PEM_read_bio_X509(3).
#[unsafe(no_mangle)]
pub extern "C" fn PEM_read_bio_X509(
    bp: *mut super::BIO,
    x: *mut *mut X509,
    cb: PemPasswordCb,
    u: *mut c_void,
) -> *mut X509 {
    let _ = (cb, u);
    ffi_entry!(PEM_read_bio_X509, {
        let cert = crate::x509::Certificate::read_pem(bio_arg(bp)?)?;
        let h = x509_handle(Arc::new(cert));
        if !x.is_null() {
            // SAFETY: a non-NULL `x` points at an X509* slot of the caller's.
            let old = unsafe { x.read() };
            x509_release(old);
        }
        put(x, h);
        Ok(h)
    })
}

/// Writes the certificate to `bp` as a PEM "CERTIFICATE" block. 1 on success, 0 on failure.
/// See PEM_write_bio_X509(3).
#[unsafe(no_mangle)]
pub extern "C" fn PEM_write_bio_X509(bp: *mut super::BIO, x: *const X509) -> c_int {
    ffi_entry!(PEM_write_bio_X509, {
        let bio = bio_arg(bp)?;
        let pem = x509_arg(x)?.to_pem();
        write_all(bio, pem.as_bytes())?;
        Ok(1)
    })
}

// ---- peer certificates

/// The peer's certificate with a new reference (free it with X509_free), or NULL (nothing
/// queued) if the peer sent none or the handshake is not over. See SSL_get1_peer_certificate(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get1_peer_certificate(s: *const SSL) -> *mut X509 {
    ffi_entry!(SSL_get1_peer_certificate, {
        let ssl = super::ssl_arg(s)?;
        Ok(match ssl.peer_certs()?.and_then(|p| p.leaf.clone()) {
            Some(c) => x509_handle(c),
            None => std::ptr::null_mut(),
        })
    })
}

/// The peer's chain, owned by the SSL (do not free; valid while the SSL is): on a client the
/// server's certificate and the rest it sent, on a server only what the client sent after
/// its own certificate (an empty stack if the server asked and got none). NULL (nothing
/// queued) if the peer sent no certificate unasked, or the handshake is not over.
/// See SSL_get_peer_cert_chain(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_peer_cert_chain(s: *const SSL) -> *mut stack_st_X509 {
    ffi_entry!(SSL_get_peer_cert_chain, {
        let ssl = super::ssl_arg(s)?;
        Ok(match ssl.peer_certs()? {
            Some(p) if p.leaf.is_some() || p.asked => {
                &p.chain as *const Stack as *mut stack_st_X509
            }
            _ => std::ptr::null_mut(),
        })
    })
}

// ---- stacks

/// The number of items; -1 (and an error) for NULL. See OPENSSL_sk_num(3).
#[unsafe(no_mangle)]
pub extern "C" fn OPENSSL_sk_num(st: *const OPENSSL_STACK) -> c_int {
    ffi_entry!(OPENSSL_sk_num, -1, { Ok(stack_arg(st)?.len() as c_int) })
}

/// Item `i` (owned by whoever owns the stack's items); NULL (and an error) for a NULL stack
/// or an index out of range. See OPENSSL_sk_value(3).
#[unsafe(no_mangle)]
pub extern "C" fn OPENSSL_sk_value(st: *const OPENSSL_STACK, i: c_int) -> *mut c_void {
    ffi_entry!(OPENSSL_sk_value, {
        let st = stack_arg(st)?;
        usize::try_from(i)
            .ok()
            .and_then(|i| st.get(i))
            .map(|a| a as *mut c_void)
            .ok_or_else(|| bad_arg(format!("index {i} out of range (0..{})", st.len())))
    })
}

/// Frees a stack this library gave the caller (SSL_load_client_CA_file), not its items;
/// NULL is a no-op. Never pass SSL_get_peer_cert_chain's (the SSL owns it).
/// See OPENSSL_sk_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn OPENSSL_sk_free(st: *mut OPENSSL_STACK) {
    ffi_entry!(OPENSSL_sk_free, {
        if !st.is_null() {
            // SAFETY: a caller-owned stack came from Box::into_raw (stack_handle).
            unsafe { drop(Box::from_raw(st as *mut Stack)) }
        }
        Ok(())
    })
}

/// Calls `func` on each item (NULL: none), then frees the stack as OPENSSL_sk_free does.
/// See OPENSSL_sk_pop_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn OPENSSL_sk_pop_free(st: *mut OPENSSL_STACK, func: OPENSSL_sk_freefunc) {
    ffi_entry!(OPENSSL_sk_pop_free, {
        stack_pop_free(st, func);
        Ok(())
    })
}

fn stack_handle(s: Stack) -> *mut stack_st_X509_NAME {
    Box::into_raw(Box::new(s)) as *mut stack_st_X509_NAME
}

// ---- client CA names

/// The subject names of the PEM certificates in `file` (duplicates once), as a list the
/// caller owns (SSL_CTX_set_client_CA_list takes it, or free it with
/// `sk_X509_NAME_pop_free(list, X509_NAME_free)`). NULL if the file has none.
/// See SSL_load_client_CA_file(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_load_client_CA_file(file: *const c_char) -> *mut stack_st_X509_NAME {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    ffi_entry!(SSL_load_client_CA_file, {
        let path = cstr_arg(file, "file")?;
        let mut names: Vec<Name> = Vec::new();
        let it = CertificateDer::pem_file_iter(path).map_err(|e| {
            Error::new(ERR_LIB_PEM, crate::x509::PEM_R_NO_START_LINE).with(format!("{path}: {e}"))
        })?;
        for der in it {
            let der = der.map_err(|e| {
                Error::new(ERR_LIB_PEM, crate::x509::PEM_R_BAD_BASE64_DECODE)
                    .with(format!("{path}: {e}"))
            })?;
            let x = crate::x509::Certificate::from_der(&der)?;
            if !names.iter().any(|n| n.der() == x.subject().der()) {
                names.push(x.subject().clone());
            }
        }
        if names.is_empty() {
            return Err(Error::new(ERR_LIB_PEM, crate::x509::PEM_R_NO_START_LINE)
                .with(format!("{path}: no certificate found")));
        }
        let items = names
            .into_iter()
            .map(|n| Box::into_raw(Box::new(n)) as usize)
            .collect();
        Ok(stack_handle(Stack::Raw(items)))
    })
}

/// Sets the CA names a server sends when it asks for a client certificate (TLS 1.3's
/// certificate_authorities; none by default), taking ownership of `list` (freed here: the
/// names are copied). NULL clears the list. See SSL_CTX_set_client_CA_list(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_client_CA_list(ctx: *mut SSL_CTX, list: *mut stack_st_X509_NAME) {
    ffi_entry!(SSL_CTX_set_client_CA_list, {
        let c = ref_arg(ctx as *const SslCtx, "ctx");
        let mut names = Vec::new();
        if !list.is_null() {
            let st = stack_arg(list as *const OPENSSL_STACK)?;
            for i in 0..st.len() {
                if let Some(a) = st.get(i) {
                    names.push(name_arg(a as *const X509_NAME)?.der().to_vec());
                }
            }
            stack_pop_free(list as *mut OPENSSL_STACK, Some(free_name));
        }
        c?.set_client_ca(names, false);
        Ok(())
    })
}

unsafe extern "C" fn free_name(a: *mut c_void) {
    name_release(a.cast());
}

/// Adds the certificate's subject to the CA names a server sends (the certificate stays the
/// caller's). 1 on success. See SSL_CTX_add_client_CA(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_add_client_CA(ctx: *mut SSL_CTX, x: *mut X509) -> c_int {
    ffi_entry!(SSL_CTX_add_client_CA, {
        let c = ref_arg(ctx as *const SslCtx, "ctx")?;
        c.set_client_ca(vec![x509_arg(x)?.subject().der().to_vec()], true);
        Ok(1)
    })
}

/// Text for a verification result code. See X509_verify_cert_error_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_verify_cert_error_string(n: c_long) -> *const c_char {
    use crate::consts::*;
    let s = match n {
        X509_V_OK => c"ok",
        X509_V_ERR_CERT_HAS_EXPIRED => c"certificate has expired",
        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT => c"self-signed certificate",
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY => c"unable to get local issuer certificate",
        X509_V_ERR_CERT_REJECTED => c"certificate rejected",
        X509_V_ERR_HOSTNAME_MISMATCH => c"hostname mismatch",
        _ => c"unspecified certificate verification error",
    };
    s.as_ptr()
}

/// Gives up the reference the caller holds to a certificate handle (NULL: nothing).
fn x509_release(x: *mut X509) {
    if !x.is_null() {
        // SAFETY: a non-NULL X509* came from Arc::into_raw (x509_handle) and the caller
        // gives up the reference it holds (X509_free contract).
        unsafe { drop(Arc::from_raw(x as *const crate::x509::Certificate)) }
    }
}

/// Frees a standalone X509_NAME (NULL: nothing).
fn name_release(a: *mut X509_NAME) {
    if !a.is_null() {
        // SAFETY: a standalone X509_NAME* came from Box::into_raw (load_client_ca) and the
        // caller gives it up.
        unsafe { drop(Box::from_raw(a as *mut Name)) }
    }
}

/// Frees a stack made here, calling `func` on each item of an application's stack.
fn stack_pop_free(st: *mut OPENSSL_STACK, func: OPENSSL_sk_freefunc) {
    if st.is_null() {
        return;
    }
    // SAFETY: as OPENSSL_sk_free: a caller-owned stack from Box::into_raw.
    let stack = unsafe { Box::from_raw(st as *mut Stack) };
    if let (Some(f), Stack::Raw(items)) = (func, &*stack) {
        for &a in items {
            // SAFETY: the application's free function for the items it owns.
            unsafe { f(a as *mut c_void) };
        }
    }
}
