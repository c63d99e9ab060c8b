#![allow(dead_code)]

use gatehouse_testkit::{MockOptions, MockServer};
use serde_json::Value;

pub async fn server() -> MockServer {
    MockServer::start(MockOptions::default()).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// One parsed SSE event: optional `event:` name and the raw `data:` payload.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Parse a complete SSE body; every event must be terminated by a blank line.
pub fn parse_sse(body: &str) -> Vec<Event> {
    assert!(
        body.ends_with("\n\n"),
        "stream not terminated by a blank line: {body:?}"
    );
    body.split("\n\n")
        .filter(|chunk| !chunk.is_empty())
        .map(|chunk| {
            let mut name = None;
            let mut data = None;
            for line in chunk.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    assert!(data.is_none(), "multi-line data not expected: {chunk:?}");
                    data = Some(d.to_owned());
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event {
                name,
                data: data.expect("event without data"),
            }
        })
        .collect()
}

pub async fn openai_chat(server: &MockServer, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn anthropic_messages(server: &MockServer, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", server.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub fn weather_tool_openai() -> Value {
    serde_json::json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }
    })
}

pub fn weather_tool_anthropic() -> Value {
    serde_json::json!({
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}
    })
}
