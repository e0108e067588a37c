"""Teams' way in: the bot's messaging endpoint (`POST /teams/messages`), where Teams sends what people do with
the app, turned into the same decisions incidentctl and Slack send.

- a command to the bot, in a channel (`@incidents ack INC-…`) or a chat: Slack's `/incident` grammar
  (`declare <title>`, `ack INC-… [note]`, `phase`, `note`, `update`, `estimate`, `resolve`, `reopen`, `channel`);
- an Adaptive Card's `Action.Submit` (a message whose `value` is `{"decision": name, "incident_id": …, fields}`);
- an Adaptive Card's `Action.Execute` (invoke `adaptiveCard/action`: `verb` the decision's name, `data` the rest).

A decision's name is one of the registry's (workflows/contracts/decisions.py): the incident's, or a step of the
message loop with `message_id`. Every request must carry the Bot Framework's token: signed by a key the Bot
Framework's OpenID metadata publishes, issued by https://api.botframework.com, for this app (audience: the app
id), unexpired, and naming the activity's serviceUrl; anything else is 401 and decides nothing. The sender's
Entra ID object id (`from.aadObjectId`) must be a person's `teams_user_id`; the decision is theirs, signed by the
service, and judged by the workflow exactly as from the CLI. The activity's id is the decision's update id, so
an activity Teams delivers again is applied once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from temporalio.client import Client

from activities.chat.teams import TeamsActivities
from activities.outbox import Outbox
from client.decide import Refused, is_transport_error, is_unreachable
from settings import Settings
from starter.http.metrics import HttpMetrics
from starter.http.slack import ChatRefusal, Decide, Declare, act, parse_action, parse_command
from workflows.contracts.people import CONTACT_FIELD
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Channel

log = logging.getLogger("teams")

ISSUER = "https://api.botframework.com"
LEEWAY = 300  # seconds of clock skew the Bot Framework allows
METADATA_FOR = 24 * 3600  # seconds the OpenID metadata is kept; the keys client keeps its own cache
ANSWER_WITHIN = 4.0  # seconds; Teams gives an invoke 5 before it shows the person an error
INVOKE = "adaptiveCard/action"


class Unauthorized(Exception):
    """The request's token is missing, forged, expired or not for this app."""


