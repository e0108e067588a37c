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
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
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
CHECK = "check_own_policy"  # the local activity that answers, so that a replay follows the first answer


class PolicyCheck(BaseModel):
    digest: str


class OwnPolicies:
    """The digests of every policy this worker's file has held since the worker started."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read_files: set[str] = set()  # digests of the file's bytes already read
        self._digests: set[str] = set()
        self._lock = threading.Lock()
        self.current = self._read()  # a file that cannot be read stops the worker at start (PolicyError)

    @activity.defn(name=CHECK)
    async def check(self, asked: PolicyCheck) -> str:
        """Why a start under this policy may not run here, or "" when it may."""
        if asked.digest not in self._digests:
            try:
                self._read()
            except (OSError, PolicyError) as err:
                log.warning("policy file %s not read again: %s", self.path, err)
        if asked.digest in self._digests:
            return ""
        return (
            f"policy {asked.digest} is not one this worker loaded from {self.path} (it runs {self.current}); "
            "an incident runs only under the workers' policy file: deploy a new policy to the workers first"
        )

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
    """Checks each run's input before the workflow sees it. Every worker and replayer of our workflows has it;
    the worker also runs OwnPolicies.check."""

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _Inbound


class _Inbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        refusal = await _refusal(input.args[0] if input.args else None)
        if refusal:
            info = workflow.info()
            workflow.logger.warning("refused %s %s: %s", info.workflow_type, info.workflow_id, refusal)
            raise ApplicationError(refusal, type=REFUSED, non_retryable=True)
        return await super().execute_workflow(input)


async def _refusal(start: Any) -> str:
    """Why this run's input may not run here, or "" when it may."""
    policy = getattr(start, "policy", None)
    if not isinstance(policy, Policy) or not _from_outside(workflow.info()):
        return ""
    if getattr(start, "state", None) is not None:
        return "a workflow started from outside carries no state: only its own continue-as-new does"
    # Asked of the worker (its file), answered once: a replay reads the answer from the history, so an incident
    # accepted under last month's file still replays on a worker that has read only this month's.
    answer: str = await workflow.execute_local_activity(
        CHECK,
        PolicyCheck(digest=policy.digest()),
        result_type=str,
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=5)),
    )
    return answer


def _from_outside(info: workflow.Info) -> bool:
    """Started by a client rather than by one of our workflows: neither a child nor our continue-as-new. A
    workflow retry or a cron run also continues an earlier run, but only a client can ask for those."""
    continued = info.continued_run_id is not None and info.attempt == 1 and not info.cron_schedule
    return info.parent is None and not continued
