//! Amazon Bedrock (Converse / ConverseStream) behind the OpenAI chat and embeddings APIs.
//!
//! Credentials, in LiteLLM's order: `aws_access_key_id` / `aws_secret_access_key` /
//! `aws_session_token` in `litellm_params` (SigV4); else a Bedrock API key (`api_key`, or
//! `AWS_BEARER_TOKEN_BEDROCK`) sent as a bearer token by `upstream::send`; else the
//! standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`
//! variables (SigV4). Region: `aws_region_name`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the
//! region in a configured `api_base` host, else `us-east-1`. Endpoint: `api_base`, else
//! `aws_bedrock_runtime_endpoint`, else `https://bedrock-runtime.{region}.amazonaws.com`.
//!
//! The binary event stream of ConverseStream is decoded here (with its CRC checks) and
//! re-framed as one SSE event per message ([`ChatAdapter::frame`]) so the shared drivers
//! (`providers::adapter`) run it through the stateful `bedrock::StreamMapper`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use gatehouse_llm::bedrock::{self, StreamMapper, embeddings, eventstream, sigv4};
use gatehouse_llm::openai::{ChatCompletion, ChatRequest, ErrorBody};
use gatehouse_llm::sse;
use gatehouse_llm::{ErrorKind, MapError};
use serde_json::{Map, Value};

use super::adapter::{ByteStream, ChatAdapter, ChunkMapper, Prepared, map_error, merged_body};
use super::{json_response, unix_now};
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::send::{UpstreamCall, send};

const DEFAULT_REGION: &str = "us-east-1";

/// How requests to one deployment are addressed and authenticated.
struct Target {
    /// Endpoint without a trailing slash, e.g. `https://bedrock-runtime.eu-west-1.amazonaws.com`.
    base: String,
    region: String,
    /// `None`: bearer API key (or nothing) via `upstream::send`.
    credentials: Option<sigv4::Credentials>,
}

fn param<'a>(deployment: &'a Deployment, name: &str) -> Option<&'a str> {
    deployment
        .default_params
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn target(deployment: &Deployment) -> Result<Target, ApiError> {
    // The provider's default base is a template: no `api_base` was configured.
    let configured_base = (!deployment.api_base.contains("{region}"))
        .then(|| deployment.api_base.trim_end_matches('/').to_owned());
    let region = param(deployment, "aws_region_name")
        .map(str::to_owned)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| configured_base.as_deref().and_then(region_of_host))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let base = configured_base
        .or_else(|| {
            param(deployment, "aws_bedrock_runtime_endpoint")
                .map(|e| e.trim_end_matches('/').to_owned())
        })
        .unwrap_or_else(|| bedrock::default_endpoint(&region));
    let from_config = match (
        param(deployment, "aws_access_key_id"),
        param(deployment, "aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Some(sigv4::Credentials {
            access_key_id: id.to_owned(),
            secret_access_key: secret.to_owned(),
            session_token: param(deployment, "aws_session_token").map(str::to_owned),
        }),
        _ => None,
    };
    let credentials = match from_config {
        Some(c) => Some(c),
        None if deployment.api_key.is_some() => None,
        None => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Some(sigv4::Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN"),
            }),
            _ => {
                return Err(ApiError::Internal(format!(
                    "deployment '{}' has no AWS credentials: set aws_access_key_id and aws_secret_access_key in litellm_params, a Bedrock api_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                    deployment.id
                )));
            }
        },
    };
    Ok(Target {
        base,
        region,
        credentials,
    })
}

/// `https://bedrock-runtime.eu-west-1.amazonaws.com` -> `eu-west-1`.
fn region_of_host(base: &str) -> Option<String> {
    let host = base.split("://").nth(1)?.split(['/', ':']).next()?;
    let rest = host
        .strip_prefix("bedrock-runtime-fips.")
        .or_else(|| host.strip_prefix("bedrock-runtime."))?;
    Some(rest.split('.').next()?.to_owned())
}

impl Target {
    /// The full URL for `path` and the SigV4 headers for `body` sent there.
    fn signed(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<(String, Vec<(HeaderName, HeaderValue)>), ApiError> {
        let url = format!("{}{path}", self.base);
        let Some(creds) = &self.credentials else {
            return Ok((url, Vec::new()));
        };
        let request = sigv4::Request {
            method: "POST",
            url: &url,
            headers: &[],
            payload: body,
        };
        let headers = sigv4::sign(&request, creds, &self.region, bedrock::SERVICE, unix_now())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let headers = headers
            .into_iter()
            .filter_map(|(name, value)| {
                let mut value = HeaderValue::from_str(&value).ok()?;
                value.set_sensitive(name != "x-amz-date");
                Some((HeaderName::from_static(name), value))
            })
            .collect();
        Ok((url, headers))
    }
}

pub struct Bedrock;

impl ChatAdapter for Bedrock {
    fn vendor(&self) -> &'static str {
        "bedrock"
    }

