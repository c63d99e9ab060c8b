//! The stateless 2026-07-28 era on the streamable HTTP endpoints, beside the handshake era.
//!
//! Era choice is per request (spec: versioning, backward compatibility): a POST whose
//! `MCP-Protocol-Version` header is not a handshake revision, whose body carries
//! `_meta["io.modelcontextprotocol/protocolVersion"]`, or that is `server/discover`, is
//! served here — statelessly, no `Mcp-Session-Id` read or minted. Anything else
//! (`initialize`, session traffic) stays with `streamable.rs`.
//!
//! Each request goes through the spec's validation ladder (envelope in `_meta`, headers
//! equal to the body, supported version), then the same dispatch as sessions use, over a
//! scope resolved from the caller's *current* key. Results get `resultType`, the
//! gateway's `serverInfo` and, for cacheable methods, `ttlMs` + `cacheScope: "private"`
//! (every listing depends on the caller's key). Server-to-client requests raised by an
//! upstream during a call become an `InputRequiredResult` (see `mrtr.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::McpCaller;

use super::backend::RequestContext;
use super::mrtr::{Running, Step};
use super::peer::{ClientPeer, StatelessPeer};
use super::protocol::{
    self, HEADER_MISMATCH, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, Incoming,
    META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION, META_SERVER_INFO, META_SUBSCRIPTION_ID,
    METHOD_NOT_FOUND, MODERN_VERSIONS, RpcError, SUPPORTED_VERSIONS, UNSUPPORTED_VERSION,
};
use super::scope::Scope;
use super::session::lock;
use super::streamable::{accepts_sse, json as json_response};
use super::{Endpoint, Ep, dispatch, sse};

pub const VERSION_HEADER: &str = "mcp-protocol-version";
pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";

/// Freshness hint on list results. Listings change when an upstream's catalog does, which
/// `subscriptions/listen` announces at once; a minute bounds staleness without one.
pub const LIST_TTL_MS: u64 = 60_000;
/// `resource/read` contents may change at any time.
const READ_TTL_MS: u64 = 0;
/// Bounds on one `subscriptions/listen`.
const MAX_SUBSCRIBED_URIS: usize = 256;
const MAX_LISTENERS_PER_OWNER: usize = 16;
const LISTEN_DEPTH: usize = 64;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether this POST is served in the stateless era.
pub fn is_modern(headers: &HeaderMap, msg: &Value) -> bool {
    if header_str(headers, VERSION_HEADER).is_some_and(|v| !SUPPORTED_VERSIONS.contains(&v)) {
        return true;
    }
    if msg.get("method").and_then(Value::as_str) == Some("server/discover") {
        return true;
    }
    msg.get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(META_PROTOCOL_VERSION))
}

/// A header value mirrored from the body, base64 sentinel (`=?base64?…?=`) decoded.
fn decode_header(v: &str) -> Option<String> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(v.to_owned()),
    }
}

