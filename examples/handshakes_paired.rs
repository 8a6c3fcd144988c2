//! `make bench`'s QUIC handshake figure with both stacks in one process: quinn-proto as
//! `quinn_bench handshakes` drives it (that program's code, included below), and osslquic
//! through its C API exactly as bench/quic_handshakes.c drives it (`mod ours`), taking turns
//! of SLICE seconds until each has run SECONDS. Separate processes a second apart move 20-40%
//! against each other on a shared VM; turns of 50 ms see the same host.
//!
//!   cargo run --release --example handshakes_paired -- [--certs DIR] [SECONDS] [SLICE]
//!
//! Prints a `handshakes osslquic-pair count=N secs=S hps=R` and a `handshakes quinn-proto
//! ...` line (each's handshakes over the time of its own turns). Both use the same
//! certificates, ALPN and transport settings as quinn_bench; each does one handshake untimed
//! first. This program links osslquic, so both stacks run on its global allocator (the
//! system's, with a tail on large blocks: src/alloc.rs); quinn_bench, which does not, keeps
//! the system's own for the other figures.

use std::time::{Duration, Instant};

// quinn_bench's code, for its `Quinn` handshake driver (its other figures go unused here).
#[allow(dead_code, unused_imports)]
#[path = "quinn_bench.rs"]
mod qb;

use qb::Res;

fn main() {
    let (certs, args) = qb::args();
    let num = |i: usize, d: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    if let Err(e) = paired(&certs, num(0, 2.0), num(1, 0.05)) {
        eprintln!("handshakes_paired: {e}");
        std::process::exit(1);
    }
}

/// The handshake figure with both stacks in this one process, taking
/// turns in slices of `slice` seconds until each has run `secs`: a host that slows down for
/// a while slows both alike, which separate processes a second apart do not see (on this
/// project's shared VM, figures of one program move by 20-40% between seconds). Ours is
/// driven through its C API exactly as bench/quic_handshakes.c does (`ours` below), quinn's as
/// `handshakes` does; each does one handshake untimed first. Prints one `handshakes` line for
/// each, as the single-stack runs do.
fn paired(certs: &str, secs: f64, slice: f64) -> Res<()> {
    let mut q = qb::Quinn::new(certs)?;
    let o = ours::Pair::new(certs)?;
    q.handshake()?;
    o.handshake()?;
    let (mut q_n, mut q_t, mut o_n, mut o_t) = (0u64, 0f64, 0u64, 0f64);
    let slice = Duration::from_secs_f64(slice);
    while q_t < secs || o_t < secs {
        let t = Instant::now();
        while t.elapsed() < slice {
            o.handshake()?;
            o_n += 1;
        }
        o_t += t.elapsed().as_secs_f64();
        let t = Instant::now();
        while t.elapsed() < slice {
            q.handshake()?;
            q_n += 1;
        }
        q_t += t.elapsed().as_secs_f64();
    }
    println!(
        "handshakes osslquic-pair count={o_n} secs={o_t:.3} hps={:.1}",
        o_n as f64 / o_t
    );
    println!(
        "handshakes quinn-proto count={q_n} secs={q_t:.3} hps={:.1}",
        q_n as f64 / q_t
    );
    Ok(())
}

/// osslquic through its C API (the functions C programs link; declared here as a C program's
/// headers declare them), for `handshakes-paired`: the listener and the clients on the two
/// ends of one BIO_new_bio_dgram_pair, one handshake as in bench/quic_handshakes.c.
mod ours {
    use crate::qb::{ALPN, Res};
    use std::ffi::{CString, c_char, c_int, c_long, c_uchar, c_uint, c_void};
    use std::time::{Duration, Instant};

    // The library's symbols come from its rlib, linked in by this reference.
    use osslquic as _;

    type P = *mut c_void;
    const SSL_VERIFY_PEER: c_int = 1;
    const SSL_FILETYPE_PEM: c_int = 1;
    const SSL_ERROR_WANT_READ: c_int = 2;
    const SSL_ERROR_WANT_WRITE: c_int = 3;
    const SSL_LISTENER_FLAG_NO_VALIDATE: u64 = 1 << 1;
    const SSL_ACCEPT_CONNECTION_NO_BLOCK: u64 = 1;

    unsafe extern "C" {
        fn OSSL_QUIC_client_method() -> *const c_void;
        fn OSSL_QUIC_server_method() -> *const c_void;
        fn SSL_CTX_new(m: *const c_void) -> P;
        fn SSL_CTX_free(c: P);
        fn SSL_CTX_use_certificate_chain_file(c: P, f: *const c_char) -> c_int;
        fn SSL_CTX_use_PrivateKey_file(c: P, f: *const c_char, t: c_int) -> c_int;
        fn SSL_CTX_set_alpn_protos(c: P, p: *const c_uchar, n: c_uint) -> c_int;
        fn SSL_CTX_load_verify_locations(c: P, f: *const c_char, d: *const c_char) -> c_int;
        fn SSL_CTX_set_verify(c: P, mode: c_int, cb: *const c_void);
        fn SSL_new_listener(c: P, flags: u64) -> P;
        fn SSL_new(c: P) -> P;
        fn SSL_free(s: P);
        fn SSL_set_blocking_mode(s: P, b: c_int) -> c_int;
        fn SSL_set_alpn_protos(s: P, p: *const c_uchar, n: c_uint) -> c_int;
        fn SSL_set1_host(s: P, h: *const c_char) -> c_int;
        fn SSL_set_bio(s: P, r: P, w: P);
        fn SSL_listen(s: P) -> c_int;
        fn SSL_connect(s: P) -> c_int;
        fn SSL_accept(s: P) -> c_int;
        fn SSL_get_error(s: P, r: c_int) -> c_int;
        fn SSL_handle_events(s: P) -> c_int;
        fn SSL_accept_connection(s: P, flags: u64) -> P;
        fn BIO_new_bio_dgram_pair(a: *mut P, an: usize, b: *mut P, bn: usize) -> c_int;
        fn BIO_up_ref(b: P) -> c_int;
        fn BIO_free(b: P) -> c_int;
        fn ERR_get_error() -> c_long;
    }

