//! QUIC listeners and domains: creating them, listening, accepting connections, and finding
//! an object's listener, connection or domain.

use std::ffi::c_int;
use std::sync::Arc;

use crate::error::*;
use crate::ffi::{SSL, SSL_CTX, ctx_arc, ffi_entry, put, ssl_arc, ssl_arg, ssl_handle};
use crate::ssl::*;

pub const SSL_LISTENER_FLAG_NO_VALIDATE: u64 = 1 << 1;

pub const SSL_ACCEPT_CONNECTION_NO_BLOCK: u64 = 1;

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

/// Bounds the accept queue of QUIC listener `listener`: while `max` connections wait for
/// SSL_accept_connection (mid-handshake or established), new ones are refused with
/// CONNECTION_REFUSED at their first packet and counted (OSSLQUIC_ENGINE_STATS.refused).
/// The default is 1024; 0 refuses every new connection (a server draining before it
/// stops). Connections already queued stay. Returns 1, or 0 with an error queued (not a
/// QUIC listener). An osslquic extension: OpenSSL has no such call.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_set_max_pending_connections(listener: *mut SSL, max: usize) -> c_int {
    ffi_entry!(OSSLQUIC_set_max_pending_connections, {
        ssl_arg(listener)?.set_max_pending(max)?;
        Ok(1)
    })
}

/// The accept-queue bound of QUIC listener `listener` (see
/// OSSLQUIC_set_max_pending_connections); 0 with an error queued if it is not one.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_get_max_pending_connections(listener: *mut SSL) -> usize {
    ffi_entry!(OSSLQUIC_get_max_pending_connections, {
        ssl_arg(listener)?.max_pending()
    })
}

/// Bounds the handshakes QUIC listener `listener` keeps in progress with clients whose
/// address is not proven (a listener made with SSL_LISTENER_FLAG_NO_VALIDATE): while `max`
/// are, a new client is sent a Retry and must prove its address first, as a validating
/// listener asks of every client, and the Retry is counted (OSSLQUIC_ENGINE_STATS.retries).
/// A flood of spoofed Initials then cannot fill the accept queue with handshakes that never
/// finish. The default is 128; 0 asks every new client for a Retry. Returns 1, or 0 with an
/// error queued (not a QUIC listener). An osslquic extension: OpenSSL has no such call.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_set_max_unvalidated_handshakes(listener: *mut SSL, max: usize) -> c_int {
    ffi_entry!(OSSLQUIC_set_max_unvalidated_handshakes, {
        ssl_arg(listener)?.set_max_unvalidated(max)?;
        Ok(1)
    })
}

/// The bound of QUIC listener `listener` on handshakes in progress with unproven addresses
/// (see OSSLQUIC_set_max_unvalidated_handshakes); 0 with an error queued if it is not one.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_get_max_unvalidated_handshakes(listener: *mut SSL) -> usize {
    ffi_entry!(OSSLQUIC_get_max_unvalidated_handshakes, {
        ssl_arg(listener)?.max_unvalidated()
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

/// The flags of the domain this object lives in. See SSL_get_domain_flags(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_domain_flags(ssl: *const SSL, flags: *mut u64) -> c_int {
    ffi_entry!(SSL_get_domain_flags, {
        let f = ssl_arg(ssl)?.domain().flags;
        put(flags, f);
        Ok(1)
    })
}

/// Requires (`on` = 1) or not (0) a PROXY protocol header (HAProxy's version 1 or 2) before
/// the TLS handshake of every TLS server connection made from `ctx`: the header is read first
/// (at most 4,096 bytes, within the handshake timeout, see OSSLQUIC_CTX_set_handshake_timeout);
/// garbage, a truncated or oversized header fails the handshake with SSL_R_BAD_PACKET and a
/// text saying why. SSL_get_peer_addr then reports the client's address the header carries
/// (the socket's peer for a LOCAL or UNKNOWN header), and OSSLQUIC_get_proxy_tlv its TLVs.
/// For servers behind a load balancer that sends the header (HAProxy's `send-proxy-v2`).
/// Returns 1, or 0 with an error queued (NULL). An osslquic extension: OpenSSL has none.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_CTX_set_proxy_protocol(ctx: *mut SSL_CTX, on: c_int) -> c_int {
    ffi_entry!(OSSLQUIC_CTX_set_proxy_protocol, {
        crate::ffi::ctx_arg(ctx)?.set_proxy_protocol(on != 0);
        Ok(1)
    })
}

/// As OSSLQUIC_CTX_set_proxy_protocol, for one TLS object over the context's setting: a TLS
/// listener (the connections it accepts) or a TLS server connection before its handshake.
/// Returns 1, or 0 with an error queued (a QUIC object, or a handshake already started).
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_set_proxy_protocol(s: *mut SSL, on: c_int) -> c_int {
    ffi_entry!(OSSLQUIC_set_proxy_protocol, {
        ssl_arg(s)?.set_proxy_protocol(on != 0)?;
        Ok(1)
    })
}

