"""The custom search attributes incidents keep current, for the Temporal UI and `incidentctl list`."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from workflows.contracts import limits

SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
PHASE = SearchAttributeKey.for_keyword("IncidentPhase")
STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
SCOPE = SearchAttributeKey.for_keyword("IncidentScope")
SERVICE = SearchAttributeKey.for_keyword("IncidentService")
KIND = SearchAttributeKey.for_keyword("IncidentKind")
ACKNOWLEDGED = SearchAttributeKey.for_bool("IncidentAcknowledged")

ALL: list[SearchAttributeKey[Any]] = [SEVERITY, PHASE, STATUS, SCOPE, SERVICE, KIND, ACKNOWLEDGED]


def keyword(value: str) -> str:
    """A keyword's value cut by bytes within the server's limit: a value over it fails the workflow task
    that sets it, and the first such task is the one that pages."""
    return limits.cut(value, limits.SEARCH_ATTRIBUTE_BYTES)


async def register(client: Client) -> None:
    """Register every key on a server started without them (the time-skipping test server)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL},
        )
    )


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "BOOL": "Bool"}
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags
