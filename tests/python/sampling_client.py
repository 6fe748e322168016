"""Sampling through mcp-orchestra with the official Python MCP SDK (1.x) as the client.

Usage: sampling_client.py <mcp-orchestra binary> <config.yaml>

Launches the gateway over stdio, declares sampling (a sampling_callback), waits until
server-everything's `trigger-sampling-request` is listed, calls it and prints ONE JSON object
with what it observed: the tool's text and how many times the callback ran. It asserts
nothing itself (tests/tests/server_requests.rs does).
"""

import json
import os
import sys
import traceback

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

TOOL = "everything__trigger-sampling-request"


async def scenario(binary: str, config: str, obs: dict) -> None:
    params = StdioServerParameters(
        command=binary, args=["serve", "-c", config], env=dict(os.environ)
    )
    obs["callback_calls"] = 0

    async def sample(context, params: types.CreateMessageRequestParams):
        obs["callback_calls"] += 1
        obs["prompt"] = params.messages[0].content.text
        return types.CreateMessageResult(
            role="assistant",
            model="python-test-model",
            content=types.TextContent(type="text", text="python-sampled-4711"),
            stopReason="endTurn",
        )

    async with stdio_client(params, errlog=sys.stderr) as (read, write):
        async with ClientSession(read, write, sampling_callback=sample) as session:
            await session.initialize()
            # The tool is listed once server-everything is ready (bounded by the caller).
            with anyio.fail_after(60):
                while TOOL not in {t.name for t in (await session.list_tools()).tools}:
                    await anyio.sleep(0.2)
            r = await session.call_tool(TOOL, {"prompt": "from python", "maxTokens": 5})
            obs["is_error"] = bool(r.isError)
            obs["text"] = "".join(c.text for c in r.content if c.type == "text")


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: sampling_client.py <mcp-orchestra> <config.yaml>", file=sys.stderr)
        return 2
    obs = {"errors": {}}
    try:
        anyio.run(scenario, sys.argv[1], sys.argv[2], obs)
    except BaseException as e:  # noqa: BLE001 - reported, not swallowed
        obs["errors"]["session"] = f"{type(e).__name__}: {e}"
        obs["traceback"] = traceback.format_exc()
    print(json.dumps(obs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
