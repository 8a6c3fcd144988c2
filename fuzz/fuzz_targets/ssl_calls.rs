//! SSL API call sequences on QUIC objects through the exported functions: listeners,
//! connections (client and accepted), streams and domains, all non-blocking, over a datagram
//! pair or loopback UDP sockets, so no call waits. Calls go to the right kind, the wrong kind
//! or NULL, after a parent was freed, and objects are freed in any order. A slot holds one
//! reference and is freed once; borrowed pointers (get0) are used only while their owner's
//! slot is still held, so whatever goes wrong is the library's.
#![no_main]

use std::ffi::{c_int, c_uchar, c_uint};
use std::net::UdpSocket;
use std::os::fd::IntoRawFd;
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use osslquic::bio::msg::BIO_ADDR;
use osslquic::ffi::SSL;
use osslquic::ffi::addr::*;
use osslquic::ffi::bio::{BIO_free, BIO_new_bio_dgram_pair};
use osslquic::ffi::err::ERR_clear_error;
use osslquic::ffi::ssl::*;
use osslquic_fuzz::{CtxPair, Reader, remove_cert_files, run_ops, server_ctx};

const SLOTS: usize = 10;
const MAX_OPS: usize = 200;
const ALPN: &[u8] = b"\x04fuzz";

fn ctxs() -> &'static CtxPair {
    static CTXS: OnceLock<CtxPair> = OnceLock::new();
    CTXS.get_or_init(|| {
        let server = server_ctx(OSSL_QUIC_server_method());
        assert_eq!(
            SSL_CTX_set_alpn_protos(server, ALPN.as_ptr(), ALPN.len() as c_uint),
            0
        );
        // The client does not verify: the certificate is not what is fuzzed here.
        let client = SSL_CTX_new(OSSL_QUIC_client_method());
        assert_eq!(
            SSL_CTX_set_alpn_protos(client, ALPN.as_ptr(), ALPN.len() as c_uint),
            0
        );
        remove_cert_files();
        CtxPair { server, client }
    })
}

struct Run {
    ssl: [*mut SSL; SLOTS],
    /// The datagram pair's two ends, until an object takes each.
    pair: [*mut osslquic::ffi::BIO; 2],
    /// Loopback sockets the objects use (SSL_set_fd does not close them): fd and address.
    socks: Vec<(c_int, *mut BIO_ADDR)>,
}

impl Run {
    fn new() -> Run {
        let (mut a, mut b) = (null_mut(), null_mut());
        BIO_new_bio_dgram_pair(&mut a, 1 << 20, &mut b, 1 << 20);
        Run {
            ssl: [null_mut(); SLOTS],
            pair: [a, b],
            socks: Vec::new(),
        }
    }

    fn get(&self, i: u8) -> *mut SSL {
        match usize::from(i) % (SLOTS + 1) {
            SLOTS => null_mut(),
            i => self.ssl[i],
        }
    }

    /// Puts a new reference in a slot (freeing what was there), non-blocking.
    fn put(&mut self, i: u8, s: *mut SSL) {
        if s.is_null() {
            return;
        }
        SSL_set_blocking_mode(s, 0);
        let slot = &mut self.ssl[usize::from(i) % SLOTS];
        SSL_free(*slot);
        *slot = s;
    }

    /// A non-blocking UDP socket on 127.0.0.1 and its address.
    fn socket(&mut self) -> Option<(c_int, *mut BIO_ADDR)> {
        let s = UdpSocket::bind("127.0.0.1:0").ok()?;
        s.set_nonblocking(true).ok()?;
        let port = s.local_addr().ok()?.port();
        let fd = s.into_raw_fd();
        let a = BIO_ADDR_new();
        let lo = [127u8, 0, 0, 1];
        BIO_ADDR_rawmake(a, libc::AF_INET, lo.as_ptr().cast(), 4, port);
        self.socks.push((fd, a));
        Some((fd, a))
    }

    /// Gives an object its network: the datagram pair's end `end`, or a loopback socket
    /// (a client aimed at the last socket made before, the listener's if any).
    fn attach(&mut self, s: *mut SSL, end: usize, use_pair: bool) {
        if use_pair && !self.pair[end].is_null() {
            let b = std::mem::replace(&mut self.pair[end], null_mut());
            SSL_set_bio(s, b, b);
            return;
        }
        let peer = self.socks.last().map(|&(_, a)| a);
        if let Some((fd, _)) = self.socket() {
            SSL_set_fd(s, fd);
        }
        if let Some(p) = peer {
            SSL_set1_initial_peer_addr(s, p);
        }
    }

