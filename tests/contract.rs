//! Contract tests of the exported C functions, called directly: NULL handling, failure
//! values with exactly one queued error, and the batched UDP paths (GSO, GRO, stash order).

use std::ffi::c_void;
use std::net::UdpSocket;
use std::os::fd::IntoRawFd;
use std::ptr::{null, null_mut};

use osslquic::bio::consts::*;
use osslquic::bio::msg::{BIO_ADDR, BIO_MSG};
use osslquic::ffi::BIO;
use osslquic::ffi::addr::*;
use osslquic::ffi::bio::*;
use osslquic::ffi::err::*;

/// Asserts the call failed with exactly one queued error, then clears it.
fn one_error() {
    assert_ne!(ERR_peek_error(), 0, "an error should be queued");
    ERR_get_error();
    assert_eq!(ERR_get_error(), 0, "exactly one error should be queued");
}

#[test]
fn null_arguments_fail_cleanly() {
    ERR_clear_error();
    assert_eq!(BIO_new(null()), null_mut());
    one_error();
    assert_eq!(BIO_read(null_mut(), null_mut(), 0), -1);
    one_error();
    assert_eq!(BIO_write(null_mut(), null(), 0), -1);
    one_error();
    assert_eq!(BIO_ctrl(null_mut(), BIO_CTRL_PENDING, 0, null_mut()), -1);
    one_error();
    let mut n = 7usize;
    assert_eq!(
        BIO_sendmmsg(null_mut(), null_mut(), size_of::<BIO_MSG>(), 0, 0, &mut n),
        0
    );
    assert_eq!(n, 0);
    one_error();
    assert_eq!(BIO_ADDR_copy(null_mut(), null()), 0);
    one_error();
    assert_eq!(BIO_ADDR_dup(null()), null_mut());
    one_error();
    assert_eq!(BIO_up_ref(null_mut()), 0);
    one_error();
    assert_eq!(BIO_read_dequeue(null_mut(), null_mut(), null_mut()), 0);
    one_error();
    // NULL frees are quiet no-ops, as in OpenSSL.
    assert_eq!(BIO_free(null_mut()), 0);
    BIO_ADDR_free(null_mut());
    BIO_ADDRINFO_free(null_mut());
    assert_eq!(ERR_peek_error(), 0);
}

#[test]
fn bad_stride_and_missing_count_fail() {
    let (mut a, mut b) = (null_mut(), null_mut());
    assert_eq!(BIO_new_bio_dgram_pair(&mut a, 0, &mut b, 0), 1);
    let mut buf = [0u8; 8];
    let mut m = BIO_MSG {
        data: buf.as_mut_ptr().cast(),
        data_len: 8,
        peer: null_mut(),
        local: null_mut(),
        flags: 0,
    };
    let mut n = 0usize;
    ERR_clear_error();
    assert_eq!(BIO_sendmmsg(a, &mut m, 8, 1, 0, &mut n), 0);
    one_error();
    assert_eq!(
        BIO_sendmmsg(a, &mut m, size_of::<BIO_MSG>(), 1, 0, null_mut()),
        0
    );
    one_error();
    assert_eq!(
        BIO_sendmmsg(a, &mut m, size_of::<BIO_MSG>(), 1, 0, &mut n),
        1
    );
    assert_eq!(n, 1);
    BIO_free(a);
    BIO_free(b);
}

fn udp_bio() -> (*mut BIO, *mut BIO_ADDR) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    let local = s.local_addr().unwrap();
    let b = BIO_new_dgram(s.into_raw_fd(), BIO_CLOSE);
    assert!(!b.is_null());
    let a = BIO_ADDR_new();
    let ip = match local.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        _ => unreachable!(),
    };
    assert_eq!(
        BIO_ADDR_rawmake(
            a,
            libc::AF_INET,
            ip.as_ptr().cast(),
            4,
            local.port().to_be()
        ),
        1
    );
    (b, a)
}

fn stats(b: *mut BIO) -> OSSLQUIC_BIO_STATS {
    // SAFETY: plain-old-data struct.
    let mut s: OSSLQUIC_BIO_STATS = unsafe { std::mem::zeroed() };
    assert_eq!(OSSLQUIC_BIO_get_stats(b, &mut s), 1);
    s
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i * 31 + k) as u8).collect()
}

