"""SIGNL4 as the engine's ``Pager`` port."""

from __future__ import annotations

from sentinel_signl4.clients.signl4 import AnnotationsUnavailableError, Signl4Client
from sentinel_signl4.domain import SignlRequest
from sentinel_signl4.engine.ports import FoundAlert

__all__ = ["Signl4Pager"]


class Signl4Pager:
    def __init__(self, client: Signl4Client, *, has_api_key: bool) -> None:
        self.client = client
        self._has_api_key = has_api_key

    @property
    def can_lookup(self) -> bool:
        return self._has_api_key

    async def send(self, request: SignlRequest) -> str:
        return await self.client.send_event(request)

    async def find_by_external_id(self, external_id: str) -> list[FoundAlert]:
        alerts = await self.client.find_alerts_by_external_id(external_id)
        found = []
        for alert in alerts:
            status = alert.get("status")
            found.append(FoundAlert(alert_id=str(alert.get("id")), event_id=_str_or_none(alert.get("eventId")),
                                    status=status if isinstance(status, int) else None, raw=alert))
        return found

    @property
    def can_annotate(self) -> bool:
        return self._has_api_key

    async def annotate(self, alert_id: str, text: str) -> None:
        await self.client.annotate_alert_as_connector(alert_id, text)

    async def list_annotation_texts(self, alert_id: str) -> list[str]:
        """The texts of the alert's annotations; none when neither annotation path answers, so an in-doubt
        annotation is added again (a possible repeat) rather than never."""
        try:
            notes = await self.client.list_annotations(alert_id)
        except AnnotationsUnavailableError:
            return []
        return [str(note.get("text") or "") for note in notes]

    async def check_access(self) -> None:
        await self.client.check_access()


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
