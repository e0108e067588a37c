"""Slack's ways in: button clicks (`POST /slack/interactions`) and the `/incident` slash command
(`POST /slack/commands`), turned into the same decisions incidentctl sends.

Every request must carry Slack's v0 signature over its exact body and a timestamp within five
minutes; anything else is 401 and changes nothing. The Slack user must map to a person of the policy
(people's `slack_user_id`, or `slack_users`); the decision is theirs and the workflow's validators
judge it exactly as for the CLI. Slack wants an answer within 3 s: the decision gets up to
ANSWER_WITHIN seconds, and a slower one is finished in the background and reported on `response_url`.
The decision's update id comes from the Slack request (the click, or the command's trigger_id), so a
request Slack sends again (X-Slack-Retry-Num) is applied once.

Slash command grammar (`/incident help` prints it):

    /incident declare <title>
    /incident ack INC-XXXXXXXX [note]
    /incident phase INC-XXXXXXXX <phase> [note]
    /incident note INC-XXXXXXXX <progress note>
    /incident update INC-XXXXXXXX <status update>
    /incident estimate INC-XXXXXXXX <minutes> [note]
    /incident resolve INC-XXXXXXXX <overview> | <how it was resolved> | <prevention>
    /incident reopen INC-XXXXXXXX <reason>
    /incident channel INC-XXXXXXXX <name> <reason>    (an extra channel, made once the IC or CL approves)
    /incident clients INC-XXXXXXXX now|later <reason> (the owner's answer at an evaluation point)

Buttons: `action_id` is a decision's name in the registry (workflows/contracts/decisions.py: the incident's, or
a step of the message loop), and `value` is the incident id, or a JSON object with `incident_id` and
the decision's other fields; a step of the message loop needs `message_id` too:

    {"action_id": "approve_send", "value": "{\"incident_id\": \"INC-7F3KQ2MA\",
                                             \"message_id\": \"investigation/all_customers\"}"}
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask
from temporalio.client import Client

from activities.chat.slack import escape_mrkdwn
from client.alerts import manual_alert, send_alert
from client.decide import (
    Refused,
    decision_model,
    is_transport_error,
    is_unreachable,
    send_decision,
    send_step,
    step_result_type,
)
from settings import Settings, describe_validation_error
from starter.http.metrics import HttpMetrics
from workflows.comms.model import CommsMessage
from workflows.contracts.people import CONTACT_FIELD
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Channel, Phase
from workflows.incident.model import (
    Acknowledge,
    CompleteTask,
    Decision,
    Estimate,
    EvaluateClients,
    ProgressNote,
    Reopen,
    RequestChannel,
    Resolve,
    SetPhase,
    StatusUpdate,
    UpdateTask,
)

log = logging.getLogger("slack")

MAX_AGE_SECONDS = 5 * 60  # Slack's own advice: refuse older requests, they may be replays
ANSWER_WITHIN = 2.0  # seconds; Slack gives up after 3
USAGE = (
    "Usage: `/incident declare <title>` · `ack INC-… [note]` · `phase INC-… <phase> [note]` · "
    "`note INC-… <text>` · `update INC-… <text>` · `estimate INC-… <minutes>` · "
    "`resolve INC-… <overview> | <how resolved> | <prevention>` · `reopen INC-… <reason>` · "
    "`channel INC-… <name> <reason>` · `clients INC-… now|later <reason>` · `task INC-… update|done T<n> [note]`"
)


VERBS = ("ack", "acknowledge", "phase", "note", "update", "estimate", "resolve", "reopen", "channel", "clients", "task")


class ChatRefusal(Exception):
    """Refused before anything is sent: the message goes back to the user only."""


def signature_ok(secret: str, timestamp: str, body: bytes, signature: str, now: float) -> bool:
    """Slack's v0 scheme: "v0=" + hex HMAC-SHA256(secret, "v0:{timestamp}:{body}"), fresh timestamp."""
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Slack would send; for tests and for replaying a request by hand."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


# --- what a request asks for ---------------------------------------------------------------------


@dataclass
class Decide:
    incident_id: str
    decision: Decision
    step: str = ""  # the name of a step of the incident's message loop; "": a decision on the incident
    update_id: str | None = None  # from the Slack request: the same request again is applied once


