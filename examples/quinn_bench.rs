//! The reference side of `make bench` (QUIC part): the same work as bench/quic_*.c, done by
//! quinn and quinn-proto directly, measured in the same run on the same machine.
//!
//!   cargo run --release --example quinn_bench -- [--certs DIR] bulk [BYTES]
//!   cargo run --release --example quinn_bench -- [--certs DIR] handshakes [SECONDS]
//!   cargo run --release --example quinn_bench -- [--certs DIR] idle [CONNS] [SECONDS]
//!   cargo run --release --example quinn_bench -- [--certs DIR] memory [CONNS]
//!
//! bulk: quinn (tokio, one current-thread runtime per process) moves BYTES (default
//!   200,000,000) from a server process (this program re-run as `bulk-server`) to the client
//!   on one bidirectional stream over UDP on 127.0.0.1; byte i is i % 251; the client reads
//!   into a 256 KiB buffer and checks the first and last byte of every read; the client
//!   closes once it has the FIN, the server waits for that close. Timing and CPU windows as in
//!   bench/quic_bulk.c. Prints `bulk quinn bytes=N secs=S mbps=M client_cpu=C server_cpu=C`.
//! handshakes: quinn-proto alone, one thread, no sockets: a client and a server `Endpoint`
//!   with datagrams shuttled in memory. One handshake = connect, run until both sides report
//!   Connected, client closes, the close reaches the server; the server connection drains on
//!   its timers in real time (as a listener's would). Full handshakes: session resumption is
//!   off. One handshake first, untimed: its time is printed as first_ms (what a program's
//!   first connection waits). Prints `handshakes quinn-proto count=N secs=S hps=R first_ms=F`.
//!   examples/handshakes_paired.rs runs this figure and osslquic's in one process.
//! idle: a quinn server process (`idle-server`) accepts CONNS connections from one client
//!   endpoint in this process; once all are up and have settled, the server measures its own
//!   CPU (getrusage) over SECONDS while the connections sit idle. Prints
//!   `idle quinn conns=N secs=S server_cpu=C setup=S setup_cpu_server=C` (the last: the server
//!   process's CPU from its start to the measurement).
//! memory: quinn-proto alone, one thread, no sockets, a virtual clock: one server `Endpoint`
//!   and CONNS clients, each with its own `Endpoint` (as each osslquic client `SSL` has its
//!   own), connected one after another; each pair runs until its handshake is done and its
//!   timers are quiet for 1 s of virtual time (acks, HANDSHAKE_DONE, MTU probes), then sits
//!   idle. Heap in use (glibc's mallinfo2) is read before, with everything up, and after the
//!   clients are dropped; prints `memory quinn-proto conns=N server_heap_kb=S client_heap_kb=C`
//!   (KiB per connection). quinn's own defaults (`TransportConfig::default()`) with the stream
//!   limits osslquic offered its peers before issue 14 (1000 bidi + 1000 uni; 100 + 100 now),
//!   as quinn users would configure.
//!
//! Both sides use the same certificates (CERTDIR/chain.pem, key.pem, ca.pem; the client
//! verifies the server), ALPN "osslqbench", TLS 1.3 on aws-lc-rs, and the transport settings
//! osslquic applies to every connection (src/quic/transport.rs `config()`: 30 s idle timeout,
//! 8 MiB stream / 16 MiB connection receive windows, 16 MiB send window, 100 + 100 streams),
//! so what differs is the implementation, not the tuning (except
//! `memory`, above). Every wait is bounded.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub(crate) type Res<T> = Result<T, Box<dyn Error>>;

const PERIOD: usize = 251;
const CHUNK: usize = PERIOD * 1044; // bytes per write: about 256 KiB, as quic_bulk.c
const RDBUF: usize = 256 * 1024;
pub(crate) const ALPN: &[u8] = b"osslqbench";
const LIMIT: Duration = Duration::from_secs(60);

/// The command line: the certificate directory (`--certs DIR`, default build/certs) and the
/// other arguments (also for examples/handshakes_paired.rs).
pub(crate) fn args() -> (String, Vec<String>) {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut certs = "build/certs".to_string();
    if args.first().map(String::as_str) == Some("--certs") && args.len() > 1 {
        certs = args.remove(1);
        args.remove(0);
    }
    (certs, args)
}

