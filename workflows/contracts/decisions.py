"""Every decision a person can take, by name: the one registry the workflows and every way in share.

Each name is an Update of its workflow (answered with a result or a refusal a person can act on) and a
Signal of the same name (a refused one is recorded on the timeline). Either counts only with the HTTP
service's proof in it (workflows/contracts/trust/proof.py), so one sent from the Temporal UI is refused. The CLI, the
Slack endpoint and the drill address decisions through these names and models, never through the
workflow classes, so they import no workflow code.
"""

from __future__ import annotations

from workflows.comms.model import (
    Approve,
    ConfirmSent,
    DecideEdit,
    Draft,
    Edit,
    GiveEstimate,
    ResolveObjection,
    Review,
    SetAudienceOrder,
    Skip,
)
from workflows.incident.model import (
    Acknowledge,
    AddActionItem,
    ApproveChannel,
    ApproveStatement,
    AssignRole,
    AssignTask,
    Classify,
    CloseIncident,
    CompleteTask,
    Decision,
    DeclineChannel,
    DraftStatement,
    Escalate,
    EscalateTask,
    Estimate,
    EvaluateClients,
    PlanUpdated,
    ProgressNote,
    PublishPostmortem,
    ReassignTask,
    Reopen,
    ReportDataLoss,
    ReprioritiseTask,
    RequestChannel,
    Resolve,
    ReviewHeld,
    SendResolution,
    SetPhase,
    StatusUpdate,
    TriggerBusinessIncident,
    UpdateTask,
    WithholdStatement,
)

# The incident's decisions (IncidentWorkflow). Each model belongs to exactly one name.
INCIDENT_DECISIONS: dict[str, type[Decision]] = {
    "acknowledge": Acknowledge,
    "escalate": Escalate,
    "assign_role": AssignRole,
    "classify": Classify,
    "set_phase": SetPhase,
    "estimate": Estimate,
    "progress_note": ProgressNote,
    "status_update": StatusUpdate,
    "assign_task": AssignTask,
    "reassign_task": ReassignTask,
    "reprioritise_task": ReprioritiseTask,
    "update_task": UpdateTask,
    "complete_task": CompleteTask,
    "escalate_task": EscalateTask,
    "report_data_loss": ReportDataLoss,
    "trigger_business_incident": TriggerBusinessIncident,
    "evaluate_clients": EvaluateClients,
    "resolve": Resolve,
    "reopen": Reopen,
    "review_held": ReviewHeld,
    "plan_updated": PlanUpdated,
    "send_resolution": SendResolution,
    "publish_postmortem": PublishPostmortem,
    "close": CloseIncident,
    "draft_statement": DraftStatement,
    "approve_statement": ApproveStatement,
    "withhold_statement": WithholdStatement,
    "request_channel": RequestChannel,
    "approve_channel": ApproveChannel,
    "decline_channel": DeclineChannel,
    "add_action_item": AddActionItem,
}

# The steps of seed 004's Message Creation Loop (CommsWorkflow). Approve serves three approvals, DecideEdit two.
COMMS_DECISIONS: dict[str, type[Decision]] = {
    "draft": Draft,
    "edit": Edit,
    "accept_edit": DecideEdit,
    "decline_edit": DecideEdit,
    "review": Review,
    "resolve_objection": ResolveObjection,
    "authorize": Approve,
    "approve_external": Approve,
    "approve_send": Approve,
    "confirm_sent": ConfirmSent,
    "skip": Skip,
    "estimate": GiveEstimate,
    "set_audience_order": SetAudienceOrder,
}


def incident_decision_name(decision: Decision) -> str:
    """The Update an incident decision travels as: each model has exactly one."""
    for name, model in INCIDENT_DECISIONS.items():
        if type(decision) is model:
            return name
    raise KeyError(f"{type(decision).__name__} is not an incident decision")
