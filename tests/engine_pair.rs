//! Engine-level pair harness: two sans-I/O engines (a server and a client) joined by a
//! simulated datagram network with a deterministic PRNG for loss, reordering and delay, driven
//! by a manual clock that jumps straight to the next event (a delivery, an engine timer or an
//! application wake-up) and never sleeps. Every loop is bounded by a step count and a simulated
//! time limit, and fails loudly when nothing is left that could make progress.
//!
//! Covers deliverable 7 of issue 3: handshake, Retry, many streams both directions, conclude
//! and reset, flow control with a slow reader, 10% loss with every byte delivered in order,
//! idle timeout, shutdown, and the scheduler property (idle connections cost no work).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use osslquic::consts::{SSL_VERIFY_PEER, X509_V_OK};
use osslquic::quic::conn::{ConnGuard, ConnState, RecvEnd, SendError};
use osslquic::quic::engine::{ConnId, Engine};
use osslquic::quic::stream::{PartState, StreamFault};
use osslquic::ssl::alpn::AlpnChoice;
use osslquic::ssl::ctx::{Method, SslCtx, VerifyResult};
use quinn_proto::{ApplicationClose, ConnectionError, Dir, EcnCodepoint, Side, StreamId, VarInt};

/// Stream receive window the contexts configure (`stream_receive_window` in ctx.rs).
const STREAM_WINDOW: usize = 8 << 20;
/// Hard bound on loop iterations of any single `run_until`.
const MAX_STEPS: u64 = 2_000_000;
const ALPN: &[u8] = b"\x04test";

/// The engine's connection key (its own id, never reused, not quinn's handle).
type Ch = ConnId;

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn handshake_completes() {
    let mut p = Pair::new(Link::delay_ms(5), false, 1);
    let (cch, sch, verify) = p.handshake();
    assert!(
        p.client.conn(cch).unwrap().connected,
        "client not connected"
    );
    assert!(
        p.server.conn(sch).unwrap().connected,
        "server not connected"
    );
    assert_eq!(p.net.retries, 0, "no Retry expected with validation off");
    assert_eq!(p.accepted, vec![sch], "exactly one connection to accept");
    assert!(
        p.server.conn(sch).unwrap().held,
        "an accepted connection is held"
    );
    assert_eq!(
        verify.code.load(std::sync::atomic::Ordering::Relaxed),
        X509_V_OK,
        "certificate chain to the test CA should verify"
    );
    assert_eq!(
        alpn(&p.client.conn(cch).unwrap()).as_deref(),
        Some(&b"test"[..])
    );
    assert_eq!(
        alpn(&p.server.conn(sch).unwrap()).as_deref(),
        Some(&b"test"[..])
    );
    // Over a 5 ms one-way link the server completes after 1.5 round trips at the earliest.
    assert!(
        p.elapsed() >= Duration::from_millis(15),
        "took {:?}",
        p.elapsed()
    );
}

#[test]
fn retry_validates_address_once() {
    let mut p = Pair::new(Link::delay_ms(5), true, 2);
    let (cch, sch, _) = p.handshake();
    assert!(p.client.conn(cch).unwrap().connected);
    assert!(p.server.conn(sch).unwrap().connected);
    // One Retry, though the X25519MLKEM768 ClientHello (issue 16) takes two Initial
    // datagrams, each without a token: the second is the same client's (`RETRY_DEDUP`).
    assert_eq!(p.net.retries, 1, "server should send exactly one Retry");
    assert_eq!(p.accepted, vec![sch], "exactly one connection accepted");
    assert!(p.server.accept_queue_len() == 0);
    assert_eq!(
        p.server.conn_count(),
        1,
        "the Retry must not leave a connection"
    );
    // Retry costs one more round trip: 2.5 before the server completes.
    assert!(
        p.elapsed() >= Duration::from_millis(25),
        "took {:?}",
        p.elapsed()
    );
}

/// After a Retry, a ClientHello too big for one datagram (as OpenSSL 3.5's and browsers' are,
/// with X25519MLKEM768; here a long ALPN list) arrives in two token-bearing Initials. The
/// server must answer the second one at once: the handshake takes 2.5 round trips, not a
/// client probe timeout (issue 12: the server acknowledged both and sent no ServerHello).
fn retry_with_split_client_hello(select: bool) {
    let mut p = Pair::new(Link::delay_ms(5), true, 11);
    if select {
        let c = ctxs();
        let sctx = SslCtx::new(Method::QuicServer);
        sctx.use_certificate_chain_file(&c.paths.0).unwrap();
        sctx.use_private_key_file(&c.paths.1).unwrap();
        sctx.set_alpn_select(Some(Arc::new(|offer: &[Vec<u8>]| {
            match offer.iter().find(|p| p.as_slice() == b"test") {
                Some(p) => AlpnChoice::Use(p.clone()),
                None => AlpnChoice::Fatal,
            }
        })));
        p.server = sim_engine(Some(sctx.server_config().unwrap()));
        p.server.set_validate(true);
    }
    let cch = connect_with_long_alpn(&mut p);
    p.finish_handshake("split ClientHello handshake", cch, Duration::from_secs(30));
    // Each datagram of the first flight draws a Retry; the client follows the first only.
    assert!(p.net.retries >= 1, "a Retry");
    assert!(
        p.net.client_initials_after_retry >= 2,
        "the ClientHello should span two Initials after the Retry (saw {})",
        p.net.client_initials_after_retry
    );
    assert_eq!(
        alpn(&p.client.conn(cch).unwrap()).as_deref(),
        Some(&b"test"[..])
    );
    // Client Initial, Retry, two Initials, the server's flight, the client's Finished: 2.5
    // round trips of 10 ms. A probe timeout (initial RTT 333 ms) would add far more.
    assert!(
        p.elapsed() <= Duration::from_millis(40),
        "took {:?}: the server waited for a retransmission",
        p.elapsed()
    );
}

#[test]
fn retry_with_client_hello_in_two_initials() {
    retry_with_split_client_hello(false);
}

#[test]
fn retry_with_client_hello_in_two_initials_alpn_callback() {
    retry_with_split_client_hello(true);
}

/// After a Retry, OpenSSL 3.5's client resends only what its first datagram carried and keeps
/// the rest of its ClientHello in flight until its loss timer declares it lost; a client that
/// runs its timers only when a datagram arrives then waits for the server, which has sent
/// only an acknowledgement. Modelled here by losing the client's second post-Retry Initial
/// and running the client's timers only on receipt: the server must nudge it (issue 12; the
/// handshake stalled until the server's idle timeout before).
#[test]
fn incomplete_client_hello_after_retry_is_nudged() {
    let mut p = Pair::new(Link::delay_ms(5), true, 12);
    p.client_timers_on_receive = true;
    p.net.drop_client_initial_after_retry = Some(2);
    let cch = connect_with_long_alpn(&mut p);
    p.finish_handshake("nudged handshake", cch, Duration::from_secs(5));
    assert!(p.net.dropped >= 1, "the ClientHello's tail was lost");
    // Retry (1 RTT), Initials (0.5), the nudge after 2 ms, the resent tail (1 RTT), the
    // server's flight and the client's Finished (1 RTT): about 3.5 RTT plus the nudge delay.
    assert!(
        p.elapsed() <= Duration::from_millis(100),
        "took {:?}",
        p.elapsed()
    );
}

/// Without a Retry, a server may send a client whose address is not proven at most three
/// times what it received from it (RFC 9000 section 8.1). Here the ClientHello (two
/// datagrams: its X25519MLKEM768 key share) is all the client gets through, and the server's
/// certificate is big enough that its first flight needs more than three times that.
/// quinn-proto alone let the last datagram start with a byte of allowance left and padded it:
/// 727 bytes over (issue 16's amplification defect; `conn::AmpLimit`).
#[test]
fn amplification_limit_holds_for_a_big_first_flight() {
    let mut p = Pair::new(Link::delay_ms(5), false, 21);
    p.server = sim_engine(Some(big_cert_server().server_config().unwrap()));
    p.server.set_validate(false);
    p.net.client_datagrams_max = Some(2);
    // The server answers the first datagram (an acknowledgement) before the second arrives,
    // as on a real network: its flight then does not end on a whole datagram.
    p.net.client_datagram_later = Some((2, Duration::from_millis(1)));
    p.connect();
    p.run_until("probes", Duration::from_secs(10), |p| {
        p.elapsed() >= Duration::from_secs(5)
    });
    let (got, sent) = (p.net.client_bytes_passed, p.net.server_bytes_sent);
    assert!(p.net.client_datagrams > 2, "the client went on probing");
    assert!(
        got >= 2400,
        "the ClientHello took two datagrams ({got} bytes)"
    );
    assert!(sent <= 3 * got, "the server sent {sent} bytes for {got}");
    assert!(
        sent + 1200 > 3 * got,
        "the server sent {sent} bytes for {got}: the limit was not reached, the case proves nothing"
    );
    assert!(
        !p.server
            .accept_next()
            .is_some_and(|c| c.lock("test").connected)
    );
}

/// A server context whose certificate names 300 hosts (about 9 KB): its first flight is
/// bigger than three ClientHellos.
/// An engine on the simulated network's clock: time is only what the test passes.
fn sim_engine(server: Option<Arc<quinn_proto::ServerConfig>>) -> Engine {
    let e = Engine::new(server);
    e.link().use_given_time();
    e
}

fn big_cert_server() -> SslCtx {
    let key = rcgen::KeyPair::generate().unwrap();
    let names = (0..300)
        .map(|i| format!("host-{i:03}.example.test"))
        .chain(std::iter::once("localhost".to_string()))
        .collect::<Vec<_>>();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::path::Path::new(&ctxs().paths.0).parent().unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    std::fs::write(path("big-cert.pem"), cert.pem()).unwrap();
    std::fs::write(path("big-key.pem"), key.serialize_pem()).unwrap();
    let ctx = SslCtx::new(Method::QuicServer);
    ctx.use_certificate_chain_file(&path("big-cert.pem"))
        .unwrap();
    ctx.use_private_key_file(&path("big-key.pem")).unwrap();
    ctx.set_alpn(ALPN).unwrap();
    ctx
}

/// A client whose ClientHello needs two Initial datagrams (a long ALPN list), connected.
fn connect_with_long_alpn(p: &mut Pair) -> Ch {
    let mut wire = Vec::new();
    for i in 0..8u8 {
        wire.push(200);
        wire.extend(std::iter::repeat_n(b'a' + i, 200));
    }
    wire.extend_from_slice(ALPN);
    let cctx = SslCtx::new(Method::QuicClient);
    cctx.load_verify_file(&ctxs().paths.2).unwrap();
    cctx.set_verify(SSL_VERIFY_PEER);
    cctx.set_alpn(&wire).unwrap();
    let cfg = cctx
        .client_config(None, Arc::new(VerifyResult::default()))
        .unwrap();
    p.client
        .connect(p.now, cfg, server_addr(), "localhost")
        .unwrap()
}

