//! The few raw OS calls: batched UDP send/receive (sendmmsg/recvmmsg with UDP_SEGMENT,
//! UDP_GRO and IP_PKTINFO/IPV6_PKTINFO control messages), eventfd, socket options.
//! Owns: every `libc` call that moves bytes. Must not know about BIOs or SSL.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::ptr;

use crate::bio::addr::BioAddr;

/// Most msghdrs handed to one sendmmsg/recvmmsg.
pub(crate) const BATCH: usize = 64;
/// Most iovecs across one sendmmsg (GSO groups point one iovec at each datagram).
const MAX_IOV: usize = 512;
/// Most datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
pub(crate) const GSO_MAX_SEGS: usize = 64;
/// Most bytes in one GSO send (UDP payload limit with headroom).
const GSO_MAX_BYTES: usize = 65000;
/// Largest datagram the kernel can hand back with GRO.
pub(crate) const GRO_MAX: usize = 65536;
const CMSG_SPACE: usize = 64;

const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;

pub fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// One datagram to send: raw pointers so that batches build without copies or allocation.
#[derive(Clone, Copy)]
pub struct TxDesc {
    pub data: *const u8,
    pub len: usize,
    /// Destination, or NULL for the connected peer.
    pub dst: *const BioAddr,
    /// Source address (IP only is used), or NULL for the kernel's choice.
    pub src: *const BioAddr,
}

fn same_addr(a: *const BioAddr, b: *const BioAddr) -> bool {
    if a == b {
        return true;
    }
    // SAFETY: non-NULL pointers in a TxDesc point at live addresses for the call.
    match unsafe { (a.as_ref(), b.as_ref()) } {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_SPACE]);

/// Outcome of [`send_batch`].
pub enum SendResult {
    /// This many datagrams left (may be fewer than asked: partial success).
    Sent(usize),
    /// Nothing was sent: the errno.
    Failed(i32),
    /// The kernel refused a GSO send: the caller should turn GSO off and retry.
    GsoRefused,
}

/// Sends `items` in as few syscalls as possible: consecutive same-size datagrams to one
/// destination become one GSO send when `gso` is true; all go through sendmmsg.
/// `counts` accumulates (syscalls made, GSO sends made).
pub fn send_batch(fd: i32, items: &[TxDesc], gso: bool, counts: &mut (u64, u64)) -> SendResult {
    let mut done = 0usize;
    while done < items.len() {
        // SAFETY: zeroed msghdr/iovec/cmsg arrays are valid initial states.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut iovs: [MaybeUninit<libc::iovec>; MAX_IOV] = [MaybeUninit::uninit(); MAX_IOV];
        let mut cmsgs: [MaybeUninit<CmsgBuf>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        let mut group_sizes = [0usize; BATCH];
        let mut ngroups = 0;
        let mut niov = 0;
        let mut i = done;
        while i < items.len() && ngroups < BATCH && niov < MAX_IOV {
            let first = items[i];
            let mut n = 1;
            let mut bytes = first.len;
            if gso && first.len > 0 {
                while i + n < items.len()
                    && n < GSO_MAX_SEGS
                    && niov + n < MAX_IOV
                    && items[i + n].len <= first.len
                    && items[i + n].len > 0
                    && bytes + items[i + n].len <= GSO_MAX_BYTES
                    && same_addr(items[i + n].dst, first.dst)
                    && same_addr(items[i + n].src, first.src)
                {
                    bytes += items[i + n].len;
                    n += 1;
                    if items[i + n - 1].len < first.len {
                        break; // only the last segment may be short
                    }
                }
            }
            for k in 0..n {
                iovs[niov + k].write(libc::iovec {
                    iov_base: items[i + k].data as *mut _,
                    iov_len: items[i + k].len,
                });
            }
            let h = &mut hdrs[ngroups].msg_hdr;
            h.msg_iov = iovs[niov].as_mut_ptr();
            h.msg_iovlen = n;
            // SAFETY: dst is NULL or a live address for the call.
            if let Some(dst) = unsafe { first.dst.as_ref() } {
                let (sa, len) = dst.as_sockaddr();
                h.msg_name = sa as *mut _;
                h.msg_namelen = len;
            }
            let cbuf = cmsgs[ngroups].write(CmsgBuf([0; CMSG_SPACE]));
            // SAFETY: src is NULL or a live address for the call.
            let src = unsafe { first.src.as_ref() };
            let clen = build_tx_cmsgs(&mut cbuf.0, if n > 1 { first.len } else { 0 }, src);
            if clen > 0 {
                h.msg_control = cbuf.0.as_mut_ptr().cast();
                h.msg_controllen = clen;
            }
            group_sizes[ngroups] = n;
            ngroups += 1;
            niov += n;
            i += n;
        }
        // SAFETY: hdrs[..ngroups] point at iovecs, names and control buffers that live here.
        let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), ngroups as u32, 0) };
        counts.0 += 1;
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            let used_gso = group_sizes[..ngroups].iter().any(|&c| c > 1);
            if used_gso && (e == libc::EIO || e == libc::EINVAL || e == libc::ENOPROTOOPT) {
                return if done > 0 {
                    SendResult::Sent(done)
                } else {
                    SendResult::GsoRefused
                };
            }
            return if done > 0 {
                SendResult::Sent(done)
            } else {
                SendResult::Failed(e)
            };
        }
        let r = r as usize;
        counts.1 += group_sizes[..r].iter().filter(|&&c| c > 1).count() as u64;
        done += group_sizes[..r].iter().sum::<usize>();
        if r < ngroups {
            break;
        }
    }
    SendResult::Sent(done)
}

