//! ECN through the datagram socket BIO on loopback (issue 16): the codepoint a batch send
//! puts on each datagram (IP_TOS / IPV6_TCLASS control messages) is the one the receiving
//! BIO reads back (IP_RECVTOS / IPV6_RECVTCLASS), over IPv4, IPv6 and IPv4-mapped addresses
//! of a dual-stack socket, in GSO runs and GRO batches; with ECN off nothing is marked or
//! read; a socket that cannot do ECN says so. Every receive is bounded by SO_RCVTIMEO.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::IntoRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use osslquic::bio::addr::BioAddr;
use osslquic::bio::{Bio, METHOD_DGRAM, RxDst};
use osslquic::sys::TxDesc;

const NOT_ECT: u8 = 0b00;
const ECT1: u8 = 0b01;
const ECT0: u8 = 0b10;
const CE: u8 = 0b11;

/// A socket BIO over `sock` (which it closes), receives bounded to 5 s.
fn bio_over(sock: UdpSocket) -> (Arc<Bio>, SocketAddr) {
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let addr = sock.local_addr().unwrap();
    let b = Bio::new(&METHOD_DGRAM);
    b.dgram().unwrap().set_fd(sock.into_raw_fd(), true).unwrap();
    (b, addr)
}

fn bind(addr: &str) -> Option<(Arc<Bio>, SocketAddr)> {
    UdpSocket::bind(addr).ok().map(bio_over)
}

/// An IPv6 socket on [::]:0 that also takes IPv4 (IPV6_V6ONLY off), if the host has IPv6.
fn dual_stack() -> Option<(Arc<Bio>, SocketAddr)> {
    let s = UdpSocket::bind("[::]:0").ok()?;
    let off: libc::c_int = 0;
    // SAFETY: a valid socket and an int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            (&off as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    (r == 0).then(|| bio_over(s))
}

/// Sends one datagram per codepoint in `ecns` (each `len` bytes, its first byte its index)
/// to `to` in one batch; all must leave.
fn send(b: &Bio, to: SocketAddr, ecns: &[u8], len: usize) {
    let dst = BioAddr::from_socket_addr(&to);
    let bufs: Vec<Vec<u8>> = (0..ecns.len()).map(|i| vec![i as u8; len]).collect();
    let descs: Vec<TxDesc<'_>> = bufs
        .iter()
        .zip(ecns)
        .map(|(d, &ecn)| TxDesc {
            data: d,
            dst: Some(&dst),
            src: None,
            ecn,
        })
        .collect();
    let out = b.send_batch(&descs);
    assert!(
        out.err.is_none(),
        "send failed: {:?}",
        out.err.map(|e| e.code)
    );
    assert_eq!(out.sent, ecns.len());
}

/// Receives `n` datagrams; returns (first byte, length, codepoint) of each, in order.
fn recv(b: &Bio, n: usize) -> Vec<(u8, usize, u8)> {
    let mut got = Vec::new();
    let mut bufs = vec![[0u8; 2048]; 8];
    while got.len() < n {
        let mut dsts: Vec<RxDst<'_>> = bufs
            .iter_mut()
            .map(|b| RxDst::new(&mut b[..], None, None))
            .collect();
        let k = b.recv_batch(&mut dsts).expect("a datagram within 5 s");
        assert!(k > 0);
        for d in &dsts[..k] {
            got.push((d.buf[0], d.len, d.ecn));
        }
    }
    assert_eq!(got.len(), n, "more datagrams than sent");
    got
}

fn codepoints(got: &[(u8, usize, u8)]) -> Vec<u8> {
    got.iter().map(|g| g.2).collect()
}

/// Every codepoint from `tx` to `rx` arrives as sent, in order; the BIOs count them.
fn round_trip(tx: &Bio, rx: &Bio, to: SocketAddr) {
    assert!(tx.dgram().unwrap().set_ecn(true), "ECN on the sender");
    assert!(rx.dgram().unwrap().set_ecn(true), "ECN on the receiver");
    assert_eq!(tx.dgram().unwrap().ecn(), (true, true));
    let ecns = [ECT0, NOT_ECT, ECT1, CE, ECT0];
    send(tx, to, &ecns, 100);
    let got = recv(rx, ecns.len());
    assert_eq!(codepoints(&got), ecns, "codepoints as sent ({to})");
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(tx.stats.ecn_sent.load(Relaxed), 4, "marked datagrams sent");
    assert_eq!(rx.stats.ecn_ect0_recv.load(Relaxed), 2);
    assert_eq!(rx.stats.ecn_ect1_recv.load(Relaxed), 1);
    assert_eq!(rx.stats.ecn_ce_recv.load(Relaxed), 1);
}

#[test]
fn ipv4_codepoints_arrive_as_sent() {
    let (tx, _) = bind("127.0.0.1:0").unwrap();
    let (rx, rxa) = bind("127.0.0.1:0").unwrap();
    round_trip(&tx, &rx, rxa);
}

