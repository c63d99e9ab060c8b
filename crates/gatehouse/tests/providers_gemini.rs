#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Gemini behind the OpenAI chat and embeddings APIs: the real gateway binary against the
//! faithful Gemini mock, which validates what it gets as Gemini does (unknown fields,
//! schema subset, function response turns) and answers in Gemini's wire format.

mod common;

use common::{Gateway, client, everything};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const KEY: &str = "AIza-test-key";
const MASTER: &str = "sk-master-gemini";

async fn setup(api_base_suffix: &str, extra: &str) -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::with_api_key(KEY))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: gem
    litellm_params:
      model: gemini/gemini-2.0-flash
      api_base: {base}{api_base_suffix}
      api_key: {KEY}
{extra}
"#,
        base = mock.url()
    );
    let gw = Gateway::start(&cfg);
    (mock, gw)
}

async fn chat(gw: &Gateway, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
         "parameters": {"type": "object", "additionalProperties": false,
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"city": {"type": "string", "default": "Oslo"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time",
         "parameters": {"type": "object", "properties": {}}}}
    ])
}

/// `data:` payloads of an OpenAI SSE body, `[DONE]` excluded (asserted last).
fn sse_chunks(text: &str) -> Vec<Value> {
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    text.split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn chat_is_translated_to_generate_content_and_back() {
    let (mock, gw) = setup("", "").await;
    let resp = chat(
        &gw,
        json!({"model": "gem", "temperature": 0.2, "max_tokens": 50,
               "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
               "messages": [
                   {"role": "system", "content": "be brief"},
                   {"role": "user", "content": "hello gemini"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gem");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello gemini"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        body["usage"]["total_tokens"].as_u64().unwrap(),
        body["usage"]["prompt_tokens"].as_u64().unwrap()
            + body["usage"]["completion_tokens"].as_u64().unwrap()
    );

    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(
        sent.body["systemInstruction"]["parts"][0]["text"],
        "be brief"
    );
    assert_eq!(sent.body["contents"][0]["role"], "user");
    assert_eq!(sent.body["generationConfig"]["maxOutputTokens"], 50);
    assert_eq!(sent.body["generationConfig"]["temperature"], 0.2);
    assert_eq!(sent.body["safetySettings"][0]["threshold"], "BLOCK_NONE");
    assert!(sent.body.get("model").is_none() && sent.body.get("messages").is_none());
}

#[tokio::test]
async fn api_base_with_the_version_path_is_not_doubled() {
    let (mock, gw) = setup("/v1beta", "").await;
    let resp = chat(
        &gw,
        json!({"model": "gem", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.requests()[0].path,
        "/v1beta/models/gemini-2.0-flash:generateContent"
    );
}

/// Parallel calls, then the results sent back: Gemini has no call ids, so the gateway's
/// ids must lead each result to the right function name, in call order.
#[tokio::test]
async fn parallel_tool_calls_and_results_round_trip() {
    let (mock, gw) = setup("", "").await;
    let ask = "CALL get_weather {\"city\":\"Oslo\"}\nCALL get_time {}";
    let first: Value = chat(
        &gw,
        json!({"model": "gem", "tools": tools(), "messages": [{"role": "user", "content": ask}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        first["choices"][0]["finish_reason"], "tool_calls",
        "{first}"
    );
    let calls = first["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Oslo\"}");
    assert_eq!(calls[1]["function"]["name"], "get_time");
    let (id0, id1) = (
        calls[0]["id"].as_str().unwrap(),
        calls[1]["id"].as_str().unwrap(),
    );
    assert_ne!(id0, id1);
    // The reduced schema went out and the mock (which rejects Gemini-unknown fields) took it.
    let decl = &mock.requests()[0].body["tools"][0]["functionDeclarations"];
    assert_eq!(
        decl[0]["parameters"]["properties"]["city"],
        json!({"type": "string"})
    );
    assert!(decl[1].get("parameters").is_none());

    // Results in the opposite order of the calls.
    let second = chat(
        &gw,
        json!({"model": "gem", "tools": tools(), "messages": [
            {"role": "user", "content": ask},
            first["choices"][0]["message"].clone(),
            {"role": "tool", "tool_call_id": id1, "content": "noon"},
            {"role": "tool", "tool_call_id": id0, "content": "{\"temp_c\": 21}"}]}),
    )
    .await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    let answer = second["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(answer.starts_with("Tool said: "), "{answer}");
    assert!(
        answer.contains("temp_c") && answer.contains("noon"),
        "{answer}"
    );

    let contents = &mock.requests()[1].body["contents"];
    assert_eq!(contents.as_array().unwrap().len(), 3);
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    let results = contents[2]["parts"].as_array().unwrap();
    assert_eq!(results[0]["functionResponse"]["name"], "get_weather");
    assert_eq!(
        results[0]["functionResponse"]["response"],
        json!({"temp_c": 21})
    );
    assert_eq!(results[1]["functionResponse"]["name"], "get_time");
    assert_eq!(
        results[1]["functionResponse"]["response"],
        json!({"content": "noon"})
    );
}

#[tokio::test]
async fn streamed_text_and_parallel_calls_get_distinct_indices() {
    let (mock, gw) = setup("", "").await;
    mock.push_reply(Reply::TextAndToolCalls {
        text: "Let me check.".into(),
        calls: vec![
            ("get_weather".into(), r#"{"city":"Oslo"}"#.into()),
            ("get_weather".into(), r#"{"city":"Rome"}"#.into()),
        ],
    });
    let resp = chat(
        &gw,
        json!({"model": "gem", "stream": true, "stream_options": {"include_usage": true},
               "tools": tools(), "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.requests()[0].path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    );
    assert_eq!(mock.requests()[0].query.as_deref(), Some("alt=sse"));
    let chunks = sse_chunks(&resp.text().await.unwrap());
    let mut content = String::new();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = Vec::new();
    let mut usage = None;
    for chunk in &chunks {
        if chunk["usage"].is_object() {
            usage = Some(chunk["usage"].clone());
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            if i == calls.len() {
                calls.push(Default::default());
            }
            if let Some(id) = call["id"].as_str() {
                calls[i].0 = id.to_owned();
                calls[i].1 = call["function"]["name"].as_str().unwrap().to_owned();
            }
            calls[i]
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish.push(f.to_owned());
        }
    }
    assert_eq!(content, "Let me check.");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(calls[0].2, r#"{"city":"Oslo"}"#);
    assert_eq!(calls[1].2, r#"{"city":"Rome"}"#);
    assert_ne!(calls[0].0, calls[1].0);
    assert_eq!(
        finish,
        ["tool_calls"],
        "one finish chunk, tool_calls not stop"
    );
    let usage = usage.expect("usage chunk");
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn errors_are_mapped_to_openai_shapes() {
    // A wrong key: Gemini's 400 API_KEY_INVALID is an auth error for OpenAI clients.
    let mock = MockServer::start(MockOptions::with_api_key(KEY))
        .await
        .unwrap();
    let cfg = format!(
        "model_list:\n  - model_name: gem\n    litellm_params: {{model: gemini/gemini-2.0-flash, api_base: \"{}\", api_key: wrong}}\n",
        mock.url()
    );
    let gw = Gateway::start(&cfg);
    let resp = chat(
        &gw,
        json!({"model": "gem", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API key not valid")
    );

    let (mock, gw) = setup("", "").await;
    mock.push_reply(Reply::rate_limited(0));
    let resp = chat(
        &gw,
        json!({"model": "gem", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    // Parameters Gemini cannot honour fail loudly.
    let resp = chat(
        &gw,
        json!({"model": "gem", "logit_bias": {"1": 2}, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("logit_bias"),
        "{body}"
    );
}

#[tokio::test]
async fn overloaded_is_retried_and_mid_stream_errors_are_in_band() {
    let (mock, gw) = setup("", "      max_retries: 1").await;
    mock.push_reply(Reply::Status {
        status: 503,
        retry_after_secs: None,
    });
    let resp = chat(
        &gw,
        json!({"model": "gem", "messages": [{"role": "user", "content": "again"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: again");
    assert_eq!(mock.requests().len(), 2);

    mock.push_reply(Reply::ErrorMidStream {
        text: "one two three four".into(),
        after_chunks: 2,
    });
    let resp = chat(
        &gw,
        json!({"model": "gem", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "one two ");
    let last = events.last().unwrap();
    assert!(
        last["error"].is_object(),
        "in-band error expected, got {text}"
    );
    // The vendor's own message and type survive the in-band error.
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded"),
        "{last}"
    );
    assert!(
        !text.contains("\"finish_reason\":\"stop\""),
        "a failed stream must not end as stop: {text}"
    );
}

#[tokio::test]
async fn embeddings_go_through_batch_embed_contents() {
    let (mock, gw) = setup("", "").await;
    let resp = client()
        .post(format!("{}/v1/embeddings", gw.url))
        .json(&json!({"model": "gem", "input": ["alpha", "beta"], "dimensions": 8}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let v: Vec<f32> = serde_json::from_value(data[1]["embedding"].clone()).unwrap();
    assert_eq!(v, gatehouse_testkit::embedding_for("beta", 8));
    let sent = &mock.requests()[0];
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.0-flash:batchEmbedContents"
    );
    assert_eq!(sent.body["requests"][0]["model"], "models/gemini-2.0-flash");
    assert_eq!(sent.body["requests"][0]["outputDimensionality"], 8);
}

/// The MCP tool-execution loop over Gemini: the model (mock) calls a real MCP server's
/// tool through the gateway's adapter, the gateway runs it and feeds the result back as
/// a `functionResponse`, and the client gets the final answer.
#[tokio::test]
async fn mcp_tool_loop_runs_over_gemini() {
    let mock = MockServer::start(MockOptions::with_api_key(KEY))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: gem
    litellm_params: {{model: gemini/gemini-2.0-flash, api_base: "{base}", api_key: {KEY}}}
  - model_name: gem-tools
    litellm_params: {{model: gemini/gemini-2.0-flash, api_base: "{base}", api_key: {KEY}}}
    model_info: {{mcp_servers: [ev]}}
mcp_servers:
  ev:
    transport: stdio
    command: node
    args: ["{ev}", "stdio"]
general_settings:
  master_key: {MASTER}
"#,
        base = mock.url(),
        ev = everything()
    );
    let gw = Gateway::start(&cfg);
    for (model, headers) in [
        ("gem", vec![("x-mcp-servers", "ev")]),
        ("gem-tools", vec![]),
    ] {
        mock.clear_requests();
        let mut req = client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(MASTER)
            .json(&json!({"model": model, "messages": [{"role": "user",
                "content": "CALL ev-get-sum {\"a\": 2, \"b\": 40}"}]}));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        let body: Value = resp.json().await.unwrap();
        let answer = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("");
        assert!(answer.contains("42"), "{model}: {body}");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        let calls = body["mcp_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{body}");
        assert_eq!(calls[0]["tool"], "get-sum");
        assert_eq!(calls[0]["ok"], true);
        let sent = mock.requests();
        assert_eq!(sent.len(), 2);
        let decls = sent[0].body["tools"][0]["functionDeclarations"]
            .as_array()
            .unwrap();
        assert!(decls.iter().any(|d| d["name"] == "ev-get-sum"));
        let turn = &sent[1].body["contents"][2]["parts"][0]["functionResponse"];
        assert_eq!(turn["name"], "ev-get-sum");
    }
}
