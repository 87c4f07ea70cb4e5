"""The SQL statements of a deployment report (issue 16): one purpose-built transaction of at most 12 statements
on the plain deployment blueprints, whether it creates the running service or updates it, succeeds or fails,
and with an automation listening; a bounded few more when an aggregation of the Component follows the
deployments, with the aggregation values and the scorecard levels kept right."""
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.models import Action
from audit.models import AuditEvent
from catalog.models import Blueprint, Entity, ScorecardResult
from catalog.services import aggregations
from catalog.services.blueprints import blueprint_update
from catalog.services.deployments import deployment_record
from catalog.services.scorecards import scorecard_create
from catalog.tasks import aggregates_refresh_task
from portal.actor import Actor
from portal.outbox import OutboxMessage, outbox_deliver
from tests.support.automations import automation
from tests.support.deployments import install_contract, report

pytestmark = pytest.mark.django_db

PLAIN_LIMIT = 12
# The whole POST /v1/deployments on the contract with its mirror properties: the token's user, the report, and the
# response: both entities' JSON in one prepared statement (catalog/selectors/search_pages.py written_documents).
REQUEST_LIMIT = 12
# With two aggregation properties of the Component following deployments and a scorecard reading them: the report
# itself queues their refresh (one outbox row), which the worker runs after the commit
# (catalog/services/aggregations.py aggregates_refresh_after). Before, the refresh ran in the report: 22 statements.
AGGREGATED_LIMIT = PLAIN_LIMIT + 1
COUNT = {"calculationBy": "entities", "func": "count"}
PATH = [{"fromBlueprint": "deployment", "path": ["runningService", "service"]}]


def statements(actor, body):
    """The statements the report sends, without the savepoints the test's own transaction adds around it; the user
    is read afresh, as each request does (nothing cached on it from an earlier report)."""
    actor = Actor(user=User.objects.get(pk=actor.user.pk))
    with CaptureQueriesContext(connection) as captured:
        deployment_record(actor=actor, data=body)
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


@pytest.fixture
def plain_deploy_catalog(db, system):
    return install_contract(system)


@pytest.fixture
def ci_actor(admin_user):
    return Actor(user=admin_user)


def test_first_report_creates_the_running_service_in_at_most_12_statements(plain_deploy_catalog, ci_actor):
    sql = statements(ci_actor, report())
    assert len(sql) <= PLAIN_LIMIT, "\n".join(sql)
    assert Entity.objects.filter(blueprint__identifier="runningService", identifier="CartService-production").exists()
    created = AuditEvent.objects.filter(verb="catalog.entity.created", blueprint__in=["runningService", "deployment"])
    assert sorted(created.values_list("blueprint", flat=True)) == ["deployment", "runningService"]


@pytest.mark.parametrize("status", ["success", "failure"])
def test_later_reports_take_at_most_12_statements(plain_deploy_catalog, ci_actor, status):
    deployment_record(actor=ci_actor, data=report())
    sql = statements(ci_actor, report(version="1.2.4", status=status))
    assert len(sql) <= PLAIN_LIMIT, "\n".join(sql)
    running = Entity.objects.get(identifier="CartService-production")
    assert running.properties["version"] == ("1.2.4" if status == "success" else "1.2.3")


def test_listening_automations_are_queued_within_the_12_statements(plain_deploy_catalog, ci_actor):
    for blueprint in ("deployment", "runningService"):
        automation(f"on-{blueprint}", {"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": blueprint})
    assert Action.objects.count() == 2
    for version in ("1.2.3", "1.2.4"):  # creating the running service, then updating it
        queued = OutboxMessage.objects.count()
        sql = statements(ci_actor, report(version=version))
        assert len(sql) <= PLAIN_LIMIT, "\n".join(sql)
        assert OutboxMessage.objects.count() == queued + 2  # the deployment, the running service


@pytest.fixture
def aggregated_deploy_catalog(plain_deploy_catalog, system):
    component = Blueprint.objects.get(identifier="Component")
    blueprint_update(actor=system, blueprint=component, partial=True, data={"aggregationProperties": {
        "deployments": {"title": "Deployments", "type": "number", "target": "deployment", "calculationSpec": COUNT,
                        "pathFilter": PATH},
        "failures": {"title": "Failures", "type": "number", "target": "deployment", "calculationSpec": COUNT,
                     "pathFilter": PATH,
                     "query": {"combinator": "and", "rules": [{"property": "status", "operator": "=", "value": "failure"}]}},
    }})
    scorecard_create(actor=system, blueprint=Blueprint.objects.get(identifier="Component"), data={
        "identifier": "shipping", "title": "Shipping", "rules": [
            {"identifier": "deployed", "title": "Deployed", "level": "Silver",
             "query": {"combinator": "and", "conditions": [{"property": "deployments", "operator": ">", "value": 0}]}},
            {"identifier": "noFailures", "title": "No failures", "level": "Gold",
             "query": {"combinator": "and", "conditions": [{"property": "failures", "operator": "=", "value": 0}]}}]})
    return plain_deploy_catalog


def _component(identifier):
    entity = Entity.objects.get(blueprint__identifier="Component", identifier=identifier)
    level = ScorecardResult.objects.get(entity=entity, scorecard="shipping").level
    return entity.aggregates, level