fn build_tx_cmsgs(buf: &mut [u8; CMSG_SPACE], gso_size: usize, src: Option<&BioAddr>) -> usize {
    // SAFETY: a zeroed msghdr pointing at `buf` lets the CMSG_* macros walk it in bounds.
    unsafe {
        let mut mh: libc::msghdr = zeroed();
        mh.msg_control = buf.as_mut_ptr().cast();
        mh.msg_controllen = CMSG_SPACE;
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        let mut total = 0usize;
        if gso_size > 0 {
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
            ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), gso_size as u16);
            total += libc::CMSG_SPACE(size_of::<u16>() as u32) as usize;
            c = libc::CMSG_NXTHDR(&mh, c);
        }
        if let Some(src) = src {
            match src.to_socket_addr() {
                Some(std::net::SocketAddr::V4(v4)) => {
                    (*c).cmsg_level = libc::IPPROTO_IP;
                    (*c).cmsg_type = libc::IP_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
                    let mut pi: libc::in_pktinfo = zeroed();
                    pi.ipi_spec_dst.s_addr = u32::from_ne_bytes(v4.ip().octets());
                    ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), pi);
                    total += libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
                }
                Some(std::net::SocketAddr::V6(v6)) => {
                    (*c).cmsg_level = libc::IPPROTO_IPV6;
                    (*c).cmsg_type = libc::IPV6_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
                    let mut pi: libc::in6_pktinfo = zeroed();
                    pi.ipi6_addr.s6_addr = v6.ip().octets();
                    ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(), pi);
                    total += libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                }
                None => {}
            }
        }
        total
    }
}

/// One receive slot: where the datagram goes and where its addresses are reported.
pub struct RxSlot {
    pub buf: *mut u8,
    pub cap: usize,
    /// Optional overflow area after `buf` (GRO only), so a coalesced datagram is not cut.
    pub tail: *mut u8,
    pub tail_cap: usize,
    /// Where the source address is written (NULL: not wanted).
    pub src: *mut BioAddr,
    /// Out: bytes received (across buf and tail), whether the kernel truncated, the GRO
    /// segment size (0 when not coalesced), the destination IP (from pktinfo) if any.
    pub len: usize,
    pub truncated: bool,
    pub seg: usize,
    pub dst: Option<BioAddr>,
}

impl RxSlot {
    pub fn new(buf: *mut u8, cap: usize, src: *mut BioAddr) -> Self {
        RxSlot {
            buf,
            cap,
            tail: ptr::null_mut(),
            tail_cap: 0,
            src,
            len: 0,
            truncated: false,
            seg: 0,
            dst: None,
        }
    }
}

