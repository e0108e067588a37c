"""The shape of every decision rule: a check that may refuse, and an apply that changes the state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflows.contracts.policy import Policy
from workflows.incident.model import IncidentState


class Refusal(ValueError):
    """A decision the rules refuse; the message is the one line the person sees."""


@dataclass(frozen=True)
class Rule:
    check: Callable[[IncidentState, Any, Policy], None]
    apply: Callable[[IncidentState, Any, Policy, datetime], str]
