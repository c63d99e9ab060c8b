//! The request pipeline, written once for every inbound API (chat completions,
//! embeddings, Responses, Messages, and each model round of the tool loop):
//!
//! 1. auth — `auth::require_key` (middleware) leaves the `Caller`;
//! 2. route — [`route`]: the requested model's group (alias, exact name or wildcard), the
//!    key's right to it, and what the request says about routing (tags, fallbacks,
//!    retries, prompt size);
//! 3. limits + accounting — `spend::account`: the key's rpm/tpm/parallel admission and
//!    the request's `RequestRecord` (usage, cost, the spend row when the answer is over);
//!    3b. cache — [`cache`]: a repeated request is answered from the response cache (a
//!    $0 spend row marked as a hit); a miss runs steps 4–7 and stores their answer when
//!    it finished cleanly. The route takes its `cache::lookup` before it changes the body;
//! 4. attach MCP tools — `tools::attachments`, inside the accounting scope;
//! 5. router — [`attempts`]: strategy, retries, fallbacks, cooldowns; each attempt calls
//!    the provider adapter (map, send, map back) for one deployment;
//! 6. tool loop — `tools::complete` when MCP tools were attached, each round through
//!    [`attempts`] again;
//! 7. the response in the client's dialect, then accounting when the record drops.
//!
//! A route cannot skip a step: a [`Route`] is only made by [`route`] (which checks the
//! key's access), and [`attempts`] refuses to run outside an accounting scope (step 3).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use gatehouse_router::rules::Action;
use gatehouse_router::{Exhausted, RequestCtx};
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::state::AppState;

/// Step 3b: the response cache. `lookup` comes from `cache::lookup` (`None`: caching is
/// off for this request); `rest` is the pipeline from attaching tools on.
pub async fn cache<F>(
    state: &AppState,
    lookup: Option<crate::cache::Lookup>,
    rest: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>>,
{
    crate::cache::serve(state, lookup, rest).await
}

/// A request bound for one model group, checked against the key.
#[derive(Debug, Clone)]
pub struct Route {
    /// The model name the client asked for.
    pub model: String,
    pub ctx: RequestCtx,
    /// MCP servers the group's deployments attach (`model_info.mcp_servers`).
    pub mcp_servers: Vec<String>,
    /// The request's own `timeout` / `stream_timeout`.
    pub timeouts: Timeouts,
}

/// LiteLLM's per-request `timeout` and `stream_timeout` (seconds). They can only shorten
/// what the deployment allows: the operator's timeout is the ceiling a client cannot lift.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timeouts {
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
}

impl Timeouts {
    fn from_body(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let read = |param: &'static str| -> Result<Option<Duration>, ApiError> {
            match body.get(param) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_f64() {
                    Some(secs) if secs > 0.0 && secs.is_finite() => {
                        Ok(Some(Duration::from_secs_f64(secs.min(86_400.0))))
                    }
                    _ => Err(ApiError::InvalidParam {
                        message: format!("'{param}' must be a positive number of seconds"),
                        param,
                    }),
                },
            }
        };
        Ok(Self {
            timeout: read("timeout")?,
            stream_timeout: read("stream_timeout")?,
        })
    }

    /// The deployment an attempt calls, with this request's shorter timeouts.
    fn apply(self, deployment: Arc<Deployment>) -> Arc<Deployment> {
        let shorter = |asked: Option<Duration>, allowed: Duration| asked.filter(|a| *a < allowed);
        let timeout = shorter(self.timeout, deployment.timeout);
        let stream_allowed = deployment.stream_timeout.unwrap_or(deployment.timeout);
        let stream_timeout = shorter(self.stream_timeout.or(self.timeout), stream_allowed);
        if timeout.is_none() && stream_timeout.is_none() {
            return deployment;
        }
        let mut shortened = Deployment::clone(&deployment);
        if let Some(t) = timeout {
            shortened.timeout = t;
        }
        if let Some(t) = stream_timeout {
            shortened.stream_timeout = Some(t);
        }
        Arc::new(shortened)
    }
}

