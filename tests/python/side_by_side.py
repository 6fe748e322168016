"""Every feature of server-everything, driven with the official Python MCP SDK, as JSON.

Usage: side_by_side.py [--gateway SERVER] -- COMMAND [ARG...]
       side_by_side.py --gateway SERVER --url URL

Launches COMMAND over stdio with the SDK line of the Python running this script (1.x:
`ClientSession` with the `initialize` handshake; 2.x: the high-level `mcp.Client`, whose
mode="auto" probes `server/discover` first and falls back to `initialize`), runs every
scenario below against it and prints ONE JSON document to stdout:

    {"sdk": <major>, "scenarios": {<name>: <normalized result>, ...}}

Run it once against server-everything directly and once against mcp-orchestra in front of it
(`--gateway everything`: the server's name in the gateway's config); the Rust test
(tests/tests/python_side_by_side.rs) compares the two documents scenario by scenario.

With --gateway, the script addresses the server's things the way the gateway exposes them
(`everything__echo`, `orchestra://everything/<the server's URI>`) and maps what it gets back
to the server's own names before printing; both sides drop the few values that change from
run to run (see `volatile`). Nothing else is touched: every other difference is a finding.

With --url, the script connects to a gateway already serving Streamable HTTP at URL (its
`/mcp`) instead of launching a command: 1.x with `streamablehttp_client` and `ClientSession`,
2.x with `mcp.Client(URL)` (its Streamable HTTP transport). The scenarios and the output are
the same, so the Rust test compares direct stdio against the gateway over HTTP.

A scenario that raises records {"error": {...}} and the run goes on. Every wait is bounded.
The process environment (the test's marker variable included) is passed to COMMAND whole.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import json
import os
import re
import sys
import traceback
import warnings
from datetime import timedelta

import anyio
from mcp import StdioServerParameters, types

SDK_MAJOR = int(importlib.metadata.version("mcp").split(".")[0])

# The 2.x line marks the handshake-era methods this script exercises (ping, logging/setLevel,
# resources/subscribe) as deprecated for 2026-07-28 servers; the warnings are noise here.
warnings.filterwarnings("ignore", category=DeprecationWarning)
if SDK_MAJOR >= 2:
    from mcp import MCPDeprecationWarning

    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

# Longest any single request may take, and how long a notification is waited for.
REQUEST_TIMEOUT = 20.0
NOTIFICATION_WAIT = 4.0

# server-everything registers these tools only when the client declares sampling, elicitation
# (form, url) or roots, or tasks for the async ones (its registerConditionalTools, after
# `initialize`, reading the client's capabilities): through the gateway they appear when the
# gateway declares those capabilities to the child, so they are compared in a scenario of
# their own (`tools_list_conditional`), apart from the rest of the list.
CONDITIONAL_TOOLS = {
    "get-roots-list",
    "trigger-elicitation-request",
    "trigger-elicitation-request-async",
    "trigger-sampling-request",
    "trigger-sampling-request-async",
    "trigger-url-elicitation",
}

# What the client answers when the server asks (fixed, so both sides see the same).
SAMPLING_ANSWER = {
    "role": "assistant",
    "content": {"type": "text", "text": "A fixed answer from the side-by-side client."},
    "model": "side-by-side-model",
    "stopReason": "endTurn",
}
ELICITATION_CONTENT = {"name": "Ada Lovelace", "check": True, "integer": 7, "email": "ada@example.org"}
ROOTS = [{"uri": "file:///tmp/side-by-side-root", "name": "side-by-side root"}]

# The server's own URIs used below.
STATIC_DOC = "demo://resource/static/document/architecture.md"
TEXT_TEMPLATE = "demo://resource/dynamic/text/{resourceId}"


class Exposed:
    """How the server under test names its things: as itself, or through the gateway."""

    def __init__(self, gateway_server: str | None):
        self.server = gateway_server

    def name(self, child_name: str) -> str:
        return f"{self.server}__{child_name}" if self.server else child_name

    def uri(self, child_uri: str) -> str:
        return f"orchestra://{self.server}/{child_uri}" if self.server else child_uri

    def child_name(self, exposed_name: str) -> str:
        prefix = f"{self.server}__"
        if self.server and exposed_name.startswith(prefix):
            return exposed_name[len(prefix) :]
        return exposed_name

    def is_servers(self, exposed_name: str) -> bool:
        """Whether a listed name is the server's: the gateway lists its own tools (its
        `orchestrator_health`) beside the server's, un-prefixed; those are not compared."""
        return not self.server or exposed_name.startswith(f"{self.server}__")


