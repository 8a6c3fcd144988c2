//! BIO API call sequences through the exported functions: memory BIOs, datagram pairs, BIO
//! pairs, a datagram socket on 127.0.0.1, buffering filters, the batch calls and the
//! zero-copy calls, with arbitrary ctrl commands and arguments. Every object is the
//! harness's: a slot holds one reference, freed once; a pointer passed is valid or NULL (a
//! command's `parg` is of the type the command reads, or NULL; NULL, wrong kinds, odd sizes
//! and strides, and any order of free are fair), so whatever goes wrong is the library's.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_long, c_void};
use std::net::UdpSocket;
use std::os::fd::IntoRawFd;
use std::ptr::{null, null_mut};

use libfuzzer_sys::fuzz_target;
use osslquic::bio::consts::*;
use osslquic::bio::msg::{BIO_ADDR, BIO_MSG, BIO_POLL_DESCRIPTOR};
use osslquic::ffi::BIO;
use osslquic::ffi::addr::*;
use osslquic::ffi::bio::*;
use osslquic::ffi::err::ERR_clear_error;
use osslquic_fuzz::{Reader, run_ops};

const SLOTS: usize = 8;
const MAX_OPS: usize = 300;

/// Every ctrl command the library parses, and a few it does not.
const CMDS: &[c_int] = &[
    BIO_CTRL_RESET,
    BIO_CTRL_EOF,
    BIO_CTRL_INFO,
    BIO_CTRL_SET_CLOSE,
    BIO_CTRL_GET_CLOSE,
    BIO_CTRL_PENDING,
    BIO_CTRL_WPENDING,
    BIO_CTRL_FLUSH,
    BIO_CTRL_DUP,
    BIO_CTRL_PUSH,
    BIO_CTRL_POP,
    BIO_CTRL_GET_RPOLL_DESCRIPTOR,
    BIO_CTRL_GET_WPOLL_DESCRIPTOR,
    BIO_C_SET_NBIO,
    BIO_C_SET_FD,
    BIO_C_GET_FD,
    BIO_C_SET_BUF_MEM_EOF_RETURN,
    BIO_C_SET_WRITE_BUF_SIZE,
    BIO_C_GET_WRITE_BUF_SIZE,
    BIO_C_GET_WRITE_GUARANTEE,
    BIO_C_GET_READ_REQUEST,
    BIO_C_RESET_READ_REQUEST,
    BIO_C_SHUTDOWN_WR,
    BIO_C_MAKE_BIO_PAIR,
    BIO_C_DESTROY_BIO_PAIR,
    BIO_C_SET_BUFF_SIZE,
    BIO_C_GET_BUFF_NUM_LINES,
    BIO_CTRL_DGRAM_CONNECT,
    BIO_CTRL_DGRAM_SET_PEER,
    BIO_CTRL_DGRAM_SET_CONNECTED,
    BIO_CTRL_DGRAM_GET_PEER,
    BIO_CTRL_DGRAM_DETECT_PEER_ADDR,
    BIO_CTRL_DGRAM_GET_MTU,
    BIO_CTRL_DGRAM_SET_MTU,
    BIO_CTRL_DGRAM_QUERY_MTU,
    BIO_CTRL_DGRAM_MTU_EXCEEDED,
    BIO_CTRL_DGRAM_GET_FALLBACK_MTU,
    BIO_CTRL_DGRAM_GET_MTU_OVERHEAD,
    BIO_CTRL_DGRAM_SET_DONT_FRAG,
    BIO_CTRL_DGRAM_MTU_DISCOVER,
    BIO_CTRL_DGRAM_SET_RECV_TIMEOUT,
    BIO_CTRL_DGRAM_SET_SEND_TIMEOUT,
    BIO_CTRL_DGRAM_GET_RECV_TIMEOUT,
    BIO_CTRL_DGRAM_GET_SEND_TIMEOUT,
    BIO_CTRL_DGRAM_GET_RECV_TIMER_EXP,
    BIO_CTRL_DGRAM_GET_SEND_TIMER_EXP,
    BIO_CTRL_DGRAM_GET_LOCAL_ADDR_CAP,
    BIO_CTRL_DGRAM_GET_LOCAL_ADDR_ENABLE,
    BIO_CTRL_DGRAM_SET_LOCAL_ADDR_ENABLE,
    BIO_CTRL_DGRAM_GET_CAPS,
    BIO_CTRL_DGRAM_SET_CAPS,
    BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS,
    BIO_CTRL_DGRAM_GET_NO_TRUNC,
    BIO_CTRL_DGRAM_SET_NO_TRUNC,
    BIO_CTRL_DGRAM_SET0_LOCAL_ADDR,
    BIO_C_GET_SOCK_TYPE,
    BIO_C_GET_DGRAM_BIO,
    BIO_C_SSL_MODE,
    BIO_C_GET_SSL,
    BIO_C_SET_SSL,
    BIO_C_GET_CONNECT,
    BIO_C_GET_ACCEPT,
    0,
    9999,
    -1,
];

