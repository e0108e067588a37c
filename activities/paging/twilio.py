"""SMS and voice calls through Twilio's REST API (2010-04-01: Messages.json, Calls.json), behind the telephony seam.

A call's script is TwiML given with the call; a Gather takes the key. Twilio sends status callbacks, the reply
webhook and the keypress as forms, each signed with X-Twilio-Signature (`verified`, the `twilio` package's
RequestValidator). A refusal (an invalid number, 4xx) is final; 429 and 5xx are retried. Its messages can be
listed, which tells the HTTP service which page an SMS reply answers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from activities.http import check, new_client, send, within_attempt
from activities.paging.telephony import CallScript
from settings import Settings

API = "/2010-04-01/Accounts"
# Statuses that mean the page did not reach the person (Messages: undelivered, failed; Calls: the rest).
FAILED = frozenset({"undelivered", "failed", "busy", "no-answer", "canceled"})


class Twilio:
    name: ClassVar[str] = "twilio"

    def __init__(self, settings: Settings) -> None:
        assert settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from
        self.sid, self.sender = settings.twilio_account_sid, settings.twilio_from
        self.client = new_client(settings.twilio_api_url)
        self._auth = (self.sid, settings.twilio_auth_token.get_secret_value())

    @staticmethod
    def configured(settings: Settings) -> bool:
        return bool(settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from)

    async def send_sms(self, to: str, body: str, callback: str) -> str:
        form = {"To": to, "From": self.sender, "Body": body, "StatusCallback": callback}
        return await self._create("Messages.json", form)

    async def place_call(self, to: str, script: CallScript, callback: str) -> str:
        form = {"To": to, "From": self.sender, "Twiml": twiml(script), "StatusCallback": callback}
        return await self._create("Calls.json", form)

    async def texts_to(self, to: str) -> list[str]:
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


def verified(settings: Settings, url: str, form: dict[str, Any], signature: str) -> bool:
    """Twilio's X-Twilio-Signature over the URL it called and the form it sent; False without an auth token."""
    if settings.twilio_auth_token is None:
        return False
    return bool(RequestValidator(settings.twilio_auth_token.get_secret_value()).validate(url, form, signature))


def twiml(script: CallScript) -> str:
    """The call: the incident read out, then a Gather of one key."""
    call = VoiceResponse()
    gather = call.gather(num_digits=1, action=script.keypress, method="POST", timeout=script.seconds_to_press)
    gather.say(script.incident)
    gather.say(script.prompt)
    call.say(script.nothing_pressed)
    return str(call)


def said(text: str) -> str:
    """A TwiML answer that says `text` (to a keypress)."""
    answer = VoiceResponse()
    answer.say(text)
    return str(answer)
