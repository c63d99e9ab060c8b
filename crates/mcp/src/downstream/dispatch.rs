//! MCP methods over the servers of one scope: fan-out for lists, routing by aggregated
//! name or URI for everything else. Transport-agnostic: the streamable HTTP, legacy SSE
//! and REST routes all come through here.

use futures_util::future::join_all;
use serde_json::{Map, Value, json};

use super::backend::{Backend, BackendError, RequestContext};
use super::names;
use super::protocol::{self, INVALID_PARAMS, METHOD_NOT_FOUND, RpcError};
use super::scope::{Scope, ScopedServer};

/// How long a cancelled call may take to wind down before it is dropped.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Upper bound on pages fetched from one upstream for one aggregated list.
const MAX_PAGES: usize = 50;

/// Identity sent in `initialize` results.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub name: String,
    pub version: String,
}

/// The `initialize` result for a session.
pub fn initialize_result(version: &str, scope: &Scope, who: &ServerIdentity) -> Value {
    let name = if scope.single {
        scope.servers.first().map_or_else(
            || who.name.clone(),
            |s| format!("{}/{}", who.name, s.prefix),
        )
    } else {
        who.name.clone()
    };
    json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "logging": {},
            "completions": {},
        },
        "serverInfo": {"name": name, "version": who.version},
    })
}

/// The `server/discover` result for a scope (2026-07-28): the revisions every server of
/// the scope can be served at (the gateway translates between eras, so each upstream can
/// be served at every revision the gateway speaks) and the capabilities the scope's servers
/// offer, merged. `resultType`, `serverInfo` and caching hints are added by the caller.
pub fn discover_result(backend: &dyn Backend, scope: &Scope) -> Value {
    let mut versions = protocol::all_versions();
    for s in &scope.servers {
        let servable = backend.servable_versions(&s.name);
        versions.retain(|v| servable.contains(v));
    }
    let caps: Vec<Option<Value>> = scope
        .servers
        .iter()
        .map(|s| backend.server_capabilities(&s.name))
        .collect();
    // A server whose capabilities are not known yet (still starting) may offer anything.
    let offers = |k: &str| {
        caps.iter()
            .any(|c| c.as_ref().is_none_or(|c| c.get(k).is_some()))
    };
    let mut capabilities = Map::new();
    capabilities.insert("tools".into(), json!({"listChanged": true}));
    if offers("prompts") {
        capabilities.insert("prompts".into(), json!({"listChanged": true}));
    }
    if offers("resources") {
        capabilities.insert(
            "resources".into(),
            json!({"subscribe": true, "listChanged": true}),
        );
    }
    if offers("completions") {
        capabilities.insert("completions".into(), json!({}));
    }
    json!({"supportedVersions": versions, "capabilities": capabilities})
}

/// A `CallToolResult` reporting a failure to the model rather than to the protocol layer.
pub fn tool_error(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}], "isError": true})
}

/// Handles one request (anything but `initialize`, which needs a session to be created).
pub async fn handle(
    backend: &dyn Backend,
    scope: &Scope,
    method: &str,
    params: Value,
    ctx: RequestContext,
) -> Result<Value, RpcError> {
    let cancel = ctx.cancel.clone();
    let work = route(backend, scope, method, params, ctx);
    tokio::pin!(work);
    tokio::select! {
        biased;
        r = &mut work => return r,
        () = cancel.cancelled() => {}
    }
    // The backend sees the same token: give it a moment to tell the upstream (it sends
    // `notifications/cancelled`) before dropping the call.
    tokio::time::timeout(CANCEL_GRACE, work)
        .await
        .unwrap_or_else(|_| Err(BackendError::Cancelled.into()))
}

