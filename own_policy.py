"""A worker runs only its own policy: a workflow started from outside under any other is refused.

The policy names the people the company's Slack, e-mail and paging accounts reach and the directory its logs
are written to. An incident carries the policy it was opened under in its input, so whoever can start a
workflow could otherwise hand the worker a policy of their own. The worker compares the input's policy, by
digest, with what its policy file (INCIDENT_POLICY) has held since the worker started; the file is read again
when a start names a policy it does not know, so an edited file needs no restart. A refused start fails at
its first workflow task, before any side effect, with the reason in its history and in the worker's log.

What a workflow hands on itself is not checked again: its continue-as-new (the policy it was opened under,
perhaps since replaced in the file: an edit never rewrites a running incident) and its children (the
escalation ladder, the message loop). A start from outside carries no state either: state comes only with
the workflow's own continue-as-new, and it holds queued deliveries with their recipients.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from policy_file import PolicyError, load_policy
from workflows.contracts.policy import Policy

log = logging.getLogger("worker")

REFUSED = "ForeignPolicy"  # the failure type of a refused start


class OwnPolicies:
    """The digests of every policy this worker's file has held since the worker started."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read_files: set[str] = set()  # digests of the file's bytes already read
        self._digests: set[str] = set()
        self._lock = threading.Lock()  # workflow tasks run on several threads
        self.current = self._read()  # a file that cannot be read stops the worker at start (PolicyError)

    def holds(self, policy: Policy) -> bool:
        digest = policy.digest()
        if digest in self._digests:
            return True
        try:
            self._read()
        except (OSError, PolicyError) as err:
            log.warning("policy file %s not read again: %s", self.path, err)
        return digest in self._digests

    def _read(self) -> str:
        with self._lock:
            raw = hashlib.sha256(self.path.read_bytes()).hexdigest() if self.path.exists() else ""
            if raw in self._read_files:
                return self.current
            policy = load_policy(self.path)
            self.current = policy.digest()
            self._digests.add(self.current)
            self._read_files.add(raw)
            return self.current


class OwnPolicyInterceptor(Interceptor):
    """Checks each run's input before the workflow sees it (build_worker installs it)."""

    def __init__(self, own: OwnPolicies) -> None:
        self.own = own

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        own = self.own

        class Inbound(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                refusal = _refusal(own, input.args[0] if input.args else None)
                if refusal:
                    info = workflow.info()
                    log.warning("refused %s %s: %s", info.workflow_type, info.workflow_id, refusal)
                    raise ApplicationError(refusal, type=REFUSED, non_retryable=True)
                return await super().execute_workflow(input)

        return Inbound


def _refusal(own: OwnPolicies, start: Any) -> str:
    """Why this run's input may not run here, or "" when it may."""
    policy = getattr(start, "policy", None)
    # A replay re-runs a start that was accepted when it first ran: the file may have moved on since.
    if not isinstance(policy, Policy) or workflow.unsafe.is_replaying() or not _from_outside(workflow.info()):
        return ""
    if getattr(start, "state", None) is not None:
        return "a workflow started from outside carries no state: only its own continue-as-new does"
    with workflow.unsafe.sandbox_unrestricted():  # reading the policy file again is I/O
        if own.holds(policy):
            return ""
    return (
        f"policy {policy.digest()} is not one this worker loaded from {own.path} (it runs {own.current}); "
        "an incident runs only under the workers' policy file: deploy a new policy to the workers first"
    )


def _from_outside(info: workflow.Info) -> bool:
    """Started by a client rather than by one of our workflows: neither a child nor our continue-as-new. A
    workflow retry or a cron run also continues an earlier run, but only a client can ask for those."""
    continued = info.continued_run_id is not None and info.attempt == 1 and not info.cron_schedule
    return info.parent is None and not continued
