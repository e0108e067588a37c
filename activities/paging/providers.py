"""Paging: one interface, three providers (OpsGenie Alert API v2, its successor Jira Service Management
Operations' integration API, PagerDuty Events API v2).

The request names its provider (from the policy); a provider with no key configured pages into the
outbox. Every provider deduplicates on our dedup key (OpsGenie's and JSM's alias, PagerDuty's dedup_key), so
a retried open, acknowledge or resolve does not page anyone twice.
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
from workflows.contracts.activity_io import PageAction, PageRequest, PageResult
from workflows.contracts.vocabulary import Severity

OPSGENIE_PRIORITY = {Severity.SEV1: "P1", Severity.SEV2: "P2", Severity.SEV3: "P3", Severity.SEV4: "P4"}
PAGERDUTY_SEVERITY = {
    Severity.SEV1: "critical",
    Severity.SEV2: "error",
    Severity.SEV3: "warning",
    Severity.SEV4: "info",
}
SOURCE = "incident-orchestrator"
# OpsGenie and Jira Service Management Operations speak one Alert API (bodies, answers, GenieKey, addressing
# by alias), each under its own path.
ALERT_PATHS = {"opsgenie": "/v2/alerts", "jsm": "/jsm/ops/integration/v2/alerts"}
# OpsGenie responder kinds a policy may name as `kind:name`; a bare name is a user.
OPSGENIE_RESPONDER_KINDS = ("team", "schedule", "escalation")


def opsgenie_responder(responder: str) -> dict[str, str]:
    """`team:payments` -> a team by name; `alice@example.com` -> a user by user name."""
    kind, _, name = responder.partition(":")
    if name and kind in OPSGENIE_RESPONDER_KINDS:
        return {"type": kind, "name": name}
    return {"type": "user", "username": responder}


class PagingActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.alert_apis: dict[str, httpx.AsyncClient] = {}  # provider -> its client, for the Alert API's
        self.pagerduty: httpx.AsyncClient | None = None
        self._routing_key = ""
        for provider, key, url in (
            ("opsgenie", settings.opsgenie_api_key, settings.opsgenie_api_url),
            ("jsm", settings.jsm_api_key, settings.jsm_api_url),
        ):
            if key is not None:
                self.alert_apis[provider] = new_client(url, {"Authorization": f"GenieKey {key.get_secret_value()}"})
        if settings.pagerduty_routing_key is not None:
            self._routing_key = settings.pagerduty_routing_key.get_secret_value()
            self.pagerduty = new_client(settings.pagerduty_events_url)

    @activity.defn
    async def page_open(self, request: PageRequest) -> PageResult:
        result = await self._page(request)
        # Counted once the page is out: a retried attempt that failed before never counts.
        activity.metric_meter().create_counter(
            "incident_pages_sent",
            "Pages sent, by provider and where they went (provider or outbox)",
        ).add(1, {"provider": result.provider, "delivered_to": result.delivered_to or result.provider})
        return result

    async def _page(self, request: PageRequest) -> PageResult:
        if (client := self.alert_apis.get(request.provider)) is not None:
            body: dict[str, Any] = {
                "message": request.summary[:130],  # OpsGenie's limit; the rest goes in the description
                "alias": request.dedup_key,
                "description": (request.description or request.summary)[:15000],
                "priority": OPSGENIE_PRIORITY[request.severity],
                "responders": [opsgenie_responder(r) for r in request.responders],
                "details": request.details | {"incident_id": request.incident_id},
                "source": SOURCE,
                "tags": [request.incident_id],
            }
            return await self._alert(request.provider, client, ALERT_PATHS[request.provider], body, by_alias=False)
        if request.provider == "pagerduty" and self.pagerduty is not None:
            return await self._pagerduty(
                self.pagerduty,
                "trigger",
                request.dedup_key,
                payload={
                    "summary": request.summary[:1024],
                    "source": SOURCE,
                    "severity": PAGERDUTY_SEVERITY[request.severity],
                    "custom_details": request.details
                    | {"incident_id": request.incident_id, "description": request.description},
                },
            )
        key = f"page:{request.dedup_key}:{','.join(request.responders)}"
        where = await self.outbox.deliver(request.provider, "page", key, request.model_dump())
        return PageResult(provider=request.provider, reference=request.dedup_key, delivered_to=where)

    @activity.defn
    async def page_acknowledge(self, action: PageAction) -> PageResult:
        if (client := self.alert_apis.get(action.provider)) is not None:
            return await self._alert(action.provider, client, _alert_path(action, "acknowledge"), _action_body(action))
        if action.provider == "pagerduty" and self.pagerduty is not None:
            return await self._pagerduty(self.pagerduty, "acknowledge", action.dedup_key)
        where = await self.outbox.deliver(
            action.provider, "acknowledge", f"ack:{action.dedup_key}", action.model_dump()
        )
        return PageResult(provider=action.provider, reference=action.dedup_key, delivered_to=where)

    @activity.defn
    async def page_resolve(self, action: PageAction) -> PageResult:
        if (client := self.alert_apis.get(action.provider)) is not None:
            return await self._alert(action.provider, client, _alert_path(action, "close"), _action_body(action))
        if action.provider == "pagerduty" and self.pagerduty is not None:
            return await self._pagerduty(self.pagerduty, "resolve", action.dedup_key)
        where = await self.outbox.deliver(
            action.provider, "resolve", f"resolve:{action.dedup_key}", action.model_dump()
        )
        return PageResult(provider=action.provider, reference=action.dedup_key, delivered_to=where)

    @activity.defn
    async def page_note(self, action: PageAction) -> PageResult:
        """Add a note to the alert.

        OpsGenie: a note on the alert; a retried attempt first reads the alert's latest notes and does
        not add the same text twice. JSM: a note on the alert, again on a retried attempt (its integration API
        cannot read notes back: at least once). PagerDuty: the Events API has no notes (they need the REST API and
        a user's API key, which we do not hold), so the note goes to the outbox and the result says so;
        the incident timeline keeps it either way.
        """
        if (client := self.alert_apis.get(action.provider)) is not None:
            path = _alert_path(action, "notes")
            retried = activity.info().attempt > 1 and action.provider == "opsgenie"
            if retried and await self._opsgenie_has_note(client, path, action.note):
                return PageResult(provider="opsgenie", reference=action.dedup_key, delivered_to="opsgenie")
            return await self._alert(action.provider, client, path, _action_body(action))
        where = await self.outbox.deliver(
            action.provider, "note", f"note:{action.dedup_key}:{action.note}", action.model_dump()
        )
        return PageResult(provider=action.provider, reference=action.dedup_key, delivered_to=where)

    async def _alert(
        self, provider: str, client: httpx.AsyncClient, path: str, body: dict[str, Any], *, by_alias: bool = True
    ) -> PageResult:
        """OpsGenie and JSM answer 202 and process the request asynchronously; requestId is our reference."""
        params = {"identifierType": "alias"} if by_alias else None
        response = await send(client, provider, "POST", path, json=body, params=params)
        check(response, provider)
        return PageResult(provider=provider, reference=str(_json(response).get("requestId", "")), delivered_to=provider)

    async def _opsgenie_has_note(self, client: httpx.AsyncClient, path: str, note: str) -> bool:
        response = await send(
            client, "opsgenie", "GET", path, params={"identifierType": "alias", "order": "desc", "limit": 20}
        )
        check(response, "opsgenie")
        return any(entry.get("note") == note for entry in _json(response).get("data", []))

    async def _pagerduty(
        self, client: httpx.AsyncClient, event_action: str, dedup_key: str, payload: dict[str, Any] | None = None
    ) -> PageResult:
        """202 {"status": "success", "dedup_key": ...}; 400 is an invalid event and will stay invalid."""
        event: dict[str, Any] = {"routing_key": self._routing_key, "event_action": event_action, "dedup_key": dedup_key}
        if payload is not None:
            event["payload"] = payload
        response = await send(client, "pagerduty", "POST", "/v2/enqueue", json=event)
        check(response, "pagerduty")
        answer = _json(response)
        if answer.get("status") != "success":
            raise ApplicationError(
                f"pagerduty did not accept the event: {answer}", type="pagerduty:rejected", non_retryable=True
            )
        return PageResult(
            provider="pagerduty", reference=str(answer.get("dedup_key", dedup_key)), delivered_to="pagerduty"
        )


def _alert_path(action: PageAction, verb: str) -> str:
    return f"{ALERT_PATHS[action.provider]}/{quote(action.dedup_key, safe='')}/{verb}"


def _action_body(action: PageAction) -> dict[str, str]:
    body = {"source": SOURCE, "user": action.actor, "note": action.note}
    return {name: value for name, value in body.items() if value}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
