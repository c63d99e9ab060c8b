"""The official openai SDK's Responses API and anthropic SDK's Messages API against
Gatehouse, unmodified: passthrough to OpenAI-style and Anthropic upstreams, translation
through chat completions, streaming, tools and gateway-executed MCP tools."""

import json
import os
from pathlib import Path

import anthropic
import openai
import pytest

from conftest import start_gateway

KEY = "sk-master-responses-messages"
EVERYTHING = (
    Path(os.environ.get("GATEHOUSE_NPM_PREFIX", Path.home() / ".cache/gatehouse/npm"))
    / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
)


@pytest.fixture(scope="module")
def gw(mock_url):
    assert EVERYTHING.exists(), f"{EVERYTHING} missing: run scripts/install-peers"
    config = f"""
model_list:
  - model_name: gpt-native
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {mock_url}/v1
      api_key: sk-upstream
  - model_name: local-llm
    litellm_params:
      model: hosted_vllm/qwen3-coder
      api_base: {mock_url}/v1
      api_key: sk-upstream
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-haiku-20240307
      api_base: {mock_url}
      api_key: sk-upstream
mcp_servers:
  ev:
    transport: stdio
    command: node
    args: ["{EVERYTHING}", "stdio"]
general_settings:
  master_key: {KEY}
"""
    proc = start_gateway(config)
    yield proc
    proc.stop()


def oai(gw):
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0)


def ant(gw):
    return anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)


@pytest.mark.parametrize("model", ["gpt-native", "local-llm", "claude"])
def test_responses_create(gw, model):
    resp = oai(gw).responses.create(model=model, input="hello responses", instructions="be brief")
    assert resp.status == "completed"
    assert resp.output_text == "Echo: hello responses"
    assert resp.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["gpt-native", "local-llm", "claude"])
def test_responses_stream(gw, model):
    stream = oai(gw).responses.create(model=model, input="stream responses", stream=True)
    kinds, text, final = [], "", None
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            final = event.response
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert text == "Echo: stream responses"
    assert final.output_text == "Echo: stream responses"
    assert final.usage.output_tokens > 0


def test_responses_function_tools_round_trip(gw):
    tools = [{"type": "function", "name": "get_weather", "description": "weather",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    c = oai(gw)
    ask = 'CALL get_weather {"city": "Oslo"}'
    first = c.responses.create(model="local-llm", input=ask, tools=tools)
    calls = [i for i in first.output if i.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Oslo"}
    second = c.responses.create(
        model="local-llm", tools=tools, previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
    )
    assert second.output_text == "Tool said: sunny"
    assert c.responses.retrieve(second.id).output_text == "Tool said: sunny"
    c.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(second.id)


def test_responses_mcp_tools_run_in_the_gateway(gw):
    resp = oai(gw).responses.create(
        model="local-llm",
        input='CALL ev-echo {"message": "via sdk"}',
        tools=[{"type": "mcp", "server_label": "ev", "require_approval": "never"}],
    )
    kinds = [i.type for i in resp.output]
    assert kinds[0] == "mcp_list_tools"
    assert "mcp_call" in kinds
    call = next(i for i in resp.output if i.type == "mcp_call")
    assert call.name == "echo" and call.server_label == "ev" and call.error is None
    assert resp.output_text == "Tool said: Echo: via sdk"


@pytest.mark.parametrize("model", ["claude", "local-llm"])
def test_messages_create(gw, model):
    msg = ant(gw).messages.create(
        model=model, max_tokens=64, system="be brief",
        messages=[{"role": "user", "content": "hello messages"}],
    )
    assert msg.content[0].text == "Echo: hello messages"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["claude", "local-llm"])
def test_messages_stream(gw, model):
    with ant(gw).messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "stream messages"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: stream messages"
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("model", ["claude", "local-llm"])
def test_messages_tool_use_round_trip(gw, model):
    tools = [{"name": "get_weather", "description": "weather",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    c = ant(gw)
    ask = 'CALL get_weather {"city": "Oslo"}'
    first = c.messages.create(model=model, max_tokens=64, tools=tools,
                              messages=[{"role": "user", "content": ask}])
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Oslo"}
    second = c.messages.create(model=model, max_tokens=64, tools=tools, messages=[
        {"role": "user", "content": ask},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
    ])
    assert second.content[0].text == "Tool said: sunny"


def test_messages_errors_map_to_sdk_exceptions(gw):
    with pytest.raises(anthropic.NotFoundError):
        ant(gw).messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    bad = anthropic.Anthropic(base_url=gw.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as err:
        bad.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert err.value.body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("model", ["claude", "local-llm"])
def test_count_tokens(gw, model):
    count = ant(gw).messages.count_tokens(
        model=model, messages=[{"role": "user", "content": "how many tokens is this?"}],
    )
    assert count.input_tokens > 0
