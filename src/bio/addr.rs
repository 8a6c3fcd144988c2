//! `BIO_ADDR`: one socket address (IPv4, IPv6, Unix or unset), stored as a sockaddr_storage.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{BIO_R_UNSUPPORTED_IP_FAMILY, Error, Result};

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
    /// Length of the sockaddr this address represents (0 when unset).
    pub fn sockaddr_len(&self) -> usize {
        match self.family() {
            libc::AF_INET => V4_LEN,
            libc::AF_INET6 => V6_LEN,
            libc::AF_UNIX => UN_LEN,
            _ => 0,
        }
    }
    pub fn as_sockaddr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        (
            &self.ss as *const _ as *const libc::sockaddr,
            self.sockaddr_len() as libc::socklen_t,
        )
    }
    pub fn storage_mut(&mut self) -> *mut libc::sockaddr_storage {
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
    pub unsafe fn from_raw(sa: *const libc::sockaddr, len: libc::socklen_t) -> BioAddr {
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
    /// BIO_ADDR_rawmake: `addr` is an in_addr/in6_addr (network order) or a Unix path;
    /// `port` is already in network order.
    pub fn rawmake(family: i32, addr: &[u8], port: u16) -> Result<BioAddr> {
        let mut a = BioAddr::default();
        match family {
            libc::AF_INET if addr.len() == 4 => {
                let ip = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
                a = Self::from_socket_addr(&SocketAddr::new(IpAddr::V4(ip), u16::from_be(port)));
            }
            libc::AF_INET6 if addr.len() == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(addr);
                a = Self::from_socket_addr(&SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(o)),
                    u16::from_be(port),
                ));
            }
            libc::AF_UNIX => {
                // SAFETY: storage is large enough and aligned for sockaddr_un.
                let sun = unsafe { &mut *(&mut a.ss as *mut _ as *mut libc::sockaddr_un) };
                if addr.len() >= sun.sun_path.len() {
                    return Err(Error::invalid("Unix socket path too long"));
                }
                sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (d, s) in sun.sun_path.iter_mut().zip(addr) {
                    *d = *s as libc::c_char;
                }
            }
            libc::AF_INET | libc::AF_INET6 => {
                return Err(Error::invalid(format!(
                    "address of {} bytes does not fit family {family}",
                    addr.len()
                )));
            }
            _ => {
                return Err(
                    Error::bio(BIO_R_UNSUPPORTED_IP_FAMILY).with(format!("family {family}"))
                );
            }
        }
        Ok(a)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rawmake_round_trips() {
        let a = BioAddr::rawmake(libc::AF_INET, &[127, 0, 0, 1], 4433u16.to_be()).unwrap();
        assert_eq!(
            a.to_socket_addr().unwrap(),
            "127.0.0.1:4433".parse().unwrap()
        );
        assert_eq!(a.raw_port(), 4433u16.to_be());
        assert_eq!(a.raw_address().unwrap(), vec![127, 0, 0, 1]);
        let mut six = [0u8; 16];
        six[15] = 1;
        let b = BioAddr::rawmake(libc::AF_INET6, &six, 443u16.to_be()).unwrap();
        assert_eq!(b.to_socket_addr().unwrap(), "[::1]:443".parse().unwrap());
        assert_eq!(BioAddr::decode(b.encode()), b);
        let u = BioAddr::rawmake(libc::AF_UNIX, b"/tmp/sock", 0).unwrap();
        assert_eq!(u.raw_address().unwrap(), b"/tmp/sock".to_vec());
        assert!(BioAddr::rawmake(libc::AF_INET, &[1, 2, 3], 0).is_err());
        assert!(BioAddr::rawmake(12345, &[], 0).is_err());
        assert!(BioAddr::default().is_unspec());
    }
}
