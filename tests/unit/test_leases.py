"""Lease take-over: only from a holder process that is provably gone on this host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from sentinel_signl4.engine.leases import holder_is_dead_here, replica_id


def test_a_dead_process_on_this_host_is_recognised() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    me = replica_id()
    assert holder_is_dead_here(f"{socket.gethostname()}:{proc.pid}:deadbeef", me)


def test_a_live_process_or_another_host_is_never_taken_over() -> None:
    me = replica_id()
    parent = os.getppid()
    assert not holder_is_dead_here(f"{socket.gethostname()}:{parent}:cafe0000", me)
    assert not holder_is_dead_here(f"other-host-{socket.gethostname()}:1234567:cafe0000", me)
    assert not holder_is_dead_here(me, me)
    assert not holder_is_dead_here("garbage", me)


def test_our_own_pid_with_another_nonce_is_an_earlier_incarnation() -> None:
    me = replica_id()
    host, pid, _ = me.rsplit(":", 2)
    assert holder_is_dead_here(f"{host}:{pid}:00000000", me)
