"""A connector replica as its own process, for the multi-replica tests:
``python replica_process.py CONFIG TTL [REQUEST_TIMEOUT]``.

It is ``sentinel-signl4 run`` without the web server, with a short lease TTL (``run`` derives the TTL from the poll
interval, at least 60 s, too long for a test to wait out) and, if given, a shorter timeout per remote request than
the product's 15 s (a test that holds answers back waits for that timeout). It prints one JSON line first — its
replica id, PID and host name — then logs as ``run`` does, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

import httpx

from sentinel_signl4 import bootstrap
from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.config import load_config
from sentinel_signl4.logs import configure_logging


async def main(config_path: str, ttl: float) -> None:
    config = load_config(config_path)
    configure_logging(level=config.logging.level, fmt=config.logging.format, secrets=config.secrets())
    runtime = await build_runtime(config)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        supervisor = runtime.supervisor(lease_ttl=ttl)
        print(json.dumps({"replica": supervisor.owner, "pid": os.getpid(), "host": socket.gethostname()}),
              flush=True)
        await supervisor.run(stop)
    finally:
        await runtime.aclose()


if __name__ == "__main__":
    if len(sys.argv) > 3:
        bootstrap.REQUEST_TIMEOUT = httpx.Timeout(float(sys.argv[3]), connect=bootstrap.REQUEST_TIMEOUT.connect)
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
