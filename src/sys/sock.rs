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
    // SAFETY: plain syscall, no pointers.
    let fd = unsafe { libc::socket(family, socktype | libc::SOCK_CLOEXEC, 0) };
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

/// bind(2) to `a`, then listen(2) with SOMAXCONN.
pub fn bind_listen(fd: i32, a: &BioAddr) -> Result<(), (bool, io::Error)> {
    let (sa, len) = a.as_sockaddr();
    // SAFETY: sa/len describe the live sockaddr inside `a`.
    if unsafe { libc::bind(fd, sa, len) } < 0 {
        return Err((true, io::Error::last_os_error()));
    }
    // SAFETY: plain syscall.
    if unsafe { libc::listen(fd, libc::SOMAXCONN) } < 0 {
        return Err((false, io::Error::last_os_error()));
    }
    Ok(())
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
        libc::EAGAIN
        | libc::EINTR
        | libc::EPROTO
        | libc::ENOTCONN
        | libc::EINPROGRESS
        | libc::EALREADY => Ok(None),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// shutdown(2) both directions; errors (not connected) are of no interest to callers.
pub fn shutdown_both(fd: i32) {
    // SAFETY: plain syscall on a caller-owned fd.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}
