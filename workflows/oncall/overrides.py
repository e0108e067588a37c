"""ScheduleWorkflow: a schedule's overrides, held durably (workflow id `schedule-<name>`).

One per schedule, started by the first `incidentctl override add`. Overrides arrive as Updates with
validators (a refusal reaches the caller and changes nothing); incidents and ladders read them through
the `overrides` query when they page (workflows/oncall/lookup.py). The UI's current details list them.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.temporal import ids
    from workflows.contracts.trust import verify
    from workflows.oncall.model import AddOverride, RemoveOverride, ScheduleInput
    from workflows.oncall.rotation import Override


@workflow.defn(name=ids.SCHEDULE_WORKFLOW)
class ScheduleWorkflow:
    @workflow.init
    def __init__(self, input: ScheduleInput) -> None:
        self.name, self.next_number = input.schedule, input.next_number
        self._overrides = list(input.overrides)
        self._changes = 0
        self._proofs = verify.Proofs()

    @workflow.update(name=ids.ADD_OVERRIDE)
    def add_override(self, request: AddOverride) -> Override:
        request = self._proofs.take(request, ids.ADD_OVERRIDE)
        override = Override(
            override_id=f"O{self.next_number}",
            who=request.who,
            start=request.start,
            end=request.end,
            by=request.by,
            reason=request.reason,
        )
        self.next_number += 1
        self._overrides.append(override)
        self._changes += 1
        return override

    @add_override.validator
    def _check_add(self, request: AddOverride) -> None:
        request = self._proofs.read(request, ids.ADD_OVERRIDE)[0]
        if request.end <= request.start:
            raise ValueError(f"an override must end after it starts ({request.start:%Y-%m-%d %H:%M} UTC)")
        if request.end <= workflow.now():
            raise ValueError(f"an override ending {request.end:%Y-%m-%d %H:%M} UTC is already over")

    @workflow.update(name=ids.REMOVE_OVERRIDE)
    def remove_override(self, request: RemoveOverride) -> Override:
        request = self._proofs.take(request, ids.REMOVE_OVERRIDE)
        override = next(o for o in self._overrides if o.override_id == request.override_id)
        self._overrides.remove(override)
        self._changes += 1
        return override

    @remove_override.validator
    def _check_remove(self, request: RemoveOverride) -> None:
        request = self._proofs.read(request, ids.REMOVE_OVERRIDE)[0]
        if all(o.override_id != request.override_id for o in self._overrides):
            known = ", ".join(o.override_id for o in self._overrides) or "none"
            raise ValueError(f"schedule {self.name} has no override {request.override_id}; current: {known}")

    @workflow.query(name=ids.OVERRIDES)
    def overrides(self) -> list[Override]:
        return [o for o in self._overrides if o.end > workflow.now()]

    @workflow.run
    async def run(self, input: ScheduleInput) -> None:
        while workflow.info().get_current_history_length() < input.history_limit:
            now = workflow.now()
            self._overrides = [o for o in self._overrides if o.end > now]
            self._show()
            seen, ends = self._changes, [o.end for o in self._overrides]
            try:
                await workflow.wait_condition(
                    lambda: self._changes != seen,  # noqa: B023 (awaited in this iteration)
                    timeout=max(min(ends) - now, timedelta(seconds=1)) if ends else None,
                )
            except TimeoutError:
                pass  # an override ended: drop it
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            input.model_copy(update={"overrides": self._overrides, "next_number": self.next_number})
        )

    def _show(self) -> None:
        lines = [
            f"- {o.override_id}: {o.who} from {o.start:%Y-%m-%d %H:%M} to {o.end:%Y-%m-%d %H:%M} UTC"
            + (f" ({o.reason})" if o.reason else "")
            for o in self._overrides
        ]
        workflow.set_current_details(f"**Schedule {self.name}: overrides**\n\n" + ("\n".join(lines) or "none"))
