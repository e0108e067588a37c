"""What the benches read of the processes they start: resident memory, CPU time and the worker's metrics.

Shared by bench.scale and bench.storm; Linux only (/proc).
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import suppress
from pathlib import Path

import httpx

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
