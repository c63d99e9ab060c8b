//! The JSON-RPC decoder (MCP messages from clients and servers) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(incoming) = gatehouse_mcp::jsonrpc::parse(data) {
        let _ = incoming.into_messages();
    }
});
