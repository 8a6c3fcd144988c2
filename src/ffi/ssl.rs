//! SSL_* and SSL_CTX_* entry points for QUIC (issue 3's non-blocking core).

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};
use std::sync::Arc;
use std::time::Duration;

use super::x509::SSL_verify_cb;
use super::{
    BIO, cstr_arg, ffi_entry, guard_with, mut_arg, put, ref_arg, slice_arg, slice_arg_mut,
};
use crate::bio::addr::BioAddr;
use crate::bio::msg::{BIO_ADDR, BIO_POLL_DESCRIPTOR};
use crate::bio::{Bio, METHOD_DGRAM};
use crate::error::*;
use crate::ssl::*;

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

pub const SSL_FILETYPE_PEM: c_int = 1;
pub const SSL_LISTENER_FLAG_NO_VALIDATE: u64 = 1 << 1;
pub const SSL_ACCEPT_CONNECTION_NO_BLOCK: u64 = 1;
pub const SSL_WRITE_FLAG_CONCLUDE: u64 = 1;
pub const TLS1_2_VERSION: c_int = 0x0303;
pub const TLS1_3_VERSION: c_int = 0x0304;
pub const SSL_CTRL_SET_TLSEXT_HOSTNAME: c_int = 55;
pub const SSL_CTRL_SET_MIN_PROTO_VERSION: c_int = 123;
pub const SSL_CTRL_SET_MAX_PROTO_VERSION: c_int = 124;
pub const SSL_CTRL_SET_SESS_CACHE_SIZE: c_int = 42;
pub const SSL_CTRL_SET_TLSEXT_SERVERNAME_CB: c_int = 53;
pub const SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG: c_int = 54;
pub const SSL_CTRL_GET_SESS_CACHE_SIZE: c_int = 43;
pub const SSL_CTRL_SET_SESS_CACHE_MODE: c_int = 44;
pub const SSL_CTRL_GET_SESS_CACHE_MODE: c_int = 45;
#[allow(non_upper_case_globals)]
pub const TLSEXT_NAMETYPE_host_name: c_int = 0;

static QUIC_CLIENT: Method = Method::QuicClient;
static QUIC_CLIENT_THREAD: Method = Method::QuicClientThread;
static QUIC_SERVER: Method = Method::QuicServer;
static QUIC_ANY: Method = Method::Quic;
static TLS_ANY: Method = Method::Tls;
static TLS_CLIENT: Method = Method::TlsClient;
static TLS_SERVER: Method = Method::TlsServer;

fn method_arg(m: *const SSL_METHOD) -> Result<Method> {
    for k in [
        &QUIC_CLIENT,
        &QUIC_CLIENT_THREAD,
        &QUIC_SERVER,
        &QUIC_ANY,
        &TLS_ANY,
        &TLS_CLIENT,
        &TLS_SERVER,
    ] {
        if std::ptr::eq(k as *const Method as *const SSL_METHOD, m) {
            return Ok(*k);
        }
    }
    if m.is_null() {
        return Err(Error::null("method"));
    }
    Err(Error::ssl(SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED).with("unknown SSL_METHOD"))
}

pub(super) fn ctx_arg<'a>(c: *const SSL_CTX) -> Result<&'a SslCtx> {
    ref_arg(c as *const SslCtx, "ctx")
}
fn ctx_arc(c: *const SSL_CTX) -> Result<Arc<SslCtx>> {
    ctx_arg(c)?;
    // SAFETY: a non-NULL SSL_CTX* came from Arc::into_raw in SSL_CTX_new; the caller holds a ref.
    unsafe {
        Arc::increment_strong_count(c as *const SslCtx);
        Ok(Arc::from_raw(c as *const SslCtx))
    }
}
pub(super) fn ssl_arg<'a>(s: *const SSL) -> Result<&'a Ssl> {
    ref_arg(s as *const Ssl, "ssl")
}
pub(super) fn ssl_arc(s: *const SSL) -> Result<Arc<Ssl>> {
    ssl_arg(s)?;
    // SAFETY: a non-NULL SSL* came from Arc::into_raw; the caller holds a reference.
    unsafe {
        Arc::increment_strong_count(s as *const Ssl);
        Ok(Arc::from_raw(s as *const Ssl))
    }
}
fn ssl_handle(s: Arc<Ssl>) -> *mut SSL {
    Arc::into_raw(s) as *mut SSL
}
/// Takes over the reference the caller passes with a BIO (SSL_set_bio's ownership rule).
fn take_bio(b: *mut BIO) -> Option<Arc<Bio>> {
    // SAFETY: a non-NULL BIO* came from Arc::into_raw; the caller gives us its reference.
    (!b.is_null()).then(|| unsafe { Arc::from_raw(b as *const Bio) })
}

/// The QUIC client method. See OSSL_QUIC_client_method(3).
#[unsafe(no_mangle)]
pub extern "C" fn OSSL_QUIC_client_method() -> *const SSL_METHOD {
    &QUIC_CLIENT as *const Method as *const SSL_METHOD
}
/// The QUIC client method with a background thread that keeps the connection served while
/// the application makes no calls. See OSSL_QUIC_client_thread_method(3).
#[unsafe(no_mangle)]
pub extern "C" fn OSSL_QUIC_client_thread_method() -> *const SSL_METHOD {
    &QUIC_CLIENT_THREAD as *const Method as *const SSL_METHOD
}
/// The QUIC server method (for SSL_new_listener). See OSSL_QUIC_server_method(3).
#[unsafe(no_mangle)]
pub extern "C" fn OSSL_QUIC_server_method() -> *const SSL_METHOD {
    &QUIC_SERVER as *const Method as *const SSL_METHOD
}

/// QUIC with the role chosen by use (OpenSSL 4.0): SSL_new makes a client connection,
/// SSL_new_listener a server listener (which needs a certificate and key). See
/// OSSL_QUIC_method(3).
#[unsafe(no_mangle)]
pub extern "C" fn OSSL_QUIC_method() -> *const SSL_METHOD {
    &QUIC_ANY as *const Method as *const SSL_METHOD
}

/// TLS over TCP, either role (SSL_set_connect_state / SSL_set_accept_state, or SSL_connect /
/// SSL_accept, choose). TLS 1.2 and 1.3 on rustls. See TLS_method(3).
#[unsafe(no_mangle)]
pub extern "C" fn TLS_method() -> *const SSL_METHOD {
    &TLS_ANY as *const Method as *const SSL_METHOD
}
/// TLS over TCP, client role. See TLS_client_method(3).
#[unsafe(no_mangle)]
pub extern "C" fn TLS_client_method() -> *const SSL_METHOD {
    &TLS_CLIENT as *const Method as *const SSL_METHOD
}
/// TLS over TCP, server role. See TLS_server_method(3).
#[unsafe(no_mangle)]
pub extern "C" fn TLS_server_method() -> *const SSL_METHOD {
    &TLS_SERVER as *const Method as *const SSL_METHOD
}
/// Makes a TLS object a client (no effect on QUIC objects). See SSL_set_connect_state(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_connect_state(ssl: *mut SSL) {
    ffi_entry!(SSL_set_connect_state, {
        ssl_arg(ssl)?.set_tls_role(false, false);
        Ok(())
    })
}
/// Makes a TLS object a server (no effect on QUIC objects). See SSL_set_accept_state(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_accept_state(ssl: *mut SSL) {
    ffi_entry!(SSL_set_accept_state, {
        ssl_arg(ssl)?.set_tls_role(true, false);
        Ok(())
    })
}
/// The negotiated protocol version's name ("TLSv1.2", "TLSv1.3"; QUIC: "TLSv1.3").
/// See SSL_get_version(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_version(ssl: *const SSL) -> *const c_char {
    let name = |v: &str| match v {
        "TLSv1.2" => c"TLSv1.2".as_ptr(),
        _ => c"TLSv1.3".as_ptr(),
    };
    guard_with("SSL_get_version", std::ptr::null(), || {
        Ok(name(ssl_arg(ssl)?.tls_version()))
    })
}

/// A new context for `method`, or NULL. See SSL_CTX_new(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_new(method: *const SSL_METHOD) -> *mut SSL_CTX {
    ffi_entry!(SSL_CTX_new, {
        Ok(Arc::into_raw(Arc::new(SslCtx::new(method_arg(method)?))) as *mut SSL_CTX)
    })
}
/// Drops a reference. NULL is a no-op. See SSL_CTX_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_free(ctx: *mut SSL_CTX) {
    if !ctx.is_null() {
        // SAFETY: the caller gives up one reference it holds.
        unsafe { drop(Arc::from_raw(ctx as *const SslCtx)) }
    }
}
/// Adds a reference. Returns 1, or 0 for NULL. See SSL_CTX_up_ref(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_up_ref(ctx: *mut SSL_CTX) -> c_int {
    ffi_entry!(SSL_CTX_up_ref, {
        std::mem::forget(ctx_arc(ctx)?);
        Ok(1)
    })
}

