"""E-mail through a real SMTP server (aiosmtpd): multipart, deterministic Message-ID, personal copies, one
transaction per recipient and a retry that skips the recipients an earlier attempt heartbeated."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities
from activities.outbox import Outbox
from settings import Settings
from tests.fakes.smtp import FakeSmtp
from tests.integrations.helpers import attempt
from workflows.contracts.activity_io import EmailRequest


def email(**changes: object) -> EmailRequest:
    fields: dict[str, object] = {
        "to": ["cto@example.com", "pm@example.com"],
        "subject": "SEV1: checkout is failing",
        "text": "Checkout returns <script>alert(1)</script> & 500s.\n\nNext update in 30 minutes.",
        "idempotency_key": "INC-7F3K:investigation:internal",
    }
    return EmailRequest.model_validate(fields | changes)


def retry_after(details: dict[str, Any]) -> ActivityEnvironment:
    """Attempt 2, with what attempt 1 heartbeated before its worker died."""
    env = attempt(2)
    env.info = dataclasses.replace(env.info, heartbeat_details=[details])
    return env


async def test_multipart_text_and_escaped_html(settings: Settings, smtp: FakeSmtp):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))

    result = await attempt().run(activities.send_email, email())

    delivery = smtp.deliveries[0]
    message = delivery.message
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert "<script>alert(1)</script> & 500s." in plain.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 500s." in html.get_content()
    assert "<script>" not in html.get_content()
    assert result.message_ids == [message["Message-ID"]]
    assert message["Auto-Submitted"] == "auto-generated"


async def test_one_message_to_several_is_one_transaction_per_recipient(settings: Settings, smtp: FakeSmtp):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))

    result = await attempt().run(activities.send_email, email())

    # everyone sees the same message (one Message-ID, every address in To), each in an envelope of their own
    assert [d.recipients for d in smtp.deliveries] == [["cto@example.com"], ["pm@example.com"]]
    assert {(d.message["Message-ID"], d.message["To"]) for d in smtp.deliveries} == {
        (result.message_ids[0], "cto@example.com, pm@example.com")
    }


async def test_each_accepted_recipient_is_heartbeated_at_once(settings: Settings, smtp: FakeSmtp):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))
    env = attempt()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details[0] if details else None)

    await env.run(activities.send_email, email(personal=True))

    accepted = [beat["accepted"] for beat in beats if beat and beat["accepted"]]
    assert accepted[:2] == [["cto@example.com"], ["cto@example.com", "pm@example.com"]]


async def test_a_retry_skips_recipients_an_earlier_attempt_heartbeated(settings: Settings, smtp: FakeSmtp):
    """The issue's kill: attempt 1 got cto's copy out and heartbeated it, then its worker died."""
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))

    result = await retry_after({"accepted": ["cto@example.com"], "refused": {}}).run(
        activities.send_email, email(personal=True)
    )

    assert [d.recipients for d in smtp.deliveries] == [["pm@example.com"]]
    assert len(result.message_ids) == 2  # what the request sent, over all its attempts


async def test_a_retry_that_was_not_heartbeated_sends_the_same_message_id(settings: Settings, smtp: FakeSmtp):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))

    first = await attempt().run(activities.send_email, email(to=["cto@example.com"]))
    again = await attempt(2).run(activities.send_email, email(to=["cto@example.com"]))

    assert first.message_ids == again.message_ids
    assert first.message_ids[0].endswith("@example.com>")
    assert [d.message["Message-ID"] for d in smtp.deliveries] == first.message_ids * 2


async def test_a_recipient_to_try_later_is_retried_alone(settings: Settings, smtp: FakeSmtp):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))
    env = attempt()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    request = email(to=["cto@example.com", "someone@busy.invalid", "pm@example.com"])

    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.send_email, request)
    with pytest.raises(ApplicationError) as again:  # the fake's busy mailbox stays busy
        await retry_after(beats[-1]).run(activities.send_email, request)

    assert (raised.value.type, raised.value.non_retryable) == ("smtp:recipients_refused", False)
    assert "someone@busy.invalid" in raised.value.message
    assert beats[-1]["accepted"] == ["cto@example.com", "pm@example.com"]
    # the others went out in the first attempt; the retry tried the busy mailbox alone
    assert [d.recipients for d in smtp.deliveries] == [["cto@example.com"], ["pm@example.com"]]
    assert "someone@busy.invalid" in again.value.message


async def test_a_recipient_refused_for_good_does_not_stop_the_others(settings: Settings, smtp: FakeSmtp):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))

    result = await attempt().run(activities.send_email, email(to=["nobody@refused.invalid", "pm@example.com"]))

    assert [d.recipients for d in smtp.deliveries] == [["pm@example.com"]]
    assert result.delivered_to == "smtp"


async def test_personal_sends_one_message_per_recipient(settings: Settings, smtp: FakeSmtp):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))

    result = await attempt().run(activities.send_email, email(personal=True))

    assert [(d.recipients, d.message["To"]) for d in smtp.deliveries] == [
        (["cto@example.com"], "cto@example.com"),
        (["pm@example.com"], "pm@example.com"),
    ]
    assert len(set(result.message_ids)) == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # a local test server
async def test_login_when_configured(settings: Settings):
    async with FakeSmtp(require_login=True) as smtp:
        activities = EmailActivities(smtp.configure(settings, login=True), Outbox(settings.outbox_path))
        await attempt().run(activities.send_email, email())

    assert len(smtp.deliveries) == 2  # one per recipient


async def test_header_injection_through_the_subject_is_flattened(settings: Settings, smtp: FakeSmtp):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))

    await attempt().run(activities.send_email, email(subject="Outage\r\nBcc: everyone@example.com"))

    message = smtp.deliveries[0].message
    assert message["Subject"] == "Outage Bcc: everyone@example.com"
    assert message["Bcc"] is None


@pytest.mark.parametrize(
    ("recipient", "expected_type", "final"),
    [
        ("nobody@refused.invalid", "smtp:recipients_refused", True),
        ("someone@busy.invalid", "smtp:recipients_refused", False),
    ],
)
async def test_refused_recipients_are_classified(
    settings: Settings, smtp: FakeSmtp, recipient: str, expected_type: str, final: bool
):
    activities = EmailActivities(smtp.configure(settings), Outbox(settings.outbox_path))

    with pytest.raises(ApplicationError) as raised:
        await attempt().run(activities.send_email, email(to=[recipient]))

    assert (raised.value.type, raised.value.non_retryable) == (expected_type, final)


async def test_unconfigured_smtp_writes_the_outbox(settings: Settings):
    activities = EmailActivities(settings, Outbox(settings.outbox_path))

    result = await attempt().run(activities.send_email, email())

    assert result.delivered_to == "outbox"