@dataclass
class Declare:
    title: str
    reporter: str
    request_key: str = ""  # Slack's trigger_id: a replayed request declares nothing new


def parse_command(text: str, person: str) -> Decide | Declare:
    """`/incident` text into a decision; ChatRefusal with usage help when it does not parse."""
    verb, _, rest = text.strip().partition(" ")
    verb = verb.lower()
    if verb == "declare":
        if not rest.strip():
            raise ChatRefusal("Give the incident a title: `/incident declare <title>`")
        return Declare(title=rest.strip(), reporter=person)
    if verb in ("", "help"):
        raise ChatRefusal(USAGE)
    if verb not in VERBS:
        raise ChatRefusal(f"unknown command `{verb}`. {USAGE}")
    incident, _, rest = rest.strip().partition(" ")
    if not incident.upper().startswith("INC-"):
        raise ChatRefusal(f"`{verb}` needs an incident id like INC-7F3KQ2MA. {USAGE}")
    incident_id, rest = incident.upper(), rest.strip()
    try:
        return Decide(incident_id, _decision(verb, person, rest))
    except ValidationError as err:
        raise ChatRefusal(f"`{verb}`: {describe_validation_error(err)}") from err


def _decision(verb: str, person: str, rest: str) -> Decision:
    first, _, tail = rest.partition(" ")
    if verb in ("ack", "acknowledge"):
        return Acknowledge(actor=person, note=rest)
    if verb == "phase":
        if first.lower() not in Phase.__members__.values():
            raise ChatRefusal(f"unknown phase {first!r}; phases: {', '.join(p.value for p in Phase)}")
        return SetPhase(actor=person, phase=Phase(first.lower()), note=tail.strip())
    if verb == "note":
        return ProgressNote(actor=person, text=_required(rest, "the note"))
    if verb == "update":
        return StatusUpdate(actor=person, text=_required(rest, "the update"))
    if verb == "estimate":
        if not (first.isascii() and first.isdigit() and len(first) <= 6):
            raise ChatRefusal("`estimate` needs minutes: `/incident estimate INC-… 30 [note]`")
        return Estimate(actor=person, minutes=int(first), note=tail.strip())
    if verb == "resolve":
        parts = [p.strip() for p in rest.split("|")]
        if len(parts) != 3 or not all(parts):
            raise ChatRefusal("`resolve` needs three parts: `<overview> | <how resolved> | <prevention>`")
        return Resolve(actor=person, overview=parts[0], how_resolved=parts[1], prevention=parts[2])
    if verb == "reopen":
        return Reopen(actor=person, reason=_required(rest, "the reason"))
    if verb == "channel":
        if not (first and tail.strip()):
            raise ChatRefusal("`channel` needs a name and a reason: `/incident channel INC-… <name> <reason>`")
        return RequestChannel(actor=person, name=first, reason=tail.strip())
    if verb == "clients":
        if first.lower() not in ("now", "later") or not tail.strip():
            raise ChatRefusal("`clients` needs now or later and a reason: `/incident clients INC-… now|later <reason>`")
        return EvaluateClients(actor=person, tell=first.lower() == "now", reason=tail.strip())
    if verb == "task":  # a task's owner answers the plan's nudge where it reached them
        task_id, _, note = tail.strip().partition(" ")
        if first.lower() not in ("update", "done") or not task_id:
            raise ChatRefusal("`task` needs update or done and a task: `/incident task INC-… update|done T1 [note]`")
        if first.lower() == "done":
            return CompleteTask(actor=person, task_id=task_id.upper(), note=note.strip())
        return UpdateTask(actor=person, task_id=task_id.upper(), note=_required(note.strip(), "the progress note"))
    raise AssertionError(f"VERBS and _decision disagree on {verb!r}")


def _required(text: str, what: str) -> str:
    if not text:
        raise ChatRefusal(f"say {what} after the incident id")
    return text


