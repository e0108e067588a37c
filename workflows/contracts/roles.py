"""What an incident adds to the policy's roles, so that Policy.holders answers who holds a role at a moment.

One answer for the incident, its escalation ladder and its message loop: a role is held by the person the
incident assigned it to and by the policy's holders of it, a `schedule:<name>` holder being whoever is on call
in that schedule now.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from workflows.contracts.vocabulary import Role


class RoleHolders(BaseModel):
    """Who the incident assigned a role to (a person's decision, a hand-over, or the service's owner and account
    manager at confirmation) and who is on call in each schedule, as last looked up (at confirmation and at each
    new round of paging)."""

    assigned: dict[Role, str] = Field(default_factory=dict)
    on_call: dict[str, str] = Field(default_factory=dict)  # schedule name -> the person on call in it
