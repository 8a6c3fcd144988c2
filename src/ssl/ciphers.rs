//! SSL_CTX_set_ciphersuites: OpenSSL's TLS 1.3 suite names mapped to rustls's suites, and the
//! crypto provider (with the context's groups) and QUIC initial suite a restricted list needs.
//! Owns nothing else.
#![deny(unsafe_code)]

use std::sync::Arc;

use rustls::SupportedCipherSuite;
use rustls::crypto::aws_lc_rs::cipher_suite;

use crate::consts::*;
use crate::error::*;

/// The TLS 1.3 suites by their standard (and OpenSSL's) names. TLS_AES_128_CCM_SHA256 and
/// TLS_AES_128_CCM_8_SHA256 are names OpenSSL knows but rustls does not implement: they
/// match nothing here.
fn by_name(name: &str) -> Option<SupportedCipherSuite> {
    Some(match name {
        "TLS_AES_128_GCM_SHA256" => cipher_suite::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => cipher_suite::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

/// Parses a colon-separated list as OpenSSL's set_ciphersuites does: unknown names are
/// skipped, an empty list is allowed (no TLS 1.3 suite), and a non-empty list matching
/// nothing fails with SSL_R_NO_CIPHER_MATCH.
pub fn parse_tls13(list: &str) -> Result<Vec<SupportedCipherSuite>> {
    let mut out: Vec<SupportedCipherSuite> = Vec::new();
    for name in list.split(':').filter(|n| !n.is_empty()) {
        if let Some(s) = by_name(name)
            && !out.iter().any(|o| o.suite() == s.suite())
        {
            out.push(s);
        }
    }
    if out.is_empty() && !list.is_empty() {
        return Err(Error::ssl(SSL_R_NO_CIPHER_MATCH).with(format!(
            "no TLS 1.3 cipher suite in \"{list}\" is supported (TLS_AES_128_GCM_SHA256, \
             TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256)"
        )));
    }
    Ok(out)
}

/// The crypto provider (aws-lc-rs) with TLS 1.3 restricted to `tls13` (in that order of
/// preference), if set, and its key-exchange groups `groups` if set (else OpenSSL 3.5's
/// default order, `groups::default_groups`, which is the provider's own); TLS 1.2 suites are
/// untouched (SSL_CTX_set_cipher_list's business).
pub fn provider(
    tls13: Option<&[SupportedCipherSuite]>,
    groups: Option<&super::groups::Groups>,
) -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(g) = groups {
        p.kx_groups = g.clone();
    }
    if let Some(list) = tls13 {
        let tls12: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|s| s.tls13().is_none())
            .copied()
            .collect();
        p.cipher_suites = list.iter().copied().chain(tls12).collect();
    }
    Arc::new(p)
}

/// QUIC protects Initial packets with AES-128-GCM whatever the negotiated suite (RFC 9001
/// 5.2), so quinn needs that suite even when the list leaves it out.
pub fn quic_initial() -> Result<rustls::quic::Suite> {
    cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|s| s.quic_suite())
        .ok_or_else(|| Error::internal("no QUIC initial suite"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_openssl_parses_them() {
        let l = parse_tls13("TLS_CHACHA20_POLY1305_SHA256:bogus:TLS_AES_256_GCM_SHA384").unwrap();
        let names: Vec<_> = l.iter().map(|s| s.suite()).collect();
        assert_eq!(
            names,
            vec![
                rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
                rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
            ]
        );
        assert!(parse_tls13("").unwrap().is_empty(), "empty list allowed");
        let e = parse_tls13("bogus:TLS_AES_128_CCM_SHA256").unwrap_err();
        assert_eq!(e.reason(), SSL_R_NO_CIPHER_MATCH);
        let p = provider(Some(&l), None);
        assert_eq!(
            p.cipher_suites
                .iter()
                .filter(|s| s.tls13().is_some())
                .count(),
            2
        );
        assert!(
            p.cipher_suites.iter().any(|s| s.tls13().is_none()),
            "TLS 1.2 kept"
        );
    }
}