/// Loads a PEM certificate chain (leaf first). Returns 1, or 0 with a readable error.
/// See SSL_CTX_use_certificate_chain_file(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_use_certificate_chain_file(
    ctx: *mut SSL_CTX,
    file: *const c_char,
) -> c_int {
    ffi_entry!(SSL_CTX_use_certificate_chain_file, {
        ctx_arg(ctx)?.use_certificate_chain_file(cstr_arg(file, "file")?)?;
        Ok(1)
    })
}
/// Loads a PEM certificate (PEM only). See SSL_CTX_use_certificate_file(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_use_certificate_file(
    ctx: *mut SSL_CTX,
    file: *const c_char,
    r#type: c_int,
) -> c_int {
    ffi_entry!(SSL_CTX_use_certificate_file, {
        if r#type != SSL_FILETYPE_PEM {
            return Err(Error::unsupported("only SSL_FILETYPE_PEM is supported"));
        }
        ctx_arg(ctx)?.use_certificate_chain_file(cstr_arg(file, "file")?)?;
        Ok(1)
    })
}
/// Loads a PEM private key (ECDSA, RSA, Ed25519). See SSL_CTX_use_PrivateKey_file(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_use_PrivateKey_file(
    ctx: *mut SSL_CTX,
    file: *const c_char,
    r#type: c_int,
) -> c_int {
    ffi_entry!(SSL_CTX_use_PrivateKey_file, {
        if r#type != SSL_FILETYPE_PEM {
            return Err(Error::unsupported("only SSL_FILETYPE_PEM is supported"));
        }
        ctx_arg(ctx)?.use_private_key_file(cstr_arg(file, "file")?)?;
        Ok(1)
    })
}
/// Checks that the key matches the certificate. See SSL_CTX_check_private_key(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_check_private_key(ctx: *const SSL_CTX) -> c_int {
    ffi_entry!(SSL_CTX_check_private_key, {
        ctx_arg(ctx)?.check_private_key()?;
        Ok(1)
    })
}

/// Sets the verification mode of the context's clients (SSL_VERIFY_NONE: record the outcome
/// only; any other mode: a failure ends the handshake) and the verify callback (NULL for
/// none), which sees each outcome and decides (see the README). See SSL_CTX_set_verify(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_verify(ctx: *mut SSL_CTX, mode: c_int, cb: SSL_verify_cb) {
    ffi_entry!(SSL_CTX_set_verify, {
        let c = ctx_arg(ctx)?;
        c.set_verify(mode);
        c.set_verify_callback(super::x509::verify_cb(cb));
        Ok(())
    })
}
/// Trusts the CAs in `CAfile` and/or the directory `CApath`. See SSL_CTX_load_verify_locations(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_load_verify_locations(
    ctx: *mut SSL_CTX,
    ca_file: *const c_char,
    ca_path: *const c_char,
) -> c_int {
    ffi_entry!(SSL_CTX_load_verify_locations, {
        let c = ctx_arg(ctx)?;
        if ca_file.is_null() && ca_path.is_null() {
            return Err(Error::null("CAfile and CApath"));
        }
        if !ca_file.is_null() {
            c.load_verify_file(cstr_arg(ca_file, "CAfile")?)?;
        }
        if !ca_path.is_null() {
            c.load_verify_dir(cstr_arg(ca_path, "CApath")?)?;
        }
        Ok(1)
    })
}
/// Trusts the system CAs (honouring SSL_CERT_FILE and SSL_CERT_DIR).
/// See SSL_CTX_set_default_verify_paths(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_default_verify_paths(ctx: *mut SSL_CTX) -> c_int {
    ffi_entry!(SSL_CTX_set_default_verify_paths, {
        ctx_arg(ctx)?.set_default_verify_paths()?;
        Ok(1)
    })
}
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
/// Adds option bits; returns the new set. See SSL_CTX_set_options(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_options(ctx: *mut SSL_CTX, op: u64) -> u64 {
    ffi_entry!(SSL_CTX_set_options, {
        Ok(ctx_arg(ctx)?.set_options(op, 0))
    })
}
/// Clears option bits; returns the new set. See SSL_CTX_clear_options(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_clear_options(ctx: *mut SSL_CTX, op: u64) -> u64 {
    ffi_entry!(SSL_CTX_clear_options, {
        Ok(ctx_arg(ctx)?.set_options(0, op))
    })
}
/// The option bits. See SSL_CTX_get_options(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_options(ctx: *const SSL_CTX) -> u64 {
    ffi_entry!(SSL_CTX_get_options, { Ok(ctx_arg(ctx)?.options()) })
}
/// Context controls: min/max protocol version (QUIC is TLS 1.3 only; any version up to 1.3
/// is accepted as a minimum). Others return 0 with an "unsupported" error. See SSL_CTX_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_ctrl(
    ctx: *mut SSL_CTX,
    cmd: c_int,
    larg: c_long,
    _parg: *mut c_void,
) -> c_long {
    ffi_entry!(SSL_CTX_ctrl, {
        let c = ctx_arg(ctx)?;
        if c.method.is_tls()
            && (cmd == SSL_CTRL_SET_MIN_PROTO_VERSION || cmd == SSL_CTRL_SET_MAX_PROTO_VERSION)
        {
            c.set_proto_version(cmd == SSL_CTRL_SET_MAX_PROTO_VERSION, larg)?;
            return Ok(1);
        }
        match cmd {
            SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG => {
                c.set_servername_arg(_parg as usize);
                return Ok(1);
            }
            SSL_CTRL_SET_SESS_CACHE_SIZE => return Ok(c.set_session_cache_size(larg)),
            SSL_CTRL_GET_SESS_CACHE_SIZE => return Ok(c.session_cache_size()),
            SSL_CTRL_SET_SESS_CACHE_MODE => return Ok(c.set_session_cache_mode(larg)),
            SSL_CTRL_GET_SESS_CACHE_MODE => return Ok(c.session_cache_mode()),
            _ => {}
        }
        match cmd {
            SSL_CTRL_SET_MIN_PROTO_VERSION if larg == 0 || larg <= TLS1_3_VERSION as c_long => {
                Ok(1)
            }
            SSL_CTRL_SET_MAX_PROTO_VERSION if larg == 0 || larg == TLS1_3_VERSION as c_long => {
                Ok(1)
            }
            SSL_CTRL_SET_MIN_PROTO_VERSION | SSL_CTRL_SET_MAX_PROTO_VERSION => {
                Err(Error::ssl(crate::ssl::ctx::SSL_R_WRONG_SSL_VERSION)
                    .with("QUIC uses TLS 1.3 only"))
            }
            _ => Err(Error::unsupported(format!(
                "SSL_CTX_ctrl {cmd} is not supported"
            ))),
        }
    })
}

/// A new client connection on a QUIC client context, or NULL (SSL_new on a server context
/// fails: use SSL_new_listener). See SSL_new(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_new(ctx: *mut SSL_CTX) -> *mut SSL {
    ffi_entry!(SSL_new, { Ok(ssl_handle(Ssl::new_client(ctx_arc(ctx)?)?)) })
}
/// Drops a reference; a connection freed while open is closed. NULL is a no-op. See SSL_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_free(ssl: *mut SSL) {
    if !ssl.is_null() {
        guard_with("SSL_free", (), || {
            // SAFETY: the caller gives up one reference it holds.
            unsafe { drop(Arc::from_raw(ssl as *const Ssl)) };
            Ok(())
        })
    }
}
/// Adds a reference. See SSL_up_ref(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_up_ref(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_up_ref, {
        std::mem::forget(ssl_arc(ssl)?);
        Ok(1)
    })
}