/// Step 2: the group for `model` (or the group a `routing_rules` rule sends it to), if
/// the key may use it. `body_len` sizes the prompt for pre-call checks and tpm capacity
/// (bytes / 4, a cheap estimate).
pub fn route(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    requested: &str,
    body: &Map<String, Value>,
    body_len: usize,
) -> Result<Route, ApiError> {
    let mut ctx = routing_ctx(body, body_len);
    let mut model = requested;
    let rules = &state.router.settings().rules;
    if !rules.is_empty() {
        let facts = crate::rule_facts::Facts {
            model: requested,
            tokens: ctx.input_tokens,
            body,
            headers,
            caller,
            tags: &ctx.tags,
        };
        // A rule never widens what a key may use: one naming a group the key may not
        // use does not match.
        let rerouted = rules.iter().find_map(|rule| match &rule.action {
            Action::Model(group) if rule.matches(&facts) && may_use_group(state, caller, group) => {
                Some((rule, group.as_str()))
            }
            _ => None,
        });
        if let Some((rule, group)) = rerouted {
            tracing::debug!(rule = %rule.name, from = %requested, to = %group, "routing rule");
            metrics::counter!("gatehouse_routing_rule_matches_total", "rule" => rule.name.clone())
                .increment(1);
            model = group;
        }
        ctx.prefer = rules.preference(&facts);
    }
    let Some(resolved) = state.router.resolve(model) else {
        return Err(ApiError::ModelNotFound(format!(
            "model '{model}' does not exist; models available to this key: {}",
            usable_models(state, caller)
        )));
    };
    let group = resolved.group;
    if !may_use_group(state, caller, model) {
        return Err(ApiError::Forbidden(format!(
            "this key may not use model '{model}'"
        )));
    }
    let mut mcp_servers: Vec<String> = Vec::new();
    for m in &group.members {
        for s in &m.deployment().mcp_servers {
            if !mcp_servers.contains(s) {
                mcp_servers.push(s.clone());
            }
        }
    }
    // A request names its own fallbacks; it may only name groups its key may use.
    if let Some(fallbacks) = ctx.fallbacks.as_mut() {
        fallbacks.retain(|name| may_use_group(state, caller, name));
    }
    Ok(Route {
        model: model.to_owned(),
        ctx,
        mcp_servers,
        timeouts: Timeouts::from_body(body)?,
    })
}

/// Whether the key may use `name` (an exact group, an alias, a wildcard route or a name
/// one serves).
pub fn may_use_group(state: &AppState, caller: &Caller, name: &str) -> bool {
    state.router.resolve(name).is_some_and(|r| {
        r.group.members.iter().any(|m| {
            let access = &m.deployment().access_groups;
            caller.may_use_model(name, access) || caller.may_use_model(&r.group.name, access)
        })
    })
}

fn usable_models(state: &AppState, caller: &Caller) -> String {
    let usable: Vec<&str> = state
        .router
        .names()
        .iter()
        .map(String::as_str)
        .chain(state.router.wildcard_names())
        .filter(|name| may_use_group(state, caller, name))
        .collect();
    if usable.is_empty() {
        "none".into()
    } else {
        usable.join(", ")
    }
}

/// What the body says about routing, as LiteLLM reads it: `metadata.tags` (or `tags`),
/// `fallbacks` (names, or `{"model": name}` maps), `num_retries`.
fn routing_ctx(body: &Map<String, Value>, body_len: usize) -> RequestCtx {
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        let items = v?.as_array()?;
        Some(
            items
                .iter()
                .filter_map(|i| match i {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("model").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .take(16)
                .collect(),
        )
    };
    let tags = strings(body.get("metadata").and_then(|m| m.get("tags")))
        .or_else(|| strings(body.get("tags")))
        .unwrap_or_default();
    RequestCtx {
        tags,
        input_tokens: (body_len / 4) as u64,
        fallbacks: strings(body.get("fallbacks")).filter(|f| !f.is_empty()),
        num_retries: body
            .get("num_retries")
            .and_then(Value::as_u64)
            .map(|n| n.min(10) as u32),
        prefer: None,
    }
}

/// The answer of the deployment that served, and how it was reached.
pub struct Routed<T> {
    pub value: T,
    pub deployment: Arc<Deployment>,
    /// Fallback groups tried before this answer.
    pub fallbacks: u32,
}

impl Routed<Response> {
    /// The response with the router's headers: which deployment answered
    /// (`x-litellm-model-id`) and how many fallbacks were tried.
    pub fn into_response(self) -> Response {
        let (response, deployment, fallbacks) = (self.value, self.deployment, self.fallbacks);
        decorate(response, &deployment, fallbacks)
    }
}

/// Adds the router's headers to a response built from a routed answer.
pub fn decorate(mut response: Response, deployment: &Deployment, fallbacks: u32) -> Response {
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&deployment.id) {
        headers.insert("x-litellm-model-id", id);
    }
    headers.insert(
        "x-litellm-attempted-fallbacks",
        HeaderValue::from(fallbacks),
    );
    if let Ok(group) = HeaderValue::from_str(&deployment.model_name) {
        headers.insert("x-litellm-model-group", group);
    }
    response
}