/// The PROXY protocol version of the header a TLS server connection read (1 or 2), or 0
/// before the header was read or without one. A LOCAL command (version 2, a balancer's own
/// connection) gives -2.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_get_proxy_version(s: *mut SSL) -> c_int {
    ffi_entry!(OSSLQUIC_get_proxy_version, 0, {
        Ok(ssl_arg(s)?
            .proxy_info()
            .map_or(0, |i| if i.local { -2 } else { i.version as c_int }))
    })
}

/// The value of the first TLV of `type` (PP2_TYPE_ALPN 0x01, PP2_TYPE_AUTHORITY 0x02,
/// PP2_TYPE_UNIQUE_ID 0x05, or any other) in the version 2 PROXY header a TLS server
/// connection read: `*data` points into the connection (valid until SSL_free), `*len` is its
/// length. Returns 1, or 0 when there is no such TLV (no error queued) or with an error
/// queued for NULL arguments.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_get_proxy_tlv(
    s: *mut SSL,
    r#type: c_int,
    data: *mut *const u8,
    len: *mut usize,
) -> c_int {
    ffi_entry!(OSSLQUIC_get_proxy_tlv, {
        let ssl = ssl_arg(s)?;
        let out = crate::ffi::mut_arg(data, "data")?;
        let out_len = crate::ffi::mut_arg(len, "len")?;
        let Some(v) = u8::try_from(r#type)
            .ok()
            .and_then(|t| ssl.proxy_info()?.tlv(t))
        else {
            return Ok(0);
        };
        *out = v.as_ptr();
        *out_len = v.len();
        Ok(1)
    })
}

/// Makes the connection IDs a QUIC listener issues (in handshakes and NEW_CONNECTION_ID
/// frames) routable by a QUIC-LB load balancer (draft-ietf-quic-load-balancers-21): the first
/// octet carries config rotation codepoint `config_id` (0 to 6) and, if `encode_len`, the
/// ID's length; then `server_id` (`server_id_len`, 1 to 15 octets) and a random nonce of
/// `nonce_len` octets (at least 4, at most 19 with the server ID), in plaintext when `key` is
/// NULL, else encrypted under the 16-byte `key` (single-pass AES-128 when server ID and nonce
/// are 16 octets, four-pass otherwise). On a domain, every listener of it, including those
/// made later. Only before the listener has connections, and not with OSSLQUIC_prefork.
/// Returns 1, or 0 with an error queued. An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_set_quic_lb(
    obj: *mut SSL,
    config_id: c_int,
    server_id: *const u8,
    server_id_len: usize,
    nonce_len: usize,
    key: *const u8,
    encode_len: c_int,
) -> c_int {
    ffi_entry!(OSSLQUIC_set_quic_lb, {
        let ssl = ssl_arg(obj)?;
        let sid = crate::ffi::slice_arg(server_id.cast(), server_id_len, "server_id")?;
        let key = if key.is_null() {
            None
        } else {
            let k = crate::ffi::slice_arg(key.cast(), 16, "key")?;
            let mut a = [0u8; 16];
            a.copy_from_slice(k);
            Some(a)
        };
        let id = u8::try_from(config_id).unwrap_or(u8::MAX);
        let cfg = crate::quic::lb::LbConfig::new(id, sid, nonce_len, key.as_ref(), encode_len != 0)
            .map_err(|e| Error::ssl(SSL_R_BAD_VALUE).with(format!("QUIC-LB configuration: {e}")))?;
        ssl.set_quic_lb(Arc::new(cfg))?;
        Ok(1)
    })
}

/// Gives QUIC servers made from `ctx` (listeners created after this call) a fleet's shared
/// secret (`len` >= 16 bytes; 32 random bytes are best), from which they derive (HKDF-SHA256)
/// the key of their stateless resets and of their Retry and NEW_TOKEN tokens: any server of
/// the fleet then accepts a token another issued and can reset a connection another served
/// (its client recognises the reset). Every server of the fleet is given the same secret.
/// Returns 1, or 0 with an error queued. An osslquic extension: OpenSSL has no call to set
/// these keys.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_CTX_set_fleet_secret(
    ctx: *mut SSL_CTX,
    secret: *const u8,
    len: usize,
) -> c_int {
    ffi_entry!(OSSLQUIC_CTX_set_fleet_secret, {
        let c = crate::ffi::ctx_arg(ctx)?;
        c.set_fleet_secret(crate::ffi::slice_arg(secret.cast(), len, "secret")?)?;
        Ok(1)
    })
}
