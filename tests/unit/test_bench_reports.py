"""Every bench script's report: ``--json`` prints one object whose common figures use the shared vocabulary
(``bench/_report.py``), and the script's docs/performance.md section is rebuilt from that object alone. Checked on
small recorded objects; no bench runs here."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
HOST = "2 cores (test CPU), Linux, Python 3.11, load average 0.00 at start"


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name) for name in (
            "_report", "page_latency", "scale", "idle_poll", "burst", "enrichment", "reverse_sync",
            "sentinel_writes", "backlog_poll")}
    finally:
        sys.path.remove(str(BENCH))


def head(bench: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"bench": bench, "at": "2026-12-03 12:00 UTC", "host": HOST, "command": f".venv/bin/python {bench}.py",
            "params": params}


def latency_raw(n: int) -> dict[str, Any]:
    return {"connectors": n, "interval": 30.0, "incidents": 4, "latencies": [3.0, 12.5, 20.0, 29.0],
            "duplicates": 0, "window": 90.0, "cpu": 30.0, "emulator_cpu": 5.0, "cycles": 3000, "least_cycles": 2,
            "errors": 0, "error_kinds": {}, "build_seconds": 1.0, "warmup": 20.0, "stop_seconds": 2.0,
            "rss_start": 100 * 2**20, "rss_warm": 140 * 2**20, "rss_end": 141 * 2**20, "max_rss": 150 * 2**20,
            "status_429": 0}


def recorded(m: dict[str, ModuleType]) -> dict[str, tuple[dict[str, Any], Any]]:
    """Per script: a small report as it would print it, and its section builder."""
    sizes = [m["page_latency"].figures(latency_raw(n)) for n in (100, 1000)]
    pools = [{"workers": w, "connectors": 400, "interval_s": 1.0, "cycles_per_s": 40.0 * w, "cycles_per_cpu_s": 41.0,
              "cpu_cores": 0.98 * w, "rss_mib": 130.0 * w, "poll_period_s": 10.0 / w, "429s": 0,
              "ready_after_s": 30.0, "window_s": 60.0, "exit_code": 0} for w in (1, 2)]
    vocab = {k: sizes[-1][k] for k in ("p50_s", "p95_s", "p99_s", "poll_period_s", "cycles_per_cpu_s", "rss_mib",
                                       "dup", "errors", "429s")}
    scale = {**head("scale", {"interval": 30.0, "rate": 2.0, "periods": 3.0, "worker_connectors": 400,
                              "worker_interval": 1.0, "window": 60.0, "settle": 30.0}), **vocab,
             "sizes": sizes, "failed_sizes": [], "workers": pools, "throughput_ratio": {"2_over_1": 2.0},
             "workers_latency": [{**pools[1], "connectors": 1000, "interval_s": 30.0, "incidents": 180,
                                  "p50_s": 16.0, "p95_s": 29.0, "p99_s": 30.5, "unpaged": 0, "dup": 0}],
             "memory": {"connectors": 1000, "traced_kib_per_connector_built": 40.0,
                        "traced_kib_per_connector_after_cycle": 60.0,
                        "top_after_cycle": [{"file": "ssl.py", "kib_per_connector": 9.5, "blocks": 12}]}}
    page = {**head("page_latency", {"interval": 30.0, "rate": 2.0, "duration": 90.0}), **vocab, "sizes": sizes}
    idle_runs = [{"variant": "API key, SIGNL4 polled", "interval_s": 30.0, "open_signls": 3,
                  "requests_per_idle_poll": 1, "requests_per_idle_poll_mean": 1.5, "cpu_ms_per_idle_poll": 9.0,
                  "cycles_per_cpu_s": 100.0, "cpu_ms": [9.0, 10.0, 11.0], "wall_ms": [20.0, 21.0, 25.0],
                  "requests": [1, 1, 3], "by_kind": {"sentinel list incidents": 3}}]
    idle = {**head("idle_poll", {"cycles": 3, "interval": 30.0}), "requests_per_idle_poll": 1,
            "cycles_per_cpu_s": 100.0, "runs": idle_runs}
    burst_run = {"count": 300, "first": 2.0, "last": 30.0, "spread": 28.0, "densest": 140, "dup": 0,
                 "emulator_429": 0, "connector_429": 0, "sentinel_429": 0, "cycles": 40, "cpu": 6.0, "wall": 35.0}
    burst = {**head("burst", {"count": 300}), "dup": 0, "429s": 0, "run": burst_run}
    enrichment_runs = [{"incidents": 10, "alert_calls": 10, "entity_calls": 10, "queries": 1, "remote_calls": 21,
                        "rows": 10, "failures": 0, "p50_ms": 80.0, "p95_ms": 95.0, "rounds": 3, "p50_s": 0.08,
                        "p95_s": 0.095}]
    enrichment = {**head("enrichment", {"la_latency": 0.0, "budget": 10.0, "rounds": 3}), "p50_s": 0.08,
                  "p95_s": 0.095, "errors": 0, "runs": enrichment_runs}
    reverse_runs = [{"mode": mode, "actions": 2, "latencies": [0.2, 0.3], "delivery": [0.01, 0.02], "warmup": 1.0,
                     "idle_seconds": 30.0, "idle_requests": 60, "idle_cpu": 0.5, "busy_seconds": 5.0,
                     "busy_requests": {"sentinel list incidents": 4, "signl4 rest api": 2}, "busy_cpu": 0.2,
                     "comments_per_incident": {"1": 2}, "peak_rss": 120 * 2**20, "exit_code": 0, "log_errors": 0,
                     "interval": 30.0 if mode == "webhook" else 2.0, "p50_s": 0.2, "p95_s": 0.3, "p99_s": 0.3,
                     "rss_mib": 120.0} for mode in ("webhook", "poll")]
    reverse = {**head("reverse_sync", {"actions": 2, "modes": "webhook,poll", "idle": 30.0, "pause": 2.0,
                                       "seed": 1}),
               "p50_s": 0.2, "p95_s": 0.3, "p99_s": 0.3, "rss_mib": 120.0, "headline_mode": "webhook",
               "runs": reverse_runs}
    writes_runs = [{"variant": v, "incidents": 20, "acks": 2, "acks_applied": 2, "p50_s": 1.0, "p95_s": 2.0,
                    "p99_s": 2.0, "429s": 0, "refused_by_operation": {},
                    "granted_by_operation": {"alerts": 10, "entities": 10}, "dup": 0, "paged": 20, "tagged": 20,
                    "all_tagged": True, "tagged_when_acks_began": 5, "paged_after_s": 3.0, "finished_after_s": 40.0,
                    "open_rows_at_end": 0, "cpu_s_after_burst": 1.0, "rss_mib": 120.0, "errors": 0,
                    "log_warnings": 0, "connector_log_tail": ""} for v in ("before", "after")]
    writes = {**head("sentinel_writes", {"incidents": 20, "acks": 2, "pause": 1.0, "window": 10.0, "poll": 5.0,
                                         "drain": 300.0}),
              **{k: writes_runs[-1][k] for k in ("p50_s", "p95_s", "p99_s", "rss_mib", "dup", "errors", "429s")},
              "headline_variant": "after", "before_ref": "0123456789abcdef", "runs": writes_runs}
    side = {"backlog": 500, "cycles": 60, "open_signls": 500, "requests_per_idle_poll": 1,
            "requests_per_idle_poll_mean": 1.2, "list_reads_per_idle_poll": 1, "cpu_ms_per_idle_poll": 10.0,
            "cpu_ms_per_idle_poll_mean": 11.0, "cpu_ms_per_idle_poll_p95": 20.0, "store_write_cycles": 6,
            "errors": 0}
    backlog = {**head("backlog_poll", {"backlog": 500, "cycles": 60, "interval": 30.0}),
               "requests_per_idle_poll": 1, "errors": 0,
               "before": {**side, "code": "before (abc123)", "requests_per_idle_poll": 4},
               "after": {**side, "code": "after (this checkout)"},
               "before_over_after": {"requests_per_idle_poll": 4.0},
               "requests_by_kind_mean": {"before (abc123)": {"sentinel list incidents": 4.0},
                                         "after (this checkout)": {"sentinel list incidents": 1.0}},
               "interval_s": 30.0}
    return {
        "scale": (scale, m["scale"].section), "page_latency": (page, m["page_latency"].doc_section),
        "idle_poll": (idle, m["idle_poll"].doc_section), "burst": (burst, m["burst"].doc_section),
        "enrichment": (enrichment, m["enrichment"].doc_section),
        "reverse_sync": (reverse, m["reverse_sync"].doc_section),
        "sentinel_writes": (writes, m["sentinel_writes"].doc_section),
        "backlog_poll": (backlog, m["backlog_poll"].doc_section),
    }


SCRIPTS = ["scale", "page_latency", "idle_poll", "burst", "enrichment", "reverse_sync", "sentinel_writes",
           "backlog_poll"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_report_is_one_json_object_and_rebuilds_its_section(
        bench: dict[str, ModuleType], script: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench["_report"]
    obj, section = recorded(bench)[script]
    assert report.problems(obj) == []
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\n<!-- bench:{script} -->\nstale figures\n<!-- /bench:{script} -->\n",
                   encoding="utf-8")
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(obj), encoding="utf-8")
    args = argparse.Namespace(json=True, no_doc=True, from_json=str(saved))
    loaded = report.saved_report(args)
    report.publish(script, loaded, section, args)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == obj
    report.update_section(script, section(loaded), doc=doc)
    text = doc.read_text(encoding="utf-8")
    assert "stale figures" not in text and obj["at"] in text and obj["command"] in text and "|" in text


def test_a_report_without_vocabulary_or_with_a_synonym_is_refused(bench: dict[str, ModuleType]) -> None:
    report = bench["_report"]
    good = {**head("x", {}), "p95_s": 1.0, "runs": [{"dup": 0}]}
    assert report.problems(good) == []
    assert report.problems({**head("x", {}), "latency": 1.0}) == [
        f"no top-level field of the vocabulary ({', '.join(report.VOCABULARY)})"]
    assert report.problems({**good, "runs": [{"duplicates": 0}]}) == ["runs[0].duplicates: call it 'dup'"]
    assert report.problems({**good, "p99_s": "fast"}) == ["p99_s is not a number: 'fast'"]
    with pytest.raises(ValueError, match="missing 'host'"):
        report.emit({k: v for k, v in good.items() if k != "host"})
