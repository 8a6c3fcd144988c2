//! Datagram-only calls: the zero-copy API ("Datagram BIO API revisions") and osslquic's
//! extensions (statistics, offload switches, pollable pairs).

use std::ffi::{c_int, c_void};

use super::opt_addr;
use crate::bio::addr::BioAddr;
use crate::bio::msg::BIO_ADDR;
use crate::bio::zc::{RawBuf, ReadAllocCb, ReadFreeCb, WriteDoneCb};
use crate::error::*;
use crate::ffi::{BIO, bio_arg, ffi_entry, mut_arg, put};

/// Sets the callback that supplies read buffers: `cb(len, arg)` returns a buffer of at least
/// `len` bytes, or NULL. Turns GRO off on a socket (buffers are datagram-sized). Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_set_read_callback(
    b: *mut BIO,
    cb: ReadAllocCb,
    arg: *mut c_void,
) -> c_int {
    ffi_entry!(BIO_dgram_set_read_callback, {
        bio_arg(b)?.set_read_callback(cb, arg)?;
        Ok(1)
    })
}

/// Sets the callback that takes back read buffers the BIO still holds when it is freed.
/// Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_set_read_free_callback(
    b: *mut BIO,
    cb: ReadFreeCb,
    arg: *mut c_void,
) -> c_int {
    ffi_entry!(BIO_dgram_set_read_free_callback, {
        bio_arg(b)?.set_read_free_callback(cb, arg);
        Ok(1)
    })
}

/// Hands the next received datagram's buffer to the caller (who then owns it). Returns 1; 0
/// with retry-read set when nothing is waiting, or 0 with an error.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_read_dequeue(
    b: *mut BIO,
    buf: *mut *mut c_void,
    buf_len: *mut usize,
) -> c_int {
    put(buf, std::ptr::null_mut());
    put(buf_len, 0);
    ffi_entry!(BIO_read_dequeue, {
        let bio = bio_arg(b)?;
        let out = mut_arg(buf, "buf")?;
        let out_len = mut_arg(buf_len, "buf_len")?;
        let (raw, len) = bio.read_dequeue()?;
        *out = raw.ptr.cast();
        *out_len = len;
        Ok(1)
    })
}

/// Gives a buffer to the BIO for future reads (used before the allocation callback).
/// Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_push_read_buffer(
    b: *mut BIO,
    buf: *mut c_void,
    buf_len: usize,
) -> c_int {
    ffi_entry!(BIO_dgram_push_read_buffer, {
        let bio = bio_arg(b)?;
        if buf.is_null() {
            return Err(Error::null("buf"));
        }
        if buf_len == 0 {
            return Err(Error::invalid("buffer length must be positive"));
        }
        bio.push_read_buffer(RawBuf {
            ptr: buf.cast(),
            cap: buf_len,
        });
        Ok(1)
    })
}

/// How many buffers one refill offers to the kernel (1..=64, default 32). Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_set_read_batch(b: *mut BIO, n: usize) -> c_int {
    ffi_entry!(BIO_dgram_set_read_batch, {
        bio_arg(b)?.set_read_batch(n)?;
        Ok(1)
    })
}

/// Sets the callback told when a queued datagram is done: BIO_DGRAM_WRITE_DONE_OK, _FAILED
/// or _FREED. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_set_write_done_callback(
    b: *mut BIO,
    cb: WriteDoneCb,
    arg: *mut c_void,
) -> c_int {
    ffi_entry!(BIO_dgram_set_write_done_callback, {
        bio_arg(b)?.set_write_done_callback(cb, arg);
        Ok(1)
    })
}

/// Queues one datagram without sending it; `buf` must stay valid until its write-done
/// callback. BIO_flush sends the queue. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_write_queue(b: *mut BIO, buf: *const c_void, buf_len: usize) -> c_int {
    ffi_entry!(BIO_write_queue, {
        let bio = bio_arg(b)?;
        if buf.is_null() && buf_len > 0 {
            return Err(Error::null("buf"));
        }
        bio.write_queue(buf.cast(), buf_len)?;
        Ok(1)
    })
}

/// Destination of the datagrams queued from now on (NULL: the BIO's peer). Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_outgoing_dgram_dest(b: *mut BIO, addr: *const BIO_ADDR) -> c_int {
    ffi_entry!(BIO_set_outgoing_dgram_dest, {
        bio_arg(b)?.set_outgoing_dest(opt_addr(addr));
        Ok(1)
    })
}

/// Source of the datagrams queued from now on (NULL: the kernel's choice). Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_outgoing_dgram_origin(b: *mut BIO, addr: *const BIO_ADDR) -> c_int {
    ffi_entry!(BIO_set_outgoing_dgram_origin, {
        bio_arg(b)?.set_outgoing_origin(opt_addr(addr));
        Ok(1)
    })
}

/// Source address of the datagram last dequeued. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_incoming_dgram_origin(b: *mut BIO, addr: *mut BIO_ADDR) -> c_int {
    ffi_entry!(BIO_get_incoming_dgram_origin, {
        let bio = bio_arg(b)?;
        *mut_arg(addr as *mut BioAddr, "addr")? = bio.incoming_origin();
        Ok(1)
    })
}

