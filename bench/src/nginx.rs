//! The plain-proxy reference: Debian's nginx (`nginx-light`) as a keep-alive reverse proxy
//! in front of the same upstream, started by the bench with a config of its own in a temp
//! dir (pid file, logs and temp paths there too), so it needs neither root nor
//! /etc/nginx. What nginx adds is the practical floor of proxying on this machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::BenchError;

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Nginx {
    child: Child,
    pub url: String,
    dir: PathBuf,
    conf: PathBuf,
    bin: PathBuf,
}

impl Nginx {
    /// `nginx -p DIR -c DIR/nginx.conf` in the foreground, proxying to `upstream_url`.
    pub fn start(bin: &Path, upstream_url: &str) -> Result<Nginx, BenchError> {
        let spawn_error = |source| BenchError::Spawn {
            what: "nginx",
            path: bin.to_path_buf(),
            source,
        };
        let upstream = upstream_url
            .strip_prefix("http://")
            .ok_or_else(|| BenchError::NotLoopback(upstream_url.to_string()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(spawn_error)?
            .port();
        let dir =
            std::env::temp_dir().join(format!("gatehouse-bench-nginx-{}", std::process::id()));
        let conf = dir.join("nginx.conf");
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&conf, config(&dir, upstream, port)))
            .map_err(|source| BenchError::Write {
                path: conf.clone(),
                source,
            })?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_error)?;
        let mut nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            conf,
            bin: bin.to_path_buf(),
        };
        nginx.wait_ready(port)?;
        Ok(nginx)
    }

    /// nginx prints nothing when ready: poll its port, and notice if it exited.
    fn wait_ready(&mut self, port: u16) -> Result<(), BenchError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::NotServing {
                    what: "nginx",
                    detail: format!("it exited ({status}); its log:\n{}", self.log()),
                });
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(BenchError::NotReady {
            what: "nginx",
            secs: READY_TIMEOUT.as_secs(),
            output: self.log(),
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// `nginx -s stop` makes the master stop its workers; killing only the master
    /// would leave them running.
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(&self.conf)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One worker per core like the gateway's runtime; keep-alive both ways with no request
/// cap (the bench sends tens of thousands of requests per connection); no buffering, as a
/// proxy for SSE must; bodies up to a few MB kept in memory.
pub fn config(dir: &Path, upstream: &str, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nworker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{\n  worker_connections 16384;\n}}\n\
         http {{\n  access_log off;\n\
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         client_max_body_size 16m;\n  client_body_buffer_size 4m;\n\
         keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
         upstream up {{\n    server {upstream};\n    keepalive 1024;\n    keepalive_requests 100000000;\n  }}\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://up;\n      \
         proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n      \
         proxy_request_buffering off;\n    }}\n  }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_upstream_connections_alive_and_stays_in_its_dir() {
        let c = config(Path::new("/tmp/x"), "127.0.0.1:9", 8080);
        assert!(
            c.contains("server 127.0.0.1:9;\n    keepalive 1024;"),
            "{c}"
        );
        assert!(c.contains("proxy_set_header Connection \"\";"));
        assert!(c.contains("listen 127.0.0.1:8080;"));
        assert!(c.contains("pid /tmp/x/nginx.pid;"));
        assert!(!c.contains("/var/"), "no system paths: {c}");
    }
}