fn main() {
    let (certs, args) = args();
    let num = |i: usize, d: f64| -> f64 { args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d) };
    let r = match args.first().map(String::as_str) {
        Some("bulk") => bulk_client(&certs, num(1, 200e6) as u64),
        Some("bulk-server") => bulk_server(&certs, num(1, 200e6) as u64),
        Some("handshakes") => handshakes(&certs, num(1, 2.0)),
        Some("idle") => idle_client(&certs, num(1, 10000.0) as usize, num(2, 10.0)),
        Some("idle-server") => idle_server(&certs, num(1, 10000.0) as usize, num(2, 10.0)),
        Some("memory") => memory(&certs, num(1, 1000.0) as usize),
        _ => {
            eprintln!(
                "usage: quinn_bench [--certs DIR] bulk [BYTES] | handshakes [SECONDS] | idle [CONNS] [SECONDS] | memory [CONNS]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("quinn_bench: {e}");
        std::process::exit(1);
    }
}

// ---- configuration shared by every figure

/// Same values as osslquic's `transport::config()` in src/quic/transport.rs, including its
/// stream limit (100 of each direction), so that a handshake costs both the same stream
/// state.
fn transport() -> quinn_proto::TransportConfig {
    let mut t = quinn_proto::TransportConfig::default();
    t.max_idle_timeout(Some(quinn_proto::VarInt::from_u32(30_000).into()));
    t.stream_receive_window(quinn_proto::VarInt::from_u32(8 << 20));
    t.receive_window(quinn_proto::VarInt::from_u32(16 << 20));
    t.send_window(16 << 20);
    t.max_concurrent_bidi_streams(quinn_proto::VarInt::from_u32(100));
    t.max_concurrent_uni_streams(quinn_proto::VarInt::from_u32(100));
    t
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn server_config(certs: &str) -> Res<quinn_proto::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(format!("{certs}/chain.pem"))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(format!("{certs}/key.pem"))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut sc = quinn_proto::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(
        Arc::new(tls),
    )?));
    sc.transport_config(Arc::new(transport()));
    Ok(sc)
}

fn client_config(certs: &str) -> Res<quinn_proto::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(format!("{certs}/ca.pem"))? {
        roots.add(c?)?;
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // Every handshake is a full one: osslquic's client does not resume sessions either.
    tls.resumption = rustls::client::Resumption::disabled();
    let mut cc =
        quinn_proto::ClientConfig::new(Arc::new(QuicClientConfig::try_from(Arc::new(tls))?));
    cc.transport_config(Arc::new(transport()));
    Ok(cc)
}

/// User + system CPU seconds of this process.
fn cpu() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to an rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A UDP socket on 127.0.0.1 with 4 MiB buffers, as bench/quic_bulk.c makes.
fn udp_socket() -> Res<UdpSocket> {
    use std::os::fd::AsRawFd;
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let sz: libc::c_int = 4 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: setsockopt on our own socket with a c_int option value.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &sz as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    Ok(s)
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn quinn_endpoint(certs: &str, server: bool) -> Res<quinn::Endpoint> {
    let sc = if server {
        Some(server_config(certs)?)
    } else {
        None
    };
    let mut ep = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        sc,
        udp_socket()?,
        Arc::new(quinn::TokioRuntime),
    )?;
    if !server {
        ep.set_default_client_config(client_config(certs)?);
    }
    Ok(ep)
}

async fn bounded<T, E: Into<Box<dyn Error>>>(
    what: &str,
    d: Duration,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Res<T> {
    match tokio::time::timeout(d, f).await {
        Ok(r) => r.map_err(|e| format!("{what}: {}", e.into()).into()),
        Err(_) => Err(format!("{what}: timed out").into()),
    }
}

/// Runs this program again as `sub`, with our --certs; returns the child and its stdout lines.
fn spawn_self(
    certs: &str,
    sub: &[String],
) -> Res<(
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--certs")
        .arg(certs)
        .args(sub)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().ok_or("no child stdout")?;
    Ok((child, BufReader::new(out).lines()))
}

/// Reads the child's next line in a helper thread, waiting at most `d`.
fn line_within(
    lines: &mut Option<std::io::Lines<BufReader<std::process::ChildStdout>>>,
    d: Duration,
) -> Res<String> {
    let mut l = lines.take().ok_or("child output already lost")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = l.next();
        let _ = tx.send((r, l));
    });
    match rx.recv_timeout(d) {
        Ok((r, l)) => {
            *lines = Some(l);
            Ok(r.ok_or("child ended")??)
        }
        Err(_) => Err("child did not answer in time".into()),
    }
}

