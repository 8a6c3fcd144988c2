//! X.509 certificates as OpenSSL's `X509` objects present them: the DER bytes, the subject
//! and issuer names and the serial number, decoded once by x509-parser when the object is
//! made; names in OpenSSL's text forms (X509_NAME_oneline, X509_NAME_print_ex); PEM in and
//! out.
//! Must not touch: SSL objects, `extern "C"` (ffi does), BIO internals beyond read/write.
#![deny(unsafe_code)]

use std::fmt::Write as _;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::bio::Bio;
use crate::error::*;

/// PEM_R_NO_START_LINE: no certificate block in the input.
pub const PEM_R_NO_START_LINE: u32 = 108;
/// PEM_R_BAD_BASE64_DECODE.
pub const PEM_R_BAD_BASE64_DECODE: u32 = 100;
/// The reason for a certificate that cannot be decoded (OpenSSL's ERR_R_NESTED_ASN1_ERROR);
/// the entry's text says what x509-parser found.
const NESTED_ASN1_ERROR: u32 = 266 | ERR_RFLAG_COMMON;

// X509_NAME_print_ex flags (values of OpenSSL's x509.h and asn1.h).
pub const ASN1_STRFLGS_ESC_2253: u64 = 1;
pub const ASN1_STRFLGS_ESC_CTRL: u64 = 2;
pub const ASN1_STRFLGS_ESC_MSB: u64 = 4;
pub const ASN1_STRFLGS_ESC_QUOTE: u64 = 8;
pub const ASN1_STRFLGS_UTF8_CONVERT: u64 = 0x10;
pub const ASN1_STRFLGS_DUMP_UNKNOWN: u64 = 0x100;
pub const ASN1_STRFLGS_DUMP_DER: u64 = 0x200;
pub const ASN1_STRFLGS_RFC2253: u64 = ASN1_STRFLGS_ESC_2253
    | ASN1_STRFLGS_ESC_CTRL
    | ASN1_STRFLGS_ESC_MSB
    | ASN1_STRFLGS_UTF8_CONVERT
    | ASN1_STRFLGS_DUMP_UNKNOWN
    | ASN1_STRFLGS_DUMP_DER;
pub const XN_FLAG_SEP_MASK: u64 = 0xf << 16;
pub const XN_FLAG_COMPAT: u64 = 0;
pub const XN_FLAG_SEP_COMMA_PLUS: u64 = 1 << 16;
pub const XN_FLAG_SEP_CPLUS_SPC: u64 = 2 << 16;
pub const XN_FLAG_SEP_SPLUS_SPC: u64 = 3 << 16;
pub const XN_FLAG_SEP_MULTILINE: u64 = 4 << 16;
pub const XN_FLAG_DN_REV: u64 = 1 << 20;
pub const XN_FLAG_FN_MASK: u64 = 0x3 << 21;
pub const XN_FLAG_FN_SN: u64 = 0;
pub const XN_FLAG_FN_LN: u64 = 1 << 21;
pub const XN_FLAG_FN_OID: u64 = 2 << 21;
pub const XN_FLAG_FN_NONE: u64 = 3 << 21;
pub const XN_FLAG_SPC_EQ: u64 = 1 << 23;
pub const XN_FLAG_DUMP_UNKNOWN_FIELDS: u64 = 1 << 24;
pub const XN_FLAG_FN_ALIGN: u64 = 1 << 25;
pub const XN_FLAG_RFC2253: u64 = ASN1_STRFLGS_RFC2253
    | XN_FLAG_SEP_COMMA_PLUS
    | XN_FLAG_DN_REV
    | XN_FLAG_FN_SN
    | XN_FLAG_DUMP_UNKNOWN_FIELDS;
pub const XN_FLAG_ONELINE: u64 = ASN1_STRFLGS_RFC2253
    | ASN1_STRFLGS_ESC_QUOTE
    | XN_FLAG_SEP_CPLUS_SPC
    | XN_FLAG_SPC_EQ
    | XN_FLAG_FN_SN;
