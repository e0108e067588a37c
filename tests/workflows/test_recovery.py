"""Seed 003's recovery plan on the time-skipping server: what the owners and decision-makers receive."""

from __future__ import annotations

from datetime import timedelta

from tests.workflows.helpers import alert, open_incident, outbox, state, texts, timeline
from tests.workflows.test_incident import refusal
from tests.workflows.test_recovery_rules import recovery_policy
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import (
    Acknowledge,
    AssignTask,
    CompleteTask,
    EscalateTask,
    ReprioritiseTask,
    UpdateTask,
)
from workflows.recovery.model import TaskStatus
from workflows.recovery.rules import TASKS_PER_INCIDENT


def to(settings, person_email: str, words: str) -> list[str]:
    return [
        e["payload"]["text"]
        for e in outbox(settings, "email")
        if person_email in e["payload"]["to"] and words in e["payload"]["text"]
    ]


async def test_seed003_a_late_task_nudges_its_owner_then_is_escalated_to_the_decision_makers_with_context(
    ts_env, settings, worker
):
    policy = recovery_policy()
    grace = policy.response.task_escalate_after_minutes
    handle = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV1))
    await handle.execute_update("acknowledge", Acknowledge(actor="alice"))
    await handle.execute_update(
        "assign_task",
        AssignTask(
            actor="alice", title="Put the storefront read-only", assignee="bob", systems=["storefront"], due_minutes=10
        ),
    )
    await handle.execute_update(
        "assign_task",
        AssignTask(actor="alice", title="Restore orders-db", assignee="carol", systems=["orders-db"], due_minutes=10),
    )
    await handle.execute_update(
        "update_task", UpdateTask(actor="bob", task_id="T1", note="CDN rule half done", status=TaskStatus.IN_PROGRESS)
    )
    await handle.execute_update("complete_task", CompleteTask(actor="carol", task_id="T2"))
    await ts_env.sleep(timedelta(minutes=11))
    nudges = [t for t in texts(settings, "slack", "dm") if "was due at" in t]
    assert len(nudges) == 1 and "T1" in nudges[0], "the late task's owner, once; the finished one, never"
    assert not to(settings, "oleh@example.com", "recovery task escalated")
    await ts_env.sleep(timedelta(minutes=grace))
    [mail] = to(settings, "oleh@example.com", "recovery task escalated")  # senior management, once
    assert "T1 Put the storefront read-only (storefront) from bob" in mail and "min past due" in mail
    assert "CDN rule half done" in mail and "Recommendation: reassign it" in mail
    s = await state(handle)
    assert any("escalated to oleh" in line for line in timeline(s, "task"))
    assert any("late: escalated" in line for line in s.waiting_on)


async def test_seed003_the_poc_escalates_to_the_decision_makers_with_context_and_a_recommendation(
    ts_env, settings, worker
):
    """ "the POC escalates issues to the appropriate decision-makers, providing relevant context and
    recommending actions to ensure quick resolution"."""
    handle = await open_incident(ts_env, settings, recovery_policy(), alert(severity=Severity.SEV1))
    await handle.execute_update(
        "assign_task", AssignTask(actor="alice", title="Restore orders-db", assignee="bob", systems=["orders-db"])
    )
    await handle.execute_update(
        "escalate_task", EscalateTask(actor="alice", task_id="T1", recommendation="approve a second DBA from VaultSafe")
    )
    await ts_env.sleep(timedelta(seconds=5))
    [mail] = to(settings, "oleh@example.com", "recovery task escalated (by alice)")
    assert "Recommendation: approve a second DBA from VaultSafe" in mail and "RTO 60 min" in mail
    assert any("approve a second DBA" in t for t in texts(settings, "slack", "post"))


async def test_seed003_tasks_ordered_by_rto_the_owner_told_and_the_plan_bounded(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, recovery_policy(), alert(severity=Severity.SEV1))
    for title, systems in (("Re-run reports", ["reporting"]), ("Restore orders-db", ["orders-db"])):
        await handle.execute_update(
            "assign_task", AssignTask(actor="alice", title=title, assignee="bob", systems=systems)
        )
    await handle.execute_update(
        "reprioritise_task",
        ReprioritiseTask(actor="alice", task_id="T1", systems=["storefront"], reason="sellers wait"),
    )
    s = await state(handle)
    assert [t.title for t in s.tasks] == ["Re-run reports", "Restore orders-db"]
    await ts_env.sleep(timedelta(seconds=5))
    assert any("reprioritised by alice: sellers wait" in t for t in texts(settings, "slack", "dm"))
    for n in range(TASKS_PER_INCIDENT - 2):
        await handle.execute_update("assign_task", AssignTask(actor="alice", title=f"t{n}", assignee="bob"))
    assert "the most a plan holds" in await refusal(
        handle.execute_update("assign_task", AssignTask(actor="alice", title="one more", assignee="bob"))
    )
    await handle.signal("assign_task", AssignTask(actor="alice", title="one more", assignee="bob"))
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    assert len(s.tasks) == TASKS_PER_INCIDENT and any("the most a plan holds" in t for t in timeline(s, "rejected"))
