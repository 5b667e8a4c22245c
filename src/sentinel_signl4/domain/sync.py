"""Reverse sync decisions: what a SIGNL4 event means for the incident, apart from the write itself. Pure; the clock
is a parameter.

* What an acknowledgement or a close changes on the incident is ``domain/incident_change.py``'s (New → Active only,
  never reopening a closed incident; Closed with the classification in force, the owner only if none is set).
  Either also adds a comment, with an id derived from the event (:func:`comment_id_for`), so a replay adds none.
* Annotations add a comment; keywords (#tp, #fp:<reason>, #bp:<reason>, #undetermined) choose the classification
  used by a later close. An annotation that arrives after the close cannot change it (documented limit).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sentinel_signl4.domain.enums import Classification, ClassificationReason
from sentinel_signl4.domain.signl4_events import Signl4Event

__all__ = [
    "COMMENT_LIMIT",
    "CONNECTOR_NOTE_PREFIX",
    "ClassificationChoice",
    "KeywordResult",
    "MergeOutcome",
    "comment_id_for",
    "is_connector_note",
    "merge_annotation",
    "merge_comment",
    "parse_keywords",
]

COMMENT_LIMIT = 30_000  # Sentinel rejects longer comment messages
#: Annotations the connector itself writes to a Signl start with this, so they are never mirrored back as comments.
CONNECTOR_NOTE_PREFIX = "[sentinel-signl4]"
_NAMESPACE = uuid.UUID("6f0c1d2e-5b7a-4c1e-9a55-3e2f5d8c9b10")

_REASONS: dict[str, ClassificationReason] = {
    "suspiciousactivity": ClassificationReason.SUSPICIOUS_ACTIVITY,
    "suspicious": ClassificationReason.SUSPICIOUS_ACTIVITY,
    "suspiciousbutexpected": ClassificationReason.SUSPICIOUS_BUT_EXPECTED,
    "expected": ClassificationReason.SUSPICIOUS_BUT_EXPECTED,
    "incorrectalertlogic": ClassificationReason.INCORRECT_ALERT_LOGIC,
    "logic": ClassificationReason.INCORRECT_ALERT_LOGIC,
    "inaccuratedata": ClassificationReason.INACCURATE_DATA,
    "data": ClassificationReason.INACCURATE_DATA,
}
_KEYWORD = re.compile(r"(?<![\w#])#(tp|fp|bp|undetermined)\b(?::([A-Za-z]+))?", re.IGNORECASE)

HELP = ("Valid classification keywords: #tp (TruePositive, SuspiciousActivity), "
        "#fp:logic or #fp:data (FalsePositive, IncorrectAlertLogic / InaccurateData), "
        "#bp (BenignPositive, SuspiciousButExpected), #undetermined.")


@dataclass(frozen=True, slots=True)
class ClassificationChoice:
    classification: Classification
    reason: ClassificationReason | None

    def to_json(self) -> dict[str, str | None]:
        return {"classification": self.classification.value, "reason": self.reason.value if self.reason else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ClassificationChoice | None:
        if not data or not data.get("classification"):
            return None
        reason = data.get("reason")
        return cls(Classification(data["classification"]), ClassificationReason(reason) if reason else None)


@dataclass(frozen=True, slots=True)
class KeywordResult:
    choice: ClassificationChoice | None
    error: str | None


def parse_keywords(text: str) -> KeywordResult | None:
    """Find a classification keyword in an annotation. ``None`` when there is none; the last valid one wins."""
    matches = list(_KEYWORD.finditer(text))
    if not matches:
        bad = re.search(r"(?<![\w#])#(?:tp|fp|bp|undetermined)\S*", text, re.IGNORECASE)
        if bad:
            return KeywordResult(None, f"'{bad.group(0)}' is not a valid keyword. {HELP}")
        return None
    match = matches[-1]
    word, reason_text = match.group(1).lower(), (match.group(2) or "").lower()
    if word == "undetermined":
        return KeywordResult(ClassificationChoice(Classification.UNDETERMINED, None), None)
    if word == "tp":
        return _pair(Classification.TRUE_POSITIVE, reason_text, ClassificationReason.SUSPICIOUS_ACTIVITY,
                     (ClassificationReason.SUSPICIOUS_ACTIVITY,), match.group(0))
    if word == "bp":
        return _pair(Classification.BENIGN_POSITIVE, reason_text, ClassificationReason.SUSPICIOUS_BUT_EXPECTED,
                     (ClassificationReason.SUSPICIOUS_BUT_EXPECTED,), match.group(0))
    return _pair(Classification.FALSE_POSITIVE, reason_text, None,
                 (ClassificationReason.INCORRECT_ALERT_LOGIC, ClassificationReason.INACCURATE_DATA), match.group(0))


def _pair(classification: Classification, reason_text: str, default: ClassificationReason | None,
          allowed: tuple[ClassificationReason, ...], written: str) -> KeywordResult:
    reason = _REASONS.get(reason_text) if reason_text else default
    if reason is None or reason not in allowed:
        return KeywordResult(None, f"'{written}' does not name a valid reason for {classification.value}. {HELP}")
    return KeywordResult(ClassificationChoice(classification, reason), None)


def comment_id_for(connector: str, event_id: str, purpose: str = "comment") -> str:
    """A Sentinel comment id derived from the SIGNL4 event id: a replayed event rewrites the same comment."""
    return str(uuid.uuid5(_NAMESPACE, f"{connector}|{event_id}|{purpose}"))


def clip_comment(text: str) -> str:
    return text if len(text) <= COMMENT_LIMIT else text[: COMMENT_LIMIT - 40] + "\n… (truncated to fit Sentinel)"


def describe_time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "an unknown time"


def ack_comment(event: Signl4Event) -> str:
    who = event.user.describe() if event.user else "an unknown user"
    return f"Acknowledged in SIGNL4 by {who} at {describe_time(event.raised_at)}."


def close_comment(event: Signl4Event, choice: ClassificationChoice) -> str:
    who = event.user.describe() if event.user else "SIGNL4"
    reason = f" ({choice.reason.value})" if choice.reason else ""
    return (f"Closed in SIGNL4 by {who} at {describe_time(event.raised_at)}. "
            f"Classification: {choice.classification.value}{reason}.")


def annotation_comment(event: Signl4Event) -> str:
    who = event.user.name or event.user.mail if event.user else None
    return clip_comment(f"[SIGNL4] {who or 'unknown'}: {event.annotation or ''}")


def escalation_comment(event: Signl4Event) -> str:
    return f"Escalated in SIGNL4 at {describe_time(event.raised_at)}: nobody acknowledged in time."


# -- Defender merges ---------------------------------------------------------------------------------------------

class MergeOutcome(StrEnum):
    """What following a merge did to the merged incident's Signl."""

    RELINKED = "relinked"  # the Signl now follows the surviving incident
    RESOLVED = "resolved"  # the surviving incident has its own Signl: this one was resolved
    UNKNOWN_SURVIVOR = "unknown_survivor"  # the source does not say which incident survived


