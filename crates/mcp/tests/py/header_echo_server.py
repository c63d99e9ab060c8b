"""A tiny MCP server (official Python SDK 2.x) that shows which HTTP headers it got.

Usage: header_echo_server.py PORT [--sse]
Serves streamable HTTP at /mcp (or, with --sse, legacy HTTP+SSE at /sse).

Tools:
- `headers`: the headers of the HTTP request that carried this tools/call.
- `log`: `{"requests": [...]}`, every HTTP request the server received so far, in
  order, as {"method", "headers"} (headers lowercased), recorded below the SDK by an ASGI wrapper,
  so initialize, notifications, GET streams and other calls are all included.
"""

import sys

import uvicorn
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

LOG: list = []

mcp = MCPServer("header-echo")


@mcp.tool()
def headers(ctx: Context) -> dict:
    """The headers of the HTTP request carrying this call."""
    return {k.lower(): v for k, v in (ctx.headers or {}).items()}


@mcp.tool()
def log() -> dict:
    """Every HTTP request received so far."""
    return {"requests": LOG}


def recording(app):
    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            LOG.append(
                {
                    "method": scope["method"],
                    "headers": {k.decode().lower(): v.decode() for k, v in scope["headers"]},
                }
            )
        await app(scope, receive, send)

    return wrapped


def main() -> None:
    port = int(sys.argv[1])
    if "--sse" in sys.argv[2:]:
        app = mcp.sse_app(host="127.0.0.1")
    else:
        app = mcp.streamable_http_app(host="127.0.0.1")
    uvicorn.run(recording(app), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
