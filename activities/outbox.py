"""The local outbox: where deliveries go when the system they are for is not configured.

Each delivery is one JSON line (system, kind, idempotency key, payload), so a laptop with no accounts
runs the whole process and a person can read what would have been sent. A key already in the file is
not written again, which keeps outbox deliveries idempotent under activity retries just like the real
adapters: also when the retry runs in another worker process on the machine, since each write first
reads what other processes appended, under a lock on the file.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from workflows.contracts.activity_io import RecordWrite, RecordWritten

log = logging.getLogger(__name__)

CATCH_UP_AT_ONCE = 64 * 1024  # bytes others appended that a write in the event loop may read first


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: set[tuple[str, str]] = set()  # (system, key) in the file up to _read_up_to
        self._read_up_to = 0  # bytes of the file already read into _keys

    async def deliver(self, system: str, kind: str, key: str, payload: dict[str, Any]) -> str:
        """Append one delivery unless one with the same key is there; returns "outbox".

        Written in the event loop when it is quick: appending a line to a local file takes microseconds. Handed to
        a thread under one lock, as every line was, each cost more than its write, and in an alert storm a page's
        line queued behind every other delivery's (seconds, at 30 SEV1/s). When another process (or this one's
        thread) holds the file's lock, or much was appended since the last look, the line is written in a thread,
        so the event loop never waits on the file."""
        if not self._append_once(system, kind, key, payload, wait=False):
            await asyncio.to_thread(self._append_once, system, kind, key, payload, wait=True)
        log.info("outbox %s %s %s", system, kind, key)
        return "outbox"

    def _append_once(self, system: str, kind: str, key: str, payload: dict[str, Any], *, wait: bool) -> bool:
        """Append the line under the file's lock; False, having done nothing, when `wait` is False and that
        would mean waiting for the lock or reading more than CATCH_UP_AT_ONCE bytes first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {
            "at": datetime.now(UTC).isoformat(),
            "system": system,
            "kind": kind,
            "key": key,
            "delivered": False,  # this line is all that happened: the system has no credential here
            "note": f"not delivered: {system} is not configured",
            "payload": payload,
        }
        with self.path.open("a+b") as out:
            try:  # other worker processes append to the same file; so may this one's thread
                fcntl.flock(out, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            try:
                if not wait and out.seek(0, 2) - self._read_up_to > CATCH_UP_AT_ONCE:
                    return False
                torn = self._catch_up(out)
                if key and (system, key) in self._keys:
                    return True
                # a line torn by a killed worker is ended first, so it does not swallow this one
                out.write((b"\n" if torn else b"") + (json.dumps(line, default=str) + "\n").encode())
                out.flush()
                self._keys.add((system, key))
                self._read_up_to = out.tell()
                return True
            finally:
                fcntl.flock(out, fcntl.LOCK_UN)

    def _catch_up(self, out: IO[bytes]) -> bool:
        """Read the keys appended since the last look (by any process); True when the file ends mid-line."""
        out.seek(0, 2)
        end = out.tell()
        if end < self._read_up_to:  # the file was replaced or truncated: start over
            self._keys, self._read_up_to = set(), 0
        out.seek(self._read_up_to)
        for line in out.read(end - self._read_up_to).splitlines(keepends=True):
            entry = _entry(line)
            if entry is not None:
                self._keys.add((str(entry.get("system")), str(entry.get("key"))))
        self._read_up_to = end
        if end == 0:
            return False
        out.seek(end - 1)
        return out.read(1) != b"\n"

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = []
        with self.path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                entry = _entry(line)
                if entry is not None:
                    entries.append(entry)
                elif line.strip():  # a line torn by a killed worker: it was never a delivery
                    log.warning("outbox %s line %d is not JSON; skipped", self.path, number)
        return entries


def _entry(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return entry if isinstance(entry, dict) else None


async def record_to_outbox(outbox: Outbox, system: str, write: RecordWrite) -> RecordWritten:
    """An incident record for a system with no credential here: each write a line, keyed by what it holds."""
    digest = hashlib.sha256(write.model_dump_json().encode()).hexdigest()[:16]
    await outbox.deliver(system, "record", f"{write.key}:{digest}", write.model_dump(mode="json"))
    return RecordWritten(record_id=write.record_id or write.key, url="outbox")
