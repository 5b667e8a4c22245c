"""Reverse-sync latency: a responder acknowledges a Signl → the Sentinel incident shows them as owner, and Active.

Three processes: this driver; the emulators (``bench/_emulator.py``), which also play the responders and SIGNL4's
outbound webhook; and the connector as ``sentinel-signl4 run`` (supervisor + web server), observed from outside:
CPU time from ``/proc/<pid>/stat``, requests as the emulators counted them. Two modes, each with fresh processes:

* **webhook**: right after the action the emulator POSTs SIGNL4's notification to the connector's receiver, which
  writes it to the inbox, answers 202 and wakes the connector. The poll interval is the default 30 s, so anything
  faster than that is the wake-up, not a poll.
* **poll**: ``sync.mode = "poll"``, SIGNL4's REST API polled every 2 s (``poll_signl4_interval``), poll interval 2 s;
  no inbound connection.

Latency is measured in the emulator process on one monotonic clock: from just before SIGNL4 applies the
acknowledgement to the first moment Sentinel's state shows owner = that responder and status Active (watched every
2 ms). One action at a time, each on its own incident, after a random pause of 0–2 s, so actions fall at every phase
of the poll cycle. Before the actions the connector idles for a while, to tell the mode's fixed cost from the cost
of the actions.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from _emulator import EmulatorProcess
from _report import (
    add_output_arguments,
    finite,
    heading,
    machine,
    percentile,
    publish,
    report,
    saved_report,
    stop_child,
    table,
)
from sentinel_signl4.domain import external_id_for

CONNECTOR = "contoso"  # the demo connector's name in emulator_config
TOKEN = "bench-reverse-sync-webhook-token-0123456789"
MODES = ("webhook", "poll")
# Request categories of bench/_emulator.py shown per action; the rest are summed under "other".
SHOWN = (("sentinel list incidents", "list"), ("sentinel get incident", "get"), ("sentinel put incident", "put"),
         ("sentinel comments", "comment"), ("graph", "graph"), ("signl4 rest api", "signl4"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def wait_for(what: str, check: Callable[[], bool], *, within: float, proc: subprocess.Popen[bytes],
             log: Path) -> None:
    deadline = time.monotonic() + within
    while not check():
        if proc.poll() is not None:
            sys.exit(f"the connector exited ({proc.returncode}) while waiting for {what}:\n{tail(log)}")
        if time.monotonic() > deadline:
            sys.exit(f"gave up after {within:.0f} s waiting for {what}:\n{tail(log)}")
        time.sleep(0.1)


def tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def open_rows(db: Path) -> int | None:
    """Outbox rows not yet done, read from the connector's SQLite file; None before the connector created it."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM outbox WHERE state IN ('pending', 'in_flight')")
                       .fetchone()[0])
    except sqlite3.Error:
        return None