async fn route(
    backend: &dyn Backend,
    scope: &Scope,
    method: &str,
    params: Value,
    ctx: RequestContext,
) -> Result<Value, RpcError> {
    match method {
        "ping" => Ok(json!({})),
        "tools/list" if scope.lazy => Ok(json!({ "tools": crate::lazy::meta_tools() })),
        "tools/list" => Ok(json!({ "tools": list_tools(backend, scope).await })),
        "tools/call" if scope.lazy => lazy_call(backend, scope, params, ctx).await,
        "tools/call" => call_tool(backend, scope, params, ctx).await,
        "prompts/list" => {
            let items = fan_out(backend, scope, "prompts/list", "prompts", &ctx).await;
            Ok(json!({ "prompts": rename_all(backend, scope, items, "name", Kind::Name) }))
        }
        "prompts/get" => {
            let name = str_param(&params, "name")?;
            let Some((server, prompt)) = resolve_prompt(backend, scope, name, &ctx).await else {
                return Err(RpcError::new(
                    INVALID_PARAMS,
                    format!("unknown prompt `{name}`"),
                ));
            };
            let params = with_field(params, "name", prompt.into());
            Ok(backend.request(&server, method, params, ctx).await?)
        }
        "resources/list" => {
            let items = fan_out(backend, scope, method, "resources", &ctx).await;
            Ok(json!({ "resources": rename_all(backend, scope, items, "uri", Kind::Uri) }))
        }
        "resources/templates/list" => {
            let items = fan_out(backend, scope, method, "resourceTemplates", &ctx).await;
            Ok(json!({
                "resourceTemplates": rename_all(backend, scope, items, "uriTemplate", Kind::Uri)
            }))
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            let uri = str_param(&params, "uri")?.to_owned();
            let (server, original) = split_uri(scope, &uri)?;
            let original = original.to_owned();
            let params = with_field(params, "uri", original.into());
            let mut result = backend
                .request(&server.name, method, params, ctx)
                .await
                .map_err(|e| resource_error(RpcError::from(e), &uri))?;
            if !scope.single
                && let Some(Value::Array(contents)) = result.get_mut("contents")
            {
                for c in contents {
                    prefix_uri_field(c, "uri", &server.prefix);
                }
            }
            Ok(result)
        }
        "completion/complete" => complete(backend, scope, params, ctx).await,
        "logging/setLevel" => {
            // Every upstream gets the level; one that does not do logging is not an error.
            let calls = scope
                .servers
                .iter()
                .map(|s| backend.request(&s.name, method, params.clone(), ctx.clone()));
            join_all(calls).await;
            Ok(json!({}))
        }
        "server/discover" => Err(RpcError::new(
            METHOD_NOT_FOUND,
            "server/discover is a 2026-07-28 method; send it with that revision's _meta",
        )),
        _ => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    }
}

fn str_param<'a>(params: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("missing string parameter `{key}`")))
}

