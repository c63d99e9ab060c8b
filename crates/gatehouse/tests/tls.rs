//! HTTPS built in, as an operator turns it on: LiteLLM's `--ssl_certfile_path` /
//! `--ssl_keyfile_path` (or `SSL_CERTFILE_PATH` / `SSL_KEYFILE_PATH`) with a self-signed
//! certificate made here; HTTP/2 by ALPN, HTTP/1.1 for clients without it; plain HTTP
//! and garbage on the TLS port answered or dropped without stopping the server; SIGTERM
//! still drains a stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may (project rule)

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Gateway, run};
use gatehouse_testkit::tls::SelfSigned;
use gatehouse_testkit::{MockOptions, MockServer};
use reqwest::Version;
use serde_json::{Value, json};

/// The certificate files, in a directory that lives as long as the test.
struct Files {
    cert: SelfSigned,
    _dir: tempfile::TempDir,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let cert = SelfSigned::new().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        cert.write(&cert_path, &key_path).unwrap();
        Files {
            cert,
            _dir: dir,
            cert_path,
            key_path,
        }
    }

    fn flags(&self) -> [&str; 4] {
        [
            "--ssl_certfile_path",
            self.cert_path.to_str().unwrap(),
            "--ssl_keyfile_path",
            self.key_path.to_str().unwrap(),
        ]
    }

    /// A client that trusts this certificate (and offers h2 and http/1.1 by ALPN).
    fn client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.cert.cert_pem.as_bytes()).unwrap(),
            )
            .timeout(Duration::from_secs(30))
    }
}

fn config(mock: &MockServer) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_base: \"{}\"}}\n",
        mock.url()
    )
}

fn port(gw: &Gateway) -> u16 {
    gw.url.rsplit(':').next().unwrap().parse().unwrap()
}

async fn chat(client: &reqwest::Client, gw: &Gateway, text: &str) -> (Version, Value) {
    let resp = client
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let version = resp.version();
    (version, resp.json().await.unwrap())
}

#[tokio::test]
async fn https_chat_completions_over_http2_by_alpn_and_over_http1() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let files = Files::new();
    let gw = Gateway::start_with(&config(&mock), &files.flags(), &[]);
    assert!(gw.url.starts_with("https://127.0.0.1:"), "{}", gw.url);

    let h2 = files.client().build().unwrap();
    let (version, body) = chat(&h2, &gw, "hello tls").await;
    assert_eq!(version, Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: hello tls");

    let stream = h2
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"model": "m", "stream": true,
                      "messages": [{"role": "user", "content": "a b c"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.version(), Version::HTTP_2);
    let text = stream.text().await.unwrap();
    assert!(text.contains("\"content\":\"Echo"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    let h1 = files.client().http1_only().build().unwrap();
    let (version, body) = chat(&h1, &gw, "over http/1.1").await;
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: over http/1.1"
    );

    // A client that does not trust the certificate fails its handshake, and only it.
    let untrusting = reqwest::Client::new();
    let err = untrusting
        .get(format!("{}/health/liveliness", gw.url))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let (_, body) = chat(&h2, &gw, "still here").await;
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: still here");
}

#[tokio::test]
async fn plain_http_and_garbage_on_the_tls_port_fail_cleanly_and_serving_goes_on() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let files = Files::new();
    let gw = Gateway::start_with(&config(&mock), &files.flags(), &[]);
    let port = port(&gw);

    // Plain HTTP gets an answer it can show, in OpenAI's error shape, and is closed.
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["connection"], "close");
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("https://"), "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // Bytes that are neither HTTP nor TLS, and a broken TLS record: closed, quickly.
    for garbage in [
        &b"\x00\xff\x13garbage\r\n\r\n"[..],
        b"\x16\x03\x01\x00\x05hello",
    ] {
        let started = Instant::now();
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tcp.write_all(garbage).unwrap();
        let mut buf = Vec::new();
        // EOF or a reset both mean "closed"; a timeout would mean the server hung on it.
        let closed = match tcp.read_to_end(&mut buf) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(
            closed && started.elapsed() < Duration::from_secs(4),
            "{garbage:?} left the connection open"
        );
    }

    let (version, body) = chat(&files.client().build().unwrap(), &gw, "after garbage").await;
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: after garbage"
    );
    assert!(!gw.logs().contains("panicked"), "{}", gw.logs());
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_dropped_and_others_are_served() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let files = Files::new();
    let gw = Gateway::start_with(&config(&mock), &files.flags(), &[]);
    let port = port(&gw);
    let started = Instant::now();
    // One sends nothing at all, one stops after the first byte of a ClientHello.
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled.write_all(b"\x16").unwrap();

    let (_, body) = chat(&files.client().build().unwrap(), &gw, "meanwhile").await;
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: meanwhile");

    for mut tcp in [silent, stalled] {
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        let result = tcp.read_to_end(&mut buf);
        assert!(
            result.is_ok() || result.unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
            "the server should close a connection whose handshake stalls"
        );
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "closed after {waited:?}; the handshake timeout is 10 s"
    );
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_https_stream_and_refuses_new_connections() {
    let mock = MockServer::start(MockOptions {
        chunk_delay: Duration::from_millis(100),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let files = Files::new();
    // LiteLLM's environment variables, instead of the flags.
    let mut gw = Gateway::start_with(
        &config(&mock),
        &[],
        &[
            ("SSL_CERTFILE_PATH", files.cert_path.to_str().unwrap()),
            ("SSL_KEYFILE_PATH", files.key_path.to_str().unwrap()),
        ],
    );
    assert!(gw.url.starts_with("https://"), "{}", gw.url);
    let port = port(&gw);
    let client = files.client().build().unwrap();
    let url = format!("{}/v1/chat/completions", gw.url);
    let stream = tokio::spawn(async move {
        let resp = client
            .post(url)
            .json(&json!({"model": "m", "stream": true,
                          "messages": [{"role": "user", "content": "a b c d e f g h"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), Version::HTTP_2);
        resp.text().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let logs = gw.logs.clone();
    let status = tokio::task::spawn_blocking(move || {
        let status = gw.terminate();
        (status, gw)
    });
    // Once the gateway says it is shutting down, its listener is closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("shutting down"))
    {
        assert!(Instant::now() < deadline, "no shutdown log line");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a new connection was accepted during the drain"
    );
    let text = stream.await.unwrap();
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "stream was cut: {text}"
    );
    let (status, _gw) = status.await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn a_missing_or_mismatched_certificate_stops_the_start_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "model_list: []\n").unwrap();
    let config = config.to_str().unwrap();

    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let (code, _, stderr) = run(
        &[
            "--config",
            config,
            "--port",
            "0",
            "--ssl_certfile_path",
            missing,
            "--ssl_keyfile_path",
            missing,
        ],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(missing), "{stderr}");

    // A key that is not the certificate's.
    let (a, b) = (Files::new(), Files::new());
    let (code, _, stderr) = run(
        &[
            "--config",
            config,
            "--port",
            "0",
            "--ssl_certfile_path",
            a.cert_path.to_str().unwrap(),
            "--ssl_keyfile_path",
            b.key_path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("TLS certificate"), "{stderr}");
    assert!(stderr.contains(b.key_path.to_str().unwrap()), "{stderr}");

    // One without the other is a usage error naming the missing flag.
    let (code, _, stderr) = run(&["--config", config, "--ssl_certfile_path", missing], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--ssl_keyfile_path"), "{stderr}");
}
