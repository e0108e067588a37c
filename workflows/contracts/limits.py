"""How large an alert may be: the one table the door (starter/http/alert_formats.py) refuses by and the
AlertEvent model shortens by, so that no alert can stop its own page.

Sizes are UTF-8 bytes, never characters: Temporal's limits (search attributes, the UI's summary, a
history's size) count bytes, and so do the paging providers. The README lists these figures.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Limit(BaseModel):
    """The most bytes a text may have; for a map, also how many entries and how long a key."""

    model_config = ConfigDict(frozen=True)

    value_bytes: int
    entries: int = 0
    key_bytes: int = 0


# PagerDuty's summary takes 1,024 characters; a title over it would be refused at every tier.
TITLE = Limit(value_bytes=1024)
# OpsGenie's description takes 15,000 characters.
DESCRIPTION = Limit(value_bytes=15_000)
# A keyword search attribute (IncidentService) and the UI's summary line it appears in stay small.
SERVICE = Limit(value_bytes=200)
DEDUP_KEY = Limit(value_bytes=1024)
FINGERPRINT = Limit(value_bytes=256)
WORD = Limit(value_bytes=64)  # a severity, a status, a version: words, not text
LINK = Limit(value_bytes=2048)
LINKS = Limit(value_bytes=2048, entries=16)
LABELS = Limit(value_bytes=1024, entries=64, key_bytes=128)
ANNOTATIONS = Limit(value_bytes=15_000, entries=64, key_bytes=128)
DATADOG_TAGS = Limit(value_bytes=64 * (128 + 1024))  # a label's worth per tag, as many as LABELS allows

# Temporal's default limit on one search attribute value is 2 KB (the dev server refuses a 3 KB IncidentService
# and so the task that pages). The static summary is one line in the UI's list: 300 bytes keep it one, under
# any server's limit on user metadata (the dev server we test against sets none).
SEARCH_ATTRIBUTE_BYTES = 255
SUMMARY_BYTES = 300
# A run continues as new past this many bytes of history: Temporal warns at 10 MB and ends a run at 50 MB.
HISTORY_BYTES = 8 * 1024 * 1024


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, never splitting a character."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode(errors="ignore")


def size(text: str) -> int:
    return len(text.encode())


def over(text: str, limit: Limit) -> str | None:
    """Why `text` is over the limit, or None."""
    n = size(text)
    return f"{n} bytes, over the limit of {limit.value_bytes}" if n > limit.value_bytes else None


def map_over(entries: dict[str, str], limit: Limit) -> str | None:
    """Why a map of labels or annotations is over the limit (naming the key), or None."""
    if len(entries) > limit.entries:
        return f"{len(entries)} entries, over the limit of {limit.entries}"
    for key, value in entries.items():
        if size(key) > limit.key_bytes:
            return f"key {cut(key, 40)!r}...: {size(key)} bytes, over the limit of {limit.key_bytes}"
        if size(value) > limit.value_bytes:
            return f"{key!r}: {size(value)} bytes, over the limit of {limit.value_bytes}"
    return None


def cut_map(entries: dict[str, str], limit: Limit) -> dict[str, str]:
    """The first `limit.entries` entries, keys and values cut to their limits."""
    kept: dict[str, str] = {}
    for key, value in entries.items():
        if len(kept) == limit.entries:
            break
        kept.setdefault(cut(key, limit.key_bytes), cut(value, limit.value_bytes))
    return kept
