"""SMS and voice calls through Vonage, behind the telephony seam: the SMS API (POST /sms/json, key and secret in the
form) and the Voice API (POST /v1/calls, a JWT signed with the application's private key, the call's NCCO given
with it). Numbers go without their "+", as Vonage writes them.

Vonage signs what it sends back in two ways, both checked with the account's signature secret: the SMS API's
webhooks (a reply, a delivery receipt) carry `sig`, an HMAC-SHA256 over their sorted parameters (`sms_signed`;
choose "SHA-256 HMAC" in the dashboard), and the Voice API's (call events, a keypress) carry a JWT (HS256) whose
`payload_hash` is the SHA-256 of the body (`voice_signed`). Either is taken only within five minutes of its
timestamp. The SMS API answers 200 even when it refuses: its `status` says why (1 throttled and 5 an internal
error are retried; the rest, an invalid number or credentials, are final). Which page a reply answers comes from
the Reports API's record of the SMS sent to that number.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import jwt

from activities.http import check, failure, new_client, send, within_attempt
from activities.paging.telephony import CallScript
from settings import Settings
from workflows.contracts.trust.links import VALID_FOR

# Statuses that mean the page did not reach the person: a delivery receipt's, then a call event's.
FAILED = frozenset({"failed", "rejected", "expired", "busy", "cancelled", "unanswered", "timeout"})
FRESH = timedelta(minutes=5)  # how old a signed request may be: a replayed one later is refused
_JWT_LIFETIME = 15 * 60
# SMS API statuses worth another attempt (Throttled, Internal Error), as the HTTP status they amount to.
_SMS_RETRY = {"1": 429, "5": 503}


class Vonage:
    name: ClassVar[str] = "vonage"

    def __init__(self, settings: Settings) -> None:
        assert Vonage.configured(settings)
        assert settings.vonage_api_key and settings.vonage_api_secret and settings.vonage_from
        assert settings.vonage_application_id and settings.vonage_private_key
        self.key, self.sender, self.application = (
            settings.vonage_api_key,
            settings.vonage_from,
            settings.vonage_application_id,
        )
        self._secret = settings.vonage_api_secret.get_secret_value()
        self._private_key = settings.vonage_private_key.read_bytes()
        self.rest = new_client(settings.vonage_rest_url)
        self.api = new_client(settings.vonage_api_url)

    @staticmethod
    def configured(settings: Settings) -> bool:
        return bool(
            settings.vonage_api_key
            and settings.vonage_api_secret
            and settings.vonage_from
            and settings.vonage_application_id
            and settings.vonage_private_key
            and settings.vonage_signature_secret
        )

    async def send_sms(self, to: str, body: str, callback: str) -> str:
        form = {
            "api_key": self.key,
            "api_secret": self._secret,
            "from": self.sender.lstrip("+"),
            "to": to.lstrip("+"),
            "text": body,
            "type": "text" if body.isascii() else "unicode",
            "callback": callback,
        }
        async with within_attempt("vonage"):
            response = await send(self.rest, "vonage", "POST", "/sms/json", data=form, secrets=[self._secret])
        check(response, "vonage", secrets=[self._secret])
        [answer, *_] = response.json().get("messages") or [{}]
        status = str(answer.get("status", ""))
        if status != "0":
            detail = f"SMS status {status}: {answer.get('error-text', 'no reason given')}"
            raise failure("vonage", _SMS_RETRY.get(status, 400), detail)
        return str(answer.get("message-id", ""))

    async def place_call(self, to: str, script: CallScript, callback: str) -> str:
        body = {
            "to": [{"type": "phone", "number": to.lstrip("+")}],
            "from": {"type": "phone", "number": self.sender.lstrip("+")},
            "ncco": ncco(script),
            "event_url": [callback],
            "event_method": "POST",
        }
        async with within_attempt("vonage"):
            response = await send(
                self.api, "vonage", "POST", "/v1/calls", json=body, headers={"Authorization": f"Bearer {self._jwt()}"}
            )
        check(response, "vonage")  # {"type": ..., "title": ..., "detail": ...}
        return str(response.json().get("uuid", ""))

    async def texts_to(self, to: str) -> list[str]:
        """From the Reports API: the SMS sent to `to` while a page's link is valid, newest first."""
        now = datetime.now(UTC)
        params = {
            "account_id": self.key,
            "product": "SMS",
            "direction": "outbound",
            "date_start": (now - VALID_FOR).isoformat(timespec="seconds"),
            "date_end": now.isoformat(timespec="seconds"),
            "include_message": "true",
        }
        response = await send(
            self.api, "vonage", "GET", "/v2/reports/records", params=params, auth=(self.key, self._secret)
        )
        check(response, "vonage", secrets=[self._secret])
        records = [r for r in response.json().get("records", []) if str(r.get("to", "")) == to.lstrip("+")]
        records.sort(key=lambda r: str(r.get("date_received", "")), reverse=True)
        return [str(r.get("message_body", "")) for r in records]

    def _jwt(self) -> str:
        now = int(time.time())
        claims = {"application_id": self.application, "iat": now, "exp": now + _JWT_LIFETIME, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._private_key, algorithm="RS256")


def ncco(script: CallScript) -> list[dict[str, Any]]:
    """The call: the incident read out (the person may press at once), then one key, posted to the keypress URL."""
    return [
        {"action": "talk", "text": script.incident, "bargeIn": True},
        {"action": "talk", "text": script.prompt, "bargeIn": True},
        {
            "action": "input",
            "type": ["dtmf"],
            "dtmf": {"maxDigits": 1, "timeOut": script.seconds_to_press},
            "eventUrl": [script.keypress],
            "eventMethod": "POST",
        },
    ]


def said(text: str) -> str:
    """An NCCO that says `text` (the answer to a keypress)."""
    return json.dumps([{"action": "talk", "text": text}])


def sms_signed(settings: Settings, params: dict[str, str]) -> bool:
    """The SMS API's `sig` over the other parameters (each "&" and "=" in a value read as "_"), fresh."""
    if settings.vonage_signature_secret is None:
        return False
    given = params.get("sig", "").lower()
    mac = hmac.new(settings.vonage_signature_secret.get_secret_value().encode(), digestmod=hashlib.sha256)
    for name in sorted(params):
        if name != "sig":
            mac.update(f"&{name}={params[name].replace('&', '_').replace('=', '_')}".encode())
    return hmac.compare_digest(given, mac.hexdigest()) and _fresh(params.get("timestamp"))


def voice_signed(settings: Settings, authorization: str, body: bytes) -> bool:
    """The Voice API's JWT (HS256 with the signature secret), for this very body, fresh."""
    if settings.vonage_signature_secret is None or not authorization.startswith("Bearer "):
        return False
    try:
        claims = jwt.decode(
            authorization.removeprefix("Bearer "),
            settings.vonage_signature_secret.get_secret_value(),
            algorithms=["HS256"],
            options={"require": ["iat", "payload_hash"]},
        )
    except jwt.InvalidTokenError:
        return False
    return hmac.compare_digest(str(claims["payload_hash"]), hashlib.sha256(body).hexdigest()) and _fresh(claims["iat"])


def _fresh(timestamp: Any) -> bool:
    try:
        return abs(time.time() - float(timestamp)) <= FRESH.total_seconds()
    except (TypeError, ValueError):
        return False
