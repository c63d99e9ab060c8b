//! The axum application and its middleware stack.
//!
//! Order, outermost first — each layer leaves something for the next:
//! 1. `request::observe` — assigns the request id (`RequestId` extension, `x-request-id`
//!    response header), times the request, counts it by route and status class.
//! 2. CORS (only when `general_settings.allowed_origins` is set) — answers preflights
//!    before auth, so browsers can ask.
//! 3. `guard::browser_guard` — every route: `Host`/`Origin` (DNS rebinding, cross-site
//!    pages) and, in local mode, JSON-only bodies (the admin UI's forms excepted: they
//!    carry a CSRF token and a SameSite=Strict session cookie).
//! 4. `auth::require_key` — every route but liveness and the admin UI (`/ui`, which checks
//!    its own session cookie): leaves `Caller` and `McpCaller`.
//! 5. `otel::inbound` — when tracing is on: the client's `traceparent`, for the spans.
//! 6. The handler — reads its body itself, size-limited (413 past
//!    `max_request_size_mb`), and answers errors in its client's dialect.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method};
use axum::routing::{get, post};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use gatehouse_mcp::downstream::{CurrentHub, EndpointSettings};

use crate::auth::require_key;
use crate::error::ApiError;
use crate::guard::{Guard, browser_guard};
use crate::request::observe;
use crate::routes::{chat, embeddings, health, keys, messages, models, responses};
use crate::state::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    let mcp = McpEndpoint::new(&state);
    router_with_mcp(state, &mcp)
}

/// The application for `state` around an MCP endpoint built earlier (a config reload
/// keeps the endpoint, so MCP sessions and their streams survive it).
pub fn router_with_mcp(state: Arc<AppState>, mcp: &McpEndpoint) -> Router {
    let guard = Arc::new(Guard::new(
        state.auth.is_local(),
        &state.allowed_hosts,
        &state.allowed_origins,
    ));
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/v1/responses", post(responses::create))
        .route("/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route("/v1/messages", post(messages::create))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/embeddings", post(embeddings::embeddings))
        .route("/v1/models", get(models::list))
        .route("/models", get(models::list))
        .route("/v1/models/{model}", get(models::get))
        .route("/models/{model}", get(models::get))
        .route("/health", get(health::health))
        .route("/health/readiness", get(health::readiness))
        .route("/health/liveliness", get(health::liveliness))
        .route("/health/liveness", get(health::liveliness))
        .route("/metrics", get(health::metrics))
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/key/list", get(keys::list))
        .route("/spend/logs", get(keys::spend_logs))
        .with_state(state.clone())
        .merge(mcp.routes_for(&state))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method);
    let mut app = api
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::otel::inbound,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ))
        .merge(crate::ui::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(guard, browser_guard));
    if let Some(cors) = cors_layer(&state.allowed_origins) {
        app = app.layer(cors);
    }
    app.layer(axum::middleware::from_fn(observe))
}

/// Unknown paths answer in OpenAI's error shape (as OpenAI does), not with an empty 404.
async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("Invalid URL ({method} {})", uri.path()))
}

async fn wrong_method(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// The MCP endpoint (`/mcp`, `/mcp/{server}`, legacy SSE, `/v1/mcp/*`) and the sessions
/// it holds. It sits inside the auth layer, which leaves the `McpCaller` it needs; its
/// tool calls are rate-limited and audited (`mcp_calls`), and it gets the server's
/// Host/Origin policy (its own check then agrees with the outer one).
pub struct McpEndpoint {
    routes: Router,
    hub: Arc<CurrentHub>,
    /// What the endpoint was built from besides the hub; a reload that changes it
    /// builds a new endpoint.
    fingerprint: String,
}

impl McpEndpoint {
    pub fn new(state: &AppState) -> Self {
        let guard = Guard::new(
            state.auth.is_local(),
            &state.allowed_hosts,
            &state.allowed_origins,
        );
        let settings = EndpointSettings {
            allowed_hosts: guard.allowed_hosts.clone(),
            allowed_origins: guard.allowed_origins.clone(),
            ..EndpointSettings::from_config(state.hub.mcp_settings())
        };
        let hub = Arc::new(CurrentHub::new(state.hub.clone()));
        Self {
            routes: gatehouse_mcp::downstream::router(hub.clone(), settings),
            hub,
            fingerprint: Self::fingerprint(state),
        }
    }

    /// The endpoint for a reloaded state: this one serving the new hub (sessions kept),
    /// or — when `mcp_settings`, allowed hosts/origins or local mode changed — a new one
    /// (`false`: open sessions end with the old one).
    pub fn reload(&self, state: &AppState) -> (Self, bool) {
        if Self::fingerprint(state) != self.fingerprint {
            return (Self::new(state), false);
        }
        self.hub.swap(state.hub.clone());
        let kept = Self {
            routes: self.routes.clone(),
            hub: self.hub.clone(),
            fingerprint: self.fingerprint.clone(),
        };
        (kept, true)
    }

    fn routes_for(&self, state: &Arc<AppState>) -> Router {
        self.routes
            .clone()
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::mcp_calls::account_mcp_calls,
            ))
    }

    fn fingerprint(state: &AppState) -> String {
        serde_json::json!([
            state.hub.mcp_settings(),
            state.allowed_hosts,
            state.allowed_origins,
            state.auth.is_local(),
        ])
        .to_string()
    }
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([
                axum::http::HeaderName::from_static("x-request-id"),
                axum::http::HeaderName::from_static("mcp-session-id"),
                axum::http::HeaderName::from_static("mcp-protocol-version"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}
