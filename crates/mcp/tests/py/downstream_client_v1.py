"""Drives Gatehouse's /mcp endpoint with the Python MCP SDK 1.x API (what Open WebUI uses).

Usage: downstream_client_v1.py URL [--header K=V]... [--call NAME JSON_ARGS]...
Prints one JSON object: negotiated protocol, tool names, per call the result text and
isError and the progress values seen.
"""

import argparse
import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--call", nargs=2, action="append", default=[], metavar=("NAME", "ARGS"))
    a = p.parse_args()
    headers = dict(h.split("=", 1) for h in a.header)
    out: dict = {}
    async with streamablehttp_client(a.url, headers=headers) as (read, write, _session_id):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["protocol"] = init.protocolVersion
            tools = await session.list_tools()
            out["tools"] = [t.name for t in tools.tools]
            out["calls"] = []
            for name, args in a.call:
                seen: list = []

                async def on_progress(progress, total, message, seen=seen):
                    seen.append(progress)

                r = await session.call_tool(name, json.loads(args), progress_callback=on_progress)
                texts = [c.text for c in r.content if getattr(c, "type", "") == "text"]
                out["calls"].append({"name": name, "text": "\n".join(texts), "isError": bool(r.isError), "progress": seen})
    json.dump(out, sys.stdout)


asyncio.run(main())