def is_connector_note(text: str | None) -> bool:
    """True for an annotation the connector wrote itself (see :data:`CONNECTOR_NOTE_PREFIX`)."""
    return bool(text) and str(text).lstrip().startswith(CONNECTOR_NOTE_PREFIX)


def merge_annotation(outcome: MergeOutcome, merged: int, survivor: int | None, link: str) -> str:
    """The annotation on the merged incident's Signl ("merged into #N")."""
    where = f" {link}" if link else ""
    if outcome is MergeOutcome.RELINKED:
        return (f"{CONNECTOR_NOTE_PREFIX} Microsoft Defender merged incident #{merged} into #{survivor}. This Signl "
                f"now follows #{survivor}: acknowledge, close and annotations go there.{where}")
    if outcome is MergeOutcome.RESOLVED:
        return (f"{CONNECTOR_NOTE_PREFIX} Microsoft Defender merged incident #{merged} into #{survivor}, which has "
                f"its own Signl; this one is resolved.{where}")
    return (f"{CONNECTOR_NOTE_PREFIX} Microsoft Defender merged incident #{merged} into another incident; the "
            f"Sentinel API does not say which. The Defender portal opens the incident that survived.{where}")


def merge_comment(outcome: MergeOutcome, merged: int, survivor: int | None) -> str:
    """The comment on the surviving incident (or, when it is unknown, on the merged one)."""
    if outcome is MergeOutcome.RELINKED:
        return (f"[SIGNL4] Incident #{merged} was merged into #{survivor} by Microsoft Defender; the SIGNL4 alert "
                f"raised for #{merged} now follows this incident.")
    if outcome is MergeOutcome.RESOLVED:
        return (f"[SIGNL4] Incident #{merged} was merged into #{survivor} by Microsoft Defender; the SIGNL4 alert "
                f"raised for #{merged} was resolved (this incident has its own).")
    return (f"[SIGNL4] Incident #{merged} was merged into another incident by Microsoft Defender; its SIGNL4 alert "
            "was resolved.")
