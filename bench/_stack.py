"""The production-shaped stack the benchmarks drive: a Temporal dev server, and the worker and the HTTP
service as processes of their own (as `make run` and production run them).

Shared by bench.ingest and bench.storm. Everything listens on loopback. The children import the same
source tree as the benchmark that starts them (PYTHONPATH), and see none of the shell's settings: every
delivery goes to the run's own outbox, never to a real account.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from settings import ROOT, Settings, free_temporal
from workflows.contracts.temporal import search_attributes

BIN = Path(sys.executable).parent
STOP_SECONDS = 15
Children = dict[str, subprocess.Popen[bytes]]  # module -> its process


# The worker's cache and concurrency a bench may set (flag -> setting); the shell's WORKER_* never reach it.
WORKER_SETTINGS = {
    "cached_workflows": "worker_cached_workflows",
    "workflow_tasks": "worker_workflow_tasks",
    "activities": "worker_activities",
}


def add_worker_flags(parser: argparse.ArgumentParser) -> None:
    """--cached-workflows, --workflow-tasks, --activities: the worker's settings for this run."""
    for flag, setting in WORKER_SETTINGS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", type=int, help=f"{setting.upper()} for the worker")


def chosen_worker_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """The worker settings the flags set, as environment variables (refused unless positive)."""
    if any(getattr(args, flag) is not None and getattr(args, flag) < 1 for flag in WORKER_SETTINGS):
        parser.error("--cached-workflows, --workflow-tasks and --activities must be positive")
    return {
        setting.upper(): str(getattr(args, flag))
        for flag, setting in WORKER_SETTINGS.items()
        if getattr(args, flag) is not None
    }


def worker_settings_in_effect(chosen: dict[str, str]) -> str:
    """ "WORKER_CACHED_WORKFLOWS=1000 (default), WORKER_WORKFLOW_TASKS=20, ..." for the bench's output."""
    return ", ".join(
        f"{name.upper()}={chosen.get(name.upper(), Settings.model_fields[name].default)}"
        f"{'' if name.upper() in chosen else ' (default)'}"
        for name in WORKER_SETTINGS.values()
    )


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(
    client: Client, *, task_queue: str, data: Path, http_port: int, log_level: str = "WARNING", **extra: str
) -> dict[str, str]:
    """The worker's and the HTTP service's environment: this run's server, task queue, outbox and port.

    The shell's settings (account keys, tokens, TEMPORAL_* profiles) are left out, so nothing leaves
    the machine; children run in `data`, so no `.env` is read either.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in Settings.model_fields and not name.startswith("TEMPORAL_")
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        TEMPORAL_CONFIG_FILE=os.devnull,
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=client.namespace,
        INCIDENT_TASK_QUEUE=task_queue,
        OUTBOX_PATH=str(data / "outbox.jsonl"),
        OUTBOX_DELIVERY="true",  # no accounts: every delivery goes to the outbox, by choice
        INCIDENT_LOG_DIR=str(data / "logs"),
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(http_port),
        LOG_LEVEL=log_level,
        **extra,
    )
    return env


@contextlib.contextmanager
def processes(env: dict[str, str], *modules: str, cwd: Path | None = None) -> Iterator[Children]:
    """`python -m MODULE` for each module, stopped (SIGINT, then kill) when the block ends, however it ends."""
    started: Children = {}
    try:
        for module in modules:
            started[module] = subprocess.Popen(
                [sys.executable, "-m", module], env=env, cwd=cwd, stdin=subprocess.DEVNULL
            )
        yield started
    finally:
        for process in started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_SECONDS
        for process in started.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def imported_from(env: dict[str, str], module: str, cwd: Path | None = None) -> str:
    """Which file `module` is in for a child started with `env` (which tree the worker runs)."""
    return subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(m.__file__)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def exited(children: Children) -> str:
    """Which children have exited, and how ("" while all run)."""
    return ", ".join(
        f"{module} exited with {child.returncode}" for module, child in children.items() if child.poll() is not None
    )


async def wait_until_healthy(url: str, seconds: float = 30, children: Children | None = None) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(trust_env=False) as http:
        while True:
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if children and (gone := exited(children)):
                raise SystemExit(f"bench: {gone} before the HTTP service came up")
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the HTTP service at {url} did not come up in {seconds:.0f} s")
            await asyncio.sleep(0.2)


async def temporal(address: str | None) -> tuple[Client, WorkflowEnvironment | None]:
    """A client of `address` (loopback only), or of a dev server started from the venv (shut it down after)."""
    if address:
        host = address.rsplit(":", 1)[0]
        if host != "localhost" and not ipaddress.ip_address(host.strip("[]")).is_loopback:
            raise SystemExit("bench: --address must be on loopback")
        return await Client.connect(address, data_converter=pydantic_data_converter), None
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=search_attributes.ALL,
        ui=False,
    )
    return env.client, env


def run_to_exit(bench: Coroutine[Any, Any, int]) -> NoReturn:
    """Run a bench to its exit code; Ctrl-C or SIGTERM stops it (130) with its processes."""
    try:
        code = asyncio.run(bench)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: stopped")
        code = 130
    free_temporal()
    raise SystemExit(code)
