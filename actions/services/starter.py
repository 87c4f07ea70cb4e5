"""The starter actions and automations (actions/fixtures/starter-actions.json): dev environments, TTL, locks,
deploy, cloud resources, temporary access — wired to the built-in demo receiver (actions/demo_receiver.py) so
they work before any external system is connected.

Only actions that do not exist yet are created (with the grants the fixture gives them), so re-running never
undoes what a platform team changed since; teams the grants name are created empty when missing."""
import json
from pathlib import Path

from django.db import transaction

from actions.models import Action
from actions.services.actions import action_create, action_permissions_update
from catalog.models import Team
from catalog.services.teams import team_create

STARTER_ACTIONS = Path(__file__).resolve().parents[1] / "fixtures" / "starter-actions.json"


def starter_actions_document() -> dict:
    return json.loads(STARTER_ACTIONS.read_text())


@transaction.atomic
def starter_actions_install(*, actor, document=None) -> list[str]:
    """Create the missing starter actions; returns the identifiers created, in fixture order."""
    document = starter_actions_document() if document is None else document
    for name in document.get("teams", []):
        if not Team.objects.filter(name=name).exists():
            team_create(actor=actor, data={"name": name, "description": "Created by the starter actions (approvers)."})
    existing = set(Action.objects.values_list("identifier", flat=True))
    created = []
    for item in document.get("actions", []):
        if item["identifier"] in existing:
            continue
        definition = {key: value for key, value in item.items() if key != "permissions"}
        action = action_create(actor=actor, data=definition)
        if item.get("permissions"):
            action_permissions_update(actor=actor, action=action, data=item["permissions"])
        created.append(action.identifier)
    return created
