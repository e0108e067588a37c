"""Checking a decision's proof (trust/proof.py) inside a workflow, against the keys its worker trusts.

The keys are set once as the worker starts (`trust`), before any workflow runs, and only ever added to: a replay
verifies the same proofs against the same keys and takes the same decisions.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from temporalio import workflow

from workflows.contracts.trust.proof import Proven


class Unproven(ValueError):
    """A decision without a valid proof; the message says why, for the caller or the timeline."""


P = TypeVar("P", bound=Proven)

_TRUSTED: dict[str, Ed25519PublicKey] = {}


def _load_invalid_signature() -> None:
    """cryptography's compiled code imports InvalidSignature the first time it raises it; inside the SDK's
    workflow sandbox that import aborts the whole process. Raise it once here, as this module loads."""
    try:
        Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key().verify(bytes(64), b"")
    except InvalidSignature:
        pass


_load_invalid_signature()

UNPROVEN = (
    "was sent without the service's proof: a person decides through incidentctl, the HTTP API or Slack, "
    "never straight to Temporal"
)


def key_id(public_key: bytes) -> str:
    """A short name of a public key (raw 32 bytes): the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def trust(public_keys: Iterable[bytes]) -> None:
    """Trust decisions signed with these keys (raw 32-byte ed25519 public keys), from now on in this process."""
    for raw in public_keys:
        _TRUSTED[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)


def trusted_keys() -> list[str]:
    return sorted(_TRUSTED)


def verified(decision: P, name: str, workflow_id: str, run_id: str, used: set[str]) -> tuple[P, str]:
    """The decision as the service signed it, and its proof's nonce (the caller records it once it takes the
    decision); Unproven when it carries no valid proof for this name, this run, not used before."""
    proof = decision.proof
    if proof is None:
        raise Unproven(f"{name} {UNPROVEN}")
    key = _TRUSTED.get(proof.key_id)
    if key is None:
        raise Unproven(f"{name} is signed with key {proof.key_id}, which this worker does not trust")
    try:
        key.verify(base64.b64decode(proof.signature), proof.signed_text())
    except (InvalidSignature, ValueError):
        raise Unproven(f"{name} carries a proof that does not match what was signed") from None
    if (proof.name, proof.workflow_id, proof.run_id) != (name, workflow_id, run_id):
        raise Unproven(
            f"{name} carries a proof made for {proof.name} on another workflow run ({proof.workflow_id}); send it again"
        )
    if proof.nonce in used:
        raise Unproven(f"{name} carries a proof that was used before: each decision is taken once")
    return type(decision).model_validate_json(proof.body), proof.nonce


def verified_here(decision: P, name: str, used: set[str]) -> tuple[P, str]:
    """`verified` for the workflow run this is called in."""
    info = workflow.info()
    return verified(decision, name, info.workflow_id, info.run_id, used)


class Proofs:
    """The proofs a workflow run has taken. A proof is made for one run, so this run's are all it must keep:
    a validator reads a decision's proof, the handler that takes the decision spends it."""

    def __init__(self) -> None:
        self._spent: set[str] = set()

    def read(self, decision: P, name: str) -> tuple[P, str]:
        """The decision as the service signed it, and its proof's nonce; Unproven without a valid, unspent proof."""
        return verified_here(decision, name, self._spent)

    def spend(self, nonce: str) -> None:
        self._spent.add(nonce)

    def take(self, decision: P, name: str) -> P:
        """`read`, and the proof is spent: the decision is taken once."""
        decision, nonce = self.read(decision, name)
        self.spend(nonce)
        return decision
