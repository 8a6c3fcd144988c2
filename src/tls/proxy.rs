//! The PROXY protocol header (HAProxy's, versions 1 and 2) a load balancer sends in front of a
//! client's bytes: read before the TLS handshake of a server that requires it, so that the
//! server learns the client's address (and what the balancer adds: ALPN, authority, a unique
//! ID) instead of the balancer's. Parsing is the `ppp` crate's; this module bounds what is
//! read, keeps what came after the header for the TLS layer, and turns the result into
//! addresses and TLVs.
//! Must not touch: sockets (the TLS layer reads the BIO), rustls.

use std::net::SocketAddr;

use ppp::{HeaderResult, PartialResult, v1, v2};

use crate::error::*;

/// The longest header accepted: a version 1 header is at most 107 bytes; a version 2 header
/// announces its length (up to 16 + 65,535), and balancers send a few hundred bytes of TLVs
/// at most. Beyond this the connection fails rather than buffer a peer's bytes.
pub const MAX_HEADER: usize = 4096;

/// PP2_TYPE_* values of the TLVs kept (RFC-like names from HAProxy's specification).
pub const TLV_ALPN: u8 = 0x01;
pub const TLV_AUTHORITY: u8 = 0x02;
pub const TLV_UNIQUE_ID: u8 = 0x05;

/// What a header said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyInfo {
    /// The client's address and the address it connected to; None for a LOCAL command (the
    /// balancer's own connection, a health check), UNKNOWN or a UNIX-socket header.
    pub source: Option<SocketAddr>,
    pub destination: Option<SocketAddr>,
    /// Version 2 LOCAL command.
    pub local: bool,
    pub version: u8,
    /// Version 2 TLVs (type, value), in order.
    pub tlvs: Vec<(u8, Vec<u8>)>,
}

impl ProxyInfo {
    /// The value of the first TLV of type `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }
}

/// The answer for the bytes read so far.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// Not a whole header yet: read more.
    Incomplete,
    /// A header of `len` bytes: what follows is the peer's.
    Done(ProxyInfo, usize),
}

/// OpenSSL has no reason for a bad PROXY header: SSL_R_BAD_PACKET ("bad packet"), with the
/// detail in the error's text.
const SSL_R_BAD_PACKET: u32 = 240;

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::ssl(SSL_R_BAD_PACKET).with(format!("PROXY protocol header: {what}"))
}

/// Parses the start of a connection's bytes as a PROXY header. An error when they cannot be
/// one (garbage, an unsupported field) or when no header ends within `MAX_HEADER` bytes.
pub fn parse(buf: &[u8]) -> Result<Parsed> {
    let r = HeaderResult::parse(buf);
    if r.is_incomplete() {
        // ppp reads a version 2 header's length first: refuse one announced too long at once.
        if let Some(n) = v2_announced(buf)
            && n > MAX_HEADER
        {
            return Err(invalid(format!(
                "a version 2 header of {n} bytes (at most {MAX_HEADER} are accepted)"
            )));
        }
        if buf.len() >= MAX_HEADER {
            return Err(invalid(format!("no header end within {MAX_HEADER} bytes")));
        }
        return Ok(Parsed::Incomplete);
    }
    let (info, len) = match r {
        HeaderResult::V1(Ok(h)) => (from_v1(&h), h.header.len()),
        HeaderResult::V2(Ok(h)) => (from_v2(&h)?, h.len()),
        HeaderResult::V1(Err(e)) => return Err(invalid(e)),
        HeaderResult::V2(Err(e)) => return Err(invalid(e)),
    };
    Ok(Parsed::Done(info, len))
}

/// The total length a version 2 header announces (16 bytes of fixed part + its length
/// field), once its fixed part is there.
fn v2_announced(buf: &[u8]) -> Option<usize> {
    if buf.len() < 16 || !buf.starts_with(v2::PROTOCOL_PREFIX) {
        return None;
    }
    Some(16 + u16::from_be_bytes([buf[14], buf[15]]) as usize)
}

fn from_v1(h: &v1::Header<'_>) -> ProxyInfo {
    let (source, destination) = match h.addresses {
        v1::Addresses::Tcp4(a) => (
            Some(SocketAddr::from((a.source_address, a.source_port))),
            Some(SocketAddr::from((
                a.destination_address,
                a.destination_port,
            ))),
        ),
        v1::Addresses::Tcp6(a) => (
            Some(SocketAddr::from((a.source_address, a.source_port))),
            Some(SocketAddr::from((
                a.destination_address,
                a.destination_port,
            ))),
        ),
        v1::Addresses::Unknown => (None, None),
    };
    ProxyInfo {
        source,
        destination,
        local: false,
        version: 1,
        tlvs: Vec::new(),
    }
}

