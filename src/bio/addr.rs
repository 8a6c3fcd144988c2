//! `BIO_ADDR`: one socket address (IPv4, IPv6, Unix or unset). The value type lives in
//! `sys::addr` (the OS calls take and fill it); this module adds BIO_ADDR_rawmake's rules
//! and error codes, and keeps the `bio::addr::BioAddr` path.
#![deny(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{BIO_R_UNSUPPORTED_IP_FAMILY, Error, Result};
pub use crate::sys::BioAddr;
pub(crate) use crate::sys::MAX_ENCODED;

impl BioAddr {
    /// BIO_ADDR_rawmake: `addr` is an in_addr/in6_addr (network order) or a Unix path;
    /// `port` is already in network order.
    pub fn rawmake(family: i32, addr: &[u8], port: u16) -> Result<BioAddr> {
        let a = match family {
            libc::AF_INET if addr.len() == 4 => {
                let ip = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
                Self::from_socket_addr(&SocketAddr::new(IpAddr::V4(ip), u16::from_be(port)))
            }
            libc::AF_INET6 if addr.len() == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(addr);
                Self::from_socket_addr(&SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(o)),
                    u16::from_be(port),
                ))
            }
            libc::AF_UNIX => {
                Self::unix(addr).ok_or_else(|| Error::invalid("Unix socket path too long"))?
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
        };
        Ok(a)
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