def parse_action(action: dict[str, Any], person: str) -> Decide:
    """A button: action_id names the decision, value is "INC-…" or JSON with incident_id and fields."""
    name = str(action.get("action_id", ""))
    value = str(action.get("value", ""))
    fields: dict[str, Any] = {}
    if value.startswith("{"):
        try:
            fields = json.loads(value)
        except ValueError as err:
            raise ChatRefusal("this button's value is not valid JSON") from err
        if not isinstance(fields, dict):
            raise ChatRefusal("this button's value must be a JSON object")
        value = str(fields.pop("incident_id", ""))
    found = decision_model(name, about_a_message="message_id" in fields)
    if found is None:
        raise ChatRefusal(f"this button ({name!r}) is not a decision this service knows")
    model, is_step = found
    if not value.upper().startswith("INC-"):
        raise ChatRefusal("this button does not say which incident it is for")
    fields.pop("actor", None)  # the clicking person acts, whatever the button says
    try:
        decision = model.model_validate({**fields, "actor": person})
        return Decide(value.upper(), decision, step=name if is_step else "")
    except ValidationError as err:
        raise ChatRefusal(f"{name}: {describe_validation_error(err)}") from err


async def act(
    client: Client, settings: Settings, policy: Policy, request: Decide | Declare, escape: Callable[[str], str]
) -> str:
    """Run a chat's request as its person; the outcome in the chat's text (`escape` makes data safe in it). A
    refusal raises Refused with the words for the person."""
    if isinstance(request, Declare):
        event = manual_alert(request.title, request.reporter, dedup_key=request.request_key)
        await send_alert(client, settings, policy, event)
        incident_id = incident_id_for(event.source, event.dedup_key)
        return f"{request.reporter} declared {incident_id}: {escape(request.title)}"
    who = request.decision.actor
    if not request.step:
        result = await send_decision(client, request.incident_id, request.decision, update_id=request.update_id)
        return f"{who}: {escape(result)}"
    done = f"{who}: {request.step.replace('_', ' ')} on {request.incident_id}"
    moved = await send_step(
        client,
        request.incident_id,
        request.step,
        request.decision,
        step_result_type(type(request.decision)),
        update_id=request.update_id,
    )
    if isinstance(moved, CommsMessage):
        return f"{done} {escape(moved.message_id)}; now {moved.step.value}"
    return f"{done}: {', '.join(str(audience) for audience in moved)}"


# --- the endpoint --------------------------------------------------------------------------------


