"""State store: interface and SQL implementations."""

from sentinel_signl4.store.base import (
    Fence,
    InboxEvent,
    InboxState,
    Lease,
    LeaseLostError,
    Link,
    OutboxAction,
    OutboxHealth,
    StateStore,
    StoreReplacedError,
)
from sentinel_signl4.store.errors import is_store_error

__all__ = ["Fence", "InboxEvent", "InboxState", "Lease", "LeaseLostError", "Link", "OutboxAction", "OutboxHealth",
           "StateStore", "StoreReplacedError", "is_store_error"]
