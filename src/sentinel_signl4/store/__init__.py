"""State store: interface and SQL implementations."""

from sentinel_signl4.store.base import InboxEvent, InboxState, Link, OutboxAction, StateStore

__all__ = ["InboxEvent", "InboxState", "Link", "OutboxAction", "StateStore"]
