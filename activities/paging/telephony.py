"""SMS and voice calls to a person, through the telephony provider the policy names (`telephony`: Twilio or Vonage).

What every provider does alike lives here: the SMS's text (the incident, "reply ACK", a link that acknowledges as
its person), what a call says and which keys it takes (1 acknowledges as the person called, 2 escalates), and
where the provider reports back (starter/http/contact.py): `/<provider>/status/<workflow>/<delivery>` for what it
sent, `/<provider>/voice/<token>` for a keypress. A provider module (twilio.py, vonage.py) speaks its own API and
says how to check what its provider sends back. Neither API has an idempotency key: a retry after a lost
answer may text or call twice, so an attempt ends before Temporal would retry it (`within_attempt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol
from urllib.parse import quote

from temporalio import activity

from activities.http import ack_link, ack_token
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import DirectMessage, DirectResult
from workflows.contracts.vocabulary import Channel

MAX_SMS = 1000  # a few segments at most; the link is at the end and must survive
# What a reply or a keypress may say: words that acknowledge, and the keys of a call.
ACK_WORDS = ("ack", "acknowledge", "ok", "yes", "1")
ACKNOWLEDGE_KEY, ESCALATE_KEY = "1", "2"


@dataclass(frozen=True)
class CallScript:
    """What a call says, in each provider's own script (TwiML, NCCO): the incident, then one key, sent to `keypress`.
    The incident's text is data: each provider escapes it for its script."""

    incident: str
    keypress: str  # the URL the key pressed goes to
    prompt: str = "Press 1 to acknowledge. Press 2 to escalate to the next person."
    nothing_pressed: str = "Nothing was pressed: the incident is not acknowledged. Goodbye."
    seconds_to_press: int = 10


class Telephony(Protocol):
    """An SMS and voice provider: each call returns the provider's reference of what it sent."""

    name: ClassVar[str]  # in the paths its requests come back to: /twilio/..., /vonage/...

    async def send_sms(self, to: str, body: str, callback: str) -> str: ...

    async def place_call(self, to: str, script: CallScript, callback: str) -> str: ...

    async def texts_to(self, to: str) -> list[str]:
        """The bodies of the newest messages we sent to `to`, newest first (which page a reply answers)."""
        ...


class TelephonyActivities:
    def __init__(self, settings: Settings, outbox: Outbox, providers: dict[str, Telephony]) -> None:
        self.settings = settings
        self.outbox = outbox
        self.providers = providers  # by the name a policy gives it; one without credentials is missing

    @activity.defn
    async def send_sms(self, message: DirectMessage) -> DirectResult:
        link = ack_link(self.settings, message, Channel.SMS)
        body = f"{message.text[:MAX_SMS]}\nReply ACK to acknowledge, or open {link}"
        provider = self.providers.get(message.telephony)
        if provider is None:
            where = await self.outbox.deliver(
                message.telephony, "sms", message.idempotency_key, {"to": message.address, "text": body}
            )
            return DirectResult(delivered_to=where)
        reference = await provider.send_sms(message.address, body, self._callback(provider, message))
        return DirectResult(reference=reference, delivered_to=provider.name)

    @activity.defn
    async def place_call(self, message: DirectMessage) -> DirectResult:
        provider = self.providers.get(message.telephony)
        if provider is None:
            where = await self.outbox.deliver(
                message.telephony,
                "voice",
                f"voice:{message.idempotency_key}",
                {"to": message.address, "text": message.text},
            )
            return DirectResult(delivered_to=where)
        token = ack_token(self.settings, message, Channel.VOICE)
        keypress = f"{self.settings.public_base()}/{provider.name}/voice/{token}"
        script = CallScript(f"{message.title}. {message.text[:500]}.", keypress)
        reference = await provider.place_call(message.address, script, self._callback(provider, message))
        return DirectResult(reference=reference, delivered_to=provider.name)

    def _callback(self, provider: Telephony, message: DirectMessage) -> str:
        """Where the provider reports on what it sent: the workflow that sent it, and the delivery's key."""
        workflow_id = quote(activity.info().workflow_id or "", safe="")
        key = quote(message.idempotency_key, safe="")
        return f"{self.settings.public_base()}/{provider.name}/status/{workflow_id}/{key}"
