"""`make run`'s launcher: it registers the search attributes, stops everything on Ctrl-C, keeps
incidents across runs in its SQLite file, and stops the rest when one of its processes dies. A port in use
stops it before anything starts, naming the variable that moves it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from settings import ROOT, Settings
from starter.stack import Stack, StackError, StackSettings, port_clash, register_search_attributes
from workflows.contracts.temporal import search_attributes

READY = "incident-orchestrator is running"
EXPECTED_TYPES = {"IncidentAcknowledged": "INDEXED_VALUE_TYPE_BOOL"} | {
    key.name: "INDEXED_VALUE_TYPE_KEYWORD" for key in search_attributes.ALL if key.name != "IncidentAcknowledged"
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> dict[int, str]:
    """Live child processes of `pid` and their command lines, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # the command name in parentheses may hold spaces; the parent pid is the 2nd field after it
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def program(cmdline: str) -> str:
    """`-m worker` for `.../python -m worker`, `server start-dev` for `.../temporal server start-dev ...`."""
    return " ".join(cmdline.split()[1:3])


def survivors(children: dict[int, str]) -> list[str]:
    """The children still running (killed, so a failing test leaves nothing behind)."""
    left = []
    for pid, cmdline in children.items():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.append(cmdline)
            os.kill(pid, signal.SIGKILL)
    return left


class Launcher:
    """`python -m starter.stack` on free ports and a given data directory, output to a file."""

    def __init__(self, data_dir: Path, output: Path) -> None:
        self.output = output
        self.temporal_port = free_port()
        self.env = os.environ | {
            "DATA_DIR": str(data_dir),
            "TEMPORAL_PORT": str(self.temporal_port),
            "TEMPORAL_UI_PORT": str(free_port()),
            "HTTP_PORT": str(free_port()),
            "INCIDENT_TASK_QUEUE": f"stack-{uuid.uuid4().hex[:8]}",
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> asyncio.subprocess.Process:
        with self.output.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "starter.stack", cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 60
        while READY not in self.output.read_text(errors="replace"):
            if self.process.returncode is not None or time.monotonic() > deadline:
                if self.process.returncode is None:
                    self.process.send_signal(signal.SIGINT)
                    await self.exit_code()
                pytest.fail(f"the stack did not come up:\n{self.output.read_text(errors='replace')}")
            await asyncio.sleep(0.2)
        return self.process

    async def client(self) -> Client:
        return await Client.connect(f"127.0.0.1:{self.temporal_port}")

    async def exit_code(self, within: float = 30) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), within)


async def test_make_run_registers_attributes_stops_on_ctrl_c_and_keeps_incidents(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Launcher(data_dir, tmp_path / "first.log")
    process = await first.start()
    children = children_of(process.pid)
    try:
        assert sorted(map(program, children.values())) == ["-m starter.http.app", "-m worker", "server start-dev"]
        client = await first.client()
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace="default"))
        registered = {
            name: IndexedValueType.Name(kind)
            for name, kind in listed.custom_attributes.items()
            if name.startswith("Incident")
        }
        assert registered == EXPECTED_TYPES
        # no worker polls this queue: the execution simply stays Running, in the SQLite file
        kept = await client.start_workflow("NobodyRunsThis", id=f"kept-{uuid.uuid4().hex[:8]}", task_queue="idle")
    finally:
        process.send_signal(signal.SIGINT)
        code = await first.exit_code()
        left = survivors(children)
    assert code == 0, first.output.read_text()
    assert "stack: stopping" in first.output.read_text()
    assert left == []
    assert (data_dir / "temporal.db").exists()
    with closing(sqlite3.connect(data_dir / "temporal.db")) as db:  # SQLITE_PRAGMAS: the server's file is a WAL one
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    second = Launcher(data_dir, tmp_path / "second.log")
    process = await second.start()
    children = children_of(process.pid)
    try:
        description = await (await second.client()).get_workflow_handle(kept.id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        worker = next(pid for pid, cmd in children.items() if program(cmd) == "-m worker")
        os.kill(worker, signal.SIGKILL)
        code = await second.exit_code()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            await second.exit_code()
        left = survivors(children)
    assert code == 1
    assert "stack: the worker exited with code -9; stopping the rest" in second.output.read_text()
    assert left == []


async def test_search_attributes_missing_from_an_existing_namespace_are_added(
    dev_env: WorkflowEnvironment,
) -> None:
    """`start-dev --search-attribute` is ignored on an existing database (checked on temporal 1.9.1)."""
    client = dev_env.client
    namespace = f"stack-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    await register_search_attributes(client, namespace)
    await register_search_attributes(client, namespace)  # again: nothing to add, no error
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    assert {name: IndexedValueType.Name(kind) for name, kind in listed.custom_attributes.items()} == EXPECTED_TYPES


async def test_a_search_attribute_registered_with_another_type_is_refused(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    namespace = f"stack-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace, search_attributes={"IncidentPhase": IndexedValueType.INDEXED_VALUE_TYPE_TEXT}
        )
    )
    with pytest.raises(StackError, match="IncidentPhase is registered as INDEXED_VALUE_TYPE_TEXT"):
        await register_search_attributes(client, namespace)


