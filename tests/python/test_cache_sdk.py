"""The official openai SDK sees a cached answer: the same completion, and the hit header."""

import openai
import pytest

from conftest import MASTER_KEY, start_gateway


@pytest.fixture(scope="module")
def cached_gateway(mock_url):
    gw = start_gateway(f"""
model_list:
  - model_name: gpt-cached
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {mock_url}/v1
      api_key: sk-upstream
litellm_settings:
  cache: true
  cache_params: {{type: local, ttl: 60}}
general_settings:
  master_key: {MASTER_KEY}
""")
    yield gw
    gw.stop()


def client(gw):
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)


def test_second_identical_request_is_a_cache_hit(cached_gateway):
    c = client(cached_gateway)
    messages = [{"role": "user", "content": "cache me, sdk"}]
    first = c.chat.completions.with_raw_response.create(model="gpt-cached", messages=messages)
    assert first.headers.get("x-litellm-cache-key") is None
    second = c.chat.completions.with_raw_response.create(model="gpt-cached", messages=messages)
    key = second.headers.get("x-litellm-cache-key")
    assert key is not None and len(key) == 64
    a, b = first.parse(), second.parse()
    # The mock numbers its answers: the same id means no second upstream call.
    assert a.id == b.id
    assert b.choices[0].message.content == "Echo: cache me, sdk"


def test_cached_stream_replays_for_the_sdk(cached_gateway):
    c = client(cached_gateway)
    messages = [{"role": "user", "content": "stream from cache"}]

    def run():
        text, ids = "", set()
        for chunk in c.chat.completions.create(
            model="gpt-cached", messages=messages, stream=True,
            stream_options={"include_usage": True},
        ):
            ids.add(chunk.id)
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        return text, ids

    first, second = run(), run()
    assert first[0] == second[0] == "Echo: stream from cache"
    assert first[1] == second[1]


def test_no_cache_asks_upstream_again(cached_gateway):
    c = client(cached_gateway)
    messages = [{"role": "user", "content": "fresh every time"}]
    a = c.chat.completions.create(model="gpt-cached", messages=messages)
    b = c.chat.completions.create(model="gpt-cached", messages=messages,
                                  extra_body={"cache": {"no-cache": True}})
    assert a.id != b.id