/// Receives up to `slots.len()` datagrams in one recvmmsg. `wait` blocks for the first one
/// (on a blocking socket); otherwise returns EAGAIN at once when nothing is queued. Control
/// messages (GRO segment size, packet info) are collected only with `cmsg`.
pub fn recv_batch(fd: i32, slots: &mut [RxSlot], wait: bool, cmsg: bool) -> io::Result<usize> {
    let n = slots.len().min(BATCH);
    // SAFETY: zeroed headers/iovecs/control buffers are valid initial states.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut iovs: [[libc::iovec; 2]; BATCH] = unsafe { zeroed() };
    let mut cmsgs: [MaybeUninit<CmsgBuf>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    for (k, s) in slots[..n].iter_mut().enumerate() {
        iovs[k][0] = libc::iovec {
            iov_base: s.buf.cast(),
            iov_len: s.cap,
        };
        let mut nv = 1;
        if !s.tail.is_null() && s.tail_cap > 0 {
            iovs[k][1] = libc::iovec {
                iov_base: s.tail.cast(),
                iov_len: s.tail_cap,
            };
            nv = 2;
        }
        let h = &mut hdrs[k].msg_hdr;
        h.msg_iov = iovs[k].as_mut_ptr();
        h.msg_iovlen = nv;
        if !s.src.is_null() {
            // SAFETY: src points at a live BioAddr, whose storage is a sockaddr_storage.
            h.msg_name = unsafe { (*s.src).storage_mut() }.cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
        }
        if cmsg {
            let c = cmsgs[k].write(CmsgBuf([0; CMSG_SPACE]));
            h.msg_control = c.0.as_mut_ptr().cast();
            h.msg_controllen = CMSG_SPACE;
        }
    }
    let flags = if wait {
        libc::MSG_WAITFORONE
    } else {
        libc::MSG_DONTWAIT
    };
    let r = loop {
        // SAFETY: every header points at buffers that live for the call.
        let r = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), n as u32, flags, ptr::null_mut()) };
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        break r;
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let r = r as usize;
    for k in 0..r {
        let s = &mut slots[k];
        let h = &hdrs[k].msg_hdr;
        s.len = hdrs[k].msg_len as usize;
        s.truncated = h.msg_flags & libc::MSG_TRUNC != 0;
        s.seg = 0;
        s.dst = None;
        if !s.src.is_null() && h.msg_namelen == 0 {
            // SAFETY: src is live; a connected socket may report no name.
            unsafe { (*s.src).clear() };
        }
        // SAFETY: the kernel filled msg_control up to msg_controllen; CMSG_* stay in bounds.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                let d = libc::CMSG_DATA(c);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_UDP, UDP_GRO) => {
                        s.seg = ptr::read_unaligned(d.cast::<libc::c_int>()) as usize
                    }
                    (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                        let pi = ptr::read_unaligned(d.cast::<libc::in_pktinfo>());
                        let ip = std::net::Ipv4Addr::from(pi.ipi_addr.s_addr.to_ne_bytes());
                        s.dst = Some(BioAddr::from_socket_addr(&(ip, 0).into()));
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                        let pi = ptr::read_unaligned(d.cast::<libc::in6_pktinfo>());
                        let ip = std::net::Ipv6Addr::from(pi.ipi6_addr.s6_addr);
                        s.dst = Some(BioAddr::from_socket_addr(&(ip, 0).into()));
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        if s.seg >= s.len {
            s.seg = 0;
        }
    }
    Ok(r)
}

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

pub fn enable_gro(fd: i32, on: bool) -> bool {
    setsockopt_int(fd, libc::SOL_UDP, UDP_GRO, on as i32).is_ok()
}

/// Whether the kernel accepts UDP_SEGMENT on this socket.
pub fn gso_supported(fd: i32) -> bool {
    getsockopt_int(fd, libc::SOL_UDP, UDP_SEGMENT).is_ok()
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

/// Legacy single-datagram receive (recvfrom); returns (len, truncated).
pub fn recv_from(fd: i32, buf: &mut [u8], src: &mut BioAddr) -> io::Result<usize> {
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    loop {
        // SAFETY: buf and src storage are live and sized as passed.
        let r = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                src.storage_mut().cast(),
                &mut len,
            )
        };
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        if len == 0 {
            src.clear();
        }
        return Ok(r as usize);
    }
}

/// Legacy single-datagram send: to `dst`, or to the connected peer when `dst` is None.
pub fn send_to(fd: i32, buf: &[u8], dst: Option<&BioAddr>) -> io::Result<usize> {
    let (sa, len) = dst.map_or((ptr::null(), 0), |d| d.as_sockaddr());
    loop {
        // SAFETY: buf and the address are live and sized as passed.
        let r = unsafe { libc::sendto(fd, buf.as_ptr().cast(), buf.len(), 0, sa, len) };
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        return Ok(r as usize);
    }
}

