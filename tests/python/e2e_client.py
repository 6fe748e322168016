"""End-to-end client for mcp-orchestra using the official Python MCP SDK.

Usage: e2e_client.py <mcp-orchestra binary> <config.yaml>

Launches the gateway itself over stdio (the SDK's stdio_client), runs a fixed scenario and
prints ONE JSON object with what it observed to stdout. It asserts nothing itself: the Rust
test (tests/tests/python_client.rs) does, so each check can fail with a clear message.
A step that raises records "<ExceptionType>: <message>" under "errors" and the run goes on.
The process environment (including the test's marker variable) is passed to the gateway whole.
"""

import json
import os
import sys
import time
import traceback

import anyio
from mcp import ClientSession, McpError, StdioServerParameters
from mcp.client.stdio import stdio_client


async def scenario(binary: str, config: str, obs: dict) -> None:
    errors = obs["errors"]
    params = StdioServerParameters(
        command=binary,
        args=["serve", "-c", config],
        env=dict(os.environ),
    )

    async def step(name, fn):
        try:
            await fn()
        except Exception as e:  # recorded, asserted on by the Rust side
            errors[name] = f"{type(e).__name__}: {e}"
            obs.setdefault("tracebacks", {})[name] = traceback.format_exc()

    async with stdio_client(params, errlog=sys.stderr) as (read, write):
        async with ClientSession(read, write) as session:
            async def initialize():
                init = await session.initialize()
                obs["server_name"] = init.serverInfo.name
                obs["protocol_version"] = init.protocolVersion
                obs["tools_list_changed"] = bool(
                    init.capabilities.tools and init.capabilities.tools.listChanged
                )

            await step("initialize", initialize)
            if "initialize" in errors:
                return

            async def list_tools():
                tools = await session.list_tools()
                obs["tools"] = sorted(t.name for t in tools.tools)

            await step("list_tools", list_tools)

            async def echo():
                r = await session.call_tool("everything__echo", {"message": "from python"})
                obs["echo_is_error"] = bool(r.isError)
                obs["echo_text"] = r.content[0].text if r.content else None

            await step("echo", echo)

            async def progress():
                seen = []

                async def on_progress(progress, total, message):
                    seen.append({"progress": progress, "total": total})

                r = await session.call_tool(
                    "everything__trigger-long-running-operation",
                    {"duration": 1, "steps": 2},
                    progress_callback=on_progress,
                )
                obs["progress_is_error"] = bool(r.isError)
                obs["progress_text"] = r.content[0].text if r.content else None
                obs["progress_callbacks"] = seen

            await step("progress", progress)

            async def time_call():
                r = await session.call_tool("time__get_current_time", {"timezone": "UTC"})
                obs["time_is_error"] = bool(r.isError)
                obs["time_text"] = r.content[0].text if r.content else None

            await step("time", time_call)

            async def health():
                r = await session.call_tool("orchestrator_health", {})
                obs["health_is_error"] = bool(r.isError)
                obs["health"] = r.structuredContent

            await step("health", health)

            async def unknown():
                try:
                    await session.call_tool("everything__no_such_tool", {})
                except McpError as e:
                    obs["unknown_error"] = {"code": e.error.code, "message": e.error.message}
                else:
                    obs["unknown_error"] = None

            await step("unknown_tool", unknown)

            # The session still works after an error.
            async def after():
                r = await session.call_tool("everything__echo", {"message": "after error"})
                obs["echo_after_error_text"] = r.content[0].text if r.content else None

            await step("echo_after_error", after)
        obs["closing_started"] = True
        obs["_close_t0"] = time.monotonic()
    # stdio_client closes the gateway's stdin, waits up to 2 s, then terminates it.
    obs["shutdown_seconds"] = time.monotonic() - obs.pop("_close_t0")


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: e2e_client.py <mcp-orchestra> <config.yaml>", file=sys.stderr)
        return 2
    obs = {"errors": {}}
    try:
        anyio.run(scenario, sys.argv[1], sys.argv[2], obs)
    except BaseException as e:  # noqa: BLE001 - reported, not swallowed
        obs["errors"]["session"] = f"{type(e).__name__}: {e}"
        obs.setdefault("tracebacks", {})["session"] = traceback.format_exc()
    obs.pop("_close_t0", None)
    print(json.dumps(obs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