/// Sets the network BIOs, taking over one reference each (one in all if they are the same
/// BIO). See SSL_set_bio(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_bio(ssl: *mut SSL, rbio: *mut BIO, wbio: *mut BIO) {
    ffi_entry!(SSL_set_bio, {
        let s = ssl_arg(ssl)?;
        let r = take_bio(rbio);
        let w = if wbio == rbio {
            r.clone()
        } else {
            take_bio(wbio)
        };
        s.set_bios(r, w);
        Ok(())
    })
}
/// Sets the read BIO only, taking over its reference. See SSL_set0_rbio(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set0_rbio(ssl: *mut SSL, rbio: *mut BIO) {
    ffi_entry!(SSL_set0_rbio, {
        let s = ssl_arg(ssl)?;
        let w = s.wbio();
        s.set_bios(take_bio(rbio), w);
        Ok(())
    })
}
/// Sets the write BIO only, taking over its reference. See SSL_set0_wbio(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set0_wbio(ssl: *mut SSL, wbio: *mut BIO) {
    ffi_entry!(SSL_set0_wbio, {
        let s = ssl_arg(ssl)?;
        let r = s.rbio();
        s.set_bios(r, take_bio(wbio));
        Ok(())
    })
}
/// Uses socket `fd` through a BIO that does not close it: a BIO_s_datagram (QUIC, UDP) or a
/// BIO_s_socket (TLS, TCP). See SSL_set_fd(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_fd(ssl: *mut SSL, fd: c_int) -> c_int {
    ffi_entry!(SSL_set_fd, {
        let s = ssl_arg(ssl)?;
        let b = fd_bio(s, fd)?;
        s.set_bios(Some(b.clone()), Some(b));
        Ok(1)
    })
}
/// A BIO over socket `fd` that does not close it: a BIO_s_socket for TLS, a BIO_s_datagram
/// for QUIC.
fn fd_bio(s: &Ssl, fd: c_int) -> Result<Arc<Bio>> {
    if matches!(s.kind, Kind::Tls(_) | Kind::TlsListener(_)) {
        let b = Bio::new(&crate::bio::METHOD_SOCKET);
        b.sock()
            .ok_or_else(|| Error::internal("socket BIO"))?
            .set_fd(fd, false)?;
        Ok(b)
    } else {
        let b = Bio::new(&METHOD_DGRAM);
        b.dgram()?.set_fd(fd, false)?;
        Ok(b)
    }
}
/// Uses socket `fd` for reading only (the write side keeps its BIO). See SSL_set_rfd(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_rfd(ssl: *mut SSL, fd: c_int) -> c_int {
    ffi_entry!(SSL_set_rfd, {
        let s = ssl_arg(ssl)?;
        let b = fd_bio(s, fd)?;
        s.set_bios(Some(b), s.wbio());
        Ok(1)
    })
}
/// Uses socket `fd` for writing only (the read side keeps its BIO). See SSL_set_wfd(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_wfd(ssl: *mut SSL, fd: c_int) -> c_int {
    ffi_entry!(SSL_set_wfd, {
        let s = ssl_arg(ssl)?;
        let b = fd_bio(s, fd)?;
        s.set_bios(s.rbio(), Some(b));
        Ok(1)
    })
}
/// The read BIO's fd, or -1. See SSL_get_fd(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_fd(ssl: *const SSL) -> c_int {
    guard_with("SSL_get_fd", -1, || bio_fd(ssl_arg(ssl)?.rbio()))
}
/// The read BIO's fd, or -1. See SSL_get_rfd(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_rfd(ssl: *const SSL) -> c_int {
    guard_with("SSL_get_rfd", -1, || bio_fd(ssl_arg(ssl)?.rbio()))
}
/// The write BIO's fd, or -1. See SSL_get_wfd(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_wfd(ssl: *const SSL) -> c_int {
    guard_with("SSL_get_wfd", -1, || bio_fd(ssl_arg(ssl)?.wbio()))
}
fn bio_fd(b: Option<Arc<Bio>>) -> Result<c_int> {
    let b = b.ok_or_else(|| Error::ssl(SSL_R_BIO_NOT_SET))?;
    if let Some(s) = b.sock() {
        return Ok(s.fd());
    }
    Ok(b.dgram()?.fd())
}
/// The read BIO (no new reference), or NULL. See SSL_get_rbio(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_rbio(ssl: *const SSL) -> *mut BIO {
    ffi_entry!(SSL_get_rbio, {
        Ok(ssl_arg(ssl)?
            .rbio()
            .map_or(std::ptr::null_mut(), |b| Arc::as_ptr(&b) as *mut BIO))
    })
}
/// The write BIO (no new reference), or NULL. See SSL_get_wbio(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_wbio(ssl: *const SSL) -> *mut BIO {
    ffi_entry!(SSL_get_wbio, {
        Ok(ssl_arg(ssl)?
            .wbio()
            .map_or(std::ptr::null_mut(), |b| Arc::as_ptr(&b) as *mut BIO))
    })
}

/// The server address a client connects to. See SSL_set1_initial_peer_addr(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set1_initial_peer_addr(ssl: *mut SSL, peer_addr: *const BIO_ADDR) -> c_int {
    ffi_entry!(SSL_set1_initial_peer_addr, {
        let s = ssl_arg(ssl)?;
        let a = ref_arg(peer_addr as *const BioAddr, "peer_addr")?;
        let sa = a
            .to_socket_addr()
            .ok_or_else(|| Error::invalid("peer address must be IPv4 or IPv6"))?;
        s.set_initial_peer(sa)?;
        Ok(1)
    })
}
/// 1 for a server-side object (a listener, an accepted connection or its streams, a TLS
/// connection in the server role), else 0 (NULL: 0 with an error). See SSL_is_server(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_is_server(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_is_server, { Ok(ssl_arg(ssl)?.is_server() as c_int) })
}
/// The peer's address (OpenSSL 4.0): of a QUIC connection or stream (where the peer was
/// last heard from), or of a TLS connection over a connected socket. 1 and `*peer_addr`
/// filled; 0 with an error and `*peer_addr` untouched. See SSL_get_peer_addr(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_peer_addr(ssl: *mut SSL, peer_addr: *mut BIO_ADDR) -> c_int {
    ffi_entry!(SSL_get_peer_addr, {
        let s = ssl_arg(ssl)?;
        let out = mut_arg(peer_addr as *mut BioAddr, "peer_addr")?;
        *out = BioAddr::from_socket_addr(&s.peer_addr()?);
        Ok(1)
    })
}
/// The host name the server certificate must match. See SSL_set1_host(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set1_host(ssl: *mut SSL, host: *const c_char) -> c_int {
    ffi_entry!(SSL_set1_host, {
        ssl_arg(ssl)?.set_host(cstr_arg(host, "host")?)?;
        Ok(1)
    })
}
/// Connection controls: SSL_set_tlsext_host_name (55). Others return 0 with an
/// "unsupported" error. See SSL_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_ctrl(ssl: *mut SSL, cmd: c_int, larg: c_long, parg: *mut c_void) -> c_long {
    ffi_entry!(SSL_ctrl, {
        let s = ssl_arg(ssl)?;
        match cmd {
            SSL_CTRL_SET_TLSEXT_HOSTNAME if larg == TLSEXT_NAMETYPE_host_name as c_long => {
                s.set_sni(cstr_arg(parg as *const c_char, "name")?)?;
                Ok(1)
            }
            _ => Err(Error::unsupported(format!(
                "SSL_ctrl {cmd} is not supported"
            ))),
        }
    })
}

fn io_result(s: &Ssl, r: Result<()>, want: i32) -> c_int {
    match s.note(r, want) {
        Ok(()) => 1,
        Err(e) => {
            e.queue("SSL_do_handshake");
            -1
        }
    }
}

/// Drives the handshake: 1 when done, -1 with SSL_ERROR_WANT_READ while in progress
/// (non-blocking), -1 with an error (SSL_ERROR_SSL) on failure. See SSL_do_handshake(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_do_handshake(ssl: *mut SSL) -> c_int {
    guard_with("SSL_do_handshake", -1, || {
        let s = ssl_arg(ssl)?;
        Ok(io_result(s, s.do_handshake(), SSL_ERROR_WANT_READ))
    })
}
/// Client handshake (a TLS_method object becomes a client if no role was chosen).
/// See SSL_connect(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_connect(ssl: *mut SSL) -> c_int {
    if let Ok(s) = ssl_arg(ssl) {
        s.set_tls_role(false, true);
    }
    SSL_do_handshake(ssl)
}
/// Server handshake: completes an accepted QUIC connection's, or a TLS object's (a
/// TLS_method object becomes a server if no role was chosen). See SSL_accept(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_accept(ssl: *mut SSL) -> c_int {
    if let Ok(s) = ssl_arg(ssl) {
        s.set_tls_role(true, true);
    }
    SSL_do_handshake(ssl)
}

/// Reads from the default stream: 1 with `*readbytes` > 0; 0 with SSL_get_error telling
/// WANT_READ, ZERO_RETURN (FIN) or SSL. See SSL_read_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_read_ex(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(SSL_read_ex, { read_into(ssl, buf, num, readbytes, false) })
}

fn read_into(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
    peek: bool,
) -> Result<c_int> {
    let s = ssl_arg(ssl)?;
    let out = slice_arg_mut(buf, num, "buf")?;
    let n = s.note(s.read(out, peek), SSL_ERROR_WANT_READ)?;
    put(readbytes, n);
    Ok(1)
}

/// The int-length forms (SSL_read, SSL_write, SSL_peek) over their `_ex` forms: the byte
/// count, or -1.
fn int_io(
    func: &'static str,
    ssl: *const SSL,
    num: c_int,
    ex: impl FnOnce(usize, &mut usize) -> c_int,
) -> c_int {
    if num < 0 {
        return guard_with(func, -1, || Err(Error::invalid("negative length")));
    }
    let mut n = 0usize;
    match ex(num as usize, &mut n) {
        1 => n as c_int,
        _ => io_failure(ssl),
    }
}