/// What a command's `parg` must point at.
enum Parg {
    /// Nothing is read: NULL, or scratch space for an answer.
    Out,
    Int,
    Addr,
    /// A BIO_ADDR from BIO_ADDR_new that the BIO takes on success.
    AddrGiven,
    Timeval,
    Bio,
    /// Only NULL is safe (an SSL, a function).
    Null,
}

fn parg_kind(cmd: c_int) -> Parg {
    match cmd {
        BIO_C_SET_FD => Parg::Int,
        BIO_CTRL_DGRAM_CONNECT | BIO_CTRL_DGRAM_SET_PEER | BIO_CTRL_DGRAM_SET_CONNECTED => {
            Parg::Addr
        }
        BIO_CTRL_DGRAM_SET0_LOCAL_ADDR => Parg::AddrGiven,
        BIO_CTRL_DGRAM_SET_RECV_TIMEOUT | BIO_CTRL_DGRAM_SET_SEND_TIMEOUT => Parg::Timeval,
        BIO_C_MAKE_BIO_PAIR | BIO_CTRL_POP => Parg::Bio,
        BIO_C_SET_SSL => Parg::Null,
        _ => Parg::Out,
    }
}

// Zero-copy read buffers the harness lent to BIOs, by address; returned by the free
// callback or BIO_read_dequeue, the rest freed at the end of the run (after every BIO).
thread_local! {
    static LENT: RefCell<HashMap<usize, Vec<u8>>> = RefCell::new(HashMap::new());
}

fn lend(len: usize) -> *mut c_void {
    let mut v = vec![0u8; len.max(1)];
    let p = v.as_mut_ptr();
    LENT.with(|l| l.borrow_mut().insert(p as usize, v));
    p.cast()
}

fn take_back(p: *mut c_void) {
    LENT.with(|l| l.borrow_mut().remove(&(p as usize)));
}

unsafe extern "C" fn alloc_cb(len: usize, arg: *mut c_void) -> *mut c_void {
    // arg: NULL means "refuse" (an allocator out of memory).
    if arg.is_null() { null_mut() } else { lend(len) }
}

unsafe extern "C" fn free_cb(buf: *mut c_void, _len: usize, _arg: *mut c_void) {
    take_back(buf);
}

unsafe extern "C" fn write_done_cb(_buf: *const c_void, _len: usize, _st: c_int, arg: *mut c_void) {
    // SAFETY: arg is the harness's counter, alive for the whole run (a static).
    unsafe { *(arg as *mut u64) += 1 };
}

static mut WRITE_DONE: u64 = 0;
/// Bytes queued datagrams point into: alive for the whole process, never written.
static QUEUE_BYTES: [u8; 4096] = [0x5a; 4096];

struct Run {
    bios: [*mut BIO; SLOTS],
    addrs: [*mut BIO_ADDR; 2],
    fds: Vec<c_int>,
    scratch: Box<[u64; 64]>,
}

impl Run {
    fn new() -> Run {
        let a = BIO_ADDR_new();
        let b = BIO_ADDR_new();
        let lo = [127u8, 0, 0, 1];
        BIO_ADDR_rawmake(a, libc::AF_INET, lo.as_ptr().cast(), 4, 4433);
        Run {
            bios: [null_mut(); SLOTS],
            addrs: [a, b],
            fds: Vec::new(),
            scratch: Box::new([0; 64]),
        }
    }

