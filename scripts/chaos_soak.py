#!/usr/bin/env python3
"""Bounded chaos soak for mcp-orchestra (Python 3.10+, standard library only).

Starts `mcp-orchestra serve` in front of four `orchestra-fault-child` servers (one of them
crashing on every 26th call, two of them with a `server_alternatives` fallback), then for
`--duration` seconds:

* N concurrent callers send `tools/call` echo (unique texts) and sleep {ms: 50..500} to
  random servers;
* a chaos task, every 0.5-2 s, SIGKILLs a random child (pid from `orchestrator_health`, else
  from /proc by marker) or calls its `crash` tool;
* every 5 s the gateway's VmRSS and open fd count are sampled.

Every request id must get exactly one response within call_timeout + 2 s: a success whose text
is the text sent, a JSON-RPC error, or an `isError` result. Duplicates, unknown ids, non
JSON-RPC lines on stdout and missing or late answers are failures. At the end stdin is closed;
the gateway must exit 0 within 15 s and leave no process carrying the marker within 5 s.

The RSS/fd baseline ("first after warm-up") and the final sample are taken at a quiescent
point (callers and chaos paused, nothing in flight, every server ready again), so both count
the same set of child pipes; "flat" means last RSS <= first x 1.10 + 2048 KB and last fds <=
first + 4. The periodic samples feed the maxima.

Prints one JSON summary on stdout (progress goes to stderr); exit 1 if any assertion fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER_VAR = "ORCHESTRA_TEST_MARKER"
CALL_TIMEOUT_S = 5.0
ANSWER_LIMIT_S = CALL_TIMEOUT_S + 2.0
WARMUP_S = 10.0
SAMPLE_EVERY_S = 5.0
EXIT_LIMIT_S = 15.0
LEFTOVER_LIMIT_S = 5.0
QUIESCE_READY_LIMIT_S = 15.0
SERVERS = ["alpha", "beta", "gamma", "delta"]
FALLBACKS = {"gamma": "beta", "delta": "alpha"}
CHILD_EXIT_ERROR = -31002
FAILOVER_META = "mcp-orchestra/failover"


def log(msg: str) -> None:
    print(f"[chaos_soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def default_binary() -> Path:
    release = repo_root() / "target/release/mcp-orchestra"
    return release if release.is_file() else repo_root() / "target/debug/mcp-orchestra"


def config_yaml(fault_child: Path) -> str:
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    lines = [
        "gateway:",
        "  call_timeout: 5s",
        "  restart: {initial_backoff: 100ms, max_backoff: 1s, max_restarts: 1000, within: 10s}",
        # Children get only the variables their config admits: the marker must reach them,
        # since it is how the soak recognises its children (kills, leak check).
        f"  inherit_env: [{MARKER_VAR}]",
        "servers:",
    ]
    for name in SERVERS:
        env = f"CHAOS_SERVER: {q(name)}"
        if name == "gamma":
            env += ', FAULT_MODE: "crash_after:25"'
        lines.append(f"  {name}: {{command: {q(str(fault_child))}, env: {{{env}}}}}")
    lines.append("server_alternatives:")
    for down, fb in FALLBACKS.items():
        lines.append(f"  {down}: {{fallback: {fb}}}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# /proc helpers
# ---------------------------------------------------------------------------------------------


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def procs_with_marker(marker: str) -> list[dict[str, Any]]:
    """Every process (zombies included) whose environment carries the marker."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        environ = _read(f"/proc/{entry}/environ")
        if environ is None or needle not in environ.split(b"\0"):
            continue
        env = dict(kv.split(b"=", 1) for kv in environ.split(b"\0") if b"=" in kv)
        stat = (_read(f"/proc/{entry}/stat") or b"").decode(errors="replace")
        state = stat.rsplit(")", 1)[1].strip()[:1] if ")" in stat else "?"
        cmdline = (_read(f"/proc/{entry}/cmdline") or b"").replace(b"\0", b" ").decode(errors="replace").strip()
        found.append(
            {
                "pid": int(entry),
                "state": state,
                "cmdline": cmdline,
                "server": env.get(b"CHAOS_SERVER", b"").decode(errors="replace") or None,
            }
        )
    return found


