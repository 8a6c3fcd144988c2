//! Writes a test CA, a server certificate signed by it (localhost, 127.0.0.1, ::1) and its
//! key, as PEM, into the directory given (default build/certs): ca.pem, cert.pem, key.pem,
//! plus chain.pem (server certificate then CA), and alt-chain.pem/alt-key.pem for
//! alt.example (same CA). For tests and demos only.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "build/certs".into());
    std::fs::create_dir_all(&dir).expect("create certificate directory");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "osslquic test CA");
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
}
