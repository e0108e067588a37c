"""On-call schedules as data, and who is on call: plain functions over a schedule, its overrides and a time.

A schedule has layers; each layer rotates its members (every N hours, days or weeks from a first
handoff, in the schedule's time zone) and may be restricted to windows of the week (business hours
only, say). Where several layers have somebody, the last layer wins, and an override wins over all.
Daily and weekly handoffs keep their wall-clock time across daylight-saving changes; hourly shifts
are real hours.

Time zones come from the `tzdata` package, read through `importlib.resources`, never from the
machine's database: every worker, and every replay, then gets the same answer. (`zoneinfo.ZoneInfo`
would search the machine's TZPATH first, and `reset_tzpath` would change it for the whole process.)
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` from the tzdata package; KeyError for a name it does not know."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts):
        raise KeyError(name)
    resource = importlib.resources.files("tzdata.zoneinfo").joinpath(*parts)
    if not resource.is_file():
        raise KeyError(name)
    with resource.open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


def known_zone(name: str) -> str:
    """For validators: the name, or a ValueError a person can act on."""
    try:
        zone(name)
    except KeyError:
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/London)") from None
    return name


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        return list(Weekday).index(self)


class Rotation(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # part of a policy (workflows.policy._Strict)


WEEK_MINUTES = 7 * 24 * 60


class Restriction(_Strict):
    """A window of the week in which a layer is on call, in the schedule's time zone.

    With `start_day` and `end_day`: one span, from `start_day` `start` to `end_day` `end`. Without:
    every day in `days` from `start` to `end` (past midnight when `end` is not after `start`).
    """

    start: time
    end: time
    start_day: Weekday | None = None
    end_day: Weekday | None = None
    days: list[Weekday] = Field(default_factory=lambda: list(Weekday))

    @model_validator(mode="after")
    def _both_days_or_none(self) -> Restriction:
        if (self.start_day is None) != (self.end_day is None):
            raise ValueError("give both start_day and end_day, or neither (then `days`)")
        return self

    def spans(self) -> list[tuple[int, int]]:
        """The window as (start, end) minutes of the week, Monday 00:00 being 0; end may pass the week."""
        start, end = self.start.hour * 60 + self.start.minute, self.end.hour * 60 + self.end.minute
        if self.start_day is not None and self.end_day is not None:
            first, last = self.start_day.number * 1440 + start, self.end_day.number * 1440 + end
            return [(first, last if last > first else last + WEEK_MINUTES)]
        length = end - start if end > start else end - start + 1440
        return [(d.number * 1440 + start, d.number * 1440 + start + length) for d in self.days]

    def contains(self, local: datetime) -> bool:
        minute = local.weekday() * 1440 + local.hour * 60 + local.minute
        return any(a <= m < b for a, b in self.spans() for m in (minute, minute + WEEK_MINUTES))


class Layer(_Strict):
    """Members take turns: each holds `length` hours, days or weeks, from the handoff at `starts`."""

    name: str = ""
    members: list[str] = Field(min_length=1)  # person ids, in turn order; "" is a turn with nobody
    rotation: Rotation = Rotation.WEEKLY
    length: int = Field(default=1, gt=0)  # "every N days": rotation daily, length N
    handoff: time = time(9, 0)  # local time of every handoff
    handoff_day: Weekday | None = None  # weekly rotations: the weekday of the handoff
    starts: date = date(2024, 1, 1)  # the first member's first shift begins on (or after) this date
    ends: datetime | None = None  # nobody after this (OpsGenie's endDate); without an offset: the schedule's zone
    restrictions: list[Restriction] = Field(default_factory=list)

    @model_validator(mode="after")
    def _weekday_for_weekly(self) -> Layer:
        if self.handoff_day is not None and self.rotation is not Rotation.WEEKLY:
            raise ValueError("handoff_day is for weekly rotations only")
        return self

    def first_handoff(self) -> datetime:
        """Local wall time, no zone: the first shift's start."""
        day = self.starts
        if self.handoff_day is not None:
            day += timedelta(days=(self.handoff_day.number - day.weekday()) % 7)
        return datetime.combine(day, self.handoff)

    def period(self) -> timedelta:
        """One member's turn: wall-clock days or weeks, or real hours."""
        if self.rotation is Rotation.HOURLY:
            return timedelta(hours=self.length)
        return timedelta(days=self.length * (7 if self.rotation is Rotation.WEEKLY else 1))


