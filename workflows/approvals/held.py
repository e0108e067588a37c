"""What waits for an approval (seed 000), as deliveries: external words and extra Slack channels.

The rules (approvals/rules.py) decide what is held and who may release it; this sends what was
released, asks the people who decide, and makes an approved channel. One e-mail per recipient, keyed
by statement and address, so a retried send reaches nobody twice through the paths that can tell.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.approvals import rules as approval_rules
    from workflows.contracts.activity_io import ChatChannelRequest
    from workflows.contracts.clock import local
    from workflows.contracts.policy import Policy
    from workflows.contracts.vocabulary import Channel, Role
    from workflows.delivery.deliveries import Deliveries
    from workflows.delivery.reach import button, chat_ids, ensure_channel
    from workflows.incident.derive import incident_commander, people_for
    from workflows.incident.model import (
        ApproveChannel,
        ApproveStatement,
        ChannelRequest,
        Decision,
        DeclineChannel,
        DraftStatement,
        HeldStatement,
        IncidentState,
        RequestChannel,
    )


class Approvals:
    def __init__(self, s: IncidentState, policy: Policy, out: Deliveries) -> None:
        self.s, self.policy, self.out = s, policy, out

    def follow_up(self, d: Decision) -> None:
        """What a decision on a statement or a channel request sets going, once the rules applied it."""
        s = self.s
        match d:
            case DraftStatement() if s.statements[-1].approved:
                self.send(s.statements[-1])
            case DraftStatement():
                self.ask_communications_lead(s.statements[-1])
            case ApproveStatement():
                self.send(approval_rules.statement_by_id(s, d.statement_id))
            case RequestChannel():
                self.ask_for_channel_decision(s.channel_requests[-1])
            case ApproveChannel():
                self.open_channel(approval_rules.request_by_id(s, d.request_id))
            case DeclineChannel():
                self.tell_requester(approval_rules.request_by_id(s, d.request_id))

    # --- external words ------------------------------------------------------------------------------

    def offer(self, about: str, subject: str, text: str, parties: list[str], by: str) -> None:
        """Words for external parties: sent when approved (at once where the policy or the author allows),
        else held and the Communications Lead asked."""
        statement = approval_rules.hold(self.s, self.policy, about, subject, text, parties, by, workflow.now())
        if statement is None:
            return
        if statement.approved:
            self.send(statement)
        else:
            self.out.note("statement", approval_rules.held_words(statement), by)
            self.ask_communications_lead(statement)

    def ask_communications_lead(self, statement: HeldStatement) -> None:
        s, sid = self.s, statement.statement_id
        leads = people_for(s, self.policy, [Role.COMMUNICATIONS_LEAD])
        if not leads:
            self.out.note("statement", f"{sid} waits, and nobody holds the Communications Lead role: assign one")
            return
        self.out.reach(
            leads,
            self.out.chats,
            f"{s.incident_id}: the {statement.about} {sid} for {', '.join(statement.parties)} waits for your "
            f"approval.\nSubject: {statement.subject}\n{statement.text}\n"
            f"Approve (optionally in your words): incidentctl statement approve {s.incident_id} {sid} [--text ...]\n"
            f"Withhold: incidentctl statement withhold {s.incident_id} {sid} --reason ...",
            f"statement:{sid}:ask",
            buttons=[button("Approve as written", "approve_statement", s.incident_id, statement_id=sid)],
        )

    def send(self, statement: HeldStatement) -> None:
        """One e-mail per recipient: the smallest window in which SMTP can deliver twice."""
        sid = statement.statement_id
        for address in statement.recipients:
            self.out.email(address, statement.subject, statement.text, f"statement:{sid}:{address}")
        self.out.note(
            "statement",
            f"{statement.about} {sid} sent to {', '.join(statement.parties)} "
            f"({len(statement.recipients)} recipients), approved by {statement.decided_by}",
        )

    # --- extra Slack channels -------------------------------------------------------------------------

    def ask_for_channel_decision(self, request: ChannelRequest) -> None:
        s = self.s
        deciders = [incident_commander(s, self.policy)]
        deciders += [p for p in people_for(s, self.policy, [Role.COMMUNICATIONS_LEAD]) if p not in deciders]
        text = (
            f"{request.requested_by} asks for an extra Slack channel #{request.name} for {s.incident_id} "
            f"at {local(self.policy, request.requested_at)}: {request.reason}\n"
            f"incidentctl channel approve {s.incident_id} {request.request_id} | "
            f"incidentctl channel decline {s.incident_id} {request.request_id} --reason ..."
        )
        approve = [button("Approve", "approve_channel", s.incident_id, request_id=request.request_id)]
        self.out.reach(deciders, self.out.chats, text, f"channel-request:{request.request_id}", buttons=approve)
        self.out.post(text, f"channel-request:{request.request_id}", buttons=approve)

    def open_channel(self, request: ChannelRequest) -> None:
        """The approved channel, with the requester and the approver in it."""
        s = self.s
        people = [request.requested_by, request.decided_by]

        async def create(chat: Channel) -> None:
            result, failure = await ensure_channel(
                chat,
                ChatChannelRequest(
                    incident_id=s.incident_id,
                    title=request.name,
                    invite_user_ids=chat_ids(self.policy, chat, people),
                    channel_prefix=self.policy.response.slack_channel_prefix,
                    purpose=f"{request.reason} (approved by {request.decided_by} for {s.incident_id})",
                ),
            )
            if result is not None:
                request.channel = result.name
            self.out.note("channel", failure or f"Extra channel {result.name if result else ''} opened")

        for chat in self.out.chats:
            self.out.spawn(create(chat))

    def tell_requester(self, request: ChannelRequest) -> None:
        self.out.reach(
            [request.requested_by],
            self.out.chats,
            f"Your channel request {request.request_id} ({request.name}) on {self.s.incident_id} was declined "
            f"by {request.decided_by}: {request.reason_declined}. Keep the conversation in the incident channel.",
            f"channel-declined:{request.request_id}",
        )
