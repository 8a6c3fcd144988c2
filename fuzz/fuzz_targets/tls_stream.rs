//! A TLS byte stream into a TLS server and a TLS client, each an `SSL` on memory BIOs, driven
//! through the exported C functions. The two run a genuine handshake; the input is the wire
//! between them: it passes, drops, splits, edits and replays their real bytes or writes raw
//! bytes, while the applications read, write, peek and shut down.
#![no_main]

use std::ffi::{CString, c_int, c_void};
use std::ptr::null_mut;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use osslquic::consts::SSL_VERIFY_PEER;
use osslquic::ffi::bio::{BIO_ctrl_pending, BIO_new, BIO_read_ex, BIO_s_mem, BIO_write_ex};
use osslquic::ffi::err::ERR_clear_error;
use osslquic::ffi::ssl::*;
use osslquic::ffi::{BIO, SSL, SSL_CTX};
use osslquic_fuzz::{
    CtxPair, Reader, certs, remove_cert_files, server_ctx, tolerate_known_upstream_panics,
};

const MAX_OPS: usize = 300;
/// Bytes of genuine traffic kept per direction for replays.
const MAX_SEEN: usize = 64 << 10;

fn ctxs() -> &'static CtxPair {
    static CTXS: OnceLock<CtxPair> = OnceLock::new();
    CTXS.get_or_init(|| {
        let ca = CString::new(certs().ca.clone()).unwrap();
        let server = server_ctx(TLS_server_method());
        let client = SSL_CTX_new(TLS_client_method());
        assert_eq!(
            SSL_CTX_load_verify_locations(client, ca.as_ptr(), std::ptr::null()),
            1
        );
        SSL_CTX_set_verify(client, SSL_VERIFY_PEER, None);
        remove_cert_files();
        CtxPair { server, client }
    })
}

/// One side: its SSL, the memory BIO it reads from and the one it writes to (both owned by
/// the SSL), the genuine bytes it wrote that are not delivered yet, and all it ever wrote.
struct Side {
    ssl: *mut SSL,
    rbio: *mut BIO,
    wbio: *mut BIO,
    out: Vec<u8>,
    seen: Vec<u8>,
}

impl Side {
    fn new(ctx: *mut SSL_CTX, server: bool) -> Side {
        let ssl = SSL_new(ctx);
        assert!(!ssl.is_null());
        let rbio = BIO_new(BIO_s_mem());
        let wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl, rbio, wbio);
        if server {
            SSL_set_accept_state(ssl);
        } else {
            let host = c"localhost";
            SSL_set1_host(ssl, host.as_ptr());
            SSL_set_connect_state(ssl);
        }
        Side {
            ssl,
            rbio,
            wbio,
            out: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Moves what the SSL wrote out of its write BIO.
    fn collect(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            let mut n = 0;
            let ok = BIO_read_ex(self.wbio, buf.as_mut_ptr().cast(), buf.len(), &mut n);
            if ok != 1 || n == 0 {
                break;
            }
            self.out.extend_from_slice(&buf[..n]);
            if self.seen.len() < MAX_SEEN {
                self.seen.extend_from_slice(&buf[..n]);
            }
        }
    }

    fn feed(&mut self, d: &[u8]) {
        if d.is_empty() {
            return;
        }
        let mut n = 0;
        BIO_write_ex(self.rbio, d.as_ptr().cast(), d.len(), &mut n);
    }

    /// Handshakes until done, then reads what arrived.
    fn drive(&mut self) {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        for _ in 0..8 {
            if SSL_read_ex(self.ssl, buf.as_mut_ptr().cast(), buf.len(), &mut n) != 1 {
                break;
            }
        }
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        SSL_free(self.ssl);
    }
}

fn op(r: &mut Reader, sides: &mut [Side; 2]) {
    let code = r.u8() % 10;
    let to = usize::from(r.bool());
    let (a, b) = sides.split_at_mut(1);
    let (dst, src) = if to == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    };
    match code {
        // Pass the next n genuine bytes (0: all).
        0 => {
            let n = usize::from(r.u16());
            let n = if n == 0 {
                src.out.len()
            } else {
                n.min(src.out.len())
            };
            let d: Vec<u8> = src.out.drain(..n).collect();
            dst.feed(&d);
        }
        // Lose the next n genuine bytes.
        1 => {
            let n = usize::from(r.u16()).min(src.out.len());
            src.out.drain(..n);
        }
        // The next n genuine bytes, edited.
        2 => {
            let n = usize::from(r.u16()).min(src.out.len());
            let mut d: Vec<u8> = src.out.drain(..n).collect();
            for _ in 0..r.u8() % 4 + 1 {
                let pos = usize::from(r.u16());
                let v = r.u8();
                match r.u8() % 4 {
                    0 if !d.is_empty() => {
                        let i = pos % d.len();
                        d[i] ^= v;
                    }
                    1 if !d.is_empty() => {
                        let i = pos % d.len();
                        d[i] = v;
                    }
                    2 => d.truncate(pos % (d.len() + 1)),
                    _ => d.extend_from_slice(r.bytes()),
                }
            }
            dst.feed(&d);
        }
        // Raw bytes.
        3 => dst.feed(r.long_bytes()),
        // A replay of genuine bytes sent before, from an offset.
        4 => {
            let off = usize::from(r.u16());
            let n = usize::from(r.u16());
            if !src.seen.is_empty() {
                let off = off % src.seen.len();
                let end = (off + n).min(src.seen.len());
                let d = src.seen[off..end].to_vec();
                dst.feed(&d);
            }
        }
        // The application writes.
        5 => {
            let d = r.long_bytes();
            let mut n = 0;
            SSL_write_ex(dst.ssl, d.as_ptr().cast(), d.len(), &mut n);
        }
        // The application peeks and reads.
        6 => {
            let mut buf = vec![0u8; usize::from(r.u16()) + 1];
            let mut n = 0;
            SSL_peek_ex(dst.ssl, buf.as_mut_ptr().cast(), buf.len(), &mut n);
            SSL_read_ex(dst.ssl, buf.as_mut_ptr().cast(), buf.len(), &mut n);
            SSL_pending(dst.ssl);
            SSL_has_pending(dst.ssl);
        }
        7 => {
            SSL_shutdown(dst.ssl);
        }
        // What the application may ask about the session.
        8 => {
            SSL_do_handshake(dst.ssl);
            SSL_get_version(dst.ssl);
            SSL_get_verify_result(dst.ssl);
            SSL_get_servername(dst.ssl, 0);
            SSL_session_reused(dst.ssl);
            let (mut p, mut l) = (std::ptr::null(), 0);
            SSL_get0_alpn_selected(dst.ssl, &mut p, &mut l);
            let ret: c_int = r.u8().into();
            SSL_get_error(dst.ssl, ret - 1);
        }
        // A zero-length and a NULL-buffer read and write.
        _ => {
            let mut n = 0;
            SSL_read_ex(dst.ssl, null_mut::<c_void>(), 0, &mut n);
            SSL_write_ex(dst.ssl, std::ptr::null(), 0, &mut n);
            BIO_ctrl_pending(dst.rbio);
        }
    }
}

fuzz_target!(init: tolerate_known_upstream_panics(), |data: &[u8]| {
    let c = ctxs();
    let mut sides = [Side::new(c.server, true), Side::new(c.client, false)];
    let mut r = Reader::new(data);
    sides[1].drive();
    sides[1].collect();
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        op(&mut r, &mut sides);
        for s in sides.iter_mut() {
            s.drive();
            s.collect();
        }
    }
    drop(sides);
    ERR_clear_error();
});
