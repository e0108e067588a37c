"""Which changes an incident's run has: one patch marker per release instead of one per change.

Every `workflow.patched(change)` a new incident asks writes a marker and upserts the TemporalChangeVersion
search attribute: two more events, and one more visibility write on the server, per change ever made, in
every incident. So a new incident asks once, for its release (INCIDENT_RELEASE), and keeps the answer in its
state (`IncidentState.release`, carried across continue-as-new): the changes RELEASE_1 names are then on
without asking. Runs begun before it ask change by change, as they always did, and replay so.

A change made after the release asks `workflow.patched` itself (has_change does, for any change the release
does not name) until a next release bundles it: a new INCIDENT_RELEASE id, asked first, and its set here.
"""

from __future__ import annotations

from temporalio import workflow

# workflow.patched, asked once by a new incident: it then has every change of RELEASE_1.
INCIDENT_RELEASE = "incident-release-1"
RELEASE = 1
RELEASE_1 = frozenset(
    {
        "on-call-schedules",  # oncall.ON_CALL_PATCH
        "seed-000-external-approval",  # approvals.EXTERNAL_GATE
        "page-first-command-at-confirmation",  # response.PAGE_FIRST
        "ladder-child-when-tier-2-is-due",  # response.LADDER_WHEN_TIER_2_DUE
        "on-call-holders-decide",  # incident.ON_CALL_HOLDERS_DECIDE
        "drain-waits-for-duty-calls",  # incident.DRAIN_DUTY_CALLS
        "resolution-to-clients-as-policy-says",  # aftermath.CLIENTS_AS_POLICY_SAYS
    }
)


def has_change(release: int, change: str) -> bool:
    """Whether a run begun with `release` has `change`: one its release names, or else as workflow.patched says."""
    return (release >= 1 and change in RELEASE_1) or workflow.patched(change)
