//! A flood of genuine QUIC v1 client Initials (issue 14, `tests/flood/run.sh`): each one is
//! the first datagram of a real quinn-proto client connection (a full ClientHello with its own
//! key share, protected with the Initial keys of its own random destination CID, padded to
//! 1200 bytes), sent from a pool of UDP sockets on 127.0.0.1, each its own source port, in
//! turn. Nothing is ever answered: no handshake completes, a Retry's token is never used.
//!
//!   cargo run --release --example initial_flood -- [options] PORT
//!     --sockets N   source sockets (ports) on 127.0.0.1 (default 128)
//!     --rate R      Initials per second (default 4000; 0: as fast as the sockets take them)
//!     --count N     Initials made before the flood starts, and sent (default 20000)
//!     --mark N      print "mark: N Initials sent" once N are out (default 2048)
//!     --linger S    seconds to go on counting answers after the last send (default 2)
//!
//! The Initials are all made first (about 100 µs each), so the flood's rate does not depend
//! on this process's CPU share while it runs. It stops early at SIGINT or SIGTERM. Random
//! bytes would test nothing: quinn drops a datagram it cannot decrypt before making any state.
//!
//! Everything that comes back is counted per source port and classified by packet: Retry,
//! Initial (decrypted with the client's Initial keys: the server's first flight, which carries
//! CRYPTO frames, or a CONNECTION_CLOSE with its error code, e.g. 0x2 CONNECTION_REFUSED),
//! Handshake (not decrypted), Version Negotiation, short header; and per connection (every
//! long-header packet from the server names the connection by its destination CID: the
//! Initial's source CID), so that what the server sent for one Initial is known even when it
//! dropped other Initials of the same port. Output, on stdout:
//!   flood: made N Initials (B bytes each) in S s
//!   flooding 127.0.0.1:PORT from N ports at R/s
//!   mark: N Initials sent
//!   flood: sent N Initials (B bytes) in S s: R/s
//!   flood: received N datagrams (B bytes): Retry N, Initial N (first flight N, CONNECTION_CLOSE N [0x2: N]), Handshake N, VN N, short N, undecoded N
//!   flood: receive drops N (kernel, /proc/net/udp)
//!   flood: per connection: N answered, at most B bytes for one B-byte Initial (N datagrams not attributed)
//!   port P: sent N datagrams B bytes, received N datagrams B bytes   (one line per port)
//! The amplification checks (per port and per connection: received ≤ 3 × sent) are the
//! caller's, on those lines.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use quinn_proto::crypto::rustls::QuicClientConfig;
use rustls::quic::{Keys, Version};

type Res<T> = Result<T, Box<dyn Error>>;

/// Set by SIGINT/SIGTERM: stop sending, count what is still coming, report.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Relaxed);
}

struct Opts {
    port: u16,
    sockets: usize,
    rate: u64,
    count: usize,
    mark: usize,
    linger: f64,
}

/// What came back to one source port, and what it sent.
#[derive(Default, Clone)]
struct PortCount {
    sent_dgrams: u64,
    sent_bytes: u64,
    recv_dgrams: u64,
    recv_bytes: u64,
}

