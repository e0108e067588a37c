"""Moving in: what other on-call tools export (OpsGenie, PagerDuty, Grafana OnCall) as a policy fragment.

One module per source; `fragment` is what they share: the people, schedules and escalation they write, and the
report of what could not be carried over.
"""
