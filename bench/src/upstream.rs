//! The benchmark's own upstream: a minimal hyper HTTP/1.1 server that answers every
//! `POST` with a ready-made chat completion (or its SSE stream) and does nothing else.
//!
//! `gatehouse-mock` builds each answer as `serde_json::Value`s, which costs more CPU than
//! the gateway's own forwarding; on two shared cores that hides the gateway's cost and
//! makes "direct" slow. This server costs about as little as an upstream can, so the ratios
//! gateway/direct and nginx/direct measure the proxies, not the mock.
//!
//! It runs on its own thread and runtime inside the bench process (two workers, like the
//! gateway's runtime on this machine), owned by [`FastUpstream`]: dropping it stops the
//! accept loop and every connection task.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;

use crate::error::BenchError;

/// What the gateway is told the model answered, and its pieces as the mock splits them
/// (the same nine events as `gatehouse-mock`'s default answer to the bench's request).
const PIECES: [&str; 6] = ["Echo: ", "Say ", "hello ", "to ", "the ", "benchmark"];
const ID: &str = "chatcmpl-bench0000000000000000001";
const CREATED: u64 = 1_764_633_600;
const USAGE: &str = r#"{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18}"#;

/// The padding a request asks for with `"bench_pad":N` (the 1 MB response scenario).
const PAD_KEY: &[u8] = b"\"bench_pad\":";
/// Upper bound of that padding: the bench never asks for more than a few MB.
const PAD_MAX: usize = 16 << 20;

/// A stream request with `"bench_hold":true` gets its first event at once and the rest
/// only after [`FastUpstream::release`] (the slow upstream of the open-streams scenario).
const HOLD_KEY: &[u8] = b"\"bench_hold\":true";

