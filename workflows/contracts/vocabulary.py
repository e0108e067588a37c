"""The words every part of the orchestrator shares: phases, severities, roles, channels, audiences.

Plain enums, no pydantic: the CLI reads its option choices from here without building any model.
Their values are in running incidents' histories: add members, never rename or remove one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class Phase(StrEnum):
    """The phases of seed 004, in order, plus the end of the incident."""

    DETECTION = "detection"
    INVESTIGATION = "investigation"
    IDENTIFICATION = "identification"
    MONITORING = "monitoring"
    RESOLUTION = "resolution"
    ANALYSIS = "analysis"
    PUBLISHING = "publishing"
    CLOSED = "closed"


class Status(StrEnum):
    """What the IncidentStatus search attribute says."""

    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def priority(self) -> str:
        """Seed 003 speaks of high, medium and low priority."""
        return {"SEV1": "high", "SEV2": "high", "SEV3": "medium", "SEV4": "low"}[self.value]


class IncidentKind(StrEnum):
    """Seed 001: an issue is either an incident or a disturbance."""

    INCIDENT = "incident"
    DISTURBANCE = "disturbance"


class Scope(StrEnum):
    """Seed 001: global incidents belong to the Technical Manager, local ones to the CSM."""

    LOCAL = "local"
    GLOBAL = "global"


class Unassessed(StrEnum):
    """What happens when a report's assessment time runs out with nobody having classified it."""

    CONFIRM = "confirm"  # a still-firing report is confirmed and paged; one that cleared is a disturbance
    DISTURBANCE = "disturbance"  # logged as a disturbance; nobody is paged
    REMIND = "remind"  # it waits for a person's decision; the assessors are reminded each period


class EvaluationPoint(StrEnum):
    """Seed 001: the moments the incident's owner is asked whether and how to tell clients."""

    CONFIRMED = "confirmed"
    PHASE = "phase"  # every phase the incident moves to, resolution included
    UPDATE = "update"  # every status update


class CriticalCriterion(StrEnum):
    """Seed 002's definition of a critical incident; any one of them makes it SEV1."""

    SITE_DOWN = "site_down"
    KEY_FUNCTION_BROKEN = "key_function_broken"
    MANY_USERS_BLOCKED = "many_users_blocked"
    SECURITY_BREACH = "security_breach"
    CLIENT_URGENT = "client_urgent"


class Role(StrEnum):
    """Every role the five seeds name. The policy says who holds which."""

    INCIDENT_COMMANDER = "incident_commander"
    COMMUNICATIONS_LEAD = "communications_lead"
    RESPONDER = "responder"
    RESPONSIBLE_DEVELOPER = "responsible_developer"
    PROJECT_MANAGER = "project_manager"
    CTO = "cto"
    ACCOUNT_MANAGER = "account_manager"
    TECHNICAL_MANAGER = "technical_manager"
    CUSTOMER_SERVICE_MANAGER = "customer_service_manager"
    SENIOR_MANAGEMENT = "senior_management"
    PMO = "pmo"
    BUSINESS_LEAD = "business_lead"
    TECHNICAL_SLT = "technical_slt"
    MESSAGING_OFFICER = "messaging_officer"
    LEGAL_OFFICER = "legal_officer"
    CUSTOMER_LIAISON = "customer_liaison"
    ELT_APPROVER = "elt_approver"
    DISTRIBUTOR = "distributor"


class Channel(StrEnum):
    """How a person is reached, and how the timeline names it: "SMS bob", "acknowledged by bob by SMS"."""

    label: str

    def __new__(cls, value: str, label: str) -> Channel:
        member = str.__new__(cls, value)
        member._value_, member.label = value, label
        return member

    PAGE = "page", "page"
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Teams"  # Microsoft Teams: the person's Entra ID (AAD) object id
    EMAIL = "email", "e-mail"
    TELEGRAM = "telegram", "Telegram"
    PUSH = "push", "push"  # a phone notification through ntfy
    SMS = "sms", "SMS"
    VOICE = "voice", "phone call"


# The channels that are also an organisation's chat: an incident channel, posts, direct messages, buttons.
CHATS = (Channel.SLACK, Channel.TEAMS)


class Audience(StrEnum):
    """Seed 004's three audiences."""

    INTERNAL = "internal_stakeholders"
    STRATEGIC = "strategic_customers"
    ALL_CUSTOMERS = "all_customers"


# The audiences outside the organisation: its clients (seed 001), customers (seed 004).
EXTERNAL_AUDIENCES = (Audience.STRATEGIC, Audience.ALL_CUSTOMERS)


class RecordHome(StrEnum):
    """Where the incident record lives (policy `records.home`): the log files alone, or also a peer's record."""

    FILES = "files"
    JIRA = "jira"
    SERVICENOW = "servicenow"
    CONFLUENCE = "confluence"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def occurrence(incident_id: str, opened_at: datetime | None) -> str:
    """The prefix of every idempotency key of one occurrence of an incident."""
    return f"{incident_id}@{opened_at:%Y%m%dT%H%M%S}" if opened_at else incident_id
