//! Datagram I/O on UDP sockets, in quinn-udp's manner: batched send and receive
//! (sendmmsg/recvmmsg) with UDP_SEGMENT (GSO), UDP_GRO, IP_PKTINFO/IPV6_PKTINFO and ECN
//! (IP_TOS/IPV6_TCLASS) control messages, the single-datagram fallbacks, and the overflow
//! memory GRO writes into.
//! Owns: every libc call that moves datagrams. Must not know about BIOs or SSL.
//! As in quinn-udp, what goes to the kernel is borrowed: a [`TxDesc`] holds its bytes as
//! `&[u8]` (quinn-udp's `Transmit<'a>`, one per datagram here: GSO runs are regrouped in
//! [`send_batch`]), an [`RxSlot`] lends a `&mut [u8]` and gets back its length, GRO stride and
//! destination IP and ECN codepoint (quinn-udp's `IoSliceMut` plus `RecvMeta`). Raw pointers exist only inside
//! these functions, for the duration of one syscall.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::ptr;

use super::{BioAddr, errno, getsockopt_int, setsockopt_int};

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
/// Room for every control message of one datagram: GRO/GSO segment size, IPv6 packet info
/// and the traffic class (16 + 40 + 16 bytes on 64-bit Linux), with headroom.
const CMSG_SPACE: usize = 128;

const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;

/// One datagram to send. It borrows its bytes and addresses, so a batch builds without copies
/// or allocation and cannot outlive what it points at.
#[derive(Clone, Copy)]
pub struct TxDesc<'a> {
    pub data: &'a [u8],
    /// Destination, or None for the connected peer.
    pub dst: Option<&'a BioAddr>,
    /// Source address (IP only is used), or None for the kernel's choice.
    pub src: Option<&'a BioAddr>,
    /// ECN codepoint for the IP header (the low two bits of the TOS / traffic class byte:
    /// 0b10 ECT(0), 0b01 ECT(1), 0b11 CE), 0 for Not-ECT. Put on the wire only when the
    /// sender's [`TxOpts::ecn`] says so.
    pub ecn: u8,
}

/// How [`send_batch`] may send: the socket's offloads and what it knows of the peer.
#[derive(Clone, Copy, Debug, Default)]
pub struct TxOpts {
    /// Runs of same-size datagrams to one destination go as one UDP_SEGMENT send.
    pub gso: bool,
    /// Datagrams with a non-zero `ecn` carry it in an IP_TOS / IPV6_TCLASS control message.
    pub ecn: bool,
    /// Where a datagram has no destination (a connected socket): whether the peer is IPv4,
    /// or IPv4-mapped on an IPv6 socket (IP_TOS, not IPV6_TCLASS, sets its ECN bits).
    pub peer_v4: bool,
}

/// Whether the IP header of a datagram to `a` is IPv4 (a v4-mapped address on an IPv6
/// socket included); None when `a` is not an IP address.
fn ipv4_header(a: &BioAddr) -> Option<bool> {
    match a.to_socket_addr()? {
        std::net::SocketAddr::V4(_) => Some(true),
        std::net::SocketAddr::V6(v6) => Some(v6.ip().to_ipv4_mapped().is_some()),
    }
}

fn same_addr(a: Option<&BioAddr>, b: Option<&BioAddr>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => ptr::eq(x, y) || x == y,
        _ => false,
    }
}

/// Empties `v` and gives its allocation back for descriptors of another lifetime: a
/// long-lived scratch vector serves every batch without allocating (in-place collection
/// keeps the buffer; `recycle_keeps_the_allocation` checks it).
pub fn recycle<'b>(mut v: Vec<TxDesc<'_>>) -> Vec<TxDesc<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("empty")).collect()
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
    /// The kernel refused an ECN control message (EINVAL: IP_TOS as a control message needs
    /// Linux 3.13): the caller should stop setting ECN bits on this socket and retry.
    EcnRefused,
}

