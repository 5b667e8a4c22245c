"""Proof that a lease holder is dead: an instance file per replica, locked with ``flock`` for the replica's life.

A replica registers in a directory next to its store (the SQLite file's ``<file>.replicas/``, or ``[store]
state_dir``): it creates ``<quoted replica id>.lock``, takes an exclusive ``flock`` on it and keeps the file
descriptor open until it exits. The kernel drops the lock when the process dies, however it dies (kill -9, OOM,
a crash), and never while it runs, whatever its PID or PID namespace.

So a holder is *proven dead* when its instance file exists in our directory and we can lock it. Nothing else
counts: a PID is not unique across containers or PID namespaces (every replica in a container is PID 1), a host
name is shared by containers on host networking, and a holder with no instance file here (another host, another
state directory) is never taken over early: its lease has to expire.

The file appears under its final name only once it is locked (created under a temporary name, locked, then
renamed), so a reader never mistakes a replica that is still registering for a dead one. The lock must be a
local one: the directory belongs on the replica's own file system (or a shared one with working ``flock``, as
volumes shared by containers of one host are).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import structlog

__all__ = ["InstanceRegistry", "Registration"]

log = structlog.get_logger("sentinel_signl4.instances")

_SUFFIX = ".lock"
_TMP_PREFIX = ".registering-"
_MAX_NAME = 200


class Registration:
    """This replica's instance file, locked until ``close`` (or the process's death)."""

    def __init__(self, registry: InstanceRegistry, replica: str, fd: int) -> None:
        self.registry = registry
        self.replica = replica
        self._fd: int | None = fd

    @property
    def active(self) -> bool:
        return self._fd is not None

    def touch(self) -> None:
        """Mark the file as recently in use (``sweep`` removes only dead replicas' files left idle long enough)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.utime(self._fd)

    def close(self) -> None:
        """Give the registration up: remove the file (we hold its lock, so nobody is checking it), then unlock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.registry.path_of(self.replica).unlink()
        os.close(fd)


class InstanceRegistry:
    """The instance files of one store's replicas on this host (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, replica: str) -> Path:
        # Replica ids are host:pid:nonce; quoting keeps any host name a single, safe file name, and a digest keeps
        # a very long one under the file system's name limit.
        name = quote(replica, safe="")
        if len(name) > _MAX_NAME:
            name = hashlib.sha256(replica.encode()).hexdigest()
        return self.directory / (name + _SUFFIX)

    def register(self, replica: str) -> Registration:
        """Create and lock ``replica``'s instance file; it stays locked while the returned registration is open."""
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{replica}\n".encode())
            os.replace(temporary, self.path_of(replica))
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        return Registration(self, replica, fd)

    def proven_dead(self, holder: str) -> bool:
        """True only when ``holder`` registered here and its lock is free: it has exited. False otherwise, also
        when nothing is known about it (no file: another host, or another state directory)."""
        try:
            fd = os.open(self.path_of(holder), os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # locked: the holder is alive
        finally:
            os.close(fd)
        return True

    def sweep(self, *, idle_for: float) -> int:
        """Remove the files of dead replicas not touched for ``idle_for`` seconds (their leases have long expired,
        so the proof is no longer needed). Returns how many were removed."""
        removed = 0
        cutoff = time.time() - idle_for
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return 0
        for path in entries:
            if not (path.name.endswith(_SUFFIX) or path.name.startswith(_TMP_PREFIX)):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if os.fstat(fd).st_mtime > cutoff:
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # Locked by us now: the owner is dead. Remove the file only if the path still names this file.
                if _same_file(path, fd):
                    path.unlink()
                    removed += 1
            except (BlockingIOError, FileNotFoundError):
                pass
            finally:
                os.close(fd)
        if removed:
            log.info("instance_files_swept", directory=str(self.directory), removed=removed)
        return removed


def _same_file(path: Path, fd: int) -> bool:
    try:
        named, opened = path.stat(), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
