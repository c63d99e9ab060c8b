"""A 2026-07-28 MCP server written with the Python SDK 2.x server API.

Usage: modern_server.py PORT — serves streamable HTTP at http://127.0.0.1:PORT/mcp.
Tools: `add` (a + b), `greet` (elicits a name from the client through MRTR, then greets),
`whoami` (the protocol version the request came in with), `count` (reports progress n
times, then answers), `sleepy` (records its own cancellation), `regional` (its `region` argument must also
come as the `Mcp-Param-Region` header, which the SDK checks).
Resource: `note://hello` (reading another URI is the SDK's not-found error, -32602).
"""

import sys
from typing import Annotated

from pydantic import BaseModel, Field

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver import Elicit, Resolve


class Name(BaseModel):
    name: str


def ask_name() -> Elicit[Name]:
    return Elicit("What is your name?", Name)


server = MCPServer("modern-py")


@server.tool()
def add(a: int, b: int) -> str:
    """Adds two integers."""
    return f"sum={a + b}"


@server.tool()
def greet(who: Annotated[Name, Resolve(ask_name)]) -> str:
    """Greets whoever the client says it is."""
    return f"Hello, {who.name}!"


@server.tool()
def whoami(ctx: Context) -> str:
    """The protocol version of this request."""
    return f"protocol={ctx.protocol_version}"


@server.tool()
async def count(n: int, ctx: Context) -> str:
    """Counts to n, reporting progress at each step."""
    for i in range(n):
        await ctx.report_progress(i + 1, n)
    return f"counted {n}"


@server.tool()
async def sleepy(marker: str, ctx: Context) -> str:
    """Reports progress (so the answer is an SSE stream), then sleeps for a minute;
    writes `marker` (a file path) if it is cancelled first."""
    import anyio

    await ctx.report_progress(0, 1)
    try:
        await anyio.sleep(60)
    except anyio.get_cancelled_exc_class():
        with open(marker, "w") as f:
            f.write("cancelled")
        raise
    return "woke up"


@server.tool()
def regional(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], q: str) -> str:
    """Answers from a region; `region` is mirrored in the Mcp-Param-Region header."""
    return f"{q} from {region}"


@server.resource("note://hello")
def hello_note() -> str:
    """A resource, so reading one that does not exist has something to miss."""
    return "hello from a 2026-07-28 resource"


server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
