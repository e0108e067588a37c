"""What every incidentctl command shares: settings, the Temporal connection, who acts and their credential,
sending a decision (to the HTTP service's API, which proves the person and signs it), and output (`--json` for
scripts, a Rich table for people).

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
TOKEN_ENV = "INCIDENTCTL_TOKEN"
CREDENTIALS_ENV = "INCIDENTCTL_CREDENTIALS"

# The options and arguments every group of commands takes.
As = Annotated[
    str | None,
    typer.Option("--as", help="act with this person's credential, from incidentctl login (default: $INCIDENTCTL_USER)"),
]
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
    """The acting person: `--as`, else INCIDENTCTL_USER, else the person logged in last; a person the policy knows.
    Their credential (`credential`) proves it to the service, which refuses a name the credential does not carry."""
    person = as_option or os.environ.get(USER_ENV, "") or stored_credentials().get("default", "")
    if not person:
        fail("who is acting? log in first (incidentctl login --token TOKEN), or pass --as PERSON")
    known = policy().people
    if person not in known:
        fail(f"{person!r} is not a person in the policy; known: {', '.join(sorted(known))}")
    return person


def credentials_path() -> Path:
    """Where incidentctl login keeps each person's token: $INCIDENTCTL_CREDENTIALS or ~/.config/incidentctl."""
    return Path(os.environ.get(CREDENTIALS_ENV) or Path.home() / ".config" / "incidentctl" / "credentials.json")


def stored_credentials() -> dict[str, Any]:
    """{"default": person, "tokens": {person: token}}; empty when nobody logged in here."""
    path = credentials_path()
    if not path.exists():
        return {}
    stored: dict[str, Any] = json.loads(path.read_text())
    return stored


def store_credential(person: str, token: str) -> Path:
    """Keep the person's token for later commands (the file readable only by its owner); they act by default."""
    path, stored = credentials_path(), stored_credentials()
    stored = {"default": person, "tokens": {**stored.get("tokens", {}), person: token}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(stored, out, indent=1)
    return path


def credential(person: str) -> str:
    """The token that proves `person`: $INCIDENTCTL_TOKEN, else the one they logged in with here."""
    token = os.environ.get(TOKEN_ENV) or stored_credentials().get("tokens", {}).get(person)
    if not token:
        fail(f"no credential for {person} here: incidentctl login --token TOKEN (an administrator issues one)")
    return str(token)


def api_url() -> str:
    current = settings()
    return (current.incident_api_url or f"http://127.0.0.1:{current.http_port}").rstrip("/")


async def call_api(
    path: str, token: str, body: dict[str, Any] | None = None, *, update_id: str | None = None, get: bool = False
) -> Any:
    """One request to the HTTP service's API with a person's credential; its result, or Refused with its line."""
    import httpx

    from client.decide import Refused

    url = f"{api_url()}/api/{path}"
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": update_id} if update_id else {})
    try:
        async with httpx.AsyncClient(timeout=API_TIMEOUT) as http:
            if get:
                response = await http.get(url, headers=headers)
            else:
                response = await http.post(url, headers=headers, json=body or {})
    except httpx.TransportError as err:
        raise Refused(
            f"cannot reach the incident service at {api_url()}: start it with `make run` or set INCIDENT_API_URL"
        ) from err
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200:
        raise Refused(answer.get("error") or f"the incident service answered {response.status_code}")
    return answer.get("result", answer)


async def send_as(path: str, request: BaseModel, person: str, update_id: str | None = None) -> Any:
    """A decision (or on-call request) to the API, in the person's name with their credential."""
    body = request.model_dump(mode="json", exclude={"proof"})
    return await call_api(path, credential(person), body, update_id=update_id)


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
# The service keeps sending for RETRY_WITHIN (starter/http/decisions.py); the answer comes within this.
API_TIMEOUT = 40.0


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
    from client.decide import incident_decision, query_state

    update_id = new_update_id()
    path = f"incidents/{incident_id}/decisions/{incident_decision(type(decision))}"

    async def work() -> tuple[str, IncidentState | str]:
        result = await send_as(path, decision, decision.actor, update_id)
        return str(result), await _read_after(connect_then(lambda client: query_state(client, incident_id)))

    result, after = run(work)
    typer.echo(result or f"{incident_id}: done")
    if isinstance(after, str):
        say_refusal(f"{incident_id}: the decision took effect, but its state could not be read: {after}")
    else:
        typer.echo(incident_now(after))
    return result


def run_step(incident_id: str, name: str, step: Decision, result_type: Any) -> Any:
    """Send one step of the incident's message loop (COMMS_DECISIONS[name]) from the command line."""
    from pydantic import TypeAdapter

    update_id = new_update_id()

    async def work() -> Any:
        result = await send_as(f"incidents/{incident_id}/steps/{name}", step, step.actor, update_id)
        return TypeAdapter(result_type).validate_python(result)

    return run(work)


def run_step_then_read(incident_id: str, name: str, step: Decision) -> tuple[CommsMessage, CommsState | str]:
    """One step on a message of the loop, then the loop's state once the step took effect (or why it could
    not be read: the step did take effect)."""
    from client.decide import loop_state
    from workflows.comms.model import CommsMessage

    update_id = new_update_id()

    async def work() -> tuple[CommsMessage, CommsState | str]:
        result = await send_as(f"incidents/{incident_id}/steps/{name}", step, step.actor, update_id)
        moved = CommsMessage.model_validate(result)
        return moved, await _read_after(connect_then(lambda client: loop_state(client, incident_id)))

    return run(work)


async def connect_then(read: Callable[[Client], Awaitable[T]]) -> T:
    return await read(await connect())


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