/// Sends `count` datagrams of `len` bytes (the last `last` bytes) with one BIO_sendmmsg.
fn send_run(
    tx: *mut BIO,
    to: *mut BIO_ADDR,
    count: usize,
    len: usize,
    last: usize,
) -> Vec<Vec<u8>> {
    let data: Vec<Vec<u8>> = (0..count)
        .map(|i| payload(i, if i + 1 == count { last } else { len }))
        .collect();
    let mut msgs: Vec<BIO_MSG> = data
        .iter()
        .map(|d| BIO_MSG {
            data: d.as_ptr() as *mut c_void,
            data_len: d.len(),
            peer: to,
            local: null_mut(),
            flags: 0,
        })
        .collect();
    let mut n = 0;
    assert_eq!(
        BIO_sendmmsg(
            tx,
            msgs.as_mut_ptr(),
            size_of::<BIO_MSG>(),
            count,
            0,
            &mut n
        ),
        1
    );
    assert_eq!(n, count);
    data
}

/// Receives `want` datagrams with batches of `slots` buffers, bounded by a deadline.
fn recv_all(rx: *mut BIO, want: usize, slots: usize) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut got = Vec::new();
    let mut bufs = vec![[0u8; 1500]; slots];
    while got.len() < want {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out with {} of {want}",
            got.len()
        );
        let mut msgs: Vec<BIO_MSG> = bufs
            .iter_mut()
            .map(|b| BIO_MSG {
                data: b.as_mut_ptr().cast(),
                data_len: b.len(),
                peer: null_mut(),
                local: null_mut(),
                flags: 0,
            })
            .collect();
        let mut n = 0;
        if BIO_recvmmsg(
            rx,
            msgs.as_mut_ptr(),
            size_of::<BIO_MSG>(),
            slots,
            0,
            &mut n,
        ) == 0
        {
            let e = ERR_get_error();
            assert_eq!(BIO_err_is_non_fatal(e as u32), 1, "unexpected error {e:x}");
            ERR_clear_error();
            std::thread::yield_now();
            continue;
        }
        for m in &msgs[..n] {
            // SAFETY: data points into bufs with data_len bytes received.
            got.push(
                unsafe { std::slice::from_raw_parts(m.data as *const u8, m.data_len) }.to_vec(),
            );
        }
    }
    got
}

#[test]
fn gso_send_and_gro_receive_keep_order_and_bytes() {
    let (tx, _txa) = udp_bio();
    let (rx, rxa) = udp_bio();
    assert_eq!(OSSLQUIC_BIO_dgram_get_offload(rx) & 2, 0, "GRO is opt-in");
    OSSLQUIC_BIO_dgram_set_offload(rx, 1, 1);
    let sent = send_run(tx, rxa, 32, 1200, 1200);
    let s = stats(tx);
    if OSSLQUIC_BIO_dgram_get_offload(tx) & 1 != 0 {
        assert!(
            s.gso_sends >= 1,
            "GSO should carry the run: {} gso sends",
            s.gso_sends
        );
        assert!(
            s.send_calls <= 2,
            "{} syscalls for 32 datagrams",
            s.send_calls
        );
    }
    // Fewer slots than coalesced segments: the rest must wait in order, and BIO_pending says so.
    let got = recv_all(rx, 32, 7);
    assert_eq!(got, sent);
    let r = stats(rx);
    assert_eq!(r.recv_dgrams, 32);
    if OSSLQUIC_BIO_dgram_get_offload(tx) & 1 != 0 && OSSLQUIC_BIO_dgram_get_offload(rx) & 2 != 0 {
        // On loopback a GSO send reaches a GRO socket as one coalesced datagram.
        assert!(
            r.gro_dgrams >= 2,
            "expected coalesced datagrams, got {}",
            r.gro_dgrams
        );
        assert!(
            r.recv_calls < 32,
            "{} receive syscalls for 32 datagrams",
            r.recv_calls
        );
    }
    BIO_free(tx);
    BIO_free(rx);
}

