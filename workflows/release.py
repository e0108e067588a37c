"""Which changes an incident's run has: one patch marker per release instead of one per change.

Every `workflow.patched(change)` a new incident asks writes a marker and upserts the TemporalChangeVersion
search attribute: two more events, and one more visibility write on the server, per change ever made, in
every incident. So a new incident asks once, for its release (INCIDENT_RELEASE), and keeps the answer in its
state (`IncidentState.release`, carried across continue-as-new): every change up to that release is then on
without asking. Runs begun before it ask change by change, as they always did, and replay so.

A change made after RELEASE asks `workflow.patched` itself until the next release bundles it: that release
raises RELEASE and gets a new INCIDENT_RELEASE id, and its incidents ask for that one alone.
"""

from __future__ import annotations

from temporalio import workflow

# workflow.patched, asked once by a new incident: it has every change of release 1 (the ids below it).
INCIDENT_RELEASE = "incident-release-1"
RELEASE = 1  # release 1: on-call-schedules, seed-000-external-approval, page-first-command-at-confirmation,
# ladder-child-when-tier-2-is-due, on-call-holders-decide, drain-waits-for-duty-calls,
# resolution-to-clients-as-policy-says


def has_change(release: int, change: str) -> bool:
    """Whether a run begun with `release` has `change` (one of its release's, or asked of workflow.patched)."""
    return release >= RELEASE or workflow.patched(change)
