"""The design document's orchestration flows, run through mcp-orchestra with the official
Python MCP SDK, as a model would run them.

Usage: orchestrator_flows.py --flows NAME[,NAME...] --workdir DIR -- COMMAND [ARG...]

Launches COMMAND (the gateway) over stdio with the SDK line of the Python running this script
(1.x: `ClientSession` and `initialize`; 2.x: the high-level `mcp.Client`), then runs each named
flow (FLOWS below: the design document's Pattern 1 and 2, Technique 1 workflow_stages and
Technique 2 parallel_streams with a sync point), once `orchestrator_health` shows every
server ready:

1. `orchestrator_plan_task` with the flow's request, written in the document's shape;
2. while a subtask is ready: execute the first ready one, make ONE real tool call with a tool
   its guidance offers (`usable.tools`; the first it knows how to call, see `choose`), complete
   it with what the call answered and an artifact, and take the next ready list from the
   completion's answer;
3. `orchestrator_synthesize_results`, the synthesis resource, and `orchestrator_get_status`.

It asserts nothing itself: it prints ONE JSON document with everything it sent and got, and
the Rust test (tests/tests/orchestrator_flows.rs) checks it against what the plan means. The
only judgement here is schema validation: every orchestrator result's `structuredContent` is
validated against the tool's own `outputSchema` (jsonschema), and failures are recorded.

A step that raises records the exception and ends its flow; the next flow still runs. Every
request is bounded (REQUEST_TIMEOUT), and every loop by the plan's size.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import sys
import traceback
import warnings
from datetime import timedelta

import anyio
import jsonschema
from mcp import StdioServerParameters

SDK_MAJOR = int(importlib.metadata.version("mcp").split(".")[0])
warnings.filterwarnings("ignore", category=DeprecationWarning)

REQUEST_TIMEOUT = 20.0

# --- the flows, as the design document writes them (server names are the document's) -------

FLOWS = {
    # Pattern 1: Full-Stack Application Development, six specialists. Dependencies by the
    # planner's own id, by index and by title.
    "pattern1": {
        "description": "E-commerce platform with microservices",
        "subtasks": [
            {"id": "arch", "title": "System Architecture", "specialist": "system_architect", "domain": "research"},
            {"title": "Database Design", "specialist": "database_architect", "domain": "data_persistence", "depends_on": ["arch"]},
            {"title": "Service Implementation", "specialist": "backend_developer", "domain": "file_operations", "depends_on": [1]},
            {"title": "API Gateway Setup", "specialist": "api_specialist", "domain": "external_communication", "depends_on": ["Service Implementation"]},
            {"title": "Container Orchestration", "specialist": "devops_engineer", "domain": "containerization", "depends_on": [2]},
            {
                "title": "Monitoring & Observability",
                "specialist": "sre_specialist",
                "servers": ["monitoring"],
                "depends_on": ["API Gateway Setup", "Container Orchestration"],
            },
        ],
    },
    # Pattern 2: Data Pipeline with ML Integration, four phases, each with the servers the
    # document names for it.
    "pattern2": {
        "description": "Automated data processing pipeline with machine learning components",
        "context": {"scenario": "churn prediction", "datasets": ["crm", "billing"]},
        "subtasks": [
            {
                "title": "Data Discovery & Architecture",
                "specialist": "data_architect",
                "domain": "research",
                "servers": ["api-client", "database-mcp"],
            },
            {
                "title": "Pipeline Implementation",
                "specialist": "pipeline_engineer",
                "domain": "file_operations",
                "servers": ["file-system", "database-mcp"],
                "depends_on": [0],
            },
            {
                "title": "ML Integration",
                "specialist": "ml_engineer",
                "domain": "file_operations",
                "servers": ["api-client", "docker-mcp"],
                "depends_on": ["Pipeline Implementation"],
            },
            {
                "title": "Deployment & Monitoring",
                "specialist": "mlops_specialist",
                "domain": "containerization",
                "servers": ["database-mcp", "api-client"],
                "depends_on": ["ML Integration"],
            },
        ],
    },
    # Technique 1: Pipeline Orchestration, the document's workflow_stages verbatim; two stages
    # have subtasks of their own, "design" has none (it becomes one, for its orchestrator_role).
    "technique1": {
        "description": "Research, design and build a recommendation service",
        "subtasks": [
            {"title": "Survey data sources", "specialist": "researcher", "stage": "discovery", "domain": "research"},
            {"title": "Validate external APIs", "specialist": "api_specialist", "stage": "discovery"},
            {"title": "Implement services", "specialist": "backend_developer", "stage": "implementation"},
            {
                "title": "Containerize",
                "specialist": "devops_engineer",
                "stage": "implementation",
                "depends_on": ["Implement services"],
            },
        ],
        "workflow_stages": [
            {"stage": "discovery", "servers": ["web-search", "api-client"], "orchestrator_role": "research_coordinator"},
            {
                "stage": "design",
                "servers": ["database-mcp", "claude-code"],
                "orchestrator_role": "system_architect",
                "depends_on": ["discovery"],
            },
            {
                "stage": "implementation",
                "servers": ["claude-code", "docker-mcp"],
                "orchestrator_role": "implementation_manager",
                "depends_on": ["design"],
            },
        ],
    },
    # Technique 2: Parallel Execution with Synchronization, the document's parallel_streams
    # and sync_points verbatim.
    "technique2": {
        "description": "Web shop: frontend, backend and infrastructure in parallel",
        "parallel_streams": {
            "frontend_stream": {
                "servers": ["claude-code", "web-search"],
                "subtasks": ["ui_design", "component_implementation", "testing"],
            },
            "backend_stream": {
                "servers": ["claude-code", "database-mcp", "api-client"],
                "subtasks": ["api_design", "database_setup", "service_implementation"],
            },
            "infrastructure_stream": {
                "servers": ["docker-mcp", "monitoring", "api-client"],
                "subtasks": ["container_setup", "orchestration", "monitoring_config"],
            },
        },
        "sync_points": [
            {
                "after_streams": ["frontend_stream", "backend_stream"],
                "coordination": "integration_testing",
                "servers": ["claude-code", "api-client"],
            }
        ],
    },
}

# Which offered tool a subtask uses: the first of the best rank among `usable.tools` (child
# tool names; the real servers' own first, then the stand-ins', then any echo).
RANKS = [
    {"write_file", "create_entities"},
    {"write_code", "run_tests", "http_request", "compose_up", "create_dashboard"},
    {"echo"},
]


def child_name(tool: str) -> str:
    return tool.split("__", 1)[1] if "__" in tool else tool


def choose(offered: list[str]) -> str | None:
    for rank in RANKS:
        for tool in offered:
            if child_name(tool) in rank:
                return tool
    return None


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def arguments_for(tool: str, schema: dict, title: str, workdir: str) -> tuple[dict, str]:
    """The call's arguments and the artifact it produces."""
    name = child_name(tool)
    if name == "write_file":
        path = os.path.join(workdir, f"{slug(title)}.md")
        return {"path": path, "content": f"# {title}\n\nWritten while executing the subtask.\n"}, path
    if name == "create_entities":
        entity = {"name": title, "entityType": "subtask", "observations": [f"planned: {title}"]}
        return {"entities": [entity]}, f"memory://entities/{slug(title)}"
    # Echo-like tools: every required string property gets the title.
    props = (schema or {}).get("properties", {})
    required = (schema or {}).get("required", list(props))
    args = {k: f"{title}" for k in required if props.get(k, {}).get("type", "string") == "string"}
    return args, f"note://{slug(title)}"


