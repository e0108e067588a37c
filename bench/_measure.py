"""What the benches read of the processes they start: resident memory, CPU time, the worker's metrics and
what the workflows wrote to their histories.

Shared by bench.scale and bench.storm; Linux only (/proc).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

METRICS = (
    "sticky_cache_hit",
    "sticky_cache_miss",
    "sticky_cache_size",
    "sticky_cache_total_forced_eviction",
    "workflow_task_replay_latency_count",
    "workflow_task_schedule_to_start_latency_count",
    "workflow_task_schedule_to_start_latency_sum",
)


class ResidentMemory:
    """A process's resident memory as /proc shows it: sampled, and its peak (VmHWM)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, int]] = []  # (wall time, VmRSS kB)

    def status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise SystemExit(f"bench: no {field} in /proc/{self.pid}/status")

    def sample(self) -> int:
        rss = self.status_kb("VmRSS")
        self.samples.append((time.time(), rss))
        return rss

    async def sample_every(self, seconds: float) -> None:
        while True:
            with suppress(OSError):
                self.sample()
            await asyncio.sleep(seconds)


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dev_server_pid() -> int | None:
    """The Temporal dev server this bench started: a child process of ours named temporal."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError):
            stat = (entry / "stat").read_text(encoding="ascii")
            comm, rest = stat.split("(", 1)[1].rsplit(")", 1)
            if int(rest.split()[1]) == os.getpid() and comm.startswith("temporal"):
                return int(entry.name)
    return None


class Cpu:
    """CPU seconds of the named processes (the worker, the dev server), this bench and the whole machine, for
    windows of the run: on a shared machine, what the others took is part of the figures."""

    def __init__(self, **pids: int | None) -> None:
        self.pids = {**pids, "bench": os.getpid()}
        self.marks: dict[str, dict[str, float]] = {}

    def mark(self, name: str) -> None:
        taken: dict[str, float] = {}
        for who, pid in self.pids.items():
            if pid is not None:
                with suppress(OSError):
                    taken[who] = process_cpu_seconds(pid)
        ticks = [int(n) for n in Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        taken["machine"] = (sum(ticks[:8]) - ticks[3] - ticks[4]) / hz  # busy: all but idle and iowait
        taken["wall"] = time.time()
        self.marks[name] = taken

    def between(self, start: str, end: str) -> str:
        a, b = self.marks.get(start), self.marks.get(end)
        if a is None or b is None:
            return "n/a"
        wall = max(b["wall"] - a["wall"], 1e-9)
        ours = {who: b[who] - a[who] for who in self.pids if who in a and who in b}
        others = b["machine"] - a["machine"] - sum(ours.values())
        cores = os.cpu_count() or 1
        return (
            f"{wall:.0f} s: "
            + ", ".join(f"{who} {used:.0f} s ({100 * used / wall:.0f}%)" for who, used in ours.items())
            + f", everything else {max(others, 0):.0f} s ({100 * max(others, 0) / wall:.0f}%)"
            + f" [% of one core; the machine has {cores}]"
        )


def mb(kb: int) -> float:
    return kb / 1024


async def worker_metrics(port: int) -> dict[str, float]:
    """The worker's Prometheus metrics named in METRICS, summed over their labels ({} if unreachable)."""
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return {}
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0].removeprefix("temporal_").removesuffix("_total")
        if name in METRICS:
            with suppress(ValueError):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


ALL_EVENTS = "events"  # the key of a FirstMinute's total
WORKFLOW_TASKS = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
HISTORY_READERS = 8  # histories read at once


def event_name(event_type: EventType.ValueType) -> str:
    """ "workflow task completed" for EVENT_TYPE_WORKFLOW_TASK_COMPLETED."""
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_").lower().replace("_", " ")


@dataclass
class FirstMinute:
    """The events a workflow's first run wrote within `seconds` of its WorkflowExecutionStarted event."""

    counts: Counter[str] = field(default_factory=Counter)  # event name -> events; ALL_EVENTS -> all of them
    continued: bool = False  # the run read is not the workflow's latest (it continued as new)


async def first_minute(client: Client, workflow_id: str, seconds: float) -> FirstMinute:
    """Read the history of the first run of `workflow_id` (the run that started, even if it has continued as new)
    up to `seconds` after its start. Only that part is fetched (the pages it is on)."""
    run_id: str | None = None  # None: the latest run, which is the first unless it continued as new
    while True:
        found = FirstMinute(continued=run_id is not None)
        start: int | None = None
        async for event in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events():
            at = event.event_time.ToMicroseconds()
            if start is None:
                started = event.workflow_execution_started_event_attributes
                if run_id is None and started.continued_execution_run_id:
                    run_id = started.first_execution_run_id  # read that run instead
                    break
                start = at
            if at - start > seconds * 1_000_000:
                break
            found.counts[event_name(event.event_type)] += 1
            found.counts[ALL_EVENTS] += 1
        if start is not None:
            return found


async def first_minutes(
    client: Client, workflow_ids: list[str], seconds: float
) -> tuple[list[FirstMinute], dict[str, str]]:
    """first_minute of each workflow, HISTORY_READERS at a time; and the ones that could not be read (id -> why)."""
    gate = asyncio.Semaphore(HISTORY_READERS)
    unread: dict[str, str] = {}

    async def one(workflow_id: str) -> FirstMinute | None:
        async with gate:
            try:
                return await first_minute(client, workflow_id, seconds)
            except RPCError as error:
                unread[workflow_id] = f"{error.status.name}: {error.message}"
                return None

    read = await asyncio.gather(*(one(workflow_id) for workflow_id in workflow_ids))
    return [r for r in read if r is not None], unread


def first_minute_summary(read: list[FirstMinute], seconds: float, top: int = 16) -> list[str]:
    """Lines for a bench's output: the median history a workflow wrote in its first `seconds`, in all and by
    event type (the `top` types by events, with their means; the rest summed)."""
    if not read:
        return [f"history in the first {seconds:g} s: none read"]

    def median(name: str) -> float:
        return statistics.median(r.counts[name] for r in read)

    def mean(name: str) -> float:
        return statistics.fmean(r.counts[name] for r in read)

    task_name = event_name(WORKFLOW_TASKS)
    totals: Counter[str] = Counter()
    for r in read:
        totals.update(r.counts)
    del totals[ALL_EVENTS]
    names = [name for name, _ in totals.most_common()]
    shown, rest = names[:top], names[top:]
    rest_mean = sum(mean(name) for name in rest)
    continued = sum(r.continued for r in read)
    return [
        f"history in each workflow's first {seconds:g} s (median over {len(read)} read, max in brackets): "
        f"{median(ALL_EVENTS):g} events ({max(r.counts[ALL_EVENTS] for r in read)}), "
        f"{median(task_name):g} workflow tasks completed ({max(r.counts[task_name] for r in read)})"
        + (f"; {continued} had continued as new (their first run read)" if continued else ""),
        "  by event type, median (mean): "
        + ", ".join(f"{name} {median(name):g} ({mean(name):.1f})" for name in shown)
        + (f", {len(rest)} other types (mean {rest_mean:.1f} in all)" if rest else ""),
    ]
