//! The SSL BIO's C side: BIO_new_ssl, BIO_new_ssl_connect, BIO_new_buffer_ssl_connect,
//! BIO_ssl_shutdown and the BIO_ctrl commands of a BIO_f_ssl BIO. Glues a `BIO *`
//! (`bio::filter`, which knows only the `StreamFilter` trait) to an `SSL *` (`ssl::filter`
//! implements the trait), following bio_ssl.c's ownership rules: with BIO_CLOSE the BIO
//! frees the SSL it was given; the SSL's read BIO follows the SSL BIO in its chain.

use std::ffi::{c_int, c_long};
use std::sync::Arc;

use super::{
    BIO, bio_arc, bio_into_handle, ctx_arc, ctx_arg, ffi_entry, ref_arg, ssl_arg, ssl_handle,
    ssl_release,
};
use super::{SSL, SSL_CTX};
use crate::bio::conn::METHOD_CONNECT;
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
pub(crate) fn set_ssl(bio: &Bio, ssl: *mut SSL, close: bool) -> Result<c_long> {
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
    Bio::push_chain(&b, Some(&con))?;
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
        Bio::push_chain(&buf, Some(&s))?;
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