fn with_field(params: Value, key: &str, value: Value) -> Value {
    let mut m = match params {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert(key.to_owned(), value);
    Value::Object(m)
}

/// Every tool of the scope under its aggregated name. A server that fails to list is left
/// out (and logged) rather than failing the whole list.
pub async fn list_tools(backend: &dyn Backend, scope: &Scope) -> Vec<Value> {
    let lists = join_all(
        scope
            .servers
            .iter()
            .map(|s| async move { (s, backend.list_tools(&s.name).await) }),
    )
    .await;
    let mut out = Vec::new();
    for (s, r) in lists {
        match r {
            Ok(tools) => {
                for t in tools.into_iter().filter(|t| s.offers(tool_name(t))) {
                    out.push(if scope.single {
                        t
                    } else {
                        rename(backend, s, t, "name", Kind::Name)
                    });
                }
            }
            Err(e) => tracing::warn!(server = %s.name, error = %e, "tools/list failed"),
        }
    }
    // A deterministic order lets clients cache the list and keeps LLM prompt caches warm,
    // whatever order upstreams answered in.
    out.sort_by(|a, b| tool_name(a).cmp(tool_name(b)));
    out
}

fn tool_name(t: &Value) -> &str {
    t.get("name").and_then(Value::as_str).unwrap_or("")
}

/// Per-server tool catalogs, for `/mcp/tools`.
pub async fn tool_catalogs(
    backend: &dyn Backend,
    scope: &Scope,
) -> Vec<(ScopedServer, Result<Vec<Value>, BackendError>)> {
    join_all(scope.servers.iter().map(|s| async move {
        let r = backend.list_tools(&s.name).await.map(|tools| {
            tools
                .into_iter()
                .filter(|t| s.offers(tool_name(t)))
                .map(|t| rename(backend, s, t, "name", Kind::Name))
                .collect()
        });
        (s.clone(), r)
    }))
    .await
}

/// A `tools/call`'s `name` and `arguments` (`{}` when absent).
fn name_and_arguments(params: &Value) -> Result<(&str, Value), RpcError> {
    let name = str_param(params, "name")?;
    let arguments = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    Ok((name, arguments))
}

/// `tools/call` params → `CallToolResult`. Unknown tools and unreachable upstreams come
/// back as `isError` results so models see them; upstream JSON-RPC errors are relayed.
pub async fn call_tool(
    backend: &dyn Backend,
    scope: &Scope,
    params: Value,
    ctx: RequestContext,
) -> Result<Value, RpcError> {
    let (name, arguments) = name_and_arguments(&params)?;
    let Some((server, tool)) = resolve_tool(backend, scope, name).await else {
        return Ok(tool_error(format!("Unknown tool: {name}")));
    };
    match backend.call_tool(&server, &tool, arguments, ctx).await {
        Ok(v) => Ok(v),
        Err(e @ (BackendError::Rpc { .. } | BackendError::Cancelled)) => Err(e.into()),
        Err(e) => Ok(tool_error(e.to_string())),
    }
}

/// `tools/call` on a lazy endpoint: the three catalog tools, or a real tool by name
/// (calling one directly is no more than `call_tool` allows).
async fn lazy_call(
    backend: &dyn Backend,
    scope: &Scope,
    params: Value,
    ctx: RequestContext,
) -> Result<Value, RpcError> {
    use crate::lazy::{self, LazyCall, LazyCatalog};
    let (name, arguments) = name_and_arguments(&params)?;
    let call = match lazy::parse_call(name, &arguments) {
        Ok(Some(c)) => c,
        Ok(None) => return call_tool(backend, scope, params, ctx).await,
        Err(why) => return Ok(tool_error(why)),
    };
    match call {
        LazyCall::Search { query, limit } => {
            let catalog = LazyCatalog::new(list_tools(backend, scope).await);
            let hits = catalog.search(&query, limit);
            Ok(lazy::json_result(&json!({ "tools": hits })))
        }
        LazyCall::Describe { name } => {
            let catalog = LazyCatalog::new(list_tools(backend, scope).await);
            Ok(match catalog.describe(&name) {
                Some(t) => lazy::json_result(t),
                None => tool_error(format!("Unknown tool: {name}; find one with search_tools")),
            })
        }
        LazyCall::Call { name, arguments } => {
            let params = json!({ "name": name, "arguments": arguments });
            call_tool(backend, scope, params, ctx).await
        }
    }
}

/// Maps an aggregated tool name back to `(server, tool)` exactly.
pub async fn resolve_tool(
    backend: &dyn Backend,
    scope: &Scope,
    name: &str,
) -> Option<(String, String)> {
    if scope.single {
        return scope
            .servers
            .first()
            .map(|s| (s.name.clone(), name.to_owned()));
    }
    for s in candidates(backend, scope, name) {
        let names = backend.list_tools(&s.name).await.map(|ts| {
            ts.iter()
                .filter_map(|t| t.get("name")?.as_str().map(str::to_owned))
                .collect()
        });
        if let Some(found) = match_name(backend, s, name, names)
            && s.offers(&found)
        {
            return Some((s.name.clone(), found));
        }
    }
    None
}

async fn resolve_prompt(
    backend: &dyn Backend,
    scope: &Scope,
    name: &str,
    ctx: &RequestContext,
) -> Option<(String, String)> {
    if scope.single {
        return scope
            .servers
            .first()
            .map(|s| (s.name.clone(), name.to_owned()));
    }
    for s in candidates(backend, scope, name) {
        let names = list_all(backend, &s.name, "prompts/list", "prompts", ctx)
            .await
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("name")?.as_str().map(str::to_owned))
                    .collect()
            });
        if let Some(found) = match_name(backend, s, name, names) {
            return Some((s.name.clone(), found));
        }
    }
    None
}

