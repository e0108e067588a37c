"""After the incident is resolved: the resolution message, the records, the review, the close.

Seed 000: the resolution goes to all relevant parties with an overview, how it was resolved and
prevention. Seeds 001-003: the project and global incident logs, the PMO for the weekly call, a
postmortem with seed 002's five headings, a review meeting with reminders until it is held; the
incident closes only when its documentation is complete. Each step is handed over at once; a reopen
meanwhile is never overwritten, and sends no review invitation for an open incident.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.records import RecordsActivities
    from workflows.approvals.held import Approvals
    from workflows.contracts.activity_io import PostmortemRequest, Reached
    from workflows.contracts.clock import local
    from workflows.contracts.decisions import INCIDENT_DECISIONS
    from workflows.contracts.policy import CLIENT_CONTACTS, Policy
    from workflows.contracts.roles import expand
    from workflows.contracts.vocabulary import Channel, Phase, Role, Status
    from workflows.delivery.deliveries import Deliveries
    from workflows.delivery.reach import LOCAL, archive, attempt
    from workflows.incident.deadline import Clock
    from workflows.incident.derive import incident_commander, people_for
    from workflows.incident.model import IncidentState
    from workflows.records.actions import listed
    from workflows.recovery.view import plan_summary

REVIEWERS = [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.RESPONSIBLE_DEVELOPER, Role.PROJECT_MANAGER]


class Aftermath:
    def __init__(self, s: IncidentState, policy: Policy, out: Deliveries, approvals: Approvals, clock: Clock) -> None:
        self.s, self.policy, self.out, self.approvals, self.clock = s, policy, out, approvals, clock

    async def follow_each_resolution(self) -> None:
        """Every resolution (a reopened incident is resolved again) gets its message and its records."""
        s = self.s
        while True:
            await workflow.wait_condition(lambda: s.resolutions > s.aftermath_of and s.status is Status.RESOLVED)
            s.aftermath_of = s.resolutions
            self._send_resolution_message()
            self._begin_analysis()

    def _send_resolution_message(self) -> None:
        """Seed 000: the resolution message to all parties, at once or once the Communications Lead sends it;
        paging closed."""
        s = self.s
        self.out.resolve_pages(s.resolved_by)
        if not self.policy.comms.communications_lead_sends_resolution:
            s.resolution_sent = s.resolutions
            self.send_resolution(s.resolved_by)
            return
        leads = people_for(s, self.policy, [Role.COMMUNICATIONS_LEAD])
        self.out.reach(
            leads,
            self.out.chats,
            f"{s.incident_id} is resolved. Please send the resolution message to all relevant parties, as drafted "
            f"or in your words (incidentctl send-resolution {s.incident_id} [--text ...]):\n{self._resolution_text()}",
            f"resolution:{s.resolutions}:ask",
        )
        self.out.note(
            "resolution", f"Resolution message waits for the Communications Lead ({', '.join(leads) or 'none'})"
        )

    def _resolution_text(self) -> str:
        s, r = self.s, self.s.resolution
        return (
            f"RESOLVED {s.incident_id}: {s.title}\nOverview: {r['overview']}\n"
            + (f"Root cause: {r['root_cause']}\n" if r.get("root_cause") else "")
            + f"How it was resolved: {r['how_resolved']}\nPrevention: {r['prevention']}"
        )

    def send_resolution(self, by: str, text: str = "") -> None:
        """The channel, the leads, the Communications Lead, the internal lists and the external parties."""
        s = self.s
        text = text.strip() or self._resolution_text()
        key = f"resolution:{s.resolutions}"
        self.out.post(text, key)
        parties = expand(self.policy, self.policy.cadence.leads, s.roles)
        parties += [p for p in people_for(s, self.policy, [Role.COMMUNICATIONS_LEAD]) if p not in parties]
        self.out.reach(parties, [*self.out.chats, Channel.EMAIL], text, key)
        for address in self.policy.cadence.lists:
            self.out.email(address, f"Resolved: {s.title}", text, f"{key}:{address}")
        # seed 000: the Communications Lead communicates the resolution to all relevant parties
        outside = list(self.policy.comms.external_parties)
        if self.policy.cadence.notify_client_contacts:
            outside.insert(0, CLIENT_CONTACTS)
        self.approvals.offer("resolution", f"Resolved: {s.title}", text, outside, by)
        lists = f", {len(self.policy.cadence.lists)} internal lists" if self.policy.cadence.lists else ""
        self.out.note("resolution", f"Resolution message sent to {', '.join(parties)}{lists} and the incident channel")

    def _begin_analysis(self) -> None:
        """Seeds 001-003: both incident logs, the PMO, a postmortem draft, then the review meeting."""
        s, post = self.s, self.policy.post_incident
        s.enter(Phase.ANALYSIS)
        if post.project_log:
            self.out.log_entry("resolved", log="project", checklist_item="project_log")
        if post.global_log:
            self.out.log_entry("resolved", log="global", checklist_item="global_log")
        if post.notify_pmo:
            self._notify_pmo()
        s.review_due = (s.resolved_at or workflow.now()) + timedelta(hours=post.review_after_hours)
        s.next_review_reminder = s.review_due
        self.out.spawn(self._draft_postmortem_then_invite(s.reopens, s.review_due))

    def _notify_pmo(self) -> None:
        """Seed 002: the PMO adds the incident to this week's PM call agenda."""
        pmo = people_for(self.s, self.policy, [Role.PMO])
        if not pmo:
            self.out.note("pmo", "No PMO in the policy to notify")
            return

        def ticked(reached: Reached) -> None:
            self.s.checklist["pmo_notified"] = bool(reached.lines)

        self.out.reach(
            pmo,
            [*self.out.chats, Channel.EMAIL],
            f"Please add {self.s.incident_id} ({self.s.title}) to the agenda of this week's PM call.",
            f"pmo:{self.s.reopens}",
            then=ticked,
        )
        self.out.note("pmo", f"PMO ({', '.join(pmo)}) asked to put it on this week's PM call agenda")

    async def _draft_postmortem_then_invite(self, reopens: int, review_due: datetime) -> None:
        s = self.s
        await self.draft_postmortem()
        if s.status is not Status.RESOLVED or s.reopens != reopens:
            return  # reopened meanwhile: no review of an open incident
        named = self.policy.post_incident.review_attendees
        attendees = expand(self.policy, named, s.roles) if named else people_for(s, self.policy, REVIEWERS)
        plans = (
            f" Afterwards record what it changes in the response, communication and recovery plans "
            f"(incidentctl plan-updated {s.incident_id} --changes ...)."
            if self.policy.post_incident.require_plan_update
            else ""
        )
        when = local(self.policy, review_due, with_date=True)
        self.out.reach(
            attendees,
            [*self.out.chats, Channel.EMAIL],
            f"Post-incident review of {s.incident_id} ({s.title}) is scheduled for "
            f"{when}. Postmortem draft: {s.postmortem_location}.{plans}",
            f"review:invite:{reopens}",
        )
        self.out.note("review", f"Review meeting scheduled for {when} with {', '.join(attendees)}")

    def _own_words(self) -> list[str]:
        """What people said while it was open, as they said it (seed 003: document every step and decision)."""
        return [
            f"- {local(self.policy, e.at)}, {e.actor}: {e.text}"
            for e in self.s.timeline
            if e.kind in INCIDENT_DECISIONS and e.actor and e.actor != "policy"
        ]

    async def draft_postmortem(self) -> None:
        """Seed 002's summary under its five headings, with the timeline (redrafted after the review)."""
        s, r = self.s, self.s.resolution
        source = "a person's report" if s.source == "manual" else f"an alert from {s.source}"
        sections = {
            "What happened": f"{s.title}. {r.get('overview', '')}".strip(),
            "How the issue was identified": f"Detected through {s.alert_count} alert(s), first by {source} at "
            f"{local(self.policy, s.opened_at, with_date=True)}.",
            "Root cause": r.get("root_cause", ""),
            "Steps taken (communication and technical)": "\n".join(
                [r.get("how_resolved", ""), "", *self._own_words()]
            ).strip(),
            **({"Recovery plan": plan_summary(self.policy, s.tasks)} if s.tasks else {}),
            "Key takeaways and recommendations": "\n\n".join(
                part for part in (r.get("prevention", ""), r.get("review_notes", ""), listed(s)) if part
            ),
            **({"Changes to the plans": r["plan_changes"]} if r.get("plan_changes") else {}),
        }
        reopens = s.reopens  # a reopen while it is written clears the checklist: the draft is then not the record
        result, failure = await attempt(
            "postmortem draft",
            workflow.execute_activity_method(
                RecordsActivities.write_postmortem,
                PostmortemRequest(
                    incident_id=s.incident_id,
                    title=s.title,
                    opened_at=s.opened_at,
                    severity=s.severity,
                    service=s.service,
                    sections=sections,
                    timeline=s.timeline,
                    log_dir=self.policy.post_incident.log_dir,
                    timezone=self.policy.business_hours.timezone,
                ),
                **LOCAL,
            ),
        )
        if result:
            s.postmortem_location = result.location
            s.checklist["postmortem_drafted"] = s.reopens == reopens
        self.out.note("postmortem", failure or f"Postmortem drafted at {s.postmortem_location}")

    async def remind_until_reviewed(self) -> None:
        s = self.s
        deadline = self.clock.deadline(
            lambda: s.next_review_reminder if s.status is Status.RESOLVED and not s.checklist["review_held"] else None
        )
        while True:
            due = await deadline.passed()
            s.next_review_reminder = workflow.now() + timedelta(hours=self.policy.post_incident.review_reminder_hours)
            if not s.checklist["postmortem_drafted"]:  # the first draft failed: try again with the reminder
                self.out.spawn(self.draft_postmortem())
            self.out.reach(
                people_for(s, self.policy, REVIEWERS),
                self.out.chats,
                f"Reminder: the post-incident review of {s.incident_id} has not been held yet "
                f"(incidentctl review-held {s.incident_id}).",
                f"review:reminder:{due:%Y%m%d%H}",
            )
            self.out.note("review", "Review reminder sent")

    async def close(self) -> None:
        """The channel archived and the global log's final entry: the incident's record is complete."""
        s = self.s
        await self.out.drained()
        for failure in await asyncio.gather(*(archive(chat, channel) for chat, channel in s.chat_channels.items())):
            if failure:
                self.out.note("channel", failure)
        self.out.log_entry("closed", log="global")
        await self.out.drained()
        self.out.note("closed", f"Incident closed; {incident_commander(s, self.policy)} was its commander")
