"""The unmodified openai SDK against every provider adapter through the gateway: plain,
streaming, parallel tool calls, multi-turn with tool results, errors. The faithful mock
speaks each vendor's own wire format (and checks Bedrock's SigV4 signatures)."""

import json

import openai
import pytest

from conftest import start_gateway

KEY = "sk-master-providers-py"
AWS_ID = "AKIAGATEHOUSEMOCK001"
AWS_SECRET = "gatehouse/mock/SECRET+key/000000000000000"
MODELS = ["gpt", "claude", "gem", "azure-gpt", "bedrock-claude"]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "weather",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
]


@pytest.fixture(scope="module")
def gw(mock_url):
    config = f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{mock_url}/v1", api_key: sk-upstream}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-3-5-haiku-latest, api_base: "{mock_url}", api_key: sk-upstream}}
  - model_name: gem
    litellm_params: {{model: gemini/gemini-2.0-flash, api_base: "{mock_url}", api_key: sk-upstream}}
  - model_name: azure-gpt
    litellm_params: {{model: azure/gpt4o-prod, api_base: "{mock_url}", api_key: sk-upstream, api_version: "2024-10-21"}}
  - model_name: bedrock-claude
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
      api_base: "{mock_url}"
      aws_region_name: us-west-2
      aws_access_key_id: {AWS_ID}
      aws_secret_access_key: "{AWS_SECRET}"
general_settings:
  master_key: {KEY}
"""
    g = start_gateway(config)
    yield g
    g.stop()


def client(gw):
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_plain(gw, model):
    resp = client(gw).chat.completions.create(model=model, messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello adapter"}])
    assert resp.choices[0].message.content == "Echo: hello adapter"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_stream(gw, model):
    stream = client(gw).chat.completions.create(
        model=model, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream through the adapter"}])
    text, finish, usage = "", None, None
    for chunk in stream:
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
        usage = chunk.usage or usage
    assert text == "Echo: stream through the adapter"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_parallel_tools_and_multi_turn(gw, model):
    c = client(gw)
    ask = 'CALL get_weather {"city": "Oslo"}\nCALL get_weather {"city": "Rome"}'
    first = c.chat.completions.create(model=model, tools=TOOLS, messages=[{"role": "user", "content": ask}])
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls
    assert [json.loads(t.function.arguments)["city"] for t in calls] == ["Oslo", "Rome"]
    assert len({t.id for t in calls}) == 2
    second = c.chat.completions.create(model=model, tools=TOOLS, messages=[
        {"role": "user", "content": ask},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "rainy"},
    ])
    text = second.choices[0].message.content
    assert text.startswith("Tool said:") and "sunny" in text and "rainy" in text


@pytest.mark.parametrize("model", MODELS)
def test_streamed_parallel_tool_calls(gw, model):
    stream = client(gw).chat.completions.create(
        model=model, stream=True, tools=TOOLS,
        messages=[{"role": "user", "content": 'CALL get_weather {"city": "A"}\nCALL get_weather {"city": "B"}'}])
    args, finish = {}, None
    for chunk in stream:
        for c in chunk.choices:
            for t in c.delta.tool_calls or []:
                args[t.index] = args.get(t.index, "") + (t.function.arguments or "")
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    assert [json.loads(args[i])["city"] for i in sorted(args)] == ["A", "B"]


@pytest.mark.parametrize("model", MODELS)
def test_bad_request_is_an_sdk_error(gw, model):
    with pytest.raises(openai.BadRequestError):
        client(gw).chat.completions.create(model=model, messages=[])
