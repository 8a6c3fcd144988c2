//! Where a received datagram's 1-RTT packet starts when long-header packets are coalesced in
//! front of it (RFC 9000 section 12.2), so that the engine hands quinn the two parts as
//! separate buffers.
//!
//! Why: quinn-proto keeps received STREAM data as slices of the buffer the datagram came in,
//! and splits a coalesced datagram into packets that still share that one buffer. A 1-RTT
//! packet carrying one byte of stream data, behind a long-header packet the connection can
//! no longer decrypt (its Handshake keys are gone), pins the whole datagram while quinn
//! counts only the 1-RTT packet's payload against its reassembly over-allocation limit: a
//! hostile peer made a connection hold about 3 MiB per stream that way (2,048 chunks a
//! stream, each pinning a 1,472-byte datagram; tests/budget.rs, scenario `gaps`). Split, the
//! long-header part is freed once processed and the 1-RTT packet pins only itself.
//! Must not touch: quinn's state; it only reads header lengths.
//!
//! The same walk tells the server's amplification account (`conn::AmpLimit`) that a datagram
//! carries a Handshake packet: the client's proof of its address (RFC 9000 section 8.1).

/// The offset of the short-header packet that ends `data`, when one or more long-header
/// packets of a version quinn-proto speaks come before it and every one of their headers
/// parses; None otherwise (one packet, a Retry or version negotiation, a header that does
/// not parse, or trailing bytes that do not look like a short header: zero padding after an
/// Initial, which must stay with it for quinn's 1,200-byte check, has no fixed bit).
pub fn short_header_tail(data: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < data.len() {
        let first = data[at];
        if first & 0x80 == 0 {
            // A short header has the fixed bit (a peer that greases it is not split: the
            // datagram then goes to quinn whole, as before).
            return (at > 0 && first & 0x40 != 0).then_some(at);
        }
        at += long_packet_len(&data[at..])?;
    }
    None
}

/// Whether `data` holds a Handshake packet among the long-header packets it starts with (of a
/// version quinn-proto speaks, every header before it parsing). Only the header is read: the
/// packet is not authenticated here (see `conn::AmpLimit` for why that is enough).
pub fn has_handshake_packet(data: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&first) = data.get(at) {
        if first & 0x80 == 0 {
            return false;
        }
        let Some(len) = long_packet_len(&data[at..]) else {
            return false;
        };
        if (first >> 4) & 0x03 == 2 {
            return true;
        }
        at += len;
    }
    false
}

/// Versions quinn-proto 0.11 speaks (`DEFAULT_SUPPORTED_VERSIONS`): QUIC v1 and drafts 29 to
/// 34, all with v1's long-header packet types.
fn known_version(v: u32) -> bool {
    v == 1 || (0xff00_001d..=0xff00_0022).contains(&v)
}

/// Length of the long-header packet at the start of `p` (RFC 9000 section 17.2), None for a
/// Retry (no length field) or anything that does not parse.
fn long_packet_len(p: &[u8]) -> Option<usize> {
    let version = u32::from_be_bytes(p.get(1..5)?.try_into().ok()?);
    if !known_version(version) {
        return None;
    }
    let mut at = 5;
    for _ in 0..2 {
        // Destination, then source connection ID: a length byte and the ID.
        let len = *p.get(at)? as usize;
        at += 1 + len;
    }
    match (p[0] >> 4) & 0x03 {
        0 => {
            // Initial: the token's length and the token.
            let (len, n) = varint(p.get(at..)?)?;
            at = at.checked_add(n)?.checked_add(usize::try_from(len).ok()?)?;
        }
        1 | 2 => {}       // 0-RTT, Handshake
        _ => return None, // Retry
    }
    let (len, n) = varint(p.get(at..)?)?;
    let end = at.checked_add(n)?.checked_add(usize::try_from(len).ok()?)?;
    (end <= p.len()).then_some(end)
}

