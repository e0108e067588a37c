"""Statuspage: the all-customers audience's public incident, created once and then updated."""

from __future__ import annotations

from temporalio import activity

from activities.outbox import Outbox
from settings import Settings
from workflows.model import StatuspageRequest, StatuspageResult


class StatuspageActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    @activity.defn
    async def statuspage_upsert(self, request: StatuspageRequest) -> StatuspageResult:
        where = await self.outbox.deliver("statuspage", "incident", request.idempotency_key, request.model_dump())
        return StatuspageResult(statuspage_incident_id=request.statuspage_incident_id or request.incident_id,
                                delivered_to=where)
