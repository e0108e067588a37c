"""Paging people directly: each person's notification rules on durable timers, through ntfy and Twilio or Vonage
(fakes that speak their wire formats), acknowledged from the page itself as the person it was sent to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from starter.http.app import create_app
from tests.conftest import run_under
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.twilio import FakeTwilio, Signed
from tests.fakes.vonage import Callback, FakeVonage
from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state, timeline
from worker import build_worker
from workflows.contracts.people import NotificationRules, NotificationStep
from workflows.contracts.policy import Escalation, Policy, Tier
from workflows.contracts.vocabulary import Channel, Severity
from workflows.incident.model import IncidentState
from workflows.incident.workflow import IncidentWorkflow

PUBLIC = "http://webhook"
BOB_PHONE, BOB_TOPIC = "+15550100002", "bob-pages-7f3k"
# "push at once, SMS after 2 minutes, a call after 5 if still unacknowledged"
BOBS_RULES = NotificationRules(
    high=[
        NotificationStep(channel=Channel.PUSH, after_minutes=0),
        NotificationStep(channel=Channel.SMS, after_minutes=2),
        NotificationStep(channel=Channel.VOICE, after_minutes=5),
    ]
)


def direct_policy(rules: NotificationRules | None = BOBS_RULES, **bob: str) -> Policy:
    base = make_policy()
    person = base.people["bob"].model_copy(
        update={"phone": BOB_PHONE, "ntfy_topic": BOB_TOPIC, "notification_rules": rules} | bob
    )
    return make_policy(
        paging_provider="direct",
        people=base.people | {"bob": person},
        escalation=Escalation(tiers=[Tier(notify=["bob"], channels=[Channel.PAGE], wait_minutes=30)]),
    )


@dataclass
class Stack:
    env: WorkflowEnvironment
    settings: Settings
    ntfy: FakeNtfy
    twilio: FakeTwilio
    vonage: FakeVonage
    http: httpx.AsyncClient

    async def page(self, policy: Policy) -> WorkflowHandle[IncidentWorkflow, IncidentState]:
        return await open_incident(
            self.env, self.settings, run_under(self.settings, policy), alert(severity=Severity.SEV1)
        )

    async def send(self, request: Signed, headers: dict[str, str] | None = None) -> httpx.Response:
        path = request.url.removeprefix(PUBLIC)
        return await self.http.post(path, data=request.form, headers=headers or request.headers())

    async def deliver(self, request: Callback) -> httpx.Response:
        return await self.http.post(request.url.removeprefix(PUBLIC), content=request.body, headers=request.headers)


@pytest.fixture
async def stack(ts_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[Stack]:
    async with FakeNtfy(forbidden={"refused-topic"}) as ntfy, FakeTwilio() as twilio, FakeVonage() as vonage:
        configured = vonage.configure(twilio.configure(ntfy.configure(settings))).model_copy(
            update={"public_url": PUBLIC}
        )
        async with build_worker(ts_env.client, configured):
            app = create_app(configured, client=ts_env.client, policy=direct_policy())
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=PUBLIC) as http:
                yield Stack(ts_env, configured, ntfy, twilio, vonage, http)


async def test_sev1_pages_bob_by_push_then_sms_and_his_sms_reply_acknowledges_and_stops_the_call(stack: Stack):
    handle = await stack.page(direct_policy())
    await stack.env.sleep(timedelta(minutes=1))
    assert [p["topic"] for p in stack.ntfy.published] == [BOB_TOPIC], "the push goes at once"
    assert [a["label"] for a in stack.ntfy.published[0]["actions"]] == ["Acknowledge", "Open"]
    assert stack.twilio.messages == [], "no SMS before +2 min"

    await stack.env.sleep(timedelta(minutes=2))  # +3
    assert [m["To"] for m in stack.twilio.messages] == [BOB_PHONE]
    answered = await stack.send(stack.twilio.reply(PUBLIC, BOB_PHONE, "ack"))
    assert answered.status_code == 200
    assert "acknowledged by bob by SMS" in answered.text

    await stack.env.sleep(timedelta(minutes=5))  # +8: the call was due at +5
    assert stack.twilio.calls_placed == [], "the ladder stops once bob acknowledged"
    s = await state(handle)
    assert s.acknowledged_by == "bob"
    assert timeline(s, "acknowledge") == [f"{s.incident_id} acknowledged by bob by SMS"]
    assert len(stack.ntfy.published) == len(stack.twilio.messages) == 1, "each method once"


async def test_seed000_paged_directly_the_push_is_still_the_first_thing_a_confirmed_incident_asks_for(stack: Stack):
    handle = await stack.page(direct_policy())
    await stack.env.sleep(timedelta(seconds=10))
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert len(scheduled) > 3, "the confirmation sets off more than the page"
    assert scheduled[0] == "send_push", f"the first activity asked for was {scheduled[0]}"


async def test_a_push_the_provider_refuses_moves_to_sms_at_once(stack: Stack):
    handle = await stack.page(direct_policy(ntfy_topic="refused-topic"))
    await stack.env.sleep(timedelta(seconds=30))
    assert stack.ntfy.published == []
    assert [m["To"] for m in stack.twilio.messages] == [BOB_PHONE], "the SMS goes without waiting for +2 min"
    assert any("push bob failed: ntfy answered 403" in line for line in timeline(await state(handle), "delivery"))


async def test_an_sms_twilio_reports_undelivered_moves_to_the_call_at_once(stack: Stack):
    await stack.page(direct_policy())
    await stack.env.sleep(timedelta(minutes=2, seconds=30))
    assert stack.twilio.calls_placed == []
    reported = await stack.send(stack.twilio.status(stack.twilio.messages[0], "undelivered"))
    assert reported.status_code == 204
    await stack.env.sleep(timedelta(seconds=30))  # +3: the call was due at +5
    assert [c["To"] for c in stack.twilio.calls_placed] == [BOB_PHONE]


async def test_a_reply_from_a_number_that_is_not_bobs_acknowledges_nothing(stack: Stack):
    handle = await stack.page(direct_policy())
    await stack.env.sleep(timedelta(minutes=3))
    answered = await stack.send(stack.twilio.reply(PUBLIC, "+15550199999", "ack"))
    assert "nothing was acknowledged" in answered.text
    await stack.env.sleep(timedelta(minutes=3))
    assert (await state(handle)).acknowledged_by is None
    assert [c["To"] for c in stack.twilio.calls_placed] == [BOB_PHONE], "the ladder went on to the call"


async def test_a_forged_twilio_request_is_refused_and_changes_nothing(stack: Stack):
    handle = await stack.page(direct_policy())
    await stack.env.sleep(timedelta(minutes=3))
    reply = stack.twilio.reply(PUBLIC, BOB_PHONE, "ack")
    forged = await stack.send(reply, headers=reply.headers(token="not-the-auth-token"))
    unsigned = await stack.http.post("/twilio/sms", data=reply.form)
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert (await state(handle)).acknowledged_by is None


async def test_a_keypress_in_the_call_acknowledges_as_the_person_called(stack: Stack):
    handle = await stack.page(direct_policy())
    await stack.env.sleep(timedelta(minutes=6))
    [call] = stack.twilio.calls_placed
    assert "Press 1 to acknowledge" in call["Twiml"]
    answered = await stack.send(stack.twilio.keypress(call, "1"))
    assert "Acknowledged" in answered.text
    s = await state(handle)
    assert timeline(s, "acknowledge") == [f"{s.incident_id} acknowledged by bob by phone call"]


async def test_the_push_acknowledge_button_acknowledges_once_as_bob(stack: Stack):
    handle = await stack.page(direct_policy())
    await stack.env.sleep(timedelta(seconds=30))
    button = stack.ntfy.published[0]["actions"][0]
    path = button["url"].removeprefix(PUBLIC)
    assert (await stack.http.get(path)).status_code == 200, "opening the link shows the incident"
    assert (await state(handle)).acknowledged_by is None, "opening it acknowledges nothing"
    first, again = await stack.http.post(path), await stack.http.post(path)
    assert (first.status_code, again.status_code) == (200, 200), "the same link is one decision, answered alike"
    s = await state(handle)
    assert timeline(s, "acknowledge") == [f"{s.incident_id} acknowledged by bob by push"]
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await stack.http.post(tampered)).status_code == 403


async def test_an_e_mail_page_links_to_acknowledging_as_its_person(stack: Stack):
    rules = NotificationRules(
        high=[NotificationStep(channel=Channel.EMAIL), NotificationStep(channel=Channel.SMS, after_minutes=10)]
    )
    handle = await stack.page(direct_policy(rules))
    await stack.env.sleep(timedelta(minutes=1))
    [mail] = [e["payload"] for e in outbox(stack.settings, "email") if e["payload"]["to"] == ["bob@example.com"]]
    link = mail["text"].rsplit("Acknowledge as bob: ", 1)[1].strip()
    assert (await stack.http.post(link.removeprefix(PUBLIC))).status_code == 200
    await stack.env.sleep(timedelta(minutes=10))
    s = await state(handle)
    assert timeline(s, "acknowledge") == [f"{s.incident_id} acknowledged by bob by e-mail"]
    assert stack.twilio.messages == [], "acknowledged: the SMS at +10 never goes"


async def test_the_first_way_back_acknowledges_and_a_later_one_is_told_who_already_did(stack: Stack):
    handle = await stack.page(direct_policy())
    await stack.env.sleep(timedelta(minutes=3))
    push_button = stack.ntfy.published[0]["actions"][0]["url"].removeprefix(PUBLIC)
    assert (await stack.http.post(push_button)).status_code == 200
    late = await stack.send(stack.twilio.reply(PUBLIC, BOB_PHONE, "ACK"))
    assert "already acknowledged by bob" in late.text
    s = await state(handle)
    assert timeline(s, "acknowledge") == [f"{s.incident_id} acknowledged by bob by push"]


async def test_pressing_2_in_the_call_hands_the_page_to_the_next_tier_at_once(stack: Stack):
    policy = direct_policy()
    tiers = [*policy.escalation.tiers, Tier(notify=["alice"], channels=[Channel.SLACK], wait_minutes=10)]
    handle = await stack.page(policy.model_copy(update={"escalation": Escalation(tiers=tiers)}))
    await stack.env.sleep(timedelta(minutes=6))
    [call] = stack.twilio.calls_placed
    answered = await stack.send(stack.twilio.keypress(call, "2"))
    assert "Escalated" in answered.text
    await stack.env.sleep(timedelta(minutes=1))  # +7: tier 1's wait ran to +30
    s = await state(handle)
    assert timeline(s, "escalate") == [f"{s.incident_id} escalated by bob by phone call: the next tier is paged now"]
    assert s.acknowledged_by is None
    assert [
        e for e in outbox(stack.settings, "slack", "dm") if ":t2:" in e["key"] and e["payload"]["user_id"] == "U0ALICE"
    ]


async def test_pressing_2_stops_the_callers_later_methods_as_acknowledging_does(stack: Stack):
    rules = NotificationRules(
        high=[
            NotificationStep(channel=Channel.VOICE, after_minutes=0),
            NotificationStep(channel=Channel.SMS, after_minutes=5),
        ]
    )
    policy = direct_policy(rules)
    tiers = [*policy.escalation.tiers, Tier(notify=["alice"], channels=[Channel.SLACK], wait_minutes=10)]
    await stack.page(policy.model_copy(update={"escalation": Escalation(tiers=tiers)}))
    await stack.env.sleep(timedelta(minutes=1))
    await stack.send(stack.twilio.keypress(stack.twilio.calls_placed[0], "2"))
    await stack.env.sleep(timedelta(minutes=6))  # bob's SMS was due at +5
    assert [e for e in outbox(stack.settings, "slack", "dm") if ":t2:" in e["key"]], "the next tier is paged"
    assert stack.twilio.messages == [], "bob handed the page on: his SMS never goes"


async def test_pressing_2_in_a_later_tier_stops_the_callers_later_methods_too(stack: Stack):
    rules = NotificationRules(
        high=[
            NotificationStep(channel=Channel.VOICE, after_minutes=0),
            NotificationStep(channel=Channel.SMS, after_minutes=5),
        ]
    )
    tiers = [
        Tier(notify=["carol"], channels=[Channel.SLACK], wait_minutes=2),
        Tier(notify=["bob"], channels=[Channel.PAGE], wait_minutes=30),  # paged by the ladder workflow
        Tier(notify=["alice"], channels=[Channel.SLACK], wait_minutes=10),
    ]
    await stack.page(direct_policy(rules).model_copy(update={"escalation": Escalation(tiers=tiers)}))
    await stack.env.sleep(timedelta(minutes=3))  # bob's tier since +2: his call went at once
    await stack.send(stack.twilio.keypress(stack.twilio.calls_placed[0], "2"))
    await stack.env.sleep(timedelta(minutes=6))  # his SMS was due at +7
    assert [e for e in outbox(stack.settings, "slack", "dm") if ":t3:" in e["key"]], "the next tier is paged"
    assert stack.twilio.messages == [], "bob handed the page on: his SMS never goes"


async def test_pressing_2_past_tier_1_ends_the_ladders_wait_on_its_tier(stack: Stack):
    policy = direct_policy()
    tiers = [
        Tier(notify=["bob"], channels=[Channel.PAGE], wait_minutes=2),
        Tier(notify=["carol"], channels=[Channel.SLACK], wait_minutes=30),
        Tier(notify=["alice"], channels=[Channel.SLACK], wait_minutes=10),
    ]
    await stack.page(policy.model_copy(update={"escalation": Escalation(tiers=tiers)}))
    await stack.env.sleep(timedelta(minutes=6))  # carol's tier since +2; bob's rules call him at +5
    assert not [e for e in outbox(stack.settings, "slack", "dm") if ":t3:" in e["key"]]
    await stack.send(stack.twilio.keypress(stack.twilio.calls_placed[0], "2"))
    await stack.env.sleep(timedelta(minutes=1))  # carol's tier would have run to +32
    assert [
        e for e in outbox(stack.settings, "slack", "dm") if ":t3:" in e["key"] and e["payload"]["user_id"] == "U0ALICE"
    ]


async def test_a_tier_can_name_sms_directly_under_any_paging_provider(stack: Stack):
    policy = direct_policy().model_copy(
        update={
            "paging_provider": "opsgenie",
            "escalation": Escalation(tiers=[Tier(notify=["bob"], channels=[Channel.SMS], wait_minutes=10)]),
        }
    )
    await stack.page(policy)
    await stack.env.sleep(timedelta(seconds=30))
    assert [m["To"] for m in stack.twilio.messages] == [BOB_PHONE]
    assert stack.ntfy.published == [], "the tier names SMS, not bob's rules"


# --- the same through Vonage, the policy's other telephony provider -------------------------------------------


def vonage_policy() -> Policy:
    return direct_policy().model_copy(update={"telephony": "vonage"})


async def test_vonage_sev1_pages_bob_by_push_then_sms_and_his_sms_reply_acknowledges_and_stops_the_call(stack: Stack):
    handle = await stack.page(vonage_policy())
    await stack.env.sleep(timedelta(minutes=1))
    assert [p["topic"] for p in stack.ntfy.published] == [BOB_TOPIC], "the push goes at once"
    assert stack.vonage.messages == [], "no SMS before +2 min"

    await stack.env.sleep(timedelta(minutes=2))  # +3
    assert [m["to"] for m in stack.vonage.messages] == [BOB_PHONE.lstrip("+")]
    assert stack.twilio.messages == [], "the policy names Vonage"
    answered = await stack.deliver(stack.vonage.reply(PUBLIC, BOB_PHONE, "ack"))
    assert answered.status_code == 204

    await stack.env.sleep(timedelta(minutes=5))  # +8: the call was due at +5
    assert stack.vonage.calls_placed == [], "the ladder stops once bob acknowledged"
    s = await state(handle)
    assert timeline(s, "acknowledge") == [f"{s.incident_id} acknowledged by bob by SMS"]
    assert len(stack.ntfy.published) == len(stack.vonage.messages) == 1, "each method once"


async def test_vonage_a_reply_from_a_number_that_is_not_bobs_acknowledges_nothing(stack: Stack):
    handle = await stack.page(vonage_policy())
    await stack.env.sleep(timedelta(minutes=3))
    assert (await stack.deliver(stack.vonage.reply(PUBLIC, "+15550199999", "ack"))).status_code == 204
    await stack.env.sleep(timedelta(minutes=3))
    assert (await state(handle)).acknowledged_by is None
    assert [c["to"][0]["number"] for c in stack.vonage.calls_placed] == [BOB_PHONE.lstrip("+")], "on to the call"


async def test_vonage_an_sms_receipt_that_says_failed_moves_to_the_call_at_once(stack: Stack):
    await stack.page(vonage_policy())
    await stack.env.sleep(timedelta(minutes=2, seconds=30))
    assert stack.vonage.calls_placed == []
    receipt = await stack.deliver(stack.vonage.receipt(stack.vonage.messages[0], "failed", err_code="6"))
    assert receipt.status_code == 204
    await stack.env.sleep(timedelta(seconds=30))  # +3: the call was due at +5
    assert len(stack.vonage.calls_placed) == 1


async def test_vonage_a_call_nobody_answers_moves_to_the_next_method_at_once(stack: Stack):
    rules = NotificationRules(
        high=[NotificationStep(channel=Channel.VOICE), NotificationStep(channel=Channel.SMS, after_minutes=10)]
    )
    handle = await stack.page(direct_policy(rules).model_copy(update={"telephony": "vonage"}))
    await stack.env.sleep(timedelta(minutes=1))
    assert (await stack.deliver(stack.vonage.call_event(stack.vonage.calls_placed[0], "unanswered"))).status_code == 204
    await stack.env.sleep(timedelta(seconds=30))  # the SMS was due at +10
    assert len(stack.vonage.messages) == 1
    assert any(
        "phone call bob failed: Vonage reports unanswered" in t for t in timeline(await state(handle), "delivery")
    )


async def test_vonage_a_keypress_in_the_call_acknowledges_as_the_person_called(stack: Stack):
    handle = await stack.page(vonage_policy())
    await stack.env.sleep(timedelta(minutes=6))
    [call] = stack.vonage.calls_placed
    answered = await stack.deliver(stack.vonage.keypress(call, "1"))
    assert answered.json() == [{"action": "talk", "text": "Acknowledged. Thank you."}]
    s = await state(handle)
    assert timeline(s, "acknowledge") == [f"{s.incident_id} acknowledged by bob by phone call"]


async def test_vonage_forged_requests_are_refused_and_change_nothing(stack: Stack):
    handle = await stack.page(vonage_policy())
    await stack.env.sleep(timedelta(minutes=6))
    [sms], [call] = stack.vonage.messages, stack.vonage.calls_placed
    reply = stack.vonage.reply(PUBLIC, BOB_PHONE, "ack", secret="not-the-signature-secret-0123456789abcdef")
    keypress = stack.vonage.keypress(call, "1", secret="not-the-signature-secret-0123456789abcdef")
    genuine = stack.vonage.keypress(call, "1")
    tampered = Callback(genuine.url, genuine.body.replace(b'"1"', b'"2"'), genuine.headers)  # the JWT is for "1"
    receipt = stack.vonage.receipt(sms, "failed")
    unsigned = Callback(receipt.url, receipt.body.split(b"&sig=")[0], receipt.headers)
    answers = [await stack.deliver(forged) for forged in (reply, keypress, tampered, unsigned)]
    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    await stack.env.sleep(timedelta(seconds=30))
    s = await state(handle)
    assert s.acknowledged_by is None and timeline(s, "escalate") == []
    assert not any("Vonage reports" in t for t in timeline(s, "delivery"))
