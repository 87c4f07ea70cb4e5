"""Runs of an UPSERT_ENTITY action on blueprint Env (`make_run`), dispatched the way the worker does (`dispatch`)."""
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Action, Run
from actions.tasks import run_dispatch_task
from tests.factories import RunFactory


ENV = {"identifier": "Env", "title": "Environment",
       "schema": {"properties": {"branch": {"type": "string"}, "locked": {"type": "boolean"}, "owner": {"type": "string"}}}}

MAPPING = {"identifier": "{{ .inputs.name }}", "title": "Env {{ .inputs.name }}",
           "properties": {"branch": "{{ .inputs.branch }}", "locked": True, "owner": "{{ .trigger.by.user.email }}"}}


def make_run(requester, *, mapping=MAPPING, properties, operation="CREATE", blueprint="Env"):
    action = Action.objects.create(
        identifier=f"upsert_{Action.objects.count()}", title="Lock", trigger_type="self-service", operation=operation,
        blueprint_identifier="Env", invocation_method={"type": "UPSERT_ENTITY", "blueprintIdentifier": blueprint,
                                                        "mapping": mapping})
    return RunFactory(id=f"r_up{Run.objects.count()}", action=action, blueprint_identifier="Env",
                              status=RunStatus.IN_PROGRESS, requested_by=requester, properties=properties,
                              started_at=timezone.now())


def dispatch(run):
    run_dispatch_task(run.id)
    run.refresh_from_db()
    return run
