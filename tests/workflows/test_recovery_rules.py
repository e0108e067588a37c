"""Seed 003's recovery plan as plain functions: its order, its due times, its chasing, its bounds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from tests.workflows.helpers import make_policy
from tests.workflows.test_rules import T0, confirmed, decide, refusal
from workflows.contracts.policy import Policy, Service
from workflows.contracts.vocabulary import Severity
from workflows.incident.derive import waiting_on
from workflows.incident.model import (
    AssignTask,
    CompleteTask,
    EscalateTask,
    ReassignTask,
    ReprioritiseTask,
    UpdateTask,
)
from workflows.recovery import rules
from workflows.recovery.model import TaskStatus


def recovery_policy() -> Policy:
    """Three systems of very different RTOs (minutes)."""
    services = {
        **make_policy().services,
        "orders-db": Service(owner="bob", rto_minutes=60),
        "storefront": Service(owner="bob", rto_minutes=30),
        "reporting": Service(owner="bob", rto_minutes=480),
    }
    return make_policy(services=services)


def add(title: str, systems: list[str], impact: Severity = Severity.SEV3, due: int | None = None) -> AssignTask:
    return AssignTask(
        actor="alice", title=title, assignee="bob", systems=systems, business_impact=impact, due_minutes=due
    )


def test_seed003_tasks_prioritized_based_on_business_impact_and_rto():
    """ "if a critical system is down, those tasks must take precedence over less critical recovery actions":
    the shortest RTO of the systems a task restores ranks it, whatever label it was given; the impact breaks
    ties; a task that restores no system with an RTO comes last."""
    policy = recovery_policy()
    s = confirmed(policy)
    decide(s, policy, add("Re-run reports", ["reporting"], Severity.SEV1))
    decide(s, policy, add("Tidy the runbook", [], Severity.SEV1))
    decide(s, policy, add("Restore orders-db", ["orders-db", "reporting"], Severity.SEV4))
    decide(s, policy, add("Storefront read-only", ["storefront"], Severity.SEV3))
    decide(s, policy, add("Check orders-db replicas", ["orders-db"], Severity.SEV2))
    assert [t.task_id for t in s.tasks] == ["T4", "T5", "T3", "T1", "T2"]
    assert [t.rto_minutes for t in s.tasks] == [30, 60, 60, 480, None]
    decide(s, policy, CompleteTask(actor="bob", task_id="T4"))
    assert [t.task_id for t in s.tasks][-1] == "T4", "a finished task goes to the end"


def test_seed003_a_task_is_due_by_its_systems_rto_unless_a_due_time_is_given():
    policy = recovery_policy()
    s = confirmed(policy)
    decide(s, policy, add("Restore orders-db", ["orders-db"]), minutes=5)
    decide(s, policy, add("Storefront read-only", ["storefront"], due=10), minutes=5)
    decide(s, policy, add("Tidy the runbook", []), minutes=5)
    due = {t.task_id: t.due for t in s.tasks}
    assert due == {"T1": T0 + timedelta(minutes=60), "T2": T0 + timedelta(minutes=15), "T3": None}


def test_seed003_escalate_delays_a_late_task_nudges_its_owner_then_goes_to_the_decision_makers():
    """ "If certain recovery tasks are delayed or not progressing as planned, the POC is responsible for
    escalating these issues": at its due time the owner is nudged, once; the policy's grace later it is
    escalated, once; a finished task is never chased."""
    policy = recovery_policy()
    grace = policy.response.task_escalate_after_minutes
    s = confirmed(policy)
    decide(s, policy, add("Storefront read-only", ["storefront"], due=10), minutes=0)
    decide(s, policy, add("Restore orders-db", ["orders-db"], due=10), minutes=0)
    decide(s, policy, CompleteTask(actor="bob", task_id="T2"), minutes=5)
    due = T0 + timedelta(minutes=10)
    assert rules.next_chase(s, policy) == due
    assert rules.chases_due(s, policy, due - timedelta(seconds=1)) == []
    assert [(t.task_id, c) for t, c in rules.chases_due(s, policy, due)] == [("T1", rules.Chase.NUDGE)]
    assert rules.chases_due(s, policy, due) == [], "nudged once"
    assert rules.next_chase(s, policy) == due + timedelta(minutes=grace)
    later = due + timedelta(minutes=grace)
    assert [(t.task_id, c) for t, c in rules.chases_due(s, policy, later)] == [("T1", rules.Chase.ESCALATE)]
    assert rules.next_chase(s, policy) is None, "escalated once"
    assert any("late: escalated" in line for line in waiting_on(s, policy))


def test_seed003_reassigning_or_reprioritising_a_late_task_chases_it_afresh():
    policy = recovery_policy()
    s = confirmed(policy)
    decide(s, policy, add("Storefront read-only", ["storefront"], due=10), minutes=0)
    rules.chases_due(s, policy, T0 + timedelta(minutes=10))
    decide(s, policy, ReassignTask(actor="alice", task_id="T1", assignee="carol"), minutes=11)
    assert s.tasks[0].assignee == "carol" and s.tasks[0].nudged_at is None
    decide(s, policy, ReprioritiseTask(actor="alice", task_id="T1", due_minutes=30, reason="waits for the CDN"), 12)
    assert rules.next_chase(s, policy) == T0 + timedelta(minutes=42)
    decide(s, policy, ReprioritiseTask(actor="alice", task_id="T1", systems=["reporting"], reason="not urgent"), 13)
    assert s.tasks[0].rto_minutes == 480 and s.tasks[0].due == T0 + timedelta(minutes=480)


def test_seed003_progress_notes_and_status_are_kept_and_bounded():
    policy = recovery_policy()
    s = confirmed(policy)
    decide(s, policy, add("Restore orders-db", ["orders-db"]))
    for n in range(rules.NOTES_KEPT + 5):
        decide(s, policy, UpdateTask(actor="bob", task_id="T1", note=f"{n} %", status=TaskStatus.IN_PROGRESS))
    assert s.tasks[0].status is TaskStatus.IN_PROGRESS
    assert len(s.tasks[0].notes) == rules.NOTES_KEPT and s.tasks[0].notes[-1].text == f"{rules.NOTES_KEPT + 4} %"
    assert "marked done" in refusal(s, policy, UpdateTask(actor="bob", task_id="T1", note="x", status=TaskStatus.DONE))


def test_the_plan_is_bounded_unknown_systems_and_people_are_refused():
    policy = recovery_policy()
    s = confirmed(policy)
    assert "unknown systems payroll" in refusal(s, policy, add("x", ["payroll"]))
    assert "'mallory' is not a person" in refusal(s, policy, AssignTask(actor="alice", title="x", assignee="mallory"))
    for n in range(rules.TASKS_PER_INCIDENT):
        decide(s, policy, add(f"task {n}", []))
    assert "the most a plan holds" in refusal(s, policy, add("one more", []))
    with pytest.raises(ValidationError):
        AssignTask(actor="alice", title="x" * 201, assignee="bob")
    with pytest.raises(ValidationError):
        EscalateTask(actor="alice", task_id="T1", recommendation="")


def test_only_the_plans_owners_reprioritise_and_escalate():
    policy = recovery_policy()
    s = confirmed(policy)
    decide(s, policy, add("Restore orders-db", ["orders-db"]))
    assert "holds none of those roles" in refusal(
        s, policy, EscalateTask(actor="dana", task_id="T1", recommendation="add a DBA")
    )
    assert "say what changes" in refusal(s, policy, ReprioritiseTask(actor="alice", task_id="T1", reason="x"))
