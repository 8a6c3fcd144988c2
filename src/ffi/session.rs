//! SSL_SESSION entry points: getting and setting a connection's session, reference counts,
//! time and timeout, the new- and remove-session callbacks, and the serialised forms (DER and
//! PEM "SSL SESSION PARAMETERS").
//! A `SSL_SESSION *` is the data pointer of an `Arc<ssl::session::Session>`.

use std::ffi::{c_char, c_int, c_long, c_uchar, c_void};
use std::sync::Arc;

use super::{BIO, bio_arg, ffi_entry, guard_with, ref_arg};
use super::{SSL, SSL_CTX};
use crate::error::*;
use crate::ssl::session::{self, PEM_LABEL, PEM_R_NO_START_LINE, Session};
use crate::ssl::{Ssl, SslCtx};

/// The opaque C type behind `SSL_SESSION *`.
pub struct ssl_session_st {
    _opaque: [u8; 0],
}
pub type SSL_SESSION = ssl_session_st;

fn sess_arg<'a>(s: *const SSL_SESSION) -> Result<&'a Session> {
    ref_arg(s as *const Session, "session")
}

/// A new strong reference to the session behind a handle.
fn sess_arc(s: *const SSL_SESSION) -> Result<Arc<Session>> {
    sess_arg(s)?;
    // SAFETY: a non-NULL SSL_SESSION* came from Arc::into_raw; the caller holds a reference.
    unsafe {
        Arc::increment_strong_count(s as *const Session);
        Ok(Arc::from_raw(s as *const Session))
    }
}

fn sess_handle(s: Arc<Session>) -> *mut SSL_SESSION {
    Arc::into_raw(s) as *mut SSL_SESSION
}

fn ssl_arg<'a>(s: *const SSL) -> Result<&'a Ssl> {
    ref_arg(s as *const Ssl, "ssl")
}

fn ctx_arg<'a>(c: *const SSL_CTX) -> Result<&'a SslCtx> {
    ref_arg(c as *const SslCtx, "ctx")
}

/// The connection's session, lent: valid while the connection lives (the last 16 sessions
/// a connection made stay valid; OpenSSL's pointer is good only until the session changes).
/// A client's session is its newest TLS 1.3 ticket (or TLS 1.2 session); before any, one
/// with the handshake's metadata that cannot resume; NULL before the handshake unless
/// SSL_set_session gave one. A QUIC stream answers with its connection's session. NULL
/// `ssl` returns NULL with an error queued. See
/// SSL_get_session(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_session(ssl: *const SSL) -> *mut SSL_SESSION {
    ffi_entry!(SSL_get_session, {
        Ok(ssl_arg(ssl)?.session().map_or(std::ptr::null_mut(), |s| {
            Arc::as_ptr(&s) as *mut SSL_SESSION
        }))
    })
}

/// As SSL_get_session, with a reference for the caller (free it with SSL_SESSION_free).
/// See SSL_get1_session(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get1_session(ssl: *mut SSL) -> *mut SSL_SESSION {
    ffi_entry!(SSL_get1_session, {
        Ok(ssl_arg(ssl)?
            .session()
            .map_or(std::ptr::null_mut(), sess_handle))
    })
}

/// Sets the session a client connection offers in its handshake (before it starts); the
/// connection takes its own reference. NULL `session` clears it. A TLS 1.3 session resumes
/// once; one that cannot resume (used, expired, read back with d2i/PEM) is accepted and the
/// handshake is a full one, as OpenSSL does with a non-resumable session. Resumption needs a
/// connection of the context whose connection made the session (rustls resumes only with
/// the same verifier); on another context's connection the handshake is a full one and the
/// session stays unused. Returns 1, or 0 with an error for NULL `ssl`, a server, a started
/// handshake, a QUIC session on TLS or the reverse, or a listener's connection.
/// See SSL_set_session(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_session(ssl: *mut SSL, session: *mut SSL_SESSION) -> c_int {
    ffi_entry!(SSL_set_session, {
        let ssl = ssl_arg(ssl)?;
        let s = if session.is_null() {
            None
        } else {
            Some(sess_arc(session)?)
        };
        ssl.set_session(s)?;
        Ok(1)
    })
}

