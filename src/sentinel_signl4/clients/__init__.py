"""Adapters to the remote systems: one client per system, one request choke point each, typed errors.

Clients classify failures (:mod:`sentinel_signl4.errors`) and retry only within a bounded
:class:`~sentinel_signl4.clients.retry.RetryPolicy`; the engine decides what happens after that. Import each client
from its own module: importing this package loads none of them (nor their SDKs).
"""
