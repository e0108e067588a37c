"""Drills with an on-call schedule in the policy: the person paged is whoever the rotation has on call at
that moment, in the schedule's time zone, across daylight-saving changes and handoffs.

The dates are the next real clock changes after today (the test server's clock only moves forward), and
the expected person is counted from the rotation's start by calendar days, not by the code under test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from policy_file import load_policy
from settings import ROOT
from starter.drill.report import DrillReport
from starter.drill.runner import run_drill
from starter.drill.scenario import load_scenario
from workflows.contracts.policy import Policy
from workflows.oncall.rotation import zone

START = date(2024, 1, 1)  # the rotations' first handoff (a Monday)
MEMBERS = ["bob", "alice", "oleh"]  # the example policy's people with a pager id


def on_call_policy(rotation: dict, tiers: list[dict] | None = None) -> Policy:
    raw = load_policy(ROOT / "examples" / "policy.toml").model_dump(mode="json")
    raw["schedules"] = {"primary": rotation}
    raw["escalation"] = {
        "tiers": tiers or [{"notify": ["schedule:primary"], "channels": ["page"], "wait_minutes": 15}],
        "repeat": 0,
    }
    raw["comms"]["auto_trigger_severities"] = []
    return Policy.model_validate(raw)


def next_clock_change(tz: str, after: datetime, forward: bool) -> datetime:
    """The UTC instant of the next change of the zone's offset in the given direction."""
    moment = after.replace(minute=0, second=0, microsecond=0)
    offset = moment.astimezone(zone(tz)).utcoffset()
    while True:
        moment += timedelta(hours=1)
        now = moment.astimezone(zone(tz)).utcoffset()
        assert now is not None and offset is not None
        if now != offset and (now > offset) == forward:
            return moment
        offset = now


async def paged_at(tmp_path: Path, policy: Policy, start: datetime, until: int = 1) -> list[tuple[float, list[str]]]:
    """(minute, people) of every page a SEV1 alert at `start` leads to."""
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(
        f"start: {start.isoformat()}\nuntil: {until}\n"
        "steps:\n- at: 0\n  alert: {title: Checkout is down, severity: SEV1, service: checkout}\n"
    )
    scenario, actions = load_scenario(scenario_file, policy)
    report: DrillReport = await run_drill(policy, scenario, actions)
    return [(e.minute, e.to) for e in report.sent("page_open")]


def daily_member(day: date, members: list[str]) -> str:
    """Who holds the daily rotation from that day's handoff: one member per calendar day from START."""
    return members[(day - START).days % len(members)]


async def test_drill_pages_the_local_morning_handoff_after_spring_forward(tmp_path: Path) -> None:
    policy = on_call_policy({"timezone": "Europe/London", "layers": [{"members": MEMBERS, "rotation": "daily"}]})
    change = next_clock_change("Europe/London", datetime.now(UTC), forward=True)
    # 08:30 UTC the day of the change is 09:30 BST: the 09:00 handoff has happened (in GMT it would not have)
    moment = datetime.combine(change.date(), time(8, 30), UTC)
    assert await paged_at(tmp_path, policy, moment) == [(0.0, [daily_member(change.date(), MEMBERS)])]


async def test_drill_pages_before_the_local_morning_handoff_after_fall_back(tmp_path: Path) -> None:
    policy = on_call_policy({"timezone": "Europe/London", "layers": [{"members": MEMBERS, "rotation": "daily"}]})
    change = next_clock_change("Europe/London", datetime.now(UTC), forward=False)
    # 08:30 UTC the day of the change is 08:30 GMT: yesterday's shift still holds (in BST it would not)
    moment = datetime.combine(change.date(), time(8, 30), UTC)
    yesterday = change.date() - timedelta(days=1)
    assert await paged_at(tmp_path, policy, moment) == [(0.0, [daily_member(yesterday, MEMBERS)])]


async def test_drill_ladder_running_across_a_weekly_handoff_pages_the_new_week(tmp_path: Path) -> None:
    tz = zone("America/New_York")
    policy = on_call_policy(
        {"timezone": "America/New_York", "layers": [{"members": MEMBERS, "handoff_day": "monday"}]},
        tiers=[
            {"notify": ["schedule:primary"], "channels": ["page"], "wait_minutes": 15},
            {"notify": ["schedule:primary"], "channels": ["page"], "wait_minutes": 10},
        ],
    )
    today = datetime.now(tz).date()
    monday = today + timedelta(days=7 - today.weekday())
    opened = datetime.combine(monday, time(8, 50), tz)  # ten minutes before the Monday 09:00 handoff
    week = (monday - START).days // 7
    old, new = MEMBERS[(week - 1) % 3], MEMBERS[week % 3]
    assert await paged_at(tmp_path, policy, opened, until=20) == [(0.0, [old]), (15.0, [new])]


async def drill_text(tmp_path: Path, policy: Policy, text: str) -> DrillReport:
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(text)
    scenario, actions = load_scenario(scenario_file, policy)
    return await run_drill(policy, scenario, actions)


SEV1_ALERT = "- at: 0\n  alert: {title: Checkout is down, severity: SEV1, service: checkout}\n"


async def test_drill_override_added_while_the_ladder_runs_pages_the_override(tmp_path: Path) -> None:
    policy = on_call_policy(
        {"layers": [{"members": ["bob"]}]},
        tiers=[
            {"notify": ["schedule:primary"], "channels": ["page"], "wait_minutes": 5},
            {"notify": ["schedule:primary"], "channels": ["page"], "wait_minutes": 10},
        ],
    )
    report = await drill_text(
        tmp_path,
        policy,
        "until: 8\noverrides:\n- {at: 2, schedule: primary, who: oleh, until: 120, as: alice}\nsteps:\n" + SEV1_ALERT,
    )
    assert [(e.minute, e.to) for e in report.sent("page_open")] == [(0.0, ["bob"]), (5.0, ["oleh"])]
    assert [s.step for s in report.steps] == [
        "alert firing: Checkout is down",
        "alice override primary: oleh until minute 120",
    ]


async def test_drill_window_holds_the_alert_and_pages_when_it_ends_still_firing(tmp_path: Path) -> None:
    policy = on_call_policy({"layers": [{"members": ["bob"]}]})
    report = await drill_text(
        tmp_path,
        policy,
        "until: 40\nsilences:\n- {at: 0, service: checkout, until: 30, reason: db upgrade, as: alice}\nsteps:\n"
        + SEV1_ALERT,
    )
    pages = report.sent("page_open")
    assert [round(e.minute) for e in pages] == [30], "nobody paged inside the window; paged when it ends"
    assert any(e.kind == "silenced" and "db upgrade" in e.text for e in report.events)


async def test_drill_refuses_an_override_of_an_unknown_schedule(tmp_path: Path) -> None:
    from starter.drill.scenario import DrillError

    policy = on_call_policy({"layers": [{"members": ["bob"]}]})
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text("overrides:\n- {at: 2, schedule: nope, who: oleh, until: 9}\nsteps:\n" + SEV1_ALERT)
    with pytest.raises(DrillError, match=r"overrides\[0\]\.schedule: no schedule 'nope'"):
        load_scenario(scenario_file, policy)
