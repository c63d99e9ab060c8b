"""OpenTelemetry traces of one chat request with a tool call, received by a real OTLP/HTTP
endpoint and decoded with the official opentelemetry-proto package: the spans, their
parent links (under the client's traceparent) and their GenAI attributes."""

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conftest import start_gateway

NPM = Path(os.environ.get("GATEHOUSE_NPM_PREFIX", Path.home() / ".cache/gatehouse/npm")) / "node_modules"
EVERYTHING = NPM / "@modelcontextprotocol/server-everything/dist/index.js"
KEY = "sk-master-otel-py"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


class Receiver:
    """POST /v1/traces, decoded as ExportTraceServiceRequest; the spans kept."""

    def __init__(self):
        self.spans, self.resources, self.content_types = [], [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.content_types.append(self.headers["content-type"])
                req = ExportTraceServiceRequest.FromString(body)
                for rs in req.resource_spans:
                    receiver.resources.append(rs.resource)
                    for ss in rs.scope_spans:
                        receiver.spans.extend(ss.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def attrs(span):
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


@pytest.fixture(scope="module")
def traced(mock_url):
    assert EVERYTHING.exists(), f"{EVERYTHING} missing: run scripts/install-peers"
    receiver = Receiver()
    gw = start_gateway(f"""
model_list:
  - model_name: gpt-traced
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {mock_url}/v1
      api_key: sk-upstream
mcp_servers:
  ev:
    command: node
    args: ["{EVERYTHING}", "stdio"]
litellm_settings:
  callbacks: [otel]
general_settings:
  master_key: {KEY}
""", env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "gatehouse-test"})
    yield gw, receiver
    gw.stop()
    receiver.stop()


def wait_for(receiver, predicate, what):
    deadline = time.time() + 15
    while time.time() < deadline:
        if predicate(receiver.spans):
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}; got {[s.name for s in receiver.spans]}")


def test_spans_of_a_chat_request_with_a_tool_call(traced):
    gw, receiver = traced
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0)
    resp = client.chat.completions.create(
        model="gpt-traced",
        messages=[{"role": "user", "content": 'CALL ev-get-sum {"a": 2, "b": 3}'}],
        extra_headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01", "x-mcp-servers": "ev"},
    )
    assert "5" in resp.choices[0].message.content

    def complete(spans):
        names = [s.name for s in spans]
        return "chat gpt-traced" in names and names.count("chat gpt-4o-mini") >= 2 and \
            "execute_tool get-sum" in names and "tools/call get-sum" in names

    wait_for(receiver, complete, "spans missing")
    assert receiver.content_types[0] == "application/x-protobuf"
    service = {kv.key: kv.value.string_value for r in receiver.resources for kv in r.attributes}
    assert service["service.name"] == "gatehouse-test"

    by_name = {}
    for s in receiver.spans:
        by_name.setdefault(s.name, []).append(s)
    request = by_name["chat gpt-traced"][0]
    # Every span is in the client's trace; the request's parent is the client's span.
    assert all(s.trace_id.hex() == TRACE_ID for s in receiver.spans)
    assert request.parent_span_id.hex() == CLIENT_SPAN
    assert request.kind == Span.SPAN_KIND_SERVER
    a = attrs(request)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "gpt-traced"
    assert a["gen_ai.system"] == "openai"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gatehouse.cache_hit"] is False
    assert request.end_time_unix_nano >= request.start_time_unix_nano > 0

    # Two model rounds (the tool call, then the answer), each an attempt under the request.
    attempts = by_name["chat gpt-4o-mini"]
    assert len(attempts) == 2
    for at in attempts:
        assert at.parent_span_id == request.span_id
        assert at.kind == Span.SPAN_KIND_CLIENT
        aa = attrs(at)
        assert aa["gen_ai.system"] == "openai"
        assert aa["gen_ai.request.model"] == "gpt-4o-mini"
        assert aa["gatehouse.model_group"] == "gpt-traced"

    tool = by_name["execute_tool get-sum"][0]
    assert tool.parent_span_id == request.span_id
    ta = attrs(tool)
    assert ta["gen_ai.operation.name"] == "execute_tool"
    assert ta["gen_ai.tool.name"] == "get-sum"
    assert ta["gen_ai.tool.call.id"]
    assert ta["gatehouse.mcp.server"] == "ev"
    assert tool.status.code != Status.STATUS_CODE_ERROR

    mcp = by_name["tools/call get-sum"][0]
    assert mcp.parent_span_id == tool.span_id
    assert mcp.kind == Span.SPAN_KIND_CLIENT
    assert attrs(mcp)["mcp.method.name"] == "tools/call"
    # The tool ran between the two model rounds.
    first, second = sorted(attempts, key=lambda s: s.start_time_unix_nano)
    assert first.end_time_unix_nano <= tool.start_time_unix_nano
    assert tool.end_time_unix_nano <= second.start_time_unix_nano


def test_a_failed_request_has_an_error_status(traced):
    gw, receiver = traced
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0)
    before = len(receiver.spans)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-traced", messages=[{"role": "user", "content": "x"}],
            extra_body={"cache": "not an object"},
        )
    # A request refused before the pipeline's accounting has no request span; one the
    # upstream refused does. The mock refuses an unknown role.
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-traced", messages=[{"role": "wizard", "content": "x"}],
        )
    wait_for(receiver, lambda spans: len(spans) > before and any(
        s.status.code == Status.STATUS_CODE_ERROR and s.name == "chat gpt-traced" for s in spans[before:]),
        "no error span")
