//! Addresses: `BioAddr` (the value behind `BIO_ADDR`: a sockaddr_storage) and its
//! conversions, getaddrinfo(3) and getnameinfo(3).
//! Must not know about BIOs or SSL (`bio::addr` re-exports `BioAddr` and adds BIO_ADDR's
//! error conventions).

use std::ffi::{CStr, c_char};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr;

/// A socket address; `AF_UNSPEC` when cleared.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct BioAddr {
    ss: libc::sockaddr_storage,
}

const V4_LEN: usize = size_of::<libc::sockaddr_in>();
const V6_LEN: usize = size_of::<libc::sockaddr_in6>();
const UN_LEN: usize = size_of::<libc::sockaddr_un>();
/// The longest encoding [`BioAddr::encode`] writes.
pub(crate) const MAX_ENCODED: usize = UN_LEN;

impl Default for BioAddr {
    fn default() -> Self {
        // SAFETY: all-zero is a valid sockaddr_storage (family AF_UNSPEC).
        let ss = unsafe { std::mem::zeroed() };
        BioAddr { ss }
    }
}

impl PartialEq for BioAddr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for BioAddr {}

impl std::fmt::Debug for BioAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_socket_addr() {
            Some(a) => write!(f, "{a}"),
            None => write!(f, "BioAddr(family {})", self.family()),
        }
    }
}

