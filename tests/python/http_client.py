"""Streamable HTTP end-to-end client for mcp-orchestra using the official Python MCP SDK.

Usage: http_client.py <url of /mcp> [<request headers as a JSON object>]

Connects to a running gateway with the SDK's streamablehttp_client, runs a fixed scenario
(initialize, tools/list, a call, a call with progress, close) and prints ONE JSON object with
what it observed. It asserts nothing itself: the Rust test (tests/tests/http_front.rs) does.
"""

import json
import sys
import traceback

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def scenario(url: str, headers: dict | None, obs: dict) -> None:
    async with streamablehttp_client(url, headers=headers) as (read, write, get_session_id):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            obs["server_name"] = init.serverInfo.name
            obs["protocol_version"] = init.protocolVersion
            obs["session_id"] = get_session_id()
            tools = await session.list_tools()
            obs["tools"] = sorted(t.name for t in tools.tools)
            r = await session.call_tool("everything__echo", {"message": "over http"})
            obs["echo_text"] = r.content[0].text if r.content else None
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
    obs["closed"] = True


def main() -> int:
    obs: dict = {}
    try:
        headers = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
        anyio.run(scenario, sys.argv[1], headers, obs)
    except BaseException as e:  # recorded, asserted on by the Rust side
        obs["error"] = f"{type(e).__name__}: {e}"
        obs["traceback"] = traceback.format_exc()
    print(json.dumps(obs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
