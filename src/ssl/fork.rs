//! Fork and prefork over QUIC: a process model where a connection, or a share of a
//! listener's connections, is served by another process than the one that accepted it.
//!
//! Fork (`fork_connection`): before fork(2), the connection gets a UDP socket of its own,
//! bound beside the listener's (SO_REUSEPORT) and connected to the peer: from then on Linux
//! delivers that peer's datagrams to it rather than to the listener's socket. The child
//! keeps that connection only, on that socket; the parent forgets it without a word to the
//! peer, and forwards through a SOCK_SEQPACKET channel whatever still reaches the listener's
//! socket for it (datagrams already queued, or sent from another address). The parent
//! reaps the channel when the child's end hangs up.
//!
//! Prefork (`prefork` + `prefork_worker`): before forking N workers, each listener gets
//! N-1 more sockets in its SO_REUSEPORT group and a classic BPF steering program that sends
//! each datagram to the socket numbered by the first byte of its destination connection ID,
//! modulo N. Worker i takes socket i and a fresh endpoint whose connection IDs start with
//! byte i: every datagram of a connection reaches the worker that accepted it, from any
//! client address (NAT rebinding, migration), with no forwarding and no privileges.
//!
//! Randomness: quinn-proto draws connection IDs, tokens and reset padding from the calling
//! thread's generator; a forked child reseeds it, and a worker's endpoint seeds itself
//! afresh, so no two processes issue the same IDs or tokens.
//! Must not touch: `extern "C"` (ffi does); raw syscalls (sys does).
#![deny(unsafe_code)]

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::domain::{Domain, DomainGuard, PortId, bio_fd};
use super::{Kind, SSL_R_CONN_USE_ONLY, SSL_R_LISTENER_USE_ONLY, SSL_R_PROTOCOL_IS_SHUTDOWN, Ssl};
use crate::bio::addr::BioAddr;
use crate::bio::{Bio, METHOD_DGRAM};
use crate::consts::*;
use crate::error::*;
use crate::quic::engine::{ConnId, Stats};
use crate::quic::port::ForkState;
use crate::sys;

/// Serialises hand-overs within a process (see `fork_connection`).
static FORKING: crate::sync::Mutex<()> = crate::sync::Mutex::new(());

/// Most prefork workers: the steering byte's range.
const MAX_WORKERS: i32 = 256;

pub fn left_with_parent() -> Error {
    Error::ssl(ERR_R_OPERATION_FAIL).with(
        "this process is a forked child serving one connection: the listener stays with \
         the parent",
    )
}

fn sys_err(what: &str, e: std::io::Error) -> Error {
    Error::sys(e.raw_os_error().unwrap_or(libc::EIO)).with(format!("{what}: {e}"))
}

/// The listener's UDP socket: the one the new sockets are bound beside.
fn listener_socket(g: &mut DomainGuard<'_>, port: PortId) -> Result<(i32, BioAddr)> {
    let p = g.port(port);
    let fd = p
        .rbio
        .as_ref()
        .and_then(|b| bio_fd(b, false))
        .filter(|&fd| sys::sock_type(fd).is_ok_and(|t| t == libc::SOCK_DGRAM))
        .ok_or_else(|| {
            Error::ssl(ERR_R_UNSUPPORTED)
                .with("fork and prefork need the listener on a UDP socket (BIO_s_datagram)")
        })?;
    let local = sys::local_addr(fd).map_err(|e| sys_err("getsockname", e))?;
    sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)
        .map_err(|e| sys_err("SO_REUSEPORT", e))?;
    Ok((fd, local))
}

/// A datagram BIO that owns `fd`.
fn socket_bio(fd: OwnedFd) -> Result<Arc<Bio>> {
    let b = Bio::new(&METHOD_DGRAM);
    b.dgram()?.set_fd(fd.into_raw_fd(), true)?;
    Ok(b)
}

/// The child's first steps, with the domain still locked by the forking thread. Nothing
/// here can fail (the child's eventfd is made when one of its threads first waits).
fn child_start(domain: &Domain, g: &mut DomainGuard<'_>) {
    // Only if the OS has no randomness left would this fail; quinn-proto would then fail
    // to draw from it as well.
    let _ = rand::rng().reseed();
    domain.after_fork_child(g);
}

