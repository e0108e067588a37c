"""The README's walkthroughs, run as written against a fresh `make run` stack.

The commands come from README.md itself: every ```sh block of the sections below, in order, each run by
bash as a reader would paste it (curl, incidentctl, temporal), with the stack's moved ports in the
environment as `.env` in the reader's shell would put them. The `# ` lines under a command are what it
prints; the test compares them with what it printed:

- `# ...` stands for any number of lines;
- a line `#   more` (three spaces or more) continues the line above it, joined with a space;
- clock times, dates and the policy's zone (EET/EEST) are compared by shape, not value; the ports are the
  README's defaults; an incident id the section's commands never name (`$I`'s) stands for any id;
- runs of blanks count as one (piped tables are tab-separated; the README aligns with spaces), and blank
  lines are skipped.

A command whose output the README shows as a refusal (`incidentctl: ...`) must fail, every other one must
succeed. What the stack does in the background (a postmortem drafted, a message distributed) takes a
moment: a read, or a command that was refused (a refusal changes nothing), is run again until it prints
what the README shows, for at most SETTLE seconds. A decision that went through is never repeated.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from settings import ROOT
from tests.test_stack import Launcher, children_of, survivors

BIN = Path(sys.executable).parent
README = ROOT / "README.md"

# The README's walkthroughs, by the start of their headings (`## ...`).
SECTIONS = (
    "Your first alert, from firing to closed",
    "Words for people outside",
    "Approving a stakeholder message",
    "On call:",
)
DEFAULT_PORTS = {"HTTP_PORT": 8080, "TEMPORAL_UI_PORT": 8233, "TEMPORAL_PORT": 7233}
SETTLE = 15.0  # seconds a read or a refused command may take to show what the README shows
COMMAND_TIMEOUT = 30.0
MORE = "..."  # `# ...`: any number of lines

READ = re.compile(
    r"^(incidentctl +(list|show|messages|oncall|(statement|override|silence) +list)\b"
    r"|temporal +workflow +(list|count|describe)\b)"
)
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
INCIDENT_ID = re.compile(r"\b(INC|inc)-[A-Za-z0-9]{8}\b")
CLOCK = (
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "YYYY-MM-DD"),
    (re.compile(r"\b\d{2}:\d{2}\b"), "HH:MM"),
    (re.compile(r"\bEES?T\b"), "ZONE"),
)


@dataclass
class Step:
    section: str
    line: int  # of the command in README.md
    command: str
    expected: list[str] = field(default_factory=list)

    @property
    def is_read(self) -> bool:
        return bool(READ.match(self.command))

    @property
    def refused(self) -> bool:
        return any(line.startswith("incidentctl: ") for line in self.expected)


def walkthrough(text: str) -> list[Step]:
    """Every command of the walkthrough sections' ```sh blocks, with the output lines shown under it."""
    steps: list[Step] = []
    section = ""
    in_block = continued = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            in_block = line == "```sh" and section.startswith(SECTIONS)
            continued = False
            continue
        if not in_block or not line.strip():
            continue
        if line.startswith("#"):
            shown = line[1:]
            assert steps and steps[-1].section == section, f"README.md:{number}: output before any command"
            expected = steps[-1].expected
            if shown.startswith("   "):
                assert expected and expected[-1] != MORE, f"README.md:{number}: continues no output line"
                expected[-1] += " " + shown.strip()
            else:
                expected.append(shown.strip())
        elif continued:
            steps[-1].command += "\n" + line
        else:
            steps.append(Step(section, number, line))
        continued = not line.startswith("#") and line.rstrip().endswith("\\")
    return steps


def normalised(lines: Sequence[str], known_ids: set[str]) -> list[str]:
    """Lines as compared: blanks collapsed, clock readings by shape, ids the commands never name as one."""

    def one(line: str) -> str:
        for pattern, shape in CLOCK:
            line = pattern.sub(shape, line)
        line = INCIDENT_ID.sub(lambda m: m.group(0) if m.group(0).upper() in known_ids else "INC-<id>", line)
        return " ".join(line.split())

    return [one(line) if line != MORE else MORE for line in lines if line.strip()]


