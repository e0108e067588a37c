"""The one data converter every client and worker uses: pydantic payloads, encrypted when payload keys are set.

With `PAYLOAD_KEYS` set, every payload (workflow inputs and results, signals, updates, queries, activity
arguments, heartbeat details, memos, summaries) and every failure's message and stack trace reach Temporal
as AES-256-GCM ciphertext: contact details never sit in a history in clear. Without keys, payloads are
plain JSON, as the SDK writes them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """PAYLOAD_KEYS that cannot be used; the message says which entry and why, never a key."""


def parse_keys(text: str) -> dict[str, bytes]:
    """`id:base64key,id:base64key`: key id -> key, the first the one that encrypts. Keys are 32 bytes
    (AES-256); ids are short names written beside each payload so that the right key decrypts it."""
    keys: dict[str, bytes] = {}
    for number, entry in enumerate(part.strip() for part in text.split(",") if part.strip()):
        key_id, colon, encoded = entry.partition(":")
        if not colon or not key_id.strip():
            raise PayloadKeyError(f"PAYLOAD_KEYS entry {number + 1} is not id:base64key")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error as err:
            raise PayloadKeyError(f"PAYLOAD_KEYS key {key_id.strip()!r} is not base64") from err
        if len(key) != 32:
            raise PayloadKeyError(f"PAYLOAD_KEYS key {key_id.strip()!r} is {len(key)} bytes, not 32")
        if key_id.strip() in keys:
            raise PayloadKeyError(f"PAYLOAD_KEYS names key {key_id.strip()!r} twice")
        keys[key_id.strip()] = key
    if not keys:
        raise PayloadKeyError("PAYLOAD_KEYS names no key")
    return keys


def new_key() -> str:
    """A fresh key, base64, for PAYLOAD_KEYS."""
    return base64.b64encode(os.urandom(32)).decode()


class EncryptionCodec(PayloadCodec):
    """AES-GCM over each whole payload (its metadata too), with the key's id beside the ciphertext.

    The first key encrypts; every key decrypts what carries its id, so a key can be rotated: put the new one
    first and keep the old ones until no history that needs them is retained. A payload that is not encrypted
    (written before keys were set, or sent by a tool without the codec) is passed through as it is.
    """

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.key_id = next(iter(keys))
        self.ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self.ciphers[self.key_id]
        sealed = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), None)
            sealed.append(Payload(metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()}, data=data))
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(payload) for payload in payloads]

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self.ciphers.get(key_id)
        if cipher is None:
            raise ValueError(f"payload encrypted with key {key_id!r}, which PAYLOAD_KEYS does not hold")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        except InvalidTag as err:
            raise ValueError(f"payload under key {key_id!r} does not decrypt: altered, or another key") from err
        return Payload.FromString(plain)


def data_converter(payload_keys: str | None) -> DataConverter:
    """Pydantic payloads; with keys, encrypted, and failures' messages and stack traces moved into an
    encrypted payload (they name recipients: `SMTP refused ops@client.example`)."""
    if not payload_keys:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(parse_keys(payload_keys)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


if __name__ == "__main__":  # python -m data_converter: a new key to put in PAYLOAD_KEYS
    print(new_key())
