"""Shared fixtures: the real Temporal dev server and time-skipping test server, both from the venv."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from policy_file import load_policy
from settings import ROOT, Settings
from tests.signing import SIGNING
from workflows.contracts import policy
from workflows.contracts.policy import Policy
from workflows.contracts.temporal import search_attributes

BIN = Path(sys.executable).parent

# The workers the tests build run every workflow in the SDK's sandbox, which refuses a nondeterministic
# call; production runs without it (settings.worker_sandbox).
os.environ["WORKER_SANDBOX"] = "true"


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """`temporal server start-dev` (in memory) with the incident search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=search_attributes.ALL,
        interceptors=[SIGNING],
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of the test's own: hours of incident in seconds.

    It skips time for every workflow on it, so tests do not share one: a finished test's timers (or an
    activity cut off by its worker's shutdown) would hold the next test's clock back. It starts in
    about 0.1 s.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
        interceptors=[SIGNING],
    )
    await search_attributes.register(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(tmp_path: Path, task_queue: str) -> Settings:
    return scratch_settings(tmp_path, task_queue)


def scratch_settings(scratch: Path, task_queue: str) -> Settings:
    """Nothing configured: every delivery lands in an outbox under `scratch`. The policy file is a copy of the
    example policy there: a worker runs only what its file held (own_policy.py), so a test that varies the
    policy writes it there first (`run_under`)."""
    policy_file = scratch / "policy.json"
    policy_file.write_text(load_policy(ROOT / "examples" / "policy.toml").model_dump_json())
    return Settings(
        _env_file=None,
        incident_task_queue=task_queue,
        outbox_path=scratch / "outbox.jsonl",
        incident_log_dir=scratch / "logs",
        decision_signing_key=scratch / "decision-signing-key.pem",
        decision_keys=scratch / "decision-keys",
        tokens_path=scratch / "tokens.json",
        ack_link_key=scratch / "ack-link-key",
        incident_policy=policy_file,
    )


def run_under(settings: Settings, policy: Policy) -> Policy:
    """Make `policy` the workers' own, as an operator does: write it to their policy file (a scratch copy,
    never one of the repository's)."""
    assert not settings.incident_policy.resolve().is_relative_to(ROOT), f"{settings.incident_policy} is not scratch"
    settings.incident_policy.write_text(policy.model_dump_json())
    return policy


@pytest.fixture
def example_policy() -> Policy:
    return load_policy(ROOT / "examples" / "policy.toml")


@pytest.fixture(autouse=True)
def shared_policies_unchanged() -> Iterator[None]:
    """Workflows share one decoded copy of a policy (Policy._one_copy). Frozen models refuse assignment but
    not a change to a list or dict inside; after every test, each shared copy must still be what it decoded."""
    yield
    with policy._decoding:
        shared = list(policy._decoded.items())
    for text, decoded in shared:
        assert decoded == Policy.model_validate(json.loads(text)), "a workflow changed the policy it shares"