    fn prepare(
        &self,
        deployment: &Deployment,
        request: &ChatRequest,
    ) -> Result<(Prepared, Vec<String>), ApiError> {
        let target = target(deployment)?;
        let model = bedrock::model_id(&deployment.upstream_model);
        let mapped = bedrock::chat_to_converse(request, model).map_err(map_error)?;
        let body =
            serde_json::to_vec(&mapped.body).map_err(|e| ApiError::Internal(e.to_string()))?;
        let (url, headers) = target.signed(&bedrock::converse_path(model, mapped.stream), &body)?;
        let prepared = Prepared {
            path: url,
            body: Bytes::from(body),
            headers,
            stream: mapped.stream,
            include_usage: mapped.include_usage,
        };
        Ok((prepared, mapped.dropped))
    }

    fn parse(
        &self,
        deployment: &Deployment,
        request_id: &str,
        body: &[u8],
    ) -> Result<ChatCompletion, MapError> {
        bedrock::converse_to_chat(body, &deployment.model_name, request_id, unix_now())
    }

    fn stream_mapper(
        &self,
        deployment: &Deployment,
        request_id: &str,
        include_usage: bool,
    ) -> Box<dyn ChunkMapper> {
        Box::new(StreamMapper::new(
            &deployment.model_name,
            request_id,
            unix_now(),
            include_usage,
        ))
    }

    /// Bedrock's error (type from `__type`, added by `upstream::send` from
    /// `x-amzn-errortype`) as the OpenAI client expects it.
    fn classify(&self, status: u16, body: &[u8]) -> (ErrorKind, u16, ErrorBody) {
        let m = bedrock::map_error(status, body);
        (m.kind, m.status, m.body)
    }

    fn frame(&self, upstream: ByteStream) -> ByteStream {
        Box::pin(as_sse(upstream))
    }
}

/// `POST /v1/embeddings` through `InvokeModel` (Titan: one call per input; Cohere: one).
pub async fn embeddings(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let target = target(deployment)?;
    let body = merged_body(state, deployment, client_body);
    let model = bedrock::model_id(&deployment.upstream_model);
    let family = embeddings::Family::of(model).map_err(map_error)?;
    let texts = embeddings::inputs(&body).map_err(map_error)?;
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let mut vectors = Vec::with_capacity(texts.len());
    let mut tokens = 0;
    for request in embeddings::request_bodies(family, &texts, &body) {
        let payload =
            serde_json::to_vec(&request).map_err(|e| ApiError::Internal(e.to_string()))?;
        let (url, headers) = target.signed(&bedrock::invoke_path(model), &payload)?;
        let call = UpstreamCall {
            deployment,
            path: &url,
            body: Bytes::from(payload),
            stream: false,
            request_id,
            forward_headers: headers,
        };
        let bytes = send(&state.http, &call)
            .await
            .map_err(|e| super::remap_error(e, |s, b| Bedrock.classify(s, b)))?
            .bytes()
            .await
            .map_err(|e| {
                ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
            })?;
        let (mut v, t) = embeddings::parse_response(family, &bytes).map_err(map_error)?;
        vectors.append(&mut v);
        tokens += t;
    }
    let answer = embeddings::openai_response(&vectors, tokens, &deployment.model_name, base64);
    let body = serde_json::to_vec(&answer).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, Bytes::from(body)))
}

/// Name of the synthetic event for a corrupt or cut event stream; it ends in
/// `Exception`, so the mapper reports it as an upstream error like Bedrock's own.
const DECODE_ERROR_EVENT: &str = "eventStreamDecodeException";

/// Re-frames the binary event stream as SSE: `event: <:event-type or :exception-type>`,
/// `data: <payload>`. Transport errors pass through untouched.
fn as_sse(
    upstream: impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static {
    struct State<S> {
        upstream: std::pin::Pin<Box<S>>,
        decoder: eventstream::Decoder,
        done: bool,
    }
    let state = State {
        upstream: Box::pin(upstream),
        decoder: eventstream::Decoder::new(),
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let item = match st.upstream.next().await {
            Some(Ok(chunk)) => match st.decoder.push(&chunk) {
                Ok(messages) => Ok(Bytes::from(encode_messages(&messages))),
                Err(e) => {
                    st.done = true;
                    Ok(Bytes::from(decode_error(&e.to_string())))
                }
            },
            Some(Err(e)) => {
                st.done = true;
                Err(e)
            }
            None => {
                st.done = true;
                match st.decoder.finish() {
                    Ok(()) => return None,
                    Err(e) => Ok(Bytes::from(decode_error(&e.to_string()))),
                }
            }
        };
        Some((item, st))
    })
}

fn encode_messages(messages: &[eventstream::Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        let name = match message.header(":message-type") {
            Some("exception") | Some("error") => message
                .header(":exception-type")
                .or_else(|| message.header(":error-code"))
                .unwrap_or("unknownException"),
            _ => message.header(":event-type").unwrap_or(""),
        };
        sse::encode(
            Some(name),
            &String::from_utf8_lossy(&message.payload),
            &mut out,
        );
    }
    out
}

fn decode_error(reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let payload = serde_json::json!({"message": format!("corrupt Bedrock event stream: {reason}")});
    sse::encode(Some(DECODE_ERROR_EVENT), &payload.to_string(), &mut out);
    out
}