    fn op(&mut self, r: &mut Reader) {
        let c = ctxs();
        match r.u8() % 16 {
            0 => {
                let slot = r.u8();
                let flags = u64::from(r.u8() & 3);
                let l = SSL_new_listener(c.server, flags);
                let pair = r.bool();
                self.attach(l, 0, pair);
                if r.bool() {
                    SSL_listen(l);
                }
                self.put(slot, l);
            }
            1 => {
                let slot = r.u8();
                let s = SSL_new(c.client);
                let pair = r.bool();
                self.attach(s, 1, pair);
                SSL_set1_host(s, c"localhost".as_ptr());
                self.put(slot, s);
            }
            2 => {
                let slot = r.u8();
                // No SSL_DOMAIN_FLAG_THREAD_ASSISTED: the run stays on this thread.
                let d = SSL_new_domain(c.server, u64::from(r.u8()) & !4);
                self.put(slot, d);
            }
            // Children of a domain or listener.
            3 => {
                let parent = self.get(r.u8());
                let slot = r.u8();
                let flags = u64::from(r.u8());
                let child = match r.u8() % 3 {
                    0 => SSL_new_listener_from(parent, flags),
                    1 => SSL_new_from_listener(parent, flags),
                    _ => SSL_new_stream(parent, flags & 0xf),
                };
                self.put(slot, child);
            }
            4 => {
                let s = self.get(r.u8());
                match r.u8() % 5 {
                    0 => SSL_listen(s),
                    1 => SSL_connect(s),
                    2 => SSL_do_handshake(s),
                    3 => SSL_accept(s),
                    _ => SSL_handle_events(s),
                };
            }
            // The events of every object, as an event loop does (several rounds).
            5 => {
                for _ in 0..=r.u8() % 8 {
                    for &s in &self.ssl {
                        if !s.is_null() {
                            SSL_handle_events(s);
                        }
                    }
                }
            }
            6 => {
                let l = self.get(r.u8());
                let slot = r.u8();
                // SSL_ACCEPT_CONNECTION_NO_BLOCK or not: the listener is non-blocking anyway.
                let conn = SSL_accept_connection(l, u64::from(r.u8() & 1));
                self.put(slot, conn);
            }
            7 => {
                let s = self.get(r.u8());
                let slot = r.u8();
                let st = SSL_accept_stream(s, u64::from(r.u8() & 1));
                self.put(slot, st);
            }
            8 => {
                let s = self.get(r.u8());
                let d = r.long_bytes();
                let mut n = 0;
                match r.u8() % 3 {
                    0 => SSL_write_ex(s, d.as_ptr().cast(), d.len(), &mut n),
                    1 => SSL_write_ex2(s, d.as_ptr().cast(), d.len(), u64::from(r.u8()), &mut n),
                    _ => SSL_write(s, d.as_ptr().cast(), d.len() as c_int),
                };
            }
            9 => {
                let s = self.get(r.u8());
                let mut buf = vec![0u8; usize::from(r.u16())];
                let mut n = 0;
                let ret = if r.bool() {
                    SSL_peek_ex(s, buf.as_mut_ptr().cast(), buf.len(), &mut n)
                } else {
                    SSL_read_ex(s, buf.as_mut_ptr().cast(), buf.len(), &mut n)
                };
                SSL_get_error(s, ret);
            }
            10 => {
                let s = self.get(r.u8());
                match r.u8() % 4 {
                    0 => {
                        SSL_stream_conclude(s, 0);
                    }
                    1 => {
                        let a = SSL_STREAM_RESET_ARGS {
                            quic_error_code: r.u64(),
                        };
                        let p = if r.bool() { &a as *const _ } else { null() };
                        SSL_stream_reset(s, p, size_of::<SSL_STREAM_RESET_ARGS>());
                    }
                    2 => {
                        SSL_shutdown(s);
                    }
                    _ => {
                        let reason = c"fuzz";
                        let a = SSL_SHUTDOWN_EX_ARGS {
                            quic_error_code: r.u64(),
                            quic_reason: if r.bool() { reason.as_ptr() } else { null() },
                        };
                        let p = if r.bool() { &a as *const _ } else { null() };
                        SSL_shutdown_ex(s, r.u64() & 0x7, p, size_of::<SSL_SHUTDOWN_EX_ARGS>());
                    }
                }
            }
            11 => {
                let i = usize::from(r.u8()) % SLOTS;
                SSL_free(self.ssl[i]);
                self.ssl[i] = null_mut();
            }
            12 => {
                let s = self.get(r.u8());
                if SSL_up_ref(s) == 1 {
                    let slot = r.u8();
                    self.put(slot, s);
                }
            }
            13 => self.query(r),
            14 => {
                let s = self.get(r.u8());
                match r.u8() % 4 {
                    0 => {
                        SSL_set_default_stream_mode(s, u32::from(r.u8()));
                    }
                    1 => {
                        SSL_set_incoming_stream_policy(s, c_int::from(r.u8()), r.u64());
                    }
                    2 => {
                        let p = r.bytes();
                        SSL_set_alpn_protos(s, p.as_ptr(), p.len() as c_uint);
                    }
                    _ => {
                        let a = self.socks.first().map(|&(_, a)| a).unwrap_or(null_mut());
                        SSL_set1_initial_peer_addr(s, a);
                    }
                }
            }
            _ => self.poll(r),
        }
    }

