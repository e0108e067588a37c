"""The local outbox under worker processes that share it and die mid-write: each key once, no line lost."""

from __future__ import annotations

import asyncio
import fcntl
import json
import subprocess
import sys
from pathlib import Path

from activities.outbox import Outbox
from settings import ROOT

WRITER = """
import asyncio, sys
from pathlib import Path
from activities.outbox import Outbox

async def main() -> None:
    outbox = Outbox(Path(sys.argv[1]))
    for n in range(200):
        await outbox.deliver("slack", "post", f"key-{n}", {"n": n, "by": sys.argv[2]})

asyncio.run(main())
"""


def test_two_worker_processes_write_each_key_once(tmp_path: Path):
    """A retry may run in another worker process than the attempt that wrote the line."""
    path = tmp_path / "outbox.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], cwd=ROOT) for name in ("worker-1", "worker-2")
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]

    keys = [entry["key"] for entry in Outbox(path).read()]
    assert sorted(keys) == sorted(f"key-{n}" for n in range(200))


async def test_a_line_torn_by_a_killed_worker_does_not_swallow_the_next(tmp_path: Path):
    path = tmp_path / "outbox.jsonl"
    whole = json.dumps({"at": "", "system": "slack", "kind": "post", "key": "k1", "payload": {}})
    path.write_text(whole + "\n" + whole[:25])  # the worker died in the middle of its second line

    await Outbox(path).deliver("slack", "post", "k2", {})
    await Outbox(path).deliver("slack", "post", "k1", {})  # already there

    assert [entry["key"] for entry in Outbox(path).read()] == ["k1", "k2"]


async def test_a_lock_held_elsewhere_never_stops_the_event_loop(tmp_path: Path):
    """Another process holding the file's lock: the line waits in a thread, the event loop goes on."""
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path)
    await outbox.deliver("slack", "post", "first", {})
    with path.open("a+b") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # as another worker process appending
        writing = asyncio.ensure_future(outbox.deliver("slack", "post", "second", {}))
        ticks = 0
        while ticks < 20:  # the loop keeps turning while the write waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writing.done()
        fcntl.flock(other, fcntl.LOCK_UN)
    await writing
    assert [entry["key"] for entry in Outbox(path).read()] == ["first", "second"]
