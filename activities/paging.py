"""Paging: one interface, two providers (OpsGenie Alert API v2, PagerDuty Events API v2)."""

from __future__ import annotations

from temporalio import activity

from activities.outbox import Outbox
from settings import Settings
from workflows.model import PageAction, PageRequest, PageResult


class PagingActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    @activity.defn
    async def page_open(self, request: PageRequest) -> PageResult:
        key = f"page:{request.dedup_key}:{','.join(request.responders)}"
        where = await self.outbox.deliver(request.provider, "page", key, request.model_dump())
        return PageResult(provider=request.provider, reference=request.dedup_key, delivered_to=where)

    @activity.defn
    async def page_acknowledge(self, action: PageAction) -> PageResult:
        where = await self.outbox.deliver(action.provider, "acknowledge", f"ack:{action.dedup_key}",
                                          action.model_dump())
        return PageResult(provider=action.provider, reference=action.dedup_key, delivered_to=where)

    @activity.defn
    async def page_resolve(self, action: PageAction) -> PageResult:
        where = await self.outbox.deliver(action.provider, "resolve", f"resolve:{action.dedup_key}",
                                          action.model_dump())
        return PageResult(provider=action.provider, reference=action.dedup_key, delivered_to=where)

    @activity.defn
    async def page_note(self, action: PageAction) -> PageResult:
        where = await self.outbox.deliver(action.provider, "note", f"note:{action.dedup_key}:{action.note}",
                                          action.model_dump())
        return PageResult(provider=action.provider, reference=action.dedup_key, delivered_to=where)