/// Waits for the child to exit (bounded), killing it beyond that.
fn reap(child: &mut std::process::Child, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---- bulk

fn bulk_server(certs: &str, total: u64) -> Res<()> {
    let pattern: Vec<u8> = (0..CHUNK + PERIOD).map(|i| (i % PERIOD) as u8).collect();
    runtime()?.block_on(async {
        let ep = quinn_endpoint(certs, true)?;
        println!("port {}", ep.local_addr()?.port());
        std::io::stdout().flush()?;
        let inc = bounded("accept", LIMIT, async {
            ep.accept().await.ok_or("endpoint closed")
        })
        .await?;
        let conn = bounded("handshake", LIMIT, inc.accept()?).await?;
        let c0 = cpu();
        let (mut send, _recv) = bounded("open_bi", LIMIT, conn.open_bi()).await?;
        let mut off = 0u64;
        bounded("write", LIMIT, async {
            while off < total {
                let len = (total - off).min(CHUNK as u64) as usize;
                let start = (off % PERIOD as u64) as usize;
                send.write_all(&pattern[start..start + len]).await?;
                off += len as u64;
            }
            send.finish()?;
            Ok::<_, Box<dyn Error>>(())
        })
        .await?;
        // The reader closes once it has everything.
        let _ = tokio::time::timeout(LIMIT, conn.closed()).await;
        let c1 = cpu();
        println!("cpu {:.4}", c1 - c0);
        ep.close(0u32.into(), b"");
        let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
        Ok(())
    })
}

fn bulk_client(certs: &str, total: u64) -> Res<()> {
    let (mut child, lines) = spawn_self(certs, &["bulk-server".into(), total.to_string()])?;
    let mut lines = Some(lines);
    let r = (|| -> Res<(f64, f64, f64)> {
        let l = line_within(&mut lines, Duration::from_secs(10))?;
        let port: u16 = l.strip_prefix("port ").ok_or("bad port line")?.parse()?;
        let (secs, ccpu) = runtime()?.block_on(async {
            let ep = quinn_endpoint(certs, false)?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let conn = bounded("connect", LIMIT, ep.connect(addr, "localhost")?).await?;
            let t0 = Instant::now();
            let c0 = cpu();
            let (_send, mut recv) = bounded("accept_bi", LIMIT, conn.accept_bi()).await?;
            let mut buf = vec![0u8; RDBUF];
            let mut got = 0u64;
            bounded("read", LIMIT, async {
                while let Some(n) = recv.read(&mut buf).await? {
                    if n == 0 {
                        continue;
                    }
                    if buf[0] != (got % PERIOD as u64) as u8
                        || buf[n - 1] != ((got + n as u64 - 1) % PERIOD as u64) as u8
                    {
                        return Err("received bytes do not match the pattern".into());
                    }
                    got += n as u64;
                }
                Ok::<_, Box<dyn Error>>(())
            })
            .await?;
            let secs = t0.elapsed().as_secs_f64();
            let ccpu = cpu() - c0;
            if got != total {
                return Err(format!("{got} bytes received, {total} sent").into());
            }
            conn.close(0u32.into(), b"");
            let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
            Ok::<_, Box<dyn Error>>((secs, ccpu))
        })?;
        let l = line_within(&mut lines, LIMIT)?;
        let scpu: f64 = l.strip_prefix("cpu ").ok_or("bad cpu line")?.parse()?;
        Ok((secs, ccpu, scpu))
    })();
    reap(&mut child, Duration::from_secs(5));
    let (secs, ccpu, scpu) = r?;
    println!(
        "bulk quinn bytes={total} secs={secs:.4} mbps={:.1} client_cpu={ccpu:.3} server_cpu={scpu:.3}",
        total as f64 / secs / 1e6
    );
    Ok(())
}

// ---- handshakes: quinn-proto alone, in memory

const CLIENT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
const SERVER_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4433);

struct Side {
    ep: quinn_proto::Endpoint,
    conns: std::collections::HashMap<quinn_proto::ConnectionHandle, quinn_proto::Connection>,
    connected: std::collections::HashSet<quinn_proto::ConnectionHandle>,
    addr: SocketAddr,
}

