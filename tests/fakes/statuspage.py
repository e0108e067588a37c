"""A fake Statuspage Manage API: a page's incidents and their updates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, params

API_KEY = "statuspage-test-key"
PAGE_ID = "pg0test"
STATUSES = {"investigating", "identified", "monitoring", "resolved"}


class FakeStatuspage(FakePeer):
    def __init__(self) -> None:
        super().__init__()
        self.incidents: dict[str, dict[str, Any]] = {}
        base = "/v1/pages/{page_id}/incidents"
        self.app.router.add_post(base, self._create)
        self.app.router.add_get(base + "/unresolved", self._unresolved)
        self.app.router.add_get(base + "/{incident_id}", self._get)
        self.app.router.add_patch(base + "/{incident_id}", self._update)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "statuspage_api_key": SecretStr(API_KEY),
                "statuspage_page_id": PAGE_ID,
                "statuspage_api_url": f"{self.url}/v1",
            }
        )

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"OAuth {API_KEY}":
            return web.json_response({"error": "Could not authenticate"}, status=401)
        if request.match_info["page_id"] != PAGE_ID:
            return web.json_response({"error": "Page not found"}, status=404)
        return None

    def _add_update(self, incident: dict[str, Any], status: str, body: str) -> None:
        incident["status"] = status
        incident["updated_at"] = _now()
        incident["incident_updates"].insert(
            0, {"id": f"upd{next(self._ids)}", "status": status, "body": body, "created_at": _now()}
        )

    async def _create(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        fields = params(request).get("incident") or {}
        status = fields.get("status", "investigating")
        if not fields.get("name") or status not in STATUSES:
            return web.json_response({"error": ["Name can't be blank or status is invalid"]}, status=422)
        incident: dict[str, Any] = {
            "id": f"inc{next(self._ids)}",
            "name": fields["name"],
            "page_id": PAGE_ID,
            "created_at": _now(),
            "incident_updates": [],
        }
        self._add_update(incident, status, fields.get("body", ""))
        self.incidents[incident["id"]] = incident
        return web.json_response(incident, status=201)

    async def _unresolved(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        return web.json_response([i for i in self.incidents.values() if i["status"] != "resolved"])

    async def _get(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        incident = self.incidents.get(request.match_info["incident_id"])
        if incident is None:
            return web.json_response({"error": "Incident not found"}, status=404)
        return web.json_response(incident)

    async def _update(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        incident = self.incidents.get(request.match_info["incident_id"])
        if incident is None:
            return web.json_response({"error": "Incident not found"}, status=404)
        fields = params(request).get("incident") or {}
        status = fields.get("status", incident["status"])
        if status not in STATUSES:
            return web.json_response({"error": ["Status is not included in the list"]}, status=422)
        self._add_update(incident, status, fields.get("body", ""))
        return web.json_response(incident)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
