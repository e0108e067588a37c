"""The drill's stand-ins for every activity the worker runs, under the same names.

Activities that reach people or peers only record the call and answer like the peer; the local ones
(incident logs, postmortem, statements) run for real, into the drill's own directory.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from activities.chat.slack import channel_name
from activities.records import RecordsActivities
from activities.registers.sync import RegisterActivities
from activities.statements import StatementActivities
from settings import Settings
from starter.drill.scenario import DrillError
from worker import build_activities
from workflows.contracts.activity_io import (
    ChatChannel,
    ChatDelivered,
    ChatResult,
    ConferenceResult,
    DeliveryResult,
    DirectResult,
    EmailResult,
    IncidentLogEntry,
    PageResult,
    PostmortemRequest,
    StatuspageResult,
)
from workflows.oncall.model import AlertSent, HeartbeatDeclared

DELIVERED_TO = "drill"  # what a recorder answers for `delivered_to`: nothing left this process


@dataclass(frozen=True)
class Call:
    at: datetime
    activity: str
    request: BaseModel


class Recorder:
    """Stand-ins for every activity the worker runs, under the same names, recording every call."""

    # The record's sync is local too: with no credential in the drill, each system's adapter writes what it
    # would send into the drill's outbox.
    LOCAL = (RecordsActivities, StatementActivities, RegisterActivities)
    # Calls to Temporal itself, not deliveries (a question, the message loop's or the record writer's start):
    # the real ones run, on the drill's own server, unrecorded.
    LOOKUPS = ("schedule_overrides", "start_message_loop", "start_record_writer")

    def __init__(self, settings: Settings) -> None:
        self.calls: list[Call] = []
        self.activities = [self._stand_in(real) for real in build_activities(settings)]

    def _stand_in(self, real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        # A plain @activity.defn registers a method under its own name, which no activity of ours overrides.
        name = real.__name__
        hints = typing.get_type_hints(real)
        ret_type = hints.pop("return")
        (arg_type,) = hints.values()  # one input model per activity
        if isinstance(getattr(real, "__self__", None), self.LOCAL):
            answer = _into_drill_directory(real)
        elif name in self.LOOKUPS:
            answer = real  # it asks the drill's own server: the schedules and windows the drill set up
        else:
            answer = _answer_like_the_peer(name, ret_type)

        async def record(request: Any) -> Any:
            info = activity.info()
            if name not in self.LOOKUPS:
                self.calls.append(Call(info.current_attempt_scheduled_time or info.started_time, name, request))
            return await answer(request)

        record.__annotations__ = {"request": arg_type, "return": ret_type}
        return activity.defn(name=name)(record)


def _into_drill_directory(real: Callable[..., Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
    """The real local activity, but never into the policy's own log_dir: the drill writes only to its own."""

    async def run(request: Any) -> Any:
        if isinstance(request, IncidentLogEntry | PostmortemRequest):
            request = request.model_copy(update={"log_dir": ""})
        return await real(request)

    return run


def _answer_like_the_peer(name: str, ret_type: Any) -> Callable[[Any], Awaitable[Any]]:
    """What the peer would have answered; an activity returning something new must be taught here."""
    answers: dict[Any, Callable[[Any], BaseModel]] = {
        PageResult: lambda r: PageResult(provider=r.provider, reference=r.dedup_key, delivered_to=DELIVERED_TO),
        ChatChannel: lambda r: ChatChannel(
            channel_id=f"#{channel_name(r.incident_id, r.title, r.channel_prefix)}",
            name=channel_name(r.incident_id, r.title, r.channel_prefix),
            delivered_to=DELIVERED_TO,
        ),
        ChatResult: lambda r: ChatResult(
            channel=getattr(r, "channel", getattr(r, "user_id", "")), delivered_to=DELIVERED_TO
        ),
        ChatDelivered: lambda r: ChatDelivered(delivered_to=DELIVERED_TO),
        EmailResult: lambda r: EmailResult(message_ids=[f"<{r.idempotency_key}@drill>"], delivered_to=DELIVERED_TO),
        DeliveryResult: lambda r: DeliveryResult(delivered_to=DELIVERED_TO),
        DirectResult: lambda r: DirectResult(reference=f"drill-{r.idempotency_key}", delivered_to=DELIVERED_TO),
        StatuspageResult: lambda r: StatuspageResult(
            statuspage_incident_id=r.statuspage_incident_id or f"drill-{r.incident_id}", delivered_to=DELIVERED_TO
        ),
        # Zoom would make a meeting; the drill shows the policy's standing bridge, or none.
        ConferenceResult: lambda r: ConferenceResult(join_url=r.bridge_url, delivered_to=DELIVERED_TO),
        AlertSent: lambda r: AlertSent(incident_id=r.event.dedup_key, opened=False),
        # A drill beats no heartbeat: none is declared for it to keep watching.
        HeartbeatDeclared: lambda r: HeartbeatDeclared(),
    }
    if ret_type not in answers:
        raise DrillError(
            f"the drill has no stand-in answer for activity {name} (returns {ret_type}); "
            "teach starter/drill/recorder.py:_answer_like_the_peer"
        )
    make = answers[ret_type]

    async def answer(request: Any) -> Any:
        return make(request)

    return answer
