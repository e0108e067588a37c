"""The people a policy names and how each is reached: their address on every channel (CONTACT_FIELD, the one
definition of what a channel needs), their accounts on other systems, and their own notification rules for
direct paging. Part of the policy file (policy.py holds the rest of its schema).
"""

from __future__ import annotations

import re
from datetime import time

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workflows.contracts.vocabulary import Channel
from workflows.oncall.rotation import known_zone


class Strict(BaseModel):
    """A section of the policy file. Unknown keys in a policy are typos: refuse them rather than silently ignore
    them. Frozen: a workflow never changes the policy it runs under, and workflows share one decoded copy
    (Policy._one_copy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NotificationStep(Strict):
    """One contact method of a person's notification rules, tried `after_minutes` into a page."""

    channel: Channel
    after_minutes: int = Field(default=0, ge=0, le=24 * 60)

    @field_validator("channel")
    @classmethod
    def _not_the_page_itself(cls, channel: Channel) -> Channel:
        if channel is Channel.PAGE:
            raise ValueError("a notification rule names a contact method (push, sms, voice, ...), not 'page'")
        return channel


class QuietHours(Strict):
    """Low-urgency pages wait until the quiet hours end; high urgency never waits."""

    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known(cls, timezone: str) -> str:
        return known_zone(timezone)


class NotificationRules(Strict):
    """How a person is paged when the policy pages directly (`paging_provider = "direct"`): `high` for the
    urgent severities (SEV1, SEV2), `low` for the rest; each a list of contact methods with their delay."""

    high: list[NotificationStep] = Field(default_factory=list, max_length=10)
    low: list[NotificationStep] = Field(default_factory=list, max_length=10)
    quiet_hours: QuietHours | None = None


class Person(Strict):
    name: str
    slack_user_id: str = ""
    teams_user_id: str = ""  # the person's Entra ID (AAD) object id, as Teams sends it
    email: str = ""
    telegram_chat_id: str = ""
    pager_id: str = ""  # the person's user name or e-mail at the paging provider
    phone: str = ""  # E.164, for SMS and voice calls
    ntfy_topic: str = ""  # the person's push topic on the ntfy server
    jira_account_id: str = ""  # the incident record's assignee in Jira, and who a Jira webhook names
    servicenow_user: str = ""  # the same in ServiceNow (the sys_user's user_name)
    linear_user_id: str = ""  # who a follow-up issue in Linear is assigned to
    notification_rules: NotificationRules | None = None  # None: the policy's default rules

    @field_validator("phone")
    @classmethod
    def _e164(cls, phone: str) -> str:
        if phone and not re.fullmatch(r"\+[1-9][0-9]{6,14}", phone):
            raise ValueError(f"{phone!r} is not an E.164 number: '+', the country code, then the number, no spaces")
        return phone

    def contact(self, channel: Channel) -> str:
        """The person's address on a channel ("" when they have none there)."""
        value: str = getattr(self, CONTACT_FIELD[channel])
        return value

    def account(self, register: str) -> str:
        """The person's account in a register, "jira", "servicenow" or "linear" ("" when they have none there)."""
        return str(getattr(self, ACCOUNT_FIELD[register], "")) if register in ACCOUNT_FIELD else ""

    def contacts(self) -> list[str]:
        """Each address once (SMS and voice share the phone number)."""
        return list(dict.fromkeys(c for channel in Channel if (c := self.contact(channel))))


# The field of a person that each channel reaches them at: the one definition of what a channel needs.
CONTACT_FIELD: dict[Channel, str] = {
    Channel.PAGE: "pager_id",
    Channel.SLACK: "slack_user_id",
    Channel.TEAMS: "teams_user_id",
    Channel.EMAIL: "email",
    Channel.TELEGRAM: "telegram_chat_id",
    Channel.PUSH: "ntfy_topic",
    Channel.SMS: "phone",
    Channel.VOICE: "phone",
}

# The field of a person that names them in each register: the record's assignee, a follow-up's owner, and who a
# register's webhook says acted.
ACCOUNT_FIELD: dict[str, str] = {"jira": "jira_account_id", "servicenow": "servicenow_user", "linear": "linear_user_id"}
