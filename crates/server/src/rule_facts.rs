//! What `routing_rules` see of a request (crates/router/src/rules.rs defines the
//! language): its headers, body and key.

use axum::http::HeaderMap;
use gatehouse_router::RequestFacts;
use serde_json::{Map, Value};

use crate::auth::Caller;

pub struct Facts<'a> {
    pub model: &'a str,
    pub tokens: u64,
    pub body: &'a Map<String, Value>,
    pub headers: &'a HeaderMap,
    pub caller: &'a Caller,
    pub tags: &'a [String],
}

impl RequestFacts for Facts<'_> {
    fn model(&self) -> &str {
        self.model
    }

    fn tokens(&self) -> u64 {
        self.tokens
    }

    fn stream(&self) -> bool {
        self.body
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn user(&self) -> Option<&str> {
        self.body.get("user").and_then(Value::as_str)
    }

    fn tags(&self) -> &[String] {
        self.tags
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn metadata(&self, name: &str) -> Option<&Value> {
        self.body.get("metadata")?.get(name)
    }

    fn key_alias(&self) -> Option<&str> {
        self.caller.key.as_ref()?.key_alias.as_deref()
    }

    fn key_user_id(&self) -> Option<&str> {
        self.caller.key.as_ref()?.user_id.as_deref()
    }

    fn key_team_id(&self) -> Option<&str> {
        self.caller.key.as_ref()?.team_id.as_deref()
    }

    fn key_is_admin(&self) -> bool {
        self.caller.is_admin
    }

    fn key_metadata(&self, name: &str) -> Option<&Value> {
        self.caller.key.as_ref()?.metadata.get(name)
    }
}
