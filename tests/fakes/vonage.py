"""A fake Vonage: the SMS API (POST /sms/json, key and secret in the form, its numbered `status` answers at HTTP 200),
the Voice API (POST /v1/calls under an application's RS256 JWT, RFC 7807 errors), the Reports API's SMS records,
and the requests Vonage sends back, signed as it signs them: `sig` over an SMS webhook's parameters, a JWT (HS256,
with the body's payload_hash) on a Voice webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, basic_auth, params

API_KEY, API_SECRET = "abcd1234", "vonage-api-secret"
SIGNATURE_SECRET = "vonage-signature-secret-0123456789abcdef"
APPLICATION_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
FROM = "+447700900000"


@dataclass
class Callback:
    """A request as Vonage would send it to our service: where, the body, and its headers."""

    url: str
    body: bytes
    headers: dict[str, str]


class FakeVonage(FakePeer):
    def __init__(self, unreachable: set[str] | None = None) -> None:
        super().__init__()
        self.unreachable = unreachable or set()  # numbers (as Vonage writes them, no "+") it refuses
        self.messages: list[dict[str, Any]] = []
        self.calls_placed: list[dict[str, Any]] = []
        self.throttled = 0  # the next SMS requests answered "status 1, Throttled"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.app.router.add_post("/sms/json", self._sms)
        self.app.router.add_post("/v1/calls", self._call)
        self.app.router.add_get("/v2/reports/records", self._records)

    def configure(self, settings: Settings) -> Settings:
        key_file = settings.outbox_path.parent / "vonage-private.key"
        key_file.write_bytes(
            self._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return settings.model_copy(
            update={
                "vonage_api_key": API_KEY,
                "vonage_api_secret": SecretStr(API_SECRET),
                "vonage_application_id": APPLICATION_ID,
                "vonage_private_key": Path(key_file),
                "vonage_signature_secret": SecretStr(SIGNATURE_SECRET),
                "vonage_from": FROM,
                "vonage_rest_url": self.url,
                "vonage_api_url": self.url,
            }
        )

    # --- what Vonage sends back ---------------------------------------------------------------------------

    def reply(self, public_url: str, from_number: str, text: str, secret: str = SIGNATURE_SECRET) -> Callback:
        """An inbound SMS to our number, as the SMS API posts it to the number's webhook."""
        form = {
            "msisdn": from_number.lstrip("+"),
            "to": FROM.lstrip("+"),
            "messageId": uuid.uuid4().hex,
            "text": text,
            "type": "text",
            "keyword": text.split()[0].upper() if text.split() else "",
            "message-timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        return _sms_webhook(f"{public_url}/vonage/sms", form, secret)

    def receipt(self, sent: dict[str, Any], status: str, err_code: str = "0") -> Callback:
        """The delivery receipt for an SMS it accepted, to the message's `callback`."""
        form = {
            "msisdn": sent["to"],
            "to": FROM.lstrip("+"),
            "network-code": "23410",
            "messageId": sent["message-id"],
            "price": "0.03330000",
            "status": status,
            "scts": datetime.now(UTC).strftime("%y%m%d%H%M"),
            "err-code": err_code,
            "api-key": API_KEY,
            "message-timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        return _sms_webhook(sent["callback"], form, SIGNATURE_SECRET)

    def call_event(self, call: dict[str, Any], status: str) -> Callback:
        """A call's event, to its event_url."""
        body = {
            "status": status,
            "uuid": call["uuid"],
            "conversation_uuid": call["conversation_uuid"],
            "direction": "outbound",
            "from": FROM.lstrip("+"),
            "to": call["to"][0]["number"],
            "timestamp": datetime.now(UTC).isoformat(),
        }
        return _voice_webhook(call["event_url"][0], body, SIGNATURE_SECRET)

    def keypress(self, call: dict[str, Any], digits: str, secret: str = SIGNATURE_SECRET) -> Callback:
        """The input action's result, to its eventUrl, as the person called presses a key."""
        [gather] = [action for action in call["ncco"] if action["action"] == "input"]
        body = {
            "speech": {"results": []},
            "dtmf": {"digits": digits, "timed_out": not digits},
            "from": FROM.lstrip("+"),
            "to": call["to"][0]["number"],
            "uuid": call["uuid"],
            "conversation_uuid": call["conversation_uuid"],
            "timestamp": datetime.now(UTC).isoformat(),
        }
        return _voice_webhook(gather["eventUrl"][0], body, secret)

    # --- the APIs -----------------------------------------------------------------------------------------

    async def _sms(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in params(request).items()}
        if (form.get("api_key"), form.get("api_secret")) != (API_KEY, API_SECRET):
            return _sms_status("4", "Bad Credentials")
        if not form.get("to") or not form.get("text") or not form.get("from"):
            return _sms_status("2", "Missing to param")
        if self.throttled:
            self.throttled -= 1
            return _sms_status("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")
        if form["to"].startswith("+") or form["to"] in self.unreachable:
            return _sms_status("3", "Invalid to number")
        sent = form | {
            "message-id": uuid.uuid4().hex.upper()[:16],
            "date_received": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.messages.append(sent)
        return web.json_response(
            {
                "message-count": "1",
                "messages": [{"to": form["to"], "message-id": sent["message-id"], "status": "0", "network": "23410"}],
            }
        )

    async def _call(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self._key.public_key(), algorithms=["RS256"], options={"require": ["exp"]})
        except jwt.InvalidTokenError:
            claims = {}
        if claims.get("application_id") != APPLICATION_ID:
            return _problem(401, "Unauthorized", "You did not provide correct credentials.")
        body = params(request)
        to = [t.get("number", "") for t in body.get("to", []) if t.get("type") == "phone"]
        if not to or not body.get("ncco") or not body.get("from"):
            return _problem(400, "Bad Request", "The request failed due to validation errors")
        if to[0].startswith("+") or to[0] in self.unreachable:
            return _problem(400, "Bad Request", f"Invalid number {to[0]}")
        call = body | {"uuid": str(uuid.uuid4()), "conversation_uuid": f"CON-{uuid.uuid4()}"}
        self.calls_placed.append(call)
        return web.json_response(
            {
                "uuid": call["uuid"],
                "status": "started",
                "direction": "outbound",
                "conversation_uuid": call["conversation_uuid"],
            },
            status=201,
        )

    async def _records(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != basic_auth(API_KEY, API_SECRET):
            return _problem(401, "Unauthorized", "You did not provide correct credentials.")
        query = request.query
        if (query.get("account_id"), query.get("product"), query.get("direction")) != (API_KEY, "SMS", "outbound"):
            return _problem(400, "Bad Request", "account_id, product and direction are required")
        start, end = datetime.fromisoformat(query["date_start"]), datetime.fromisoformat(query["date_end"])
        within = [m for m in self.messages if start <= datetime.fromisoformat(m["date_received"]) <= end]
        records = [
            {
                "account_id": API_KEY,
                "message_id": m["message-id"],
                "direction": "outbound",
                "from": m["from"],
                "to": m["to"],
                "date_received": m["date_received"],
                "status": "delivered",
            }
            | ({"message_body": m["text"]} if query.get("include_message") == "true" else {})
            for m in within
        ]
        return web.json_response({"request_status": "SUCCESS", "items_count": len(records), "records": records})


def _sms_webhook(url: str, form: dict[str, str], secret: str) -> Callback:
    signed = form | {"timestamp": str(int(time.time())), "nonce": uuid.uuid4().hex}
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for name in sorted(signed):
        mac.update(f"&{name}={signed[name].replace('&', '_').replace('=', '_')}".encode())
    body = urlencode(signed | {"sig": mac.hexdigest().upper()}).encode()
    return Callback(url, body, {"Content-Type": "application/x-www-form-urlencoded"})


def _voice_webhook(url: str, payload: dict[str, Any], secret: str) -> Callback:
    body = json.dumps(payload).encode()
    now = int(time.time())
    claims = {
        "iat": now,
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": API_KEY,
        "application_id": APPLICATION_ID,
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    return Callback(url, body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})


def _sms_status(status: str, error: str) -> web.Response:
    return web.json_response({"message-count": "1", "messages": [{"status": status, "error-text": error}]})


def _problem(status: int, title: str, detail: str) -> web.Response:
    body = {"type": f"https://developer.vonage.com/api-errors#{title.lower().replace(' ', '-')}", "title": title}
    return web.json_response(body | {"detail": detail}, status=status)