/// OSSLQUIC_fork_connection: fork(2), the child serving `s` alone. A TLS connection needs
/// nothing more than fork(2) (its TCP socket is its own).
pub fn fork_connection(s: &Arc<Ssl>) -> Result<i32> {
    let c = match &s.kind {
        Kind::Tls(_) => return sys::fork().map_err(|e| sys_err("fork", e)),
        Kind::Conn(c) => c,
        _ => {
            return Err(Error::ssl(SSL_R_CONN_USE_ONLY)
                .with("OSSLQUIC_fork_connection takes a connection object"));
        }
    };
    let id: ConnId =
        c.cell.get().map(|cell| cell.id).ok_or_else(|| {
            Error::ssl(SSL_R_UNINITIALIZED).with("the connection has not started")
        })?;
    let mut g = c.domain().lock("domain: fork (fork_connection)");
    if !g.port(c.port()).engine.is_server() {
        return Err(Error::ssl(ERR_R_UNSUPPORTED).with(
            "only a server connection can be handed to a child (a client's socket is its own)",
        ));
    }
    let remote = match g.port(c.port()).engine.conn(id) {
        Some(q) if !q.drained && !q.is_closed() => q.remote_address(),
        _ => return Err(Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("connection is closed")),
    };
    let (lfd, local) = listener_socket(&mut g, c.port())?;
    // Before FORKING: the wait polls, and another thread's hand-over need not wait on it.
    wait_first_ids(&mut g, c.port(), id, lfd);
    // One hand-over at a time in this process: a child must not inherit another
    // hand-over's socket or channel.
    let _one = FORKING.lock();
    let sock = sys::udp_beside(lfd, &local).map_err(|e| sys_err("bind beside the listener", e))?;
    // The group's program chooses the listener's socket for everyone but the peers of
    // connected sockets (an exact 4-tuple match wins over it).
    sys::attach_first_socket_steering(lfd)
        .map_err(|e| sys_err("attach the SO_REUSEPORT steering program", e))?;
    sys::connect(sock.as_raw_fd(), &BioAddr::from_socket_addr(&remote))
        .map_err(|e| sys_err("connect to the peer", e))?;
    let (parent_end, child_end) = sys::seqpacket_pair().map_err(|e| sys_err("socketpair", e))?;
    // Before the program was attached (the first hand-over made the group), the kernel may
    // have hashed other peers' datagrams onto the new socket: take them in here. Then take in
    // what the listener's socket already holds and send what is due, so the child starts
    // from the freshest state and nothing queued is sent by both processes.
    let now = Instant::now();
    let mut buf = vec![0u8; 65536];
    for _ in 0..1024 {
        let mut from = BioAddr::default();
        let Ok(n) = sys::recv_from(sock.as_raw_fd(), &mut buf, &mut from) else {
            break;
        };
        if let Some(a) = from.to_socket_addr() {
            g.port(c.port())
                .engine
                .handle_datagram(now, a, None, &buf[..n]);
        }
    }
    g.tick_port(c.port(), now);
    let bio = socket_bio(sock)?;
    // No other thread may be inside a connection of the domain when the process forks: the
    // child would find that connection locked forever. The domain's lock is held, so this
    // thread may take them all (the lock order is domain, then connection).
    let cells: Vec<_> = g
        .port_ids()
        .flat_map(|p| g.port_ref(p).engine.cells())
        .collect();
    let held: Vec<_> = cells.iter().map(|cell| cell.lock("conn: fork")).collect();
    let pid = sys::fork();
    drop(held);
    let pid = pid.map_err(|e| sys_err("fork", e))?;
    if pid == 0 {
        drop(parent_end);
        child_start(c.domain(), &mut g);
        for other in g.port_ids().filter(|&o| o != c.port()) {
            let p = g.port(other);
            p.engine.keep_only(ConnId::MAX);
            p.fork = ForkState::default();
            p.set_bios(None, None);
        }
        let p = g.port(c.port());
        p.engine.keep_only(id);
        p.fork = ForkState {
            from_parent: Some(child_end),
            ..ForkState::default()
        };
        p.set_bios(Some(bio.clone()), Some(bio));
        Ok(0)
    } else {
        drop(child_end);
        drop(bio);
        let p = g.port(c.port());
        let chan = p.fork.next_chan;
        p.fork.next_chan += 1;
        p.fork.to_child.insert(chan, parent_end);
        p.engine.hand_over(id, chan);
        Ok(pid)
    }
}