#[test]
fn ipv6_codepoints_arrive_as_sent() {
    let (Some((tx, _)), Some((rx, rxa))) = (bind("[::1]:0"), bind("[::1]:0")) else {
        eprintln!("SKIP: no IPv6 loopback on this host");
        return;
    };
    round_trip(&tx, &rx, rxa);
}

/// IPv4 traffic on a dual-stack IPv6 socket: received as v4-mapped with IP_TOS read (the
/// IP_RECVTOS of an IPv6 socket), sent to a v4-mapped address with IP_TOS (IPV6_TCLASS
/// would be ignored for an IPv4 header).
#[test]
fn ipv4_mapped_on_a_dual_stack_socket() {
    let Some((dual, duala)) = dual_stack() else {
        eprintln!("SKIP: no dual-stack IPv6 socket on this host");
        return;
    };
    let (v4, v4a) = bind("127.0.0.1:0").unwrap();
    let to_dual: SocketAddr = format!("127.0.0.1:{}", duala.port()).parse().unwrap();
    round_trip(&v4, &dual, to_dual);

    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", v4a.port())
        .parse()
        .unwrap();
    let ecns = [CE, ECT0, NOT_ECT, ECT1];
    send(&dual, mapped, &ecns, 64);
    assert_eq!(
        codepoints(&recv(&v4, ecns.len())),
        ecns,
        "v6 socket -> v4-mapped peer"
    );
}

/// A GSO run never mixes codepoints (one TOS per sendmsg): same-size datagrams with
/// different marks are split into runs, each arrives with its own, GRO on the receiver.
#[test]
fn gso_runs_split_by_codepoint_and_gro_keeps_them() {
    let (tx, _) = bind("127.0.0.1:0").unwrap();
    let (rx, rxa) = bind("127.0.0.1:0").unwrap();
    tx.dgram().unwrap().set_offload(true, false);
    rx.dgram().unwrap().set_offload(false, true);
    assert!(tx.dgram().unwrap().set_ecn(true) && rx.dgram().unwrap().set_ecn(true));
    let mut ecns = vec![ECT0; 6];
    ecns.extend([CE; 3]);
    ecns.extend([ECT0; 4]);
    ecns.extend([NOT_ECT; 3]);
    send(&tx, rxa, &ecns, 1200);
    let got = recv(&rx, ecns.len());
    assert_eq!(codepoints(&got), ecns);
    assert!(got.iter().all(|g| g.1 == 1200));
    assert_eq!(
        got.iter().map(|g| g.0 as usize).collect::<Vec<_>>(),
        (0..ecns.len()).collect::<Vec<_>>()
    );
    if tx.dgram().unwrap().offload().0 {
        assert!(
            tx.stats.gso_sends.load(Relaxed) >= 3,
            "runs of one codepoint still go as GSO sends"
        );
    }
    assert_eq!(tx.stats.ecn_sent.load(Relaxed), 13);
}

/// With ECN off nothing is marked (the sender) and nothing is read (the receiver), and an
/// off BIO is not turned back on by a QUIC port (`want_ecn`).
#[test]
fn off_means_not_marked_and_not_read() {
    let (tx, _) = bind("127.0.0.1:0").unwrap();
    let (rx, rxa) = bind("127.0.0.1:0").unwrap();
    // Off by default (until a QUIC port or the application turns it on).
    assert_eq!(tx.dgram().unwrap().ecn(), (false, false));
    assert!(rx.dgram().unwrap().set_ecn(true));
    send(&tx, rxa, &[ECT0, CE], 50);
    assert_eq!(
        codepoints(&recv(&rx, 2)),
        [NOT_ECT, NOT_ECT],
        "sender off: unmarked"
    );
    assert_eq!(tx.stats.ecn_sent.load(Relaxed), 0);

    assert!(tx.dgram().unwrap().set_ecn(true));
    assert!(!rx.dgram().unwrap().set_ecn(false));
    rx.dgram().unwrap().want_ecn();
    assert_eq!(
        rx.dgram().unwrap().ecn(),
        (false, false),
        "the application's off holds"
    );
    send(&tx, rxa, &[ECT0, CE], 50);
    assert_eq!(
        codepoints(&recv(&rx, 2)),
        [NOT_ECT, NOT_ECT],
        "receiver off: not read"
    );
    assert_eq!(rx.stats.ecn_ect0_recv.load(Relaxed), 0);
}

/// A socket that is not IPv4/IPv6 UDP cannot do ECN: off, cleanly.
#[test]
fn not_an_ip_socket_stays_off() {
    let (a, _b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let bio = Bio::new(&METHOD_DGRAM);
    bio.dgram().unwrap().set_fd(a.into_raw_fd(), true).unwrap();
    assert!(!bio.dgram().unwrap().set_ecn(true));
    bio.dgram().unwrap().want_ecn();
    assert_eq!(bio.dgram().unwrap().ecn(), (false, false));
}
