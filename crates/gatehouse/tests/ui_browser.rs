#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The admin UI in Debian's Chromium, driven by `playwright-core` (both installed by
//! `scripts/install-peers`): tests/ui/browser.mjs signs in (a wrong key refused), creates
//! a key, sees it listed and never shown again, uses it, tries an MCP tool from its
//! generated form, sees the spend chart, the logs and the audit, blocks the key, logs
//! out. Screenshots go to `$GATEHOUSE_UI_SCREENSHOTS` (docs/ui/ is made this way), else
//! a temp dir.

mod common;

use std::process::Command;

use common::{Gateway, everything};
use gatehouse_testkit::{MockOptions, MockServer};

const MASTER: &str = "sk-master-ui-browser";

#[tokio::test(flavor = "multi_thread")]
async fn admin_ui_in_chromium() {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: local-llm
    litellm_params: {{model: hosted_vllm/qwen3-coder, api_base: "{base}/v1", api_key: sk-up}}
    model_info: {{input_cost_per_token: 0.0001, output_cost_per_token: 0.0002}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-sonnet-4-20250514, api_base: "{base}", api_key: sk-up}}
mcp_servers:
  ev:
    transport: stdio
    command: node
    args: ["{everything}", "stdio"]
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 2
general_settings:
  master_key: {MASTER}
"#,
        base = mock.url(),
        everything = everything()
    );
    let gw = Gateway::start(&cfg);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/ui/browser.mjs");
    let prefix = std::path::Path::new(&common::npm_module("playwright-core"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium missing: apt-get install -y chromium (scripts/install-peers does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let shots = std::env::var("GATEHOUSE_UI_SCREENSHOTS")
        .unwrap_or_else(|_| tmp.path().to_string_lossy().into_owned());
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("GATEHOUSE_URL", &gw.url)
            .env("GATEHOUSE_MASTER", MASTER)
            .env("GATEHOUSE_NPM_PREFIX", &prefix)
            .env("SCREENSHOTS", &shots)
            .output()
            .map(|o| (o, gw))
    })
    .await
    .unwrap()
    .expect("run node");
    let (out, gw) = out;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\ngateway logs:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.logs()
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");
    // The browser's requests went through the mock, priced by model_info.
    assert_eq!(mock.requests_to("/v1/chat/completions").len(), 3);
}
