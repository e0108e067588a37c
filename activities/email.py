"""E-mail over SMTP (aiosmtplib): multipart text + HTML, one SMTP transaction per recipient.

The HTML part is only ever made here, from templates/email/message.html.j2 with the request's text as
autoescaped data, so text from an alert cannot become markup (a request's `html` is not used).
SMTP has no idempotency key and cannot tell us whether an earlier attempt got through, so a retry must
know it from us:
- each recipient is a transaction of its own, and each recipient the server accepted (or refused for
  good) goes into the activity's heartbeat details at once; a retry skips them;
- the Message-ID is derived from the idempotency key (and the recipient, when personal), so the one
  copy that can still arrive twice (accepted in the moment before the worker died, before its heartbeat
  reached Temporal) carries the same Message-ID, which mail systems and people recognise.
Nothing slow follows the server's acceptance: QUIT is said after the activity has answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import ack_link, heartbeating, within_attempt
from activities.outbox import Outbox
from settings import ROOT, Settings
from workflows.contracts.activity_io import EmailRequest, EmailResult
from workflows.contracts.vocabulary import Channel

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 20


def message_id(key: str, sender: str, recipient: str = "") -> str:
    """The same key (and recipient) always gives the same Message-ID, on the sender's domain."""
    digest = hashlib.sha256(f"{key}\n{recipient}".encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "incident-orchestrator.invalid"
    return f"<{digest}@{domain}>"


def one_line(text: str) -> str:
    """Headers take one line: a newline in a subject from an alert must not start another header."""
    return " ".join(text.split())


@dataclass
class Progress:
    """What earlier attempts of this activity settled, carried in its heartbeat details."""

    accepted: list[str] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # recipient -> the server's final (5xx) code

    @classmethod
    def of_earlier_attempts(cls) -> Progress:
        details = activity.info().heartbeat_details
        last: Any = details[0] if details else None
        if not isinstance(last, dict):
            return cls()
        return cls(
            accepted=[str(r) for r in last.get("accepted", [])],
            refused={str(r): int(code) for r, code in (last.get("refused") or {}).items()},
        )

    def settled(self, recipient: str) -> bool:
        return recipient in self.accepted or recipient in self.refused

    def details(self) -> dict[str, Any]:
        """A copy: the SDK encodes heartbeat details later, and these lists grow meanwhile."""
        return {"accepted": list(self.accepted), "refused": dict(self.refused)}


class EmailActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.templates = SandboxedEnvironment(
            loader=FileSystemLoader(ROOT / "templates" / "email"), undefined=StrictUndefined, autoescape=True
        )
        self._closing: set[asyncio.Task[None]] = set()  # QUITs said after their activities answered

    @activity.defn
    async def send_email(self, request: EmailRequest) -> EmailResult:
        if request.acknowledge is not None:
            page = request.acknowledge
            link = ack_link(self.settings, page, Channel.EMAIL)
            request = request.model_copy(update={"text": f"{request.text}\n\nAcknowledge as {page.person}: {link}"})
        if self.settings.smtp_host is None:
            where = await self.outbox.deliver("email", "email", request.idempotency_key, request.model_dump())
            return EmailResult(delivered_to=where)
        letters = self.letters(request)
        progress = Progress.of_earlier_attempts()
        pending = [(recipient, message) for recipient, message in letters if not progress.settled(recipient)]
        if pending:
            async with heartbeating(progress.details), within_attempt("smtp"):
                await self._send(self.settings.smtp_host, pending, progress)
        if progress.refused and not progress.accepted:
            codes = sorted(set(progress.refused.values()))
            raise ApplicationError(
                f"smtp refused every recipient ({codes})", type="smtp:recipients_refused", non_retryable=True
            )
        ids = list(dict.fromkeys(str(message["Message-ID"]) for _, message in letters))
        return EmailResult(message_ids=ids, delivered_to="smtp")

    def letters(self, request: EmailRequest) -> list[tuple[str, EmailMessage]]:
        """(recipient, message) for each address: a personal copy each, or the one message all of them see."""
        recipients = list(dict.fromkeys(request.to))
        if request.personal:
            return [(recipient, self.compose(request, [recipient], personal=True)) for recipient in recipients]
        shared = self.compose(request, recipients)
        return [(recipient, shared) for recipient in recipients]

    def compose(self, request: EmailRequest, to: list[str], *, personal: bool = False) -> EmailMessage:
        sender = self.settings.email_from
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(to)
        message["Subject"] = one_line(request.subject)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = message_id(request.idempotency_key, sender, to[0] if personal else "")
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to the incident
        message.set_content(request.text)
        message.add_alternative(self._html(request), subtype="html")
        return message

    def _html(self, request: EmailRequest) -> str:
        paragraphs = [block.splitlines() for block in request.text.split("\n\n") if block.strip()]
        return self.templates.get_template("message.html.j2").render(
            subject=one_line(request.subject), paragraphs=paragraphs, sender=self.settings.email_from
        )

    async def _send(self, host: str, letters: list[tuple[str, EmailMessage]], progress: Progress) -> None:
        """One connection, one transaction per recipient, each settled recipient heartbeated at once.

        A recipient the server asks to try later (4xx) fails the attempt after the others went out, so
        Temporal retries it alone; one refused for good (5xx) is logged and not tried again.
        """
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        smtp = aiosmtplib.SMTP(
            hostname=host, port=settings.smtp_port, timeout=TIMEOUT_SECONDS, start_tls=settings.smtp_starttls
        )
        later: dict[str, int] = {}
        try:
            await smtp.connect()
            if settings.smtp_username:
                await smtp.login(settings.smtp_username, password)
            for recipient, message in letters:
                try:
                    await smtp.send_message(message, recipients=[recipient])
                except aiosmtplib.SMTPRecipientsRefused as err:
                    code = err.recipients[0].code
                    if code < 500:
                        later[recipient] = code
                        continue
                    log.warning("smtp: %s refused %s (%s)", message["Message-ID"], recipient, code)
                    progress.refused[recipient] = code
                else:
                    progress.accepted.append(recipient)
                activity.heartbeat(progress.details())
        except aiosmtplib.SMTPResponseException as err:
            # 5xx is the server's final word on this message (sender, content, auth); 4xx is "try later"
            raise ApplicationError(
                f"smtp answered {err.code}: {err.message}", type=f"smtp:{err.code}", non_retryable=err.code >= 500
            ) from None
        except (aiosmtplib.SMTPException, OSError) as err:
            raise ApplicationError(f"smtp unreachable: {type(err).__name__}: {err}", type="smtp:unreachable") from None
        finally:
            self._say_goodbye(smtp)
        if later:
            codes = sorted(set(later.values()))
            raise ApplicationError(
                f"smtp asked to try {', '.join(later)} again later ({codes})", type="smtp:recipients_refused"
            )

    def _say_goodbye(self, smtp: aiosmtplib.SMTP) -> None:
        """QUIT without making the activity wait for it: the messages are the server's already."""

        async def quit() -> None:
            try:
                if smtp.is_connected:
                    await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()

        closing = asyncio.create_task(quit())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
