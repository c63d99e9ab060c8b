"""The official openai Python SDK against Gatehouse, unmodified."""

import openai
import pytest

from conftest import MASTER_KEY, VIRTUAL_KEY, read_chat_stream


def client(gateway, key=MASTER_KEY):
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_chat_completion(gateway):
    resp = client(gateway).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello sdk"}]
    )
    assert resp.choices[0].message.content == "Echo: hello sdk"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens > 0


def test_chat_stream_with_usage(gateway):
    stream = client(gateway).chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "stream this"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = read_chat_stream(stream)
    assert text == "Echo: stream this"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_tool_calls_round_trip(gateway):
    tools = [{
        "type": "function",
        "function": {"name": "get_weather", "description": "weather",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }]
    c = client(gateway)
    first = c.chat.completions.create(
        model="gpt-test", tools=tools,
        messages=[{"role": "user", "content": 'CALL get_weather {"city": "Oslo"}'}],
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    second = c.chat.completions.create(
        model="gpt-test", tools=tools,
        messages=[
            {"role": "user", "content": 'CALL get_weather {"city": "Oslo"}'},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
    )
    assert second.choices[0].message.content == "Tool said: sunny, 21C"


def test_models_are_scoped_by_key(gateway):
    assert [m.id for m in client(gateway).models.list()] == ["gpt-test", "embed-test", "claude-test"]
    assert [m.id for m in client(gateway, VIRTUAL_KEY).models.list()] == ["gpt-test"]


def test_embeddings(gateway):
    resp = client(gateway).embeddings.create(model="embed-test", input=["a", "b"], dimensions=4)
    assert len(resp.data) == 2 and len(resp.data[0].embedding) == 4


def test_errors_map_to_sdk_exceptions(gateway):
    with pytest.raises(openai.AuthenticationError):
        client(gateway, "sk-wrong").models.list()
    with pytest.raises(openai.NotFoundError) as e:
        client(gateway).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert "gpt-test" in str(e.value)
    with pytest.raises(openai.PermissionDeniedError):
        client(gateway, VIRTUAL_KEY).embeddings.create(model="embed-test", input="x")
    with pytest.raises(openai.BadRequestError):
        client(gateway).chat.completions.create(model="gpt-test", messages=[])