class Tokens:
    """Validates the Bot Framework's tokens against the keys its OpenID metadata publishes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._keys: jwt.PyJWKClient | None = None
        self._fetched = 0.0

    async def check(self, authorization: str, service_url: str) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token or not self.settings.teams_app_id:
            raise Unauthorized("no Bot Framework token")
        try:
            keys = await self._key_client()
            key = await asyncio.to_thread(keys.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.settings.teams_app_id,
                issuer=ISSUER,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, httpx.HTTPError, ValueError) as err:
            raise Unauthorized(f"Bot Framework token refused: {err}") from None
        if claims.get("serviceUrl", service_url) != service_url:
            raise Unauthorized("the token is for another serviceUrl")

    async def _key_client(self) -> jwt.PyJWKClient:
        if self._keys is None or time.monotonic() - self._fetched > METADATA_FOR:
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.get(self.settings.teams_openid_url)
                answer.raise_for_status()
            self._keys = jwt.PyJWKClient(str(answer.json()["jwks_uri"]), cache_keys=True)
            self._fetched = time.monotonic()
        return self._keys


def wanted(activity: dict[str, Any], person: str) -> Decide | Declare:
    """What an activity asks for; ChatRefusal (the same words as Slack's) when it does not parse."""
    value = activity.get("value")
    if activity.get("type") == "invoke":
        action = value.get("action") if isinstance(value, dict) else None
        if not isinstance(action, dict):
            raise ChatRefusal("this card action carries no action")
        return _button(str(action.get("verb", "")), action.get("data"), person)
    if isinstance(value, dict):
        return _button(str(value.get("decision", "")), value, person)
    return parse_command(_without_mentions(activity), person)


def _button(name: str, data: Any, person: str) -> Decide:
    fields = {k: v for k, v in data.items() if k != "decision"} if isinstance(data, dict) else {}
    return parse_action({"action_id": name, "value": json.dumps(fields)}, person)


def _without_mentions(activity: dict[str, Any]) -> str:
    """The command's words: a channel message starts by mentioning the bot (`<at>incidents</at> ack …`)."""
    text = str(activity.get("text") or "")
    for entity in activity.get("entities") or []:
        if isinstance(entity, dict) and entity.get("type") == "mention":
            text = text.replace(str(entity.get("text", "")), "")
    while "<at>" in text and "</at>" in text:
        start = text.index("<at>")
        text = text[:start] + text[text.index("</at>", start) + len("</at>") :]
    return text.strip()


def not_in_policy(aad_object_id: str) -> str:
    return (
        f"Your Teams user ({aad_object_id}) is not a person in the incident policy; "
        "ask the platform team to add your teams_user_id."
    )


def router(
    settings: Settings,
    policy: Policy,
    temporal: Callable[[], Client],
    metrics: HttpMetrics,
    read_body: Callable[[Request], Awaitable[bytes]],
) -> APIRouter:
    """The bot's messaging endpoint, sharing the HTTP service's policy, Temporal client, metrics and body reader."""
    routes = APIRouter(prefix="/teams")
    tokens = Tokens(settings)
    bot = TeamsActivities(settings, Outbox(settings.outbox_path))

    async def outcome(kind: str, request: Decide | Declare) -> str:
        try:
            text = await act(temporal(), settings, policy, request, str)
        except Refused as err:
            metrics.teams.labels(kind, "refused").inc()
            return str(err)
        except Exception as err:
            if is_unreachable(err) or is_transport_error(err):
                metrics.teams.labels(kind, "unavailable").inc()
                return (
                    "The incident service got no answer from Temporal in time; what you asked may "
                    "still take effect: check the incident before trying again."
                )
            log.exception("Teams %s failed", kind)
            metrics.teams.labels(kind, "error").inc()
            return "Something went wrong on our side; try again, or use incidentctl."
        metrics.teams.labels(kind, "done").inc()
        return text

    async def reply(activity: dict[str, Any], text: Awaitable[str] | str) -> None:
        """The answer, in the conversation the request came from; a failure is logged: the decision stands."""
        said = text if isinstance(text, str) else await text
        if bot.http is None:
            log.info("teams: no app registration to answer with: %s", said)
            return
        conversation = str((activity.get("conversation") or {}).get("id", ""))
        try:
            await bot.reply(str(activity["serviceUrl"]), conversation, str(activity.get("id", "")), said)
        except Exception as err:
            log.warning("teams: could not answer in %s: %s", conversation, err)

    def invoke_answer(text: str) -> JSONResponse:
        return JSONResponse({"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text})

    @routes.post("/messages")
    async def messages(request: Request) -> Response:
        raw = await read_body(request)
        try:
            activity = json.loads(raw)
        except (ValueError, RecursionError):
            return JSONResponse({"error": "body is not a JSON activity"}, status_code=400)
        if not isinstance(activity, dict):
            return JSONResponse({"error": "body is not a JSON activity"}, status_code=400)
        try:
            await tokens.check(request.headers.get("authorization", ""), str(activity.get("serviceUrl", "")))
        except Unauthorized as err:
            metrics.teams.labels("request", "bad_token").inc()
            return JSONResponse({"error": str(err)}, status_code=401)
        is_invoke = activity.get("type") == "invoke"
        if activity.get("type") not in ("message", "invoke") or (is_invoke and activity.get("name") != INVOKE):
            return Response(status_code=200)  # conversation updates, typing, other invokes: not ours
        sender = activity.get("from")
        aad = str(sender.get("aadObjectId", "")) if isinstance(sender, dict) else ""
        person = policy.person_with(CONTACT_FIELD[Channel.TEAMS], aad)
        kind = "card" if is_invoke or isinstance(activity.get("value"), dict) else "command"
        try:
            if person is None:
                metrics.teams.labels(kind, "unknown_user").inc()
                raise ChatRefusal(not_in_policy(aad))
            request_of = wanted(activity, person)
        except ChatRefusal as err:
            metrics.teams.labels(kind, "refused").inc()
            if is_invoke:
                return invoke_answer(str(err))
            return Response(status_code=200, background=BackgroundTask(reply, activity, str(err)))
        if isinstance(request_of, Declare):
            request_of.request_key = f"teams-{activity.get('id', '')}"
        else:
            request_of.update_id = f"teams-{activity.get('id', '')}" if activity.get("id") else None
        task = asyncio.create_task(outcome(kind, request_of))
        if is_invoke:
            done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN)
            if task in done:
                return invoke_answer(task.result())
            return JSONResponse(
                {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": "Working on it…"},
                background=BackgroundTask(reply, activity, task),
            )
        return Response(status_code=200, background=BackgroundTask(reply, activity, task))

    return routes