/// Sends `items` in as few syscalls as possible: consecutive same-size datagrams to one
/// destination with one ECN codepoint become one GSO send when `opts.gso` is true; all go
/// through sendmmsg. `counts` accumulates (syscalls made, GSO sends made, datagrams sent
/// with ECN bits set).
pub fn send_batch(
    fd: i32,
    items: &[TxDesc<'_>],
    opts: TxOpts,
    counts: &mut (u64, u64, u64),
) -> SendResult {
    let gso = opts.gso;
    let mut done = 0usize;
    while done < items.len() {
        // SAFETY: zeroed msghdr/iovec/cmsg arrays are valid initial states.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut iovs: [MaybeUninit<libc::iovec>; MAX_IOV] = [MaybeUninit::uninit(); MAX_IOV];
        let mut cmsgs: [MaybeUninit<CmsgBuf>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        let mut group_sizes = [0usize; BATCH];
        let mut group_ecn = [false; BATCH];
        let mut ngroups = 0;
        let mut niov = 0;
        let mut i = done;
        while i < items.len() && ngroups < BATCH && niov < MAX_IOV {
            let first = items[i];
            let mut n = 1;
            let first_len = first.data.len();
            let mut bytes = first_len;
            if gso && first_len > 0 {
                while i + n < items.len()
                    && n < GSO_MAX_SEGS
                    && niov + n < MAX_IOV
                    && items[i + n].data.len() <= first_len
                    && !items[i + n].data.is_empty()
                    && bytes + items[i + n].data.len() <= GSO_MAX_BYTES
                    && same_addr(items[i + n].dst, first.dst)
                    && same_addr(items[i + n].src, first.src)
                    && items[i + n].ecn == first.ecn
                {
                    bytes += items[i + n].data.len();
                    n += 1;
                    if items[i + n - 1].data.len() < first_len {
                        break; // only the last segment may be short
                    }
                }
            }
            for k in 0..n {
                iovs[niov + k].write(libc::iovec {
                    iov_base: items[i + k].data.as_ptr() as *mut _,
                    iov_len: items[i + k].data.len(),
                });
            }
            let h = &mut hdrs[ngroups].msg_hdr;
            h.msg_iov = iovs[niov].as_mut_ptr();
            h.msg_iovlen = n;
            if let Some(dst) = first.dst {
                let (sa, len) = dst.as_sockaddr();
                h.msg_name = sa as *mut _;
                h.msg_namelen = len;
            }
            let cbuf = cmsgs[ngroups].write(CmsgBuf([0; CMSG_SPACE]));
            // One TOS per sendmsg: a GSO run never mixes codepoints (grouped above).
            let ecn = if opts.ecn && first.ecn & 3 != 0 {
                let v4 = first.dst.map_or(Some(opts.peer_v4), ipv4_header);
                v4.map(|v4| (first.ecn & 3, v4))
            } else {
                None
            };
            group_ecn[ngroups] = ecn.is_some();
            let gso_size = if n > 1 { first_len } else { 0 };
            let clen = build_tx_cmsgs(&mut cbuf.0, gso_size, first.src, ecn);
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
            // After GSO (a kernel with UDP_SEGMENT takes TOS control messages): quinn-udp's
            // `sendmsg_einval` fallback.
            if e == libc::EINVAL && group_ecn[..ngroups].iter().any(|&b| b) {
                return if done > 0 {
                    SendResult::Sent(done)
                } else {
                    SendResult::EcnRefused
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
        counts.2 += group_sizes[..r]
            .iter()
            .zip(&group_ecn[..r])
            .filter(|(_, e)| **e)
            .map(|(c, _)| *c as u64)
            .sum::<u64>();
        done += group_sizes[..r].iter().sum::<usize>();
        if r < ngroups {
            break;
        }
    }
    SendResult::Sent(done)
}

/// Writes the control messages of one sendmsg into `buf`: the GSO segment size, the source
/// address, and the ECN codepoint (`Some((bits, ipv4_header))`) as IP_TOS or IPV6_TCLASS, an
/// `int` for both, as quinn-udp sends them (Linux takes an int or a byte for IP_TOS).
/// Returns the length used.
fn build_tx_cmsgs(
    buf: &mut [u8; CMSG_SPACE],
    gso_size: usize,
    src: Option<&BioAddr>,
    ecn: Option<(u8, bool)>,
) -> usize {
    // SAFETY: each control message starts `total` bytes into `buf` (the CMSG_SPACE of those
    // before it, so aligned as CMSG_NXTHDR would place it: `buf` is 8-byte aligned), and the
    // three together need at most CMSG_SPACE(2) + CMSG_SPACE(20) + CMSG_SPACE(4) = 72 of its
    // 128 bytes; CMSG_DATA and the unaligned writes stay within that.
    unsafe {
        let base = buf.as_mut_ptr();
        let mut total = 0usize;
        let mut push = |level: libc::c_int, kind: libc::c_int, len: usize| {
            let c = base.add(total).cast::<libc::cmsghdr>();
            (*c).cmsg_level = level;
            (*c).cmsg_type = kind;
            (*c).cmsg_len = libc::CMSG_LEN(len as u32) as usize;
            total += libc::CMSG_SPACE(len as u32) as usize;
            libc::CMSG_DATA(c)
        };
        if gso_size > 0 {
            let d = push(libc::SOL_UDP, UDP_SEGMENT, size_of::<u16>());
            ptr::write_unaligned(d.cast::<u16>(), gso_size as u16);
        }
        match src.and_then(|s| s.to_socket_addr()) {
            Some(std::net::SocketAddr::V4(v4)) => {
                let d = push(
                    libc::IPPROTO_IP,
                    libc::IP_PKTINFO,
                    size_of::<libc::in_pktinfo>(),
                );
                let mut pi: libc::in_pktinfo = zeroed();
                pi.ipi_spec_dst.s_addr = u32::from_ne_bytes(v4.ip().octets());
                ptr::write_unaligned(d.cast::<libc::in_pktinfo>(), pi);
            }
            Some(std::net::SocketAddr::V6(v6)) => {
                let d = push(
                    libc::IPPROTO_IPV6,
                    libc::IPV6_PKTINFO,
                    size_of::<libc::in6_pktinfo>(),
                );
                let mut pi: libc::in6_pktinfo = zeroed();
                pi.ipi6_addr.s6_addr = v6.ip().octets();
                ptr::write_unaligned(d.cast::<libc::in6_pktinfo>(), pi);
            }
            None => {}
        }
        if let Some((bits, v4)) = ecn {
            // An IPv4 header (v4-mapped peers of an IPv6 socket included) takes IP_TOS; the
            // kernel ignores IPV6_TCLASS there, and IP_TOS on a native IPv6 datagram.
            let (level, kind) = if v4 {
                (libc::IPPROTO_IP, libc::IP_TOS)
            } else {
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS)
            };
            #[cfg(not(test))]
            let len = size_of::<libc::c_int>();
            // A length the kernel refuses (EINVAL): the fallback's test.
            #[cfg(test)]
            let len = if tests::MALFORMED_TOS.with(|m| m.get()) {
                2
            } else {
                size_of::<libc::c_int>()
            };
            let d = push(level, kind, len);
            ptr::write_unaligned(d.cast::<libc::c_int>(), libc::c_int::from(bits));
        }
        total
    }
}

/// One receive slot: where the datagram goes and where its addresses are reported. It
/// borrows its buffers, so the kernel can only write where the caller lent memory.
pub struct RxSlot<'a> {
    pub buf: &'a mut [u8],
    /// Overflow area after `buf` (GRO only; empty otherwise), so a coalesced datagram is not
    /// cut.
    pub tail: &'a mut [u8],
    /// Where the source address is written (None: not wanted).
    pub src: Option<&'a mut BioAddr>,
    /// Out: bytes received (across buf and tail), whether the kernel truncated, the GRO
    /// segment size (0 when not coalesced), the destination IP (from pktinfo) if any, the
    /// ECN codepoint (IP_TOS / IPV6_TCLASS low bits; 0 when not ECN-capable or not asked
    /// for: [`set_recv_ecn`]).
    pub len: usize,
    pub truncated: bool,
    pub seg: usize,
    pub dst: Option<BioAddr>,
    pub ecn: u8,
}

impl<'a> RxSlot<'a> {
    pub fn new(buf: &'a mut [u8], tail: &'a mut [u8], src: Option<&'a mut BioAddr>) -> Self {
        RxSlot {
            buf,
            tail,
            src,
            len: 0,
            truncated: false,
            seg: 0,
            dst: None,
            ecn: 0,
        }
    }
}

/// Receives up to `slots.len()` datagrams in one recvmmsg. `wait` blocks for the first one
/// (on a blocking socket); otherwise returns EAGAIN at once when nothing is queued. Control
/// messages (GRO segment size, packet info, traffic class) are collected only with `cmsg`.
pub fn recv_batch(fd: i32, slots: &mut [RxSlot<'_>], wait: bool, cmsg: bool) -> io::Result<usize> {
    let n = slots.len().min(BATCH);
    // SAFETY: zeroed headers/iovecs/control buffers are valid initial states.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut iovs: [[libc::iovec; 2]; BATCH] = unsafe { zeroed() };
    let mut cmsgs: [MaybeUninit<CmsgBuf>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    for (k, s) in slots[..n].iter_mut().enumerate() {
        iovs[k][0] = libc::iovec {
            iov_base: s.buf.as_mut_ptr().cast(),
            iov_len: s.buf.len(),
        };
        let mut nv = 1;
        if !s.tail.is_empty() {
            iovs[k][1] = libc::iovec {
                iov_base: s.tail.as_mut_ptr().cast(),
                iov_len: s.tail.len(),
            };
            nv = 2;
        }
        let h = &mut hdrs[k].msg_hdr;
        h.msg_iov = iovs[k].as_mut_ptr();
        h.msg_iovlen = nv;
        if let Some(src) = s.src.as_deref_mut() {
            h.msg_name = src.storage_mut().cast();
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
        s.ecn = 0;
        if let Some(src) = s.src.as_deref_mut()
            && h.msg_namelen == 0
        {
            // A connected socket may report no name.
            src.clear();
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
                    // IPv4 (also v4-mapped on an IPv6 socket): the TOS byte, one byte.
                    (libc::IPPROTO_IP, libc::IP_TOS) => s.ecn = ptr::read_unaligned(d) & 3,
                    // IPv6: the traffic class, an int.
                    (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
                        s.ecn = ptr::read_unaligned(d.cast::<libc::c_int>()) as u8 & 3
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

pub fn enable_gro(fd: i32, on: bool) -> bool {
    setsockopt_int(fd, libc::SOL_UDP, UDP_GRO, on as i32).is_ok()
}

/// Whether the kernel accepts UDP_SEGMENT on this socket.
pub fn gso_supported(fd: i32) -> bool {
    getsockopt_int(fd, libc::SOL_UDP, UDP_SEGMENT).is_ok()
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
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` readable and writable bytes, owned by this value, and
        // the slice borrows it mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
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

/// Asks for the destination address of each received datagram (IP_PKTINFO; on an IPv6
/// socket, which may also see IPv4 traffic, IPV6_RECVPKTINFO and IP_PKTINFO both).
pub fn set_recv_pktinfo(fd: i32, ipv6: bool, on: bool) -> io::Result<()> {
    let v = on as i32;
    if ipv6 {
        let _ = setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, v);
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, v)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, v)
    }
}

/// Asks for the ECN bits of each received datagram (IP_RECVTOS; on an IPv6 socket
/// IPV6_RECVTCLASS, and IP_RECVTOS too for the IPv4 traffic a dual-stack socket sees, as
/// quinn-udp does; that one may fail on a v6-only socket and is not needed there).
pub fn set_recv_ecn(fd: i32, ipv6: bool, on: bool) -> io::Result<()> {
    let v = on as i32;
    if ipv6 {
        let _ = setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, v);
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, v)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, v)
    }
}

/// The path MTU the kernel knows for a connected socket (IP_MTU / IPV6_MTU), IP header
/// included.
pub fn path_mtu(fd: i32, ipv6: bool) -> io::Result<usize> {
    let m = if ipv6 {
        getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU)?
    } else {
        getsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MTU)?
    };
    Ok(m.max(0) as usize)
}

/// Sets the don't-fragment bit (path MTU discovery "do") or clears it ("dont").
pub fn set_dont_fragment(fd: i32, ipv6: bool, on: bool) -> io::Result<()> {
    if ipv6 {
        let v = if on {
            libc::IPV6_PMTUDISC_DO
        } else {
            libc::IPV6_PMTUDISC_DONT
        };
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, v)
    } else {
        let v = if on {
            libc::IP_PMTUDISC_DO
        } else {
            libc::IP_PMTUDISC_DONT
        };
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Makes this thread's ECN control messages malformed, so that the kernel answers
        /// EINVAL as an old one does to IP_TOS (`bio::dgram`'s fallback test).
        pub(crate) static MALFORMED_TOS: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
    }

    #[test]
    fn recycle_keeps_the_allocation() {
        let bytes = [1u8, 2, 3];
        let mut v: Vec<TxDesc<'static>> = Vec::with_capacity(16);
        let (p, cap) = (v.as_ptr() as usize, v.capacity());
        {
            let local = bytes;
            let mut w: Vec<TxDesc<'_>> = recycle(std::mem::take(&mut v));
            w.push(TxDesc {
                data: &local,
                dst: None,
                src: None,
                ecn: 0,
            });
            v = recycle(w);
        }
        assert!(v.is_empty());
        assert_eq!((v.as_ptr() as usize, v.capacity()), (p, cap));
    }
}
