"""Linear: the postmortem's action items as issues of the policy's team (GraphQL API, a personal API key).

The issue's description ends with the action item's marker; creating looks first for an issue of the team
whose description holds it, so an attempt whose answer was lost is not repeated. Linear answers a rate
limit with a GraphQL error coded RATELIMITED (and the time its budget refills): retried then.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from activities.http import check, heartbeating, new_client, send, within_attempt
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import FollowUpCreated, FollowUpRequest

PEER = "linear"
FIND = """query FollowUp($team: ID!, $marker: String!) {
  issues(first: 1, filter: {team: {id: {eq: $team}}, description: {contains: $marker}}) {
    nodes { identifier url }
  }
}"""
CREATE = """mutation CreateFollowUp($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { identifier url } }
}"""


def marker(key: str) -> str:
    return f"[follow-up {key}]"


class LinearActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.outbox = outbox
        self.url = settings.linear_api_url  # the endpoint itself: httpx would add a slash to a base URL's path
        self.client: httpx.AsyncClient | None = None
        if settings.linear_api_key is not None:
            self.client = new_client(
                settings.linear_api_url, {"Authorization": settings.linear_api_key.get_secret_value()}
            )

    async def linear_create_follow_up(self, request: FollowUpRequest) -> FollowUpCreated:
        if self.client is None:
            await self.outbox.deliver(PEER, "follow_up", request.key, request.model_dump(mode="json"))
            return FollowUpCreated(issue=request.key, url="outbox")
        team = request.follow_ups.team_id
        async with within_attempt(PEER), heartbeating():
            found = await self._query(self.client, FIND, {"team": team, "marker": marker(request.key)})
            nodes = ((found.get("issues") or {}).get("nodes")) or []
            if nodes:
                return FollowUpCreated(issue=str(nodes[0]["identifier"]), url=str(nodes[0].get("url", "")))
            issue: dict[str, Any] = {
                "teamId": team,
                "title": request.title,
                "description": f"{request.description}\n\n{marker(request.key)}",
            }
            if request.due:
                issue["dueDate"] = request.due.isoformat()
            if request.owner_account:
                issue["assigneeId"] = request.owner_account
            created = (await self._query(self.client, CREATE, {"input": issue})).get("issueCreate") or {}
        if not created.get("success") or not created.get("issue"):
            raise ApplicationError("linear did not create the issue", type="linear:unexpected")
        return FollowUpCreated(issue=str(created["issue"]["identifier"]), url=str(created["issue"].get("url", "")))

    async def _query(self, client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await send(client, PEER, "POST", self.url, json={"query": query, "variables": variables})
        try:
            answer = response.json()
        except ValueError:
            answer = None
        errors = (answer or {}).get("errors") if isinstance(answer, dict) else None
        if errors:
            codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors}
            message = "; ".join(str(e.get("message", "")) for e in errors)[:300]
            if "RATELIMITED" in codes:
                raise ApplicationError(
                    f"linear rate limit: {message}",
                    type="linear:ratelimited",
                    next_retry_delay=_until_reset(response.headers.get("X-RateLimit-Requests-Reset")),
                )
            retryable = response.status_code >= 500
            raise ApplicationError(
                f"linear refused: {message}", type=f"linear:{response.status_code}", non_retryable=not retryable
            )
        check(response, PEER)
        return dict((answer or {}).get("data") or {})


def _until_reset(reset_ms: str | None) -> timedelta | None:
    """Linear sends when the budget refills, in epoch milliseconds."""
    try:
        return timedelta(seconds=max(1.0, int(reset_ms or "") / 1000 - time.time()))
    except ValueError:
        return None
