"""The HTTP API for people's decisions: what incidentctl sends, and any tool acting for a person.

Every request carries the person's own credential (`Authorization: Bearer <token>`: a personal token,
starter/tokens.py, or where OIDC_ISSUER is set the identity provider's, starter/oidc.py). The
service sets the decision's person from it, never from the request: a body naming someone else is refused.
It then sends the decision through its signing client (client/signing.py), so the workflow can tell it came
through here. Answers: 200 with what the workflow said; 401 without a valid credential; 403 for a decision in
another person's name; 422 for a body that does not fit the decision; 409 for a refusal by the rules, with the
one line a person sees; 503 when Temporal does not answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio.client import Client

from client import oncall as oncall_client
from client.alerts import manual_alert, send_alert
from client.decide import (
    Refused,
    decision_model,
    is_transport_error,
    is_unreachable,
    known_decisions,
    send_decision,
    send_step,
    step_result_type,
)
from settings import Settings, describe_validation_error
from starter import oidc
from starter.oidc import OidcError
from starter.tokens import PREFIX, NotAuthenticated, TokenStore
from workflows.contracts import limits
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import Decision
from workflows.oncall.model import AddOverride, AddSilence, ExpireSilence, RemoveOverride


class Declaration(BaseModel):
    """A person opening an incident by hand; they are its reporter, as their credential says."""

    title: str
    severity: Severity | None = None
    service: str = ""
    description: str = ""
    reporter: str = ""  # set from the credential; another person's name is refused


# What a declaration may carry: the limits of an alert's own fields.
DECLARATION_LIMITS = {"title": limits.TITLE, "service": limits.SERVICE, "description": limits.DESCRIPTION}

# Within this the service keeps sending a decision whose answer was lost, under its one update id.
RETRY_WITHIN = timedelta(seconds=20)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def router(settings: Settings, policy: Policy, deciding: Callable[[], Client]) -> APIRouter:
    routes = APIRouter(prefix="/api")
    tokens = TokenStore(settings.tokens_path)

    async def person_of(request: Request) -> str:
        """Whose credential this is: a personal token (starter/tokens.py), or the identity provider's token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "no credential: send your own token as 'Authorization: Bearer <token>'")
        if settings.oidc_issuer and not token.startswith(f"{PREFIX}_"):
            try:
                return await oidc.person(settings.oidc_issuer, token, policy)
            except OidcError as err:
                raise ApiError(401, f"{err}; sign in again (incidentctl login)") from err
        try:
            return tokens.person(token, datetime.now(UTC))
        except NotAuthenticated as err:
            raise ApiError(401, f"{err}; an administrator issues a new one (incidentctl token issue PERSON)") from err

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as err:
            raise ApiError(400, "body is not valid JSON") from err
        if not isinstance(body, dict):
            raise ApiError(422, "body must be a JSON object with the decision's fields")
        return body

    def as_person(model: type[BaseModel], body: dict[str, Any], person: str, field: str) -> Any:
        """The decision with its person set from the credential; refused when the body names someone else."""
        named = body.get(field)
        if named not in (None, "", person):
            raise ApiError(
                403, f"you are {person} by your credential; a decision as {named} needs {named}'s own credential"
            )
        fields = {key: value for key, value in body.items() if key != "proof"} | {field: person}
        try:
            return model.model_validate(fields)
        except ValidationError as err:
            raise ApiError(422, describe_validation_error(err)) from err

    async def answered(request: Request, act: Callable[[str, dict[str, Any], str], Awaitable[Any]]) -> JSONResponse:
        """Authenticate, read the body, act; every failure as {"error": line} with its status."""
        try:
            person = await person_of(request)
            update_id = request.headers.get("idempotency-key") or f"api-{uuid.uuid4()}"
            result = await act(person, await body_of(request), update_id)
        except ApiError as err:
            headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
            return JSONResponse({"error": err.message}, status_code=err.status, headers=headers)
        except (Refused, oncall_client.OnCallRefused) as err:
            return JSONResponse({"error": str(err)}, status_code=409)
        except Exception as err:
            if is_unreachable(err) or is_transport_error(err):
                return JSONResponse({"error": "Temporal did not answer in time; retry later"}, status_code=503)
            raise
        return JSONResponse({"result": result})

    @routes.get("/whoami")
    async def whoami(request: Request) -> JSONResponse:
        try:
            return JSONResponse({"person": await person_of(request)})
        except ApiError as err:
            return JSONResponse({"error": err.message}, status_code=err.status, headers={"WWW-Authenticate": "Bearer"})

    @routes.post("/incidents")
    async def declare(request: Request) -> JSONResponse:
        """Open an incident as its reporter; the request's Idempotency-Key makes a resent request one incident."""

        async def act(person: str, body: dict[str, Any], update_id: str) -> Any:
            declared: Declaration = as_person(Declaration, body, person, "reporter")
            for field, limit in DECLARATION_LIMITS.items():
                if why := limits.over(getattr(declared, field), limit):
                    raise ApiError(422, f"{field}: {why}")
            if not declared.title.strip():
                raise ApiError(422, "title: give the incident a title")
            event = manual_alert(
                declared.title,
                person,
                severity=declared.severity,
                service=declared.service,
                description=declared.description,
                dedup_key=update_id,
            )
            await send_alert(deciding(), settings, policy, event)
            return {"incident_id": incident_id_for(event.source, event.dedup_key), "reporter": person}

        return await answered(request, act)

    @routes.post("/incidents/{incident_id}/decisions/{name}")
    async def decide(incident_id: str, name: str, request: Request) -> JSONResponse:
        async def act(person: str, body: dict[str, Any], update_id: str) -> str:
            model = _model(name, about_a_message=False)
            decision = as_person(model, body, person, "actor")
            return await send_decision(
                deciding(), incident_id, decision, update_id=update_id, retry_within=RETRY_WITHIN
            )

        return await answered(request, act)

    @routes.post("/incidents/{incident_id}/steps/{name}")
    async def step(incident_id: str, name: str, request: Request) -> JSONResponse:
        async def act(person: str, body: dict[str, Any], update_id: str) -> Any:
            model = _model(name, about_a_message=True)
            result_type = step_result_type(model)
            moved = await send_step(
                deciding(),
                incident_id,
                name,
                as_person(model, body, person, "actor"),
                result_type,
                update_id=update_id,
                retry_within=RETRY_WITHIN,
            )
            return TypeAdapter(result_type).dump_python(moved, mode="json")

        return await answered(request, act)

    @routes.post("/silences")
    async def add_silence(request: Request) -> JSONResponse:
        async def act(person: str, body: dict[str, Any], _: str) -> Any:
            added = await oncall_client.add_silence(
                deciding(), settings.incident_task_queue, policy, as_person(AddSilence, body, person, "by")
            )
            return added.model_dump(mode="json")

        return await answered(request, act)

    @routes.post("/silences/{silence_id}/expire")
    async def expire_silence(silence_id: str, request: Request) -> JSONResponse:
        async def act(person: str, body: dict[str, Any], _: str) -> Any:
            request_ = as_person(ExpireSilence, body | {"silence_id": silence_id}, person, "by")
            return (await oncall_client.expire_silence(deciding(), settings.incident_task_queue, request_)).model_dump(
                mode="json"
            )

        return await answered(request, act)

    @routes.post("/schedules/{schedule}/overrides")
    async def add_override(schedule: str, request: Request) -> JSONResponse:
        async def act(person: str, body: dict[str, Any], _: str) -> Any:
            added = await oncall_client.add_override(
                deciding(), settings.incident_task_queue, policy, schedule, as_person(AddOverride, body, person, "by")
            )
            return added.model_dump(mode="json")

        return await answered(request, act)

    @routes.post("/schedules/{schedule}/overrides/{override_id}/remove")
    async def remove_override(schedule: str, override_id: str, request: Request) -> JSONResponse:
        async def act(person: str, body: dict[str, Any], _: str) -> Any:
            request_ = as_person(RemoveOverride, body | {"override_id": override_id}, person, "by")
            removed = await oncall_client.remove_override(deciding(), settings.incident_task_queue, schedule, request_)
            return removed.model_dump(mode="json")

        return await answered(request, act)

    return routes


def _model(name: str, *, about_a_message: bool) -> type[Decision]:
    found = decision_model(name, about_a_message)
    if found is None or found[1] is not about_a_message:
        raise ApiError(404, f"no decision {name!r}; known: {', '.join(known_decisions())}")
    return found[0]