/// Gives up one reference; NULL is a no-op. See SSL_SESSION_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_free(session: *mut SSL_SESSION) {
    if !session.is_null() {
        guard_with("SSL_SESSION_free", (), || {
            sess_release(session);
            Ok(())
        })
    }
}

/// Takes one more reference. Returns 1, or 0 for NULL. See SSL_SESSION_up_ref(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_up_ref(session: *mut SSL_SESSION) -> c_int {
    ffi_entry!(SSL_SESSION_up_ref, {
        std::mem::forget(sess_arc(session)?);
        Ok(1)
    })
}

/// 1 if the session can resume a handshake: a client session holding an unused TLS 1.3
/// ticket or a TLS 1.2 session, not expired. Server sessions and sessions read back from
/// bytes give 0. See SSL_SESSION_is_resumable(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_is_resumable(session: *const SSL_SESSION) -> c_int {
    ffi_entry!(SSL_SESSION_is_resumable, {
        Ok(sess_arg(session)?.is_resumable() as c_int)
    })
}

/// The session's creation time in seconds since the epoch (0 with an error for NULL).
/// See SSL_SESSION_get_time(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_get_time(session: *const SSL_SESSION) -> c_long {
    ffi_entry!(SSL_SESSION_get_time, {
        Ok(sess_arg(session)?.time() as c_long)
    })
}

/// As SSL_SESSION_get_time, as a `time_t`. See SSL_SESSION_get_time_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_get_time_ex(session: *const SSL_SESSION) -> libc::time_t {
    ffi_entry!(SSL_SESSION_get_time_ex, {
        Ok(sess_arg(session)?.time() as libc::time_t)
    })
}

/// Sets the creation time (seconds since the epoch; expiry is time + timeout). Returns `t`,
/// or 0 with an error for NULL or a negative time. See SSL_SESSION_set_time(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_set_time(session: *mut SSL_SESSION, t: c_long) -> c_long {
    ffi_entry!(SSL_SESSION_set_time, {
        let s = sess_arg(session)?;
        let v = u64::try_from(t).map_err(|_| Error::invalid("negative time"))?;
        s.set_time(v);
        Ok(t)
    })
}

/// As SSL_SESSION_set_time, with a `time_t`. See SSL_SESSION_set_time_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_set_time_ex(
    session: *mut SSL_SESSION,
    t: libc::time_t,
) -> libc::time_t {
    ffi_entry!(SSL_SESSION_set_time_ex, {
        let s = sess_arg(session)?;
        let v = u64::try_from(t).map_err(|_| Error::invalid("negative time"))?;
        s.set_time(v);
        Ok(t)
    })
}

/// The session's lifetime in seconds: the context's SSL_CTX_set_timeout value (7200 by
/// default) when it was made, unless SSL_SESSION_set_timeout changed it. See
/// SSL_SESSION_get_timeout(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_get_timeout(session: *const SSL_SESSION) -> c_long {
    ffi_entry!(SSL_SESSION_get_timeout, {
        Ok(sess_arg(session)?.timeout() as c_long)
    })
}

/// Sets the lifetime in seconds; a session past time + timeout is not offered (and
/// SSL_SESSION_is_resumable turns 0). Returns 1, or 0 with an error for NULL or a negative
/// value. See SSL_SESSION_set_timeout(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_set_timeout(session: *mut SSL_SESSION, t: c_long) -> c_long {
    ffi_entry!(SSL_SESSION_set_timeout, {
        let s = sess_arg(session)?;
        let v = u64::try_from(t).map_err(|_| Error::invalid("negative timeout"))?;
        s.set_timeout(v);
        Ok(1)
    })
}

/// The early data the server allows with this session's ticket (its NewSessionTicket's
/// max_early_data; 0 if none), or what SSL_SESSION_set_max_early_data set. 0 with an error for
/// NULL. See SSL_SESSION_get_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_get_max_early_data(session: *const SSL_SESSION) -> u32 {
    ffi_entry!(SSL_SESSION_get_max_early_data, {
        Ok(sess_arg(session)?.max_early_data())
    })
}

