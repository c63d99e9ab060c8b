"""A handshake-era MCP server over stdio, written with the Python SDK 1.x (FastMCP).

Usage: handshake_server.py — speaks MCP on stdin/stdout (1.x knows no 2026-07-28, so a
client's `server/discover` probe fails and it falls back to `initialize`).
Prompt `welcome` and resource template `secret://{topic}` ask the client for a name with
an `elicitation/create` request while they are being served, the handshake era's way.
"""

from mcp.server.fastmcp import Context, FastMCP
from pydantic import BaseModel

server = FastMCP("handshake-py")


class Name(BaseModel):
    name: str


async def ask(ctx: Context, question: str) -> str:
    answer = await ctx.elicit(question, Name)
    return answer.data.name if answer.action == "accept" else "nobody"


@server.prompt()
async def welcome(ctx: Context) -> str:
    """A welcome for whoever the client says it is."""
    return f"Welcome, {await ask(ctx, 'Who is being welcomed?')}!"


@server.resource("secret://{topic}")
async def secret(topic: str, ctx: Context) -> str:
    """A note only for a named reader."""
    return f"{topic} secret for {await ask(ctx, f'Who wants the {topic} secret?')}"


server.run("stdio")
