//! Fork and prefork (issue 6): UDP sockets beside a listener's with SO_REUSEPORT steering,
//! the fork counter, the parent/child channels, fork(2).

use std::io;
use std::mem::{size_of, zeroed};

use super::{BioAddr, getsockopt_int, setsockopt_int, socket};

// ---- fork and prefork (issue 6): sockets beside a listener's, channels, fork(2) ----

fn owned(fd: i32) -> io::Result<std::os::fd::OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel to us and is owned by nobody else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// A non-blocking UDP socket bound to `local` beside `like` (and the other SO_REUSEPORT
/// sockets on it), with `like`'s IPV6_V6ONLY and receive buffer.
pub fn udp_beside(like: i32, local: &BioAddr) -> io::Result<std::os::fd::OwnedFd> {
    let fd = socket(local.family(), libc::SOCK_DGRAM | libc::SOCK_NONBLOCK)?;
    let fd = owned(fd)?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // The same group only if bound alike: V6ONLY must match (and the buffer should).
    if local.family() == libc::AF_INET6 {
        let v6only = getsockopt_int(like, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
        setsockopt_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, v6only)?;
    }
    if let Ok(rcv) = getsockopt_int(like, libc::SOL_SOCKET, libc::SO_RCVBUF) {
        // The kernel reports twice what was asked.
        let _ = setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, rcv / 2);
    }
    setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    let (sa, len) = local.as_sockaddr();
    // SAFETY: sa/len describe the live sockaddr inside `local`.
    if unsafe { libc::bind(raw, sa, len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Attaches to `fd`'s SO_REUSEPORT group a classic BPF program that picks the group's
/// socket number `(b - base) % workers` (32-bit arithmetic), `b` being the octet at `at`
/// in the QUIC packet's destination connection ID (whose first octet is at offset 1 in a
/// short header, 6 in a long one): octet 0 and base 0 for the engine's own IDs, the server
/// ID's last octet and its worker-0 value for QUIC-LB IDs. No privileges needed. A packet
/// too short for the load goes to socket 0 (the kernel's answer to a failed load).
pub fn attach_cid_steering(fd: i32, workers: u32, at: u32, base: u32) -> io::Result<()> {
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    const SUB_K: u16 = (libc::BPF_ALU | libc::BPF_SUB | libc::BPF_K) as u16;
    const MOD_K: u16 = (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16;
    const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let prog = [
        ins(LD_B_ABS, 0, 0, 0),      // A = first byte (UDP payload)
        ins(JSET_K, 0, 2, 0x80),     // long header?
        ins(LD_B_ABS, 0, 0, 6 + at), //   A = DCID[at] of a long header
        ins(JA, 0, 0, 1),            //
        ins(LD_B_ABS, 0, 0, 1 + at), //   A = DCID[at] of a short header
        ins(SUB_K, 0, 0, base),      // A -= base
        ins(MOD_K, 0, 0, workers),   // A %= workers
        ins(RET_A, 0, 0, 0),         // the group's socket number A
    ];
    attach_reuseport_prog(fd, &prog)
}

/// Attaches to `fd`'s SO_REUSEPORT group a classic BPF program that always picks the
/// group's first socket (the listener's): sockets added beside it for forked connections
/// are then chosen only by their connected address, never by the group's hash, even in the
/// moment between their bind(2) and connect(2).
pub fn attach_first_socket_steering(fd: i32) -> io::Result<()> {
    let prog = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    attach_reuseport_prog(fd, &prog)
}

fn attach_reuseport_prog(fd: i32, prog: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: passes a live sock_fprog (whose filter array outlives the call) and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

static FORK_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn forked_child() {
    // Async-signal-safe: one atomic add.
    FORK_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How many fork(2)s lie between the process's start and this process (counted by a
/// pthread_atfork child handler, installed by `watch_forks`).
pub fn fork_generation() -> u64 {
    FORK_GENERATION.load(std::sync::atomic::Ordering::Relaxed)
}

/// This thread's random generator (rand's `ThreadRng`, which draws connection IDs and
/// nonces), reseeded from the OS first when the process has forked since the thread last
/// drew from it: rand does not reseed on fork, and a child of a plain fork(2) would otherwise
/// draw the same IDs as its parent.
pub fn rng() -> rand::rngs::ThreadRng {
    thread_local! {
        static SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    watch_forks();
    let mut r = rand::rng();
    let now = fork_generation();
    let _ = SEEN.try_with(|seen| {
        if seen.get() != now {
            // Fails only if the OS has no randomness to give; quinn-proto would fail too.
            let _ = r.reseed();
            seen.set(now);
        }
    });
    r
}

/// Installs the fork counter's handler (once).
pub fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only increments an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    });
}

/// A connected pair of close-on-exec, non-blocking SOCK_SEQPACKET sockets: message
/// boundaries kept, and a hang-up seen when the other end's process has gone.
pub fn seqpacket_pair() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let mut fds = [-1i32; 2];
    let t = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: `fds` is a live array of two ints.
    if unsafe { libc::socketpair(libc::AF_UNIX, t, 0, fds.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((owned(fds[0])?, owned(fds[1])?))
}

/// fork(2): the child's pid in the parent, 0 in the child.
pub fn fork() -> io::Result<i32> {
    // SAFETY: fork has no memory-safety preconditions of its own; the caller keeps the
    // child to the calls that are safe after a fork in its situation.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid)
    }
}

/// Sends `head` and `body` as one message without blocking (and without SIGPIPE).
pub fn send_two(fd: i32, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut iov = [
        libc::iovec {
            iov_base: head.as_ptr() as *mut libc::c_void,
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: body.as_ptr() as *mut libc::c_void,
            iov_len: body.len(),
        },
    ];
    // SAFETY: zeroed msghdr is valid; it points at `iov`, live for the call.
    let mut m: libc::msghdr = unsafe { zeroed() };
    m.msg_iov = iov.as_mut_ptr();
    m.msg_iovlen = 2;
    // SAFETY: `m` describes live buffers.
    let r = unsafe { libc::sendmsg(fd, &m, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One message without blocking: Ok(Some(len)), Ok(None) at end of file (the peer
/// closed), Err(WouldBlock) when nothing is waiting.
pub fn recv_one(fd: i32, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: buf is a live writable buffer of buf.len() bytes.
    let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    match r {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        n => Ok(Some(n as usize)),
    }
}
