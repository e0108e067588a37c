"""What every incidentctl command shares: settings, the Temporal connection, who acts, sending a
decision (through client.decide, as Slack and the drill do), and output (`--json` for scripts, a Rich
table for people).

Every refusal ends the command with one line on stderr and a non-zero exit (STYLE rule 9).

Imports of the Temporal SDK, the settings and the policy loader wait until a command needs them, so that
`incidentctl --help` does not pay for them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel

if TYPE_CHECKING:
    from temporalio.client import Client

    from settings import Settings
    from workflows.comms.model import CommsMessage, CommsState
    from workflows.contracts.policy import Policy
    from workflows.incident.model import Decision, IncidentState

T = TypeVar("T")

USER_ENV = "INCIDENTCTL_USER"

# The options and arguments every group of commands takes.
As = Annotated[str | None, typer.Option("--as", help="acting person (default: $INCIDENTCTL_USER)")]
Id = Annotated[str, typer.Argument(help="incident id, e.g. INC-7F3KQ2MA", metavar="INCIDENT")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def incident_id_of(incident: str) -> str:
    """The incident id as typed (any case, stray blanks) as the workflows know it."""
    return incident.strip().upper()


def say_refusal(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"incidentctl: {message}", markup=False)


def fail(message: str) -> NoReturn:
    """End the command: one line on stderr, exit status 1."""
    say_refusal(message)
    raise typer.Exit(1)


def settings() -> Settings:
    from settings import Settings

    return Settings()


def policy() -> Policy:
    """The policy file the settings name, read and checked once per process (again only if the file changes)."""
    from policy_file import PolicyError

    path = settings().incident_policy
    try:
        found = path.stat()
        version = (found.st_mtime_ns, found.st_size)
    except OSError:
        version = None  # load_policy says why it cannot be read
    try:
        return _load_policy(path, version)
    except PolicyError as err:
        fail(str(err))


@functools.cache
def _load_policy(path: Path, version: tuple[int, int] | None) -> Policy:
    """`version` (the file's modification time and size) is part of the key: an edited file is read again.
    A file that cannot be loaded raises, and nothing is kept."""
    from policy_file import load_policy

    return load_policy(path)


def actor(as_option: str | None) -> str:
    """The acting person: `--as`, else INCIDENTCTL_USER; it must be a person the policy knows."""
    person = as_option or os.environ.get(USER_ENV, "")
    if not person:
        fail(f"who is acting? pass --as PERSON or set {USER_ENV}")
    known = policy().people
    if person not in known:
        fail(f"{person!r} is not a person in the policy; known: {', '.join(sorted(known))}")
    return person


def unreachable(address: str) -> str:
    return f"cannot reach Temporal at {address}: start it with `make run` or set TEMPORAL_ADDRESS"


async def connect() -> Client:
    import settings as settings_module
    from client.decide import is_unreachable

    current = settings()
    try:
        return await settings_module.connect(current)
    except Exception as err:
        if is_unreachable(err):
            fail(unreachable(current.temporal_address))
        raise


# Within this a command keeps sending a decision whose answer was lost (server restarting, no worker yet)
# under its one update id, so that however often it is sent it is applied once.
RETRY_WITHIN = timedelta(seconds=20)


def new_update_id() -> str:
    """One per invocation: the command's retries reuse it; the same command run again is a new decision."""
    return f"incidentctl-{uuid.uuid4()}"


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run a command's async body; a refusal or an unreachable server ends it with one line."""
    from client.decide import Refused

    try:
        return asyncio.run(_guarded(work))
    except Refused as err:
        fail(str(err))


async def _guarded(work: Callable[[], Awaitable[T]]) -> T:
    from temporalio.service import RPCError

    from client.decide import Refused, is_unreachable

    try:
        return await work()
    except (RPCError, RuntimeError) as err:
        if is_unreachable(err):
            raise Refused(unreachable(settings().temporal_address)) from err
        raise


def read_state(incident_id: str) -> IncidentState:
    """The incident's state, as its `state` query answers it."""
    from client.decide import query_state

    async def read() -> IncidentState:
        return await query_state(await connect(), incident_id)

    return run(read)


def run_update(incident_id: str, decision: Decision) -> str:
    """Send one decision to an incident from the command line; print what the incident said, then its state
    once the decision took effect (read after the Update completed, so it no longer lists what was given)."""
    from client.decide import query_state, send_decision

    update_id = new_update_id()

    async def work() -> tuple[str, IncidentState | str]:
        client = await connect()
        result = await send_decision(client, incident_id, decision, update_id=update_id, retry_within=RETRY_WITHIN)
        return result, await _read_after(query_state(client, incident_id))

    result, after = run(work)
    typer.echo(result or f"{incident_id}: done")
    if isinstance(after, str):
        say_refusal(f"{incident_id}: the decision took effect, but its state could not be read: {after}")
    else:
        typer.echo(incident_now(after))
    return result


def run_step(incident_id: str, name: str, step: Decision, result_type: Any) -> Any:
    """Send one step of the incident's message loop (COMMS_DECISIONS[name]) from the command line."""
    from client.decide import send_step

    update_id = new_update_id()

    async def work() -> Any:
        return await send_step(
            await connect(), incident_id, name, step, result_type, update_id=update_id, retry_within=RETRY_WITHIN
        )

    return run(work)


def run_step_then_read(incident_id: str, name: str, step: Decision) -> tuple[CommsMessage, CommsState | str]:
    """One step on a message of the loop, then the loop's state once the step took effect (or why it could
    not be read: the step did take effect). The loop is found through the incident's state once, for both."""
    from client.decide import loop_state, message_loop_id, send_step
    from workflows.comms.model import CommsMessage

    update_id = new_update_id()

    async def work() -> tuple[CommsMessage, CommsState | str]:
        client = await connect()
        loop = await message_loop_id(client, incident_id)
        moved: CommsMessage = await send_step(
            client, incident_id, name, step, CommsMessage, update_id=update_id, retry_within=RETRY_WITHIN, loop=loop
        )
        return moved, await _read_after(loop_state(client, incident_id, loop=loop))

    return run(work)


async def _read_after(read: Awaitable[T]) -> T | str:
    """The state after a decision that took effect; a read that fails is said, it does not undo the decision."""
    from client.decide import Refused

    try:
        return await read
    except Refused as err:
        return str(err)


def incident_now(s: IncidentState) -> str:
    """One line: where the incident is and who owes what, derived from its state after the decision."""
    where = s.status.value if s.phase.value == s.status.value else f"{s.status.value}, {s.phase.value}"
    owed = f"waiting on {'; '.join(s.waiting_on)}" if s.waiting_on else "nothing owed"
    return f"{s.incident_id} now: {where}; {owed}"


# --- output ------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(to_jsonable(value), indent=2, default=str))


def print_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str = "",
    empty: str = "none",
) -> None:
    """`--json`: a JSON list. On a terminal: a Rich table. Piped: a header line of the column names, then
    tab-separated lines for grep and awk. With no rows, both say so in a line of their own (`empty`)."""
    if as_json:
        print_json(list(rows))
        return
    if not sys.stdout.isatty():
        typer.echo("\t".join(columns))
        for row in rows:
            typer.echo("\t".join(_cell(row.get(c)) for c in columns))
        if not rows:
            typer.echo(empty)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None)
    for column in columns:
        table.add_column(column)
    for row in rows:
        # Text(), not str: an alert title like "[red]x" is data, not Rich markup.
        table.add_row(*(Text(_cell(row.get(c))) for c in columns))
    Console().print(table)
    if not rows:
        typer.echo(empty)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