/// What SSL_read/SSL_peek/SSL_write return on failure, as OpenSSL's do: a QUIC object 0 for
/// every failure (its _ex call's result; SSL_get_error tells which), a TLS connection 0 at
/// the peer's close_notify and -1 otherwise. Programs written for QUIC end on `<= 0` and
/// pass the value on as a length (OpenSSL's ddd-06-mem-uv does), so -1 is not harmless.
fn io_failure(ssl: *const SSL) -> c_int {
    match ssl_arg(ssl) {
        Ok(s) if !s.is_tls() => 0,
        Ok(s) if s.last_error() == SSL_ERROR_ZERO_RETURN => 0,
        _ => -1,
    }
}
/// As SSL_read_ex, returning the byte count or <= 0. See SSL_read(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_read(ssl: *mut SSL, buf: *mut c_void, num: c_int) -> c_int {
    int_io("SSL_read", ssl, num, |len, n| SSL_read_ex(ssl, buf, len, n))
}
/// Writes to the default stream (created on first write): 1 with `*written`, or 0 with
/// SSL_get_error. See SSL_write_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_write_ex(
    ssl: *mut SSL,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    SSL_write_ex2(ssl, buf, num, 0, written)
}
/// SSL_write_ex with flags: SSL_WRITE_FLAG_CONCLUDE sends FIN after the data.
/// See SSL_write_ex2(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_write_ex2(
    ssl: *mut SSL,
    buf: *const c_void,
    num: usize,
    flags: u64,
    written: *mut usize,
) -> c_int {
    put(written, 0);
    ffi_entry!(SSL_write_ex2, {
        let s = ssl_arg(ssl)?;
        if flags & !SSL_WRITE_FLAG_CONCLUDE != 0 {
            return Err(Error::ssl(412).with("unsupported write flag"));
        }
        let data = slice_arg(buf, num, "buf")?;
        let n = s.note(
            s.write(data, flags & SSL_WRITE_FLAG_CONCLUDE != 0),
            SSL_ERROR_WANT_WRITE,
        )?;
        put(written, n);
        Ok(1)
    })
}
/// As SSL_write_ex, returning the byte count or <= 0. See SSL_write(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_write(ssl: *mut SSL, buf: *const c_void, num: c_int) -> c_int {
    int_io("SSL_write", ssl, num, |len, n| {
        SSL_write_ex(ssl, buf, len, n)
    })
}
/// Sends FIN on the default stream after its buffered data. See SSL_stream_conclude(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_stream_conclude(ssl: *mut SSL, _flags: u64) -> c_int {
    ffi_entry!(SSL_stream_conclude, {
        let s = ssl_arg(ssl)?;
        s.note(s.conclude(), SSL_ERROR_WANT_WRITE)?;
        Ok(1)
    })
}

/// What the last call on `ssl` meant when it returned `ret`: SSL_ERROR_NONE, WANT_READ,
/// WANT_WRITE, ZERO_RETURN, SSL or SYSCALL. See SSL_get_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_error(ssl: *const SSL, ret: c_int) -> c_int {
    guard_with("SSL_get_error", SSL_ERROR_SSL, || {
        let s = ssl_arg(ssl)?;
        Ok(if ret > 0 {
            SSL_ERROR_NONE
        } else {
            s.last_error()
        })
    })
}

/// Shuts the connection down: concludes the default stream, waits until its data is
/// acknowledged, sends CONNECTION_CLOSE and waits out the closing period. Returns 0 while in
/// progress, 1 when done (call again until 1; a blocking connection waits). See SSL_shutdown(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_shutdown(ssl: *mut SSL) -> c_int {
    guard_with("SSL_shutdown", -1, || {
        Ok(ssl_arg(ssl)?.shutdown(0, b"", 0)? as c_int)
    })
}

/// Arguments of SSL_shutdown_ex.
#[repr(C)]
pub struct SSL_SHUTDOWN_EX_ARGS {
    pub quic_error_code: u64,
    pub quic_reason: *const c_char,
}
/// SSL_shutdown with an application error code and reason, and SSL_SHUTDOWN_FLAG_RAPID (done
/// once CONNECTION_CLOSE is sent), _NO_STREAM_FLUSH (do not wait for stream data to be
/// acknowledged), _NO_BLOCK. See SSL_shutdown_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_shutdown_ex(
    ssl: *mut SSL,
    flags: u64,
    args: *const SSL_SHUTDOWN_EX_ARGS,
    _args_len: usize,
) -> c_int {
    guard_with("SSL_shutdown_ex", -1, || {
        let s = ssl_arg(ssl)?;
        // SAFETY: args is NULL or points at a caller-owned SSL_SHUTDOWN_EX_ARGS.
        let (code, reason) = match unsafe { args.as_ref() } {
            Some(a) if !a.quic_reason.is_null() => (
                a.quic_error_code,
                cstr_arg(a.quic_reason, "quic_reason")?.as_bytes(),
            ),
            Some(a) => (a.quic_error_code, &b""[..]),
            None => (0, &b""[..]),
        };
        Ok(s.shutdown(code, reason, flags)? as c_int)
    })
}

/// Processes network input, timers and output for the object's whole domain. NULL is
/// accepted (returns 1), as OpenSSL's. See SSL_handle_events(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_handle_events(ssl: *mut SSL) -> c_int {
    if ssl.is_null() {
        return 1;
    }
    ffi_entry!(SSL_handle_events, {
        ssl_arg(ssl)?.handle_events();
        Ok(1)
    })
}

/// When SSL_handle_events must next be called: `*is_infinite` = 1 when no timer is armed,
/// else `*tv` = time left ({0,0} = now). NULL `s` gives infinite. See SSL_get_event_timeout(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_event_timeout(
    ssl: *mut SSL,
    tv: *mut libc::timeval,
    is_infinite: *mut c_int,
) -> c_int {
    ffi_entry!(SSL_get_event_timeout, {
        let out = mut_arg(tv, "tv")?;
        let d = if ssl.is_null() {
            None
        } else {
            ssl_arg(ssl)?.event_timeout()
        };
        put(is_infinite, d.is_none() as c_int);
        let d = d.unwrap_or(Duration::ZERO);
        *out = libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        Ok(1)
    })
}
/// The read BIO's poll descriptor. See SSL_get_rpoll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_rpoll_descriptor(ssl: *mut SSL, desc: *mut BIO_POLL_DESCRIPTOR) -> c_int {
    ffi_entry!(SSL_get_rpoll_descriptor, {
        let b = ssl_arg(ssl)?
            .rbio()
            .ok_or_else(|| Error::ssl(SSL_R_BIO_NOT_SET))?;
        *mut_arg(desc, "desc")? = b.rpoll()?;
        Ok(1)
    })
}
/// The write BIO's poll descriptor. See SSL_get_wpoll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_wpoll_descriptor(ssl: *mut SSL, desc: *mut BIO_POLL_DESCRIPTOR) -> c_int {
    ffi_entry!(SSL_get_wpoll_descriptor, {
        let b = ssl_arg(ssl)?
            .wbio()
            .ok_or_else(|| Error::ssl(SSL_R_BIO_NOT_SET))?;
        *mut_arg(desc, "desc")? = b.wpoll()?;
        Ok(1)
    })
}
/// 1: a QUIC object always wants to hear from the network. NULL gives 0.
/// See SSL_net_read_desired(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_net_read_desired(ssl: *mut SSL) -> c_int {
    if ssl.is_null() {
        return 0;
    }
    ffi_entry!(SSL_net_read_desired, {
        ssl_arg(ssl)?;
        Ok(1)
    })
}
/// 1 while output waits for the network to accept it (poll the write descriptor, then call
/// SSL_handle_events). NULL gives 0. See SSL_net_write_desired(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_net_write_desired(ssl: *mut SSL) -> c_int {
    if ssl.is_null() {
        return 0;
    }
    ffi_entry!(SSL_net_write_desired, {
        Ok(ssl_arg(ssl)?.net_write_desired() as c_int)
    })
}
/// Blocking (1) or non-blocking (0) calls on this object; objects made from it inherit the
/// mode. Blocking needs network BIOs with poll descriptors (a UDP socket, a pollable
/// datagram pair): otherwise 0 and an error. See SSL_set_blocking_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_blocking_mode(ssl: *mut SSL, blocking: c_int) -> c_int {
    ffi_entry!(SSL_set_blocking_mode, {
        ssl_arg(ssl)?.set_blocking(blocking != 0)?;
        Ok(1)
    })
}
/// 1 when calls on this object block (asked for, and possible with its BIOs), 0 when not,
/// -1 on a NULL argument. See SSL_get_blocking_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_blocking_mode(ssl: *mut SSL) -> c_int {
    guard_with("SSL_get_blocking_mode", -1, || {
        Ok(ssl_arg(ssl)?.is_blocking() as c_int)
    })
}