#[test]
fn many_streams_both_directions() {
    const N: u64 = 50;
    let mut p = Pair::new(Link::delay_ms(5), false, 3);
    let (cch, sch, _) = p.handshake();
    let mut c_out = Outbox::default();
    let mut s_out = Outbox::default();
    for _ in 0..N {
        let id = p
            .client
            .open_stream(cch, Dir::Bi)
            .expect("client bidi credit");
        c_out.add(id, stream_payload(id));
        let id = p
            .server
            .open_stream(sch, Dir::Bi)
            .expect("server bidi credit");
        s_out.add(id, stream_payload(id));
    }
    let mut c_in = Inbox::default();
    let mut s_in = Inbox::default();
    p.run_until("50 streams each way", Duration::from_secs(30), |p| {
        c_out.pump(&mut p.client, cch);
        s_out.pump(&mut p.server, sch);
        c_in.pump(&mut p.client, cch);
        s_in.pump(&mut p.server, sch);
        c_in.finished() == N as usize && s_in.finished() == N as usize
    });
    for (inbox, who, opener) in [
        (&s_in, "server", Side::Client),
        (&c_in, "client", Side::Server),
    ] {
        assert_eq!(inbox.streams.len(), N as usize, "{who}: streams seen");
        for (id, st) in &inbox.streams {
            assert_eq!(
                id.initiator(),
                opener,
                "{who}: {id} has the wrong initiator"
            );
            assert_eq!(id.dir(), Dir::Bi);
            assert!(st.fin, "{who}: {id} lacks FIN");
            let want = stream_payload(*id);
            assert_eq!(st.data.len(), want.len(), "{who}: {id} length");
            assert!(st.data == want, "{who}: {id} content differs");
        }
    }
    // Every stream's data and FIN end up acknowledged (the engine's `acked` set).
    p.run_until("all FINs acknowledged", Duration::from_secs(10), |p| {
        c_out
            .ids()
            .all(|id| p.client.conn(cch).unwrap().acked.contains(&id))
            && s_out
                .ids()
                .all(|id| p.server.conn(sch).unwrap().acked.contains(&id))
    });
}

/// The stream limit (quic/transport.rs, MAX_STREAMS: 100 of each direction, OpenSSL's own
/// offer): a peer gets 100 bidi and 100 uni streams open at once, every byte delivered, and
/// not one more.
#[test]
fn peer_opens_the_stream_limit_each_way_at_once() {
    // quic/transport.rs's MAX_STREAMS (crate-private, so that cbindgen keeps it out of the C
    // header).
    const MAX_STREAMS: u64 = 100;
    let mut p = Pair::new(Link::delay_ms(5), false, 11);
    let (cch, sch, _) = p.handshake();
    let payload = |id: StreamId| {
        let v = VarInt::from(id).into_inner();
        pattern(v, 50 + (v % 300) as usize)
    };
    let dirs = [Dir::Bi, Dir::Uni];
    // A fresh connection offers MAX_STREAMS of each direction, no more.
    let mut opened: [Vec<StreamId>; 2] = [Vec::new(), Vec::new()];
    for d in dirs {
        while let Some(id) = p.client.open_stream(cch, d) {
            opened[d as usize].push(id);
        }
        assert_eq!(
            opened[d as usize].len() as u64,
            MAX_STREAMS,
            "{d:?} offered"
        );
    }
    // Write each stream's bytes but conclude none, so that all are open at once.
    let mut written: HashMap<StreamId, usize> = HashMap::new();
    let mut s_in = Inbox::default();
    let all_open = |p: &Pair, s_in: &Inbox, written: &HashMap<StreamId, usize>| {
        s_in.streams.len() as u64 == 2 * MAX_STREAMS
            && s_in
                .streams
                .iter()
                .all(|(id, st)| st.data.len() == payload(*id).len())
            && written.len() as u64 == 2 * MAX_STREAMS
            && written.iter().all(|(id, n)| *n == payload(*id).len())
            && p.client.conn(cch).unwrap().open_blocked.iter().all(|b| *b)
    };
    p.run_until("100 + 100 streams open", Duration::from_secs(60), |p| {
        for d in dirs {
            while (opened[d as usize].len() as u64) < MAX_STREAMS
                && !p.client.conn(cch).unwrap().open_blocked[d as usize]
            {
                match p.client.open_stream(cch, d) {
                    Some(id) => opened[d as usize].push(id),
                    None => break,
                }
            }
        }
        for id in opened.iter().flatten() {
            let want = payload(*id);
            let n = written.entry(*id).or_insert(0);
            while *n < want.len() {
                match write(&mut p.client, cch, *id, &want[*n..]) {
                    Ok(k) => *n += k,
                    Err(SendError::Blocked) => break,
                    Err(e) => panic!("write on {id} failed: {e:?}"),
                }
            }
        }
        s_in.pump(&mut p.server, sch);
        // Try past the limit too: the 101st must be refused (open_blocked stays set).
        if opened.iter().all(|o| o.len() as u64 == MAX_STREAMS) {
            for d in dirs {
                if !p.client.conn(cch).unwrap().open_blocked[d as usize] {
                    assert_eq!(p.client.open_stream(cch, d), None, "{d:?} beyond the limit");
                }
            }
        }
        all_open(p, &s_in, &written)
    });
    for d in dirs {
        let mut q = conn(&mut p.server, sch);
        assert_eq!(q.stream_offer(d), MAX_STREAMS, "{d:?} offer");
        assert_eq!(q.peer_open_streams(d), MAX_STREAMS, "{d:?} open at once");
    }
    assert!(s_in.streams.values().all(|st| !st.fin));
    // Conclude them all: every byte and FIN arrives, in order, on the right stream.
    for id in opened.iter().flatten() {
        finish(&mut p.client, cch, *id);
    }
    p.run_until("200 streams concluded", Duration::from_secs(60), |p| {
        s_in.pump(&mut p.server, sch);
        s_in.finished() as u64 == 2 * MAX_STREAMS
    });
    for (id, st) in &s_in.streams {
        assert_eq!(id.initiator(), Side::Client);
        assert!(st.data == payload(*id), "{id}: content differs");
    }
}

#[test]
fn conclude_reset_and_stop() {
    let mut p = Pair::new(Link::delay_ms(5), false, 4);
    let (cch, sch, _) = p.handshake();
    let concluded = p.client.open_stream(cch, Dir::Bi).unwrap();
    let resetting = p.client.open_stream(cch, Dir::Bi).unwrap();
    let uni_reset = p.client.open_stream(cch, Dir::Uni).unwrap();
    let stopped = p.client.open_stream(cch, Dir::Bi).unwrap();
    assert_eq!(
        write(&mut p.client, cch, concluded, b"concluded stream"),
        Ok(16)
    );
    finish(&mut p.client, cch, concluded);
    let first = pattern(40, 1000);
    assert_eq!(write(&mut p.client, cch, resetting, &first), Ok(1000));
    assert_eq!(write(&mut p.client, cch, stopped, b"stop me"), Ok(7));
    // A uni stream reset before the peer has seen anything: RESET_STREAM alone opens it.
    assert_eq!(write(&mut p.client, cch, uni_reset, b"never mind"), Ok(10));
    reset(&mut p.client, cch, uni_reset, 0x99);

    let mut got: HashMap<StreamId, Vec<u8>> = HashMap::new();
    let mut fins: Vec<StreamId> = Vec::new();
    let mut resets: HashMap<StreamId, u64> = HashMap::new();
    let mut pump = |p: &mut Pair| {
        let new: Vec<StreamId> = conn(&mut p.server, sch).incoming.drain(..).collect();
        for id in new {
            got.entry(id).or_default();
        }
        let ids: Vec<StreamId> = got.keys().copied().collect();
        for id in ids {
            if fins.contains(&id) || resets.contains_key(&id) {
                continue;
            }
            let r = read(&mut p.server, sch, id, usize::MAX);
            got.get_mut(&id).unwrap().extend_from_slice(&r.data);
            if r.fin {
                fins.push(id);
            }
            if let Some(code) = r.reset {
                resets.insert(id, code);
            }
        }
        (got.clone(), fins.clone(), resets.clone())
    };
    // Phase 1: the concluded stream arrives whole; the partial stream's first 1000 bytes land.
    p.run_until("conclude + partial data", Duration::from_secs(10), |p| {
        let (got, fins, _) = pump(p);
        fins.contains(&concluded)
            && got.get(&resetting).is_some_and(|d| d.len() == 1000)
            && got.get(&stopped).is_some_and(|d| d.len() == 7)
    });
    let (got1, _, _) = pump(&mut p);
    assert_eq!(got1[&concluded], b"concluded stream");
    assert!(got1[&resetting] == first, "pre-reset data differs");
    // Phase 2: reset after data was delivered, and the server stops the other stream.
    reset(&mut p.client, cch, resetting, 0x1234);
    stop(&mut p.server, sch, stopped, 0x77);
    // The server answers on the concluded bidi stream and concludes its half too.
    assert_eq!(write(&mut p.server, sch, concluded, b"reply"), Ok(5));
    finish(&mut p.server, sch, concluded);
    let mut reply = Vec::new();
    let mut reply_fin = false;
    p.run_until("reset, stop and reply", Duration::from_secs(10), |p| {
        let (_, _, resets) = pump(p);
        if !reply_fin {
            let r = read(&mut p.client, cch, concluded, usize::MAX);
            assert!(r.reset.is_none(), "reply stream reset");
            reply.extend_from_slice(&r.data);
            reply_fin = r.fin;
        }
        resets.contains_key(&resetting)
            && resets.contains_key(&uni_reset)
            && reply_fin
            && stopped_code(&mut p.client, cch, stopped).is_some()
    });
    let (_, fins, resets) = pump(&mut p);
    assert_eq!(
        fins,
        vec![concluded],
        "only the concluded stream ends with FIN"
    );
    assert_eq!(resets.get(&resetting), Some(&0x1234), "bidi reset code");
    assert_eq!(resets.get(&uni_reset), Some(&0x99), "uni reset code");
    assert_eq!(reply, b"reply");
    assert_eq!(
        write(&mut p.client, cch, stopped, b"more"),
        Err(SendError::Stopped(0x77)),
        "a write after STOP_SENDING fails with its code"
    );
    let sent_stop = stopped_code(&mut p.client, cch, stopped);
    assert_eq!(
        sent_stop,
        Some(0x77),
        "send_stream().stopped() reports the code"
    );
    p.run_until(
        "concluded stream acknowledged",
        Duration::from_secs(10),
        |p| {
            p.client.conn(cch).unwrap().acked.contains(&concluded)
                && p.server.conn(sch).unwrap().acked.contains(&concluded)
        },
    );
    assert!(
        !p.client.conn(cch).unwrap().acked.contains(&resetting),
        "a reset stream must not be reported as fully acknowledged"
    );
}

