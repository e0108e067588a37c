"""Seeds 000 and 003: everyone the processes name hears the cadence and the resolution; vendors join the bridge;
the Communications Lead sends the resolution; the review updates the plans before the close."""

from __future__ import annotations

from datetime import timedelta

from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state
from tests.workflows.test_incident import RESOLUTION, refusal
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import (
    Acknowledge,
    CloseIncident,
    PlanUpdated,
    ReviewHeld,
    SendResolution,
    StatusUpdate,
)

LISTS = ["support-leads@example.com", "account-management@example.com"]
VENDOR = "help@cloudco.example"


def stakeholder_policy(**cadence: object) -> Policy:
    """Internal lists and a vendor on the cadence; no Communications Lead gate on words that leave."""
    policy = make_policy()
    comms = policy.comms.model_copy(
        update={"external_parties": {"CloudCo": [VENDOR]}, "communications_lead_approves_external": False}
    )
    changes = {"lists": LISTS, "parties": ["CloudCo"], "notify_client_contacts": False, **cadence}
    return make_policy(
        comms=comms,
        cadence=policy.cadence.model_copy(update=changes),
        response=policy.response.model_copy(update={"bridge_parties": ["CloudCo"]}),
    )


def mails_to(settings, address: str, words: str = "") -> list[str]:
    return [
        e["payload"]["text"]
        for e in outbox(settings, "email")
        if address in e["payload"]["to"] and words in e["payload"]["text"]
    ]


async def test_seed003_regular_updates_even_if_the_situation_remains_unchanged(ts_env, settings, worker):
    """ "Ensure that all stakeholders receive regular updates ..., even if the situation remains unchanged":
    departments, internal lists and vendors get each update; one that falls due without one goes out as
    "no change"."""
    handle = await open_incident(
        ts_env, settings, stakeholder_policy(no_change_updates=True), alert(severity=Severity.SEV1)
    )
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("status_update", StatusUpdate(actor="alice", text="failing over the database"))
    await ts_env.sleep(timedelta(seconds=5))
    for address in [*LISTS, VENDOR]:
        assert mails_to(settings, address, "failing over the database"), address
    await ts_env.sleep(timedelta(minutes=31))  # SEV1: every 30 minutes
    for address in [*LISTS, VENDOR]:
        [no_change] = mails_to(settings, address, "no change since")
        assert "still in investigation" in no_change
    assert "no change since" in " ".join(e["payload"]["text"] for e in outbox(settings, "slack", "dm"))


async def test_seed003_without_no_change_updates_a_missed_update_reaches_only_the_incident_commander(
    ts_env, settings, worker
):
    handle = await open_incident(ts_env, settings, stakeholder_policy(), alert(severity=Severity.SEV1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(minutes=31))
    assert not mails_to(settings, LISTS[0])
    assert any(
        "was missed" in t
        for t in (await state(handle)).waiting_on + [e["payload"]["text"] for e in outbox(settings, "slack", "dm")]
    )


async def test_seed003_vendors_part_of_the_recovery_are_invited_to_the_bridge(ts_env, settings, worker):
    """ "If external service providers are part of the recovery effort ..., the POC ensures they are kept
    informed and involved"."""
    await open_incident(ts_env, settings, stakeholder_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=10))
    [invitation] = mails_to(settings, VENDOR, "join the bridge")
    assert "https://meet.example.com/incident-bridge" in invitation


async def test_seed000_the_communications_lead_communicates_the_resolution_to_all_relevant_parties(
    ts_env, settings, worker
):
    """ "Once the incident is resolved, the Communications lead should communicate this to all relevant
    parties": nothing goes out, internal lists included, until she sends it, in her words."""
    policy = stakeholder_policy()
    policy = policy.model_copy(
        update={"comms": policy.comms.model_copy(update={"communications_lead_sends_resolution": True})}
    )
    handle = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(seconds=10))
    assert not mails_to(settings, LISTS[0], "RESOLVED") and not mails_to(settings, VENDOR, "RESOLVED")
    asks = [e["payload"]["text"] for e in outbox(settings, "slack", "dm") if "send-resolution" in e["payload"]["text"]]
    assert len(asks) == 1 and "Rolled back release 42" in asks[0]  # to carol, the Communications Lead
    s = await state(handle)
    assert any("resolution message from carol" in w for w in s.waiting_on)
    assert "only the communications lead" in await refusal(
        handle.execute_update("send_resolution", SendResolution(actor="alice"))
    )
    assert "has not sent the resolution message" in await refusal(
        handle.execute_update("close", CloseIncident(actor="alice"))
    )
    words = "RESOLVED: checkout is back; a canary now guards every release."
    await handle.execute_update("send_resolution", SendResolution(actor="carol", text=words))
    await ts_env.sleep(timedelta(seconds=5))
    for address in [*LISTS, VENDOR]:
        assert mails_to(settings, address) and mails_to(settings, address, "RESOLVED") == [words], address


async def test_seed000_the_review_updates_the_response_and_communication_plan_before_the_close(
    ts_env, settings, worker
):
    """ "Update the Incident Response and Communication Plan as necessary based on the findings": the review
    invites whom the policy names, and the close waits for the changes to be recorded."""
    policy = make_policy()
    post = policy.post_incident.model_copy(
        update={
            "review_attendees": ["role:incident_commander", "role:senior_management", "gina"],
            "require_plan_update": True,
            "require_published_postmortem": False,
        }
    )
    cadence = policy.cadence.model_copy(update={"notify_client_contacts": False})
    policy = make_policy(post_incident=post, cadence=cadence)
    handle = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(seconds=10))
    invited = {
        e["payload"]["to"][0] for e in outbox(settings, "email") if "Post-incident review" in e["payload"]["text"]
    }
    assert invited == {"alice@example.com", "oleh@example.com", "gina@example.com"}
    assert "hold the review first" in await refusal(
        handle.execute_update("plan_updated", PlanUpdated(actor="alice", changes="x"))
    )
    await handle.execute_update("review_held", ReviewHeld(actor="alice", notes="canary caught it late"))
    await ts_env.sleep(timedelta(seconds=5))
    assert "missing plan_updated" in await refusal(handle.execute_update("close", CloseIncident(actor="alice")))
    await handle.execute_update(
        "plan_updated",
        PlanUpdated(actor="alice", changes="Canary stage added to the response plan", url="https://wiki/p"),
    )
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("close", CloseIncident(actor="alice"))
    s = await state(handle)
    assert s.checklist["plan_updated"] and "Canary stage added" in s.resolution["plan_changes"]
