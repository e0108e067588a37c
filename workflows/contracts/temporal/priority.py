"""Seed 000's order under load: Temporal task queue priority (1 runs first; 3 is the server's default).

A flood of alerts backs the task queue up. The incident's own workflow tasks (decisions, deadlines), its
escalation ladder and its pages go ahead of the chat, e-mail and records of every incident, and those
ahead of the stakeholder message loop: so a page is never late behind somebody else's Slack post.
"""

from temporalio.common import Priority

INCIDENT_KEY = 1
INCIDENT = Priority(priority_key=INCIDENT_KEY)  # the incident workflow, its ladder and its pages
PEOPLE = Priority(priority_key=3)  # chat, e-mail, Telegram, the bridge, records
STAKEHOLDERS = Priority(priority_key=4)  # the message loop (CommsWorkflow) and what it sends
