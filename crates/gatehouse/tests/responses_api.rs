#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! `POST /v1/responses` in front of every provider: translated through chat for
//! OpenAI-compatible and Anthropic upstreams, passed through to OpenAI's own Responses
//! API, streamed, stored and chained, and with MCP tools executed by the gateway. The
//! upstreams are the faithful mocks, which validate what the gateway sends.

mod common;

use common::{Gateway, client, everything};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-responses";

async fn setup(extra: &str) -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: local-llm
    litellm_params: {{model: hosted_vllm/qwen3-coder, api_base: "{base}/v1", api_key: sk-up}}
  - model_name: gpt-native
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}/v1", api_key: sk-up}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-3-haiku-20240307, api_base: "{base}", api_key: sk-up}}
general_settings:
  master_key: {MASTER}
{extra}
"#,
        base = mock.url()
    );
    let gw = Gateway::start(&cfg);
    (mock, gw)
}

async fn post(gw: &Gateway, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Every `data:` of an SSE body, parsed.
fn events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|block| {
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

#[tokio::test]
async fn plain_answer_is_translated_through_chat() {
    let (mock, gw) = setup("").await;
    let resp = post(
        &gw,
        json!({"model": "local-llm", "instructions": "be brief", "input": "hello there"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "local-llm");
    assert_eq!(output_text(&body), "Echo: hello there");
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let sent = mock.requests_to("/v1/chat/completions");
    assert_eq!(sent.len(), 1, "translated to chat completions");
    assert_eq!(sent[0].body["model"], "qwen3-coder");
    assert_eq!(sent[0].body["messages"][0]["role"], "system");
    assert_eq!(sent[0].body["messages"][0]["content"], "be brief");
    assert!(mock.requests_to("/v1/responses").is_empty());
    // The unversioned path (LiteLLM's alias) answers the same.
    let resp = client()
        .post(format!("{}/responses", gw.url))
        .bearer_auth(MASTER)
        .json(&json!({"model": "local-llm", "input": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(output_text(&resp.json().await.unwrap()), "Echo: again");
}

#[tokio::test]
async fn openai_deployments_get_the_body_passed_through() {
    let (mock, gw) = setup("").await;
    let body = json!({"model": "gpt-native", "input": "pass me", "store": false,
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "abc"});
    let resp = post(&gw, body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-litellm-model-id").is_some());
    let out: Value = resp.json().await.unwrap();
    assert_eq!(output_text(&out), "Echo: pass me");
    let sent = mock.requests_to("/v1/responses");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["model"], "gpt-4o-mini", "model name mapped");
    assert_eq!(
        sent[0].body["prompt_cache_key"], "abc",
        "unknown fields survive"
    );
    assert_eq!(sent[0].header("authorization"), Some("Bearer sk-up"));
    assert!(mock.requests_to("/v1/chat/completions").is_empty());
}

async fn stream_events(gw: &Gateway, body: Value) -> Vec<Value> {
    let resp = post(gw, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    events(&resp.text().await.unwrap())
}

fn assert_well_formed(events: &[Value]) {
    for (i, e) in events.iter().enumerate() {
        assert!(e["type"].is_string(), "every event has its type: {e}");
        assert_eq!(e["sequence_number"], i as u64, "sequence numbers in order");
    }
}

#[tokio::test]
async fn streams_translate_into_responses_events_for_chat_and_anthropic_upstreams() {
    let (_mock, gw) = setup("").await;
    for model in ["local-llm", "claude"] {
        let evs = stream_events(
            &gw,
            json!({"model": model, "input": "stream me please", "stream": true}),
        )
        .await;
        assert_well_formed(&evs);
        let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds[0], "response.created", "{model}: {kinds:?}");
        assert_eq!(kinds[1], "response.in_progress");
        for needed in [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.output_item.done",
        ] {
            assert!(
                kinds.contains(&needed),
                "{model}: {needed} missing in {kinds:?}"
            );
        }
        assert_eq!(*kinds.last().unwrap(), "response.completed");
        let text: String = evs
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(text, "Echo: stream me please", "{model}");
        let done = evs.last().unwrap();
        assert_eq!(output_text(&done["response"]), "Echo: stream me please");
        assert!(
            done["response"]["usage"]["output_tokens"].as_u64().unwrap() > 0,
            "{model}"
        );
    }
}

#[tokio::test]
async fn a_stream_that_fails_mid_way_ends_with_response_failed() {
    let (mock, gw) = setup("").await;
    mock.push_reply(Reply::ErrorMidStream {
        text: "this answer will break".into(),
        after_chunks: 2,
    });
    let evs = stream_events(
        &gw,
        json!({"model": "claude", "input": "x", "stream": true}),
    )
    .await;
    assert_well_formed(&evs);
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "response.failed", "{evs:?}");
    assert_eq!(last["response"]["status"], "failed");
    assert!(last["response"]["error"]["message"].is_string());
}

#[tokio::test]
async fn namespace_tools_are_flattened_and_split_back_and_hosted_tools_dropped() {
    let (mock, gw) = setup("").await;
    let tools = json!([
        {"type": "namespace", "name": "mcp__gw", "description": "gateway tools", "tools": [
            {"type": "function", "name": "ev_echo", "description": "echo",
             "parameters": {"type": "object", "properties": {"message": {"type": "string"}}}}]},
        {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
        {"type": "web_search"}
    ]);
    let ask = "CALL mcp__gw__ev_echo {\"message\":\"hi\"}";
    let resp = post(
        &gw,
        json!({"model": "claude", "tools": tools, "input": ask, "store": false}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-gatehouse-dropped-tools"]
            .to_str()
            .unwrap(),
        "web_search"
    );
    let first: Value = resp.json().await.unwrap();
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .cloned()
        .unwrap();
    assert_eq!(call["name"], "ev_echo");
    assert_eq!(call["namespace"], "mcp__gw");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"message": "hi"})
    );
    let sent = &mock.requests_to("/v1/messages")[0].body;
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["mcp__gw__ev_echo", "shell"],
        "flattened; web_search dropped"
    );

    // Codex's next turn: the call and its output (an array of input_text items).
    let second = post(
        &gw,
        json!({"model": "claude", "tools": tools, "store": false, "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": ask}]},
            call,
            {"type": "function_call_output", "call_id": call["call_id"],
             "output": [{"type": "input_text", "text": "Echo: hi"}]}]}),
    )
    .await;
    assert_eq!(
        second.status(),
        200,
        "the mock rejects an unmatched tool_result"
    );
    let second: Value = second.json().await.unwrap();
    assert_eq!(output_text(&second), "Tool said: Echo: hi");
}

