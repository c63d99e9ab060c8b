//! Certificate reload on a running TLS server: new connections get the new certificate,
//! open ones keep theirs, and files that fail to load leave the old certificate serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may (project rule)

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use gatehouse_server::tls::{Certificates, TlsError};
use gatehouse_testkit::tls::SelfSigned;

/// Serves "ok" over TLS with `certificates` until the sender is dropped.
async fn start(certificates: Arc<Certificates>) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/", get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(gatehouse_server::serve(
        listener,
        app,
        Some(certificates),
        shutdown,
        Duration::from_secs(1),
    ));
    (addr, stop)
}

/// A client with its own connection pool that trusts only `cert`.
fn trusting(cert: &SelfSigned) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get_ok(client: &reqwest::Client, addr: SocketAddr) -> Result<(), reqwest::Error> {
    let resp = client
        .get(format!("https://127.0.0.1:{}/", addr.port()))
        .send()
        .await?;
    assert_eq!(resp.text().await?, "ok");
    Ok(())
}

fn serving(certificates: &Certificates, cert: &SelfSigned) -> bool {
    certificates.current().cert[0].as_ref() == cert.cert_der.as_slice()
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_connections_and_keeps_it_when_files_are_bad() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first = SelfSigned::new().unwrap();
    first.write(&cert_path, &key_path).unwrap();
    let certificates = Certificates::load(&cert_path, &key_path).unwrap();
    let (addr, _stop) = start(certificates.clone()).await;

    let open = trusting(&first);
    get_ok(&open, addr).await.unwrap();

    // Renewed files, then reload: the next handshake presents the new certificate.
    let second = SelfSigned::new().unwrap();
    second.write(&cert_path, &key_path).unwrap();
    certificates.reload().unwrap();
    assert!(serving(&certificates, &second));
    get_ok(&trusting(&second), addr).await.unwrap();
    let err = get_ok(&trusting(&first), addr).await.unwrap_err();
    assert!(
        err.is_connect(),
        "the old certificate was still presented: {err:?}"
    );
    // The connection opened before the reload carries on with its own.
    get_ok(&open, addr).await.unwrap();

    // A half-written certificate, a certificate whose key is not the one on disk, and a
    // missing key: each reload fails with the reason, and the second one keeps serving.
    std::fs::write(&cert_path, &second.cert_pem[..60]).unwrap();
    let err = certificates.reload().unwrap_err();
    assert!(
        matches!(err, TlsError::Pem { .. } | TlsError::NoCertificate { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(&*cert_path.to_string_lossy()),
        "{err}"
    );
    assert_still_second(&certificates, &second, addr).await;

    let third = SelfSigned::new().unwrap();
    std::fs::write(&cert_path, &third.cert_pem).unwrap();
    let err = certificates.reload().unwrap_err();
    assert!(matches!(err, TlsError::Key { .. }), "{err}");
    assert_still_second(&certificates, &second, addr).await;

    std::fs::remove_file(&key_path).unwrap();
    let err = certificates.reload().unwrap_err();
    assert!(
        err.to_string().contains(&*key_path.to_string_lossy()),
        "{err}"
    );
    assert_still_second(&certificates, &second, addr).await;

    // And once the files are good again, so is the reload.
    third.write(&cert_path, &key_path).unwrap();
    certificates.reload().unwrap();
    get_ok(&trusting(&third), addr).await.unwrap();
}

async fn assert_still_second(certificates: &Certificates, second: &SelfSigned, addr: SocketAddr) {
    assert!(serving(certificates, second));
    get_ok(&trusting(second), addr).await.unwrap();
}

#[test]
fn load_names_the_file_that_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let made = SelfSigned::new().unwrap();
    made.write(&cert, &key).unwrap();
    // The key where the certificate should be: no certificate in it.
    let err = Certificates::load(&key, &key).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    assert!(err.to_string().contains(&*key.to_string_lossy()), "{err}");
    // The certificate where the key should be.
    let err = Certificates::load(&cert, &cert).unwrap_err();
    assert!(err.to_string().contains(&*cert.to_string_lossy()), "{err}");
    let err = Certificates::load(Path::new("/nonexistent/cert.pem"), &key).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}
