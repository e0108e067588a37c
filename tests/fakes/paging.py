"""Fake OpsGenie Alert API v2, Jira Service Management Operations' integration API (the same Alert API under
its own path and key) and PagerDuty Events API v2, answering as the real ones do."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, params

OPSGENIE_KEY = "opsgenie-test-key"
JSM_KEY = "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"
PAGERDUTY_ROUTING_KEY = "R0UTINGKEY0123456789abcdefABCDEF"
PAGERDUTY_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Alert:
    alias: str
    body: dict[str, Any]
    count: int = 1
    status: str = "open"
    acknowledged: bool = False
    notes: list[dict[str, str]] = field(default_factory=list)


class FakeOpsGenie(FakePeer):
    """Requests are accepted with 202 and processed "later"; here, before the answer."""

    alerts_path = "/v2/alerts"
    key = OPSGENIE_KEY

    def __init__(self) -> None:
        super().__init__()
        self.alerts: dict[str, Alert] = {}
        self._offsets = itertools.count(1)
        self.app.router.add_post(self.alerts_path, self._create)
        self.app.router.add_post(self.alerts_path + "/{identifier}/{action}", self._act)
        if self.alerts_path == "/v2/alerts":  # JSM's integration API cannot list an alert's notes
            self.app.router.add_get("/v2/alerts/{identifier}/notes", self._list_notes)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"opsgenie_api_key": SecretStr(OPSGENIE_KEY), "opsgenie_api_url": self.url})

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"GenieKey {self.key}":
            return _opsgenie(401, message="Could not authenticate")
        if request.match_info.get("identifier") and request.query.get("identifierType") != "alias":
            return _opsgenie(404, message="Alert does not exist")  # the alias was read as an alert id
        return None

    async def _create(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        body = params(request)
        if not body.get("message"):
            return _opsgenie(
                422,
                message="Request body is not processable. Please check the errors.",
                errors={"message": "Message can not be empty."},
            )
        if len(body["message"]) > 130:
            return _opsgenie(
                422,
                message="Request body is not processable. Please check the errors.",
                errors={"message": "Message can not be longer than 130 characters."},
            )
        alias = body.get("alias", "")
        if alias in self.alerts and self.alerts[alias].status == "open":
            self.alerts[alias].count += 1  # OpsGenie's de-duplication: no new notification
        else:
            self.alerts[alias] = Alert(alias, body)
        return _opsgenie(202, result="Request will be processed")

    async def _act(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        alert = self.alerts.get(request.match_info["identifier"])
        action, body = request.match_info["action"], params(request)
        if alert is not None:  # an unknown alias fails later, in the request status, not in the answer
            if action == "acknowledge":
                alert.acknowledged = True
            elif action == "close":
                alert.status = "closed"
            elif action == "notes":
                alert.notes.append(
                    {"note": body.get("note", ""), "owner": body.get("user", ""), "offset": str(next(self._offsets))}
                )
        return _opsgenie(202, result="Request will be processed")

    async def _list_notes(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        alert = self.alerts.get(request.match_info["identifier"])
        if alert is None:
            return _opsgenie(404, message="Alert does not exist")
        newest_first = list(reversed(alert.notes))[: int(request.query.get("limit", 100))]
        return _opsgenie(200, data=newest_first, paging={})


class FakeJsm(FakeOpsGenie):
    """Jira Service Management Operations' integration events API: OpsGenie's Alert API on api.atlassian.com."""

    alerts_path = "/jsm/ops/integration/v2/alerts"
    key = JSM_KEY

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"jsm_api_key": SecretStr(JSM_KEY), "jsm_api_url": self.url})


def _opsgenie(status: int, **body: Any) -> web.Response:
    return web.json_response(body | {"took": 0.01, "requestId": str(uuid.uuid4())}, status=status)


class FakePagerDuty(FakePeer):
    def __init__(self) -> None:
        super().__init__()
        self.incidents: dict[str, str] = {}  # dedup_key -> triggered | acknowledged | resolved
        self.events: list[dict[str, Any]] = []  # accepted events, in order
        self.app.router.add_post("/v2/enqueue", self._enqueue)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={"pagerduty_routing_key": SecretStr(PAGERDUTY_ROUTING_KEY), "pagerduty_events_url": self.url}
        )

    async def _enqueue(self, request: web.Request) -> web.Response:
        event = params(request)
        errors = self._problems(event)
        if errors:
            return web.json_response(
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors}, status=400
            )
        key = event.get("dedup_key") or uuid.uuid4().hex
        action = event["event_action"]
        if action == "trigger":
            self.incidents.setdefault(key, "triggered")
        elif key in self.incidents:
            self.incidents[key] = {"acknowledge": "acknowledged", "resolve": "resolved"}[action]
        self.events.append(event)
        return web.json_response({"status": "success", "message": "Event processed", "dedup_key": key}, status=202)

    def _problems(self, event: dict[str, Any]) -> list[str]:
        if event.get("routing_key") != PAGERDUTY_ROUTING_KEY:
            return ["Invalid routing key"]
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            return ["'event_action' is invalid"]
        if action != "trigger":
            return [] if event.get("dedup_key") else ["'dedup_key' is missing"]
        payload = event.get("payload") or {}
        problems = [
            f"'payload.{name}' is missing" for name in ("summary", "source", "severity") if not payload.get(name)
        ]
        if payload.get("severity") and payload["severity"] not in PAGERDUTY_SEVERITIES:
            problems.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
        return problems
