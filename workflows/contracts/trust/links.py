"""Acknowledgement links: a grant that lets whoever holds it acknowledge one incident as one person, for a while.

A page sent straight to a person (push, SMS, a call, an e-mail, Telegram) carries a token made by the activity that
sends it: the incident, the person, how it reached them, when it expires and a nonce, under an HMAC with a key the
worker and the HTTP service share (`ACK_LINK_KEY`). The HTTP service checks it and sends an ordinary signed decision
as that person (starter/http/contact.py), with the nonce as its update id, so a token is taken once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ValidationError

from workflows.contracts.vocabulary import Channel

# How long a link acknowledges: longer than any notification rule waits, shorter than a shift.
VALID_FOR = timedelta(hours=12)
_MAC_BYTES = 16


class InvalidGrant(ValueError):
    """A token that acknowledges nothing; the message says why, for the person who followed it."""


class AckGrant(BaseModel):
    incident_id: str
    person: str
    via: Channel
    expires: int  # Unix seconds
    nonce: str

    def via_label(self) -> str:
        return self.via.label


def grant(incident_id: str, person: str, via: Channel, now: datetime) -> AckGrant:
    return AckGrant(
        incident_id=incident_id,
        person=person,
        via=via,
        expires=int((now + VALID_FOR).timestamp()),
        nonce=secrets.token_hex(8),
    )


def sign(key: bytes, granted: AckGrant) -> str:
    body = _b64(granted.model_dump_json().encode())
    return f"{body}.{_b64(_mac(key, body))}"


def read(key: bytes, token: str, now: datetime) -> AckGrant:
    """The grant a token carries; InvalidGrant when it was not made with `key`, or has expired."""
    body, _, mac = token.partition(".")
    try:
        genuine = hmac.compare_digest(base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)), _mac(key, body))
        granted = AckGrant.model_validate_json(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, ValidationError):
        raise InvalidGrant("this acknowledgement link is damaged; use the newest message") from None
    if not genuine:
        raise InvalidGrant("this acknowledgement link was not made by this service")
    if now.timestamp() > granted.expires:
        raise InvalidGrant(f"this acknowledgement link for {granted.incident_id} has expired; use incidentctl ack")
    return granted


def link_key(path: Path) -> bytes:
    """The shared key at `path`, made on first use (32 random bytes, readable only by its owner)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            return path.read_bytes()
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
