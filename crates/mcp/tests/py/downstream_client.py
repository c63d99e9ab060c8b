"""Drives Gatehouse's /mcp endpoint with the official Python MCP SDK (2.x).

Usage: downstream_client.py URL [--header K=V]... [--call NAME JSON_ARGS]... [--read URI]...
                            [--prompt NAME]...
                            [--sampling-reply TEXT] [--elicit-reply JSON] [--legacy-sse]
                            [--mode auto|legacy|2026-07-28]
With --legacy-sse, URL is the legacy SSE endpoint (/mcp/sse) and mode is 'legacy'.
--mode picks the era: 'auto' (the SDK's default: server/discover first, handshake on
fallback), 'legacy' (pinned to the initialize handshake) or a modern version.
Prints one JSON object: negotiated protocol, server name, tool names, prompt names,
resource URIs, per call the result text, isError and the progress values seen, per read
the contents' URI and text, per prompt its first message's text.
"""

import argparse
import asyncio
import json
import sys

from mcp import Client, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--call", nargs=2, action="append", default=[], metavar=("NAME", "ARGS"))
    p.add_argument("--read", action="append", default=[])
    p.add_argument("--prompt", action="append", default=[])
    p.add_argument("--sampling-reply")
    p.add_argument("--elicit-reply")
    p.add_argument("--legacy-sse", action="store_true")
    p.add_argument("--mode", default="auto")
    a = p.parse_args()
    sampled: list = []

    async def sampling(context, params):
        sampled.append(params.messages[0].content.text)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=a.sampling_reply),
            model="test-model",
        )

    elicited: list = []

    async def elicitation(context, params):
        elicited.append(params.message)
        return types.ElicitResult(action="accept", content=json.loads(a.elicit_reply))

    extra: dict = {"mode": a.mode}
    if a.sampling_reply:
        extra["sampling_callback"] = sampling
    if a.elicit_reply:
        extra["elicitation_callback"] = elicitation
    headers = dict(h.split("=", 1) for h in a.header)

    http = create_mcp_http_client(headers=headers)
    out: dict = {}
    async with http:
        if a.legacy_sse:
            transport = sse_client(a.url, headers=headers)
            extra["mode"] = "legacy"
        else:
            transport = streamable_http_client(a.url, http_client=http)
        async with Client(transport, **extra) as client:
            out["protocol"] = client.session.protocol_version
            info = client.session.server_info
            out["server"] = info.name if info else None
            tools = await client.list_tools()
            out["tools"] = [t.name for t in tools.tools]
            try:
                prompts = await client.list_prompts()
                out["prompts"] = [x.name for x in prompts.prompts]
            except Exception as e:  # noqa: BLE001 - report, the test decides
                out["prompts_error"] = str(e)
            resources = await client.list_resources()
            out["resources"] = [str(r.uri) for r in resources.resources]
            out["calls"] = []
            for name, args in a.call:
                seen: list = []

                async def on_progress(progress, total, message, seen=seen):
                    seen.append(progress)

                r = await client.call_tool(name, json.loads(args), progress_callback=on_progress)
                texts = [c.text for c in r.content if getattr(c, "type", "") == "text"]
                out["calls"].append({"name": name, "text": "\n".join(texts), "isError": bool(r.is_error), "progress": seen})
            out["reads"] = []
            for uri in a.read:
                r = await client.read_resource(uri)
                out["reads"].append({"uri": str(r.contents[0].uri), "text": getattr(r.contents[0], "text", None)})
            out["prompts_got"] = []
            for name in a.prompt:
                r = await client.get_prompt(name)
                out["prompts_got"].append({"name": name, "text": getattr(r.messages[0].content, "text", None)})
    out["sampled"] = sampled
    out["elicited"] = elicited
    json.dump(out, sys.stdout)


asyncio.run(main())
