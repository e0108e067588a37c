"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from settings import Settings

USERNAME = "mailer"
PASSWORD = "smtp-test-password"


@dataclass
class Delivery:
    sender: str
    recipients: list[str]
    message: EmailMessage


class Mailbox:
    """The handler: refuses addresses at `refused.invalid` (550) and `busy.invalid` (451), keeps the rest."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address.endswith("@refused.invalid"):
            return "550 5.1.1 No such user"
        if address.endswith("@busy.invalid"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=good)


class FakeSmtp:
    """`async with FakeSmtp(require_login=True) as smtp:`; aiosmtpd runs it in its own thread."""

    def __init__(self, require_login: bool = False) -> None:
        self.mailbox = Mailbox()
        self.port = _free_port()
        extra: dict[str, Any] = (
            {"authenticator": _authenticate, "auth_required": True, "auth_require_tls": False} if require_login else {}
        )
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **extra)

    async def __aenter__(self) -> Self:
        self.controller.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def deliveries(self) -> list[Delivery]:
        return self.mailbox.deliveries

    def configure(self, settings: Settings, login: bool = False) -> Settings:
        """Plain SMTP on localhost (no certificate to trust), with LOGIN when asked."""
        update: dict[str, Any] = {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_starttls": False,
            "email_from": "incidents@example.com",
        }
        if login:
            update |= {"smtp_username": USERNAME, "smtp_password": SecretStr(PASSWORD)}
        return settings.model_copy(update=update)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
