"""Fault tests: real worker processes killed while they work (`pytest -m fault`, or `-m "not fault"` to leave
them out: they take a few minutes)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault: real worker processes under faults (killed at random, Temporal not up)")
