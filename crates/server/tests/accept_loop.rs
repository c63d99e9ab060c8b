//! The accept loop out of file descriptors (EMFILE): it neither exits nor spins, and
//! serves again once descriptors are free. One test in its own binary: it lowers this
//! process's descriptor limit.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may (project rule)

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// CPU time this process has used (user + system), from `/proc/self/stat` opened
/// beforehand (no descriptor is left to open it when it is needed).
fn cpu_time(stat: &mut File) -> Duration {
    stat.seek(SeekFrom::Start(0)).unwrap();
    let mut text = String::new();
    stat.read_to_string(&mut text).unwrap();
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = text
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

async fn request(port: u16) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer))
        .await
        .expect("no answer")
        .unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_loop_backs_off_then_serves_again() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/", get(|| async { "ok" }));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gatehouse_server::serve(
        listener,
        app,
        None,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    assert!(request(port).await.ends_with("ok"));

    // Use up every descriptor under a lowered limit, then free one for the client's
    // socket: the server's accept has none left.
    let mut stat = File::open("/proc/self/stat").unwrap();
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let limit = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(highest + 16),
            maximum: limit.maximum,
        },
    )
    .unwrap();
    let mut hogs = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        hogs.push(file);
    }
    hogs.pop();
    let client = tokio::spawn(request(port));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu_time(&mut stat);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_time(&mut stat) - before;
    assert!(!server.is_finished(), "the accept loop exited on EMFILE");
    assert!(
        used < Duration::from_millis(500),
        "the accept loop spun on EMFILE: {used:?} of CPU in 2 s"
    );

    drop(hogs);
    let answer = client.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    setrlimit(Resource::Nofile, limit).unwrap();
}
