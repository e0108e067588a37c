"""Seed 000's order, page first, held at the wire: a peer in an outage delays only its own duty.

A real worker and the dev server (real time) against fake Slack, Zoom and OpsGenie; the time-skipping
server for the ladder, whose tiers wait minutes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.fakes.paging import FakeOpsGenie
from tests.fakes.slack import FakeSlack
from tests.fakes.zoom import FakeZoom
from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state, timeline
from worker import build_worker
from workflows.contracts.vocabulary import Channel, Severity
from workflows.incident.model import Acknowledge

OUTAGE = "<html><body><h1>503 Service Unavailable</h1></body></html>"


async def until(condition: Callable[[], bool], *, within: float = 60) -> None:
    """Wait for a condition of what the peers received; `within` only stops a broken build from hanging."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def test_seed000_slack_and_zoom_down_the_first_page_leaves_within_seconds(
    dev_env: WorkflowEnvironment, settings: Settings, slack: FakeSlack, zoom: FakeZoom, opsgenie: FakeOpsGenie
):
    slack.fail("/api/", 503, OUTAGE, times=10**6)
    zoom.fail("/", 503, OUTAGE, times=10**6)
    configured = opsgenie.configure(zoom.configure(slack.configure(settings)))
    async with build_worker(dev_env.client, configured):
        started = time.monotonic()
        zoom_per_incident = make_policy(response=make_policy().response.model_copy(update={"conference": "zoom"}))
        handle = await open_incident(dev_env, configured, zoom_per_incident, alert(severity=Severity.SEV1))
        await until(lambda: bool(opsgenie.calls("/v2/alerts")))
        paged_after = time.monotonic() - started
        await until(lambda: len(slack.calls("/api/")) > 2 and bool(zoom.received))  # both are being retried
        s = await state(handle)
        await handle.terminate("test over")
    # Before the duties ran side by side, the page waited for Zoom's and Slack's retries: over 60 s.
    assert paged_after < 10, f"the first page left {paged_after:.1f} s after the alert"
    assert s.escalation_active and not s.channel


async def test_seed002_acknowledgement_during_an_email_outage_stops_the_ladder(
    ts_env: WorkflowEnvironment, settings: Settings
):
    with socket.socket() as closed:  # a port nobody listens on: every e-mail fails and is retried for an hour
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    email_down = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": dead_port,
            "smtp_starttls": False,
            "email_from": "incidents@example.com",
        }
    )
    policy = make_policy()
    every_tier_emails = [
        tier.model_copy(update={"channels": [*tier.channels, Channel.EMAIL]}) for tier in policy.escalation.tiers
    ]
    policy = policy.model_copy(update={"escalation": policy.escalation.model_copy(update={"tiers": every_tier_emails})})
    async with build_worker(ts_env.client, email_down):
        handle = await open_incident(ts_env, email_down, policy, alert(severity=Severity.SEV1))
        await ts_env.sleep(timedelta(minutes=1))
        await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
        await ts_env.sleep(timedelta(minutes=20))
        s = await state(handle)
    assert not s.escalation_active
    assert any("Escalation stopped: acknowledged by bob" in t for t in timeline(s, "escalation"))
    tier2 = [p for p in outbox(email_down, "opsgenie", "page") if p["payload"]["responders"] == ["oleh@example.com"]]
    assert tier2 == [], "tier 2 was paged after the acknowledgement"
    assert len(outbox(email_down, "opsgenie", "acknowledge")) == 1
