"""incidentctl's on-call commands: `oncall`, `override add|list|remove`, `silence` (and `list`, `expire`).
`register(app)` adds them.

Times are ISO 8601 with a UTC offset (`2026-12-01T09:00+01:00`, `...Z`), `now`, or a duration from now
(`+30m`, `+2h`, `+1d`); anything else is refused in one line, as are unknown schedules and people.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from starter.cli import common
from starter.cli.common import As, Json

if TYPE_CHECKING:
    from workflows.contracts.policy import Policy

ScheduleName = Annotated[str, typer.Argument(help="schedule name in the policy", metavar="SCHEDULE")]

override_app = typer.Typer(help="Overrides of on-call schedules.", no_args_is_help=True, rich_markup_mode=None)
silence_app = typer.Typer(
    help="Maintenance windows: alerts of a service page nobody until the window ends.",
    invoke_without_command=True,
    rich_markup_mode=None,
)

DURATION = re.compile(r"^\+(\d+)([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def register(app: typer.Typer) -> None:
    app.command("oncall")(oncall)
    app.add_typer(override_app, name="override")
    app.add_typer(silence_app, name="silence")


def parse_time(value: str, option: str, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    if value == "now":
        return now
    duration = DURATION.match(value)
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        return now + timedelta(**{UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        common.fail(f"{option} {value!r} is not a time; give e.g. 2026-12-01T09:00+01:00, now, or +2h")
    if moment.tzinfo is None:
        common.fail(f"{option} {value!r} has no UTC offset; add one, e.g. {value}+00:00 or {value}Z")
    return moment.astimezone(UTC)


def _schedule(policy: Policy, name: str) -> str:
    if name not in policy.schedules:
        known = ", ".join(sorted(policy.schedules)) or "none (add [schedules.NAME] to the policy)"
        common.fail(f"no schedule {name!r} in the policy; known: {known}")
    return name


def _when(moment: datetime) -> str:
    """In the team's time zone with UTC beside it, as the incidents' messages say times (clock.local)."""
    from workflows.contracts.clock import local

    return local(common.policy(), moment, with_date=True)


# --- who is on call ------------------------------------------------------------------------------


def oncall(
    schedule: Annotated[str | None, typer.Option("--schedule", help="one schedule (default: all)")] = None,
    at: Annotated[str, typer.Option("--at", help="when (default: now)")] = "now",
    as_json: Json = False,
) -> None:
    """Who is on call now (or --at a time) in each schedule, overrides included, and the next handoffs."""
    from client import oncall as oncall_client
    from workflows.oncall.rotation import next_handoffs, on_call

    policy = common.policy()
    names = [_schedule(policy, schedule)] if schedule else sorted(policy.schedules)
    if not names:
        common.fail("the policy has no schedules; add [schedules.NAME] (see README, 'Moving in')")
    moment = parse_time(at, "--at")

    async def work() -> dict[str, Any]:
        client = await common.connect()
        return {name: await oncall_client.overrides(client, name) for name in names}

    overrides = common.run(work)
    rows: list[dict[str, Any]] = []
    for name in names:
        found = policy.schedules[name]
        rows.append(
            {
                "schedule": name,
                "at": moment.isoformat(),
                "on call": on_call(found, overrides[name], moment) or "nobody",
                "next handoffs": [
                    {"at": h.start.isoformat(), "to": h.who or "nobody"}
                    for h in next_handoffs(found, overrides[name], moment)
                ],
            }
        )
    if as_json:
        common.print_json(rows)
        return
    for row in rows:
        row["next handoffs"] = "; ".join(
            f"{_when(datetime.fromisoformat(h['at']))} -> {h['to']}" for h in row["next handoffs"]
        )
    title = f"On call at {_when(moment)}"
    common.print_rows(rows, ("schedule", "on call", "next handoffs"), as_json=False, title=title, empty="no schedules")


# --- overrides -----------------------------------------------------------------------------------


@override_app.command("add")
def override_add(
    schedule: ScheduleName,
    who: Annotated[str, typer.Option("--who", help="person who takes the on-call")],
    start: Annotated[str, typer.Option("--from", help="start (default: now)")] = "now",
    until: Annotated[str, typer.Option("--until", help="end")] = "",
    reason: Annotated[str, typer.Option("--reason")] = "",
    as_: As = None,
) -> None:
    """Put somebody on call in a schedule from one time until another; incidents and running ladders follow."""
    from client.decide import Refused
    from workflows.oncall.model import AddOverride
    from workflows.oncall.rotation import Override

    policy = common.policy()
    name, by = _schedule(policy, schedule), common.actor(as_)
    if who not in policy.people:
        common.fail(f"{who!r} is not a person in the policy; known: {', '.join(sorted(policy.people))}")
    if not until:
        common.fail("until when? pass --until, e.g. --until +8h or --until 2026-12-01T09:00+01:00")
    request = AddOverride(
        who=who, start=parse_time(start, "--from"), end=parse_time(until, "--until"), by=by, reason=reason
    )

    async def work() -> Any:
        try:
            return Override.model_validate(await common.send_as(f"schedules/{name}/overrides", request, by))
        except Refused as err:
            common.fail(f"override on {name} refused: {err}")

    added = common.run(work)
    typer.echo(f"{name} {added.override_id}: {who} on call from {_when(added.start)} until {_when(added.end)}")


@override_app.command("list")
def override_list(schedule: ScheduleName, as_json: Json = False) -> None:
    """The schedule's current and future overrides."""
    from client import oncall as oncall_client

    name = _schedule(common.policy(), schedule)

    async def work() -> Any:
        return await oncall_client.overrides(await common.connect(), name)

    rows = [
        {
            "id": o.override_id,
            "who": o.who,
            "from": _when(o.start),
            "until": _when(o.end),
            "by": o.by,
            "reason": o.reason,
        }
        for o in common.run(work)
    ]
    columns = ("id", "who", "from", "until", "by", "reason")
    common.print_rows(rows, columns, as_json=as_json, title=f"Overrides of {name}", empty=f"no overrides of {name}")


