//! SSL_CTX_set_ciphersuites and SSL_set_ciphersuites at the C boundary. Conversion only; the
//! mapping is `ssl::ciphers`'.

use std::ffi::{c_char, c_int};

use super::ssl::{SSL, SSL_CTX, ctx_arg, ssl_arg};
use super::{cstr_arg, ffi_entry};
use crate::error::*;

/// Sets the TLS 1.3 cipher suites of the context's later connections (TLS and QUIC), a
/// colon-separated list of standard names (TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
/// TLS_CHACHA20_POLY1305_SHA256). As OpenSSL: unknown names are skipped, "" means none, and
/// a list matching nothing returns 0 with SSL_R_NO_CIPHER_MATCH. See
/// SSL_CTX_set_ciphersuites(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_ciphersuites(ctx: *mut SSL_CTX, str: *const c_char) -> c_int {
    ffi_entry!(SSL_CTX_set_ciphersuites, {
        ctx_arg(ctx)?.set_ciphersuites(cstr_arg(str, "str")?)?;
        Ok(1)
    })
}

/// Per-connection TLS 1.3 cipher suites are not supported: returns 0 with an "unsupported"
/// error (after checking the list as SSL_CTX_set_ciphersuites would). Set them on the
/// context. See SSL_set_ciphersuites(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_ciphersuites(ssl: *mut SSL, str: *const c_char) -> c_int {
    ffi_entry!(SSL_set_ciphersuites, {
        ssl_arg(ssl)?;
        crate::ssl::ciphers::parse_tls13(cstr_arg(str, "str")?)?;
        Err(Error::unsupported(
            "SSL_set_ciphersuites: per-connection suites are not supported; use SSL_CTX_set_ciphersuites",
        ))
    })
}
