"""The emulators in a process of their own, for the benchmarks, driven over a pipe.

The benchmark script is the connector's process: its CPU time and memory are the connector's alone, and nothing
the emulators do (TLS, JSON, state) is counted against it. The emulator process:

* seeds the demo world (``--open-arm-limits`` lifts ARM's buckets and Sentinel's per-workspace limits), plus
  ``tenants`` extra tenants (a Sentinel workspace the demo app may write to and a SIGNL4
  subscription, team, user and API key each), so many connectors can run side by side without sharing a budget;
* counts every request it answers by service, method and status (an ASGI wrapper around the real app), which is
  how the benchmarks count requests per poll and 429 answers, on the server side;
* creates incidents itself (a burst, or a stream at a steady rate), so that creating them costs the connector's
  process nothing and the emulator's clock stamps both the incident and the alert;
* plays the responders and SIGNL4's outbound webhook (``act``, ``webhook``, ``deliver``) and watches an incident until
  it shows what a reverse sync should write (``await_incident``), on this process's clock.

Run ``python bench/_emulator.py --help`` for the child's options; benchmarks use :class:`EmulatorProcess`.
Protocol: the child prints one JSON line when it is ready, then answers one JSON line per JSON command on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr

from sentinel_signl4.config import Config, parse_config

# Request categories, first match wins (paths only; the query string is not part of the ASGI path).
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("entra token", "*", r"/oauth2/v2\.0/token$"),
    ("sentinel list incidents", "GET", r"/providers/Microsoft\.SecurityInsights/incidents$"),
    ("sentinel get incident", "GET", r"/providers/Microsoft\.SecurityInsights/incidents/[^/]+$"),
    ("sentinel put incident", "PUT", r"/providers/Microsoft\.SecurityInsights/incidents/[^/]+$"),
    ("sentinel alerts/entities", "*", r"/incidents/[^/]+/(alerts|entities)$"),
    ("sentinel comments", "*", r"/incidents/[^/]+/comments"),
    ("sentinel other", "*", r"^/subscriptions/"),
    ("log analytics query", "*", r"^/v1/workspaces/"),
    ("graph", "*", r"^/v1\.0/"),
    ("signl4 event", "POST", r"^/webhook/"),
    ("signl4 rest api", "*", r"^/api/"),
    ("control plane", "*", r"^/_control/"),
    ("other", "*", r""),
)
_COMPILED = tuple((name, method, re.compile(pattern)) for name, method, pattern in CATEGORIES)


def category(method: str, path: str) -> str:
    for name, wanted, regex in _COMPILED:
        if (wanted == "*" or wanted == method) and regex.search(path):
            return name
    return "other"


# -- the child --------------------------------------------------------------------------------------------------------

class _Counting:
    """ASGI wrapper counting (category, method, status) of every answered request; thread-safe snapshot."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[tuple[str, str, int]] = Counter()
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = category(scope["method"], scope["path"])

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                with self.lock:
                    self.counts[(key, scope["method"], int(message["status"]))] += 1
            await send(message)

        await self.app(scope, receive, counting_send)

    def snapshot(self) -> list[list[Any]]:
        with self.lock:
            return [[k[0], k[1], k[2], n] for k, n in self.counts.items()]


