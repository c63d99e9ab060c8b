"""`gatehouse` with no config, as a new user runs it: the providers in the environment
(here OpenAI and Anthropic keys, pointed at the mock) are served as wildcard routes and
the official SDKs use them unmodified."""

import tempfile

import anthropic
import openai
import pytest

from conftest import BIN_DIR, Process

# Every variable the gateway discovers from, emptied (empty counts as unset), so only
# what the test sets is found; Ollama is looked for on a closed port.
CLEARED = {
    name: ""
    for name in [
        "GEMINI_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_BEARER_TOKEN_BEDROCK",
        "GATEHOUSE_DEFAULT_UPSTREAM",
    ]
}


@pytest.fixture(scope="module")
def discovered(mock_url):
    env = {
        **CLEARED,
        "OLLAMA_HOST": "127.0.0.1:9",
        "OPENAI_API_KEY": "sk-upstream",
        "OPENAI_API_BASE": f"{mock_url}/v1",
        "ANTHROPIC_API_KEY": "sk-upstream",
        "ANTHROPIC_API_BASE": mock_url,
        "XDG_DATA_HOME": tempfile.mkdtemp(),
    }
    gw = Process(
        [str(BIN_DIR / "gatehouse"), "--port", "0"],
        r"listening on (http://[0-9.:\[\]]+)",
        env=env,
    )
    yield gw
    gw.stop()


def test_models_are_the_discovered_wildcards(discovered):
    client = openai.OpenAI(base_url=f"{discovered.url}/v1", api_key="unused-in-local-mode", max_retries=0)
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["anthropic/*", "openai/*"]
    log = "".join(discovered.lines)
    assert "serving openai/* (OPENAI_API_KEY, OPENAI_API_BASE)" in log
    assert "sk-upstream" not in log


def test_openai_sdk_reaches_both_vendors(discovered):
    client = openai.OpenAI(base_url=f"{discovered.url}/v1", api_key="unused-in-local-mode", max_retries=0)
    for model in ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"]:
        resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi there"}])
        assert resp.choices[0].message.content == "Echo: hi there", model


def test_anthropic_sdk_messages_on_the_anthropic_wildcard(discovered):
    client = anthropic.Anthropic(base_url=discovered.url, api_key="unused-in-local-mode", max_retries=0)
    msg = client.messages.create(
        model="anthropic/claude-3-5-haiku-latest",
        max_tokens=64,
        messages=[{"role": "user", "content": "hello messages"}],
    )
    assert msg.content[0].text == "Echo: hello messages"
