"""The worker started before Temporal: it says once that it waits and where, then polls once Temporal is up."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from settings import ROOT
from tests.conftest import BIN
from tests.signing import write_keys_file

pytestmark = pytest.mark.fault


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_worker(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "worker"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def until_logged(log: Path, text: str, within: float) -> None:
    deadline = time.monotonic() + within
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the worker never logged {text!r}: {log.read_text()}"
        await asyncio.sleep(0.1)


async def test_a_worker_started_before_temporal_waits_for_it(tmp_path: Path):
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("TEMPORAL_", "INCIDENT_"))}
    env |= {
        "PYTHONPATH": str(ROOT),
        "TEMPORAL_CONFIG_FILE": os.devnull,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "INCIDENT_TASK_QUEUE": "start-test",
        "OUTBOX_PATH": str(tmp_path / "outbox.jsonl"),
        "OUTBOX_DELIVERY": "true",
        "INCIDENT_LOG_DIR": str(tmp_path / "logs"),
        "DECISION_KEYS": str(write_keys_file(tmp_path / "decision-keys")),
        "LOG_LEVEL": "INFO",
    }
    log = tmp_path / "worker.log"
    worker = start_worker(env, tmp_path, log)
    try:
        await until_logged(log, f"waiting for Temporal at 127.0.0.1:{port}", within=30)
        await asyncio.sleep(3)  # a few retries later
        assert worker.poll() is None, log.read_text()
        server = await WorkflowEnvironment.start_local(
            port=port, dev_server_existing_path=str(BIN / "temporal"), data_converter=pydantic_data_converter
        )
        try:
            await until_logged(log, "worker polling task queue start-test", within=60)
            assert worker.poll() is None, log.read_text()
        finally:
            worker.send_signal(signal.SIGINT)
            await asyncio.to_thread(worker.wait, 15)
            await server.shutdown()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = log.read_text()
    assert text.count("waiting for Temporal") == 1, text
    assert "Traceback" not in text, text
    assert worker.returncode == 0, text
