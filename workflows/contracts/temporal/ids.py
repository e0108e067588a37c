"""How every process addresses the workflows: their type names, their ids, and the names of their messages.

The ways in and the activities start, signal, update and query workflows by these names, never by importing
the workflow classes; the classes register under them (`@workflow.defn(name=...)`).
"""

from __future__ import annotations

import base64
import hashlib

INCIDENT_WORKFLOW = "IncidentWorkflow"
ESCALATION_WORKFLOW = "EscalationWorkflow"
COMMS_WORKFLOW = "CommsWorkflow"
SCHEDULE_WORKFLOW = "ScheduleWorkflow"
SILENCES_WORKFLOW = "SilencesWorkflow"
HEARTBEAT_WORKFLOW = "HeartbeatWorkflow"
RECORD_WORKFLOW = "RecordWorkflow"

# The incident's messages that are not decisions (those are named in decisions.py).
ALERT = "alert"  # signal: one alert of the incident's group
ESCALATION_NOTICE = "escalation_notice"  # signal: what its ladder did
SILENCE_LIFTED = "silence_lifted"  # signal: its maintenance window was expired early
# signal, to the incident or its ladder (whichever sent a direct page): a provider reports it did not arrive
DELIVERY_REPORT = "delivery_report"
INCIDENT_STATE = "state"  # query
RECORD_VIEW = "record"  # query: what its record should show (RecordView)
RECORD_NEWS = "record_news"  # signal: what its RecordWorkflow wrote (the record's address, follow-up issues)
RECORD_CHANGED = "changed"  # signal to the RecordWorkflow: the incident's timeline grew
COMMS_STATE = "state"  # query: the message loop's state

# The on-call workflows' messages.
ADD_OVERRIDE, REMOVE_OVERRIDE, OVERRIDES = "add_override", "remove_override", "overrides"
ADD_SILENCE, EXPIRE_SILENCE, HOLD_INCIDENT, ACTIVE_SILENCES = "add", "expire", "hold", "active"
BEAT, HEARTBEAT_STATE = "beat", "state"

SILENCES_ID = "silences"  # the one SilencesWorkflow


def incident_id_for(source: str, dedup_key: str) -> str:
    """The incident id an alert group maps to: stable, short, readable ("INC-7F3KQ2MA").

    The workflow id is this id, so signal-with-start sends every alert of a group to the one open
    incident for it, however many webhook replicas receive them.
    """
    digest = hashlib.sha256(f"{source}\x00{dedup_key}".encode()).digest()
    return "INC-" + base64.b32encode(digest).decode()[:8]


def schedule_workflow_id(schedule: str) -> str:
    return f"schedule-{schedule}"


def heartbeat_workflow_id(name: str) -> str:
    return f"heartbeat-{name}"


def ladder_workflow_id(occurrence: str, round: int) -> str:
    """An escalation round's ladder; the occurrence keeps a recurring alert group's new incident clear of the
    old one's children."""
    return f"{occurrence}-escalation-{round}"


def comms_workflow_id(occurrence: str) -> str:
    """The message loop of one occurrence of an incident ("INC-…@…-comms"): a loop left running by an earlier
    occurrence never collides with the next one's. The ways in read it from the incident's state
    (`IncidentState.comms_workflow_id`)."""
    return f"{occurrence}-comms"


def record_workflow_id(occurrence: str) -> str:
    """The writer of one occurrence's record in the organisation's register ("INC-…@…-record")."""
    return f"{occurrence}-record"