pub struct FastUpstream {
    pub url: String,
    holds: Holds,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The held streams: how many are waiting, and the signal that lets them finish.
#[derive(Clone)]
struct Holds {
    waiting: Arc<AtomicUsize>,
    release: tokio::sync::watch::Receiver<bool>,
    release_tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl FastUpstream {
    pub fn start() -> Result<FastUpstream, BenchError> {
        let io = BenchError::Upstream;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io)?;
        let (release_tx, release) = tokio::sync::watch::channel(false);
        let holds = Holds {
            waiting: Arc::new(AtomicUsize::new(0)),
            release,
            release_tx: Arc::new(release_tx),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let served = holds.clone();
        let thread = std::thread::Builder::new()
            .name("bench-upstream".into())
            .spawn(move || runtime.block_on(serve(listener, served, stopped)))
            .map_err(io)?;
        Ok(FastUpstream {
            url: format!("http://{addr}"),
            holds,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Held streams that have sent their first event and wait for [`Self::release`].
    pub fn held(&self) -> usize {
        self.holds.waiting.load(Ordering::Relaxed)
    }

    /// Lets every held stream (and any held later) finish; `hold(false)` holds again.
    pub fn release(&self, release: bool) {
        self.holds.release_tx.send_replace(release);
    }
}

impl Drop for FastUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    holds: Holds,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    // Owns every connection task: dropped (aborting them) when the loop ends.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                let _ = socket.set_nodelay(true);
                let holds = holds.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(req, holds.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
            // Reap finished connections so the set does not grow over a run.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn answer(req: Request<Incoming>, holds: Holds) -> Result<Response<Frames>, hyper::Error> {
    let body = req.into_body().collect().await?.to_bytes();
    let stream = contains(&body, b"\"stream\":true") || contains(&body, b"\"stream\": true");
    let usage = contains(&body, b"\"include_usage\":true");
    let pad = padding(&body);
    let (content_type, frames) = if stream {
        ("text/event-stream", stream_frames(usage, pad))
    } else {
        ("application/json", VecDeque::from([completion(pad)]))
    };
    let hold = (stream && contains(&body, HOLD_KEY)).then(|| Hold {
        after_first: true,
        waiting: holds.waiting.clone(),
        counted: false,
        release: Box::pin(wait_release(holds.release.clone())),
    });
    let mut response = Response::new(Frames { frames, hold });
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    Ok(response)
}

/// `"bench_pad":N` in the request: that many bytes of answer text, capped.
fn padding(body: &[u8]) -> usize {
    let Some(at) = find(body, PAD_KEY) else {
        return 0;
    };
    let digits: Vec<u8> = body[at + PAD_KEY.len()..]
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .unwrap_or(0)
        .min(PAD_MAX)
}

fn completion(pad: usize) -> Bytes {
    let text = format!("{}{}", PIECES.concat(), "x".repeat(pad));
    Bytes::from(format!(
        r#"{{"id":"{ID}","object":"chat.completion","created":{CREATED},"model":"bench","choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}","refusal":null}},"logprobs":null,"finish_reason":"stop"}}],"usage":{USAGE}}}"#
    ))
}

fn stream_frames(usage: bool, pad: usize) -> VecDeque<Bytes> {
    let null_usage = if usage { r#","usage":null"# } else { "" };
    let chunk = |delta: &str, finish: &str| {
        Bytes::from(format!(
            "data: {{\"id\":\"{ID}\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]{null_usage}}}\n\n"
        ))
    };
    let mut frames = VecDeque::with_capacity(PIECES.len() + 4);
    frames.push_back(chunk(r#"{"role":"assistant","content":""}"#, "null"));
    for piece in PIECES {
        frames.push_back(chunk(&format!(r#"{{"content":"{piece}"}}"#), "null"));
    }
    if pad > 0 {
        frames.push_back(chunk(
            &format!(r#"{{"content":"{}"}}"#, "x".repeat(pad)),
            "null",
        ));
    }
    frames.push_back(chunk("{}", "\"stop\""));
    if usage {
        frames.push_back(Bytes::from(format!(
            "data: {{\"id\":\"{ID}\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":\"bench\",\"choices\":[],\"usage\":{USAGE}}}\n\n"
        )));
    }
    frames.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

async fn wait_release(mut release: tokio::sync::watch::Receiver<bool>) {
    let _ = release.wait_for(|r| *r).await;
}

/// A body of ready frames, sent chunked one frame at a time (as a streaming vendor does).
pub struct Frames {
    frames: VecDeque<Bytes>,
    hold: Option<Hold>,
}

/// A stream paused after its first frame until the release signal.
struct Hold {
    after_first: bool,
    waiting: Arc<AtomicUsize>,
    /// Whether `waiting` counts this stream now.
    counted: bool,
    release: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.counted {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(hold) = &mut this.hold {
            if hold.after_first {
                hold.after_first = false;
            } else {
                if !hold.counted {
                    hold.counted = true;
                    hold.waiting.fetch_add(1, Ordering::Relaxed);
                }
                if hold.release.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.hold = None;
            }
        }
        Poll::Ready(this.frames.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        // One frame (a completion) has a known length; a stream goes out chunked.
        match self.frames.len() {
            1 => SizeHint::with_exact(self.frames.iter().map(|b| b.len() as u64).sum()),
            _ => SizeHint::default(),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_has_the_mock_shape_and_ends_with_done() {
        let frames = stream_frames(false, 0);
        assert_eq!(frames.len(), 9);
        assert!(frames.iter().all(|f| f.ends_with(b"\n\n")));
        assert_eq!(
            frames.back().map(|b| &b[..]),
            Some(&b"data: [DONE]\n\n"[..])
        );
        assert!(!frames.iter().any(|f| contains(f, b"\"usage\"")));
        let with_usage = stream_frames(true, 0);
        assert_eq!(with_usage.len(), 10);
        assert!(contains(&with_usage[8], b"\"choices\":[],\"usage\":{"));
    }

    #[test]
    fn completion_is_json_and_pads_on_request() {
        let plain: serde_json::Value = serde_json::from_slice(&completion(0)).unwrap();
        assert_eq!(plain["object"], "chat.completion");
        assert_eq!(
            plain["choices"][0]["message"]["content"],
            "Echo: Say hello to the benchmark"
        );
        assert_eq!(padding(br#"{"model":"bench","bench_pad": 1000}"#), 1000);
        assert_eq!(padding(br#"{"bench_pad":99999999999}"#), PAD_MAX);
        assert!(completion(1000).len() > 1000);
    }
}