#[test]
fn flow_control_with_slow_reader() {
    const TOTAL: usize = 12 << 20;
    const READ_PER_MS: usize = 16 << 10;
    let mut p = Pair::new(Link::delay_ms(5), false, 5);
    let (cch, sch, _) = p.handshake();
    let data = pattern(5, TOTAL);
    let id = p.client.open_stream(cch, Dir::Bi).unwrap();
    let mut written = 0usize;
    let mut finished = false;
    let mut blocked = false;
    let mut blocked_episodes = 0u32;
    let mut first_block_at = None;
    let mut received: Vec<u8> = Vec::with_capacity(TOTAL);
    let mut fin = false;
    let mut sid = None;
    let mut next_read = p.now;
    let mut reads = 0u32;
    let mut max_gap = 0usize;
    p.run_until("slow reader", Duration::from_secs(60), |p| {
        while written < TOTAL {
            let end = (written + (256 << 10)).min(TOTAL);
            match write(&mut p.client, cch, id, &data[written..end]) {
                Ok(n) => {
                    written += n;
                    blocked = false;
                }
                Err(SendError::Blocked) => {
                    if !blocked {
                        blocked_episodes += 1;
                        first_block_at.get_or_insert(written);
                    }
                    blocked = true;
                    break;
                }
                Err(e) => panic!("write failed: {e:?}"),
            }
        }
        if written == TOTAL && !finished {
            finish(&mut p.client, cch, id);
            finished = true;
        }
        if p.now >= next_read {
            if sid.is_none() {
                sid = p.server.conn(sch).unwrap().incoming.pop_front();
            }
            if let Some(s) = sid {
                assert_eq!(s, id);
                let r = read(&mut p.server, sch, s, READ_PER_MS);
                assert!(r.reset.is_none());
                assert!(r.data.len() <= READ_PER_MS);
                received.extend_from_slice(&r.data);
                fin |= r.fin;
                reads += 1;
            }
            next_read = p.now + Duration::from_millis(1);
        }
        p.app_wake = Some(next_read);
        // The sender can never be further ahead than what the reader consumed plus one window.
        assert!(
            written <= received.len() + STREAM_WINDOW,
            "flow control violated: written {written}, consumed {}",
            received.len()
        );
        max_gap = max_gap.max(written - received.len());
        fin
    });
    assert!(
        blocked_episodes >= 1,
        "sender never saw WriteError::Blocked"
    );
    assert!(
        first_block_at.unwrap() >= STREAM_WINDOW / 2,
        "blocked early at {first_block_at:?}: the window was not used"
    );
    assert!(
        max_gap >= STREAM_WINDOW / 2,
        "reader was not the bottleneck (max gap {max_gap})"
    );
    assert!(
        reads as usize >= TOTAL / READ_PER_MS,
        "reader was not slow ({reads} reads)"
    );
    assert_eq!(received.len(), TOTAL);
    assert!(received == data, "content differs");
}

#[test]
fn ten_percent_loss_with_reordering_delivers_every_byte() {
    const TOTAL: usize = 5 << 20;
    let link = Link {
        loss_pct: 10,
        reorder_pct: 10,
        delay: Duration::from_millis(10),
        reorder_extra: Duration::from_millis(8),
    };
    let mut p = Pair::new(link, false, 6);
    let (cch, sch, _) = p.handshake();
    let data = pattern(6, TOTAL);
    let id = p.client.open_stream(cch, Dir::Uni).unwrap();
    let mut out = Outbox::default();
    out.add(id, data.clone());
    let mut inbox = Inbox::default();
    p.run_until("5 MB under 10% loss", Duration::from_secs(300), |p| {
        out.pump(&mut p.client, cch);
        inbox.pump(&mut p.server, sch);
        if let Some(st) = inbox.streams.get(&id) {
            let n = st.data.len();
            assert!(
                st.data[..] == data[..n],
                "out-of-order or corrupt bytes before {n}"
            );
        }
        inbox.finished() == 1
    });
    let st = &inbox.streams[&id];
    assert_eq!(st.data.len(), TOTAL);
    assert!(st.data == data);
    let rate = p.net.dropped as f64 / p.net.sent as f64;
    assert!(
        (0.07..0.13).contains(&rate),
        "loss rate {rate} ({} of {})",
        p.net.dropped,
        p.net.sent
    );
    assert!(p.net.overtaken > 0, "no datagram was actually reordered");
    let lost = p.client.conn(cch).unwrap().stats().path.lost_packets;
    eprintln!(
        "loss: {TOTAL} bytes in {:?} simulated; {} datagrams, {} dropped, {} overtaken, \
         {lost} packets declared lost by the sender",
        p.elapsed(),
        p.net.sent,
        p.net.dropped,
        p.net.overtaken
    );
    assert!(lost > 0, "quinn detected no lost packets");
    p.run_until(
        "FIN acknowledged under loss",
        Duration::from_secs(30),
        |p| p.client.conn(cch).unwrap().acked.contains(&id),
    );
}

/// 1 MB from the client over a path with ECN behaviour `ecn`; returns the connections.
fn transfer_with_ecn(ecn: NetEcn, seed: u64) -> (Pair, Ch, Ch) {
    const TOTAL: usize = 1 << 20;
    let mut p = Pair::new(Link::delay_ms(10), false, seed);
    p.net.ecn = ecn;
    let (cch, sch, _) = p.handshake();
    let data = pattern(seed, TOTAL);
    let id = p.client.open_stream(cch, Dir::Uni).unwrap();
    let mut out = Outbox::default();
    out.add(id, data.clone());
    let mut inbox = Inbox::default();
    p.run_until("1 MB with ECN", Duration::from_secs(60), |p| {
        out.pump(&mut p.client, cch);
        inbox.pump(&mut p.server, sch);
        inbox.finished() == 1
    });
    assert!(inbox.streams[&id].data == data, "every byte, in order");
    (p, cch, sch)
}

/// Over a path that carries ECN, each side reads the other's ECT(0) marks and counts them
/// back in its ACKs, and quinn keeps marking after those ACKs: ECN validated both ways
/// (RFC 9000 section 13.4.2).
#[test]
fn ecn_is_validated_where_the_path_carries_it() {
    let (mut p, cch, sch) = transfer_with_ecn(NetEcn::Carry, 21);
    for (side, ch) in [(Side::Client, cch), (Side::Server, sch)] {
        let c = conn(p.engine(side), ch);
        let e = c.ecn_stats;
        assert!(e.sent_ect0 > 0, "{side:?} marked nothing: {e:?}");
        assert!(e.received[0] > 0, "{side:?} read no ECT(0): {e:?}");
        assert_eq!((e.received[1], e.received[2]), (0, 0), "{side:?}: {e:?}");
        assert!(e.marking_after_acks, "{side:?}: ECN not validated: {e:?}");
        assert!(c.stats().frame_rx.acks > 0);
    }
    // The client sent about 1 MB: nearly all of it marked.
    let e = conn(&mut p.client, cch).ecn_stats;
    assert!(e.sent_ect0 > 700, "{e:?}");
    assert_eq!(p.net.ce_marked, 0);
}

/// A path (or BIO) that carries no ECN: the peer's ACKs have no ECN counts, so quinn stops
/// marking after the first of them; the transfer is unaffected ("off cleanly").
#[test]
fn ecn_stops_cleanly_where_the_path_drops_it() {
    let (mut p, cch, sch) = transfer_with_ecn(NetEcn::Bleach, 22);
    for (side, ch) in [(Side::Client, cch), (Side::Server, sch)] {
        let e = conn(p.engine(side), ch).ecn_stats;
        assert_eq!(e.received, [0, 0, 0], "{side:?}: {e:?}");
        assert!(!e.marking_after_acks, "{side:?} still marks: {e:?}");
    }
    // Marked only until the first ACK came back: the handshake's packets, not the 1 MB.
    let e = conn(&mut p.client, cch).ecn_stats;
    assert!(e.sent_ect0 < 20, "{e:?}");
}

/// CE marks from a congested router reach the client, which counts them back in its ACKs;
/// the server takes each increase as a congestion event (no packet was lost) and, the
/// counts being valid, keeps using ECN.
#[test]
fn ce_marks_are_counted_back_and_answered_as_congestion() {
    let (mut p, cch, sch) = transfer_with_ecn(NetEcn::CeFromServerEvery(5), 23);
    assert!(p.net.ce_delivered > 0);
    let ce = conn(&mut p.client, cch).ecn_stats.received[2];
    assert_eq!(
        ce, p.net.ce_delivered,
        "the client read every CE mark delivered"
    );
    // The server has little to send (handshake, ACKs: 1 MB goes the other way), but its
    // packets marked CE must count as congestion on its side.
    let (s, e) = {
        let c = conn(&mut p.server, sch);
        (c.stats(), c.ecn_stats)
    };
    assert!(
        e.marking_after_acks,
        "CE counts are valid ECN feedback: {e:?}"
    );
    assert!(
        s.path.congestion_events > 0,
        "CE marks made no congestion event: {:?}",
        s.path
    );
    assert_eq!(s.path.lost_packets, 0, "congestion from CE alone, not loss");
}

