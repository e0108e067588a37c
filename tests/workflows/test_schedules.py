"""Who is on call, in milliseconds and without a server: rotations, layers, restrictions, overrides,
daylight-saving changes both ways, gaps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from policy_file import load_policy
from workflows.contracts.policy import Policy
from workflows.contracts.roles import RoleHolders, expand, role_holders, schedules_named
from workflows.contracts.vocabulary import Role
from workflows.oncall.rotation import (
    Layer,
    Override,
    Restriction,
    Schedule,
    first_gap,
    next_handoffs,
    on_call,
    shifts,
    zone,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def daily(tz: str, members: list[str], handoff: time = time(9, 0)) -> Schedule:
    return Schedule(timezone=tz, layers=[Layer(members=members, rotation="daily", handoff=handoff)])


def weekly(tz: str, members: list[str], day: str = "monday", handoff: time = time(9, 0)) -> Schedule:
    return Schedule(timezone=tz, layers=[Layer(members=members, handoff_day=day, handoff=handoff)])


# Europe/London: clocks go forward on 29 March 2026 (01:00 GMT -> 02:00 BST), back on 25 October 2026.
# America/New_York: forward on 8 March 2026, back on 1 November 2026.


def test_daily_handoff_keeps_its_local_time_across_london_spring_forward() -> None:
    s = daily("Europe/London", ["ann", "ben"])
    assert on_call(s, [], utc("2026-03-28T08:59")) != on_call(s, [], utc("2026-03-28T09:00"))  # 09:00 GMT
    before, after = on_call(s, [], utc("2026-03-29T07:59")), on_call(s, [], utc("2026-03-29T08:00"))
    assert before != after, "after spring-forward, 09:00 BST is 08:00 UTC: the handoff moves with the clock"


def test_daily_handoff_keeps_its_local_time_across_london_fall_back() -> None:
    s = daily("Europe/London", ["ann", "ben"])
    before, after = on_call(s, [], utc("2026-10-25T08:59")), on_call(s, [], utc("2026-10-25T09:00"))
    assert before != after, "after fall-back, 09:00 GMT is 09:00 UTC"
    assert on_call(s, [], utc("2026-10-25T08:00")) == before, "08:00 UTC is 08:00 GMT: before the handoff"


def test_shift_across_spring_forward_is_an_hour_shorter_and_fall_back_an_hour_longer() -> None:
    s = daily("America/New_York", ["ann", "ben"])
    spring = shifts(s, [], utc("2026-03-06T15:00"), utc("2026-03-08T15:00"))
    assert [x.end - x.start for x in spring[1:-1]] == [timedelta(hours=23)]
    fall = shifts(s, [], utc("2026-10-30T15:00"), utc("2026-11-01T15:00"))
    assert [x.end - x.start for x in fall[1:-1]] == [timedelta(hours=25)]


def test_handoff_in_the_skipped_hour_happens_at_the_first_instant_after_it() -> None:
    s = daily("Europe/London", ["ann", "ben"], handoff=time(1, 30))  # 01:30 does not exist on 29 March
    change = next_handoffs(s, [], utc("2026-03-28T12:00"), count=1)[0]
    assert change.start == utc("2026-03-29T01:30")  # 01:30 GMT, i.e. 02:30 BST, right after the gap


def test_weekly_rotation_hands_off_on_its_weekday_in_new_york() -> None:
    s = weekly("America/New_York", ["ann", "ben", "cat"], day="wednesday", handoff=time(10, 0))
    handoffs = next_handoffs(s, [], utc("2026-03-02T00:00"), count=3)
    assert [h.start.astimezone(zone("America/New_York")).strftime("%a %H:%M") for h in handoffs] == ["Wed 10:00"] * 3
    # the week of 8 March is an hour short: the clocks went forward on its Sunday
    assert [h.end - h.start for h in handoffs[:2]] == [timedelta(days=7, hours=-1), timedelta(days=7)]
    assert len({h.who for h in handoffs}) == 3


def test_every_n_days_and_turn_order_from_the_start_date() -> None:
    layer = Layer(members=["ann", "ben"], rotation="daily", length=3, starts=date(2026, 1, 1), handoff=time(0, 0))
    s = Schedule(layers=[layer])
    assert [on_call(s, [], utc(f"2026-01-0{d}T12:00")) for d in range(1, 8)] == ["ann"] * 3 + ["ben"] * 3 + ["ann"]
    assert on_call(s, [], utc("2025-12-31T12:00")) == "", "nobody before the rotation starts"


def test_business_hours_layer_wins_over_the_round_the_clock_layer_only_inside_its_window() -> None:
    hours = Restriction(start=time(9), end=time(17), days=["monday", "tuesday", "wednesday", "thursday", "friday"])
    s = Schedule(
        timezone="Europe/London",
        layers=[Layer(members=["night"]), Layer(name="business", members=["day"], restrictions=[hours])],
    )
    assert on_call(s, [], utc("2026-06-03T10:00")) == "day"  # Wednesday 11:00 BST
    assert on_call(s, [], utc("2026-06-03T16:30")) == "night"  # 17:30 BST
    assert on_call(s, [], utc("2026-06-06T10:00")) == "night"  # Saturday


def test_weekday_span_restriction_and_a_window_past_midnight() -> None:
    weekend = Restriction(start_day="friday", start=time(18), end_day="monday", end=time(9))
    s = Schedule(layers=[Layer(members=["w"], restrictions=[weekend])])
    assert on_call(s, [], utc("2026-06-05T19:00")) == "w"  # Friday evening
    assert on_call(s, [], utc("2026-06-08T08:59")) == "w"  # Monday morning
    assert on_call(s, [], utc("2026-06-08T09:00")) == ""
    nights = Schedule(layers=[Layer(members=["n"], restrictions=[Restriction(start=time(22), end=time(6))])])
    assert on_call(nights, [], utc("2026-06-08T23:00")) == on_call(nights, [], utc("2026-06-09T05:00")) == "n"
    assert on_call(nights, [], utc("2026-06-09T12:00")) == ""


def test_latest_override_wins_over_the_rotation_and_ends_on_time() -> None:
    s = weekly("UTC", ["ann", "ben"])
    overrides = [
        Override(override_id="O1", who="cat", start=utc("2026-06-01T00:00"), end=utc("2026-06-10T00:00")),
        Override(override_id="O2", who="dan", start=utc("2026-06-03T00:00"), end=utc("2026-06-04T00:00")),
    ]
    assert on_call(s, overrides, utc("2026-06-02T00:00")) == "cat"
    assert on_call(s, overrides, utc("2026-06-03T12:00")) == "dan"
    assert on_call(s, overrides, utc("2026-06-10T00:00")) == on_call(s, [], utc("2026-06-10T00:00"))
    changes = next_handoffs(s, overrides, utc("2026-06-02T00:00"), count=2)
    assert [(c.start, c.who) for c in changes] == [(utc("2026-06-03T00:00"), "dan"), (utc("2026-06-04T00:00"), "cat")]


def test_first_gap_is_the_first_time_nobody_is_on_call() -> None:
    office = Restriction(start=time(9), end=time(17))
    assert first_gap(Schedule(layers=[Layer(members=["a"], restrictions=[office])]), utc("2026-06-01T10:00")) == utc(
        "2026-06-01T17:00"
    )
    assert first_gap(weekly("UTC", ["a"]), utc("2026-06-01T10:00")) is None
    ended = Schedule(layers=[Layer(members=["a"], ends=utc("2026-06-20T00:00"))])
    assert first_gap(ended, utc("2026-06-01T10:00")) == utc("2026-06-20T00:00")


def test_zones_come_from_the_tzdata_package_and_bad_input_is_refused() -> None:
    assert zone("Europe/London").key == "Europe/London"
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(KeyError):
            zone(bad)
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        Schedule(timezone="Mars/Olympus", layers=[Layer(members=["a"])])
    with pytest.raises(ValidationError, match="handoff_day"):
        Layer(members=["a"], rotation="daily", handoff_day="monday")
    with pytest.raises(ValidationError, match="handoff_day"):
        Layer(members=["a"], handoff_day="funday")


def test_policy_refuses_unknown_members_and_schedules(example_policy: Policy) -> None:
    raw = example_policy.model_dump()
    raw["schedules"] = {"primary": {"layers": [{"members": ["bob", "zed"]}]}}
    raw["escalation"]["tiers"][0]["notify"] = ["schedule:primary", "schedule:nope"]
    with pytest.raises(ValidationError) as refused:
        Policy.model_validate(raw)
    assert "schedules.primary: unknown person 'zed'" in str(refused.value)
    assert "escalation.tiers[0].notify: unknown schedule 'nope'" in str(refused.value)
    raw["roles"]["responder"] = ["role:cto"]
    with pytest.raises(ValidationError, match=r"roles\.responder: 'role:cto': held by people or schedules"):
        Policy.model_validate(raw)


def test_schedule_targets_expand_to_who_is_on_call(example_policy: Policy) -> None:
    raw = example_policy.model_dump()
    raw["schedules"] = {"primary": {"layers": [{"members": ["bob", "alice"]}]}}
    raw["roles"]["responder"] = ["schedule:primary", "carol"]
    policy = Policy.model_validate(raw)
    on = {"primary": "alice"}
    assert expand(policy, ["role:responder", "schedule:primary", "oleh"], RoleHolders(on_call=on)) == [
        "alice",
        "carol",
        "oleh",
    ]
    assert role_holders(policy, Role.RESPONDER, RoleHolders(on_call=on)) == ["alice", "carol"]
    assert role_holders(policy, Role.RESPONDER, RoleHolders()) == ["carol"], (
        "without a lookup a schedule reaches nobody"
    )
    assert schedules_named(policy, ["role:responder", "oleh"]) == ["primary"]


def test_a_layer_end_without_an_offset_is_read_in_the_schedules_zone(tmp_path) -> None:
    """TOML's `ends = 2026-12-31T00:00:00` has no offset: it is midnight in the schedule's zone (22:00 UTC in
    Kyiv's winter), and a page compares it with an aware time without failing."""
    path = tmp_path / "policy.toml"
    path.write_text(
        '[people.ann]\nname = "Ann"\n'
        '[schedules.primary]\ntimezone = "Europe/Kyiv"\n'
        '[[schedules.primary.layers]]\nmembers = ["ann"]\nrotation = "daily"\nends = 2026-12-31T00:00:00\n'
    )
    schedule = load_policy(path).schedules["primary"]
    assert on_call(schedule, [], utc("2026-12-30T21:59")) == "ann"
    assert on_call(schedule, [], utc("2026-12-30T22:00")) == ""
    assert first_gap(schedule, utc("2026-12-01T00:00")) == utc("2026-12-30T22:00")