/// Servers whose prefix starts `name`, longest prefix first.
fn candidates<'s>(backend: &dyn Backend, scope: &'s Scope, name: &str) -> Vec<&'s ScopedServer> {
    let mut c: Vec<(usize, &ScopedServer)> = scope
        .servers
        .iter()
        .filter_map(|s| {
            let p = backend.prefixed(&s.prefix, "");
            name.starts_with(&p).then_some((p.len(), s))
        })
        .collect();
    c.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    c.into_iter().map(|(_, s)| s).collect()
}

/// The catalog entry whose aggregated name is `name`. Without a catalog (upstream down)
/// the unprefixed remainder is tried as is, so the call reports the upstream's state.
fn match_name(
    backend: &dyn Backend,
    s: &ScopedServer,
    name: &str,
    catalog: Result<Vec<String>, BackendError>,
) -> Option<String> {
    match catalog {
        Ok(names) => names
            .into_iter()
            .find(|n| backend.prefixed(&s.prefix, n) == name),
        Err(_) => {
            let rest = name.get(backend.prefixed(&s.prefix, "").len()..)?;
            (backend.prefixed(&s.prefix, rest) == name).then(|| rest.to_owned())
        }
    }
}

fn split_uri<'s, 'u>(
    scope: &'s Scope,
    uri: &'u str,
) -> Result<(&'s ScopedServer, &'u str), RpcError> {
    if scope.single
        && let Some(s) = scope.servers.first()
    {
        return Ok((s, uri));
    }
    let (prefix, original) = names::split_uri(scope.servers.iter().map(|s| s.prefix.as_str()), uri)
        .ok_or_else(|| resource_not_found(uri))?;
    let server = scope
        .by_prefix(prefix)
        .ok_or_else(|| resource_not_found(uri))?;
    Ok((server, original))
}

/// Resource not found, in the handshake era's code (`-32002`); the 2026-07-28 path turns
/// it into that revision's `-32602` on the way out (`modern::finish`).
fn resource_not_found(uri: &str) -> RpcError {
    RpcError {
        data: Some(json!({ "uri": uri })),
        ..RpcError::new(
            protocol::RESOURCE_NOT_FOUND_LEGACY,
            format!("unknown resource `{uri}`"),
        )
    }
}

/// An upstream's error for a resource request, in the handshake era's terms: a
/// 2026-07-28 server says "not found" with `-32602`, which a handshake-era client knows
/// as `-32002` (a modern client gets `-32602` back from `modern::finish`).
fn resource_error(mut e: RpcError, uri: &str) -> RpcError {
    if e.code == INVALID_PARAMS {
        e.code = protocol::RESOURCE_NOT_FOUND_LEGACY;
        // The URI as this client named it (the upstream saw it without the prefix).
        match &mut e.data {
            Some(Value::Object(data)) => {
                data.insert("uri".into(), uri.into());
            }
            None => e.data = Some(json!({ "uri": uri })),
            Some(_) => {}
        }
    }
    e
}

async fn complete(
    backend: &dyn Backend,
    scope: &Scope,
    params: Value,
    ctx: RequestContext,
) -> Result<Value, RpcError> {
    let reference = params.get("ref").cloned().unwrap_or(Value::Null);
    let kind = reference.get("type").and_then(Value::as_str).unwrap_or("");
    let (server, reference) = match kind {
        "ref/prompt" => {
            let name = str_param(&reference, "name")?;
            let (server, prompt) = resolve_prompt(backend, scope, name, &ctx)
                .await
                .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("unknown prompt `{name}`")))?;
            (server, with_field(reference, "name", prompt.into()))
        }
        "ref/resource" => {
            let uri = str_param(&reference, "uri")?;
            let (server, original) = split_uri(scope, uri)?;
            let original = original.to_owned();
            (
                server.name.clone(),
                with_field(reference, "uri", original.into()),
            )
        }
        _ => return Err(RpcError::new(INVALID_PARAMS, "unsupported completion ref")),
    };
    let params = with_field(params, "ref", reference);
    Ok(backend
        .request(&server, "completion/complete", params, ctx)
        .await?)
}

