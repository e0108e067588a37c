"""The service's side of workflows/contracts/trust/proof.py: its signing key, and a Temporal client that signs.

A client built with `SigningInterceptor` signs every Update and Signal whose argument is a decision (a `Proven`
model), for the run of the workflow it goes to. The HTTP service's client signs what its API and Slack endpoint
send, once they set the decision's person from the credential; the drill's client signs with a key of its own.
The private key never leaves the process that signs; workers are given only the public keys (`DECISION_KEYS`).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.api.enums.v1 import ResourceExhaustedCause
from temporalio.api.errordetails.v1 import ResourceExhaustedFailure
from temporalio.client import (
    Client,
    DescribeWorkflowInput,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowUpdateInput,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.contracts.trust import verify
from workflows.contracts.trust.proof import Proof, Proven


class Signer:
    """One ed25519 private key: proves decisions for one workflow run each."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = verify.key_id(self.public_key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    def pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def prove(self, decision: Proven, name: str, workflow_id: str, run_id: str) -> Proven:
        """The decision with a proof that this is what the service sends as `name` to that run."""
        unsigned = Proof(
            key_id=self.key_id,
            name=name,
            workflow_id=workflow_id,
            run_id=run_id,
            nonce=secrets.token_hex(16),
            signed_at=datetime.now(UTC).isoformat(timespec="seconds"),
            body=decision.model_dump_json(exclude={"proof"}),
            signature="",
        )
        signature = base64.b64encode(self._key.sign(unsigned.signed_text())).decode()
        return decision.model_copy(update={"proof": unsigned.model_copy(update={"signature": signature})})


def signing_key(path: Path, keys_file: Path) -> Signer:
    """The service's key at `path`, made on first use (readable only by its owner), its public key added to
    `keys_file`, the keys workers trust (make run shares the folder; elsewhere copy the line to the workers')."""
    if path.exists():
        signer = Signer(_private_key(path))
    else:
        signer = Signer.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(signer.pem())
    line = f"{signer.key_id} {base64.b64encode(signer.public_key).decode()}"
    known = keys_file.read_text().splitlines() if keys_file.exists() else []
    if line not in known:
        keys_file.parent.mkdir(parents=True, exist_ok=True)
        with keys_file.open("a") as out:
            out.write(line + "\n")
    return signer


def _private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an ed25519 private key")
    return key


def public_keys(keys_file: Path) -> list[bytes]:
    """The public keys in a keys file: one `<key id> <base64 of the raw key>` per line; # starts a comment."""
    if not keys_file.exists():
        return []
    keys = []
    for number, line in enumerate(keys_file.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        raw = base64.b64decode(words[-1])
        if len(raw) != 32:
            raise ValueError(f"{keys_file}:{number}: not an ed25519 public key (32 bytes in base64)")
        keys.append(raw)
    return keys


class SigningInterceptor(Interceptor):
    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Signing(next, self.signer)


class _Signing(OutboundInterceptor):
    """Signs for the run the decision reaches. Without a run named, that is the workflow's latest run, read just
    before sending, and the decision is addressed to that run alone. Should the run continue as new before the
    decision arrives, Temporal answers that it is closing or closed; the decision waits for the run that carries
    on and is signed again for it (at most RUN_CHANGES times). A decision never reaches a run its proof was not
    made for, where it would be refused."""

    def __init__(self, next: OutboundInterceptor, signer: Signer) -> None:
        super().__init__(next)
        self.signer = signer

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> WorkflowUpdateHandle[Any]:
        # One id for every send (the SDK would pick one per send): a run knows an update its predecessor applied.
        input = dataclasses.replace(input, update_id=input.update_id or str(uuid.uuid4()))
        return await self._deliver(input, input.update, super().start_workflow_update)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        return await self._deliver(input, input.signal, super().signal_workflow)

    async def _deliver(self, input: _Input, name: str, send: Callable[[_Input], Awaitable[_Answer]]) -> _Answer:
        if len(input.args) != 1 or not isinstance(input.args[0], Proven):
            return await send(input)
        run_id = input.run_id or (await self._latest(input)).run_id
        run_changes = 0
        while True:
            proven = self.signer.prove(input.args[0], name, input.id, run_id)
            try:
                return await send(dataclasses.replace(input, args=[proven], run_id=run_id))
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                # Closing or closed: wait for the next run. Cut off (an update whose run continued as new while
                # it waited is cancelled): follow only a next run that is there already.
                ending = isinstance(err, RPCError) and _run_ending(err)
                cut_off = isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError)
                if input.run_id is not None or not (ending or cut_off) or run_changes == RUN_CHANGES:
                    raise
                following = await self._successor(input, run_id, SUCCESSOR_WITHIN if ending else timedelta(0))
                if following is None:  # the workflow itself has ended, or no run follows this one
                    raise
                run_id, run_changes = following, run_changes + 1

    async def _latest(self, input: _Input) -> WorkflowExecutionDescription:
        return await self.next.describe_workflow(
            DescribeWorkflowInput(
                id=input.id, run_id=None, rpc_metadata=input.rpc_metadata, rpc_timeout=input.rpc_timeout
            )
        )

    async def _successor(self, input: _Input, run_id: str, within: timedelta) -> str | None:
        """The run that carries on after `run_id`, once it has started; None when none does `within`."""
        deadline = time.monotonic() + within.total_seconds()
        while True:
            latest = await self._latest(input)
            if latest.run_id != run_id:
                return latest.run_id
            if latest.status is not WorkflowExecutionStatus.RUNNING or time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)


_Input = TypeVar("_Input", StartWorkflowUpdateInput, SignalWorkflowInput)
_Answer = TypeVar("_Answer")

# How often a decision follows a workflow that continues as new while it is on its way: a run lasts for
# hundreds of decisions, so more than one change on the way means something else is wrong.
RUN_CHANGES = 2
# A run that is closing hands on to the next within a workflow task: milliseconds with a worker running.
SUCCESSOR_WITHIN = timedelta(seconds=10)


def _run_ending(err: RPCError) -> bool:
    """Temporal's answer to a message addressed to a run that has closed (NOT_FOUND) or is closing: its last task
    has completed, and the server refuses with RESOURCE_EXHAUSTED, cause BUSY_WORKFLOW, "workflow is closing". The
    same cause without those words is a run busy for another reason, which this does not wait out."""
    if err.status == RPCStatusCode.NOT_FOUND:
        return True
    if err.status != RPCStatusCode.RESOURCE_EXHAUSTED or err.grpc_status is None or "closing" not in err.message:
        return False
    for detail in err.grpc_status.details:
        failure = ResourceExhaustedFailure()
        if detail.Unpack(failure) and failure.cause == ResourceExhaustedCause.RESOURCE_EXHAUSTED_CAUSE_BUSY_WORKFLOW:
            return True
    return False


def signing(client: Client, signer: Signer) -> Client:
    """The same connection, signing decisions with `signer`."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], SigningInterceptor(signer)]
    return Client(**config)