#[test]
fn idle_timeout_in_simulated_time() {
    let real = Instant::now();
    let mut p = Pair::new(Link::delay_ms(5), false, 7);
    let (cch, sch, _) = p.handshake();
    p.net.blackhole = true;
    let cut = p.now;
    let mut seen: [Option<(Duration, Option<ConnectionError>)>; 2] = [None, None];
    p.run_until("both sides time out", Duration::from_secs(60), |p| {
        for (i, ch) in [(0, cch), (1, sch)] {
            let e = if i == 0 { &p.client } else { &p.server };
            if seen[i].is_none() {
                match e.conn(ch) {
                    None => seen[i] = Some((p.now - cut, None)),
                    Some(c) if c.lost.is_some() => {
                        assert!(c.drained, "timed out but not drained");
                        seen[i] = Some((p.now - cut, c.lost.clone()));
                    }
                    Some(_) => {}
                }
            }
        }
        seen.iter().all(Option::is_some)
    });
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "waited in real time"
    );
    for (who, s) in ["client", "server"].iter().zip(&seen) {
        let (at, _) = s.as_ref().unwrap();
        assert!(
            (Duration::from_secs(29)..=Duration::from_secs(32)).contains(at),
            "{who}: idle timeout after {at:?}, want about 30 s"
        );
    }
    let lost: Vec<Option<ConnectionError>> = seen.iter().map(|s| s.clone().unwrap().1).collect();
    assert_eq!(
        lost,
        vec![Some(ConnectionError::TimedOut); 2],
        "[client, server] `lost` after the idle timeout (None: the Conn was already removed \
         from Engine::conns when first seen, so the reason could not be observed)"
    );
    // Quinn forgot both at once (no draining after an idle timeout); releasing the held
    // records frees them.
    p.client.release(cch);
    p.server.release(sch);
    assert!(p.client.conn_count() == 0 && p.server.conn_count() == 0);
    assert_eq!(p.client.next_timeout(), None);
    assert_eq!(p.server.next_timeout(), None);
}

#[test]
fn shutdown_with_application_code() {
    for (closer, code) in [(Side::Client, 0x42u32), (Side::Server, 0x17)] {
        let mut p = Pair::new(Link::delay_ms(5), false, 8 + code as u64);
        let (cch, sch, _) = p.handshake();
        let (ch, peer_ch) = match closer {
            Side::Client => (cch, sch),
            Side::Server => (sch, cch),
        };
        let now = p.now;
        let e = p.engine(closer);
        e.conn(ch)
            .unwrap()
            .close(now, VarInt::from_u32(code), Bytes::from_static(b"bye"));
        e.mark(ch);
        let peer = match closer {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        let mut lost = None;
        let mut removed = false;
        p.run_until("peer sees the close", Duration::from_secs(10), |p| {
            match p.engine(peer).conn(peer_ch) {
                None => removed = true,
                Some(c) => lost = c.lost.clone(),
            }
            removed || lost.is_some()
        });
        let want = ConnectionError::ApplicationClosed(ApplicationClose {
            error_code: VarInt::from_u32(code),
            reason: Bytes::from_static(b"bye"),
        });
        assert_eq!(lost, Some(want), "{closer:?} closed: peer's `lost`");
        // Both sides drain; the held records stay, with their reason, until released.
        p.run_until("both drained", Duration::from_secs(10), |p| {
            p.client.conn(cch).unwrap().drained && p.server.conn(sch).unwrap().drained
        });
        let peer_lost = p.engine(peer).conn(peer_ch).unwrap().lost.is_some();
        assert!(peer_lost, "drained record lost its reason");
        assert_eq!(
            p.client.next_timeout(),
            None,
            "timer left on a drained conn"
        );
        assert_eq!(
            p.server.next_timeout(),
            None,
            "timer left on a drained conn"
        );
        p.client.mark(cch);
        p.server.mark(sch);
        assert!(
            !p.client.has_work() && !p.server.has_work(),
            "a drained connection became tickable"
        );
        p.client.release(cch);
        p.server.release(sch);
        assert!(p.client.conn_count() == 0 && p.server.conn_count() == 0);
        // A new connection on the same engines never reuses the old ids.
        let (cch2, sch2, _) = p.handshake();
        assert_ne!(cch2, cch, "client id reused");
        assert_ne!(sch2, sch, "server id reused");
        assert!(p.client.conn(cch2).unwrap().connected && p.server.conn(sch2).unwrap().connected);
    }
}

/// A fork child (`keep_only`) counts as foreign only datagrams of connections it does not
/// serve: a datagram its own connection's peer sends after that connection drained (a late
/// retransmission, say) is its own, while one with an ID it never issued still counts.
#[test]
fn fork_child_counts_only_others_datagrams_as_foreign() {
    let mut p = Pair::new(Link::delay_ms(5), false, 61);
    let (cch, sch, _) = p.handshake();
    p.server.keep_only(sch);
    // A 1-RTT datagram of the client's, kept to be delivered again once the server drained.
    let id = p.client.open_stream(cch, Dir::Bi).unwrap();
    p.client.conn(cch).unwrap().send(id, b"late").unwrap();
    p.client.mark(cch);
    p.client.process(p.now);
    let mut late = None;
    for (out, txbuf) in p.client.take_transmits() {
        for o in out {
            let d = txbuf[o.off..o.off + o.seg.min(o.len)].to_vec();
            p.net.send(p.now, client_addr(), o.dst, &d);
            late = late.or(Some(d).filter(|d| d[0] & 0x80 == 0));
        }
    }
    let late = late.expect("a short-header datagram from the client");
    let now = p.now;
    p.server
        .conn(sch)
        .unwrap()
        .close(now, VarInt::from_u32(0), Bytes::new());
    p.server.mark(sch);
    p.run_until("both drained", Duration::from_secs(10), |p| {
        p.client.conn(cch).is_none_or(|c| c.drained) && p.server.conn(sch).unwrap().drained
    });
    assert_eq!(p.server.stats().foreign_in, 0, "before the late datagram");
    let (now, ip) = (p.now, Some(server_addr().ip()));
    p.server.handle_datagram(now, client_addr(), ip, &late);
    assert_eq!(
        p.server.stats().foreign_in,
        0,
        "the drained connection's own datagram counted as another's"
    );
    // An ID this process never issued: another connection's, still counted.
    let mut other = late.clone();
    for b in &mut other[1..9] {
        *b ^= 0x5a;
    }
    p.server.handle_datagram(now, client_addr(), ip, &other);
    assert_eq!(
        p.server.stats().foreign_in,
        1,
        "another connection's datagram"
    );
}

#[test]
fn idle_connections_cost_no_work() {
    const N: usize = 100;
    let mut p = Pair::new(Link::delay_ms(1), false, 9);
    let chs: Vec<Ch> = (0..N).map(|_| p.connect().0).collect();
    p.run_until("100 handshakes", Duration::from_secs(10), |p| {
        chs.iter().all(|ch| p.client.conn(*ch).unwrap().connected)
            && p.server.conn_count() == N
            && p.server.connections().all(|c| c.connected)
    });
    // Let acknowledgements, key discards and loss timers settle.
    let settle = p.now + Duration::from_secs(3);
    p.app_wake = Some(settle);
    p.run_until("settle", Duration::from_secs(5), |p| p.now >= settle);
    assert!(!p.server.has_work(), "server still has tickable work");
    assert!(p.net.in_flight.is_empty(), "datagrams still in flight");
    assert_eq!(p.server.conn_count(), N);
    let next = p
        .server
        .next_timeout()
        .expect("idle connections keep an idle timer");
    assert!(next > p.now, "a timer is already due");
    let now = p.now;
    let before = p.server.conn_ticks();
    p.server.handle_timeouts(now);
    p.server.process(now);
    assert_eq!(
        p.server.conn_ticks(),
        before,
        "idle tick did per-connection work"
    );
    assert!(
        p.server.take_transmits().is_empty(),
        "idle tick produced datagrams"
    );
    let just_before = next - Duration::from_micros(1);
    if just_before > now {
        p.server.handle_timeouts(just_before);
        p.server.process(just_before);
        assert_eq!(
            p.server.conn_ticks(),
            before,
            "tick just before the deadline did work"
        );
    }
    // The counter is live: at the deadline the due connection(s) are touched.
    p.server.handle_timeouts(next);
    p.server.process(next);
    assert!(
        p.server.conn_ticks() > before,
        "conn_ticks did not move when a timer fired"
    );
    // Left alone, all of them time out: the server's never-accepted records are freed, the
    // client's held ones keep how they ended.
    p.run_until("100 idle timeouts", Duration::from_secs(60), |p| {
        p.server.conn_count() == 0 && p.client.connections().all(|c| c.drained)
    });
    for ch in &chs {
        assert_eq!(
            p.client.conn(*ch).unwrap().lost,
            Some(ConnectionError::TimedOut)
        );
    }
    assert_eq!(p.server.next_timeout(), None);
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn client_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 50_000))
}
fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 4433))
}

/// xorshift64: deterministic, seedable, no crates.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn chance(&mut self, pct: u32) -> bool {
        self.next() % 100 < pct as u64
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Deterministic bytes for a seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut r = XorShift::new(seed ^ 0xABCD);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The payload a stream carries in the many-streams test: distinct length and bytes per id.
fn stream_payload(id: StreamId) -> Vec<u8> {
    let side = if id.initiator() == Side::Client { 0 } else { 1 };
    let i = id.index();
    let len = 1000 + ((i * 7919 + side * 3571) % 40_000) as usize;
    pattern(1000 + i * 2 + side, len)
}

fn alpn(c: &ConnState) -> Option<Vec<u8>> {
    // The library wraps quinn's TLS session (ssl::session), and its handshake data with it.
    let hd = c.crypto_session().handshake_data()?;
    hd.downcast::<osslquic::ssl::session::QuicHandshake>()
        .ok()?
        .protocol
        .clone()
}

/// Link behaviour, the same in both directions.
#[derive(Clone, Copy)]
struct Link {
    loss_pct: u32,
    reorder_pct: u32,
    delay: Duration,
    /// Extra delay (uniform up to this) for a reordered datagram, so later ones overtake it.
    reorder_extra: Duration,
}

impl Link {
    fn delay_ms(ms: u64) -> Link {
        Link {
            loss_pct: 0,
            reorder_pct: 0,
            delay: Duration::from_millis(ms),
            reorder_extra: Duration::ZERO,
        }
    }
}

struct Datagram {
    src: SocketAddr,
    dst: SocketAddr,
    data: Vec<u8>,
    /// ECN bits of its IP header as delivered (0: Not-ECT).
    ecn: u8,
}

/// What the simulated network does with the ECN bits the engines ask for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NetEcn {
    /// Nothing reaches the receiver (a network BIO that reads no ECN: a datagram pair).
    Bleach,
    /// Delivered as sent (a socket BIO with ECN on).
    Carry,
    /// Delivered as sent, but every Nth ECN-capable datagram from the server arrives CE (a
    /// congested AQM router on the way to the client).
    CeFromServerEvery(u64),
}

