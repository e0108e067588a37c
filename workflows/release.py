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

# The changes, each a workflow.patched id (incidents begun before one replay without it):
# who is on call is looked up in the policy's schedules (histories from before schedules have no lookup);
ON_CALL_PATCH = "on-call-schedules"
# seed 000's gate: words for people outside wait for the Communications Lead (before, client contacts were
# e-mailed at once);
EXTERNAL_GATE = "seed-000-external-approval"
# the page is the first command of the confirming task (before, the ladder's duty paged, after the other
# deliveries of that task);
PAGE_FIRST = "page-first-command-at-confirmation"
# the incident waits out tier 1 itself and starts the ladder's child only when tier 2 is due (before, the child
# started with the round). Most incidents are acknowledged within tier 1 and start no ladder at all;
LADDER_WHEN_TIER_2_DUE = "ladder-child-when-tier-2-is-due"
# whoever is on call in a schedule that holds a role may decide as that role (derive.holds);
ON_CALL_HOLDERS_DECIDE = "on-call-holders-decide"
# continuing as new, and closing, wait for the duties' own calls too (Deliveries.tracked), so that a channel,
# a bridge or a ladder being started is never lost with the run;
DRAIN_DUTY_CALLS = "drain-waits-for-duty-calls"
# the resolution is offered to the client contacts only where cadence.notify_client_contacts says so (before,
# whatever it said).
CLIENTS_AS_POLICY_SAYS = "resolution-to-clients-as-policy-says"

# workflow.patched, asked once by a new incident: it then has every change of RELEASE_1.
INCIDENT_RELEASE = "incident-release-1"
RELEASE = 1
RELEASE_1 = frozenset(
    {
        ON_CALL_PATCH,
        EXTERNAL_GATE,
        PAGE_FIRST,
        LADDER_WHEN_TIER_2_DUE,
        ON_CALL_HOLDERS_DECIDE,
        DRAIN_DUTY_CALLS,
        CLIENTS_AS_POLICY_SAYS,
    }
)


def has_change(release: int, change: str) -> bool:
    """Whether a run begun with `release` has `change`: one its release names, or else as workflow.patched says."""
    return (release >= 1 and change in RELEASE_1) or workflow.patched(change)