def dump(value):
    """A result as JSON (the wire's camelCase field names)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value


def error_of(e: BaseException) -> dict:
    err = getattr(e, "error", None)  # McpError (1.x) / MCPError (2.x) carry ErrorData
    if err is not None and hasattr(err, "code"):
        return {"error": {"code": err.code, "message": err.message}}
    return {"error": {"type": type(e).__name__, "message": str(e)}}


# --- normalization ---------------------------------------------------------------------------

# server-everything's dynamic resources embed `new Date().toLocaleTimeString()` (its
# textResource / blobResource: "Resource 2: This is a plaintext resource created at 4:44:12 PM",
# the blob the same text in base64): the time of the read, different on every run.
DYNAMIC_TEXT = re.compile(r"^(Resource \d+: This is a (?:plaintext resource|base64 blob) created at ).+$")


def volatile(value):
    """Replaces the time in server-everything's dynamic resource texts (both sides)."""
    if isinstance(value, dict):
        out = {k: volatile(v) for k, v in value.items()}
        text = out.get("text")
        if isinstance(text, str) and DYNAMIC_TEXT.match(text):
            out["text"] = DYNAMIC_TEXT.sub(r"\1<time>", text)
        blob = out.get("blob")
        if isinstance(blob, str):
            try:
                decoded = base64.b64decode(blob, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = None
            if decoded is not None and DYNAMIC_TEXT.match(decoded):
                # Kept decoded: the base64 of a text with the time replaced says the same.
                del out["blob"]
                out["blob_text"] = DYNAMIC_TEXT.sub(r"\1<time>", decoded)
        return out
    if isinstance(value, list):
        return [volatile(v) for v in value]
    return value


def ungateway(value, server: str):
    """Maps what the gateway exposes back to the server's own names (gateway side only).

    - `name` fields `<server>__x` → `x` (tools, prompts, resources: the gateway's namespacing);
    - `orchestra://<server>/<uri>` → `<uri>` anywhere in a string (resource namespacing);
    - `_meta` keys under `mcp-orchestra/` (the gateway's own annotations, e.g. a fallback
      tag) are dropped, and a `_meta` left empty by that with them.
    """
    prefix, uri_prefix = f"{server}__", f"orchestra://{server}/"
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "_meta" and isinstance(v, dict):
                v = {mk: mv for mk, mv in v.items() if not mk.startswith("mcp-orchestra/")}
                if not v:
                    continue
            v = ungateway(v, server)
            if k == "name" and isinstance(v, str) and v.startswith(prefix):
                v = v[len(prefix) :]
            out[k] = v
        return out
    if isinstance(value, list):
        return [ungateway(v, server) for v in value]
    if isinstance(value, str):
        return value.replace(uri_prefix, "")
    return value


def ungateway_logger(logger, server: str):
    """The gateway names a child's log messages `<server>` (or `<server>/<child's logger>`)."""
    if logger == server:
        return None
    if isinstance(logger, str) and logger.startswith(server + "/"):
        return logger[len(server) + 1 :]
    return logger


# --- what the server sends on its own ---------------------------------------------------------


class Inbox:
    """Notifications and log messages as they arrive, and the server's requests answered."""

    def __init__(self):
        self.notifications: list[dict] = []  # {"method", "params"}
        self.logs: list[dict] = []  # LoggingMessageNotificationParams as JSON
        self.requests: list[dict] = []  # server→client requests answered: {"method", "params"}

    async def on_message(self, message) -> None:
        if isinstance(message, Exception):
            return
        n = getattr(message, "root", message)  # 1.x wraps notifications in a RootModel
        method = getattr(n, "method", None)
        if method is not None:
            params = getattr(n, "params", None)
            self.notifications.append({"method": method, "params": dump(params) if params else None})

    async def on_log(self, params) -> None:
        self.logs.append(dump(params))

    async def on_sampling(self, context, params):
        self.requests.append({"method": "sampling/createMessage", "params": dump(params)})
        return types.CreateMessageResult.model_validate(SAMPLING_ANSWER)

    async def on_elicitation(self, context, params):
        self.requests.append({"method": "elicitation/create", "params": dump(params)})
        return types.ElicitResult.model_validate({"action": "accept", "content": ELICITATION_CONTENT})

    async def on_roots(self, context):
        self.requests.append({"method": "roots/list"})
        return types.ListRootsResult.model_validate({"roots": ROOTS})

    async def wait_for(self, pred, limit: float = NOTIFICATION_WAIT) -> bool:
        with anyio.move_on_after(limit):
            while not pred():
                await anyio.sleep(0.05)
            return True
        return False


# --- the scenarios ---------------------------------------------------------------------------


async def all_pages(fetch, key: str) -> list:
    """Every item of a paginated list (follows nextCursor; at most 100 pages)."""
    items, cursor = [], None
    for _ in range(100):
        page = await fetch(cursor)
        page = dump(page)
        items.extend(page[key])
        cursor = page.get("nextCursor")
        if not cursor:
            return items
    raise RuntimeError(f"more than 100 pages of {key}")


def scenarios(c, x: Exposed, inbox: Inbox):
    """(name, coroutine function) in run order; each returns the scenario's JSON."""

    def logged(start: int, pattern: str) -> list[dict]:
        """Log messages since `start` whose text matches `pattern`, with the server's logger."""
        found = []
        for m in inbox.logs[start:]:
            if isinstance(m.get("data"), str) and re.search(pattern, m["data"]):
                logger = m.get("logger")
                found.append(
                    {
                        "level": m.get("level"),
                        "data": m["data"],
                        "logger": ungateway_logger(logger, x.server) if x.server else logger,
                    }
                )
        return found

    async def call(name, args=None, **kw):
        with anyio.fail_after(REQUEST_TIMEOUT):
            return dump(await c.call_tool(x.name(name), args or {}, **kw))

    async def tools(conditional: bool):
        tools = await all_pages(lambda cur: c.list_tools(cursor=cur), "tools")
        chosen = [
            t
            for t in tools
            if x.is_servers(t["name"]) and (x.child_name(t["name"]) in CONDITIONAL_TOOLS) == conditional
        ]
        return sorted(chosen, key=lambda t: t["name"])

    async def tool_long_running():
        seen = []

        async def on_progress(progress, total, message):
            seen.append({"progress": progress, "total": total, "message": message})

        result = await call(
            "trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=on_progress
        )
        return {"result": result, "progress": seen}

    async def prompts_list():
        prompts = await all_pages(lambda cur: c.list_prompts(cursor=cur), "prompts")
        return sorted((p for p in prompts if x.is_servers(p["name"])), key=lambda p: p["name"])

    async def get_prompt(name, args=None):
        with anyio.fail_after(REQUEST_TIMEOUT):
            return dump(await c.get_prompt(x.name(name), args))

    async def complete(ref, argument, context=None):
        with anyio.fail_after(REQUEST_TIMEOUT):
            return dump(await c.complete(ref=ref, argument=argument, context_arguments=context))

    def prompt_ref(name):
        return types.PromptReference(type="ref/prompt", name=x.name(name))

    async def complete_prompt():
        return {
            "department_E": await complete(
                prompt_ref("completable-prompt"), {"name": "department", "value": "E"}
            ),
            "name_in_Sales": await complete(
                prompt_ref("completable-prompt"), {"name": "name", "value": ""}, {"department": "Sales"}
            ),
            "resourceType_of_resource_prompt": await complete(
                prompt_ref("resource-prompt"), {"name": "resourceType", "value": "B"}
            ),
        }

    async def complete_resource_template():
        ref = types.ResourceTemplateReference(type="ref/resource", uri=x.uri(TEXT_TEMPLATE))
        return {
            "resourceId_7": await complete(ref, {"name": "resourceId", "value": "7"}),
            "resourceId_x": await complete(ref, {"name": "resourceId", "value": "x"}),
        }

    async def resources_list():
        resources = await all_pages(lambda cur: c.list_resources(cursor=cur), "resources")
        return sorted(resources, key=lambda r: r["uri"])

    async def resource_templates_list():
        templates = await all_pages(lambda cur: c.list_resource_templates(cursor=cur), "resourceTemplates")
        return sorted(templates, key=lambda t: t["uriTemplate"])

    async def read(uri):
        with anyio.fail_after(REQUEST_TIMEOUT):
            return dump(await c.read_resource(uri))

    async def resource_read_static():
        return await read(x.uri(STATIC_DOC))

    async def resource_read_template():
        return {
            "text_2": await read(x.uri("demo://resource/dynamic/text/2")),
            "blob_3": await read(x.uri("demo://resource/dynamic/blob/3")),
        }

    async def resource_read_link():
        # A URI exactly as a tool result's resource_link gave it (the server's own URI): a
        # client reads it back as it got it.
        links = await c.call_tool(x.name("get-resource-links"), {"count": 2})
        uris = [b["uri"] for b in dump(links)["content"] if b.get("type") == "resource_link"]
        return {"links": uris, "reads": [await read(u) for u in uris]}

    async def resource_subscribe():
        uri = x.uri(STATIC_DOC)
        logs_start = len(inbox.logs)
        with anyio.fail_after(REQUEST_TIMEOUT):
            subscribed = dump(await c.subscribe_resource(uri))
        start = len(inbox.notifications)

        def updated():
            return [
                n["params"]["uri"]
                for n in inbox.notifications[start:]
                if n["method"] == "notifications/resources/updated"
            ]

        # server-everything sends one `updated` per subscribed URI at once, then every 5 s.
        toggled_on = await call("toggle-subscriber-updates")
        got = await inbox.wait_for(lambda: updated())
        with anyio.fail_after(REQUEST_TIMEOUT):
            unsubscribed = dump(await c.unsubscribe_resource(uri))
        toggled_off = await call("toggle-subscriber-updates")
        # It acknowledges each (un)subscribe with an info message naming the URI it got.
        await inbox.wait_for(lambda: len(logged(logs_start, r"^Received (Uns|S)ubscribe")) >= 2)
        return {
            "logged": logged(logs_start, r"^Received (Uns|S)ubscribe"),
            "subscribe": subscribed,
            "toggle_on": toggled_on,
            "updated_within_wait": got,
            "updated_uris": sorted(set(updated())),
            "unsubscribe": unsubscribed,
            "toggle_off": toggled_off,
        }

    async def logging():
        with anyio.fail_after(REQUEST_TIMEOUT):
            set_level = dump(await c.set_logging_level("debug"))
        start = len(inbox.logs)
        # Its simulated messages come at a random level, one at once and then every 5 s; what
        # is compared is that one arrives and that its text agrees with its level.
        simulated = re.compile(r"^(\w+)[- ]level[- ]message", re.IGNORECASE)

        def messages():
            return [
                m for m in inbox.logs[start:] if isinstance(m.get("data"), str) and simulated.match(m["data"])
            ]

        toggled_on = await call("toggle-simulated-logging")
        got = await inbox.wait_for(lambda: messages())
        toggled_off = await call("toggle-simulated-logging")
        first = None
        if messages():
            m = messages()[0]
            logger = m.get("logger")
            first = {
                "level_matches_text": simulated.match(m["data"]).group(1).lower() == m["level"],
                "logger": ungateway_logger(logger, x.server) if x.server else logger,
            }
        return {
            "set_level": set_level,
            "toggle_on": toggled_on,
            "message_within_wait": got,
            "first_message": first,
            "toggle_off": toggled_off,
        }

    async def sampling():
        before = len(inbox.requests)
        result = await call("trigger-sampling-request", {"prompt": "Say something fixed.", "maxTokens": 20})
        return {"result": result, "asked": inbox.requests[before:]}

    async def elicitation():
        before = len(inbox.requests)
        result = await call("trigger-elicitation-request")
        return {"result": result, "asked": inbox.requests[before:]}

    async def roots():
        # server-everything asks for the roots 350 ms after `initialize` (and caches them),
        # then logs how many it got; the tool reports them.
        result = await call("get-roots-list")
        await inbox.wait_for(lambda: logged(0, r"^Roots updated"))
        return {
            "result": result,
            "asked_for_roots": any(r["method"] == "roots/list" for r in inbox.requests),
            "logged": logged(0, r"^Roots updated"),
        }

    async def ping():
        with anyio.fail_after(REQUEST_TIMEOUT):
            return dump(await c.send_ping())

    return [
        ("tools_list", lambda: tools(conditional=False)),
        ("tool_echo", lambda: call("echo", {"message": "side by side"})),
        ("tool_get_sum", lambda: call("get-sum", {"a": 19, "b": 23.5})),
        ("tool_get_structured_content", lambda: call("get-structured-content", {"location": "Chicago"})),
        ("tool_get_resource_links", lambda: call("get-resource-links", {"count": 4})),
        (
            "tool_get_resource_reference",
            lambda: call("get-resource-reference", {"resourceType": "Blob", "resourceId": 5}),
        ),
        ("tool_invalid_arguments", lambda: call("get-sum", {"a": "nineteen", "b": 1})),
        ("tool_long_running", tool_long_running),
        ("prompts_list", prompts_list),
        ("prompt_simple", lambda: get_prompt("simple-prompt")),
        ("prompt_args", lambda: get_prompt("args-prompt", {"city": "Lyon", "state": "Rhône"})),
        (
            "prompt_resource",
            lambda: get_prompt("resource-prompt", {"resourceType": "Text", "resourceId": "4"}),
        ),
        ("complete_prompt", complete_prompt),
        ("complete_resource_template", complete_resource_template),
        ("resources_list", resources_list),
        ("resource_templates_list", resource_templates_list),
        ("resource_read_static", resource_read_static),
        ("resource_read_template", resource_read_template),
        ("resource_read_link", resource_read_link),
        ("resource_subscribe", resource_subscribe),
        ("logging", logging),
        ("sampling", sampling),
        ("elicitation", elicitation),
        ("roots", roots),
        ("tools_list_conditional", lambda: tools(conditional=True)),
        ("ping", ping),
    ]


# --- connecting with each SDK line -----------------------------------------------------------


async def run(argv: list[str], url: str | None, gateway_server: str | None, out: dict) -> None:
    """Runs the scenarios against `url` (Streamable HTTP) when given, else `argv` (stdio)."""
    params = url or StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
    out["transport"] = "http" if url else "stdio"
    inbox = Inbox()
    callbacks = dict(
        sampling_callback=inbox.on_sampling,
        elicitation_callback=inbox.on_elicitation,
        list_roots_callback=inbox.on_roots,
        logging_callback=inbox.on_log,
        message_handler=inbox.on_message,
    )
    if SDK_MAJOR >= 2:
        from mcp import Client

        # cache=None: every call reaches the server (the 2.x client may answer list and read
        # calls from its response cache otherwise).
        async with Client(
            params, mode="auto", cache=None, read_timeout_seconds=REQUEST_TIMEOUT, **callbacks
        ) as client:
            # mode="auto" asked `server/discover` first: which handshake it ended with.
            via = "discover" if client.session.discover_result is not None else "initialize"
            handshake = {"protocol_version": client.protocol_version, "via": via}
            await run_scenarios(client, gateway_server, inbox, handshake, out)
    else:
        from contextlib import asynccontextmanager

        from mcp import ClientSession
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamablehttp_client

        @asynccontextmanager
        async def streams():
            """(read, write) of the transport: stdio, or Streamable HTTP (which also yields a
            session-id getter)."""
            if url:
                async with streamablehttp_client(url) as (read, write, _):
                    yield read, write
            else:
                async with stdio_client(params, errlog=sys.stderr) as (read, write):
                    yield read, write

        async with streams() as (read, write):
            timeout = timedelta(seconds=REQUEST_TIMEOUT)
            async with ClientSession(read, write, read_timeout_seconds=timeout, **callbacks) as session:
                init = await session.initialize()
                handshake = {"protocol_version": init.protocolVersion, "via": "initialize"}
                await run_scenarios(session, gateway_server, inbox, handshake, out)


async def run_scenarios(c, gateway_server: str | None, inbox: Inbox, handshake: dict, out: dict) -> None:
    x = Exposed(gateway_server)
    results = out["scenarios"]
    results["handshake"] = handshake
    for name, fn in scenarios(c, x, inbox):
        try:
            value = await fn()
        except Exception as e:  # recorded and compared; the run goes on
            value = error_of(e)
            out["tracebacks"][name] = traceback.format_exc()
        value = volatile(value)
        if gateway_server:
            value = ungateway(value, gateway_server)
        results[name] = value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", metavar="SERVER", help="the server's name in the gateway's config")
    parser.add_argument("--url", help="a gateway's Streamable HTTP endpoint (instead of a command)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    if bool(argv) == bool(args.url):
        parser.error("either --url URL or a server command line after -- is needed")
    out = {"sdk": SDK_MAJOR, "scenarios": {}, "tracebacks": {}}
    try:
        anyio.run(run, argv, args.url, args.gateway, out)
    except BaseException as e:  # noqa: BLE001 - reported, not swallowed
        out["session_error"] = f"{type(e).__name__}: {e}"
        out["tracebacks"]["session"] = traceback.format_exc()
    for name, tb in out["tracebacks"].items():
        print(f"[side_by_side {name}]\n{tb}", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
