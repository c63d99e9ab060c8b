//! The axum app serving both vendor APIs, and the handle tests hold.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::options::MockOptions;
use crate::reply::Reply;
use crate::state::{RecordedRequest, Shared};
use crate::{anthropic, azure, bedrock, gemini, openai};

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat::handle))
        .route("/v1/embeddings", post(openai::embeddings::handle))
        .route("/v1/responses", post(openai::responses::handle))
        .route("/v1/models", get(openai::models::list))
        .route("/v1/models/{id}", get(openai::models::get))
        .route("/v1/messages", post(anthropic::messages::handle))
        .route(
            "/v1/messages/count_tokens",
            post(anthropic::messages::count_tokens),
        )
        .route("/v1beta/models/{target}", post(gemini::generate::handle))
        .route("/model/{model}/converse", post(bedrock::converse::converse))
        .route(
            "/model/{model}/converse-stream",
            post(bedrock::converse::converse_stream),
        )
        .route("/model/{model}/invoke", post(bedrock::converse::invoke))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure::chat),
        )
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(azure::embeddings),
        )
        .fallback(not_found)
        .with_state(shared)
}

/// OpenAI's answer for an unknown route.
async fn not_found(method: Method, uri: Uri) -> Response {
    openai::errors::ApiError {
        status: 404,
        message: format!("Invalid URL ({method} {})", uri.path()),
        kind: "invalid_request_error",
        param: None,
        code: None,
        retry_after_secs: None,
    }
    .into_response()
}

/// A running mock of the OpenAI and Anthropic APIs on one port. Stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Bind `opts.host:opts.port` (port 0 = any free port) and start serving.
    pub async fn start(opts: MockOptions) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind((opts.host.as_str(), opts.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(opts));
        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            // The only error is an accept failure on a listener we own; nothing to report to.
            let _ = serve.await;
        });
        Ok(MockServer {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`.
    /// API paths (`/v1/...`) go after it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, oldest first (when `record_requests` is on).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Recorded requests whose path equals `path` (e.g. `/v1/messages`), oldest first.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.shared
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// The most recent recorded request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.requests().pop()
    }

    /// Forget recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Queue a reply for the next valid chat-completions, messages or responses request
    /// (FIFO, shared by all three). When the queue is empty the default deterministic
    /// behaviour applies. Requests rejected by validation do not consume replies.
    pub fn push_reply(&self, reply: Reply) {
        self.shared.push_reply(reply);
    }

    /// Scripted replies not consumed yet.
    pub fn pending_replies(&self) -> usize {
        self.shared.pending_replies()
    }

    /// Stop accepting connections and wait for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serve until the process ends (for the binary).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Graceful shutdown waits for open streams; abort so a dropped handle never lingers.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