/// A QUIC listener on a server context; SSL_LISTENER_FLAG_NO_VALIDATE skips Retry.
/// See SSL_new_listener(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_new_listener(ctx: *mut SSL_CTX, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_new_listener, {
        Ok(ssl_handle(Ssl::new_listener(
            ctx_arc(ctx)?,
            flags & SSL_LISTENER_FLAG_NO_VALIDATE == 0,
        )?))
    })
}
/// Starts listening (idempotent; implied by the first accept). See SSL_listen(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_listen(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_listen, {
        ssl_arg(ssl)?.listen()?;
        Ok(1)
    })
}
/// Peel-off (OpenSSL 4.0, with 4.0.x's fixes): moves the next queued incoming connection of
/// a QUIC listener into `new_conn`, a fresh connection object from SSL_new (not
/// thread-assisted), which then keeps the listener alive and completes its handshake in the
/// listener's domain. 1 when one was moved, 0 when none is queued (never waits), -1 on error
/// (NULL arguments, a used `new_conn`, or a listener that SSL_accept_connection serves).
/// See SSL_listen_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_listen_ex(listener: *mut SSL, new_conn: *mut SSL) -> c_int {
    ffi_entry!(SSL_listen_ex, -1, {
        let l = ssl_arc(listener)?;
        let c = ssl_arc(new_conn)?;
        Ok(l.listen_ex(&c)? as c_int)
    })
}

/// The next incoming connection (the caller owns the reference). A blocking listener waits
/// for one unless SSL_ACCEPT_CONNECTION_NO_BLOCK is given; otherwise NULL when none is
/// queued. See SSL_accept_connection(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_accept_connection(ssl: *mut SSL, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_accept_connection, {
        let l = ssl_arc(ssl)?;
        let r = l.accept_connection(flags & SSL_ACCEPT_CONNECTION_NO_BLOCK != 0);
        Ok(ssl_handle(l.note(r, SSL_ERROR_WANT_READ)?))
    })
}
/// Connections waiting to be accepted. See SSL_get_accept_connection_queue_len(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_accept_connection_queue_len(ssl: *mut SSL) -> usize {
    ffi_entry!(SSL_get_accept_connection_queue_len, {
        ssl_arg(ssl)?.accept_queue_len()
    })
}
/// 1 for a listener. See SSL_is_listener(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_is_listener(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_is_listener, {
        Ok(ssl_arg(ssl)?.is_listener() as c_int)
    })
}
/// 1 for a connection. See SSL_is_connection(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_is_connection(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_is_connection, {
        let s = ssl_arg(ssl)?;
        Ok((s.as_conn().is_ok() || matches!(s.kind, Kind::Tls(_))) as c_int)
    })
}
/// The listener itself, or an accepted connection's listener, else NULL. See SSL_get0_listener(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get0_listener(ssl: *mut SSL) -> *mut SSL {
    ffi_entry!(SSL_get0_listener, {
        let s = ssl_arg(ssl)?;
        Ok(match &s.kind {
            Kind::Listener(_) | Kind::TlsListener(_) => ssl,
            Kind::Domain(_) => std::ptr::null_mut(),
            Kind::Tls(t) => t
                .listener
                .as_ref()
                .map_or(std::ptr::null_mut(), |l| Arc::as_ptr(l) as *mut SSL),
            Kind::Conn(c) => c
                .listener()
                .map_or(std::ptr::null_mut(), |l| Arc::as_ptr(l) as *mut SSL),
            Kind::Stream(st) => match &st.conn.kind {
                Kind::Conn(c) => c
                    .listener()
                    .map_or(std::ptr::null_mut(), |l| Arc::as_ptr(l) as *mut SSL),
                _ => std::ptr::null_mut(),
            },
        })
    })
}
/// The connection itself (for a connection), else NULL. See SSL_get0_connection(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get0_connection(ssl: *mut SSL) -> *mut SSL {
    ffi_entry!(SSL_get0_connection, {
        let s = ssl_arg(ssl)?;
        Ok(match &s.kind {
            Kind::Conn(_) | Kind::Tls(_) => ssl,
            Kind::Stream(st) => Arc::as_ptr(&st.conn) as *mut SSL,
            Kind::Listener(_) | Kind::Domain(_) | Kind::TlsListener(_) => std::ptr::null_mut(),
        })
    })
}
/// The certificate verification outcome (X509_V_OK = 0). See SSL_get_verify_result(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_verify_result(ssl: *const SSL) -> c_long {
    ffi_entry!(SSL_get_verify_result, {
        Ok(ssl_arg(ssl)?.verify_result() as c_long)
    })
}
/// Text for a verification result code. See X509_verify_cert_error_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn X509_verify_cert_error_string(n: c_long) -> *const c_char {
    use crate::ssl::ctx::*;
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

/// Per-connection work the domain has done so far (drives and timer expiries): lets tests
/// show that idle connections cost nothing.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_SSL_get_conn_ticks(ssl: *mut SSL) -> u64 {
    ffi_entry!(OSSLQUIC_SSL_get_conn_ticks, {
        Ok(ssl_arg(ssl)?.conn_ticks())
    })
}

pub const SSL_STREAM_FLAG_UNI: u64 = 1;
pub const SSL_STREAM_FLAG_NO_BLOCK: u64 = 2;
pub const SSL_STREAM_FLAG_ADVANCE: u64 = 4;
pub const SSL_ACCEPT_STREAM_NO_BLOCK: u64 = 1;
/// Only a unidirectional stream (OpenSSL 3.6).
pub const SSL_ACCEPT_STREAM_UNI: u64 = 2;
/// Only a bidirectional stream (OpenSSL 3.6).
pub const SSL_ACCEPT_STREAM_BIDI: u64 = 4;

/// Opens a new local stream (SSL_STREAM_FLAG_UNI for unidirectional). A blocking connection
/// waits for stream credit unless SSL_STREAM_FLAG_NO_BLOCK is given; otherwise NULL with
/// STREAM_COUNT_LIMITED when the peer allows no more streams yet. See SSL_new_stream(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_new_stream(ssl: *mut SSL, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_new_stream, {
        let c = ssl_arc(ssl)?;
        let r = c.new_stream(
            flags & SSL_STREAM_FLAG_UNI != 0,
            flags & SSL_STREAM_FLAG_NO_BLOCK != 0,
        );
        Ok(ssl_handle(c.note(r, SSL_ERROR_WANT_WRITE)?))
    })
}
/// The next stream the peer opened; with SSL_ACCEPT_STREAM_UNI or _BIDI (not both) the next
/// of that direction, the others staying queued. A blocking connection waits for one unless
/// SSL_ACCEPT_STREAM_NO_BLOCK is given; otherwise NULL when none is waiting.
/// See SSL_accept_stream(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_accept_stream(ssl: *mut SSL, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_accept_stream, {
        let c = ssl_arc(ssl)?;
        let dir = match flags & (SSL_ACCEPT_STREAM_UNI | SSL_ACCEPT_STREAM_BIDI) {
            SSL_ACCEPT_STREAM_UNI => Some(quinn_proto::Dir::Uni),
            SSL_ACCEPT_STREAM_BIDI => Some(quinn_proto::Dir::Bi),
            _ => None,
        };
        let r = c.accept_stream(flags & SSL_ACCEPT_STREAM_NO_BLOCK != 0, dir);
        Ok(ssl_handle(c.note(r, SSL_ERROR_WANT_READ)?))
    })
}
/// Streams waiting for SSL_accept_stream. See SSL_get_accept_stream_queue_len(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_accept_stream_queue_len(ssl: *mut SSL) -> usize {
    ffi_entry!(SSL_get_accept_stream_queue_len, {
        ssl_arg(ssl)?.accept_stream_queue_len()
    })
}
/// SSL_DEFAULT_STREAM_MODE_NONE, _AUTO_BIDI (default) or _AUTO_UNI; only before the default
/// stream exists. See SSL_set_default_stream_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_default_stream_mode(ssl: *mut SSL, mode: u32) -> c_int {
    ffi_entry!(SSL_set_default_stream_mode, {
        ssl_arg(ssl)?.set_default_stream_mode(mode)?;
        Ok(1)
    })
}
/// SSL_INCOMING_STREAM_POLICY_AUTO (the default: accept while the connection has no default
/// stream or its default stream mode is NONE, refuse once it has one), _ACCEPT, or _REJECT.
/// Refused peer streams are stopped and reset with `aec`. See SSL_set_incoming_stream_policy(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_incoming_stream_policy(ssl: *mut SSL, policy: c_int, aec: u64) -> c_int {
    ffi_entry!(SSL_set_incoming_stream_policy, {
        ssl_arg(ssl)?.set_incoming_stream_policy(policy, aec)?;
        Ok(1)
    })
}

