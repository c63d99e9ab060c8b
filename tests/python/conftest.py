"""Fixtures that run the real binaries: the faithful vendor mock and the gateway."""

import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

BIN_DIR = Path(os.environ.get("GATEHOUSE_BIN_DIR", Path(__file__).resolve().parents[2] / "target" / "debug"))
MASTER_KEY = "sk-master-python-tests"
VIRTUAL_KEY = "sk-virtual-python-tests"


class Process:
    """A child process whose stderr/stdout lines are collected; waits for a ready line."""

    def __init__(self, args, ready_pattern, env=None):
        self.lines = []
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        found = threading.Event()
        self.url = None

        def pump():
            for line in self.proc.stdout:
                self.lines.append(line)
                m = re.search(ready_pattern, line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(20):
            self.stop()
            raise RuntimeError(f"{args[0]} did not start:\n{''.join(self.lines)}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def mock_url():
    mock = Process(
        [str(BIN_DIR / "gatehouse-mock"), "--port", "0", "--api-key", "sk-upstream"],
        r"gatehouse-mock listening on (http://\S+)",
    )
    yield mock.url
    mock.stop()


def read_chat_stream(stream):
    """The text, finish reason and usage of an openai SDK chat stream."""
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    return text, finish, usage


def start_gateway(config: str, env=None, args=()) -> Process:
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "config.yaml"
    path.write_text(config)
    return Process(
        [str(BIN_DIR / "gatehouse"), "--config", str(path), "--port", "0", *args],
        r"listening on (https?://[0-9.:\[\]]+)",
        env=env,
    )


@pytest.fixture(scope="session")
def gateway(mock_url):
    config = f"""
model_list:
  - model_name: gpt-test
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {mock_url}/v1
      api_key: sk-upstream
  - model_name: embed-test
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: {mock_url}
      api_key: sk-upstream
  - model_name: claude-test
    litellm_params:
      model: anthropic/claude-3-haiku-20240307
      api_base: {mock_url}
      api_key: sk-upstream
general_settings:
  master_key: {MASTER_KEY}
virtual_keys:
  - api_key: {VIRTUAL_KEY}
    key_alias: python-tests
    models: [gpt-test]
"""
    gw = start_gateway(config)
    yield gw
    gw.stop()
