"""Waking people: paging providers (OpsGenie, PagerDuty, Jira Service Management), and paging people directly
by push (ntfy), SMS and voice (Twilio or Vonage, behind telephony.py)."""

from __future__ import annotations

from activities.paging.telephony import Telephony
from activities.paging.twilio import Twilio
from activities.paging.vonage import Vonage
from settings import Settings


def telephony_providers(settings: Settings) -> dict[str, Telephony]:
    """Each SMS and voice provider whose credentials are set, by the name a policy gives it (`telephony`)."""
    configured: dict[str, Telephony] = {}
    if Twilio.configured(settings):
        configured[Twilio.name] = Twilio(settings)
    if Vonage.configured(settings):
        configured[Vonage.name] = Vonage(settings)
    return configured