/// Arguments of SSL_stream_reset.
#[repr(C)]
pub struct SSL_STREAM_RESET_ARGS {
    pub quic_error_code: u64,
}
/// Resets the send side of a stream (code 0 when `args` is NULL). See SSL_stream_reset(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_stream_reset(
    ssl: *mut SSL,
    args: *const SSL_STREAM_RESET_ARGS,
    _args_len: usize,
) -> c_int {
    ffi_entry!(SSL_stream_reset, {
        let s = ssl_arg(ssl)?;
        // SAFETY: args is NULL or a caller-owned SSL_STREAM_RESET_ARGS.
        let code = unsafe { args.as_ref() }.map_or(0, |a| a.quic_error_code);
        s.reset_stream(code)?;
        Ok(1)
    })
}
/// The stream id, or UINT64_MAX without a stream. See SSL_get_stream_id(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_id(ssl: *mut SSL) -> u64 {
    guard_with("SSL_get_stream_id", u64::MAX, || {
        Ok(ssl_arg(ssl)?.stream_id())
    })
}
/// SSL_STREAM_TYPE_NONE, _READ, _WRITE or _BIDI. See SSL_get_stream_type(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_type(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_get_stream_type, { Ok(ssl_arg(ssl)?.stream_type()) })
}
/// 1 if this side opened the stream. See SSL_is_stream_local(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_is_stream_local(ssl: *mut SSL) -> c_int {
    guard_with("SSL_is_stream_local", -1, || {
        Ok(ssl_arg(ssl)?.is_stream_local() as c_int)
    })
}
/// SSL_STREAM_STATE_* of the receiving part. See SSL_get_stream_read_state(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_read_state(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_get_stream_read_state, {
        Ok(ssl_arg(ssl)?.read_state())
    })
}
/// SSL_STREAM_STATE_* of the sending part. See SSL_get_stream_write_state(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_write_state(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_get_stream_write_state, {
        Ok(ssl_arg(ssl)?.write_state())
    })
}
fn stream_code(ssl: *mut SSL, code: *mut u64, write: bool) -> Result<c_int> {
    let s = ssl_arg(ssl)?;
    let out = mut_arg(code, "app_error_code")?;
    Ok(match s.stream_error_code(write) {
        Some(c) => {
            *out = c;
            1
        }
        None if s.close_info().is_some() => -1,
        None => 0,
    })
}
/// 1 with the peer's RESET_STREAM code, 0 if not reset, -1 if the connection is closed.
/// See SSL_get_stream_read_error_code(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_read_error_code(ssl: *mut SSL, app_error_code: *mut u64) -> c_int {
    guard_with("SSL_get_stream_read_error_code", -1, || {
        stream_code(ssl, app_error_code, false)
    })
}
/// 1 with the peer's STOP_SENDING code, 0 if not stopped, -1 if the connection is closed.
/// See SSL_get_stream_write_error_code(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_write_error_code(
    ssl: *mut SSL,
    app_error_code: *mut u64,
) -> c_int {
    guard_with("SSL_get_stream_write_error_code", -1, || {
        stream_code(ssl, app_error_code, true)
    })
}

/// Why a connection closed (see SSL_get_conn_close_info(3)).
#[repr(C)]
pub struct SSL_CONN_CLOSE_INFO {
    pub error_code: u64,
    pub frame_type: u64,
    pub reason: *const c_char,
    pub reason_len: usize,
    pub flags: u32,
}
/// Fills `info` once the connection is closing or closed; 0 while it is open. The reason
/// string lives as long as the connection. See SSL_get_conn_close_info(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_conn_close_info(
    ssl: *mut SSL,
    info: *mut SSL_CONN_CLOSE_INFO,
    info_len: usize,
) -> c_int {
    ffi_entry!(SSL_get_conn_close_info, {
        let s = ssl_arg(ssl)?;
        let out = mut_arg(info, "info")?;
        if info_len < size_of::<SSL_CONN_CLOSE_INFO>() {
            return Err(Error::invalid(
                "info_len is smaller than SSL_CONN_CLOSE_INFO",
            ));
        }
        let Some((code, ft, reason, local, transport)) = s.close_info() else {
            return Err(Error::would_block());
        };
        let c = match &s.kind {
            Kind::Conn(c) => c,
            Kind::Stream(st) => st.conn.as_conn()?,
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => {
                return Err(Error::ssl(SSL_R_CONN_USE_ONLY));
            }
        };
        let cs = c.close_reason.get_or_init(|| {
            std::ffi::CString::new(
                reason
                    .iter()
                    .copied()
                    .filter(|&b| b != 0)
                    .collect::<Vec<u8>>(),
            )
            .unwrap_or_default()
        });
        *out = SSL_CONN_CLOSE_INFO {
            error_code: code,
            frame_type: ft,
            reason: cs.as_ptr(),
            reason_len: cs.as_bytes().len(),
            flags: (if local { SSL_CONN_CLOSE_FLAG_LOCAL } else { 0 })
                | (if transport {
                    SSL_CONN_CLOSE_FLAG_TRANSPORT
                } else {
                    0
                }),
        };
        Ok(1)
    })
}

/// As SSL_read_ex, without consuming. See SSL_peek_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_peek_ex(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(SSL_peek_ex, { read_into(ssl, buf, num, readbytes, true) })
}
/// As SSL_peek_ex, returning the byte count or <= 0. See SSL_peek(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_peek(ssl: *mut SSL, buf: *mut c_void, num: c_int) -> c_int {
    int_io("SSL_peek", ssl, num, |len, n| SSL_peek_ex(ssl, buf, len, n))
}
/// Bytes readable at once from the stream (or default stream). See SSL_pending(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_pending(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_pending, {
        Ok(ssl_arg(ssl)?.pending().min(c_int::MAX as usize) as c_int)
    })
}
/// 1 if SSL_pending would be positive. See SSL_has_pending(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_has_pending(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_has_pending, {
        Ok((ssl_arg(ssl)?.pending() > 0) as c_int)
    })
}

/// The keylog callback type: one NSS key-log line (no newline) per secret.
pub type SSL_CTX_keylog_cb_func =
    Option<unsafe extern "C" fn(ssl: *const SSL, line: *const c_char)>;

/// Hands each TLS secret to the application's callback as an NSS key-log line.
struct CallbackKeyLog {
    cb: unsafe extern "C" fn(*const SSL, *const c_char),
    ssl: usize,
}

impl std::fmt::Debug for CallbackKeyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackKeyLog")
    }
}

impl rustls::KeyLog for CallbackKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::fmt::Write;
        let mut line =
            String::with_capacity(label.len() + 2 + 2 * (client_random.len() + secret.len()));
        line.push_str(label);
        line.push(' ');
        for b in client_random {
            let _ = write!(line, "{b:02x}");
        }
        line.push(' ');
        for b in secret {
            let _ = write!(line, "{b:02x}");
        }
        let ssl = match self.ssl {
            crate::ssl::ctx::KEYLOG_CURRENT_SSL => crate::ssl::current_owner(),
            s => s,
        };
        if let Ok(c) = std::ffi::CString::new(line) {
            // SAFETY: the application's callback, with a NUL-terminated line valid for the call.
            unsafe { (self.cb)(ssl as *const SSL, c.as_ptr()) };
        }
    }
}

