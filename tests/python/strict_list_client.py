"""The official Python MCP SDK as a strict client of mcp-orchestra.

Usage: strict_list_client.py <mcp-orchestra binary> <config.yaml> <tool> <arguments as JSON>

Launches the gateway over stdio, lists its tools (the SDK validates every definition),
calls <tool> with <arguments> (the SDK re-lists to find its output schema, so this fails too
when the list does) and the health tool, and prints ONE JSON object with what it observed.
It asserts nothing itself (tests/tests/hardening_children.rs does). A step that raises is
recorded as "<ExceptionType>: <message>" under "errors" and the run goes on.
"""

import json
import os
import sys
import traceback

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def scenario(binary: str, config: str, tool: str, arguments: dict, obs: dict) -> None:
    errors = obs["errors"]
    params = StdioServerParameters(
        command=binary, args=["serve", "-c", config], env=dict(os.environ)
    )

    async def step(name, fn):
        try:
            await fn()
        except Exception as e:  # recorded, asserted on by the Rust side
            errors[name] = f"{type(e).__name__}: {e}"
            obs.setdefault("tracebacks", {})[name] = traceback.format_exc()

    async with stdio_client(params, errlog=sys.stderr) as (read, write):
        async with ClientSession(read, write) as session:
            await step("initialize", session.initialize)
            if "initialize" in errors:
                return

            async def list_tools():
                tools = await session.list_tools()
                obs["tools"] = {t.name: t.model_dump(by_alias=True, exclude_none=True) for t in tools.tools}

            await step("list_tools", list_tools)

            async def call():
                r = await session.call_tool(tool, arguments)
                obs["call_is_error"] = bool(r.isError)
                obs["call_text"] = r.content[0].text if r.content else None

            await step("call", call)

            async def health():
                r = await session.call_tool("orchestrator_health", {})
                obs["health"] = r.structuredContent

            await step("health", health)


def main() -> None:
    binary, config, tool, arguments = sys.argv[1:5]
    obs: dict = {"errors": {}}
    anyio.run(scenario, binary, config, tool, json.loads(arguments), obs)
    print(json.dumps(obs))


if __name__ == "__main__":
    main()
