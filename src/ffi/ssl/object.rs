//! The SSL object: creation and references, its BIOs and descriptors, roles, peer address
//! and host name, SSL_ctrl, the handshake calls, and what it reports of its session.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::sync::Arc;

use super::{SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name};
use crate::bio::addr::BioAddr;
use crate::bio::msg::BIO_ADDR;
use crate::bio::{Bio, METHOD_DGRAM};
use crate::error::*;
use crate::ffi::{
    BIO, SSL, SSL_CTX, cstr_arg, ctx_arc, ffi_entry, guard_with, mut_arg, ref_arg, ssl_arc,
    ssl_arg, ssl_handle, ssl_release, take_bio,
};
use crate::ssl::*;

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
            ssl_release(ssl);
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

/// 1 while a connection's handshake has not completed (a fresh object, one in progress,
/// one that failed), else 0; 0 for streams, listeners and domains (no handshake of their
/// own), and for NULL with an error. On a QUIC connection, its TLS handshake. See
/// SSL_in_init(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_in_init(s: *const SSL) -> c_int {
    ffi_entry!(SSL_in_init, {
        Ok(ssl_arg(s)?.init_state().in_init as c_int)
    })
}

/// 1 for a connection whose handshake has not started (no SSL_connect, SSL_accept,
/// SSL_do_handshake, read or write yet), else 0; 0 for streams, listeners and domains, and for
/// NULL with an error. See SSL_in_before(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_in_before(s: *const SSL) -> c_int {
    ffi_entry!(SSL_in_before, {
        Ok(ssl_arg(s)?.init_state().before as c_int)
    })
}

/// 1 for a connection whose handshake completed (and has had no fatal error since), else 0;
/// 0 for streams, listeners and domains, and for NULL with an error. See
/// SSL_is_init_finished(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_is_init_finished(s: *const SSL) -> c_int {
    ffi_entry!(SSL_is_init_finished, {
        Ok(ssl_arg(s)?.init_state().finished as c_int)
    })
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

/// Connection controls: SSL_set_tlsext_host_name (55), the connection's key-exchange groups
/// (SSL_set1_groups_list, SSL_set1_groups: TLS objects and QUIC clients before they start)
/// and SSL_get_negotiated_group (134). Others return 0 with an "unsupported" error. See
/// SSL_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_ctrl(ssl: *mut SSL, cmd: c_int, larg: c_long, parg: *mut c_void) -> c_long {
    ffi_entry!(SSL_ctrl, {
        let s = ssl_arg(ssl)?;
        if let Some(groups) = super::groups::groups_ctrl(cmd, larg, parg) {
            s.set_groups(groups?)?;
            return Ok(1);
        }
        match cmd {
            super::SSL_CTRL_GET_NEGOTIATED_GROUP => Ok(super::groups::negotiated_nid(s)),
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
    guard_with("SSL_do_handshake", -1, || handshake(ssl))
}

fn handshake(ssl: *mut SSL) -> Result<c_int> {
    let s = ssl_arg(ssl)?;
    Ok(io_result(s, s.do_handshake(), SSL_ERROR_WANT_READ))
}

/// Client handshake (a TLS_method object becomes a client if no role was chosen).
/// See SSL_connect(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_connect(ssl: *mut SSL) -> c_int {
    if let Ok(s) = ssl_arg(ssl) {
        s.set_tls_role(false, true);
    }
    guard_with("SSL_connect", -1, || handshake(ssl))
}

/// Server handshake: completes an accepted QUIC connection's, or a TLS object's (a
/// TLS_method object becomes a server if no role was chosen). See SSL_accept(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_accept(ssl: *mut SSL) -> c_int {
    if let Ok(s) = ssl_arg(ssl) {
        s.set_tls_role(true, true);
    }
    guard_with("SSL_accept", -1, || handshake(ssl))
}

/// The certificate verification outcome (X509_V_OK = 0). See SSL_get_verify_result(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_verify_result(ssl: *const SSL) -> c_long {
    ffi_entry!(SSL_get_verify_result, {
        Ok(ssl_arg(ssl)?.verify_result() as c_long)
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

/// Updates the connection's keys (TLS 1.3 and QUIC), after its handshake: `type` is
/// SSL_KEY_UPDATE_NOT_REQUESTED or SSL_KEY_UPDATE_REQUESTED. TLS: a KeyUpdate message goes out
/// with the next write or handshake call (rustls always asks the peer to update too); errors
/// as OpenSSL's: "wrong ssl version" (not TLS 1.3, or no version yet), "invalid key update
/// type", "still in init". QUIC (a connection, not a stream): the next key phase starts at once
/// and the peer follows (an update still in progress absorbs this one, where OpenSSL fails);
/// a bad type is ERR_R_PASSED_INVALID_ARGUMENT, before the handshake "too many key updates".
/// Returns 1, or 0 with an error queued. See SSL_key_update(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_key_update(ssl: *mut SSL, r#type: c_int) -> c_int {
    ffi_entry!(SSL_key_update, {
        ssl_arg(ssl)?.key_update(r#type)?;
        Ok(1)
    })
}

/// The key update waiting to be sent: always SSL_KEY_UPDATE_NONE, since SSL_key_update hands
/// it to the protocol at once. See SSL_get_key_update_type(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_key_update_type(ssl: *const SSL) -> c_int {
    ffi_entry!(
        SSL_get_key_update_type,
        crate::consts::SSL_KEY_UPDATE_NONE,
        {
            ssl_arg(ssl)?;
            Ok(crate::consts::SSL_KEY_UPDATE_NONE)
        }
    )
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
