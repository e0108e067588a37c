"""Waking people: paging providers (OpsGenie, PagerDuty, Jira Service Management), and paging people directly
by push (ntfy), SMS and voice (Twilio)."""
