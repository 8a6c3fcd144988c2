//! Writes a test CA, a server certificate signed by it (localhost, 127.0.0.1, ::1) and its
//! key, as PEM, into the directory given (default build/certs): ca.pem, cert.pem, key.pem,
//! plus chain.pem (server certificate then CA), and alt-chain.pem/alt-key.pem for
//! alt.example (same CA), and client certificates: client-chain.pem/client-key.pem (signed by
//! the CA; client-cert.pem is the certificate alone) and badclient-chain.pem/badclient-key.pem
//! (signed by an unrelated CA, other-ca.pem; badclient-cert.pem alone). For tests and demos
//! only.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    SerialNumber,
};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "build/certs".into());
    std::fs::create_dir_all(&dir).expect("create certificate directory");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "osslquic test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])
        .expect("params");
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    let w = |name: &str, data: String| {
        std::fs::write(format!("{dir}/{name}"), data).expect("write PEM")
    };
    w("ca.pem", ca_cert.pem());
    w("cert.pem", cert.pem());
    w("chain.pem", format!("{}{}", cert.pem(), ca_cert.pem()));
    w("key.pem", key.serialize_pem());
    // A second server certificate and key, for alt.example (same CA): tests that switch
    // certificates by server name.
    let alt_key = KeyPair::generate().expect("alt key");
    let alt = CertificateParams::new(vec!["alt.example".into()])
        .expect("alt params")
        .signed_by(&alt_key, &ca_cert, &ca_key)
        .expect("alt certificate");
    w("alt-chain.pem", format!("{}{}", alt.pem(), ca_cert.pem()));
    w("alt-key.pem", alt_key.serialize_pem());
    // A second, unrelated key, for key-mismatch tests.
    w(
        "other-key.pem",
        KeyPair::generate().expect("other key").serialize_pem(),
    );
    // Client certificates (C=DE, O=osslquic tests, CN=test client; serial 4660 = 0x1234):
    // one from the test CA, one from an unrelated CA that servers do not trust.
    let client = |key: &KeyPair, issuer: &rcgen::Certificate, issuer_key: &KeyPair| {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("client params");
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "DE");
        p.distinguished_name
            .push(DnType::OrganizationName, "osslquic tests");
        p.distinguished_name.push(DnType::CommonName, "test client");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(SerialNumber::from(vec![0x12, 0x34]));
        p.signed_by(key, issuer, issuer_key)
            .expect("client certificate")
    };
    let client_key = KeyPair::generate().expect("client key");
    let good = client(&client_key, &ca_cert, &ca_key);
    w("client-cert.pem", good.pem());
    w(
        "client-chain.pem",
        format!("{}{}", good.pem(), ca_cert.pem()),
    );
    w("client-key.pem", client_key.serialize_pem());
    let other_ca_key = KeyPair::generate().expect("other CA key");
    let mut other = CertificateParams::new(Vec::<String>::new()).expect("other CA params");
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    other
        .distinguished_name
        .push(DnType::CommonName, "osslquic other CA");
    let other_ca = other
        .self_signed(&other_ca_key)
        .expect("other CA certificate");
    let bad_key = KeyPair::generate().expect("bad client key");
    let bad = client(&bad_key, &other_ca, &other_ca_key);
    w("other-ca.pem", other_ca.pem());
    w("badclient-cert.pem", bad.pem());
    w(
        "badclient-chain.pem",
        format!("{}{}", bad.pem(), other_ca.pem()),
    );
    w("badclient-key.pem", bad_key.serialize_pem());
}