def is_our_fault_child(pid: int, marker: str, server: str | None = None) -> bool:
    """Checked right before a kill, so a recycled pid is never signalled."""
    environ = _read(f"/proc/{pid}/environ")
    cmdline = _read(f"/proc/{pid}/cmdline")
    if environ is None or cmdline is None:
        return False
    entries = environ.split(b"\0")
    if f"{MARKER_VAR}={marker}".encode() not in entries:
        return False
    if server is not None and f"CHAOS_SERVER={server}".encode() not in entries:
        return False
    return b"orchestra-fault-child" in cmdline


def rss_kb(pid: int) -> int | None:
    status = _read(f"/proc/{pid}/status")
    if status is None:
        return None
    for line in status.decode(errors="replace").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


@dataclass
class Req:
    id: int
    method: str
    kind: str  # echo | sleep | crash | health | list | init
    server: str | None
    expect_text: str | None
    sent_at: float
    fut: asyncio.Future
    answered_at: float | None = None


@dataclass
class Stats:
    calls_sent: int = 0
    answered_ok: int = 0
    answered_error: int = 0
    answered_is_error: int = 0
    failed_over: int = 0
    wrong_text: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    requests_total: int = 0
    duplicates: int = 0
    unknown_ids: int = 0
    late: int = 0
    lost: int = 0
    non_jsonrpc_lines: int = 0
    server_requests: int = 0
    notifications: dict[str, int] = field(default_factory=dict)
    sigkills: int = 0
    crash_calls: int = 0
    crash_deaths: int = 0
    kill_skipped: int = 0
    write_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def example(self, what: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(what[:600])


class Client:
    def __init__(self, proc: asyncio.subprocess.Process, stats: Stats):
        self.proc = proc
        self.stats = stats
        self.next_id = 1
        self.pending: dict[int, Req] = {}
        self.answered: set[int] = set()
        self.write_lock = asyncio.Lock()
        self.stdout_closed = asyncio.Event()
        self.side_tasks: set[asyncio.Task] = set()
        self.reader_task = asyncio.create_task(self._read_loop())

    async def _write(self, msg: dict) -> bool:
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        try:
            async with self.write_lock:
                assert self.proc.stdin is not None
                self.proc.stdin.write(data)
                await self.proc.stdin.drain()
            return True
        except (BrokenPipeError, ConnectionResetError, AssertionError, RuntimeError) as e:
            self.stats.write_errors += 1
            self.stats.example(f"write failed: {e!r}")
            return False

    async def send(self, method: str, params: dict, kind: str, server: str | None = None,
                   expect_text: str | None = None) -> Req:
        rid = self.next_id
        self.next_id += 1
        req = Req(rid, method, kind, server, expect_text, time.monotonic(),
                  asyncio.get_running_loop().create_future())
        self.pending[rid] = req
        self.stats.requests_total += 1
        await self._write({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return req

    async def notify(self, method: str, params: dict) -> None:
        await self._write({"jsonrpc": "2.0", "method": method, "params": params})

    async def wait(self, req: Req, limit: float = ANSWER_LIMIT_S) -> dict | None:
        """The response, or None if it did not come within `limit` (it stays pending)."""
        remaining = req.sent_at + limit - time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.shield(req.fut), max(remaining, 0.001))
        except asyncio.TimeoutError:
            return None

    async def request(self, method: str, params: dict, kind: str, limit: float = ANSWER_LIMIT_S) -> dict | None:
        return await self.wait(await self.send(method, params, kind), limit)

    async def _read_loop(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                try:
                    line = await self.proc.stdout.readline()
                except ValueError as e:  # line longer than the stream limit
                    self.stats.non_jsonrpc_lines += 1
                    self.stats.example(f"unreadable stdout line: {e}")
                    continue
                if not line:
                    break
                self._handle_line(line)
        finally:
            self.stdout_closed.set()

    def _handle_line(self, line: bytes) -> None:
        now = time.monotonic()
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            self.stats.non_jsonrpc_lines += 1
            self.stats.example(f"non-JSON-RPC stdout line: {line[:300]!r}")
            return
        if "method" in msg:
            if "id" in msg:  # a request from the gateway: answer it so it never waits on us
                self.stats.server_requests += 1
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": msg["id"]}
                if msg["method"] == "ping":
                    reply["result"] = {}
                else:
                    reply["error"] = {"code": -32601, "message": "not supported by chaos_soak"}
                task = asyncio.create_task(self._write(reply))
                self.side_tasks.add(task)
                task.add_done_callback(self.side_tasks.discard)
            else:
                m = str(msg["method"])
                self.stats.notifications[m] = self.stats.notifications.get(m, 0) + 1
            return
        rid = msg.get("id")
        if not isinstance(rid, int) or isinstance(rid, bool):
            self.stats.unknown_ids += 1
            self.stats.example(f"response with unexpected id: {line[:300]!r}")
            return
        req = self.pending.pop(rid, None)
        if req is None:
            if rid in self.answered:
                self.stats.duplicates += 1
                self.stats.example(f"duplicate response for id {rid}: {line[:300]!r}")
            else:
                self.stats.unknown_ids += 1
                self.stats.example(f"response for unknown id {rid}: {line[:300]!r}")
            return
        self.answered.add(rid)
        req.answered_at = now
        elapsed = now - req.sent_at
        if elapsed > ANSWER_LIMIT_S:
            self.stats.late += 1
            self.stats.example(f"late answer ({elapsed:.2f}s) to {req.kind} id {rid} on {req.server}")
        if req.kind in ("echo", "sleep"):
            self.stats.latencies.append(elapsed)
            self._classify(req, msg)
        elif req.kind == "crash":
            err = msg.get("error")
            if isinstance(err, dict) and err.get("code") == CHILD_EXIT_ERROR:
                self.stats.crash_deaths += 1
        if not req.fut.done():
            req.fut.set_result(msg)

    def _classify(self, req: Req, msg: dict) -> None:
        s = self.stats
        if "error" in msg:
            err = msg["error"]
            code = str(err.get("code")) if isinstance(err, dict) else "?"
            s.answered_error += 1
            s.errors_by_code[code] = s.errors_by_code.get(code, 0) + 1
            return
        result = msg.get("result")
        if not isinstance(result, dict):
            s.wrong_text += 1
            s.example(f"{req.kind} id {req.id}: result is not an object: {json.dumps(msg)[:300]}")
            return
        if result.get("isError") is True:
            s.answered_is_error += 1
            return
        structured = result.get("structuredContent")
        got = structured.get("text") if isinstance(structured, dict) else None
        if got is None:
            content = result.get("content")
            if isinstance(content, list) and content and isinstance(content[0], dict):
                got = content[0].get("text")
        if got != req.expect_text:
            s.wrong_text += 1
            s.example(f"{req.kind} id {req.id} on {req.server}: sent {req.expect_text!r}, got {got!r}")
            return
        s.answered_ok += 1
        meta = result.get("_meta")
        if isinstance(meta, dict) and FAILOVER_META in meta:
            s.failed_over += 1


# ---------------------------------------------------------------------------------------------
# The soak
# ---------------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, seed: int):
        self.args = args
        self.seed = seed
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.marker = f"chaos-{os.getpid()}-{secrets.token_hex(6)}"
        self.failures: list[str] = []
        self.samples: list[list[float]] = []  # [t, rss_kb, fds]
        self.baseline: tuple[int, int] | None = None
        self.final: tuple[int, int] | None = None
        self.go = asyncio.Event()  # set while callers and chaos may run
        self.stop_at = 0.0
        self.t0 = 0.0
        self.proc: asyncio.subprocess.Process | None = None
        self.client: Client | None = None
        self.exit_code: int | None = None
        self.leaked: list[dict] = []
        self.final_health: dict | None = None
        self.quiesce_s: list[float] = []
        self.stderr_path: Path | None = None

    def fail(self, why: str) -> None:
        log(f"FAIL: {why}")
        self.failures.append(why)

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def run(self, workdir: Path) -> None:
        binary = Path(self.args.binary).resolve()
        fault_child = binary.parent / "orchestra-fault-child"
        for p in (binary, fault_child):
            if not p.is_file():
                raise SystemExit(f"{p} is missing: build it first (cargo build --workspace)")
        config = workdir / "orchestra.yaml"
        config.write_text(config_yaml(fault_child))
        env = dict(os.environ)
        env[MARKER_VAR] = self.marker
        env["RUST_LOG"] = "warn"
        stderr_path = workdir / "gateway.stderr"
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as stderr_file:
            self.proc = await asyncio.create_subprocess_exec(
                str(binary), "serve", "-c", str(config),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr_file, env=env, limit=64 * 1024 * 1024,
            )
        log(f"gateway pid {self.proc.pid}, marker {self.marker}, seed {self.seed}, dir {workdir}")
        self.client = Client(self.proc, self.stats)
        try:
            await self._handshake()
            await self._soak()
            await self._finish()
        finally:
            await self._cleanup()

    async def _handshake(self) -> None:
        c = self.client
        assert c is not None
        init = await c.request("initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "chaos_soak", "version": "0"},
        }, "init", limit=30)
        if init is None or "result" not in init:
            raise RuntimeError(f"initialize failed: {init}")
        await c.notify("notifications/initialized", {})
        listing = await c.request("tools/list", {}, "list", limit=30)
        if listing is None or "result" not in listing:
            raise RuntimeError(f"tools/list failed: {listing}")
        names = {t.get("name") for t in listing["result"].get("tools", [])}
        missing = [f"{s}__{t}" for s in SERVERS for t in ("echo", "sleep", "crash") if f"{s}__{t}" not in names]
        if missing:
            raise RuntimeError(f"tools missing from tools/list: {missing}")

    async def _soak(self) -> None:
        self.t0 = time.monotonic()
        self.stop_at = self.t0 + self.args.duration
        self.go.set()
        callers = [asyncio.create_task(self._caller(i)) for i in range(self.args.callers)]
        chaos = asyncio.create_task(self._chaos())
        sampler = asyncio.create_task(self._sampler())
        warmup = asyncio.create_task(self._warmup_baseline())
        await asyncio.gather(*callers, chaos, warmup)
        # Everything still pending gets its full answer window.
        self.go.clear()
        await self._drain_pending()
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)

    async def _warmup_baseline(self) -> None:
        delay = min(WARMUP_S, self.args.duration / 2)
        await asyncio.sleep(delay)
        if time.monotonic() >= self.stop_at:
            return
        self.baseline = await self._quiescent_sample("baseline")
        log(f"baseline after warm-up: rss {self.baseline[0]} KB, fds {self.baseline[1]}")

    async def _quiescent_sample(self, what: str) -> tuple[int, int]:
        """Pauses callers and chaos, waits for nothing in flight and every server ready, samples."""
        started = time.monotonic()
        self.go.clear()
        await self._drain_pending()
        ready = await self._wait_all_ready(QUIESCE_READY_LIMIT_S)
        if not ready:
            self.fail(f"{what}: not every server was ready again within {QUIESCE_READY_LIMIT_S:.0f}s "
                      f"of a quiet moment: {self._states()}")
        await asyncio.sleep(0.2)
        sample = self._sample()
        paused = time.monotonic() - started
        self.quiesce_s.append(round(paused, 2))
        self.stop_at += paused  # the pause does not eat into the chaos time
        self.go.set()
        return sample

    def _states(self) -> dict:
        h = self.final_health or {}
        return {s.get("name"): s.get("state") for s in h.get("servers", [])}

    async def _drain_pending(self) -> None:
        c = self.client
        assert c is not None
        deadline = time.monotonic() + ANSWER_LIMIT_S + 0.5
        while c.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _health(self) -> dict | None:
        c = self.client
        assert c is not None
        msg = await c.request("tools/call", {"name": "orchestrator_health", "arguments": {}}, "health")
        if msg is None or "result" not in msg:
            return None
        report = msg["result"].get("structuredContent")
        return report if isinstance(report, dict) else None

    async def _wait_all_ready(self, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while True:
            h = await self._health()
            if h is not None:
                self.final_health = h
                if all(s.get("state") == "ready" for s in h.get("servers", [])):
                    return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)

    def _sample(self) -> tuple[int, int]:
        assert self.proc is not None
        rss = rss_kb(self.proc.pid) or 0
        fds = fd_count(self.proc.pid) or 0
        self.samples.append([round(self.now(), 1), rss, fds])
        return rss, fds

    async def _sampler(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def _caller(self, n: int) -> None:
        c = self.client
        assert c is not None
        i = 0
        while True:
            await self.go.wait()
            if time.monotonic() >= self.stop_at:
                return
            i += 1
            server = self.rng.choice(SERVERS)
            if self.rng.random() < 0.8:
                text = f"c{n}-{i}-{secrets.token_hex(4)}"
                req = await c.send("tools/call", {"name": f"{server}__echo", "arguments": {"text": text}},
                                   "echo", server, text)
            else:
                ms = self.rng.randint(50, 500)
                req = await c.send("tools/call", {"name": f"{server}__sleep", "arguments": {"ms": ms}},
                                   "sleep", server, f"slept {ms}")
            self.stats.calls_sent += 1
            if await c.wait(req) is None:
                self.stats.example(f"caller {n}: no answer within {ANSWER_LIMIT_S}s to {req.kind} "
                                   f"id {req.id} on {server}")
            await asyncio.sleep(self.rng.uniform(0, 0.02))

    async def _chaos(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            await self.go.wait()
            if time.monotonic() >= self.stop_at:
                return
            server = self.rng.choice(SERVERS)
            if self.rng.random() < 0.7:
                await self._sigkill(server)
            else:
                # Answered -31002 when it kills the child; if the server is down the call is
                # served by its fallback (which then dies) or gets an isError result.
                self.stats.crash_calls += 1
                c = self.client
                assert c is not None
                await c.send("tools/call", {"name": f"{server}__crash", "arguments": {"code": 3}},
                             "crash", server)

    async def _sigkill(self, server: str) -> None:
        pid = None
        h = await self._health()
        if h is not None:
            for s in h.get("servers", []):
                if s.get("name") == server and isinstance(s.get("pid"), int):
                    pid = s["pid"]
        if pid is None:
            live = [p for p in procs_with_marker(self.marker)
                    if p["server"] == server and "orchestra-fault-child" in p["cmdline"] and p["state"] != "Z"]
            pid = live[0]["pid"] if live else None
        if pid is None or not is_our_fault_child(pid, self.marker, server):
            self.stats.kill_skipped += 1
            return
        try:
            os.kill(pid, signal.SIGKILL)
            self.stats.sigkills += 1
        except ProcessLookupError:
            self.stats.kill_skipped += 1

    async def _finish(self) -> None:
        c = self.client
        assert c is not None and self.proc is not None
        self.final = await self._quiescent_sample("final")
        log(f"final quiescent sample: rss {self.final[0]} KB, fds {self.final[1]}")
        self.stats.lost = len(c.pending)
        for r in list(c.pending.values())[:10]:
            self.stats.example(f"never answered: {r.kind} id {r.id} on {r.server}")
        # The client goes away.
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            await self.proc.stdin.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            self.exit_code = await asyncio.wait_for(self.proc.wait(), EXIT_LIMIT_S)
        except asyncio.TimeoutError:
            self.fail(f"gateway did not exit within {EXIT_LIMIT_S:.0f}s of stdin EOF")
            return
        if self.exit_code != 0:
            self.fail(f"gateway exited with {self.exit_code}, expected 0")
        try:
            await asyncio.wait_for(c.stdout_closed.wait(), 5)
        except asyncio.TimeoutError:
            self.fail("gateway stdout still open after it exited")
        deadline = time.monotonic() + LEFTOVER_LIMIT_S
        while True:
            left = procs_with_marker(self.marker)
            if not left or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        self.leaked = left
        if left:
            self.fail(f"{len(left)} process(es) with the marker left {LEFTOVER_LIMIT_S:.0f}s after exit")

    async def _cleanup(self) -> None:
        """Whatever happened, nothing we started outlives the soak."""
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                pass
        for p in procs_with_marker(self.marker):
            try:
                os.kill(p["pid"], signal.SIGKILL)
            except OSError:
                pass
        if self.client is not None:
            self.client.reader_task.cancel()
            await asyncio.gather(self.client.reader_task, return_exceptions=True)

    def summary(self, elapsed: float) -> dict:
        s = self.stats
        lat = sorted(s.latencies)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None

        rss_all = [x[1] for x in self.samples]
        fds_all = [x[2] for x in self.samples]
        base = self.baseline
        if base is None:  # too short a run for a warm-up: the first periodic sample
            base = (self.samples[0][1], self.samples[0][2]) if self.samples else (0, 0)
        last = self.final or ((self.samples[-1][1], self.samples[-1][2]) if self.samples else (0, 0))
        rss_flat = last[0] <= base[0] * 1.10 + 2048
        fds_flat = last[1] <= base[1] + 4

        checks = {
            "lost": s.lost == 0,
            "duplicates": s.duplicates == 0,
            "late": s.late == 0,
            "unknown_ids": s.unknown_ids == 0,
            "non_jsonrpc_lines": s.non_jsonrpc_lines == 0,
            "wrong_text": s.wrong_text == 0,
            "write_errors": s.write_errors == 0,
            "rss_flat": rss_flat,
            "fds_flat": fds_flat,
            "exit_code_0": self.exit_code == 0,
            "no_leaked_processes": not self.leaked,
        }
        failures = list(self.failures) + [f"check failed: {k}" for k, ok in checks.items() if not ok]
        restarts = {sv.get("name"): sv.get("restarts") for sv in (self.final_health or {}).get("servers", [])}
        return {
            "pass": not failures,
            "failures": failures,
            "duration_s": self.args.duration,
            "elapsed_s": round(elapsed, 1),
            "seed": self.seed,
            "binary": str(Path(self.args.binary).resolve()),
            "callers": self.args.callers,
            "calls_sent": s.calls_sent,
            "answered_ok": s.answered_ok,
            "answered_error": s.answered_error,
            "answered_is_error": s.answered_is_error,
            "failed_over": s.failed_over,
            "errors_by_code": s.errors_by_code,
            "wrong_text": s.wrong_text,
            "requests_total": s.requests_total,
            "kills": s.sigkills + s.crash_deaths,
            "sigkills": s.sigkills,
            "crash_calls": s.crash_calls,
            "crash_deaths": s.crash_deaths,
            "kill_skipped": s.kill_skipped,
            "restarts": restarts,
            "lost": s.lost,
            "duplicates": s.duplicates,
            "late": s.late,
            "unknown_ids": s.unknown_ids,
            "non_jsonrpc_lines": s.non_jsonrpc_lines,
            "write_errors": s.write_errors,
            "server_requests": s.server_requests,
            "notifications": s.notifications,
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
            "rss_kb": {"first": base[0], "max": max(rss_all, default=0), "last": last[0], "flat": rss_flat},
            "fds": {"first": base[1], "max": max(fds_all, default=0), "last": last[1], "flat": fds_flat},
            "samples": self.samples,
            "quiesce_s": self.quiesce_s,
            "gateway_exit_code": self.exit_code,
            "leaked_processes": self.leaked,
            "checks": checks,
            "examples": s.examples,
            "stderr_log": str(self.stderr_path) if failures or self.args.keep_dir else None,
        }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=180.0, help="seconds of chaos (default 180)")
    p.add_argument("--binary", default=str(default_binary()),
                   help="mcp-orchestra binary (default target/release if built, else target/debug); "
                        "orchestra-fault-child must sit next to it")
    p.add_argument("--callers", type=int, default=8, help="concurrent callers (default 8)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    p.add_argument("--keep-dir", action="store_true", help="keep the temp dir (config, gateway stderr)")
    args = p.parse_args()
    if args.duration <= 0 or args.callers < 1:
        p.error("--duration must be > 0 and --callers >= 1")
    return args


def main() -> int:
    args = parse_args()
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    workdir = Path(tempfile.mkdtemp(prefix="orchestra-chaos-"))
    soak = Soak(args, seed)
    started = time.monotonic()
    crashed = None
    try:
        asyncio.run(soak.run(workdir))
    except Exception as e:  # a broken soak is a failed soak, still with a summary
        crashed = f"soak aborted: {type(e).__name__}: {e}"
        soak.failures.append(crashed)
    summary = soak.summary(time.monotonic() - started)
    text = json.dumps(summary, indent=2)
    # One line per [t, rss_kb, fds] sample.
    text = re.sub(r"\[\s+([\d.]+),\s+([\d.]+),\s+([\d.]+)\s+\]", r"[\1, \2, \3]", text)
    print(text, flush=True)
    if summary["pass"] and not args.keep_dir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"kept {workdir} (gateway stderr: {workdir / 'gateway.stderr'})")
    return 0 if summary["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
