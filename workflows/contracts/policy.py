"""The organisation's incident process as data: the policy a TOML file describes.

The five seeds differ here, not in code. Each incident carries the policy it was opened under (in its
workflow input), so editing the file changes new incidents and never rewrites a running one.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, time, timedelta
from typing import Any, Literal

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import to_json

from workflows.contracts.people import CONTACT_FIELD, NotificationRules, Person, Strict
from workflows.contracts.roles import SCHEDULE
from workflows.contracts.trust.permissions import DEFAULT_PERMISSIONS
from workflows.contracts.vocabulary import (
    CHATS,
    Audience,
    Channel,
    EvaluationPoint,
    Phase,
    RecordHome,
    Role,
    Scope,
    Severity,
    Unassessed,
)
from workflows.oncall.model import Heartbeat
from workflows.oncall.rotation import Schedule, known_zone, zone

SHARED_POLICIES = 16  # the distinct policies whose decoded copy workflows share


# The paging provider that is each person's own notification rules (workflows/delivery/direct.py).
DIRECT = "direct"
PAGING_PROVIDERS = ("opsgenie", "pagerduty", "jsm", DIRECT)  # what paging_provider may name
TELEPHONY = ("twilio", "vonage")  # the SMS and voice providers a policy may name


class Service(Strict):
    owner: str = ""  # person id: the responsible developer (seed 002)
    rto_minutes: int | None = Field(default=None, gt=0)
    rpo_minutes: int | None = Field(default=None, gt=0)
    runbook_url: str = ""
    account_manager: str = ""  # person id
    client_contacts: list[str] = Field(default_factory=list)  # e-mail addresses


class SeverityRule(Strict):
    """`label` = `value` on an alert gives `severity`."""

    label: str
    value: str
    severity: Severity


class Triage(Strict):
    default_severity: Severity = Severity.SEV3
    severity_rules: list[SeverityRule] = Field(default_factory=list)
    # label values like `criterion="site_down"` mark seed 002's critical criteria
    criterion_label: str = "criterion"
    assessment_minutes: int = Field(default=15, gt=0)
    # scope when the assessor does not say: global reaches the Technical Manager (seed 001)
    default_scope: Scope = Scope.LOCAL
    # who owns the action plan and resolution meetings by scope (seed 001)
    global_owner_role: Role = Role.TECHNICAL_MANAGER
    local_owner_role: Role = Role.CUSTOMER_SERVICE_MANAGER
    # true: the owner by scope is the incident's Incident Commander (the action plan, the update duty and its
    # reminders, send approvals, resolution); a change of scope hands the incident over (seed 001)
    owner_by_scope: bool = False
    # an unassessed report whose assessment time ran out: confirm (and page), disturbance, or remind
    when_unassessed: Unassessed = Unassessed.CONFIRM
    # seed 001: a disturbance is owned (by the owner by scope), its owner told and reminded every so many hours
    # until it is completed or upgraded to an incident; a confirmed incident may be downgraded to one.
    # 0: a disturbance is logged and closed at once, nobody paged.
    disturbance_follow_up_hours: int = Field(default=0, ge=0, le=24 * 30)


class Tier(Strict):
    notify: list[str]  # person ids, "role:<role>" or "schedule:<name>"
    channels: list[Channel] = Field(default_factory=lambda: [Channel.PAGE])
    wait_minutes: int = Field(gt=0)


class Escalation(Strict):
    tiers: list[Tier] = Field(default_factory=list)
    repeat: int = Field(default=0, ge=0)  # how many more times the whole ladder runs


class BusinessHours(Strict):
    timezone: str = "UTC"
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday is 0
    start: time = time(9, 0)
    end: time = time(18, 0)
    out_of_hours_notify: list[str] = Field(default_factory=list)  # leadership, person ids or roles
    out_of_hours_channels: list[Channel] = Field(default_factory=lambda: [Channel.TELEGRAM])

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(zone(self.timezone))
        return local.weekday() in self.days and self.start <= local.time() < self.end


class Response(Strict):
    """Seed 002's algorithm and seed 000's confirmation steps."""

    tag_roles: list[Role] = Field(default_factory=lambda: [Role.RESPONSIBLE_DEVELOPER, Role.CTO, Role.ACCOUNT_MANAGER])
    call_roles: list[Role] = Field(default_factory=lambda: [Role.RESPONSIBLE_DEVELOPER, Role.CTO, Role.ACCOUNT_MANAGER])
    progress_window_minutes: int = Field(default=30, ge=1, le=60)
    ack_minutes: int = Field(default=5, gt=0)
    page_on_confirm: bool = True
    # bridge: everyone joins the standing conference_bridge_url (no call is made per incident);
    # zoom: a Zoom meeting per incident (the standing bridge only where the worker has no Zoom credential)
    conference: Literal["bridge", "zoom"] = "bridge"
    conference_bridge_url: str = ""
    slack_channel_prefix: str = "inc"  # the incident channel's name starts with it, in every chat
    # Where the organisation works: each chat gets the incident's channel, its posts and direct messages
    chats: list[Channel] = Field(default_factory=lambda: [Channel.SLACK], min_length=1)
    rto_warning_ratio: float = Field(default=0.8, gt=0, lt=1)
    # severities whose incident resolves itself when every alert has resolved; never SEV1
    auto_resolve_severities: list[Severity] = Field(default_factory=list)
    # severities confirmed at once, without waiting for a person's initial assessment
    auto_confirm_severities: list[Severity] = Field(default_factory=lambda: [Severity.SEV1])
    # an alert that fires again on a resolved incident (Resolution, Analysis, Publishing) reopens it and
    # pages; false: the Incident Commander is told and decides
    reopen_on_recurrence: bool = True

    # seed 003's decision-makers: a breached RTO or RPO, and a recovery task still late this long after its
    # owner was nudged, reach them
    breach_notify: list[str] = Field(default_factory=lambda: ["role:senior_management"])
    breach_channels: list[Channel] = Field(default_factory=lambda: [Channel.SLACK, Channel.EMAIL])
    task_escalate_after_minutes: int = Field(default=15, gt=0)
    # seed 003's vendor liaison: external parties (comms.external_parties, by name) e-mailed the bridge's link
    # once it is open, through the Communications Lead where the policy asks for her approval
    bridge_parties: list[str] = Field(default_factory=list)

    @field_validator("chats")
    @classmethod
    def _chats_only(cls, value: list[Channel]) -> list[Channel]:
        if not set(value) <= set(CHATS):
            raise ValueError(f"chats are {', '.join(CHATS)}; not {', '.join(c for c in value if c not in CHATS)}")
        return list(dict.fromkeys(value))

    @field_validator("auto_resolve_severities")
    @classmethod
    def _never_sev1(cls, value: list[Severity]) -> list[Severity]:
        if Severity.SEV1 in value:
            raise ValueError("a SEV1 never resolves itself: remove SEV1 from auto_resolve_severities")
        return value


class Cadence(Strict):
    """Seed 002: update the client and leads every 30 minutes while the incident is open."""

    update_minutes: dict[Severity, int] = Field(
        default_factory=lambda: {Severity.SEV1: 30, Severity.SEV2: 30, Severity.SEV3: 60}
    )
    nudge_before_minutes: int = Field(default=5, ge=0)
    leads: list[str] = Field(default_factory=lambda: ["role:cto", "role:account_manager"])
    notify_client_contacts: bool = True
    # seeds 000, 003: internal lists and departments (support leads, account management, sales) by e-mail, and
    # external parties of comms.external_parties (vendors) by name: each status update and the resolution
    lists: list[str] = Field(default_factory=list)
    parties: list[str] = Field(default_factory=list)
    # seed 003: "regular updates ..., even if the situation remains unchanged": an update that falls due
    # without one goes out as "no change since the last update" (the Incident Commander still hears it was missed)
    no_change_updates: bool = False

    @field_validator("lists")
    @classmethod
    def _list_addresses(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if "@" not in a.strip("@")]
        if bad:
            raise ValueError(f"e-mail addresses, not {bad}")
        return value

    def every(self, severity: Severity) -> timedelta | None:
        minutes = self.update_minutes.get(severity)
        return timedelta(minutes=minutes) if minutes else None


class StrategicCustomer(Strict):
    name: str
    contacts: list[str]  # e-mail addresses; each gets a personal message


class Audiences(Strict):
    internal_slack_channel: str = ""
    internal_email: list[str] = Field(default_factory=list)
    strategic_customers: list[StrategicCustomer] = Field(default_factory=list)
    customer_mailing_list: list[str] = Field(default_factory=list)
    statuspage: bool = True


# The external party every service has: its client contacts (seed 002).
CLIENT_CONTACTS = "client_contacts"


class Comms(Strict):
    """Seed 004's business incident and Message Creation Loop."""

    auto_trigger_severities: list[Severity] = Field(default_factory=lambda: [Severity.SEV1])
    phases: list[Phase] = Field(
        default_factory=lambda: [
            Phase.INVESTIGATION,
            Phase.IDENTIFICATION,
            Phase.MONITORING,
            Phase.RESOLUTION,
        ]
    )
    audience_order: list[Audience] = Field(
        default_factory=lambda: [Audience.INTERNAL, Audience.STRATEGIC, Audience.ALL_CUSTOMERS]
    )
    reviewers: list[Role] = Field(default_factory=lambda: [Role.MESSAGING_OFFICER, Role.LEGAL_OFFICER])
    require_elt_approval: bool = True
    # seed 000: every message to an external audience needs the Communications Lead's approval
    communications_lead_approves_external: bool = True
    # seed 000: the resolution message goes out when the Communications Lead sends it (incidentctl
    # send-resolution), internal copies included, rather than at once
    communications_lead_sends_resolution: bool = False
    # Seed 000's external parties (billers, vendors, software providers), by name: e-mail addresses that
    # hear the resolution, and any statement addressed to them. Each service's client contacts are the
    # party "client_contacts" and hear the status updates too (seed 002).
    external_parties: dict[str, list[str]] = Field(default_factory=dict)
    default_estimate_minutes: int = Field(default=15, gt=0)
    # seed 001: when the owner is asked whether and how to tell clients; the message loop drafts client
    # messages only once the owner said "now". Empty: no evaluation points, client messages as any other.
    evaluation_points: list[EvaluationPoint] = Field(default_factory=list)
    recipients: Audiences = Field(default_factory=Audiences)
    # the organisation's own statement templates, <phase>/<audience>.txt.j2 (relative: to the policy file);
    # a template it lacks comes from the repository's templates/statements. Empty: the repository's only.
    templates_dir: str = ""

    @field_validator("external_parties")
    @classmethod
    def _addresses(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for party, addresses in value.items():
            if party == CLIENT_CONTACTS:
                raise ValueError(f"{CLIENT_CONTACTS!r} is each service's client_contacts: name the party otherwise")
            bad = [a for a in addresses if "@" not in a.strip("@")]
            if bad or not addresses:
                raise ValueError(f"party {party!r} needs e-mail addresses, not {bad or 'none'}")
        return value


class PostIncident(Strict):
    """Seeds 000-003: logs, PMO, summary, review. The incident closes when all of it is done."""

    log_dir: str = ""  # empty: the worker's INCIDENT_LOG_DIR
    project_log: bool = True
    global_log: bool = True
    notify_pmo: bool = True
    review_after_hours: int = Field(default=48, gt=0)
    review_reminder_hours: int = Field(default=24, gt=0)
    require_review: bool = True
    require_published_postmortem: bool = True
    # seed 001: whoever closes says the stakeholders are satisfied and which preventive measures are in place
    completion_checks: bool = False
    # who the review invites (person ids, "role:<role>"); empty: the IC, Communications Lead, developer, PM
    review_attendees: list[str] = Field(default_factory=list)
    # seeds 000, 003: the review's changes to the response, communication and recovery plans are recorded
    # (incidentctl plan-updated) before the incident closes
    require_plan_update: bool = False


class Records(Strict):
    """Where the organisation keeps its incident record (workflows/records/): the local log files only, or
    also a Jira issue, a ServiceNow incident or a Confluence page, created at confirmation and kept current."""

    home: RecordHome = RecordHome.FILES
    project: str = ""  # Jira: the project key; Confluence: the space key
    issue_type: str = "Incident"  # Jira
    table: str = "incident"  # ServiceNow
    parent_page_id: str = ""  # Confluence: the page the records go under
    template_id: str = ""  # Confluence: the organisation's incident-log template the page starts from
    # Jira: our status -> the name of the workflow status to move the issue to
    statuses: dict[str, str] = Field(
        default_factory=lambda: {"open": "In Progress", "resolved": "Resolved", "closed": "Closed"}
    )
    fields: dict[str, str] = Field(default_factory=dict)  # peer field -> fixed value, set on create

    @model_validator(mode="after")
    def _where(self) -> Records:
        if self.home in (RecordHome.JIRA, RecordHome.CONFLUENCE) and not self.project:
            raise ValueError(f"records.project: the {self.home.value} project or space key the records go in")
        return self


class FollowUps(Strict):
    """Where the postmortem's action items become issues: Jira (a project) or Linear (a team); "" keeps them
    on the incident only."""

    home: Literal["", "jira", "linear"] = ""
    project: str = ""  # Jira: the project key
    issue_type: str = "Task"  # Jira
    team_id: str = ""  # Linear: the team's id
    fields: dict[str, str] = Field(default_factory=dict)  # Jira: field -> fixed value, set on create
    close_waits: bool = True  # the incident closes only once every action item has its issue

    @model_validator(mode="after")
    def _where(self) -> FollowUps:
        if self.home == "jira" and not self.project:
            raise ValueError("follow_ups.project: the Jira project key the follow-up issues go in")
        if self.home == "linear" and not self.team_id:
            raise ValueError("follow_ups.team_id: the Linear team the follow-up issues go in")
        return self


class Window(Strict):
    """Who may open a window of time over paging (a maintenance window, an on-call override), and for how long.
    `who` empty: any person of the policy."""

    who: list[Role] = Field(default_factory=list)
    longest_hours: int = Field(gt=0)


class Silences(Window):
    who: list[Role] = Field(
        default_factory=lambda: [Role.INCIDENT_COMMANDER, Role.RESPONDER, Role.TECHNICAL_MANAGER, Role.PROJECT_MANAGER]
    )
    longest_hours: int = Field(default=24, gt=0)
    # an alert carrying the critical-criterion label (triage.criterion_label) pages through any window
    critical_passes: bool = True


class Overrides(Window):
    longest_hours: int = Field(default=31 * 24, gt=0)


class Policy(Strict):
    organisation: str = "example"
    paging_provider: str = "opsgenie"  # opsgenie | pagerduty | jsm | direct (each person's notification rules)
    telephony: str = "twilio"  # who sends SMS and places calls: twilio | vonage
    notification_rules: NotificationRules = Field(default_factory=NotificationRules)  # for people without their own
    people: dict[str, Person] = Field(default_factory=dict)
    roles: dict[Role, list[str]] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    triage: Triage = Field(default_factory=Triage)
    escalation: Escalation = Field(default_factory=Escalation)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    response: Response = Field(default_factory=Response)
    cadence: Cadence = Field(default_factory=Cadence)
    comms: Comms = Field(default_factory=Comms)
    post_incident: PostIncident = Field(default_factory=PostIncident)
    records: Records = Field(default_factory=Records)
    follow_ups: FollowUps = Field(default_factory=FollowUps)
    # Slack user id -> person id, for the Slack endpoint (defaults from people's slack_user_id)
    slack_users: dict[str, str] = Field(default_factory=dict)
    # decision name -> roles allowed; merged over DEFAULT_PERMISSIONS
    permissions: dict[str, list[Role]] = Field(default_factory=dict)
    # role -> the roles whose holders may assign it; a role not named: whoever may take assign_role. Never an
    # approver role to oneself (workflows/contracts/trust/authority.py).
    assignments: dict[Role, list[Role]] = Field(default_factory=dict)
    silences: Silences = Field(default_factory=Silences)
    overrides: Overrides = Field(default_factory=Overrides)
    schedules: dict[str, Schedule] = Field(default_factory=dict)  # on-call rotations, named by "schedule:<name>"
    heartbeats: dict[str, Heartbeat] = Field(default_factory=dict)  # POST /heartbeats/<name>

    @field_validator("permissions")
    @classmethod
    def _known_decisions(cls, value: dict[str, list[Role]]) -> dict[str, list[Role]]:
        unknown = sorted(set(value) - set(DEFAULT_PERMISSIONS))
        if unknown:
            raise ValueError(f"unknown decisions {unknown}; known: {sorted(DEFAULT_PERMISSIONS)}")
        return value

    @field_validator("assignments")
    @classmethod
    def _someone_assigns(cls, value: dict[Role, list[Role]]) -> dict[Role, list[Role]]:
        empty = sorted(role.value for role, by in value.items() if not by)
        if empty:
            raise ValueError(f"{empty}: nobody could assign them; name the roles that may, or leave them out")
        return value

    @property
    def keeps_record_elsewhere(self) -> bool:
        """An incident record in a peer (Jira, ServiceNow, Confluence) or follow-up issues are kept current
        from the incident's timeline; the log files alone are not."""
        return self.records.home is not RecordHome.FILES or bool(self.follow_ups.home)

    def digest(self) -> str:
        """What names this policy: the SHA-256 of its JSON. A worker runs only a policy whose digest it has
        read from its own policy file (own_policy.py)."""
        return "sha256:" + hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def rules_for(self, person: Person) -> NotificationRules:
        """The person's notification rules, else the policy's default."""
        return person.notification_rules or self.notification_rules

    def address(self, person_id: str, channel: Channel) -> str:
        """Where `channel` reaches the person ("" nowhere). Paged directly, a page reaches whoever has an address
        for a method of their notification rules, and is addressed to the person."""
        person = self.people[person_id]
        if channel is Channel.PAGE and self.paging_provider == DIRECT:
            rules = self.rules_for(person)
            return person_id if any(person.contact(step.channel) for step in rules.high + rules.low) else ""
        return person.contact(channel)

    def allowed_roles(self, decision: str) -> list[Role]:
        return self.permissions.get(decision, DEFAULT_PERMISSIONS.get(decision, []))

    @field_validator("paging_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PAGING_PROVIDERS:
            raise ValueError(f"paging_provider must be one of {', '.join(PAGING_PROVIDERS)}, not {value!r}")
        return value

    @field_validator("telephony")
    @classmethod
    def _known_telephony(cls, value: str) -> str:
        if value not in TELEPHONY:
            raise ValueError(f"telephony must be {' or '.join(map(repr, TELEPHONY))}, not {value!r}")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> Policy:
        """A role held by an unknown person is caught at load, not at 3 a.m."""
        problems: list[str] = []
        for role, holders in self.roles.items():
            problems += [
                f"roles.{role.value}: {h!r}: held by people or schedules, not roles"
                for h in holders
                if h[:5] == "role:"
            ]
            problems += [f"roles.{role.value}: {e}" for e in self._unknown([h for h in holders if h[:5] != "role:"])]
        for i, tier in enumerate(self.escalation.tiers):
            problems += [f"escalation.tiers[{i}].notify: {e}" for e in self._unknown(tier.notify)]
        problems += [
            f"business_hours.out_of_hours_notify: {e}" for e in self._unknown(self.business_hours.out_of_hours_notify)
        ]
        problems += [f"cadence.leads: {e}" for e in self._unknown(self.cadence.leads)]
        problems += [f"post_incident.review_attendees: {e}" for e in self._unknown(self.post_incident.review_attendees)]
        problems += [f"response.breach_notify: {e}" for e in self._unknown(self.response.breach_notify)]
        if self.triage.owner_by_scope and self.roles.get(Role.INCIDENT_COMMANDER):
            problems.append(
                "roles.incident_commander: with triage.owner_by_scope the owner by scope is the Incident "
                "Commander; remove roles.incident_commander"
            )
        for key, parties in (
            ("cadence.parties", self.cadence.parties),
            ("response.bridge_parties", self.response.bridge_parties),
        ):
            problems += [
                f"{key}: {p!r} is not a party of comms.external_parties"
                for p in parties
                if p not in self.comms.external_parties
            ]
        for name, schedule in self.schedules.items():
            problems += [f"schedules.{name}: unknown person {p!r}" for p in schedule.members() if p not in self.people]
        for name, heartbeat in self.heartbeats.items():
            if heartbeat.service and heartbeat.service not in self.services:
                problems.append(f"heartbeats.{name}.service: unknown service {heartbeat.service!r}")
        for name, service in self.services.items():
            for field in ("owner", "account_manager"):
                person = getattr(service, field)
                if person and person not in self.people:
                    problems.append(f"services.{name}.{field}: unknown person {person!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _one_copy(cls, data: Any, handler: ModelWrapValidatorHandler[Policy], info: ValidationInfo) -> Policy:
        """Every workflow carries its policy in its input, 32 KB once decoded: thousands of cached incidents,
        their message loops and ladders, opened under the same policy, share one frozen copy of it. Only a
        payload's JSON is shared (the data converter's); a policy validated from Python is its own. Defined
        after the other validators, it wraps them: a shared copy is not checked again."""
        if info.mode != "json" or not isinstance(data, dict):
            return handler(data)
        text = to_json(data)
        with _decoding:
            shared = _decoded.pop(text, None)
            if shared is not None:
                _decoded[text] = shared  # the most recently used last
        if shared is None:
            shared = handler(data)
            with _decoding:
                shared = _decoded.setdefault(text, shared)
                while len(_decoded) > SHARED_POLICIES:
                    del _decoded[next(iter(_decoded))]  # the least recently used
        return shared

    def _unknown(self, targets: list[str]) -> list[str]:
        bad = []
        for target in targets:
            if target.startswith("role:"):
                if target[5:] not in Role.__members__.values():
                    bad.append(f"unknown role {target[5:]!r}")
            elif target.startswith(SCHEDULE):
                if target.removeprefix(SCHEDULE) not in self.schedules:
                    bad.append(f"unknown schedule {target.removeprefix(SCHEDULE)!r}; known: {sorted(self.schedules)}")
            elif target not in self.people:
                bad.append(f"unknown person {target!r}")
        return bad

    def person_with(self, field: str, account: str) -> str | None:
        """The person whose `field` is `account`: an account on another system, as a credential from it names them
        (a channel's CONTACT_FIELD, such as Teams' Entra object id, Slack's user id or a phone number; or a register's
        `jira_account_id`, `servicenow_user`). None for an empty account or nobody. Slack's user ids may also be
        mapped to people in `slack_users`."""
        if not account:
            return None
        if field == CONTACT_FIELD[Channel.SLACK] and account in self.slack_users:
            return self.slack_users[account]
        return next((name for name, person in self.people.items() if getattr(person, field) == account), None)


# The decoded policies workflows share (Policy._one_copy): their JSON -> policy, the least recently used
# first. Workflow tasks run on several threads. Frozen models refuse assignment, but not a change to a list
# or dict inside: no code may change a policy in place (tests/conftest.py checks after every test).
_decoded: dict[bytes, Policy] = {}
_decoding = threading.Lock()