/// The body field mirrored in `Mcp-Name`.
pub fn name_key(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// What a stateless request declares about itself.
pub struct Envelope {
    pub capabilities: Value,
}

/// The spec's validation ladder; the first failing rung answers.
pub fn envelope(headers: &HeaderMap, method: &str, params: &Value) -> Result<Envelope, RpcError> {
    let Some(meta) = params.get("_meta").and_then(Value::as_object) else {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!(
                "params._meta must be an object carrying `{META_PROTOCOL_VERSION}` and `{META_CLIENT_CAPABILITIES}`"
            ),
        ));
    };
    let missing: Vec<&str> = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!("params._meta is missing {}", missing.join(", ")),
        ));
    }
    let version = meta.get(META_PROTOCOL_VERSION).unwrap_or(&Value::Null);
    let mismatch = |what: &str| {
        Err(RpcError::new(
            HEADER_MISMATCH,
            format!("Header mismatch: {what}"),
        ))
    };
    match header_str(headers, VERSION_HEADER) {
        Some(h) if version.as_str() == Some(h) => {}
        Some(_) => {
            return mismatch("MCP-Protocol-Version does not match the body's protocol version");
        }
        None => return mismatch("MCP-Protocol-Version header is missing"),
    }
    if header_str(headers, METHOD_HEADER) != Some(method) {
        return mismatch("Mcp-Method does not match the body's method");
    }
    if let Some(key) = name_key(method)
        && let Some(body) = params.get(key).and_then(Value::as_str)
        && header_str(headers, NAME_HEADER)
            .and_then(decode_header)
            .as_deref()
            != Some(body)
    {
        return mismatch(&format!("Mcp-Name does not match the body's `{key}`"));
    }
    let Some(version) = version.as_str() else {
        return Err(RpcError::new(
            INVALID_PARAMS,
            "the protocol version must be a string",
        ));
    };
    if !MODERN_VERSIONS.contains(&version) {
        let mut e = RpcError::new(UNSUPPORTED_VERSION, "Unsupported protocol version");
        e.data = Some(json!({"supported": protocol::all_versions(), "requested": version}));
        return Err(e);
    }
    Ok(Envelope {
        capabilities: meta
            .get(META_CLIENT_CAPABILITIES)
            .cloned()
            .unwrap_or_else(|| json!({})),
    })
}

