"""What people do to an incident's record in Jira or ServiceNow comes back as their decision.

`POST /records/jira` takes Jira's issue-updated webhook, signed with its secret (`X-Hub-Signature:
sha256=<HMAC-SHA256 of the body>`, JIRA_WEBHOOK_SECRET); `POST /records/servicenow` takes the JSON a
business rule's outbound REST message sends (README), with `Authorization: Bearer <SERVICENOW_WEBHOOK_TOKEN>`.
The person is the policy's person with that Jira account id or ServiceNow user name; the decision goes
through the signing client like any other, so the rules refuse it (409) if that person may not take it.
A change by nobody of the policy (the orchestrator's own writes come back too) is answered 202 and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client

from client.decide import Refused, is_transport_error, is_unreachable, send_decision
from settings import Settings
from workflows.contracts.people import ACCOUNT_FIELD
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Role
from workflows.incident.model import AssignRole, Decision, Resolve

RETRY_WITHIN = timedelta(seconds=20)


def jira_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def incident_of(label: str) -> str:
    """`incident-INC-7F3K-20261207T120000` (activities/registers/jira.label) names INC-7F3K."""
    return label.removeprefix("incident-").rpartition("-")[0]


def router(
    settings: Settings, policy: Policy, deciding: Callable[[], Client], read: Callable[[Request], Any]
) -> APIRouter:
    routes = APIRouter(prefix="/records")
    jira_person = partial(policy.person_with, ACCOUNT_FIELD["jira"])
    servicenow_person = partial(policy.person_with, ACCOUNT_FIELD["servicenow"])

    async def decide(incident_id: str, decisions: list[Decision], delivery: str) -> JSONResponse:
        answers = []
        try:
            for n, decision in enumerate(decisions):
                answers.append(
                    await send_decision(
                        deciding(),
                        incident_id,
                        decision,
                        update_id=f"{delivery}:{n}",
                        retry_within=RETRY_WITHIN,
                    )
                )
        except Refused as err:
            return JSONResponse({"error": str(err)}, status_code=409)
        except Exception as err:
            if is_unreachable(err) or is_transport_error(err):
                return JSONResponse({"error": "Temporal did not answer in time; retry later"}, status_code=503)
            raise
        return JSONResponse({"result": answers})

    @routes.post("/jira")
    async def jira(request: Request) -> JSONResponse:
        body = await read(request)
        secret = settings.jira_webhook_secret
        signature = request.headers.get("x-hub-signature", "")
        if secret is None or not hmac.compare_digest(signature, jira_signature(secret.get_secret_value(), body)):
            return JSONResponse({"error": "bad or missing X-Hub-Signature (the webhook's secret)"}, status_code=401)
        try:
            event = json.loads(body)
            fields = event["issue"]["fields"]
            labels = [label for label in fields.get("labels") or [] if label.startswith("incident-")]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "not a Jira issue event"}, status_code=422)
        if not labels:
            return JSONResponse({"ignored": "the issue is no incident record"}, status_code=202)
        person = jira_person(str((event.get("user") or {}).get("accountId", "")))
        if not person:
            return JSONResponse({"ignored": "changed by nobody of the policy"}, status_code=202)
        issue = str(event["issue"].get("key", ""))
        decisions: list[Decision] = []
        for item in (event.get("changelog") or {}).get("items") or []:
            if item.get("field") == "status" and str(item.get("toString", "")).lower() == _resolved(policy):
                decisions.append(_resolve(person, f"Resolved in Jira ({issue})", fields))
            elif item.get("field") == "assignee" and (assignee := jira_person(str(item.get("to")))):
                decisions.append(AssignRole(actor=person, role=Role.INCIDENT_COMMANDER, person=assignee))
        if not decisions:
            return JSONResponse({"ignored": "no resolution or reassignment in this change"}, status_code=202)
        delivery = request.headers.get("x-atlassian-webhook-identifier") or hashlib.sha256(body).hexdigest()
        return await decide(incident_of(labels[0]), decisions, f"jira-{delivery}")

    @routes.post("/servicenow")
    async def servicenow(request: Request) -> JSONResponse:
        body = await read(request)
        token = settings.servicenow_webhook_token
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if token is None or scheme.lower() != "bearer" or not hmac.compare_digest(given, token.get_secret_value()):
            return JSONResponse({"error": "bad or missing bearer token (SERVICENOW_WEBHOOK_TOKEN)"}, status_code=401)
        try:
            event = json.loads(body)
            key, changes = str(event["correlation_id"]), list(event.get("changes") or [])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "not an incident change: correlation_id and changes"}, status_code=422)
        person = servicenow_person(str(event.get("updated_by", "")))
        if not person or "@" not in key:
            return JSONResponse({"ignored": "changed by nobody of the policy, or no incident record"}, status_code=202)
        decisions: list[Decision] = []
        if "state" in changes and str(event.get("state")) == "6":
            number = event.get("number", "")
            decisions.append(_resolve(person, f"Resolved in ServiceNow ({number})", {"resolution": event}))
        if "assigned_to" in changes and (assignee := servicenow_person(str(event.get("assigned_to")))):
            decisions.append(AssignRole(actor=person, role=Role.INCIDENT_COMMANDER, person=assignee))
        if not decisions:
            return JSONResponse({"ignored": "no resolution or reassignment in this change"}, status_code=202)
        delivery = str(event.get("sys_mod_count", "")) or hashlib.sha256(body).hexdigest()
        return await decide(key.partition("@")[0], decisions, f"servicenow-{key}-{delivery}")

    return routes


def _resolved(policy: Policy) -> str:
    return policy.records.statuses.get("resolved", "Resolved").lower()


def _resolve(person: str, where: str, fields: dict[str, Any]) -> Resolve:
    """The record says it is resolved; how and what prevents a repeat are the review's to say."""
    said = fields.get("resolution") or {}
    how = str(said.get("close_notes") or said.get("name") or "") if isinstance(said, dict) else ""
    return Resolve(actor=person, overview=where, how_resolved=how or where, prevention="to be agreed at the review")
