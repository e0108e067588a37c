"""A decision proven to come through a way in that knows its person: the service's signature, checked by the workflow.

The HTTP service (its API and its Slack endpoint) and the drill sign each decision they send with an ed25519 key only
they hold (client/signing.py). A workflow takes a decision only with a proof from a key its worker trusts, made for
this workflow run and this decision's name, and only once (trust/verify.py). A decision sent straight
to Temporal (the Temporal UI, `temporal workflow update` or `signal`) carries no proof and is refused.
"""

from __future__ import annotations

import json

from pydantic import BaseModel


class Proof(BaseModel):
    """The service's word that `body` is the decision its person took, for one run of one workflow."""

    key_id: str
    name: str  # the decision's name (the Update or Signal it travels as)
    workflow_id: str
    run_id: str
    nonce: str
    signed_at: str  # ISO 8601, for people reading the history
    body: str  # the decision as signed (JSON, without its proof): what the workflow acts on
    signature: str  # base64 of the ed25519 signature over signed_text()

    def signed_text(self) -> bytes:
        fields = [self.key_id, self.name, self.workflow_id, self.run_id, self.nonce, self.signed_at, self.body]
        return json.dumps(fields, separators=(",", ":")).encode()


class Proven(BaseModel):
    """A decision that carries the service's proof (set by client/signing.py, never by the person)."""

    proof: Proof | None = None