def dump(value):
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return value


def first_text(result: dict) -> str:
    for block in result.get("content") or []:
        if block.get("type") == "text":
            return block.get("text", "")
    return ""


class Runner:
    def __init__(self, client, tools: dict, workdir: str, record: dict):
        self.c = client
        self.tools = tools
        self.workdir = workdir
        self.record = record

    async def call(self, name: str, arguments: dict) -> dict:
        with anyio.fail_after(REQUEST_TIMEOUT + 5):
            result = dump(await self.c.call_tool(name, arguments))
        out = {
            "is_error": bool(result.get("isError")),
            "text": first_text(result),
            "structured": result.get("structuredContent"),
            "meta": result.get("_meta"),
        }
        schema = (self.tools.get(name) or {}).get("outputSchema")
        if name.startswith("orchestrator_") and schema and not out["is_error"]:
            try:
                jsonschema.validate(out["structured"], schema)
            except jsonschema.ValidationError as e:
                self.record["schema_errors"].append(f"{name}: {e.message} at {list(e.absolute_path)}")
        return out

    async def flow(self, request: dict) -> None:
        rec = self.record
        plan = await self.call("orchestrator_plan_task", request)
        rec["plan"] = plan
        if plan["is_error"]:
            return
        planned = plan["structured"]
        parent = planned["parent_task_id"]
        titles = {s["id"]: s["title"] for s in planned["subtasks"]}
        ready = [r["id"] for r in planned["ready"]]
        # First come, first executed: streams that became ready together take turns.
        seen: list[str] = list(ready)
        limit = 3 * len(titles)
        while ready and len(rec["steps"]) < limit:
            seen += [r for r in ready if r not in seen]
            sid = min(ready, key=seen.index)
            step = {"subtask_id": sid, "title": titles.get(sid), "ready_before": ready}
            rec["steps"].append(step)
            step["execute"] = await self.call("orchestrator_execute_subtask", {"subtask_id": sid})
            if step["execute"]["is_error"]:
                break
            offered = step["execute"]["structured"]["usable"]["tools"]
            tool = choose(offered)
            title = titles[sid]
            if tool is None:
                results, artifact = f"{title}: no usable tool was offered", f"note://{slug(title)}"
            else:
                schema = (self.tools.get(tool) or {}).get("inputSchema", {})
                args, artifact = arguments_for(tool, schema, title, self.workdir)
                answer = await self.call(tool, args)
                step["call"] = {"tool": tool, "arguments": args, **answer}
                results = f"{title}: {tool} answered: {answer['text'][:160]}"
            request = {
                "subtask_id": sid,
                "results": results,
                "artifacts": [artifact],
                "next_action": "continue",
            }
            step["complete_request"] = request
            step["complete"] = await self.call("orchestrator_complete_subtask", request)
            if step["complete"]["is_error"]:
                break
            ready = [r["id"] for r in step["complete"]["structured"]["ready"]]
        rec["synthesis"] = await self.call("orchestrator_synthesize_results", {"parent_task_id": parent})
        rec["status"] = await self.call("orchestrator_get_status", {"parent_task_id": parent})
        rec["open_plans"] = await self.call("orchestrator_get_status", {})
        with anyio.fail_after(REQUEST_TIMEOUT):
            listed = dump(await self.c.list_resources())
        rec["resources"] = [r["uri"] for r in listed.get("resources", [])]
        with anyio.fail_after(REQUEST_TIMEOUT):
            read = dump(await self.c.read_resource(f"orchestrator://plans/{parent}/synthesis"))
        rec["synthesis_resource"] = read["contents"][0].get("text")


