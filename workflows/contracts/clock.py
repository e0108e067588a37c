"""Moments as the people of the policy read them: in the team's time zone, with UTC alongside.

The team's zone is the policy's business-hours zone. Every text a person reads (deliveries, the
timeline, `waiting_on`, the CLI) writes a moment through `local`, so "due at 08:20 CET (07:20 UTC)"
means the same on every worker and on replay: the zone comes from the policy, never the machine.
"""

from __future__ import annotations

from datetime import UTC, datetime

from workflows.contracts.policy import Policy
from workflows.oncall.rotation import zone as tz


def local(policy: Policy, moment: datetime, with_date: bool = False) -> str:
    """ "08:20 CET (07:20 UTC)", or "2026-12-02 08:20 CET (07:20 UTC)"; just "07:20 UTC" for a UTC team."""
    return in_zone(policy.business_hours.timezone, moment, with_date)


def in_zone(timezone: str, moment: datetime, with_date: bool = False) -> str:
    """`local`, for a zone named directly (an activity that is given the policy's zone, not the policy)."""
    shape = "%Y-%m-%d %H:%M" if with_date else "%H:%M"
    zone = tz(timezone)  # tzdata's, the same on every worker and replay
    there = moment.astimezone(zone)
    if zone.key in ("UTC", "Etc/UTC"):
        return f"{there:{shape}} UTC"
    return f"{there:{shape}} {there.tzname()} ({moment.astimezone(UTC):%H:%M} UTC)"
