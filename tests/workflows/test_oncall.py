"""Overrides, heartbeats and maintenance windows on the time-skipping server, with the real worker: what
the pager received, and what the incidents and the on-call workflows say when queried."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client import oncall as oncall_client
from client.windows import WindowCache
from settings import ROOT, Settings
from starter.http.app import create_app
from tests.conftest import run_under
from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state, timeline
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import SILENCES_ID, heartbeat_workflow_id, incident_id_for
from workflows.contracts.vocabulary import AlertStatus, Severity, Status
from workflows.incident.model import AlertEvent, IncidentState
from workflows.incident.workflow import IncidentWorkflow
from workflows.oncall.heartbeats import HeartbeatWorkflow
from workflows.oncall.model import (
    AddOverride,
    AddSilence,
    Beat,
    ExpireSilence,
    Heartbeat,
    HeartbeatInput,
    SilencesInput,
)
from workflows.oncall.silences import SilencesWorkflow


def paged(settings: Settings) -> list[tuple[str, list[str]]]:
    """(step key, responders) of every page, in order."""
    return [(e["key"].split(":", 2)[-1], e["payload"]["responders"]) for e in outbox(settings, "opsgenie", "page")]


def with_schedule(policy: Policy) -> Policy:
    raw = policy.model_dump(mode="json")
    raw["schedules"] = {"primary": {"layers": [{"members": ["bob", "alice"], "rotation": "weekly"}]}}
    raw["escalation"]["tiers"] = [
        {"notify": ["schedule:primary"], "channels": ["page"], "wait_minutes": 5},
        {"notify": ["schedule:primary"], "channels": ["page"], "wait_minutes": 10},
    ]
    return Policy.model_validate(raw)


async def until(env: WorkflowEnvironment, condition, step: timedelta = timedelta(seconds=5), tries: int = 60) -> None:
    """Wait for a condition of queried state, moving the test server's clock a little at a time."""
    for _ in range(tries):
        if await condition():
            return
        await env.sleep(step)
    raise AssertionError("condition never held")


async def test_override_takes_effect_on_a_ladder_already_running(ts_env, settings, worker) -> None:
    policy = with_schedule(make_policy())
    handle = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV1))
    await until(ts_env, lambda: _async(bool(paged(settings))))
    first = paged(settings)[0][1]
    assert first in (["bob@example.com"], ["alice@example.com"])
    now = await ts_env.get_current_time()
    await oncall_client.add_override(
        ts_env.client,
        settings.incident_task_queue,
        policy,
        "primary",
        AddOverride(who="oleh", start=now, end=now + timedelta(hours=2), by="alice", reason="bob is ill"),
    )
    await ts_env.sleep(timedelta(minutes=6))  # tier 1 waits 5 minutes; tier 2 is paged from the schedule again
    await until(ts_env, lambda: _async(len(paged(settings)) >= 2))
    assert [p for _, p in paged(settings)] == [first, ["oleh@example.com"]]
    assert any("tier 2" in t for t in timeline(await state(handle), "page"))


async def test_override_is_refused_when_it_ends_before_it_starts(ts_env, settings, worker) -> None:
    now = await ts_env.get_current_time()
    with pytest.raises(oncall_client.OnCallRefused, match="must end after it starts"):
        await oncall_client.add_override(
            ts_env.client,
            settings.incident_task_queue,
            make_policy(),
            "primary",
            AddOverride(who="oleh", start=now, end=now, by="alice"),
        )


# --- heartbeats ----------------------------------------------------------------------------------

HEARTBEAT = Heartbeat(interval_minutes=60, grace_minutes=10, severity=Severity.SEV2, service="checkout")


