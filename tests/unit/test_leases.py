"""Replica identity and the proof of death behind an early lease take-over (instance files locked with flock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sentinel_signl4.engine.instances import InstanceRegistry
from sentinel_signl4.engine.leases import replica_id

# A child that registers in the directory given as argv[1] under the id argv[2], says so, and waits.
_REGISTER_AND_WAIT = """
import sys
from pathlib import Path
from sentinel_signl4.engine.instances import InstanceRegistry
registration = InstanceRegistry(Path(sys.argv[1])).register(sys.argv[2])
print("registered", flush=True)
sys.stdin.read()
"""


def _registered_child(directory: Path, replica: str) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _REGISTER_AND_WAIT, str(directory), replica],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "registered"
    return child


def test_replica_ids_are_unique_even_with_one_host_and_pid() -> None:
    ids = {replica_id() for _ in range(1000)}
    assert len(ids) == 1000
    _host, pid, nonce = replica_id().rsplit(":", 2)
    assert pid == str(os.getpid()) and len(nonce) == 16


def test_a_replica_killed_with_sigkill_is_proven_dead(tmp_path: Path) -> None:
    registry = InstanceRegistry(tmp_path)
    child = _registered_child(tmp_path, "host:1:aaaa")
    assert not registry.proven_dead("host:1:aaaa")  # alive: its lock is held
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert registry.proven_dead("host:1:aaaa")


def test_a_live_replica_with_the_same_host_and_pid_is_never_proven_dead(tmp_path: Path) -> None:
    registry = InstanceRegistry(tmp_path)
    me = registry.register(f"vm:1:{'1' * 16}")
    other = _registered_child(tmp_path, f"vm:1:{'2' * 16}")  # same host name, same "PID 1", another nonce
    try:
        assert not registry.proven_dead(f"vm:1:{'2' * 16}")
        assert not registry.proven_dead(me.replica)
        # Two registrations in one process (two supervisors) hold separate locks, too.
        second = registry.register(f"vm:1:{'3' * 16}")
        assert not registry.proven_dead(second.replica)
        second.close()
    finally:
        other.kill()
        other.wait()
        me.close()


def test_a_very_long_host_name_still_registers(tmp_path: Path) -> None:
    registry = InstanceRegistry(tmp_path)
    registration = registry.register(f"{'h' * 250}:1:{'4' * 16}")
    assert not registry.proven_dead(registration.replica)
    registration.close()
    assert list(tmp_path.iterdir()) == []


def test_a_holder_without_an_instance_file_here_is_never_proven_dead(tmp_path: Path) -> None:
    registry = InstanceRegistry(tmp_path / "missing")
    assert not registry.proven_dead("other-host:1234:abcd")
    assert not registry.proven_dead("../../etc/passwd")


def test_a_closed_registration_removes_its_file_and_sweep_removes_only_dead_idle_ones(tmp_path: Path) -> None:
    registry = InstanceRegistry(tmp_path)
    closed = registry.register("host:1:closed")
    closed.close()
    assert not registry.path_of("host:1:closed").exists()
    live = registry.register("host:1:live")
    child = _registered_child(tmp_path, "host:2:dead")
    child.kill()
    child.wait()
    assert registry.sweep(idle_for=3600) == 0  # dead, but recent: its lease may still need the proof
    assert registry.sweep(idle_for=0) == 1
    assert not registry.path_of("host:2:dead").exists() and registry.path_of("host:1:live").exists()
    live.close()
