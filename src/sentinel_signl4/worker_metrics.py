"""The workers' counters on the parent's ``/metrics`` under ``run --workers N``.

Each worker runs prometheus-client in multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` (set by the parent when it
starts the worker) names a directory of this run where every metric value the worker changes is written at once
into a memory-mapped file of its own (``counter_<pid>.db``, ``histogram_<pid>.db``, ``gauge_<mode>_<pid>.db``).
The parent reads those files on every scrape and adds them to its own registry's series:

* counters and histograms are summed over every file, the files of dead workers included: a worker killed with
  ``kill -9`` leaves its file (with every increment it made, none is buffered), and its replacement writes a new
  one, so the sum goes on from where it was and never goes back. When the parent sees a worker exit it folds that
  worker's counters and histograms into one file of exited workers (``<kind>_exited.db``, ``forget_worker``), so
  a worker that keeps dying leaves no trail of files; folding and reading take turns (``_TURNS``), so no scrape
  sees a count twice or not at all;
* the gauges the workers own (``WORKER_GAUGES``) are ``livemostrecent``: the value a live worker set last; the
  parent removes a dead worker's gauge file (``forget_worker``), so a dead worker's figure is not shown as current;
* every other gauge is the parent's own (the connector states it copies from the workers' health reports): the
  workers' copies are not read, so nothing is counted twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = ["MULTIPROC_ENV", "WORKER_GAUGES", "WorkersCollector", "forget_worker", "worker_environment"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Gauges set by the connector cycles, so only a worker knows them (``multiprocess_mode="livemostrecent"``).
WORKER_GAUGES = frozenset({"s4s_outbox_pending"})

#: The files the parent reads: not the workers' copies of the health gauges (``gauge_all_*``).
_FILES = ("counter_*.db", "histogram_*.db", "gauge_livemostrecent_*.db")

_Key = tuple[str, tuple[tuple[str, str], ...]]

#: Held while the parent reads the files or folds an exited worker's (a scrape may run in a thread).
_TURNS = threading.Lock()


def worker_environment(directory: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker process: ``base`` (default: this process's) with ``directory`` for its metrics."""
    return {**(os.environ if base is None else base), MULTIPROC_ENV: str(directory)}


def forget_worker(directory: Path, pid: int) -> None:
    """After worker ``pid`` exited: drop its gauge files, and fold its counters and histograms (which stay counted)
    into the file of exited workers."""
    with _TURNS:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        for unread in directory.glob(f"gauge_*_{pid}.db"):  # its copies of the health gauges
            unread.unlink(missing_ok=True)
        for kind in ("counter", "histogram"):
            _fold(directory, kind, pid)


def _fold(directory: Path, kind: str, pid: int) -> None:
    exited = directory / f"{kind}_{pid}.db"
    if not exited.exists():
        return
    record = directory / f"{kind}_exited.db"
    files = [str(p) for p in (record, exited) if p.exists()]
    # Not accumulated: histogram buckets stay per bucket, as in the workers' files.
    families: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=False)  # type: ignore[no-untyped-call]
    partial = directory / f"{kind}_exited.db.partial"  # not "*.db": never read half-written
    partial.unlink(missing_ok=True)
    out = MmapedDict(str(partial))  # type: ignore[no-untyped-call]
    try:
        for family in families:
            for sample in family.samples:
                key = mmap_key(family.name, sample.name, list(sample.labels), list(sample.labels.values()),
                               family.documentation)
                out.write_value(key, sample.value, 0.0)  # type: ignore[no-untyped-call]
    finally:
        out.close()  # type: ignore[no-untyped-call]
    os.replace(partial, record)
    exited.unlink()


class WorkersCollector:
    """``own``'s metrics with the workers' series in ``directory`` added (see the module docstring)."""

    def __init__(self, own: CollectorRegistry, directory: Path) -> None:
        self._own = own
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        theirs = {family.name: family for family in self._worker_families()}
        for family in self._own.collect():
            other = theirs.pop(family.name, None)
            if other is None or (family.type == "gauge" and family.name not in WORKER_GAUGES):
                yield family
            else:
                yield _combined(family, other)
        yield from theirs.values()

    def _worker_families(self) -> Iterable[Metric]:
        with _TURNS:
            files = sorted(str(p) for pattern in _FILES for p in self.directory.glob(pattern))
            if not files:
                return []
            families: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return [f for f in families if f.type != "gauge" or f.name in WORKER_GAUGES]


def _combined(own: Metric, workers: Metric) -> Metric:
    """One family: ``own``'s samples plus ``workers``' (summed where both have a series; a gauge is the workers')."""
    values: dict[_Key, float] = {}
    for sample in own.samples:
        values[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    for sample in workers.samples:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        values[key] = sample.value if own.type == "gauge" else values.get(key, 0.0) + sample.value
    family = Metric(own.name, own.documentation, own.type, own.unit)
    for (name, labels), value in values.items():
        family.add_sample(name, dict(labels), value)
    return family