/// `Bio::recv_segments` (the QUIC port's receive): with 64 KiB buffers a GRO run arrives
/// whole in one buffer with its segment size, nothing goes through the stash, and splitting
/// each buffer by its segment size gives back every datagram in order; buffers too small for
/// a run get one datagram each, as `BIO_recvmmsg` does.
#[test]
fn recv_segments_hands_gro_runs_over_whole() {
    use osslquic::bio::RxDst;
    for big in [true, false] {
        let (tx, _txa) = udp_bio();
        let (rx, rxa) = udp_bio();
        OSSLQUIC_BIO_dgram_set_offload(rx, 1, 1);
        let mut sent = send_run(tx, rxa, 30, 1200, 700);
        sent.extend(send_run(tx, rxa, 5, 300, 300));
        sent.extend(send_run(tx, rxa, 1, 900, 900));
        let bio = osslquic::ffi::bio_arg(rx).unwrap();
        let size = if big { 65536 } else { 1500 };
        let mut bufs = vec![vec![0u8; size]; 8];
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut runs = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < sent.len() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out with {} of {}",
                got.len(),
                sent.len()
            );
            let mut dsts: Vec<RxDst> = bufs
                .iter_mut()
                .map(|b| RxDst::new(&mut b[..], None, None))
                .collect();
            let n = match bio.recv_segments(&mut dsts) {
                Ok(n) => n,
                Err(e) if e.is_would_block() => {
                    std::thread::yield_now();
                    continue;
                }
                Err(e) => panic!("recv_segments: {e:?}"),
            };
            for d in &dsts[..n] {
                let data = &d.buf[..d.len];
                if d.seg == 0 {
                    got.push(data.to_vec());
                } else {
                    runs += 1;
                    got.extend(data.chunks(d.seg).map(<[u8]>::to_vec));
                }
            }
        }
        assert_eq!(got, sent, "64 KiB buffers: {big}");
        let st = stats(rx);
        assert_eq!(st.recv_dgrams, sent.len() as u64);
        if !big {
            assert_eq!(runs, 0, "small buffers get one datagram each");
        } else {
            assert_eq!(st.copies, 0, "nothing went through the stash");
            if OSSLQUIC_BIO_dgram_get_offload(tx) & 1 != 0 {
                assert!(
                    runs >= 1,
                    "on loopback a GSO run reaches a GRO socket coalesced"
                );
                assert!(st.gro_dgrams >= 2);
            }
        }
        BIO_free(tx);
        BIO_free(rx);
    }
}

#[test]
fn gso_run_with_short_last_and_mixed_sizes() {
    let (tx, _txa) = udp_bio();
    let (rx, rxa) = udp_bio();
    let mut sent = send_run(tx, rxa, 10, 1000, 300);
    sent.extend(send_run(tx, rxa, 3, 50, 50));
    sent.extend(send_run(tx, rxa, 1, 1400, 1400));
    let got = recv_all(rx, sent.len(), 64);
    assert_eq!(got, sent);
    BIO_free(tx);
    BIO_free(rx);
}

#[test]
fn without_offload_the_same_bytes_arrive() {
    let (tx, _txa) = udp_bio();
    let (rx, rxa) = udp_bio();
    OSSLQUIC_BIO_dgram_set_offload(tx, 0, 0);
    OSSLQUIC_BIO_dgram_set_offload(rx, 0, 0);
    assert_eq!(OSSLQUIC_BIO_dgram_get_offload(tx), 0);
    let sent = send_run(tx, rxa, 40, 1200, 1200);
    assert_eq!(stats(tx).gso_sends, 0);
    let got = recv_all(rx, 40, 16);
    assert_eq!(got, sent);
    assert_eq!(stats(rx).gro_dgrams, 0);
    assert_eq!(stats(rx).copies, 0);
    BIO_free(tx);
    BIO_free(rx);
}

#[test]
fn legacy_read_after_gro_batch_sees_every_datagram() {
    let (tx, _txa) = udp_bio();
    let (rx, rxa) = udp_bio();
    OSSLQUIC_BIO_dgram_set_offload(rx, 1, 1);
    let sent = send_run(tx, rxa, 20, 500, 500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 2000];
    while got.len() < 20 {
        assert!(std::time::Instant::now() < deadline);
        let n = BIO_read(rx, buf.as_mut_ptr().cast(), buf.len() as i32);
        if n < 0 {
            assert!(BIO_test_flags(rx, BIO_FLAGS_SHOULD_RETRY) != 0);
            continue;
        }
        got.push(buf[..n as usize].to_vec());
    }
    assert_eq!(got, sent);
    BIO_free(tx);
    BIO_free(rx);
}

/// A write buffer size over the maximum (1 GiB) is refused with one error instead of
/// aborting the process when the ring's allocation fails (fuzz input
/// fuzz/corpus/bio_calls/crash-huge-write-buf-size: BIO_set_write_buf_size(1 << 58) on a
/// dgram mem BIO, then a write).
#[test]
fn huge_dgram_write_buffer_is_refused() {
    ERR_clear_error();
    let m = BIO_new(BIO_s_dgram_mem());
    assert!(!m.is_null());
    assert!(BIO_ctrl(m, BIO_C_SET_WRITE_BUF_SIZE, 1 << 58, null_mut()) <= 0);
    one_error();
    let mut n = 0usize;
    assert_eq!(BIO_write_ex(m, b"x".as_ptr().cast(), 1, &mut n), 1);
    assert_eq!(n, 1);
    BIO_free(m);
    let (mut a, mut b) = (null_mut(), null_mut());
    assert_eq!(BIO_new_bio_dgram_pair(&mut a, 1 << 58, &mut b, 0), 0);
    assert!(a.is_null() && b.is_null());
    one_error();
}
