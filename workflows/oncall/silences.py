"""SilencesWorkflow: the maintenance windows, held durably (workflow id `silences`).

The HTTP service reads the open windows (the `active` query, cached for a moment) and marks each alert
that falls in one; the incident it opens then waits for the window's end and tells this workflow so (the
`hold` signal). When a window is expired early, this workflow tells the incidents it holds
(`silence_lifted`), so they page at once. Windows arrive as Updates with validators.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.temporal import ids
    from workflows.contracts.trust import verify
    from workflows.incident.model import Silence
    from workflows.oncall.model import AddSilence, ExpireSilence, HoldIncident, SilenceLifted, SilencesInput


@workflow.defn(name=ids.SILENCES_WORKFLOW)
class SilencesWorkflow:
    @workflow.init
    def __init__(self, input: SilencesInput) -> None:
        self._silences, self.next_number = list(input.silences), input.next_number
        self._changes = 0
        self._to_tell: list[tuple[str, SilenceLifted]] = []
        self._proofs = verify.Proofs()

    @workflow.update(name=ids.ADD_SILENCE)
    def add(self, request: AddSilence) -> Silence:
        request = self._proofs.take(request, ids.ADD_SILENCE)
        silence = Silence(
            silence_id=f"S{self.next_number}",
            service=request.service,
            matchers=request.matchers,
            start=workflow.now(),
            until=request.until,
            reason=request.reason,
            by=request.by,
        )
        self.next_number += 1
        self._silences.append(silence)
        self._changes += 1
        return silence

    @add.validator
    def _check_add(self, request: AddSilence) -> None:
        request = self._proofs.read(request, ids.ADD_SILENCE)[0]
        if request.until <= workflow.now():
            raise ValueError(f"a window until {request.until:%Y-%m-%d %H:%M} UTC is already over")
        if not request.reason.strip():
            raise ValueError("say why alerts are silenced (--reason)")

    @workflow.update(name=ids.EXPIRE_SILENCE)
    def expire(self, request: ExpireSilence) -> Silence:
        request = self._proofs.take(request, ids.EXPIRE_SILENCE)
        silence = next(s for s in self._silences if s.silence_id == request.silence_id)
        silence.until = workflow.now()
        lifted = SilenceLifted(silence_id=silence.silence_id, reason=f"expired by {request.by or 'somebody'}")
        self._to_tell += [(incident, lifted) for incident in silence.held]
        self._changes += 1
        return silence

    @expire.validator
    def _check_expire(self, request: ExpireSilence) -> None:
        request = self._proofs.read(request, ids.EXPIRE_SILENCE)[0]
        if all(s.silence_id != request.silence_id for s in self._active()):
            known = ", ".join(s.silence_id for s in self._active()) or "none"
            raise ValueError(f"no active maintenance window {request.silence_id}; active: {known}")

    @workflow.signal(name=ids.HOLD_INCIDENT)
    def hold(self, request: HoldIncident) -> None:
        """An incident waits for this window. One that is over already (expired while the HTTP service still
        had it cached, or before the incident asked) is lifted at once, not held to its original end."""
        silence = next((s for s in self._active() if s.silence_id == request.silence_id), None)
        if silence is None:
            lifted = SilenceLifted(silence_id=request.silence_id, reason="was over already")
            self._to_tell.append((request.incident_id, lifted))
        elif request.incident_id not in silence.held:
            silence.held.append(request.incident_id)
            self._changes += 1

    @workflow.query(name=ids.ACTIVE_SILENCES)
    def active(self) -> list[Silence]:
        return self._active()

    def _active(self) -> list[Silence]:
        return [s for s in self._silences if s.until > workflow.now()]

    @workflow.run
    async def run(self, input: SilencesInput) -> None:
        while workflow.info().get_current_history_length() < input.history_limit:
            self._silences = self._active()
            self._show()
            seen = self._changes
            ends = [s.until for s in self._silences]
            try:
                await workflow.wait_condition(
                    lambda: self._changes != seen or bool(self._to_tell),  # noqa: B023 (awaited in this iteration)
                    timeout=(min(ends) - workflow.now()) if ends else None,
                )
            except TimeoutError:
                pass
            await self._tell_held_incidents()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._tell_held_incidents()
        workflow.continue_as_new(input.model_copy(update={"silences": self._active(), "next_number": self.next_number}))

    def _show(self) -> None:
        lines = [
            f"- {s.silence_id}: {s.service} {s.matchers or ''} until {s.until:%Y-%m-%d %H:%M} UTC: {s.reason}"
            for s in self._silences
        ]
        workflow.set_current_details("**Maintenance windows**\n\n" + ("\n".join(lines) or "none"))

    async def _tell_held_incidents(self) -> None:
        while self._to_tell:
            incident, lifted = self._to_tell.pop(0)
            try:
                await workflow.get_external_workflow_handle(incident).signal(ids.SILENCE_LIFTED, lifted)
            except Exception:
                workflow.logger.info("incident %s is gone; nothing to lift", incident)