    /// Questions any object may be asked (most fail cleanly on the wrong kind). Borrowed
    /// answers are used at once, while their owner is held.
    fn query(&mut self, r: &mut Reader) {
        let s = self.get(r.u8());
        match r.u8() % 6 {
            0 => {
                SSL_is_listener(s);
                SSL_is_connection(s);
                SSL_is_domain(s);
                SSL_is_server(s);
                SSL_get_version(s);
                SSL_get0_connection(s);
                SSL_get0_listener(s);
                SSL_get0_domain(s);
                SSL_get_accept_connection_queue_len(s);
                SSL_get_accept_stream_queue_len(s);
            }
            1 => {
                SSL_get_stream_id(s);
                SSL_get_stream_type(s);
                SSL_is_stream_local(s);
                SSL_get_stream_read_state(s);
                SSL_get_stream_write_state(s);
                let mut code = 0u64;
                SSL_get_stream_read_error_code(s, &mut code);
                SSL_get_stream_write_error_code(s, &mut code);
            }
            2 => {
                let mut info = SSL_CONN_CLOSE_INFO {
                    error_code: 0,
                    frame_type: 0,
                    reason: null(),
                    reason_len: 0,
                    flags: 0,
                };
                let len = if r.bool() {
                    size_of::<SSL_CONN_CLOSE_INFO>()
                } else {
                    8
                };
                SSL_get_conn_close_info(s, &mut info, len);
            }
            3 => {
                let mut tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                };
                let mut inf = 0;
                SSL_get_event_timeout(s, &mut tv, &mut inf);
                SSL_net_read_desired(s);
                SSL_net_write_desired(s);
                let mut d = osslquic::bio::msg::BIO_POLL_DESCRIPTOR::none();
                SSL_get_rpoll_descriptor(s, &mut d);
                SSL_get_wpoll_descriptor(s, &mut d);
                SSL_get_blocking_mode(s);
            }
            4 => {
                let a = BIO_ADDR_new();
                SSL_get_peer_addr(s, a);
                BIO_ADDR_free(a);
                SSL_get_rbio(s);
                SSL_get_wbio(s);
                SSL_get_fd(s);
                SSL_pending(s);
                SSL_has_pending(s);
                let mut flags = 0u64;
                SSL_get_domain_flags(s, &mut flags);
            }
            _ => {
                let (mut p, mut l): (*const c_uchar, c_uint) = (null(), 0);
                SSL_get0_alpn_selected(s, &mut p, &mut l);
                SSL_get_verify_result(s);
                SSL_session_reused(s);
                SSL_get_SSL_CTX(s);
                OSSLQUIC_SSL_get_conn_ticks(s);
            }
        }
    }

    /// SSL_poll over some slots with a zero timeout (never waits).
    fn poll(&mut self, r: &mut Reader) {
        let n = usize::from(r.u8() % 6);
        let mut items: Vec<SSL_POLL_ITEM> = (0..n)
            .map(|_| SSL_POLL_ITEM {
                desc: SSL_as_poll_descriptor(self.get(r.u8())),
                events: r.u64(),
                revents: 0,
            })
            .collect();
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let mut count = 0;
        let base = if items.is_empty() {
            null_mut()
        } else {
            items.as_mut_ptr()
        };
        SSL_poll(
            base,
            n,
            size_of::<SSL_POLL_ITEM>(),
            &tv,
            u64::from(r.u8() & 1),
            &mut count,
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // Free in slot order (the input decided which objects are where).
        for s in self.ssl.iter_mut() {
            SSL_free(*s);
            *s = null_mut();
        }
        for b in self.pair {
            BIO_free(b);
        }
        for &(fd, a) in &self.socks {
            BIO_ADDR_free(a);
            // SAFETY: an fd this run made; SSL_set_fd's BIO does not close it and every
            // object using it is gone.
            unsafe { libc::close(fd) };
        }
        ERR_clear_error();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut run = Run::new();
    run_ops(data, MAX_OPS, |r| run.op(r));
});