@override_app.command("remove")
def override_remove(
    schedule: ScheduleName, override_id: Annotated[str, typer.Argument(metavar="ID")], as_: As = None
) -> None:
    """Remove an override (its id from `override list`)."""
    from workflows.oncall.model import RemoveOverride
    from workflows.oncall.rotation import Override

    name, by = _schedule(common.policy(), schedule), common.actor(as_)
    request = RemoveOverride(override_id=override_id, by=by)

    async def work() -> Any:
        path = f"schedules/{name}/overrides/{override_id}/remove"
        return Override.model_validate(await common.send_as(path, request, by))

    removed = common.run(work)
    typer.echo(f"{name} {removed.override_id} removed: {removed.who} is no longer on call by override")


# --- maintenance windows -------------------------------------------------------------------------


@silence_app.callback()
def silence(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", help="service whose alerts page nobody")] = None,
    matcher: Annotated[list[str] | None, typer.Option("--matcher", help="label=value the alert must carry")] = None,
    until: Annotated[str | None, typer.Option("--until", help="end of the window")] = None,
    reason: Annotated[str, typer.Option("--reason", help="why (shown on the incidents it holds)")] = "",
    as_: As = None,
) -> None:
    """Open a maintenance window: alerts of the service (with every --matcher label) inside it page nobody."""
    if ctx.invoked_subcommand is not None:
        return
    from client.decide import Refused
    from workflows.incident.model import Silence
    from workflows.oncall.model import AddSilence

    policy = common.policy()
    if not service or not until:
        common.fail("a window needs --service and --until (and --reason); or: incidentctl silence list|expire ID")
    if service not in policy.services:
        common.fail(f"no service {service!r} in the policy; known: {', '.join(sorted(policy.services)) or 'none'}")
    labels: dict[str, str] = {}
    for item in matcher or []:
        label, equals, value = item.partition("=")
        if not equals or not label:
            common.fail(f"--matcher {item!r} is not label=value")
        labels[label] = value
    request = AddSilence(
        service=service, matchers=labels, until=parse_time(until, "--until"), reason=reason, by=common.actor(as_)
    )

    async def work() -> Any:
        try:
            return Silence.model_validate(await common.send_as("silences", request, request.by))
        except Refused as err:
            common.fail(f"maintenance window refused: {err}")

    added = common.run(work)
    matching = "".join(f" with {k}={v}" for k, v in labels.items())
    typer.echo(f"{added.silence_id}: alerts of {service}{matching} page nobody until {_when(added.until)}")


@silence_app.command("list")
def silence_list(as_json: Json = False) -> None:
    """The maintenance windows still open."""
    from client import oncall as oncall_client

    async def work() -> Any:
        return await oncall_client.silences(await common.connect())

    rows = [
        {
            "id": s.silence_id,
            "service": s.service,
            "matchers": ", ".join(f"{k}={v}" for k, v in s.matchers.items()),
            "until": _when(s.until),
            "reason": s.reason,
            "by": s.by,
            "holding": ", ".join(s.held),
        }
        for s in common.run(work)
    ]
    common.print_rows(
        rows,
        ("id", "service", "matchers", "until", "reason", "by", "holding"),
        as_json=as_json,
        title="Maintenance",
        empty="no open maintenance windows",
    )


@silence_app.command("expire")
def silence_expire(silence_id: Annotated[str, typer.Argument(metavar="ID")], as_: As = None) -> None:
    """End a maintenance window now: incidents it holds whose alert still fires page at once."""
    from workflows.incident.model import Silence
    from workflows.oncall.model import ExpireSilence

    request = ExpireSilence(silence_id=silence_id, by=common.actor(as_))

    async def work() -> Any:
        return Silence.model_validate(await common.send_as(f"silences/{silence_id}/expire", request, request.by))

    expired = common.run(work)
    held = f"; {len(expired.held)} incident(s) it held page now" if expired.held else ""
    typer.echo(f"{expired.silence_id} expired{held}")
