//! The SSL BIO's C side: BIO_new_ssl, BIO_new_ssl_connect, BIO_new_buffer_ssl_connect,
//! BIO_ssl_shutdown and the BIO_ctrl commands of a BIO_f_ssl BIO. Glues a `BIO *`
//! (`bio::filter`, which knows only the `StreamFilter` trait) to an `SSL *` (`ssl::filter`
//! implements the trait), following bio_ssl.c's ownership rules: with BIO_CLOSE the BIO
//! frees the SSL it was given; the SSL's read BIO follows the SSL BIO in its chain.

use std::ffi::{c_int, c_long, c_void};
use std::sync::Arc;

use super::{
    BIO, bio_arc, bio_into_handle, ctx_arc, ctx_arg, ffi_entry, put, ref_arg, ssl_arg, ssl_handle,
    ssl_release,
};
use super::{SSL, SSL_CTX};
use crate::bio::conn::METHOD_CONNECT;
use crate::bio::consts::*;
use crate::bio::filter::{Attached, METHOD_SSL, StreamFilter};
use crate::bio::{Bio, METHOD_BUFFER};
use crate::error::*;
use crate::ssl::Ssl;

/// A new reference to the SSL behind a handle.
fn ssl_ref(s: *mut SSL) -> Result<Arc<Ssl>> {
    ref_arg(s as *const Ssl, "ssl")?;
    // SAFETY: a non-NULL SSL* came from Arc::into_raw; the caller holds a reference.
    unsafe {
        Arc::increment_strong_count(s as *const Ssl);
        Ok(Arc::from_raw(s as *const Ssl))
    }
}

/// BIO_set_ssl: attaches `ssl` to the SSL BIO `bio` (detaching, and with its close flag
/// freeing, the one it had). The BIO keeps a reference of its own; with `close` the
/// application's reference is released when the BIO lets the SSL go. The SSL's read BIO, if
/// any, becomes the next BIO of the chain (the rest of the chain after it), with a
/// reference the chain holds, as OpenSSL's BIO_set_next after BIO_up_ref (BIO_free_all
/// releases it).
fn set_ssl(bio: &Bio, ssl: *mut SSL, close: bool) -> Result<c_long> {
    let f = bio
        .filter()
        .ok_or_else(|| Error::internal("not an SSL BIO"))?;
    let s = ssl_ref(ssl)?;
    let this = bio_arc(bio.handle())?;
    let handle = Arc::as_ptr(&s) as usize;
    let rbio = s.rbio();
    let engine: Arc<dyn StreamFilter> = s;
    f.attach(
        Attached {
            engine,
            handle,
            release: Box::new(move || {
                // SAFETY: the application handed this reference over with BIO_CLOSE (or set
                // the close flag later); the BIO's own reference keeps the SSL alive until
                // the attachment is dropped.
                unsafe { Arc::decrement_strong_count(handle as *const Ssl) }
            }),
        },
        close,
    );
    if let Some(r) = rbio {
        let old_next = this.next_bio();
        std::mem::forget(r.clone());
        if let Some(n) = old_next.filter(|n| !Arc::ptr_eq(n, &r)) {
            Bio::push(&r, &n);
        }
        Bio::set_next(&this, Some(&r));
    }
    Ok(1)
}

/// BIO_ctrl on a BIO_f_ssl BIO, following bio_ssl.c `ssl_ctrl`: without an SSL everything
/// but BIO_C_SET_SSL returns 0; commands it does not handle go to the SSL's read BIO.
pub(super) fn filter_ctrl(
    bio: &Bio,
    cmd: c_int,
    larg: c_long,
    parg: *mut c_void,
) -> Result<c_long> {
    let f = bio
        .filter()
        .ok_or_else(|| Error::internal("not an SSL BIO"))?;
    if cmd == BIO_C_SET_SSL {
        return set_ssl(bio, parg as *mut SSL, larg != 0);
    }
    let Some(a) = f.attached() else {
        return Ok(0);
    };
    let e = &a.engine;
    let (rbio, wbio) = e.filter_bios();
    let pass = |b: &Option<Arc<Bio>>| {
        b.as_ref()
            .map_or(0, |b| super::bio::BIO_ctrl(b.handle(), cmd, larg, parg))
    };
    Ok(match cmd {
        BIO_CTRL_INFO | BIO_CTRL_DUP | BIO_CTRL_SET_CALLBACK => 0,
        BIO_CTRL_RESET => {
            return Err(Error::unsupported(
                "BIO_reset on an SSL BIO (SSL_clear) is not supported: make a new SSL",
            ));
        }
        BIO_C_SET_SSL_RENEGOTIATE_BYTES
        | BIO_C_SET_SSL_RENEGOTIATE_TIMEOUT
        | BIO_C_GET_SSL_NUM_RENEGOTIATES => {
            return Err(Error::unsupported(
                "renegotiation is not supported (rustls does not renegotiate)",
            ));
        }
        BIO_C_SSL_MODE => {
            e.filter_set_client(larg != 0);
            1
        }
        BIO_C_GET_SSL if parg.is_null() => 0,
        BIO_C_GET_SSL => {
            put(parg as *mut *mut SSL, a.handle as *mut SSL);
            1
        }
        BIO_CTRL_GET_CLOSE => f.get_close() as c_long,
        BIO_CTRL_SET_CLOSE => {
            f.set_close(larg != 0);
            1
        }
        BIO_CTRL_WPENDING => pass(&wbio),
        BIO_CTRL_PENDING => match e.filter_pending() {
            0 => pass(&rbio),
            n => n as c_long,
        },
        BIO_CTRL_FLUSH => {
            bio.clear_retry();
            let r = pass(&wbio);
            if let Some(w) = &wbio {
                bio.set_flags(w.flags() & (BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY));
                bio.set_retry_reason(w.retry_reason());
            }
            r
        }
        BIO_CTRL_PUSH => {
            bio.filter_pushed();
            1
        }
        BIO_CTRL_POP => {
            if parg == bio.handle().cast() {
                e.filter_set_bios(None);
            }
            1
        }
        BIO_C_DO_STATE_MACHINE => match f.handshake(bio) {
            Ok(()) => 1,
            Err(e) if e.is_would_block() => -1,
            Err(e) => {
                e.queue("BIO_do_handshake");
                -1
            }
        },
        BIO_CTRL_GET_RPOLL_DESCRIPTOR | BIO_CTRL_GET_WPOLL_DESCRIPTOR => {
            let d = if cmd == BIO_CTRL_GET_RPOLL_DESCRIPTOR {
                bio.rpoll()
            } else {
                bio.wpoll()
            };
            match d {
                Ok(d) => {
                    put(parg as *mut crate::bio::msg::BIO_POLL_DESCRIPTOR, d);
                    1
                }
                Err(_) => 0,
            }
        }
        _ => pass(&rbio),
    })
}

