"""The drill's on-call steps: overrides and maintenance windows a scenario sets up at a minute, sent to the
drill's own server the way incidentctl sends them (so the real workflows decide who is paged).

    overrides:
      - {at: 3, schedule: primary, who: oleh, until: 120, as: alice}   # from minute `at` (or `from`)
    silences:
      - {at: 0, service: checkout, until: 30, reason: db upgrade, matchers: {region: eu}, as: alice}
      - {at: 10, expire: S1, as: alice}                                # end the first window early
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio.client import Client

from client import oncall as oncall_client
from workflows.contracts.policy import Policy
from workflows.oncall.model import AddOverride, AddSilence, ExpireSilence


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    at: float = Field(ge=0)
    as_: str = Field(default="", alias="as")


class OverrideSpec(_Spec):
    schedule: str
    who: str
    from_: float | None = Field(default=None, ge=0, alias="from")
    until: float = Field(gt=0)
    reason: str = ""

    def check(self, policy: Policy) -> None:
        if self.schedule not in policy.schedules:
            raise ValueError(
                f"schedule: no schedule {self.schedule!r} in the policy; known: {sorted(policy.schedules)}"
            )
        if self.who not in policy.people:
            raise ValueError(f"who: {self.who!r} is not a person in the policy")

    def label(self) -> str:
        return f"{self.as_ or 'drill'} override {self.schedule}: {self.who} until minute {self.until:g}"


class SilenceSpec(_Spec):
    service: str = ""
    matchers: dict[str, str] = Field(default_factory=dict)
    until: float | None = Field(default=None, gt=0)
    reason: str = ""
    expire: str = ""  # a window's id (S1, S2... in the order they were opened): end it now

    @model_validator(mode="after")
    def _open_or_expire(self) -> SilenceSpec:
        if bool(self.expire) == bool(self.service and self.until):
            raise ValueError("a silence either opens a window (service, until, reason) or has `expire: ID`")
        return self

    def check(self, policy: Policy) -> None:
        if self.service and self.service not in policy.services:
            raise ValueError(f"service: no service {self.service!r} in the policy")

    def label(self) -> str:
        if self.expire:
            return f"{self.as_ or 'drill'} expires maintenance window {self.expire}"
        return f"{self.as_ or 'drill'} silences {self.service} {self.matchers or ''} until minute {self.until:g}"


async def send(client: Client, task_queue: str, policy: Policy, t0: datetime, spec: OverrideSpec | SilenceSpec) -> str:
    """Send one on-call step; a refusal raises OnCallRefused."""
    if isinstance(spec, OverrideSpec):
        start = t0 + timedelta(minutes=spec.at if spec.from_ is None else spec.from_)
        added = await oncall_client.add_override(
            client,
            task_queue,
            policy,
            spec.schedule,
            AddOverride(
                who=spec.who, start=start, end=t0 + timedelta(minutes=spec.until), by=spec.as_, reason=spec.reason
            ),
        )
        return f"{spec.schedule} {added.override_id}: {added.who} on call"
    if spec.expire:
        expired = await oncall_client.expire_silence(
            client, task_queue, ExpireSilence(silence_id=spec.expire, by=spec.as_)
        )
        return f"{expired.silence_id} expired"
    assert spec.until is not None
    window = AddSilence(
        service=spec.service,
        matchers=spec.matchers,
        until=t0 + timedelta(minutes=spec.until),
        reason=spec.reason,
        by=spec.as_,
    )
    opened = await oncall_client.add_silence(client, task_queue, policy, window, t0 + timedelta(minutes=spec.at))
    return f"{opened.silence_id}: {spec.service} silenced"
