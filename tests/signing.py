"""The tests' stand-in for the HTTP service's signing key: fixed, so that recorded histories replay with it.

Every test client signs the decisions it sends with it (as the service's client does), and the test process's
workers trust it. A client without it (`unsigned`) is someone with namespace access going straight to Temporal.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client

from client.signing import Signer, SigningInterceptor
from workflows.contracts.trust import verify

SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"incident-orchestrator tests").digest()))
SIGNING = SigningInterceptor(SIGNER)
verify.trust([SIGNER.public_key])


def unsigned(client: Client) -> Client:
    """The same connection without the service's signature: what the Temporal UI or CLI would send."""
    config = client.config()
    config["interceptors"] = [i for i in config["interceptors"] if not isinstance(i, SigningInterceptor)]
    return Client(**config)


def write_keys_file(path: Path) -> Path:
    """A keys file with the tests' public key, for workers the tests start as processes."""
    path.write_text(f"{SIGNER.key_id} {base64.b64encode(SIGNER.public_key).decode()}\n")
    return path
