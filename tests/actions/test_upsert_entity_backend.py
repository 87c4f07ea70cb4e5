"""The UPSERT_ENTITY backend: the mapped entity is merged into the catalog with the run's id."""
import pytest

from actions.choices import RunStatus
from audit.models import AuditEvent
from catalog.models import Entity
from tests.factories import BlueprintFactory, EntityFactory
from tests.support.upsert_entity import ENV, dispatch, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def env_blueprint(db):
    return BlueprintFactory(**ENV)


def test_creates_the_entity_with_the_run_id(requester, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = dispatch(make_run(requester, properties={"name": "dev-x", "branch": "feature-x"}))
    entity = Entity.objects.get(identifier="dev-x")
    assert entity.title == "Env dev-x" and entity.run_id == run.id
    assert entity.properties == {"branch": "feature-x", "locked": True, "owner": "dev@example.com"}
    assert run.status == RunStatus.SUCCESS and run.status_label == "Entity 'dev-x' of blueprint 'Env' created"
    assert run.payload == {"type": "UPSERT_ENTITY", "blueprintIdentifier": "Env",
                           "mapping": {"identifier": "dev-x", "title": "Env dev-x", "properties": entity.properties}}
    (event,) = AuditEvent.objects.filter(resource_type="entity")
    assert event.verb == "catalog.entity.created" and event.run_id == run.id
    run.refresh_from_db()
    assert run.result_entity_id == entity.pk  # linked by the run_id hook after commit


def test_merges_into_an_existing_entity(requester):
    EntityFactory(blueprint="Env", identifier="dev-y", title="Y", properties={"branch": "main", "owner": "ops@example.com"})
    mapping = {"identifier": "{{ .inputs.name }}", "properties": {"locked": "{{ .inputs.lock }}"}}
    run = dispatch(make_run(requester, mapping=mapping, properties={"name": "dev-y", "lock": True}, operation="DAY-2"))
    entity = Entity.objects.get(identifier="dev-y")
    assert entity.properties == {"branch": "main", "owner": "ops@example.com", "locked": True}
    assert entity.title == "Y" and entity.run_id == run.id
    assert run.status == RunStatus.SUCCESS and run.status_label == "Entity 'dev-y' of blueprint 'Env' updated"


def test_a_validation_error_fails_the_run_with_its_message(requester):
    mapping = {"identifier": "dev-z", "properties": {"locked": "{{ .inputs.lock }}"}}
    run = dispatch(make_run(requester, mapping=mapping, properties={"lock": "not-a-boolean"}))
    assert not Entity.objects.filter(identifier="dev-z").exists()
    assert run.status == RunStatus.FAILURE
    assert run.status_label.startswith("Entity not written: properties.locked")


@pytest.mark.parametrize("expression, message", [
    ('"a\\u0000b"', "properties.branch: must not contain NUL characters"),  # jq builds a NUL from an escape
    ("[0] | implode", "properties.branch: must not contain NUL characters"),
    ("infinite | tostring", None),  # a string, storable: written
])
def test_a_mapping_that_renders_what_the_database_cannot_hold_fails_the_run_naming_it(requester, expression, message):
    mapping = {"identifier": "dev-n", "properties": {"branch": "{{ " + expression + " }}"}}
    run = dispatch(make_run(requester, mapping=mapping, properties={}))
    if message is None:
        assert run.status == RunStatus.SUCCESS, run.status_label
        return
    assert run.status == RunStatus.FAILURE and run.status_label == f"Entity not written: {message}"
    assert not Entity.objects.filter(identifier="dev-n").exists()


def test_an_unknown_blueprint_fails_the_run(requester):
    run = dispatch(make_run(requester, properties={"name": "a", "branch": "b"}, blueprint="Nope"))
    assert run.status == RunStatus.FAILURE and run.status_label == "Entity not written: blueprint 'Nope' does not exist"


def test_a_template_error_fails_the_run_naming_the_mapping_path(requester):
    mapping = {"identifier": "x", "properties": {"branch": "{{ .inputs.branch | tonumber }}"}}
    run = dispatch(make_run(requester, mapping=mapping, properties={"branch": "main"}))
    assert run.status == RunStatus.FAILURE
    assert run.status_label.startswith("Template error in mapping.properties.branch: ")
    assert not Entity.objects.exists()