def test_an_aggregation_following_deployments_stays_right_in_a_bounded_count(aggregated_deploy_catalog, ci_actor, eager,
                                                                             django_capture_on_commit_callbacks):
    def reported(body):
        """The report's statements; then its commit's work runs (the outbox: the refresh, at once under `eager`)."""
        with django_capture_on_commit_callbacks(execute=True):
            sql = statements(ci_actor, body)
            assert _component("CartService")[0]["deployments"] == before, "refreshed before the commit"
        return sql

    assert _component("CartService") == ({"deployments": 0, "failures": 0}, "Bronze")
    before = 0
    first = reported(report())
    assert _component("CartService") == ({"deployments": 1, "failures": 0}, "Gold")
    before = 1
    failed = reported(report(version="1.2.4", status="failure"))
    assert _component("CartService") == ({"deployments": 2, "failures": 1}, "Silver")
    before = 2
    other = reported(report(environment="staging"))
    assert _component("CartService") == ({"deployments": 3, "failures": 1}, "Silver")
    assert _component("PaymentService") == ({"deployments": 0, "failures": 0}, "Bronze")
    for sql in (first, failed, other):
        assert len(sql) <= AGGREGATED_LIMIT, "\n".join(sql)
    # Aggregation values and levels moving are not edits of the Component: no audit row of their own, as before.
    assert not AuditEvent.objects.filter(blueprint="Component", verb="catalog.entity.updated").exists()


def test_the_request_adds_authentication_and_the_response_only(plain_deploy_catalog, admin_api):
    """The view adds the token's user before and the entity JSON of both after, nothing that grows."""
    assert admin_api.post("/v1/deployments", report(), format="json").status_code == 201
    with CaptureQueriesContext(connection) as captured:
        response = admin_api.post("/v1/deployments", report(version="1.2.4"), format="json")
    assert response.status_code == 201, response.json()
    sql = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sql) <= REQUEST_LIMIT, "\n".join(sql)
    assert sql[0].startswith("/* token_user */") and sql[-1].startswith("/* written_documents */"), "\n".join(sql)
    assert not any("search_page" in statement for statement in sql)  # the answer is that one statement


def _refreshes(**filters):
    return OutboxMessage.objects.filter(task=aggregates_refresh_task.name, **filters).order_by("id")


def test_one_recount_covers_every_report_waiting_for_it(aggregated_deploy_catalog, ci_actor, eager):
    """Reports commit faster than the worker recounts (here it is away: nothing delivered yet): the values wait,
    nothing is lost, and the first refresh delivered recounts for every report pending; the others find their
    message done and do nothing."""
    deployment_record(actor=ci_actor, data=report())
    deployment_record(actor=ci_actor, data=report(environment="staging", status="failure"))
    queued = list(_refreshes(done_at=None))
    assert len(queued) == 2 and all(m.not_before > m.created_at for m in queued)  # due a moment after the report
    assert _component("CartService") == ({"deployments": 0, "failures": 0}, "Bronze")
    assert outbox_deliver(message_id=queued[0].pk) is True
    assert _component("CartService") == ({"deployments": 2, "failures": 1}, "Silver")
    assert not _refreshes(done_at=None).exists()
    assert outbox_deliver(message_id=queued[1].pk) is False
    assert _component("CartService") == ({"deployments": 2, "failures": 1}, "Silver")


def test_a_recount_that_fails_leaves_every_report_it_took_pending(aggregated_deploy_catalog, ci_actor, eager,
                                                                  monkeypatch):
    deployment_record(actor=ci_actor, data=report())
    deployment_record(actor=ci_actor, data=report(environment="staging"))
    first, second = _refreshes(done_at=None)

    def broken(**kwargs):
        raise RuntimeError("PostgreSQL went away")

    monkeypatch.setattr(aggregations, "aggregates_refresh", broken)
    assert outbox_deliver(message_id=first.pk) is True  # claimed, failed: retried later
    first.refresh_from_db(), second.refresh_from_db()
    assert first.last_error == "RuntimeError: PostgreSQL went away" and first.done_at is None
    assert second.done_at is None and second.lease_until is None  # the one it had taken, back to pending
    monkeypatch.undo()
    assert outbox_deliver(message_id=second.pk) is True
    assert _component("CartService")[0] == {"deployments": 2, "failures": 0}
    assert not _refreshes(done_at=None).exists()


def test_after_its_commit_a_report_publishes_once_and_leaves_the_seal_to_beat(aggregated_deploy_catalog, ci_actor,
                                                                             django_capture_on_commit_callbacks):
    """What runs after the commit, while CI waits: one publish of the report's messages (the refresh, the listening
    automation's event), and no statement; its audit rows stay pending until beat's sealer."""
    from audit.chain import audit_seal
    from audit.models import AuditPending

    automation("on-deployment", {"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "deployment"})
    deployment_record(actor=ci_actor, data=report())  # the running service exists: a later report's path
    audit_seal(wait=True)
    earlier = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first()
    with django_capture_on_commit_callbacks() as callbacks:
        deployment_record(actor=ci_actor, data=report(version="1.2.4"))
    queued = OutboxMessage.objects.filter(id__gt=earlier)
    assert sorted(queued.values_list("task", flat=True)) == ["actions.tasks.automations_fire_task",
                                                            "catalog.tasks.aggregates_refresh_task"]
    with CaptureQueriesContext(connection) as captured:
        for callback in callbacks:
            callback()
    assert len(callbacks) == 1 and captured.captured_queries == []  # written published: nothing marks them after
    assert not queued.filter(published_at__isnull=True).exists()
    assert AuditPending.objects.count() == 2  # the deployment's and the running service's
    assert audit_seal(wait=True) == 2
