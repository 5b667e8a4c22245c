"""Deterministic outbox keys: the same intent always gets the same key, so it is recorded at most once."""

from __future__ import annotations

__all__ = ["comment_key", "merge_key", "raise_key", "resolve_key", "tag_key"]


def raise_key(connector: str, external_id: str) -> str:
    return f"{connector}:raise:{external_id}"


def tag_key(connector: str, external_id: str, tag: str) -> str:
    return f"{connector}:tag:{external_id}:{tag.casefold()}"


def resolve_key(connector: str, external_id: str) -> str:
    return f"{connector}:resolve:{external_id}"


def comment_key(connector: str, event_id: str, purpose: str) -> str:
    return f"{connector}:sync:{event_id}:{purpose}"


def merge_key(connector: str, external_id: str, survivor: str, purpose: str) -> str:
    """A side effect of following a Defender merge of the incident behind ``external_id`` into ``survivor``."""
    return f"{connector}:merge:{external_id}:{survivor}:{purpose}"
