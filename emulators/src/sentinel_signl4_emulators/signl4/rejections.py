"""Scripted refusals of inbound event bodies: too large (413) or carrying a field SIGNL4 will not take (400).

SIGNL4 documents a 400 for "a body that is invalid and not in the format specified in the content-type" (ref
§1.6) and no size limit for events (only 4 MB per attachment, ref §1.2). Which bodies a real tenant refuses, and
whether a size limit answers 413 from a front end, is not documented: these rules let tests reproduce either
refusal on demand, so the connector's fallback to a minimal Signl can be proven end to end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sentinel_signl4_emulators.signl4.entities import RawParameter

__all__ = ["InboundRejections"]


@dataclass(frozen=True, slots=True)
class InboundRejections:
    """``max_body_bytes``: bodies longer than this get 413. ``fields``: a body with a parameter of one of these
    names (case-insensitive; a nested object's fields count as ``name.child``) gets 400."""

    max_body_bytes: int | None = None
    fields: frozenset[str] = frozenset()

    @classmethod
    def of(cls, max_body_bytes: int | None, fields: Iterable[str]) -> InboundRejections:
        if max_body_bytes is not None and (isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int)
                                           or max_body_bytes < 0):
            raise ValueError(f"maxBodyBytes must be an integer >= 0 or null, not {max_body_bytes!r}")
        names = list(fields)
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError("rejectFields must be a list of non-empty strings")
        return cls(max_body_bytes, frozenset(name.casefold() for name in names))

    def too_large(self, size: int) -> bool:
        return self.max_body_bytes is not None and size > self.max_body_bytes

    def rejected_field(self, params: Sequence[RawParameter]) -> str | None:
        """The name of the first parameter a rule refuses, as the sender spelled it, or None."""
        for param in params:
            name = param.name.casefold()
            if any(name == field or name.startswith(field + ".") for field in self.fields):
                return param.name
        return None