async def all_ready(client) -> None:
    """Waits (bounded) until every server is ready: the flows are about work on live servers,
    not about start-up (the gateway answers before its children are up)."""
    with anyio.fail_after(60):
        while True:
            health = dump(await client.call_tool("orchestrator_health", {}))
            g = (health.get("structuredContent") or {}).get("gateway", {})
            if g.get("servers_total") and g.get("servers_ready") == g.get("servers_total"):
                return
            await anyio.sleep(0.1)


async def run_flows(client, flows: list[str], workdir: str, out: dict) -> None:
    await all_ready(client)
    with anyio.fail_after(REQUEST_TIMEOUT):
        listed = dump(await client.list_tools())
    tools = {t["name"]: {"inputSchema": t.get("inputSchema"), "outputSchema": t.get("outputSchema")} for t in listed["tools"]}
    out["tools"] = sorted(tools)
    for name in flows:
        record = {"steps": [], "schema_errors": []}
        out["flows"][name] = record
        try:
            await Runner(client, tools, workdir, record).flow(FLOWS[name])
        except Exception as e:  # recorded; the Rust side reports it
            record["error"] = f"{type(e).__name__}: {e}"
            out["tracebacks"][name] = traceback.format_exc()


async def run(argv: list[str], flows: list[str], workdir: str, out: dict) -> None:
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
    if SDK_MAJOR >= 2:
        from mcp import Client

        async with Client(params, mode="auto", cache=None, read_timeout_seconds=REQUEST_TIMEOUT) as client:
            out["protocol_version"] = client.protocol_version
            await run_flows(client, flows, workdir, out)
    else:
        from mcp import ClientSession
        from mcp.client.stdio import stdio_client

        async with stdio_client(params, errlog=sys.stderr) as (read, write):
            timeout = timedelta(seconds=REQUEST_TIMEOUT)
            async with ClientSession(read, write, read_timeout_seconds=timeout) as session:
                with anyio.fail_after(REQUEST_TIMEOUT):
                    init = await session.initialize()
                out["protocol_version"] = init.protocolVersion
                await run_flows(session, flows, workdir, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", required=True, help="comma-separated: " + ", ".join(FLOWS))
    parser.add_argument("--workdir", required=True, help="the folder file-system may write to")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    flows = [f for f in args.flows.split(",") if f]
    unknown = [f for f in flows if f not in FLOWS]
    if unknown or not argv:
        parser.error(f"unknown flows {unknown}" if unknown else "a gateway command is needed after --")
    out = {"sdk": SDK_MAJOR, "flows": {}, "tracebacks": {}}
    try:
        anyio.run(run, argv, flows, args.workdir, out)
    except BaseException as e:  # noqa: BLE001 - reported, not swallowed
        out["session_error"] = f"{type(e).__name__}: {e}"
        out["tracebacks"]["session"] = traceback.format_exc()
    for name, tb in out["tracebacks"].items():
        print(f"[orchestrator_flows {name}]\n{tb}", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