@pytest.fixture
def heartbeat_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The worker's policy file: SEV2 is confirmed at once and resolves itself when its alerts resolve; it
    declares the heartbeats the tests beat."""
    text = (ROOT / "examples" / "policy.toml").read_text()
    text = text.replace(
        'auto_confirm_severities = ["SEV1"]',
        'auto_confirm_severities = ["SEV1", "SEV2"]\nauto_resolve_severities = ["SEV2"]',
    )
    for name in ("backup", "cron"):  # HEARTBEAT, as the policy file declares it
        text += f"\n[heartbeats.{name}]\ninterval_minutes = 60\ngrace_minutes = 10\n"
        text += 'severity = "SEV2"\nservice = "checkout"\n'
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return settings.model_copy(update={"incident_policy": path})


async def test_missed_heartbeat_opens_incident_at_interval_plus_grace_and_a_resumed_beat_resolves_it(
    ts_env, heartbeat_settings
) -> None:
    settings = heartbeat_settings
    client, queue = ts_env.client, settings.incident_task_queue
    incident = client.get_workflow_handle(incident_id_for("heartbeat", "backup"), result_type=IncidentState)
    async with build_worker(client, settings):
        await oncall_client.beat(client, queue, "backup", HEARTBEAT)
        beaten = (await oncall_client.heartbeat_state(client, "backup")).last_beat
        await ts_env.sleep(timedelta(minutes=69))
        assert (await oncall_client.heartbeat_state(client, "backup")).missed_since is None
        assert not await _exists(client, incident.id)
        await ts_env.sleep(timedelta(minutes=2))
        await until(ts_env, lambda: _exists(client, incident.id), step=timedelta(seconds=1))
        missed = (await oncall_client.heartbeat_state(client, "backup")).missed_since
        assert beaten and missed and abs(missed - beaten - timedelta(minutes=70)) < timedelta(seconds=1)
        s = await incident.query(IncidentWorkflow.state)
        assert s.severity is Severity.SEV2 and s.service == "checkout" and s.status is Status.OPEN
        await until(ts_env, lambda: _async(bool(paged(settings))))

        await oncall_client.beat(client, queue, "backup", HEARTBEAT)
        await until(ts_env, lambda: _status(incident, Status.RESOLVED), step=timedelta(seconds=1))
        assert (await oncall_client.heartbeat_state(client, "backup")).missed_since is None


async def test_heartbeat_continues_as_new_with_its_count_and_deadline(ts_env, heartbeat_settings) -> None:
    client, queue = ts_env.client, heartbeat_settings.incident_task_queue
    async with build_worker(client, heartbeat_settings):
        handle = await client.start_workflow(
            HeartbeatWorkflow.run,
            HeartbeatInput(name="cron", heartbeat=HEARTBEAT, history_limit=40),
            id=heartbeat_workflow_id("cron"),
            task_queue=queue,
            start_signal="beat",
            start_signal_args=[Beat(name="cron", heartbeat=HEARTBEAT)],
        )
        for _ in range(15):
            await ts_env.sleep(timedelta(minutes=10))
            await oncall_client.beat(client, queue, "cron", HEARTBEAT)
        assert (await client.get_workflow_handle(handle.id).describe()).run_id != handle.result_run_id
        state = await oncall_client.heartbeat_state(client, "cron")
        assert (
            state.beats == 16 and state.last_beat is not None and state.due == state.last_beat + timedelta(minutes=70)
        )
        await ts_env.sleep(timedelta(minutes=71))
        await until(ts_env, lambda: _exists(client, incident_id_for("heartbeat", "cron")), step=timedelta(seconds=1))


def rewrite_heartbeats(settings: Settings, **declared: str) -> None:
    """Change the worker's policy file: each heartbeat's TOML body, or "" to declare it no longer."""
    path = Path(settings.incident_policy)
    text = path.read_text().split("\n[heartbeats.backup]")[0]
    text += "".join(f"\n[heartbeats.{name}]\n{body}\n" for name, body in declared.items() if body)
    path.write_text(text)


async def test_a_heartbeat_the_policy_no_longer_declares_stops_and_a_longer_interval_moves_its_deadline(
    ts_env, heartbeat_settings
) -> None:
    settings = heartbeat_settings
    client, queue = ts_env.client, settings.incident_task_queue
    async with build_worker(client, settings):
        await oncall_client.beat(client, queue, "backup", HEARTBEAT)
        await oncall_client.beat(client, queue, "cron", HEARTBEAT)
        rewrite_heartbeats(settings, backup='interval_minutes = 180\nseverity = "SEV2"\nservice = "checkout"')
        await ts_env.sleep(timedelta(minutes=100))
        assert not await _exists(client, incident_id_for("heartbeat", "backup")), "due at 180 min now"
        assert not await _exists(client, incident_id_for("heartbeat", "cron")), "cron is no longer declared"
        assert (await client.get_workflow_handle(heartbeat_workflow_id("cron")).describe()).status.name == "COMPLETED"
        await ts_env.sleep(timedelta(minutes=81))
        await until(ts_env, lambda: _exists(client, incident_id_for("heartbeat", "backup")), step=timedelta(seconds=1))


async def test_a_policy_file_that_fails_to_load_delays_the_miss_and_fails_nothing(ts_env, heartbeat_settings) -> None:
    settings = heartbeat_settings
    client, queue = ts_env.client, settings.incident_task_queue
    good = Path(settings.incident_policy).read_text()
    async with build_worker(client, settings):
        await oncall_client.beat(client, queue, "backup", HEARTBEAT)
        Path(settings.incident_policy).write_text(good + "\n[[[ an edit half done\n")
        await ts_env.sleep(timedelta(minutes=75))
        watch = await client.get_workflow_handle(heartbeat_workflow_id("backup")).describe()
        assert watch.status.name == "RUNNING", "the heartbeat's workflow waits for the file"
        Path(settings.incident_policy).write_text(good)
        await until(ts_env, lambda: _exists(client, incident_id_for("heartbeat", "backup")), step=timedelta(seconds=5))


async def test_a_beat_arriving_while_the_miss_is_sent_resolves_it(ts_env, heartbeat_settings) -> None:
    settings = heartbeat_settings
    client, queue = ts_env.client, settings.incident_task_queue
    incident = client.get_workflow_handle(incident_id_for("heartbeat", "backup"), result_type=IncidentState)
    # The maintenance windows are held by a workflow whose worker has gone: reading them, the miss's alert takes
    # seconds (the query's timeout), and the beat lands meanwhile.
    gone = f"gone-{queue}"
    async with Worker(client, task_queue=gone, workflows=[SilencesWorkflow]):
        windows = await client.start_workflow(SilencesWorkflow.run, SilencesInput(), id=SILENCES_ID, task_queue=gone)
        await windows.query(SilencesWorkflow.active)
    async with build_worker(client, settings):
        await oncall_client.beat(client, queue, "backup", HEARTBEAT)
        await ts_env.sleep(timedelta(minutes=70))
        await until(ts_env, lambda: _missed(client, "backup"), step=timedelta(milliseconds=200))
        await oncall_client.beat(client, queue, "backup", HEARTBEAT)  # while the miss is being sent
        await until(ts_env, lambda: _exists(client, incident.id), step=timedelta(seconds=1))
        await until(ts_env, lambda: _status(incident, Status.RESOLVED), step=timedelta(seconds=1))
        assert (await oncall_client.heartbeat_state(client, "backup")).missed_since is None


async def _missed(client: Client, name: str) -> bool:
    return (await oncall_client.heartbeat_state(client, name)).missed_since is not None


async def test_steady_heartbeat_opens_nothing(ts_env, settings, worker) -> None:
    for _ in range(5):
        await oncall_client.beat(ts_env.client, settings.incident_task_queue, "backup", HEARTBEAT)
        await ts_env.sleep(timedelta(minutes=65))
    assert not await _exists(ts_env.client, incident_id_for("heartbeat", "backup"))
    assert (await oncall_client.heartbeat_state(ts_env.client, "backup")).beats == 5


# --- maintenance windows ---------------------------------------------------------------------------


async def _window(env: WorkflowEnvironment, settings: Settings, minutes: int, **matchers: str):
    now = await env.get_current_time()
    return await oncall_client.add_silence(
        env.client,
        settings.incident_task_queue,
        make_policy(),
        AddSilence(
            service="checkout",
            matchers=matchers,
            until=now + timedelta(minutes=minutes),
            reason="db upgrade",
            by="alice",
        ),
        now,
    )


async def arriving(env: WorkflowEnvironment, event: AlertEvent) -> AlertEvent:
    """The alert as the HTTP service records it: marked with the window it falls in."""
    windows = WindowCache(ttl=timedelta(0))
    (marked,) = await windows.mark(env.client, make_policy(), [event], await env.get_current_time())
    return marked


async def test_alert_inside_a_window_pages_nobody_and_still_firing_at_its_end_pages(ts_env, settings, worker):
    await _window(ts_env, settings, 30)
    handle = await open_incident(ts_env, settings, make_policy(), await arriving(ts_env, alert(severity=Severity.SEV1)))
    await ts_env.sleep(timedelta(minutes=29))
    s = await state(handle)
    assert paged(settings) == [] and not s.confirmed
    assert any("Inside maintenance window S1 (db upgrade)" in t for t in timeline(s, "silenced"))
    assert timeline(s, "alert"), "the alert is recorded on its incident"
    await ts_env.sleep(timedelta(minutes=2))
    await until(ts_env, lambda: _async(bool(paged(settings))))
    s = await state(handle)
    assert s.confirmed and any("still fires" in t for t in timeline(s, "silenced"))


async def test_the_http_service_marks_alerts_inside_a_window_and_their_incident_pages_nobody(
    ts_env, settings, worker
) -> None:
    await _window(ts_env, settings, 30)
    app = create_app(settings, client=ts_env.client, policy=run_under(settings, make_policy()))
    body = {"dedup_key": "db", "title": "Checkout DB down", "severity": "SEV1", "service": "checkout"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http:
        answer = await http.post("/alerts/generic", json=body)
    assert answer.status_code == 202
    incident = ts_env.client.get_workflow_handle(answer.json()["incidents"][0])
    await ts_env.sleep(timedelta(minutes=1))
    s = await incident.query(IncidentWorkflow.state)
    assert s.silence is not None and s.silence.reason == "db upgrade" and not s.confirmed
    assert paged(settings) == []


async def test_alert_that_clears_inside_the_window_pages_nobody_ever(ts_env, settings, worker):
    await _window(ts_env, settings, 30)
    handle = await open_incident(ts_env, settings, make_policy(), await arriving(ts_env, alert(severity=Severity.SEV1)))
    await ts_env.sleep(timedelta(minutes=10))
    await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV1, status=AlertStatus.RESOLVED))
    await until(ts_env, lambda: _status(handle, Status.CLOSED))
    await ts_env.sleep(timedelta(minutes=30))
    assert paged(settings) == []


async def test_expiring_a_window_early_pages_at_once_and_other_services_are_not_silenced(ts_env, settings, worker):
    window = await _window(ts_env, settings, 120, region="eu")
    us = await arriving(ts_env, alert(severity=Severity.SEV1, key="g2", region="us"))
    other = await open_incident(ts_env, settings, make_policy(), us)
    await until(ts_env, lambda: _async(bool(paged(settings))))
    assert (await state(other)).confirmed, "a label outside the matchers is not silenced"
    eu = await arriving(ts_env, alert(severity=Severity.SEV1, region="eu"))
    handle = await open_incident(ts_env, settings, make_policy(), eu)
    await ts_env.sleep(timedelta(minutes=5))
    assert not (await state(handle)).confirmed
    await oncall_client.expire_silence(
        ts_env.client, settings.incident_task_queue, ExpireSilence(silence_id=window.silence_id, by="alice")
    )
    await until(ts_env, lambda: _confirmed(handle), step=timedelta(seconds=1))
    assert any("expired by alice" in t for t in timeline(await state(handle), "silenced"))
    assert await oncall_client.silences(ts_env.client) == []
    with pytest.raises(oncall_client.OnCallRefused, match="no active maintenance window S1; active: none"):
        await oncall_client.expire_silence(ts_env.client, settings.incident_task_queue, ExpireSilence(silence_id="S1"))


async def test_a_window_expired_before_its_incident_asked_to_be_held_releases_it_at_once(ts_env, settings, worker):
    window = await _window(ts_env, settings, 60)
    marked = await arriving(ts_env, alert(severity=Severity.SEV1))  # as the HTTP service's cache still has it
    await oncall_client.expire_silence(
        ts_env.client, settings.incident_task_queue, ExpireSilence(silence_id=window.silence_id, by="alice")
    )
    handle = await open_incident(ts_env, settings, make_policy(), marked)
    # In real time, up to 2 min on a busy machine: the clock moves no faster than the hold, the lift and the page.
    for _ in range(600):
        if await _confirmed(handle):
            break
        await asyncio.sleep(0.2)
    s = await state(handle)
    [confirmed_at] = [e.at for e in s.timeline if e.kind == "confirmed"]
    assert confirmed_at - s.opened_at < timedelta(minutes=5), "paged at once, not at the window's original end"


async def test_expiring_one_window_keeps_an_incident_a_later_window_still_covers(ts_env, settings, worker):
    short = await _window(ts_env, settings, 30, region="eu")
    await _window(ts_env, settings, 120, zone="a")
    handle = await open_incident(
        ts_env, settings, make_policy(), await arriving(ts_env, alert(severity=Severity.SEV1, region="eu"))
    )
    later = await arriving(ts_env, alert(severity=Severity.SEV1, fingerprint="fp2", zone="a"))
    await handle.signal(IncidentWorkflow.alert, later)
    await ts_env.sleep(timedelta(minutes=1))
    await oncall_client.expire_silence(
        ts_env.client, settings.incident_task_queue, ExpireSilence(silence_id=short.silence_id, by="alice")
    )
    await ts_env.sleep(timedelta(minutes=60))
    assert not (await state(handle)).confirmed and paged(settings) == [], "S2 still covers it"
    await ts_env.sleep(timedelta(minutes=61))
    await until(ts_env, lambda: _confirmed(handle))


async def test_an_alert_released_by_a_windows_end_is_assessed_as_arriving_then(ts_env, settings, worker):
    await _window(ts_env, settings, 30)
    handle = await open_incident(ts_env, settings, make_policy(), await arriving(ts_env, alert(severity=Severity.SEV3)))
    await ts_env.sleep(timedelta(minutes=31))
    s = await state(handle)
    assert not s.confirmed and paged(settings) == [], "its 15 minutes to be assessed start at the window's end"
    assert s.assessment_requested
    await ts_env.sleep(timedelta(minutes=15))
    await until(ts_env, lambda: _confirmed(handle))
    assert paged(settings)


async def _async(value: bool) -> bool:
    return value


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return True


async def _status(handle, status: Status) -> bool:
    return (await handle.query(IncidentWorkflow.state)).status is status


async def _confirmed(handle) -> bool:
    return (await handle.query(IncidentWorkflow.state)).confirmed