/// Destination (local) address of the datagram last dequeued (AF_UNSPEC if unknown).
/// Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_incoming_dgram_dest(b: *mut BIO, addr: *mut BIO_ADDR) -> c_int {
    ffi_entry!(BIO_get_incoming_dgram_dest, {
        let bio = bio_arg(b)?;
        *mut_arg(addr as *mut BioAddr, "addr")? = bio.incoming_dest();
        Ok(1)
    })
}

/// Makes this pair half's read side pollable: BIO_get_rpoll_descriptor then returns an
/// eventfd that is readable while a datagram may be waiting. A busy reader costs the writer
/// no syscall. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_dgram_pair_set_pollable(b: *mut BIO) -> c_int {
    ffi_entry!(OSSLQUIC_dgram_pair_set_pollable, {
        bio_arg(b)?.pair()?.enable_pollable()?;
        Ok(1)
    })
}

/// Counters of one BIO: syscalls, datagrams, GSO sends, GRO-coalesced datagrams received,
/// CPU copies of payloads, wake-ups signalled toward its reader, and (a socket BIO with ECN
/// on: OSSLQUIC_BIO_dgram_set_ecn) datagrams sent with ECN bits set and received marked
/// ECT(0), ECT(1), CE.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct OSSLQUIC_BIO_STATS {
    pub send_calls: u64,
    pub sent_dgrams: u64,
    pub gso_sends: u64,
    pub recv_calls: u64,
    pub recv_dgrams: u64,
    pub gro_dgrams: u64,
    pub copies: u64,
    pub wakeups: u64,
    pub ecn_sent: u64,
    pub ecn_ect0_recv: u64,
    pub ecn_ect1_recv: u64,
    pub ecn_ce_recv: u64,
}

/// Fills `out` with the BIO's counters. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_BIO_get_stats(b: *mut BIO, out: *mut OSSLQUIC_BIO_STATS) -> c_int {
    ffi_entry!(OSSLQUIC_BIO_get_stats, {
        let bio = bio_arg(b)?;
        let o = mut_arg(out, "out")?;
        let s = &bio.stats;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        *o = OSSLQUIC_BIO_STATS {
            send_calls: g(&s.send_calls),
            sent_dgrams: g(&s.sent_dgrams),
            gso_sends: g(&s.gso_sends),
            recv_calls: g(&s.recv_calls),
            recv_dgrams: g(&s.recv_dgrams),
            gro_dgrams: g(&s.gro_dgrams),
            copies: g(&s.copies),
            wakeups: bio.wakeups(),
            ecn_sent: g(&s.ecn_sent),
            ecn_ect0_recv: g(&s.ecn_ect0_recv),
            ecn_ect1_recv: g(&s.ecn_ect1_recv),
            ecn_ce_recv: g(&s.ecn_ce_recv),
        };
        Ok(1)
    })
}

/// Turns GSO (send) and GRO (receive) on or off for a datagram socket BIO, where the kernel
/// has them; for measuring the fallbacks. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_BIO_dgram_set_offload(b: *mut BIO, gso: c_int, gro: c_int) -> c_int {
    ffi_entry!(OSSLQUIC_BIO_dgram_set_offload, {
        bio_arg(b)?.dgram()?.set_offload(gso != 0, gro != 0);
        Ok(1)
    })
}

/// Reports which offloads a datagram socket BIO uses: bit 0 GSO, bit 1 GRO.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_BIO_dgram_get_offload(b: *mut BIO) -> c_int {
    ffi_entry!(OSSLQUIC_BIO_dgram_get_offload, {
        let (gso, gro) = bio_arg(b)?.dgram()?.offload();
        Ok(gso as c_int | (gro as c_int) << 1)
    })
}

/// Turns ECN on (`on` != 0) or off for a datagram socket BIO: with it on, the codepoint of
/// each datagram received is read (IP_RECVTOS / IPV6_RECVTCLASS) and a QUIC connection's
/// ECT(0) marks are written (IP_TOS / IPV6_TCLASS control messages; IP_TOS for IPv4 and
/// v4-mapped peers of an IPv6 socket). A QUIC port turns it on for its socket BIOs unless
/// this call turned it off first (it may come before or after SSL_set_bio). Off, the
/// connection sees no codepoints, its peer no marks, and quinn stops marking after the first
/// ACKs (RFC 9000 section 13.4.2). Returns 1 if ECN is on now, 0 if off (asked, or the
/// socket cannot: not an IPv4/IPv6 UDP socket, or the kernel refused IP_RECVTOS); -1 with
/// an error queued for a BIO that is not a datagram socket. An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_BIO_dgram_set_ecn(b: *mut BIO, on: c_int) -> c_int {
    ffi_entry!(OSSLQUIC_BIO_dgram_set_ecn, -1, {
        Ok(bio_arg(b)?.dgram()?.set_ecn(on != 0) as c_int)
    })
}

/// Reports ECN on a datagram socket BIO: bit 0, codepoints of sent datagrams are written
/// (cleared if the kernel refused the control message: EINVAL, as quinn-udp falls back);
/// bit 1, codepoints of received datagrams are read. -1 with an error queued for a BIO that
/// is not a datagram socket. An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_BIO_dgram_get_ecn(b: *mut BIO) -> c_int {
    ffi_entry!(OSSLQUIC_BIO_dgram_get_ecn, -1, {
        let (tx, rx) = bio_arg(b)?.dgram()?.ecn();
        Ok(tx as c_int | (rx as c_int) << 1)
    })
}
