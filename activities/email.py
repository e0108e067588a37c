"""E-mail over SMTP (aiosmtplib): multipart text + HTML, one message per person when personal.

The HTML part is only ever made here, from templates/email/message.html.j2 with the request's text as
autoescaped data, so text from an alert cannot become markup (a request's `html` is not used).
SMTP cannot tell us whether an earlier attempt got through, so the Message-ID is derived from the
idempotency key (and the recipient, when personal): a retry sends the same Message-ID, which mail
systems and people recognise as the same message.
"""

from __future__ import annotations

import hashlib
import logging
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from settings import ROOT, Settings
from workflows.model import EmailRequest, EmailResult

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


class EmailActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.templates = SandboxedEnvironment(loader=FileSystemLoader(ROOT / "templates" / "email"),
                                              undefined=StrictUndefined, autoescape=True)

    @activity.defn
    async def send_email(self, request: EmailRequest) -> EmailResult:
        if self.settings.smtp_host is None:
            where = await self.outbox.deliver("email", "email", request.idempotency_key, request.model_dump())
            return EmailResult(delivered_to=where)
        if request.personal:
            messages = [self.compose(request, [recipient], personal=True) for recipient in request.to]
        else:
            messages = [self.compose(request, request.to)]
        await self._send(self.settings.smtp_host, messages)
        ids = [str(message["Message-ID"]) for message in messages]
        return EmailResult(message_ids=ids, delivered_to="smtp")

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
            subject=one_line(request.subject), paragraphs=paragraphs, sender=self.settings.email_from)

    async def _send(self, host: str, messages: list[EmailMessage]) -> None:
        """One connection for all of a request's messages; STARTTLS and login as configured."""
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        smtp = aiosmtplib.SMTP(hostname=host, port=settings.smtp_port, timeout=TIMEOUT_SECONDS,
                               start_tls=settings.smtp_starttls)
        try:
            await smtp.connect()
            if settings.smtp_username:
                await smtp.login(settings.smtp_username, password)
            for message in messages:
                refused, _ = await smtp.send_message(message)
                if refused:
                    log.warning("smtp: %s refused for %s", message["Message-ID"], sorted(refused))
        except aiosmtplib.SMTPResponseException as err:
            # 5xx is the server's final word on this message (bad address, auth); 4xx is "try later"
            raise ApplicationError(f"smtp answered {err.code}: {err.message}", type=f"smtp:{err.code}",
                                   non_retryable=err.code >= 500) from None
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = sorted({refusal.code for refusal in err.recipients})
            raise ApplicationError(f"smtp refused every recipient ({codes})", type="smtp:recipients_refused",
                                   non_retryable=all(code >= 500 for code in codes)) from None
        except (aiosmtplib.SMTPException, OSError) as err:
            raise ApplicationError(f"smtp unreachable: {type(err).__name__}: {err}",
                                   type="smtp:unreachable") from None
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except aiosmtplib.SMTPException:
                    smtp.close()