/// Sets (or with NULL clears) the callback that receives TLS secrets as NSS key-log lines
/// (as SSLKEYLOGFILE would write them). The `ssl` argument is the connection, except on QUIC
/// server connections (NULL). The callback runs inside the library and must not call back
/// into the same connection. See SSL_CTX_set_keylog_callback(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_keylog_callback(ctx: *mut SSL_CTX, cb: SSL_CTX_keylog_cb_func) {
    ffi_entry!(SSL_CTX_set_keylog_callback, {
        let c = ctx_arg(ctx)?;
        c.set_keylog(cb.map(|cb| {
            Arc::new(move |ssl: usize| {
                Arc::new(CallbackKeyLog { cb, ssl }) as Arc<dyn rustls::KeyLog>
            }) as crate::ssl::ctx::KeyLogMaker
        }));
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

pub const SSL_TLSEXT_ERR_OK: c_int = 0;
pub const SSL_TLSEXT_ERR_ALERT_WARNING: c_int = 1;
pub const SSL_TLSEXT_ERR_ALERT_FATAL: c_int = 2;
pub const SSL_TLSEXT_ERR_NOACK: c_int = 3;

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

/// A domain: listeners made from it (SSL_new_listener_from) share one reactor and one lock,
/// so one thread can block on or poll all of them. `flags` are SSL_DOMAIN_FLAG_*; without a
/// threading model the context's flags apply. See SSL_new_domain(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_new_domain(ctx: *mut SSL_CTX, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_new_domain, {
        Ok(ssl_handle(Ssl::new_domain(ctx_arc(ctx)?, flags)?))
    })
}
/// A listener with its own network BIOs inside a domain (SSL_LISTENER_FLAG_NO_VALIDATE as
/// for SSL_new_listener). It keeps the domain alive. See SSL_new_listener_from(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_new_listener_from(ssl: *mut SSL, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_new_listener_from, {
        let d = ssl_arc(ssl)?;
        Ok(ssl_handle(d.new_listener_from(
            flags & SSL_LISTENER_FLAG_NO_VALIDATE == 0,
        )?))
    })
}
/// An outgoing client connection on a listener's port (SSL_set1_initial_peer_addr is
/// required). See SSL_new_from_listener(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_new_from_listener(ssl: *mut SSL, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_new_from_listener, {
        if flags != 0 {
            return Err(Error::ssl(ERR_R_PASSED_INVALID_ARGUMENT)
                .with("SSL_new_from_listener takes no flags (0)"));
        }
        Ok(ssl_handle(ssl_arc(ssl)?.new_from_listener()?))
    })
}
/// 1 for a domain object. See SSL_is_domain(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_is_domain(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_is_domain, { Ok(ssl_arg(ssl)?.is_domain() as c_int) })
}
/// The domain object an object belongs to (itself for a domain), or NULL when its domain
/// was made implicitly. See SSL_get0_domain(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get0_domain(ssl: *mut SSL) -> *mut SSL {
    ffi_entry!(SSL_get0_domain, {
        let s = ssl_arg(ssl)?;
        if s.is_domain() {
            return Ok(ssl);
        }
        Ok(s.domain_obj()
            .map_or(std::ptr::null_mut(), |d| Arc::as_ptr(d) as *mut SSL))
    })
}
/// The flags domains made from this context get. See SSL_CTX_set_domain_flags(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_domain_flags(ctx: *mut SSL_CTX, flags: u64) -> c_int {
    ffi_entry!(SSL_CTX_set_domain_flags, {
        let c = ctx_arg(ctx)?;
        c.set_domain_flags(crate::ssl::check_domain_flags(flags)?);
        Ok(1)
    })
}
/// See SSL_CTX_get_domain_flags(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_domain_flags(ctx: *const SSL_CTX, flags: *mut u64) -> c_int {
    ffi_entry!(SSL_CTX_get_domain_flags, {
        let f = ctx_arg(ctx)?.domain_flags();
        put(flags, f);
        Ok(1)
    })
}
/// The flags of the domain this object lives in. See SSL_get_domain_flags(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_domain_flags(ssl: *const SSL, flags: *mut u64) -> c_int {
    ffi_entry!(SSL_get_domain_flags, {
        let f = ssl_arg(ssl)?.domain().flags;
        put(flags, f);
        Ok(1)
    })
}

use crate::ssl::poll::*;

pub const SSL_POLL_EVENT_I: u64 = SSL_POLL_EVENT_IC | SSL_POLL_EVENT_ISB | SSL_POLL_EVENT_ISU;
pub const SSL_POLL_EVENT_OS: u64 = SSL_POLL_EVENT_OSB | SSL_POLL_EVENT_OSU;
pub const SSL_POLL_EVENT_RE: u64 = SSL_POLL_EVENT_R | SSL_POLL_EVENT_ER;
pub const SSL_POLL_EVENT_WE: u64 = SSL_POLL_EVENT_W | SSL_POLL_EVENT_EW;
pub const SSL_POLL_EVENT_RW: u64 = SSL_POLL_EVENT_R | SSL_POLL_EVENT_W;
pub const SSL_POLL_EVENT_RWE: u64 = SSL_POLL_EVENT_RE | SSL_POLL_EVENT_WE;

/// One object to poll and the events wanted / seen (OpenSSL's layout, 32 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SSL_POLL_ITEM {
    pub desc: BIO_POLL_DESCRIPTOR,
    pub events: u64,
    pub revents: u64,
}

/// A poll descriptor naming an SSL object, for SSL_POLL_ITEM. See SSL_as_poll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_as_poll_descriptor(ssl: *mut SSL) -> BIO_POLL_DESCRIPTOR {
    let mut d = BIO_POLL_DESCRIPTOR::none();
    d.r#type = crate::bio::msg::BIO_POLL_DESCRIPTOR_TYPE_SSL;
    d.value.ssl = ssl.cast();
    d
}

thread_local! {
    /// This thread's last SSL_poll answer, given again while it holds (`ssl::poll::unchanged`).
    static LAST_POLL: std::cell::RefCell<Option<crate::ssl::poll::Snapshot<std::sync::Weak<Ssl>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Reports which of the requested events each item's QUIC listener, connection or stream
/// has, waiting up to `timeout` ({0,0}: not at all; NULL: until something happens) for at
/// least one. Items lie `stride` bytes apart. Returns 1 on success (`*result_count` items
/// have events); 0 when an item cannot be polled (its revents is SSL_POLL_EVENT_F, later
/// items are zeroed, an error is queued) or an argument is bad. See SSL_poll(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_poll(
    items: *mut SSL_POLL_ITEM,
    num_items: usize,
    stride: usize,
    timeout: *const libc::timeval,
    flags: u64,
    result_count: *mut usize,
) -> c_int {
    put(result_count, 0);
    ffi_entry!(SSL_poll, {
        if num_items > 0 && items.is_null() {
            return Err(Error::ssl(ERR_R_PASSED_NULL_PARAMETER).with("argument `items` is NULL"));
        }
        if num_items > 0 && stride < size_of::<SSL_POLL_ITEM>() {
            return Err(Error::invalid("stride is smaller than SSL_POLL_ITEM"));
        }
        // SAFETY: the caller passes NULL or a valid timeval.
        let deadline = match unsafe { timeout.as_ref() } {
            None => None,
            Some(t) if t.tv_sec < 0 || t.tv_usec < 0 => {
                return Err(Error::invalid("negative timeout"));
            }
            Some(t) => Some(
                std::time::Instant::now()
                    + Duration::new(t.tv_sec as u64, 0)
                    + Duration::from_micros(t.tv_usec as u64),
            ),
        };
        let base = items.cast::<u8>();
        let item = |i: usize| base.wrapping_add(i * stride).cast::<SSL_POLL_ITEM>();
        let zero_timeout = deadline.is_some_and(|d| d <= std::time::Instant::now());
        // The same array as this thread's last call, nothing changed in its domains: the
        // same answer, without touching the objects. The array is compared first (a busy
        // loop whose array changes pays no second event handling), the answer written as
        // it goes (the slow path writes every item again if it does not hold). Taken out
        // while events are handled (callbacks run then), put back if it still holds.
        let mut last = if num_items > 0 {
            LAST_POLL.with(|l| l.borrow_mut().take())
        } else {
            None
        };
        if let Some(s) =
            last.take_if(|s| {
                s.keys.len() == num_items
                    && s.keys.iter().zip(&s.revents).enumerate().all(
                        |(i, (&(ssl, events), &rev))| {
                            // SAFETY: item i lies within the caller's array of num_items items,
                            // stride apart; an SSL descriptor's union member is `ssl`; only the
                            // revents field is written.
                            unsafe {
                                let it = item(i).read_unaligned();
                                let same = it.desc.r#type
                                    == crate::bio::msg::BIO_POLL_DESCRIPTOR_TYPE_SSL
                                    && it.desc.value.ssl as usize == ssl
                                    && it.events == events;
                                if same {
                                    std::ptr::addr_of_mut!((*item(i)).revents).write_unaligned(rev);
                                }
                                same
                            }
                        },
                    )
                    && crate::ssl::poll::unchanged(s, flags, zero_timeout)
            })
        {
            put(result_count, s.count);
            LAST_POLL.with(|l| *l.borrow_mut() = Some(s));
            return Ok(1);
        }
        let mut keys = Vec::with_capacity(num_items);
        for i in 0..num_items {
            // SAFETY: item i lies within the caller's array of num_items items, stride apart.
            let it = unsafe { item(i).read_unaligned() };
            if it.desc.r#type != crate::bio::msg::BIO_POLL_DESCRIPTOR_TYPE_SSL {
                keys.clear();
                break;
            }
            // SAFETY: an SSL descriptor's union member is `ssl`.
            keys.push((unsafe { it.desc.value.ssl } as usize, it.events));
        }
        let fast = keys.len() == num_items && num_items > 0;
        // The caller keeps its objects alive for the call, as with any SSL function.
        let mut reqs: Vec<crate::ssl::poll::Item<'_>> = Vec::with_capacity(num_items);
        for i in 0..num_items {
            // SAFETY: item i lies within the caller's array of num_items items, stride apart.
            let it = unsafe { item(i).read_unaligned() };
            let target = if it.desc.r#type == crate::bio::msg::BIO_POLL_DESCRIPTOR_TYPE_SSL {
                // SAFETY: an SSL descriptor's union member is `ssl`.
                let p = unsafe { it.desc.value.ssl }.cast::<SSL>();
                if p.is_null() {
                    crate::ssl::poll::Target::Skip
                } else {
                    match ssl_arg(p)? {
                        s if matches!(s.kind, Kind::Tls(_) | Kind::TlsListener(_)) => {
                            crate::ssl::poll::Target::Tls(s)
                        }
                        s => crate::ssl::poll::Target::Obj(s),
                    }
                }
            } else {
                crate::ssl::poll::Target::Unsupported
            };
            reqs.push(crate::ssl::poll::Item {
                target,
                events: it.events,
                revents: 0,
            });
        }
        let mut seen = Vec::new();
        let r = crate::ssl::poll::poll(&mut reqs, deadline, flags, &mut seen);
        for (i, rq) in reqs.iter().enumerate() {
            // SAFETY: as above; only the revents field is written.
            unsafe { std::ptr::addr_of_mut!((*item(i)).revents).write_unaligned(rq.revents) };
        }
        let snap = r.as_ref().ok().copied().filter(|_| fast).and_then(|n| {
            // The same array as last time: its pins hold already (an atomic operation per
            // item saved on every call of a busy poll loop).
            let pins = match last.take() {
                Some(prev) if prev.keys == keys => prev.pins,
                _ => keys
                    .iter()
                    .filter(|k| k.0 != 0)
                    .map(|k| {
                        let p = k.0 as *const Ssl;
                        // SAFETY: a live SSL* from the caller (it came from Arc::into_raw); one
                        // more strong count for the moment the weak one is made.
                        unsafe {
                            Arc::increment_strong_count(p);
                            let a = Arc::from_raw(p);
                            Arc::downgrade(&a)
                        }
                    })
                    .collect(),
            };
            crate::ssl::poll::snapshot(&reqs, std::mem::take(&mut keys), pins, seen, n)
        });
        LAST_POLL.with(|l| *l.borrow_mut() = snap);
        match r {
            Ok(n) => {
                put(result_count, n);
                Ok(1)
            }
            Err((n, e)) => {
                put(result_count, n);
                Err(e)
            }
        }
    })
}

