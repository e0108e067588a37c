"""The ways back from a page sent straight to a person: the acknowledge link (a push's Acknowledge and Open buttons,
the link in an SMS or e-mail), and the telephony providers' requests (an SMS reply, a keypress in a call, status
callbacks), from Twilio and from Vonage alike once each is verified.

Each acknowledges as the person the page was sent to, never as whoever follows it: the link's grant names the
person and the incident under the key the worker signed it with (workflows/contracts/trust/links.py); a reply
counts only from the person's own number, and only for the newest page we texted that number. The service then
sends an ordinary Acknowledge decision through its signing client, as for incidentctl, with the grant's nonce
as its update id (a link used twice is taken once). Every request from Twilio must carry a valid
X-Twilio-Signature over PUBLIC_URL's address of the request, every one from Vonage its signature (`sig`, or a
JWT over the body): anything else is 403 and changes nothing.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from temporalio.client import Client
from twilio.twiml.messaging_response import MessagingResponse

from activities.paging import telephony_providers, twilio, vonage
from activities.paging.telephony import ACK_WORDS, ACKNOWLEDGE_KEY, ESCALATE_KEY
from client.decide import Refused, is_transport_error, is_unreachable, send_decision
from settings import Settings
from starter.http.decisions import RETRY_WITHIN
from workflows.contracts.activity_io import DeliveryReport
from workflows.contracts.people import CONTACT_FIELD
from workflows.contracts.policy import Policy
from workflows.contracts.temporal import ids
from workflows.contracts.trust import links
from workflows.contracts.vocabulary import Channel
from workflows.incident.model import Acknowledge, Escalate

log = logging.getLogger("contact")

TOKEN_IN_TEXT = re.compile(r"/ack/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


def router(
    settings: Settings,
    policy: Policy,
    deciding: Callable[[], Client],
    temporal: Callable[[], Client],
    read_body: Callable[[Request], Awaitable[bytes]],
) -> APIRouter:
    routes = APIRouter()

    def key() -> bytes:
        return links.link_key(settings.ack_link_key)

    async def acknowledge(granted: links.AckGrant, escalate: bool = False) -> tuple[int, str]:
        """Acknowledge as the grant's person (or hand it on to the next tier); the status and the line they see."""
        if granted.person not in policy.people:
            return 403, f"{granted.person} is no longer a person of the {policy.organisation} policy"
        decision = (Escalate if escalate else Acknowledge)(actor=granted.person, via=granted.via_label())
        update_id = f"{'escalate' if escalate else 'ack'}-{granted.nonce}"
        try:
            said = await send_decision(
                deciding(), granted.incident_id, decision, update_id=update_id, retry_within=RETRY_WITHIN
            )
        except Refused as err:
            return 409, str(err)
        except Exception as err:
            if is_unreachable(err) or is_transport_error(err):
                return 503, "the incident service did not answer; try again in a moment"
            raise
        return 200, said

    # --- the acknowledge link ------------------------------------------------------------------------

    @routes.get("/ack/{token}")
    async def ack_page(token: str) -> HTMLResponse:
        """What a browser shows (the push's Open button, a link in a message): the incident and a button. Only
        the button acknowledges: a link previewer or a mail scanner that fetches the link decides nothing."""
        try:
            granted = links.read(key(), token, datetime.now(UTC))
        except links.InvalidGrant as err:
            return HTMLResponse(_page("Not acknowledged", str(err)), status_code=403)
        who, incident = html.escape(granted.person), html.escape(granted.incident_id)
        form = f'<form method="post"><button type="submit">Acknowledge {incident} as {who}</button></form>'
        return HTMLResponse(_page(f"{incident}", f"Paged to {who} by {html.escape(granted.via_label())}.", form))

    @routes.post("/ack/{token}")
    async def ack(token: str) -> HTMLResponse:
        try:
            granted = links.read(key(), token, datetime.now(UTC))
        except links.InvalidGrant as err:
            return HTMLResponse(_page("Not acknowledged", str(err)), status_code=403)
        status, said = await acknowledge(granted)
        return HTMLResponse(_page("Acknowledged" if status == 200 else "Not acknowledged", said), status_code=status)

    # --- what both telephony providers send back, once read and verified --------------------------------

    providers = telephony_providers(settings)

    async def sms_reply(provider: str, sender: str, text: str) -> str:
        """A reply to a page: "ACK" acknowledges the newest incident we paged that number about, as its person."""
        words, person = text.strip().lower().split(), policy.person_with(CONTACT_FIELD[Channel.SMS], sender)
        if not words or words[0] not in ACK_WORDS:
            return "Reply ACK to acknowledge the incident you were paged about."
        if person is None:
            log.warning("an SMS reply from a number of nobody in the policy acknowledged nothing")
            return "This number belongs to nobody on call here: nothing was acknowledged."
        if provider not in providers:
            return "SMS is not configured here: nothing was acknowledged."
        now = datetime.now(UTC)
        for body in await providers[provider].texts_to(sender):
            for token in TOKEN_IN_TEXT.findall(body):
                try:
                    granted = links.read(key(), token, now)
                except links.InvalidGrant:
                    continue
                if granted.person == person:
                    return (await acknowledge(granted))[1]
        return "No page of yours is waiting: nothing was acknowledged."

    async def keypress(token: str, called_number: str, digits: str) -> str:
        """A key pressed in a call we placed: 1 acknowledges as the person called, 2 hands it to the next tier."""
        try:
            granted = links.read(key(), token, datetime.now(UTC))
        except links.InvalidGrant as err:
            return str(err)
        called = policy.people.get(granted.person)
        if granted.via != Channel.VOICE or called is None or called_number != called.phone:
            return "This call cannot acknowledge anything."
        if digits not in (ACKNOWLEDGE_KEY, ESCALATE_KEY):
            return "Not acknowledged. Goodbye."
        escalate = digits == ESCALATE_KEY
        status, said = await acknowledge(granted, escalate=escalate)
        if status != 200:
            return said
        return "Escalated: the next person is paged now." if escalate else "Acknowledged. Thank you."

    async def reported(workflow_id: str, delivery: str, by: str, status: str, failed: bool, error: str) -> Response:
        """A provider's report on a message or call: one that did not reach its person moves their rules on (the
        sending workflow's signal)."""
        if failed:
            reason = f"{by} reports {status}" + (f" (error {error})" if error else "")
            report = DeliveryReport(idempotency_key=unquote(delivery), reason=reason)
            try:
                await temporal().get_workflow_handle(unquote(workflow_id)).signal(ids.DELIVERY_REPORT, report)
            except Exception as err:  # the page's workflow has ended: nothing is waiting on the report
                log.info("delivery report for %s not taken: %s", workflow_id, err)
        return Response(status_code=204)

    def forged(request: Request) -> Response:
        log.warning("refused a request to %s without a valid signature", request.url.path)
        return Response("forged or unsigned request", status_code=403)

    # --- Twilio: forms signed with X-Twilio-Signature, answered in TwiML -------------------------------------

    async def from_twilio(request: Request) -> dict[str, Any] | None:
        """The form Twilio sent, or None when its signature does not hold for it."""
        form = {name: values[-1] for name, values in parse_qs((await read_body(request)).decode()).items()}
        path = request.scope.get("raw_path", request.url.path.encode()).decode()  # as Twilio signed it: still quoted
        url = settings.public_base() + path + (f"?{request.url.query}" if request.url.query else "")
        return form if twilio.verified(settings, url, form, request.headers.get("x-twilio-signature", "")) else None

    @routes.post("/twilio/sms")
    async def twilio_sms(request: Request) -> Response:
        form = await from_twilio(request)
        if form is None:
            return forged(request)
        answer = MessagingResponse()
        answer.message(await sms_reply(twilio.Twilio.name, form.get("From", ""), form.get("Body", "")))
        return Response(str(answer), media_type="application/xml")

    @routes.post("/twilio/voice/{token}")
    async def twilio_keypress(token: str, request: Request) -> Response:
        form = await from_twilio(request)
        if form is None:
            return forged(request)
        said = await keypress(token, form.get("To", ""), form.get("Digits", ""))
        return Response(twilio.said(said), media_type="application/xml")

    @routes.post("/twilio/status/{workflow_id}/{delivery}")
    async def twilio_status(workflow_id: str, delivery: str, request: Request) -> Response:
        form = await from_twilio(request)
        if form is None:
            return forged(request)
        status = form.get("MessageStatus") or form.get("CallStatus") or ""
        return await reported(
            workflow_id, delivery, "Twilio", status, status in twilio.FAILED, form.get("ErrorCode", "")
        )

    # --- Vonage: the SMS API's webhooks carry `sig`, the Voice API's a JWT; calls are answered in NCCO ------

    async def from_vonage(request: Request) -> dict[str, str] | None:
        """What Vonage sent (a form or JSON), or None when neither of its signatures holds for it."""
        body = await read_body(request)
        if request.headers.get("authorization"):  # the Voice API: a JWT over the body
            if not vonage.voice_signed(settings, request.headers["authorization"], body):
                return None
            return {
                name: json.dumps(value) if isinstance(value, dict) else str(value)
                for name, value in json.loads(body or b"{}").items()
            }
        if request.headers.get("content-type", "").startswith("application/json"):
            params = {name: str(value) for name, value in json.loads(body or b"{}").items()}
        else:
            params = {name: values[-1] for name, values in parse_qs(body.decode()).items()}
        return params if vonage.sms_signed(settings, params) else None

    @routes.post("/vonage/sms")
    async def vonage_sms(request: Request) -> Response:
        """An inbound SMS. Vonage takes no answer in the response: what happened is logged, and the page's other
        ways back stay open."""
        params = await from_vonage(request)
        if params is None:
            return forged(request)
        said = await sms_reply(vonage.Vonage.name, "+" + params.get("msisdn", "").lstrip("+"), params.get("text", ""))
        log.info("an SMS reply through Vonage: %s", said)
        return Response(status_code=204)

    @routes.post("/vonage/voice/{token}")
    async def vonage_keypress(token: str, request: Request) -> Response:
        params = await from_vonage(request)
        if params is None:
            return forged(request)
        digits = json.loads(params.get("dtmf", "{}")).get("digits", "")
        said = await keypress(token, "+" + params.get("to", "").lstrip("+"), digits)
        return Response(vonage.said(said), media_type="application/json")

    @routes.post("/vonage/status/{workflow_id}/{delivery}")
    async def vonage_status(workflow_id: str, delivery: str, request: Request) -> Response:
        """A delivery receipt (SMS) or a call's event: one that did not reach its person moves their rules on."""
        params = await from_vonage(request)
        if params is None:
            return forged(request)
        status, error = params.get("status", ""), params.get("err-code", "0")
        error = "" if error == "0" else error  # 0: no error
        return await reported(workflow_id, delivery, "Vonage", status, status in vonage.FAILED, error)

    return routes


def _page(title: str, text: str, form: str = "") -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{form}</body></html>"
    )
