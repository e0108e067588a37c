"""What every incidentctl command shares: settings, the Temporal connection, who acts, sending a
decision, and output (`--json` for scripts, a Rich table for people).

Every refusal ends the command with one line on stderr and a non-zero exit (STYLE rule 9).
`send_decision` is also what the Slack endpoint uses, so both ways in refuse with the same words.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

import settings as settings_module
from policy_file import PolicyError, load_policy
from settings import Settings
from workflows.model import Decision, IncidentState
from workflows.policy import Policy

T = TypeVar("T")

USER_ENV = "INCIDENTCTL_USER"


class Refused(Exception):
    """A decision or read the system refused; the message is the one line a person sees."""


def say_refusal(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"incidentctl: {message}", markup=False)


def fail(message: str) -> NoReturn:
    """End the command: one line on stderr, exit status 1."""
    say_refusal(message)
    raise typer.Exit(1)


def settings() -> Settings:
    return Settings()


def policy() -> Policy:
    current = settings()
    try:
        return load_policy(current.incident_policy)
    except PolicyError as err:
        fail(str(err))


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


def is_unreachable(err: BaseException) -> bool:
    """A server that is down or refuses connections, as the SDK reports it (not a refusal by Temporal)."""
    if isinstance(err, RPCError):
        return err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(err, RuntimeError) and "Failed client connect" in str(err)


async def connect() -> Client:
    current = settings()
    try:
        return await settings_module.connect(current)
    except Exception as err:
        if is_unreachable(err):
            fail(unreachable(current.temporal_address))
        raise


# A running worker answers in milliseconds; past this nobody is polling the task queue.
ANSWER_WITHIN = timedelta(seconds=15)


def no_answer(incident_id: str) -> str:
    return f"{incident_id} did not answer in time; is the worker running? (make run)"


def refusal_for(err: BaseException, incident_id: str) -> str | None:
    """The one line to show for an error Temporal returned, or None when it is not a refusal."""
    if isinstance(err, WorkflowUpdateFailedError):
        return str(err.cause.message if hasattr(err.cause, "message") else err.cause)
    if isinstance(err, WorkflowQueryFailedError | WorkflowQueryRejectedError):
        return f"{incident_id}: {err}"
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return no_answer(incident_id)
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        if "already completed" in str(err):
            return f"{incident_id} is closed; nothing about it can change any more"
        return f"no incident {incident_id} (incidentctl list shows open ones)"
    if is_unreachable(err):
        return unreachable(settings().temporal_address)
    return None


async def send_decision(client: Client, incident_id: str, update_name: str, decision: Decision) -> str:
    """Run one human decision as an Update; raise Refused with a readable line when it is refused."""
    handle = client.get_workflow_handle(incident_id)
    try:
        return str(await handle.execute_update(update_name, decision, result_type=str, rpc_timeout=ANSWER_WITHIN))
    except Exception as err:
        message = refusal_for(err, incident_id)
        if message is None:
            raise
        raise Refused(message) from err


async def query_state(client: Client, incident_id: str) -> IncidentState:
    handle = client.get_workflow_handle(incident_id)
    try:
        state: IncidentState = await handle.query("state", result_type=IncidentState, rpc_timeout=ANSWER_WITHIN)
        return state
    except RPCError as err:
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise Refused(no_answer(incident_id)) from err
        message = refusal_for(err, incident_id)
        if message is None:
            raise
        raise Refused(message) from err
    except Exception as err:
        message = refusal_for(err, incident_id)
        if message is None:
            raise
        raise Refused(message) from err


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run a command's async body; a refusal or an unreachable server ends it with one line."""
    try:
        return asyncio.run(_guarded(work))
    except Refused as err:
        fail(str(err))


async def _guarded(work: Callable[[], Awaitable[T]]) -> T:
    try:
        return await work()
    except (RPCError, RuntimeError) as err:
        if is_unreachable(err):
            raise Refused(unreachable(settings().temporal_address)) from err
        raise


def run_update(incident_id: str, update_name: str, decision: Decision) -> str:
    """Send one decision to an incident from the command line and print what the incident said."""

    async def work() -> str:
        client = await connect()
        return await send_decision(client, incident_id, update_name, decision)

    result = run(work)
    typer.echo(result or f"{incident_id}: done")
    return result


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
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, as_json: bool, title: str = ""
) -> None:
    """`--json`: a JSON list. On a terminal: a Rich table. Piped: tab-separated lines for grep and awk."""
    if as_json:
        print_json(list(rows))
        return
    if not sys.stdout.isatty():
        for row in rows:
            typer.echo("\t".join(_cell(row.get(c)) for c in columns))
        return
    table = Table(title=title or None)
    for column in columns:
        table.add_column(column)
    for row in rows:
        # Text(), not str: an alert title like "[red]x" is data, not Rich markup.
        table.add_row(*(Text(_cell(row.get(c))) for c in columns))
    Console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