/// Sets the session's max_early_data, which SSL_write_early_data checks (nonzero: early data
/// may be attempted). A ticket keeps the limit its server gave: rustls sends at most that,
/// and a ticket without early data sends none (the data written then reads as REJECTED).
/// Returns 1, or 0 with an error for NULL. See SSL_SESSION_set_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_set_max_early_data(
    session: *mut SSL_SESSION,
    max_early_data: u32,
) -> c_int {
    ffi_entry!(SSL_SESSION_set_max_early_data, {
        sess_arg(session)?.set_max_early_data(max_early_data);
        Ok(1)
    })
}

/// The session's protocol version (TLS1_2_VERSION or TLS1_3_VERSION; 0 with an error for
/// NULL). See SSL_SESSION_get_protocol_version(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_SESSION_get_protocol_version(session: *const SSL_SESSION) -> c_int {
    ffi_entry!(SSL_SESSION_get_protocol_version, {
        Ok(sess_arg(session)?.version as c_int)
    })
}

/// Sets (or with NULL clears) the callback a client calls for every new session (each TLS
/// 1.3 ticket, each TLS 1.2 session) when the context's cache mode includes
/// SSL_SESS_CACHE_CLIENT, with the connection's `SSL *`. It gets a reference: returning 1
/// keeps it (free it later with SSL_SESSION_free), 0 lets the library release it. It runs
/// inside the handshake step that received the ticket: it may call the SSL_SESSION
/// functions, i2d/PEM and SSL_get_session/SSL_get1_session, not other calls on the
/// connection. Servers do not call it (rustls keeps their sessions). NULL `ctx` queues an
/// error. See SSL_CTX_sess_set_new_cb(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_sess_set_new_cb(
    ctx: *mut SSL_CTX,
    cb: Option<unsafe extern "C" fn(*mut SSL, *mut SSL_SESSION) -> c_int>,
) {
    ffi_entry!(SSL_CTX_sess_set_new_cb, {
        let c = ctx_arg(ctx)?;
        let f = cb.map(|f| -> session::NewCb {
            Arc::new(move |ssl, s: &Arc<Session>| {
                let raw = sess_handle(s.clone());
                // SAFETY: the application's callback, given a live SSL and a reference.
                let keep = unsafe { f(ssl as *mut SSL, raw) };
                if keep == 0 {
                    // SAFETY: the callback declined the reference it was given.
                    unsafe { drop(Arc::from_raw(raw as *const Session)) };
                }
            })
        });
        c.client_cache().set_new_cb(f);
        Ok(())
    })
}

/// Sets (or with NULL clears) the callback called when a session leaves a client context's
/// cache: replaced or evicted by newer ones, or found expired. The session is lent for the
/// call. Not called when the context is freed, nor by servers. NULL `ctx` queues an error.
/// See SSL_CTX_sess_set_remove_cb(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_sess_set_remove_cb(
    ctx: *mut SSL_CTX,
    cb: Option<unsafe extern "C" fn(*mut SSL_CTX, *mut SSL_SESSION)>,
) {
    ffi_entry!(SSL_CTX_sess_set_remove_cb, {
        let c = ctx_arg(ctx)?;
        let at = ctx as usize;
        let f = cb.map(|f| -> session::RemoveCb {
            Arc::new(move |s: &Arc<Session>| {
                // SAFETY: the application's callback; the context owns this closure, so it
                // is alive, and the session is alive for the call.
                unsafe { f(at as *mut SSL_CTX, Arc::as_ptr(s) as *mut SSL_SESSION) }
            })
        });
        c.client_cache().set_remove_cb(f);
        Ok(())
    })
}