def matches(expected: Sequence[str], actual: Sequence[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == MORE:
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


class Reader:
    """Runs the README's commands as a reader with `.env` exported into the shell would."""

    def __init__(self, launcher: Launcher, credentials: Path) -> None:
        self.env = launcher.env | {
            "PATH": f"{BIN}{os.pathsep}{launcher.env.get('PATH', '')}",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{launcher.env['TEMPORAL_PORT']}",
            "TEMPORAL_UI_URL": f"http://localhost:{launcher.env['TEMPORAL_UI_PORT']}",
            # as the banner tells a reader whose DATA_DIR is moved; the tokens this reader logs in with
            "TOKENS_PATH": str(Path(launcher.env["DATA_DIR"]) / "tokens.json"),
            "INCIDENTCTL_CREDENTIALS": str(credentials),
        }
        for name in ("INCIDENTCTL_TOKEN", "INCIDENT_API_URL", "DECISION_KEYS", "DECISION_SIGNING_KEY"):
            self.env.pop(name, None)
        # the stack's ports in what commands print, as the README's defaults
        self.ports = [
            (re.compile(rf"(?<=:){launcher.env[name]}\b"), str(default)) for name, default in DEFAULT_PORTS.items()
        ]

    async def run(self, command: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"{command!r} did not finish within {COMMAND_TIMEOUT:.0f} s")
        text = out.decode(errors="replace")
        for port, default in self.ports:
            text = port.sub(default, text)
        assert process.returncode is not None
        return process.returncode, text

    async def assign(self, step: Step, name: str) -> None:
        """`I=$(...)`: run as written, then keep the variable for the commands after it."""
        code, value = await self.run(f'{step.command}\nprintf "%s" "${name}"')
        assert code == 0 and re.fullmatch(r"\S+", value), f"README.md:{step.line}: {step.command}\n{value}"
        self.env[name] = value

    async def check(self, step: Step, known_ids: set[str]) -> None:
        expected = normalised(step.expected, known_ids)
        deadline = time.monotonic() + SETTLE
        while True:
            code, out = await self.run(step.command)
            printed = normalised(out.splitlines(), known_ids)
            if (code != 0) == step.refused and (not expected or matches(expected, printed)):
                return
            if not (code != 0 or step.is_read) or time.monotonic() > deadline:
                shown = "\n".join(f"  # {line}" for line in expected) or "  (no output shown; it must succeed)"
                pytest.fail(
                    f"README.md:{step.line} ({step.section}):\n  {step.command}\n"
                    f"the README shows:\n{shown}\nit printed (exit {code}):\n"
                    + "\n".join(f"  {line}" for line in printed)
                )
            await asyncio.sleep(0.2)  # the background work it waits on is under way


def test_the_readme_walkthrough_is_parsed_into_commands_and_their_output() -> None:
    steps = walkthrough(README.read_text())
    for wanted in SECTIONS:
        assert any(step.section.startswith(wanted) for step in steps), f"no ```sh block under ## {wanted}..."
    shown = [step for step in steps if step.expected]
    assert len(steps) > 40 and len(shown) > 25, (len(steps), len(shown))


async def test_the_readme_walkthrough_works_as_written(tmp_path: Path) -> None:
    steps = walkthrough(README.read_text())
    launcher = Launcher(tmp_path / "data", tmp_path / "stack.log")
    # empty counts as unset (also over a .env)
    launcher.env |= {"ALERT_TOKENS": "", "HEARTBEAT_TOKENS": "", "CALENDAR_TOKEN": "", "INCIDENTCTL_USER": ""}
    launcher.env.pop("INCIDENT_POLICY", None)  # the example policy the README describes
    process = await launcher.start()
    children = children_of(process.pid)
    reader = Reader(launcher, tmp_path / "credentials.json")
    try:
        for section in dict.fromkeys(step.section for step in steps):
            mine = [step for step in steps if step.section == section]
            known_ids = {m.group(0).upper() for step in mine for m in INCIDENT_ID.finditer(step.command)}
            for step in mine:
                assignment = ASSIGNMENT.match(step.command)
                if assignment:
                    assert not step.expected, f"README.md:{step.line}: an assignment prints nothing"
                    await reader.assign(step, assignment.group(1))
                else:
                    await reader.check(step, known_ids)
    finally:
        process.send_signal(signal.SIGINT)
        code = await launcher.exit_code()
        left = survivors(children)
    assert code == 0, launcher.output.read_text()
    assert left == []