/// How long `fork_connection` waits for the rest of a connection's ClientHello.
const HELLO_WAIT: Duration = Duration::from_secs(1);

/// Waits (at most `HELLO_WAIT`, handling the listener's datagrams) until connection `id` has
/// its first connection IDs from this process's endpoint. A connection is accepted when its
/// first Initial arrives, and quinn asks for its IDs once the ClientHello is whole: with
/// X25519MLKEM768 that takes two datagrams, and when the second arrived after the fork the
/// child issued every ID itself. The parent did not know them, so a client that moved and
/// switched to one of them (as quinn's does when its address changes) reached the listener's
/// socket with an ID the parent answered with a stateless reset (test_fork's rebinding
/// client, about one run in ten). The datagram is normally right behind the first; a lost
/// one is resent after the server's nudge. Past the wait the fork goes ahead (FORK.md,
/// "Limits").
fn wait_first_ids(g: &mut DomainGuard<'_>, port: PortId, id: ConnId, lfd: i32) {
    let until = Instant::now() + HELLO_WAIT;
    loop {
        let now = Instant::now();
        g.tick_port(port, now);
        if g.port(port).engine.first_ids_issued(id) || now >= until {
            return;
        }
        let mut fds = [sys::PollFd {
            fd: lfd,
            read: true,
            write: false,
            ready: false,
        }];
        // What the round made (the nudge that brings the rest of a ClientHello cut short
        // after a Retry) is sent, and the lock released meanwhile: another thread may take
        // the datagram in (checked next round).
        let wait = (until - now).min(Duration::from_millis(5));
        let _ = g.unlocked(|| sys::poll(&mut fds, Some(wait)));
    }
}

/// The domain and the listener ports an object stands for: a listener, or every listener
/// of a domain object.
fn listener_ports(s: &Ssl) -> Result<Option<(Arc<Domain>, Vec<PortId>)>> {
    match &s.kind {
        Kind::TlsListener(_) => Ok(None),
        Kind::Listener(l) => Ok(Some((l.domain.clone(), vec![l.port]))),
        Kind::Domain(d) => {
            let mut g = d.domain.lock("domain: fork (listener_ports)");
            let ports = g
                .port_ids()
                .filter(|&p| g.port(p).engine.is_server() && g.port(p).rbio.is_some())
                .collect();
            Ok(Some((d.domain.clone(), ports)))
        }
        _ => {
            Err(Error::ssl(SSL_R_LISTENER_USE_ONLY)
                .with("prefork takes a listener or a domain object"))
        }
    }
}

/// OSSLQUIC_prefork: in the parent, before forking `workers` children. TLS listeners need
/// nothing (the kernel shares a TCP accept queue between processes).
pub fn prefork(s: &Ssl, workers: i32) -> Result<()> {
    if !(1..=MAX_WORKERS).contains(&workers) {
        return Err(Error::invalid(format!(
            "workers must be 1..={MAX_WORKERS}, not {workers}"
        )));
    }
    let Some((domain, ports)) = listener_ports(s)? else {
        return Ok(());
    };
    if ports.is_empty() {
        return Err(Error::ssl(SSL_R_LISTENER_USE_ONLY).with("the domain has no listener yet"));
    }
    let mut g = domain.lock("domain: fork (prefork)");
    for &port in &ports {
        let p = g.port(port);
        if p.fork.prefork != 0 {
            return Err(Error::ssl(ERR_R_OPERATION_FAIL).with("already prepared for prefork"));
        }
        if p.engine.conn_count() != 0 {
            return Err(Error::ssl(ERR_R_OPERATION_FAIL)
                .with("prefork must be prepared before any connection is accepted"));
        }
        // QUIC-LB IDs: steered by the server ID's last octet (plaintext form only).
        let (at, base) = match p.engine.lb() {
            Some(lb) => lb
                .steering(workers as usize)
                .map_err(|why| Error::ssl(ERR_R_OPERATION_FAIL).with(why))?,
            None => (0, 0),
        };
        let (fd, local) = listener_socket(&mut g, port)?;
        let mut socks = Vec::with_capacity(workers as usize - 1);
        for _ in 1..workers {
            socks
                .push(sys::udp_beside(fd, &local).map_err(|e| sys_err("bind a worker socket", e))?);
        }
        if workers > 1 {
            sys::attach_cid_steering(fd, workers as u32, at as u32, u32::from(base))
                .map_err(|e| sys_err("attach the SO_REUSEPORT steering program", e))?;
        }
        let p = g.port(port);
        p.fork.workers = socks;
        p.fork.prefork = workers as usize;
    }
    Ok(())
}

