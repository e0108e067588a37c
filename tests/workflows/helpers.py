"""Helpers for workflow tests: a policy to vary, an incident to open, the outbox to read."""

from __future__ import annotations

import uuid
from datetime import time, timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.outbox import Outbox
from policy_file import load_policy
from settings import ROOT, Settings
from tests.conftest import run_under
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import AlertStatus, Severity
from workflows.incident.inputs import IncidentInput
from workflows.incident.model import AlertEvent, IncidentState
from workflows.incident.workflow import IncidentWorkflow


def always_business_hours(policy: Policy) -> Policy:
    """The example policy, with business hours around the clock so tests do not depend on the day."""
    hours = policy.business_hours.model_copy(
        update={"days": list(range(7)), "start": time(0, 0), "end": time(23, 59, 59)}
    )
    return policy.model_copy(update={"business_hours": hours})


def make_policy(business_incidents: bool = False, **changes: Any) -> Policy:
    """The example policy around the clock; SEV1 starts no message loop unless asked."""
    policy = always_business_hours(load_policy(ROOT / "examples" / "policy.toml"))
    if not business_incidents:
        changes.setdefault("comms", policy.comms.model_copy(update={"auto_trigger_severities": []}))
    return policy.model_copy(update=changes)


def alert(
    title: str = "Checkout is failing",
    severity: Severity | None = Severity.SEV2,
    status: AlertStatus = AlertStatus.FIRING,
    fingerprint: str = "fp1",
    key: str = "",
    **labels: str,
) -> AlertEvent:
    return AlertEvent(
        source="test",
        dedup_key=key or "group-1",
        fingerprint=fingerprint,
        status=status,
        title=title,
        severity=severity,
        service="checkout",
        labels=labels,
    )


async def open_incident(
    env: WorkflowEnvironment,
    settings: Settings,
    policy: Policy,
    first: AlertEvent | None = None,
    history_limit: int = 5000,
) -> WorkflowHandle[IncidentWorkflow, IncidentState]:
    incident_id = f"INC-{uuid.uuid4().hex[:8].upper()}"
    return await env.client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(incident_id=incident_id, policy=run_under(settings, policy), history_limit=history_limit),
        id=incident_id,
        task_queue=settings.incident_task_queue,
        start_signal="alert",
        start_signal_args=[first or alert()],
        memo={"title": (first or alert()).title},
        execution_timeout=timedelta(days=60),
    )


def outbox(settings: Settings, system: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in Outbox(settings.outbox_path).read()
        if (system is None or e["system"] == system) and (kind is None or e["kind"] == kind)
    ]


def texts(settings: Settings, system: str | None = None, kind: str | None = None) -> list[str]:
    """Every text delivered (to one system, of one kind), in order."""
    return [e["payload"].get("text", "") for e in outbox(settings, system, kind)]


async def state(handle: WorkflowHandle[IncidentWorkflow, IncidentState]) -> IncidentState:
    return await handle.query(IncidentWorkflow.state)


def timeline(s: IncidentState, kind: str | None = None) -> list[str]:
    return [e.text for e in s.timeline if kind is None or e.kind == kind]