def router(
    settings: Settings,
    policy: Policy,
    temporal: Callable[[], Client],
    metrics: HttpMetrics,
    read_body: Callable[[Request], Awaitable[bytes]],
) -> APIRouter:
    """The Slack routes, sharing the HTTP service's policy, Temporal client, metrics and body reader."""
    routes = APIRouter(prefix="/slack")

    async def verified_form(request: Request, kind: str) -> dict[str, str] | Response:
        raw = await read_body(request)
        secret = settings.slack_signing_secret
        good = secret is not None and signature_ok(
            secret.get_secret_value(),
            request.headers.get("x-slack-request-timestamp", ""),
            raw,
            request.headers.get("x-slack-signature", ""),
            time.time(),
        )
        if not good:
            metrics.slack.labels(kind, "bad_signature").inc()
            return JSONResponse({"error": "bad or stale Slack signature"}, status_code=401)
        try:
            form = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return JSONResponse({"error": "body is not UTF-8"}, status_code=400)
        return {key: values[0] for key, values in form.items()}

    async def outcome(kind: str, request: Decide | Declare) -> dict[str, Any]:
        """The Slack message for a finished request: shown to the channel, or only to the user if refused."""
        try:
            text = await act(temporal(), settings, policy, request, escape_mrkdwn)
        except Refused as err:
            metrics.slack.labels(kind, "refused").inc()
            return ephemeral(escape_mrkdwn(str(err)))
        except Exception as err:
            if is_unreachable(err) or is_transport_error(err):
                metrics.slack.labels(kind, "unavailable").inc()
                return ephemeral(
                    "The incident service got no answer from Temporal in time; what you asked may "
                    "still take effect: check the incident before trying again."
                )
            log.exception("Slack %s failed", kind)
            metrics.slack.labels(kind, "error").inc()
            return ephemeral("Something went wrong on our side; try again, or use incidentctl.")
        metrics.slack.labels(kind, "done").inc()
        return {"response_type": "in_channel", "text": text}

    async def answer(kind: str, request: Decide | Declare, response_url: str, *, inline: bool) -> Response:
        """Answer in time: inline when done within ANSWER_WITHIN (and Slack shows inline answers),
        otherwise acknowledge now and post the outcome to response_url when it is known."""
        task = asyncio.create_task(outcome(kind, request))
        if inline:
            done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN)
            if task in done:
                return JSONResponse(task.result())
        return JSONResponse(
            ephemeral("Working on it…") if inline else {},
            background=BackgroundTask(post_when_done, task, response_url),
        )

    @routes.post("/commands")
    async def commands(request: Request) -> Response:
        form = await verified_form(request, "command")
        if isinstance(form, Response):
            return form
        person = policy.person_with(CONTACT_FIELD[Channel.SLACK], form.get("user_id", ""))
        if person is None:
            metrics.slack.labels("command", "unknown_user").inc()
            return JSONResponse(ephemeral(not_in_policy(form.get("user_id", ""))))
        try:
            wanted = parse_command(form.get("text", ""), person)
            if isinstance(wanted, Declare):
                wanted.request_key = form.get("trigger_id", "")
            else:
                wanted.update_id = update_id(form.get("trigger_id", ""))
        except ChatRefusal as err:
            metrics.slack.labels("command", "refused").inc()
            return JSONResponse(ephemeral(escape_mrkdwn(str(err))))
        return await answer("command", wanted, form.get("response_url", ""), inline=True)

    @routes.post("/interactions")
    async def interactions(request: Request) -> Response:
        form = await verified_form(request, "interaction")
        if isinstance(form, Response):
            return form
        try:
            payload = json.loads(form.get("payload", ""))
        except (ValueError, RecursionError):
            return JSONResponse({"error": "payload is not valid JSON"}, status_code=400)
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return Response(status_code=200)  # other interaction types are not ours to handle
        response_url = str(payload.get("response_url", ""))
        user = payload.get("user")
        user_id = str(user.get("id", "")) if isinstance(user, dict) else ""
        actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
        person = policy.person_with(CONTACT_FIELD[Channel.SLACK], user_id)
        # Slack ignores the body of an answer to a click: every message goes to response_url.
        if person is None:
            metrics.slack.labels("interaction", "unknown_user").inc()
            reply = ephemeral(not_in_policy(user_id))
            return Response(status_code=200, background=BackgroundTask(post, response_url, reply))
        if not actions or not isinstance(actions[0], dict):
            return JSONResponse({"error": "no action in payload"}, status_code=400)
        try:
            wanted = parse_action(actions[0], person)
            wanted.update_id = update_id(str(payload.get("trigger_id", "")), user_id, actions[0])
        except ChatRefusal as err:
            metrics.slack.labels("interaction", "refused").inc()
            reply = ephemeral(escape_mrkdwn(str(err)))
            return Response(status_code=200, background=BackgroundTask(post, response_url, reply))
        return await answer("interaction", wanted, response_url, inline=False)

    return routes


def update_id(trigger_id: str, user_id: str = "", action: dict[str, Any] | None = None) -> str | None:
    """The update id of a Slack request: the click (its action_ts, user and action_id), else the request's
    trigger_id. Slack sends the same values when it retries a request; None: Temporal makes one up."""
    if action and action.get("action_ts"):
        return f"slack-{user_id}-{action.get('action_id', '')}-{action['action_ts']}"
    return f"slack-{trigger_id}" if trigger_id else None


def ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


def not_in_policy(slack_user_id: str) -> str:
    return (
        f"Your Slack user ({escape_mrkdwn(slack_user_id)}) is not a person in the incident policy; "
        "ask the platform team to add your slack_user_id."
    )


async def post_when_done(task: Awaitable[dict[str, Any]], response_url: str) -> None:
    await post(response_url, await task)


async def post(response_url: str, message: dict[str, Any]) -> None:
    """Post to Slack's response_url (valid 30 minutes, five uses). Failures are logged, not raised:
    the decision itself has already been taken or refused."""
    if not response_url.startswith(("https://", "http://")):
        return
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(response_url, json=message)
        if answer.status_code >= 400:
            log.warning("Slack response_url answered %s", answer.status_code)
    except httpx.HTTPError as err:
        log.warning("could not post to Slack response_url: %s", err)