/// OSSLQUIC_prefork_worker: in worker `index`'s process, right after fork(2).
pub fn prefork_worker(s: &Ssl, index: i32) -> Result<()> {
    let Some((domain, _)) = listener_ports(s)? else {
        return Ok(());
    };
    // Every listener of the domain prepared for prefork becomes this worker's; the others
    // were left behind in this process at the domain's first use here (`Domain::lock`).
    let mut g = domain.lock("domain: fork (prefork_worker)");
    let ports: Vec<PortId> = g
        .port_ids()
        .filter(|&p| g.port_ref(p).fork.prefork != 0)
        .collect();
    if ports.is_empty() {
        return Err(Error::ssl(ERR_R_OPERATION_FAIL)
            .with("call OSSLQUIC_prefork in the parent before forking the workers"));
    }
    for &port in &ports {
        let n = g.port(port).fork.prefork as i32;
        if !(0..n).contains(&index) {
            return Err(Error::invalid(format!(
                "worker index {index} is not in 0..{n}"
            )));
        }
    }
    // Everything that can fail comes before the first change.
    let mut mine = Vec::with_capacity(ports.len());
    for &port in &ports {
        let p = g.port(port);
        if p.engine.conn_count() != 0 {
            return Err(
                Error::ssl(ERR_R_OPERATION_FAIL).with("the listener already has connections")
            );
        }
        mine.push(match index {
            0 => None,
            i => match p.fork.workers.get(i as usize - 1) {
                Some(fd) => Some(fd.try_clone().map_err(|e| sys_err("dup", e))),
                None => Some(Err(Error::internal("worker socket missing"))),
            },
        });
    }
    let mut bios = Vec::with_capacity(ports.len());
    for m in mine {
        bios.push(m.map(|r| r.and_then(socket_bio)).transpose()?);
    }
    child_start(&domain, &mut g);
    for (&port, bio) in ports.iter().zip(bios) {
        let p = g.port(port);
        // The other workers' sockets are closed in this process (the parent keeps them).
        p.fork.workers.clear();
        p.fork.prefork = 0;
        if let Some(b) = bio {
            p.set_bios(Some(b.clone()), Some(b));
        }
        // Cannot fail: the port has no connections (checked above, under the same lock).
        let _ = p.engine.become_worker(index as u8);
    }
    Ok(())
}

/// OSSLQUIC_get_engine_stats: the figures of the object's port (a domain: all its ports).
pub fn engine_stats(s: &Ssl) -> Result<Stats> {
    let (domain, ports): (Arc<Domain>, Vec<PortId>) = match &s.kind {
        Kind::Domain(d) => {
            let ids = d
                .domain
                .lock("domain: fork (engine_stats)")
                .port_ids()
                .collect();
            (d.domain.clone(), ids)
        }
        Kind::Listener(_) | Kind::Conn(_) | Kind::Stream(_) => {
            (s.domain().clone(), vec![s.port_id()])
        }
        _ => return Err(Error::ssl(ERR_R_UNSUPPORTED).with("a TLS object has no QUIC engine")),
    };
    let mut g = domain.lock("domain: fork (engine_stats)");
    let mut t = Stats::default();
    for p in ports {
        let st = g.port(p).engine.stats();
        t.datagrams_in += st.datagrams_in;
        t.foreign_in += st.foreign_in;
        t.forwarded += st.forwarded;
        t.accepted += st.accepted;
        t.refused += st.refused;
        t.retries += st.retries;
    }
    Ok(t)
}
