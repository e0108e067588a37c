"""Trust (README, "Who can do what"): a person proves who they are with their own credential, the HTTP service
sets the decision's person from it and signs the decision, and a workflow takes only decisions it can verify.

Against the dev server: the HTTP API (in-process), and a client with namespace access but without the service's
key, as the Temporal UI or `temporal workflow update|signal` would send.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.client import (
    Client,
    DescribeWorkflowInput,
    Interceptor,
    OutboundInterceptor,
    WorkflowExecutionDescription,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment

from client import oncall as oncall_client
from client.alerts import manual_alert, send_alert
from client.decide import query_state
from settings import Settings
from starter.tokens import TokenStore
from tests.signing import SIGNER, SIGNING, unsigned
from tests.workflows.helpers import alert, make_policy, open_incident
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import IncidentKind, Severity
from workflows.incident.model import Acknowledge, Classify, IncidentState, ProgressNote
from workflows.oncall.model import AddSilence


def token(settings: Settings, person: str, *, valid_for: timedelta = timedelta(days=1)) -> str:
    return TokenStore(settings.tokens_path).issue(person, valid_for, datetime.now(UTC))[1]


async def opened(dev_env: WorkflowEnvironment, settings: Settings, policy: Policy) -> str:
    event = manual_alert("Checkout is failing", "alice", severity=Severity.SEV2, service="checkout")
    await send_alert(dev_env.client, settings, policy, event)
    return incident_id_for(event.source, event.dedup_key)


async def state(dev_env: WorkflowEnvironment, incident_id: str) -> IncidentState:
    return await query_state(dev_env.client, incident_id)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


def ack(
    http: httpx.AsyncClient, incident_id: str, body: dict[str, str], credential: str | None
) -> Awaitable[httpx.Response]:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    return http.post(f"/api/incidents/{incident_id}/decisions/acknowledge", json=body, headers=headers)


async def test_the_person_comes_from_the_credential(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> None:
    incident_id = await opened(dev_env, settings, example_policy)
    answer = await ack(http, incident_id, {"note": "on it"}, token(settings, "bob"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": f"{incident_id} acknowledged by bob: on it"}
    assert (await state(dev_env, incident_id)).acknowledged_by == "bob"


async def test_a_decision_in_another_persons_name_with_ones_own_credential_is_refused(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> None:
    incident_id = await opened(dev_env, settings, example_policy)
    answer = await ack(http, incident_id, {"actor": "carol"}, token(settings, "bob"))
    assert answer.status_code == 403
    assert answer.json()["error"] == "you are bob by your credential; a decision as carol needs carol's own credential"
    assert (await state(dev_env, incident_id)).acknowledged_by is None


async def test_a_decision_without_a_credential_is_refused(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> None:
    incident_id = await opened(dev_env, settings, example_policy)
    for credential in (None, "ioc_T1_not-a-token"):
        answer = await ack(http, incident_id, {"actor": "bob"}, credential)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"].startswith("unknown token")
    assert (await state(dev_env, incident_id)).acknowledged_by is None


async def test_an_expired_or_revoked_token_is_refused(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> None:
    incident_id = await opened(dev_env, settings, example_policy)
    expired = token(settings, "bob", valid_for=timedelta(seconds=-1))
    revoked = token(settings, "bob")
    TokenStore(settings.tokens_path).revoke("T2", datetime.now(UTC))
    answer = await ack(http, incident_id, {}, expired)
    assert answer.status_code == 401 and answer.json()["error"].startswith("token T1 of bob expired at "), answer.text
    answer = await ack(http, incident_id, {}, revoked)
    assert answer.status_code == 401 and answer.json()["error"].startswith("token T2 of bob was revoked"), answer.text
    assert (await state(dev_env, incident_id)).acknowledged_by is None
    assert "sha256" in settings.tokens_path.read_text() and revoked not in settings.tokens_path.read_text()


async def test_a_declared_incident_names_the_reporter_its_credential_proves(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, worker: None
) -> None:
    headers = {"Authorization": f"Bearer {token(settings, 'bob')}", "Idempotency-Key": "declare-1"}
    as_carol = await http.post("/api/incidents", json={"title": "Checkout", "reporter": "carol"}, headers=headers)
    assert as_carol.status_code == 403 and "a decision as carol needs carol's own credential" in as_carol.text
    first = await http.post("/api/incidents", json={"title": "Checkout is failing"}, headers=headers)
    again = await http.post("/api/incidents", json={"title": "Checkout is failing"}, headers=headers)  # a resend
    assert first.status_code == again.status_code == 200, first.text
    incident_id = first.json()["result"]["incident_id"]
    assert again.json()["result"] == {"incident_id": incident_id, "reporter": "bob"}
    await until(lambda: _reported_by(dev_env, incident_id, "bob"))
    anonymous = await http.post("/api/incidents", json={"title": "Checkout is failing"})
    assert anonymous.status_code == 401
    too_long = await http.post("/api/incidents", json={"title": "x" * 2000}, headers=headers | {"Idempotency-Key": "2"})
    assert too_long.status_code == 422 and too_long.json()["error"] == "title: 2000 bytes, over the limit of 1024"


async def _reported_by(dev_env: WorkflowEnvironment, incident_id: str, person: str) -> bool:
    try:
        current = await state(dev_env, incident_id)
    except Exception:
        return False
    return any(entry.text.startswith(f"Reported by {person}: ") for entry in current.timeline)


async def test_a_decision_sent_straight_to_temporal_as_an_update_is_refused(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    incident_id = await opened(dev_env, settings, example_policy)
    handle = unsigned(dev_env.client).get_workflow_handle(incident_id)
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update("acknowledge", Acknowledge(actor="bob"), result_type=str)
    assert "acknowledge was sent without the service's proof" in str(failed.value.cause)
    assert (await state(dev_env, incident_id)).acknowledged_by is None


async def test_a_decision_sent_straight_to_temporal_as_a_signal_is_refused_and_recorded(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    incident_id = await opened(dev_env, settings, example_policy)
    await unsigned(dev_env.client).get_workflow_handle(incident_id).signal("acknowledge", Acknowledge(actor="bob"))

    async def recorded() -> bool:
        return any(
            "acknowledge was sent without the service's proof" in e.text
            for e in (await state(dev_env, incident_id)).timeline
        )

    await until(recorded)
    refusal = next(e for e in (await state(dev_env, incident_id)).timeline if "without the service's proof" in e.text)
    assert refusal.kind == "rejected" and refusal.text.startswith("signal acknowledge refused: ")
    assert (await state(dev_env, incident_id)).acknowledged_by is None


async def test_a_proof_taken_from_the_history_is_refused_a_second_time_and_an_altered_one_at_once(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    """Whoever reads a signed decision in the history cannot send it again, nor change what it says."""
    incident_id = await opened(dev_env, settings, example_policy)
    handle = unsigned(dev_env.client).get_workflow_handle(incident_id)
    run_id = (await handle.describe()).run_id
    note = SIGNER.prove(ProgressNote(actor="bob", text="rolled back"), "progress_note", incident_id, run_id)
    await handle.execute_update("progress_note", note, result_type=str)
    assert note.proof is not None
    altered = note.model_copy(
        update={"proof": note.proof.model_copy(update={"body": note.proof.body.replace("bob", "alice")})}
    )
    for forged, why in ((note, "was used before"), (altered, "does not match what was signed")):
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update("progress_note", forged, result_type=str)
        assert why in str(failed.value.cause)
    other = SIGNER.prove(ProgressNote(actor="bob", text="x"), "status_update", incident_id, run_id)
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update("progress_note", other, result_type=str)
    assert "made for status_update" in str(failed.value.cause)
    notes = [e for e in (await state(dev_env, incident_id)).timeline if e.kind == "progress_note"]
    assert len(notes) == 1, notes


class StaleRun(Interceptor):
    """Answers the signing interceptor's first look at the workflow with the run it had before continuing as new:
    the decision is signed for a run that closes while it is on its way."""

    def __init__(self, run_id: str) -> None:
        self.run_id: str | None = run_id

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        stale = self

        class Describe(OutboundInterceptor):
            async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
                run_id, stale.run_id = stale.run_id, None
                return await super().describe_workflow(dataclasses.replace(input, run_id=run_id or input.run_id))

        return Describe(next)


async def test_a_decision_signed_for_a_run_that_continued_as_new_reaches_the_run_that_carries_on(
    dev_env: WorkflowEnvironment, settings: Settings, worker: None
) -> None:
    """Its proof is good for one run only: it is signed again for the next one, and taken once."""
    handle = await open_incident(dev_env, settings, make_policy(), alert(severity=Severity.SEV2), history_limit=40)
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    first_run = (await handle.describe()).run_id
    for number in range(200):  # past 40 events the incident continues as new
        if (await handle.describe()).run_id != first_run:
            break
        await handle.execute_update("progress_note", ProgressNote(actor="bob", text=f"note {number}"))
    else:
        raise AssertionError("the incident never continued as new")
    config = unsigned(dev_env.client).config()
    config["interceptors"] = [SIGNING, StaleRun(first_run), *config["interceptors"]]
    late = Client(**config).get_workflow_handle(handle.id)
    await late.execute_update("progress_note", ProgressNote(actor="bob", text="sent as the run changed"))
    timeline = (await state(dev_env, handle.id)).timeline
    assert len([e for e in timeline if "sent as the run changed" in e.text]) == 1


async def test_a_maintenance_window_sent_straight_to_temporal_is_refused(
    ts_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> None:
    """The on-call decisions (windows, overrides) go through the same verification as the incident's."""
    window = AddSilence(service="checkout", until=datetime.now(UTC) + timedelta(hours=1), reason="deploy", by="bob")
    async with build_worker(ts_env.client, settings):
        with pytest.raises(oncall_client.OnCallRefused) as refused:
            await oncall_client.add_silence(
                unsigned(ts_env.client), settings.incident_task_queue, example_policy, window
            )
        assert "add was sent without the service's proof" in str(refused.value)
        added = await oncall_client.add_silence(ts_env.client, settings.incident_task_queue, example_policy, window)
        assert added.by == "bob" and [s.silence_id for s in await oncall_client.silences(ts_env.client)] == ["S1"]
