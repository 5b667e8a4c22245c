"""kill -9 between "inbox written" and "Sentinel updated" (issue 3): after a restart nothing a responder did is lost
and no comment is written twice.

A real ``sentinel-signl4 run`` process (``crash_support.Scenario``) raises Signls for a few seeded incidents; then
SIGNL4's outbound webhook is registered at that process's receiver, responders acknowledge, annotate (``#fp:logic``)
and close, and the emulator delivers the notifications. The receiver writes each one to the inbox and answers 202;
the cycle it wakes turns them into outbox rows and starts writing to Sentinel. A fault rule holds Sentinel at one of
three points, the test waits until the process is stuck exactly there, and kills it:

* ``applied``: Sentinel applies the PUTs (incident update, comment) and holds the answers. The rows are IN_FLIGHT
  with their effect already in Sentinel and not recorded: a restart re-runs them (GET/merge/PUT decides nothing is
  left to change; a comment is PUT again under the same id).
* ``not-applied``: Sentinel holds the PUTs before applying anything. The rows are IN_FLIGHT with no effect at all.
* ``not-planned``: the cycle is held at its first Sentinel read, before it reads the inbox: the events are in the
  inbox and nothing else exists yet.

The restart is ``run --once`` until the inbox and the outbox are quiescent. Then every action is in Sentinel (owner,
status, classification), every expected comment exists exactly once and no other, nothing is dead-lettered, no
Signl was raised again and no "resolved" echoed back to SIGNL4. ``reraise_on_reopen`` is on, so a close that the
connector recorded but had not yet applied must not be mistaken for a reopen.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crash_support import CONCURRENCY, CONNECTOR, HOLD, SLOW, Scenario, free_port, has_tag
from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState, external_id_for
from sentinel_signl4.store import InboxState
from sentinel_signl4.store.factory import open_store
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.seed import DemoUser

pytestmark = pytest.mark.slow

TOKEN = "crash-reverse-webhook-token-0123456789"
ONLY_SEEDED = {"severities": ["High"], "max_age": "15m"}
SENTINEL_WRITE = r"/providers/Microsoft\.SecurityInsights/incidents/[^/]+(/comments/[^/]+)?$"
INCIDENT_LIST = r"/providers/Microsoft\.SecurityInsights/incidents$"
REVERSE_KINDS = (ActionKind.UPDATE_INCIDENT, ActionKind.ADD_COMMENT)
FP_LOGIC = "#fp:logic the rule matches the nightly backup job"
DELIVERY_TIMEOUT = 30.0  # per webhook POST to the connector's receiver


@dataclass(frozen=True)
class Responder:
    """What happens on one incident's Signl: ``acker`` acknowledges (and closes, when ``close``); ``annotator``
    adds ``note``."""

    acker: int
    annotator: int | None = None
    note: str = ""
    close: bool = False


# Six incidents, every kind of action: a close whose classification comes from a #fp:logic annotation, a close with
# the configured default, keyword and plain annotations, plain acknowledgements. More incidents than the outbox
# runs at once, so a kill also leaves rows that never started.
ACTIONS = (
    Responder(acker=0, annotator=1, note=FP_LOGIC, close=True),
    Responder(acker=1, annotator=2, note=FP_LOGIC, close=True),
    Responder(acker=2, annotator=3, note=FP_LOGIC),
    Responder(acker=3, close=True),
    Responder(acker=0),
    Responder(acker=1, annotator=0, note="asked the user, waiting for an answer"),
)
NOTIFICATIONS = sum(1 + (a.annotator is not None) + a.close for a in ACTIONS)


@dataclass
class ReverseScenario:
    s: Scenario
    port: int

    @property
    def h(self) -> Harness:
        return self.s.harness

    @property
    def users(self) -> tuple[DemoUser, ...]:
        return self.h.world.users

    def alert_id(self, name: str) -> str:
        [alert] = self.h.alerts(self.external_id(name))
        return str(alert.id)

    def external_id(self, name: str) -> str:
        return external_id_for(CONNECTOR, str(self.h.incident(name)["id"]))

    def comments(self, name: str) -> list[str]:
        return [c["properties"]["message"] for c in self.h.state.sentinel.comments(self.h.world.workspace, name)]

    def inbox(self) -> Counter[str]:
        """Inbox rows by state, read from the connector's SQLite file (the store API has no inbox count)."""
        path = self.h.tmp / "state.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute("SELECT state, count(*) FROM inbox WHERE connector = ? GROUP BY state",
                              (CONNECTOR,)).fetchall()
        return Counter({str(state): int(n) for state, n in rows})

    async def reverse_rows(self) -> list[Any]:
        return [r for r in await self.s.store.list_actions(CONNECTOR, limit=100_000) if r.kind in REVERSE_KINDS]

    async def quiescent(self) -> bool:
        return await self.s.open_rows() == 0 and self.inbox()[InboxState.PENDING] == 0

    def act(self) -> None:
        for name, plan in zip(self.s.names, ACTIONS, strict=True):
            alert, acker = self.alert_id(name), self.users[plan.acker]
            self.h.state.signl4.acknowledge(alert, acker.mail)
            if plan.annotator is not None:
                self.h.state.signl4.annotate(alert, self.users[plan.annotator].mail, plan.note)
            if plan.close:
                self.h.state.signl4.close(alert, acker.mail)

    async def deliver(self) -> None:
        async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT) as client:
            report = await self.h.state.signl4.deliver_outbound(client)
        assert (report.delivered, report.failed) == (NOTIFICATIONS, 0), \
            f"webhook delivery to the connector's receiver: {report}\n{self.s.log_tail()}"

    # -- the guarantees -------------------------------------------------------------------------------------------
    def assert_every_action_reflected(self) -> None:
        problems: list[str] = []
        for name, plan in zip(self.s.names, ACTIONS, strict=True):
            props = self.h.incident(name)["properties"]
            acker = self.users[plan.acker]
            fp = plan.close and plan.note.startswith("#fp:logic")
            want = {
                "status": "Closed" if plan.close else "Active",
                "owner": acker.object_id,
                "classification": ("FalsePositive" if fp else "Undetermined") if plan.close else None,
                "classificationReason": "IncorrectAlertLogic" if fp else None,
            }
            got = {"status": props["status"], "owner": (props.get("owner") or {}).get("objectId"),
                   "classification": props.get("classification"),
                   "classificationReason": props.get("classificationReason")}
            if got != want:
                problems.append(f"{name}: {got} != {want}")
            if not has_tag(self.h.incident(name)):
                problems.append(f"{name}: the SIGNL4 label was dropped")
        assert not problems, "actions not reflected in Sentinel:\n" + "\n".join(problems) + "\n" + self.s.log_tail()

    def assert_each_comment_exactly_once(self) -> None:
        problems: list[str] = []
        for name, plan in zip(self.s.names, ACTIONS, strict=True):
            acker = self.users[plan.acker]
            expected: dict[str, Callable[[str], bool]] = {
                "ack": lambda m, a=acker: m.startswith(
                    f"Acknowledged in SIGNL4 by {a.display_name} ({a.mail}) at "),
            }
            if plan.annotator is not None:
                text = f"[SIGNL4] {self.users[plan.annotator].display_name}: {plan.note}"
                expected["annotation"] = lambda m, t=text: m == t
            if plan.close:
                verdict = ("FalsePositive (IncorrectAlertLogic)" if plan.note.startswith("#fp:logic")
                           else "Undetermined")
                expected["close"] = lambda m, a=acker, v=verdict: m.startswith(
                    f"Closed in SIGNL4 by {a.display_name} ({a.mail}) at ") and m.endswith(f"Classification: {v}.")
            comments = self.comments(name)
            for what, matches in expected.items():
                found = sum(1 for m in comments if matches(m))
                if found != 1:
                    problems.append(f"{name}: {found} {what} comments")
            if len(comments) != len(expected):
                problems.append(f"{name}: {len(comments)} comments, expected {len(expected)}: {comments}")
        assert not problems, "comments not exactly once:\n" + "\n".join(problems) + "\n" + self.s.log_tail()

    async def assert_nothing_dead_or_echoed(self) -> None:
        counts = await self.s.store.count_actions(CONNECTOR)
        assert counts[ActionState.DEAD] == 0, f"dead-lettered: {await self.s.counts()}\n{self.s.log_tail()}"
        assert self.inbox()[InboxState.DEAD] == 0, f"inbox events dead-lettered: {self.inbox()}"
        assert self.inbox()[InboxState.DONE] == NOTIFICATIONS, f"inbox: {self.inbox()}"
        for name in self.s.names:
            ext = self.external_id(name)
            assert len(self.h.alerts(ext)) == 1, f"{name}: the Signl was raised again after the restart"
            second = external_id_for(CONNECTOR, str(self.h.incident(name)["id"]), 2)
            assert not self.h.alerts(second), f"{name}: a close not yet applied was taken for a reopen (re-paged)"
            resolves = [e for e in list(self.h.state.signl4.events.values()) if e.external_id == ext and any(
                p.name == "X-S4-Status" and str(p.value).lower() == "resolved" for p in e.parameters)]
            assert not resolves, f"{name}: a close that came from SIGNL4 was echoed back as a resolve"