pub const XN_FLAG_MULTILINE: u64 = ASN1_STRFLGS_ESC_CTRL
    | ASN1_STRFLGS_ESC_MSB
    | XN_FLAG_SEP_MULTILINE
    | XN_FLAG_SPC_EQ
    | XN_FLAG_FN_LN
    | XN_FLAG_FN_ALIGN;

/// A certificate (`X509 *`): its DER bytes and what the API reads from it.
#[derive(Debug)]
pub struct Certificate {
    der: Vec<u8>,
    subject: Name,
    issuer: Name,
    serial: Integer,
}

/// A distinguished name (`X509_NAME *`): relative distinguished names in order, each a set of
/// attributes (usually one).
#[derive(Debug, Clone)]
pub struct Name {
    der: Vec<u8>,
    rdns: Vec<Vec<Attr>>,
}

#[derive(Debug, Clone)]
struct Attr {
    /// Dotted form of the attribute type.
    oid: String,
    /// OpenSSL's short and long names for the type, if it is a common one.
    names: Option<(&'static str, &'static str)>,
    /// The value as characters (string types decoded: UTF8, BMP, Universal; others as bytes).
    chars: Vec<u32>,
    /// The whole DER of the value (tag, length, content), for "#hex" dumps.
    der: Vec<u8>,
}

/// An `ASN1_INTEGER *` (here only a certificate's serial number): big-endian two's complement.
#[derive(Debug)]
pub struct Integer {
    bytes: Vec<u8>,
}

/// A `STACK_OF(...)` (OPENSSL_STACK): certificates it keeps alive (a connection's peer
/// chain), or the addresses of objects the application owns (X509_NAME lists).
#[derive(Debug)]
pub enum Stack {
    Certs(Vec<Arc<Certificate>>),
    Raw(Vec<usize>),
}