/// Answers by packet kind, over all ports.
#[derive(Default)]
struct Kinds {
    retry: u64,
    initial: u64,
    first_flight: u64,
    close: u64,
    close_codes: BTreeMap<u64, u64>,
    handshake: u64,
    vn: u64,
    short: u64,
    undecoded: u64,
    /// Datagrams whose first packet names no connection of ours.
    unattributed: u64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("initial_flood: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let o = opts()?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, o.port));

    let t = Instant::now();
    let (initials, cids) = make_initials(server, o.count)?;
    let size = initials.first().map_or(0, Vec::len);
    println!(
        "flood: made {} Initials ({size} bytes each) in {:.2} s",
        initials.len(),
        t.elapsed().as_secs_f64()
    );

    let mut socks = Vec::with_capacity(o.sockets);
    for _ in 0..o.sockets {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        s.set_nonblocking(true)?;
        // Room for the server's answers between two polls (the kernel caps it at rmem_max):
        // a datagram dropped here would be missing from the amplification counts, and the
        // drops are reported.
        let size: libc::c_int = 4 << 20;
        // SAFETY: a valid socket and a c_int option value of the given size.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        socks.push(s);
    }
    let ports: Vec<u16> = socks
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    let socks = Arc::new(socks);
    let sending = Arc::new(AtomicBool::new(true));

    let rx = {
        let (socks, sending, linger) = (socks.clone(), sending.clone(), o.linger);
        std::thread::spawn(move || receive(&socks, &sending, linger, &cids))
    };

    println!(
        "flooding {server} from {} ports at {}",
        o.sockets,
        if o.rate == 0 {
            "full speed".to_string()
        } else {
            format!("{}/s", o.rate)
        }
    );
    let mut sent = vec![PortCount::default(); o.sockets];
    let t0 = Instant::now();
    let mut n = 0;
    while n < initials.len() && !STOP.load(Relaxed) {
        // Paced in slices of 1 ms: as many as are due by now.
        let due = if o.rate == 0 {
            initials.len()
        } else {
            ((t0.elapsed().as_secs_f64() * o.rate as f64) as usize + 1).min(initials.len())
        };
        while n < due {
            let i = n % socks.len();
            match socks[i].send_to(&initials[n], server) {
                Ok(len) => {
                    sent[i].sent_dgrams += 1;
                    sent[i].sent_bytes += len as u64;
                }
                // The socket's send buffer is full: try this Initial again on the next slice.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("send: {e}").into()),
            }
            n += 1;
            if n == o.mark {
                println!("mark: {n} Initials sent");
            }
        }
        if n < due && o.rate != 0 {
            continue;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = t0.elapsed().as_secs_f64();
    sending.store(false, Relaxed);
    let bytes: u64 = sent.iter().map(|c| c.sent_bytes).sum();
    println!(
        "flood: sent {n} Initials ({bytes} bytes) in {secs:.2} s: {:.0}/s",
        n as f64 / secs.max(1e-9)
    );

    let (recv, per_conn, kinds) = rx.join().map_err(|_| "the receiving thread panicked")?;
    let rbytes: u64 = recv.iter().map(|c| c.recv_bytes).sum();
    let rdgrams: u64 = recv.iter().map(|c| c.recv_dgrams).sum();
    let codes: Vec<String> = kinds
        .close_codes
        .iter()
        .map(|(c, k)| format!("{c:#x}: {k}"))
        .collect();
    println!(
        "flood: received {rdgrams} datagrams ({rbytes} bytes): Retry {}, Initial {} (first flight {}, CONNECTION_CLOSE {}{}), Handshake {}, VN {}, short {}, undecoded {}",
        kinds.retry,
        kinds.initial,
        kinds.first_flight,
        kinds.close,
        if codes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", codes.join(", "))
        },
        kinds.handshake,
        kinds.vn,
        kinds.short,
        kinds.undecoded
    );
    match receive_drops(&ports) {
        Some(d) => println!("flood: receive drops {d} (kernel, /proc/net/udp)"),
        None => println!("flood: receive drops unknown (no /proc/net/udp)"),
    }
    let answered = per_conn.iter().filter(|&&b| b > 0).count();
    let max = per_conn.iter().max().copied().unwrap_or(0);
    println!(
        "flood: per connection: {answered} answered, at most {max} bytes for one {size}-byte Initial ({} datagrams not attributed)",
        kinds.unattributed
    );
    for (i, p) in ports.iter().enumerate() {
        println!(
            "port {p}: sent {} datagrams {} bytes, received {} datagrams {} bytes",
            sent[i].sent_dgrams, sent[i].sent_bytes, recv[i].recv_dgrams, recv[i].recv_bytes
        );
    }
    Ok(())
}

fn opts() -> Res<Opts> {
    let mut o = Opts {
        port: 0,
        sockets: 128,
        rate: 4000,
        count: 20000,
        mark: 2048,
        linger: 2.0,
    };
    let usage =
        "usage: initial_flood [--sockets N] [--rate R] [--count N] [--mark N] [--linger S] PORT";
    let mut args = std::env::args().skip(1);
    let mut port = None;
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(usage);
        match a.as_str() {
            "--sockets" => o.sockets = val()?.parse()?,
            "--rate" => o.rate = val()?.parse()?,
            "--count" => o.count = val()?.parse()?,
            "--mark" => o.mark = val()?.parse()?,
            "--linger" => o.linger = val()?.parse()?,
            _ if port.is_none() && !a.starts_with('-') => port = Some(a.parse()?),
            _ => return Err(usage.into()),
        }
    }
    o.port = port.ok_or(usage)?;
    if o.sockets == 0 {
        return Err(usage.into());
    }
    Ok(o)
}

/// For each connection, by the client's source CID (the server addresses its packets to it):
/// the connection's index and its first destination CID (its Initial keys derive from it).
type Cids = HashMap<Vec<u8>, (usize, Vec<u8>)>;

/// `count` first datagrams of fresh client connections to `server`, and their CIDs.
fn make_initials(server: SocketAddr, count: usize) -> Res<(Vec<Vec<u8>>, Cids)> {
    // The certificate is never checked (no handshake gets that far): no roots needed.
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"hq-interop".to_vec()];
    let cfg = quinn_proto::ClientConfig::new(Arc::new(QuicClientConfig::try_from(Arc::new(tls))?));
    let now = Instant::now();
    let mut out = Vec::with_capacity(count);
    let mut cids = HashMap::with_capacity(count);
    let mut endpoint = None;
    for i in 0..count {
        // A fresh endpoint now and then: each keeps an entry per connection it made.
        if i % 1024 == 0 {
            endpoint = Some(quinn_proto::Endpoint::new(
                Arc::new(quinn_proto::EndpointConfig::default()),
                None,
                false,
                None,
            ));
        }
        let ep = endpoint.as_mut().ok_or("no endpoint")?;
        let (_, mut conn) = ep.connect(now, cfg.clone(), server, "localhost")?;
        let mut buf = Vec::with_capacity(1500);
        let t = conn
            .poll_transmit(now, 1, &mut buf)
            .ok_or("a new client connection had nothing to send")?;
        buf.truncate(t.size);
        let (dcid, scid, _) = long_header(&buf).ok_or("the first datagram is not an Initial")?;
        cids.insert(scid.to_vec(), (i, dcid.to_vec()));
        out.push(buf);
    }
    Ok((out, cids))
}

