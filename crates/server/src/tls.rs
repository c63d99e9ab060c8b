//! The server's certificate: loaded from PEM files, served to every TLS handshake, and
//! swapped in place by [`Certificates::reload`] so a renewed certificate takes effect on
//! the next connection without a restart (open connections keep the one they began with).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate or key could not be loaded. The paths are the operator's own flags,
/// so they are named in full.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{}: no certificate in this file (expected PEM `BEGIN CERTIFICATE` blocks)", path.display())]
    NoCertificate { path: PathBuf },
    /// The key is unusable (an unsupported algorithm) or does not belong to the certificate.
    #[error("{} with {}: {source}", key.display(), cert.display())]
    Key {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS settings: {0}")]
    Config(rustls::Error),
}

/// The certificate chain and key every handshake is answered with, and where they came
/// from. A handshake takes a read lock for the time of one `Arc` clone; a reload takes the
/// write lock only to swap the already-parsed key in.
#[derive(Debug)]
pub struct Certificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads the PEM certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or
    /// SEC1), and checks that they belong together.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read(&provider, cert_path, key_path)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(key)),
        }))
    }

    /// Re-reads both files. On success new handshakes get the new certificate; on failure
    /// (a file missing, half-written, or a key that does not match) the current one keeps
    /// serving and the error says why, for the log.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = read(&self.provider, &self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    /// The certificate handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// TLS 1.2 and 1.3 with rustls' safe defaults, this resolver, and ALPN offering HTTP/2
    /// first: clients that speak it (reqwest, curl, browsers) multiplex their requests on
    /// one connection; the rest get HTTP/1.1.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read(provider: &CryptoProvider, cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem(cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| TlsError::Key {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}

fn pem(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
    move |source| TlsError::Pem {
        path: path.to_path_buf(),
        source,
    }
}
