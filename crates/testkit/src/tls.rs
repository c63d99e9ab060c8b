//! Self-signed certificates for TLS tests, made fresh by each test (nothing checked in
//! expires or leaks), valid for `localhost` and `127.0.0.1`.

use std::path::Path;

/// A certificate and its key, as the PEM an operator would point the gateway at.
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's DER, to compare with what a server presents.
    pub cert_der: Vec<u8>,
}

impl SelfSigned {
    pub fn new() -> Result<SelfSigned, rcgen::Error> {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])?;
        Ok(SelfSigned {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            cert_der: made.cert.der().to_vec(),
        })
    }

    /// Writes the certificate and key files (replacing what is there).
    pub fn write(&self, cert: &Path, key: &Path) -> std::io::Result<()> {
        std::fs::write(cert, &self.cert_pem)?;
        std::fs::write(key, &self.key_pem)
    }
}