/// One paginated list from one upstream, all pages.
async fn list_all(
    backend: &dyn Backend,
    server: &str,
    method: &str,
    key: &str,
    ctx: &RequestContext,
) -> Result<Vec<Value>, BackendError> {
    let mut out = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .take()
            .map_or_else(|| json!({}), |c| json!({ "cursor": c }));
        let mut page = backend.request(server, method, params, ctx.clone()).await?;
        if let Some(Value::Array(items)) = page.get_mut(key) {
            out.append(items);
        }
        match page.get("nextCursor") {
            Some(c) if !c.is_null() => cursor = Some(c.clone()),
            _ => break,
        }
    }
    Ok(out)
}

/// A list method over every server; servers without the capability (or down) are skipped.
async fn fan_out(
    backend: &dyn Backend,
    scope: &Scope,
    method: &str,
    key: &str,
    ctx: &RequestContext,
) -> Vec<(ScopedServer, Vec<Value>)> {
    let lists = join_all(
        scope
            .servers
            .iter()
            .map(|s| async move { (s, list_all(backend, &s.name, method, key, ctx).await) }),
    )
    .await;
    lists
        .into_iter()
        .filter_map(|(s, r)| match r {
            Ok(items) => Some((s.clone(), items)),
            Err(e) => {
                tracing::debug!(server = %s.name, method, error = %e, "list skipped");
                None
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Kind {
    Name,
    Uri,
}

fn rename_all(
    backend: &dyn Backend,
    scope: &Scope,
    lists: Vec<(ScopedServer, Vec<Value>)>,
    field: &str,
    kind: Kind,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (s, items) in lists {
        for item in items {
            out.push(if scope.single {
                item
            } else {
                rename(backend, &s, item, field, kind)
            });
        }
    }
    out
}

fn rename(
    backend: &dyn Backend,
    s: &ScopedServer,
    mut item: Value,
    field: &str,
    kind: Kind,
) -> Value {
    match kind {
        Kind::Name => {
            if let Some(n) = item.get(field).and_then(Value::as_str) {
                let renamed = backend.prefixed(&s.prefix, n);
                if let Some(m) = item.as_object_mut() {
                    m.insert(field.to_owned(), renamed.into());
                }
            }
        }
        Kind::Uri => prefix_uri_field(&mut item, field, &s.prefix),
    }
    item
}

fn prefix_uri_field(item: &mut Value, field: &str, prefix: &str) {
    if let Some(u) = item.get(field).and_then(Value::as_str) {
        let renamed = names::prefixed_uri(prefix, u);
        if let Some(m) = item.as_object_mut() {
            m.insert(field.to_owned(), renamed.into());
        }
    }
}

/// Rewrites an upstream notification for a session of `scope`; `None` drops it.
pub fn rewrite_notification(
    scope: &Scope,
    server: &str,
    method: &str,
    mut params: Value,
) -> Option<Value> {
    let s = scope.servers.iter().find(|s| s.name == server)?;
    if !scope.single {
        match method {
            "notifications/resources/updated" => prefix_uri_field(&mut params, "uri", &s.prefix),
            "notifications/message" => {
                let logger = params
                    .get("logger")
                    .and_then(Value::as_str)
                    .map_or_else(|| s.prefix.clone(), |l| format!("{}/{l}", s.prefix));
                // Foreign params may be anything: a non-object is dropped, never indexed
                // (indexing a non-object panics and killed the relay for every session).
                params
                    .as_object_mut()?
                    .insert("logger".into(), logger.into());
            }
            _ => {}
        }
    }
    match method {
        "notifications/tools/list_changed"
        | "notifications/prompts/list_changed"
        | "notifications/resources/list_changed"
        | "notifications/resources/updated"
        | "notifications/message" => Some(protocol::notification(method, params)),
        _ => None,
    }
}
