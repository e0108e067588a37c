"""The chats an incident lives in: Slack and Microsoft Teams, each an adapter of its own."""