#[tokio::test]
async fn stored_responses_chain_and_can_be_read_and_deleted() {
    let (mock, gw) = setup("").await;
    let first: Value = post(&gw, json!({"model": "local-llm", "input": "remember 42"}))
        .await
        .json()
        .await
        .unwrap();
    let id = first["id"].as_str().unwrap().to_string();
    let got: Value = client()
        .get(format!("{}/v1/responses/{id}", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], id);
    assert_eq!(output_text(&got), "Echo: remember 42");

    let second: Value = post(
        &gw,
        json!({"model": "local-llm", "input": "what was it?", "previous_response_id": id, "stream": true}),
    )
    .await
    .text()
    .await
    .map(|t| events(&t).last().cloned().unwrap())
    .unwrap();
    assert_eq!(second["type"], "response.completed");
    let sent = mock.requests_to("/v1/chat/completions");
    let messages = sent.last().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let texts: Vec<String> = messages.iter().map(|m| m["content"].to_string()).collect();
    assert_eq!(messages.len(), 3, "history + new turn: {texts:?}");
    assert!(texts[0].contains("remember 42"));
    assert_eq!(messages[1]["role"], "assistant");
    assert!(texts[1].contains("Echo: remember 42"));
    assert!(texts[2].contains("what was it?"));

    // The streamed answer was stored too, and chains further.
    let second_id = second["response"]["id"].as_str().unwrap();
    let third = post(
        &gw,
        json!({"model": "local-llm", "input": "and now?", "previous_response_id": second_id}),
    )
    .await;
    assert_eq!(third.status(), 200);
    let sent = mock.requests_to("/v1/chat/completions");
    assert_eq!(
        sent.last().unwrap().body["messages"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    let deleted: Value = client()
        .delete(format!("{}/v1/responses/{id}", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response.deleted", "deleted": true})
    );
    let gone = client()
        .get(format!("{}/v1/responses/{id}", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let unknown = post(
        &gw,
        json!({"model": "local-llm", "input": "x", "previous_response_id": id}),
    )
    .await;
    assert_eq!(unknown.status(), 400);
    let err: Value = unknown.json().await.unwrap();
    assert_eq!(err["error"]["param"], "previous_response_id");
}

#[tokio::test]
async fn store_false_keeps_nothing() {
    let (_mock, gw) = setup("").await;
    let first: Value = post(
        &gw,
        json!({"model": "local-llm", "input": "x", "store": false}),
    )
    .await
    .json()
    .await
    .unwrap();
    let got = client()
        .get(format!(
            "{}/v1/responses/{}",
            gw.url,
            first["id"].as_str().unwrap()
        ))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 404);
}

#[tokio::test]
async fn gateway_errors_are_openai_shaped() {
    let (_mock, gw) = setup("").await;
    let resp = post(&gw, json!({"model": "nope", "input": "x"})).await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    let resp = client()
        .post(format!("{}/v1/responses", gw.url))
        .json(&json!({"model": "local-llm", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn mcp_tools_run_through_the_hub_and_are_reported_as_mcp_items() {
    let servers = format!(
        "mcp_servers:\n  ev:\n    transport: stdio\n    command: node\n    args: [\"{}\", \"stdio\"]\n",
        everything()
    );
    let (mock, gw) = setup(&servers).await;
    // gpt-native serves Responses itself, but OpenAI cannot reach the gateway's
    // servers: the gateway's loop answers for it too.
    for (model, stream) in [
        ("local-llm", false),
        ("local-llm", true),
        ("gpt-native", false),
    ] {
        mock.push_reply(Reply::tool_call(
            "ev-echo",
            r#"{"message":"from responses"}"#,
        ));
        let resp = post(
            &gw,
            json!({"model": model, "input": "echo something", "stream": stream,
                   "tools": [{"type": "mcp", "server_label": "ev", "require_approval": "never",
                              "allowed_tools": ["echo"]}]}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let response = if stream {
            let evs = events(&resp.text().await.unwrap());
            assert_well_formed(&evs);
            let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
            assert!(kinds.contains(&"response.mcp_call.completed"), "{kinds:?}");
            assert!(
                kinds.contains(&"response.mcp_list_tools.completed"),
                "{kinds:?}"
            );
            evs.last().unwrap()["response"].clone()
        } else {
            resp.json().await.unwrap()
        };
        let output = response["output"].as_array().unwrap();
        assert_eq!(output[0]["type"], "mcp_list_tools", "{response}");
        assert_eq!(output[0]["server_label"], "ev");
        let listed: Vec<&str> = output[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["echo"], "allowed_tools narrows the listing");
        assert_eq!(output[1]["type"], "mcp_call");
        assert_eq!(output[1]["name"], "echo");
        assert_eq!(output[1]["server_label"], "ev");
        assert!(output[1]["error"].is_null());
        assert_eq!(output[1]["output"], "Echo: from responses");
        assert_eq!(output_text(&response), "Tool said: Echo: from responses");
        // The model saw the real tool result.
        let last = mock
            .requests_to("/v1/chat/completions")
            .last()
            .cloned()
            .unwrap();
        let tool_msg = last.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "tool")
            .cloned()
            .unwrap();
        assert!(
            tool_msg["content"]
                .to_string()
                .contains("Echo: from responses")
        );
    }
}

#[tokio::test]
async fn mcp_approvals_ask_first_and_run_on_approval() {
    let servers = format!(
        "mcp_servers:\n  ev:\n    transport: stdio\n    command: node\n    args: [\"{}\", \"stdio\"]\n",
        everything()
    );
    let (mock, gw) = setup(&servers).await;
    let tools = json!([{"type": "mcp", "server_label": "ev", "require_approval": "always"}]);
    mock.push_reply(Reply::tool_call("ev-echo", r#"{"message":"needs ok"}"#));
    let first: Value = post(
        &gw,
        json!({"model": "local-llm", "input": "echo it", "tools": tools}),
    )
    .await
    .json()
    .await
    .unwrap();
    let output = first["output"].as_array().unwrap();
    let request = output
        .iter()
        .find(|i| i["type"] == "mcp_approval_request")
        .cloned()
        .unwrap_or_else(|| panic!("no approval request: {first}"));
    assert_eq!(request["server_label"], "ev");
    assert_eq!(request["name"], "echo");
    assert!(
        !output.iter().any(|i| i["type"] == "mcp_call"),
        "nothing ran yet"
    );

    // Approved after previous_response_id: the tool runs, the model sees its result.
    let second: Value = post(
        &gw,
        json!({"model": "local-llm", "tools": tools, "previous_response_id": first["id"],
               "input": [{"type": "mcp_approval_response", "approval_request_id": request["id"],
                          "approve": true}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let call = second["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "mcp_call")
        .cloned()
        .unwrap_or_else(|| panic!("no mcp_call: {second}"));
    assert_eq!(call["approval_request_id"], request["id"]);
    assert!(
        call["output"].to_string().contains("Echo: needs ok"),
        "{call}"
    );
    assert_eq!(output_text(&second), "Tool said: Echo: needs ok");

    // Denied, statelessly (the request item sent back in the input): nothing runs.
    let third: Value = post(
        &gw,
        json!({"model": "local-llm", "tools": tools, "store": false, "input": [
            {"type": "message", "role": "user", "content": "echo it"},
            request,
            {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": false}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let call = third["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "mcp_call")
        .cloned()
        .unwrap();
    assert_eq!(call["status"], "failed");
    assert!(output_text(&third).contains("not approved"), "{third}");
}

#[tokio::test]
async fn a_passed_through_stream_cut_mid_way_ends_with_an_error_event() {
    let (mock, gw) = setup("").await;
    let text = "this answer will be cut".to_owned();
    // The connection breaks off, or the body ends cleanly without `response.completed`.
    for cut in [
        Reply::DropMidStream {
            text: text.clone(),
            after_chunks: 3,
        },
        Reply::EndMidStream {
            text: text.clone(),
            after_chunks: 3,
        },
    ] {
        mock.push_reply(cut);
        let resp = post(
            &gw,
            json!({"model": "gpt-native", "input": "x", "stream": true}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let evs = events(&resp.text().await.unwrap());
        let last = evs.last().unwrap();
        assert_eq!(last["type"], "error", "{evs:?}");
        assert!(
            last["message"].as_str().unwrap().contains("upstream"),
            "{last}"
        );
        assert!(
            evs.iter().all(|e| e["type"].is_string()),
            "every event has its type"
        );
        assert!(evs.iter().all(|e| e["type"] != "response.completed"));
    }
}