    /// A listener on one end of a datagram pair, and the client context for the other end.
    pub struct Pair {
        sctx: P,
        cctx: P,
        l: P,
        b: P,
        alpn: Vec<u8>,
        host: CString,
    }

    fn check(ok: bool, what: &str) -> Res<()> {
        if ok {
            return Ok(());
        }
        // SAFETY: reads this thread's error queue.
        let e = unsafe { ERR_get_error() };
        Err(format!("osslquic: {what} failed (error {e:#x})").into())
    }

    impl Pair {
        pub fn new(certs: &str) -> Res<Pair> {
            let path = |f: &str| CString::new(format!("{certs}/{f}"));
            let (chain, key, ca) = (path("chain.pem")?, path("key.pem")?, path("ca.pem")?);
            let mut alpn = vec![ALPN.len() as u8];
            alpn.extend_from_slice(ALPN);
            let (mut a, mut b): (P, P) = (std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: C API calls with valid NUL-terminated strings and buffers that outlive
            // them; every object made is kept in the Pair and freed in its Drop.
            unsafe {
                let p = Pair {
                    sctx: SSL_CTX_new(OSSL_QUIC_server_method()),
                    cctx: SSL_CTX_new(OSSL_QUIC_client_method()),
                    l: std::ptr::null_mut(),
                    b: std::ptr::null_mut(),
                    alpn,
                    host: CString::new("localhost")?,
                };
                let n = p.alpn.len() as c_uint;
                check(
                    !p.sctx.is_null()
                        && !p.cctx.is_null()
                        && SSL_CTX_use_certificate_chain_file(p.sctx, chain.as_ptr()) == 1
                        && SSL_CTX_use_PrivateKey_file(p.sctx, key.as_ptr(), SSL_FILETYPE_PEM) == 1
                        && SSL_CTX_set_alpn_protos(p.sctx, p.alpn.as_ptr(), n) == 0
                        && SSL_CTX_load_verify_locations(p.cctx, ca.as_ptr(), std::ptr::null())
                            == 1,
                    "context setup",
                )?;
                SSL_CTX_set_verify(p.cctx, SSL_VERIFY_PEER, std::ptr::null());
                let mut p = p;
                p.l = SSL_new_listener(p.sctx, SSL_LISTENER_FLAG_NO_VALIDATE);
                check(
                    !p.l.is_null()
                        && SSL_set_blocking_mode(p.l, 0) == 1
                        && BIO_new_bio_dgram_pair(&mut a, 1 << 20, &mut b, 1 << 20) == 1,
                    "listener setup",
                )?;
                p.b = b;
                SSL_set_bio(p.l, a, a);
                check(SSL_listen(p.l) == 1, "SSL_listen")?;
                Ok(p)
            }
        }

        /// One handshake: a new client until it and the accepted connection are both done,
        /// then both freed (the server's drains on the listener's timers).
        pub fn handshake(&self) -> Res<()> {
            let n = self.alpn.len() as c_uint;
            let give_up = Instant::now() + Duration::from_secs(5);
            // SAFETY: C API calls on objects this Pair owns; `c` and `s` are freed here.
            unsafe {
                let c = SSL_new(self.cctx);
                check(
                    !c.is_null()
                        && SSL_set_blocking_mode(c, 0) == 1
                        && SSL_set_alpn_protos(c, self.alpn.as_ptr(), n) == 0
                        && SSL_set1_host(c, self.host.as_ptr()) == 1,
                    "client setup",
                )?;
                BIO_up_ref(self.b); // SSL_set_bio takes one reference; the pair end stays
                SSL_set_bio(c, self.b, self.b);
                let (mut s, mut cdone, mut sdone): (P, bool, bool) =
                    (std::ptr::null_mut(), false, false);
                let wants = |s: P, r: c_int| {
                    let e = SSL_get_error(s, r);
                    e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
                };
                let r = loop {
                    if cdone && sdone {
                        break Ok(());
                    }
                    if Instant::now() > give_up {
                        break Err("osslquic: a handshake did not complete in 5 s".into());
                    }
                    if !cdone {
                        let r = SSL_connect(c);
                        cdone = r == 1;
                        if !cdone && !wants(c, r) {
                            break check(false, "SSL_connect");
                        }
                    }
                    SSL_handle_events(self.l);
                    if s.is_null() {
                        s = SSL_accept_connection(self.l, SSL_ACCEPT_CONNECTION_NO_BLOCK);
                    }
                    if !s.is_null() && !sdone {
                        let r = SSL_accept(s);
                        sdone = r == 1;
                        if !sdone && !wants(s, r) {
                            break check(false, "SSL_accept");
                        }
                    }
                };
                SSL_free(c);
                SSL_handle_events(self.l);
                SSL_free(s);
                r
            }
        }
    }

    impl Drop for Pair {
        fn drop(&mut self) {
            // SAFETY: frees what `new` made (NULL is a no-op for each).
            unsafe {
                SSL_free(self.l);
                BIO_free(self.b);
                SSL_CTX_free(self.sctx);
                SSL_CTX_free(self.cctx);
            }
        }
    }
}