@pytest.fixture
async def reverse_scenario(harness: Harness) -> AsyncIterator[ReverseScenario]:
    now = datetime.now(UTC)
    names = [harness.state.sentinel.create_incident(
        harness.world.workspace, title=f"Reverse crash {n}", severity="High",
        created=now - timedelta(minutes=5, seconds=n))["name"] for n in range(len(ACTIONS))]
    port = free_port()
    config = harness.tmp / "config.toml"
    config.write_text(harness.config_text(
        server={"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        overrides={
            "filter": ONLY_SEEDED, "connector": {"poll_interval": "1s"},
            "sync": {"mode": "webhook", "webhook_token": TOKEN, "reraise_on_reopen": True,
                     "owner_map": {u.mail: u.object_id for u in harness.world.users}},
        },
        extra_tables="[connectors.enrichment]\nenabled = false\n"), encoding="utf-8")
    store = open_store(f"sqlite:///{harness.tmp / 'state.db'}")
    scenario = Scenario(harness, store, config, names)
    try:
        yield ReverseScenario(scenario, port)
    finally:
        await scenario.close()


# (what is held, phase, answered before the hold): see the module docstring.
POINTS = {
    "applied": (SENTINEL_WRITE, "PUT", "after", 3),
    "not-applied": (SENTINEL_WRITE, "PUT", "before", 0),
    "not-planned": (INCIDENT_LIST, "GET", "before", 0),
}