@pytest.mark.parametrize(
    ("variable", "what"),
    [
        ("TEMPORAL_PORT", "Temporal gRPC"),
        ("TEMPORAL_UI_PORT", "Temporal UI"),
        ("HTTP_PORT", "HTTP service"),
    ],
)
def test_a_port_in_use_is_named_with_its_variable_and_nothing_starts(tmp_path: Path, variable: str, what: str) -> None:
    """`make run` next to another Temporal (or anything on one of its ports) says so in one line and exits 1:
    no dev server that exits with a traceback, no worker attached to the other server."""
    data_dir = tmp_path / "data"
    env = Launcher(data_dir, tmp_path / "unused.log").env
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env[variable] = str(taken)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "starter.stack"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"stack: nothing started: {what} port {taken} on 127.0.0.1 is in use (move it with {variable}=…); "
        "stop what listens there, or set the variable in the environment or .env"
    ]
    assert not data_dir.exists()  # not even the SQLite file: the dev server never ran
    assert time.monotonic() - started < 10


def test_free_ports_pass_the_check() -> None:
    stack = StackSettings(_env_file=None, temporal_port=free_port(), temporal_ui_port=free_port())
    assert port_clash(stack, Settings(_env_file=None, http_port=free_port())) is None


def test_the_worker_metrics_port_is_checked_when_set() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        stack = StackSettings(_env_file=None, temporal_port=free_port(), temporal_ui_port=free_port())
        clash = port_clash(stack, Settings(_env_file=None, http_port=free_port(), metrics_port=taken))
    assert clash is not None
    assert f"worker metrics port {taken} on 127.0.0.1 is in use (move it with METRICS_PORT=" in clash


def test_incidentctl_is_told_where_a_moved_stack_is_and_links_to_its_ui() -> None:
    """TEMPORAL_UI_PORT moves the UI: the worker's links follow it, and the banner tells incidentctl (whose
    declared incidents carry the link) the address and UI it would otherwise miss."""
    stack = Stack(StackSettings(_env_file=None, temporal_port=7300, temporal_ui_port=8300), Settings(_env_file=None))
    assert stack.ui_url == "http://localhost:8300"
    assert stack._child_env()["TEMPORAL_UI_URL"] == "http://localhost:8300"
    assert stack.cli_env() == {"TEMPORAL_ADDRESS": "127.0.0.1:7300", "TEMPORAL_UI_URL": "http://localhost:8300"}
    assert "TEMPORAL_ADDRESS=127.0.0.1:7300 TEMPORAL_UI_URL=http://localhost:8300 " in stack._banner()

    configured = Settings(_env_file=None, temporal_ui_url="https://temporal.example.com/")
    stack = Stack(StackSettings(_env_file=None), configured)
    assert stack.ui_url == "https://temporal.example.com"  # a configured UI address wins over the port
    assert stack._child_env()["TEMPORAL_UI_URL"] == "https://temporal.example.com"
    assert stack.cli_env() == {}


def test_with_payload_keys_the_ui_decodes_through_the_http_service() -> None:
    """The dev server's UI is given the HTTP service's codec endpoint, on `localhost` like the UI itself."""
    keys = f"k1:{base64.b64encode(bytes(32)).decode()}"
    settings = Settings(_env_file=None, payload_keys=keys, codec_token="t", http_port=8090)
    keyed = Stack(StackSettings(_env_file=None), settings)
    command = keyed._server_command()
    assert command[command.index("--ui-codec-endpoint") + 1] == "http://localhost:8090/codec"
    assert "http://localhost:8090/codec/login" in keyed._banner()
    plain = Stack(StackSettings(_env_file=None), Settings(_env_file=None))
    assert "--ui-codec-endpoint" not in plain._server_command()
    assert "not encrypted" in plain._banner()