/// An SSL BIO over a new SSL of `ctx`, in client (`client` non-zero) or server mode; the
/// BIO owns the SSL (BIO_CLOSE). Push the network BIO after it (BIO_push), or use
/// BIO_new_ssl_connect. NULL and an error on failure. See BIO_new_ssl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_ssl(ctx: *mut SSL_CTX, client: c_int) -> *mut BIO {
    ffi_entry!(BIO_new_ssl, {
        Ok(bio_into_handle(new_ssl_bio(ctx, client != 0)?))
    })
}

/// An SSL BIO owning (BIO_CLOSE) a new SSL of `ctx` in the given role.
fn new_ssl_bio(ctx: *mut SSL_CTX, client: bool) -> Result<Arc<Bio>> {
    let b = Bio::new(&METHOD_SSL);
    let s = ssl_handle(Ssl::new_client(ctx_arc(ctx)?)?);
    // SSL_set_connect_state / SSL_set_accept_state.
    ssl_arg(s)?.set_tls_role(!client, false);
    if let Err(e) = set_ssl(&b, s, true) {
        ssl_release(s);
        return Err(e);
    }
    Ok(b)
}

/// A client SSL BIO chained onto a new connect BIO (which the chain owns): set the peer
/// with BIO_set_conn_hostname(b, "host:port") on the returned BIO (commands the SSL BIO
/// does not know reach the connect BIO), then BIO_do_connect/BIO_do_handshake or just
/// read and write. Free with BIO_free_all. For a QUIC context the connect BIO is a datagram
/// one (BIO_set_sock_type(SOCK_DGRAM)): it connects a UDP socket on first use and the QUIC
/// connection runs over it. See BIO_new_ssl_connect(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_ssl_connect(ctx: *mut SSL_CTX) -> *mut BIO {
    ffi_entry!(BIO_new_ssl_connect, {
        Ok(bio_into_handle(new_ssl_connect(ctx)?))
    })
}

/// A client SSL BIO with a new connect BIO chained after it.
fn new_ssl_connect(ctx: *mut SSL_CTX) -> Result<Arc<Bio>> {
    let quic = !ctx_arg(ctx)?.method.is_tls();
    let b = new_ssl_bio(ctx, true)?;
    // The chain owns the connect BIO's one reference (BIO_free_all releases it). For a
    // QUIC context it makes a connected UDP socket, as OpenSSL's does.
    let con = Bio::new(&METHOD_CONNECT);
    if quic {
        con.conn()
            .expect("connect kind")
            .set_sock_type(libc::SOCK_DGRAM)?;
    }
    Bio::push_chain(&b, Some(&con));
    std::mem::forget(con);
    Ok(b)
}

/// BIO_new_ssl_connect behind a BIO_f_buffer (here a pass-through that adds BIO_gets).
/// See BIO_new_buffer_ssl_connect(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_buffer_ssl_connect(ctx: *mut SSL_CTX) -> *mut BIO {
    ffi_entry!(BIO_new_buffer_ssl_connect, {
        let s = new_ssl_connect(ctx)?;
        let buf = Bio::new(&METHOD_BUFFER);
        // The chain holds the SSL BIO's one reference, as BIO_push of a new BIO leaves it.
        Bio::push_chain(&buf, Some(&s));
        std::mem::forget(s);
        Ok(bio_into_handle(buf))
    })
}

/// One SSL_shutdown step (close_notify) on the SSL of every SSL BIO in `b`'s chain. NULL is
/// a no-op. See BIO_ssl_shutdown(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ssl_shutdown(b: *mut BIO) {
    if b.is_null() {
        return;
    }
    ffi_entry!(BIO_ssl_shutdown, {
        let head = bio_arc(b)?;
        let mut cur = Some(head.clone());
        while let Some(x) = cur {
            if let Some(a) = x.filter().and_then(|f| f.attached()) {
                a.engine.filter_shutdown();
            }
            cur = x.next_bio().filter(|n| !Arc::ptr_eq(n, &head));
        }
        Ok(())
    })
}