@pytest.mark.parametrize("point", list(POINTS))
async def test_kill_9_between_inbox_and_sentinel_loses_nothing_and_duplicates_no_comment(
        reverse_scenario: ReverseScenario, point: str) -> None:
    r, s = reverse_scenario, reverse_scenario.s
    proc = s.start()

    async def signls_raised() -> bool:
        return s.tagged() == len(s.names) and len(s.alert_counts()) == len(s.names) and await s.quiescent()

    await s.wait_until(f"{len(s.names)} Signls raised and tagged", signls_raised, proc=proc)
    r.h.state.signl4.register_webhook(
        r.h.world.signl4_subscription_id, f"http://127.0.0.1:{r.port}/webhooks/signl4/{CONNECTOR}/{TOKEN}")

    path, method, phase, after = POINTS[point]
    faults = r.h.state.faults
    if after:
        faults.add(FaultRule(path=path, method=method, kind="delay", phase="after", delay=SLOW, count=after))
    hold = faults.add(FaultRule(path=path, method=method, kind="delay", phase=phase, delay=HOLD))
    if point == "not-planned":
        # The next cycle (1-s poll interval) sticks at its first Sentinel read: everything delivered from now on
        # stays in the inbox, unplanned.
        await s.wait_until("a cycle held at its first Sentinel read", lambda: hold.fired >= 1, proc=proc)

    r.act()
    await r.deliver()
    # 202 means written: every notification is in the inbox now, whatever the connector is doing.
    assert sum(r.inbox().values()) == NOTIFICATIONS, f"inbox: {r.inbox()}"

    if point == "not-planned":
        assert r.inbox()[InboxState.PENDING] == NOTIFICATIONS, f"inbox: {r.inbox()}"
    else:
        async def stuck() -> bool:
            """Every outbox task is waiting on a held Sentinel write: each IN_FLIGHT row has exactly one held
            request, and as many rows are in flight as the outbox runs at once (or as incidents have work left)."""
            rows = await r.reverse_rows()
            in_flight = sum(1 for row in rows if row.state is ActionState.IN_FLIGHT)
            waiting = {row.incident_id for row in rows if row.state in (ActionState.PENDING, ActionState.IN_FLIGHT)}
            return hold.fired >= 1 and in_flight == hold.fired == min(CONCURRENCY, len(waiting))

        await s.wait_until("Sentinel writes in flight and held", stuck, proc=proc)
    s.kill(proc)
    faults.clear()

    # What the kill left: events in the inbox, and (for the write points) rows whose outcome nobody recorded.
    in_doubt = [row for row in await r.reverse_rows() if row.state is ActionState.IN_FLIGHT]
    assert sum(r.inbox().values()) == NOTIFICATIONS
    if point == "not-planned":
        assert not await r.reverse_rows(), "the cycle should not have planned anything"
    else:
        assert len(in_doubt) == hold.fired >= 1
    touched = [n for n in s.names if r.h.incident(n)["properties"]["status"] != "New" or r.comments(n)]
    if point == "applied":
        assert touched, "the held writes should already be visible in Sentinel"
    else:
        assert not touched, f"nothing should have reached Sentinel before the kill: {touched}"

    await s.recover(quiescent=r.quiescent)

    r.assert_every_action_reflected()
    r.assert_each_comment_exactly_once()
    await r.assert_nothing_dead_or_echoed()
    await s.assert_clean_outbox()
