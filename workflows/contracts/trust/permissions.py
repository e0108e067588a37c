"""Who may take each decision unless the policy says otherwise (its `permissions` table)."""

from __future__ import annotations

from workflows.contracts.vocabulary import Role

# Who may take each decision. An empty list: any person the policy knows.
DEFAULT_PERMISSIONS: dict[str, list[Role]] = {
    "acknowledge": [],
    "escalate": [],
    "assign_role": [
        Role.INCIDENT_COMMANDER,
        Role.PROJECT_MANAGER,
        Role.TECHNICAL_MANAGER,
        Role.CUSTOMER_SERVICE_MANAGER,
    ],
    "classify": [
        Role.INCIDENT_COMMANDER,
        Role.RESPONDER,
        Role.PROJECT_MANAGER,
        Role.TECHNICAL_MANAGER,
        Role.CUSTOMER_SERVICE_MANAGER,
    ],
    "set_phase": [Role.INCIDENT_COMMANDER, Role.RESPONDER, Role.RESPONSIBLE_DEVELOPER, Role.PROJECT_MANAGER],
    "estimate": [Role.RESPONSIBLE_DEVELOPER, Role.RESPONDER],
    "progress_note": [],
    "status_update": [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.PROJECT_MANAGER],
    "assign_task": [
        Role.INCIDENT_COMMANDER,
        Role.PROJECT_MANAGER,
        Role.TECHNICAL_MANAGER,
        Role.CUSTOMER_SERVICE_MANAGER,
    ],
    "reassign_task": [
        Role.INCIDENT_COMMANDER,
        Role.PROJECT_MANAGER,
        Role.TECHNICAL_MANAGER,
        Role.CUSTOMER_SERVICE_MANAGER,
    ],
    "reprioritise_task": [
        Role.INCIDENT_COMMANDER,
        Role.PROJECT_MANAGER,
        Role.TECHNICAL_MANAGER,
        Role.CUSTOMER_SERVICE_MANAGER,
    ],
    "update_task": [],
    "complete_task": [],
    "escalate_task": [
        Role.INCIDENT_COMMANDER,
        Role.PROJECT_MANAGER,
        Role.TECHNICAL_MANAGER,
        Role.CUSTOMER_SERVICE_MANAGER,
    ],
    "report_data_loss": [Role.INCIDENT_COMMANDER, Role.RESPONDER, Role.RESPONSIBLE_DEVELOPER, Role.TECHNICAL_MANAGER],
    "trigger_business_incident": [Role.INCIDENT_COMMANDER, Role.BUSINESS_LEAD],
    "evaluate_clients": [Role.INCIDENT_COMMANDER],  # the owner (seed 001: by scope)
    "resolve": [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD],
    "reopen": [Role.INCIDENT_COMMANDER],
    "review_held": [Role.INCIDENT_COMMANDER, Role.PROJECT_MANAGER, Role.PMO],
    "plan_updated": [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.PROJECT_MANAGER, Role.PMO],
    "send_resolution": [Role.COMMUNICATIONS_LEAD],
    "publish_postmortem": [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.PROJECT_MANAGER],
    "close": [Role.INCIDENT_COMMANDER, Role.PROJECT_MANAGER],
    "draft_statement": [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.PROJECT_MANAGER],
    "approve_statement": [Role.COMMUNICATIONS_LEAD],
    "withhold_statement": [Role.COMMUNICATIONS_LEAD],
    "request_channel": [],
    "approve_channel": [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD],
    "decline_channel": [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD],
    "add_action_item": [Role.INCIDENT_COMMANDER, Role.PROJECT_MANAGER, Role.TECHNICAL_MANAGER, Role.PMO],
}