impl Side {
    fn new(server: Option<Arc<quinn_proto::ServerConfig>>, addr: SocketAddr) -> Side {
        Side {
            ep: quinn_proto::Endpoint::new(
                Arc::new(quinn_proto::EndpointConfig::default()),
                server,
                true,
                None,
            ),
            conns: Default::default(),
            connected: Default::default(),
            addr,
        }
    }

    /// One received datagram; replies the endpoint makes itself go to `out`.
    fn recv(&mut self, now: Instant, from: SocketAddr, d: Bytes, out: &mut Vec<Bytes>) {
        let mut buf = Vec::new();
        match self
            .ep
            .handle(now, from, None, None, BytesMut::from(&d[..]), &mut buf)
        {
            Some(quinn_proto::DatagramEvent::ConnectionEvent(ch, ev)) => {
                if let Some(c) = self.conns.get_mut(&ch) {
                    c.handle_event(ev);
                }
            }
            Some(quinn_proto::DatagramEvent::NewConnection(inc)) => {
                match self.ep.accept(inc, now, &mut buf, None) {
                    Ok((ch, c)) => {
                        self.conns.insert(ch, c);
                    }
                    Err(e) => {
                        if let Some(t) = e.response {
                            out.push(Bytes::copy_from_slice(&buf[..t.size]));
                        }
                    }
                }
            }
            Some(quinn_proto::DatagramEvent::Response(t)) => {
                out.push(Bytes::copy_from_slice(&buf[..t.size]))
            }
            None => {}
        }
    }

    /// Drives every connection: endpoint events, application events, due timers, transmits.
    fn drive(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        let mut buf = Vec::new();
        let mut drained = Vec::new();
        for (&ch, c) in self.conns.iter_mut() {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
            loop {
                let mut progress = false;
                while let Some(ev) = c.poll_endpoint_events() {
                    progress = true;
                    if let Some(cev) = self.ep.handle_event(ch, ev) {
                        c.handle_event(cev);
                    }
                }
                while let Some(ev) = c.poll() {
                    progress = true;
                    if let quinn_proto::Event::Connected = ev {
                        self.connected.insert(ch);
                    }
                }
                loop {
                    buf.clear();
                    let Some(t) = c.poll_transmit(now, 10, &mut buf) else {
                        break;
                    };
                    progress = true;
                    let seg = t.segment_size.unwrap_or(t.size);
                    for d in buf[..t.size].chunks(seg) {
                        out.push(Bytes::copy_from_slice(d));
                    }
                }
                if !progress {
                    break;
                }
            }
            if c.is_drained() {
                drained.push(ch);
            }
        }
        for ch in drained {
            self.conns.remove(&ch);
            self.connected.remove(&ch);
        }
    }

    /// Forgets a connection at once (its owner dropped it), telling the endpoint.
    fn forget(&mut self, ch: quinn_proto::ConnectionHandle) {
        if let Some(c) = self.conns.remove(&ch)
            && !c.is_drained()
        {
            self.ep
                .handle_event(ch, quinn_proto::EndpointEvent::drained());
        }
        self.connected.remove(&ch);
    }
}

/// quinn-proto's side of the handshake figure: a client and a server endpoint, datagrams
/// shuttled in memory.
pub(crate) struct Quinn {
    client: Side,
    server: Side,
    ccfg: quinn_proto::ClientConfig,
    to_server: Vec<Bytes>,
    to_client: Vec<Bytes>,
}

impl Quinn {
    pub(crate) fn new(certs: &str) -> Res<Quinn> {
        Ok(Quinn {
            server: Side::new(Some(Arc::new(server_config(certs)?)), SERVER_ADDR),
            client: Side::new(None, CLIENT_ADDR),
            ccfg: client_config(certs)?,
            to_server: Vec::new(),
            to_client: Vec::new(),
        })
    }

