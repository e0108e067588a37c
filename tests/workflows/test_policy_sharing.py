"""The policy every workflow carries in its input is decoded once: workflows opened under the same policy
share one frozen copy of it (workflows.contracts.policy, Policy._one_copy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.workflows.helpers import make_policy
from workflows.contracts import policy as policy_module
from workflows.contracts.policy import SHARED_POLICIES, Policy
from workflows.contracts.vocabulary import Severity
from workflows.incident.inputs import EscalationInput

CONVERTER = pydantic_data_converter.payload_converter


@pytest.fixture(autouse=True)
def nothing_shared_yet() -> Iterator[None]:
    with policy_module._decoding:
        policy_module._decoded.clear()
    yield


def ladder(policy: Policy, incident_id: str) -> EscalationInput:
    return EscalationInput(incident_id=incident_id, policy=policy, title="Checkout down", severity=Severity.SEV1)


def decoded(value: EscalationInput) -> EscalationInput:
    """What a workflow receives: its input encoded for the server and decoded by the worker."""
    payload = CONVERTER.to_payloads([value])[0]
    decoded_value: EscalationInput = CONVERTER.from_payloads([payload], [EscalationInput])[0]
    return decoded_value


def test_workflows_opened_under_one_policy_share_one_decoded_copy() -> None:
    policy = make_policy()
    first, second = decoded(ladder(policy, "INC-1")), decoded(ladder(policy, "INC-2"))
    assert first.incident_id != second.incident_id
    assert first.policy is second.policy, "each workflow decoded its own copy of the same policy"
    assert first.policy == policy


def test_a_changed_policy_is_its_own_copy() -> None:
    policy = make_policy()
    edited = policy.model_copy(update={"organisation": "edited"})
    before, after = decoded(ladder(policy, "INC-1")), decoded(ladder(edited, "INC-2"))
    assert before.policy is not after.policy
    assert (before.policy.organisation, after.policy.organisation) == (policy.organisation, "edited")


def test_a_policy_validated_from_python_is_its_own() -> None:
    """Only a payload's policy is shared: one built in Python (the policy file, a test) may be changed."""
    raw = make_policy().model_dump()
    assert Policy.model_validate(raw) is not Policy.model_validate(raw)


def test_a_shared_policy_refuses_changes() -> None:
    """Shared by many workflows, a change made by one would reach the others, and their replays."""
    shared = decoded(ladder(make_policy(), "INC-1")).policy
    with pytest.raises(ValidationError, match="frozen"):
        shared.organisation = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        shared.escalation.tiers[0].wait_minutes = 1  # type: ignore[misc]


def test_the_policy_in_use_stays_shared_while_others_come_and_go() -> None:
    """The least recently used policy is dropped, never the one incidents are being opened under."""
    policy = make_policy()
    in_use = decoded(ladder(policy, "INC-1")).policy
    edits = [policy.model_copy(update={"organisation": f"edit {n}"}) for n in range(2 * SHARED_POLICIES)]
    first_edit = decoded(ladder(edits[0], "INC-2")).policy
    for n, edit in enumerate(edits[1:]):
        decoded(ladder(edit, f"INC-{n}"))
        assert decoded(ladder(policy, "INC-again")).policy is in_use
    assert len(policy_module._decoded) == SHARED_POLICIES
    assert decoded(ladder(edits[0], "INC-3")).policy is not first_edit, "an unused policy was kept"
