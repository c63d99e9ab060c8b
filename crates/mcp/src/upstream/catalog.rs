//! What one server offers: tools, prompts, resources and resource templates, fetched
//! page by page after `initialize` and re-fetched on `list_changed`.

use super::{Upstream, UpstreamError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Guards against a server that hands out cursors forever.
const MAX_PAGES: usize = 100;

/// One MCP tool. Fields we do not model (annotations, outputSchema, `_meta`, newer
/// revisions' additions) stay in `extra` and are serialized back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "inputSchema", default = "empty_schema")]
    pub input_schema: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn empty_schema() -> Value {
    json!({"type": "object"})
}

/// Which list a refresh concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::ResourceTemplates => "resources/templates/list",
        }
    }

    fn key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::ResourceTemplates => "resources",
        }
    }

    /// The lists a `notifications/*/list_changed` method invalidates.
    pub fn from_notification(method: &str) -> &'static [ListKind] {
        match method {
            "notifications/tools/list_changed" => &[ListKind::Tools],
            "notifications/prompts/list_changed" => &[ListKind::Prompts],
            "notifications/resources/list_changed" => {
                &[ListKind::Resources, ListKind::ResourceTemplates]
            }
            _ => &[],
        }
    }
}

/// The cached lists of one server (unfiltered: filters apply at read time).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tools: Vec<Tool>,
    pub prompts: Vec<Value>,
    pub resources: Vec<Value>,
    pub resource_templates: Vec<Value>,
}

impl Catalog {
    /// Fetches every list the server advertises. A failing optional list is logged and
    /// left empty; failing to list tools fails the whole fetch.
    pub async fn fetch(up: &Upstream, timeout: Duration) -> Result<Catalog, UpstreamError> {
        let mut c = Catalog::default();
        for kind in [
            ListKind::Tools,
            ListKind::Prompts,
            ListKind::Resources,
            ListKind::ResourceTemplates,
        ] {
            if let Err(e) = c.refresh(up, kind, timeout).await {
                if kind == ListKind::Tools {
                    return Err(e);
                }
                tracing::warn!(server = %up.name(), list = kind.method(), error = %e, "could not list");
            }
        }
        Ok(c)
    }

    /// Re-fetches one list (no-op when the server does not advertise it).
    pub async fn refresh(
        &mut self,
        up: &Upstream,
        kind: ListKind,
        timeout: Duration,
    ) -> Result<(), UpstreamError> {
        let advertised = up
            .init_result()
            .and_then(|i| i.capabilities.get(kind.capability()))
            .is_some_and(|c| !c.is_null());
        if !advertised {
            return Ok(());
        }
        let items = fetch_all(up, kind, timeout).await?;
        match kind {
            ListKind::Tools => {
                self.tools = items
                    .into_iter()
                    .filter_map(|t| match serde_json::from_value::<Tool>(t) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            tracing::warn!(server = %up.name(), error = %e, "skipping a malformed tool");
                            None
                        }
                    })
                    .collect();
            }
            ListKind::Prompts => self.prompts = items,
            ListKind::Resources => self.resources = items,
            ListKind::ResourceTemplates => self.resource_templates = items,
        }
        Ok(())
    }
}

async fn fetch_all(
    up: &Upstream,
    kind: ListKind,
    timeout: Duration,
) -> Result<Vec<Value>, UpstreamError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| json!({"cursor": c}));
        let page = up.request(kind.method(), params, timeout).await?;
        if let Some(list) = page.get(kind.key()).and_then(Value::as_array) {
            items.extend(list.iter().cloned());
        }
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if cursor.is_none() {
            return Ok(items);
        }
    }
    tracing::warn!(server = %up.name(), list = kind.method(), "stopped paginating after {MAX_PAGES} pages");
    Ok(items)
}