    /// One handshake: connect, run until both sides say Connected, then the client closes
    /// and forgets its connection; the server's drains in later rounds.
    pub(crate) fn handshake(&mut self) -> Res<()> {
        let now = Instant::now();
        let (ch, c) = self
            .client
            .ep
            .connect(now, self.ccfg.clone(), SERVER_ADDR, "localhost")?;
        self.client.conns.insert(ch, c);
        let give_up = now + Duration::from_secs(5);
        // Run until the client and the server connection both say Connected.
        loop {
            let now = Instant::now();
            if now > give_up {
                return Err("a handshake did not complete in 5 s".into());
            }
            self.client.drive(now, &mut self.to_server);
            for d in std::mem::take(&mut self.to_server) {
                self.server
                    .recv(now, self.client.addr, d, &mut self.to_client);
            }
            self.server.drive(now, &mut self.to_client);
            for d in std::mem::take(&mut self.to_client) {
                self.client
                    .recv(now, self.server.addr, d, &mut self.to_server);
            }
            if self.client.connected.contains(&ch) && !self.server.connected.is_empty() {
                break;
            }
        }
        // Client closes and is dropped; the close reaches the server, whose connection then
        // drains on its own timers in later rounds.
        let now = Instant::now();
        if let Some(c) = self.client.conns.get_mut(&ch) {
            c.close(now, 0u32.into(), Bytes::new());
        }
        self.client.drive(now, &mut self.to_server);
        self.client.forget(ch);
        for d in std::mem::take(&mut self.to_server) {
            self.server
                .recv(now, self.client.addr, d, &mut self.to_client);
        }
        self.server.drive(now, &mut self.to_client);
        self.to_client.clear(); // nobody is listening at the client any more
        self.server.connected.clear();
        Ok(())
    }
}

/// As bench/quic_handshakes.c: one handshake untimed by the rounds (its own time printed as
/// first_ms, a program's first connection), then handshakes for `secs`.
fn handshakes(certs: &str, secs: f64) -> Res<()> {
    let mut q = Quinn::new(certs)?;
    let t = Instant::now();
    q.handshake()?;
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let mut count = 0u64;
    while Instant::now() < end {
        q.handshake()?;
        count += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "handshakes quinn-proto count={count} secs={secs:.3} hps={:.1} first_ms={first_ms:.2}",
        count as f64 / secs
    );
    Ok(())
}

// ---- idle

fn idle_server(certs: &str, n: usize, secs: f64) -> Res<()> {
    runtime()?.block_on(async {
        let ep = quinn_endpoint(certs, true)?;
        println!("port {}", ep.local_addr()?.port());
        std::io::stdout().flush()?;
        // Accept in the background; keep every connection.
        let acc = ep.clone();
        let keeper = tokio::spawn(async move {
            let mut conns = Vec::with_capacity(n);
            while conns.len() < n {
                let Some(inc) = acc.accept().await else { break };
                if let Ok(c) = inc.accept() {
                    conns.push(tokio::spawn(async move { c.await.ok() }));
                }
            }
            let mut kept = Vec::with_capacity(n);
            for h in conns {
                kept.push(h.await.ok().flatten());
            }
            kept
        });
        // The client tells us (on stdin) when all connections are up and settled.
        let go = tokio::task::spawn_blocking(|| {
            let mut l = String::new();
            std::io::stdin().read_line(&mut l).map(|_| l)
        });
        let _ = bounded("go", LIMIT, go).await?;
        let c0 = cpu();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let c1 = cpu();
        println!("cpu {:.4} {c0:.2}", c1 - c0);
        std::io::stdout().flush()?;
        keeper.abort();
        Ok(())
    })
}

