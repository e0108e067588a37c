"""An activity context like a worker gives one: an attempt number and a start_to_close_timeout."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio.testing import ActivityEnvironment


def attempt(number: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=number, start_to_close_timeout=timedelta(seconds=10))
    return env
