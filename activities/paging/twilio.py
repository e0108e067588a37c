"""SMS and voice calls through Twilio's REST API (2010-04-01: Messages.json, Calls.json).

An SMS carries the incident, "reply ACK" and a link that acknowledges as its person; a call reads the incident
(TwiML given with the call) and takes a keypress: 1 acknowledges as the person called, 2 escalates. Each asks Twilio for
status callbacks to the HTTP service (starter/http/contact.py), which tell the sending workflow when a message
was undelivered or a call not answered, so the person's next contact method goes at once. Every request Twilio
sends is checked against its X-Twilio-Signature there (`verified`, the `twilio` package's RequestValidator).

Twilio's API has no idempotency key: a retry after a lost answer may text or call twice, so an attempt ends
before Temporal would retry it (`within_attempt`). A refusal (an invalid number, 4xx) is final; 429 and 5xx
are retried. The seam for another provider is `Telephony`: the activities call only its two methods.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

from temporalio import activity
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from activities.http import ack_link, ack_token, check, new_client, send, within_attempt
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import DirectMessage, DirectResult
from workflows.contracts.vocabulary import Channel

API = "/2010-04-01/Accounts"
MAX_SMS = 1000  # a few segments at most; the link is at the end and must survive
# Statuses that mean the page did not reach the person (Messages: undelivered, failed; Calls: the rest).
FAILED = frozenset({"undelivered", "failed", "busy", "no-answer", "canceled"})


class Telephony(Protocol):
    """An SMS and voice provider: each call returns the provider's reference of what it sent."""

    async def send_sms(self, to: str, body: str, callback: str) -> str: ...

    async def place_call(self, to: str, twiml: str, callback: str) -> str: ...


class Twilio:
    def __init__(self, settings: Settings) -> None:
        assert settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from
        self.sid, self.sender = settings.twilio_account_sid, settings.twilio_from
        self.client = new_client(settings.twilio_api_url)
        self._auth = (self.sid, settings.twilio_auth_token.get_secret_value())

    async def send_sms(self, to: str, body: str, callback: str) -> str:
        form = {"To": to, "From": self.sender, "Body": body, "StatusCallback": callback}
        return await self._create("Messages.json", form)

    async def place_call(self, to: str, twiml: str, callback: str) -> str:
        form = {"To": to, "From": self.sender, "Twiml": twiml, "StatusCallback": callback}
        return await self._create("Calls.json", form)

    async def texts_to(self, to: str) -> list[str]:
        """The bodies of the newest messages sent from our number to `to`, newest first."""
        response = await send(
            self.client,
            "twilio",
            "GET",
            f"{API}/{self.sid}/Messages.json",
            params={"To": to, "From": self.sender, "PageSize": 20},
            auth=self._auth,
        )
        check(response, "twilio")
        return [str(m.get("body", "")) for m in response.json().get("messages", [])]

    async def _create(self, resource: str, form: dict[str, str]) -> str:
        async with within_attempt("twilio"):
            response = await send(
                self.client, "twilio", "POST", f"{API}/{self.sid}/{resource}", data=form, auth=self._auth
            )
        check(response, "twilio")  # Twilio's errors: {"code": 21211, "message": ..., "status": 400}
        return str(response.json().get("sid", ""))


def twilio(settings: Settings) -> Twilio | None:
    """Twilio when its account, token and number are set; else None (the outbox)."""
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        return Twilio(settings)
    return None


def verified(settings: Settings, url: str, form: dict[str, Any], signature: str) -> bool:
    """Twilio's X-Twilio-Signature over the URL it called and the form it sent; False without an auth token."""
    if settings.twilio_auth_token is None:
        return False
    return bool(RequestValidator(settings.twilio_auth_token.get_secret_value()).validate(url, form, signature))


class TelephonyActivities:
    def __init__(self, settings: Settings, outbox: Outbox, provider: Telephony | None = None) -> None:
        self.settings = settings
        self.outbox = outbox
        self.provider: Telephony | None = provider or twilio(settings)

    @activity.defn
    async def send_sms(self, message: DirectMessage) -> DirectResult:
        link = ack_link(self.settings, message, Channel.SMS)
        body = f"{message.text[:MAX_SMS]}\nReply ACK to acknowledge, or open {link}"
        if self.provider is None:
            where = await self.outbox.deliver(
                "twilio", "sms", message.idempotency_key, {"to": message.address, "text": body}
            )
            return DirectResult(delivered_to=where)
        sid = await self.provider.send_sms(message.address, body, self._callback(message))
        return DirectResult(reference=sid, delivered_to="twilio")

    @activity.defn
    async def place_call(self, message: DirectMessage) -> DirectResult:
        keypress = f"{self.settings.public_base()}/twilio/voice/{ack_token(self.settings, message, Channel.VOICE)}"
        twiml = call_script(message, keypress)
        if self.provider is None:
            where = await self.outbox.deliver(
                "twilio", "voice", f"voice:{message.idempotency_key}", {"to": message.address, "text": message.text}
            )
            return DirectResult(delivered_to=where)
        sid = await self.provider.place_call(message.address, twiml, self._callback(message))
        return DirectResult(reference=sid, delivered_to="twilio")

    def _callback(self, message: DirectMessage) -> str:
        """Where Twilio reports on what it sent: the workflow that sent it, and the delivery's key."""
        workflow_id = quote(activity.info().workflow_id or "", safe="")
        return f"{self.settings.public_base()}/twilio/status/{workflow_id}/{quote(message.idempotency_key, safe='')}"


def call_script(message: DirectMessage, keypress_url: str) -> str:
    """The call: the incident read out, then 1 to acknowledge, 2 to hand it to the next tier."""
    script = VoiceResponse()
    gather = script.gather(num_digits=1, action=keypress_url, method="POST", timeout=10)
    gather.say(f"{message.title}. {message.text[:500]}.")
    gather.say("Press 1 to acknowledge. Press 2 to escalate to the next person.")
    script.say("Nothing was pressed: the incident is not acknowledged. Goodbye.")
    return str(script)
