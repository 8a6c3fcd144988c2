//! A client's check of a Retry's integrity tag (RFC 9001 §5.8), done before quinn-proto sees
//! the Retry.
//!
//! quinn-proto 0.11.19 counts a Retry as an authenticated packet before it checks the tag, and
//! takes a Retry only while it has counted at most one such packet: after one corrupted (or
//! forged) Retry it discards every later valid one, so the client resends Initials the server
//! answers with Retries it ignores, until its handshake times out. The engine therefore drops a
//! QUIC v1 Retry whose tag does not verify against the original destination connection ID of
//! one of its client connections, as RFC 9000 §17.2.5.2 asks, and quinn only sees intact ones.
//! Remove when quinn-proto checks the tag first.
//! Must not touch: connections' state; anything but Retry datagrams.

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use quinn_proto::ConnectionId;

/// RFC 9001 §5.8: the fixed key and nonce of QUIC v1's Retry integrity tag.
const KEY_V1: [u8; 16] = [
    0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a, 0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68, 0xc8, 0x4e,
];
const NONCE_V1: [u8; 12] = [
    0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63, 0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb,
];
const TAG_LEN: usize = 16;

/// Whether `d` is a QUIC v1 Retry: long header with the fixed bit, type 3, version 1.
pub fn is_v1_retry(d: &[u8]) -> bool {
    d.len() > 5 && d[0] & 0xf0 == 0xf0 && d[1..5] == [0, 0, 0, 1]
}

/// Whether Retry `d`'s integrity tag verifies for original destination connection ID `odcid`.
pub fn intact(d: &[u8], odcid: &ConnectionId) -> bool {
    let Some(body) = d.len().checked_sub(TAG_LEN) else {
        return false;
    };
    let mut aad = Vec::with_capacity(1 + odcid.len() + body);
    aad.push(odcid.len() as u8);
    aad.extend_from_slice(odcid);
    aad.extend_from_slice(&d[..body]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&d[body..]);
    let Ok(key) = UnboundKey::new(&AES_128_GCM, &KEY_V1) else {
        return false;
    };
    LessSafeKey::new(key)
        .open_in_place(
            Nonce::assume_unique_for_key(NONCE_V1),
            Aad::from(&aad[..]),
            &mut tag,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9001 Appendix A.4: the sample Retry for original destination ID 8394c8f03e515708.
    const RETRY: &str = "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc9001_sample_retry_verifies_and_any_flipped_bit_does_not() {
        let odcid = ConnectionId::new(&hex("8394c8f03e515708"));
        let r = hex(RETRY);
        assert!(is_v1_retry(&r));
        assert!(intact(&r, &odcid));
        for i in 0..r.len() * 8 {
            let mut bad = r.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(!intact(&bad, &odcid), "bit {i} flipped still verifies");
        }
        let other = ConnectionId::new(&hex("8394c8f03e515709"));
        assert!(!intact(&r, &other), "another original ID verifies");
        assert!(!intact(&r[..10], &odcid));
    }
}