fn idle_client(certs: &str, n: usize, secs: f64) -> Res<()> {
    let (mut child, lines) = spawn_self(
        certs,
        &["idle-server".into(), n.to_string(), secs.to_string()],
    )?;
    let mut lines = Some(lines);
    let mut stdin = child.stdin.take().ok_or("no child stdin")?;
    let r = (|| -> Res<(f64, usize, f64, f64)> {
        let l = line_within(&mut lines, Duration::from_secs(10))?;
        let port: u16 = l.strip_prefix("port ").ok_or("bad port line")?.parse()?;
        let rt = runtime()?;
        let kept = rt.block_on(async {
            let ep = quinn_endpoint(certs, false)?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let mut conns = Vec::with_capacity(n);
            // At most 100 handshakes in flight, as bench/quic_idle.c.
            let mut pending = tokio::task::JoinSet::new();
            let mut started = 0;
            // Setup is capped as in bench/quic_idle.c: the 30 s idle timeout must stay clear of
            // the window; connections not up by then are left out.
            let t0 = Instant::now();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            while conns.len() < n {
                while started < n && pending.len() < 100 {
                    pending.spawn(ep.connect(addr, "localhost")?);
                    started += 1;
                }
                match tokio::time::timeout_at(deadline, pending.join_next()).await {
                    Ok(Some(r)) => conns.push(r??),
                    Ok(None) => break,
                    Err(_) => {
                        eprintln!(
                            "quinn_bench: {} of {n} connections up within 15 s; measuring those",
                            conns.len()
                        );
                        pending.abort_all();
                        break;
                    }
                }
            }
            let setup = t0.elapsed().as_secs_f64();
            // Let handshake leftovers (acks, HANDSHAKE_DONE) settle.
            tokio::time::sleep(Duration::from_secs(1)).await;
            stdin.write_all(b"go\n")?;
            stdin.flush()?;
            // Stay responsive while the server measures.
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            Ok::<_, Box<dyn Error>>((ep, conns, setup))
        })?;
        let l = line_within(&mut lines, Duration::from_secs(10))?;
        let (ep, conns, setup) = kept;
        let n = conns.len();
        drop((ep, conns));
        let mut f = l.strip_prefix("cpu ").ok_or("bad cpu line")?.split(' ');
        let scpu: f64 = f.next().ok_or("bad cpu line")?.parse()?;
        let ssetup: f64 = f.next().ok_or("bad cpu line")?.parse()?;
        Ok((scpu, n, setup, ssetup))
    })();
    reap(&mut child, Duration::from_secs(5));
    let (scpu, n, setup, ssetup) = r?;
    println!(
        "idle quinn conns={n} secs={secs} server_cpu={scpu:.4} setup={setup:.1} setup_cpu_server={ssetup:.2}"
    );
    Ok(())
}

// ---- memory per idle connection: quinn-proto alone, in memory, virtual clock

/// Bytes allocated and not freed (every glibc arena plus mmapped chunks), as
/// bench/quic_idle.c reads them.
fn heap_bytes() -> f64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as f64
}

/// quinn's defaults with the stream limits osslquic offers.
fn memory_transport() -> Arc<quinn_proto::TransportConfig> {
    let mut t = quinn_proto::TransportConfig::default();
    t.max_concurrent_bidi_streams(quinn_proto::VarInt::from_u32(1000));
    t.max_concurrent_uni_streams(quinn_proto::VarInt::from_u32(1000));
    Arc::new(t)
}

/// Drives one connection: endpoint events, due timers, application events; its datagrams
/// go to `out`. Returns whether it reported `Connected`.
fn memory_drive(
    ep: &mut quinn_proto::Endpoint,
    ch: quinn_proto::ConnectionHandle,
    c: &mut quinn_proto::Connection,
    now: Instant,
    out: &mut Vec<Bytes>,
) -> bool {
    let mut connected = false;
    let mut buf = Vec::new();
    if c.poll_timeout().is_some_and(|t| t <= now) {
        c.handle_timeout(now);
    }
    loop {
        let mut progress = false;
        while let Some(ev) = c.poll_endpoint_events() {
            progress = true;
            if let Some(cev) = ep.handle_event(ch, ev) {
                c.handle_event(cev);
            }
        }
        while let Some(ev) = c.poll() {
            progress = true;
            connected |= matches!(ev, quinn_proto::Event::Connected);
        }
        loop {
            buf.clear();
            let Some(t) = c.poll_transmit(now, 10, &mut buf) else {
                break;
            };
            progress = true;
            let seg = t.segment_size.unwrap_or(t.size);
            for d in buf[..t.size].chunks(seg) {
                out.push(Bytes::copy_from_slice(d));
            }
        }
        if !progress {
            return connected;
        }
    }
}

/// Hands one datagram to an endpoint; a new connection is accepted into `accepted`.
fn memory_recv(
    ep: &mut quinn_proto::Endpoint,
    conns: &mut std::collections::HashMap<quinn_proto::ConnectionHandle, quinn_proto::Connection>,
    accepted: &mut Option<quinn_proto::ConnectionHandle>,
    now: Instant,
    from: SocketAddr,
    d: Bytes,
    out: &mut Vec<Bytes>,
) {
    let mut buf = Vec::new();
    match ep.handle(now, from, None, None, BytesMut::from(&d[..]), &mut buf) {
        Some(quinn_proto::DatagramEvent::ConnectionEvent(ch, ev)) => {
            if let Some(c) = conns.get_mut(&ch) {
                c.handle_event(ev);
            }
        }
        Some(quinn_proto::DatagramEvent::NewConnection(inc)) => {
            match ep.accept(inc, now, &mut buf, None) {
                Ok((ch, c)) => {
                    conns.insert(ch, c);
                    *accepted = Some(ch);
                }
                Err(e) => {
                    if let Some(t) = e.response {
                        out.push(Bytes::copy_from_slice(&buf[..t.size]));
                    }
                }
            }
        }
        Some(quinn_proto::DatagramEvent::Response(t)) => {
            out.push(Bytes::copy_from_slice(&buf[..t.size]))
        }
        None => {}
    }
}