/// Serialises the session (osslquic's own DER layout: metadata only, no secrets, since
/// rustls cannot rebuild a session from bytes). Returns the length; with `pp` non-NULL
/// writes there and advances `*pp`, or, if `*pp` is NULL, allocates (free with
/// OPENSSL_free) and sets `*pp`. -1 with an error for NULL `in`. See i2d_SSL_SESSION(3).
#[unsafe(no_mangle)]
pub extern "C" fn i2d_SSL_SESSION(session: *const SSL_SESSION, pp: *mut *mut c_uchar) -> c_int {
    ffi_entry!(i2d_SSL_SESSION, -1, {
        let bytes = sess_arg(session)?.encode();
        let n = c_int::try_from(bytes.len()).map_err(|_| Error::internal("session too long"))?;
        // SAFETY: a non-NULL `pp` points at a pointer the caller lets us read and write.
        let Some(slot) = (unsafe { pp.as_mut() }) else {
            return Ok(n);
        };
        if slot.is_null() {
            let p = super::crypto::malloc(bytes.len()).cast::<u8>();
            if p.is_null() {
                return Err(Error::new(ERR_LIB_SSL, ERR_R_MALLOC_FAILURE));
            }
            // SAFETY: `p` was just allocated with room for bytes.len() bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
            *slot = p;
        } else {
            // SAFETY: the caller's buffer holds at least the length a NULL `pp` call returned.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), *slot, bytes.len());
                *slot = slot.add(bytes.len());
            }
        }
        Ok(n)
    })
}

/// Reads a session i2d_SSL_SESSION wrote, from `*pp` (`length` bytes), and advances `*pp`
/// past it. The session has the metadata only: SSL_SESSION_is_resumable gives 0 and
/// SSL_set_session accepts it for a full handshake. With `a` non-NULL, `*a` is released (if
/// set) and replaced by the new session. Returns NULL with an error for bytes in another
/// layout (OpenSSL's own sessions included), damaged bytes or NULL arguments.
/// See d2i_SSL_SESSION(3).
#[unsafe(no_mangle)]
pub extern "C" fn d2i_SSL_SESSION(
    a: *mut *mut SSL_SESSION,
    pp: *mut *const c_uchar,
    length: c_long,
) -> *mut SSL_SESSION {
    ffi_entry!(d2i_SSL_SESSION, {
        // SAFETY: a non-NULL `pp` points at a pointer the caller lets us read and write.
        let slot = unsafe { pp.as_mut() }.ok_or_else(|| Error::null("pp"))?;
        let len = usize::try_from(length).map_err(|_| Error::invalid("negative length"))?;
        let bytes = super::slice_arg(slot.cast(), len, "*pp")?;
        let (s, used) = Session::decode(bytes)?;
        // SAFETY: `used` <= len, within the caller's buffer.
        *slot = unsafe { slot.add(used) };
        Ok(replace_out(a, Arc::new(s)))
    })
}