/// A QUIC variable-length integer at the start of `b`: (value, bytes used).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let n = 1usize << (first >> 6);
    let bytes = b.get(..n)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    Some((v, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long-header packet of `kind` (0 Initial, 2 Handshake, 3 Retry) with `body` bytes
    /// after its length field.
    fn long(kind: u8, version: u32, body: usize) -> Vec<u8> {
        let mut p = vec![0xc0 | (kind << 4)];
        p.extend_from_slice(&version.to_be_bytes());
        p.push(8);
        p.extend_from_slice(&[7; 8]);
        p.push(4);
        p.extend_from_slice(&[9; 4]);
        if kind == 0 {
            p.extend_from_slice(&[0x40, 3, 1, 2, 3]); // a 3-byte token, 2-byte varint length
        }
        p.extend_from_slice(&((body as u16) | 0x4000).to_be_bytes());
        p.extend(std::iter::repeat_n(0xaa, body));
        p
    }

    fn short(len: usize) -> Vec<u8> {
        let mut p = vec![0x43];
        p.extend(std::iter::repeat_n(0x55, len - 1));
        p
    }

    #[test]
    fn finds_the_short_packet_behind_long_ones() {
        let mut d = long(2, 1, 1000);
        let at = d.len();
        d.extend(short(40));
        assert_eq!(short_header_tail(&d), Some(at));

        let mut d = long(0, 1, 300);
        d.extend(long(2, 1, 200));
        let at = d.len();
        d.extend(short(60));
        assert_eq!(
            short_header_tail(&d),
            Some(at),
            "Initial + Handshake + 1-RTT"
        );
    }

    #[test]
    fn leaves_everything_else_whole() {
        let joined = |a: Vec<u8>, b: &[u8]| [a, b.to_vec()].concat();
        let cut = long(2, 1, 100);
        for (d, why) in [
            (short(50), "one short packet"),
            (long(2, 1, 100), "one long packet"),
            (
                joined(long(0, 1, 100), &[0; 900]),
                "an Initial padded with zero bytes",
            ),
            (
                joined(long(2, 0x6b33_43cf, 100), &short(40)),
                "a version quinn does not speak",
            ),
            (joined(long(3, 1, 0), &short(40)), "a Retry has no length"),
            (cut[..cut.len() - 1].to_vec(), "a length past the end"),
            (vec![0xc0, 0, 0], "a header cut short"),
            (Vec::new(), "nothing"),
        ] {
            assert_eq!(short_header_tail(&d), None, "{why}");
        }
    }

    #[test]
    fn finds_a_handshake_packet() {
        let joined = |a: Vec<u8>, b: Vec<u8>| [a, b].concat();
        assert!(has_handshake_packet(&long(2, 1, 50)));
        assert!(has_handshake_packet(&joined(
            long(0, 1, 300),
            long(2, 1, 50)
        )));
        assert!(has_handshake_packet(&joined(long(2, 1, 50), short(40))));
        for (d, why) in [
            (long(0, 1, 300), "an Initial"),
            (
                joined(long(0, 1, 300), vec![0; 900]),
                "an Initial and padding",
            ),
            (joined(long(1, 1, 300), short(40)), "0-RTT and 1-RTT"),
            (short(60), "1-RTT"),
            (long(2, 0x6b33_43cf, 50), "a version quinn does not speak"),
            (
                long(2, 1, 50)[..40].to_vec(),
                "a Handshake packet cut short",
            ),
            (Vec::new(), "nothing"),
        ] {
            assert!(!has_handshake_packet(&d), "{why}");
        }
    }

    #[test]
    fn reads_varints() {
        assert_eq!(varint(&[0x25]), Some((37, 1)));
        assert_eq!(varint(&[0x7b, 0xbd]), Some((15293, 2)));
        assert_eq!(varint(&[0x9d, 0x7f, 0x3e, 0x7d]), Some((494_878_333, 4)));
        assert_eq!(varint(&[0x40]), None);
    }
}