/// Sets the session lifetime in seconds; returns the previous one. Recorded: rustls's
/// tickets live 6 hours and its session caches evict by size. See SSL_CTX_set_timeout(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_timeout(ctx: *mut SSL_CTX, t: c_long) -> c_long {
    ffi_entry!(SSL_CTX_set_timeout, {
        Ok(ctx_arg(ctx)?.set_session_timeout(t))
    })
}
/// The session lifetime in seconds. See SSL_CTX_get_timeout(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_timeout(ctx: *const SSL_CTX) -> c_long {
    ffi_entry!(SSL_CTX_get_timeout, { Ok(ctx_arg(ctx)?.session_timeout()) })
}
/// Sets the session id context (at most 32 bytes). See SSL_CTX_set_session_id_context(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_session_id_context(
    ctx: *mut SSL_CTX,
    sid: *const u8,
    len: c_uint,
) -> c_int {
    ffi_entry!(SSL_CTX_set_session_id_context, {
        ctx_arg(ctx)?.set_session_id_context(slice_arg(sid.cast(), len as usize, "sid_ctx")?)?;
        Ok(1)
    })
}
/// 1 when the handshake resumed a session, on either end (TLS over TCP and QUIC
/// connections and their streams; 0 for other objects and before the handshake completes). Clients resume
/// through SSL_set_session, or automatically from their context's cache. See
/// SSL_session_reused(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_session_reused(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_session_reused, {
        Ok(ssl_arg(ssl)?.session_reused() as c_int)
    })
}
/// Records the security level (rustls offers only suites and key sizes level 2 allows).
/// See SSL_CTX_set_security_level(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_security_level(ctx: *mut SSL_CTX, level: c_int) {
    ffi_entry!(SSL_CTX_set_security_level, {
        ctx_arg(ctx)?.set_security_level(level);
        Ok(())
    })
}
/// See SSL_CTX_get_security_level(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_security_level(ctx: *const SSL_CTX) -> c_int {
    ffi_entry!(SSL_CTX_get_security_level, {
        Ok(ctx_arg(ctx)?.security_level())
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

/// The server name (SNI) of a TLS connection: on a server the name the client sent (after
/// the ClientHello), on a client the one SSL_set_tlsext_host_name set; NULL if none. QUIC
/// objects: NULL with an "unsupported" error. `type` must be TLSEXT_NAMETYPE_host_name. The
/// string lives as long as the connection. See SSL_get_servername(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_servername(ssl: *const SSL, r#type: c_int) -> *const c_char {
    guard_with("SSL_get_servername", std::ptr::null(), || {
        let s = ssl_arg(ssl)?;
        if r#type != TLSEXT_NAMETYPE_host_name {
            return Ok(std::ptr::null());
        }
        let Kind::Tls(t) = &s.kind else {
            return Err(Error::unsupported("SSL_get_servername on a QUIC object"));
        };
        let Some(name) = s.servername() else {
            return Ok(std::ptr::null());
        };
        let c = t
            .servername
            .get_or_init(|| std::ffi::CString::new(name).unwrap_or_default());
        Ok(c.as_ptr())
    })
}

/// The server-name callback type: `int cb(SSL *s, int *al, void *arg)`.
pub type SSL_servername_cb =
    Option<unsafe extern "C" fn(s: *mut SSL, al: *mut c_int, arg: *mut c_void) -> c_int>;

/// Context controls that take a function: SSL_CTRL_SET_TLSEXT_SERVERNAME_CB (53), which
/// SSL_CTX_set_tlsext_servername_callback uses. The callback runs on TLS servers when the
/// ClientHello has arrived (SSL_get_servername tells the name; SSL_set_SSL_CTX switches the
/// connection to another context's certificate); SSL_TLSEXT_ERR_ALERT_FATAL ends the
/// handshake. Other commands return 0 with an "unsupported" error. See
/// SSL_CTX_callback_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_callback_ctrl(
    ctx: *mut SSL_CTX,
    cmd: c_int,
    fp: Option<unsafe extern "C" fn()>,
) -> c_long {
    ffi_entry!(SSL_CTX_callback_ctrl, {
        let c = ctx_arg(ctx)?;
        if cmd != SSL_CTRL_SET_TLSEXT_SERVERNAME_CB {
            return Err(Error::unsupported(format!(
                "SSL_CTX_callback_ctrl {cmd} is not supported"
            )));
        }
        // SAFETY: SSL_CTX_set_tlsext_servername_callback passes a function of the
        // SSL_servername_cb type through this generic pointer, as in OpenSSL.
        let cb: SSL_servername_cb = fp.map(|f| unsafe {
            std::mem::transmute::<
                unsafe extern "C" fn(),
                unsafe extern "C" fn(*mut SSL, *mut c_int, *mut c_void) -> c_int,
            >(f)
        });
        c.set_servername_cb(cb.map(|cb| {
            Arc::new(move |arg: usize| {
                let mut al: c_int = 112; // unrecognized_name, OpenSSL's default alert
                // SAFETY: the application's callback with its own argument; `al` is a local.
                unsafe {
                    cb(
                        crate::ssl::current_owner() as *mut SSL,
                        &mut al,
                        arg as *mut c_void,
                    )
                }
            }) as crate::ssl::ctx::ServernameCb
        }));
        Ok(1)
    })
}

/// The context in effect for `ssl`: the one SSL_set_SSL_CTX chose, else the one it was made
/// from (not a new reference); NULL for NULL. See SSL_get_SSL_CTX(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_SSL_CTX(ssl: *const SSL) -> *mut SSL_CTX {
    ffi_entry!(SSL_get_SSL_CTX, {
        Ok(Arc::as_ptr(&ssl_arg(ssl)?.cur_ctx()) as *mut SSL_CTX)
    })
}

/// Switches a TLS connection to `ctx` (NULL: back to the context it was made from; the SSL
/// keeps a reference): its certificate, key and ALPN callback apply from the next handshake
/// step, so calling it in the server-name callback serves that context's certificate for
/// the name asked. Returns `ctx` in effect, or NULL with an error (QUIC objects: an
/// "unsupported" error). See SSL_set_SSL_CTX(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_SSL_CTX(ssl: *mut SSL, ctx: *mut SSL_CTX) -> *mut SSL_CTX {
    ffi_entry!(SSL_set_SSL_CTX, {
        let s = ssl_arg(ssl)?;
        let c = if ctx.is_null() {
            None
        } else {
            Some(ctx_arc(ctx)?)
        };
        Ok(Arc::as_ptr(&s.set_ssl_ctx(c)?) as *mut SSL_CTX)
    })
}
