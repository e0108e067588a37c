"""Seed 000's gates as plain functions: external words wait for the Communications Lead, extra channels for
the Incident Commander or the Communications Lead. No server."""

from __future__ import annotations

from tests.workflows.helpers import make_policy
from tests.workflows.test_rules import T0, confirmed, decide, refusal
from workflows.approvals import rules as approval_rules
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Status
from workflows.incident.derive import waiting_on
from workflows.incident.model import (
    ApproveChannel,
    ApproveStatement,
    DeclineChannel,
    DraftStatement,
    RequestChannel,
    WithholdStatement,
)


def with_vendors(approval: bool = True) -> Policy:
    policy = make_policy()
    comms = policy.comms.model_copy(
        update={
            "external_parties": {"vendors": ["noc@cloud.example"], "billers": ["ops@biller.example"]},
            "communications_lead_approves_external": approval,
        }
    )
    return policy.model_copy(update={"comms": comms})


def test_seed000_all_external_communications_should_be_approved_by_the_communications_lead() -> None:
    policy = with_vendors()
    s = confirmed(policy)
    decide(s, policy, DraftStatement(actor="alice", parties=["vendors"], subject="Outage", text="We see errors"))
    (held,) = s.statements
    assert held.approved is None and held.recipients == ["noc@cloud.example"]
    assert any("approval of statement S1 for vendors by carol" in w for w in waiting_on(s, policy))
    refused = refusal(s, policy, ApproveStatement(actor="alice", statement_id="S1"))
    assert refused.startswith("only the communications lead can approve statement")
    decide(s, policy, ApproveStatement(actor="carol", statement_id="S1", text="We see elevated errors."))
    assert (held.approved, held.decided_by, held.text) == (True, "carol", "We see elevated errors.")
    assert not any("approval of" in w for w in waiting_on(s, policy))
    assert "already approved by carol" in refusal(s, policy, ApproveStatement(actor="carol", statement_id="S1"))


def test_the_communications_leads_own_words_need_no_second_approval() -> None:
    policy = with_vendors()
    s = confirmed(policy)
    decide(s, policy, DraftStatement(actor="carol", parties=["vendors", "billers"], subject="x", text="y"))
    assert s.statements[0].approved and s.statements[0].recipients == ["noc@cloud.example", "ops@biller.example"]


def test_a_policy_without_the_approval_sends_external_words_at_once() -> None:
    policy = with_vendors(approval=False)
    s = confirmed(policy)
    decide(s, policy, DraftStatement(actor="alice", parties=["vendors"], subject="x", text="y"))
    assert (s.statements[0].approved, s.statements[0].decided_by) == (True, "policy")


def test_a_withheld_statement_is_never_sent_and_says_why() -> None:
    policy = with_vendors()
    s = confirmed(policy)
    decide(s, policy, DraftStatement(actor="alice", parties=["vendors"], subject="x", text="y"))
    text = decide(s, policy, WithholdStatement(actor="carol", statement_id="S1", reason="legal has not seen it"))
    assert s.statements[0].approved is False and "legal has not seen it" in text
    assert "already withheld" in refusal(s, policy, ApproveStatement(actor="carol", statement_id="S1"))


def test_a_statement_to_an_unknown_party_is_refused_naming_the_known_ones() -> None:
    policy = with_vendors()
    s = confirmed(policy)
    refused = refusal(s, policy, DraftStatement(actor="alice", parties=["press"], subject="x", text="y"))
    assert refused == "no external party 'press' for INC-TEST; known: client_contacts, vendors, billers"


def test_nobody_outside_means_nothing_is_held() -> None:
    policy = make_policy()
    s = confirmed(policy)
    s.service = "unknown-service"  # no client contacts, and the policy names no other party
    assert approval_rules.hold(s, policy, "resolution", "x", "y", ["client_contacts", "vendors"], "alice", T0) is None
    assert s.statements == []


def test_seed000_no_additional_slack_channels_unless_approved_by_the_incident_manager_or_communications_lead() -> None:
    policy = make_policy()
    s = confirmed(policy)
    decide(s, policy, RequestChannel(actor="bob", name="inc-db-forensics", reason="long log analysis"))
    assert s.channel_requests[0].approved is None
    assert any("decision on extra channel inc-db-forensics (C1)" in w for w in waiting_on(s, policy))
    assert refusal(s, policy, ApproveChannel(actor="bob", request_id="C1")).startswith("only the incident commander")
    decide(s, policy, ApproveChannel(actor="carol", request_id="c1"))
    assert (s.channel_requests[0].approved, s.channel_requests[0].decided_by) == (True, "carol")
    assert "already approved" in refusal(s, policy, DeclineChannel(actor="alice", request_id="C1", reason="no"))


def test_a_channel_request_names_a_slack_channel_and_only_once() -> None:
    policy = make_policy()
    s = confirmed(policy)
    bad = refusal(s, policy, RequestChannel(actor="bob", name="DB Forensics!", reason="r"))
    assert bad.startswith("'DB Forensics!' is not a Slack channel name")
    decide(s, policy, RequestChannel(actor="bob", name="db", reason="r"))
    assert "already requested" in refusal(s, policy, RequestChannel(actor="bob", name="db", reason="r"))
    decide(s, policy, DeclineChannel(actor="alice", request_id="C1", reason="use the incident channel"))
    decide(s, policy, RequestChannel(actor="bob", name="db", reason="again, with a better reason"))
    s.status = Status.RESOLVED
    assert "its communication is over" in refusal(s, policy, RequestChannel(actor="bob", name="x", reason="r"))