/// Writes the session as PEM ("SSL SESSION PARAMETERS" around i2d_SSL_SESSION's bytes).
/// Returns 1, or 0 with an error for NULL arguments or a BIO that does not take it all.
/// See PEM_write_bio_SSL_SESSION(3).
#[unsafe(no_mangle)]
pub extern "C" fn PEM_write_bio_SSL_SESSION(bp: *mut BIO, session: *const SSL_SESSION) -> c_int {
    ffi_entry!(PEM_write_bio_SSL_SESSION, {
        let s = sess_arg(session)?;
        bio_arg(bp)?;
        let text = pem::encode_config(
            &pem::Pem::new(PEM_LABEL, s.encode()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );
        bio_put(bp, text.as_bytes())?;
        Ok(1)
    })
}

/// Reads the next "SSL SESSION PARAMETERS" PEM block from the BIO (other blocks before it are
/// skipped), reading no further than its END line. The session is as d2i_SSL_SESSION's
/// (metadata only, not resumable). With `x` non-NULL, `*x` is released (if set) and replaced.
/// The password callback is not used (the block is never encrypted). Returns NULL with a PEM
/// "no start line" error if there is none, or an error for a damaged block.
/// See PEM_read_bio_SSL_SESSION(3).
#[unsafe(no_mangle)]
pub extern "C" fn PEM_read_bio_SSL_SESSION(
    bp: *mut BIO,
    x: *mut *mut SSL_SESSION,
    _cb: Option<unsafe extern "C" fn(*mut c_char, c_int, c_int, *mut c_void) -> c_int>,
    _u: *mut c_void,
) -> *mut SSL_SESSION {
    ffi_entry!(PEM_read_bio_SSL_SESSION, {
        bio_arg(bp)?;
        let begin = format!("-----BEGIN {PEM_LABEL}-----");
        let end = format!("-----END {PEM_LABEL}-----");
        let mut block = String::new();
        let mut inside = false;
        loop {
            let Some(line) = bio_line(bp)? else {
                return Err(Error::new(ERR_LIB_PEM, PEM_R_NO_START_LINE)
                    .with(format!("no {PEM_LABEL} block found")));
            };
            let t = line.trim_end();
            if !inside && t == begin {
                inside = true;
            }
            if inside {
                block.push_str(t);
                block.push('\n');
                if t == end {
                    break;
                }
            }
        }
        let p = pem::parse(&block).map_err(|e| {
            Error::new(ERR_LIB_PEM, PEM_R_BAD_BASE64_DECODE).with(format!("{PEM_LABEL}: {e}"))
        })?;
        let (s, _) = Session::decode(p.contents())?;
        Ok(replace_out(x, Arc::new(s)))
    })
}

/// PEM_R_BAD_BASE64_DECODE.
const PEM_R_BAD_BASE64_DECODE: u32 = 100;

/// d2i's and PEM_read's `a`/`x` out-parameter: releases what it held and stores a new
/// reference to `s`; returns the caller's reference.
fn replace_out(a: *mut *mut SSL_SESSION, s: Arc<Session>) -> *mut SSL_SESSION {
    // SAFETY: a non-NULL `a` points at a session pointer the caller lets us replace.
    if let Some(out) = unsafe { a.as_mut() } {
        if !out.is_null() {
            sess_release(*out);
        }
        *out = sess_handle(s.clone());
    }
    sess_handle(s)
}

/// Writes all of `data` to the BIO (a custom method's write included).
fn bio_put(b: *mut BIO, data: &[u8]) -> Result<()> {
    let bio = bio_arg(b)?;
    let mut off = 0;
    while off < data.len() {
        let rest = &data[off..];
        let n = match bio.custom() {
            // SAFETY: `b` is this BIO's handle and `rest` a live buffer.
            Some(c) => match unsafe { c.write(b, rest.as_ptr().cast(), rest.len()) }? {
                (r, n) if r > 0 => n,
                _ => 0,
            },
            None => bio.write(rest)?,
        };
        if n == 0 {
            return Err(
                Error::new(ERR_LIB_PEM, ERR_R_OPERATION_FAIL).with("the BIO took no more bytes")
            );
        }
        off += n;
    }
    Ok(())
}

/// Reads one line (up to a newline, which it includes) a byte at a time, so nothing past it
/// is consumed; None at the end of the data.
fn bio_line(b: *mut BIO) -> Result<Option<String>> {
    let bio = bio_arg(b)?;
    let mut line = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        let n = match bio.custom() {
            // SAFETY: `b` is this BIO's handle and `byte` a live one-byte buffer.
            Some(c) => match unsafe { c.read(b, byte.as_mut_ptr().cast(), 1) }? {
                (r, n) if r > 0 => n,
                _ => 0,
            },
            None => match bio.read(&mut byte) {
                Ok(n) => n,
                // An empty memory BIO: the end of what there is.
                Err(e) if e.is_would_block() && bio.mem().is_some() => 0,
                Err(e) => return Err(e),
            },
        };
        if n == 0 {
            return Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()));
        }
        line.push(byte[0]);
        if byte[0] == b'\n' || line.len() > 64 * 1024 {
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

/// Gives up one reference the caller holds to a non-NULL session handle.
fn sess_release(session: *mut SSL_SESSION) {
    // SAFETY: a non-NULL SSL_SESSION* came from Arc::into_raw (sess_handle), and the caller
    // gives up one reference it holds.
    unsafe { drop(Arc::from_raw(session as *const Session)) };
}
