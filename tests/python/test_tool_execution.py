"""MCP tools executed server-side, driven by the unmodified openai SDK (and the mcp SDK
through the gateway's /mcp endpoint)."""

import asyncio
import os
from pathlib import Path

import openai
import pytest

from conftest import start_gateway

NPM = Path(os.environ.get("GATEHOUSE_NPM_PREFIX", Path.home() / ".cache/gatehouse/npm")) / "node_modules"
EVERYTHING = NPM / "@modelcontextprotocol/server-everything/dist/index.js"
KEY = "sk-master-tools-py"


@pytest.fixture(scope="module")
def tool_gateway(mock_url):
    assert EVERYTHING.exists(), f"{EVERYTHING} missing: run scripts/install-peers"
    config = f"""
model_list:
  - model_name: gpt-mcp
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {mock_url}/v1
      api_key: sk-upstream
    model_info:
      mcp_servers: [ev]
  - model_name: claude-mcp
    litellm_params:
      model: anthropic/claude-3-haiku-20240307
      api_base: {mock_url}
      api_key: sk-upstream
    model_info:
      mcp_servers: [ev]
mcp_servers:
  ev:
    command: node
    args: ["{EVERYTHING}", "stdio"]
general_settings:
  master_key: {KEY}
"""
    gw = start_gateway(config)
    yield gw
    gw.stop()


@pytest.mark.parametrize("model", ["gpt-mcp", "claude-mcp"])
def test_non_streaming_answer_comes_back_with_the_tool_result(tool_gateway, model):
    client = openai.OpenAI(base_url=f"{tool_gateway.url}/v1", api_key=KEY, max_retries=0)
    resp = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": 'CALL ev-get-sum {"a": 19, "b": 23}'}],
    )
    assert resp.choices[0].finish_reason == "stop"
    assert "42" in resp.choices[0].message.content
    assert not resp.choices[0].message.tool_calls
    calls = resp.model_extra["mcp_calls"]
    assert [(c["server"], c["tool"], c["ok"]) for c in calls] == [("ev", "get-sum", True)]


@pytest.mark.parametrize("model", ["gpt-mcp", "claude-mcp"])
def test_streaming_answer_is_one_clean_message(tool_gateway, model):
    client = openai.OpenAI(base_url=f"{tool_gateway.url}/v1", api_key=KEY, max_retries=0)
    stream = client.chat.completions.create(
        model=model,
        stream=True,
        messages=[{"role": "user", "content": 'CALL ev-echo {"message": "via sdk"}'}],
    )
    text, finish, tool_deltas = "", None, 0
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            tool_deltas += len(choice.delta.tool_calls or [])
            finish = choice.finish_reason or finish
    assert text == "Tool said: Echo: via sdk"
    assert finish == "stop"
    assert tool_deltas == 0


def test_mcp_sdk_lists_and_calls_through_the_gateway(tool_gateway):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def run():
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}", "x-mcp-servers": "ev"})
        async with http:
            async with streamable_http_client(f"{tool_gateway.url}/mcp", http_client=http) as (read, write, *_):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = await session.list_tools()
                    names = [t.name for t in tools.tools]
                    assert "ev-echo" in names and "ev-get-sum" in names
                    result = await session.call_tool("ev-echo", {"message": "hello hub"})
                    assert result.content[0].text == "Echo: hello hub"

    asyncio.run(run())


def test_mcp_sdk_client_negotiates_2026_07_28_through_the_gateway(tool_gateway):
    """The SDK 2.x `Client` probes server/discover and stays on 2026-07-28 (stateless):
    with a key, through the real binary, listing and calling; then the lazy catalog."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def full():
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}", "x-mcp-servers": "ev"})
        async with http:
            async with Client(streamable_http_client(f"{tool_gateway.url}/mcp", http_client=http)) as client:
                assert client.session.protocol_version == "2026-07-28"
                names = [t.name for t in (await client.list_tools()).tools]
                assert names == sorted(names) and "ev-echo" in names
                result = await client.call_tool("ev-echo", {"message": "stateless"})
                assert result.content[0].text == "Echo: stateless"

    async def lazy():
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}", "x-mcp-servers": "ev"})
        async with http:
            url = f"{tool_gateway.url}/mcp?catalog=lazy"
            async with Client(streamable_http_client(url, http_client=http)) as client:
                names = [t.name for t in (await client.list_tools()).tools]
                assert names == ["search_tools", "describe_tool", "call_tool"]
                found = await client.call_tool("search_tools", {"query": "echo"})
                assert "ev-echo" in found.content[0].text
                result = await client.call_tool("call_tool", {"name": "ev-echo", "arguments": {"message": "lazy"}})
                assert result.content[0].text == "Echo: lazy"

    asyncio.run(full())
    asyncio.run(lazy())


def test_mcp_endpoint_requires_a_key(tool_gateway):
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        f"{tool_gateway.url}/mcp",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 401