def _child(args: argparse.Namespace) -> None:
    from sentinel_signl4.demo_config import emulator_config
    from sentinel_signl4.domain import Severity
    from sentinel_signl4_emulators import server as server_module
    from sentinel_signl4_emulators.app import EmulatorState, build_app
    from sentinel_signl4_emulators.common.throttle import BucketPolicy
    from sentinel_signl4_emulators.seed import make_certificate, seed_demo
    from sentinel_signl4_emulators.sentinel.model import Role, WorkspaceRef

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    state = EmulatorState.new()
    now = datetime.now(UTC)
    world = seed_demo(state, now, certificate=make_certificate("bench", now))
    if args.open_arm_limits:
        # Many connectors share one app and subscription here; in real life they would be many tenants, each with
        # its own ARM budget. Lift the emulator's per-principal buckets so they measure the connector, not ARM.
        for operation in ("reads", "writes", "deletes"):
            state.sentinel.throttle.configure(operation, BucketPolicy(capacity=10**9, refill_per_second=10**9))
        # Sentinel's per-workspace limits too (bench/sentinel_writes.py sets them back to the documented counts).
        state.sentinel.write_limits.configure(limits=dict.fromkeys(("incidents", "comments", "alerts", "entities"),
                                                                   10**9))

    tenants: list[dict[str, str]] = []
    refs: list[WorkspaceRef] = []
    for i in range(args.tenants):
        ws = state.sentinel.create_workspace(world.subscription_id, "rg-bench", f"law-bench-{i:04d}",
                                             tenant_id=world.tenant_id, workspace_id=str(uuid.uuid4()))
        state.sentinel.assign_role(world.client_id, ws.ref, Role.RESPONDER)
        s4 = state.signl4
        sub = s4.create_subscription()
        secret = uuid.uuid4().hex[:12]
        team = s4.create_team(sub.id, f"Bench {i}", secret=secret)
        s4.create_user(sub.id, f"Responder {i}", f"responder{i}@bench.example", team_ids=[team.id])
        api_key = s4.create_api_key(sub.id)
        refs.append(ws.ref)
        tenants.append({"workspace_name": ws.ref.name, "workspace_id": ws.workspace_id, "team_secret": secret,
                        "api_key": api_key, "team_id": team.id})

    counting: list[_Counting] = []

    def counted_app(emulator_state: Any) -> Any:
        counting.append(_Counting(build_app(emulator_state)))
        return counting[-1]

    setattr(server_module, "build_app", counted_app)  # noqa: B010 - the bench's only hook into the server
    server = server_module.EmulatorServer(state, workdir / "certs", port=args.port)
    server.start()
    ready = {"base_url": server.base_url, "ca": str(server.ca_path), "tenants": tenants,
             "world": {"workspace_name": world.workspace_name, "workspace_id": world.workspace_id}}
    print(json.dumps(ready), flush=True)

    # SIGNL4's outbound deliveries are POSTed from here, on one event loop kept for the child's life.
    deliveries = asyncio.new_event_loop()
    outbound = httpx.AsyncClient(timeout=30.0)

    def await_incident(name: str, want: Mapping[str, str], within: float) -> dict[str, Any]:
        """Poll the demo workspace's incident every 2 ms until every ``want`` key (``owner.objectId``: a dotted
        path into the properties) has its value; ``t`` is this process's monotonic clock then."""
        deadline = time.monotonic() + within
        while True:
            props = state.sentinel.get_incident(world.workspace, name)["properties"]
            if all(_dotted(props, key) == value for key, value in want.items()):
                return {"t": time.monotonic()}
            if time.monotonic() > deadline:
                return {"error": f"{name} did not show {dict(want)} within {within:g} s",
                        "seen": {key: _dotted(props, key) for key in want}}
            time.sleep(0.002)

    def create(ref: WorkspaceRef, title: str) -> dict[str, Any]:
        incident = state.sentinel.create_incident(ref, title=title, severity=Severity.HIGH)
        return {"workspace": ref.name, "id": incident["id"], "created": incident["properties"]["createdTimeUtc"]}

    watcher = _Watcher(lambda name: state.sentinel.get_incident(world.workspace, name)["properties"])

    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        reply: Any
        if op == "config":
            reply = emulator_config(world, server.base_url, ca_path=server.ca_path, store_url=command["store_url"],
                                    api_key=command.get("api_key", True), overrides=command.get("overrides"),
                                    extra_tables=command.get("extra_tables", ""))
        elif op == "counts":
            reply = counting[0].snapshot()
        elif op == "burst":
            # In an extra tenant's workspace, or without "tenant" in the demo world's (the demo connector's).
            ref = world.workspace if command.get("tenant") is None else refs[command["tenant"]]
            reply = [create(ref, f"Burst incident {n}") for n in range(command["count"])]
        elif op == "users":
            # The demo world's responders: SIGNL4 users of its team and Entra users of its tenant (same mail).
            reply = [{"mail": u.mail, "object_id": u.object_id, "name": u.display_name} for u in world.users]
        elif op == "webhook":
            state.signl4.register_webhook(world.signl4_subscription_id, command["url"])
            reply = {"registered": True}
        elif op == "act":
            # A responder acts on the newest alert with this ExternalID; "t": this process's monotonic clock just
            # before the action is applied (and its outbound notification queued).
            alerts, action = state.signl4.list_alerts(external_id=command["external_id"]), command["action"]
            started = time.monotonic()
            if not alerts or action not in ("acknowledge", "close", "annotate"):
                reply = {"error": f"no alert {command['external_id']!r} or unknown action {action!r}"}
            else:
                if action == "annotate":
                    state.signl4.annotate(alerts[0].id, command["user"], command["text"])
                else:
                    getattr(state.signl4, action)(alerts[0].id, command["user"])
                reply = {"t": started}
        elif op == "deliver":
            started = time.monotonic()
            report = deliveries.run_until_complete(state.signl4.deliver_outbound(outbound))
            reply = {"delivered": report.delivered, "failed": report.failed, "seconds": time.monotonic() - started}
        elif op == "await_incident":
            reply = await_incident(command["name"], command["want"], command.get("within", 60.0))
        elif op == "comments":
            reply = [c["properties"]["message"] for c in state.sentinel.comments(world.workspace, command["name"])]
        elif op == "stream":
            # Round-robin over the first ``tenants`` workspaces at ``rate`` incidents per second.
            rate, duration, spread = command["rate"], command["duration"], command["tenants"]
            reply, start, n = [], time.monotonic(), 0
            while n < rate * duration:
                due = start + n / rate
                time.sleep(max(0.0, due - time.monotonic()))
                reply.append(create(refs[n % spread], f"Stream incident {n}") | {"tenant": n % spread})
                n += 1
        elif op == "write_limits":
            # Sentinel's per-workspace limits: shrink the window (time compression); answer settings and counts.
            if command.get("window") is not None or command.get("limits"):
                state.sentinel.write_limits.configure(window=command.get("window"), limits=command.get("limits"))
            reply = state.sentinel.write_limits.snapshot()
        elif op == "watch_start":
            watcher.start(command["names"], command["want"])
            reply = {"watching": len(command["names"])}
        elif op == "watch_result":
            reply = watcher.result()
        elif op == "tagged":
            # How many of the named incidents of the demo workspace carry the label ``tag``.
            reply = sum(1 for name in command["names"]
                        if any(label.get("labelName") == command["tag"] for label in
                               state.sentinel.get_incident(world.workspace, name)["properties"].get("labels") or []))
        elif op == "alerts":
            reply = [{"external_id": a.external_id, "created": a.created.isoformat(), "team_id": a.team_id}
                     for a in state.signl4.list_alerts()]
        elif op == "usage":
            reply = {"cpu_seconds": time.process_time()}
        elif op == "quit":
            print(json.dumps(None), flush=True)
            break
        else:
            reply = {"error": f"unknown op {op!r}"}
        print(json.dumps(reply), flush=True)
    deliveries.run_until_complete(outbound.aclose())
    deliveries.close()
    server.stop()


