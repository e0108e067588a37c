"""An incident's outbound side effects, each in a task of its own so that none waits for another.

A duty hands a delivery over and goes on at once: a peer that retries for an hour delays only that
delivery, never a deadline, a decision or another duty. A delivery that finally fails is written on
the timeline. Posts to the incident channel keep their order: they queue in the state and one task
posts them, once the channel exists. Before a continue-as-new the workflow waits until all have
landed (`drained`), so nothing in flight is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.paging.providers import PagingActivities
    from activities.records import RecordsActivities
    from workflows.contracts.activity_io import (
        ChatButton,
        ChatPost,
        EmailRequest,
        IncidentLogEntry,
        PageAction,
        Reached,
    )
    from workflows.contracts.clock import local
    from workflows.contracts.policy import DIRECT, Policy
    from workflows.contracts.vocabulary import Channel, Status
    from workflows.delivery.direct import Watch, page_directly
    from workflows.delivery.reach import (
        EMAIL,
        LOCAL,
        PAGING,
        SENDERS,
        Step,
        as_delivered,
        attempt,
        chat_ids,
        describe_page,
        page_request,
        post,
        reach,
        unreachable,
    )
    from workflows.incident.model import ChannelPost, IncidentState, TimelineEntry

T = TypeVar("T")


class Deliveries:
    def __init__(self, s: IncidentState, policy: Policy) -> None:
        self.s, self.policy = s, policy
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._calls = 0  # the duties' own calls still awaited (tracked)
        self._marked = 0  # the workflow task that last wrote the timeline (its history length)
        self._marks_tasks = policy.keeps_record_elsewhere
        # Direct pages stop once the incident is acknowledged or resolved; Twilio's reports land in `failed`.
        self.watch = Watch(
            stopped=lambda: bool(s.acknowledged_by) or s.status is not Status.OPEN,
            tell=lambda failure: self.note("delivery", failure),
        )

    def note(self, kind: str, text: str, actor: str | None = None) -> None:
        self.s.timeline.append(TimelineEntry(at=workflow.now(), kind=kind, text=text, actor=actor))
        self._mark_task()

    def _mark_task(self) -> None:
        """Where a record outside is kept from the timeline, a workflow task that writes the timeline sends a
        command (one memo upsert per task). A task without commands followed at once by another is merged with
        it when a worker replays the incident from scratch (SDK core's rule for heartbeats,
        temporalio/sdk-rust#1606): its entries would then carry the later task's time, or come in another order,
        than the ones the record already got. Elsewhere the few milliseconds are not worth an event and a
        visibility write per task (a SEV1 writes its timeline in nearly every task)."""
        task = workflow.info().get_current_history_length()
        if self._marks_tasks and task != self._marked:
            self._marked = task
            workflow.upsert_memo({"timeline_task": task})

    def after_local_activity(self) -> None:
        """The next timeline write marks its task whatever the history length says. While the start's policy check
        (own_policy.py, a local activity) runs, the original run may complete a task and go on in another, which a
        replay merges: what the handlers wrote before the run began then counts in a different task than it did.
        Marking the run's first write whatever the count keeps the commands the same both ways."""
        self._marked = -1

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run a delivery on its own; the caller does not wait for it. A bug in it is written on the
        timeline rather than lost with the task."""

        async def guarded() -> None:
            try:
                await work
            except Exception as err:
                workflow.logger.exception("delivery failed")
                self.note("delivery", f"a delivery failed: {type(err).__name__}: {err}")

        task: asyncio.Task[Any] = asyncio.ensure_future(guarded())
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def tracked(self, call: Awaitable[T]) -> T:
        """A duty's own call (an activity it waits for, a child it starts, a signal it sends): `drained` waits
        for it too, so that continuing as new never loses its outcome."""
        self._calls += 1
        try:
            return await call
        finally:
            self._calls -= 1

    async def drained(self) -> None:
        """Every delivery handed over and every duty's call has landed (or failed), and the channel's queue
        is posted."""
        await workflow.wait_condition(
            lambda: (
                not self._in_flight
                and not self._calls
                and not any(self.s.chat_channels.get(chat) and posts for chat, posts in self.s.channel_posts.items())
            )
        )

    def reach(
        self,
        people: list[str],
        channels: list[Channel],
        text: str,
        key: str,
        then: Callable[[Reached], None] | None = None,
        acknowledgeable: bool = False,
        buttons: list[ChatButton] | None = None,
    ) -> None:
        """Reach people through the channels the policy has for them; `then` sees what it did. A page
        (`acknowledgeable`) offers each person the way to acknowledge it as them; in a chat, `buttons` too."""

        async def deliver() -> None:
            reached = await reach(
                self.policy,
                [p for p in people if p],
                channels,
                text,
                key,
                incident_id=self.s.incident_id,
                severity=self.s.severity,
                subject=self._subject(),
                occurrence=self.s.occurrence,
                watch=self.watch,
                acknowledgeable=acknowledgeable,
                buttons=buttons,
            )
            self._record(reached, then)

        self.spawn(deliver())

    def page_now(self, people: list[str], text: str, key: str, then: Callable[[Reached], None]) -> None:
        """Page `people` with the very next command of this workflow task, ahead of anything else it asks for.

        The first few activities a task schedules come back to this worker with the task's answer (eager
        dispatch), so no queue on the server stands between the decision to page and the page.
        """
        s = self.s
        reached = Reached(failures=unreachable(self.policy, people, [Channel.PAGE]))
        if self.policy.paging_provider == DIRECT:
            self._page_directly(people, text, key, reached, then)
            return
        page = page_request(
            self.policy,
            people,
            text,
            f"{s.occurrence or s.incident_id}:{key}",
            incident_id=s.incident_id,
            severity=s.severity,
            subject=self._subject(),
        )
        if page is None:
            self._record(reached, then)
            return
        paging = workflow.start_activity_method(PagingActivities.page_open, page, **PAGING)
        reached.page_keys.append(page.dedup_key)

        async def paged() -> None:
            result, failure = await attempt(describe_page(page), paging)
            if failure:
                reached.failures.append(failure)
            else:
                reached.lines.append(as_delivered(describe_page(page), result))
            self._record(reached, then)

        self.spawn(paged())

    def _page_directly(
        self, people: list[str], text: str, key: str, reached: Reached, then: Callable[[Reached], None]
    ) -> None:
        """page_now when people are paged directly: what their rules send at once is asked for now."""
        s = self.s
        step = Step(
            self.policy,
            text,
            f"{s.occurrence or s.incident_id}:{key}",
            self._subject(),
            s.incident_id,
            s.severity,
            self.watch,
        )
        paging = page_directly(
            step, [p for p in people if p in self.policy.people and self.policy.address(p, Channel.PAGE)], SENDERS
        )

        async def paged() -> None:
            part = await paging
            reached.lines += part.lines
            reached.failures += part.failures
            self._record(reached, then)

        self.spawn(paged())

    def _subject(self) -> str:
        return f"{self.s.incident_id}: {self.s.title}"

    def _record(self, reached: Reached, then: Callable[[Reached], None] | None) -> None:
        self.s.page_keys += [k for k in reached.page_keys if k not in self.s.page_keys]
        for failure in reached.failures:
            self.note("delivery", failure)
        if then:
            then(reached)

    @property
    def chats(self) -> list[Channel]:
        """The organisation's chats (the policy's `response.chats`): where duties post and DM."""
        return list(self.policy.response.chats)

    def post(
        self,
        text: str,
        key: str,
        mentions: list[str] | None = None,
        revises: bool = False,
        buttons: list[ChatButton] | None = None,
    ) -> None:
        """Queue a post for the incident channel in every chat, in order (`revises`: replace the text posted
        under `key`); `mentions` are person ids."""
        for chat in self.chats:
            queued = ChannelPost(text=text, key=key, mentions=mentions or [], revises=revises, buttons=buttons or [])
            self.s.channel_posts.setdefault(chat, []).append(queued)

    async def post_queued(self) -> None:
        """Each chat's posts, one after the other, for as long as the incident runs; the chats side by side."""
        await asyncio.gather(*(self._post_queued(chat) for chat in self.chats))

    async def _post_queued(self, chat: Channel) -> None:
        s = self.s
        while True:
            await workflow.wait_condition(lambda: bool(s.chat_channels.get(chat) and s.channel_posts.get(chat)))
            queued = s.channel_posts[chat][0]
            request = ChatPost(
                channel=s.chat_channels[chat],
                text=queued.text,
                idempotency_key=f"{s.occurrence}:{queued.key}",
                mention_user_ids=chat_ids(self.policy, chat, queued.mentions),
                revises=queued.revises,
                buttons=queued.buttons,
            )
            failure = await self.tracked(post(chat, request))
            if failure:
                self.note("delivery", failure)
            s.channel_posts[chat].pop(0)

    def email(self, address: str, subject: str, text: str, key: str) -> None:
        """One e-mail to one address outside the incident's people."""
        request = EmailRequest(to=[address], subject=subject, text=text, idempotency_key=f"{self.s.occurrence}:{key}")

        async def send() -> None:
            _, failure = await attempt(
                "external e-mail", workflow.execute_activity_method(EmailActivities.send_email, request, **EMAIL)
            )
            if failure:
                self.note("delivery", failure)

        self.spawn(send())

    def page_action(self, method: Any, actor: str, note: str, keys: list[str] | None = None) -> None:
        """Acknowledge or resolve the paging alerts (all of them, or those keys)."""
        for key in list(self.s.page_keys if keys is None else keys):
            self.spawn(
                self._page_action(
                    method,
                    PageAction(
                        incident_id=self.s.incident_id,
                        dedup_key=key,
                        provider=self.policy.paging_provider,
                        actor=actor,
                        note=note,
                    ),
                )
            )

    async def _page_action(self, method: Any, action: PageAction) -> None:
        _, failure = await attempt("paging", workflow.execute_activity_method(method, action, **PAGING))
        if failure:
            self.note("page", failure)

    def acknowledge_pages(self, actor: str, keys: list[str] | None = None) -> None:
        self.page_action(PagingActivities.page_acknowledge, actor, "", keys)

    def resolve_pages(self, actor: str, keys: list[str] | None = None) -> None:
        self.page_action(PagingActivities.page_resolve, actor, "resolved", keys)

    def log_entry(self, event: str, log: str = "project", checklist_item: str = "") -> None:
        """A line in the project's or the global incident log (seeds 001-003); ticks the checklist when written."""
        s = self.s
        fields = {
            "event": event,
            "severity": s.severity.value,
            "phase": s.phase.value,
            "scope": s.scope.value,
            "opened": local(self.policy, s.opened_at, with_date=True),
            "service": s.service or "-",
        } | s.resolution
        entry = IncidentLogEntry(
            log=log,
            project=s.service or "unassigned",
            incident_id=s.incident_id,
            title=s.title,
            fields=fields,
            idempotency_key=f"{s.occurrence}:{log}:{event}:{s.reopens}",
            log_dir=self.policy.post_incident.log_dir,
        )

        entry_for = s.reopens

        async def write() -> None:
            result, failure = await attempt(
                "incident log", workflow.execute_activity_method(RecordsActivities.append_incident_log, entry, **LOCAL)
            )
            self.note("log", failure or f"{log} incident log: {event} entry written")
            if result is not None and checklist_item and s.reopens == entry_for:  # not a checklist a reopen cleared
                s.checklist[checklist_item] = True

        self.spawn(write())
