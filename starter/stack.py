"""`make run`: Temporal's dev server (SQLite under .data/), the worker and the HTTP service as one
foreground command. Ctrl-C or SIGTERM stops all three; if one dies, the others are stopped too.
Before starting anything it checks that the ports they listen on are free.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client

from client.signing import signing_key
from settings import ROOT, Settings
from workflows.contracts.temporal import search_attributes

BIN = Path(sys.executable).parent
NAMESPACE = "default"
# The files the worker and the HTTP service keep under DATA_DIR, unless their setting names another place.
DATA_FILES = {
    "outbox_path": "outbox.jsonl",
    "incident_log_dir": "incident-logs",
    "decision_signing_key": "decision-signing-key.pem",
    "decision_keys": "decision-keys",
    "tokens_path": "tokens.json",
    "ack_link_key": "ack-link-key",
}
# The dev server's SQLite file in write-ahead-log mode, synced at checkpoints: a transaction survives the
# server's crash, not the machine's power loss. With SQLite's defaults (a rollback journal, every commit
# synced) an alert storm (bench.storm against this server) paged p50 44 s, p99 174 s after the alert and
# left 3 of 1,200 incidents unpaged; with these p50 12 s, p99 60 s, none unpaged, the server using 38 % less CPU.
SQLITE_PRAGMAS = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
T = TypeVar("T")
Futures = set[asyncio.Future[Any]]


class StackSettings(BaseSettings):
    """Where the local stack listens and keeps its data (DATA_DIR, TEMPORAL_PORT, TEMPORAL_UI_PORT, ...)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = ROOT / ".data"
    temporal_ip: str = "127.0.0.1"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    startup_timeout: float = 30.0
    stop_timeout: float = 10.0

    @property
    def temporal_target(self) -> str:
        return f"{self.temporal_ip}:{self.temporal_port}"


@dataclass(frozen=True)
class Listener:
    """A port the stack will listen on, and the variable that moves it."""

    what: str
    host: str
    port: int
    variable: str


def listeners(stack: StackSettings, settings: Settings) -> list[Listener]:
    found = [
        Listener("Temporal gRPC", stack.temporal_ip, stack.temporal_port, "TEMPORAL_PORT"),
        Listener("Temporal UI", stack.temporal_ip, stack.temporal_ui_port, "TEMPORAL_UI_PORT"),
        Listener("HTTP service", settings.http_host, settings.http_port, "HTTP_PORT"),
    ]
    if settings.metrics_port is not None:
        found.append(Listener("worker metrics", settings.metrics_host, settings.metrics_port, "METRICS_PORT"))
    return found


def in_use(listener: Listener) -> bool:
    """Whether something already listens there: bind as the servers do (SO_REUSEADDR, so a port a stopped
    stack left in TIME_WAIT counts as free)."""
    host = listener.host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, listener.port))
        except OSError:
            return True
    return False


def port_clash(stack: StackSettings, settings: Settings) -> str | None:
    """One line naming each port in use and the variable that moves it; None when all are free.

    Checked before anything starts: a dev server that cannot bind exits, and the worker and HTTP service
    would otherwise attach to whatever Temporal already answers on that port.
    """
    taken = [
        f"{listener.what} port {listener.port} on {listener.host or '0.0.0.0'} is in use "
        f"(move it with {listener.variable}=…)"
        for listener in listeners(stack, settings)
        if in_use(listener)
    ]
    if not taken:
        return None
    return f"{'; '.join(taken)}; stop what listens there, or set the variable in the environment or .env"


class StackError(Exception):
    """Why the stack cannot run or stopped; printed as one line."""


class Stopped(Exception):
    """Ctrl-C or SIGTERM arrived."""


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path | None = None  # where its output goes, when not to this terminal


