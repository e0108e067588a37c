"""The local outbox: where deliveries go when the system they are for is not configured.

Each delivery is one JSON line (system, kind, idempotency key, payload), so a laptop with no accounts
runs the whole process and a person can read what would have been sent. A key already in the file is
not written again, which keeps outbox deliveries idempotent under activity retries just like the real
adapters.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()
        self._keys: set[tuple[str, str]] | None = None  # (system, key) already written

    async def deliver(self, system: str, kind: str, key: str, payload: dict[str, Any]) -> str:
        """Append one delivery unless one with the same key is there; returns "outbox"."""
        async with self._lock:
            await asyncio.to_thread(self._append_once, system, kind, key, payload)
        log.info("outbox %s %s %s", system, kind, key)
        return "outbox"

    def _append_once(self, system: str, kind: str, key: str, payload: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._keys is None:
            self._keys = {(entry["system"], entry["key"]) for entry in self.read()}
        if key and (system, key) in self._keys:
            return
        self._keys.add((system, key))
        line = {"at": datetime.now(UTC).isoformat(), "system": system, "kind": kind, "key": key,
                "payload": payload}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, default=str) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = []
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    if line.strip():  # a line torn by a killed worker: it was never a delivery
                        log.warning("outbox %s line %d is not JSON; skipped", self.path, number)
        return entries
