//! SSL_CTX: methods, creation, certificates and verification settings, options, ctrl,
//! the key log callback, timeouts, security level, domain flags.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};
use std::sync::Arc;

use super::{
    SSL_CTRL_GET_SESS_CACHE_MODE, SSL_CTRL_GET_SESS_CACHE_SIZE, SSL_CTRL_GET_TLSEXT_TICKET_KEYS,
    SSL_CTRL_SET_MAX_PROTO_VERSION, SSL_CTRL_SET_MIN_PROTO_VERSION, SSL_CTRL_SET_SESS_CACHE_MODE,
    SSL_CTRL_SET_SESS_CACHE_SIZE, SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG,
    SSL_CTRL_SET_TLSEXT_SERVERNAME_CB, SSL_CTRL_SET_TLSEXT_TICKET_KEYS, SSL_FILETYPE_PEM,
    TLS1_3_VERSION,
};
use crate::error::*;
use crate::ffi::x509::{SSL_verify_cb, verify_cb};
use crate::ffi::{SSL, SSL_CTX, SSL_METHOD, cstr_arg, ctx_arc, ctx_arg, ffi_entry, put, slice_arg};
use crate::ssl::*;

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
        c.set_verify_callback(verify_cb(cb));
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

/// Bounds how long a TLS (over TCP) server handshake of SSL objects made from `ctx` may take,
/// in milliseconds from its first step (SSL_accept, SSL_do_handshake, or the first
/// SSL_read/SSL_write): past it the handshake fails with SSL_R_READ_TIMEOUT_EXPIRED ("read
/// timeout expired"), so a client that connects and never finishes (slowloris) cannot hold a
/// server's thread or process. A blocking socket waits at most that long; a non-blocking one
/// fails at the next call after the deadline, and SSL_get_event_timeout reports the time left
/// (SSL_handle_events then fails the handshake). The default is 30,000 (a QUIC handshake's
/// bound, its idle timeout); 0 means no bound, as in OpenSSL. Clients are not bounded.
/// Returns 1, or 0 with an error queued (NULL). An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_CTX_set_handshake_timeout(ctx: *mut SSL_CTX, ms: u64) -> c_int {
    ffi_entry!(OSSLQUIC_CTX_set_handshake_timeout, {
        ctx_arg(ctx)?.set_handshake_timeout(std::time::Duration::from_millis(ms));
        Ok(1)
    })
}

/// The TLS server handshake bound of `ctx` in milliseconds (0: none; see
/// OSSLQUIC_CTX_set_handshake_timeout); 0 with an error queued for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_CTX_get_handshake_timeout(ctx: *const SSL_CTX) -> u64 {
    ffi_entry!(OSSLQUIC_CTX_get_handshake_timeout, {
        Ok(ctx_arg(ctx)?
            .handshake_timeout()
            .map_or(0, |d| d.as_millis().min(u64::MAX as u128) as u64))
    })
}

/// Context controls: min/max protocol version (QUIC is TLS 1.3 only; any version up to 1.3
/// is accepted as a minimum), the key-exchange groups (SSL_CTX_set1_groups_list,
/// SSL_CTX_set1_groups: 1, or 0 with the list unchanged). Others return 0 with an
/// "unsupported" error. See SSL_CTX_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_ctrl(
    ctx: *mut SSL_CTX,
    cmd: c_int,
    larg: c_long,
    _parg: *mut c_void,
) -> c_long {
    ffi_entry!(SSL_CTX_ctrl, {
        let c = ctx_arg(ctx)?;
        if let Some(groups) = super::groups::groups_ctrl(cmd, larg, _parg) {
            c.set_groups(groups?);
            return Ok(1);
        }
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
            SSL_CTRL_SET_TLSEXT_TICKET_KEYS | SSL_CTRL_GET_TLSEXT_TICKET_KEYS => {
                return ticket_keys_ctrl(c, cmd == SSL_CTRL_SET_TLSEXT_TICKET_KEYS, larg, _parg);
            }
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
                Err(Error::ssl(crate::ssl::SSL_R_WRONG_SSL_VERSION).with("QUIC uses TLS 1.3 only"))
            }
            _ => Err(Error::unsupported(format!(
                "SSL_CTX_ctrl {cmd} is not supported"
            ))),
        }
    })
}

/// SSL_CTX_set_tlsext_ticket_keys / SSL_CTX_get_tlsext_ticket_keys: `keys` NULL asks for
/// the size of one key (80); setting takes one key or (osslquic) up to four, newest first;
/// getting gives the newest (80 bytes).
fn ticket_keys_ctrl(c: &SslCtx, set: bool, len: c_long, keys: *mut c_void) -> Result<c_long> {
    use crate::ssl::tickets::{KEY_LEN, MAX_KEYS};
    if keys.is_null() {
        return Ok(KEY_LEN as c_long);
    }
    let max = if set { KEY_LEN * MAX_KEYS } else { KEY_LEN };
    let n = usize::try_from(len)
        .ok()
        .filter(|&n| n >= KEY_LEN && n <= max && n.is_multiple_of(KEY_LEN))
        .ok_or_else(|| {
            Error::ssl(crate::consts::SSL_R_INVALID_TICKET_KEYS_LENGTH).with(format!(
                "ticket keys are {KEY_LEN} bytes each (set: 1 to {MAX_KEYS} of them; get: \
                 one); got {len} bytes"
            ))
        })?;
    if set {
        // SAFETY: the caller passes `len` readable bytes at `keys` (checked non-NULL).
        let src = unsafe { std::slice::from_raw_parts(keys as *const u8, n) };
        c.set_ticket_keys(src)?;
    } else {
        let k = c.ticket_key()?;
        // SAFETY: the caller passes `len` (= KEY_LEN) writable bytes at `keys`.
        unsafe { std::ptr::copy_nonoverlapping(k.as_ptr(), keys as *mut u8, KEY_LEN) };
    }
    Ok(1)
}

