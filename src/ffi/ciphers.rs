//! Cipher suites at the C boundary: SSL_CTX_set_ciphersuites, SSL_set_ciphersuites, the
//! SSL_CIPHER of a connection and its name. Conversion only; the
//! mapping is `ssl::ciphers`'.

use std::ffi::{c_char, c_int};

use super::{SSL, SSL_CTX, ctx_arg, ssl_arg};
use super::{cstr_arg, ffi_entry, guard_with};
use crate::error::*;
use crate::ssl::Kind;

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

/// A cipher suite (opaque; one static object per suite).
pub struct ssl_cipher_st {
    suite: u16,
    name: &'static std::ffi::CStr,
}

pub type SSL_CIPHER = ssl_cipher_st;

static CIPHERS: [ssl_cipher_st; 9] = [
    ssl_cipher_st {
        suite: 0x1301,
        name: c"TLS_AES_128_GCM_SHA256",
    },
    ssl_cipher_st {
        suite: 0x1302,
        name: c"TLS_AES_256_GCM_SHA384",
    },
    ssl_cipher_st {
        suite: 0x1303,
        name: c"TLS_CHACHA20_POLY1305_SHA256",
    },
    ssl_cipher_st {
        suite: 0xc02b,
        name: c"ECDHE-ECDSA-AES128-GCM-SHA256",
    },
    ssl_cipher_st {
        suite: 0xc02c,
        name: c"ECDHE-ECDSA-AES256-GCM-SHA384",
    },
    ssl_cipher_st {
        suite: 0xcca9,
        name: c"ECDHE-ECDSA-CHACHA20-POLY1305",
    },
    ssl_cipher_st {
        suite: 0xc02f,
        name: c"ECDHE-RSA-AES128-GCM-SHA256",
    },
    ssl_cipher_st {
        suite: 0xc030,
        name: c"ECDHE-RSA-AES256-GCM-SHA384",
    },
    ssl_cipher_st {
        suite: 0xcca8,
        name: c"ECDHE-RSA-CHACHA20-POLY1305",
    },
];

/// The negotiated cipher suite of a TLS connection, or NULL before the handshake. QUIC
/// objects: NULL with an "unsupported" error (quinn does not tell the suite).
/// See SSL_get_current_cipher(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_current_cipher(ssl: *const SSL) -> *const SSL_CIPHER {
    guard_with("SSL_get_current_cipher", std::ptr::null(), || {
        let s = ssl_arg(ssl)?;
        if !matches!(s.kind, Kind::Tls(_)) {
            return Err(Error::unsupported(
                "SSL_get_current_cipher on a QUIC object",
            ));
        }
        let Some(cs) = s.cipher() else {
            return Ok(std::ptr::null());
        };
        let id = u16::from(cs);
        Ok(CIPHERS
            .iter()
            .find(|c| c.suite == id)
            .map_or(std::ptr::null(), |c| c as *const SSL_CIPHER))
    })
}

/// The suite's OpenSSL name ("TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
/// or "(NONE)" for NULL. See SSL_CIPHER_get_name(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CIPHER_get_name(c: *const SSL_CIPHER) -> *const c_char {
    // SAFETY: a non-NULL SSL_CIPHER* points into the static CIPHERS table.
    match unsafe { c.as_ref() } {
        Some(c) => c.name.as_ptr(),
        None => c"(NONE)".as_ptr(),
    }
}
