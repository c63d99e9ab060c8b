//! `/toolset/{name}/mcp`: a configured bundle of tools from several servers, in both eras,
//! with the key's access applied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use serde_json::{Value, json};
use transport_support::*;

#[tokio::test]
async fn a_toolset_serves_its_picked_tools_that_the_key_may_use() {
    let gw = serve(restricted()).await; // may use alpha and beta, not secret
    let (sid, _) = gw
        .initialize_at("/toolset/mix/mcp", "2025-11-25", &[])
        .await;
    let names = tool_names(
        &gw.rpc_at("/toolset/mix/mcp", &sid, "tools/list", json!({}))
            .await,
    );
    assert_eq!(names, ["alpha-echo", "beta-echo", "beta-weird_name_"]);
    let r = gw
        .rpc_at(
            "/toolset/mix/mcp",
            &sid,
            "tools/call",
            json!({"name": "alpha-echo"}),
        )
        .await;
    assert_eq!(result_text(&r["result"]), "alpha/echo: {}");
    // alpha-slow exists upstream but is not in the toolset.
    let r = gw
        .rpc_at(
            "/toolset/mix/mcp",
            &sid,
            "tools/call",
            json!({"name": "alpha-slow"}),
        )
        .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(gw.fake.calls.lock().unwrap().iter().all(|c| c.1 != "slow"));
    // The session belongs to the toolset route, not to /mcp.
    let resp = gw
        .post(
            "/mcp",
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_toolset_over_2026_07_28_and_an_unknown_one() {
    let gw = serve(restricted()).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let send = |path: &str| {
        gw.post(path, None, &body)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .send()
    };
    let v: Value = send("/toolset/mix/mcp")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        tool_names(&v),
        ["alpha-echo", "beta-echo", "beta-weird_name_"]
    );
    assert_eq!(v["result"]["cacheScope"], "private");
    let resp = send("/toolset/nope/mcp").await.unwrap();
    assert_eq!(resp.status(), 404);
}