def one_mode(mode: str, *, actions: int, idle: float, pause: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess(Path(tmp) / "emulator") as emu:
        port, db, log = free_port(), Path(tmp) / "state.db", Path(tmp) / "connector.log"
        created = emu.call("burst", count=actions)  # in the demo workspace, which the demo connector reads
        users = emu.call("users")
        if mode == "webhook":
            overrides: dict[str, Any] = {"connector": {"poll_interval": "30s"},
                                         "sync": {"mode": "webhook", "webhook_token": TOKEN}}
        else:
            overrides = {"connector": {"poll_interval": "2s"}, "sync": {"mode": "poll", "poll_signl4_interval": "2s"}}
        overrides["filter"] = {"severities": ["High"], "max_age": "1h"}
        interval = float(overrides["connector"]["poll_interval"].rstrip("s"))
        config = Path(tmp) / "config.toml"
        config.write_text(emu.call(
            "config", store_url=f"sqlite:///{db}", overrides=overrides,
            extra_tables=f'[server]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'),
            encoding="utf-8")
        names = {external_id_for(CONNECTOR, item["id"]): str(item["id"]).rsplit("/", 1)[-1] for item in created}

        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "sentinel_signl4", "run", "--config", str(config)],
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            def warm() -> bool:
                raised = {a["external_id"] for a in emu.call("alerts")}
                return names.keys() <= raised and open_rows(db) == 0

            started = time.monotonic()
            wait_for(f"{actions} incidents paged and tagged", warm, within=300, proc=proc, log=log)
            warmup = time.monotonic() - started
            if mode == "webhook":
                emu.call("webhook", url=f"http://127.0.0.1:{port}/webhooks/signl4/{CONNECTOR}/{TOKEN}")

            # Idle: what the mode costs with nothing to sync, over at least two poll intervals.
            counts0, cpu0, wall0 = emu.counts(), proc_cpu_seconds(proc.pid), time.monotonic()
            time.sleep(max(idle, 2 * interval))
            counts1, cpu1, wall1 = emu.counts(), proc_cpu_seconds(proc.pid), time.monotonic()

            latencies: list[float] = []
            delivery: list[float] = []
            for n, (external_id, name) in enumerate(names.items()):
                time.sleep(rng.uniform(0, pause))
                user = users[n % len(users)]
                acted = emu.call("act", action="acknowledge", external_id=external_id, user=user["mail"])
                if "error" in acted:
                    sys.exit(f"act: {acted['error']}")
                if mode == "webhook":
                    report = emu.call("deliver")
                    if report["failed"] or report["delivered"] != 1:
                        sys.exit(f"webhook delivery: {report}\n{tail(log)}")
                    delivery.append(report["seconds"])
                seen = emu.call("await_incident", name=name, within=60.0,
                                want={"status": "Active", "owner.objectId": user["object_id"]})
                if "error" in seen:
                    sys.exit(f"{seen['error']} (saw {seen['seen']})\n{tail(log)}")
                latencies.append(seen["t"] - acted["t"])
            # The last acknowledgement's comment follows its incident update: the window ends when it is written.
            wait_for("the last comment", lambda: open_rows(db) == 0, within=60, proc=proc, log=log)
            counts2, cpu2, wall2 = emu.counts(), proc_cpu_seconds(proc.pid), time.monotonic()

            # Every incident got its one acknowledgement comment, and only that.
            comments = Counter(len(emu.call("comments", name=name)) for name in names.values())
            peak_rss = proc_peak_rss(proc.pid)
        finally:
            stop_child(proc)
        log_text = log.read_text(encoding="utf-8", errors="replace")
    idle_counts = counts1 - counts0
    busy_counts = counts2 - counts1
    return {
        "mode": mode, "actions": actions, "latencies": latencies, "delivery": delivery, "warmup": warmup,
        "idle_seconds": wall1 - wall0, "idle_requests": sum(idle_counts.values()), "idle_cpu": cpu1 - cpu0,
        "busy_seconds": wall2 - wall1, "busy_requests": dict(busy_counts), "busy_cpu": cpu2 - cpu1,
        "comments_per_incident": {str(k): v for k, v in comments.items()}, "peak_rss": peak_rss,
        "exit_code": proc.returncode,
        "log_errors": sum(1 for line in log_text.splitlines() if "[error" in line or "[warning" in line),
        "interval": interval, "p50_s": finite(percentile(latencies, 50)), "p95_s": finite(percentile(latencies, 95)),
        "p99_s": finite(percentile(latencies, 99)), "rss_mib": finite(peak_rss / 2**20),
    }


