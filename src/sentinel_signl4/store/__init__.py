"""State store: interface and SQL implementations."""

from sentinel_signl4.store.base import InboxEvent, InboxState, Link, OutboxAction, StateStore
from sentinel_signl4.store.errors import is_store_error

__all__ = ["InboxEvent", "InboxState", "Link", "OutboxAction", "StateStore", "is_store_error"]