struct Net {
    link: Link,
    rng: XorShift,
    /// Keyed by (delivery time, send sequence): delivery order is time, then send order.
    in_flight: BTreeMap<(Instant, u64), Datagram>,
    seq: u64,
    /// Drop everything (a cut cable).
    blackhole: bool,
    sent: u64,
    dropped: u64,
    /// Datagrams delivered after one sent later to the same destination.
    overtaken: u64,
    highest_delivered: HashMap<SocketAddr, u64>,
    /// QUIC v1 Retry packets sent by the server.
    retries: u64,
    /// Datagrams starting with an Initial the client sent after the server's Retry.
    client_initials_after_retry: u64,
    /// Drop the client's Initial datagram with this number (1-based) after the Retry.
    drop_client_initial_after_retry: Option<u64>,
    /// Drop every client datagram after this many.
    client_datagrams_max: Option<u64>,
    /// Delay the client's datagram with this number (1-based) by this much more.
    client_datagram_later: Option<(u64, Duration)>,
    /// Datagrams the client sent, bytes of them the network delivered (or will), bytes the
    /// server sent.
    client_datagrams: u64,
    client_bytes_passed: u64,
    server_bytes_sent: u64,
    /// When set, the destination IDs (this many octets) of the client's short-header
    /// datagrams are recorded here.
    client_dcids: Option<(usize, Vec<Vec<u8>>)>,
    /// ECN on the path, and how many datagrams the network marked CE.
    ecn: NetEcn,
    ecn_capable_from_server: u64,
    ce_marked: u64,
    /// CE-marked datagrams delivered to the client so far.
    ce_delivered: u64,
}

impl Net {
    fn send(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        self.send_ecn(now, src, dst, data, 0);
    }

    /// `send` for a datagram the sender marked with ECN bits `ecn`.
    fn send_ecn(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, data: &[u8], ecn: u8) {
        self.sent += 1;
        let ecn = match self.ecn {
            NetEcn::Bleach => 0,
            NetEcn::Carry => ecn,
            NetEcn::CeFromServerEvery(n) => {
                if src == server_addr() && ecn != 0 {
                    self.ecn_capable_from_server += 1;
                    if self.ecn_capable_from_server.is_multiple_of(n) {
                        self.ce_marked += 1;
                        EcnCodepoint::Ce as u8
                    } else {
                        ecn
                    }
                } else {
                    ecn
                }
            }
        };
        if let Some((len, seen)) = &mut self.client_dcids
            && src == client_addr()
            && data.first().is_some_and(|b| b & 0x80 == 0)
            && data.len() > *len
        {
            seen.push(data[1..1 + *len].to_vec());
        }
        if src == server_addr() && is_retry(data) {
            self.retries += 1;
        }
        if src == server_addr() {
            self.server_bytes_sent += data.len() as u64;
        }
        if src == client_addr() {
            self.client_datagrams += 1;
            if self
                .client_datagrams_max
                .is_some_and(|n| self.client_datagrams > n)
            {
                self.dropped += 1;
                return;
            }
        }
        if src == client_addr() && self.retries > 0 && is_initial(data) {
            self.client_initials_after_retry += 1;
            if self.drop_client_initial_after_retry == Some(self.client_initials_after_retry) {
                self.dropped += 1;
                return;
            }
        }
        if self.blackhole || self.rng.chance(self.link.loss_pct) {
            self.dropped += 1;
            return;
        }
        if src == client_addr() {
            self.client_bytes_passed += data.len() as u64;
        }
        let mut at = now + self.link.delay;
        if let Some((n, later)) = self.client_datagram_later
            && src == client_addr()
            && self.client_datagrams == n
        {
            at += later;
        }
        if self.rng.chance(self.link.reorder_pct) {
            let extra = self.link.reorder_extra.as_micros() as u64;
            at += Duration::from_micros(1 + self.rng.below(extra));
        }
        self.seq += 1;
        let d = Datagram {
            src,
            dst,
            data: data.to_vec(),
            ecn,
        };
        self.in_flight.insert((at, self.seq), d);
    }

    fn pop_due(&mut self, now: Instant) -> Vec<Datagram> {
        let mut due = Vec::new();
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), d) = entry.remove_entry();
            let hi = self.highest_delivered.entry(d.dst).or_insert(0);
            if seq < *hi {
                self.overtaken += 1;
            }
            *hi = (*hi).max(seq);
            if d.dst == client_addr() && d.ecn == EcnCodepoint::Ce as u8 {
                self.ce_delivered += 1;
            }
            due.push(d);
        }
        due
    }

    fn next_at(&self) -> Option<Instant> {
        self.in_flight.keys().next().map(|k| k.0)
    }
}

/// Long header, fixed bit, type 3: a QUIC v1 Retry.
fn is_retry(d: &[u8]) -> bool {
    d.first().is_some_and(|b| b & 0xf0 == 0xf0)
}

/// Long header, fixed bit, type 0: a QUIC v1 Initial.
fn is_initial(d: &[u8]) -> bool {
    d.first().is_some_and(|b| b & 0xf0 == 0xc0)
}

struct Ctxs {
    server: SslCtx,
    /// The certificate chain, key and CA files (kept for tests that make their own contexts).
    paths: (String, String, String),
}

/// A CA and a "localhost" certificate it signs, loaded through SslCtx from PEM files once per
/// test process; the files stay in a per-process temporary directory for tests that make
/// their own contexts.
fn ctxs() -> &'static Ctxs {
    static CTXS: OnceLock<Ctxs> = OnceLock::new();
    CTXS.get_or_init(|| {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "osslquic test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "osslquic-engine-pair-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        std::fs::write(path("cert.pem"), cert.pem()).unwrap();
        std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();

        let server = SslCtx::new(Method::QuicServer);
        server
            .use_certificate_chain_file(&path("cert.pem"))
            .unwrap();
        server.use_private_key_file(&path("key.pem")).unwrap();
        server.check_private_key().unwrap();
        server.set_alpn(ALPN).unwrap();
        Ctxs {
            server,
            paths: (path("cert.pem"), path("key.pem"), path("ca.pem")),
        }
    })
}

/// A client context of its own (a context keeps the NEW_TOKEN tokens servers gave it, which
/// would spare a later test's client the Retry it checks for).
fn client_ctx() -> SslCtx {
    let client = SslCtx::new(Method::QuicClient);
    client.load_verify_file(&ctxs().paths.2).unwrap();
    client.set_verify(SSL_VERIFY_PEER);
    client.set_alpn(ALPN).unwrap();
    client
}

struct Pair {
    base: Instant,
    now: Instant,
    client: Engine,
    server: Engine,
    /// The client's context (its own: see `client_ctx`).
    client_ctx: SslCtx,
    net: Net,
    /// A wake-up the simulated application asked for (e.g. a slow reader's next read).
    app_wake: Option<Instant>,
    /// Server connections taken from the accept queue, in order.
    accepted: Vec<Ch>,
    /// The client runs its timers only in a step where a datagram reached it, as a program
    /// that waits on its socket without the event timeout does (OpenSSL's ddd-05 client).
    client_timers_on_receive: bool,
}