/// Chooses the congestion controller of the QUIC connections made from `ctx` (clients, and
/// the connections of listeners created afterwards): "cubic" (the default), "newreno" or
/// "bbr" (quinn-proto's three; any case). Returns 1, or 0 with an error queued (NULL, an
/// unknown name). An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_CTX_set_congestion_control(
    ctx: *mut SSL_CTX,
    name: *const c_char,
) -> c_int {
    ffi_entry!(OSSLQUIC_CTX_set_congestion_control, {
        ctx_arg(ctx)?.set_congestion(cstr_arg(name, "name")?)?;
        Ok(1)
    })
}

/// The congestion controller `ctx` gives its QUIC connections: "cubic", "newreno" or "bbr";
/// NULL with an error queued for a NULL ctx. The string is static. An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_CTX_get_congestion_control(ctx: *const SSL_CTX) -> *const c_char {
    ffi_entry!(OSSLQUIC_CTX_get_congestion_control, {
        Ok(match ctx_arg(ctx)?.congestion() {
            crate::quic::transport::Congestion::Cubic => c"cubic".as_ptr(),
            crate::quic::transport::Congestion::NewReno => c"newreno".as_ptr(),
            crate::quic::transport::Congestion::Bbr => c"bbr".as_ptr(),
        })
    })
}

/// The ticket key callback type (see SSL_CTX_set_tlsext_ticket_key_evp_cb(3)): `name` (16
/// bytes), `iv` (16 bytes), the cipher and MAC contexts to initialise, and 1 to make a
/// ticket or 0 to open one.
pub type SSL_CTX_ticket_key_evp_cb = Option<
    unsafe extern "C" fn(
        ssl: *mut SSL,
        name: *mut u8,
        iv: *mut u8,
        cctx: *mut crate::ffi::evp::EVP_CIPHER_CTX,
        mctx: *mut crate::ffi::evp::EVP_MAC_CTX,
        enc: c_int,
    ) -> c_int,
>;

/// Sets (or with NULL clears) the callback that chooses the key of each new session ticket
/// and finds the key of each ticket presented, as OpenSSL's: when making a ticket (`enc` 1)
/// it writes the key's 16-byte name and initialises the cipher context
/// (`EVP_EncryptInit_ex` with `EVP_aes_256_cbc()` or `EVP_aes_128_cbc()` and its AES key)
/// and the MAC context (`EVP_MAC_CTX_set_params`: "key", and "digest" SHA256), returning 1
/// (0: no ticket); when opening one (`enc` 0) it is given the name and initialises them the
/// same way (`EVP_DecryptInit_ex`), returning 1 or 2 (found; 2 asks for a new ticket, which a
/// TLS 1.3 server sends anyway) or 0 (unknown: a full handshake). It takes precedence over
/// the context's keys and runs inside the handshake (its `SSL *` is the TLS connection, for
/// QUIC the listener). The HMAC and AES keys make osslquic's ticket key: a callback key opens
/// the tickets of a key given by SSL_CTX_set_tlsext_ticket_keys with the same name and bytes.
/// Returns 1, or 0 with an error queued (NULL ctx).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_tlsext_ticket_key_evp_cb(
    ctx: *mut SSL_CTX,
    cb: SSL_CTX_ticket_key_evp_cb,
) -> c_int {
    ffi_entry!(SSL_CTX_set_tlsext_ticket_key_evp_cb, {
        let c = ctx_arg(ctx)?;
        c.set_ticket_callback(cb.map(|f| -> crate::ssl::tickets::KeyCallback {
            Arc::new(move |name, seal| ticket_key_call(f, name, seal))
        }));
        Ok(1)
    })
}

/// One call of the application's ticket key callback, with contexts made for it.
fn ticket_key_call(
    f: unsafe extern "C" fn(
        *mut SSL,
        *mut u8,
        *mut u8,
        *mut crate::ffi::evp::EVP_CIPHER_CTX,
        *mut crate::ffi::evp::EVP_MAC_CTX,
        c_int,
    ) -> c_int,
    name: &mut [u8; crate::ssl::tickets::NAME_LEN],
    seal: bool,
) -> crate::ssl::tickets::CallbackKey {
    use crate::ssl::tickets::CallbackKey;
    let mut cctx = crate::ffi::evp::EVP_CIPHER_CTX::default();
    let mut mctx = crate::ffi::evp::EVP_MAC_CTX::default();
    let mut iv = [0u8; crate::ffi::evp::EVP_MAX_IV_LENGTH];
    let ssl = crate::ssl::current_owner() as *mut SSL;
    // SAFETY: the application's callback, with buffers of the sizes OpenSSL gives (16 bytes
    // each) and contexts that live for the call.
    let r = unsafe {
        f(
            ssl,
            name.as_mut_ptr(),
            iv.as_mut_ptr(),
            &mut cctx,
            &mut mctx,
            c_int::from(seal),
        )
    };
    match (cctx.key, mctx.key) {
        (Some(aes), Some(mut secret)) if r >= 1 => {
            secret.extend_from_slice(&aes);
            CallbackKey::Key(*name, secret)
        }
        _ => CallbackKey::None,
    }
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
