"""The postmortem's action items as rules: who adds one, and the close that waits for their issues."""

from __future__ import annotations

from tests.workflows.helpers import make_policy
from tests.workflows.test_rules import RESOLUTION, confirmed, decide, refusal
from workflows.contracts.policy import FollowUps
from workflows.incident.model import AddActionItem, CloseIncident

CANARY = AddActionItem(actor="alice", title="Canary every deploy", owner="bob")


def test_an_action_item_needs_an_owner_of_the_policy_and_a_role_that_may_add_it():
    policy = make_policy()
    s = confirmed(policy)
    assert "'nobody' is not a person in the policy" in refusal(
        s, policy, AddActionItem(actor="alice", title="x", owner="nobody")
    )
    assert "bob holds none of those roles" in refusal(s, policy, CANARY.model_copy(update={"actor": "bob"}))
    assert decide(s, policy, CANARY) == "action item A1 for bob: Canary every deploy"


def test_the_close_waits_for_every_follow_up_issue_where_the_policy_says_so():
    policy = make_policy(follow_ups=FollowUps(home="jira", project="OPS"))
    s = confirmed(policy)
    decide(s, policy, RESOLUTION)
    decide(s, policy, CANARY)
    s.checklist = dict.fromkeys(s.checklist, True)
    assert "action items A1 have no jira issue yet" in refusal(s, policy, CloseIncident(actor="alice"))

    s.action_items[0].issue = "OPS-2"
    decide(s, policy, CloseIncident(actor="alice"))

    relaxed = make_policy(follow_ups=FollowUps(home="jira", project="OPS", close_waits=False))
    s = confirmed(relaxed)
    decide(s, relaxed, RESOLUTION)
    decide(s, relaxed, CANARY)
    s.checklist = dict.fromkeys(s.checklist, True)
    decide(s, relaxed, CloseIncident(actor="alice"))