def render(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        lat, n = r["latencies"], r["actions"]
        busy: Counter[str] = Counter(r["busy_requests"])
        total = sum(busy.values())
        shown = [f"{label} {busy[key] / n:.2f}" for key, label in SHOWN if busy[key]]
        other = total - sum(busy[key] for key, _ in SHOWN)
        if other:
            shown.append(f"other {other / n:.2f}")
        rows.append([
            r["mode"], f"{r['interval']:g} s", n,
            f"{percentile(lat, 50):.3f}", f"{percentile(lat, 95):.3f}", f"{max(lat):.3f}",
            f"{total / n:.1f}", ", ".join(shown), f"{1000 * r['busy_cpu'] / n:.0f}",
            f"{r['busy_cpu'] / r['busy_seconds']:.3f}", f"{per_minute(r):.1f}",
            f"{1000 * r['idle_cpu'] / r['idle_seconds']:.1f}",
        ])
    return table(["mode", "poll interval", "actions", "p50 s", "p95 s", "max s", "requests/action",
                  "of which, per action", "CPU ms/action", "CPU cores", "idle requests/min", "idle CPU ms/s"], rows)


def per_minute(result: dict[str, Any]) -> float:
    """Idle requests per minute."""
    return 60 * float(result["idle_requests"]) / float(result["idle_seconds"])


def doc_section(obj: Mapping[str, Any]) -> str:
    args, results = argparse.Namespace(**obj["params"]), obj["runs"]
    figures = render(results)
    by_mode = {r["mode"]: r for r in results}
    notes = []
    for r in results:
        extra = (f"; webhook POST answered (inbox written) in p50 {1000 * percentile(r['delivery'], 50):.1f} ms, "
                 f"max {1000 * max(r['delivery']):.1f} ms" if r["delivery"] else "")
        notes.append(f"- {r['mode']}: {r['actions']} acknowledgements over {r['busy_seconds']:.0f} s (idle window "
                     f"{r['idle_seconds']:.0f} s before them); comments per incident {r['comments_per_incident']} "
                     f"(1 = the acknowledgement comment, once); warm-up {r['warmup']:.1f} s; connector peak RSS "
                     f"{r['peak_rss'] / 2**20:.0f} MiB; exit code after SIGTERM {r['exit_code']}; warning/error log "
                     f"lines {r['log_errors']}{extra}.")
    reading = ""
    if "webhook" in by_mode and "poll" in by_mode:
        w, p = by_mode["webhook"], by_mode["poll"]
        reading = (
            f"With the webhook, an acknowledgement is in Sentinel {percentile(w['latencies'], 50):.2f} s later at the "
            f"median ({max(w['latencies']):.2f} s at worst) although the connector polls only every "
            f"{w['interval']:g} s: "
            "the receiver wakes it, and the cycle it starts does two incident list reads (lifecycle, new incidents), "
            "reads the inbox, then GET + PUT of the incident and a PUT of the comment. Polling SIGNL4 every "
            f"{p['interval']:g} s instead: p50 {percentile(p['latencies'], 50):.2f} s, p95 "
            f"{percentile(p['latencies'], 95):.2f} s, max {max(p['latencies']):.2f} s, i.e. the wait for the next "
            "cycle (up to one interval plus the cycle under way) plus the cycle that finds the change and applies it. "
            "Against Azure and SIGNL4 over the internet every request above adds tens to hundreds of milliseconds.\n\n"
            "Cost: with the webhook an acknowledgement costs the cycle it wakes (two list reads) plus its writes, and "
            f"an idle connector makes {per_minute(w):.0f} requests/min at a {w['interval']:g}-s poll interval. "
            f"Polling makes {per_minute(p):.0f} requests/min while nothing happens (two list reads and one SIGNL4 "
            f"search per {p['interval']:g}-s cycle), and its requests/action include the cycles that ran meanwhile "
            f"({p['busy_requests'].get('signl4 rest api', 0)} SIGNL4 REST calls during the "
            f"{p['busy_seconds']:.0f}-s window). Its CPU also grows with the number of SIGNL4 alerts changed in the "
            "last 2 minutes, which every poll reads again (the overlap that absorbs clock skew, `OVERLAP` in "
            f"`engine/signl4_poll.py`): the idle window here follows the raising of the {p['actions']} Signls, and "
            "during the actions each poll re-reads every alert acknowledged in the 2 minutes before it.")

    return f"""
## Reverse-sync latency (`bench/reverse_sync.py`)

{heading(obj)}

A responder acknowledges a Signl; latency runs until the Sentinel incident shows that responder as owner and status
Active. The connector runs as `sentinel-signl4 run` (supervisor + web server) in its own process against the emulators
in another; the emulator process plays the responder and SIGNL4's outbound webhook and watches the incident (every
2 ms), so both ends of the latency are on its clock. {args.actions} acknowledgements per mode, one at a time, each on
its own incident, after a random pause of 0–{args.pause:g} s (every phase of the poll cycle); owners are resolved
through the emulated Graph (cached per responder).

- **webhook**: SIGNL4's notification is POSTed to the receiver right after the action (`sync.mode = "webhook"`);
  the receiver writes the inbox, answers 202 and wakes the connector. **poll**: `sync.mode = "poll"`,
  `poll_signl4_interval = "2s"`, no inbound connection.
- **requests/action**: every request the emulators answered from the first action until the last one's comment was
  written, ÷ actions (idle polling during that time included); **of which**: by kind (list = Sentinel incident
  list queries, get/put = one incident, comment = comment PUT, graph = owner lookup, signl4 = SIGNL4 REST API).
- **CPU ms/action**, **CPU cores**: the connector process's CPU time (`/proc`, user + system) over the same window,
  ÷ actions and ÷ wall time. **idle requests/min**, **idle CPU ms/s**: the same while nothing is to sync, over
  {args.idle:g} s or two poll intervals, whichever is longer, before the actions.

{figures}

{chr(10).join(notes)}

{reading}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=50, help="acknowledgements per mode")
    parser.add_argument("--modes", default=",".join(MODES), help="webhook, poll or both (comma-separated)")
    parser.add_argument("--idle", type=float, default=30.0,
                        help="seconds of idling measured before the actions (at least two poll intervals)")
    parser.add_argument("--pause", type=float, default=2.0, help="random pause before each action: 0..PAUSE s")
    parser.add_argument("--seed", type=int, default=1)
    add_output_arguments(parser)
    args = parser.parse_args()
    saved = saved_report(args)
    if saved is not None:
        publish("reverse_sync", saved, doc_section, args)
        return
    host = machine()  # before the run: the load average says what else was running
    started = time.perf_counter()
    results = []
    for mode in args.modes.split(","):
        results.append(one_mode(mode, actions=args.actions, idle=args.idle, pause=args.pause, seed=args.seed))
        print(f"{mode} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    first = results[0]  # the headline figures: the first mode measured (webhook by default)
    obj = report("reverse_sync", host, vars(args), **{k: first[k] for k in ("p50_s", "p95_s", "p99_s", "rss_mib")},
                 headline_mode=first["mode"], runs=results)
    publish("reverse_sync", obj, doc_section, args, text=render(results))


if __name__ == "__main__":
    main()