impl Pair {
    fn new(link: Link, validate: bool, seed: u64) -> Pair {
        let c = ctxs();
        let mut server = sim_engine(Some(c.server.server_config().unwrap()));
        server.set_validate(validate);
        let base = Instant::now();
        Pair {
            base,
            now: base,
            client: sim_engine(None),
            server,
            client_ctx: client_ctx(),
            net: Net {
                link,
                rng: XorShift::new(seed),
                in_flight: BTreeMap::new(),
                seq: 0,
                blackhole: false,
                sent: 0,
                dropped: 0,
                overtaken: 0,
                highest_delivered: HashMap::new(),
                retries: 0,
                client_initials_after_retry: 0,
                drop_client_initial_after_retry: None,
                client_datagrams_max: None,
                client_datagram_later: None,
                client_datagrams: 0,
                client_bytes_passed: 0,
                server_bytes_sent: 0,
                client_dcids: None,
                ecn: NetEcn::Bleach,
                ecn_capable_from_server: 0,
                ce_marked: 0,
                ce_delivered: 0,
            },
            client_timers_on_receive: false,
            app_wake: None,
            accepted: Vec::new(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    fn engine(&mut self, side: Side) -> &mut Engine {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// Starts a client connection; its verification result lands in the returned cell.
    fn connect(&mut self) -> (Ch, Arc<VerifyResult>) {
        let verify = Arc::new(VerifyResult::default());
        // Not X509_V_OK, so a verifier that never ran cannot pass for one that succeeded.
        verify.code.store(-1, std::sync::atomic::Ordering::Relaxed);
        let cfg = self.client_ctx.client_config(None, verify.clone()).unwrap();
        let ch = self
            .client
            .connect(self.now, cfg, server_addr(), "localhost")
            .unwrap();
        (ch, verify)
    }

    /// Takes what the server's accept queue offers, as SSL_accept_connection does: the
    /// connection becomes held, so the engine keeps its record (and how it ended) after it
    /// drains, until `release`.
    fn accept(&mut self) {
        while let Some(cell) = self.server.accept_next() {
            assert!(cell.lock("test").held, "an accepted connection is held");
            self.accepted.push(cell.id);
        }
    }

    /// One connection, driven until both sides report `connected`.
    fn handshake(&mut self) -> (Ch, Ch, Arc<VerifyResult>) {
        let (cch, verify) = self.connect();
        let sch = self.finish_handshake("handshake", cch, Duration::from_secs(30));
        (cch, sch, verify)
    }

    /// Drives client connection `cch` and the server connection it makes until both are
    /// connected; returns the server's.
    fn finish_handshake(&mut self, what: &str, cch: Ch, limit: Duration) -> Ch {
        let first = self.accepted.len();
        self.run_until(what, limit, |p| {
            p.accept();
            p.client.conn(cch).unwrap().connected
                && p.accepted[first..]
                    .first()
                    .is_some_and(|h| p.server.conn(*h).unwrap().connected)
        });
        self.accepted[first]
    }

    /// Moves every datagram both engines produced onto the network, one per GSO segment.
    fn flush(&mut self) {
        for side in [Side::Client, Side::Server] {
            let src = match side {
                Side::Client => client_addr(),
                Side::Server => server_addr(),
            };
            let now = self.now;
            let e = match side {
                Side::Client => &mut self.client,
                Side::Server => &mut self.server,
            };
            for (out, txbuf) in e.take_transmits() {
                for o in out {
                    assert!(o.seg > 0 && o.len > 0, "empty transmit {o:?}");
                    for seg in txbuf[o.off..o.off + o.len].chunks(o.seg) {
                        self.net.send_ecn(now, src, o.dst, seg, o.ecn);
                    }
                }
            }
        }
    }

    /// One round at the current time: deliver what is due, fire timers, drive, transmit.
    fn step(&mut self) {
        self.flush();
        let mut client_got = false;
        for d in self.net.pop_due(self.now) {
            let e = if d.dst == server_addr() {
                &mut self.server
            } else if d.dst == client_addr() {
                client_got = true;
                &mut self.client
            } else {
                panic!("datagram to unknown address {}", d.dst);
            };
            let ecn = EcnCodepoint::from_bits(d.ecn);
            e.handle_datagram_ecn(self.now, d.src, Some(d.dst.ip()), ecn, &d.data);
        }
        if client_got || !self.client_timers_on_receive {
            self.client.handle_timeouts(self.now);
        }
        self.server.handle_timeouts(self.now);
        for e in [&mut self.client, &mut self.server] {
            e.process(self.now);
        }
        self.flush();
    }

    /// Steps until `cond` (which may also act as the application) holds. Time jumps to the
    /// earliest of the next delivery, either engine's timer and the application's wake-up.
    /// Fails after MAX_STEPS, after `limit` of simulated time, or when nothing can progress.
    fn run_until(&mut self, what: &str, limit: Duration, mut cond: impl FnMut(&mut Pair) -> bool) {
        let start = self.now;
        for _ in 0..MAX_STEPS {
            self.step();
            if cond(self) {
                return;
            }
            if self.client.has_work()
                || self.server.has_work()
                || self.net.next_at().is_some_and(|t| t <= self.now)
            {
                continue;
            }
            let app = self.app_wake.filter(|&t| t > self.now);
            let client_timer = if self.client_timers_on_receive {
                None
            } else {
                self.client.next_timeout()
            };
            let next = [
                self.net.next_at(),
                client_timer,
                self.server.next_timeout(),
                app,
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else {
                panic!(
                    "{what}: stalled at t={:?}: nothing in flight, no timers, no work",
                    self.elapsed()
                );
            };
            self.now = self.now.max(next);
            assert!(
                self.now - start <= limit,
                "{what}: not done after {limit:?} of simulated time (t={:?}, sent {}, dropped {})",
                self.elapsed(),
                self.net.sent,
                self.net.dropped
            );
        }
        panic!(
            "{what}: not done after {MAX_STEPS} steps (t={:?})",
            self.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Application side: stream I/O through the connection's methods (quic::conn), marking the
// connection as the SSL layer does.
// ---------------------------------------------------------------------------------------------

fn conn(e: &mut Engine, ch: Ch) -> ConnGuard<'_> {
    e.conn(ch).expect("connection gone")
}

fn write(e: &mut Engine, ch: Ch, id: StreamId, data: &[u8]) -> Result<usize, SendError> {
    let r = conn(e, ch).send(id, data);
    // Mark only on a change: a connection marked on every no-op poll would always look
    // busy and the clock would never advance.
    if matches!(r, Ok(n) if n > 0) {
        e.mark(ch);
    }
    r
}

fn finish(e: &mut Engine, ch: Ch, id: StreamId) {
    assert!(conn(e, ch).finish(id), "finish");
    e.mark(ch);
}

fn reset(e: &mut Engine, ch: Ch, id: StreamId, code: u32) {
    assert!(conn(e, ch).reset(id, VarInt::from_u32(code)), "reset");
    e.mark(ch);
}

fn stop(e: &mut Engine, ch: Ch, id: StreamId, code: u32) {
    assert!(conn(e, ch).stop(id, VarInt::from_u32(code)), "stop");
    e.mark(ch);
}

/// The STOP_SENDING code the peer sent for our send half, if any.
fn stopped_code(e: &mut Engine, ch: Ch, id: StreamId) -> Option<u64> {
    conn(e, ch).stopped(id)
}

#[derive(Default, Debug)]
struct Read {
    data: Vec<u8>,
    fin: bool,
    reset: Option<u64>,
}

/// Reads up to `max` bytes in order; reports FIN and a peer reset.
fn read(e: &mut Engine, ch: Ch, id: StreamId, max: usize) -> Read {
    let mut out = Read::default();
    let (_, end, _) = conn(e, ch).recv(id, max, |b| out.data.extend_from_slice(b));
    match end {
        Some(RecvEnd::Fin) => out.fin = true,
        Some(RecvEnd::Reset(code)) => out.reset = Some(code),
        _ => {}
    }
    // Not on quinn's "transmit" alone: it answers that again for a credit update it has
    // queued but could not send yet (pacing), and marking on it would keep the connection busy
    // at a standstill of the simulated clock. The engine sends it when the pacing timer fires.
    if !out.data.is_empty() || out.fin || out.reset.is_some() {
        e.mark(ch);
    }
    out
}

/// Streams to send: data written as credit allows, then FIN.
#[derive(Default)]
struct Outbox {
    streams: Vec<OutStream>,
}

struct OutStream {
    id: StreamId,
    data: Vec<u8>,
    sent: usize,
    finished: bool,
}

impl Outbox {
    fn add(&mut self, id: StreamId, data: Vec<u8>) {
        self.streams.push(OutStream {
            id,
            data,
            sent: 0,
            finished: false,
        });
    }

    fn ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams.iter().map(|s| s.id)
    }

    fn pump(&mut self, e: &mut Engine, ch: Ch) {
        for s in self.streams.iter_mut().filter(|s| !s.finished) {
            while s.sent < s.data.len() {
                match write(e, ch, s.id, &s.data[s.sent..]) {
                    Ok(n) => s.sent += n,
                    Err(SendError::Blocked) => break,
                    Err(err) => panic!("write on {} failed: {err:?}", s.id),
                }
            }
            if s.sent == s.data.len() {
                finish(e, ch, s.id);
                s.finished = true;
            }
        }
    }
}

/// Peer streams received: everything read as it arrives, until FIN. A reset fails the test.
#[derive(Default)]
struct Inbox {
    streams: HashMap<StreamId, InStream>,
}

#[derive(Default)]
struct InStream {
    data: Vec<u8>,
    fin: bool,
}

impl Inbox {
    fn pump(&mut self, e: &mut Engine, ch: Ch) {
        let new: Vec<StreamId> = conn(e, ch).incoming.drain(..).collect();
        for id in new {
            assert!(
                self.streams.insert(id, InStream::default()).is_none(),
                "{id} offered twice in `incoming`"
            );
        }
        for (id, st) in self.streams.iter_mut().filter(|(_, s)| !s.fin) {
            let r = read(e, ch, *id, usize::MAX);
            assert!(r.reset.is_none(), "{id} reset unexpectedly: {:?}", r.reset);
            st.data.extend_from_slice(&r.data);
            st.fin = r.fin;
        }
    }

    fn finished(&self) -> usize {
        self.streams.values().filter(|s| s.fin).count()
    }
}

/// The object model reads a connection between drives (under the connection's lock only), so
/// quinn's state must never be ahead of what a drive made of it. A peer's CONNECTION_CLOSE
/// handed to the engine leaves the connection closed *and* its loss recorded by the time the
/// engine returns. Before the fix the datagram was only handed to quinn, the drive came at the
/// next `process`: a DDD demo thread saw "closed" from SSL_poll and no close info.
#[test]
fn a_received_close_is_recorded_when_the_datagram_is_handled() {
    let mut p = Pair::new(Link::delay_ms(5), false, 11);
    let (cch, sch, _) = p.handshake();
    let now = p.now;
    p.client
        .conn(cch)
        .unwrap()
        .close(now, VarInt::from_u32(7), Bytes::from_static(b"bye"));
    p.client.mark(cch);
    p.client.process(now);
    p.flush();
    let mut closed = false;
    for _ in 0..100 {
        let Some(at) = p.net.next_at() else { break };
        p.now = at;
        for d in p.net.pop_due(at) {
            if d.dst != server_addr() {
                continue;
            }
            p.server
                .handle_datagram(p.now, d.src, Some(d.dst.ip()), &d.data);
            let c = p.server.conn(sch).expect("server connection");
            if c.is_closed() {
                assert!(c.lost.is_some(), "closed, but the loss is not recorded yet");
                closed = true;
            }
        }
        if closed {
            break;
        }
    }
    assert!(closed, "the server never saw the client's close");
}

/// Runs `f` on a connection, locked, as an application call does; with `mark`, a change it
/// made is driven (reads leave credit updates to the timers: see `read`).
fn app<T>(e: &mut Engine, ch: Ch, mark: bool, f: impl FnOnce(&mut ConnState) -> T) -> T {
    let mut c = conn(e, ch);
    let r = f(&mut c);
    let changed = c.take_dirty();
    drop(c);
    if mark && changed {
        e.mark(ch);
    }
    r
}

/// The application's stream layer (`quic::stream`): a default stream made on each side, a
/// peek that does not consume, pending counts, the FIN reported once and then the states.
#[test]
fn app_stream_peek_read_fin_and_states() {
    let mut p = Pair::new(Link::delay_ms(5), false, 12);
    let (cch, sch, _) = p.handshake();
    let bi = Some(Dir::Bi);
    assert_eq!(
        app(&mut p.server, sch, false, |c| c
            .take_default_stream(bi, false)),
        Err(StreamFault::WouldBlock),
        "a reader's default stream waits for the peer's"
    );
    assert_eq!(
        app(&mut p.client, cch, true, |c| c
            .take_default_stream(None, true)),
        Err(StreamFault::NoDefaultStream)
    );
    let id = app(&mut p.client, cch, true, |c| {
        c.take_default_stream(bi, true)
    })
    .unwrap();
    assert_eq!(
        app(&mut p.client, cch, true, |c| c.default_stream()),
        Some(id)
    );
    assert_eq!(
        app(&mut p.client, cch, true, |c| c.write_stream(
            id,
            b"hello world",
            true
        )),
        Ok(11)
    );
    assert_eq!(
        app(&mut p.client, cch, true, |c| c
            .write_stream(id, b"more", false)),
        Err(StreamFault::Concluded)
    );
    assert_eq!(
        app(&mut p.client, cch, true, |c| c.write_state(id)),
        PartState::Finished
    );
    p.run_until("the peer's stream arrives", Duration::from_secs(10), |p| {
        app(&mut p.server, sch, false, |c| {
            c.take_default_stream(bi, false)
        })
        .is_ok()
    });
    assert_eq!(
        app(&mut p.server, sch, false, |c| c.default_stream()),
        Some(id)
    );
    p.run_until("every byte and the FIN", Duration::from_secs(10), |p| {
        app(&mut p.server, sch, false, |c| {
            c.stream_pending(id) == 11 && c.readiness(id).readable
        })
    });
    let mut buf = [0u8; 64];
    let s = &mut p.server;
    assert_eq!(
        app(s, sch, false, |c| c.read_stream(id, &mut buf[..5], true)),
        Ok(5)
    );
    assert_eq!(&buf[..5], b"hello", "peek");
    assert_eq!(
        app(s, sch, false, |c| c.stream_pending(id)),
        11,
        "a peek consumes nothing"
    );
    assert_eq!(app(s, sch, false, |c| c.read_state(id)), PartState::Ok);
    assert_eq!(
        app(s, sch, false, |c| c.read_stream(id, &mut buf[..5], false)),
        Ok(5)
    );
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(
        app(s, sch, false, |c| c.read_stream(id, &mut buf, false)),
        Ok(6)
    );
    assert_eq!(&buf[..6], b" world");
    assert!(
        app(s, sch, false, |c| c.stream_has_readable(id)),
        "the FIN is still to report"
    );
    assert_eq!(
        app(s, sch, false, |c| c.read_stream(id, &mut buf, true)),
        Err(StreamFault::Fin)
    );
    assert!(
        app(s, sch, false, |c| c.stream_has_readable(id)),
        "a peek does not report it"
    );
    assert_eq!(
        app(s, sch, false, |c| c.read_stream(id, &mut buf, false)),
        Err(StreamFault::Fin)
    );
    assert!(
        !app(s, sch, false, |c| c.stream_has_readable(id)),
        "reported once"
    );
    assert_eq!(
        app(s, sch, false, |c| c.read_state(id)),
        PartState::Finished
    );
    assert_eq!(app(s, sch, false, |c| c.write_state(id)), PartState::Ok);
    let r = app(s, sch, false, |c| c.readiness(id));
    assert!(
        r.readable && r.writable && !r.reset_by_peer && !r.stopped_by_peer,
        "{r:?}"
    );
}

/// Resets both ways, STOP_SENDING, a stream released by its object, and the wrong
/// direction of uni streams, through the application's stream layer.
#[test]
fn app_stream_resets_release_and_directions() {
    let mut p = Pair::new(Link::delay_ms(5), false, 13);
    let (cch, sch, _) = p.handshake();
    let open = |p: &mut Pair, dir| app(&mut p.client, cch, true, |c| c.open_stream(dir)).unwrap();
    let (released, reset, uni) = (
        open(&mut p, Dir::Bi),
        open(&mut p, Dir::Bi),
        open(&mut p, Dir::Uni),
    );
    for id in [released, reset, uni] {
        assert_eq!(
            app(&mut p.client, cch, true, |c| c
                .write_stream(id, b"x", false)),
            Ok(1)
        );
    }
    assert_eq!(
        app(&mut p.client, cch, true, |c| c.reset_stream(reset, 1 << 62)),
        Err(StreamFault::BadCode)
    );
    assert_eq!(
        app(&mut p.client, cch, true, |c| c.reset_stream(reset, 0x42)),
        Ok(())
    );
    assert_eq!(
        app(&mut p.client, cch, true, |c| c.write_state(reset)),
        PartState::ResetLocal
    );
    assert_eq!(
        app(&mut p.client, cch, true, |c| c
            .write_stream(reset, b"y", false)),
        Err(StreamFault::ResetLocally(0x42))
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        app(&mut p.client, cch, false, |c| c.read_state(uni)),
        PartState::WrongDir
    );
    assert_eq!(
        app(&mut p.client, cch, false, |c| c
            .read_stream(uni, &mut buf, false)),
        Err(StreamFault::SendOnly)
    );
    p.run_until("three streams arrive", Duration::from_secs(10), |p| {
        app(&mut p.server, sch, false, |c| c.incoming.len() == 3)
    });
    assert_eq!(
        app(&mut p.server, sch, false, |c| c.write_state(uni)),
        PartState::WrongDir
    );
    assert_eq!(
        app(&mut p.server, sch, true, |c| c
            .write_stream(uni, b"z", false)),
        Err(StreamFault::RecvOnly)
    );
    p.run_until("the reset arrives", Duration::from_secs(10), |p| {
        app(&mut p.server, sch, false, |c| {
            c.readiness(reset).reset_by_peer
        })
    });
    assert_eq!(
        app(&mut p.server, sch, false, |c| c
            .read_stream(reset, &mut buf, false)),
        Err(StreamFault::ResetByPeer(0x42)),
        "a reset discards what was not read"
    );
    assert_eq!(
        app(&mut p.server, sch, false, |c| c.read_state(reset)),
        PartState::ResetRemote
    );
    assert_eq!(
        app(&mut p.server, sch, false, |c| c.stream_reset_code(reset)),
        Some(0x42)
    );
    // The server's object for `released` is freed before the stream ended: its send side is
    // reset and the client is asked to stop, both with code 0.
    app(&mut p.server, sch, true, |c| c.release_stream(released));
    p.run_until("release seen by the client", Duration::from_secs(10), |p| {
        app(&mut p.client, cch, false, |c| {
            let r = c.readiness(released);
            r.reset_by_peer && r.stopped_by_peer
        })
    });
    let c = &mut p.client;
    assert_eq!(
        app(c, cch, false, |c| c.stream_stop_code(released)),
        Some(0)
    );
    assert_eq!(
        app(c, cch, false, |c| c.write_state(released)),
        PartState::ResetRemote
    );
    assert_eq!(
        app(c, cch, true, |c| c.write_stream(released, b"w", false)),
        Err(StreamFault::StoppedByPeer(0))
    );
    assert_eq!(
        app(c, cch, false, |c| c.read_state(released)),
        PartState::ResetRemote
    );
}

/// A panic while a connection is handled (here injected into its next drive, as a defect in
/// quinn or rustls would raise it) closes that connection explicitly and only it: it reads
/// as lost with INTERNAL_ERROR, the peer is told at once (quinn offers only an
/// application-level CONNECTION_CLOSE: code 1, "internal error"), the endpoint forgets it,
/// and another connection of the same server carries data on.
#[test]
fn a_panic_while_a_connection_is_driven_closes_that_connection_only() {
    let mut p = Pair::new(Link::delay_ms(5), false, 14);
    let (cch, sch, _) = p.handshake();
    let (cch2, sch2, _) = p.handshake();
    p.server
        .cell(sch)
        .expect("server connection")
        .inject_panic();
    let id = app(&mut p.client, cch, true, |c| c.open_stream(Dir::Bi)).unwrap();
    assert_eq!(
        app(&mut p.client, cch, true, |c| c
            .write_stream(id, b"trigger", true)),
        Ok(7)
    );
    p.run_until(
        "the server's connection breaks",
        Duration::from_secs(10),
        |p| p.server.conn(sch).is_some_and(|c| c.broken),
    );
    {
        let c = p.server.conn(sch).expect("held by its object");
        match &c.lost {
            Some(ConnectionError::TransportError(e)) => {
                assert_eq!(e.code, quinn_proto::TransportErrorCode::INTERNAL_ERROR);
                assert!(e.reason.contains("injected by a test"), "{}", e.reason);
            }
            other => panic!("lost: {other:?}"),
        }
        assert!(
            !c.drained,
            "forgotten at once: a stateless reset could overtake the close"
        );
    }
    p.run_until("the client is told", Duration::from_secs(10), |p| {
        p.client.conn(cch).unwrap().lost.is_some()
    });
    match &p.client.conn(cch).unwrap().lost {
        Some(ConnectionError::ApplicationClosed(a)) => {
            assert_eq!(a.error_code, VarInt::from_u32(1));
            assert_eq!(&a.reason[..], b"internal error");
        }
        other => panic!("the client saw {other:?}"),
    }
    let broke = p.now;
    p.run_until("forgotten after its linger", Duration::from_secs(5), |p| {
        p.server.conn(sch).unwrap().drained
    });
    assert!(
        p.now - broke >= Duration::from_millis(900),
        "lingered {:?}",
        p.now - broke
    );
    // The other connection is untouched.
    let id2 = app(&mut p.client, cch2, true, |c| c.open_stream(Dir::Bi)).unwrap();
    assert_eq!(
        app(&mut p.client, cch2, true, |c| c.write_stream(
            id2,
            b"still here",
            true
        )),
        Ok(10)
    );
    p.run_until(
        "the other connection's data",
        Duration::from_secs(10),
        |p| {
            let n = app(&mut p.server, sch2, false, |c| {
                c.accept_incoming(None);
                c.stream_pending(id2)
            });
            n == 10
        },
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        app(&mut p.server, sch2, false, |c| c
            .read_stream(id2, &mut buf, false)),
        Ok(10)
    );
    assert_eq!(&buf[..10], b"still here");
    assert!(!p.server.conn(sch2).unwrap().broken);
}

/// QUIC slowloris (issue 14): a client that starts a handshake and goes silent costs the
/// server a queued connection until the idle timeout (30 s, `transport::config`), then
/// nothing: the connection leaves the accept queue and the engine forgets it. Many of them
/// at once are bounded by the accept queue (`tests/c/test_bounds.c`).
#[test]
fn a_handshake_never_finished_times_out_and_frees_its_state() {
    let mut p = Pair::new(Link::delay_ms(5), false, 15);
    let _ = p.connect();
    p.run_until(
        "the server has the connection",
        Duration::from_secs(1),
        |p| p.server.accept_queue_len() == 1,
    );
    assert_eq!(p.server.conn_count(), 1);
    assert!(
        p.server.connections().all(|c| !c.connected),
        "the handshake completed"
    );
    // The client goes silent: the server runs alone on its timers, its output lost.
    let start = p.now;
    let mut now = p.now;
    for _ in 0..10_000 {
        if p.server.conn_count() == 0 {
            break;
        }
        let Some(t) = p.server.next_timeout() else {
            break;
        };
        now = now.max(t);
        p.server.handle_timeouts(now);
        p.server.process(now);
        let _ = p.server.take_transmits();
    }
    assert_eq!(
        p.server.conn_count(),
        0,
        "the half-open connection is still held"
    );
    assert_eq!(p.server.accept_queue_len(), 0);
    let took = now - start;
    assert!(
        took >= Duration::from_secs(29) && took <= Duration::from_secs(31),
        "freed after {took:?}"
    );
}

/// A listener without address validation keeps at most `max_unvalidated` handshakes in
/// progress with unproven addresses: beyond it a new client is sent a Retry (and connects
/// after it); handshakes that finished or timed out no longer count.
#[test]
fn unvalidated_handshakes_beyond_the_bound_are_retried() {
    let mut p = Pair::new(Link::delay_ms(5), false, 16);
    p.server.set_max_unvalidated(1);
    let connect = |p: &mut Pair, what: &str| {
        let (cch, _) = p.connect();
        p.finish_handshake(what, cch, Duration::from_secs(5));
    };
    connect(&mut p, "first client");
    assert_eq!(p.server.stats().retries, 0, "the first client was retried");
    // The first handshake finished: it no longer counts.
    connect(&mut p, "second client");
    assert_eq!(
        p.server.stats().retries,
        0,
        "a finished handshake still counted"
    );

    // A spoofed Initial: its handshake starts and never goes on (the server's answers go to
    // a client endpoint that does not know the connection).
    let mut spoof = sim_engine(None);
    let cfg = client_ctx()
        .client_config(None, Arc::new(VerifyResult::default()))
        .unwrap();
    spoof
        .connect(p.now, cfg, server_addr(), "localhost")
        .unwrap();
    spoof.process(p.now);
    for (out, txbuf) in spoof.take_transmits() {
        for o in out {
            for seg in txbuf[o.off..o.off + o.len].chunks(o.seg) {
                p.server
                    .handle_datagram(p.now, client_addr(), Some(server_addr().ip()), seg);
            }
        }
    }
    p.server.process(p.now);
    assert_eq!(
        p.server.accept_queue_len(),
        1,
        "the spoofed handshake is not queued"
    );
    p.accept();
    let spoofed = *p.accepted.last().unwrap();

    // At the bound: the next client proves its address with a Retry, then connects. (A new
    // client: the earlier ones hold NEW_TOKEN tokens, which prove their address already.)
    p.client_ctx = client_ctx();
    connect(&mut p, "client after the spoofed one");
    assert_eq!(p.server.stats().retries, 1, "beyond the bound, no Retry");
    assert_eq!(p.net.retries, 1);

    // The spoofed handshake times out (30 s idle); then clients connect without a Retry.
    p.run_until(
        "the spoofed handshake times out",
        Duration::from_secs(40),
        |p| p.server.conn(spoofed).unwrap().lost.is_some(),
    );
    connect(&mut p, "client after the timeout");
    assert_eq!(
        p.server.stats().retries,
        1,
        "a timed-out handshake still counted"
    );
}

/// A listener given a QUIC-LB configuration issues only connection IDs that a load balancer
/// decodes to its server ID: every short-header packet the client sends carries one.
#[test]
fn quic_lb_connection_ids_carry_the_server_id() {
    use osslquic::quic::lb::LbConfig;
    let key = [7u8; 16];
    for (sid, nonce, key) in [
        (&[0x31, 0x41, 0x59][..], 6, Some(&key)), // four-pass
        (&[0x27, 0x18][..], 14, Some(&key)),      // single-pass
        (&[0x05][..], 5, None),                   // plaintext
    ] {
        let cfg = Arc::new(LbConfig::new(1, sid, nonce, key, true).unwrap());
        let mut p = Pair::new(Link::delay_ms(5), true, 17);
        assert!(p.server.set_lb(Some(cfg.clone())));
        p.net.client_dcids = Some((cfg.cid_len(), Vec::new()));
        let (cch, sch, _) = p.handshake();
        let id = p.client.open_stream(cch, Dir::Bi).unwrap();
        let data = pattern(5, 20_000);
        assert_eq!(write(&mut p.client, cch, id, &data), Ok(data.len()));
        finish(&mut p.client, cch, id);
        let mut got = Vec::new();
        p.run_until("the data arrives", Duration::from_secs(10), |p| {
            let r = read(&mut p.server, sch, id, 1 << 20);
            got.extend_from_slice(&r.data);
            r.fin
        });
        assert_eq!(got, data);
        let (_, seen) = p.net.client_dcids.take().unwrap();
        assert!(!seen.is_empty(), "no short-header packet from the client");
        for d in &seen {
            assert_eq!(
                cfg.decode(d).as_deref(),
                Some(sid),
                "a connection ID the balancer cannot route: {d:02x?}"
            );
        }
        // Not with a prefork worker's IDs, and not once there are connections.
        assert!(!p.server.become_worker(1));
        assert!(!p.server.set_lb(None));
    }
}

/// A server engine as a fleet member: from its own context (own certificate objects, own
/// rustls and quinn configurations) given `secret`, validating addresses with Retry.
fn fleet_server(secret: &[u8]) -> Engine {
    let (cert, key, _) = &ctxs().paths;
    let ctx = SslCtx::new(Method::QuicServer);
    ctx.use_certificate_chain_file(cert).unwrap();
    ctx.use_private_key_file(key).unwrap();
    ctx.set_alpn(ALPN).unwrap();
    ctx.set_fleet_secret(secret).unwrap();
    let mut e = sim_engine(Some(ctx.server_config().unwrap()));
    e.set_validate(true);
    assert!(e.set_reset_key(&ctx.fleet_keys().unwrap().reset));
    e
}

/// Servers given the same fleet secret accept each other's Retry tokens and reset each
/// other's connections (the client recognises the reset); with another secret, neither.
#[test]
fn fleet_servers_share_tokens_and_stateless_resets() {
    const SECRET: &[u8] = b"a fleet secret of thirty-two b..";
    for same in [true, false] {
        // The Retry comes from one server, the Initial with its token reaches another.
        let mut p = Pair::new(Link::delay_ms(5), true, 18);
        p.server = fleet_server(SECRET);
        let mut other = fleet_server(if same {
            SECRET
        } else {
            b"another fleet's secret, 32 bytes"
        });
        let (cch, _) = p.connect();
        p.run_until("the first server's Retry", Duration::from_secs(5), |p| {
            p.net.retries == 1
        });
        std::mem::swap(&mut p.server, &mut other);
        if same {
            p.finish_handshake(
                "with the token at the other server",
                cch,
                Duration::from_secs(5),
            );
            assert_eq!(p.server.stats().retries, 0, "the token was not accepted");
        } else {
            // The token does not open: the client is asked again, ignores that (RFC 9000
            // §17.2.5.2) and gives up at its idle timeout.
            p.run_until("the token refused", Duration::from_secs(60), |p| {
                p.client.conn(cch).unwrap().lost.is_some()
            });
            assert!(!p.client.conn(cch).unwrap().connected);
            assert_eq!(p.server.stats().accepted, 0);
        }

        // A connection served by one server; its packets reach another, which knows nothing
        // of it and answers with a stateless reset.
        let mut p = Pair::new(Link::delay_ms(5), true, 19);
        p.server = fleet_server(SECRET);
        let (cch, _, _) = p.handshake();
        p.server = fleet_server(if same {
            SECRET
        } else {
            b"another fleet's secret, 32 bytes"
        });
        let id = p.client.open_stream(cch, Dir::Bi).unwrap();
        let data = pattern(6, 4000);
        assert_eq!(write(&mut p.client, cch, id, &data), Ok(data.len()));
        p.run_until(
            "the client's connection ends",
            Duration::from_secs(60),
            |p| p.client.conn(cch).unwrap().lost.is_some(),
        );
        let lost = p.client.conn(cch).unwrap().lost.clone();
        if same {
            assert!(matches!(lost, Some(ConnectionError::Reset)), "{lost:?}");
        } else {
            assert!(!matches!(lost, Some(ConnectionError::Reset)), "{lost:?}");
        }
    }
}

/// Each congestion controller answers a loss its own way (OSSLQUIC_CTX_set_congestion_control
/// chooses it): at the first congestion event NewReno halves its window, Cubic keeps 0.7 of it
/// (quinn's beta), and BBR, which does not take loss as its signal, cuts it less.
#[test]
fn congestion_controllers_answer_a_loss_their_own_way() {
    use osslquic::quic::transport::Congestion;
    for (cc, lo, hi) in [
        (Congestion::NewReno, 0.45, 0.55),
        (Congestion::Cubic, 0.65, 0.75),
        (Congestion::Bbr, 0.8, f64::INFINITY),
    ] {
        let link = Link {
            loss_pct: 2,
            ..Link::delay_ms(10)
        };
        let mut p = Pair::new(link, false, 22);
        p.client.set_transport(osslquic::quic::transport::Options {
            congestion: cc,
            ..Default::default()
        });
        let (cch, sch, _) = p.handshake();
        let data = pattern(22, 8 << 20);
        let id = p.client.open_stream(cch, Dir::Uni).unwrap();
        let mut out = Outbox::default();
        out.add(id, data);
        let mut inbox = Inbox::default();
        // The window just before the first congestion event, and just after it.
        let (mut before, mut after) = (0u64, 0u64);
        p.run_until("a congestion event", Duration::from_secs(120), |p| {
            out.pump(&mut p.client, cch);
            inbox.pump(&mut p.server, sch);
            let path = p.client.conn(cch).unwrap().stats().path;
            if path.congestion_events == 0 {
                before = path.cwnd;
                false
            } else {
                after = path.cwnd;
                true
            }
        });
        let ratio = after as f64 / before as f64;
        eprintln!(
            "{}: window {before} -> {after} at the first loss ({ratio:.2})",
            cc.name()
        );
        assert!(
            (lo..=hi).contains(&ratio),
            "{}: window {before} -> {after} ({ratio:.2}), expected {lo}..{hi}",
            cc.name()
        );
    }
}

/// Fleet servers issuing QUIC-LB IDs with their own server IDs: once a balancer hands a lost
/// server's IDs to another (as it does when that server is gone), the other answers the
/// client with a stateless reset at once, which the client accepts (shared reset key),
/// instead of leaving it to its idle timeout.
#[test]
fn fleet_servers_with_quic_lb_reset_each_others_connections() {
    use osslquic::quic::lb::LbConfig;
    const SECRET: &[u8] = b"a fleet secret of thirty-two b..";
    let lb = |sid: u8| Arc::new(LbConfig::new(0, &[sid], 6, None, false).unwrap());
    let mut p = Pair::new(Link::delay_ms(5), true, 20);
    p.server = fleet_server(SECRET);
    assert!(p.server.set_lb(Some(lb(1))));
    let (cch, _, _) = p.handshake();
    p.server = fleet_server(SECRET);
    assert!(p.server.set_lb(Some(lb(2))));
    let id = p.client.open_stream(cch, Dir::Bi).unwrap();
    let data = pattern(7, 4000);
    assert_eq!(write(&mut p.client, cch, id, &data), Ok(data.len()));
    p.run_until(
        "the client's connection is reset",
        Duration::from_secs(2),
        |p| p.client.conn(cch).unwrap().lost.is_some(),
    );
    let lost = p.client.conn(cch).unwrap().lost.clone();
    assert!(matches!(lost, Some(ConnectionError::Reset)), "{lost:?}");
}
