//! ALPN: the protocol lists, the server's select callback, SSL_select_next_proto and the
//! negotiated protocol.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Arc;

use crate::ffi::{SSL, SSL_CTX, ctx_arg, ffi_entry, guard_with, mut_arg, put, slice_arg, ssl_arg};

/// Sets the ALPN list (wire format). Returns 0 on success, 1 on failure (OpenSSL's odd
/// convention). See SSL_CTX_set_alpn_protos(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_alpn_protos(
    ctx: *mut SSL_CTX,
    protos: *const u8,
    protos_len: c_uint,
) -> c_int {
    guard_with("SSL_CTX_set_alpn_protos", 1, || {
        ctx_arg(ctx)?.set_alpn(slice_arg(protos.cast(), protos_len as usize, "protos")?)?;
        Ok(0)
    })
}

/// As SSL_CTX_set_alpn_protos, for one connection. Returns 0 on success.
/// See SSL_set_alpn_protos(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_alpn_protos(
    ssl: *mut SSL,
    protos: *const u8,
    protos_len: c_uint,
) -> c_int {
    guard_with("SSL_set_alpn_protos", 1, || {
        ssl_arg(ssl)?.set_alpn(slice_arg(protos.cast(), protos_len as usize, "protos")?)?;
        Ok(0)
    })
}

/// The negotiated ALPN protocol (`*data` NULL and `*len` 0 if none). The pointer stays valid
/// while the connection lives. See SSL_get0_alpn_selected(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get0_alpn_selected(ssl: *const SSL, data: *mut *const u8, len: *mut c_uint) {
    put(data, std::ptr::null());
    put(len, 0);
    ffi_entry!(SSL_get0_alpn_selected, {
        let s = ssl_arg(ssl)?;
        if let Some(p) = s.alpn_selected_ref() {
            put(data, p.as_ptr());
            put(len, p.len() as c_uint);
        }
        Ok(())
    })
}

/// The ALPN selection callback type (see SSL_CTX_set_alpn_select_cb(3)).
pub type SSL_CTX_alpn_select_cb_func = Option<
    unsafe extern "C" fn(
        ssl: *mut SSL,
        out: *mut *const u8,
        outlen: *mut u8,
        inp: *const u8,
        inlen: c_uint,
        arg: *mut c_void,
    ) -> c_int,
>;

// The callbacks' answers live with the other libssl constants.
pub use crate::consts::{
    SSL_TLSEXT_ERR_ALERT_FATAL, SSL_TLSEXT_ERR_ALERT_WARNING, SSL_TLSEXT_ERR_NOACK,
    SSL_TLSEXT_ERR_OK,
};

/// The C callback and its argument, called with the client's offer in wire format.
struct AlpnCallback {
    cb: unsafe extern "C" fn(
        *mut SSL,
        *mut *const u8,
        *mut u8,
        *const u8,
        c_uint,
        *mut c_void,
    ) -> c_int,
    arg: usize,
}

impl AlpnCallback {
    fn choose(&self, offer: &[Vec<u8>]) -> crate::ssl::alpn::AlpnChoice {
        use crate::ssl::alpn::AlpnChoice;
        let mut wire = Vec::with_capacity(offer.iter().map(|p| p.len() + 1).sum());
        for p in offer.iter().filter(|p| !p.is_empty() && p.len() < 256) {
            wire.push(p.len() as u8);
            wire.extend_from_slice(p);
        }
        let mut out: *const u8 = std::ptr::null();
        let mut outlen: u8 = 0;
        // SAFETY: the application registered `cb` for exactly this signature; `wire` lives
        // across the call and `out`/`outlen` are valid locals.
        let r = unsafe {
            (self.cb)(
                crate::ssl::current_owner() as *mut SSL,
                &mut out,
                &mut outlen,
                wire.as_ptr(),
                wire.len() as c_uint,
                self.arg as *mut c_void,
            )
        };
        if r == SSL_TLSEXT_ERR_NOACK {
            return AlpnChoice::NoAck;
        }
        if r != SSL_TLSEXT_ERR_OK || out.is_null() || outlen == 0 {
            return AlpnChoice::Fatal;
        }
        // SAFETY: the callback returned OK with `out` pointing at `outlen` readable bytes (in
        // `wire` or its own memory), read before anything else runs.
        AlpnChoice::Use(unsafe { std::slice::from_raw_parts(out, outlen as usize) }.to_vec())
    }
}

/// Sets (or with NULL clears) the server's ALPN selection callback. It is called during the
/// handshake with the client's offer (wire format) and the listener as `ssl`; it must not
/// call functions on that listener or its connections. Any answer but SSL_TLSEXT_ERR_OK with
/// a protocol ends a QUIC handshake with no_application_protocol, as QUIC requires ALPN.
/// See SSL_CTX_set_alpn_select_cb(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_alpn_select_cb(
    ctx: *mut SSL_CTX,
    cb: SSL_CTX_alpn_select_cb_func,
    arg: *mut c_void,
) {
    ffi_entry!(SSL_CTX_set_alpn_select_cb, {
        let c = ctx_arg(ctx)?;
        c.set_alpn_select(cb.map(|cb| {
            let f = AlpnCallback {
                cb,
                arg: arg as usize,
            };
            Arc::new(move |offer: &[Vec<u8>]| f.choose(offer)) as crate::ssl::alpn::AlpnSelect
        }));
        Ok(())
    })
}

/// Splits an ALPN wire list into its names; None when it is malformed.
fn alpn_names(wire: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < wire.len() {
        let n = wire[i] as usize;
        if n == 0 || i + 1 + n > wire.len() {
            return None;
        }
        out.push(&wire[i + 1..i + 1 + n]);
        i += 1 + n;
    }
    Some(out)
}

pub const OPENSSL_NPN_UNSUPPORTED: c_int = 0;

pub const OPENSSL_NPN_NEGOTIATED: c_int = 1;

pub const OPENSSL_NPN_NO_OVERLAP: c_int = 2;

/// Picks the first protocol of `server` (in its order) that `client` also lists:
/// OPENSSL_NPN_NEGOTIATED with `*out` pointing into `server`. Without overlap:
/// OPENSSL_NPN_NO_OVERLAP with `*out` at the client's first protocol, or NULL/0 when the client
/// list is empty or malformed. See SSL_select_next_proto(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_select_next_proto(
    out: *mut *mut u8,
    outlen: *mut u8,
    server: *const u8,
    server_len: c_uint,
    client: *const u8,
    client_len: c_uint,
) -> c_int {
    ffi_entry!(SSL_select_next_proto, {
        let out = mut_arg(out, "out")?;
        let outlen = mut_arg(outlen, "outlen")?;
        *out = std::ptr::null_mut();
        *outlen = 0;
        let server = slice_arg(server.cast(), server_len as usize, "server")?;
        let client = slice_arg(client.cast(), client_len as usize, "client")?;
        let clients = alpn_names(client).unwrap_or_default();
        for s in alpn_names(server).unwrap_or_default() {
            if clients.contains(&s) {
                *out = s.as_ptr() as *mut u8;
                *outlen = s.len() as u8;
                return Ok(OPENSSL_NPN_NEGOTIATED);
            }
        }
        if let Some(first) = clients.first() {
            *out = first.as_ptr() as *mut u8;
            *outlen = first.len() as u8;
        }
        Ok(OPENSSL_NPN_NO_OVERLAP)
    })
}