pub fn close(fd: i32) -> io::Result<()> {
    // SAFETY: closes a caller-owned fd.
    if unsafe { libc::close(fd) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A non-blocking, close-on-exec eventfd.
pub fn eventfd() -> io::Result<i32> {
    // SAFETY: no pointers involved.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

pub fn eventfd_signal(fd: i32) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64; EAGAIN (counter full) still leaves it readable.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

pub fn eventfd_drain(fd: i32) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; EAGAIN when already zero is fine.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
}

/// One descriptor to wait on: `fd`, the events wanted, and (out) the events seen.
#[derive(Clone, Copy, Debug)]
pub struct PollFd {
    pub fd: i32,
    pub read: bool,
    pub write: bool,
    pub ready: bool,
}

/// Waits until one of `fds` is ready or `timeout` passes (None: forever). EINTR counts as a
/// (spurious) return; callers re-check their conditions anyway.
pub fn poll(fds: &mut [PollFd], timeout: Option<std::time::Duration>) -> io::Result<usize> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.fd,
            events: (if f.read { libc::POLLIN } else { 0 })
                | (if f.write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        // Round up so a wait never ends just before its deadline (which would spin).
        Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
    };
    // SAFETY: `p` is a live array of `p.len()` pollfd structures.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(e);
    }
    for (f, q) in fds.iter_mut().zip(&p) {
        f.ready = q.revents != 0;
    }
    Ok(r as usize)
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

/// getaddrinfo(3) for the connect and accept BIOs: the addresses of `host`/`service` (either
/// may be None) for `family` (AF_UNSPEC, AF_INET, AF_INET6) and `socktype`, passive (for
/// bind) when `server`. Err carries getaddrinfo's message (gai_strerror, or the errno's
/// text for EAI_SYSTEM). An empty Ok list cannot happen: getaddrinfo fails instead.
pub fn resolve(
    host: Option<&std::ffi::CStr>,
    service: Option<&std::ffi::CStr>,
    server: bool,
    family: i32,
    socktype: i32,
) -> Result<Vec<BioAddr>, String> {
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; the fields are set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_flags = if server { libc::AI_PASSIVE } else { 0 };
    let mut list: *mut libc::addrinfo = ptr::null_mut();
    // SAFETY: host/service are NUL-terminated or NULL; hints and list are live locals.
    let r = unsafe {
        libc::getaddrinfo(
            host.map_or(ptr::null(), |c| c.as_ptr()),
            service.map_or(ptr::null(), |c| c.as_ptr()),
            &hints,
            &mut list,
        )
    };
    if r != 0 {
        if r == libc::EAI_SYSTEM {
            return Err(io::Error::last_os_error().to_string());
        }
        // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string.
        let msg = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(r)) };
        return Err(msg.to_string_lossy().into_owned());
    }
    let mut out = Vec::new();
    let mut p = list;
    while !p.is_null() {
        // SAFETY: p walks the list getaddrinfo returned, which is live until freeaddrinfo.
        let ai = unsafe { &*p };
        // SAFETY: ai_addr/ai_addrlen describe a sockaddr getaddrinfo filled in.
        out.push(unsafe { BioAddr::from_raw(ai.ai_addr, ai.ai_addrlen) });
        p = ai.ai_next;
    }
    // SAFETY: frees the list getaddrinfo allocated, once; nothing points into it any more.
    unsafe { libc::freeaddrinfo(list) };
    Ok(out)
}

/// poll(2) one descriptor for writability without waiting (a non-blocking connect's
/// completion): Ok(true) when writable or in error (SO_ERROR then tells which).
pub fn writable_now(fd: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd, zero timeout.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EINTR) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(r > 0 && p.revents != 0)
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
/// socket number `b % workers`, `b` being the first byte of the QUIC packet's destination
/// connection ID (offset 1 in a short header, 6 in a long one). No privileges needed.
pub fn attach_cid_steering(fd: i32, workers: u32) -> io::Result<()> {
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    const MOD_K: u16 = (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16;
    const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let prog = [
        ins(LD_B_ABS, 0, 0, 0),    // A = first byte (UDP payload)
        ins(JSET_K, 0, 2, 0x80),   // long header?
        ins(LD_B_ABS, 0, 0, 6),    //   A = DCID[0] of a long header
        ins(JA, 0, 0, 1),          //
        ins(LD_B_ABS, 0, 0, 1),    //   A = DCID[0] of a short header
        ins(MOD_K, 0, 0, workers), // A %= workers
        ins(RET_A, 0, 0, 0),       // the group's socket number A
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

/// Zero-filled memory straight from mmap(2): pages cost nothing until first written, so a
/// large buffer that is rarely filled (GRO overflow areas) is cheap to have, and no memset
/// runs when it is made.
pub struct ZeroPages {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; access goes through &mut self.
unsafe impl Send for ZeroPages {}

impl ZeroPages {
    pub fn new(len: usize) -> io::Result<ZeroPages> {
        // SAFETY: an anonymous private mapping of `len` bytes, no fd, no fixed address.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(ZeroPages { ptr: p.cast(), len })
    }
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for ZeroPages {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, which nothing uses any more.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
