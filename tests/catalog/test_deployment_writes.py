"""The purpose-built writes of a deployment report (catalog/services/deployment_writes.py) where they differ from a
plain report: a running service written by others (teams, a stub, a relation moved), and one created meanwhile by
an entity API write (merged into, refused when locked)."""
import pytest
from django.db import transaction

from audit.models import AuditEvent
from catalog.models import Blueprint, Entity, Relation
from catalog.services.blueprints import blueprint_update
from catalog.services.deployment_writes import deployment_report_write
from catalog.services.deployments import Locked, deployment_record
from portal.actor import Actor
from portal.errors import ValidationFailed
from tests.factories import RunningServiceFactory, TeamFactory
from tests.support.deployments import install_contract, report

pytestmark = pytest.mark.django_db


@pytest.fixture
def writes_catalog(db, system):
    return install_contract(system)


@pytest.fixture
def reporter(admin_user):
    return Actor(user=admin_user)


def _updated(identifier="CartService-production"):
    (event,) = AuditEvent.objects.filter(verb="catalog.entity.updated", identifier=identifier)
    return event.diff


def test_a_running_service_keeps_its_teams_and_leaves_the_stub_state(writes_catalog, system, reporter):
    TeamFactory(name="payments")
    RunningServiceFactory(actor=system, blueprint="runningService", team=["payments"], properties={"health": "healthy"})
    Entity.objects.filter(identifier="CartService-production").update(is_stub=True)
    deployment_record(actor=reporter, data=report())
    running = Entity.objects.get(identifier="CartService-production")
    assert not running.is_stub and list(running.teams.values_list("name", flat=True)) == ["payments"]
    assert running.properties["health"] == "healthy" and running.properties["version"] == "1.2.3"
    diff = _updated()
    assert diff["before"]["team"] == diff["after"]["team"] == ["payments"]
    assert diff["after"]["relations"] == {"service": "CartService", "environment": "production"}


def test_a_running_service_related_elsewhere_is_moved_to_the_reported_service(writes_catalog, system, reporter):
    RunningServiceFactory(actor=system, blueprint="runningService", service="PaymentService",
                          identifier="CartService-production")
    deployment_record(actor=reporter, data=report())
    running = Entity.objects.get(identifier="CartService-production")
    targets = dict(Relation.objects.filter(source=running).values_list("relation", "target__identifier"))
    assert targets == {"service": "CartService", "environment": "production"}
    diff = _updated()
    assert diff["before"]["relations"]["service"] == "PaymentService" and diff["after"]["relations"]["service"] == "CartService"


def _write_with_stale_row(reporter, catalog):
    """A report that found no running service (`running_row=None`) though one exists now, as when an entity API
    write creates it between the report's read and its insert."""
    blueprints = {b.identifier: b for b in Blueprint.objects.all()}
    ids = dict(Entity.objects.filter(identifier__in=["CartService", "production"]).values_list("identifier", "pk"))

    def refuse_locked(properties):
        if properties.get("locked") is True:
            raise Locked("locked")

    with transaction.atomic():
        return deployment_report_write(
            actor=reporter, blueprints=blueprints, running_row=None, refuse_locked=refuse_locked,
            running={"blueprint": "runningService", "identifier": "CartService-production",
                     "relations": {"service": "CartService", "environment": "production"}, "properties": {"version": "9"}},
            deployment={"blueprint": "deployment", "identifier": "d-race", "relations": {"runningService": "CartService-production"},
                        "properties": {"version": "9", "status": "success"}},
            target_ids={("Component", "CartService"): ids["CartService"], ("environment", "production"): ids["production"]})


def test_a_running_service_created_meanwhile_is_merged_into(writes_catalog, system, reporter):
    RunningServiceFactory(actor=system, blueprint="runningService", properties={"health": "down"})
    deployment, running = _write_with_stale_row(reporter, writes_catalog)
    assert Entity.objects.filter(blueprint__identifier="runningService").count() == 1
    stored = Entity.objects.get(pk=running.pk)
    assert stored.properties["health"] == "down" and stored.properties["version"] == "9"
    assert _updated()["before"]["properties"]["health"] == "down"
    assert Relation.objects.get(source_id=deployment.pk).target_id == running.pk


def test_a_running_service_created_meanwhile_and_locked_refuses(writes_catalog, system, reporter):
    RunningServiceFactory(actor=system, blueprint="runningService", properties={"locked": True})
    with pytest.raises(Locked):
        _write_with_stale_row(reporter, writes_catalog)
    assert not Entity.objects.filter(identifier="d-race").exists()
    assert Entity.objects.get(identifier="CartService-production").properties.get("version") is None


def test_the_blueprints_schemas_validate_the_report_naming_the_property(writes_catalog, system, reporter):
    deployment_bp = Blueprint.objects.get(identifier="deployment")
    schema = {**deployment_bp.schema, "properties": {**deployment_bp.schema["properties"],
                                                      "version": {"type": "string", "maxLength": 3}}}
    blueprint_update(actor=system, blueprint=deployment_bp, partial=True, data={"schema": schema})
    with pytest.raises(ValidationFailed) as refused:
        deployment_record(actor=reporter, data=report(version="1.2.3"))
    assert [(e.path, e.message) for e in refused.value.errors] == [("properties.version", "'1.2.3' is too long")]
    assert not Entity.objects.filter(blueprint__identifier__in=["runningService", "deployment"]).exists()


def test_a_blueprint_changed_between_reports_is_read_afresh(writes_catalog, system, reporter):
    """The report answers the blueprints as the process keeps them while the locked rows are unchanged; a change
    in between (here after the definitions were kept by a first report) is read, in one statement."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    deployment_record(actor=reporter, data=report(version="1.2.3"))
    deployment_bp = Blueprint.objects.get(identifier="deployment")
    schema = {**deployment_bp.schema, "properties": {**deployment_bp.schema["properties"],
                                                      "region": {"type": "string", "default": "eu-west-1"}}}
    blueprint_update(actor=system, blueprint=deployment_bp, partial=True, data={"schema": schema})
    with CaptureQueriesContext(connection) as captured:
        deployment, _ = deployment_record(actor=reporter, data=report(version="1.2.4"))
    assert Entity.objects.get(pk=deployment.pk).properties["region"] == "eu-west-1"
    reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("/* blueprints_read */")]
    assert len(reads) == 1 and "{deployment}" in reads[0]  # the changed one only
    with CaptureQueriesContext(connection) as captured:
        deployment_record(actor=reporter, data=report(version="1.2.5"))
    assert not [q for q in captured.captured_queries if "blueprints_read" in q["sql"]]  # kept since
