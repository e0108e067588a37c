"""Personal tokens: what proves a person to the HTTP API (and so to incidentctl) where no identity provider is.

An administrator issues one per person (`incidentctl token issue PERSON`, on the service's machine: whoever can
write the token file administers it). The file keeps each token's SHA-256, never the token; a token has an expiry
and can be revoked. The service reads the file at each request, so a revocation counts at once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

PREFIX = "ioc"


class TokenRecord(BaseModel):
    token_id: str
    person: str
    sha256: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class NotAuthenticated(Exception):
    """No person could be proven; the message says why (never the token)."""


_RECORDS = TypeAdapter(list[TokenRecord])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[TokenRecord]:
        if not self.path.exists():
            return []
        return _RECORDS.validate_json(self.path.read_bytes())

    def _write(self, records: list[TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(_RECORDS.dump_json(records, indent=1))
        temporary.replace(self.path)

    def issue(self, person: str, valid_for: timedelta, now: datetime) -> tuple[TokenRecord, str]:
        """A new token for the person; the token itself is shown once, here, and kept nowhere."""
        records = self.records()
        token_id = f"T{len(records) + 1}"
        token = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(
            token_id=token_id, person=person, sha256=_digest(token), issued_at=now, expires_at=now + valid_for
        )
        self._write([*records, record])
        return record, token

    def revoke(self, token_id: str, now: datetime) -> TokenRecord:
        records = self.records()
        for record in records:
            if record.token_id == token_id:
                if record.revoked_at is None:
                    record.revoked_at = now
                    self._write(records)
                return record
        known = ", ".join(r.token_id for r in records) or "none"
        raise KeyError(f"no token {token_id}; issued: {known}")

    def person(self, token: str, now: datetime) -> str:
        """Whose token this is; NotAuthenticated when it is unknown, expired or revoked."""
        parts = token.split("_", 2)
        record = next((r for r in self.records() if len(parts) == 3 and r.token_id == parts[1]), None)
        if record is None or not hmac.compare_digest(record.sha256, _digest(token)):
            raise NotAuthenticated("unknown token")
        if record.revoked_at is not None:
            raise NotAuthenticated(f"token {record.token_id} of {record.person} was revoked")
        if record.expires_at <= now:
            raise NotAuthenticated(
                f"token {record.token_id} of {record.person} expired at {record.expires_at:%Y-%m-%d %H:%M} UTC"
            )
        return record.person


def token_summary(record: TokenRecord) -> dict[str, str]:
    state = "revoked" if record.revoked_at else "valid"
    return {
        "token": record.token_id,
        "person": record.person,
        "expires": f"{record.expires_at:%Y-%m-%d %H:%M} UTC",
        "state": state,
    }