    fn bio(&self, i: u8) -> *mut BIO {
        // One in nine picks NULL.
        match usize::from(i) % (SLOTS + 1) {
            SLOTS => null_mut(),
            i => self.bios[i],
        }
    }

    fn addr(&self, i: u8) -> *mut BIO_ADDR {
        match i % 3 {
            2 => null_mut(),
            i => self.addrs[usize::from(i)],
        }
    }

    /// Stores a new reference in a slot, freeing what was there.
    fn put(&mut self, i: u8, b: *mut BIO) {
        let slot = &mut self.bios[usize::from(i) % SLOTS];
        BIO_free(*slot);
        *slot = b;
    }

    fn socket(&mut self) -> *mut BIO {
        let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
            return null_mut();
        };
        // Non-blocking, so that no read waits.
        if s.set_nonblocking(true).is_err() {
            return null_mut();
        }
        let fd = s.into_raw_fd();
        self.fds.push(fd);
        BIO_new_dgram(fd, BIO_CLOSE)
    }

    fn new_bio(&mut self, r: &mut Reader) {
        let slot = r.u8();
        let size = usize::from(r.u16());
        match r.u8() % 9 {
            0 => self.put(slot, BIO_new(BIO_s_mem())),
            1 => self.put(slot, BIO_new(BIO_s_dgram_mem())),
            2 | 3 => {
                let (mut a, mut b) = (null_mut(), null_mut());
                let size2 = usize::from(r.u16());
                if r.bool() {
                    BIO_new_bio_dgram_pair(&mut a, size, &mut b, size2);
                } else {
                    BIO_new_bio_pair(&mut a, size, &mut b, size2);
                }
                self.put(slot, a);
                self.put(slot.wrapping_add(1), b);
            }
            4 => {
                let b = self.socket();
                self.put(slot, b);
            }
            5 => {
                let d = r.bytes();
                let len = if r.bool() { d.len() as c_int } else { -1 };
                // -1 reads a NUL-terminated string: give it one.
                let mut owned = d.to_vec();
                owned.push(0);
                self.put(slot, BIO_new_mem_buf(owned.as_ptr().cast(), len));
            }
            6 => self.put(slot, BIO_new(BIO_s_bio())),
            7 => self.put(slot, BIO_new(BIO_s_dgram_pair())),
            _ => self.put(slot, BIO_new(BIO_f_buffer())),
        }
    }

    fn ctrl(&mut self, r: &mut Reader) {
        // A fixed layout (17 bytes), so seeds are easy to write: slot, command pick, raw
        // command, larg pick, raw larg, NULL pick, two parg arguments.
        let b = self.bio(r.u8());
        let pick = usize::from(r.u8());
        let raw_cmd = r.u32() as c_int;
        let cmd = if pick < CMDS.len() * 3 {
            CMDS[pick % CMDS.len()]
        } else {
            raw_cmd
        };
        let larg_pick = r.u8();
        let raw_larg = r.u64();
        let larg: c_long = match larg_pick % 8 {
            0 => 0,
            1 => 1,
            2 => -1,
            3 => (raw_larg & 0xff) as c_long,
            4 => (raw_larg & 0xffff) as c_long,
            5 => c_long::MAX,
            6 => c_long::MIN,
            _ => raw_larg as c_long,
        };
        let null = r.u8().is_multiple_of(4);
        let (pa, pb) = (r.u8(), r.u32());
        // SET_NBIO 0 would make a socket BIO block: the harness keeps every socket
        // non-blocking (a read with nothing queued must not wait).
        let larg = if cmd == BIO_C_SET_NBIO { 1 } else { larg };
        let mut int_arg: c_int;
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let mut given: *mut BIO_ADDR = null_mut();
        let parg: *mut c_void = match parg_kind(cmd) {
            _ if null => null_mut(),
            Parg::Out => self.scratch.as_mut_ptr().cast(),
            Parg::Int => {
                // Only fds the harness made (or -1), never closed by the BIO on free:
                // BIO_set_fd with BIO_CLOSE would close an fd its other owner still uses.
                int_arg = self.fds.last().copied().unwrap_or(-1);
                (&mut int_arg as *mut c_int).cast()
            }
            Parg::Addr => self.addr(pa).cast(),
            Parg::AddrGiven => {
                given = BIO_ADDR_dup(self.addrs[usize::from(pa & 1)]);
                given.cast()
            }
            Parg::Timeval => {
                tv.tv_sec = libc::time_t::from(pa);
                tv.tv_usec = libc::suseconds_t::from(pb as i32);
                (&mut tv as *mut libc::timeval).cast()
            }
            Parg::Bio => self.bio(pa).cast(),
            Parg::Null => null_mut(),
        };
        let larg = if cmd == BIO_C_SET_FD { 0 } else { larg };
        let ret = BIO_ctrl(b, cmd, larg, parg);
        if !given.is_null() && ret != 1 {
            BIO_ADDR_free(given);
        }
        self.scratch.fill(0);
    }

    fn mmsg(&mut self, r: &mut Reader, send: bool) {
        let b = self.bio(r.u8());
        let n = usize::from(r.u8() % 9);
        let stride = size_of::<BIO_MSG>() + 8 * usize::from(r.u8() % 3);
        let zero_flags = r.bool();
        let flags = r.u64();
        let flags = if zero_flags { 0 } else { flags };
        let mut bufs: Vec<Vec<u8>> = Vec::new();
        // Each message at i * stride in one u64-aligned array.
        let mut arr = vec![0u64; (stride * n.max(1)).div_ceil(8)];
        for i in 0..n {
            let len = usize::from(r.u16() % 2048);
            let mut d = r.bytes().to_vec();
            d.resize(len, 0);
            bufs.push(d);
            let m = BIO_MSG {
                data: if r.u8().is_multiple_of(8) {
                    null_mut()
                } else {
                    bufs[i].as_mut_ptr().cast()
                },
                data_len: len,
                peer: self.addr(r.u8()),
                local: self.addr(r.u8()),
                flags: 0,
            };
            // SAFETY: the array has room for n messages `stride` apart and is u64-aligned.
            unsafe {
                (arr.as_mut_ptr().cast::<u8>().add(i * stride) as *mut BIO_MSG).write(m);
            }
        }
        let mut done = 0;
        let null_base = r.bool();
        let base = if n == 0 && null_base {
            null_mut()
        } else {
            arr.as_mut_ptr().cast::<BIO_MSG>()
        };
        if send {
            BIO_sendmmsg(b, base, stride, n, flags, &mut done);
        } else {
            BIO_recvmmsg(b, base, stride, n, flags, &mut done);
        }
    }

    fn zero_copy(&mut self, r: &mut Reader) {
        let b = self.bio(r.u8());
        match r.u8() % 7 {
            0 => {
                let arg = if r.bool() {
                    std::ptr::dangling_mut::<c_void>()
                } else {
                    null_mut()
                };
                BIO_dgram_set_read_callback(b, Some(alloc_cb), arg);
                BIO_dgram_set_read_free_callback(b, Some(free_cb), null_mut());
            }
            1 => {
                let len = usize::from(r.u16());
                let p = lend(len);
                if BIO_dgram_push_read_buffer(b, p, len) != 1 {
                    take_back(p);
                }
            }
            2 => {
                let (mut p, mut len) = (null_mut(), 0usize);
                if BIO_read_dequeue(b, &mut p, &mut len) == 1 && !p.is_null() {
                    take_back(p);
                }
            }
            3 => {
                BIO_dgram_set_read_batch(b, usize::from(r.u8()));
            }
            4 => {
                let off = usize::from(r.u16()) % QUEUE_BYTES.len();
                let len = usize::from(r.u16()).min(QUEUE_BYTES.len() - off);
                let p = if r.u8().is_multiple_of(8) {
                    null()
                } else {
                    QUEUE_BYTES[off..].as_ptr()
                };
                BIO_write_queue(b, p.cast(), len);
            }
            5 => {
                // The counter is only touched on this thread, by the callback.
                let arg = (&raw mut WRITE_DONE).cast();
                BIO_dgram_set_write_done_callback(b, Some(write_done_cb), arg);
            }
            _ => {
                BIO_set_outgoing_dgram_dest(b, self.addr(r.u8()));
                BIO_set_outgoing_dgram_origin(b, self.addr(r.u8()));
                BIO_get_incoming_dgram_origin(b, self.addr(r.u8()));
                BIO_get_incoming_dgram_dest(b, self.addr(r.u8()));
            }
        }
    }

    fn op(&mut self, r: &mut Reader) {
        match r.u8() % 14 {
            0 | 1 => self.new_bio(r),
            2 => {
                let i = usize::from(r.u8()) % SLOTS;
                BIO_free(self.bios[i]);
                self.bios[i] = null_mut();
            }
            // Another reference to a BIO, in another slot.
            3 => {
                let b = self.bio(r.u8());
                if BIO_up_ref(b) == 1 {
                    self.put(r.u8(), b);
                }
            }
            4 => {
                let b = self.bio(r.u8());
                let d = r.long_bytes();
                let mut n = 0;
                BIO_write_ex(b, d.as_ptr().cast(), d.len(), &mut n);
            }
            5 => {
                let b = self.bio(r.u8());
                let mut buf = vec![0u8; usize::from(r.u16())];
                let mut n = 0;
                BIO_read_ex(b, buf.as_mut_ptr().cast(), buf.len(), &mut n);
                if r.bool() {
                    let size = buf.len().min(i32::MAX as usize) as c_int;
                    BIO_gets(b, buf.as_mut_ptr().cast::<c_char>(), size);
                }
            }
            6..=8 => self.ctrl(r),
            9 => self.mmsg(r, true),
            10 => self.mmsg(r, false),
            11 => self.zero_copy(r),
            // Chains: a filter in front of a BIO, and out again. References are unchanged.
            12 => {
                let a = self.bio(r.u8());
                let b = self.bio(r.u8());
                if r.bool() {
                    BIO_push(a, b);
                } else {
                    BIO_pop(a);
                }
                BIO_next(a);
                BIO_find_type(a, c_int::from(r.u8()));
            }
            _ => {
                let b = self.bio(r.u8());
                let a = self.addr(r.u8());
                match r.u8() % 6 {
                    0 => {
                        let raw = r.bytes();
                        let family = [libc::AF_INET, libc::AF_INET6, libc::AF_UNIX, 0];
                        let f = family[usize::from(r.u8() % 4)];
                        BIO_ADDR_rawmake(a, f, raw.as_ptr().cast(), raw.len(), r.u16());
                    }
                    1 => {
                        let mut d = BIO_POLL_DESCRIPTOR::none();
                        BIO_get_rpoll_descriptor(b, &mut d);
                        BIO_get_wpoll_descriptor(b, &mut d);
                    }
                    2 => {
                        OSSLQUIC_BIO_dgram_set_offload(b, c_int::from(r.u8()), c_int::from(r.u8()));
                        OSSLQUIC_BIO_dgram_get_offload(b);
                        OSSLQUIC_dgram_pair_set_pollable(b);
                    }
                    3 => {
                        let f = c_int::from(r.u16());
                        BIO_set_flags(b, f);
                        BIO_test_flags(b, f);
                        BIO_clear_flags(b, c_int::from(r.u16()));
                        BIO_set_retry_reason(b, c_int::from(r.u8()));
                        BIO_get_retry_reason(b);
                    }
                    4 => {
                        BIO_method_type(b);
                        BIO_method_name(b);
                        BIO_ctrl_pending(b);
                        BIO_ctrl_wpending(b);
                        BIO_ctrl_get_write_guarantee(b);
                        BIO_ctrl_get_read_request(b);
                        BIO_ctrl_reset_read_request(b);
                    }
                    _ => {
                        let mut s = r.bytes().to_vec();
                        s.retain(|&c| c != 0);
                        s.push(0);
                        BIO_puts(b, s.as_ptr().cast());
                    }
                }
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for b in self.bios.iter_mut() {
            BIO_free(*b);
            *b = null_mut();
        }
        for a in self.addrs {
            BIO_ADDR_free(a);
        }
        // Sockets a BIO was told not to close (BIO_set_close 0): closed here, after every
        // BIO is gone (a second close of a number only fails).
        for &fd in &self.fds {
            // SAFETY: closing an fd this run made; nothing uses it any more.
            unsafe { libc::close(fd) };
        }
        LENT.with(|l| l.borrow_mut().clear());
        ERR_clear_error();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut run = Run::new();
    run_ops(data, MAX_OPS, |r| run.op(r));
});
