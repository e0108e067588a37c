"""Statuspage: the all-customers audience's public incident, created once and then updated.

The incident's name carries our incident id. Creating looks first for an unresolved Statuspage
incident with that id in its name, and an update retried after Statuspage took it is not posted
again, so a retried activity neither opens a second public incident nor repeats an update.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import check, new_client, send
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import StatuspageRequest, StatuspageResult
from workflows.contracts.vocabulary import Phase

STATUS = {
    Phase.DETECTION: "investigating",
    Phase.INVESTIGATION: "investigating",
    Phase.IDENTIFICATION: "identified",
    Phase.MONITORING: "monitoring",
    Phase.RESOLUTION: "resolved",
    Phase.ANALYSIS: "resolved",
    Phase.PUBLISHING: "resolved",
    Phase.CLOSED: "resolved",
}


def public_name(request: StatuspageRequest) -> str:
    """The name customers see, with our incident id so a retry can find the incident it created."""
    return request.name if request.incident_id in request.name else f"{request.name} ({request.incident_id})"


class StatuspageActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.client: httpx.AsyncClient | None = None
        self._incidents = f"/pages/{quote(settings.statuspage_page_id or '', safe='')}/incidents"
        if settings.statuspage_api_key is not None and settings.statuspage_page_id:
            self.client = new_client(
                settings.statuspage_api_url,
                {"Authorization": f"OAuth {settings.statuspage_api_key.get_secret_value()}"},
            )

    @activity.defn
    async def statuspage_upsert(self, request: StatuspageRequest) -> StatuspageResult:
        if self.client is None:
            where = await self.outbox.deliver("statuspage", "incident", request.idempotency_key, request.model_dump())
            reference = request.statuspage_incident_id or request.incident_id
            return StatuspageResult(statuspage_incident_id=reference, delivered_to=where)
        status = STATUS[request.phase]
        incident_id = request.statuspage_incident_id
        if not incident_id:
            existing = await self._find_unresolved(self.client, request.incident_id)
            if existing is None:
                created = await self._send(
                    self.client,
                    "POST",
                    self._incidents,
                    {"name": public_name(request), "status": status, "body": request.body},
                )
                return StatuspageResult(statuspage_incident_id=str(created["id"]), delivered_to="statuspage")
            incident_id = str(existing["id"])
        path = f"{self._incidents}/{quote(incident_id, safe='')}"
        if activity.info().attempt > 1 and await self._has_update(self.client, path, status, request.body):
            return StatuspageResult(statuspage_incident_id=incident_id, delivered_to="statuspage")
        await self._send(self.client, "PATCH", path, {"status": status, "body": request.body})
        return StatuspageResult(statuspage_incident_id=incident_id, delivered_to="statuspage")

    async def _find_unresolved(self, client: httpx.AsyncClient, incident_id: str) -> dict[str, Any] | None:
        response = await send(client, "statuspage", "GET", f"{self._incidents}/unresolved")
        check(response, "statuspage")
        incidents = response.json() if response.content else []
        return next((incident for incident in incidents if incident_id in incident.get("name", "")), None)

    async def _has_update(self, client: httpx.AsyncClient, path: str, status: str, body: str) -> bool:
        """Whether the incident's latest update is this one (an earlier attempt's PATCH went through)."""
        response = await send(client, "statuspage", "GET", path)
        check(response, "statuspage")
        updates: list[dict[str, Any]] = (response.json() or {}).get("incident_updates") or []
        if not updates:
            return False
        latest = max(updates, key=lambda update: str(update.get("created_at", "")))
        return bool(latest.get("status") == status and latest.get("body") == body)

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, incident: dict[str, str]
    ) -> dict[str, Any]:
        response = await send(client, "statuspage", method, path, json={"incident": incident})
        check(response, "statuspage")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "id" not in answer:
            raise ApplicationError(
                f"statuspage answered {response.status_code} without an incident", type="statuspage:unexpected"
            )
        return answer