class _Watcher:
    """Watches many incidents at once, in a thread (every 5 ms), and keeps the first moment each showed ``want``
    (this process's monotonic clock), so responders can act meanwhile."""

    def __init__(self, read: Any) -> None:
        self._read = read
        self._seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, names: list[str], want: Mapping[str, str]) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._seen, self._stop = {}, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(list(names), dict(want), self._stop), daemon=True)
        self._thread.start()

    def _run(self, names: list[str], want: dict[str, str], stop: threading.Event) -> None:
        waiting = set(names)
        while waiting and not stop.is_set():
            for name in list(waiting):
                props = self._read(name)
                if all(_dotted(props, key) == value for key, value in want.items()):
                    self._seen[name] = time.monotonic()
                    waiting.discard(name)
            stop.wait(0.005)

    def result(self) -> dict[str, float]:
        return dict(self._seen)


def _dotted(props: Mapping[str, Any], path: str) -> Any:
    value: Any = props
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


# -- the parent -------------------------------------------------------------------------------------------------------

class EmulatorProcess:
    """Starts the child, answers its commands; ``with EmulatorProcess(workdir, tenants=n) as emu: ...``."""

    def __init__(self, workdir: Path, *, tenants: int = 0, open_arm_limits: bool = False,
                 startup_timeout: float = 300.0) -> None:
        self.workdir = workdir
        self.tenants_wanted = tenants
        self.open_arm_limits = open_arm_limits
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.ready: dict[str, Any] = {}

    def __enter__(self) -> EmulatorProcess:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--workdir", str(self.workdir),
               "--tenants", str(self.tenants_wanted)]
        if self.open_arm_limits:
            cmd.append("--open-arm-limits")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulator process exited ({self._proc.wait()}) before it was ready")
        self.ready = json.loads(line)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is None:
            return
        try:
            if self._proc.poll() is None:
                self.call("quit")
            self._proc.wait(timeout=15)
        except Exception:
            self._proc.kill()
            self._proc.wait()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def base_url(self) -> str:
        return str(self.ready["base_url"])

    @property
    def tenants(self) -> list[dict[str, str]]:
        return list(self.ready["tenants"])

    def call(self, op: str, **args: Any) -> Any:
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process died")
        return json.loads(line)

    async def acall(self, op: str, **args: Any) -> Any:
        """``call`` from a thread, so the connector's event loop keeps running meanwhile."""
        return await asyncio.to_thread(self.call, op, **args)

    def counts(self) -> Counter[str]:
        """Requests answered so far, by category (control-plane calls excluded)."""
        totals: Counter[str] = Counter()
        for name, _method, _status, n in self.call("counts"):
            if name != "control plane":
                totals[name] += n
        return totals

    def statuses(self) -> Counter[tuple[str, int]]:
        totals: Counter[tuple[str, int]] = Counter()
        for name, _method, status, n in self.call("counts"):
            totals[(name, status)] += n
        return totals

    def config(self, *, store_url: str, connectors: int | None = None, api_key: bool = True,
               overrides: Mapping[str, Mapping[str, Any]] | None = None, extra_tables: str = "") -> Config:
        """The demo connector's config (``connectors=None``), or one connector per extra tenant, named c0000…"""
        text = self.call("config", store_url=store_url, api_key=api_key, overrides=overrides or {},
                         extra_tables=extra_tables)
        config = parse_config(text, source="bench.toml")
        if connectors is None:
            return config
        base = config.connectors[0]
        copies = []
        for i, tenant in enumerate(self.tenants[:connectors]):
            azure = base.azure.model_copy(update={"workspace_name": tenant["workspace_name"],
                                                  "resource_group": "rg-bench",
                                                  "workspace_id": tenant["workspace_id"]})
            signl4 = base.signl4.model_copy(update={
                "webhook_url": SecretStr(f"{self.base_url}/webhook/{tenant['team_secret']}"),
                "api_key": SecretStr(tenant["api_key"]) if api_key else None,
                "subscription": f"bench-{i:04d}",  # one SIGNL4 subscription (and rate budget) per connector
            })
            copies.append(base.model_copy(update={"name": f"c{i:04d}", "display_name": f"Bench {i}",
                                                  "azure": azure, "signl4": signl4}))
        return config.model_copy(update={"connectors": tuple(copies)})


def parse_utc(value: str) -> datetime:
    """Emulator timestamps: ISO 8601 with up to 7 fractional digits and ``Z`` or an offset."""
    match = re.match(r"^(.*?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", value)
    if not match:
        return datetime.fromisoformat(value)
    base, fraction, zone = match.groups()
    moment = datetime.fromisoformat(base).replace(tzinfo=UTC)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return moment + timedelta(microseconds=int((fraction or "0")[:6].ljust(6, "0")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--tenants", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--open-arm-limits", action="store_true")
    _child(parser.parse_args())


if __name__ == "__main__":
    main()
