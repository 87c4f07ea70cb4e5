"""A small Ocean integration of ours: two related kinds, `team` and `service`, read from the JSON file named by
PORTAL_FAKE_SOURCE ({"teams": [...], "services": [...]}), which the test edits between resyncs."""
import json
import os
from typing import Any

from port_ocean.context.ocean import ocean


def _source(key: str) -> list[dict[str, Any]]:
    with open(os.environ["PORTAL_FAKE_SOURCE"], encoding="utf-8") as source:
        return json.load(source)[key]


@ocean.on_resync("team")
async def resync_teams(kind: str) -> list[dict[str, Any]]:
    return _source("teams")


@ocean.on_resync("service")
async def resync_services(kind: str) -> list[dict[str, Any]]:
    return _source("services")