impl BioAddr {
    pub fn family(&self) -> i32 {
        self.ss.ss_family as i32
    }
    pub fn is_unspec(&self) -> bool {
        self.family() == libc::AF_UNSPEC
    }
    pub fn clear(&mut self) {
        *self = BioAddr::default();
    }
    /// Makes it read as unset (AF_UNSPEC) without clearing its bytes: cheap enough to run
    /// over a receive batch's addresses before each receive.
    pub fn unset(&mut self) {
        self.ss.ss_family = libc::AF_UNSPEC as libc::sa_family_t;
    }
    /// Length of the sockaddr this address represents (0 when unset).
    pub fn sockaddr_len(&self) -> usize {
        match self.family() {
            libc::AF_INET => V4_LEN,
            libc::AF_INET6 => V6_LEN,
            libc::AF_UNIX => UN_LEN,
            _ => 0,
        }
    }
    pub(super) fn as_sockaddr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        (
            &self.ss as *const _ as *const libc::sockaddr,
            self.sockaddr_len() as libc::socklen_t,
        )
    }
    pub(super) fn storage_mut(&mut self) -> *mut libc::sockaddr_storage {
        &mut self.ss
    }
    /// The meaningful bytes of the sockaddr (empty when unset).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: sockaddr_storage is plain bytes; sockaddr_len() <= its size.
        unsafe {
            std::slice::from_raw_parts(&self.ss as *const _ as *const u8, self.sockaddr_len())
        }
    }
    /// Compact encoding for queues: the sockaddr bytes, length given by the family.
    pub fn encode(&self) -> &[u8] {
        self.as_bytes()
    }
    /// Rebuilds an address from [`encode`]'s bytes; empty bytes give an unset address.
    pub fn decode(bytes: &[u8]) -> BioAddr {
        let mut a = BioAddr::default();
        let n = bytes.len().min(size_of::<libc::sockaddr_storage>());
        // SAFETY: copies at most sizeof(sockaddr_storage) bytes into it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), &mut a.ss as *mut _ as *mut u8, n) };
        a
    }
    /// Copies a sockaddr of `len` bytes. Unknown families give an unset address.
    ///
    /// # Safety
    /// `sa` must point at `len` readable bytes.
    pub(super) unsafe fn from_raw(sa: *const libc::sockaddr, len: libc::socklen_t) -> BioAddr {
        let n = (len as usize).min(size_of::<libc::sockaddr_storage>());
        let mut a = BioAddr::default();
        // SAFETY: per the contract, `sa` has `len` readable bytes, and n <= storage size.
        unsafe {
            std::ptr::copy_nonoverlapping(sa as *const u8, &mut a.ss as *mut _ as *mut u8, n)
        };
        match a.family() {
            libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX => a,
            _ => BioAddr::default(),
        }
    }
    pub fn from_socket_addr(sa: &SocketAddr) -> BioAddr {
        let mut a = BioAddr::default();
        match sa {
            SocketAddr::V4(v4) => {
                // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in.
                let sin = unsafe { &mut *(&mut a.ss as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = v4.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            }
            SocketAddr::V6(v6) => {
                // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in6.
                let sin6 = unsafe { &mut *(&mut a.ss as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = v6.port().to_be();
                sin6.sin6_addr.s6_addr = v6.ip().octets();
                sin6.sin6_flowinfo = v6.flowinfo();
                sin6.sin6_scope_id = v6.scope_id();
            }
        }
        a
    }
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        match self.family() {
            libc::AF_INET => {
                let sin = self.v4();
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
            }
            libc::AF_INET6 => {
                let sin6 = self.v6();
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
    fn v4(&self) -> &libc::sockaddr_in {
        // SAFETY: called only when the family is AF_INET; storage is large enough and aligned.
        unsafe { &*(&self.ss as *const _ as *const libc::sockaddr_in) }
    }
    fn v6(&self) -> &libc::sockaddr_in6 {
        // SAFETY: called only when the family is AF_INET6; storage is large enough and aligned.
        unsafe { &*(&self.ss as *const _ as *const libc::sockaddr_in6) }
    }
    /// Port in network byte order (0 for unset or Unix addresses).
    pub fn raw_port(&self) -> u16 {
        match self.family() {
            libc::AF_INET => self.v4().sin_port,
            libc::AF_INET6 => self.v6().sin6_port,
            _ => 0,
        }
    }
    /// The raw address bytes in network order: in_addr, in6_addr or the Unix path.
    pub fn raw_address(&self) -> Option<Vec<u8>> {
        match self.family() {
            libc::AF_INET => Some(self.v4().sin_addr.s_addr.to_ne_bytes().to_vec()),
            libc::AF_INET6 => Some(self.v6().sin6_addr.s6_addr.to_vec()),
            libc::AF_UNIX => {
                // SAFETY: the family is AF_UNIX; storage is large enough and aligned.
                let sun = unsafe { &*(&self.ss as *const _ as *const libc::sockaddr_un) };
                let path: Vec<u8> = sun
                    .sun_path
                    .iter()
                    .take_while(|&&c| c != 0)
                    .map(|&c| c as u8)
                    .collect();
                Some(path)
            }
            _ => None,
        }
    }
    /// An AF_UNIX address for `path` (no NUL inside; not NUL-terminated), or None when the
    /// path does not fit sun_path with its terminator.
    pub fn unix(path: &[u8]) -> Option<BioAddr> {
        let mut a = BioAddr::default();
        // SAFETY: storage is large enough and aligned for sockaddr_un.
        let sun = unsafe { &mut *(&mut a.ss as *mut _ as *mut libc::sockaddr_un) };
        if path.len() >= sun.sun_path.len() {
            return None;
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sun.sun_path.iter_mut().zip(path) {
            *d = *s as libc::c_char;
        }
        Some(a)
    }
    pub fn is_ipv4(&self) -> bool {
        self.family() == libc::AF_INET
    }
    pub fn is_ipv6(&self) -> bool {
        self.family() == libc::AF_INET6
    }
    pub fn is_unix(&self) -> bool {
        self.family() == libc::AF_UNIX
    }
    pub fn set_port(&mut self, port_host_order: u16) {
        if let Some(mut sa) = self.to_socket_addr() {
            sa.set_port(port_host_order);
            *self = Self::from_socket_addr(&sa);
        }
    }
    /// The IP part only, for comparisons of local addresses.
    pub fn ip(&self) -> Option<IpAddr> {
        self.to_socket_addr().map(|s| s.ip())
    }
}

/// One answer of [`lookup`].
pub struct AddrInfo {
    pub family: i32,
    pub socktype: i32,
    pub protocol: i32,
    pub addr: BioAddr,
}

/// getaddrinfo(3): the answers for `host`/`service` (either may be None) with the hints
/// `family`, `socktype`, `protocol`, passive (for bind) when `server`, in getaddrinfo's
/// order. Err carries getaddrinfo's message (gai_strerror, or the errno's text for
/// EAI_SYSTEM). An empty Ok list cannot happen: getaddrinfo fails instead.
pub fn lookup(
    host: Option<&CStr>,
    service: Option<&CStr>,
    server: bool,
    family: i32,
    socktype: i32,
    protocol: i32,
) -> Result<Vec<AddrInfo>, String> {
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; the fields are set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_protocol = protocol;
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
        return Err(gai_message(r));
    }
    let mut out = Vec::new();
    let mut p = list;
    while !p.is_null() {
        // SAFETY: p walks the list getaddrinfo returned, which is live until freeaddrinfo.
        let ai = unsafe { &*p };
        out.push(AddrInfo {
            family: ai.ai_family,
            socktype: ai.ai_socktype,
            protocol: ai.ai_protocol,
            // SAFETY: ai_addr/ai_addrlen describe a sockaddr getaddrinfo filled in.
            addr: unsafe { BioAddr::from_raw(ai.ai_addr, ai.ai_addrlen) },
        });
        p = ai.ai_next;
    }
    // SAFETY: frees the list getaddrinfo allocated, once; nothing points into it any more.
    unsafe { libc::freeaddrinfo(list) };
    Ok(out)
}

/// getaddrinfo(3) for the connect and accept BIOs: [`lookup`]'s addresses only (protocol 0).
pub fn resolve(
    host: Option<&CStr>,
    service: Option<&CStr>,
    server: bool,
    family: i32,
    socktype: i32,
) -> Result<Vec<BioAddr>, String> {
    lookup(host, service, server, family, socktype, 0)
        .map(|v| v.into_iter().map(|i| i.addr).collect())
}

/// getnameinfo(3) of an IP address: (host, service) as text, numeric when `numeric`.
/// Err carries gai_strerror's message.
pub fn name_info(a: &BioAddr, numeric: bool) -> Result<(String, String), String> {
    let (sa, len) = a.as_sockaddr();
    if len == 0 {
        return Err("address is unset".into());
    }
    let mut host = [0 as c_char; 1025];
    let mut serv = [0 as c_char; 64];
    let flags = if numeric {
        libc::NI_NUMERICHOST | libc::NI_NUMERICSERV
    } else {
        0
    };
    // SAFETY: buffers are live with the sizes passed; sa/len describe a valid sockaddr.
    let r = unsafe {
        libc::getnameinfo(
            sa,
            len,
            host.as_mut_ptr(),
            host.len() as u32,
            serv.as_mut_ptr(),
            serv.len() as u32,
            flags,
        )
    };
    if r != 0 {
        return Err(gai_message(r));
    }
    // SAFETY: getnameinfo NUL-terminates both buffers on success.
    let (h, s) = unsafe { (CStr::from_ptr(host.as_ptr()), CStr::from_ptr(serv.as_ptr())) };
    Ok((
        h.to_string_lossy().into_owned(),
        s.to_string_lossy().into_owned(),
    ))
}

fn gai_message(r: i32) -> String {
    // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(libc::gai_strerror(r)) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addr_round_trips() {
        let a = BioAddr::from_socket_addr(&"127.0.0.1:4433".parse().unwrap());
        assert!(a.is_ipv4());
        assert_eq!(a.raw_port(), 4433u16.to_be());
        assert_eq!(BioAddr::decode(a.encode()), a);
        let u = BioAddr::unix(b"/tmp/sock").unwrap();
        assert!(u.is_unix());
        assert_eq!(u.raw_address().unwrap(), b"/tmp/sock".to_vec());
        assert!(BioAddr::unix(&[b'a'; 200]).is_none());
        assert!(BioAddr::default().is_unspec());
        let v = lookup(
            Some(c"127.0.0.1"),
            Some(c"443"),
            false,
            libc::AF_INET,
            libc::SOCK_DGRAM,
            0,
        )
        .unwrap();
        assert_eq!(
            v[0].addr.to_socket_addr(),
            Some("127.0.0.1:443".parse().unwrap())
        );
        let (h, s) = name_info(&v[0].addr, true).unwrap();
        assert_eq!((h.as_str(), s.as_str()), ("127.0.0.1", "443"));
    }
}