fn memory(certs: &str, n: usize) -> Res<()> {
    let mut sc = server_config(certs)?;
    sc.transport_config(memory_transport());
    let mut cc = client_config(certs)?;
    cc.transport_config(memory_transport());
    let mut now = Instant::now();
    let mut server = quinn_proto::Endpoint::new(
        Arc::new(quinn_proto::EndpointConfig::default()),
        Some(Arc::new(sc)),
        true,
        None,
    );
    let mut sconns = std::collections::HashMap::new();
    type Client = (
        quinn_proto::Endpoint,
        std::collections::HashMap<quinn_proto::ConnectionHandle, quinn_proto::Connection>,
    );
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    let settle = Duration::from_secs(1);
    let heap0 = heap_bytes();
    for i in 0..n {
        // Each client on its own address, as each osslquic client has its own socket.
        let caddr = SocketAddr::from((Ipv4Addr::LOCALHOST, 10000 + (i % 50000) as u16));
        let caddr = SocketAddr::new(
            std::net::IpAddr::V4(Ipv4Addr::new(127, 1 + (i / 50000) as u8, 0, 1)),
            caddr.port(),
        );
        let mut cep = quinn_proto::Endpoint::new(
            Arc::new(quinn_proto::EndpointConfig::default()),
            None,
            true,
            None,
        );
        let (cch, cconn) = cep.connect(now, cc.clone(), SERVER_ADDR, "localhost")?;
        let mut cconns = std::collections::HashMap::new();
        cconns.insert(cch, cconn);
        let mut sch: Option<quinn_proto::ConnectionHandle> = None;
        let (mut cup, mut sup) = (false, false);
        let mut quiet_since = now;
        let give_up = now + Duration::from_secs(10);
        loop {
            let mut to_server = Vec::new();
            let mut to_client = Vec::new();
            let c = cconns.get_mut(&cch).ok_or("client connection lost")?;
            cup |= memory_drive(&mut cep, cch, c, now, &mut to_server);
            for d in to_server.drain(..) {
                memory_recv(
                    &mut server,
                    &mut sconns,
                    &mut sch,
                    now,
                    caddr,
                    d,
                    &mut to_client,
                );
            }
            if let Some(h) = sch {
                let s = sconns.get_mut(&h).ok_or("server connection lost")?;
                sup |= memory_drive(&mut server, h, s, now, &mut to_client);
            }
            let quiet = to_client.is_empty();
            let mut ignored = None;
            for d in to_client.drain(..) {
                memory_recv(
                    &mut cep,
                    &mut cconns,
                    &mut ignored,
                    now,
                    SERVER_ADDR,
                    d,
                    &mut to_server,
                );
            }
            if !quiet {
                quiet_since = now;
                continue;
            }
            // Nothing in flight: jump the clock to the next timer of the pair, unless both
            // are up and it lies beyond the settling time (the idle timeout does).
            let c = cconns.get_mut(&cch).ok_or("client connection lost")?;
            let mut next = c.poll_timeout();
            if let Some(s) = sch.and_then(|h| sconns.get_mut(&h)) {
                next = match (next, s.poll_timeout()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            match next {
                Some(t) if !(cup && sup && t > quiet_since + settle) => now = now.max(t),
                _ if cup && sup => break,
                _ => return Err("a handshake stalled".into()),
            }
            if now > give_up {
                return Err("a handshake did not complete in 10 s".into());
            }
        }
        clients.push((cep, cconns));
    }
    let heap1 = heap_bytes();
    drop(clients);
    let heap2 = heap_bytes();
    let kib = |b: f64| b / 1024.0 / n.max(1) as f64;
    println!(
        "memory quinn-proto conns={n} server_heap_kb={:.2} client_heap_kb={:.2}",
        kib(heap2 - heap0),
        kib(heap1 - heap2)
    );
    drop((server, sconns));
    Ok(())
}
