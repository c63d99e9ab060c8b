"""The official openai Python SDK, unmodified, against a model group with a failing member:
the router answers from the healthy member and the SDK never sees an error."""

import asyncio

import openai
import pytest

from conftest import BIN_DIR, MASTER_KEY, Process, start_gateway


def mock(*extra):
    return Process(
        [str(BIN_DIR / "gatehouse-mock"), "--port", "0", *extra],
        r"gatehouse-mock listening on (http://\S+)",
    )


@pytest.fixture(scope="module")
def router_gateway():
    bad = mock("--fail-every-n", "1", "--fail-status", "500")
    overloaded = mock("--fail-every-n", "1", "--fail-status", "503")
    good = mock()
    # `order` makes both failing members the first ones asked on every request; a high
    # `allowed_fails` keeps them in rotation, so every request goes through a failure.
    config = f"""
model_list:
  - model_name: gpt-group
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{bad.url}", api_key: sk-up, order: 1}}
    model_info: {{id: bad}}
  - model_name: gpt-group
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{overloaded.url}", api_key: sk-up, order: 2}}
    model_info: {{id: overloaded}}
  - model_name: gpt-group
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{good.url}", api_key: sk-up, order: 3}}
    model_info: {{id: good}}
router_settings:
  allowed_fails: 1000
general_settings:
  master_key: {MASTER_KEY}
"""
    gw = start_gateway(config)
    yield gw
    gw.stop()
    for m in (bad, overloaded, good):
        m.stop()


def client(gw):
    # No SDK retries: a failure the gateway let through would surface here.
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)


def test_plain_completion_hides_the_failing_members(router_gateway):
    c = client(router_gateway)
    for i in range(3):
        raw = c.chat.completions.with_raw_response.create(
            model="gpt-group", messages=[{"role": "user", "content": f"hello {i}"}]
        )
        assert raw.headers["x-litellm-model-id"] == "good"
        resp = raw.parse()
        assert resp.choices[0].message.content == f"Echo: hello {i}"
        assert resp.choices[0].finish_reason == "stop"
        assert resp.usage.total_tokens > 0


def test_streamed_completion_hides_the_failing_members(router_gateway):
    c = client(router_gateway)
    for include_usage in (False, True):
        kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
        stream = c.chat.completions.create(
            model="gpt-group",
            messages=[{"role": "user", "content": "stream through the router"}],
            stream=True,
            **kwargs,
        )
        text, finish, usage, empty_choices = "", None, None, 0
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            else:
                empty_choices += 1
            if chunk.usage:
                usage = chunk.usage
        assert text == "Echo: stream through the router"
        assert finish == "stop"
        if include_usage:
            assert usage is not None and usage.completion_tokens > 0
        else:
            assert usage is None and empty_choices == 0, "usage the client did not ask for"


def test_async_stream_hides_the_failing_members(router_gateway):
    async def run():
        c = openai.AsyncOpenAI(base_url=f"{router_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)
        stream = await c.chat.completions.create(
            model="gpt-group", messages=[{"role": "user", "content": "async"}], stream=True
        )
        text = ""
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        await c.close()
        return text

    async def concurrently():
        return await asyncio.wait_for(asyncio.gather(*(run() for _ in range(5))), 30)

    texts = asyncio.run(concurrently())
    assert texts == ["Echo: async"] * 5
