"""The organisation's registers: the incident record in Jira, ServiceNow or Confluence, and the postmortem's
follow-up issues in Jira or Linear; sync.py brings a record up to date in one go."""