class Stack:
    def __init__(self, stack: StackSettings, settings: Settings) -> None:
        self.stack = stack
        self.settings = settings
        self.children: list[Child] = []
        self.stop_requested = asyncio.Event()

    @property
    def server_log(self) -> Path:
        return self.stack.data_dir / "temporal.log"

    async def run(self) -> None:
        self.stack.data_dir.mkdir(parents=True, exist_ok=True)
        with self.server_log.open("ab") as log:
            await self._start("Temporal server", self._server_command(), output=log, log_path=self.server_log)
        client = await self._until(self._connect(), f"Temporal did not answer on {self.stack.temporal_target}")
        await register_search_attributes(client, NAMESPACE)
        # The HTTP service's decision key, made before the worker starts so that the worker finds its public key.
        signing_key(self._path("decision_signing_key"), self._path("decision_keys"))
        await self._start("worker", [sys.executable, "-m", "worker"])
        await self._start("HTTP service", [sys.executable, "-m", "starter.http.app"])
        await self._until(self._http_ready(), f"the HTTP service did not answer on {self._http_url}/healthz")
        print(self._banner(), flush=True)
        await self._watch(set(), within=None)

    def _server_command(self) -> list[str]:
        """start-dev registers search attributes only on a new database: `run` adds any missing later."""
        return [
            str(BIN / "temporal"), "server", "start-dev",
            "--db-filename", str(self.stack.data_dir / "temporal.db"),
            *SQLITE_PRAGMAS,
            "--ip", self.stack.temporal_ip,
            "--port", str(self.stack.temporal_port),
            "--ui-port", str(self.stack.temporal_ui_port),
            "--namespace", NAMESPACE,
            "--log-level", "warn",
            *search_attributes.cli_flags(),
            *(["--ui-codec-endpoint", self.codec_url] if self.settings.payload_keys else []),
        ]  # fmt: skip

    @property
    def codec_url(self) -> str:
        """The HTTP service's codec endpoint as the UI's pages reach it: on `localhost` like the UI, so that the
        cookie /codec/login sets goes with the UI's requests (the same site)."""
        return f"http://localhost:{self.settings.http_port}/codec"

    @property
    def ui_url(self) -> str:
        """TEMPORAL_UI_URL when set (a proxy, another host name), else the dev server's UI on this machine."""
        if "temporal_ui_url" in self.settings.model_fields_set:
            return self.settings.temporal_ui_url.rstrip("/")
        return f"http://localhost:{self.stack.temporal_ui_port}"

    def _child_env(self) -> dict[str, str]:
        """The worker and the HTTP service talk to this stack's server, whatever the shell says.

        TEMPORAL_CONFIG_FILE=/dev/null hides temporal.toml profiles (a Cloud API key or TLS would
        not work against the local server); data goes under DATA_DIR unless set explicitly.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_API_KEY", "TEMPORAL_TLS"))}
        env.pop("TEMPORAL_PROFILE", None)
        env.update(
            TEMPORAL_ADDRESS=self.stack.temporal_target,
            TEMPORAL_NAMESPACE=NAMESPACE,
            TEMPORAL_CONFIG_FILE=os.devnull,
            TEMPORAL_UI_URL=self.ui_url,
        )
        for setting in DATA_FILES:
            env[setting.upper()] = str(self._path(setting))
        if "outbox_delivery" not in self.settings.model_fields_set:
            env["OUTBOX_DELIVERY"] = "true"  # a laptop has no accounts: chosen here, and the banner says so
        return env

    def _path(self, setting: str) -> Path:
        """A file of the stack's (DATA_FILES): as set, else under DATA_DIR."""
        if setting in self.settings.model_fields_set:
            return Path(getattr(self.settings, setting))
        return self.stack.data_dir / DATA_FILES[setting]

    async def _start(
        self, name: str, command: list[str], output: IO[bytes] | None = None, log_path: Path | None = None
    ) -> None:
        # A process group of its own: a terminal's Ctrl-C reaches only this launcher, which then
        # stops the children in order (services first, the server they depend on last).
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            env=self._child_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            process_group=0,
        )
        self.children.append(Child(name, process, log_path))

    async def _until(self, work: Awaitable[T], timeout_message: str) -> T:
        """`work`'s result, unless a stop signal arrives, a child exits or the startup timeout passes."""
        task = asyncio.ensure_future(work)
        try:
            done = await self._watch({task}, within=self.stack.startup_timeout)
        finally:
            task.cancel()
        if task not in done:
            raise StackError(f"{timeout_message} within {self.stack.startup_timeout:.0f} s")
        return task.result()

    async def _watch(self, others: Futures, within: float | None) -> Futures:
        """Waits for any of `others`; raises Stopped on a stop signal and StackError when a child exits."""
        stop: asyncio.Future[Any] = asyncio.ensure_future(self.stop_requested.wait())
        exits: dict[asyncio.Future[Any], Child] = {
            asyncio.ensure_future(child.process.wait()): child for child in self.children
        }
        try:
            done, _ = await asyncio.wait({stop, *exits, *others}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (stop, *exits):
                future.cancel()
        if stop in done:
            raise Stopped
        for future, child in exits.items():
            if future in done:
                where = f" (its log: {_shown(child.log)})" if child.log else ""
                raise StackError(f"the {child.name} exited with code {child.process.returncode}{where}")
        return {future for future in others if future in done}

    async def _connect(self) -> Client:
        while True:
            try:
                return await asyncio.wait_for(
                    Client.connect(self.stack.temporal_target, namespace=NAMESPACE), timeout=5
                )
            except (RuntimeError, TimeoutError):
                await asyncio.sleep(0.2)

    def _outbox(self) -> str:
        if self.settings.outbox_delivery or "outbox_delivery" not in self.settings.model_fields_set:
            where = _shown(self._path("outbox_path"))
            return f"{where}: what has no credential here goes there, not delivered (OUTBOX_DELIVERY=true)"
        return "off (OUTBOX_DELIVERY=false): a system the policy pages through needs its credential"

    @property
    def _http_url(self) -> str:
        host = "127.0.0.1" if self.settings.http_host in ("0.0.0.0", "") else self.settings.http_host
        return f"http://{host}:{self.settings.http_port}"

    async def _http_ready(self) -> None:
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self._http_url}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)

    def cli_env(self) -> dict[str, str]:
        """What incidentctl, run from this shell, must be told to reach this stack and link to its UI."""
        needed = {}
        if self.settings.temporal_address not in (self.stack.temporal_target, f"localhost:{self.stack.temporal_port}"):
            needed["TEMPORAL_ADDRESS"] = self.stack.temporal_target
        if self.settings.temporal_ui_url.rstrip("/") != self.ui_url:
            needed["TEMPORAL_UI_URL"] = self.ui_url
        if self.settings.tokens_path != self._path("tokens_path"):
            needed["TOKENS_PATH"] = str(self._path("tokens_path"))
        return needed

    def _banner(self) -> str:
        ctl = _shown(BIN / "incidentctl")
        tell = self.cli_env()
        if tell:
            ctl = f"{' '.join(f'{k}={v}' for k, v in tell.items())} {ctl}"
        return "\n".join(
            [
                "",
                "incident-orchestrator is running (Ctrl-C stops everything)",
                f"  Temporal UI     {self.ui_url}",
                f"  Temporal gRPC   {self.stack.temporal_target}  (namespace {NAMESPACE}, "
                f"task queue {self.settings.incident_task_queue})",
                f"  HTTP service    {self._http_url}",
                f"  data            {_shown(self.stack.data_dir)}  (server log: {_shown(self.server_log)})",
                f"  outbox          {self._outbox()}",
                "",
                "Fire a first alert:",
                "  curl -X POST -H 'Content-Type: application/json' "
                f"--data @examples/alertmanager.json {self._http_url}/alerts/alertmanager",
                "Your first token (an administrator issues one per person; README: Who can do what):",
                f"  {ctl} token issue alice --login",
                "Then list incidents and acknowledge one:",
                f"  {ctl} list",
                f"  {ctl} ack INC-… --as alice",
                *([f"(or put {', '.join(f'{k}={v}' for k, v in tell.items())} in .env)"] if tell else []),
                *self._encryption_lines(),
                "",
            ]
        )

    def _encryption_lines(self) -> list[str]:
        if self.settings.payload_keys is None:
            return ["", "Payloads are not encrypted (no PAYLOAD_KEYS): histories show them as they are."]
        if self.settings.codec_token is None:
            return ["", "Payloads are encrypted; set CODEC_TOKEN to let the UI decode them."]
        return [
            "",
            "Payloads are encrypted. To read them in the UI: sign in with CODEC_TOKEN at",
            f"  {self.codec_url}/login",
            "  then turn on 'Include cross-origin credentials' in the UI's codec server settings.",
        ]

    async def stop(self) -> None:
        """Stops the children in reverse order: the services first, the server they use last."""
        for child in reversed(self.children):
            await self._stop_child(child)

    async def _stop_child(self, child: Child) -> None:
        if child.process.returncode is not None:
            return
        # SIGINT, not SIGTERM: all three treat it as a graceful stop (Python's default SIGTERM does not).
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(child.process.wait(), self.stack.stop_timeout)
        except TimeoutError:
            print(f"stack: the {child.name} did not stop in {self.stack.stop_timeout:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Add the incident search attributes the namespace lacks; refuse one registered with another type."""
    response = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in search_attributes.ALL:
        wanted = IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}")
        registered = response.custom_attributes.get(key.name)
        if registered is None:
            missing[key.name] = wanted
        elif registered != wanted:
            raise StackError(
                f"search attribute {key.name} is registered as {IndexedValueType.Name(registered)}, "
                f"not {IndexedValueType.Name(wanted)}: use a new DATA_DIR, or remove it from namespace "
                f"{namespace} (temporal operator search-attribute delete --name {key.name})"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is under it, for copy-paste."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


async def _main() -> int:
    stack = Stack(StackSettings(), Settings())
    clash = port_clash(stack.stack, stack.settings)
    if clash:
        print(f"stack: nothing started: {clash}", file=sys.stderr, flush=True)
        return 1
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stack.stop_requested.set)
    try:
        await stack.run()
    except Stopped:
        print("stack: stopping", flush=True)
        return 0
    except StackError as err:
        print(f"stack: {err}; stopping the rest", file=sys.stderr, flush=True)
        return 1
    finally:
        await stack.stop()
    return 0


def main() -> None:
    sys.exit(asyncio.run(_main()))


if __name__ == "__main__":
    main()
