"""The postmortem's action items: who adds one, what it records, and what the close waits for.

Plain functions over the state, like workflows/incident/rules.py, which merges ACTION_ITEM_RULES.
"""

from __future__ import annotations

from datetime import datetime

from workflows.contracts.policy import Policy
from workflows.contracts.refusal import Refusal, Rule
from workflows.incident.model import ActionItem, AddActionItem, Decision, IncidentState

# An incident's follow-ups are a short list: this bounds what its state carries.
MAX_ACTION_ITEMS = 50


def _check_add(s: IncidentState, d: AddActionItem, policy: Policy) -> None:
    if d.owner not in policy.people:
        raise Refusal(f"{d.owner!r} is not a person in the policy: an action item needs an owner who is")
    if len(s.action_items) >= MAX_ACTION_ITEMS:
        raise Refusal(f"{s.incident_id} has {MAX_ACTION_ITEMS} action items already; track more in the issues")


def _add(s: IncidentState, d: AddActionItem, policy: Policy, now: datetime) -> str:
    item = ActionItem(item_id=f"A{len(s.action_items) + 1}", title=d.title, owner=d.owner, due=d.due, added_by=d.actor)
    s.action_items.append(item)
    return f"action item {item.item_id} for {d.owner}{f', due {d.due:%Y-%m-%d}' if d.due else ''}: {d.title}"


ACTION_ITEM_RULES: dict[type[Decision], Rule] = {AddActionItem: Rule(_check_add, _add)}


def follow_ups_waiting(s: IncidentState, policy: Policy) -> list[str]:
    """The action items whose issue the close waits for (policy `follow_ups.close_waits`)."""
    if not policy.follow_ups.home or not policy.follow_ups.close_waits:
        return []
    return [a.item_id for a in s.action_items if not a.issue]


def listed(s: IncidentState) -> str:
    """The action items as the postmortem and the record list them, each with its issue ("" without any)."""
    if not s.action_items:
        return ""
    return "Action items:\n" + "\n".join(
        f"- {a.item_id} {a.title} (owner {a.owner}{f', due {a.due:%Y-%m-%d}' if a.due else ''})"
        + (f": {a.issue} {a.url}" if a.issue else "")
        for a in s.action_items
    )