/// Counts everything the sockets receive, per port and per connection, until sending has
/// stopped and `linger` seconds more have passed.
fn receive(
    socks: &[UdpSocket],
    sending: &AtomicBool,
    linger: f64,
    cids: &Cids,
) -> (Vec<PortCount>, Vec<u64>, Kinds) {
    let mut counts = vec![PortCount::default(); socks.len()];
    let mut per_conn = vec![0u64; cids.len()];
    let mut kinds = Kinds::default();
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![0u8; 65536];
    let mut end: Option<Instant> = None;
    loop {
        if end.is_none() && !sending.load(Relaxed) {
            end = Some(Instant::now() + Duration::from_secs_f64(linger));
        }
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        // SAFETY: `fds` is a live, exclusively borrowed array of `fds.len()` pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if r <= 0 {
            continue;
        }
        for (i, s) in socks.iter().enumerate() {
            if fds[i].revents == 0 {
                continue;
            }
            while let Ok((len, _)) = s.recv_from(&mut buf) {
                counts[i].recv_dgrams += 1;
                counts[i].recv_bytes += len as u64;
                match long_header(&buf[..len]).and_then(|(dcid, _, _)| cids.get(dcid)) {
                    Some(&(c, _)) if buf[0] & 0x80 != 0 => per_conn[c] += len as u64,
                    _ => kinds.unattributed += 1,
                }
                classify(&mut buf[..len], cids, &mut kinds);
            }
        }
    }
    (counts, per_conn, kinds)
}

/// Walks the (possibly coalesced) packets of one datagram from the server.
fn classify(d: &mut [u8], cids: &Cids, k: &mut Kinds) {
    let mut off = 0;
    while off < d.len() {
        let p = &d[off..];
        if p[0] & 0x80 == 0 {
            k.short += 1;
            return;
        }
        let Some((dcid, _, mut at)) = long_header(p) else {
            k.undecoded += 1;
            return;
        };
        if p[1..5] == [0; 4] {
            k.vn += 1;
            return;
        }
        let ty = (p[0] >> 4) & 3;
        if ty == 3 {
            k.retry += 1;
            return; // a Retry takes the rest of the datagram
        }
        if ty == 0 {
            let Some((tlen, n)) = varint(&p[at..]) else {
                k.undecoded += 1;
                return;
            };
            at += n + tlen as usize;
        }
        let Some((len, n)) = p.get(at..).and_then(varint) else {
            k.undecoded += 1;
            return;
        };
        let pn_off = at + n;
        let end = pn_off + len as usize;
        if end > p.len() {
            k.undecoded += 1;
            return;
        }
        match ty {
            0 => {
                k.initial += 1;
                let first = cids.get(dcid).map(|(_, c)| c.clone());
                match first.and_then(|c| open_initial(&mut d[off..off + end], pn_off, &c)) {
                    Some(payload) => frames(&payload, k),
                    None => k.undecoded += 1,
                }
            }
            2 => k.handshake += 1,
            _ => k.undecoded += 1,
        }
        off += end;
    }
}

