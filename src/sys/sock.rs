//! Sockets in general: creation, options, names, blocking mode, connect, bind/listen,
//! accept, shutdown and close.
//! Must not know about BIOs or SSL.

use std::io;
use std::mem::size_of;

use super::{BioAddr, errno};

pub fn setsockopt_int(fd: i32, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int with its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const i32).cast(),
            size_of::<i32>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn getsockopt_int(fd: i32, level: i32, name: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: passes a pointer to a live c_int and its length.
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut i32).cast(), &mut len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(v)
    }
}

pub fn sock_type(fd: i32) -> io::Result<i32> {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)
}

pub fn local_addr(fd: i32) -> io::Result<BioAddr> {
    let mut a = BioAddr::default();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage_mut points at a sockaddr_storage of `len` bytes.
    let r = unsafe { libc::getsockname(fd, a.storage_mut().cast(), &mut len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(a)
    }
}

pub fn peer_addr(fd: i32) -> io::Result<BioAddr> {
    let mut a = BioAddr::default();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage_mut points at a sockaddr_storage of `len` bytes.
    let r = unsafe { libc::getpeername(fd, a.storage_mut().cast(), &mut len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(a)
    }
}

pub fn set_nonblocking(fd: i32, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a caller-supplied fd; errors are reported, not UB.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 {
            return Err(io::Error::last_os_error());
        }
        let nf = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        if nf != fl && libc::fcntl(fd, libc::F_SETFL, nf) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether `fd` is in blocking mode (O_NONBLOCK clear); false if it cannot be told.
pub fn is_blocking(fd: i32) -> bool {
    // SAFETY: fcntl F_GETFL on a caller-supplied fd; an error is a negative answer.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK == 0
}

/// The socket's receive timeout (SO_RCVTIMEO), None if it has none or cannot be told.
pub fn recv_timeout(fd: i32) -> Option<std::time::Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live timeval.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r < 0 || (tv.tv_sec <= 0 && tv.tv_usec <= 0) {
        return None;
    }
    Some(
        std::time::Duration::new(tv.tv_sec as u64, 0)
            + std::time::Duration::from_micros(tv.tv_usec as u64),
    )
}

pub fn close(fd: i32) -> io::Result<()> {
    // SAFETY: closes a caller-owned fd.
    if unsafe { libc::close(fd) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// accept(2) on a listening stream socket: Ok(None) when no connection is waiting (a
/// non-blocking socket). The new socket is close-on-exec.
pub fn accept(fd: i32) -> io::Result<Option<i32>> {
    loop {
        // SAFETY: no address is asked for (NULL pointers are allowed).
        let r = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if r >= 0 {
            return Ok(Some(r));
        }
        match errno() {
            libc::EINTR | libc::ECONNABORTED => continue,
            libc::EAGAIN => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// A close-on-exec socket of `family` and `socktype`.
pub fn socket(family: i32, socktype: i32) -> io::Result<i32> {
    socket_with(family, socktype, 0)
}

/// A close-on-exec socket of `family`, `socktype` and `protocol` (BIO_socket).
pub fn socket_with(family: i32, socktype: i32, protocol: i32) -> io::Result<i32> {
    // SAFETY: plain syscall, no pointers.
    let fd = unsafe { libc::socket(family, socktype | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

/// connect(2) to `a`. A non-blocking socket's connect in progress is Err(EINPROGRESS).
pub fn connect(fd: i32, a: &BioAddr) -> io::Result<()> {
    let (sa, len) = a.as_sockaddr();
    // SAFETY: sa/len describe the live sockaddr inside `a`.
    if unsafe { libc::connect(fd, sa, len) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// bind(2) to `a`.
pub fn bind(fd: i32, a: &BioAddr) -> io::Result<()> {
    let (sa, len) = a.as_sockaddr();
    // SAFETY: sa/len describe the live sockaddr inside `a`.
    if unsafe { libc::bind(fd, sa, len) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// listen(2) with SOMAXCONN.
pub fn listen(fd: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    if unsafe { libc::listen(fd, libc::SOMAXCONN) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// bind(2) to `a`, then listen(2) with SOMAXCONN; Err's flag says which failed (true: bind).
pub fn bind_listen(fd: i32, a: &BioAddr) -> Result<(), (bool, io::Error)> {
    bind(fd, a).map_err(|e| (true, e))?;
    listen(fd).map_err(|e| (false, e))
}

/// accept4(2) with the peer's address; the new socket is close-on-exec, and non-blocking
/// when asked. Ok(None) for the errnos OpenSSL's BIO_sock_should_retry accepts (nothing
/// waiting on a non-blocking socket, a signal).
pub fn accept_peer(fd: i32, nonblock: bool) -> io::Result<Option<(i32, BioAddr)>> {
    let mut a = BioAddr::default();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let flags = libc::SOCK_CLOEXEC | if nonblock { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: a's storage is a live sockaddr_storage of `len` bytes.
    let r = unsafe { libc::accept4(fd, a.storage_mut().cast(), &mut len, flags) };
    if r >= 0 {
        return Ok(Some((r, a)));
    }
    match errno() {
        e if is_retry_errno(e) => Ok(None),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The errnos OpenSSL's BIO_sock_should_retry (BIO_sock_non_fatal_error) calls transient
/// on a stream socket.
pub fn is_retry_errno(e: i32) -> bool {
    matches!(
        e,
        libc::EAGAIN
            | libc::EINTR
            | libc::EINPROGRESS
            | libc::EALREADY
            | libc::ENOTCONN
            | libc::EPROTO
    )
}

/// read(2) into `buf`: Ok(0) is end of stream.
pub fn read(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a live, writable slice of buf.len() bytes.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Writes what a stream takes now. send(2) with MSG_NOSIGNAL keeps a closed peer from
/// raising SIGPIPE; a descriptor that is not a socket gets write(2).
pub fn write_stream(fd: i32, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a live slice of buf.len() bytes.
    let mut r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if r < 0 && errno() == libc::ENOTSOCK {
        // SAFETY: as above.
        r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    }
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Writes `bufs` in order with one call, as `write_stream` does one buffer: sendmsg with
/// MSG_NOSIGNAL, writev(2) for a descriptor that is not a socket. At most IOV_MAX buffers.
pub fn writev_stream(fd: i32, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(libc::UIO_MAXIOV as usize);
    // IoSlice is ABI-compatible with iovec (std documents it on Unix).
    let iov = bufs.as_ptr() as *mut libc::iovec;
    // SAFETY: zeroed msghdr is valid; msg_iov points at `n` live iovecs the kernel only reads.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = n as _;
    // SAFETY: msg is initialised and its buffers live for the call.
    let mut r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if r < 0 && errno() == libc::ENOTSOCK {
        // SAFETY: as above; writev takes the same iovecs.
        r = unsafe { libc::writev(fd, iov, n as i32) };
    }
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// A socket timeout value (SO_SNDTIMEO / SO_RCVTIMEO), as the C API passes it.
pub type Timeval = libc::timeval;

/// Sets SO_SNDTIMEO (`send`) or SO_RCVTIMEO.
pub fn set_timeout(fd: i32, send: bool, tv: Timeval) -> io::Result<()> {
    let name = if send {
        libc::SO_SNDTIMEO
    } else {
        libc::SO_RCVTIMEO
    };
    // SAFETY: passes a live timeval with its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&tv as *const Timeval).cast(),
            size_of::<Timeval>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// SO_SNDTIMEO (`send`) or SO_RCVTIMEO.
pub fn timeout(fd: i32, send: bool) -> io::Result<Timeval> {
    let name = if send {
        libc::SO_SNDTIMEO
    } else {
        libc::SO_RCVTIMEO
    };
    let mut tv = Timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = size_of::<Timeval>() as libc::socklen_t;
    // SAFETY: passes a live timeval and its length.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut tv as *mut Timeval).cast(),
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(tv)
    }
}

/// Whether `fd` is a datagram socket.
pub fn is_dgram(fd: i32) -> bool {
    sock_type(fd).is_ok_and(|t| t == libc::SOCK_DGRAM)
}

/// shutdown(2) both directions; errors (not connected) are of no interest to callers.
pub fn shutdown_both(fd: i32) {
    // SAFETY: plain syscall on a caller-owned fd.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// SO_KEEPALIVE on or off.
pub fn set_keepalive(fd: i32, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, on as i32)
}

/// TCP_NODELAY on or off.
pub fn set_nodelay(fd: i32, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on as i32)
}

/// SO_REUSEADDR on or off.
pub fn set_reuseaddr(fd: i32, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, on as i32)
}

/// IPV6_V6ONLY on or off (an IPv6 socket only).
pub fn set_v6only(fd: i32, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on as i32)
}

/// The socket's pending error (SO_ERROR), which reading clears.
pub fn take_error(fd: i32) -> io::Result<i32> {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)
}