class Schedule(_Strict):
    timezone: str = "UTC"
    layers: list[Layer] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @model_validator(mode="after")
    def _ends_in_the_schedules_zone(self) -> Schedule:
        """A layer's `ends` written without an offset (TOML's local date-time) is the schedule's local time:
        compared as it is with the aware time of a page, it would fail every incident that looks it up."""
        if any(layer.ends is not None and layer.ends.tzinfo is None for layer in self.layers):
            local = zone(self.timezone)
            layers = [
                layer.model_copy(update={"ends": layer.ends.replace(tzinfo=local)})
                if layer.ends is not None and layer.ends.tzinfo is None
                else layer
                for layer in self.layers
            ]
            object.__setattr__(self, "layers", layers)  # frozen: the validated schedule is built here
        return self

    def members(self) -> list[str]:
        return list(dict.fromkeys(m for layer in self.layers for m in layer.members if m))


class Override(BaseModel):
    """Somebody takes a schedule's whole on-call from `start` to `end` (held by ScheduleWorkflow)."""

    override_id: str
    who: str
    start: datetime
    end: datetime
    by: str = ""
    reason: str = ""


class Shift(BaseModel):
    """Who is on call from `start` to `end` ("" nobody)."""

    start: datetime
    end: datetime
    who: str


# --- who is on call ----------------------------------------------------------------------------


def _utc(local_wall: datetime, tz: ZoneInfo) -> datetime:
    """A local wall time as a UTC instant. A time the clocks skipped (02:30 on spring-forward night) is
    taken with the offset before the change, so the handoff happens at the first instant after the gap."""
    return local_wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _shift_start(layer: Layer, tz: ZoneInfo, k: int) -> datetime:
    first = layer.first_handoff()
    if layer.rotation is Rotation.HOURLY:
        return _utc(first, tz) + k * layer.period()
    return _utc(first + k * layer.period(), tz)


def _shift_number(layer: Layer, tz: ZoneInfo, at: datetime) -> int:
    """k such that shift k started at or before `at`, and shift k+1 after it."""
    local = at.astimezone(tz).replace(tzinfo=None)
    k = (local - layer.first_handoff()) // layer.period()
    while _shift_start(layer, tz, k) > at:
        k -= 1
    while _shift_start(layer, tz, k + 1) <= at:
        k += 1
    return k


def layer_on_call(layer: Layer, tz: ZoneInfo, at: datetime) -> str:
    if layer.ends is not None and at >= layer.ends:
        return ""
    k = _shift_number(layer, tz, at)
    if k < 0:
        return ""
    if layer.restrictions and not any(r.contains(at.astimezone(tz)) for r in layer.restrictions):
        return ""
    return layer.members[k % len(layer.members)]


def on_call(schedule: Schedule, overrides: list[Override], at: datetime) -> str:
    """Who is on call at `at` (aware): the latest override covering it, else the last layer with somebody;
    "" when nobody is."""
    for override in reversed(overrides):
        if override.start <= at < override.end:
            return override.who
    tz = zone(schedule.timezone)
    for layer in reversed(schedule.layers):
        who = layer_on_call(layer, tz, at)
        if who:
            return who
    return ""


def _changes(schedule: Schedule, overrides: list[Override], start: datetime, end: datetime) -> Iterator[datetime]:
    """Every instant in (start, end) at which who is on call may change."""
    tz = zone(schedule.timezone)
    for layer in schedule.layers:
        k = _shift_number(layer, tz, start)
        while (moment := _shift_start(layer, tz, k)) < end:
            yield moment
            k += 1
        if layer.ends is not None:
            yield layer.ends
        day = start.astimezone(tz).date() - timedelta(days=7)
        while (midnight := datetime.combine(day, time(0))) < end.astimezone(tz).replace(tzinfo=None):
            if midnight.weekday() == 0:
                for restriction in layer.restrictions:
                    for a, b in restriction.spans():
                        yield _utc(midnight + timedelta(minutes=a), tz)
                        yield _utc(midnight + timedelta(minutes=b), tz)
            day += timedelta(days=1)
    for override in overrides:
        yield override.start
        yield override.end


def shifts(schedule: Schedule, overrides: list[Override], start: datetime, end: datetime) -> list[Shift]:
    """Who is on call from `start` to `end`, as consecutive shifts (nobody: who "")."""
    moments = sorted({m for m in _changes(schedule, overrides, start, end) if start < m < end})
    result: list[Shift] = []
    for a, b in zip([start, *moments], [*moments, end], strict=True):
        who = on_call(schedule, overrides, a)
        if result and result[-1].who == who:
            result[-1].end = b
        else:
            result.append(Shift(start=a, end=b, who=who))
    return result


def next_handoffs(schedule: Schedule, overrides: list[Override], at: datetime, count: int = 3) -> list[Shift]:
    """The next `count` changes of who is on call after `at` (looking up to 12 weeks ahead)."""
    return shifts(schedule, overrides, at, at + timedelta(weeks=12))[1 : count + 1]


def first_gap(schedule: Schedule, start: datetime, horizon: timedelta = timedelta(weeks=8)) -> datetime | None:
    """The first time from `start` within `horizon` at which nobody is on call (overrides aside)."""
    return next((s.start for s in shifts(schedule, [], start, start + horizon) if not s.who), None)