/// A long header's destination and source CIDs, and where what follows them starts.
fn long_header(p: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    let dl = *p.get(5)? as usize;
    let dcid = p.get(6..6 + dl)?;
    let sl = *p.get(6 + dl)? as usize;
    let scid = p.get(7 + dl..7 + dl + sl)?;
    Some((dcid, scid, 7 + dl + sl))
}

/// A QUIC variable-length integer and its length (RFC 9000 §16).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let n = 1usize << (b.first()? >> 6);
    let mut v = u64::from(b[0] & 0x3f);
    for x in b.get(1..n)? {
        v = (v << 8) | u64::from(*x);
    }
    Some((v, n))
}

/// Removes header protection from a server Initial packet `p` (the packet number at
/// `pn_off`) and decrypts it with the Initial keys of the client's first destination CID
/// (RFC 9001 §5.2, §5.4); the plaintext frames, or None if it does not authenticate.
fn open_initial(p: &mut [u8], pn_off: usize, first_dcid: &[u8]) -> Option<Vec<u8>> {
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13()?;
    let keys = Keys::initial(
        Version::V1,
        suite,
        suite.quic?,
        first_dcid,
        rustls::Side::Client,
    );
    let sample: [u8; 16] = p.get(pn_off + 4..pn_off + 20)?.try_into().ok()?;
    let (head, rest) = p.split_at_mut(pn_off);
    keys.remote
        .header
        .decrypt_in_place(&sample, &mut head[0], &mut rest[..4])
        .ok()?;
    let pn_len = (head[0] & 3) as usize + 1;
    let pn = rest[..pn_len]
        .iter()
        .fold(0u64, |v, b| (v << 8) | u64::from(*b));
    let (aad, payload) = p.split_at_mut(pn_off + pn_len);
    let plain = keys.remote.packet.decrypt_in_place(pn, aad, payload).ok()?;
    Some(plain.to_vec())
}

/// Notes what a server Initial carries: CRYPTO (its first flight) or CONNECTION_CLOSE.
fn frames(mut b: &[u8], k: &mut Kinds) {
    let mut crypto = false;
    while !b.is_empty() && frame(&mut b, k, &mut crypto).is_some() {}
    if crypto {
        k.first_flight += 1;
    }
}

/// Reads one frame of an Initial packet off `b`; None at a frame it does not know.
fn frame(b: &mut &[u8], k: &mut Kinds, crypto: &mut bool) -> Option<()> {
    let mut ints = |count: usize| -> Option<Vec<u64>> {
        let mut v = Vec::with_capacity(count);
        for _ in 0..count {
            let (x, n) = varint(b)?;
            *b = &b[n..];
            v.push(x);
        }
        Some(v)
    };
    let ty = ints(1)?[0];
    match ty {
        0x00 | 0x01 => {} // PADDING, PING
        0x02 | 0x03 => {
            let h = ints(4)?; // largest, delay, range count, first range
            ints(2 * h[2] as usize)?;
            if ty == 0x03 {
                ints(3)?; // ECN counts
            }
        }
        0x06 => {
            let h = ints(2)?; // offset, length
            *crypto = true;
            *b = b.get(h[1] as usize..)?;
        }
        0x1c | 0x1d => {
            // error code, (frame type: transport close only), reason length
            let h = ints(if ty == 0x1c { 3 } else { 2 })?;
            k.close += 1;
            *k.close_codes.entry(h[0]).or_default() += 1;
            *b = b.get(*h.last()? as usize..)?;
        }
        _ => return None,
    }
    Some(())
}

/// Datagrams the kernel dropped on our sockets for want of buffer space (the last field of
/// /proc/net/udp), so that a count of what came back is known to be complete.
fn receive_drops(ports: &[u16]) -> Option<u64> {
    let t = std::fs::read_to_string("/proc/net/udp").ok()?;
    let mut drops = 0;
    for line in t.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = f
            .get(1)
            .and_then(|a| a.split(':').nth(1))
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        if port.is_some_and(|p| ports.contains(&p)) {
            drops += f.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Some(drops)
}
