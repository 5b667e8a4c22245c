"""State store: interface and SQL implementations."""

from sentinel_signl4.store.base import (
    Fence,
    InboxEvent,
    InboxState,
    Lease,
    LeaseLostError,
    Link,
    OutboxAction,
    StateStore,
    StoreReplacedError,
)

__all__ = ["Fence", "InboxEvent", "InboxState", "Lease", "LeaseLostError", "Link", "OutboxAction", "StateStore",
           "StoreReplacedError"]
