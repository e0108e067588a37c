"""The plain rule of direct paging: which steps of a person's rules, due when (delivery/direct.py, `plan`)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from workflows.contracts.people import NotificationRules, NotificationStep, QuietHours
from workflows.contracts.vocabulary import Channel, Severity
from workflows.delivery.direct import plan

RULES = NotificationRules(
    high=[NotificationStep(channel=Channel.VOICE, after_minutes=5), NotificationStep(channel=Channel.PUSH)],
    low=[NotificationStep(channel=Channel.PUSH), NotificationStep(channel=Channel.EMAIL, after_minutes=30)],
    quiet_hours=QuietHours(start=time(22, 0), end=time(7, 0), timezone="Europe/Berlin"),
)
NIGHT = datetime(2026, 12, 8, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
DAY = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def due(severity: Severity, now: datetime) -> list[tuple[str, timedelta]]:
    return [(step.channel.value, when) for step, when in plan(RULES, severity, now)]


def test_high_urgency_follows_the_high_rules_in_order_and_never_waits_for_quiet_hours() -> None:
    for severity in (Severity.SEV1, Severity.SEV2):
        assert due(severity, NIGHT) == [("push", timedelta(0)), ("voice", timedelta(minutes=5))]


def test_low_urgency_waits_out_the_quiet_hours_in_their_time_zone() -> None:
    until_seven = timedelta(hours=7, minutes=30)  # 23:30 to 07:00 Berlin
    assert due(Severity.SEV3, NIGHT) == [("push", until_seven), ("email", until_seven + timedelta(minutes=30))]
    assert due(Severity.SEV4, DAY) == [("push", timedelta(0)), ("email", timedelta(minutes=30))]


def test_quiet_hours_within_one_day() -> None:
    lunch = RULES.model_copy(update={"quiet_hours": QuietHours(start=time(12, 0), end=time(14, 0), timezone="UTC")})
    assert next(when for _, when in plan(lunch, Severity.SEV3, DAY + timedelta(minutes=30))) == timedelta(minutes=90)