/// Step 5: asks the router for deployments in turn and calls `call` with each until one
/// answers, waiting where the router says (backoff, `Retry-After`). Only upstream
/// failures move on; the gateway's own errors (a body it cannot map) end at once.
pub async fn attempts<T, F, Fut>(
    state: &AppState,
    route: &Route,
    mut call: F,
) -> Result<Routed<T>, ApiError>
where
    F: FnMut(Arc<Deployment>) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let Some(record) = crate::spend::current() else {
        return Err(ApiError::Internal(
            "a model request ran outside the accounting scope".into(),
        ));
    };
    let Some(mut plan) = state.router.plan(&route.model, route.ctx.clone()) else {
        return Err(ApiError::ModelNotFound(format!(
            "model '{}' does not exist",
            route.model
        )));
    };
    let mut last_err: Option<ApiError> = None;
    loop {
        let (attempt, wait) = match plan.next_attempt() {
            Ok(next) => next,
            Err(exhausted) => return Err(give_up(exhausted, last_err)),
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let deployment = route
            .timeouts
            .apply(state.deployment_for(attempt.deployment(), attempt.wildcard()));
        record.set_deployment(&deployment);
        let mut span = attempt_span(&record, &deployment, attempt.group(), plan.fallbacks_used());
        let outcome = call(deployment.clone()).await;
        if let (Some(span), Err(err)) = (span.as_mut(), &outcome) {
            span.fail(err.kind(), err.to_string());
        }
        drop(span);
        match outcome {
            Ok(value) => {
                let fallbacks = plan.fallbacks_used();
                record.set_served(attempt.succeeded(&state.router));
                return Ok(Routed {
                    value,
                    deployment,
                    fallbacks,
                });
            }
            Err(err) => {
                let Some(failure) = err.failure() else {
                    return Err(err);
                };
                let retry_after = match &err {
                    ApiError::Upstream { retry_after, .. } => *retry_after,
                    _ => None,
                };
                tracing::warn!(deployment = %deployment.id, group = %attempt.group(), error = %err, "attempt failed");
                metrics::counter!("gatehouse_attempt_failures_total", "provider" => deployment.provider.name, "kind" => err.kind())
                    .increment(1);
                plan.failed(attempt, failure, retry_after);
                last_err = Some(err);
            }
        }
    }
}

/// The span of one upstream attempt (tracing on), whose context the upstream call carries
/// as `traceparent`. It ends when the attempt has its answer (for a stream: its head).
fn attempt_span(
    record: &crate::spend::RequestRecord,
    deployment: &Deployment,
    group: &str,
    fallbacks: u32,
) -> Option<crate::otel::Span> {
    let mut span = record.child_span(
        format!("chat {}", deployment.upstream_model),
        crate::otel::Kind::Client,
    )?;
    span.set("gen_ai.operation.name", "chat");
    span.set("gen_ai.system", deployment.provider.name);
    span.set("gen_ai.request.model", deployment.upstream_model.clone());
    span.set("gatehouse.deployment.id", deployment.id.clone());
    span.set("gatehouse.model_group", group);
    span.set("gatehouse.fallbacks", u64::from(fallbacks));
    record.set_upstream_trace(span.context());
    Some(span)
}

fn give_up(exhausted: Exhausted, last: Option<ApiError>) -> ApiError {
    match exhausted {
        Exhausted::Failed(_) => {
            last.unwrap_or_else(|| ApiError::Internal("the router gave up without an error".into()))
        }
        Exhausted::Unavailable {
            group,
            retry_in,
            at_limit,
        } => {
            let why = if at_limit {
                "each is cooling down after failures or at its rpm/tpm limit for this minute"
            } else {
                "all are cooling down after failures"
            };
            let when = retry_in
                .map(|wait| format!("; try again in {:.1}s", wait.as_secs_f64()))
                .unwrap_or_default();
            ApiError::Unavailable {
                message: format!("no deployment of '{group}' is available: {why}{when}"),
                retry_after: retry_in,
            }
        }
        Exhausted::NoTagMatch { group, tags } => ApiError::BadRequest(format!(
            "no deployment of '{group}' serves the tags {tags:?} (and none is tagged 'default')"
        )),
        Exhausted::ContextWindow { group, tokens } => {
            let kind = gatehouse_llm::ErrorKind::ContextLength;
            let message = format!(
                "the prompt (about {tokens} tokens) does not fit the context window of any deployment of '{group}', and no context_window_fallbacks apply"
            );
            let body = gatehouse_llm::openai::ErrorBody::from_kind(kind, message);
            ApiError::Upstream {
                status: axum::http::StatusCode::BAD_REQUEST,
                kind,
                body: serde_json::to_vec(&body)
                    .map(bytes::Bytes::from)
                    .unwrap_or_default(),
                retry_after: None,
            }
        }
    }
}
