"""An activity context like a worker gives one: an attempt number and a start_to_close_timeout."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from workflows.contracts.activity_io import DirectMessage


def attempt(number: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=number, start_to_close_timeout=timedelta(seconds=10))
    return env


def in_workflow(workflow_id: str = "INC-7F3K") -> ActivityEnvironment:
    """An attempt of an activity that the workflow `workflow_id` asked for (its callbacks name it)."""
    env = attempt()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id)
    return env


def direct_message(address: str, step: str = "m1", **fields: Any) -> DirectMessage:
    """A page to bob about INC-7F3K on one contact method (`step` of his rules), the alert's text with markup in it."""
    return DirectMessage(
        incident_id="INC-7F3K",
        person="bob",
        address=address,
        title="INC-7F3K: checkout is failing",
        text="[SEV1] INC-7F3K: checkout <is> failing & needs an acknowledgement",
        idempotency_key=f"INC-7F3K@1:escalation:r1:l0:t1:{step}:bob",
        **fields,
    )
