//! The C entry points of the library's own measurements (osslquic extensions): lock hold
//! times, for `make bench` (see `sync`'s module note).

use std::ffi::{c_char, c_int};

use super::{ffi_entry, slice_arg_mut};
use crate::error::{ERR_R_UNSUPPORTED, Error};

/// Writes the lock figures gathered since the start (or the last OSSLQUIC_lock_stats_reset)
/// into `buf` as text, NUL-terminated and cut to `len - 1` bytes: one line per purpose,
/// `NAME HOLD_NS WAIT_NS COUNT`, where NAME (which may contain spaces) says what the lock was
/// taken for, HOLD_NS is the time it was held, WAIT_NS the time spent waiting to get it and
/// COUNT the number of acquisitions. Returns the length of the whole text (as snprintf(3)
/// does; `buf` may be NULL when `len` is 0), or 0 with an error queued when the library was
/// built without the `lock-tracking` cargo feature (the default: figures cost time).
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_lock_stats(buf: *mut c_char, len: usize) -> usize {
    ffi_entry!(OSSLQUIC_lock_stats, {
        let text = crate::sync::lock_stats().ok_or_else(not_built)?;
        let out = slice_arg_mut(buf.cast(), len, "buf")?;
        if let Some(room) = out.len().checked_sub(1) {
            let n = text.len().min(room);
            out[..n].copy_from_slice(&text.as_bytes()[..n]);
            out[n] = 0;
        }
        Ok(text.len())
    })
}

/// Sets every lock figure to zero (the start of a measured window). Returns 1, or 0 with an
/// error queued without the `lock-tracking` feature.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_lock_stats_reset() -> c_int {
    ffi_entry!(OSSLQUIC_lock_stats_reset, {
        if !crate::sync::reset_lock_stats() {
            return Err(not_built());
        }
        Ok(1)
    })
}

fn not_built() -> Error {
    Error::ssl(ERR_R_UNSUPPORTED)
        .with("lock figures need the library built with the lock-tracking cargo feature")
}

/// What a QUIC connection has measured (OSSLQUIC_get_conn_stats): quinn-proto's figures for
/// the connection and its current path.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct OSSLQUIC_CONN_STATS {
    /// Smoothed and minimum round-trip time, in microseconds.
    pub rtt_us: u64,
    pub min_rtt_us: u64,
    /// Congestion window, in bytes (OSSLQUIC_CTX_set_congestion_control chose the controller).
    pub cwnd: u64,
    /// Congestion events (each reduces the window once), lost packets and their bytes.
    pub congestion_events: u64,
    pub lost_packets: u64,
    pub lost_bytes: u64,
    /// Packets sent on the path, and its current maximum datagram size (PMTU).
    pub sent_packets: u64,
    pub current_mtu: u64,
    /// UDP datagrams and bytes sent and received by the connection.
    pub datagrams_out: u64,
    pub bytes_out: u64,
    pub datagrams_in: u64,
    pub bytes_in: u64,
    /// RFC 9221 datagrams (OSSLQUIC_write_datagram): sent; received; received and dropped
    /// unread because the queue (OSSLQUIC_CTX_set_datagrams) was full.
    pub dgram_sent: u64,
    pub dgram_received: u64,
    pub dgram_dropped: u64,
    /// ECN (RFC 9000 section 13.4): datagrams sent marked ECT(0) (quinn marks from the start
    /// and stops on a path whose peer does not count its marks back); datagrams received
    /// marked ECT(0), ECT(1) and CE (the counts our ACK frames report; 0 where the network
    /// BIO does not read ECN, e.g. a datagram pair, or OSSLQUIC_BIO_dgram_set_ecn(b, 0)).
    pub ecn_ect0_sent: u64,
    pub ecn_ect0_received: u64,
    pub ecn_ect1_received: u64,
    pub ecn_ce_received: u64,
    /// 1 when ECN is validated on the path: the connection still marks what it sends after
    /// ACKs from the peer, which quinn stops doing as soon as an ACK carries no ECN counts
    /// or counts that fail validation; 0 otherwise (not yet acknowledged, or off).
    pub ecn_validated: u64,
}

/// Fills `out` with what the QUIC connection of `ssl` (a connection or one of its streams)
/// has measured. Returns 1, or 0 with an error queued (not a QUIC connection or stream, not
/// started). An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_get_conn_stats(
    ssl: *mut super::SSL,
    out: *mut OSSLQUIC_CONN_STATS,
) -> c_int {
    ffi_entry!(OSSLQUIC_get_conn_stats, {
        let o = super::mut_arg(out, "out")?;
        let (st, dg, ecn) = super::ssl_arg(ssl)?.conn_stats()?;
        let us = |d: std::time::Duration| d.as_micros().min(u64::MAX as u128) as u64;
        *o = OSSLQUIC_CONN_STATS {
            rtt_us: us(st.path.rtt),
            min_rtt_us: us(st.path.min_rtt),
            cwnd: st.path.cwnd,
            congestion_events: st.path.congestion_events,
            lost_packets: st.path.lost_packets,
            lost_bytes: st.path.lost_bytes,
            sent_packets: st.path.sent_packets,
            current_mtu: u64::from(st.path.current_mtu),
            datagrams_out: st.udp_tx.datagrams,
            bytes_out: st.udp_tx.bytes,
            datagrams_in: st.udp_rx.datagrams,
            bytes_in: st.udp_rx.bytes,
            dgram_sent: dg.sent,
            dgram_received: dg.received,
            dgram_dropped: dg.dropped,
            ecn_ect0_sent: ecn.sent_ect0,
            ecn_ect0_received: ecn.received[0],
            ecn_ect1_received: ecn.received[1],
            ecn_ce_received: ecn.received[2],
            ecn_validated: u64::from(ecn.marking_after_acks),
        };
        Ok(1)
    })
}