/// HTTP status of an error answer (one table for ladder and handler errors).
pub fn status_for(code: i64) -> StatusCode {
    match code {
        protocol::PARSE_ERROR
        | INVALID_REQUEST
        | INVALID_PARAMS
        | HEADER_MISMATCH
        | protocol::MISSING_CLIENT_CAPABILITY
        | UNSUPPORTED_VERSION => StatusCode::BAD_REQUEST,
        METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

fn error(id: &Value, e: &RpcError) -> Response {
    json_response(status_for(e.code), &protocol::error_response(id, e))
}

/// The handshake era's resource-not-found code becomes 2026-07-28's.
fn modern_error(mut e: RpcError) -> RpcError {
    if e.code == protocol::RESOURCE_NOT_FOUND_LEGACY {
        e.code = INVALID_PARAMS;
    }
    e
}

/// Methods of the handshake era that 2026-07-28 removed.
fn removed(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "logging/setLevel"
            | "resources/subscribe"
            | "resources/unsubscribe"
    )
}

fn cache_ttl(method: &str) -> Option<u64> {
    match method {
        "server/discover"
        | "tools/list"
        | "prompts/list"
        | "resources/list"
        | "resources/templates/list" => Some(LIST_TTL_MS),
        "resources/read" => Some(READ_TTL_MS),
        _ => None,
    }
}

/// `_meta` without the stateless envelope (what an upstream should see).
fn strip_envelope(params: Value) -> Value {
    let Value::Object(mut m) = params else {
        return params;
    };
    if let Some(Value::Object(meta)) = m.get_mut("_meta") {
        meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
        if meta.is_empty() {
            m.remove("_meta");
        }
    }
    m.remove("inputResponses");
    m.remove("requestState");
    Value::Object(m)
}

fn server_info(ep: &Endpoint) -> Value {
    json!({"name": ep.identity.name, "version": ep.identity.version})
}

/// Adds `resultType`, `serverInfo` and caching hints to a result.
fn decorate(ep: &Endpoint, method: &str, result: Value) -> Result<Value, RpcError> {
    let Value::Object(mut m) = result else {
        return Err(RpcError::new(
            INTERNAL_ERROR,
            "the upstream answered a non-object result",
        ));
    };
    m.entry("resultType").or_insert_with(|| "complete".into());
    let complete = m.get("resultType").and_then(Value::as_str) == Some("complete");
    if complete && let Some(ttl) = cache_ttl(method) {
        m.insert("ttlMs".into(), ttl.into());
        m.insert("cacheScope".into(), "private".into());
    }
    let mut meta = match m.remove("_meta") {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    meta.insert(META_SERVER_INFO.into(), server_info(ep));
    m.insert("_meta".into(), Value::Object(meta));
    Ok(Value::Object(m))
}

fn finish(
    ep: &Endpoint,
    id: &Value,
    method: &str,
    out: Result<Value, RpcError>,
) -> (StatusCode, Value) {
    match out.and_then(|v| decorate(ep, method, v)) {
        Ok(v) => (StatusCode::OK, protocol::response(id, v)),
        Err(e) => {
            let e = modern_error(e);
            (status_for(e.code), protocol::error_response(id, &e))
        }
    }
}

/// One stateless POST (already parsed JSON).
pub async fn post(
    ep: Ep,
    caller: &McpCaller,
    select: impl FnOnce() -> Result<Scope, Box<Response>>,
    headers: &HeaderMap,
    msg: Value,
) -> Response {
    if msg.is_array() {
        let e = RpcError::new(
            INVALID_REQUEST,
            "JSON-RPC batches are not part of 2026-07-28",
        );
        return error(&Value::Null, &e);
    }
    let (id, method, params) = match Incoming::parse(msg) {
        Err(bad) => return error(&bad.0, &bad.1),
        // The core protocol defines no client notifications on this wire: accepted, dropped.
        Ok(Incoming::Notification { .. }) => return StatusCode::ACCEPTED.into_response(),
        Ok(Incoming::Response { id, .. }) => {
            let e = RpcError::new(
                INVALID_REQUEST,
                "clients send no JSON-RPC responses in 2026-07-28",
            );
            return error(&id, &e);
        }
        Ok(Incoming::Request { id, method, params }) => (id, method, params),
    };
    let env = match envelope(headers, &method, &params) {
        Ok(e) => e,
        Err(e) => return error(&id, &e),
    };
    if removed(&method) {
        let e = RpcError::new(
            METHOD_NOT_FOUND,
            format!("`{method}` is not part of 2026-07-28"),
        );
        return error(&id, &e);
    }
    let scope = match select() {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    match method.as_str() {
        "server/discover" => {
            let (status, body) = finish(
                &ep,
                &id,
                &method,
                Ok(dispatch::discover_result(ep.backend.as_ref(), &scope)),
            );
            json_response(status, &body)
        }
        "subscriptions/listen" => listen(&ep, caller, scope, &id, &params),
        m if crate::upstream::modern::may_require_input(m) => {
            call(ep, caller, scope, headers, id, method, params, env).await
        }
        _ => {
            let ctx = RequestContext::detached().with_client_headers(headers);
            let params = strip_envelope(params);
            let out = dispatch::handle(ep.backend.as_ref(), &scope, &method, params, ctx).await;
            let (status, body) = finish(&ep, &id, &method, out);
            json_response(status, &body)
        }
    }
}

/// A call that may need the client's input (MRTR) and may stream progress.
#[allow(clippy::too_many_arguments)]
async fn call(
    ep: Ep,
    caller: &McpCaller,
    scope: Scope,
    headers: &HeaderMap,
    id: Value,
    method: String,
    params: Value,
    env: Envelope,
) -> Response {
    let name = name_key(&method)
        .and_then(|k| params.get(k))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if method == "tools/call"
        && let Err(e) = check_param_headers(&ep, &scope, headers, &params).await
    {
        return error(&id, &e);
    }
    let progress = protocol::progress_token(&params);
    let running = match params.get("requestState").and_then(Value::as_str) {
        Some(state) => match ep
            .parked
            .take(state, caller.owner(), &method, name.as_deref())
        {
            Ok(mut r) => {
                r.answer(params.get("inputResponses").and_then(Value::as_object));
                r
            }
            Err(e) => return error(&id, &e),
        },
        None => start(&ep, caller, scope, headers, &method, name, params, env),
    };
    if !(accepts_sse(headers) && progress.is_some()) {
        let step = running.advance().await;
        let (status, body) = step_message(&ep, &id, &method, step);
        return json_response(status, &body);
    }
    let (tx, rx) = mpsc::channel(LISTEN_DEPTH);
    *lock(&running.peer.sink) = Some(tx.clone());
    // Owned by the response: the client closing the stream drops `running`, which cancels
    // the call upstream (closing the stream is the cancellation signal in 2026-07-28).
    tokio::spawn(async move {
        let step = tokio::select! {
            s = running.advance() => s,
            () = tx.closed() => return,
        };
        let (_, msg) = step_message(&ep, &id, &method, step);
        let _ = tx.send(sse::message_event(None, &msg.to_string())).await;
    });
    sse::response(rx)
}

/// `Mcp-Param-{Name}` headers must match the arguments the tool's schema annotates with
/// `x-mcp-header` (and be present when the argument is): intermediaries may route on them.
async fn check_param_headers(
    ep: &Ep,
    scope: &Scope,
    headers: &HeaderMap,
    params: &Value,
) -> Result<(), RpcError> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    if scope.lazy {
        return Ok(());
    }
    let tools = dispatch::list_tools(ep.backend.as_ref(), scope).await;
    let Some(schema) = tools
        .iter()
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|t| t.get("inputSchema"))
    else {
        return Ok(());
    };
    let arguments = params.get("arguments").unwrap_or(&Value::Null);
    for (header, expected) in crate::upstream::modern::param_headers(schema, arguments) {
        let sent = header_str(headers, &header).and_then(decode_header);
        if sent.is_none() || sent != decode_header(&expected) {
            return Err(RpcError::new(
                HEADER_MISMATCH,
                format!("Header mismatch: {header} does not match the tool's arguments"),
            ));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn start(
    ep: &Ep,
    caller: &McpCaller,
    scope: Scope,
    headers: &HeaderMap,
    method: &str,
    name: Option<String>,
    params: Value,
    env: Envelope,
) -> Running {
    let (inputs, inputs_rx) = mpsc::channel(8);
    let peer = Arc::new(StatelessPeer {
        sink: Mutex::new(None),
        inputs,
        capabilities: env.capabilities,
    });
    let cancel = ep.stop.child_token();
    let ctx = RequestContext {
        progress_token: protocol::progress_token(&params),
        peer: Some(ClientPeer::stateless(peer.clone())),
        cancel: cancel.clone(),
        client_headers: Arc::new(crate::client_headers::prefixed_only(headers)),
    };
    let (done, done_rx) = oneshot::channel();
    let backend = ep.backend.clone();
    let m = method.to_owned();
    let params = strip_envelope(params);
    tokio::spawn(async move {
        let out = dispatch::handle(backend.as_ref(), &scope, &m, params, ctx).await;
        let _ = done.send(out);
    });
    Running::new(
        caller.owner().to_owned(),
        method.to_owned(),
        name,
        peer,
        inputs_rx,
        done_rx,
        cancel.drop_guard(),
    )
}

/// The answer for a call's step: its result, or an `InputRequiredResult` (never cached).
fn step_message(ep: &Endpoint, id: &Value, method: &str, step: Step) -> (StatusCode, Value) {
    match step {
        Step::Done(out) => finish(ep, id, method, out),
        Step::NeedsInput(r) => {
            // The parked call must not hold this response's stream open.
            *lock(&r.peer.sink) = None;
            let requests = r.input_requests();
            match ep.parked.park(r) {
                Ok(state) => {
                    let result = json!({
                        "resultType": "input_required",
                        "inputRequests": requests,
                        "requestState": state,
                        "_meta": {META_SERVER_INFO: server_info(ep)},
                    });
                    (StatusCode::OK, protocol::response(id, result))
                }
                Err(e) => (status_for(e.code), protocol::error_response(id, &e)),
            }
        }
    }
}

// ---- subscriptions/listen ----

/// One open `subscriptions/listen` stream.
pub struct Listener {
    owner: String,
    caller: McpCaller,
    scope: Scope,
    id: Value,
    tools: bool,
    prompts: bool,
    resources: bool,
    uris: Vec<String>,
    tx: mpsc::Sender<bytes::Bytes>,
}

/// Every open listen stream; the notification relay fans upstream events into them.
#[derive(Default)]
pub struct Listeners {
    next: AtomicU64,
    map: Mutex<HashMap<u64, Arc<Listener>>>,
}

impl Listeners {
    fn add(&self, l: Listener) -> Option<u64> {
        let mut map = lock(&self.map);
        map.retain(|_, l| !l.tx.is_closed());
        if map.values().filter(|x| x.owner == l.owner).count() >= MAX_LISTENERS_PER_OWNER {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        map.insert(n, Arc::new(l));
        Some(n)
    }

    fn remove(&self, n: u64) {
        lock(&self.map).remove(&n);
    }

    pub fn clear(&self) {
        lock(&self.map).clear();
    }

    /// Delivers one upstream notification to every listener that asked for it and may
    /// still use `server`.
    pub fn deliver(&self, ep: &Endpoint, server: &str, method: &str, params: &Value) {
        let listeners: Vec<Arc<Listener>> = lock(&self.map).values().cloned().collect();
        for l in listeners {
            let wanted = match method {
                "notifications/tools/list_changed" => l.tools,
                "notifications/prompts/list_changed" => l.prompts,
                "notifications/resources/list_changed" => l.resources,
                "notifications/resources/updated" => !l.uris.is_empty(),
                _ => false,
            };
            if !wanted || !ep.backend.may_use(&l.caller, server) {
                continue;
            }
            let Some(msg) =
                dispatch::rewrite_notification(&l.scope, server, method, params.clone())
            else {
                continue;
            };
            let params = msg.get("params").cloned().unwrap_or(Value::Null);
            if method == "notifications/resources/updated" {
                let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
                if !l.uris.iter().any(|u| u == uri) {
                    continue;
                }
            }
            let msg = protocol::notification(method, with_subscription(params, &l.id));
            let _ = l.tx.try_send(sse::message_event(None, &msg.to_string()));
        }
    }
}

/// `params` with `_meta.subscriptionId` set (params from upstreams may be anything).
fn with_subscription(params: Value, id: &Value) -> Value {
    let mut m = match params {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut meta = match m.remove("_meta") {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    meta.insert(META_SUBSCRIPTION_ID.into(), id.clone());
    m.insert("_meta".into(), Value::Object(meta));
    Value::Object(m)
}

struct ListenerGuard {
    ep: Weak<Endpoint>,
    n: u64,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(ep) = self.ep.upgrade() {
            ep.listeners.remove(self.n);
        }
    }
}

fn listen(ep: &Ep, caller: &McpCaller, scope: Scope, id: &Value, params: &Value) -> Response {
    let filter = params.get("notifications");
    let flag = |k: &str| filter.and_then(|f| f.get(k)).and_then(Value::as_bool) == Some(true);
    let uris: Vec<String> = filter
        .and_then(|f| f.get("resourceSubscriptions"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(MAX_SUBSCRIBED_URIS)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let (tools, prompts, resources) = (
        flag("toolsListChanged"),
        flag("promptsListChanged"),
        flag("resourcesListChanged"),
    );
    let mut accepted = Map::new();
    for (k, on) in [
        ("toolsListChanged", tools),
        ("promptsListChanged", prompts),
        ("resourcesListChanged", resources),
    ] {
        if on {
            accepted.insert(k.into(), true.into());
        }
    }
    if !uris.is_empty() {
        accepted.insert("resourceSubscriptions".into(), json!(uris));
        subscribe_upstream(ep, &scope, &uris);
    }
    let (tx, rx) = mpsc::channel(LISTEN_DEPTH);
    let ack = protocol::notification(
        "notifications/subscriptions/acknowledged",
        json!({"_meta": {META_SUBSCRIPTION_ID: id}, "notifications": accepted}),
    );
    let _ = tx.try_send(sse::message_event(None, &ack.to_string()));
    let listener = Listener {
        owner: caller.owner().to_owned(),
        caller: caller.clone(),
        scope,
        id: id.clone(),
        tools,
        prompts,
        resources,
        uris,
        tx,
    };
    let Some(n) = ep.listeners.add(listener) else {
        let e = RpcError::new(INTERNAL_ERROR, "too many open subscriptions for this key");
        return error(id, &e);
    };
    sse::response_with_guard(
        rx,
        ListenerGuard {
            ep: Arc::downgrade(ep),
            n,
        },
    )
}

/// Handshake-era upstreams only send `resources/updated` for subscribed URIs.
fn subscribe_upstream(ep: &Ep, scope: &Scope, uris: &[String]) {
    let backend = ep.backend.clone();
    let scope = scope.clone();
    let uris = uris.to_vec();
    let stop: CancellationToken = ep.stop.clone();
    tokio::spawn(async move {
        for uri in uris {
            let ctx = RequestContext::detached();
            let work = dispatch::handle(
                backend.as_ref(),
                &scope,
                "resources/subscribe",
                json!({"uri": uri}),
                ctx,
            );
            tokio::select! {
                () = stop.cancelled() => return,
                r = work => if let Err(e) = r {
                    tracing::debug!(uri, error = %e.message, "resources/subscribe upstream failed");
                },
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn params(name: &str) -> Value {
        json!({"name": name, "_meta": {META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: {}}})
    }

    #[test]
    fn ladder_checks_envelope_headers_then_version() {
        let ok = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ]);
        assert!(envelope(&ok, "tools/call", &params("echo")).is_ok());
        let e = envelope(&ok, "tools/call", &params("other")).err().unwrap();
        assert_eq!(e.code, HEADER_MISMATCH);
        let e = envelope(&ok, "tools/call", &json!({"name": "echo"}))
            .err()
            .unwrap();
        assert_eq!(e.code, INVALID_PARAMS);
        let old = headers(&[
            ("mcp-protocol-version", "2030-01-01"),
            ("mcp-method", "tools/list"),
        ]);
        let p =
            json!({"_meta": {META_PROTOCOL_VERSION: "2030-01-01", META_CLIENT_CAPABILITIES: {}}});
        let e = envelope(&old, "tools/list", &p).err().unwrap();
        assert_eq!(e.code, UNSUPPORTED_VERSION);
        assert!(
            e.data.unwrap()["supported"]
                .as_array()
                .unwrap()
                .contains(&json!("2026-07-28"))
        );
    }

    #[test]
    fn era_is_chosen_per_request() {
        let modern = headers(&[("mcp-protocol-version", "2026-07-28")]);
        let legacy = headers(&[("mcp-protocol-version", "2025-06-18")]);
        let plain = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        assert!(is_modern(&modern, &plain));
        assert!(!is_modern(&legacy, &plain));
        assert!(!is_modern(&HeaderMap::new(), &plain));
        assert!(is_modern(
            &HeaderMap::new(),
            &json!({"method": "server/discover"})
        ));
        assert!(is_modern(
            &legacy,
            &json!({"params": {"_meta": {META_PROTOCOL_VERSION: "x"}}})
        ));
    }

    #[test]
    fn envelope_keys_do_not_go_upstream() {
        let p = json!({"uri": "u", "requestState": "s", "_meta": {META_PROTOCOL_VERSION: "v", "progressToken": 1}});
        assert_eq!(
            strip_envelope(p),
            json!({"uri": "u", "_meta": {"progressToken": 1}})
        );
        assert_eq!(strip_envelope(json!([1])), json!([1]));
    }
}