impl Stack {
    pub fn len(&self) -> usize {
        match self {
            Stack::Certs(v) => v.len(),
            Stack::Raw(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The address of item `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<usize> {
        match self {
            Stack::Certs(v) => v.get(i).map(|c| Arc::as_ptr(c) as usize),
            Stack::Raw(v) => v.get(i).copied(),
        }
    }
}

/// A connection's peer certificates as X509 objects: the peer's own, and the chain as
/// SSL_get_peer_cert_chain gives it (on a client with the server's certificate first, on a
/// server without the client's: OpenSSL's rule).
#[derive(Debug)]
pub struct PeerCerts {
    pub leaf: Option<Arc<Certificate>>,
    pub chain: Stack,
    /// A server that asked for a certificate has a chain (empty if none came), as OpenSSL's.
    pub asked: bool,
}

impl PeerCerts {
    /// From the certificates the peer sent (its own first); `server`: this end is the server.
    pub fn new(certs: &[CertificateDer<'_>], server: bool, asked: bool) -> Result<PeerCerts> {
        let all = certs
            .iter()
            .map(|c| Certificate::from_der(c).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let leaf = all.first().cloned();
        let chain = if server {
            all.into_iter().skip(1).collect()
        } else {
            all
        };
        Ok(PeerCerts {
            leaf,
            chain: Stack::Certs(chain),
            asked: server && asked,
        })
    }
}

impl Certificate {
    /// Decodes one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate> {
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| {
            Error::new(ERR_LIB_X509, NESTED_ASN1_ERROR)
                .with(format!("cannot decode the certificate: {e}"))
        })?;
        let len = der.len() - rest.len();
        Ok(Certificate {
            der: der[..len].to_vec(),
            subject: Name::from_parsed(cert.subject()),
            issuer: Name::from_parsed(cert.issuer()),
            serial: Integer {
                bytes: cert.raw_serial().to_vec(),
            },
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }
    pub fn subject(&self) -> &Name {
        &self.subject
    }
    pub fn issuer(&self) -> &Name {
        &self.issuer
    }
    pub fn serial(&self) -> &Integer {
        &self.serial
    }

    /// The certificate as a PEM block ("CERTIFICATE", base64 in 64-column lines).
    pub fn to_pem(&self) -> String {
        pem::encode_config(
            &pem::Pem::new("CERTIFICATE", self.der.clone()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// PEM_read_bio_X509: reads lines from `bio` until a whole certificate block was read
    /// (other blocks before it are skipped, as PEM_read_bio does), leaving what follows it in
    /// the BIO. PEM_R_NO_START_LINE if the input ends first.
    pub fn read_pem(bio: &Bio) -> Result<Certificate> {
        let mut block = String::new();
        let mut inside = false;
        while let Some(line) = read_line(bio)? {
            let t = line.trim_end();
            if !inside {
                if t == "-----BEGIN CERTIFICATE-----" || t == "-----BEGIN X509 CERTIFICATE-----" {
                    inside = true;
                    block.clear();
                    block.push_str("-----BEGIN CERTIFICATE-----\n");
                }
                continue;
            }
            if t.starts_with("-----END ") {
                block.push_str("-----END CERTIFICATE-----\n");
                let der = CertificateDer::from_pem_slice(block.as_bytes()).map_err(|e| {
                    Error::new(ERR_LIB_PEM, PEM_R_BAD_BASE64_DECODE).with(e.to_string())
                })?;
                return Certificate::from_der(&der);
            }
            block.push_str(t);
            block.push('\n');
        }
        Err(Error::new(ERR_LIB_PEM, PEM_R_NO_START_LINE).with("no certificate in the input"))
    }
}

/// One line (with its newline) from a BIO, byte by byte so nothing past it is consumed;
/// None at end of input (or when the BIO has nothing more now).
fn read_line(bio: &Bio) -> Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8];
        match bio.read(&mut b) {
            Ok(1) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            Ok(_) => break,
            Err(e) if e.is_would_block() => break,
            Err(e) => return Err(e),
        }
        if line.len() > 1 << 16 {
            return Err(Error::new(ERR_LIB_PEM, PEM_R_BAD_BASE64_DECODE).with("line too long"));
        }
    }
    if line.is_empty() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

impl Integer {
    /// ASN1_INTEGER_get: the value as a long, -1 if it does not fit.
    pub fn get(&self) -> i64 {
        let b = &self.bytes;
        if b.is_empty() {
            return 0;
        }
        // Leading sign-extension bytes do not count towards the size.
        let neg = b[0] & 0x80 != 0;
        let pad = if neg { 0xff } else { 0 };
        let start = b.iter().position(|&x| x != pad).unwrap_or(b.len());
        if b.len() - start > 8 || (b.len() - start == 8 && (b[start] & 0x80 != 0) != neg) {
            return -1;
        }
        let mut v: i64 = if neg { -1 } else { 0 };
        for &x in b {
            v = (v << 8) | i64::from(x);
        }
        v
    }
}

/// (dotted OID, short name, long name) of the attribute types names usually hold, as
/// OpenSSL's object table names them.
const ATTR_NAMES: &[(&str, &str, &str)] = &[
    ("2.5.4.3", "CN", "commonName"),
    ("2.5.4.4", "SN", "surname"),
    ("2.5.4.5", "serialNumber", "serialNumber"),
    ("2.5.4.6", "C", "countryName"),
    ("2.5.4.7", "L", "localityName"),
    ("2.5.4.8", "ST", "stateOrProvinceName"),
    ("2.5.4.9", "street", "streetAddress"),
    ("2.5.4.10", "O", "organizationName"),
    ("2.5.4.11", "OU", "organizationalUnitName"),
    ("2.5.4.12", "title", "title"),
    ("2.5.4.15", "businessCategory", "businessCategory"),
    ("2.5.4.17", "postalCode", "postalCode"),
    ("2.5.4.41", "name", "name"),
    ("2.5.4.42", "GN", "givenName"),
    ("2.5.4.43", "initials", "initials"),
    ("2.5.4.44", "generationQualifier", "generationQualifier"),
    ("2.5.4.46", "dnQualifier", "dnQualifier"),
    ("2.5.4.65", "pseudonym", "pseudonym"),
    (
        "2.5.4.97",
        "organizationIdentifier",
        "organizationIdentifier",
    ),
    ("1.2.840.113549.1.9.1", "emailAddress", "emailAddress"),
    ("0.9.2342.19200300.100.1.1", "UID", "userId"),
    ("0.9.2342.19200300.100.1.25", "DC", "domainComponent"),
];

/// The width field names are padded to with XN_FLAG_FN_ALIGN (OpenSSL 3.5's output).
const FN_ALIGN_WIDTH: usize = 25;

impl Name {
    fn from_parsed(n: &X509Name<'_>) -> Name {
        let rdns = n
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| {
                        let oid = atv.attr_type().to_id_string();
                        let names = ATTR_NAMES
                            .iter()
                            .find(|(o, _, _)| *o == oid)
                            .map(|&(_, s, l)| (s, l));
                        let v = atv.attr_value();
                        let tag = v.header.tag().0;
                        let data = v.data;
                        let chars = decode_string(tag, data);
                        let mut der = Vec::with_capacity(data.len() + 4);
                        let first = ((v.header.class() as u8) << 6)
                            | if v.header.is_constructed() { 0x20 } else { 0 }
                            | (tag.min(30) as u8);
                        der.push(first);
                        der_len(&mut der, data.len());
                        der.extend_from_slice(data);
                        Attr {
                            oid,
                            names,
                            chars,
                            der,
                        }
                    })
                    .collect()
            })
            .collect();
        Name {
            der: n.as_raw().to_vec(),
            rdns,
        }
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The entries in order, each with whether it continues the previous one's RDN (a
    /// multi-valued RDN).
    fn entries(&self) -> impl DoubleEndedIterator<Item = (&Attr, bool)> {
        self.rdns
            .iter()
            .flat_map(|rdn| rdn.iter().enumerate().map(|(i, a)| (a, i > 0)))
    }

    /// X509_NAME_oneline's text entry by entry ("/C=DE", "+O=x" for a further member of a
    /// multi-valued RDN): values with `/` and `+` backslash-escaped, bytes outside printable
    /// ASCII as `\xHH`.
    pub fn oneline_parts(&self) -> Vec<String> {
        self.entries()
            .map(|(a, more)| {
                let mut s = String::new();
                s.push(if more { '+' } else { '/' });
                s.push_str(a.short());
                s.push('=');
                for b in a.bytes() {
                    match b {
                        b'/' | b'+' => {
                            s.push('\\');
                            s.push(b as char);
                        }
                        0x20..=0x7e => s.push(b as char),
                        _ => {
                            let _ = write!(s, "\\x{b:02X}");
                        }
                    }
                }
                s
            })
            .collect()
    }

    /// X509_NAME_oneline into a buffer of `size` bytes: the entries that fit whole, with
    /// room for the terminating NUL (as OpenSSL 3.5 truncates).
    pub fn oneline(&self, size: Option<usize>) -> String {
        let mut s = String::new();
        for part in self.oneline_parts() {
            if let Some(size) = size
                && s.len() + part.len() > size.saturating_sub(1)
            {
                break;
            }
            s.push_str(&part);
        }
        s
    }

    /// X509_NAME_print_ex's text for `flags` (XN_FLAG_COMPAT: X509_NAME_print's
    /// "C=DE, O=x" form, `indent` ignored as OpenSSL does).
    pub fn print_ex(&self, indent: usize, flags: u64) -> String {
        if flags == XN_FLAG_COMPAT {
            let parts = self.oneline_parts();
            let mut s = String::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 && p.starts_with('/') {
                    s.push_str(", ");
                }
                s.push_str(if i == 0 || p.starts_with('/') {
                    &p[1..]
                } else {
                    p
                });
            }
            return s;
        }
        let (sep, plus) = match flags & XN_FLAG_SEP_MASK {
            XN_FLAG_SEP_COMMA_PLUS => (",", "+"),
            XN_FLAG_SEP_CPLUS_SPC => (", ", " + "),
            XN_FLAG_SEP_SPLUS_SPC => ("; ", " + "),
            XN_FLAG_SEP_MULTILINE => ("\n", " + "),
            _ => (", ", " + "),
        };
        let multiline = flags & XN_FLAG_SEP_MASK == XN_FLAG_SEP_MULTILINE;
        let eq = if flags & XN_FLAG_SPC_EQ != 0 {
            " = "
        } else {
            "="
        };
        let pad = " ".repeat(indent);
        let mut s = pad.clone();
        let list: Vec<(&Attr, bool)> = self.entries().collect();
        // In reverse order a member of a multi-valued RDN is joined to the entry after it.
        let n = list.len();
        for i in 0..n {
            let (a, joined) = if flags & XN_FLAG_DN_REV != 0 {
                let (a, _) = list[n - 1 - i];
                (a, i > 0 && list[n - i].1)
            } else {
                list[i]
            };
            if i > 0 {
                if joined {
                    s.push_str(plus);
                } else {
                    s.push_str(sep);
                    if multiline {
                        s.push_str(&pad);
                    }
                }
            }
            let field = match flags & XN_FLAG_FN_MASK {
                XN_FLAG_FN_LN => Some(a.long().to_string()),
                XN_FLAG_FN_OID => Some(a.oid.clone()),
                XN_FLAG_FN_NONE => None,
                _ => Some(a.short().to_string()),
            };
            if let Some(f) = field {
                s.push_str(&f);
                if flags & XN_FLAG_FN_ALIGN != 0 && f.len() < FN_ALIGN_WIDTH {
                    s.push_str(&" ".repeat(FN_ALIGN_WIDTH - f.len()));
                }
                s.push_str(eq);
            }
            if a.names.is_none() && flags & XN_FLAG_DUMP_UNKNOWN_FIELDS != 0 {
                s.push('#');
                for b in &a.der {
                    let _ = write!(s, "{b:02X}");
                }
            } else {
                s.push_str(&escape(a, flags));
            }
        }
        s
    }
}

impl Attr {
    fn short(&self) -> &str {
        self.names.map_or(self.oid.as_str(), |n| n.0)
    }
    fn long(&self) -> &str {
        self.names.map_or(self.oid.as_str(), |n| n.1)
    }
    /// The value as bytes: UTF-8 of the decoded characters.
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for &c in &self.chars {
            match char::from_u32(c) {
                Some(ch) if c >= 0x80 => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                _ => out.push(c as u8),
            }
        }
        out
    }
}

/// A value as print_ex shows it under `flags`' ASN1_STRFLGS_* bits: RFC 2253 escapes
/// (`,+"\<>;`, a leading `#` or space, a trailing space) with a backslash, or the whole value
/// in quotes with ESC_QUOTE; control characters and bytes above 0x7f as `\XX` with
/// ESC_CTRL / ESC_MSB (UTF8_CONVERT: each UTF-8 byte; else characters above 0xff as `\UXXXX`
/// / `\WXXXXXXXX`); a backslash is doubled whenever any escaping is on.
fn escape(a: &Attr, flags: u64) -> String {
    let esc_any = flags & (ASN1_STRFLGS_ESC_2253 | ASN1_STRFLGS_ESC_CTRL | ASN1_STRFLGS_ESC_MSB);
    let units: Vec<u32> = if flags & ASN1_STRFLGS_UTF8_CONVERT != 0 {
        a.bytes().into_iter().map(u32::from).collect()
    } else {
        a.chars.clone()
    };
    let n = units.len();
    let special = |i: usize, c: u32| {
        flags & ASN1_STRFLGS_ESC_2253 != 0
            && (matches!(
                char::from_u32(c),
                Some(',' | '+' | '"' | '\\' | '<' | '>' | ';')
            ) || (i == 0 && (c == u32::from(b'#') || c == u32::from(b' ')))
                || (i + 1 == n && c == u32::from(b' ')))
    };
    let quote = flags & ASN1_STRFLGS_ESC_QUOTE != 0
        && units.iter().enumerate().any(|(i, &c)| special(i, c));
    let mut s = String::new();
    if quote {
        s.push('"');
    }
    for (i, &c) in units.iter().enumerate() {
        if c > 0xffff {
            let _ = write!(s, "\\W{c:08X}");
        } else if c > 0xff {
            let _ = write!(s, "\\U{c:04X}");
        } else if c >= 0x80 {
            if flags & ASN1_STRFLGS_ESC_MSB != 0 {
                let _ = write!(s, "\\{c:02X}");
            } else {
                s.push(char::from_u32(c).unwrap_or('?'));
            }
        } else if c < 0x20 || c == 0x7f {
            if flags & ASN1_STRFLGS_ESC_CTRL != 0 {
                let _ = write!(s, "\\{c:02X}");
            } else {
                s.push(c as u8 as char);
            }
        } else if c == u32::from(b'\\') && esc_any != 0 {
            s.push_str("\\\\");
        } else if quote {
            if c == u32::from(b'"') {
                s.push('\\');
            }
            s.push(c as u8 as char);
        } else if special(i, c) {
            s.push('\\');
            s.push(c as u8 as char);
        } else {
            s.push(c as u8 as char);
        }
    }
    if quote {
        s.push('"');
    }
    s
}

/// A string value's characters: UTF8String decoded, BMPString (UCS-2) and UniversalString
/// (UCS-4) big-endian, anything else byte by byte.
fn decode_string(tag: u32, data: &[u8]) -> Vec<u32> {
    match tag {
        12 => match std::str::from_utf8(data) {
            Ok(s) => s.chars().map(u32::from).collect(),
            Err(_) => data.iter().map(|&b| u32::from(b)).collect(),
        },
        30 if data.len().is_multiple_of(2) => data
            .chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(c[1]))
            .collect(),
        28 if data.len().is_multiple_of(4) => data
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => data.iter().map(|&b| u32::from(b)).collect(),
    }
}

fn der_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(bytes: &[u8]) -> i64 {
        Integer {
            bytes: bytes.to_vec(),
        }
        .get()
    }

    #[test]
    fn integer_values() {
        assert_eq!(int(&[0x12, 0x34]), 0x1234);
        assert_eq!(int(&[0x00, 0xff]), 255);
        assert_eq!(int(&[0xff]), -1);
        assert_eq!(int(&[0x80]), -128);
        assert_eq!(
            int(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            i64::MAX
        );
        assert_eq!(int(&[0x00, 0x80, 0, 0, 0, 0, 0, 0, 0]), -1); // 2^63 does not fit
        assert_eq!(int(&[1; 20]), -1);
    }

    /// A certificate whose subject holds `entries` (UTF8String values), via rcgen.
    fn cert_with(entries: &[(rcgen::DnType, &str)]) -> Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in entries {
            p.distinguished_name.push(t.clone(), *v);
        }
        Certificate::from_der(p.self_signed(&key).unwrap().der()).unwrap()
    }

    #[test]
    fn names_print_as_openssl_does() {
        // Expected strings: OpenSSL 3.5.7's X509_NAME_oneline / X509_NAME_print_ex on a
        // certificate with the same subject (made with `openssl req -utf8`).
        let c = cert_with(&[
            (rcgen::DnType::CommonName, " \u{e9}t\u{1} "),
            (rcgen::DnType::OrganizationName, "#x<y>;z\\w"),
        ]);
        let n = c.subject();
        assert_eq!(n.oneline(None), "/CN= \\xC3\\xA9t\\x01 /O=#x<y>;z\\w");
        assert_eq!(
            n.print_ex(0, XN_FLAG_COMPAT),
            "CN= \\xC3\\xA9t\\x01 , O=#x<y>;z\\w"
        );
        assert_eq!(
            n.print_ex(0, XN_FLAG_ONELINE),
            "CN = \" \\C3\\A9t\\01 \", O = \"#x<y>;z\\\\w\""
        );
        assert_eq!(
            n.print_ex(0, XN_FLAG_RFC2253),
            "O=\\#x\\<y\\>\\;z\\\\w,CN=\\ \\C3\\A9t\\01\\ "
        );
        assert_eq!(
            n.print_ex(0, XN_FLAG_MULTILINE),
            "commonName                =  \\E9t\\01 \norganizationName          = #x<y>;z\\\\w"
        );
        let c = cert_with(&[(rcgen::DnType::CommonName, "x/y+z #q\"")]);
        let n = c.subject();
        assert_eq!(n.oneline(None), "/CN=x\\/y\\+z #q\"");
        assert_eq!(n.print_ex(0, XN_FLAG_ONELINE), "CN = \"x/y+z #q\\\"\"");
        assert_eq!(n.print_ex(0, XN_FLAG_RFC2253), "CN=x/y\\+z #q\\\"");
    }

    #[test]
    fn pem_round_trip() {
        let c = cert_with(&[(rcgen::DnType::CommonName, "pem")]);
        let bio = Bio::new(&crate::bio::METHOD_MEM);
        let pem = c.to_pem();
        // Another block first (skipped), then two certificates: each read takes one.
        let text = format!("-----BEGIN X-----\nAAAA\n-----END X-----\n{pem}{pem}");
        bio.write(text.as_bytes()).unwrap();
        assert_eq!(Certificate::read_pem(&bio).unwrap().der(), c.der());
        assert_eq!(Certificate::read_pem(&bio).unwrap().der(), c.der());
        let e = Certificate::read_pem(&bio).unwrap_err();
        assert_eq!((e.lib(), e.reason()), (ERR_LIB_PEM, PEM_R_NO_START_LINE));
    }

    #[test]
    fn escapes_follow_openssl() {
        let a = |s: &str| Attr {
            oid: "2.5.4.3".into(),
            names: Some(("CN", "commonName")),
            chars: s.chars().map(u32::from).collect(),
            der: Vec::new(),
        };
        // Values and outputs as OpenSSL 3.5's X509_NAME_print_ex gives them.
        let odd = a(" \u{e9}t\u{1} ");
        assert_eq!(escape(&odd, ASN1_STRFLGS_RFC2253), "\\ \\C3\\A9t\\01\\ ");
        assert_eq!(
            escape(&odd, ASN1_STRFLGS_RFC2253 | ASN1_STRFLGS_ESC_QUOTE),
            "\" \\C3\\A9t\\01 \""
        );
        assert_eq!(
            escape(&odd, ASN1_STRFLGS_ESC_CTRL | ASN1_STRFLGS_ESC_MSB),
            " \\E9t\\01 "
        );
        let sp = a("#x<y>;z\\w");
        assert_eq!(escape(&sp, ASN1_STRFLGS_RFC2253), "\\#x\\<y\\>\\;z\\\\w");
        assert_eq!(
            escape(&sp, ASN1_STRFLGS_RFC2253 | ASN1_STRFLGS_ESC_QUOTE),
            "\"#x<y>;z\\\\w\""
        );
        assert_eq!(
            escape(&a("x/y+z #q\""), ASN1_STRFLGS_RFC2253),
            "x/y\\+z #q\\\""
        );
    }
}
