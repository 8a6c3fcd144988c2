//! Whether a client's first ClientHello offers early data, read from the bytes a server
//! takes in: rustls does not tell a server that early data it refused was offered, and
//! SSL_get_early_data_status then says REJECTED rather than NOT_SENT (OpenSSL's answers).
//! Owns: a small record and handshake-message reader over the start of the stream.
//! Must not touch: the connection (it only watches bytes).
#![deny(unsafe_code)]

/// The TLS extension number of early_data (RFC 8446 section 4.2.10).
const EXT_EARLY_DATA: u16 = 42;
/// A ClientHello longer than this is not looked into (rustls itself refuses far shorter).
const MAX_HELLO: usize = 1 << 17;

#[derive(Default)]
pub struct Sniff {
    /// The record header being read, and the payload bytes left of the current record.
    header: Vec<u8>,
    left: usize,
    /// The handshake message's bytes so far.
    msg: Vec<u8>,
    /// The answer, once known (false also when the bytes are not a ClientHello).
    found: Option<bool>,
}

impl Sniff {
    /// Whether the ClientHello offered early data (false until it is complete).
    pub fn offered(&self) -> bool {
        self.found == Some(true)
    }

    /// Takes in the next bytes of the stream.
    pub fn feed(&mut self, mut buf: &[u8]) {
        while self.found.is_none() && !buf.is_empty() {
            if self.left == 0 {
                let n = (5 - self.header.len()).min(buf.len());
                self.header.extend_from_slice(&buf[..n]);
                buf = &buf[n..];
                if self.header.len() < 5 {
                    return;
                }
                // Only handshake records (22) carry a ClientHello.
                if self.header[0] != 22 {
                    self.done(false);
                    return;
                }
                self.left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header.clear();
                continue;
            }
            let n = self.left.min(buf.len());
            self.msg.extend_from_slice(&buf[..n]);
            self.left -= n;
            buf = &buf[n..];
            self.look();
        }
    }

    fn done(&mut self, v: bool) {
        self.found = Some(v);
        self.msg = Vec::new();
        self.header = Vec::new();
    }

    /// Answers once the whole message is in.
    fn look(&mut self) {
        if self.msg.len() < 4 {
            return;
        }
        let len = usize::from(self.msg[1]) << 16
            | usize::from(self.msg[2]) << 8
            | usize::from(self.msg[3]);
        if self.msg[0] != 1 || len > MAX_HELLO {
            self.done(false);
            return;
        }
        if self.msg.len() >= 4 + len {
            let v = offers_early_data(&self.msg[4..4 + len]).unwrap_or(false);
            self.done(v);
        }
    }
}

/// Walks a ClientHello body to its extensions; None if it is malformed.
fn offers_early_data(b: &[u8]) -> Option<bool> {
    let mut r = Reader(b);
    r.skip(2 + 32)?; // legacy_version, random
    let n = usize::from(r.u8()?);
    r.skip(n)?; // legacy_session_id
    let n = usize::from(r.u16()?);
    r.skip(n)?; // cipher_suites
    let n = usize::from(r.u8()?);
    r.skip(n)?; // legacy_compression_methods
    let n = usize::from(r.u16()?);
    let mut exts = Reader(r.take(n)?);
    while !exts.0.is_empty() {
        let ty = exts.u16()?;
        let n = usize::from(exts.u16()?);
        exts.skip(n)?;
        if ty == EXT_EARLY_DATA {
            return Some(true);
        }
    }
    Some(false)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record (split over two records when `split`) with these extensions.
    fn hello(exts: &[(u16, &[u8])], split: bool) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        let mut e = Vec::new();
        for (ty, data) in exts {
            e.extend_from_slice(&ty.to_be_bytes());
            e.extend_from_slice(&(data.len() as u16).to_be_bytes());
            e.extend_from_slice(data);
        }
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend_from_slice(&e);
        let mut msg = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        msg.extend_from_slice(&body);
        let parts: Vec<&[u8]> = if split {
            let (a, b) = msg.split_at(msg.len() / 2);
            vec![a, b]
        } else {
            vec![&msg]
        };
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&[22, 3, 1, (p.len() >> 8) as u8, p.len() as u8]);
            out.extend_from_slice(p);
        }
        out
    }

    fn sniff(bytes: &[u8], cut: usize) -> bool {
        let mut s = Sniff::default();
        s.feed(&bytes[..cut]);
        s.feed(&bytes[cut..]);
        s.offered()
    }

    #[test]
    fn finds_early_data_at_every_split() {
        for split in [false, true] {
            let with = hello(&[(0, b"\0\0"), (EXT_EARLY_DATA, b""), (41, b"xyz")], split);
            let without = hello(&[(0, b"\0\0"), (41, b"xyz")], split);
            for cut in 0..=with.len() {
                assert!(sniff(&with, cut), "cut {cut}");
            }
            for cut in 0..=without.len() {
                assert!(!sniff(&without, cut), "cut {cut}");
            }
        }
    }

    #[test]
    fn other_bytes_say_no() {
        let mut h = hello(&[(EXT_EARLY_DATA, b"")], false);
        // Not a handshake record, not a ClientHello, cut short, a broken length.
        let mut s = Sniff::default();
        s.feed(&[23, 3, 3, 0, 1, 0]);
        assert!(!s.offered() && s.found == Some(false));
        h[5] = 2;
        assert!(!sniff(&h, 0));
        let h = hello(&[(EXT_EARLY_DATA, b"")], false);
        let mut s = Sniff::default();
        s.feed(&h[..h.len() - 1]);
        assert!(!s.offered() && s.found.is_none());
        let mut bad = hello(&[(EXT_EARLY_DATA, b"")], false);
        let n = bad.len();
        bad[n - 2] = 0xff; // the extension's length runs past the end
        assert!(!sniff(&bad, 0));
    }
}