fn from_v2(h: &v2::Header<'_>) -> Result<ProxyInfo> {
    let local = h.command == v2::Command::Local;
    let (source, destination) = match h.addresses {
        _ if local => (None, None),
        v2::Addresses::IPv4(a) => (
            Some(SocketAddr::from((a.source_address, a.source_port))),
            Some(SocketAddr::from((
                a.destination_address,
                a.destination_port,
            ))),
        ),
        v2::Addresses::IPv6(a) => (
            Some(SocketAddr::from((a.source_address, a.source_port))),
            Some(SocketAddr::from((
                a.destination_address,
                a.destination_port,
            ))),
        ),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => (None, None),
    };
    let mut tlvs = Vec::new();
    for t in h.tlvs() {
        let t = t.map_err(|e| invalid(format!("TLV: {e}")))?;
        tlvs.push((t.kind, t.value.into_owned()));
    }
    Ok(ProxyInfo {
        source,
        destination,
        local,
        version: 2,
        tlvs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Command, IPv4, Protocol, Type, Version};

    fn v2_header(cmd: Command, tlvs: &[(Type, &[u8])]) -> Vec<u8> {
        let mut b = Builder::with_addresses(
            Version::Two | cmd,
            Protocol::Stream,
            IPv4::new([203, 0, 113, 7], [10, 0, 0, 1], 4242, 443),
        );
        for (k, v) in tlvs {
            b = b.write_tlv(*k, v).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn version_2_with_tlvs_then_the_peers_bytes() {
        let mut h = v2_header(
            Command::Proxy,
            &[(Type::ALPN, b"h2"), (Type::Authority, b"example.com")],
        );
        let n = h.len();
        h.extend_from_slice(b"\x16\x03\x01rest");
        for cut in 0..n {
            assert_eq!(
                parse(&h[..cut]).unwrap(),
                Parsed::Incomplete,
                "cut at {cut}"
            );
        }
        let Parsed::Done(info, len) = parse(&h).unwrap() else {
            panic!("no header")
        };
        assert_eq!(len, n);
        assert_eq!(info.source, Some("203.0.113.7:4242".parse().unwrap()));
        assert_eq!(info.destination, Some("10.0.0.1:443".parse().unwrap()));
        assert_eq!(info.tlv(TLV_ALPN), Some(&b"h2"[..]));
        assert_eq!(info.tlv(TLV_AUTHORITY), Some(&b"example.com"[..]));
        assert_eq!(info.tlv(TLV_UNIQUE_ID), None);
        assert!(!info.local);
    }

    #[test]
    fn version_2_local_has_no_addresses() {
        let h = v2_header(Command::Local, &[]);
        let Parsed::Done(info, _) = parse(&h).unwrap() else {
            panic!("no header")
        };
        assert!(info.local);
        assert_eq!(info.source, None);
    }

    #[test]
    fn version_1_tcp4_tcp6_and_unknown() {
        let Parsed::Done(info, len) =
            parse(b"PROXY TCP4 192.0.2.1 198.51.100.2 5555 443\r\n\x16").unwrap()
        else {
            panic!("no header")
        };
        assert_eq!(len, 44);
        assert_eq!(info.source, Some("192.0.2.1:5555".parse().unwrap()));
        let Parsed::Done(info, _) = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").unwrap()
        else {
            panic!("no header")
        };
        assert_eq!(info.source, Some("[2001:db8::1]:1".parse().unwrap()));
        let Parsed::Done(info, _) = parse(b"PROXY UNKNOWN\r\n").unwrap() else {
            panic!("no header")
        };
        assert_eq!(info.source, None);
        assert_eq!(parse(b"PROXY TCP4 192.0.2.1").unwrap(), Parsed::Incomplete);
    }

    #[test]
    fn garbage_and_oversized_headers_are_refused() {
        assert!(parse(b"GET / HTTP/1.1\r\n").is_err());
        assert!(parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").is_err());
        assert!(parse(b"PROXY TCP4 999.0.2.1 198.51.100.2 5555 443\r\n").is_err());
        // A version 2 header announcing 65,535 bytes of addresses and TLVs.
        let mut h = v2::PROTOCOL_PREFIX.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(parse(&h).is_err());
        // A version 1 header without its end.
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; MAX_HEADER]].concat();
        assert!(parse(&long).is_err());
    }
}
