"""A fake Twilio REST API (2010-04-01): Messages.json and Calls.json with Basic auth and Twilio's
{"code", "message", "more_info", "status"} errors, the message list, and the signed requests Twilio sends back
(status callbacks, an SMS reply, a keypress), signed as Twilio signs them (X-Twilio-Signature)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from settings import Settings
from tests.fakes.peer import FakePeer, basic_auth, params

SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "twilio-auth-token-secret"
FROM = "+15005550006"


@dataclass
class Signed:
    """A request as Twilio would send it to our service: the path, the form and its headers."""

    url: str
    form: dict[str, str]

    def headers(self, token: str = AUTH_TOKEN) -> dict[str, str]:
        signature = RequestValidator(token).compute_signature(self.url, self.form)
        return {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}


class FakeTwilio(FakePeer):
    def __init__(self, unreachable: set[str] | None = None) -> None:
        super().__init__()
        self.unreachable = unreachable or set()  # numbers Twilio refuses (21211, invalid 'To')
        self.messages: list[dict[str, Any]] = []
        self.calls_placed: list[dict[str, Any]] = []
        base = f"/2010-04-01/Accounts/{SID}"
        self.app.router.add_post(f"{base}/Messages.json", self._message)
        self.app.router.add_get(f"{base}/Messages.json", self._list_messages)
        self.app.router.add_post(f"{base}/Calls.json", self._call)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "twilio_account_sid": SID,
                "twilio_auth_token": SecretStr(AUTH_TOKEN),
                "twilio_from": FROM,
                "twilio_api_url": self.url,
            }
        )

    def status(self, sent: dict[str, Any], status: str) -> Signed:
        """Twilio's status callback for a message or call it accepted."""
        field = "MessageStatus" if sent["sid"].startswith("SM") else "CallStatus"
        form = {"AccountSid": SID, field: status, "To": sent["To"], "From": FROM}
        form["MessageSid" if field == "MessageStatus" else "CallSid"] = sent["sid"]
        return Signed(sent["StatusCallback"], form)

    def reply(self, public_url: str, from_number: str, body: str) -> Signed:
        """An SMS to our number, as Twilio posts it to the messaging webhook."""
        form = {"AccountSid": SID, "MessageSid": f"SM{next(self._ids):032d}", "From": from_number, "To": FROM}
        return Signed(f"{public_url}/twilio/sms", form | {"Body": body})

    def keypress(self, call: dict[str, Any], digits: str) -> Signed:
        """The Gather's action, as Twilio posts it when the person called presses a key."""
        action = call["Twiml"].split('action="')[1].split('"')[0]
        form = {"AccountSid": SID, "CallSid": call["sid"], "From": FROM, "To": call["To"], "Digits": digits}
        return Signed(action, form)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == basic_auth(SID, AUTH_TOKEN)

    async def _message(self, request: web.Request) -> web.Response:
        return await self._create(request, "SM", self.messages, "Body")

    async def _call(self, request: web.Request) -> web.Response:
        return await self._create(request, "CA", self.calls_placed, "Twiml")

    async def _create(
        self, request: web.Request, prefix: str, into: list[dict[str, Any]], content: str
    ) -> web.Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        form = {k: str(v) for k, v in params(request).items()}
        if not form.get(content):
            return _error(400, 21602, f"Message body is required ({content})")
        if not form.get("To", "").startswith("+") or form["To"] in self.unreachable:
            return _error(400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number.")
        sent = form | {"sid": f"{prefix}{next(self._ids):032d}", "status": "queued"}
        into.append(sent)
        return web.json_response(
            {"sid": sent["sid"], "status": "queued", "to": form["To"], "from": form["From"]}, status=201
        )

    async def _list_messages(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        to, sender = request.query.get("To"), request.query.get("From")
        found = [m for m in reversed(self.messages) if m["To"] == to and (not sender or m["From"] == sender)]
        page = [
            {"sid": m["sid"], "to": m["To"], "from": m["From"], "body": m["Body"], "status": m["status"]} for m in found
        ]
        return web.json_response({"messages": page[: int(request.query.get("PageSize", 50))], "page": 0})


def _error(status: int, code: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)
