"""A 2026-07-28 MCP server written with the Python SDK 2.x server API.

Usage: modern_server.py PORT — serves streamable HTTP at http://127.0.0.1:PORT/mcp.
Tools: `add` (a + b), `greet` (elicits a name from the client through MRTR, then greets),
`whoami` (the protocol version the request came in with), `count` (reports progress n
times, then answers), `sleepy` (records its own cancellation), `regional` (its `region` argument must also
come as the `Mcp-Param-Region` header, which the SDK checks).
Resource: `note://hello` (reading another URI is the SDK's not-found error, -32602).
MRTR beyond tools: prompt `welcome` and resource template `secret://{topic}` answer an
`InputRequiredResult` (elicitation) until the client's retry carries a name.
Listen streams: `drop_listeners(refuse)` ends every open `subscriptions/listen` stream the
way the SDK does at its backlog cap (a final result, then the stream closes) and refuses
the next `refuse` listen requests; `grow(name)` adds a tool and announces it; `touch(uri)`
announces that a resource changed.
"""

import sys
from typing import Annotated

from pydantic import BaseModel, Field

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver import Elicit, Resolve
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp_types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult


class Name(BaseModel):
    name: str


def ask_name() -> Elicit[Name]:
    return Elicit("What is your name?", Name)


class FlakyBus(InMemorySubscriptionBus):
    """Refuses the next `refuse` subscriptions: that listen request fails before its ack."""

    refuse = 0

    def subscribe(self, listener):
        if self.refuse > 0:
            self.refuse -= 1
            raise RuntimeError("listen refused by the test server")
        return super().subscribe(listener)


bus = FlakyBus()
server = MCPServer("modern-py", subscriptions=bus)


def elicited_name(ctx: Context, question: str) -> str | InputRequiredResult:
    """The name the client's retry answered, or the MRTR round asking for it."""
    answer = (ctx.input_responses or {}).get("name")
    content = getattr(answer, "content", None) or {}
    if "name" in content:
        return content["name"]
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    ask = ElicitRequest(params=ElicitRequestFormParams(message=question, requested_schema=schema))
    return InputRequiredResult(input_requests={"name": ask})


@server.prompt()
def welcome(ctx: Context) -> str | InputRequiredResult:
    """A welcome for whoever the client says it is."""
    name = elicited_name(ctx, "Who is being welcomed?")
    return name if isinstance(name, InputRequiredResult) else f"Welcome, {name}!"


@server.resource("secret://{topic}")
def secret(topic: str, ctx: Context) -> str | InputRequiredResult:
    """A note only for a named reader."""
    name = elicited_name(ctx, f"Who wants the {topic} secret?")
    return name if isinstance(name, InputRequiredResult) else f"{topic} secret for {name}"


@server.tool()
def drop_listeners(refuse: int = 0) -> str:
    """Ends every open listen stream, then refuses the next `refuse` listen requests."""
    bus.refuse = refuse
    server._lowlevel_server._request_handlers["subscriptions/listen"].handler.close()
    return "dropped"


@server.tool()
async def touch(uri: str, ctx: Context) -> str:
    """Announces that the resource `uri` changed."""
    await ctx.notify_resource_updated(uri)
    return f"touched {uri}"


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Adds a tool called `name` and tells listeners the tool list changed."""
    server.add_tool(lambda: f"I am {name}", name=name, description="added at run time")
    await ctx.notify_tools_changed()
    return f"added {name}"


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
